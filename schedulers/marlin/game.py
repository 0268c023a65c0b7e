"""MARLIN phase 2 (paper Algorithm 2; SPEC 9): the competitive-proposals game that blends the agents' plans.

Owns: `phase2` (utilities, utility-weighted blend, critic weights from capital, gradient ascent on Q_tot with
projection, vetoes), `capital_update` (Perf, Bonus, the capital EMA) and `project_simplex`.

Interpretations where the paper is silent or ill-posed (each is also noted at the line that implements it):
- Utilities q_j = Q_j(a_j*) are critic values and can be negative, so q_j / q_tot is not a weight. We use
  softmax(q (1 - gamma) / marlin_blend_temperature): positive, summing to 1, and ordered like the utilities.
  The critics' targets are discounted returns (marlin_gamma), ~ 1 / (1 - gamma) = 20 epochs of reward; the
  factor (1 - gamma) puts them back in one epoch's reward units, so the temperature means what it did for
  one-step critics instead of turning small differences between agents' returns into a winner-take-all blend.
  Likewise a veto's relative loss is (q_j - Q_j(a~)) / (|q_j| (1 - gamma)): the plans differ in this epoch's
  reward (the next state's value is the same for both), measured against one epoch's utility.
- Variants: the run's weight vector w_bar (one objective at marlin_variant_dominant, or equal) scales each
  agent's capital into its *effective* capital E_j = C_j x J x w_bar_j (Balanced: E = C, the paper exactly).
  E sets the critic weights (line 6), who may veto (line 12) and how hard (line 15); Q_tot (line 7) is
  sum_j w_bar_j Q_j, which for Balanced is the paper's sum_j Q_j / J. So MinCarbon's consensus leans on the
  carbon agent, and the minor agents (E = 0.4 C < 150) cannot veto it away from low-carbon datacenters.
- Line 5's utility blend and line 6's capital weights both steer the start of the gradient ascent:
  omega_1 = normalize(u * E); lines 8-11 then ascend Q_tot(sum_k omega_k a_k*) w.r.t. omega with torch autograd
  (lr marlin_sgd_lr, marlin_sgd_steps steps), projecting omega onto the probability simplex after each step, so
  the blend stays a convex combination of valid plans (rows non-negative, summing to 1).
- Veto (individual rationality): an agent vetoes only when its utility *drops* by more than delta_thresh
  (delta_j = (Q_j(a_j*) - Q_j(a~)) / |Q_j(a_j*)|); strength min(marlin_veto_max, delta_j x E_j /
  marlin_veto_capital_scale): capital in percent, so 100 = one unit of the paper's ratio.
- Capital (lines 20-24), in percent (SPEC 9): Perf_j = 100 x where the consensus lies on objective j between
  the worst and the best proposal (100 = as good as the best; the paper's ratio divides by zero for the agent
  whose proposal is best), Bonus_j = 100 x (1 - |m_j - m_bar| / |m_j|) clipped to [0, 100]; C_j <- eta C_j +
  (1 - eta)(Perf_j + beta Bonus_j), clipped to [marlin_capital_min, marlin_capital_max]. With beta = 1 the
  fixed point of a well-served agent is up to 200, so the threshold 150 is reachable, and bounded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

TINY = 1e-9  # guards divisions by a zero utility or metric


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of v [J] onto {x >= 0, sum x = 1} (sort-based, Held et al. / Duchi et al.)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    k = np.arange(1, len(v) + 1)
    rho = np.nonzero(u - css / k > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1.0), 0.0)


@dataclass
class GameOutcome:
    """What phase 2 decided in one epoch (for the plan and the per-epoch log)."""

    plan: np.ndarray  # [M, O, D] the consensus a~
    utilities: np.ndarray  # [J] q_j = Q_j(a_j*)
    utility_weights: np.ndarray  # [J] softmax(q / T)
    omega_start: np.ndarray  # [J] omega_1
    omega: np.ndarray  # [J] omega after the gradient steps (the blend weights)
    veto: np.ndarray  # [J] veto strength used by each agent (0 = none)
    delta: np.ndarray  # [J] utility loss of each agent under the pre-veto consensus


def effective_capital(capital: np.ndarray, variant_w: np.ndarray) -> np.ndarray:
    """E_j = C_j x J x w_bar_j: the variant's weights scale each agent's influence (Balanced: E = C)."""
    return capital * len(capital) * variant_w


def phase2(agents: list, obs_vec: np.ndarray, proposals: np.ndarray, capital: np.ndarray, variant_w: np.ndarray,
           params, ablate: frozenset) -> GameOutcome:
    """Algorithm 2 lines 1-18 for proposals [J, M, O, D]; Simulate (line 19) and the capital update (20-24) are
    the caller's (`capital_update`)."""
    J = len(agents)
    shape = proposals.shape[1:]
    P = torch.as_tensor(proposals.reshape(J, -1), dtype=torch.float32)
    wbar = torch.as_tensor(variant_w, dtype=torch.float32)
    E = effective_capital(capital, variant_w)

    stack = getattr(agents[0], "stack", None)
    conds = np.stack([a.w for a in agents]) if stack is not None else None

    def q_all(plans: torch.Tensor) -> torch.Tensor:
        """[J, n]: Q_j of every agent j for plans [n, M*O*D] (differentiable in the plans)."""
        if stack is not None:  # all agents' critics in one batched pass
            return stack.min_q(obs_vec, plans, conds)
        return torch.stack([agents[j].q_value(obs_vec, plans) for j in range(J)])

    with torch.no_grad():
        # lines 1-3: every agent's critic scores its own proposal
        q = torch.diagonal(q_all(P)).double().numpy()
    # lines 4-5: utility shares; softmax, because Q values may be negative; in one epoch's reward units (the
    # critics' targets are discounted returns; see the module docstring)
    per_epoch = 1.0 - params.marlin_gamma
    z = q * per_epoch / params.marlin_blend_temperature
    u = np.exp(z - z.max())
    u = u / u.sum()
    # line 6: critic weights from (effective) capital, joined with the utility shares
    start = u * E
    omega1 = start / start.sum() if start.sum() > 0 else np.full(J, 1.0 / J)

    if "no-blend" in ablate:
        # no blending: the consensus is the variant's own agent's plan, or (Balanced) the equal-weight average
        dom = int(np.argmax(variant_w))
        omega = np.eye(J)[dom] if variant_w[dom] > variant_w.min() else np.full(J, 1.0 / J)
    else:
        omega = omega1.copy()
        if "no-sgd" not in ablate:
            # lines 7-10: gradient ascent on Q_tot(omega) = sum_j w_bar_j Q_j(sum_k omega_k a_k*)
            for _ in range(params.marlin_sgd_steps):
                w = torch.as_tensor(omega, dtype=torch.float32).requires_grad_(True)
                blend = (w[:, None] * P).sum(0, keepdim=True)
                q_tot = (wbar * q_all(blend)[:, 0]).sum()
                (grad,) = torch.autograd.grad(q_tot, w)
                # line 11: back onto the feasible set (convex weights -> a valid plan)
                omega = project_simplex(omega + params.marlin_sgd_lr * grad.double().numpy())
    plan = np.tensordot(omega, proposals, axes=1)

    veto = np.zeros(J)
    delta = np.zeros(J)
    q_plan = None  # every agent's utility of the current plan (recomputed after a veto moved it)
    with torch.no_grad():
        for j in range(J):
            if q_plan is None:
                q_plan = q_all(torch.as_tensor(plan.reshape(1, -1), dtype=torch.float32))[:, 0].double().numpy()
            # line 13: the loss is one-sided (individual rationality: a gain is no reason to veto)
            delta[j] = max(0.0, q[j] - q_plan[j]) / max(abs(q[j]) * per_epoch, TINY)
            # lines 12, 14: enough capital and enough utility loss
            if "no-veto" in ablate or E[j] < params.marlin_capital_threshold or delta[j] <= params.marlin_veto_delta:
                continue
            # line 15: strength grows with the loss and the capital (percent), capped at Veto_max
            veto[j] = min(params.marlin_veto_max, delta[j] * E[j] / params.marlin_veto_capital_scale)
            # line 16: pull the consensus toward the vetoing agent's proposal
            plan = (1.0 - veto[j]) * plan + veto[j] * proposals[j]
            q_plan = None
    plan = plan / plan.sum(axis=-1, keepdims=True)  # float rounding only: a convex mix of valid plans
    return GameOutcome(plan.reshape(shape), q, u, omega1, omega, veto, delta)


def capital_update(capital: np.ndarray, prop_norm: np.ndarray, blend_norm: np.ndarray, params) -> tuple:
    """Algorithm 2 lines 20-24. prop_norm [J, 4]: normalized metrics of each proposal; blend_norm [4]: of the
    consensus (lower is better). Returns (new capital [J], Perf [J], Bonus [J]), all in percent."""
    J = len(capital)
    perf, bonus = np.zeros(J), np.zeros(J)
    for j in range(J):
        on_j = prop_norm[:, j]  # every proposal's value on objective j
        best, worst, mbar, mj = on_j.min(), on_j.max(), blend_norm[j], prop_norm[j, j]
        # line 21: where the consensus lies between the worst and the best proposal on objective j
        perf[j] = 100.0 * (np.clip((worst - mbar) / (worst - best), 0.0, 1.0) if worst - best > TINY else 1.0)
        # line 22: how close the consensus stays to what agent j achieved on its own objective
        bonus[j] = 100.0 * np.clip(1.0 - abs(mj - mbar) / max(abs(mj), TINY), 0.0, 1.0)
    # line 23: bounded EMA of Perf + beta Bonus
    eta = params.marlin_capital_eta
    new = eta * capital + (1.0 - eta) * (perf + params.marlin_bonus_beta * bonus)
    return np.clip(new, params.marlin_capital_min, params.marlin_capital_max), perf, bonus
