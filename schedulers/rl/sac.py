"""Soft actor-critic (Haarnoja et al. 2018) for plan-producing agents: the update every SAC learner shares.

Owns: the tanh-squashed Gaussian sampling of an action (with its log-probability), twin Q critics, and `SAC`,
which holds an actor, twin critics with Polyak-averaged targets, the automatically tuned entropy temperature
and their optimizers, and performs one gradient update on a batch.

The actor is any module with `forward(obs, cond) -> (mean, log_std)`; `SAC.act` turns that into an action in
[-scale, scale]^A and `to_critic` maps the action to what the critics consume (a plan, for schedulers), so the
critics can also score actions that no actor produced (e.g. MARLIN's blended plans). Every transition carries a
condition vector `cond` (a goal / weight vector), so relabelled (HER) transitions train the same networks.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from schedulers.rl.nets import mlp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # numerical guard on the Gaussian's scale (standard SAC bounds)


def squashed_sample(mean: torch.Tensor, log_std: torch.Tensor, scale: float, generator: torch.Generator | None,
                    deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """a = scale x tanh(u), u ~ N(mean, std); returns (a, log pi(a)) with the tanh change of variables."""
    log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
    std = log_std.exp()
    if deterministic:
        u = mean
    else:
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        u = mean + std * noise
    t = torch.tanh(u)
    logp = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    # log |d a / d u| = log(scale) + log(1 - tanh^2 u); the stable form of log(1 - tanh^2)
    logp = logp - (2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))).sum(-1)
    logp = logp - mean.shape[-1] * math.log(scale)
    return scale * t, logp


class TwinQ(nn.Module):
    """Two independent Q(obs, x, cond) MLPs (clipped double-Q)."""

    def __init__(self, obs_size: int, x_size: int, cond_size: int, hidden: int) -> None:
        super().__init__()
        sizes = [obs_size + x_size + cond_size, hidden, hidden, 1]
        self.q1, self.q2 = mlp(sizes), mlp(sizes)

    def forward(self, obs: torch.Tensor, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.cat([obs, x, cond], dim=-1)
        return self.q1(z).squeeze(-1), self.q2(z).squeeze(-1)

    def min_q(self, obs: torch.Tensor, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        q1, q2 = self(obs, x, cond)
        return torch.minimum(q1, q2)


@dataclass(frozen=True)
class SACHyper:
    """SAC hyperparameters (the caller reads them from Config).

    :param lr_actor, lr_critic, lr_alpha: Adam learning rates
    :param gamma: discount of the bootstrapped target (unused for transitions with done = 1)
    :param tau: Polyak rate of the target critics
    :param alpha_init: initial entropy temperature
    :param target_entropy: the entropy the temperature is tuned toward (SAC's default is -action size)
    :param action_scale: actions lie in [-action_scale, action_scale]
    """

    lr_actor: float
    lr_critic: float
    lr_alpha: float
    gamma: float
    tau: float
    alpha_init: float
    target_entropy: float
    action_scale: float


class SAC:
    """One SAC learner: actor, twin critics (+ targets), entropy temperature, optimizers.

    :param actor: module, forward(obs, cond) -> (mean, log_std)
    :param critic: TwinQ over (obs, to_critic(action), cond)
    :param to_critic: differentiable map action -> critic input (identity for plain continuous control)
    :param hp: SACHyper
    """

    def __init__(self, actor: nn.Module, critic: TwinQ, to_critic: Callable[[torch.Tensor], torch.Tensor],
                 hp: SACHyper) -> None:
        self.actor, self.critic, self.to_critic, self.hp = actor, critic, to_critic, hp
        self.critic_target = _frozen_copy(critic)
        self.log_alpha = torch.tensor(math.log(hp.alpha_init), requires_grad=True)
        self.opt_actor = torch.optim.Adam(actor.parameters(), lr=hp.lr_actor)
        self.opt_critic = torch.optim.Adam(critic.parameters(), lr=hp.lr_critic)
        self.opt_alpha = torch.optim.Adam([self.log_alpha], lr=hp.lr_alpha)

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())

    def act(self, obs: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None,
            deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.actor(obs, cond)
        return squashed_sample(mean, log_std, self.hp.action_scale, generator, deterministic)

    def update(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """One gradient step of critics, actor and temperature on a batch of tensors
        obs [B, F], x [B, X] (critic input of the executed action), rew [B], cond [B, C], and optionally
        next_obs [B, F], done [B] (absent: one-step targets, done = 1)."""
        hp = self.hp
        obs, x, rew, cond = batch["obs"], batch["x"], batch["rew"], batch["cond"]
        target = rew
        if "next_obs" in batch and hp.gamma > 0:
            with torch.no_grad():
                a2, logp2 = self.act(batch["next_obs"], cond, generator)
                q_next = self.critic_target.min_q(batch["next_obs"], self.to_critic(a2), cond)
                target = rew + hp.gamma * (1.0 - batch["done"]) * (q_next - self.alpha * logp2)
        q1, q2 = self.critic(obs, x, cond)
        loss_q = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
        self.opt_critic.zero_grad()
        loss_q.backward()
        self.opt_critic.step()

        a, logp = self.act(obs, cond, generator)
        q_pi = self.critic.min_q(obs, self.to_critic(a), cond)
        loss_pi = (self.alpha * logp - q_pi).mean()
        self.opt_actor.zero_grad()
        loss_pi.backward()
        self.opt_actor.step()

        loss_alpha = -(self.log_alpha * (logp.detach() + hp.target_entropy)).mean()
        self.opt_alpha.zero_grad()
        loss_alpha.backward()
        self.opt_alpha.step()

        with torch.no_grad():
            for p, pt in zip(self.critic.parameters(), self.critic_target.parameters()):
                pt.mul_(1.0 - hp.tau).add_(hp.tau * p)
        return {"loss_q": float(loss_q.detach()), "loss_pi": float(loss_pi.detach()), "alpha": self.alpha}

    # --- checkpoints -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach().clone()}

    def load_state_dict(self, d: dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.critic.load_state_dict(d["critic"])
        self.critic_target.load_state_dict(d["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(d["log_alpha"])


def _frozen_copy(module: nn.Module) -> nn.Module:
    m = copy.deepcopy(module)
    for p in m.parameters():
        p.requires_grad_(False)
    return m
