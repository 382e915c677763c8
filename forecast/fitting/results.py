"""What a fit knows about each skill: the result types `fit` produces and forecasts read.

`SkillFit` is one skill of one (family, recipe) group: its status, every candidate law
with its hold-out score and weight, the pilot trajectories it saw. Selecting skill fits
by family, recipe and name is here too, so every command selects the same way. The file
format is `forecast.store.files`; the façade with forecasting methods is `forecast.fits.Fits`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from forecast.fitting.candidates import CandidateFit, Scales
from forecast.errors import UsageError
from forecast.fitting.reach import effective_reach
from forecast.quantities import FLOPS_PER_PARAM_TOKEN
from forecast.fitting.status import Note, Status


@dataclass(frozen=True)
class HoldoutItem:
    """One held-out run of one origin, as one candidate predicted it; in a candidate's stored
    record (`HoldoutScore.record`), the `count` runs of one hold-out within one bin of
    distance, summed up (`forecast.fitting.selection.compact`)."""

    origin: int  # index of the held-out size (0 = the largest)
    distance: float  # e-folds beyond the fitted sizes (parameters or compute)
    span: float  # the divisor of `distance` for this law (`extrapolation_span`)
    error: float  # measured − predicted accuracy at the run's final checkpoint (a record: their mean)
    shift: float  # e-folds of tokens aligning the law with the run's curve (a record: RMS, the sign of the mean)
    noise: float  # measurement noise of `error`
    path: float = 0.0  # RMS error over the run's checkpoints (its trajectory), when it has several
    # (a record: the RMS of the runs' `worst`)
    misfit: float = 0.0  # accuracy error left once aligned by `shift`, beyond noise (error of shape)
    borrowed: bool = False  # a hold-out from another family (pooling), its origins apart from this family's
    depth: int = 0  # sizes left out between the fitted ones and the held-out one (`holdout.holdout_origins`)
    count: float = 1.0  # held-out runs this item stands for

    @property
    def reach(self) -> float:
        """How far the hold-out extrapolated, in units of the law's span (at least `MIN_REACH`)."""
        return effective_reach(self.distance, self.span)

    @property
    def worst(self) -> float:
        """The larger of the final error and the trajectory's RMS error (absolute)."""
        return max(abs(self.error), self.path)

    @property
    def excess(self) -> float:
        """`worst` beyond measurement noise (root of the excess variance, ≥ 0)."""
        return math.sqrt(max(0.0, self.worst**2 - self.noise**2))

    def to_row(self) -> list[float]:
        """The item as a row of a fit file's record (`RECORD_COLUMNS`; 6 significant digits)."""
        return [self.origin, self.depth, int(self.borrowed),
                *(float(f"{getattr(self, k):.6g}") for k in RECORD_COLUMNS[3:])]

    @classmethod
    def from_row(cls, row: Sequence[float]) -> HoldoutItem:
        values = dict(zip(RECORD_COLUMNS, row))
        return cls(origin=int(values.pop("origin")), depth=int(values.pop("depth")),
                   borrowed=bool(values.pop("borrowed")), **{k: float(v) for k, v in values.items()})


RECORD_COLUMNS = ("origin", "depth", "borrowed", "count", "distance", "span", "error", "shift", "noise", "path",
                  "misfit")
"""The columns of a candidate's stored hold-out record (`HoldoutScore.record`), one row per item."""


@dataclass(frozen=True)
class HoldoutScore:
    """How a candidate extrapolated when fitted on the smaller sizes only (rolling origin:
    each of the largest sizes predicted from those below it).

    `mae`: mean absolute error of accuracy at the held-out final checkpoints (fraction);
    `shift`: drift rate, e-folds of tokens by which the law misplaced the held-out curves
    (the shifts that best align them) per unit of reach (it widens the *when*, and the
    accuracy where the curve is steep); `error`: the accuracy error left once aligned (error
    of shape) per unit of reach; both RMS over the hold-outs, shrunk towards the priors of
    `forecast.fitting.selection`;
    `distance`: the farthest hold-out (e-folds of parameters or FLOPs); `loglik`: mean log
    likelihood of the held-out finals (what candidate weights are computed from); `origins`:
    how many held-out sizes; `record`: the hold-outs themselves, binned by distance
    (`forecast.fitting.selection.compact`), from which a forecast re-weighs the candidates
    and re-measures these rates at its own target's distance (`selection.at_reach`)."""

    mae: float
    shift: float
    error: float
    distance: float
    loglik: float | None = None
    origins: int = 1  # how many held-out sizes
    record: tuple[HoldoutItem, ...] = ()  # empty in fits written before records were kept


@dataclass(frozen=True)
class Calibration:
    """How a skill's forecasts widen with extrapolation, as its rolling hold-outs measured
    (shrunk towards priors; `forecast.fitting.selection`): per e-fold of distance beyond the pilots,
    `shift_rate` e-folds of tokens of drift of the transition and `error_rate` accuracy
    error beyond noise (the weighted candidates' average, for weights and confidence; each
    candidate's own rates are in its `HoldoutScore`, and are what its samples use);
    `holdouts` held-out sizes behind it, `dof` the degrees of
    freedom of the Student-t the forecast draws its extrapolation errors from,
    `max_distance` the farthest hold-out (e-folds)."""

    shift_rate: float
    error_rate: float
    holdouts: int
    dof: float
    max_distance: float

    def to_json(self) -> dict[str, float]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        return cls(**{k: float(data[k]) if k != "holdouts" else int(data[k]) for k in
                      ("shift_rate", "error_rate", "holdouts", "dof", "max_distance")})


@dataclass(frozen=True, eq=False)
class Candidate:
    """A candidate law with its hold-out score and its weight in the forecast mixture."""

    fit: CandidateFit
    weight: float
    holdout: HoldoutScore | None = None

    @property
    def key(self) -> str:
        return self.fit.spec.key


@dataclass(frozen=True)
class PilotRun:
    """One pilot run as the fit saw it (post warm-up checkpoints)."""

    name: str
    hash: str
    params: float  # parameters
    seed: int | None
    tokens: tuple[float, ...]  # training tokens at each checkpoint
    flops: tuple[float, ...]  # training FLOPs at each checkpoint
    accuracy: tuple[float, ...]
    smoothed: tuple[float, ...]  # isotonic (non-decreasing) accuracy
    examples: tuple[float, ...] | None = None  # training examples (sequences) at each checkpoint, if recorded


@dataclass(frozen=True, eq=False)
class SkillFit:
    """Everything `forecast` knows about one skill of one (family, recipe) group."""

    family: str
    recipe: str
    skill: str
    status: Status  # FITTED or NOT_PREDICTABLE
    reason: str | None  # why not predictable, or None
    chance: float
    top: float  # highest attainable accuracy (ceiling, else 1)
    noise: float  # checkpoint-to-checkpoint noise of accuracy (standard deviation)
    n_eval: float | None  # typical evaluation sample count (for binomial noise at the target)
    pilots: tuple[PilotRun, ...]
    scales: Scales | None = None
    candidates: tuple[Candidate, ...] = ()
    law: str | None = None  # key of the chosen (highest-weight) candidate
    why: str = ""
    calibration: Calibration | None = None
    tokens_known: bool = True  # False: the runs gave no training tokens (a law in parameters alone)
    borrowed_from: tuple[str, ...] = ()  # other families a pooled candidate learnt from (`--pool families`)
    borrowed_skills: tuple[str, ...] = ()  # the family's other benchmarks a latent candidate read it from (`--pool latent`)
    flat: bool = False  # no trend with model size is readable in the pilots (`Observations.trend_is_flat`)
    accelerating: bool | None = None  # accuracy rises faster than linearly in log compute (None: cannot tell;
    # `Observations.accelerates`)
    span: float = 0.0  # ln(largest / smallest pilot size): the lever arm the family's own laws extrapolate with
    notes: tuple[Note, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def predictable(self) -> bool:
        return self.status == Status.FITTED

    @property
    def sizes(self) -> tuple[float, ...]:
        return tuple(sorted({p.params for p in self.pilots}))

    @property
    def max_flops(self) -> float:
        """Largest training compute any pilot reached (FLOPs); NaN when unknown."""
        values = [f for p in self.pilots for f in p.flops if math.isfinite(f)]
        return max(values) if values else math.nan

    def weight_of(self, laws: Sequence[str]) -> float:
        """Total weight of the candidates whose law is one of `laws`."""
        return float(sum(c.weight for c in self.candidates if c.fit.spec.law in laws))

    @property
    def floor(self) -> float:
        """Floor of the chosen law (chance unless an estimated floor won)."""
        best = max(self.candidates, key=lambda c: c.weight, default=None)
        return best.fit.floor if best else self.chance

    @property
    def flops_per_param_token(self) -> float:
        """κ in C = κ·N·D for this group (6 when the runs gave no FLOPs)."""
        return self.scales.flops_per_param_token if self.scales else FLOPS_PER_PARAM_TOKEN


# ---------------------------------------------------------------------------- selection


def groups(skill_fits: Sequence[SkillFit]) -> list[tuple[str, str]]:
    """The (family, recipe) groups present, sorted."""
    return sorted({(s.family, s.recipe) for s in skill_fits})


def choose_group(skill_fits: Sequence[SkillFit], family: str | None = None,
                 recipe: str | None = None) -> tuple[str, str]:
    """The one (family, recipe) group selected; `UsageError` if none or ambiguous."""
    present = groups(skill_fits)
    chosen = [g for g in present if (family is None or g[0] == family) and (recipe is None or g[1] == recipe)]
    if len(chosen) == 1:
        return chosen[0]
    listing = ", ".join(f"`family={f!r}` `recipe={r!r}`" for f, r in present)
    if not chosen:
        raise UsageError(f"no fits for family={family!r} recipe={recipe!r}; the fits hold: {listing}")
    raise UsageError(f"the fits hold several groups; choose one with {listing}")


def wants_all(skills: Sequence[str] | None) -> bool:
    """True when a skill selection means every skill: None, empty, or containing `all`."""
    return not skills or any(s.lower() == "all" for s in skills)


def match_skills(known: Sequence[str], skills: Sequence[str] | None, where: str = "") -> list[str]:
    """The names in `known` that `skills` selects (case-insensitive; None or `all`: every
    one, in order); an unknown name is a `UsageError` listing the known ones."""
    if wants_all(skills):
        return list(known)
    lookup = {k.lower(): k for k in known}
    out = []
    for name in skills:
        if name.lower() not in lookup:
            raise UsageError(f"`skills={name!r}`: unknown skill{where}; the fits hold: {', '.join(sorted(known)) or 'none'}",
                              parameter="skills")
        if lookup[name.lower()] not in out:
            out.append(lookup[name.lower()])
    return out


def select(skill_fits: Sequence[SkillFit], family: str | None = None, recipe: str | None = None,
           skills: Sequence[str] | None = None) -> list[SkillFit]:
    """Skill fits of one group, in the order `skills` names them (None or `all`: every one)."""
    fam, rec = choose_group(skill_fits, family, recipe)
    members = {s.skill: s for s in skill_fits if s.family == fam and s.recipe == rec}
    return [members[name] for name in match_skills(list(members), skills, f" for family {fam!r}")]
