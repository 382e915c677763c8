"""`design`: which pilot ladder to train so the target's forecast is worth trusting.

Every candidate ladder (`forecast.design.space`) spends the same pilot budget. Each is judged
by simulation: planted skills (`forecast.design.priors`: a documented default prior, or
samples of the team's own fits) give the runs the ladder would produce, those runs are
refitted with the real pipeline (`forecast.fit`, then `Fits.predict` at the target), and the
forecast is scored against the planted truth. The score is the expected **weighted interval
score** of the forecast's median and its 80% and 50% intervals (Bracher et al. 2021, the
score of the CDC forecast hubs; it approximates the CRPS): (½·|y − median| + Σ_α α/2·IS_α)
/ 2.5, where IS_α, the interval score of the central 1 − α interval (Gneiting & Raftery
2007, eq. 43), is its width plus 2/α times how far the observation y fell outside it. So the
80% interval's width is what a ladder is judged by, and a ladder cannot win with intervals
that are narrow because they are wrong, nor with a wide interval around a wrong median.
Widths, errors, coverage and the plain 80% interval score are reported beside it.

The search is two-stage, reusing what it fitted: every candidate is simulated with
`per_skill` planted laws per skill (the same laws for every candidate, so differences
between ladders are not differences between draws), then the `refine` best get
`refine_draws` more per skill (the geometric default too, so the chosen ladder is compared
with it on the same laws) and are ranked on all their draws. A skill that comes out
`not-predictable` scores as the uninformative forecast: the median of [chance, 1], and its
middle 50% and 80%.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context

import numpy as np

from forecast.design.priors import N_EVAL, Planted, default_prior, fitted_prior, simulate_runs
from forecast.design.space import LadderPlan, Space, candidate_ladders, check_target, geometric_ladder
from forecast.errors import FitError, UsageError
from forecast.fitting.fit import FitOptions
from forecast.fits import fit
from forecast.threads import torch_threads
from forecast.forecasting.predict import check_level
from forecast.fitting.results import SkillFit
from forecast.schema.design import DesignJson, LadderScoreJson, SkillOutcomeJson

DEFAULT_SKILLS = {"generation": 0.0, "multiple_choice": 0.25}
"""Skills a design plans for when none are named: an exact-match generation task (chance 0)
and a 4-way multiple-choice one (chance 0.25)."""
INNER_LEVEL = 0.5
"""The second interval of the weighted interval score."""
SIM_DRAWS = 10
"""Bootstrap draws per candidate law in simulated refits: accuracy intervals are built from
each law's point estimate and its calibrated drift (`forecast.forecasting.samples`), so a few draws do."""


@dataclass(frozen=True)
class SkillOutcome:
    """One planted skill's forecast at the target under one ladder, scored against the truth."""

    skill: str
    status: str
    median: float
    low: float
    high: float
    truth: float  # the planted model accuracy at the target
    observed: float  # what one evaluation of the target would read (binomial over n_eval items)
    confidence: str | None
    level: float
    low50: float = math.nan  # the central 50% interval
    high50: float = math.nan

    @property
    def width(self) -> float:
        return self.high - self.low

    @property
    def error(self) -> float:
        return abs(self.median - self.truth)

    @property
    def covered(self) -> bool:
        return self.low <= self.observed <= self.high

    @property
    def interval_score(self) -> float:
        """The 80% interval's score: width + (2/α)·distance of the observation outside it."""
        return _interval_score(self.low, self.high, self.observed, 1 - self.level)

    @property
    def score(self) -> float:
        """Weighted interval score of the median and the two intervals (module docstring)."""
        alphas = (1 - self.level, 1 - INNER_LEVEL)
        total = 0.5 * abs(self.observed - self.median) + sum(
            a / 2 * _interval_score(lo, hi, self.observed, a)
            for a, (lo, hi) in zip(alphas, ((self.low, self.high), (self.low50, self.high50))))
        return total / (len(alphas) + 0.5)

    def to_json(self) -> SkillOutcomeJson:
        return {"skill": self.skill, "status": self.status, "median": self.median, "low": self.low,
                "high": self.high, "truth": self.truth, "observed": self.observed, "confidence": self.confidence,
                "low50": self.low50, "high50": self.high50, "width": self.width, "error": self.error,
                "covered": self.covered, "interval_score": self.interval_score, "score": self.score}


def _interval_score(low: float, high: float, y: float, alpha: float) -> float:
    return (high - low) + 2 / alpha * (max(low - y, 0.0) + max(y - high, 0.0))


@dataclass(frozen=True)
class SkillSummary:
    """What a ladder is expected to give one skill at the target, over its planted laws."""

    skill: str
    width: float  # mean width of the 80% interval
    error: float  # mean |median − truth|
    coverage: float  # share of planted outcomes inside their interval
    score: float
    confidence: dict[str, float]  # share of high / medium / low (and none: no number)
    draws: int

    @property
    def grade(self) -> str:
        """The most frequent confidence grade."""
        return max(self.confidence, key=self.confidence.get)

    def to_json(self) -> dict:
        return {"skill": self.skill, "width": self.width, "error": self.error, "coverage": self.coverage,
                "score": self.score, "confidence": dict(self.confidence), "grade": self.grade, "draws": self.draws}


@dataclass(frozen=True)
class LadderScore:
    """A candidate ladder and its simulated outcomes."""

    ladder: LadderPlan
    outcomes: tuple[SkillOutcome, ...]
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return float(np.mean([o.score for o in self.outcomes]))

    @property
    def width(self) -> float:
        return float(np.mean([o.width for o in self.outcomes]))

    @property
    def error(self) -> float:
        return float(np.mean([o.error for o in self.outcomes]))

    @property
    def coverage(self) -> float:
        return float(np.mean([o.covered for o in self.outcomes]))

    @property
    def interval_score(self) -> float:
        return float(np.mean([o.interval_score for o in self.outcomes]))

    def skills(self) -> list[SkillSummary]:
        out = []
        for name in dict.fromkeys(o.skill for o in self.outcomes):
            mine = [o for o in self.outcomes if o.skill == name]
            grades = Counter(o.confidence or "none" for o in mine)
            out.append(SkillSummary(name, float(np.mean([o.width for o in mine])),
                                    float(np.mean([o.error for o in mine])), float(np.mean([o.covered for o in mine])),
                                    float(np.mean([o.score for o in mine])),
                                    {g: grades[g] / len(mine) for g in ("high", "medium", "low", "none") if grades[g]},
                                    len(mine)))
        return out

    def merged(self, more: LadderScore) -> LadderScore:
        return replace(self, outcomes=self.outcomes + more.outcomes, seconds=self.seconds + more.seconds)

    def to_json(self) -> LadderScoreJson:
        return {"ladder": self.ladder.to_json(), "score": self.score, "interval_score": self.interval_score,
                "width": self.width, "error": self.error, "coverage": self.coverage, "draws": len(self.outcomes), "seconds": self.seconds,
                "skills": [s.to_json() for s in self.skills()]}


@dataclass(frozen=True)
class Simulation:
    """How ladders are simulated and refitted (shared by `design` and the study)."""

    target_params: float
    target_tokens: float
    level: float = 0.8
    n_eval: int = N_EVAL
    task_loss: bool = True
    draws: int = SIM_DRAWS
    seed: int = 0


def evaluate(ladder: LadderPlan, planted: Planted, sim: Simulation, stage: int = 0) -> LadderScore:
    """Simulate `ladder` under `planted`, refit with the real pipeline, score at the target."""
    start = time.perf_counter()
    # common random numbers: every ladder sees the same planted laws, the same evaluation of the
    # target and the same noise stream, so differences between ladders are not differences of luck
    runs = simulate_runs(ladder, planted, np.random.default_rng([sim.seed, stage, 1]), n_eval=sim.n_eval,
                         task_loss=sim.task_loss)
    truth = planted.accuracy(np.array([sim.target_params]), np.array([sim.target_tokens]))[:, 0]
    observed = np.random.default_rng([sim.seed, stage, 2]).binomial(sim.n_eval, np.clip(truth, 0, 1)) / sim.n_eval
    try:
        fits = fit(runs, options=FitOptions(draws=sim.draws, keep_draws=sim.draws, seed=sim.seed))
        with torch_threads(1):  # forecasts are many small arrays: extra threads only spin
            forecasts = {f.skill: f for f in fits.predict(sim.target_params, tokens=sim.target_tokens,
                                                          skills=["all"], level=sim.level, seed=sim.seed)}
            inner = {f.skill: f.accuracy for f in fits.predict(sim.target_params, tokens=sim.target_tokens,
                                                               skills=["all"], level=INNER_LEVEL, seed=sim.seed)}
    except FitError:
        forecasts, inner = {}, {}
    outcomes = []
    for i, name in enumerate(planted.names):
        f = forecasts.get(name)
        chance, top = float(planted.chance[i]), float(planted.top[i])
        if f is None or f.accuracy is None:  # no number: the uninformative interval
            span = top - chance
            outcomes.append(SkillOutcome(planted.skills[i], "not-predictable" if f is None else str(f.status),
                                    chance + span / 2, chance + span * (1 - sim.level) / 2,
                                    chance + span * (1 + sim.level) / 2, float(truth[i]), float(observed[i]), None,
                                    sim.level, chance + span / 4, chance + 3 * span / 4))
        else:
            a, b = f.accuracy, inner[name]
            outcomes.append(SkillOutcome(planted.skills[i], str(f.status), a.median, a.low, a.high, float(truth[i]),
                                    float(observed[i]), f.confidence, sim.level, b.low, b.high))
    return LadderScore(ladder, tuple(outcomes), time.perf_counter() - start)


def evaluate_all(ladders: Sequence[LadderPlan], planted: Planted, sim: Simulation, stage: int = 0, jobs: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> list[LadderScore]:
    """`evaluate` every ladder, in `jobs` processes (spawned: torch is not fork-safe)."""
    if jobs <= 1:
        out = []
        for i, ladder in enumerate(ladders):
            out.append(evaluate(ladder, planted, sim, stage))
            if progress:
                progress(i + 1, len(ladders))
        return out
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(evaluate, ladder, planted, sim, stage) for ladder in ladders]
        out = []
        for i, future in enumerate(futures):
            out.append(future.result())
            if progress:
                progress(i + 1, len(ladders))
        return out


@dataclass(frozen=True)
class Design:
    """The chosen ladder, every candidate's simulated score (best first), the naive geometric
    ladder of the same compute, and how the laws were planted."""

    target_params: float
    target_tokens: float
    budget: float
    level: float
    prior: str  # "default" or "fits"
    skills: tuple[str, ...]
    ranked: tuple[LadderScore, ...]  # best first; the refined ones (more draws) lead
    geometric: LadderScore
    dropped: tuple[str, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def chosen(self) -> LadderScore:
        return self.ranked[0]

    def versus(self, other: LadderScore) -> tuple[float, float]:
        """Mean score difference `other` − chosen over the planted laws both were simulated
        under (the same laws, in the same order), and its standard error."""
        common = min(len(other.outcomes), len(self.chosen.outcomes))
        diff = np.array([a.score - b.score for a, b in zip(other.outcomes[:common], self.chosen.outcomes[:common])])
        return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(common)) if common > 1 else math.inf

    def tied(self) -> list[LadderScore]:
        """Candidates whose score is within one standard error of the chosen one's (paired)."""
        return [s for s in self.ranked[1:] if (lambda d: d[0] <= d[1])(self.versus(s))]

    def alternatives(self) -> list[tuple[str, LadderScore]]:
        """The best candidate that differs from the chosen one in each knob, with what it
        tried: fewer/more sizes, another spacing, other token budgets, other seeds."""
        best = self.chosen.ladder
        knobs = [("fewer, larger sizes", lambda l: l.sizes < best.sizes),
                 ("more, smaller sizes", lambda l: l.sizes > best.sizes),
                 ("another spacing", lambda l: l.spacing != best.spacing),
                 ("other token budgets", lambda l: l.multipliers != best.multipliers),
                 ("fewer seeds" if best.seeds > 1 else "more seeds", lambda l: l.seeds != best.seeds)]
        out = []
        for what, differs in knobs:
            match = next((s for s in self.ranked[1:] if differs(s.ladder)), None)
            if match is not None:
                out.append((what, match))
        return out

    def to_json(self) -> DesignJson:
        return {"target": {"params": self.target_params, "tokens": self.target_tokens,
                           "flops": 6.0 * self.target_params * self.target_tokens},
                "budget": self.budget, "level": self.level, "prior": self.prior, "skills": list(self.skills),
                "chosen": self.chosen.to_json(), "geometric": self.geometric.to_json(),
                "alternatives": [{"tried": what, **s.to_json(), "versus_chosen": dict(zip(("score", "se"), self.versus(s)))}
                                 for what, s in self.alternatives()],
                "tied": [s.ladder.label for s in self.tied()],
                "versus_geometric": dict(zip(("score", "se"), self.versus(self.geometric))),
                "candidates": [s.to_json() for s in self.ranked], "dropped": list(self.dropped),
                "seconds": self.seconds, "notes": list(self.notes)}


def design(target_params: float, budget: float, *, target_tokens: float | None = None,
           skills: Sequence[str] | None = None, skill_fits: Sequence[SkillFit] | None = None,
           space: Space = Space(), per_skill: int = 8, refine: int = 8, refine_draws: int = 16,
           level: float = 0.8, n_eval: int = N_EVAL, task_loss: bool = True, draws: int = SIM_DRAWS, seed: int = 0,
           jobs: int = 1, progress: Callable[[str, int, int], None] | None = None) -> Design:
    """Propose the pilot ladder within `budget` FLOPs that minimises the expected interval
    score of the target's forecast (module docstring). The target trains on `target_tokens`
    (default 20 per parameter). Laws are planted from `skill_fits` (samples of their
    surfaces) when given, else from the default prior for `skills` (default: one generation
    and one multiple-choice skill)."""
    start = time.perf_counter()
    check_level(level)
    if per_skill < 1 or refine_draws < 0 or refine < 0:
        raise UsageError("`per_skill` must be >= 1 (and `refine`, `refine_draws` >= 0)", parameter="per_skill")
    target_tokens = target_tokens or 20.0 * target_params
    check_target(target_params, target_tokens, budget)
    ladders, dropped = candidate_ladders(budget, target_params, target_tokens, space)
    sim = Simulation(target_params, target_tokens, level, n_eval, task_loss, draws, seed)
    planted, names, prior = _planted(skills, skill_fits, per_skill, sim, stage=0)
    report = (lambda stage: (lambda i, n: progress(stage, i, n))) if progress else (lambda stage: None)
    scores = evaluate_all(ladders, planted, sim, 0, jobs, report("candidates"))
    ranked = sorted(scores, key=lambda s: s.score)
    naive = geometric_ladder(budget, target_params, target_tokens)
    if refine and refine_draws:
        more, _, _ = _planted(skills, skill_fits, refine_draws, sim, stage=1)
        top = ranked[:refine] + [s for s in ranked[refine:] if s.ladder == naive]
        refined = [s.merged(m) for s, m in zip(top, evaluate_all([s.ladder for s in top], more, sim, 1, jobs,
                                                                 report("refining")))]
        ranked = sorted(refined, key=lambda s: s.score) + [s for s in ranked[refine:] if s.ladder != naive]
    geometric = next((s for s in ranked if s.ladder == naive), None) or evaluate(naive, planted, sim)
    notes = []
    result = Design(target_params, target_tokens, budget, level, prior, names, tuple(ranked), geometric,
                    tuple(dropped), 0.0)
    tied = result.tied()
    if tied:
        notes.append(f"{len(tied)} other candidate(s) score within one standard error of the chosen ladder "
                     f"(e.g. {tied[0].ladder.label}): the simulations cannot tell them apart; more draws "
                     "per skill or more refinement draws would")
    if ranked[0].coverage < level - 0.15:
        notes.append(f"the chosen ladder's simulated intervals covered {100 * ranked[0].coverage:.0f}% of the "
                     f"planted outcomes, under their nominal {100 * level:.0f}%")
    return Design(target_params, target_tokens, budget, level, prior, names, tuple(ranked), geometric,
                  tuple(dropped), time.perf_counter() - start, tuple(notes))


def _planted(skills: Sequence[str] | None, skill_fits: Sequence[SkillFit] | None, per_skill: int, sim: Simulation,
             stage: int) -> tuple[Planted, tuple[str, ...], str]:
    rng = np.random.default_rng([sim.seed, stage, 0])
    if skill_fits:
        planted = fitted_prior(skill_fits, per_skill, seed=sim.seed + 7919 * stage)
        if not len(planted):
            raise UsageError("none of the fitted skills is predictable, so none can plant a law; "
                             "design without `skill_fits` (the default prior)", parameter="skill_fits")
        return planted, tuple(dict.fromkeys(planted.skills)), "fits"
    names = tuple(skills) if skills else tuple(DEFAULT_SKILLS)
    chance = {s: c for s, c in DEFAULT_SKILLS.items() if s in names}
    return default_prior(names, per_skill, sim.target_params, sim.target_tokens, rng, chance), names, "default"


__all__ = ["Design", "LadderScore", "SkillOutcome", "Simulation", "design", "evaluate", "evaluate_all"]
