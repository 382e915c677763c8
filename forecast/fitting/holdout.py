"""The rolling hold-out: every candidate law of every skill fitted on the smaller sizes of
its ladder and scored on a larger one, at several depths, so that a law's record reaches as
far as the ladder allows (what `forecast.fitting.selection` weighs and calibrates from)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from forecast.errors import FitError
from forecast.fitting.estimate import fit_jobs
from forecast.fitting.pooling import POOLED_SPEC, fit_pooled
from forecast.fitting.reach import extrapolation_distance
from forecast.fitting.selection import extrapolation_span, holdout_items

MAX_DEPTH = 3
"""The deepest hold-out: fit on the sizes below the held-out one but the 3 right under it."""


def rolling_holdout(states: Sequence, min_fit_sizes: int = 2, every_law: bool = False) -> None:
    """Score every candidate of every skill by extrapolation, rolling the origin as in
    time-series cross-validation: fit on the sizes below the largest and predict the
    largest, then on the sizes below the second largest and predict that one, and so on
    while `min_fit_sizes` sizes remain to fit on. All fits are batched.

    Sets, per skill and candidate, `items[spec]` (one `HoldoutItem` per held-out run and
    origin), and `failures[spec]` for candidates that could not be fitted at the first
    origin (the largest held-out size). With one size to fit on, only the level is fitted
    (a trend in parameters cannot be read off one size) unless `every_law` (a budget
    ladder: one size's budgets trace the trend in compute)."""
    jobs, keys, pooled_jobs = [], [], []
    for st in states:
        sizes = st.obs.sizes
        for origin, depth in holdout_origins(len(sizes), min_fit_sizes):
            target = sizes[-1 - origin]
            inner = st.obs.subset(st.obs.params < sizes[-1 - origin - depth])
            held = st.obs.subset(st.obs.params == target)
            if st.finals_only:  # mid-schedule checkpoints of a budget ladder are not forecast targets
                held = held.subset(held.final)
            distances = {}
            for r in np.unique(held.run):
                run = held.subset(held.run == r)
                last = int(np.argmax(run.tokens))
                distances[int(r)] = float(extrapolation_distance(target, run.flops[last], inner.sizes.max(),
                                                                 inner.flops.max()))
            for spec in st.specs:
                key = (st, spec, (origin, depth), held, distances, extrapolation_span(spec, inner.sizes))
                if spec == POOLED_SPEC:
                    pooled_jobs.append((key, inner))
                elif spec.law == "level" or min_fit_sizes > 1 or every_law:
                    jobs.append(st.job(spec, inner))
                    keys.append(key)
    results = fit_jobs(jobs, report=False)
    for key, inner in pooled_jobs:
        try:
            results.append(fit_pooled(inner, key[0].others, key[0].scales, draws=0, seed=key[0].seed[-1])[0])
        except FitError as exc:
            results.append(exc)
        keys.append(key)
    for (st, spec, (origin, depth), held, distances, span), result in zip(keys, results):
        if isinstance(result, FitError):
            if origin == 0 and depth == 0:
                st.failures[spec] = str(result)
            continue
        if spec not in st.failures:
            items = holdout_items(result, held, st.noise, origin, distances, span)
            st.items.setdefault(spec, []).extend(dataclasses.replace(i, depth=depth) for i in items)


def holdout_origins(sizes: int, min_fit_sizes: int) -> list[tuple[int, int]]:
    """The hold-outs of a ladder of `sizes` sizes, as (origin, depth): the size `origin`
    places below the largest is predicted from the sizes below it, leaving out the `depth`
    sizes right under it, so that the record reaches as far as the ladder allows (fit the
    smallest sizes, score the largest). Depths 0, 1, ..., `MAX_DEPTH` while `min_fit_sizes`
    sizes remain to fit on."""
    return [(origin, depth) for origin in range(sizes - min_fit_sizes)
            for depth in range(MAX_DEPTH + 1) if sizes - 1 - origin - depth >= min_fit_sizes]
