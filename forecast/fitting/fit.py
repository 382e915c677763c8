"""`fit_runs(runs) -> Fitted`: per skill, every applicable law, chosen by how well it extrapolates.

For each (family, recipe) group and skill:
1. gather post-warm-up checkpoints (`observations`) and measure the noise; only data that
   supports no number at all (nothing after warm-up, one checkpoint of one size) is
   `not-predictable`;
2. fit every candidate (law × floor × intermediate, and the standing no-trend candidate
   `level`) on the sizes below each held-out size and predict that size, rolling the
   origin over every size that leaves two to fit on (`rolling_holdout`); weight the
   candidates by the likelihood of what they predicted and calibrate how the forecast
   widens with distance (`forecast.fitting.selection`);
3. refit the weighted candidates on everything, with bootstrap draws for the intervals;
4. record parameters, scores, weights, calibration, the choice and why.
Groups are never pooled: runs of different families or recipes are fitted separately.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from forecast.fitting.batches import Progress, skill_batches
from forecast.fitting.candidates import TWO_STEP, Scales, Spec, candidate_specs
from forecast.fitting.estimate import Job, fit_jobs
from forecast.fitting.loss_fit import LossFit, fit_losses
from forecast.errors import DataError, FitError, UsageError
from forecast.options import DEFAULT_DRAWS
from forecast.fitting.laws import ACCURACY_LAWS, POOLED_LAWS
from forecast.fitting.observations import PRIOR_NOISE, Observations, observations
from forecast.threads import torch_threads
from forecast.fitting.pooling import POOLED_SPEC, PoolContext, borrowed_items, fit_pooled
from forecast.fitting.latent_fit import LatentContext, latent_candidates, latent_note, latent_why
from forecast.fitting.results import Calibration, Candidate, HoldoutScore, PilotRun, SkillFit, match_skills, wants_all
from forecast.runs.model import Run
from forecast.fitting.holdout import rolling_holdout
from forecast.fitting.tasks import TASK_PREFIX, average_series, tasks_in, variant_fit
from forecast.fitting.selection import HoldoutItem, explain_choice, keep_at_reach, prior_calibration, weigh
from forecast.fitting.status import Note, NoteCode, Status
from forecast.version import __version__

ALL_LAWS = (*(law for law in ACCURACY_LAWS if law not in POOLED_LAWS), TWO_STEP)
UNCHECKED_LAWS = ("level", "log_linear", "power_law")
"""The only candidates used when too few sizes leave nothing to hold out: the no-trend
level and the two simplest trends (a transition's shape cannot be told from two sizes)."""
MIN_BUDGETS = 3
"""A budget ladder of two sizes is checked by a hold-out when its smaller size has this many budgets."""
LEAST_PLATEAU_NOISE = 2.0
"""A law may not level off below the best accuracy a pilot reached minus this many noise
standard deviations."""


@dataclass(frozen=True)
class FitOptions:
    """How to fit. Defaults are what the backtests in `benchmarks/` were run with."""

    laws: tuple[str, ...] = ALL_LAWS  # candidate laws to consider
    draws: int = DEFAULT_DRAWS  # bootstrap draws per candidate
    keep_draws: int = 200  # draws stored in the fit file
    skip_fraction: float = 0.01  # drop checkpoints before this fraction of a run's tokens (warm-up)
    min_tokens: float = 0.0  # and before this many tokens
    max_per_run: int = 40  # thin denser runs to this many checkpoints (even in log tokens)
    min_sizes: int = 3  # fewer sizes: a trend cannot be checked by a hold-out; only the level and the
    # simplest trends are used, weighted by priors, and the forecast says low confidence
    min_fit_sizes: int = 2  # a hold-out fits on at least this many sizes below the held-out one
    smooth: bool = False  # make accuracy non-decreasing in tokens within each run first
    seed: int = 0
    via: tuple[str, ...] | None = None  # two-step intermediates; None: own loss, else all metrics
    threads: int | None = 1  # torch CPU threads while fitting (None: leave torch's setting);
    # fits are many small tensors, where extra threads only spin (measured on 2 cores)
    allow_incomplete: bool = False  # fit pilot runs whose training did not finish (else left out)
    pool: str | None = None  # "families": one more candidate borrows slopes from the other families; "latent": `latent_fit`
    tasks: tuple[str, ...] = ()  # more regexes naming variants of one task (`forecast.fitting.tasks`)
    losses: bool = False  # also fit L(N, D) to every loss series (forecast.fitting.loss_fit), for `predict --metric loss`
    # (`forecast fit` does; off by default here, as backtests and recipe comparisons need none)

    def __post_init__(self) -> None:
        unknown = [law for law in self.laws if law not in ALL_LAWS]
        if unknown:
            raise UsageError(f"unknown law {unknown[0]!r}; choose from {', '.join(ALL_LAWS)}")
        if self.draws < 0 or self.keep_draws < 0:
            raise UsageError("draws must be >= 0")
        if not 0 <= self.skip_fraction < 1:
            raise UsageError("skip_fraction must be in [0, 1)")
        if self.pool not in (None, "families", "latent"):
            raise UsageError(f"`pool={self.pool!r}`: unknown; use 'families' or 'latent' (or leave it out)", parameter="pool")


@dataclass(frozen=True)
class Fitted:
    """What a fit produced: the skill fits and loss fits of the chosen groups, and the tool
    that made them. The `Fits` façade (`forecast.fits`) wraps it with the forecasts."""

    skills: tuple[SkillFit, ...]
    losses: tuple[LossFit, ...] = ()
    tool: str = f"forecast {__version__}"


def fit_runs(
    runs: Sequence[Run],
    *,
    skills: Sequence[str] | None = None,
    family: str | None = None,
    recipe: str | None = None,
    options: FitOptions | None = None,
    progress: Progress | None = None,
) -> Fitted:
    """Fit every skill of every (family, recipe) group in `runs` (or the chosen ones); with
    `options.losses`, also the loss law of every loss series of those groups, or, with
    `skills` named, of those skills' task losses and the run-level metrics named among them
    (`forecast.fitting.loss_fit`). Skills are fitted in batches of bounded size
    (`skill_batches`); `progress(done, total, skill)` is called after each batch."""
    options = options or FitOptions()
    runs = usable_runs(runs, options)
    chosen = [r for r in runs if (family is None or r.family == family) and (recipe is None or r.recipe.label == recipe)]
    losses = tuple(fit_losses(chosen, metrics=None if wants_all(skills) else skills, draws=min(options.draws, 200),
                              seed=options.seed, skip_fraction=options.skip_fraction,
                              max_per_run=options.max_per_run, threads=options.threads)) if options.losses else ()
    if losses and not wants_all(skills):  # names of loss-only metrics are not skills to fit
        metrics = {f.metric.lower() for f in losses if f.kind == "metric"}
        skills = [s for s in skills if s.lower() not in metrics]
        if not skills:
            return Fitted(skills=(), losses=losses)
    with torch_threads(options.threads):
        fitted = _fit(runs, skills, family, recipe, options, progress)
    return Fitted(skills=fitted, losses=losses)


def usable_runs(runs: Sequence[Run], options: FitOptions) -> list[Run]:
    """The runs a fit may use: a pilot run whose training did not finish (`complete: false`)
    would pose as a model trained to fewer tokens, so it is left out unless
    `allow_incomplete`; a `DataError` when nothing is left."""
    if not runs:
        raise DataError(None, None, "no runs to fit", "give a directory holding run directories")
    kept = [r for r in runs if options.allow_incomplete or r.complete is not False]
    if not kept:
        raise DataError(runs[0].path, "extra.complete", "every run is incomplete (training did not finish)",
                        "finish training (rerun `forecast pilot`), or pass `allow_incomplete=True`")
    return kept


def _fit(runs: Sequence[Run], skills: Sequence[str] | None, family: str | None, recipe: str | None,
         options: FitOptions, progress: Progress | None = None) -> tuple[SkillFit, ...]:
    groups = group_runs(runs, family, recipe)
    context = PoolContext(group_runs(runs), lambda rs, sk: _observe(rs, sk, options)) if options.pool == "families" \
        else LatentContext(group_runs(runs), min(options.draws, options.keep_draws), options.seed) if options.pool else None
    chosen = {}
    for key in sorted(groups):
        members = groups[key]
        names = sorted({s for r in members for s in r.skills})
        if not wants_all(skills):
            if len(groups) == 1:
                names = match_skills(names, skills)  # an unknown name is an error
            else:
                names = [n for n in names if n.lower() in {s.lower() for s in skills}]
        chosen[key] = names
    total, done, results = sum(len(n) for n in chosen.values()), 0, []
    if progress is not None:
        progress(0, total, "")
    for key, names in chosen.items():
        for batch in skill_batches(groups[key], names):
            results += fit_group(groups[key], batch, options, context)
            done += len(batch)
            if progress is not None:
                progress(done, total, batch[-1])
    return tuple(results)


def _observe(runs: Sequence[Run], skill: str, options: FitOptions) -> Observations:
    obs = observations(runs, skill, skip_fraction=options.skip_fraction, min_tokens=options.min_tokens,
                       max_per_run=options.max_per_run)
    return obs.with_accuracy(obs.smoothed()) if options.smooth and len(obs) else obs


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
    base: SkillFit  # the skill's facts, not yet concluded (no status decided, no candidates): `_conclude` fills it
    smoothed: np.ndarray
    noise: float
    seed: tuple[int, ...]
    reason: str | None = None
    scales: Scales | None = None
    floors: dict[str, float] = field(default_factory=dict)
    least: float | None = None  # least plateau a law may level off at
    specs: list[Spec] = field(default_factory=list)
    finals_only: bool = False
    notes: list[Note] = field(default_factory=list)
    items: dict[Spec, list[HoldoutItem]] = field(default_factory=dict)
    scores: dict[Spec, HoldoutScore] = field(default_factory=dict)
    failures: dict[Spec, str] = field(default_factory=dict)
    weights: dict[Spec, float] = field(default_factory=dict)
    calibration: Calibration | None = None
    others: list[Observations] = field(default_factory=list)  # other families' (pooling)
    latent: LatentContext | None = None  # the latent law holds this skill of this family (`pool="latent"`)
    borrowed_skills: tuple[str, ...] = ()  # the family's other benchmarks the latent law read it from
    borrowed: tuple[str, ...] = ()
    min_sizes: int = 3  # FitOptions.min_sizes

    def job(self, spec: Spec, obs: Observations) -> Job:
        return Job(spec, obs, self.scales, self.floors[spec.floor], self.noise, self.finals_only,
                   (*self.seed, zlib.crc32(spec.key.encode())), least=self.least)

    @property
    def checked(self) -> bool:
        """Whether there are sizes enough to score candidates by a hold-out: 3 sizes, or 2
        in a budget ladder whose smaller size was trained to `MIN_BUDGETS` budgets (its runs
        trace the trend in compute that the larger size's runs then test)."""
        if len(self.obs.sizes) >= max(3, self.min_sizes):
            return True
        return len(self.obs.sizes) == 2 and self.min_sizes <= 3 and self.obs.budget_ladder \
            and int(np.sum(self.obs.final & (self.obs.params == self.obs.sizes[0]))) >= MIN_BUDGETS


def fit_group(runs: Sequence[Run], skills: Sequence[str], options: FitOptions,
              context: PoolContext | LatentContext | None = None, one_task: bool = True) -> list[SkillFit]:
    """Fit skills over the runs of one group. Variants of one task are fitted once, on their
    average, and each is that fit shifted by its offset (`forecast.fitting.tasks`; with
    `one_task`; a variant whose task fit gives no number is fitted alone)."""
    tasks = tasks_in(runs, skills, options.tasks) if one_task else {}
    if not tasks:
        return _fit_skills(runs, skills, options, context)
    averaged = runs
    for task, members in tasks.items():
        averaged = average_series(averaged, TASK_PREFIX + task, members)
    grouped = {m: task for task, members in tasks.items() for m in members}
    names = [s for s in skills if s not in grouped] + [TASK_PREFIX + t for t in tasks]
    variants = {s: _prepare_skill(runs, s, options, None) for s in grouped}
    # a task is flat (the level alone) when half its variants or more show no trend
    flat = {TASK_PREFIX + t: 2 * sum(variants[m].base.flat for m in members) >= len(members)
            for t, members in tasks.items()}
    fits = dict(zip(names, _fit_skills(averaged, names, options, context, flat)))
    alone = [s for s in skills if s in grouped and (variants[s].reason is not None
                                                   or not fits[TASK_PREFIX + grouped[s]].predictable)]
    fits.update(zip(alone, _fit_skills(runs, alone, options, context) if alone else []))
    for s in skills:
        if s in grouped and s not in alone:
            task = grouped[s]
            fits[s] = variant_fit(fits[TASK_PREFIX + task], variants[s].obs, variants[s].base,
                                   _observe(averaged, TASK_PREFIX + task, options), task, tasks[task])
    return [fits[s] for s in skills]


def _fit_skills(runs: Sequence[Run], skills: Sequence[str], options: FitOptions,
                context: PoolContext | LatentContext | None = None, flat: dict[str, bool] | None = None) -> list[SkillFit]:
    """Fit skills over the runs of one group. Every skill's candidates are fitted together,
    one batch per law and stage (`forecast.fitting.estimate.fit_jobs`); with a pooling `context`,
    one more candidate borrows from the other families (`forecast.fitting.pooling`)."""
    states = [_prepare_skill(runs, skill, options, context) for skill in skills]
    for st in states:
        if flat and st.skill in flat and st.reason is None:
            st.base = dataclasses.replace(st.base, flat=flat[st.skill] and not st.others)
    live = [st for st in states if st.reason is None and st.latent is None]  # the latent law: `latent_candidates`
    rolling_holdout([st for st in live if st.checked and len(st.obs.sizes) > options.min_fit_sizes],
                    options.min_fit_sizes)
    rolling_holdout([st for st in live if st.checked and len(st.obs.sizes) <= options.min_fit_sizes], 1,
                    every_law=True)
    for st in live:
        if not st.checked and st.others:  # too few sizes of its own: borrow hold-outs too
            rolling_holdout([st], 1)
            borrowed, st.noise = borrowed_items(st.obs, st.others, st.scales, st.noise, st.seed[-1])
            st.base = dataclasses.replace(st.base, noise=st.noise)  # a scatter at any distance (`beyond_scatter`)
            st.items = {s: st.items.get(s, []) + borrowed.get(s, []) for s in dict.fromkeys([*st.items, *borrowed])}
    jobs: list[tuple[_Skill, Spec]] = []
    pooled: list[_Skill] = []
    for st in live:
        if st.items:
            st.weights, st.scores, st.calibration = weigh(st.items)
            st.weights = keep_at_reach(st.items, st.weights)  # and those a forecast may weigh at its own reach
            if st.base.flat and Spec("level") in st.items:  # no trend to read: laws would read one into noise
                st.weights = {Spec("level"): 1.0}
        else:
            trends = [s for s in st.specs if s.law != "level"]
            st.weights = {s: (0.5 if s.law == "level" else 0.5 / len(trends)) if trends else 1.0 for s in st.specs}
            st.calibration = prior_calibration()
            if len(st.obs.sizes) > 1:
                st.notes.append(Note(NoteCode.FEW_SIZES, f"only {len(st.obs.sizes)} model sizes: no law could be "
                                     "checked by extrapolating to a held-out size; the level and the simplest trends "
                                     "are weighted by priors (≥ 3 sizes recommended)"))
        jobs += [(st, spec) for spec in st.weights if spec != POOLED_SPEC]
        pooled += [st] if POOLED_SPEC in st.weights else []
    results = fit_jobs([st.job(spec, st.obs) for st, spec in jobs], draws=options.draws)
    for st in pooled:
        jobs.append((st, POOLED_SPEC))
        try:
            result, st.borrowed = fit_pooled(st.obs, st.others, st.scales, options.draws, st.seed[-1])
        except FitError as exc:
            result = exc
        results.append(result)
    fitted: dict[int, list[Candidate]] = {}
    for (st, spec), result in zip(jobs, results):
        if isinstance(result, FitError):
            st.failures[spec] = str(result)
            continue
        kept = dataclasses.replace(result, draws=result.draws[:options.keep_draws])
        fitted.setdefault(id(st), []).append(Candidate(kept, st.weights[spec], st.scores.get(spec)))
    return [_conclude(st, latent_candidates(st) if st.latent and not st.reason else fitted.get(id(st), []))
            for st in states]


def _prepare_skill(runs: Sequence[Run], skill: str, options: FitOptions, context: PoolContext | LatentContext | None) -> _Skill:
    obs = _observe(runs, skill, options)
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
    base = SkillFit(family=family, recipe=recipe, skill=skill, status=Status.NOT_PREDICTABLE, reason=None,
                    chance=obs.chance, top=obs.top, noise=noise, n_eval=obs.sample_count() if len(obs) else None,
                    pilots=pilots, options=asdict(options), tokens_known=obs.tokens_known,
                    span=float(np.log(obs.sizes.max() / obs.sizes.min())) if len(obs) else 0.0,
                    flat=bool(len(obs)) and obs.trend_is_flat(noise),
                    accelerating=obs.accelerates(noise) if len(obs) else None)
    st = _Skill(skill, obs, base, smoothed, noise, (options.seed, zlib.crc32(f"{family}|{recipe}|{skill}".encode())),
                min_sizes=options.min_sizes)
    if isinstance(context, LatentContext) and context.covers(family, recipe, skill):
        st.latent, st.base = context, dataclasses.replace(base, flat=False, accelerating=None)  # its shape: the table's
    elif isinstance(context, PoolContext):
        st.others = context.others((family, recipe), skill)
        st.base = dataclasses.replace(base, flat=base.flat and not st.others)  # the other families lend the
        # trend a few sizes hide
    st.reason = obs.unreadable(borrowing=bool(st.others) or st.latent is not None)
    if st.reason:
        return st
    st.scales = Scales.of(obs)
    st.floors = {"chance": obs.chance}
    estimated = obs.estimated_floor()
    if estimated is not None:
        st.floors["estimated"] = estimated
    # no law may level off below what a pilot already reached (beyond its noise)
    reached = max(float(smoothed[obs.run == r][np.argmax(obs.tokens[obs.run == r])]) for r in np.unique(obs.run))
    st.least = float(np.clip(reached - LEAST_PLATEAU_NOISE * noise, obs.chance, obs.top))
    st.specs = candidate_specs(obs, options.laws, options.via, st.floors) if st.checked else \
        [s for s in candidate_specs(obs, options.laws, options.via, {"chance": obs.chance}) if s.law in UNCHECKED_LAWS]
    if len(obs.sizes) == 1:
        st.specs = [s for s in st.specs if s.law == "level"]
    if st.others:
        st.specs = st.specs + [POOLED_SPEC] if st.checked else [Spec("level"), POOLED_SPEC]
    st.finals_only = obs.budget_ladder
    if not obs.tokens_known:
        st.notes.append(Note(NoteCode.UNKNOWN_TOKENS, "the runs give no training tokens: laws are in parameters "
                             "alone, and forecasts are for a target trained like these models"))
    if st.finals_only:
        st.notes.append(Note(NoteCode.BUDGET_LADDER, "sizes were trained to several token budgets: laws in "
                             "(params, tokens) were fitted on final checkpoints only (intermediate ones sit mid "
                             "learning-rate schedule)"))
    return st


def _conclude(st: _Skill, candidates: list[Candidate]) -> SkillFit:
    """The skill's `SkillFit`: status and reason, candidates by weight, the choice and why."""
    if st.reason is not None:
        return dataclasses.replace(st.base, status=Status.NOT_PREDICTABLE, reason=st.reason, scales=st.scales)
    if not candidates:
        return dataclasses.replace(st.base, status=Status.NOT_PREDICTABLE, scales=st.scales, reason="no law could be "
                                   "fitted: " + "; ".join(f"{s.key}: {m}" for s, m in st.failures.items()))
    total = sum(c.weight for c in candidates)
    candidates = sorted((dataclasses.replace(c, weight=c.weight / total) for c in candidates), key=lambda c: -c.weight)
    notes = list(st.notes)
    for c in candidates:
        if c.fit.at_bound:
            notes.append(Note(NoteCode.AT_BOUND, f"{c.key}: parameter(s) {', '.join(c.fit.at_bound)} at a bound"))
        if not c.fit.converged:
            notes.append(Note(NoteCode.NOT_CONVERGED, f"{c.key}: the optimiser did not report convergence"))
    why = (latent_why if st.latent else explain_choice)(candidates, st.scores, st.obs.sizes, st.failures)
    borrowed = st.borrowed if st.latent or any(c.fit.spec == POOLED_SPEC for c in candidates) else ()
    if st.latent:
        notes.append(latent_note(borrowed, st.borrowed_skills))
    elif borrowed:
        notes.append(Note(NoteCode.POOLED, f"other families informed this forecast (a slope shared across "
                          f"families, this family's own offset): {', '.join(borrowed)}"))
    return dataclasses.replace(st.base, status=Status.FITTED, reason=None, scales=st.scales,
                               candidates=tuple(candidates), law=candidates[0].key, why=why, notes=tuple(notes),
                               calibration=st.calibration, borrowed_from=borrowed, borrowed_skills=st.borrowed_skills)
