"""Planted skills for ladder design: the laws simulated pilots are drawn from, and the runs a
ladder would produce under them.

A design is judged on skills whose law is known because it was planted. Two sources:

- `default_prior` (for a team with no fits yet): per skill, half of the planted laws of each
  of two families, both placing the transition anywhere from 300× before to 30× after the
  target's own compute (`GROK_WINDOW`, log-uniform; from skills the pilots will have
  grokked to ones the target will not reach), with a plateau 60–95% of the way from chance
  to 1 (`PLATEAU`) and chance from the skill's name (`forecast.runs.benchmarks`; 0 when unknown):
  * **grok-point laws** (`forecast.runs.synthetic.GrokTruth`): a sigmoid in log tokens whose
    midpoint falls with size as D½(N) = D½(N_T)·(N/N_T)^−γ, γ ~ U(0.3, 1.3) (`GAMMA`; below 1
    smaller models trained longer reach the transition with less compute, above 1 larger
    ones do), steepness k per e-fold of tokens log-uniform on [0.8, 3] (`STEEPNESS`);
    task loss −ln σ(k·x) + 0.1 (`GrokTruth.task_loss`);
  * **loss-threshold laws** (the view of Bhagia et al. 2024's model ladders and of
    emergence as a loss threshold): the language-model loss follows Chinchilla's
    L(N, D) = E + A·N^−α + B·D^−β (`CHINCHILLA`, the README's reference fit), and accuracy is
    a sigmoid in it, chance + (plateau − chance)·σ(s·(L* − L)), with the threshold L* the
    loss at the planted compute and s set so that accuracy rises from 10% to 90% of its
    span over 4.4/k_C e-folds of compute along the target's tokens per parameter, k_C
    log-uniform on [0.5, 2] (`COMPUTE_STEEPNESS`: one to four decades); task loss L itself.
  Every run's curve is also shifted by a seed-to-seed scatter of `SEED_SCATTER` e-folds of
  tokens.
- `fitted_prior`: samples of fitted skills' forecast surfaces
  (`forecast.forecasting.samples.SurfaceSamples`: bootstrap draws of the weighted candidate laws, moved
  by their calibrated extrapolation drift), one planted law per sample: the laws the team's
  existing fits find plausible, uncertainty included.

`simulate_runs` makes the runs a ladder would give: per run, `checkpoints` evaluations
log-spaced from 1/`CHECKPOINT_RANGE` of its tokens to the end, accuracy binomial over
`n_eval` items, and (with `task_loss`) a continuous task loss, −ln Q + 0.1 with Q the
accuracy's share of its rise for a fitted law (the families above have their own), with 1%
noise: the continuous metric that moves while accuracy still sits at chance.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.runs.benchmarks import chance_for
from forecast.design.space import LadderPlan
from forecast.fitting.results import SkillFit
from forecast.runs.model import Recipe, Run, make_series
from forecast.forecasting.samples import SurfaceSamples

GROK_WINDOW = (1 / 300, 30.0)
"""A planted transition's midpoint lies between these multiples of the target's compute
(log-uniform; for a grok law, of its tokens at the target's size)."""
GAMMA = (0.3, 1.3)
"""Range of γ in D½(N) ∝ N^−γ: larger models need fewer tokens to grok."""
STEEPNESS = (0.8, 3.0)
"""Range (log-uniform) of the sigmoid's steepness k per e-fold of tokens (k = 1: 10–90% over 4.4
e-folds, ~2 decades of tokens; k = 3: under one decade)."""
COMPUTE_STEEPNESS = (0.5, 2.0)
"""Range (log-uniform) of a loss-threshold law's steepness per e-fold of compute."""
CHINCHILLA = {"E": 1.817, "A": 477.8, "B": 2143.0, "alpha": 0.3473, "beta": 0.3672}
"""L(N, D) of the loss-threshold laws: the README's fit to Epoch's Chinchilla points (nats)."""
PLATEAU = (0.6, 0.95)
"""Plateau as a share of the way from chance to 1."""
SEED_SCATTER = 0.1
"""Seed-to-seed scatter of a run's curve: its tokens are read as D·e^ε, ε ~ N(0, this)."""
LOSS_NOISE = 0.01
"""Relative noise of a logged task loss (as `forecast.runs.synthetic`)."""
CHECKPOINTS = 8
"""Evaluations per simulated run."""
CHECKPOINT_RANGE = 30.0
"""A run is evaluated from 1/this of its tokens to its end, log-spaced."""
N_EVAL = 1000
"""Items per benchmark evaluation (binomial noise): GSM8K has 1.3k, ARC-Challenge 1.2k."""
FAMILY = "design"
"""Family of simulated runs."""


@dataclass(frozen=True, eq=False)
class Planted:
    """S planted skills, evaluated together: `accuracy(params, tokens)` and `loss` take (M,)
    arrays and give (S, M). `skills[s]` is the user's skill the s-th planted law stands for."""

    skills: tuple[str, ...]
    chance: np.ndarray  # (S,)
    top: np.ndarray  # (S,) best attainable accuracy
    kind: str  # "default" | "fitted"
    grok: dict[str, np.ndarray] | None = None  # per skill: family (1: loss threshold), plateau; grok laws: d_half
    # (tokens at the target's size), gamma, k; loss-threshold laws: threshold (nats), slope (per nat)
    n_ref: float = 1.0  # parameters at which d_half is given (the target's)
    surfaces: tuple[tuple[SurfaceSamples, np.ndarray], ...] = ()  # per fitted skill: samples and rows here

    def __len__(self) -> int:
        return len(self.skills)

    @property
    def names(self) -> tuple[str, ...]:
        """Series names of the planted skills in simulated runs: `<skill>~<index>`."""
        return tuple(f"{s}~{i}" for i, s in enumerate(self.skills))

    def accuracy(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Model accuracy (S, M) at `params` (M,) and `tokens` (M,), or (S, M) with one row
        per planted skill (each read at its own tokens)."""
        params, tokens = self._inputs(params, tokens)
        if self.grok is not None:
            g = self.grok
            logit = np.where(g["family"][:, None] == 1, self._z(params, tokens), g["k"][:, None] * self._x(params, tokens))
            rise = 0.5 * (1 + np.tanh(0.5 * logit))  # σ(logit), without overflow
            return self.chance[:, None] + (g["plateau"] - self.chance)[:, None] * rise
        out = np.empty((len(self), params.shape[1]))
        for samples, rows in self.surfaces:
            out[rows] = samples.accuracy(params[rows], tokens[rows])
        return out

    def loss(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Task loss (nats), shaped as `accuracy`: −ln σ(k·x) + 0.1 for a grok law
        (`GrokTruth.task_loss`); else −ln Q + 0.1 with Q = (accuracy − chance)/(top − chance),
        the same form."""
        params, tokens = self._inputs(params, tokens)
        if self.grok is not None:
            grok = np.logaddexp(0, -self.grok["k"][:, None] * self._x(params, tokens)) + 0.1
            return np.where(self.grok["family"][:, None] == 1, chinchilla_loss(params, tokens), grok)
        rise = (self.accuracy(params, tokens) - self.chance[:, None]) / (self.top - self.chance)[:, None]
        return -np.log(np.clip(rise, 1e-6, 1.0)) + 0.1

    def _inputs(self, params: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both as (S, M) arrays."""
        tokens = np.asarray(tokens, float)
        tokens = np.broadcast_to(np.atleast_1d(tokens)[None, :] if tokens.ndim < 2 else tokens,
                                 (len(self), np.atleast_1d(tokens).shape[-1]))
        params = np.broadcast_to(np.asarray(params, float), tokens.shape[-1:])[None, :] * np.ones_like(tokens)
        return params, tokens

    def _z(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """A loss-threshold law's logit: slope · (threshold − L(N, D))."""
        g = self.grok
        return g["slope"][:, None] * (g["threshold"][:, None] - chinchilla_loss(params, tokens))

    def _x(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        g = self.grok
        grok_tokens = g["d_half"][:, None] * (params / self.n_ref) ** -g["gamma"][:, None]
        return np.log(tokens) - np.log(grok_tokens)

    def subset(self, rows: np.ndarray) -> Planted:
        rows = np.asarray(rows)
        if self.grok is not None:
            return Planted(tuple(self.skills[i] for i in rows), self.chance[rows], self.top[rows], self.kind,
                           {k: v[rows] for k, v in self.grok.items()}, self.n_ref)
        raise ValueError("subset of fitted planted skills is not needed")


def default_chance(skill: str) -> float:
    """Chance of a named skill (known benchmarks), else 0 (exact-match generation)."""
    chance = chance_for(skill)
    return 0.0 if chance is None else chance


def chinchilla_loss(params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    c = CHINCHILLA
    return c["E"] + c["A"] * np.asarray(params, float) ** -c["alpha"] + c["B"] * np.asarray(tokens, float) ** -c["beta"]


def default_prior(skills: Sequence[str], per_skill: int, target_params: float, target_tokens: float,
                  rng: np.random.Generator, chance: dict[str, float] | None = None) -> Planted:
    """`per_skill` laws per named skill from the documented default prior (module docstring):
    alternately grok-point and loss-threshold laws."""
    chance = chance or {}
    names = tuple(s for s in skills for _ in range(per_skill))
    count = len(names)
    floor = np.array([chance.get(s, default_chance(s)) for s in names])
    where = np.exp(rng.uniform(*np.log(GROK_WINDOW), count))  # the transition's compute / the target's
    scale = np.sqrt(where)  # along the target's tokens per parameter, N and D each scale by √
    n_mid, d_mid = target_params * scale, target_tokens * scale
    c = CHINCHILLA
    per_efold = 0.5 * (c["alpha"] * c["A"] * n_mid ** -c["alpha"] + c["beta"] * c["B"] * d_mid ** -c["beta"])
    laws = {
        "family": np.arange(count) % 2,
        "plateau": floor + rng.uniform(*PLATEAU, count) * (1 - floor),
        "d_half": target_tokens * where,
        "gamma": rng.uniform(*GAMMA, count),
        "k": np.exp(rng.uniform(*np.log(STEEPNESS), count)),
        "threshold": chinchilla_loss(n_mid, d_mid),
        "slope": np.exp(rng.uniform(*np.log(COMPUTE_STEEPNESS), count)) / per_efold,
    }
    return Planted(names, floor, np.ones(count), "default", laws, float(target_params))



def fitted_prior(skill_fits: Sequence[SkillFit], per_skill: int, seed: int) -> Planted:
    """`per_skill` planted laws per predictable skill fit: samples of its forecast surface."""
    names, chance, top, surfaces = [], [], [], []
    for sf in skill_fits:
        if not sf.predictable:
            continue
        rows = np.arange(len(names), len(names) + per_skill)
        mixed = zlib.crc32(f"{sf.family}|{sf.recipe}|{sf.skill}".encode())
        surfaces.append((SurfaceSamples.of(sf, samples=per_skill, seed=seed + mixed % 10_000), rows))
        names += [sf.skill] * per_skill
        chance += [sf.chance] * per_skill
        top += [sf.top] * per_skill
    return Planted(tuple(names), np.array(chance), np.array(top), "fitted", surfaces=tuple(surfaces))


def simulate_runs(ladder: LadderPlan, planted: Planted, rng: np.random.Generator, *, n_eval: int = N_EVAL,
                  checkpoints: int = CHECKPOINTS, task_loss: bool = True, scatter: float = SEED_SCATTER,
                  family: str = FAMILY) -> list[Run]:
    """The runs `ladder` would give if its skills followed `planted`: one run per rung and
    seed, every planted skill a series in each (module docstring)."""
    runs = []
    for rung in ladder.rungs:
        tokens = np.geomspace(rung.tokens / CHECKPOINT_RANGE, rung.tokens, checkpoints)
        for seed in range(rung.seeds):
            runs.append(simulated_run(f"{family}-{rung.params:.4g}-{rung.tokens:.4g}-s{seed}", rung.params, tokens,
                                      planted, rng, n_eval=n_eval, task_loss=task_loss, scatter=scatter,
                                      family=family, seed=seed))
    return runs


def simulated_run(name: str, params: float, tokens: np.ndarray, planted: Planted, rng: np.random.Generator, *,
                  n_eval: int = N_EVAL, task_loss: bool = True, scatter: float = SEED_SCATTER,
                  family: str = FAMILY, seed: int = 0) -> Run:
    """One run of `params` parameters evaluated at `tokens`, every planted skill a series."""
    read = tokens[None, :] * np.exp(rng.normal(0.0, scatter, (len(planted), 1)))  # seed-to-seed scatter
    measured = rng.binomial(n_eval, np.clip(planted.accuracy(params, read), 0, 1)) / n_eval
    loss = None
    if task_loss:
        loss = planted.loss(params, read)
        loss = loss * np.exp(rng.normal(0.0, LOSS_NOISE, loss.shape))
    steps = range(1, len(tokens) + 1)
    series = {
        n: make_series(n, steps, tokens, accuracy=measured[s], loss=None if loss is None else loss[s],
                       n=np.full(len(tokens), n_eval), params=params, chance=float(planted.chance[s]))
        for s, n in enumerate(planted.names)
    }
    return Run(name=name, params=float(params), family=family, recipe=Recipe("default"), series=series,
               params_kind="non-embedding", seed=seed, source="forecast.design.search")
