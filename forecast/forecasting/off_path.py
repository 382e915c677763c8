"""The off-path alarm: a run whose checkpoints leave the ladder's band.

Each checkpoint is compared, in logits of accuracy above the floor
(`forecast.forecasting.schedule.Logit`), with what the ladder expects of a run of its size at
the same fraction of its schedule: expected ℓ = the ladder's final forecast plus the schedule
gap, with a standard deviation that adds the ladder's forecast scatter, the schedule shape's
scatter and the checkpoint's own evaluation noise (binomial from its item count, or its
stderr). Two rules, either raises the alarm:

- **Band**: `STREAK` consecutive checkpoints beyond `Z` standard deviations on the same side.
  One checkpoint out of a 99% band is noise (a run logs dozens), two in a row are not.
- **Sequential (CUSUM)**: the run's *innovations*, each checkpoint's surprise given the
  ladder and every checkpoint before it (the joint Gaussian of the update, whitened: under the
  ladder's model they are independent standard normals, whatever offset from the ladder the
  run has shown so far), are summed on each side, less `DRIFT` per checkpoint, floored at 0
  (Page's CUSUM). The alarm rises when a sum passes `THRESHOLD`: a shift the band is too wide
  to see in one or two checkpoints (the ladder's own scatter is in the band, not in the
  innovations) is caught in a few. `THRESHOLD` is set so that on-path planted runs of 40
  checkpoints raise it in under 5% of trials (0 of 300 measured; `benchmarks/in_progress.py`).
  It stands while the latest checkpoint also sits beyond `HOLD` band standard deviations on
  the same side (outside the ladder's 95% band): the update follows a run that has shifted,
  so its innovations return to 0 and the sum alone would not say it is still off the path.
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
DRIFT = 0.5
"""CUSUM allowance per checkpoint (innovation standard deviations): half the smallest shift
the sequential rule is tuned to catch quickly."""
THRESHOLD = 4.0
"""CUSUM decision threshold (innovation standard deviations). With `DRIFT` 0.5 the two-sided
average run length on the path is about 470 checkpoints for independent standard-normal
innovations (Siegmund's approximation); the alarm also needs the checkpoint outside the 95%
band (`HOLD`), which rarely coincides on the path."""
HOLD = 1.96
"""The CUSUM alarm stands while the latest checkpoint is beyond this many band standard
deviations on its side (outside the ladder's 95% band)."""


@dataclass(frozen=True)
class OffPath:
    """Where a skill left the ladder's band and by how much.

    `tokens`, `step` and `fraction` are those of the first checkpoint of the excursion (the
    streak beyond the band, or the first checkpoint outside the 95% band since the CUSUM last
    left 0; the earlier when both rules stand); `by` is the latest checkpoint's
    accuracy minus the ladder's median there (fraction; negative: below the ladder), `z` the
    same in band standard deviations; `rule` says which rule raised it ("band" | "cusum")."""

    tokens: float  # training tokens at the first checkpoint of the excursion
    step: int
    fraction: float  # of the planned tokens
    by: float  # accuracy (fraction) at the latest checkpoint minus the ladder's median there
    z: float
    checkpoints: int  # checkpoints since the excursion began
    rule: str = "band"

    @property
    def direction(self) -> str:
        return "above" if self.by > 0 else "below"

    def to_json(self) -> OffPathJson:
        return {"tokens": finite(self.tokens), "step": self.step, "fraction": finite(self.fraction),
                "by": finite(self.by), "z": finite(self.z), "checkpoints": self.checkpoints,
                "direction": self.direction, "rule": self.rule}


def cusum(innovations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Page's two one-sided CUSUMs of `innovations` (standard deviations): (upper, lower),
    each ≥ 0, S_j = max(0, S_{j−1} ± e_j − DRIFT)."""
    up, down = np.zeros(len(innovations)), np.zeros(len(innovations))
    hi = lo = 0.0
    for j, e in enumerate(np.asarray(innovations, float)):
        hi, lo = max(0.0, hi + e - DRIFT), max(0.0, lo - e - DRIFT)
        up[j], down[j] = hi, lo
    return up, down


def _band_start(z: np.ndarray) -> int | None:
    """First index of the streak beyond the band that ends at the latest checkpoint, or None."""
    out = np.abs(z) > Z
    side = np.sign(z)
    if len(z) < STREAK or not out[-STREAK:].all() or len(set(side[-STREAK:].tolist())) != 1:
        return None
    first = len(z) - 1
    while first > 0 and out[first - 1] and side[first - 1] == side[-1]:
        first -= 1
    return first


def _cusum_start(z: np.ndarray, innovations: np.ndarray) -> int | None:
    """First index of the CUSUM excursion whose alarm stands at the latest checkpoint (its sum
    has passed `THRESHOLD` and the latest checkpoint is beyond `HOLD` on that side)."""
    for stat, sign in zip(cusum(innovations), (1.0, -1.0)):
        raised = np.flatnonzero(stat > THRESHOLD)
        if not len(raised) or not sign * z[-1] > HOLD:
            continue
        zero = np.flatnonzero(stat[:raised[0]] == 0)
        start = int(zero[-1]) + 1 if len(zero) else 0
        # the excursion began at its first checkpoint outside the 95% band on that side
        outside = np.flatnonzero(sign * z[start:] > HOLD)
        return start + int(outside[0])
    return None


def find_off_path(z: np.ndarray, tokens: np.ndarray, steps: np.ndarray, fractions: np.ndarray,
                  observed: np.ndarray, expected: np.ndarray, innovations: np.ndarray | None = None
                  ) -> OffPath | None:
    """The alarm for one skill's checkpoints (aligned arrays, ascending in tokens): `z` their
    deviations from the ladder in band standard deviations, `innovations` their whitened
    surprises (see the module docstring; None: the band rule alone), `observed` their
    accuracies and `expected` the ladder's median accuracy there. None while the run is on its
    path. Judged on the checkpoints up to now."""
    if not len(z):
        return None
    starts = [(start, rule) for start, rule in ((_band_start(z), "band"),
              (None if innovations is None else _cusum_start(z, innovations), "cusum")) if start is not None]
    if not starts:
        return None
    first, rule = min(starts)  # the excursion began at the earlier of the two rules' starts
    return OffPath(tokens=float(tokens[first]), step=int(steps[first]), fraction=float(fractions[first]),
                   by=float(observed[-1] - expected[-1]), z=float(z[-1]), checkpoints=len(z) - first, rule=rule)


def first_alarm(z: np.ndarray, innovations: np.ndarray | None = None) -> int | None:
    """Index of the checkpoint at which a training loop calling the alarm after each
    evaluation would first have been told, or None."""
    up, down = cusum(innovations) if innovations is not None else (None, None)
    for last in range(len(z)):
        window = z[max(0, last - STREAK + 1):last + 1]
        if len(window) == STREAK and (np.abs(window) > Z).all() and len(set(np.sign(window).tolist())) == 1:
            return last
        if up is not None and ((up[:last + 1].max() > THRESHOLD and z[last] > HOLD)
                               or (down[:last + 1].max() > THRESHOLD and z[last] < -HOLD)):
            return last
    return None
