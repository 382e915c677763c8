"""The measured grok crossing, one definition (`forecast.runs.crossing`) for the backtest,
the demo's check and the grok-vs-size figure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecast import Recipe, Run, make_series
from forecast.demo import crossing
from forecast.fitting.fit import FitOptions
from forecast.fits import fit
from forecast.runs.crossing import BEFORE, CROSSED, NEVER, first_crossing, measured_crossing, monotone

TOKENS = np.geomspace(1e6, 1e9, 10)
# a noisy rise: checkpoint 2 spikes above 0.5 by noise, the curve reaches 0.5 between 5 and 6
NOISY = np.array([0.05, 0.10, 0.52, 0.20, 0.30, 0.45, 0.60, 0.80, 0.90, 0.92])


def test_first_crossing_interpolates_in_log_tokens():
    c = first_crossing([1e6, 1e8, 1e10], [0.1, 0.3, 0.9], threshold=0.6)
    assert c.kind == CROSSED and c.tokens == pytest.approx(1e9)  # half way from 0.3 to 0.9, in log tokens
    assert first_crossing([1e8, 1e6], [0.9, 0.7], 0.6).kind == BEFORE  # sorted by tokens first
    assert first_crossing([1e6, 1e8], [0.1, 0.2], 0.6) == first_crossing([1e6, 1e8], [0.1, 0.2], 0.6)
    assert first_crossing([1e6, 1e8], [0.1, 0.2], 0.6).kind == NEVER


def test_one_noisy_checkpoint_is_not_a_crossing():
    smooth = monotone(NOISY)
    assert np.all(np.diff(smooth) >= 0)
    c = measured_crossing(TOKENS, NOISY, 0.5)
    assert c.kind == CROSSED and TOKENS[5] < c.tokens < TOKENS[6]  # not at the spike (checkpoint 2)
    assert first_crossing(TOKENS, NOISY, 0.5).tokens < TOKENS[2]  # the raw curve would say so


def test_backtest_demo_and_plots_read_one_crossing():
    """The demo's `crossing` and the fit's smoothed pilot (what the backtest and the figure
    read) give the same tokens for the same run."""
    runs = []
    for i, size in enumerate((1e6, 2e6, 4e6)):
        acc = np.clip(NOISY + 0.02 * i, 0, 1)
        series = make_series("s", range(10), TOKENS, accuracy=acc, n=np.full(10, 400), params=size, chance=0.0)
        runs.append(Run(f"r{i}", size, "f", Recipe(), {"s": series}))
    (sf,) = fit(runs, options=FitOptions(laws=("level",), draws=4, skip_fraction=0.0)).skills
    for run, pilot in zip(runs, sorted(sf.pilots, key=lambda p: p.params)):
        series = run.series["s"]
        demo = crossing(series.tokens, series.accuracy, 0.5, series.accuracy_stderr())
        figure = first_crossing(pilot.tokens, pilot.smoothed, 0.5)  # what plots.scaling and the backtest read
        assert figure.kind == CROSSED and math.isclose(demo, figure.tokens, rel_tol=1e-5)
