"""Observations: one skill's checkpoints across a group of runs, as flat arrays ready to fit.

This is where real pilot data is cleaned before any law sees it: checkpoints before
warm-up are dropped, intermediates (the skill's own task loss, run-level metrics such as
validation loss, other skills' losses) are aligned by (run, step), and the two numbers
that decide whether a trend can be read at all are measured: checkpoint-to-checkpoint
noise and the size of the rise above the floor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from forecast.runs.benchmarks import items_for
from forecast.runs.crossing import monotone
from forecast.quantities import FLOPS_PER_PARAM_TOKEN, format_count
from forecast.runs.model import Run, binomial_stderr


PRIOR_NOISE = 0.02
"""Accuracy noise assumed before measuring it (2 points: a 1,000-item benchmark's binomial
noise at p ≈ 0.5 plus as much again of model-to-model scatter)."""
MODEL_SCATTER = 0.02
"""How far one model sits off its family's trend beyond its evaluation noise (accuracy, 2
points): data order, seeds and architecture details no law of size and tokens carries.
Counted in the noise of single-checkpoint models (leaderboards), whose scatter no
trajectory can measure."""
PRIOR_WEIGHT = 3
"""How many second differences the prior noise counts as."""
OWN_PROB = "own_prob"
"""The intermediate −ln(mean probability of the correct answer) of the skill itself, when the
runs log `prob` (pilots, lm-eval `--samples`): PassUntil's signal, far below what greedy
accuracy resolves (Hu et al. 2024)."""
UNKNOWN_TOKENS = 1.0
"""Training tokens put in for runs that give none (leaderboard rows whose budget is not
published): all models of the group are then taken as trained alike, and laws in compute
become laws in parameters. Forecasts from such fits are for a target trained like them."""
BUDGET_RATIO = 1.25
"""Runs of one size whose final token counts differ by more than this factor were trained
to different budgets (OLMo's ladder: 2× apart); seeds of one budget end within a few
percent of each other (their batches hold different numbers of tokens)."""


@dataclass(frozen=True, eq=False)
class Observations:
    """Post-warm-up checkpoints of one skill in one group of runs (arrays aligned by point).

    Units: `params` parameters, `tokens` training tokens, `flops` training FLOPs;
    `accuracy` and `stderr` are fractions; `losses` maps an intermediate's name (`own` for
    the skill's own task loss) to its value at each point (NaN where not logged)."""

    family: str
    recipe: str
    skill: str
    chance: float
    top: float  # highest attainable accuracy: the skill's ceiling, else 1
    run_names: tuple[str, ...]
    run_hashes: tuple[str, ...]
    run_seeds: tuple[int | None, ...]
    run: np.ndarray  # index into run_names, per point
    step: np.ndarray
    params: np.ndarray
    tokens: np.ndarray
    flops: np.ndarray
    accuracy: np.ndarray
    stderr: np.ndarray  # evaluation standard error, NaN where unknown
    final: np.ndarray  # True at each run's last checkpoint
    losses: dict[str, np.ndarray] = field(default_factory=dict)
    examples: np.ndarray | None = None  # training examples seen (step × examples per step), NaN where unknown
    tokens_known: bool = True  # False: no run gives its training tokens; `tokens` holds UNKNOWN_TOKENS

    def __len__(self) -> int:
        return len(self.accuracy)

    @property
    def budget_ladder(self) -> bool:
        """True when some model size was trained to several token budgets (like the OLMo
        ladder's 0.5–10× Chinchilla runs). Intermediate checkpoints of such runs sit at
        different points of different learning-rate schedules, so laws in (N, D) are
        fitted on final checkpoints only (Bhagia et al. 2024, sec. 3)."""
        for size in self.sizes:
            finals = self.tokens[self.final & (self.params == size)]
            if len(finals) >= 2 and finals.max() > BUDGET_RATIO * finals.min():
                return True
        return False

    @property
    def sizes(self) -> np.ndarray:
        """Distinct model sizes (parameters), ascending."""
        return np.unique(self.params)

    def subset(self, mask: np.ndarray) -> Observations:
        """The points where `mask` is true (run names kept, so run indices stay valid)."""
        pick = lambda a: a[mask]  # noqa: E731
        return Observations(
            family=self.family, recipe=self.recipe, skill=self.skill, chance=self.chance, top=self.top,
            run_names=self.run_names, run_hashes=self.run_hashes, run_seeds=self.run_seeds,
            run=pick(self.run), step=pick(self.step), params=pick(self.params), tokens=pick(self.tokens),
            flops=pick(self.flops), accuracy=pick(self.accuracy), stderr=pick(self.stderr),
            final=pick(self.final), losses={k: pick(v) for k, v in self.losses.items()},
            examples=None if self.examples is None else pick(self.examples), tokens_known=self.tokens_known,
        )

    def digest(self) -> str:
        """A hash of everything a fit reads (points, noise, intermediates, floor and top):
        two observations with one digest give one fit (`forecast.fitting.estimate.fit_jobs`
        fits such jobs once, e.g. the hold-outs of different origins on the same sizes)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.chance, self.top, self.tokens_known, len(self), sorted(self.losses))).encode())
        for a in (self.run, self.step, self.params, self.tokens, self.flops, self.accuracy, self.stderr, self.final,
                  *(self.losses[k] for k in sorted(self.losses)), self.examples):
            if a is not None:
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def with_accuracy(self, accuracy: np.ndarray) -> Observations:
        """The same points with replaced accuracies (e.g. smoothed)."""
        return dataclasses.replace(self, accuracy=np.asarray(accuracy, dtype=np.float64))

    def smoothed(self) -> np.ndarray:
        """Accuracy made non-decreasing in tokens within each run (isotonic regression,
        weighted by 1/stderr²): the monotone smoothing option, and the denoised curve the
        diagnostics read."""
        out = np.empty_like(self.accuracy)
        for r in np.unique(self.run):
            idx = np.flatnonzero(self.run == r)
            idx = idx[np.argsort(self.tokens[idx], kind="stable")]
            out[idx] = monotone(self.accuracy[idx], self.stderr[idx])
        return out

    def checkpoint_noise(self) -> float:
        """Checkpoint-to-checkpoint noise of accuracy (one standard deviation).

        From second differences within each run: for white noise on a locally straight
        trend, Var(y[i+1] − 2y[i] + y[i−1]) = 6σ²; the MAD makes it robust to the
        transition itself. With few differences the estimate is shrunk towards the
        evaluation stderr, or `PRIOR_NOISE` when none is known. With one checkpoint per run
        (a leaderboard) there is nothing to difference: differences across model sizes
        would count an emergent rise (curvature of the trend) as noise, so the noise is
        what the evaluation is, its binomial error; scatter around the trend is measured by
        the hold-outs instead. Always finite."""
        second = []
        for r in np.unique(self.run):
            idx = np.flatnonzero(self.run == r)
            idx = idx[np.argsort(self.tokens[idx], kind="stable")]
            if len(idx) >= 3:
                second.append(np.diff(self.accuracy[idx], 2))
        eval_noise = self.eval_noise()
        prior = eval_noise if math.isfinite(eval_noise) else PRIOR_NOISE
        if not second:  # one checkpoint per model: its evaluation, and how models scatter around a trend
            return math.sqrt(prior**2 + MODEL_SCATTER**2)
        d2 = np.concatenate(second)
        if len(d2) >= 8:
            sigma = 1.4826 * float(np.median(np.abs(d2 - np.median(d2)))) / math.sqrt(6)
        else:  # too few for a robust scale: RMS, shrunk towards the prior below
            sigma = float(np.sqrt(np.mean(d2**2) / 6))
        # a few differences say little: shrink towards the prior as if it were PRIOR_WEIGHT of them
        sigma = math.sqrt((len(d2) * sigma**2 + PRIOR_WEIGHT * prior**2) / (len(d2) + PRIOR_WEIGHT))
        return max(sigma, eval_noise if math.isfinite(eval_noise) else 0.0)

    def trend_is_flat(self, noise: float) -> bool:
        """Whether no trend with scale can be read: a plane in (ln N, ln D) through every
        point (least squares) has slopes within two standard errors of zero, or the rise it
        implies across the pilots' range is within two noise standard deviations."""
        columns = [np.ones(len(self))]
        for v in (np.log(self.params), np.log(self.tokens)):
            if np.ptp(v) > 1e-9:
                columns.append(v)
        if len(columns) == 1:  # one model, one checkpoint: no trend to test (others may lend one)
            return False
        design = np.stack(columns, axis=1)
        coef, *_ = np.linalg.lstsq(design, self.accuracy, rcond=None)
        residual = self.accuracy - design @ coef
        spread = max(float(np.sum(residual**2)) / max(len(self) - len(columns), 1), noise**2)
        se = np.sqrt(np.diag(np.linalg.pinv(design.T @ design)) * spread)[1:]
        rise = float(sum(abs(c) * np.ptp(v) for c, v in zip(coef[1:], design.T[1:])))
        return bool(np.all(np.abs(coef[1:]) < 2 * se) or rise < 2 * noise)

    def accelerates(self, noise: float) -> bool | None:
        """Whether accuracy rises faster than linearly in log compute (a convex curve, the
        onset of a transition) rather than steadily or decelerating (a smooth rise): a
        quadratic term positive beyond two standard errors. Within runs when they hold
        trajectories (each run its own intercept and slope in ln tokens, one shared
        curvature), else across the models in ln C. Accuracies already past half way to the
        top are left out (a transition's far side decelerates too); None when fewer than four
        points remain below it (the onset was before the pilots: whether it was a transition
        cannot be told)."""
        keep = self.accuracy <= 0.5 * (self.chance + self.top)
        runs = [r for r in np.unique(self.run[keep]) if np.sum(keep & (self.run == r)) >= 3]
        if runs:  # trajectories: per-run intercept and slope, a shared curvature
            return self._accelerates_within(keep & np.isin(self.run, runs), noise)
        x = np.log(self.flops[keep])  # one checkpoint per model: across the models, in ln C
        x = x - x.mean() if len(x) else x
        y = self.accuracy[keep]
        if len(np.unique(x)) < 4 or len(y) < 4:
            return None
        design = np.column_stack([np.ones_like(x), x, x**2])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        residual = y - design @ coef
        spread = max(float(np.sum(residual**2)) / max(len(y) - design.shape[1], 1), noise**2)
        se = float(np.sqrt(np.linalg.pinv(design.T @ design)[-1, -1] * spread))
        return bool(coef[-1] > 2 * se)

    def _accelerates_within(self, keep: np.ndarray, noise: float) -> bool | None:
        """`accelerates` on trajectories: the least-squares curvature shared by every run,
        each run with its own intercept and slope in ln tokens. Solved by partialling the
        per-run terms out (Frisch–Waugh–Lovell): the same coefficient and standard error as
        the full design with two columns per run, in time linear in the points."""
        run = np.unique(self.run[keep], return_inverse=True)[1].ravel()
        x, y = np.log(self.tokens[keep]), self.accuracy[keep]
        if len(y) < 4:
            return None
        count = np.bincount(run)
        centred = lambda v: v - (np.bincount(run, v) / count)[run]  # noqa: E731
        x = centred(x)
        xx = np.bincount(run, x * x)[run]

        def within(v: np.ndarray) -> np.ndarray:  # residual of v on the run's own [1, x]
            v = centred(v)
            return v - np.where(xx > 0, x * np.bincount(run, x * v)[run] / np.where(xx > 0, xx, 1.0), 0.0)

        q, e = within(x**2), within(y)
        qq = float(np.sum(q * q))
        if qq <= 1e-12 * max(float(np.sum(x**4)), 1e-300):
            return False
        curvature = float(np.sum(q * e)) / qq
        residual = e - curvature * q
        spread = max(float(np.sum(residual**2)) / max(len(y) - (2 * len(count) + 1), 1), noise**2)
        return bool(curvature > 2 * np.sqrt(spread / qq))

    def unreadable(self, borrowing: bool = False) -> str | None:
        """Why these runs support no number at all for the skill, or None if they support one
        (with `borrowing`, other families lend their slopes to a single model)."""
        if len(self) == 0:
            return "no checkpoint with known training tokens after warm-up: nothing to forecast from"
        if len(self.sizes) == 1 and len(self) == 1 and not borrowing:
            return (f"a single checkpoint of a single model size ({format_count(self.sizes[0])} params): nothing "
                    "carries the skill to another size or budget; add pilot runs of other sizes")
        return None

    def eval_noise(self) -> float:
        """Median evaluation standard error of accuracy (NaN when no run reports it)."""
        finite = self.stderr[np.isfinite(self.stderr)]
        return float(np.median(finite)) if finite.size else float("nan")

    def sample_count(self) -> float | None:
        """Typical number of evaluation items, from the binomial stderr (n ≈ p(1−p)/se² + 1)."""
        ok = np.isfinite(self.stderr) & (self.stderr > 0) & (self.accuracy > 0) & (self.accuracy < 1)
        if not ok.any():
            return None
        p = self.accuracy[ok]
        return float(np.median(p * (1 - p) / self.stderr[ok] ** 2 + 1))

    def estimated_floor(self) -> float | None:
        """A floor below chance, where the smallest models sit measurably below it (real
        multiple-choice tasks do: models prefer a wrong option). None when they don't."""
        smallest = self.params == self.params.min()
        level = float(np.median(self.accuracy[smallest]))
        noise = self.checkpoint_noise()
        margin = 2 * noise / math.sqrt(max(1, smallest.sum()) / 4)
        return level if level < self.chance - max(margin, 0.005) else None


def observations(
    runs: Sequence[Run],
    skill: str,
    *,
    skip_fraction: float = 0.01,
    min_tokens: float = 0.0,
    max_per_run: int = 40,
) -> Observations:
    """Gather `skill` from runs of one group, dropping warm-up checkpoints.

    A checkpoint is dropped when it saw no tokens, fewer than `min_tokens`, or fewer than
    `skip_fraction` of its run's final tokens (warm-up and the first noisy steps, where a
    run's accuracy reflects the learning-rate schedule, not its scale). Intermediates
    aligned to each point: `own` (the skill's task loss), every run-level metric, and
    every other skill's task loss, each NaN where that run did not log it. Runs logged
    more densely than `max_per_run` checkpoints are thinned to that many, evenly spaced in
    log tokens (the last always kept): neighbouring checkpoints of one run carry nearly the
    same information, and thinning keeps fits fast and the bootstrap honest."""
    family, recipe = runs[0].group
    with_skill = [r for r in runs if skill in r.series and r.series[skill].is_skill]
    known_items = items_for(skill)
    chance = with_skill[0].series[skill].chance or 0.0
    ceiling = with_skill[0].series[skill].ceiling
    columns: dict[str, list] = {k: [] for k in ("run", "step", "params", "tokens", "flops", "accuracy", "stderr", "final",
                                                 "examples")}
    loss_columns: dict[str, list] = {}
    intermediates = sorted({name for r in runs for name, s in r.series.items() if s.has_loss})
    tokens_known = any(np.isfinite(r.series[skill].tokens).any() for r in with_skill)
    any_prob = any(r.series[skill].has_prob for r in with_skill)
    for i, run in enumerate(with_skill):
        s = run.series[skill]
        if not tokens_known:  # every model trained on its family's unknown budget: a law in parameters alone
            s = dataclasses.replace(s, tokens=np.full(len(s.step), UNKNOWN_TOKENS),
                                    flops=np.full(len(s.step), FLOPS_PER_PARAM_TOKEN * run.params * UNKNOWN_TOKENS))
        final_tokens = float(np.nanmax(s.tokens)) if np.isfinite(s.tokens).any() else math.nan
        keep = (s.tokens > 0) & (s.tokens >= min_tokens) & (s.tokens >= skip_fraction * final_tokens)
        keep &= _thin(s.tokens, keep, max_per_run)
        count = int(keep.sum())
        columns["run"].append(np.full(count, i))
        columns["step"].append(s.step[keep])
        columns["params"].append(np.full(count, run.params))
        columns["tokens"].append(s.tokens[keep])
        columns["flops"].append(s.flops[keep])
        columns["accuracy"].append(s.accuracy[keep])
        se = s.accuracy_stderr()
        if known_items is not None:  # neither stderr nor n logged: the benchmark's own size
            se = np.where(np.isfinite(se), se, binomial_stderr(s.accuracy, known_items))
        columns["stderr"].append(se[keep])
        columns["final"].append(np.arange(count) == count - 1)
        per_step = run.examples_per_step
        columns["examples"].append(s.step[keep] * per_step if per_step else np.full(count, np.nan))
        for name in intermediates:
            key = "own" if name == skill else name
            values = np.full(count, np.nan)
            other = run.series.get(name)
            if other is not None and other.loss is not None:
                by_step = dict(zip(other.step.tolist(), other.loss.tolist()))
                values = np.array([by_step.get(int(st), np.nan) for st in s.step[keep]], dtype=np.float64)
            loss_columns.setdefault(key, []).append(values)
        if s.has_prob:  # −ln P(correct answer): a continuous accuracy that moves before greedy accuracy does
            with np.errstate(divide="ignore"):
                surprisal = -np.log(np.clip(s.prob[keep], 1e-12, 1.0))
            loss_columns.setdefault(OWN_PROB, []).append(surprisal)
        elif any_prob:
            loss_columns.setdefault(OWN_PROB, []).append(np.full(count, np.nan))
    arrays = {k: np.concatenate(v) if v else np.array([]) for k, v in columns.items()}
    losses = {k: np.concatenate(v) for k, v in loss_columns.items()}
    losses = {k: v for k, v in losses.items() if np.isfinite(v).any()}
    return Observations(
        family=family, recipe=recipe, skill=skill, chance=float(chance),
        top=float(ceiling) if ceiling is not None else 1.0,
        run_names=tuple(r.name for r in with_skill), run_hashes=tuple(r.content_hash for r in with_skill),
        run_seeds=tuple(r.seed for r in with_skill),
        run=arrays["run"].astype(int), step=arrays["step"].astype(np.int64), params=arrays["params"],
        tokens=arrays["tokens"], flops=arrays["flops"], accuracy=arrays["accuracy"], stderr=arrays["stderr"],
        final=arrays["final"].astype(bool), losses=losses, examples=arrays["examples"].astype(float),
        tokens_known=tokens_known,
    )


def _thin(tokens: np.ndarray, keep: np.ndarray, limit: int) -> np.ndarray:
    """Mask keeping at most `limit` of the `keep` checkpoints, evenly spaced in ln(tokens)."""
    idx = np.flatnonzero(keep)
    if len(idx) <= limit:
        return np.ones(len(tokens), dtype=bool)
    log_t = np.log(tokens[idx])
    targets = np.linspace(log_t[0], log_t[-1], limit)
    chosen = {int(idx[np.argmin(np.abs(log_t - t))]) for t in targets} | {int(idx[-1])}
    mask = np.zeros(len(tokens), dtype=bool)
    mask[sorted(chosen)] = True
    return mask
