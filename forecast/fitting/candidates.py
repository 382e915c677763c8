"""Candidate models of one skill: a law, its accuracy floor and (for the two-step chain) the
intermediate it goes through. `forecast.fitting.estimate` fits them; this module holds what a fitted
candidate is and how it predicts.

A candidate predicts accuracy at any (N parameters, D tokens); FLOPs are C = κ·N·D with κ
the group's measured FLOPs per parameter-token (6 when runs give no FLOPs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from forecast.fitting.laws import ACCURACY_LAWS, LOSS_LINK, TASK_LOSS_LAW, Law
from forecast.fitting.observations import OWN_PROB, Observations
from forecast.fitting.optimize import DTYPE
from forecast.quantities import FLOPS_PER_PARAM_TOKEN

TWO_STEP = "two_step"
CHAIN: tuple[tuple[str, Law], ...] = (("loss", TASK_LOSS_LAW), ("link", LOSS_LINK))
"""The two-step chain's stages, in order, with the prefix of their parameters' names:
task loss L(N, D) (one exponent for parameters and tokens), then the link from that loss to
accuracy."""


def chain_parts(theta: np.ndarray | torch.Tensor) -> list:
    """θ of a two-step candidate (..., P) split into each stage's columns, by declaration."""
    parts, start = [], 0
    for _, law in CHAIN:
        parts.append(theta[..., start:start + law.size])
        start += law.size
    return parts


@dataclass(frozen=True)
class Scales:
    """Reference scales that make every law's parameters O(1); stored with the fit."""

    params: float  # N_ref, parameters (geometric mean of the pilot sizes)
    tokens: float  # D_ref, training tokens (geometric mean over fitted checkpoints)
    flops: float  # C_ref, training FLOPs (geometric mean over fitted checkpoints)
    flops_per_param_token: float  # κ in C = κ·N·D (6 for the 6ND rule)

    @classmethod
    def of(cls, obs: Observations) -> Scales:
        kappa = float(np.median(obs.flops / (obs.params * obs.tokens)))
        return cls(
            params=float(np.exp(np.mean(np.log(np.unique(obs.params))))),
            tokens=float(np.exp(np.mean(np.log(obs.tokens)))),
            flops=float(np.exp(np.mean(np.log(obs.flops)))),
            flops_per_param_token=kappa if math.isfinite(kappa) and kappa > 0 else FLOPS_PER_PARAM_TOKEN,
        )

    def to_json(self) -> dict[str, float]:
        return {"params": self.params, "tokens": self.tokens, "flops": self.flops,
                "flops_per_param_token": self.flops_per_param_token}

    @classmethod
    def from_json(cls, data: dict) -> Scales:
        return cls(params=float(data["params"]), tokens=float(data["tokens"]), flops=float(data["flops"]),
                   flops_per_param_token=float(data["flops_per_param_token"]))

    def inputs(self, params: np.ndarray, tokens: np.ndarray, flops: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """Normalised law inputs for N parameters, D tokens (and C FLOPs, default κ·N·D)."""
        params, tokens = np.broadcast_arrays(np.asarray(params, float), np.asarray(tokens, float))
        flops = self.flops_per_param_token * params * tokens if flops is None else np.asarray(flops, float)
        as_row = lambda a: torch.as_tensor(np.atleast_2d(a), dtype=DTYPE)  # noqa: E731
        return {
            "x_params": as_row(np.log(params / self.params)),
            "x_tokens": as_row(np.log(tokens / self.tokens)),
            "x_flops": as_row(np.log(flops / self.flops)),
        }


@dataclass(frozen=True)
class Spec:
    """Which candidate: `law` (an accuracy law or "two_step"), `floor` ("chance" or
    "estimated"), `via` (the two-step intermediate: "own" task loss or a metric name)."""

    law: str
    floor: str = "chance"
    via: str | None = None

    @property
    def key(self) -> str:
        via = f",via={self.via}" if self.via else ""
        return f"{self.law}[floor={self.floor}{via}]"

    @property
    def path(self) -> str:
        """Which path the candidate's number takes: "direct" (parameters, tokens, FLOPs →
        accuracy) or, for the two-step chain, "via" its intermediate: "via task loss" (the
        skill's own loss: bits per byte, NLL of the answer), "via answer probability"
        (−ln P(correct answer)) or "via <name>" (another logged loss)."""
        if self.law != TWO_STEP:
            return "direct"
        return "via " + {"own": "task loss", OWN_PROB: "answer probability"}.get(self.via or "own", self.via)

    @property
    def param_names(self) -> tuple[str, ...]:
        if self.law == TWO_STEP:
            return tuple(f"{prefix}.{n}" for prefix, law in CHAIN for n in law.names)
        return ACCURACY_LAWS[self.law].names

    @property
    def amp_name(self) -> str | None:
        """The plateau parameter's name, or None for laws that rise all the way to the top."""
        names = self.param_names
        return next((n for n in names if n.split(".")[-1] == "amp"), None)


@dataclass(frozen=True, eq=False)
class CandidateFit:
    """A fitted candidate: point estimate `theta` (P,), lmfit standard errors, bootstrap
    `draws` (B, P), the floor used and, for two-step, the loss standardisation."""

    spec: Spec
    floor: float
    top: float
    scales: Scales
    theta: np.ndarray
    stderr: np.ndarray
    draws: np.ndarray
    converged: bool
    at_bound: tuple[str, ...]
    loss_ref: float = 0.0  # two-step: L_ref and L_scale standardise the intermediate loss
    loss_scale: float = 1.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    least: float | None = None  # the least plateau allowed (what the pilots reached); None: the floor
    offset: float = 0.0  # accuracy added to every prediction: a variant of a task fitted on the task's
    # average (`forecast.fitting.tasks`), clipped to [0, 1]

    @property
    def least_plateau(self) -> float:
        return self.floor if self.least is None else self.least

    def accuracy(self, theta: np.ndarray, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Accuracy (B, M) for parameter rows `theta` (B, P) at N = `params`, D = `tokens`."""
        acc = predict_accuracy(self.spec, np.atleast_2d(theta), self.floor, self.top, self.scales,
                               params, tokens, self.loss_ref, self.loss_scale, self.least_plateau)
        return np.clip(acc + self.offset, 0.0, 1.0) if self.offset else acc

    def plateau(self, theta: np.ndarray) -> np.ndarray:
        """Accuracy the law rises to, per parameter row (B,): least + amp·(top − least), the
        top itself for laws without a plateau parameter, the level for the level law."""
        theta = np.atleast_2d(theta)
        if self.spec.law == "level":
            return np.clip(theta[:, 0] + self.offset, 0.0, 1.0)
        name = self.spec.amp_name
        if name is None:
            return np.full(len(theta), self.top)
        amp = theta[:, self.spec.param_names.index(name)]
        return np.clip(self.least_plateau + amp * (self.top - self.least_plateau) + self.offset, 0.0, 1.0)

    def param(self, name: str, theta: np.ndarray | None = None) -> np.ndarray:
        """Parameter `name` (as in `spec.param_names`) of each row of `theta` (default: the
        point estimate)."""
        rows = np.atleast_2d(self.theta if theta is None else theta)
        return rows[:, self.spec.param_names.index(name)]


def predict_accuracy(spec: Spec, theta: np.ndarray, floor: float, top: float, scales: Scales,
                     params: np.ndarray, tokens: np.ndarray, loss_ref: float = 0.0,
                     loss_scale: float = 1.0, least: float | None = None) -> np.ndarray:
    """Evaluate a candidate: accuracy of shape (B, M) at N parameters and D tokens."""
    x = scales.inputs(params, tokens)
    x["floor"] = torch.tensor(floor, dtype=DTYPE)
    x["top"] = torch.tensor(top, dtype=DTYPE)
    x["least"] = torch.tensor(floor if least is None else least, dtype=DTYPE)
    t = torch.as_tensor(theta, dtype=DTYPE)
    with torch.no_grad():
        if spec.law == TWO_STEP:
            loss_theta, link_theta = chain_parts(t)
            x["loss"] = (TASK_LOSS_LAW(loss_theta, x) - loss_ref) / loss_scale
            return LOSS_LINK(link_theta, x).numpy()
        return ACCURACY_LAWS[spec.law](t, x).numpy()


def candidate_specs(obs: Observations, laws: Sequence[str], via: Sequence[str] | None,
                    floors: dict[str, float]) -> list[Spec]:
    """Every candidate that applies to these observations (the level once, on the chance floor)."""
    specs = []
    n_sizes = len(obs.sizes)
    for law in dict.fromkeys((*laws, "level")):  # the no-trend level always stands
        for floor in (floors if law != "level" else ["chance"]):
            if law == TWO_STEP:
                if via is not None:
                    vias = [v for v in via if v in obs.losses or (v == obs.skill and "own" in obs.losses)]
                    vias = ["own" if v == obs.skill else v for v in vias]
                elif "own" in obs.losses or "own_prob" in obs.losses:
                    vias = [v for v in ("own", "own_prob") if v in obs.losses]
                else:
                    vias = sorted(obs.losses)
                specs += [Spec(law, floor, via) for via in vias]
            elif law == "grok_scaling":
                if n_sizes >= 2 and len(obs) >= 2 * 5:
                    specs.append(Spec(law, floor))
            elif law == "level" or len(obs) >= len(ACCURACY_LAWS[law].params) + 1:
                specs.append(Spec(law, floor))
    return specs
