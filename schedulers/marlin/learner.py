"""MARLIN's SAC learning for all J agents at once: every agent's networks live in stacked tensors, so one update
step runs each layer of all agents as one batched matrix product (torch.bmm) and takes one Adam step for all.

Owns: `AgentNets` (one agent's actor, twin critics, target critics and entropy temperature as ordinary modules,
used for acting, phase 2's utilities and checkpoints) and `AgentStack` (the stacked parameters of all agents'
AgentNets, the batched SAC update and the batched critics of phase 2).

The algorithm is `schedulers.rl.sac.SAC.update`, agent by agent, with the same batches and sampling noise (drawn
beforehand in the same order, `ObjectiveAgent.draw_batches`). Per update and agent: critic step on
mean((Q1 - r)^2) + mean((Q2 - r)^2); then, with the updated critics, actor step on mean(alpha logp - min(Q1, Q2))
(alpha = the temperature before this update's temperature step) and temperature step on
-mean(log_alpha (logp + target entropy)); then Polyak averaging of the target critics. The critics' target is
SAC's bootstrapped one (`td_target`): r + gamma (1 - done) (min(Q1', Q2')(s', a') - alpha log pi(a'|s')), the
target critics Q' scoring an action a' the actor samples in the next epoch's state s' (`_next_value`), so
marlin_gamma discounts the epochs that follow and the target critics are what the critics regress on.
No parameter is shared between agents, so each agent's gradients, Adam
moments and steps are its own update's (Adam is elementwise: one Adam over stacked tensors is J separate Adams).

Speed: the forward and backward passes are written out (no autograd graph); gradients go straight into one flat
buffer per optimizer (one fused Adam kernel, one lerp for the targets); intermediate tensors live in buffers reused
from update to update; the actor's loss does not compute the critics' weight gradients that SAC.update computes and
then discards. Results differ from SAC.update only by floating-point rounding: the same formulas, in places
rewritten to equal expressions (tanh(u) = 2 sigmoid(2u) - 1; (u - mean) / std = noise in log pi; the softmax
without its max shift, its logits being bounded by the action scale; d log pi / d mean = 2 tanh(u)).
tests/test_marlin.py checks the update against SAC.update.

Layout: a linear layer of agent j is stored transposed, [in, out], at index j of a [J, in, out] tensor (twin
critics: index 2 j + t, twin t), so a forward is torch.baddbmm; the actor's mean and log-std heads are one
[hidden, 2 A] layer. Each AgentNets module parameter is a view of its slice (requires_grad False), so the modules
always see the current values and loading a checkpoint into them writes into the stack.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from schedulers.rl.sac import LOG_STD_MAX, LOG_STD_MIN, SAC, SACHyper, TwinQ, squashed_sample


def td_target(rew, gamma: float, done, next_q, next_logp, alpha):
    """SAC's soft bootstrapped target: r + gamma (1 - done) (Q'(s', a') - alpha log pi(a'|s')) (elementwise; a
    transition with done = 1 is scored by its reward alone)."""
    return rew + gamma * (1.0 - done) * (next_q - alpha * next_logp)


class AgentNets:
    """One agent's SAC networks (actor, twin critics, target critics, log of the entropy temperature) with
    `act`, `alpha`, `state_dict` and `load_state_dict` like `schedulers.rl.sac.SAC`; learning is AgentStack's.

    :param actor: FilmActor, forward(obs, cond) -> (mean, log_std)
    :param critic: TwinQ over (obs, to_critic(action), cond)
    :param to_critic: action -> plan (flattened)
    :param hp: SACHyper
    """

    def __init__(self, actor: nn.Module, critic: TwinQ, to_critic, hp: SACHyper) -> None:
        self.actor, self.critic, self.to_critic, self.hp = actor, critic, to_critic, hp
        self.critic_target = copy.deepcopy(critic)
        self.log_alpha = torch.tensor(math.log(hp.alpha_init))

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.exp())

    def act(self, obs: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None,
            deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.actor(obs, cond)
        return squashed_sample(mean, log_std, self.hp.action_scale, generator, deterministic)

    def state_dict(self) -> dict:
        """The checkpoint format of SAC.state_dict (compact copies, not views of the stack)."""
        def own(m: nn.Module) -> dict:
            return {k: v.clone() for k, v in m.state_dict().items()}
        return {"actor": own(self.actor), "critic": own(self.critic), "critic_target": own(self.critic_target),
                "log_alpha": self.log_alpha.clone()}

    load_state_dict = SAC.load_state_dict  # the same attributes, the same checkpoint format


class _Flat:
    """Named tensors laid out one after the other in one flat float32 tensor (so one fused Adam step or one lerp
    covers them all), with a flat gradient tensor of the same layout."""

    def __init__(self, shapes: dict) -> None:
        sizes = {k: math.prod(v) for k, v in shapes.items()}
        self.data = torch.zeros(sum(sizes.values()))
        self.grad = torch.zeros_like(self.data)
        self.p: dict = {}
        self.g: dict = {}
        at = 0
        for k, shape in shapes.items():
            self.p[k] = self.data[at:at + sizes[k]].view(shape)
            self.g[k] = self.grad[at:at + sizes[k]].view(shape)
            at += sizes[k]


def _relu_grad_(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """ReLU's backward (autograd's kernel), in place: the gradient where the ReLU's output is positive, else 0."""
    return torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)


def _t(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2)


def _adam(groups: list) -> torch.optim.Adam:
    """torch's Adam (default betas and eps, as SAC's), its fused CPU kernel where this torch has one (2.4+)."""
    try:
        return torch.optim.Adam(groups, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(groups, foreach=True)


class AgentStack:
    """All agents' AgentNets in stacked tensors, with the batched SAC update (forward and backward written out,
    gradients straight into flat buffers, one fused Adam step per optimizer).

    :param nets: the J agents' AgentNets (same sizes and hyperparameters); their modules are re-pointed at
        views of the stacked tensors
    :param plan_shape: (M, O, D): an action's logits -> plan is a softmax over D
    """

    def __init__(self, nets: list, plan_shape: tuple) -> None:
        self.nets, self.J, self.plan_shape = nets, len(nets), tuple(plan_shape)
        self.hp: SACHyper = nets[0].hp
        actor0, critic0 = nets[0].actor, nets[0].critic
        self.film = hasattr(actor0.film, "proj")
        J, G = self.J, 2 * self.J
        F, Ha, A = actor0.inp.in_features, actor0.inp.out_features, actor0.mean.out_features
        Din, H = critic0.q1[0].in_features, critic0.q1[0].out_features
        C = Din - F - A
        self.F, self.A, self.C, self.Ha = F, A, C, Ha
        actor_shapes = {"inp_w": (J, F, Ha), "inp_b": (J, 1, Ha)}
        if self.film:
            actor_shapes |= {"film_w": (J, C + F, 2 * Ha), "film_b": (J, 1, 2 * Ha)}
        actor_shapes |= {"mid_w": (J, Ha, Ha), "mid_b": (J, 1, Ha), "head_w": (J, Ha, 2 * A), "head_b": (J, 1, 2 * A)}
        critic_shapes = {"l0_w": (G, Din, H), "l0_b": (G, 1, H), "l1_w": (G, H, H), "l1_b": (G, 1, H),
                         "l2_w": (G, 1, H), "l2_b": (G, 1, 1)}
        self.actor, self.critic, self.target = _Flat(actor_shapes), _Flat(critic_shapes), _Flat(critic_shapes)
        self.log_alpha = torch.stack([n.log_alpha.detach() for n in nets]).clone()
        self.log_alpha_grad = torch.zeros_like(self.log_alpha)
        with torch.no_grad():
            for j, n in enumerate(nets):
                for view, mod in self._actor_views(j, n):
                    view.copy_(mod)
                for view, mod in self._critic_views(j, n):
                    view.copy_(mod)
        for j, n in enumerate(nets):  # the modules now read (and load into) the stack
            for view, (m, attr) in self._actor_views(j, n, as_owner=True):
                setattr(m, attr, nn.Parameter(view, requires_grad=False))
            for view, (m, attr) in self._critic_views(j, n, as_owner=True):
                setattr(m, attr, nn.Parameter(view, requires_grad=False))
            n.log_alpha = self.log_alpha[j]
        self.opt_critic = _adam([{"params": [self.critic.data], "lr": self.hp.lr_critic}])
        self.opt_actor = _adam([{"params": [self.actor.data], "lr": self.hp.lr_actor},
                                {"params": [self.log_alpha], "lr": self.hp.lr_alpha}])
        self._ws_key: tuple | None = None
        self._ws: dict = {}

    def _actor_views(self, j: int, n: AgentNets, as_owner: bool = False):
        """(view of the stack, module tensor or (module, attribute)) for every tensor of agent j's actor."""
        p, A = self.actor.p, self.A
        parts = [("inp", p["inp_w"][j].T, p["inp_b"][j, 0])]
        if self.film:
            parts.append(("film.proj", p["film_w"][j].T, p["film_b"][j, 0]))
        parts += [("mid", p["mid_w"][j].T, p["mid_b"][j, 0]),
                  ("mean", p["head_w"][j, :, :A].T, p["head_b"][j, 0, :A]),
                  ("log_std", p["head_w"][j, :, A:].T, p["head_b"][j, 0, A:])]
        for path, w, b in parts:
            m = n.actor.get_submodule(path)
            yield (w, (m, "weight") if as_owner else m.weight)
            yield (b, (m, "bias") if as_owner else m.bias)

    def _critic_views(self, j: int, n: AgentNets, as_owner: bool = False):
        """The same for agent j's twin critics and their targets (twin t at index 2 j + t)."""
        for flat, module in ((self.critic, n.critic), (self.target, n.critic_target)):
            p = flat.p
            for t, q in enumerate((module.q1, module.q2)):
                g = 2 * j + t
                for layer, w, b in ((q[0], p["l0_w"][g].T, p["l0_b"][g, 0]), (q[2], p["l1_w"][g].T, p["l1_b"][g, 0]),
                                    (q[4], p["l2_w"][g], p["l2_b"][g, 0])):
                    yield (w, (layer, "weight") if as_owner else layer.weight)
                    yield (b, (layer, "bias") if as_owner else layer.bias)

    # --- acting -------------------------------------------------------------------------------------------------
    def min_q(self, obs, plans: torch.Tensor, conds) -> torch.Tensor:
        """min(Q1, Q2) of every agent for the same plans: obs [F] (State_e), plans [n, A], conds [J, C] (agent j's
        condition, its weight vector) -> [J, n]; differentiable in the plans (AgentNets.critic.min_q, all agents
        in one batched pass)."""
        J, n = self.J, plans.shape[0]
        c = self.critic.p
        z = torch.cat([torch.as_tensor(obs, dtype=torch.float32).expand(J, n, self.F),
                       plans.float().expand(J, n, self.A),
                       torch.as_tensor(conds, dtype=torch.float32)[:, None].expand(J, n, self.C)], dim=-1)
        z = z[:, None].expand(J, 2, n, z.shape[-1]).reshape(2 * J, n, z.shape[-1])
        h = torch.relu(torch.baddbmm(c["l0_b"], z, c["l0_w"]))
        h = torch.relu(torch.baddbmm(c["l1_b"], h, c["l1_w"]))
        q = (torch.bmm(h, _t(c["l2_w"])) + c["l2_b"]).view(J, 2, n)
        return torch.minimum(q[:, 0], q[:, 1])

    # --- learning -----------------------------------------------------------------------------------------------
    def _workspace(self, J: int, B: int, din: int) -> dict:
        """Buffers for one update, allocated once and reused: a fresh buffer per update costs more than the
        arithmetic (page faults, cache misses) at these sizes."""
        key = (J, B, din)
        if self._ws_key != key:
            G, H, A, Ha = 2 * J, self.critic.p["l1_w"].shape[-1], self.A, self.Ha
            shapes = {"zz": (G, B, din), "h0": (G, B, H), "h1": (G, B, H), "d0": (G, B, H), "d1": (G, B, H),
                      "q": (G, B, 1), "dq": (G, B, 1), "dx": (G, B, A), "hi": (J, B, Ha), "fb": (J, B, 2 * Ha),
                      "g1": (J, B, Ha), "hf": (J, B, Ha), "hm": (J, B, Ha), "hd": (J, B, 2 * A), "ls": (J, B, A),
                      "std": (J, B, A), "u": (J, B, A), "t": (J, B, A), "tmp": (J, B, A),
                      "plan": (J, B, A), "dplan": (J, B, A), "dhd": (J, B, 2 * A), "dam": (J, B, Ha),
                      "dhf": (J, B, Ha), "dfb": (J, B, 2 * Ha), "logp": (J, B)}
            self._ws = {k: torch.empty(v) for k, v in shapes.items()}
            self._ws_key = key
        return self._ws

    def _logp_base(self, noise: torch.Tensor) -> torch.Tensor:
        """The part of a squashed sample's log-probability free of the networks: sum(-noise^2 / 2) - A (log(2 pi)
        / 2 + 2 log 2 + log(action scale))."""
        return noise.square().sum(-1).mul_(-0.5).sub_(
            self.A * (0.5 * math.log(2 * math.pi) + 2.0 * math.log(2.0) + math.log(self.hp.action_scale)))

    def _next_value(self, next_obs: torch.Tensor, cond: torch.Tensor, noise: torch.Tensor) -> tuple:
        """(min(Q1', Q2')(s', a'), log pi(a'|s')) [J, B] for a' sampled by each agent's actor in the next state
        with `noise` (SAC.update's `self.act(next_obs, cond)` then `critic_target.min_q`), target critics."""
        a, c, A, Ha = self.actor.p, self.target.p, self.A, self.Ha
        J, B, _ = next_obs.shape
        hi = torch.relu(torch.baddbmm(a["inp_b"], next_obs, a["inp_w"]))
        if self.film:
            fb = torch.baddbmm(a["film_b"], torch.cat([cond, next_obs], dim=-1), a["film_w"])
            hi = (1.0 + fb[..., :Ha]) * hi + fb[..., Ha:]
        hd = torch.baddbmm(a["head_b"], torch.relu(torch.baddbmm(a["mid_b"], hi, a["mid_w"])), a["head_w"])
        ls = hd[..., A:].clamp(LOG_STD_MIN, LOG_STD_MAX)
        u = hd[..., :A] + ls.exp() * noise
        logp = (self._logp_base(noise) - ls.sum(-1) + 2.0 * u.sum(-1)
                + 2.0 * torch.nn.functional.softplus(-2.0 * u).sum(-1))
        plan = torch.softmax((self.hp.action_scale * torch.tanh(u)).view(J, B, -1, self.plan_shape[-1]), dim=-1)
        z = torch.cat([next_obs, plan.reshape(J, B, A), cond], dim=-1)
        z = z[:, None].expand(J, 2, B, z.shape[-1]).reshape(2 * J, B, z.shape[-1])
        h = torch.relu(torch.baddbmm(c["l0_b"], z, c["l0_w"]))
        h = torch.relu(torch.baddbmm(c["l1_b"], h, c["l1_w"]))
        q = (torch.bmm(h, _t(c["l2_w"])) + c["l2_b"]).view(J, 2, B)
        return torch.minimum(q[:, 0], q[:, 1]), logp

    @torch.no_grad()
    def update(self, z: torch.Tensor, co: torch.Tensor, obs: torch.Tensor, rew: torch.Tensor,
               noise: torch.Tensor, logp_base: torch.Tensor, nxt: dict | None = None) -> None:
        """One SAC update of every agent on its own batch of B transitions.

        :param z: [J, B, F + A + C] the critics' input [obs, x, cond] (x: the plan executed)
        :param co: [J, B, C + F] the FiLM input [cond, obs]
        :param obs: [J, B, F]
        :param rew: [J, B] rewards
        :param noise: [J, B, A] each agent's actor sampling noise of this update
        :param logp_base: [J, B] the part of the sample's log-probability that does not depend on the actor
            (`_logp_base`)
        :param nxt: the next states for the bootstrapped target (`td_target`): {"next_obs": [J, B, F], "done":
            [J, B], "cond": [J, B, C], "noise": [J, B, A] the next action's sampling noise}; None: target = r
        """
        hp, F, A, Ha = self.hp, self.F, self.A, self.Ha
        J, B = rew.shape
        if nxt is not None:
            next_q, next_logp = self._next_value(nxt["next_obs"], nxt["cond"], nxt["noise"])
            rew = td_target(rew, hp.gamma, nxt["done"], next_q, next_logp, self.log_alpha.exp()[:, None])
        w = self._workspace(J, B, z.shape[-1])
        c, gc = self.critic.p, self.critic.g
        zz, h0, h1, d0, d1, q, dq = w["zz"], w["h0"], w["h1"], w["d0"], w["d1"], w["q"], w["dq"]
        zz.view(J, 2, B, -1).copy_(z[:, None])  # the critics' input, once per twin

        # critic step: loss_q = mean((Q1 - r)^2) + mean((Q2 - r)^2) per agent
        torch.baddbmm(c["l0_b"], zz, c["l0_w"], out=h0).clamp_min_(0.0)
        torch.baddbmm(c["l1_b"], h0, c["l1_w"], out=h1).clamp_min_(0.0)
        torch.bmm(h1, _t(c["l2_w"]), out=q).add_(c["l2_b"])
        torch.sub(q.view(J, 2, B), rew[:, None], out=dq.view(J, 2, B)).mul_(2.0 / B)
        torch.sum(dq, 1, keepdim=True, out=gc["l2_b"])
        torch.bmm(_t(dq), h1, out=gc["l2_w"])
        _relu_grad_(torch.mul(dq, c["l2_w"], out=d1), h1)
        torch.bmm(_t(h0), d1, out=gc["l1_w"])
        torch.sum(d1, 1, keepdim=True, out=gc["l1_b"])
        _relu_grad_(torch.bmm(d1, _t(c["l1_w"]), out=d0), h0)
        torch.bmm(_t(zz), d0, out=gc["l0_w"])
        torch.sum(d0, 1, keepdim=True, out=gc["l0_b"])
        self.critic.data.grad = self.critic.grad  # (set at every step: a copied or unpickled stack keeps no .grad)
        self.opt_critic.step()

        # actor step: loss_pi = mean(alpha logp - min(Q1, Q2)(obs, plan(a), cond)) with the updated critics and
        # alpha from before this update's temperature step; temperature: loss = -mean(log_alpha (logp + H_target))
        a, ga = self.actor.p, self.actor.g
        coef = (self.log_alpha.exp() / B)[:, None, None]  # d loss_pi / d logp = alpha / B
        hi, hf, hm, hd, tmp = w["hi"], w["hf"], w["hm"], w["hd"], w["tmp"]
        torch.baddbmm(a["inp_b"], obs, a["inp_w"], out=hi).clamp_min_(0.0)
        if self.film:  # hf = (1 + gamma) hi + beta, [gamma, beta] = FiLM([cond, obs])
            fb, g1 = w["fb"], w["g1"]
            torch.baddbmm(a["film_b"], co, a["film_w"], out=fb)
            torch.add(fb[..., :Ha], 1.0, out=g1)
            torch.addcmul(fb[..., Ha:], g1, hi, out=hf)
        else:
            hf = hi
        torch.baddbmm(a["mid_b"], hf, a["mid_w"], out=hm).clamp_min_(0.0)
        torch.baddbmm(a["head_b"], hm, a["head_w"], out=hd)
        mean, log_std = hd[..., :A], hd[..., A:]
        # the tanh-squashed Gaussian sample and its log-probability (schedulers.rl.sac.squashed_sample), with
        # (u - mean) / std = noise, tanh(u) = 2 sigmoid(2 u) - 1 (torch's tanh is several times slower) and
        # log pi = base - sum(log_std) + 2 sum(u) + 2 sum(softplus(-2 u)), base: the terms free of the networks
        ls, std, u, t, logp = w["ls"], w["std"], w["u"], w["t"], w["logp"]
        torch.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX, out=ls)
        torch.exp(ls, out=std)
        torch.addcmul(mean, std, noise, out=u)
        torch.sigmoid(torch.mul(u, 2.0, out=tmp), out=t)
        torch.ops.aten.softplus.out(tmp.neg_(), 1, 20, out=tmp)
        t.mul_(2.0).sub_(1.0)
        torch.sub(logp_base, ls.sum(-1), out=logp).add_(u.sum(-1), alpha=2.0).add_(tmp.sum(-1), alpha=2.0)
        # plan = softmax over datacenters of the logits scale x t (bounded by the scale: no max to subtract)
        plan = w["plan"]
        torch.mul(t, hp.action_scale, out=plan).exp_()
        pv = plan.view(J, B, -1, self.plan_shape[-1])
        pv.div_(pv.sum(-1, keepdim=True))
        zz.view(J, 2, B, -1)[..., F:F + A].copy_(plan[:, None])
        torch.baddbmm(c["l0_b"], zz, c["l0_w"], out=h0).clamp_min_(0.0)
        torch.baddbmm(c["l1_b"], h0, c["l1_w"], out=h1).clamp_min_(0.0)
        q2 = torch.bmm(h1, _t(c["l2_w"]), out=q).add_(c["l2_b"]).view(J, 2, B)
        # torch.minimum's gradient: all to the smaller twin, half each on a tie; d loss_pi / d min = -1 / B
        first = torch.where(q2[:, 0] == q2[:, 1], 0.5, (q2[:, 0] < q2[:, 1]).to(q.dtype))
        dq2 = dq.view(J, 2, B)
        torch.mul(first, -1.0 / B, out=dq2[:, 0])
        torch.sub(first, 1.0, out=dq2[:, 1]).mul_(1.0 / B)
        _relu_grad_(torch.mul(dq, c["l2_w"], out=d1), h1)
        _relu_grad_(torch.bmm(d1, _t(c["l1_w"]), out=d0), h0)
        dplan = w["dplan"]
        torch.sum(torch.bmm(d0, _t(c["l0_w"][:, F:F + A]), out=w["dx"]).view(J, 2, B, A), 1, out=dplan)
        dv = dplan.view_as(pv)  # softmax's backward: plan (dplan - sum(dplan plan)), in place
        dv.sub_(torch.mul(dv, pv, out=tmp.view_as(pv)).sum(-1, keepdim=True)).mul_(pv)
        # d/du of the critic term (a = scale tanh u) and of alpha logp (d logp / d mean = 2 tanh u); d/d log_std
        # of alpha logp = alpha (2 tanh(u) noise std - 1); log_std's clamp passes the gradient inside its bounds
        dhd = w["dhd"]
        gu, gls = dhd[..., :A], dhd[..., A:]
        torch.mul(t, t, out=tmp).mul_(-1.0).add_(1.0).mul_(dplan).mul_(hp.action_scale)
        torch.addcmul(tmp, t, coef.expand_as(t), value=2.0, out=gu)
        torch.mul(gu, noise, out=gls).mul_(std).sub_(coef)
        lo, hi_ = torch.aminmax(log_std)
        if lo < LOG_STD_MIN or hi_ > LOG_STD_MAX:
            gls.mul_((log_std >= LOG_STD_MIN) & (log_std <= LOG_STD_MAX))
        torch.bmm(_t(hm), dhd, out=ga["head_w"])
        torch.sum(dhd, 1, keepdim=True, out=ga["head_b"])
        dam = _relu_grad_(torch.bmm(dhd, _t(a["head_w"]), out=w["dam"]), hm)
        torch.bmm(_t(hf), dam, out=ga["mid_w"])
        torch.sum(dam, 1, keepdim=True, out=ga["mid_b"])
        dhf = torch.bmm(dam, _t(a["mid_w"]), out=w["dhf"])
        if self.film:
            dfb = w["dfb"]
            torch.mul(dhf, hi, out=dfb[..., :Ha])
            dfb[..., Ha:].copy_(dhf)
            torch.bmm(_t(co), dfb, out=ga["film_w"])
            torch.sum(dfb, 1, keepdim=True, out=ga["film_b"])
            dhf.mul_(g1)
        _relu_grad_(dhf, hi)
        torch.bmm(_t(obs), dhf, out=ga["inp_w"])
        torch.sum(dhf, 1, keepdim=True, out=ga["inp_b"])
        torch.mean(logp.add_(hp.target_entropy), -1, out=self.log_alpha_grad).neg_()
        self.actor.data.grad, self.log_alpha.grad = self.actor.grad, self.log_alpha_grad
        self.opt_actor.step()

        self.target.data.lerp_(self.critic.data, hp.tau)  # Polyak averaging of the target critics

    def learn(self, batches: list) -> None:
        """Run the updates drawn for every agent: batches[j] = {"obs": [U, B, F], "x": [U, B, A], "rew": [U, B],
        "cond": [U, B, C], "noise": [U, B, A]} and, for bootstrapped targets, "next_obs": [U, B, F], "done":
        [U, B], "noise_next": [U, B, A] (numpy arrays or tensors, float32), U the same for all agents."""
        d = {k: torch.stack([torch.as_tensor(b[k]) for b in batches], dim=1) for k in batches[0]}
        z = torch.cat([d["obs"], d["x"], d["cond"]], dim=-1)
        co = torch.cat([d["cond"], d["obs"]], dim=-1)
        base = self._logp_base(d["noise"])
        boot = "noise_next" in d and self.hp.gamma > 0
        for u in range(len(z)):
            nxt = {"next_obs": d["next_obs"][u], "done": d["done"][u], "cond": d["cond"][u],
                   "noise": d["noise_next"][u]} if boot else None
            self.update(z[u], co[u], d["obs"][u], d["rew"][u], d["noise"][u], base[u], nxt)
