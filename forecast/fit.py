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

import math
import zlib
from collections.abc import Sequence
import dataclasses
from dataclasses import asdict, dataclass, field

import numpy as np

from forecast import __version__
from forecast.candidates import TWO_STEP, CandidateFit, Scales, Spec
from forecast.estimate import Job, fit_jobs
from forecast.errors import DataError, FitError, UsageError
from forecast.fits import FITTED, NOT_PREDICTABLE, Candidate, Fits, PilotRun, SkillFit
from forecast.laws import ACCURACY_LAWS
from forecast.observations import Observations, observations
from forecast.quantities import format_count
from forecast.runs import Run
from forecast.samples import extrapolation_distance

ALL_LAWS = (*ACCURACY_LAWS, TWO_STEP)
MIN_WEIGHT = 0.05
"""Candidates whose weight falls below this are dropped from the mixture."""
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
    """Fit every skill of every (family, recipe) group in `runs` (or the chosen ones)."""
    options = options or FitOptions()
    if not runs:
        raise DataError(None, None, "no runs to fit", "give a directory holding run directories")
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        if (family is None or run.family == family) and (recipe is None or run.recipe.label == recipe):
            groups.setdefault(run.group, []).append(run)
    if not groups:
        have = ", ".join(sorted({f"{r.family}/{r.recipe.label}" for r in runs}))
        raise UsageError(f"no runs of family={family!r} recipe={recipe!r}; the runs hold: {have}")
    wanted = None if not skills or any(s.lower() == "all" for s in skills) else {s.lower() for s in skills}
    results = []
    for key in sorted(groups):
        members = groups[key]
        names = sorted({s for r in members for s in r.skills})
        if wanted is not None:
            unknown = wanted - {n.lower() for n in names}
            if unknown and len(groups) == 1:
                raise UsageError(f"unknown skill {sorted(unknown)[0]!r}; the runs hold: {', '.join(names)}")
            names = [n for n in names if n.lower() in wanted]
        results += fit_group(members, names, options)
    return Fits(skills=tuple(results), tool=f"forecast {__version__}")


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
    warnings: list[str] = field(default_factory=list)
    scores: dict[Spec, tuple[float, float, float, float]] = field(default_factory=dict)
    failures: dict[Spec, str] = field(default_factory=dict)
    weights: dict[Spec, float] = field(default_factory=dict)

    def job(self, spec: Spec, obs: Observations) -> Job:
        return Job(spec, obs, self.scales, self.floors[spec.floor], self.noise if math.isfinite(self.noise) else 0.01,
                   self.finals_only, (*self.seed, zlib.crc32(spec.key.encode())))


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
            st.weights = selection_weights({s: v[0] for s, v in st.scores.items()})
        else:
            st.weights = {spec: 1.0 / len(st.specs) for spec in st.specs}
            st.warnings.append(f"only {len(st.obs.sizes)} model sizes: laws could not be checked by extrapolating "
                               "to the largest, so they are weighted equally (≥ 3 sizes recommended)")
        jobs += [(st, spec) for spec in st.weights]
    results = fit_jobs([st.job(spec, st.obs) for st, spec in jobs], draws=options.draws)
    fitted: dict[int, list[Candidate]] = {}
    for (st, spec), result in zip(jobs, results):
        if isinstance(result, FitError):
            st.failures[spec] = str(result)
            continue
        mae, shift, misfit, dist = st.scores.get(spec, (None, None, None, None))
        fitted.setdefault(id(st), []).append(Candidate(_keep_draws(result, options.keep_draws), st.weights[spec],
                                                      mae, shift, dist, misfit))
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
                 smoothed=tuple(smoothed[obs.run == i].tolist()))
        for i in range(len(obs.run_names)) if np.any(obs.run == i)
    )
    noise = obs.checkpoint_noise() if len(obs) else float("nan")
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
        st.warnings.append("sizes were trained to several token budgets: laws in (params, tokens) were fitted on "
                           "final checkpoints only (intermediate ones sit mid learning-rate schedule)")
    return st


def _conclude(st: _Skill, candidates: list[Candidate], options: FitOptions) -> SkillFit:
    """The skill's `SkillFit`: status and reason, candidates by weight, the choice and why."""
    if st.reason is not None:
        return SkillFit(status=NOT_PREDICTABLE, reason=st.reason, scales=st.scales, **st.base)
    if not candidates:
        return SkillFit(status=NOT_PREDICTABLE, scales=st.scales, reason="no law could be fitted: "
                        + "; ".join(f"{s.key}: {m}" for s, m in st.failures.items()), **st.base)
    total = sum(c.weight for c in candidates)
    candidates = sorted((dataclasses.replace(c, weight=c.weight / total) for c in candidates), key=lambda c: -c.weight)
    best = candidates[0]
    warnings = list(st.warnings)
    for c in candidates:
        if c.fit.at_bound:
            warnings.append(f"{c.key}: parameter(s) {', '.join(c.fit.at_bound)} at a bound")
        if not c.fit.converged:
            warnings.append(f"{c.key}: the optimiser did not report convergence")
    sizes = st.obs.sizes
    why = explain_choice(candidates, st.scores, sizes, st.failures)
    status, reason = FITTED, None
    noise = st.noise if math.isfinite(st.noise) else 0.01
    rise = float(np.quantile(st.smoothed, 0.95) - np.quantile(st.smoothed, 0.05))
    plateau = float(np.median(best.fit.plateau(best.fit.draws if len(best.fit.draws) else best.fit.theta)))
    room = st.obs.top - best.fit.floor
    if plateau - best.fit.floor < max(MIN_PLATEAU * room, 3 * noise):
        status = NOT_PREDICTABLE
        reason = (f"the best law ({best.key}) levels off at {plateau:.3f}, barely above its floor "
                  f"{best.fit.floor:.3f}: no transition is visible in these runs, so when it groks cannot be told")
    elif best.holdout_mae is not None and best.holdout_mae > max(3 * noise, options.max_holdout_error * rise, 0.02):
        status = NOT_PREDICTABLE
        reason = (f"laws fitted on the smaller sizes miss the largest pilot ({format_count(sizes[-1])} params) by "
                  f"{100 * best.holdout_mae:.1f} points at best, against a rise of {100 * rise:.1f} points and "
                  f"noise of {100 * noise:.1f}: the trend does not extrapolate")
    return SkillFit(status=status, reason=reason, scales=st.scales, candidates=tuple(candidates), chosen=best.key,
                    why=why, warnings=tuple(warnings), **st.base)


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
    noise = noise if math.isfinite(noise) else 0.0
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

    Sets, per skill and candidate, `scores[spec]` = (mean absolute error over origins,
    shift, misfit, distance): shift and misfit (see `holdout_errors`) are RMS over origins
    per unit of extrapolation distance, scaled to the last origin's distance, which comes
    with them; and `failures[spec]` for candidates that could not be fitted at the first
    origin."""
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
        noise = st.noise if math.isfinite(st.noise) else 0.0
        found.setdefault((id(st), spec), []).append((*holdout_errors(result, held, noise), distance))
    for st in states:
        for spec in st.specs:
            if spec in st.failures or (id(st), spec) not in found:
                continue
            maes, shifts, misfits, distances = (np.array(v) for v in zip(*found[(id(st), spec)]))
            per_distance = lambda v: float(np.sqrt(np.mean((v / np.maximum(distances, 1e-3)) ** 2)))  # noqa: E731
            st.scores[spec] = (float(np.mean(maes)), per_distance(shifts) * distances[0],
                               per_distance(misfits) * distances[0], float(distances[0]))


def holdout_errors(cf: CandidateFit, held: Observations, noise: float) -> tuple[float, float, float]:
    """(mean absolute error, best alignment shift, misfit) of a law on held-out points.

    The shift is the single offset δ, in e-folds of tokens, for which the law evaluated at
    tokens·e^δ best matches the held-out points (least absolute error over δ ∈ [−4, 4]):
    how far the law misplaced the held-out size's transition along the token axis. The
    misfit is what remains once shifted: the RMS residual (accuracy) beyond the
    measurement `noise`, i.e. error in the shape of the curve rather than its position."""
    pred = cf.accuracy(cf.theta, held.params, held.tokens)[0]
    mae = float(np.mean(np.abs(pred - held.accuracy)))
    shifts = np.linspace(-4.0, 4.0, 161)
    shifted = cf.accuracy(cf.theta, held.params[None, :], held.tokens[None, :] * np.exp(shifts)[:, None])
    errors = np.mean(np.abs(shifted - held.accuracy[None, :]), axis=1)
    candidates = np.flatnonzero(errors <= errors.min() + 1e-12)
    best = candidates[np.argmin(np.abs(shifts[candidates]))]  # the smallest shift among equally good ones
    rms = float(np.sqrt(np.mean((shifted[best] - held.accuracy) ** 2)))
    return mae, float(shifts[best]), math.sqrt(max(0.0, rms**2 - noise**2))


def selection_weights(maes: dict[Spec, float]) -> dict[Spec, float]:
    """Weights ∝ (best MAE / MAE)^4, dropping those below `MIN_WEIGHT`: a law that missed the
    held-out size by twice the best gets 1/16 of its weight."""
    best = max(min(maes.values()), 1e-4)
    raw = {s: (best / max(m, 1e-4)) ** 4 for s, m in maes.items()}
    total = sum(raw.values())
    kept = {s: w / total for s, w in raw.items() if w / total >= MIN_WEIGHT}
    total = sum(kept.values())
    return {s: w / total for s, w in sorted(kept.items(), key=lambda kv: -kv[1])}


def explain_choice(candidates: list[Candidate], scores: dict, sizes: np.ndarray,
                   failures: dict[Spec, str]) -> str:
    """One sentence on why the chosen law won."""
    best = candidates[0]
    if best.holdout_mae is None:
        return f"{best.key} (equal weights: too few sizes to score extrapolation)"
    fitted = f"{format_count(sizes[0])}–{format_count(sizes[-2])}"
    text = (f"{best.key}: fitted on {fitted} params it predicted the {format_count(sizes[-1])} run(s) within "
            f"{100 * best.holdout_mae:.1f} points (mean abs.)")
    ranked = sorted(scores.items(), key=lambda kv: kv[1][0])
    others = [f"{s.key} {100 * v[0]:.1f}" for s, v in ranked if s != best.fit.spec][:3]
    if others:
        text += "; others: " + ", ".join(others)
    text += f"; weight {best.weight:.2f}"
    if failures:
        text += f"; {len(failures)} candidate(s) failed to fit"
    return text


def _keep_draws(cf: CandidateFit, keep: int) -> CandidateFit:
    if len(cf.draws) <= keep:
        return cf
    return CandidateFit(cf.spec, cf.floor, cf.top, cf.scales, cf.theta, cf.stderr, cf.draws[:keep], cf.converged,
                        cf.at_bound, cf.loss_ref, cf.loss_scale, cf.notes)
