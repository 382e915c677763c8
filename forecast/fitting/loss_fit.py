"""Loss fits: L(N, D) = E + A·N^−α + B·D^−β per (family, recipe) group and loss series.

A loss series is a run-level metric (validation loss on a named corpus) or a skill's own
task loss. Per series (`fit_losses`):
1. gather each run's post-warm-up checkpoints that log it (thinned, evenly in log tokens);
   runs whose sizes were trained to several budgets (or that hold one checkpoint each, as a
   Chinchilla table does) are fitted on final checkpoints only;
2. fit the law as Hoffmann et al. (2022) approach 3 (`forecast.fitting.loss_law`), with a bootstrap
   over **runs** for the parameter draws;
3. hold out the largest size(s) (params above ¾, ½, ¼ of the largest), refit on the rest
   and read each miss as a shift of scale (the law reached at e^−u times the parameters
   and tokens) per e-fold extrapolated: the extrapolation error a forecast grows with
   distance; and the run-to-run scatter around the law (robust SD of log residuals).
`forecast.forecasting.loss` turns these into forecast samples. Groups are never pooled. The
file form of a `LossFit` is `to_json`/`from_json` here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecast.errors import DataError, FitError
from forecast.fitting.loss_law import DRAW_COLUMNS, LossLawFit, at_bounds, fit_loss_law
from forecast.threads import torch_threads
from forecast.quantities import FLOPS_PER_PARAM_TOKEN, format_count
from forecast.runs.model import Run
from forecast.fitting.reach import extrapolation_distance
from forecast.schema.outputs import FITS_FORMAT, LossFitJson, LossFitSummaryJson, finite, finite_list
from forecast.fitting.status import Note, NoteCode, Status

BUDGET_RATIO = 1.25
"""Runs of one size whose final tokens differ by more than this factor were trained to
different budgets: fitted on final checkpoints only (as `observations.BUDGET_RATIO`)."""
HOLDOUT_CUTS = (0.75, 0.5, 0.25)
"""Rolling hold-out origins: each holds out every run above this fraction of the largest
size's parameters (the largest size of a ladder, then the two largest, ...); an origin
needs `MIN_SIZES` sizes left to fit on, and one that splits the runs as another does is
not counted twice."""
MIN_DRIFT = 0.02
"""Smallest extrapolation error assumed, as a shift of scale (e-folds of N and D) per e-fold
extrapolated: one lucky hold-out must not make a forecast look exact."""
DEFAULT_DRIFT = 0.2
"""Extrapolation error assumed (shift of scale per e-fold) when no hold-out was possible."""
GRID_STARTS = 32
"""Best points of Hoffmann et al.'s 4,500-point start grid that L-BFGS starts from (on the
Chinchilla points the best 20 already find the full grid's optimum)."""
MAX_ITER = 300
"""L-BFGS iterations per start and per bootstrap draw (Chinchilla converges within 200)."""
MIN_POINTS = 5
MIN_SIZES = 3
"""Fewest model sizes (and distinct token counts) the law is fitted to: with two sizes, E and
the size term A·N^−α are not identifiable."""


@dataclass(frozen=True)
class LossRun:
    """One run as the loss fit saw it: the checkpoints fitted."""

    name: str
    hash: str
    params: float
    tokens: tuple[float, ...]
    flops: tuple[float, ...]
    loss: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class LossFit:
    """The fitted L(N, D) of one loss series of one (family, recipe) group.

    `law`: E, A, B, alpha, beta (N in parameters, D in tokens, L in the series' units);
    `draws` (B, 5): bootstrap over runs, columns `loss_law.DRAW_COLUMNS`; `drift`: the
    extrapolation error as a shift of scale, e-folds of N and D per e-fold beyond the runs
    (from the hold-out, at least `MIN_DRIFT`); `scatter`: run-to-run SD of log loss around
    the law."""

    family: str
    recipe: str
    metric: str  # the series: a run-level metric, or the skill whose task loss it is
    kind: str  # "metric" (run-level loss) or "task" (a skill's own task loss)
    status: Status  # FITTED, WEAK (at a bound, or noisier than its trend) or NOT_PREDICTABLE
    reason: str | None
    law: dict[str, float] | None
    draws: np.ndarray
    drift: float
    scatter: float
    holdout: dict[str, float] | None  # rms_shift, excess_shift, rms_distance (e-folds), points, origins
    flops_per_param_token: float
    finals_only: bool
    runs: tuple[LossRun, ...]
    notes: tuple[Note, ...] = ()
    options: dict[str, Any] | None = None

    @property
    def predictable(self) -> bool:
        """A law to forecast from: `FITTED`, or `WEAK` (numbers with the notes that say why)."""
        return self.status in (Status.FITTED, Status.WEAK)

    @property
    def sizes(self) -> tuple[float, ...]:
        return tuple(sorted({r.params for r in self.runs}))

    @property
    def max_flops(self) -> float:
        return max((f for r in self.runs for f in r.flops), default=math.nan)

    @property
    def n_points(self) -> int:
        return sum(len(r.loss) for r in self.runs)

    def law_fit(self) -> LossLawFit:
        """The point law as a `LossLawFit` (prediction, compute-optimal split)."""
        if self.law is None:
            raise FitError(f"{self.metric}: no loss law ({self.reason})")
        return LossLawFit(**self.law, objective=math.nan, intervals={}, level=math.nan, n_points=self.n_points,
                          draws=self.draws)

    def summary(self) -> LossFitSummaryJson:
        """The fit at a glance (`forecast fit --json` "losses"): no draws, no points."""
        return {
            "metric": self.metric, "kind": self.kind, "family": self.family, "recipe": self.recipe,
            "status": str(self.status), "reason": self.reason, "law": self.law, "drift": finite(self.drift, 6),
            "scatter": finite(self.scatter, 6), "holdout": self.holdout, "runs": len(self.runs),
            "points": self.n_points, "finals_only": self.finals_only, "notes": [n.to_json() for n in self.notes],
        }

    def to_json(self, tool: str) -> LossFitJson:
        return {
            "format": FITS_FORMAT, "tool": tool, "family": self.family, "recipe": self.recipe,
            "metric": self.metric, "kind": self.kind, "status": str(self.status), "reason": self.reason,
            "law": None if self.law is None else {k: finite(v) for k, v in self.law.items()},
            "draws": [finite_list(row, 6) for row in self.draws], "drift": finite(self.drift, 6),
            "scatter": finite(self.scatter, 6), "holdout": self.holdout,
            "flops_per_param_token": finite(self.flops_per_param_token), "finals_only": self.finals_only,
            "runs": [{"name": r.name, "hash": r.hash, "params": r.params, "tokens": finite_list(r.tokens),
                      "flops": finite_list(r.flops), "loss": finite_list(r.loss, 8)} for r in self.runs],
            "notes": [n.to_json() for n in self.notes], "options": self.options or {},
        }

    @classmethod
    def from_json(cls, data: Any, file: Path) -> LossFit:
        """Read one loss file, checking that every number a forecast reads is finite."""
        fix = "re-run `forecast fit RUNS --out DIR` to regenerate it"
        if not isinstance(data, dict) or data.get("format") != FITS_FORMAT:
            raise DataError(file, "format", "unsupported loss-fit format", fix)
        try:
            status = Status(data["status"])
            law = data["law"]
            if law is not None:
                law = {k: float(law[k]) for k in DRAW_COLUMNS}
            draws = np.array([[np.nan if v is None else v for v in row] for row in data["draws"]], float).reshape(-1, 5)
            numbers = [data["drift"], data["scatter"], data["flops_per_param_token"], *(law or {}).values()]
            if status in (Status.FITTED, Status.WEAK) and (law is None or not all(isinstance(v, (int, float)) and math.isfinite(v)
                                                                   for v in numbers) or not np.isfinite(draws).all()):
                raise DataError(file, "law", "a fitted loss law with a missing or non-finite number", fix)
            runs = tuple(LossRun(r["name"], r["hash"], float(r["params"]), tuple(map(float, r["tokens"])),
                                 tuple(map(float, r["flops"])), tuple(map(float, r["loss"]))) for r in data["runs"])
            return cls(family=str(data["family"]), recipe=str(data["recipe"]), metric=str(data["metric"]),
                       kind=str(data["kind"]), status=status, reason=data["reason"], law=law, draws=draws,
                       drift=float(data["drift"] if data["drift"] is not None else DEFAULT_DRIFT),
                       scatter=float(data["scatter"] if data["scatter"] is not None else 0.0),
                       holdout=data["holdout"], flops_per_param_token=float(data["flops_per_param_token"]),
                       finals_only=bool(data["finals_only"]), runs=runs,
                       notes=tuple(_unprefixed(Note.from_json(n), str(data["metric"])) for n in data["notes"]),
                       options=data["options"])
        except DataError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(file, str(exc).strip("'") or None, "missing or malformed entry in a loss-fit file",
                            fix) from None


def _unprefixed(note: Note, metric: str) -> Note:
    """A note as older files hold it ("add: too few sizes…"): the renderers name the row."""
    head = f"{metric}: "
    return Note(note.code, note.message[len(head):]) if note.message.startswith(head) else note


# ---------------------------------------------------------------------------- fitting


def loss_series(runs: Sequence[Run]) -> dict[str, str]:
    """Every loss series the runs log: name -> "metric" (run-level) or "task" (a skill's)."""
    out: dict[str, str] = {}
    for run in runs:
        for name, s in run.series.items():
            if s.has_loss and out.get(name) != "task":
                out[name] = "task" if s.is_skill else "metric"
    return dict(sorted(out.items()))


def fit_losses(runs: Sequence[Run], *, metrics: Sequence[str] | None = None, draws: int = 200, seed: int = 0,
               skip_fraction: float = 0.01, max_per_run: int = 40, threads: int | None = 1) -> list[LossFit]:
    """Fit every loss series (or those named in `metrics`) of every (family, recipe) group."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    wanted = None if metrics is None else {m.lower() for m in metrics}
    out = []
    with torch_threads(threads):
        for key in sorted(groups):
            for name, kind in loss_series(groups[key]).items():
                if wanted is None or name.lower() in wanted:
                    out.append(fit_loss_series(groups[key], name, kind, draws=draws, seed=seed,
                                               skip_fraction=skip_fraction, max_per_run=max_per_run))
    return out


def fit_loss_series(runs: Sequence[Run], name: str, kind: str, *, draws: int = 200, seed: int = 0,
                    skip_fraction: float = 0.01, max_per_run: int = 40) -> LossFit:
    """Fit one loss series over the runs of one group (see module docstring)."""
    family, recipe = runs[0].group
    loss_runs, finals_only = gather(runs, name, skip_fraction, max_per_run)
    params, tokens, flops, loss, label = _flat(loss_runs)
    kappa = float(np.median(flops / (params * tokens))) if len(loss) else FLOPS_PER_PARAM_TOKEN
    kappa = kappa if math.isfinite(kappa) and kappa > 0 else FLOPS_PER_PARAM_TOKEN
    base = dict(family=family, recipe=recipe, metric=name, kind=kind, flops_per_param_token=kappa,
                finals_only=finals_only, runs=tuple(loss_runs),
                options={"draws": draws, "seed": seed, "skip_fraction": skip_fraction, "max_per_run": max_per_run})
    sizes = np.unique(params)
    reason = None
    if len(loss) < MIN_POINTS:
        reason = f"only {len(loss)} checkpoints log {name!r} after warm-up: the loss law has 5 parameters"
    elif len(sizes) < MIN_SIZES:
        reason = (f"only {len(sizes)} model size{'s' if len(sizes) > 1 else ''} "
                  f"({', '.join(format_count(s) for s in sizes)} params): E, A and α of the law need at least "
                  f"{MIN_SIZES} (two sizes give two levels for three unknowns)")
    elif len(np.unique(tokens)) < MIN_SIZES:
        reason = f"fewer than {MIN_SIZES} distinct training-token counts: the law's data term cannot be told"
    if reason:
        return LossFit(status=Status.NOT_PREDICTABLE, reason=reason, law=None, draws=np.empty((0, 5)), drift=DEFAULT_DRIFT,
                       scatter=0.0, holdout=None, **base)
    try:
        fitted = fit_loss_law(params, tokens, loss, bootstrap=draws, seed=seed, starts=GRID_STARTS, groups=label,
                              max_iter=MAX_ITER)
    except FitError as exc:
        return LossFit(status=Status.NOT_PREDICTABLE, reason=f"the loss law could not be fitted: {exc}", law=None,
                       draws=np.empty((0, 5)), drift=DEFAULT_DRIFT, scatter=0.0, holdout=None, **base)
    residual = np.log(loss) - np.log(fitted.predict(params, tokens))
    scatter = float(1.4826 * np.median(np.abs(residual - np.median(residual))))
    notes = []
    holdout = _holdout(params, tokens, flops, loss, sizes, scatter)
    if holdout is None:
        drift = DEFAULT_DRIFT
        notes.append(Note(NoteCode.FEW_SIZES, "too few sizes to hold the largest out; extrapolation error "
                          f"assumed a {DEFAULT_DRIFT:g} e-fold shift of scale per e-fold extrapolated"))
    else:
        # the shift beyond the run-to-run scatter, per e-fold extrapolated (pooled over points,
        # so the points extrapolated furthest weigh most)
        drift = max(holdout["excess_shift"] / max(holdout["rms_distance"], 1e-3), MIN_DRIFT)
    law = {k: float(getattr(fitted, k)) for k in DRAW_COLUMNS}
    weak = _weak_notes(law, scatter, np.log(fitted.predict(params, tokens)))
    notes += weak
    return LossFit(status=Status.WEAK if weak else Status.FITTED, reason=None, law=law, draws=fitted.draws, drift=drift, scatter=scatter,
                   holdout=holdout, notes=tuple(notes), **base)


def _weak_notes(law: dict[str, float], scatter: float, log_law: np.ndarray) -> list[Note]:
    """Why a fitted law is weak: parameters at a bound of the box (the optimiser stopped at
    the edge: the value is a limit, not an estimate), or a run-to-run scatter (SD of log
    loss) larger than the law's own change over the points fitted (SD of its log values):
    the trend is not resolved, only the level."""
    notes = []
    edges = at_bounds(law)
    if edges:
        notes.append(Note(NoteCode.AT_BOUND, f"{', '.join(edges)}: the optimiser stopped at the edge, so "
                          "these are limits, not estimates; the law's extrapolation is weak"))
    signal = float(np.std(log_law))
    if scatter > signal:
        notes.append(Note(NoteCode.NOISY, f"run-to-run scatter {100 * scatter:.2g}% is larger than the law's change "
                          f"across the runs ({100 * signal:.2g}%): the level is measured, the trend is not"))
    return notes


def _holdout(params: np.ndarray, tokens: np.ndarray, flops: np.ndarray, loss: np.ndarray, sizes: np.ndarray,
             scatter: float) -> dict[str, float] | None:
    """For each cut in `HOLDOUT_CUTS` (a rolling origin): fit on the runs at or below that
    fraction of the largest size, predict those above, and read each miss as a shift of
    scale: the u (e-folds of N and D alike) with law(N·e^−u, D·e^−u) = the measured loss,
    linearised, u = Δln L / (d ln L / du). Pooled over the origins: the RMS shift, its part
    beyond the run-to-run `scatter` (in the same units), the RMS distance extrapolated
    (e-folds, `extrapolation_distance`), the points scored; None when no origin leaves
    `MIN_SIZES` sizes to fit on."""
    shifts, noise, distances, splits = [], [], [], set()
    for cut in HOLDOUT_CUTS:
        inner = params <= cut * sizes.max()
        if (len(np.unique(params[inner])) < MIN_SIZES or inner.sum() < MIN_POINTS
                or len(np.unique(tokens[inner])) < MIN_SIZES or int(inner.sum()) in splits):
            continue
        splits.add(int(inner.sum()))
        try:
            law = fit_loss_law(params[inner], tokens[inner], loss[inner], bootstrap=0, starts=GRID_STARTS,
                               max_iter=MAX_ITER)
        except FitError:
            continue
        n, d = params[~inner], tokens[~inner]
        predicted = law.predict(n, d)
        slope = (law.alpha * law.A * n ** -law.alpha + law.beta * law.B * d ** -law.beta) / predicted
        shifts.append((np.log(loss[~inner]) - np.log(predicted)) / slope)
        noise.append(scatter / slope)
        distances.append(extrapolation_distance(n, flops[~inner], params[inner].max(), flops[inner].max()))
    if not shifts:
        return None
    shift, spread, distance = (np.concatenate(v) for v in (shifts, noise, distances))
    return {"rms_shift": float(np.sqrt(np.mean(shift ** 2))),
            "excess_shift": float(np.sqrt(max(np.mean(shift ** 2 - spread ** 2), 0.0))),
            "rms_distance": float(np.sqrt(np.mean(distance ** 2))), "points": int(len(shift)), "origins": len(shifts)}


def gather(runs: Sequence[Run], name: str, skip_fraction: float, max_per_run: int) -> tuple[list[LossRun], bool]:
    """Each run's post-warm-up checkpoints logging `name`'s loss, and whether only final
    checkpoints are kept (several budgets per size, or one checkpoint per run)."""
    found = []
    for run in runs:
        s = run.series.get(name)
        if s is None or s.loss is None:
            continue
        keep = np.isfinite(s.loss) & (s.loss > 0) & np.isfinite(s.tokens) & (s.tokens > 0)
        keep &= s.tokens >= skip_fraction * run.final_tokens
        idx = np.flatnonzero(keep)
        if len(idx):
            found.append((run, idx))
    finals: dict[float, list[float]] = {}
    for run, idx in found:
        finals.setdefault(run.params, []).append(float(run.series[name].tokens[idx[-1]]))
    finals_only = all(len(idx) == 1 for _, idx in found) or any(
        len(v) >= 2 and max(v) > BUDGET_RATIO * min(v) for v in finals.values())
    out = []
    for run, idx in found:
        s = run.series[name]
        idx = idx[-1:] if finals_only else _thin(s.tokens, idx, max_per_run)
        out.append(LossRun(run.name, run.content_hash, float(run.params), tuple(s.tokens[idx].tolist()),
                           tuple(s.flops[idx].tolist()), tuple(s.loss[idx].tolist())))
    return out, finals_only


def _thin(tokens: np.ndarray, idx: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` of the checkpoints `idx`, evenly spaced in ln(tokens), the last kept."""
    if len(idx) <= limit:
        return idx
    log_t = np.log(tokens[idx])
    picks = {int(np.argmin(np.abs(log_t - t))) for t in np.linspace(log_t[0], log_t[-1], limit)} | {len(idx) - 1}
    return idx[sorted(picks)]


def _flat(loss_runs: Sequence[LossRun]) -> tuple[np.ndarray, ...]:
    """params, tokens, flops, loss and run label per point."""
    cols = [np.concatenate([np.full(len(r.loss), r.params) for r in loss_runs]) if loss_runs else np.array([])]
    for field in ("tokens", "flops", "loss"):
        cols.append(np.concatenate([np.asarray(getattr(r, field), float) for r in loss_runs]) if loss_runs
                    else np.array([]))
    cols.append(np.concatenate([np.full(len(r.loss), i) for i, r in enumerate(loss_runs)]) if loss_runs
                else np.array([], int))
    return tuple(cols)
