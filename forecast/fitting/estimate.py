"""Estimating candidate laws: multi-start, lmfit polish and bootstrap, batched across skills.

A fit of a ladder is many small robust regressions: every (skill, candidate law) pair, each
from a dozen start points, each bootstrapped a thousand times. `fit_jobs` stacks them all
into a few batched Levenberg–Marquardt solves (`forecast.fitting.optimize`): one row per (problem,
start) or (problem, draw), points padded to the longest problem with zero weight. What
costs Python round trips is then per law, not per skill or per draw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import lmfit
import numpy as np
import torch

from forecast.fitting.candidates import TWO_STEP, CandidateFit, Scales, Spec
from forecast.errors import FitError
from forecast.fitting.laws import ACCURACY_LAWS, LOSS_LINK, TASK_LOSS_LAW, Law
from forecast.fitting.observations import Observations
from forecast.fitting.optimize import DTYPE, huber
from forecast.fitting.problems import (
    Problem, draw_start, gather_points, grouped, row, rows_of, stack, summarised, summarised_draws, weighted_order,
    width_bands,
)

ACCURACY_HUBER = 2.0
"""Huber threshold for accuracy residuals, in units of each point's noise: points more than
two standard deviations off a law count linearly, so a bad checkpoint cannot drag it."""
LOSS_HUBER = 1e-3
"""Huber threshold on log task-loss residuals (Hoffmann et al. 2022)."""
BOOTSTRAP_FTOL = 1e-5
"""Relative objective change at which a bootstrap draw counts as converged: draws start at
the point estimate, and their spread dwarfs what further iterations would move them."""
MAX_STARTS = 12
"""Start points solved per problem: the grid's best by initial objective (grids hold 16 to
1,024 points; solving more than the best dozen changed no fit in the backtests)."""
WIDTH_BANDS = 4
"""Bands of bootstrap draws solved apart, by how many points each draw keeps (less padding)."""
CHUNK = 300_000
"""Largest batch (rows × points) solved at once; bigger stacks are split to bound memory."""


@dataclass(frozen=True)
class Job:
    """One candidate to fit on one skill's observations.

    With `finals_only`, laws in (N, D) see only each run's final checkpoint (and the
    bootstrap resamples runs), and so does the two-step chain's loss→accuracy link: mid
    learning-rate schedule a checkpoint's accuracy at a given task loss sits below an
    annealed model's (OLMo ladder, fit ≤ 1.3B: the link from every checkpoint missed the 3B
    accuracy at its measured loss by 2.8 points, −2.3 biased; from final checkpoints, 1.9)."""

    spec: Spec
    obs: Observations
    scales: Scales
    floor: float
    noise: float  # checkpoint noise of accuracy, part of each point's residual scale
    finals_only: bool = False
    seed: tuple[int, ...] = (0,)  # of this job's bootstrap, so draws do not depend on other jobs
    least: float | None = None  # least plateau allowed (None: the floor)


# ----------------------------------------------------------------------------- problems


def _accuracy_problem(law: Law, obs: Observations, scales: Scales, floor: float, noise: float,
                      loss: np.ndarray | None = None, least: float | None = None) -> Problem:
    x = scales.inputs(obs.params, obs.tokens, obs.flops)
    x["floor"] = torch.full((1, 1), floor, dtype=DTYPE)
    x["top"] = torch.full((1, 1), obs.top, dtype=DTYPE)
    x["least"] = torch.full((1, 1), floor if least is None else least, dtype=DTYPE)
    if loss is not None:
        x["loss"] = row(loss)
    se = np.where(np.isfinite(obs.stderr), obs.stderr, 0.0)
    scale = np.sqrt(se**2 + noise**2).clip(min=1e-3)
    return grouped(Problem(law=law, x=x, y=row(obs.accuracy), scale=row(scale), weights=row(np.ones(len(obs))),
                           delta=ACCURACY_HUBER))


def _loss_problem(obs: Observations, scales: Scales, loss: np.ndarray) -> Problem:
    x = scales.inputs(obs.params, obs.tokens, obs.flops)
    return grouped(Problem(law=TASK_LOSS_LAW, x=x, y=row(loss), scale=row(np.ones(len(obs))),
                           weights=row(np.ones(len(obs))), delta=LOSS_HUBER, log_residual=True))


# ----------------------------------------------------------------------------- batched steps


def _chunks(problems: Sequence[Problem], rows_each: Sequence[int]) -> list[list[int]]:
    """Indices of problems grouped so each group's rows × points stays under `CHUNK`."""
    groups, current, size = [], [], 0
    for j, (p, r) in enumerate(zip(problems, rows_each)):
        cost = r * p.points
        if current and size + cost > CHUNK:
            groups.append(current)
            current, size = [], 0
        current.append(j)
        size += cost
    return groups + ([current] if current else [])


def best_starts(problems: Sequence[Problem]) -> list[np.ndarray | FitError]:
    """Multi-start for problems of one law: the grid's best `MAX_STARTS` points per problem
    (by initial objective), all solved in one batch; each problem's best solution. Grouped
    problems (repeated inputs) choose and solve their starts on their summaries, then refine
    the best on every point."""
    law = problems[0].law
    grid = law.start_grid()
    summaries = [summarised(p) for p in problems]
    out: list[np.ndarray | FitError] = []
    for group in _chunks(summaries, [len(grid)] * len(summaries)):
        members = [summaries[j] for j in group]
        starts = np.tile(grid, (len(members), 1))
        if len(grid) > MAX_STARTS:
            initial = stack(members, [len(grid)] * len(members)).solve(starts, max_iter=0)[1]
            keep = [np.argsort(np.where(np.isfinite(o), o, np.inf), kind="stable")[:MAX_STARTS]
                    for o in initial.reshape(len(members), len(grid))]
            starts = np.concatenate([grid[k] for k in keep])
        per = len(starts) // len(members)
        theta, objective, _ = stack(members, [per] * len(members)).solve(starts)
        for theta_j, obj_j in zip(theta.reshape(len(members), per, -1), objective.reshape(len(members), per)):
            finite = np.isfinite(obj_j)
            out.append(theta_j[int(np.argmin(np.where(finite, obj_j, np.inf)))] if finite.any()
                       else FitError(f"{law.name}: the objective is not finite at any start"))
    refine = [j for j, p in enumerate(problems) if p.group is not None and not isinstance(out[j], FitError)]
    for group in _chunks([problems[j] for j in refine], [1] * len(refine)):
        keys = [refine[i] for i in group]
        theta, objective, _ = stack([problems[j] for j in keys], [1] * len(keys)).solve(
            np.stack([out[j] for j in keys]))
        for j, theta_j, obj_j in zip(keys, theta, objective):
            if np.isfinite(obj_j):
                out[j] = theta_j
    return out


def bootstrap(problems: Sequence[Problem], thetas: Sequence[np.ndarray], weights: Sequence[np.ndarray],
              ys: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """Bootstrap draws for problems of one law, batched: problem j's draws solve its data
    reweighted by `weights[j]` (draws, M_j) with targets `ys[j]`, by plain weighted least
    squares (`draw_problem` gives the weights), each started at `thetas[j]`."""
    out: list[np.ndarray] = [np.empty(0)] * len(problems)
    for group in _chunks(problems, [len(w) for w in weights]):
        members, counts = [problems[j] for j in group], [len(weights[j]) for j in group]
        stacked = stack(members, counts, weights=[weights[j] for j in group], ys=[ys[j] for j in group], delta=None)
        order = weighted_order(stacked)
        stacked = gather_points(stacked, order)
        starts = np.concatenate([np.repeat(thetas[j][None, :], len(weights[j]), 0) for j in group])
        start = draw_start(members, [thetas[j] for j in group], counts, stacked, order)
        theta = np.empty_like(starts)
        for rows, width in width_bands(stacked, WIDTH_BANDS) if order is not None else [(slice(None), None)]:
            part = stacked if width is None else rows_of(stacked, rows, width)
            theta[rows] = part.solve(starts[rows], ftol=BOOTSTRAP_FTOL, box=True,
                                     start=(start[0][rows, :width], start[1][rows, :width]))[0]
        offset = 0
        for j in group:
            out[j] = theta[offset:offset + len(weights[j])]
            offset += len(weights[j])
    return out


def draw_problem(problem: Problem, theta: np.ndarray, weights: np.ndarray, ys: np.ndarray | None
                 ) -> tuple[Problem, np.ndarray, np.ndarray | None]:
    """A problem's bootstrap draws (resampling `weights` and targets `ys`, (draws, M)) as
    weighted least squares: Fast and Robust Bootstrap (Salibián-Barrera & Zamar 2002), each
    draw solves the estimating equations with the Huber weights of the full-data fit
    `theta` held fixed, which converges in a few Gauss–Newton steps from the point estimate
    instead of the many a re-weighted Huber fit needs. Repeated inputs are summarised
    (`summarised_draws`): (problem, weights, targets) of what to solve, (draws, U)."""
    fixed = weights * problem.robust_weights(theta)[None, :]
    return summarised_draws(problem, fixed, ys)


def polish(problem: Problem, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], bool]:
    """lmfit from the best batched start: the single-fit report (stderr, bounds hit)."""
    law = problem.law
    params = law.lmfit_parameters(start)
    with warnings.catch_warnings():  # a singular covariance only means "no stderr": reported as NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        residuals = problem.numpy_residuals()
        result = lmfit.minimize(lambda p: residuals(np.array([p[n].value for n in law.names])),
                                params, method="least_squares", loss="huber", f_scale=problem.delta)
    values = np.array([result.params[n].value for n in law.names])
    stderr = np.array([np.nan if result.params[n].stderr is None else result.params[n].stderr for n in law.names])
    # keep the better of the two optima (the batched one is sometimes closer to a bound)
    before, after = (float(np.sum(huber(residuals(v), problem.delta))) for v in (start, values))
    if not (after <= before * (1 + 1e-9)):
        values = start
    return values, stderr, _at_bound(law, values), bool(result.success)


def _at_bound(law: Law, values: np.ndarray) -> tuple[str, ...]:
    return tuple(
        p.name for p, v in zip(law.params, values)
        if (math.isclose(v, p.lower, rel_tol=1e-6, abs_tol=1e-6) or math.isclose(v, p.upper, rel_tol=1e-6, abs_tol=1e-6))
        and not (p.name == "amp" and math.isclose(v, p.upper, rel_tol=1e-6))  # a plateau at the top is no warning
    )


def bootstrap_weights(obs: Observations, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Resampling weights, each (draws, M): `runs` counts how often each point's run was
    drawn when runs are resampled within each model size (seeds, reruns, budgets);
    `points` resamples checkpoints within the drawn runs by the Poisson bootstrap (each
    point's count ~ Poisson(times its run was drawn); Hanley & MacGibbon 2006), which
    matches the multinomial resample in distribution as checkpoints grow and vectorises."""
    column = np.empty(len(obs), dtype=np.int64)  # each point's run among the drawn counts
    counts, offset = [], 0
    for size in obs.sizes:
        at_size = obs.params == size
        members = np.unique(obs.run[at_size])
        counts.append(rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=draws))
        column[at_size] = offset + np.searchsorted(members, obs.run[at_size])
        offset += len(members)
    runs = np.concatenate(counts, axis=1)[:, column].astype(np.float64) if counts else np.zeros((draws, 0))
    return runs, rng.poisson(runs).astype(np.float64)


# ----------------------------------------------------------------------------- jobs


@dataclass
class _Prepared:
    """A job's problems (one per stage) and, once fitted, each stage's estimate."""

    job: Job
    stages: list[Problem]  # [accuracy] or [loss law, link]
    subsets: list[np.ndarray]  # which of the job's points each stage uses
    loss_ref: float = 0.0
    loss_scale: float = 1.0
    thetas: list[np.ndarray] | None = None
    error: FitError | None = None


def _prepare(job: Job) -> _Prepared:
    obs, spec = job.obs, job.spec
    law_points = obs.final if job.finals_only else np.ones(len(obs), dtype=bool)
    if spec.law == "level":  # the largest size's final accuracy, carried on
        law_points = obs.final & (obs.params == obs.params.max())
    if spec.law != TWO_STEP:
        law = ACCURACY_LAWS[spec.law]
        if law_points.sum() < len(law.params):
            raise FitError(f"{law.name} has {len(law.params)} parameters and needs at least as many points, "
                           f"got {int(law_points.sum())}")
        problem = _accuracy_problem(law, obs.subset(law_points), job.scales, job.floor, job.noise, least=job.least)
        return _Prepared(job, [problem], [law_points])
    loss = obs.losses.get(spec.via) if spec.via else None
    if loss is None:
        raise FitError(f"no intermediate loss {spec.via!r}")
    ok = np.isfinite(loss)
    first = ok & law_points
    ok = first if job.finals_only else ok
    if first.sum() < 6 or np.any(loss[ok] <= 0) or len(np.unique(obs.params[first])) < 2:
        raise FitError(f"intermediate {spec.via!r} needs positive values at ≥ 6 checkpoints of ≥ 2 sizes")
    loss_ref = float(np.median(loss[ok]))
    loss_scale = float(np.std(loss[ok])) or 1.0
    stage1 = _loss_problem(obs.subset(first), job.scales, loss[first])
    stage2 = _accuracy_problem(LOSS_LINK, obs.subset(ok), job.scales, job.floor, job.noise,
                               loss=(loss[ok] - loss_ref) / loss_scale, least=job.least)
    return _Prepared(job, [stage1, stage2], [first, ok], loss_ref, loss_scale)


def fit_jobs(jobs: Sequence[Job], *, draws: int = 0, report: bool = True) -> list[CandidateFit | FitError]:
    """Fit every job; bootstrap each `draws` times (0: none). With `report`, each estimate
    is polished by lmfit (stderr, parameters on a bound); hold-out fits skip it.

    Evaluation noise enters the bootstrap by perturbing each accuracy by its stderr; runs
    are resampled within size, checkpoints within run (`bootstrap_weights`). Per job the
    result is a `CandidateFit`, or the `FitError` that says why it could not be fitted.
    Identical jobs (same candidate, same data: `job_key`) are fitted once and share the
    result, as the rolling hold-out's origins and depths that fit the same sizes do."""
    keys = [job_key(job, draws) for job in jobs]
    distinct: dict[tuple, Job] = {}
    for key, job in zip(keys, jobs):
        distinct.setdefault(key, job)
    if len(distinct) == len(jobs):
        return _fit_distinct(jobs, draws, report)
    results = dict(zip(distinct, _fit_distinct(list(distinct.values()), draws, report)))
    return [results[key] for key in keys]


def job_key(job: Job, draws: int) -> tuple:
    """What a job's fit depends on: two jobs with one key give one result (the seed only
    matters with bootstrap draws)."""
    return (job.spec, job.obs.digest(), job.scales, job.floor, job.noise, job.finals_only, job.least,
            job.seed if draws else None)


def _fit_distinct(jobs: Sequence[Job], draws: int, report: bool) -> list[CandidateFit | FitError]:
    prepared: list[_Prepared] = []
    for job in jobs:
        try:
            prepared.append(_prepare(job))
        except FitError as exc:
            prepared.append(_Prepared(job, [], [], error=exc))
    # stage by stage, one batch per law
    for stage in (0, 1):
        by_law: dict[str, list[_Prepared]] = {}
        for item in prepared:
            if item.error is None and len(item.stages) > stage:
                by_law.setdefault(item.stages[stage].law.name, []).append(item)
        for items in by_law.values():
            for item, best in zip(items, best_starts([i.stages[stage] for i in items])):
                if isinstance(best, FitError):
                    item.error = best
                else:
                    item.thetas = (item.thetas or []) + [best]
    results: list[CandidateFit | FitError] = []
    reports: dict[int, tuple] = {}
    for k, item in enumerate(prepared):
        if item.error is None and report:
            reports[k] = tuple(zip(*(polish(p, t) for p, t in zip(item.stages, item.thetas))))
            item.thetas = list(reports[k][0])
    draws_of = _bootstrap_all(prepared, draws) if draws else {}
    for k, item in enumerate(prepared):
        if item.error is not None:
            results.append(item.error)
            continue
        names = item.job.spec.param_names
        theta = np.concatenate(item.thetas)
        if k in reports:
            _, stderr, bounds, success = reports[k]
            stderr = np.concatenate(stderr)
            prefixes = ("loss.", "link.") if len(item.stages) == 2 else ("",)
            at_bound = tuple(pre + n for pre, b in zip(prefixes, bounds) for n in b)
            converged = all(success)
        else:
            stderr, at_bound, converged = np.full(len(names), np.nan), (), True
        results.append(CandidateFit(
            spec=item.job.spec, floor=item.job.floor, top=item.job.obs.top, scales=item.job.scales, theta=theta,
            stderr=stderr, draws=draws_of.get(k, np.empty((0, len(theta)))), converged=converged, at_bound=at_bound,
            loss_ref=item.loss_ref, loss_scale=item.loss_scale, least=item.job.least))
    return results


def _bootstrap_all(prepared: list[_Prepared], draws: int) -> dict[int, np.ndarray]:
    """Bootstrap every fitted job, batched per (stage, law); draws of a job's stages share
    the same resampling of its points."""
    resampled = {}
    for k, item in enumerate(prepared):
        if item.error is not None:
            continue
        obs = item.job.obs
        rng = np.random.default_rng(item.job.seed)
        run_w, point_w = bootstrap_weights(obs, draws, rng)
        se = np.where(np.isfinite(obs.stderr), obs.stderr, 0.0)
        noisy = np.clip(obs.accuracy + rng.standard_normal((draws, len(obs))) * se, 0, 1)
        law_w = run_w if item.job.finals_only else point_w
        if len(item.stages) == 1:
            parts = [(law_w[:, item.subsets[0]], noisy[:, item.subsets[0]])]
        else:  # the loss law and the link see the final checkpoints (or all)
            parts = [(law_w[:, item.subsets[0]], None), (law_w[:, item.subsets[1]], noisy[:, item.subsets[1]])]
        # summarised at once, so what is kept per job does not grow with repeated points
        resampled[k] = [draw_problem(p, t, w, y) for p, t, (w, y) in zip(item.stages, item.thetas, parts)]
    out: dict[int, list[np.ndarray]] = {k: [] for k in resampled}
    for stage in (0, 1):
        by_law: dict[str, list[int]] = {}
        for k in resampled:
            if len(prepared[k].stages) > stage:
                by_law.setdefault(prepared[k].stages[stage].law.name, []).append(k)
        for keys in by_law.values():
            found = bootstrap([resampled[k][stage][0] for k in keys], [prepared[k].thetas[stage] for k in keys],
                              [resampled[k][stage][1] for k in keys], [resampled[k][stage][2] for k in keys])
            for k, d in zip(keys, found):
                out[k].append(d)
    return {k: np.concatenate(v, axis=1) for k, v in out.items()}
