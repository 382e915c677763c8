"""Forecasts borrowed across model families: a shared-slope sigmoid in (parameters, tokens).

Leaderboards hold families of two or three sizes, too few to fit any law of their own, and
dozens of other families of the same skill. As in Sloth (Polo et al. 2025) and Observational
Scaling Laws (Ruan et al. 2024), families differ mostly in their efficiency (an offset) and
share how a skill scales (slopes). Per skill:

    acc = floor + (top − floor)·σ(a_f + b·ln N + c·ln D)

with a_f one offset per family and b, c shared. Fitted as weighted least squares on the
logit of the accuracy above the floor (a sigmoid is linear there), each point weighted by
the inverse of its delta-method variance (evaluation noise / slope of the logit), so models
sitting at the floor say little, as they should. One member fixes its family's offset; the
slopes come from every family with more than one size (and c from families whose sizes saw
different token counts; where no family varies D, c is 0). Families whose runs give no
tokens have D constant (`observations.UNKNOWN_TOKENS`), so their offset absorbs it.

Uncertainty: a cluster bootstrap over the other families (the target family is always in).
Only final checkpoints are used, and only families of the same recipe label; a forecast
that used other families says which (`SkillFit.borrowed_from`). Fitting is `--pool
families`; without it, families are never pooled.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.fitting.candidates import CandidateFit, Scales, Spec
from forecast.errors import FitError
from forecast.fitting.observations import BUDGET_RATIO, MODEL_SCATTER, Observations
from forecast.fitting.reach import effective_reach, extrapolation_distance
from forecast.fitting.results import HoldoutItem

POOLED_SPEC = Spec("sigmoid_nd", "chance", "families")
EDGE = 0.005
"""Accuracies within this of the floor or the top are clipped before the logit."""


@dataclass(frozen=True)
class PooledData:
    """Final checkpoints of one skill across families: per point its family index, ln N,
    ln D and accuracy; `names` the families, `index` the target family's index."""

    names: tuple[str, ...]
    family: np.ndarray
    log_params: np.ndarray
    log_tokens: np.ndarray
    accuracy: np.ndarray
    stderr: np.ndarray

    @classmethod
    def of(cls, target: Observations, others: Sequence[Observations]) -> PooledData:
        parts = [target, *[o for o in others if len(o)]]
        rows = []
        for f, obs in enumerate(parts):
            finals = obs.subset(obs.final)
            se = np.where(np.isfinite(finals.stderr), finals.stderr, 0.0)
            rows.append((np.full(len(finals), f), np.log(finals.params), np.log(finals.tokens), finals.accuracy, se))
        family, log_n, log_d, acc, se = (np.concatenate(c) for c in zip(*rows))
        return cls(tuple(o.family for o in parts), family.astype(int), log_n, log_d, acc, se)

    @property
    def borrowed(self) -> tuple[str, ...]:
        return self.names[1:]


def _solve(data: PooledData, floor: float, top: float, weight_scale: np.ndarray) -> np.ndarray:
    """(a_target, b, c) by weighted least squares on the logit; `weight_scale` multiplies
    each point's weight (bootstrap counts)."""
    p = np.clip((data.accuracy - floor) / (top - floor), EDGE, 1 - EDGE)
    z = np.log(p) - np.log1p(-p)
    sd_acc = np.sqrt(data.stderr**2 + MODEL_SCATTER**2) / (top - floor)
    w = weight_scale * (p * (1 - p) / sd_acc) ** 2  # 1 / var(z) by the delta method
    families = int(data.family.max()) + 1
    design = np.zeros((len(z), families + 2))
    design[np.arange(len(z)), data.family] = 1.0
    design[:, families] = data.log_params
    design[:, families + 1] = data.log_tokens
    keep = w > 0
    root = np.sqrt(w[keep])[:, None]
    # slopes identified only by within-family variation; minimal-norm lstsq leaves the rest 0
    coef = np.linalg.lstsq(design[keep] * root, z[keep] * root[:, 0], rcond=None)[0]
    return np.array([coef[0], coef[families], coef[families + 1]])


def fit_pooled(target: Observations, others: Sequence[Observations], scales: Scales, draws: int,
               seed: int) -> tuple[CandidateFit, tuple[str, ...]]:
    """The pooled candidate for `target`'s family, in its own reference scales, with
    `draws` cluster-bootstrap draws; and the families it borrowed from."""
    data = PooledData.of(target, others)
    if len(np.unique(data.family)) < 2:
        raise FitError("no other family holds this skill to borrow slopes from")
    if not any(len(np.unique(data.log_params[data.family == f])) > 1 for f in np.unique(data.family)):
        raise FitError("no family has two sizes of this skill: the shared slope cannot be estimated")
    floor, top = target.chance, target.top
    theta = _to_scales(_solve(data, floor, top, np.ones(len(data.accuracy))), scales)
    rng = np.random.default_rng(seed)
    families = np.unique(data.family)
    rows = []
    for _ in range(draws):
        picked = rng.choice(families[1:], size=len(families) - 1, replace=True)
        counts = np.bincount(picked, minlength=families.max() + 1).astype(float)
        counts[0] = 1.0  # the target family is always in: its offset needs its own members
        rows.append(_to_scales(_solve(data, floor, top, counts[data.family]), scales))
    fit = CandidateFit(spec=POOLED_SPEC, floor=floor, top=top, scales=scales, theta=theta,
                       stderr=np.full(3, np.nan), draws=np.array(rows).reshape(-1, 3), converged=True, at_bound=(),
                       notes=(f"borrowed from {len(data.borrowed)} families: {', '.join(data.borrowed)}",))
    return fit, data.borrowed


def _to_scales(coef: np.ndarray, scales: Scales) -> np.ndarray:
    """(a, b, c) on ln N, ln D → the law's inputs ln(N/N_ref), ln(D/D_ref)."""
    a, b, c = coef
    return np.array([a + b * np.log(scales.params) + c * np.log(scales.tokens), b, c])


class PoolContext:
    """Every group's observations of a skill, for borrowing across families: built once per
    fit, handed to each group's skills (`others` excludes the group itself, and keeps only
    groups of the same recipe label)."""

    def __init__(self, groups: dict[tuple[str, str], Sequence], observe) -> None:
        self._groups = groups
        self._observe = observe  # (runs, skill) -> Observations
        self._cache: dict[tuple[tuple[str, str], str], Observations] = {}

    def others(self, group: tuple[str, str], skill: str) -> list[Observations]:
        out = []
        for key, runs in sorted(self._groups.items()):
            if key == group or key[1] != group[1] or not any(skill in r.skills for r in runs):
                continue
            if (key, skill) not in self._cache:
                self._cache[(key, skill)] = self._observe([r for r in runs if skill in r.skills], skill)
            if len(self._cache[(key, skill)]):
                out.append(self._cache[(key, skill)])
        return out


def level_fit(obs: Observations, scales: Scales) -> CandidateFit:
    """The no-trend candidate fitted without a solver: the mean final accuracy of the
    largest size (what `estimate` fits the `level` law to)."""
    finals = obs.subset(obs.final & (obs.params == obs.params.max()))
    theta = np.array([float(np.mean(finals.accuracy))])
    return CandidateFit(spec=Spec("level"), floor=obs.chance, top=obs.top, scales=scales, theta=theta,
                        stderr=np.full(1, np.nan), draws=np.empty((0, 1)), converged=True, at_bound=())


def cross_family_items(target: Observations, others: Sequence[Observations], scales: Scales, noise: float,
                       seed: int) -> dict[Spec, list]:
    """Hold-outs borrowed from the other families, for a family too small to hold out its
    own sizes: each other family with ≥ 2 sizes has its largest predicted from its smaller
    ones (pooled with everyone else, the target family included) by the pooled law and by
    the level. Their errors at their distances calibrate the target's forecast."""
    from forecast.fitting.selection import holdout_items

    items: dict[Spec, list] = {POOLED_SPEC: [], Spec("level"): []}
    for k, other in enumerate(others):
        sizes = other.sizes
        if len(sizes) < 2:
            continue
        inner = other.subset(other.params < sizes[-1])
        held = other.subset((other.params == sizes[-1]) & other.final)
        rest = [target, *others[:k], *others[k + 1:]]
        try:
            pooled, _ = fit_pooled(inner, rest, scales, draws=0, seed=seed)
        except FitError:
            continue
        distances = {int(r): float(extrapolation_distance(sizes[-1], held.flops[held.run == r].max(),
                                                          inner.sizes.max(), inner.flops.max()))
                     for r in np.unique(held.run)}
        for spec, cf in ((POOLED_SPEC, pooled), (Spec("level"), level_fit(inner, scales))):
            items[spec].extend(holdout_items(cf, held, noise, origin=k, distances=distances, span=1.0))
    return {s: v for s, v in items.items() if v}


def error_model(items: Sequence[HoldoutItem], floor: float | None = None) -> tuple[float, float]:
    """(c, τ) of the error model err ~ N(0, c² + (τ·r)²) that best explains the hold-outs
    (maximum likelihood over a grid; r their reach, e-folds, at least `reach.MIN_REACH`; `floor`:
    c given). A family's next model misses the shared law by a scatter of its own at any
    distance (c: what the law does not know about the family) and by more the farther it
    lies (τ). The fits keep c, as the skill's noise (`beyond_scatter`, `latent_fit`), and read
    the miss beyond it per hold-out over its reach, weighed at the target's reach
    (`selection.at_reach`): one τ over all hold-outs is set by the distances where most of
    them lie. Without c, near targets were too sure; with τ alone, far targets too."""
    e2 = np.array([i.error for i in items]) ** 2
    r2 = np.array([effective_reach(i.distance, 1.0) for i in items]) ** 2
    top = math.sqrt(float(e2.mean())) + 1e-6
    c = np.concatenate([[0.0], np.geomspace(1e-3, top, 50)]) if floor is None else np.array([floor])
    tau = np.concatenate([[0.0], np.geomspace(1e-4, top / math.sqrt(float(r2.min())), 50)])
    var = c[:, None, None] ** 2 + tau[None, :, None] ** 2 * r2[None, None, :] + 1e-8
    loglik = -0.5 * np.sum(e2 / var + np.log(var), axis=2)
    i, j = np.unravel_index(np.argmax(loglik), loglik.shape)
    return float(c[i]), float(tau[j])


def beyond_scatter(items: dict[Spec, list], noise: float) -> tuple[dict[Spec, list], float]:
    """The other families' hold-outs (`cross_family_items`) split into a scatter at any
    distance and what grows with it; and the skill's noise (accuracy) raised to that scatter.

    One family's offset is fixed by its own members, so the slope borrowed from the others
    errs in proportion to the distance, but how far the family's next model falls from its
    family's line (a new generation under an old name, a different data mix) does not shrink
    with the distance. Read as a rate per e-fold alone, from hold-outs mostly farther out, it
    made short-reach intervals too narrow. As for the latent law, the scatter c is
    `error_model`'s on the pooled law's hold-outs and becomes the noise; each hold-out then
    keeps only its miss beyond c as drift (its shift scaled by √(1 − c²/error²), 0 where c
    explains it all), as its excess is its miss beyond the noise, so the rates per e-fold
    are not counted twice."""
    pooled = items.get(POOLED_SPEC, [])
    c = error_model(pooled)[0] if len(pooled) >= 2 else 0.0
    if c <= noise:
        return items, noise

    def part(i):
        kept = math.sqrt(max(0.0, 1.0 - c**2 / i.worst**2)) if i.worst > 0 else 0.0
        return dataclasses.replace(i, noise=c, shift=i.shift * kept)

    return {s: [part(i) for i in v] for s, v in items.items()}, c


def borrowed_items(target: Observations, others: Sequence[Observations], scales: Scales, noise: float,
                   seed: int) -> tuple[dict[Spec, list], float]:
    """`cross_family_items`, marked borrowed and split by `beyond_scatter`; and the noise."""
    items, noise = beyond_scatter(cross_family_items(target, others, scales, noise, seed), noise)
    return {s: [dataclasses.replace(i, borrowed=True) for i in v] for s, v in items.items()}, noise


# ============================================================ recipes of one ladder: one shape, offsets

SHARED_SLOPES = ("params", "tokens")
"""The shared slopes of `SharedShape`, in ln N and ln D (parameters, training tokens)."""


@dataclass(frozen=True, eq=False)
class SharedShape:
    """One metric of one skill across the recipes (or families) of a ladder, fitted jointly:

        y = a_g + b·ln(N/N_ref) + c·ln(D/D_ref)

    with y the metric on a scale where the trend is linear (the logit of accuracy above the
    floor; −ln of a loss; ln of an answer probability) and higher is better. Every group
    shares the slopes b, c (the scaling shape: how the skill grows with parameters N and
    tokens D, and through the shared floor and top its ceiling and link); each has its
    own offset a_g (its efficiency), which alone orders the groups. A slope is fitted only
    where the points identify it (`slopes`): c needs runs of one size at different budgets.

    `cov` is the coefficients' covariance already multiplied by `scale`, the residual
    variance per unit weight (χ²/dof; for accuracy at least 1, the evaluation noise
    being known): so scatter beyond the weights' noise widens every interval."""

    groups: tuple[str, ...]
    coef: np.ndarray  # offsets (one per group, in `groups` order), then the slopes named in `slopes`
    cov: np.ndarray
    scale: float
    slopes: tuple[str, ...]
    log_params_ref: float  # ln N_ref (parameters)
    log_tokens_ref: float  # ln D_ref (training tokens)
    points: int
    chi2: float  # weighted residual sum of squares
    floor: float | None = None  # the accuracy floor the metric was taken above, where it is accuracy

    def slope(self, name: str) -> float:
        """The shared slope per e-fold of `name` ("params" or "tokens"); 0 when not fitted."""
        return float(self.coef[len(self.groups) + self.slopes.index(name)]) if name in self.slopes else 0.0

    def row(self, group: str, params: float, tokens: float) -> np.ndarray:
        """The design row of `group` at (`params` parameters, `tokens` training tokens)."""
        return self._design(np.array([self.groups.index(group)]), np.array([math.log(params)]),
                            np.array([math.log(tokens)]))[0]

    def predict(self, group: np.ndarray, log_params: np.ndarray, log_tokens: np.ndarray) -> np.ndarray:
        """y at points (group index, ln N, ln D)."""
        return self._design(group, log_params, log_tokens) @ self.coef

    def _design(self, group: np.ndarray, log_params: np.ndarray, log_tokens: np.ndarray) -> np.ndarray:
        x = np.zeros((len(group), len(self.coef)))
        x[np.arange(len(group)), group] = 1.0
        logs = {"params": log_params - self.log_params_ref, "tokens": log_tokens - self.log_tokens_ref}
        for k, name in enumerate(self.slopes):
            base, _, member = name.partition("@")  # "params@g": group g's deviation from the shared slope
            x[:, len(self.groups) + k] = logs[base] * (group == self.groups.index(member) if member else 1.0)
        return x

    def sample(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """`draws` coefficient vectors from the fit's normal approximation, (draws, coef)."""
        return rng.multivariate_normal(self.coef, self.cov, size=draws, method="eigh")

    def offset_z(self, a: str, b: str) -> float:
        """(a_a − a_b) / its standard error: how many noise units separate two groups."""
        i, j = self.groups.index(a), self.groups.index(b)
        var = self.cov[i, i] + self.cov[j, j] - 2 * self.cov[i, j]
        return float((self.coef[i] - self.coef[j]) / math.sqrt(max(var, 1e-300)))


def _several_budgets(group: np.ndarray, log_params: np.ndarray, log_tokens: np.ndarray) -> bool:
    """Whether some group trained one size to budgets more than `BUDGET_RATIO` apart: only
    then is the slope in tokens read apart from the offsets (seeds and sequence lengths move
    token counts by a few percent, which would otherwise pin a wild slope)."""
    for g in np.unique(group):
        for n in np.unique(log_params[group == g]):
            d = log_tokens[(group == g) & (log_params == n)]
            if d.max() - d.min() > math.log(BUDGET_RATIO):
                return True
    return False


def fit_shared_shape(groups: Sequence[str], group: np.ndarray, log_params: np.ndarray, log_tokens: np.ndarray,
                     y: np.ndarray, weight: np.ndarray, *, known_noise: bool,
                     floor: float | None = None, slope_spread: float | None = None) -> SharedShape:
    """Weighted least squares of `SharedShape` on points (group index, ln N, ln D, y, weight).
    `known_noise`: the weights are 1/variance in absolute units (accuracy), so the residual
    scale is floored at 1; else they are relative and the residuals alone measure the noise.
    `FitError` where no group has two sizes (no trend to share) or no point is left over
    to measure the noise. `slope_spread`: where given, each group with three sizes or more
    also gets its own deviation from the shared slope in ln N, shrunk to 0 by a normal prior
    of that standard deviation (per e-fold, on y's scale): trends that may cross."""
    keep = np.isfinite(y) & np.isfinite(weight) & (weight > 0)
    group, log_params, log_tokens, y, weight = group[keep], log_params[keep], log_tokens[keep], y[keep], weight[keep]
    k = len(groups)
    if any(not (group == g).any() for g in range(k)):
        missing = [groups[g] for g in range(k) if not (group == g).any()]
        raise FitError(f"no usable point for {', '.join(missing)}")
    ref_n, ref_d = float(np.mean(log_params)), float(np.mean(log_tokens))
    onehot = np.zeros((len(y), k))
    onehot[np.arange(len(y)), group] = 1.0
    columns = {"params": log_params - ref_n, "tokens": log_tokens - ref_d}
    slopes: tuple[str, ...] = ()
    design = onehot
    budgets = _several_budgets(group, log_params, log_tokens)
    for name in SHARED_SLOPES:  # a slope joins only where the points identify it
        trial = np.column_stack([design, columns[name]])
        if (name == "params" or budgets) and np.linalg.matrix_rank(trial) == trial.shape[1]:
            design, slopes = trial, (*slopes, name)
    if "params" not in slopes:
        raise FitError("no recipe has two sizes: there is no trend in size to share")
    dof = len(y) - design.shape[1]
    if dof < 1:
        raise FitError(f"{len(y)} points for {design.shape[1]} coefficients: nothing left to measure the noise")
    prior = np.zeros(design.shape[1])  # 1/variance of each coefficient's prior (0: flat)
    if slope_spread is not None:
        for g in range(k):
            if len(np.unique(log_params[group == g])) >= 3:
                design = np.column_stack([design, columns["params"] * (group == g)])
                slopes = (*slopes, f"params@{groups[g]}")
                prior = np.append(prior, 1.0 / slope_spread**2)
    root = np.sqrt(weight)
    ridge = np.diag(np.sqrt(prior))[prior > 0]
    coef = np.linalg.lstsq(np.vstack([design * root[:, None], ridge]),
                           np.concatenate([y * root, np.zeros(len(ridge))]), rcond=None)[0]
    chi2 = float(np.sum(weight * (y - design @ coef) ** 2))
    scale = chi2 / dof
    if known_noise:
        scale = max(scale, 1.0)
    cov = np.linalg.pinv(design.T @ (design * weight[:, None]) + np.diag(prior) * scale) * scale
    return SharedShape(groups=tuple(groups), coef=coef, cov=cov, scale=scale, slopes=slopes,
                       log_params_ref=ref_n, log_tokens_ref=ref_d, points=len(y), chi2=chi2, floor=floor)
