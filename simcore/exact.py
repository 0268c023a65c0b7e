"""The exact node model (`cohort_size` = 1): every request is one real request, played as SimPy events through
the balancer, each node's memory and batch, and its pool's queue (docs/model.md 'Exact mode').

    arrival at the datacenter (trace arrival + one-way network transfer, Eq. 2)
      -> weighted round-robin balancer over the warm set, spilling to cold nodes (ref. [26])
      -> admission if the node's memory holds it (Eq. 1) and its batch is not full, else the pool's FIFO queue
         (served by the first of its nodes with room)
      -> weight load if the model is not resident (LA_load) -> its prefill pass, after the node's pending ones
         (the GPU's decode steps wait) -> first token (TTFT, Eq. 3) -> decode steps shared with the node's batch
         -> completion (KV released, queued requests admitted)

A node is a continuous-batching server: its decode clock counts the decode steps run, each step timed by the
node's batch, and stands still during prefill passes; a request is done when the clock has run its output tokens.
An exact request costs two SimPy events (datacenter arrival, its node's completion event); per-node and
per-request state lives in plain Python lists (scalar indexing of numpy arrays is slow).
"""
from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np

from simcore import physics
from simcore.config import MODELS
from simcore.nodes import NodeModel

WRR_RESOLUTION = 8  # balancer weights resolve node throughputs to 1/8 of the slowest node's


def wrr_weight(rps, slowest) -> np.ndarray:
    """A node's balancer weight (elementwise, float): its throughput `rps` in whole multiples of 1/WRR_RESOLUTION
    of the `slowest` node's in its warm set, at least 1."""
    return np.maximum(np.rint(WRR_RESOLUTION * np.asarray(rps, dtype=float) / np.maximum(slowest, 1e-300)), 1.0)


def wrr_weights(rps: np.ndarray) -> np.ndarray:
    """Balancer weights of a warm set (`wrr_weight` against its slowest node). Also how the cohort model spreads a
    pool's work (`simcore.cohorts.balancer_shares`)."""
    rps = np.asarray(rps, dtype=float)
    if not len(rps):
        return np.zeros(0, dtype=int)
    return wrr_weight(rps, rps.min()).astype(int)
DECODE_CLOCK_TOLERANCE = 1e-7  # decode steps: a request counts as done when the node's clock is this close


def wrr_sequence(nodes: np.ndarray, weights: np.ndarray) -> list:
    """One cycle of smooth weighted round-robin: node j appears weights[j] times, spread evenly."""
    if len(nodes) == 0:
        return []
    w = weights.astype(int)
    rep = np.repeat(np.arange(len(nodes)), w)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(w) - w, w)
    pos = (within + 0.5) / np.repeat(w, w)
    order = np.lexsort((rep, pos))
    return nodes[rep[order]].tolist()


class ExactNodes(NodeModel):
    """Requests one by one through the balancer, each node's memory, batch and GPU, and the pools' queues."""

    low_discrepancy = False  # routing draws independent uniforms

    def __init__(self, engine) -> None:
        super().__init__(engine)
        e, wl, cfg = engine, engine.wl, engine.cfg
        n_req, n_nodes = len(wl), len(e.fleet.node_dc)
        self.env, self.cfg, self.prof = e.env, cfg, e.prof
        self.mode, self.phases, self.last_phase = e.mode, e.phases, e.last_phase
        # the node state the engine's warm sets share (never rebound)
        self.res, self.res_w, self.ready, self.kv, self.act = e.res, e.res_w, e.ready, e.kv, e.act
        self.weights_gb, self.n_mem, self.n_type = e.weights_gb, e.n_mem, e.n_type
        self.batch_full, self.step_full = e.batch_full, e.step_full
        self.dc_running, self.dc_queued, self.dcm_queued = e.dc_running, e.dc_queued, e.dcm_queued

        # per-request state (plain lists in the hot path)
        self.r_model = wl.model.tolist()
        self.r_prompt = wl.prompt_tokens.tolist()
        self.r_output = wl.output_tokens.tolist()
        kv = physics.request_kv_gb(wl.prompt_tokens + wl.output_tokens,
                                   np.asarray(cfg.model_kv_mb_per_token)[wl.model])
        self.r_kv = kv.tolist()
        self.r_dc = [-1] * n_req
        self.r_net = [0.0] * n_req
        self.r_arr = [0.0] * n_req  # arrival time at the datacenter
        self.r_node = [-1] * n_req
        self.r_ttft = [math.nan] * n_req
        self.r_cold = [False] * n_req
        # phases (`simcore.execution`): the current one, the node of the first when split, what the first token
        # waited for at the first phase (wait, weight load, prefill, decode step), the KV transfer before the last
        self.r_phase = [0] * n_req
        self.r_pnode = [-1] * n_req
        self.r_split = [None] * n_req if self.last_phase else None
        self.r_xfer = [0.0] * n_req if self.last_phase else None
        self.unserved = int(np.count_nonzero(~wl.failed))  # requests whose first token is not yet known

        # the node's GPU (`_start`, `_advance_node`): prefill passes run one after another until pf_free; the
        # decode clock dv counts decode steps done (it stands still during prefill passes and weight loads);
        # each admitted request finishes when dv reaches its entry in dheap; dnext / dver: the node's scheduled
        # completion event and its version (an earlier one supersedes it)
        self.pf_free = [0.0] * n_nodes
        self.dv = [0.0] * n_nodes
        self.dv_t = [0.0] * n_nodes
        self.dheap = [[] for _ in range(n_nodes)]
        self.dnext = [math.inf] * n_nodes
        self.dver = [0] * n_nodes
        self.dmodel = [0] * n_nodes  # the model whose decode step times the node's steps (the newest admitted)
        self.serves = [()] * n_nodes  # pools whose queue the node takes requests from this epoch
        self.pools: list = []  # per datacenter: pool key -> [WRR sequence, its pointer, cold nodes, their pointer, id]
        self.pq: dict = {}  # pool id -> its FIFO queue of requests waiting for a batch slot (kept across epochs)
        self._step = self.prof.decode_step_s.tolist()
        self._rps = np.asarray(e.capacity.node_rps)  # [M, T] a node's throughput (how fast a full pool frees slots)
        self._load_s = e.fleet.load_s.tolist()  # [M][T] LA_load
        self.util_acc = [0.0] * n_nodes  # node-seconds of serving capacity used this epoch (Eq. 4's utilization)
        self.used_epoch = [-1] * n_nodes

    # --- the engine's calls (simcore.nodes.NodeModel) -------------------------------------------------------------
    def epoch_reset(self, now: float) -> None:
        self.serves = [()] * len(self.serves)
        self.pools = [dict() for _ in range(self.cfg.dcs)]

    def add_pool(self, d: int, key: int, m: int, nodes: np.ndarray, cold: list, pool_id: int, shared: bool,
                 now: float) -> None:
        for n in nodes.tolist():
            self.serves[n] = self.serves[n] + (pool_id,) if shared else (pool_id,)
        rate = float(self._rps[m][self.e.fleet.node_type[nodes]].sum()) if len(nodes) else 0.0
        # [WRR sequence, its pointer, cold nodes, their pointer, pool id, the pool's summed node_rps, whether it
        # passed over a cold node left to another model (`_spill`)]
        self.pools[d][key] = [wrr_sequence(nodes, self._wrr_weights(key, m, nodes)), 0, cold, 0, pool_id, rate,
                              False]

    def pools_ready(self, now: float) -> None:
        """Requests still queued for a batch slot go to the pools' new nodes."""
        for pool_id, q in self.pq.items():
            if q:
                for n in self.pools[pool_id // self.e.K][pool_id % self.e.K][0]:
                    self._admit(n, now)

    def start_epoch(self, lo: int, hi: int) -> None:
        pass  # nothing per epoch: each request is played as it comes

    def arrive(self, e: int, plan: np.ndarray, idx: np.ndarray, dc: np.ndarray, net: np.ndarray,
               arr: np.ndarray) -> None:
        now = self.env.now
        env, cb = self.env, self._at_dc
        for i, d, n_s, a in zip(idx.tolist(), dc.tolist(), net.tolist(), arr.tolist()):
            self.r_dc[i], self.r_net[i], self.r_arr[i] = d, n_s, a
            env.timeout(a - now, i).callbacks.append(cb)

    def arrive_one(self, i: int, d: int, m: int, net: float, t: float) -> None:
        self.r_dc[i], self.r_net[i], self.r_arr[i] = int(d), net, t + net
        self.env.timeout(net, i).callbacks.append(self._at_dc)

    def steps_per_epoch(self, drain: bool) -> int:
        return self.e.bins_per_epoch if drain else 1  # the drain looks at its backlog every cohort bin

    def tick(self) -> None:
        pass  # requests are events of their own

    def backlog(self) -> float:
        return float(self.unserved)

    def idle(self) -> np.ndarray:
        return np.asarray(self.act) == 0

    def queued_real(self) -> np.ndarray:
        return np.asarray(self.dcm_queued, dtype=float)

    def utilization(self, e: int, length_s: float) -> tuple:
        u = np.asarray(self.util_acc) / length_s
        act = np.asarray(self.act)
        for n in np.flatnonzero(act).tolist():  # still busy: active in the next epoch too
            self.used_epoch[n] = e + 1
        active = self.e.warm | (np.asarray(self.used_epoch) >= e) | (act > 0)
        self.util_acc = [0.0] * len(self.util_acc)
        return u, active

    def epoch_requests(self, lo: int, hi: int) -> tuple:
        dcs = np.asarray(self.r_dc[lo:hi], dtype=np.int64)  # int even for an epoch without arrivals
        ttft = np.asarray(self.r_ttft[lo:hi], dtype=np.float64)
        return dcs, ttft, np.ones(hi - lo), physics.sla_violated(ttft, self.cfg.sla_ttft_s).astype(float)

    def finish(self) -> None:
        pass

    def record(self) -> dict:
        ttft = np.asarray(self.r_ttft)
        return {"ttft_s": ttft, "served": (~np.isnan(ttft)).astype(float),
                "sla_late": physics.sla_violated(ttft, self.cfg.sla_ttft_s).astype(float), "req_dc": self.r_dc,
                "cold": self.r_cold, "prompt_node": self.r_pnode, "token_node": self.r_node}

    # --- the requests (the hot path) ----------------------------------------------------------------------------
    def _wrr_weights(self, key: int, m: int, nodes: np.ndarray) -> np.ndarray:
        """Balancer weights of a pool's nodes (`wrr_weights` of their throughputs for the pool's work)."""
        return wrr_weights(self.e.capacity.node_rps[m][self.e.fleet.node_type[nodes]])

    def _fits(self, n: int, m: int, kv: float) -> bool:
        """Admission test (Eq. 1): weights (+ the model if not resident) + KV within the pooled memory."""
        if self.act[n] >= self.cfg.max_batch:
            return False
        w = self.res_w[n] if (self.res[n] >> m) & 1 else self.res_w[n] + self.weights_gb[m]
        if physics.node_memory_gb(w, self.kv[n] + kv) <= self.n_mem[n]:
            return True
        # an idle node may drop its other models to make room
        return self.act[n] == 0 and physics.node_memory_gb(self.weights_gb[m], kv) <= self.n_mem[n]

    def _at_dc(self, ev) -> None:
        """A request reaches its datacenter: the balancer places it (its first phase) in its model's pool."""
        self.e.events += 1
        i = ev.value
        self._place(i, self.r_model[i])

    def _place(self, i: int, key: int) -> None:
        """The balancer: weighted round-robin over the pool's warm nodes, skipping a node without a free batch
        slot or memory; when every node is full the request waits in the pool's FIFO queue, which the first node
        with room serves (so no request waits at one node while another has room), and the pool spills to a cold
        node if one is there for it (`_spill`)."""
        d, m, kv = self.r_dc[i], self.r_model[i], self.r_kv[i]
        fits = self._fits
        pool = self.pools[d][key]
        me = pool[4]
        q = self.pq.get(me)
        if not q:  # first come, first served: nobody overtakes a waiting request
            seq = pool[0]
            L = len(seq)
            p = pool[1]
            for _ in range(L):
                n = seq[p]
                p = p + 1 if p + 1 < L else 0
                if fits(n, m, kv):
                    pool[1] = p
                    self._start(n, i)
                    return
        # a queue that was there already spills only to a node it passed over for another model (a pool whose
        # queue outlives an epoch does not spill, as before issue 19's race rule)
        spill = pool[3] < len(pool[2]) and (not q or pool[6])
        if q is None:
            q = self.pq[me] = deque()
        q.append(i)
        self.dc_queued[d] += 1
        self.dcm_queued[d][m] += 1
        if spill:
            self._spill(pool, me, m, len(q))

    def _spill(self, pool: list, me: int, m: int, waiting: int) -> None:
        """Every node of the pool is full and `waiting` requests wait in its queue: the next cold node no other
        pool serves joins the pool (and its rotation, for the epoch) and takes the queue's head. A free node that
        holds another model's weights and not this one's (a node that served that model's pool) is left to that
        pool, unless this pool's queue would wait longer than the node's LA_load for it (`waiting` / the pool's
        summed node_rps, the rate at which its full nodes free slots): a burst its own slots absorb within the load
        does not take the node another model may need (issue 19: the race for the free node)."""
        cold, owner, res = pool[2], self.e.owner, self.res
        kv = self.r_kv[self.pq[me][0]]
        c = pool[3]
        skipped = -1  # the first node left to another model: the pointer comes back to it
        while c < len(cold):
            n = cold[c]
            if (owner[n] >= 0 and owner[n] != me) or not self._fits(n, m, kv):
                c += 1
                continue
            if res[n] and not (res[n] >> m) & 1 and \
                    waiting <= pool[5] * min(self._load_s[m][self.n_type[n]], self.cfg.sla_ttft_s):
                if skipped < 0:
                    skipped = c
                    pool[6] = True
                c += 1
                continue
            owner[n] = me
            self.serves[n] = (me,)
            if skipped < 0:
                pool[3] = c + 1
            else:  # the node taken is past one left to another model: drop it from the list, keep the pointer
                del cold[c]
                pool[3] = skipped
            pool[0].append(n)
            pool[5] += float(self._rps[m][self.n_type[n]])
            self._admit(n, self.env.now)
            return
        pool[3] = c if skipped < 0 else skipped

    def _admit(self, n: int, now: float) -> None:
        """Node n takes waiting requests, in FIFO order, from the queues of the pools it serves while it has room."""
        for p in self.serves[n]:
            q = self.pq.get(p)
            while q:
                j = q[0]
                if not self._fits(n, self.r_model[j], self.r_kv[j]):
                    break
                q.popleft()
                self.dc_queued[self.r_dc[j]] -= 1
                self.dcm_queued[self.r_dc[j]][self.r_model[j]] -= 1
                self._start(n, j)

    def _advance_node(self, n: int, now: float) -> None:
        """Bring node n's decode clock to `now`: it ran decode steps of its current batch since its last update or
        the end of its prefill passes, whichever is later."""
        a = self.act[n]
        if a:
            s = self.dv_t[n]
            pf = self.pf_free[n]
            if pf > s:
                s = pf
            if now > s:
                self.dv[n] += (now - s) / self._step[self.dmodel[n]][self.n_type[n]][a]
        self.dv_t[n] = now

    def _schedule_node(self, n: int, now: float) -> None:
        """Node n's next completion: when its decode clock reaches the smallest entry of its heap at the current
        batch. A later time keeps the scheduled event (it fires, finds nothing done and reschedules)."""
        h = self.dheap[n]
        if not h:
            self.dnext[n] = math.inf
            return
        pf = self.pf_free[n]
        left = h[0][0] - self.dv[n]
        t = (pf if pf > now else now) + (left if left > 0 else 0.0) * self._step[self.dmodel[n]][self.n_type[n]][
            self.act[n]]
        if t < self.dnext[n] - 1e-12:
            self.dver[n] += 1
            self.dnext[n] = t
            self.env.timeout(t - now, (n, self.dver[n])).callbacks.append(self._node_event)

    def _start(self, n: int, i: int) -> None:
        """Admit request i's current phase on node n: weight load if cold, then its prefill pass after the node's
        pending ones (the GPU's decode steps wait), then its decode steps with the node's batch. Its first token is
        out when its prefill pass ends; it is known at the last phase (the first phase's wait, weight load and
        prefill, the KV transfer between phases, the decode)."""
        env = self.env
        now = env.now
        m, t = self.r_model[i], self.n_type[n]
        j = self.r_phase[i]
        phase = self.phases[j]
        if not (self.res[n] >> m) & 1:  # cold start: load the weights (evicting idle models if needed)
            if self.res_w[n] + self.weights_gb[m] + self.kv[n] + self.r_kv[i] > self.n_mem[n]:
                self.res[n], self.res_w[n] = 0, 0.0
            self.e._load(n, m, now)
            if j == 0:
                self.r_cold[i] = True
        self._advance_node(n, now)
        ready = self.ready[n][m]
        load_wait = ready - now if ready > now else 0.0
        pf = self.pf_free[n]
        begin = pf if pf > now else now
        if ready > begin:
            begin = ready
        prefill = self.prof.prefill_s(m, t, self.r_prompt[i]) if phase.prefill else 0.0
        self.pf_free[n] = begin + prefill
        batch = self.act[n] + 1
        out = self.r_output[i]
        steps = out if phase.decode else 0
        step = self._step[m][t][batch]
        if j == 0:  # wait for a batch slot and for the node's earlier prefill passes; the weight load apart
            first_token = (begin - load_wait - self.r_arr[i], load_wait, prefill, step)
        else:
            first_token = self.r_split[i]
        if j == self.last_phase:
            wait, p_load, p_prefill, p_step = first_token
            exec_s = p_prefill + (self.r_xfer[i] if j else 0.0) + steps * step
            first = physics.first_token_compute_s(self.cfg.ttft_model, exec_s, out, p_prefill, p_step)
            self.r_ttft[i] = physics.request_ttft_s(wait, p_load, self.r_net[i], first)
            self.unserved -= 1
            self.r_node[i] = n
        else:
            self.r_split[i] = first_token
            self.r_pnode[i] = n
        # GPU seconds at full batch (`Profiles.gpu_s_array`): Eq. 4's utilization counts the share of capacity used
        self.util_acc[n] += prefill + (steps * self.step_full[m][t] / self.batch_full[m][t] if steps else 0.0)
        self.act[n] = batch
        self.dmodel[n] = m
        self.kv[n] += self.r_kv[i]
        heapq.heappush(self.dheap[n], (self.dv[n] + steps, i))
        self.used_epoch[n] = max(self.used_epoch[n], int(now // self.cfg.epoch_s))
        if j == 0:
            d = self.r_dc[i]
            self.dc_running[d] += 1
            self.e.served_dm[d, m] += 1
        self._schedule_node(n, now)

    def _node_event(self, ev) -> None:
        """Node n's decode clock reached its next completion (unless a newer event superseded this one): finish
        every request done, then admit waiting ones."""
        n, version = ev.value
        if version != self.dver[n]:
            return
        self.e.events += 1
        now = self.env.now
        self.dnext[n] = math.inf
        self._advance_node(n, now)
        h = self.dheap[n]
        done = self.dv[n] + DECODE_CLOCK_TOLERANCE
        while h and h[0][0] <= done:
            self._finish(n, heapq.heappop(h)[1], now)
        if not h:
            self.dv[n] = 0.0  # an idle node's clock restarts (no float drift)
        self._admit(n, now)
        self._schedule_node(n, now)

    def _finish(self, n: int, i: int, now: float) -> None:
        """Node n finishes its part of request i: release the batch slot and KV cache; after a phase that is not
        the last, send the KV cache on to the next phase's pool."""
        j = self.r_phase[i]
        self.act[n] -= 1
        self.kv[n] -= self.r_kv[i]
        if self.act[n] == 0:
            self.kv[n] = 0.0  # no float drift
        if j < self.last_phase:
            self.r_phase[i] = j + 1
            self.r_xfer[i] = self.mode.transfer_s(self.r_prompt[i],
                                                  self.cfg.model_kv_mb_per_token[self.r_model[i]])
            self.env.timeout(self.r_xfer[i], i).callbacks.append(self._next_phase)
        else:
            self.dc_running[self.r_dc[i]] -= 1
        self.used_epoch[n] = max(self.used_epoch[n], int(now // self.cfg.epoch_s))

    def _next_phase(self, ev) -> None:
        """The KV cache has reached the next phase's pool: place that phase."""
        self.e.events += 1
        i = ev.value
        self._place(i, self.r_phase[i] * len(MODELS) + self.r_model[i])
