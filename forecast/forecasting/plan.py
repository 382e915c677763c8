"""Compute-budget planning on the compute-optimal path (D = r·N tokens, r = 20 by default).

- `plan_target`: the smallest training compute (FLOPs) whose compute-optimal model is
  forecast to reach a target accuracy, with an interval, and its N/D split; or "not
  reachable under the fitted laws" when the median sample never gets there.
- `plan_budget`: for a compute-optimal model at a budget, which skills grok and how well.

Both read the same forecast samples as `predict`, so a plan's median compute, fed back to
`predict`, gives the target accuracy as its median (the round trip the tests check).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.errors import UsageError
from forecast.forecasting.predict import Interval, SkillForecast, check_level, check_tokens_per_param, predict
from forecast.quantities import FLOPS_PER_PARAM_TOKEN, TOKENS_PER_PARAM, format_count, format_flops
from forecast.fitting.results import SkillFit
from forecast.forecasting.samples import SurfaceSamples, first_reaching
from forecast.schema.documents import BudgetPlanJson
from forecast.schema.outputs import TargetPlanJson

MAX_FLOPS = 1e32
"""Search ceiling for plans (FLOPs): ~1e7 × today's largest training runs."""


def compute_optimal(flops: float, kappa: float, tokens_per_param: float = TOKENS_PER_PARAM) -> tuple[float, float]:
    """(parameters, tokens) of the compute-optimal model at `flops` FLOPs, with C = κ·N·D
    and D = `tokens_per_param`·N."""
    params = math.sqrt(flops / (kappa * tokens_per_param))
    return params, tokens_per_param * params


@dataclass(frozen=True)
class TargetPlan:
    """Smallest compute to reach `target` accuracy on `skill`. `flops` is None when the
    median sample does not reach it below `MAX_FLOPS`; `reachable` is the fraction of
    samples that do."""

    skill: str
    family: str
    recipe: str
    target: float
    level: float
    tokens_per_param: float
    reachable: float
    flops: Interval | None  # FLOPs: median and interval (high may be inf)
    params: float | None  # parameters of the compute-optimal model at the median FLOPs
    tokens: float | None  # its training tokens
    status: str  # "reachable", "not-reachable", "already-reached", "not-predictable"
    reason: str | None = None

    def to_json(self) -> TargetPlanJson:
        return {"skill": self.skill, "family": self.family, "recipe": self.recipe, "target": self.target,
                "level": self.level, "tokens_per_param": self.tokens_per_param, "reachable": self.reachable,
                "flops": None if self.flops is None else self.flops.to_json(), "params": self.params,
                "tokens": self.tokens, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class BudgetPlan:
    """The compute-optimal model at a budget and its per-skill forecasts."""

    flops: float
    params: float
    tokens: float
    tokens_per_param: float
    forecasts: tuple[SkillForecast, ...]

    def to_json(self) -> BudgetPlanJson:
        """`forecast plan --budget --json` (kind "plan-budget"): the model, then one
        `schema.ForecastJson` per skill."""
        return {"flops": self.flops, "params": self.params, "tokens": self.tokens,
                "tokens_per_param": self.tokens_per_param, "skills": [f.to_json() for f in self.forecasts]}


def plan_target(
    sf: SkillFit,
    target: float,
    *,
    level: float = 0.8,
    tokens_per_param: float = TOKENS_PER_PARAM,
    seed: int = 0,
) -> TargetPlan:
    """Smallest compute-optimal training compute forecast to reach `target` accuracy."""
    if not 0 < target < 1:
        raise UsageError(f"`target` must be an accuracy in (0, 1), e.g. 0.6; got {target}", parameter="target")
    check_level(level)
    check_tokens_per_param(tokens_per_param)
    base = dict(skill=sf.skill, family=sf.family, recipe=sf.recipe, target=target, level=level,
                tokens_per_param=tokens_per_param)
    if not sf.predictable:
        return TargetPlan(**base, reachable=0.0, flops=None, params=None, tokens=None, status="not-predictable",
                          reason=sf.reason)
    samples = SurfaceSamples.of(sf, seed=seed)
    kappa = sf.flops_per_param_token
    needed = flops_to_reach(samples, target, kappa, tokens_per_param, low=min(min(p.flops) for p in sf.pilots))
    reachable = float(np.mean(np.isfinite(needed)))
    interval = Interval.of(needed, level)
    if not math.isfinite(interval.median):
        plateau = float(np.median(np.concatenate([p.fit.plateau(p.rows) for p in samples.parts])))
        return TargetPlan(**base, reachable=reachable, flops=None, params=None, tokens=None, status="not-reachable",
                          reason=f"not reachable under the fitted laws below {MAX_FLOPS:.0e} FLOPs: only "
                          f"{100 * reachable:.0f}% of forecast samples get there (median plateau {plateau:.3f})")
    params, tokens = compute_optimal(interval.median, kappa, tokens_per_param)
    if interval.median <= sf.max_flops:
        return TargetPlan(**base, reachable=reachable, flops=interval, params=params, tokens=tokens,
                          status="already-reached", reason=_already(sf, target, interval.median))
    return TargetPlan(**base, reachable=reachable, flops=interval, params=params, tokens=tokens, status="reachable")


def _already(sf: SkillFit, target: float, median_flops: float) -> str:
    """Why a target counts as reached within the pilots: the first pilot checkpoint that
    measured it (smoothed accuracy), else where the fitted laws put it."""
    reached = [(f, p, a) for p in sf.pilots for f, a in zip(p.flops, p.smoothed) if a >= target]
    if reached:
        flops, pilot, acc = min(reached, key=lambda x: x[0])
        at = pilot.tokens[pilot.flops.index(flops)]
        return (f"pilot {pilot.name} ({format_count(pilot.params)} params) measured {acc:.2f} after "
                f"{format_count(at)} tokens ({format_flops(flops)} FLOPs)")
    return (f"no pilot measured {target:g}, but the fitted laws put it at {format_flops(median_flops)} FLOPs on the "
            f"compute-optimal path, within the largest pilot's {format_flops(sf.max_flops)}")


def flops_to_reach(samples: SurfaceSamples, target: float, kappa: float, tokens_per_param: float,
                   low: float, high: float = MAX_FLOPS) -> np.ndarray:
    """Per sample, the fewest FLOPs on the compute-optimal path in [low, high] whose model
    reaches `target` accuracy; inf when never."""
    params, tokens = compute_optimal(1.0, kappa, tokens_per_param)

    def reaches(flops: np.ndarray) -> np.ndarray:
        scale = np.sqrt(flops)[:, None]
        return samples.accuracy(params * scale, tokens * scale)[:, 0] >= target

    return first_reaching(reaches, samples.size, low, high)


def plan_budget(
    skill_fits: Sequence[SkillFit],
    flops: float,
    *,
    level: float = 0.8,
    threshold: float | None = None,
    tokens_per_param: float = TOKENS_PER_PARAM,
    seed: int = 0,
) -> BudgetPlan:
    """Forecast every skill for the compute-optimal model at `flops` FLOPs."""
    check_tokens_per_param(tokens_per_param)
    kappa = next((s.flops_per_param_token for s in skill_fits if s.scales), FLOPS_PER_PARAM_TOKEN)
    params, tokens = compute_optimal(flops, kappa, tokens_per_param)
    forecasts = predict(skill_fits, params, tokens=tokens, level=level, threshold=threshold, seed=seed)
    return BudgetPlan(flops=flops, params=params, tokens=tokens, tokens_per_param=tokens_per_param,
                      forecasts=tuple(forecasts))
