"""How far a forecast reaches beyond the pilots, in e-folds: the one definition that the
fits (hold-out distances, calibration) and the forecasts (out-of-range) share."""

from __future__ import annotations

import math

import numpy as np

MAX_EXTRAPOLATION = math.log(1e6)
"""Farthest a forecast reaches beyond the largest pilot, in e-folds of parameters or compute
(`extrapolation_distance`): six decades of compute, three of parameters on the
compute-optimal path. Beyond it no law fitted to the pilots is evidence of anything, and
`predict` says `out-of-range` instead of printing a number."""


def extrapolation_distance(params: np.ndarray | float, flops: np.ndarray | float, max_params: float,
                           max_flops: float) -> np.ndarray:
    """How far beyond the pilots a model lies, in e-folds: the larger of ln(N / N_max) and
    ln(C / C_max) (0 inside the pilots). A larger model at a small budget is still an
    extrapolation in parameters even when its compute is not."""
    return np.maximum(0.0, np.maximum(np.log(np.asarray(params, float) / max_params),
                                      np.log(np.asarray(flops, float) / max_flops)))


MIN_REACH = 0.25
"""Any extrapolation counts as reaching at least a quarter of the law's span: a hold-out
just beyond the fitted sizes still misses by what refitting on noisy points costs, which
does not shrink to zero with the distance (dividing it by a tiny reach would inflate the
rates; `effective_reach`)."""


def effective_reach(distance, span: float):
    """Distance (e-folds; scalar or array) over span, at least `MIN_REACH` for any distance
    beyond the pilots (0 inside them)."""
    reach = np.asarray(distance, dtype=float) / span
    return np.where(reach > 0, np.maximum(reach, MIN_REACH), 0.0) if reach.ndim else \
        (max(float(reach), MIN_REACH) if reach > 0 else 0.0)
