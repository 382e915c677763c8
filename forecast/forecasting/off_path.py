"""The off-path alarm: a run whose checkpoints leave the ladder's band.

Each checkpoint is compared, in logits of accuracy above the floor
(`forecast.forecasting.schedule.Logit`), with what the ladder expects of a run of its size at
the same fraction of its schedule: expected ℓ = the ladder's final forecast plus the schedule
gap, with a standard deviation that adds the ladder's forecast scatter, the schedule shape's
scatter and the checkpoint's own evaluation noise (binomial from its item count, or its
stderr). A skill is off its path when `STREAK` consecutive checkpoints lie beyond `Z`
standard deviations on the same side: one checkpoint out of a 99% band is noise (a run logs
dozens), two in a row are not (false-alarm rate about 10⁻⁴ per checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecast.schema.in_progress import OffPathJson
from forecast.schema.outputs import finite

Z = 2.576
"""Half-width of the band, in standard deviations (a two-sided 99% band)."""
STREAK = 2
"""Consecutive checkpoints beyond the band, on one side, that raise the alarm."""


@dataclass(frozen=True)
class OffPath:
    """Where a skill left the ladder's band and by how much.

    `tokens`, `step` and `fraction` are those of the first checkpoint of the streak beyond
    the band; `by` is the latest checkpoint's accuracy minus the ladder's median there
    (fraction; negative: below the ladder), `z` the same in band standard deviations."""

    tokens: float  # training tokens at the first checkpoint out of the band
    step: int
    fraction: float  # of the planned tokens
    by: float  # accuracy (fraction) at the latest checkpoint minus the ladder's median there
    z: float
    checkpoints: int  # checkpoints beyond the band since it left

    @property
    def direction(self) -> str:
        return "above" if self.by > 0 else "below"

    def to_json(self) -> OffPathJson:
        return {"tokens": finite(self.tokens), "step": self.step, "fraction": finite(self.fraction),
                "by": finite(self.by), "z": finite(self.z), "checkpoints": self.checkpoints,
                "direction": self.direction}


def find_off_path(z: np.ndarray, tokens: np.ndarray, steps: np.ndarray, fractions: np.ndarray,
                  observed: np.ndarray, expected: np.ndarray) -> OffPath | None:
    """The alarm for one skill's checkpoints (aligned arrays, ascending in tokens): `z` their
    deviations from the ladder in band standard deviations, `observed` their accuracies and
    `expected` the ladder's median accuracy there. None while the run is on its path.

    The alarm is judged on the checkpoints up to now: it stands when the latest `STREAK`
    checkpoints are all beyond the band on one side, and reports when that excursion began."""
    out = (np.abs(z) > Z)
    side = np.sign(z)
    if len(z) < STREAK or not out[-STREAK:].all() or len(set(side[-STREAK:].tolist())) != 1:
        return None
    first = len(z) - 1
    while first > 0 and out[first - 1] and side[first - 1] == side[-1]:
        first -= 1
    return OffPath(tokens=float(tokens[first]), step=int(steps[first]), fraction=float(fractions[first]),
                   by=float(observed[-1] - expected[-1]), z=float(z[-1]), checkpoints=len(z) - first)


def first_alarm(z: np.ndarray) -> int | None:
    """Index of the checkpoint at which a training loop calling the alarm after each
    evaluation would first have been told (the `STREAK`-th checkpoint of the first streak
    beyond the band), or None."""
    for last in range(STREAK - 1, len(z)):
        window = z[last - STREAK + 1:last + 1]
        if (np.abs(window) > Z).all() and len(set(np.sign(window).tolist())) == 1:
            return last
    return None
