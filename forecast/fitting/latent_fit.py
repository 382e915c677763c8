"""The latent-capability law (`forecast.fitting.latent`) as a fit path: `fit(..., pool="latent")`.

A table of final checkpoints across families (a leaderboard: one checkpoint per model) is
fitted once with the latent law, and every (family, benchmark) of it gets one candidate:
for one family and one benchmark the law is a sigmoid in log compute,

    acc = floor + (top − floor)·σ(a + s·ln C/C_ref) + r,

its slope s shared with every family (the benchmark's loadings), its intercept a placed by
the family's offsets, which its other benchmarks measured, and r the family's own residual
on the benchmark (shrunk). With C = 6·N·D that is the pooled law `sigmoid_nd` with
b = c = s (a family whose runs give no tokens is trained like its models, D ∝ N: b = 2s,
c = 0), so it is stored, sampled and forecast as every other candidate is
(`LATENT_SPEC`, told apart from `--pool families` by its `via`).

Calibration, as for a family's own laws, from hold-outs at the target's kind of distance:
every family with two sizes or more has its largest member forecast from the table less
that member (the law refitted, warm), by the latent law and by the level (its next smaller
member carried over); their errors weigh the two (`selection.weigh`) and set the interval's
width, as a scatter c at any distance (the skill's noise for this law, `error_model`) plus
each hold-out's miss beyond c per e-fold of compute beyond the family's largest fitted
member, which a forecast weighs by the closeness of each hold-out's reach to its own
(`selection.at_reach`): a rate measured at the target's reach. (One rate τ fitted to every
hold-out at once was set by the many at 2–3.5 e-folds, which missed least, and carried to
targets beyond 3.5 e-folds made their 80% intervals cover 64.5% on the leaderboard, smallest
half.) A benchmark that other families crossed near the target's compute is then forecast
on its sigmoid, with P(grok) and an interval as wide as the hold-outs, jumps included,
missed by.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.errors import DataError
from forecast.fitting.candidates import CandidateFit, Scales, Spec
from forecast.fitting.latent import LatentFit, fit_latent, model_flops
from forecast.fitting.pooling import error_model, level_fit
from forecast.fitting.reach import extrapolation_distance
from forecast.fitting.results import Candidate
from forecast.fitting.selection import HoldoutItem, prior_calibration, weigh
from forecast.fitting.status import Note, NoteCode
from forecast.runs.model import Run

LATENT_SPEC = Spec("sigmoid_nd", "chance", "latent")
"""The latent law's candidate: the pooled law's formula, its parameters from the latent fit."""
MIN_FAMILIES = 3
"""A table needs this many families for the latent law (offsets are read against the others)."""


def final_only(runs: Sequence[Run]) -> bool:
    """Whether every run holds one checkpoint per skill (a leaderboard row)."""
    return all(len(s.tokens) == 1 for r in runs for s in r.series.values())


@dataclass(frozen=True)
class _Held:
    """One hold-out: family `family`'s largest member forecast from the table less it."""

    family: str
    origin: int
    distance: float  # e-folds of compute (or parameters) beyond the family's largest fitted member
    latent: dict[str, float]  # skill -> measured − latent forecast
    level: dict[str, float]  # skill -> measured − the next smaller member's value


class LatentContext:
    """The latent law over the final-checkpoint groups of one fit, per recipe label: fitted
    once (with `draws` bootstrap refits), its hold-outs computed once, then handed to each
    group's skills (`covers`, `candidate`, `items`, `borrowed`)."""

    def __init__(self, groups: dict[tuple[str, str], Sequence[Run]], draws: int, seed: int) -> None:
        self._groups = groups
        self._draws, self._seed = draws, seed
        self._fits: dict[str, tuple[LatentFit, list[_Held], list[Run]] | None] = {}

    def _fit(self, recipe: str):
        if recipe not in self._fits:
            runs = [r for (f, rec), members in sorted(self._groups.items()) if rec == recipe and final_only(members)
                    for r in members]
            fitted = None
            if len({r.family for r in runs}) >= MIN_FAMILIES:
                try:
                    lf = fit_latent(runs, draws=self._draws, seed=self._seed)
                    fitted = (lf, _holdouts(lf, runs, self._seed), runs)
                except DataError:
                    fitted = None
            self._fits[recipe] = fitted
        return self._fits[recipe]

    def covers(self, family: str, recipe: str, skill: str) -> bool:
        """Whether the latent law holds this family's skill."""
        got = self._fit(recipe)
        return got is not None and family in got[0].families and skill in got[0].skills \
            and any(r.family == family and skill in r.skills for r in got[2])

    def candidate(self, family: str, recipe: str, skill: str, scales: Scales, tokens_known: bool) -> CandidateFit:
        """The family's latent candidate on `skill` in its own reference scales (`sigmoid_nd`)."""
        lf = self._fit(recipe)[0]
        b = lf.skills.index(skill)
        rows = [_as_sigmoid_nd(lf, family, skill, scales, tokens_known, d) for d in lf.draws]
        theta = _as_sigmoid_nd(lf, family, skill, scales, tokens_known, None)
        return CandidateFit(spec=LATENT_SPEC, floor=float(lf.floor[b]), top=float(lf.top[b]), scales=scales,
                            theta=theta, stderr=np.full(3, np.nan), draws=np.array(rows).reshape(-1, 3),
                            converged=True, at_bound=(), offset=float(lf.family_residual[lf.families.index(family), b]),
                            notes=(f"latent law over {len(lf.families)} families and {len(lf.skills)} benchmarks",))

    def items(self, recipe: str, skill: str, noise: float) -> dict[Spec, list[HoldoutItem]]:
        """Hold-out items of the latent law and of the level on `skill` (`noise`: its
        noise, accuracy; each item's misfit its own error beyond the noise)."""
        out: dict[Spec, list[HoldoutItem]] = {LATENT_SPEC: [], Spec("level"): []}
        for h in self._fit(recipe)[1]:
            if skill not in h.latent:
                continue
            for spec, error in ((LATENT_SPEC, h.latent[skill]), (Spec("level"), h.level[skill])):
                misfit = math.sqrt(max(0.0, error**2 - noise**2))
                out[spec].append(HoldoutItem(origin=h.origin, distance=h.distance, span=1.0, error=error, shift=0.0,
                                             noise=noise, misfit=misfit, borrowed=True))
        return {s: v for s, v in out.items() if v}

    def borrowed(self, family: str, recipe: str, skill: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(other families, the family's other benchmarks) the latent candidate learnt from."""
        lf, _, runs = self._fit(recipe)
        own = sorted({s for r in runs if r.family == family for s in r.skills} & set(lf.skills) - {skill})
        return tuple(f for f in lf.families if f != family), tuple(own)


def _as_sigmoid_nd(lf: LatentFit, family: str, skill: str, scales: Scales, tokens_known: bool,
                   theta: np.ndarray | None) -> np.ndarray:
    """(a, b, c) of `sigmoid_nd` in `scales` equal to the latent law for `family` on `skill`
    (see module docstring): ln C/C_ref = ln(6·N_ref·D_ref/C_ref) + x_params + x_tokens, or
    with D = r·N (r the family's tokens per parameter) for runs that give no tokens."""
    intercept, slope = lf.logit_line(family, skill, theta)
    if tokens_known:
        shift = math.log(6 * scales.params * scales.tokens / lf.flops_ref)
        return np.array([intercept + slope * shift, slope, slope])
    ratio = lf.tokens_per_param.get(family, lf.tokens_per_param[""])
    shift = math.log(6 * ratio * scales.params**2 / lf.flops_ref)
    return np.array([intercept + slope * shift, 2 * slope, 0.0])


def _holdouts(full: LatentFit, runs: Sequence[Run], seed: int) -> list[_Held]:
    """Per family with ≥ 2 sizes: its largest member forecast from the rest (see module docstring)."""
    out = []
    for origin, family in enumerate(full.families):
        members = [r for r in runs if r.family == family]
        top = max(r.params for r in members)
        held = [r for r in members if r.params == top]
        prev = [r for r in members if r.params < top]
        if not prev:
            continue
        rest = [r for r in runs if not (r.family == family and r.params == top)]
        try:
            lf = fit_latent(rest, draws=0, seed=seed, start=full)
        except DataError:
            continue
        if family not in lf.families:
            continue
        fitted_params = max(r.params for r in prev)
        fitted_flops = max(model_flops(r, lf.tokens_per_param) for r in prev)
        for h in held:
            latent, level = {}, {}
            for skill in sorted(set(h.skills) & set(lf.skills)):
                below = [r for r in prev if skill in r.skills]
                if not below:
                    continue
                actual = float(h.series[skill].accuracy[-1])
                latent[skill] = actual - lf.point(family, skill, lf.log_flops(h))
                level[skill] = actual - float(max(below, key=lambda r: r.params).series[skill].accuracy[-1])
            distance = float(extrapolation_distance(h.params, model_flops(h, lf.tokens_per_param), fitted_params,
                                                    fitted_flops))
            if latent and distance > 0:
                out.append(_Held(family, origin, distance, latent, level))
    return out


def latent_candidates(st) -> list[Candidate]:
    """The candidates of a skill the latent law holds (`st`: the skill's fit in progress,
    `forecast.fitting.fit._Skill`, whose weights, scores, calibration and borrowings this
    fills): the latent law and the level, weighed by the table's hold-outs."""
    family, recipe, context = st.base.family, st.base.recipe, st.latent
    items = context.items(recipe, st.skill, st.noise)
    if items:  # the error the hold-outs show at any distance is noise to the law (`error_model`)
        floor, _ = error_model(items[LATENT_SPEC])
        st.noise = max(st.noise, floor)
        st.base = dataclasses.replace(st.base, noise=st.noise)
        items = context.items(recipe, st.skill, st.noise)  # each one's miss beyond it: a rate at the target's reach
    st.borrowed, st.borrowed_skills = context.borrowed(family, recipe, st.skill)
    fits = {LATENT_SPEC: context.candidate(family, recipe, st.skill, st.scales, st.obs.tokens_known),
            Spec("level"): level_fit(st.obs, st.scales)}
    if items:
        st.weights, st.scores, st.calibration = weigh(items)
    else:  # no family of the table had two sizes to hold one out: the priors
        st.weights, st.scores, st.calibration = {LATENT_SPEC: 1.0}, {}, prior_calibration()
    return [Candidate(fits[s], w, st.scores.get(s)) for s, w in st.weights.items()]


def latent_note(families: Sequence[str], skills: Sequence[str]) -> Note:
    """What a latent forecast borrowed, in words."""
    return Note(NoteCode.POOLED, "latent capabilities shared across families: this family's offsets read off its "
                f"{', '.join(skills) or 'other benchmarks'}, the benchmark's slope and crossing from the other "
                f"families: {', '.join(families)}")


def latent_why(candidates: Sequence[Candidate], scores: dict, sizes, failures: dict) -> str:
    """One sentence on the choice, in the terms of the table's hold-outs (the signature of
    `selection.explain_choice`)."""
    best = candidates[0]
    key = "latent" if best.fit.spec == LATENT_SPEC else best.key
    if best.holdout is None:
        return f"{key} (weights from priors: no family of the table has two sizes to hold one out)"
    text = (f"{key}: each family's largest member forecast from the rest of the table, {best.holdout.origins} "
            f"hold-out(s), within {100 * best.holdout.mae:.1f} points (mean abs.)")
    others = [f"{'latent' if s == LATENT_SPEC else s.key} {100 * v.mae:.1f}" for s, v in scores.items()
              if s != best.fit.spec]
    return text + (f"; {', '.join(others)}" if others else "") + f"; weight {best.weight:.2f}"
