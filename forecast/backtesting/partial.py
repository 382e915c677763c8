"""`backtest --partial`: hide the end of the largest pilot(s) and score the in-progress forecast.

For each held-out run and each visible share s (a fraction of its steps), the run is cut to
its checkpoints at steps ≤ s × its last step, its planned tokens are its real final tokens,
and the final accuracy of every skill is forecast four ways: updated by the visible
checkpoints (`forecast.forecasting.in_progress.update_with_run`), by the ladder alone, by the
visible checkpoints alone read through the ladder's schedule shape (`run_alone`: the update
without its prior), and by the run's own visible curve alone (a line in logits of accuracy above the floor against
ln tokens through its visible checkpoints past warm-up, extrapolated to the end: what one would
do with no ladder). Scored on skills whose benchmark has at least `min_items` items, where a
final accuracy is measured precisely enough to score a forecast against.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.backtesting.backtest import holdout_sizes
from forecast.errors import UsageError
from forecast.fitting.fit import FitOptions, group_runs
from forecast.fits import fit
from forecast.forecasting.in_progress import SKIP_FRACTION, RunForecast, update_with_run
from forecast.forecasting.schedule import Logit
from forecast.runs.benchmarks import items_for
from forecast.runs.model import Run
from forecast.schema.in_progress import PartialBacktestJson, PartialItemJson, PartialScoreJson
from forecast.schema.outputs import finite

MIN_ITEMS = 1000
"""Benchmarks with fewer items are left out of the scores (their final accuracy is too noisy)."""


def seen_to(run: Run, share: float) -> Run:
    """The run as it stood at `share` of its steps: checkpoints at steps ≤ share × last step,
    marked in progress (`extra.complete` false) with its real final tokens as the plan."""
    if not 0 < share <= 1:
        raise UsageError(f"a visible share must lie in (0, 1]; got {share}", parameter="shares")
    last = int(run.steps.max())
    series = {}
    for name, s in run.series.items():
        keep = s.step <= share * last
        cut = lambda a: None if a is None else a[keep]  # noqa: E731
        series[name] = dataclasses.replace(s, step=s.step[keep], tokens=s.tokens[keep], flops=s.flops[keep],
                                           accuracy=cut(s.accuracy), loss=cut(s.loss), stderr=cut(s.stderr),
                                           n=cut(s.n), prob=cut(s.prob))
    extra = {**run.extra, "complete": False, "planned_tokens": float(run.final_tokens)}
    return dataclasses.replace(run, series=series, extra=extra)


def own_curve(forecast: RunForecast, floor: float, top: float) -> float | None:
    """The run's own visible curve alone, extrapolated to its planned end: a least-squares
    line in logit-accuracy against ln tokens (its last value when fewer than two checkpoints)."""
    points = forecast.checkpoints
    if not points:
        return None
    if len(points) < 2:
        return points[-1].accuracy
    logit = Logit(floor, top)
    x = np.log([p.tokens for p in points])
    y = logit(np.array([p.accuracy for p in points]))
    slope, intercept = np.polyfit(x, y, 1)
    return float(logit.inverse(intercept + slope * math.log(forecast.planned_tokens)))


@dataclass(frozen=True)
class PartialItem:
    """One (held-out run, skill, visible share): the real final accuracy and three forecasts."""

    run: str
    skill: str
    share: float
    actual: float
    updated: float | None
    low: float | None
    high: float | None
    ladder: float | None
    ladder_low: float | None
    ladder_high: float | None
    own: float | None
    off_path: bool
    run_alone: float | None = None

    def to_json(self) -> PartialItemJson:
        return {"run": self.run, "skill": self.skill, "share": self.share, "actual": self.actual,
                "updated": finite(self.updated), "low": finite(self.low), "high": finite(self.high),
                "ladder": finite(self.ladder), "ladder_low": finite(self.ladder_low),
                "ladder_high": finite(self.ladder_high), "own": finite(self.own), "off_path": self.off_path,
                "run_alone": finite(self.run_alone)}


@dataclass(frozen=True)
class PartialScore:
    share: float
    items: int
    mae: float | None
    ladder_mae: float | None
    own_mae: float | None
    coverage: float | None
    ladder_coverage: float | None
    run_alone_mae: float | None = None

    def to_json(self) -> PartialScoreJson:
        return {k: (finite(v) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class PartialBacktest:
    held_out: tuple[str, ...]
    min_items: int
    level: float
    items: tuple[PartialItem, ...]

    @property
    def scores(self) -> tuple[PartialScore, ...]:
        out = []
        for share in sorted({i.share for i in self.items}):
            rows = [i for i in self.items if i.share == share]
            mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
            out.append(PartialScore(
                share=share, items=len(rows),
                mae=mean([abs(i.updated - i.actual) for i in rows if i.updated is not None]),
                ladder_mae=mean([abs(i.ladder - i.actual) for i in rows if i.ladder is not None]),
                own_mae=mean([abs(i.own - i.actual) for i in rows if i.own is not None]),
                coverage=mean([float(i.low <= i.actual <= i.high) for i in rows if i.low is not None]),
                ladder_coverage=mean([float(i.ladder_low <= i.actual <= i.ladder_high) for i in rows
                                      if i.ladder_low is not None]),
                run_alone_mae=mean([abs(i.run_alone - i.actual) for i in rows if i.run_alone is not None])))
        return tuple(out)

    @property
    def coverage(self) -> float | None:
        """Interval coverage over every item and share."""
        hits = [i.low <= i.actual <= i.high for i in self.items if i.low is not None]
        return float(np.mean(hits)) if hits else None

    def to_json(self) -> PartialBacktestJson:
        return {"held_out": list(self.held_out), "min_items": self.min_items, "level": self.level,
                "scores": [s.to_json() for s in self.scores], "items": [i.to_json() for i in self.items]}


def partial_backtest(runs: Sequence[Run], shares: Sequence[float] = (0.1, 0.25, 0.5), *, holdout: str = "largest",
                     family: str | None = None, recipe: str | None = None, skills: Sequence[str] | None = None,
                     options: FitOptions | None = None, level: float = 0.8, min_items: int = MIN_ITEMS,
                     seed: int = 0, fits=None) -> PartialBacktest:
    """Per (family, recipe) group: hold out sizes by `holdout`, fit the rest (or use `fits`,
    already fitted without them), and score the final forecast of each held-out run from each
    visible share (see the module docstring)."""
    if not shares:
        raise UsageError("give at least one visible share, e.g. 0.1,0.25,0.5", parameter="shares")
    for share in shares:
        if not 0 < share < 1:
            raise UsageError(f"a visible share must lie in (0, 1), e.g. 0.25; got {share}", parameter="shares")
    items: list[PartialItem] = []
    held_names: list[str] = []
    for key, members in sorted(group_runs(runs, family, recipe).items()):
        held_sizes = set(holdout_sizes([r.params for r in members], holdout))
        train = [r for r in members if r.params not in held_sizes]
        held = [r for r in members if r.params in held_sizes]
        if not train or not held:
            continue
        wanted = skills if skills and not (len(skills) == 1 and skills[0].lower() == "all") else None
        ladder = fits if fits is not None else fit(train, skills=wanted, options=options)
        for run in held:
            held_names.append(run.name)
            for share in shares:
                for f in update_with_run(ladder, seen_to(run, share), skills=wanted, family=key[0], recipe=key[1],
                                         level=level, seed=seed):
                    item = _item(f, run, share, ladder, key, min_items)
                    if item is not None:
                        items.append(item)
    if not held_names:
        raise UsageError(f"holdout {holdout}: no group has runs left to fit and a held-out run to check",
                         parameter="holdout")
    return PartialBacktest(held_out=tuple(held_names), min_items=min_items, level=level, items=tuple(items))


def _item(f: RunForecast, run: Run, share: float, ladder, key: tuple[str, str], min_items: int) -> PartialItem | None:
    series = run.series.get(f.skill)
    if series is None or series.accuracy is None or f.accuracy is None:
        return None
    items = items_for(f.skill)
    if items is None and series.n is not None and np.isfinite(series.n).any():
        items = float(np.nanmedian(series.n))
    if items is None or items < min_items:
        return None
    final = int(np.argmax(np.where(np.isfinite(series.tokens), series.tokens, -np.inf)))
    if series.tokens[final] < SKIP_FRACTION * f.planned_tokens or not np.isfinite(series.accuracy[final]):
        return None
    (sf,) = ladder.select(key[0], key[1], [f.skill]) if hasattr(ladder, "select") else \
        [s for s in ladder if s.skill == f.skill]
    return PartialItem(run=run.name, skill=f.skill, share=share, actual=float(series.accuracy[final]),
                       updated=f.accuracy.median, low=f.accuracy.low, high=f.accuracy.high,
                       ladder=None if f.ladder.accuracy is None else f.ladder.accuracy.median,
                       ladder_low=None if f.ladder.accuracy is None else f.ladder.accuracy.low,
                       ladder_high=None if f.ladder.accuracy is None else f.ladder.accuracy.high,
                       own=own_curve(f, sf.floor, sf.top), off_path=f.off_path is not None, run_alone=f.run_alone)
