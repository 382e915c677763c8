"""`rank_next_runs`: which run to train next, by how much it is expected to narrow the target's
forecast per FLOP.

For the runs already trained, the current fit's forecast surfaces (`SurfaceSamples`: law
draws with their calibrated extrapolation drift) are the predictive distribution of what a
new run would measure. Per candidate and simulation s:
1. the candidate's accuracy at each of its checkpoints is the s-th sample of every skill's
   surface, plus evaluation noise (binomial over the skill's items, else its measured
   checkpoint noise: `_eval_noise`);
2. a skill whose runs log a task loss gets one too: a loss law L(N, D) (Hoffmann et al.
   approach 3, `forecast.fit_loss_law`) fitted to the runs' final checkpoints, times its
   run-to-run scatter, coupled to the sampled accuracy by rank (the s-th best accuracy of
   the samples gets the s-th lowest loss), so the two stay consistent;
3. the runs plus the simulated one are refitted with the real pipeline and the target is
   forecast: its 80% intervals' mean width over the skills.
The expected narrowing is the current width minus the mean width over simulations; the
ranking is by narrowing per FLOP of the candidate (its compute, from the run when given,
else 6·N·D), or by the narrowing alone (`rank_by="narrowing"`: per FLOP, cheap runs win;
by narrowing, the most informative run whatever it costs). Run-level loss metrics are not simulated: a skill with a task loss of its own
fits through it (`two_step[via=own]`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecast.design.priors import fitted_prior
from forecast.errors import DataError, FitError, UsageError
from forecast.fits import Fits
from forecast.fitting.fit import FitOptions
from forecast.fits import fit
from forecast.io import read_csv
from forecast.fitting.loss_law import fit_loss_law
from forecast.threads import torch_threads
from forecast.quantities import FLOPS_PER_PARAM_TOKEN, TOKENS_PER_PARAM, parse_quantity
from forecast.fitting.results import SkillFit
from forecast.runs.model import Run, make_series
from forecast.schema.design import NextRunJson, NextRunsJson

SIMULATIONS = 4
"""Simulated outcomes per candidate."""
PRIOR_DRAWS = 100
"""Bootstrap draws of the current fit, whose surfaces the outcomes are sampled from."""
SIM_DRAWS = 10
"""Bootstrap draws in each refit (accuracy intervals do not need more: `forecast.design.search`)."""
CHECKPOINTS = 8
CHECKPOINT_RANGE = 30.0
"""A candidate given by size and tokens is evaluated at this many points from 1/this of its tokens."""
RANK_BY = ("per-flop", "narrowing")


@dataclass(frozen=True)
class CandidateRun:
    """A run that could be trained next: its size, the tokens it is evaluated at (the last is
    its budget) and its compute."""

    name: str
    params: float
    tokens: tuple[float, ...]
    flops: float  # training FLOPs of the run (its cost)

    @classmethod
    def of(cls, name: str, params: float, tokens: float, flops: float | None = None) -> CandidateRun:
        """A candidate evaluated at `CHECKPOINTS` log-spaced points up to its budget."""
        grid = tuple(np.geomspace(tokens / CHECKPOINT_RANGE, tokens, CHECKPOINTS).tolist())
        return cls(name, float(params), grid, float(flops or FLOPS_PER_PARAM_TOKEN * params * tokens))

    @classmethod
    def from_run(cls, run: Run) -> CandidateRun:
        """A run's spec (size, checkpoint tokens, compute); what it measured is ignored."""
        tokens = np.unique(np.concatenate([s.tokens for s in run.series.values() if s.is_skill]))
        tokens = tokens[np.isfinite(tokens)]
        if not len(tokens):
            raise DataError(run.path, "tokens", f"run {run.name} gives no training tokens", "candidates need tokens")
        flops = run.final_flops
        return cls(run.name, run.params, tuple(tokens.tolist()),
                   flops if math.isfinite(flops) else FLOPS_PER_PARAM_TOKEN * run.params * float(tokens[-1]))


@dataclass(frozen=True)
class NextRun:
    """A candidate's expected effect on the target's forecast."""

    candidate: CandidateRun
    widths: tuple[float, ...]  # mean interval width at the target, per simulation
    skills: dict[str, float]  # per skill: mean width over simulations
    base: float  # the current mean width

    @property
    def width(self) -> float:
        return float(np.mean(self.widths))

    @property
    def narrowing(self) -> float:
        """Expected narrowing of the mean interval width (accuracy units)."""
        return self.base - self.width

    @property
    def per_flop(self) -> float:
        """Expected narrowing per 1e18 FLOPs of the candidate."""
        return self.narrowing / (self.candidate.flops / 1e18)

    def to_json(self) -> NextRunJson:
        c = self.candidate
        return {"name": c.name, "params": c.params, "tokens": c.tokens[-1], "flops": c.flops, "width": self.width,
                "narrowing": self.narrowing, "narrowing_per_exaflop": self.per_flop, "widths": list(self.widths),
                "skills": dict(self.skills)}


@dataclass(frozen=True)
class NextRuns:
    """Candidates ranked by expected narrowing per FLOP (best first)."""

    target_params: float
    target_tokens: float
    level: float
    skills: tuple[str, ...]
    base: float  # current mean width
    base_skills: dict[str, float]
    ranked: tuple[NextRun, ...]
    simulations: int
    seconds: float
    rank_by: str = "per-flop"

    def to_json(self) -> NextRunsJson:
        return {"target": {"params": self.target_params, "tokens": self.target_tokens}, "level": self.level,
                "skills": list(self.skills), "width": self.base, "width_skills": dict(self.base_skills),
                "simulations": self.simulations, "seconds": self.seconds, "rank_by": self.rank_by,
                "candidates": [r.to_json() for r in self.ranked]}


def read_candidates(path: str | Path) -> list[CandidateRun]:
    """Candidates from a runs directory (each run's size, checkpoints and compute) or a CSV
    table with columns `params`, `tokens` and optionally `name`, `flops` (sizes as `1B`)."""
    path = Path(path)
    if path.is_dir():
        from forecast.runs.files import load_runs
        runs = load_runs(path)
        if not runs:
            raise DataError(path, None, "no runs found", "give a runs directory or a CSV of params,tokens")
        return [CandidateRun.from_run(r) for r in runs]
    header, rows = read_csv(path, what="candidates table")
    if not rows or not {"params", "tokens"} <= set(header):
        raise DataError(path, None, "expected a CSV with columns params,tokens[,name,flops]",
                        "write e.g. 'name,params,tokens' then '1B-1x,1B,20B'")
    out: list[CandidateRun] = []
    seen: dict[str, int] = {}
    for line, cells in rows:
        row = dict(zip(header, cells))
        try:
            params = parse_quantity(row.get("params", ""), what="params")
            tokens = parse_quantity(row.get("tokens", ""), what="tokens")
            flops = parse_quantity(row["flops"], what="flops") if row.get("flops") else None
        except UsageError as exc:
            raise DataError(path, None, str(exc), "give positive numbers such as 1B or 2e10", line=line) from None
        name = row.get("name") or f"{params:.3g}x{tokens:.3g}"
        if name in seen:
            raise DataError(path, "name", f"candidate {name!r} given twice (first on line {seen[name]})",
                            "give each candidate its own name (or one row per candidate)", line=line)
        seen[name] = line
        out.append(CandidateRun.of(name, params, tokens, flops))
    return out


def rank_next_runs(runs: Sequence[Run], candidates: Sequence[CandidateRun], target_params: float, *,
                   target_tokens: float | None = None, skills: Sequence[str] | None = None,
                   family: str | None = None, recipe: str | None = None, simulations: int = SIMULATIONS,
                   level: float = 0.8, seed: int = 0, rank_by: str = "per-flop",
                   progress: Callable[[int, int], None] | None = None) -> NextRuns:
    """Rank `candidates` by expected narrowing of the target forecast per FLOP (module docstring),
    or with `rank_by="narrowing"` by the narrowing alone (the most informative run at any cost)."""
    start = time.perf_counter()
    if rank_by not in RANK_BY:
        raise UsageError(f"`rank_by={rank_by!r}`: use one of {', '.join(RANK_BY)}", parameter="rank_by")
    if not candidates:
        raise UsageError("`candidates`: no candidate runs given", parameter="candidates")
    if simulations < 1:
        raise UsageError("`simulations` must be >= 1", parameter="simulations")
    target_tokens = target_tokens or TOKENS_PER_PARAM * target_params
    current = fit(runs, skills=skills, family=family, recipe=recipe, options=FitOptions(draws=PRIOR_DRAWS, seed=seed))
    key = current.group(family, recipe)
    fitted = [sf for sf in current.select(*key) if sf.predictable]
    if not fitted:
        raise UsageError("no skill of these runs is predictable: nothing to narrow")
    names = [sf.skill for sf in fitted]
    group = [r for r in runs if r.group == key]
    base = _widths(current, names, target_params, target_tokens, level, seed)
    planted = fitted_prior(fitted, simulations, seed)
    losses = {sf.skill: _loss_law(group, sf.skill) for sf in fitted}
    ranked = []
    for i, cand in enumerate(candidates):
        widths, per_skill = [], {n: [] for n in names}
        for s, run in enumerate(simulated_runs(cand, fitted, planted, losses, group[0], simulations, seed)):
            try:
                refit = fit([*group, run], skills=names, options=FitOptions(draws=SIM_DRAWS, keep_draws=SIM_DRAWS,
                                                                             seed=seed))
                got = _widths(refit, names, target_params, target_tokens, level, seed)
            except FitError:
                got = {n: 1.0 - sf.chance for n, sf in zip(names, fitted)}
            widths.append(float(np.mean(list(got.values()))))
            for n in names:
                per_skill[n].append(got[n])
        ranked.append(NextRun(cand, tuple(widths), {n: float(np.mean(v)) for n, v in per_skill.items()},
                              float(np.mean(list(base.values())))))
        if progress:
            progress(i + 1, len(candidates))
    ranked.sort(key=lambda r: -(r.per_flop if rank_by == "per-flop" else r.narrowing))
    return NextRuns(target_params, target_tokens, level, tuple(names), float(np.mean(list(base.values()))), base,
                    tuple(ranked), simulations, time.perf_counter() - start, rank_by)


def _widths(fits: Fits, names: Sequence[str], params: float, tokens: float, level: float, seed: int) -> dict[str, float]:
    """Per skill, the width of the target's interval (top − chance when it has no number)."""
    with torch_threads(1):
        forecasts = fits.predict(params, tokens=tokens, skills=list(names), level=level, seed=seed)
    by_skill = {sf.skill: sf for sf in fits.skills}
    return {f.skill: (f.accuracy.high - f.accuracy.low) if f.accuracy is not None
            else by_skill[f.skill].top - by_skill[f.skill].chance for f in forecasts}


@dataclass(frozen=True)
class _LossLaw:
    law: object  # LossLawFit
    scatter: float  # run-to-run SD of log loss around it


def _loss_law(runs: Sequence[Run], skill: str) -> _LossLaw | None:
    """L(N, D) of the skill's task loss over the runs' final checkpoints, or None (no loss logged)."""
    params, tokens, loss = [], [], []
    for run in runs:
        s = run.series.get(skill)
        if s is None or not s.has_loss:
            continue
        ok = np.flatnonzero(np.isfinite(s.loss) & np.isfinite(s.tokens))
        if len(ok):
            params.append(run.params)
            tokens.append(s.tokens[ok[-1]])
            loss.append(s.loss[ok[-1]])
    if len(loss) < 5:
        return None
    try:
        law = fit_loss_law(np.array(params), np.array(tokens), np.array(loss), bootstrap=0, starts=32)
    except FitError:
        return None
    residuals = np.log(np.array(loss)) - np.log(law.predict(np.array(params), np.array(tokens)))
    return _LossLaw(law, max(float(1.4826 * np.median(np.abs(residuals - np.median(residuals)))), 0.005))


def _eval_noise(sf: SkillFit, accuracy: np.ndarray) -> np.ndarray | float:
    """Evaluation noise of a simulated checkpoint: binomial over the skill's items when their
    count is known, else its measured checkpoint-to-checkpoint noise. The measured noise
    can hold part of a steep transition's curvature (second differences across a sigmoid
    sampled a few checkpoints per decade), and a simulated rerun carrying it reads as a
    run that disagrees with its twin, which widens the refit instead of narrowing it."""
    if sf.n_eval and math.isfinite(sf.n_eval):
        p = np.clip(accuracy, 0, 1)
        return np.sqrt(p * (1 - p) / sf.n_eval)
    return sf.noise


def simulated_runs(cand: CandidateRun, fitted: Sequence[SkillFit], planted, losses: dict[str, _LossLaw | None],
                   like: Run, simulations: int, seed: int) -> list[Run]:
    """`simulations` runs the candidate might give, one per sample of every skill's surface."""
    from scipy.stats import norm

    rng = np.random.default_rng([seed, int(cand.params) % 2**31, len(cand.tokens)])
    tokens = np.array(cand.tokens)
    acc = planted.accuracy(np.full(len(tokens), cand.params), tokens)  # (skills × simulations, M)
    out = []
    for s in range(simulations):
        series = {}
        for j, sf in enumerate(fitted):
            rows = np.arange(j * simulations, (j + 1) * simulations)
            mine = np.clip(acc[rows[s]] + rng.normal(0, _eval_noise(sf, acc[rows[s]]), len(tokens)), 0, 1)
            loss = None
            if losses.get(sf.skill) is not None:
                law = losses[sf.skill]
                rank = int(np.sum(acc[rows, -1] < acc[rows[s], -1]))  # the s-th best accuracy gets a low loss
                z = norm.ppf((rank + 0.5) / simulations)
                loss = law.law.predict(np.full(len(tokens), cand.params), tokens) * np.exp(
                    -z * law.scatter + rng.normal(0, 0.2 * law.scatter, len(tokens)))
            series[sf.skill] = make_series(sf.skill, range(1, len(tokens) + 1), tokens, accuracy=mine, loss=loss,
                                           flops=cand.flops * tokens / tokens[-1], chance=sf.chance)
        out.append(Run(name=f"{cand.name}~sim{s}", params=cand.params, family=like.family, recipe=like.recipe,
                       series=series, params_kind=like.params_kind, seed=s, source="forecast.design.search (simulated)"))
    return out


__all__ = ["CandidateRun", "NextRun", "NextRuns", "rank_next_runs", "read_candidates"]
