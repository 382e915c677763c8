"""Backtest of recipe decisions: hold out the largest size, decide from the rest, score the calls.

The held-out size is the largest that at least two compared groups were trained at. For
every skill, every pair of groups and every budget both trained that size to (tokens
within `BUDGET_RATIO`, or else equal training examples: steps × batch), the decision fitted on the smaller sizes (`recipe_decision`) gives
P(A's measured score beats B's) at each one's held-out run (its parameters and tokens); the
outcome is which one measured higher (exact ties are left out and counted).

The baseline is what published studies find hard to beat (DataDecide, Magnusson et al.
2025): rank by the largest remaining pilot, here the two groups' measured scores at the
largest size both were trained at below the held-out one, at the budget nearest the held-out
run's tokens per parameter; its P(win) is 1 or 0 (½ on a tie).

Scores, as fractions over all decisions: `decision_accuracy` (the forecast's winner is the
one that measured higher) and `baseline_decision_accuracy`; the Brier score of P(win)
against the outcome and the baseline's; reliability of P(win) in bins (per bin: count, mean
P, share won); and the flips: decisions where the forecast and the baseline disagree
(`flips_called`), how many of those the forecast got right, and how many of the actual
flips (the held-out order differs from the baseline's) the forecast foresaw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.errors import FitError, UsageError
from forecast.fitting.observations import BUDGET_RATIO
from forecast.fitting.results import match_skills
from forecast.forecasting.recipe_decision import CONFIDENCE, DRAWS, group_runs, measured_draws
from forecast.forecasting.recipe_ladder import deciding, fit_metrics, ladder_points
from forecast.quantities import format_count
from forecast.runs.model import Run
from forecast.schema.recipes import RecipeBacktestJson, RecipeDecisionJson

BINS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Edges of the reliability bins of P(predicted winner)."""


@dataclass(frozen=True)
class Decision:
    """One held-out call: skill, the pair at one budget, P(a ahead) by the forecast and the
    baseline, and who measured higher."""

    skill: str
    a: str
    b: str
    params: float  # held-out size (parameters)
    tokens: float  # a's held-out training tokens
    metric: str  # the deciding metric
    p_a: float  # P(a measures higher), forecast
    baseline_p_a: float  # 1, 0 or ½ (a tie at the pilot)
    actual_a: bool  # a measured higher at the held-out size
    actual_gap: float  # a's accuracy − b's at the held-out size (fraction)

    @property
    def correct(self) -> bool:
        return (self.p_a >= 0.5) == self.actual_a

    @property
    def baseline_correct(self) -> bool:
        return self.baseline_p_a != 0.5 and (self.baseline_p_a > 0.5) == self.actual_a

    def to_json(self) -> RecipeDecisionJson:
        return {"skill": self.skill, "a": self.a, "b": self.b, "params": self.params, "tokens": self.tokens,
                "metric": self.metric, "p_a": self.p_a, "baseline_p_a": self.baseline_p_a,
                "actual_a": self.actual_a, "actual_gap": self.actual_gap, "correct": self.correct,
                "baseline_correct": self.baseline_correct}


@dataclass(frozen=True)
class RecipeBacktest:
    """All held-out decisions and their scores (see the module)."""

    by: str
    fixed: str
    groups: tuple[str, ...]
    held_params: float
    pilot_params: float
    decisions: tuple[Decision, ...]
    ties: int
    not_predictable: dict[str, str]

    def _mean(self, values: Sequence[float]) -> float | None:
        return float(np.mean(values)) if len(values) else None

    @property
    def decision_accuracy(self) -> float | None:
        return self._mean([d.correct for d in self.decisions])

    @property
    def baseline_decision_accuracy(self) -> float | None:
        return self._mean([d.baseline_correct for d in self.decisions])

    @property
    def brier(self) -> float | None:
        return self._mean([(d.p_a - d.actual_a) ** 2 for d in self.decisions])

    @property
    def baseline_brier(self) -> float | None:
        return self._mean([(d.baseline_p_a - d.actual_a) ** 2 for d in self.decisions])

    def confident(self, confidence: float = CONFIDENCE) -> tuple[int, float | None]:
        """Decisions with P(win) ≥ `confidence`: how many, and the share right."""
        picked = [d.correct for d in self.decisions if max(d.p_a, 1 - d.p_a) >= confidence]
        return len(picked), self._mean(picked)

    def reliability(self) -> list[dict[str, float | int | None]]:
        """Per bin of P(predicted winner): count, mean P, share the predicted winner won."""
        p = np.array([max(d.p_a, 1 - d.p_a) for d in self.decisions])
        won = np.array([d.correct for d in self.decisions], float)
        out = []
        for lo, hi in zip(BINS[:-1], BINS[1:]):
            m = (p >= lo) & ((p < hi) | ((hi == 1.0) & (p <= hi)))
            out.append({"low": lo, "high": hi, "count": int(m.sum()),
                        "mean_p": float(p[m].mean()) if m.any() else None,
                        "observed": float(won[m].mean()) if m.any() else None})
        return out

    def by_budget(self) -> list[dict[str, float | int | None]]:
        """Per held-out budget (tokens per parameter, rounded): decisions, and both accuracies."""
        keys = sorted({round(d.tokens / d.params, 1) for d in self.decisions})
        out = []
        for key in keys:
            picked = [d for d in self.decisions if round(d.tokens / d.params, 1) == key]
            out.append({"tokens_per_param": key, "count": len(picked),
                        "decision_accuracy": self._mean([d.correct for d in picked]),
                        "baseline_decision_accuracy": self._mean([d.baseline_correct for d in picked])})
        return out

    def flips(self) -> dict[str, int]:
        """Flips called by the forecast (it disagrees with the baseline), how many of them
        were right, and the actual flips (held-out order ≠ baseline's) it foresaw."""
        called = [d for d in self.decisions if d.baseline_p_a != 0.5 and (d.p_a >= 0.5) != (d.baseline_p_a > 0.5)]
        actual = [d for d in self.decisions if d.baseline_p_a != 0.5 and d.actual_a != (d.baseline_p_a > 0.5)]
        return {"called": len(called), "called_right": sum(d.correct for d in called), "actual": len(actual),
                "foreseen": sum(d.correct for d in actual)}

    def to_json(self) -> RecipeBacktestJson:
        count, share = self.confident()
        return {"by": self.by, "fixed": self.fixed, "groups": list(self.groups), "held_params": self.held_params,
                "pilot_params": self.pilot_params, "decisions_count": len(self.decisions), "ties": self.ties,
                "decision_accuracy": self.decision_accuracy,
                "baseline_decision_accuracy": self.baseline_decision_accuracy, "brier": self.brier,
                "baseline_brier": self.baseline_brier, "confidence": CONFIDENCE, "confident_count": count,
                "confident_accuracy": share, "reliability": self.reliability(), "by_budget": self.by_budget(), "flips": self.flips(),
                "not_predictable": self.not_predictable, "decisions": [d.to_json() for d in self.decisions]}

    def summary_line(self) -> str:
        f = self.flips()
        pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        return (f"{len(self.decisions)} decisions at {format_count(self.held_params)} params from ≤ "
                f"{format_count(self.pilot_params)}: forecast right {pct(self.decision_accuracy)}, ranking by the "
                f"{format_count(self.pilot_params)} pilots {pct(self.baseline_decision_accuracy)}; Brier "
                f"{self.brier:.3f} vs {self.baseline_brier:.3f}; flips called {f['called']} "
                f"({f['called_right']} right), actual {f['actual']} ({f['foreseen']} foreseen)")


def backtest_recipes(runs: Sequence[Run], *, by: str = "recipe", skills: Sequence[str] | None = None,
                     family: str | None = None, recipe: str | None = None, draws: int = DRAWS,
                     slope_spread: float | None = None, seed: int = 0) -> RecipeBacktest:
    """Hold out the largest size of the ladder and score the recipe decisions made without it
    (`slope_spread` as `compare_ladder`)."""
    fixed, by_group = group_runs(runs, by, family, recipe)
    sizes = [sorted({r.params for r in rs}) for rs in by_group.values()]
    shared = sorted({n for s in sizes for n in s if sum(n in t for t in sizes) >= 2})
    if not shared:
        raise UsageError("no size was trained by two of the compared groups: nothing to hold out")
    held = shared[-1]
    train = {g: [r for r in rs if r.params < held] for g, rs in by_group.items()}
    if sum(len({r.params for r in rs}) >= 2 for rs in train.values()) < 1:
        raise UsageError(f"below the held-out {format_count(held)} params no group has two sizes to read a trend "
                         "from")
    train = {g: rs for g, rs in train.items() if rs}
    known = sorted({s for rs in by_group.values() for r in rs for s in r.skills})
    decisions, ties, not_predictable = [], 0, {}
    pilot = max(r.params for rs in train.values() for r in rs)
    for k, name in enumerate(match_skills(known, skills)):
        try:
            points = ladder_points(train, name)
            fits, _ = fit_metrics(points, slope_spread=slope_spread)
            if "accuracy" not in fits:
                raise FitError("accuracy could not be fitted")
            chosen = deciding(fits)
        except FitError as exc:
            not_predictable[name] = str(exc)
            continue
        heldout = {g: [r for r in rs if r.params == held and name in r.skills] for g, rs in by_group.items()}
        rng = np.random.default_rng(seed + k)
        groups = points.groups
        for i, a in enumerate(groups):
            for b in groups[i + 1:]:
                for ra, rb in _matched(heldout.get(a, []), heldout.get(b, [])):
                    acc_a, acc_b = _mean_final(ra, name), _mean_final(rb, name)
                    if acc_a == acc_b:
                        ties += 1
                        continue
                    p_a = _p_ahead(points, fits, chosen, a, b, ra, rb, draws, rng)
                    tokens = float(np.mean([r.final_tokens for r in ra]))
                    base = _baseline(points, groups.index(a), groups.index(b), tokens / held)
                    decisions.append(Decision(name, a, b, held, tokens, chosen.metric, p_a, base,
                                              acc_a > acc_b, acc_a - acc_b))
    return RecipeBacktest(by, fixed, tuple(sorted(by_group)), float(held), float(pilot), tuple(decisions), ties,
                          not_predictable)


def _mean_final(runs: Sequence[Run], skill: str) -> float:
    """The final accuracy of `skill`, averaged over `runs` (the seeds of one budget)."""
    return float(np.mean([r.series[skill].accuracy[np.isfinite(r.series[skill].accuracy)][-1] for r in runs]))


def _examples(run: Run) -> float:
    """Training examples (sequences) at the run's last checkpoint: final step × examples per
    step; NaN when the run does not record its batch size."""
    per_step = run.examples_per_step
    return float(run.steps[-1]) * per_step if per_step is not None and run.steps.size else math.nan


def _near(x: float, y: float) -> bool:
    """Two budgets within `BUDGET_RATIO` of each other (False when either is unknown)."""
    return x > 0 and y > 0 and abs(math.log(x / y)) <= math.log(BUDGET_RATIO)


def _budgets(runs: Sequence[Run]) -> list[list[Run]]:
    """`runs` of one size split by budget: runs whose tokens are within `BUDGET_RATIO` of the
    budget's first (seeds) are one budget."""
    out: list[list[Run]] = []
    for run in sorted(runs, key=lambda r: r.final_tokens):
        if out and _near(run.final_tokens, out[-1][0].final_tokens):
            out[-1].append(run)
        else:
            out.append([run])
    return out


def _matched(a: Sequence[Run], b: Sequence[Run]) -> list[tuple[list[Run], list[Run]]]:
    """The budgets both groups trained the held-out size to, as pairs of their runs (seeds):
    tokens within `BUDGET_RATIO`, or else the same number of training examples (steps × batch,
    within `BUDGET_RATIO`): recipes whose sequences differ in length (a scratchpad beside a
    plain answer) trained for equal steps are compared at equal examples, each at its own
    tokens."""
    out = []
    gap = lambda x, y: abs(math.log(x[0].final_tokens / y[0].final_tokens))  # noqa: E731
    budgets_b = _budgets(b)
    for ra in _budgets(a):
        near = [rb for rb in budgets_b if _near(ra[0].final_tokens, rb[0].final_tokens)]
        if not near:
            near = [rb for rb in budgets_b if _near(_examples(ra[0]), _examples(rb[0]))]
        if near:
            out.append((ra, min(near, key=lambda rb: gap(ra, rb))))
    return out


def _p_ahead(points, fits, chosen, a: str, b: str, ra: Sequence[Run], rb: Sequence[Run], draws: int,
             rng: np.random.Generator) -> float:
    """P(a's mean over its seeds measures higher than b's), each at its own held-out runs'
    size and tokens, in the deciding metric."""
    from forecast.forecasting.recipe_decision import accuracy_draws

    i, j = points.groups.index(a), points.groups.index(b)
    out = []
    for runs in (ra, rb):
        n, d = float(np.mean([r.params for r in runs])), float(np.mean([r.final_tokens for r in runs]))
        acc = accuracy_draws(points, fits["accuracy"], n, d, draws, rng)
        out.append(measured_draws(points, chosen, n, d, draws, rng, acc, runs=len(runs)))
    return float(np.mean(out[0][i] > out[1][j]))


def _baseline(points, i: int, j: int, tokens_per_param: float) -> float:
    """The largest remaining pilot's call: 1 when a measured higher there, 0 lower, ½ tie or
    no common size."""
    from forecast.forecasting.recipe_decision import pilot_order

    _, leader = pilot_order(points, i, j, tokens_per_param)
    return 0.5 if leader is None else (1.0 if leader == i else 0.0)
