"""An "average of tasks" forecast (papers report a 17-task average), made from its members'
own fits, not from a law refitted to the average.

Per member, the forecast samples of `forecast.forecasting.samples` at the target: the model accuracy
(law draws, choice of law, extrapolation drift) and what one evaluation would read (plus
evaluation noise and the law's error of shape). The average's samples are
    mean over members of sorted(model accuracy)  +  mean over members of (read − model)
(the reading error taken about accuracy 0.5, so that no bound clips it; the sum is clipped
to [0, 1]). The first term couples the members' law uncertainty comonotonically: the
extrapolation errors of tasks of one model are taken as fully correlated (they share its
scale, and often its loss), so the average's quantiles are the mean of the members'
quantiles, the widest coupling. The second averages the members' evaluation noise and shape errors as
independent, so they shrink as 1/√k. A member with no number (not predictable, out of
range) makes the average not predictable, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from forecast.errors import UsageError
from forecast.forecasting.predict import Interval, check_level, check_tokens_per_param, predict_skill, resolve_budget
from forecast.fitting.results import SkillFit
from forecast.forecasting.samples import SurfaceSamples
from forecast.schema.outputs import AggregateForecastJson

METHOD = ("average of the members' forecasts: law uncertainty combined as fully correlated across tasks (mean of "
          "the members' quantiles), evaluation noise and shape error as independent")


@dataclass(frozen=True)
class AggregateForecast:
    """The forecast mean accuracy over `members` for one target model."""

    name: str
    members: tuple[str, ...]
    family: str
    recipe: str
    params: float
    tokens: float
    flops: float
    status: str  # "predicted" | "not-predictable"
    accuracy: Interval | None
    chance: float  # mean of the members' chance levels
    level: float
    member_status: dict[str, str]
    reason: str | None = None
    method: str = METHOD

    def to_json(self) -> AggregateForecastJson:
        return {
            "name": self.name, "members": list(self.members), "family": self.family, "recipe": self.recipe,
            "params": self.params, "tokens": self.tokens, "flops": self.flops, "status": self.status,
            "accuracy": None if self.accuracy is None else self.accuracy.to_json(), "chance": self.chance,
            "level": self.level, "method": self.method, "member_status": dict(self.member_status),
            "reason": self.reason,
        }


def parse_aggregates(items: Iterable[str]) -> dict[str, list[str]]:
    """`--aggregate NAME=task1,task2,...` flags (NAME=all: every skill) as name -> members."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, members = item.partition("=")
        tasks = [t.strip() for t in members.split(",") if t.strip()]
        if not sep or not name.strip() or not tasks:
            raise UsageError(f"`aggregate`: expected NAME=task1,task2,..., got {item!r}; write e.g. "
                             "`aggregate='avg=piqa,arc_easy,hellaswag'` (or avg=all)", parameter="aggregate")
        if name.strip() in out:
            raise UsageError(f"`aggregate={name.strip()!r}`: named twice", parameter="aggregate")
        out[name.strip()] = tasks
    return out


def aggregate_forecast(name: str, members: Sequence[SkillFit], params: float, *, tokens: float | None = None,
                       flops: float | None = None, level: float = 0.8, tokens_per_param: float | None = None,
                       seed: int = 0) -> AggregateForecast:
    """Forecast the mean accuracy over `members` (skill fits of one group) at `params`
    parameters trained on `tokens` tokens (or `flops`; see module docstring)."""
    check_level(level)
    check_tokens_per_param(tokens_per_param)
    if not members:
        raise UsageError(f"`aggregate={name!r}`: no member tasks", parameter="aggregate")
    if len({(m.family, m.recipe) for m in members}) > 1:
        raise UsageError(f"`aggregate={name!r}`: members from several (family, recipe) groups cannot be averaged",
                         parameter="aggregate")
    tokens, flops, _ = resolve_budget(members[0], params, tokens, flops, tokens_per_param)
    forecasts = [predict_skill(sf, params, tokens=tokens, level=level, seed=seed) for sf in members]
    base = dict(name=name, members=tuple(sf.skill for sf in members), family=members[0].family,
                recipe=members[0].recipe, params=params, tokens=tokens, flops=flops, level=level,
                chance=float(np.mean([sf.chance for sf in members])),
                member_status={f.skill: str(f.status) for f in forecasts})
    missing = [f for f in forecasts if f.accuracy is None]
    if missing:
        return AggregateForecast(status="not-predictable", accuracy=None, reason=(
            f"{len(missing)} of {len(members)} members have no forecast: "
            + "; ".join(f"{f.skill} ({f.status}: {f.reason})" for f in missing[:3])
            + ("; ..." if len(missing) > 3 else "")), **base)
    model, error = [], []
    for i, sf in enumerate(members):
        samples = SurfaceSamples.of(sf, seed=seed)
        rng = np.random.default_rng([seed + 1, i])  # each member's noise its own: independent across members
        acc = samples.accuracy(params, tokens)[:, 0]
        # the reading error, unclipped: read about 0.5, where no bound cuts it off (and a
        # binomial noise, where that is all that is known, is at its largest)
        middle = np.full((len(acc), 1), 0.5)
        error.append(samples.observed(middle, rng, params, tokens)[:, 0] - 0.5)
        model.append(np.sort(acc))
    combined = np.clip(np.mean(model, axis=0) + np.mean(error, axis=0), 0, 1)
    return AggregateForecast(status="predicted", accuracy=Interval.of(combined, level), **base)
