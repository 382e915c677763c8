"""`fit(runs) -> Fits`: per skill, every applicable law, chosen by how well it extrapolates.

For each (family, recipe) group and skill:
1. gather post-warm-up checkpoints (`observations`) and read the noise and the rise;
   a skill whose trend cannot be read gets `not-predictable` with the reason;
2. fit every candidate (law × floor × intermediate) on all but the largest pilot size and
   score it on the largest (the hold-out); weight candidates by that score;
3. refit the weighted candidates on everything, with bootstrap draws for the intervals;
4. record parameters, scores, weights, the choice and why.
Groups are never pooled: runs of different families or recipes are fitted separately.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
import dataclasses
from dataclasses import asdict, dataclass, field

import numpy as np

from forecast.candidates import TWO_STEP, Scales, Spec
from forecast.estimate import Job, fit_jobs
from forecast.errors import DataError, FitError, UsageError
from forecast.fits import Fits
from forecast.laws import ACCURACY_LAWS
from forecast.observations import PRIOR_NOISE, Observations, observations
from forecast.optimize import torch_threads
from forecast.quantities import format_count
from forecast.results import Candidate, HoldoutScore, PilotRun, SkillFit, match_skills, wants_all
from forecast.runs import Run
from forecast.samples import extrapolation_distance
from forecast.selection import explain_choice, holdout_errors, selection_weights
from forecast.status import Note, NoteCode, Status
from forecast.version import __version__

ALL_LAWS = (*ACCURACY_LAWS, TWO_STEP)
MIN_PLATEAU = 0.1
"""A law whose plateau rises less than this fraction of the way from floor to top shows no
transition: its grok threshold (half way to the plateau) would be meaningless."""


@dataclass(frozen=True)
class FitOptions:
    """How to fit. Defaults are what the backtests in `benchmarks/` were run with."""

    laws: tuple[str, ...] = ALL_LAWS  # candidate laws to consider
    draws: int = 400  # bootstrap draws per candidate
    keep_draws: int = 200  # draws stored in the fit file
    skip_fraction: float = 0.01  # drop checkpoints before this fraction of a run's tokens (warm-up)
    min_tokens: float = 0.0  # and before this many tokens
    max_per_run: int = 40  # thin denser runs to this many checkpoints (even in log tokens)
    min_sizes: int = 3  # fewer model sizes: not-predictable (a trend through two cannot be checked)
    holdout_origins: int = 2  # hold-outs per skill: fit on sizes below each of the largest ones, predict it
    smooth: bool = False  # make accuracy non-decreasing in tokens within each run first
    seed: int = 0
    via: tuple[str, ...] | None = None  # two-step intermediates; None: own loss, else all metrics
    max_holdout_error: float = 0.25  # not-predictable if the hold-out misses by more than this
    # fraction of the skill's rise (and by more than 3 checkpoint noise levels)
    threads: int | None = 1  # torch CPU threads while fitting (None: leave torch's setting);
    # fits are many small tensors, where extra threads only spin (measured on 2 cores)
    allow_incomplete: bool = False  # fit pilot runs whose training did not finish (else left out)
    losses: bool = False  # also fit L(N, D) to every loss series (forecast.loss_fit), for `predict --metric loss`
    # (`forecast fit` does; off by default here, as backtests and recipe comparisons need none)

    def __post_init__(self) -> None:
        unknown = [law for law in self.laws if law not in ALL_LAWS]
        if unknown:
            raise UsageError(f"unknown law {unknown[0]!r}; choose from {', '.join(ALL_LAWS)}")
        if self.draws < 0 or self.keep_draws < 0:
            raise UsageError("draws must be >= 0")
        if not 0 <= self.skip_fraction < 1:
            raise UsageError("skip_fraction must be in [0, 1)")


def fit(
    runs: Sequence[Run],
    *,
    skills: Sequence[str] | None = None,
    family: str | None = None,
    recipe: str | None = None,
    options: FitOptions | None = None,
) -> Fits:
    """Fit every skill of every (family, recipe) group in `runs` (or the chosen ones); with
    `options.losses`, also the loss law of every loss series (`fit_group_losses`)."""
    options = options or FitOptions()
    runs = usable_runs(runs, options)
    losses = tuple(fit_group_losses(runs, skills, family, recipe, options))
    if losses and not wants_all(skills):  # names of loss-only metrics are not skills to fit
        metrics = {f.metric.lower() for f in losses if f.kind == "metric"}
        skills = [s for s in skills if s.lower() not in metrics]
        if not skills:
            return Fits(skills=(), tool=f"forecast {__version__}", losses=losses)
    with torch_threads(options.threads):
        fits = _fit(runs, skills, family, recipe, options)
    return dataclasses.replace(fits, losses=losses)


def fit_group_losses(runs: Sequence[Run], skills: Sequence[str] | None, family: str | None, recipe: str | None,
                     options: FitOptions) -> list:
    """The loss laws beside the skills' fits (`forecast.loss_fit`): every loss series of the
    chosen groups, or with `skills` named, those skills' task losses and the run-level
    metrics named among them."""
    if not options.losses:
        return []
    from forecast.loss_fit import fit_losses

    chosen = [r for r in runs if (family is None or r.family == family) and (recipe is None or r.recipe.label == recipe)]
    return fit_losses(chosen, metrics=None if wants_all(skills) else skills, draws=min(options.draws, 200),
                      seed=options.seed, skip_fraction=options.skip_fraction, max_per_run=options.max_per_run,
                      threads=options.threads)


def usable_runs(runs: Sequence[Run], options: FitOptions) -> list[Run]:
    """The runs a fit may use: a pilot run whose training did not finish (`complete: false`)
    would pose as a model trained to fewer tokens, so it is left out unless
    `allow_incomplete`; a `DataError` when nothing is left."""
    if not runs:
        raise DataError(None, None, "no runs to fit", "give a directory holding run directories")
    kept = [r for r in runs if options.allow_incomplete or r.complete is not False]
    if not kept:
        raise DataError(runs[0].path, "extra.complete", "every run is incomplete (training did not finish)",
                        "finish training (rerun `forecast pilot`), or pass --allow-incomplete")
    return kept


def _fit(runs: Sequence[Run], skills: Sequence[str] | None, family: str | None, recipe: str | None,
         options: FitOptions) -> Fits:
    groups = group_runs(runs, family, recipe)
    results = []
    for key in sorted(groups):
        members = groups[key]
        names = sorted({s for r in members for s in r.skills})
        if not wants_all(skills):
            if len(groups) == 1:
                names = match_skills(names, skills)  # an unknown name is an error
            else:
                names = [n for n in names if n.lower() in {s.lower() for s in skills}]
        results += fit_group(members, names, options)
    return Fits(skills=tuple(results), tool=f"forecast {__version__}")


def group_runs(runs: Sequence[Run], family: str | None = None, recipe: str | None = None
               ) -> dict[tuple[str, str], list[Run]]:
    """Runs by (family, recipe label), keeping the chosen ones; `UsageError` when none is."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        if (family is None or run.family == family) and (recipe is None or run.recipe.label == recipe):
            groups.setdefault(run.group, []).append(run)
    if not groups:
        have = ", ".join(sorted({f"{r.family}/{r.recipe.label}" for r in runs}))
        raise UsageError(f"no runs of family={family!r} recipe={recipe!r}; the runs hold: {have}")
    return groups


@dataclass
class _Skill:
    """One skill's fit in progress: its observations and what is known so far."""

    skill: str
    obs: Observations
    base: dict
    smoothed: np.ndarray
    noise: float
    seed: tuple[int, ...]
    reason: str | None = None
    scales: Scales | None = None
    floors: dict[str, float] = field(default_factory=dict)
    specs: list[Spec] = field(default_factory=list)
    finals_only: bool = False
    notes: list[Note] = field(default_factory=list)
    scores: dict[Spec, HoldoutScore] = field(default_factory=dict)
    failures: dict[Spec, str] = field(default_factory=dict)
    weights: dict[Spec, float] = field(default_factory=dict)

    def job(self, spec: Spec, obs: Observations) -> Job:
        return Job(spec, obs, self.scales, self.floors[spec.floor], self.noise, self.finals_only,
                   (*self.seed, zlib.crc32(spec.key.encode())))


def fit_skill(runs: Sequence[Run], skill: str, options: FitOptions) -> SkillFit:
    """Fit one skill over the runs of one group (see module docstring)."""
    return fit_group(runs, [skill], options)[0]


def fit_group(runs: Sequence[Run], skills: Sequence[str], options: FitOptions) -> list[SkillFit]:
    """Fit skills over the runs of one group. Every skill's candidates are fitted together,
    one batch per law and stage (`forecast.estimate.fit_jobs`)."""
    family, recipe = runs[0].group
    states = [_prepare_skill(runs, skill, options) for skill in skills]
    live = [st for st in states if st.reason is None]
    rolling_holdout([st for st in live if len(st.obs.sizes) >= 3], options.holdout_origins)
    jobs: list[tuple[_Skill, Spec]] = []
    for st in live:
        if len(st.obs.sizes) >= 3:
            if not st.scores:
                st.reason = "no law could be fitted: " + "; ".join(f"{s.key}: {m}" for s, m in st.failures.items())
                continue
            st.weights = selection_weights({s: v.mae for s, v in st.scores.items()})
        else:
            st.weights = {spec: 1.0 / len(st.specs) for spec in st.specs}
            st.notes.append(Note(NoteCode.FEW_SIZES, f"only {len(st.obs.sizes)} model sizes: laws could not be checked "
                                 "by extrapolating to the largest, so they are weighted equally (≥ 3 sizes recommended)"))
        jobs += [(st, spec) for spec in st.weights]
    results = fit_jobs([st.job(spec, st.obs) for st, spec in jobs], draws=options.draws)
    fitted: dict[int, list[Candidate]] = {}
    for (st, spec), result in zip(jobs, results):
        if isinstance(result, FitError):
            st.failures[spec] = str(result)
            continue
        kept = dataclasses.replace(result, draws=result.draws[:options.keep_draws])
        fitted.setdefault(id(st), []).append(Candidate(kept, st.weights[spec], st.scores.get(spec)))
    return [_conclude(st, fitted.get(id(st), []), options) for st in states]


def _prepare_skill(runs: Sequence[Run], skill: str, options: FitOptions) -> _Skill:
    obs = observations(runs, skill, skip_fraction=options.skip_fraction, min_tokens=options.min_tokens,
                       max_per_run=options.max_per_run)
    if options.smooth and len(obs):
        obs = obs.with_accuracy(obs.smoothed())
    family, recipe = runs[0].group
    smoothed = obs.smoothed() if len(obs) else np.array([])
    pilots = tuple(
        PilotRun(name=obs.run_names[i], hash=obs.run_hashes[i], params=float(obs.params[obs.run == i][0]),
                 seed=obs.run_seeds[i], tokens=tuple(obs.tokens[obs.run == i].tolist()),
                 flops=tuple(obs.flops[obs.run == i].tolist()), accuracy=tuple(obs.accuracy[obs.run == i].tolist()),
                 smoothed=tuple(smoothed[obs.run == i].tolist()),
                 examples=None if obs.examples is None or not np.isfinite(obs.examples[obs.run == i]).any()
                 else tuple(obs.examples[obs.run == i].tolist()))
        for i in range(len(obs.run_names)) if np.any(obs.run == i)
    )
    noise = obs.checkpoint_noise() if len(obs) else PRIOR_NOISE
    base = dict(family=family, recipe=recipe, skill=skill, chance=obs.chance, top=obs.top,
                noise=noise, n_eval=obs.sample_count() if len(obs) else None, pilots=pilots,
                options=asdict(options))
    st = _Skill(skill, obs, base, smoothed, noise, (options.seed, zlib.crc32(f"{family}|{recipe}|{skill}".encode())))
    st.reason = unreadable(obs, noise, smoothed, options.min_sizes)
    if st.reason:
        return st
    st.scales = Scales.of(obs)
    st.floors = {"chance": obs.chance}
    estimated = obs.estimated_floor()
    if estimated is not None:
        st.floors["estimated"] = estimated
    st.specs = candidate_specs(obs, options, st.floors)
    st.finals_only = obs.budget_ladder
    if st.finals_only:
        st.notes.append(Note(NoteCode.BUDGET_LADDER, "sizes were trained to several token budgets: laws in "
                             "(params, tokens) were fitted on final checkpoints only (intermediate ones sit mid "
                             "learning-rate schedule)"))
    return st


def _conclude(st: _Skill, candidates: list[Candidate], options: FitOptions) -> SkillFit:
    """The skill's `SkillFit`: status and reason, candidates by weight, the choice and why."""
    if st.reason is not None:
        return SkillFit(status=Status.NOT_PREDICTABLE, reason=st.reason, scales=st.scales, **st.base)
    if not candidates:
        return SkillFit(status=Status.NOT_PREDICTABLE, scales=st.scales, reason="no law could be fitted: "
                        + "; ".join(f"{s.key}: {m}" for s, m in st.failures.items()), **st.base)
    total = sum(c.weight for c in candidates)
    candidates = sorted((dataclasses.replace(c, weight=c.weight / total) for c in candidates), key=lambda c: -c.weight)
    best = candidates[0]
    notes = list(st.notes)
    for c in candidates:
        if c.fit.at_bound:
            notes.append(Note(NoteCode.AT_BOUND, f"{c.key}: parameter(s) {', '.join(c.fit.at_bound)} at a bound"))
        if not c.fit.converged:
            notes.append(Note(NoteCode.NOT_CONVERGED, f"{c.key}: the optimiser did not report convergence"))
    sizes = st.obs.sizes
    why = explain_choice(candidates, st.scores, sizes, st.failures)
    status, reason = Status.FITTED, None
    noise = st.noise
    rise = float(np.quantile(st.smoothed, 0.95) - np.quantile(st.smoothed, 0.05))
    plateau = float(np.median(best.fit.plateau(best.fit.draws if len(best.fit.draws) else best.fit.theta)))
    room = st.obs.top - best.fit.floor
    mae = best.holdout.mae if best.holdout else None
    if plateau - best.fit.floor < max(MIN_PLATEAU * room, 3 * noise):
        status = Status.NOT_PREDICTABLE
        reason = (f"the best law ({best.key}) levels off at {plateau:.3f}, barely above its floor "
                  f"{best.fit.floor:.3f}: no transition is visible in these runs, so when it groks cannot be told")
    elif mae is not None and mae > max(3 * noise, options.max_holdout_error * rise, 0.02):
        status = Status.NOT_PREDICTABLE
        reason = (f"laws fitted on the smaller sizes miss the largest pilot ({format_count(sizes[-1])} params) by "
                  f"{100 * mae:.1f} points at best, against a rise of {100 * rise:.1f} points and "
                  f"noise of {100 * noise:.1f}: the trend does not extrapolate")
    return SkillFit(status=status, reason=reason, scales=st.scales, candidates=tuple(candidates), law=best.key,
                    why=why, notes=tuple(notes), **st.base)


def unreadable(obs: Observations, noise: float, smoothed: np.ndarray, min_sizes: int = 3) -> str | None:
    """Why the skill's trend cannot be read from these runs, or None if it can."""
    if len(obs) < 3:
        return (f"only {len(obs)} checkpoints with known training tokens after warm-up: too few to fit any law")
    sizes = obs.sizes
    if len(sizes) < 2:
        return (f"a single model size ({format_count(sizes[0])} params): nothing carries the skill across "
                "sizes; add pilot runs of other sizes")
    if len(sizes) < min_sizes:
        return (f"only {len(sizes)} model sizes ({', '.join(format_count(s) for s in sizes)} params): a law "
                f"fitted to them cannot be checked by predicting the largest from the rest; add a size "
                f"(need {min_sizes})")
    rise = float(np.quantile(smoothed, 0.95) - np.quantile(smoothed, 0.05))
    level = float(np.median(smoothed))
    if rise < max(4 * noise, 0.02):
        if level - obs.chance < max(3 * noise, 0.03):
            return (f"flat at chance in every pilot run (median accuracy {level:.3f}, chance {obs.chance:.3f}): "
                    "the transition has not started at these scales and cannot be located from these runs")
        if level < 0.5 * (obs.chance + obs.top):
            return (f"the trend ({100 * rise:.1f} points across all pilots) is within the checkpoint-to-checkpoint "
                    f"noise (±{100 * noise:.1f} points): not predictable from these runs")
    return None


def candidate_specs(obs: Observations, options: FitOptions, floors: dict[str, float]) -> list[Spec]:
    """Every candidate that applies to these observations."""
    specs = []
    n_sizes = len(obs.sizes)
    for law in options.laws:
        for floor in floors:
            if law == TWO_STEP:
                if options.via is not None:
                    vias = [v for v in options.via if v in obs.losses or (v == obs.skill and "own" in obs.losses)]
                    vias = ["own" if v == obs.skill else v for v in vias]
                elif "own" in obs.losses:
                    vias = ["own"]
                else:
                    vias = sorted(obs.losses)
                specs += [Spec(law, floor, via) for via in vias]
            elif law == "grok_scaling":
                if n_sizes >= 2 and len(obs) >= 2 * 5:
                    specs.append(Spec(law, floor))
            elif len(obs) >= len(ACCURACY_LAWS[law].params) + 1:
                specs.append(Spec(law, floor))
    return specs


def rolling_holdout(states: Sequence[_Skill], origins: int) -> None:
    """Score every candidate of every skill by extrapolation, rolling the origin as in
    time-series cross-validation: fit on the sizes below the largest and predict the
    largest, then on the sizes below the second largest and predict that one, ...
    (`origins` times, while at least two sizes remain to fit on). All fits are batched.

    Sets, per skill and candidate, `scores[spec]`, a `HoldoutScore`: mean absolute error
    over origins; shift and misfit (see `holdout_errors`) as RMS over origins per unit of
    extrapolation distance, scaled to the last origin's distance, which comes with them;
    and `failures[spec]` for candidates that could not be fitted at the first origin."""
    jobs, keys = [], []
    for st in states:
        sizes = st.obs.sizes
        for origin in range(1, min(origins, len(sizes) - 2) + 1):
            target = sizes[-origin]
            inner = st.obs.subset(st.obs.params < target)
            held = st.obs.subset(st.obs.params == target)
            held = held.subset(held.final) if st.finals_only else held
            distance = float(extrapolation_distance(target, held.flops.max(), inner.sizes.max(), inner.flops.max()))
            for spec in st.specs:
                jobs.append(st.job(spec, inner))
                keys.append((st, spec, origin, held, distance))
    found: dict[tuple[int, Spec], list[tuple[float, float, float, float]]] = {}
    for (st, spec, origin, held, distance), result in zip(keys, fit_jobs(jobs, report=False)):
        if isinstance(result, FitError):
            if origin == 1:
                st.failures[spec] = str(result)
            continue
        found.setdefault((id(st), spec), []).append((*holdout_errors(result, held, st.noise), distance))
    for st in states:
        for spec in st.specs:
            if spec in st.failures or (id(st), spec) not in found:
                continue
            maes, shifts, misfits, distances = (np.array(v) for v in zip(*found[(id(st), spec)]))
            per_distance = lambda v: float(np.sqrt(np.mean((v / np.maximum(distances, 1e-3)) ** 2)))  # noqa: E731
            st.scores[spec] = HoldoutScore(mae=float(np.mean(maes)), shift=per_distance(shifts) * distances[0],
                                           misfit=per_distance(misfits) * distances[0], distance=float(distances[0]))
