"""Runs in progress on the real ladders (slow: each case fits its ladder): the 2.8B Pythia runs
and the six 3B OLMo runs with the end of training hidden (`forecast backtest --partial`).
The numbers are those of docs/in-progress.md (`benchmarks/in_progress.py`)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import REPO, shared_data

from forecast.backtesting.partial import partial_backtest

sys.path.insert(0, str(REPO / "benchmarks"))
import real_data  # noqa: E402  (the README's import settings, shared with the benchmarks)

SHARES = (0.1, 0.25, 0.5)


@pytest.fixture(scope="module")
def pythia():
    shared_data("pythia", "pythia_evals.csv")
    runs = real_data.pythia()
    return {family: partial_backtest([r for r in runs if r.family == family], SHARES)
            for family in ("pythia", "pythia-deduped")}


@pytest.fixture(scope="module")
def olmo():
    shared_data("olmo-ladder")
    return partial_backtest(real_data.olmo(), SHARES)


@pytest.mark.slow
def test_pythia_error_falls_as_the_run_is_seen(pythia):
    for family, result in pythia.items():
        maes = [s.mae for s in result.scores]
        assert maes[0] > maes[1] > maes[2], (family, maes)
        assert result.scores[-1].mae < result.scores[-1].ladder_mae, family
        assert all(s.items == 8 for s in result.scores)
    pooled = [s for r in pythia.values() for s in r.scores if s.share == 0.25]
    assert sum(s.mae for s in pooled) < sum(s.ladder_mae for s in pooled)  # at 25%: better than the ladder alone


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 27, not met: at 25% of the 2.8B run the error is 0.67x the ladder-only "
                   "error on Pythia (0.70 vs 1.04 points) and 0.88x on Pythia-deduped (0.51 vs 0.59), not half. The "
                   "best fixed mix of the ladder and the run's checkpoints alone, chosen in hindsight, scores 0.73 and "
                   "0.51: no weighting of the two readings gets there; on deduped half (0.30) lies below the 0.37 an "
                   "oracle knowing the run's smooth curve to its end still misses by (benchmarks/in_progress.py)")
def test_pythia_at_a_quarter_the_error_is_at_most_half_the_ladders(pythia):
    for family, result in pythia.items():
        quarter = result.scores[1]
        assert quarter.mae <= 0.5 * quarter.ladder_mae, family


@pytest.mark.slow
def test_olmo_error_falls_and_beats_the_ladder_and_the_runs_own_curve(olmo):
    maes = [s.mae for s in olmo.scores]
    assert maes[0] > maes[1] > maes[2], maes
    for s in olmo.scores:
        assert s.mae < s.ladder_mae and s.mae < 0.3 * s.own_mae


@pytest.mark.slow
def test_coverage_over_items_and_shares(pythia, olmo):
    items = [i for r in (*pythia.values(), olmo) for i in r.items]
    hits = np.mean([i.low <= i.actual <= i.high for i in items])
    assert 0.7 <= hits <= 0.9, hits
    assert not any(i.off_path for i in items)  # the real runs are on their ladders' paths
