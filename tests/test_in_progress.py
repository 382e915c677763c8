"""A run in progress: the ladder's forecast updated by the run's own checkpoints, and the
off-path alarm, on synthetic ladders with known answers (`forecast.runs.synthetic`)."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest

from forecast.errors import UsageError
from forecast.fits import fit
from forecast.fitting.fit import FitOptions
from forecast.forecasting.in_progress import update_with_run
from forecast.forecasting.off_path import first_alarm
from forecast.forecasting.schedule import Logit, schedule_shape
from forecast.runs.model import Recipe, Run, make_series
from forecast.runs.synthetic import GrokTruth, synthetic_ladder
from forecast.schema.in_progress import RunForecastJson

TRUTH = GrokTruth(d_half=3e8, n_ref=1e6, gamma=0.5, k=2.0, chance=0.25, plateau=0.85)
SIZES = [1e6, 2e6, 4e6, 8e6]
TARGET = 16e6
TOKENS = (3e6, 3e9)
N_EVAL = 2000


@pytest.fixture(scope="module")
def ladder():
    runs = synthetic_ladder(TRUTH, SIZES, tokens_range=TOKENS, checkpoints=24, n_eval=N_EVAL, rng=np.random.default_rng(1))
    return fit(runs, options=FitOptions(draws=60, laws=("grok_scaling", "compute_sigmoid")))


def target_run(rng: np.random.Generator, *, share: float = 1.0, shift_after: float | None = None, shift: float = 0.0,
               checkpoints: int = 40, planned: float = TOKENS[1], complete: bool | None = None,
               truth: GrokTruth = TRUTH) -> Run:
    """The target size trained on the ladder's law (binomial noise), checkpoints evenly spaced
    in tokens; from `shift_after` of training on, accuracy is moved by `shift` (a data bug)."""
    tokens = np.linspace(planned / checkpoints, planned, checkpoints)
    tokens = tokens[tokens <= share * planned * (1 + 1e-9)]
    p = truth.accuracy(TARGET, tokens)
    if shift_after is not None:
        p = np.where(tokens >= shift_after * planned, np.clip(p + shift, 0, 1), p)
    acc = rng.binomial(N_EVAL, p) / N_EVAL
    series = make_series("skill", range(1, len(tokens) + 1), tokens, accuracy=acc, n=np.full(len(tokens), N_EVAL),
                         params=TARGET, chance=TRUTH.chance)
    extra = {} if complete is None else {"complete": complete}
    return Run(name="target", params=TARGET, family="synthetic", recipe=Recipe("default"), series={"skill": series},
               params_kind="non-embedding", seed=0, source="test", extra=extra)


def test_update_moves_towards_the_run_more_with_more_checkpoints(ladder):
    """A run whose plateau sits 0.05 below the ladder's law (its own offset) is read a little
    from two checkpoints and a lot from fifty: the run's weight grows, the forecast moves from
    the ladder's median to the run's true end and, at the end, covers it."""
    rng = np.random.default_rng(3)
    own = dataclasses.replace(TRUTH, plateau=TRUTH.plateau - 0.05)
    truth_end = float(own.accuracy(TARGET, TOKENS[1]))
    weights, errors, widths = [], [], []
    for count in (2, 25, 50):
        run = target_run(rng, share=count / 50, checkpoints=50, truth=own)
        (f,) = update_with_run(ladder, run, TOKENS[1])
        assert len(f.checkpoints) == count
        weights.append(f.run_weight)
        errors.append(abs(f.accuracy.median - truth_end))
        widths.append(f.accuracy.high - f.accuracy.low)
        assert count < 50 or f.accuracy.low <= truth_end <= f.accuracy.high
    assert weights[0] < weights[1] < weights[2] and weights[0] < 0.2 and weights[2] > 0.5
    assert errors[2] < errors[1] < 0.02 < 0.04 < errors[0]  # the ladder alone says 0.85; the run ends at 0.80
    assert widths[2] < widths[0]


def test_no_checkpoints_is_the_ladder_forecast(ladder):
    run = target_run(np.random.default_rng(0), share=0.005)
    (f,) = update_with_run(ladder, run, TOKENS[1])
    assert f.checkpoints == () and f.run_weight == 0.0
    assert abs(f.accuracy.median - f.ladder.accuracy.median) < 0.01
    assert any("the ladder's forecast stands" in n for n in f.notes)


def alarm_of(forecast) -> int | None:
    return first_alarm(np.array([c.z for c in forecast.checkpoints]),
                       np.array([c.innovation for c in forecast.checkpoints]))


@pytest.mark.parametrize("shift", [-0.2, -0.1, -0.05, 0.1])
def test_planted_off_path_run_is_flagged_within_three_checkpoints(ladder, shift):
    """Checkpoints shifted by a known amount after 30% of training: the alarm rises within
    three checkpoints of the shift (the band rule or the sequential test on the run's
    innovations), says when it left (at the shift) and by how much."""
    for seed in range(5):
        run = target_run(np.random.default_rng(100 + seed), shift_after=0.3, shift=shift)
        (f,) = update_with_run(ladder, run, TOKENS[1])
        shifted = next(i for i, c in enumerate(f.checkpoints) if c.fraction >= 0.3)
        alarm = alarm_of(f)
        assert alarm is not None and shifted <= alarm <= shifted + 2, (seed, alarm, shifted)
        assert f.off_path is not None and f.off_path.direction == ("below" if shift < 0 else "above")
        assert abs(f.off_path.fraction - f.checkpoints[shifted].fraction) < 0.06
        assert abs(f.off_path.by - shift) < 0.04


@pytest.mark.parametrize("trials", [40, pytest.param(300, marks=pytest.mark.slow)])
def test_on_path_runs_are_not_flagged(ladder, trials):
    """The ladder's own law, binomial noise only: no alarm in at least 95% of trials."""
    flagged = 0
    for seed in range(trials):
        (f,) = update_with_run(ladder, target_run(np.random.default_rng(200 + seed)), TOKENS[1])
        flagged += alarm_of(f) is not None
    assert flagged <= 0.05 * trials


def test_cusum_sums_innovations_beyond_the_drift():
    """Page's CUSUM by hand: a steady surprise of 2 SDs adds 1.5 per checkpoint (drift 0.5) and
    passes the threshold 4 at the 3rd; the band rule alone (|z| 2.2 < 2.576) never rises."""
    from forecast.forecasting.off_path import DRIFT, THRESHOLD, cusum, find_off_path

    assert (DRIFT, THRESHOLD) == (0.5, 4.0)
    up, down = cusum(np.array([0.3, -2.0, -2.0, -2.0, -2.0, 1.0]))
    assert up.tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 0.5] and down.tolist() == [0.0, 1.5, 3.0, 4.5, 6.0, 4.5]
    z = np.array([0.1, -2.2, -2.2, -2.2, -2.2, -2.2])
    e = np.array([0.1, -2.0, -2.0, -2.0, -2.0, -2.0])
    n = np.arange(6.0)
    assert first_alarm(z) is None and first_alarm(z, e) == 3
    alarm = find_off_path(z, n, n.astype(int), n / 6, n, n + 1, e)
    assert alarm.rule == "cusum" and alarm.step == 1 and alarm.checkpoints == 5 and alarm.direction == "below"
    assert find_off_path(z[:3], n[:3], n[:3].astype(int), n[:3] / 6, n[:3], n[:3] + 1, e[:3]) is None
    back = np.array([*z[:-1], -1.0])  # back inside the 95% band: the alarm no longer stands
    assert find_off_path(back, n, n.astype(int), n / 6, n, n + 1, e) is None


def test_innovations_on_the_path_are_standard_normal(ladder):
    """Whitened by the update's joint covariance, an on-path run's surprises are independent,
    centred and at most unit scale (the CUSUM's threshold assumes it; below 1 here as each
    checkpoint's noise is at least the ladder's measured checkpoint-to-checkpoint scatter,
    which on this ladder exceeds the binomial)."""
    pooled, lag = [], []
    for seed in range(12):
        (f,) = update_with_run(ladder, target_run(np.random.default_rng(300 + seed)), TOKENS[1])
        e = np.array([c.innovation for c in f.checkpoints])
        pooled += e.tolist()
        lag.append(np.corrcoef(e[:-1], e[1:])[0, 1])
    assert abs(np.mean(pooled)) < 0.25 and 0.5 < np.std(pooled) < 1.1
    assert abs(np.mean(lag)) < 0.2


def test_schedule_shape_from_the_ladder_and_its_absence(ladder):
    """The ladder's intermediate checkpoints give the gap to a run's end at each fraction (the
    law's own gap here, where the runs follow it); a final-only ladder gives none, says so and
    widens the interval."""
    (sf,) = ladder.skills
    logit = Logit(sf.floor, sf.top)
    shape = schedule_shape(sf.pilots, TARGET, TOKENS[1], logit)
    assert shape.known and shape.pilots == len(SIZES)
    law_gap = logit(TRUTH.accuracy(TARGET, 0.25 * TOKENS[1])) - logit(TRUTH.accuracy(TARGET, TOKENS[1]))
    assert shape.gap(0.25) == pytest.approx(law_gap, abs=0.35)
    finals = [dataclasses.replace(p, tokens=p.tokens[-1:], flops=p.flops[-1:], accuracy=p.accuracy[-1:],
                                  smoothed=p.smoothed[-1:]) for p in sf.pilots]
    bare = schedule_shape(finals, TARGET, TOKENS[1], logit)
    assert not bare.known and bare.spread(0.25) > shape.spread(0.25)
    run = target_run(np.random.default_rng(5), share=0.25)
    (with_shape,) = update_with_run([sf], run, TOKENS[1])
    (without,) = update_with_run([dataclasses.replace(sf, pilots=tuple(finals))], run, TOKENS[1])
    assert without.schedule == "final-only" and any("final checkpoints only" in n for n in without.notes)
    width = lambda f: f.accuracy.high - f.accuracy.low  # noqa: E731
    assert width(without) > width(with_shape)


def test_planned_tokens_from_the_run_or_refused(ladder):
    rng = np.random.default_rng(0)
    run = target_run(rng, share=0.3, complete=False)
    with pytest.raises(UsageError) as err:
        update_with_run(ladder, run)
    assert err.value.parameter == "planned_tokens"
    recorded = dataclasses.replace(run, extra={"complete": False, "planned_tokens": TOKENS[1]})
    (f,) = update_with_run(ladder, recorded)
    assert f.planned_tokens == TOKENS[1]
    finished = target_run(rng)
    (g,) = update_with_run(ladder, finished)
    assert g.planned_tokens == pytest.approx(TOKENS[1])
    with pytest.raises(UsageError):
        update_with_run(ladder, run, -1.0)


def _conforms(value, shape) -> None:
    """`value` has exactly the keys of the TypedDict `shape`, recursively."""
    hints = typing.get_type_hints(shape)
    assert set(value) == set(hints), (shape.__name__, set(value) ^ set(hints))
    for key, hint in hints.items():
        inner = [a for a in typing.get_args(hint) if typing.is_typeddict(a)] or \
            ([hint] if typing.is_typeddict(hint) else [])
        if inner and isinstance(value[key], dict):
            _conforms(value[key], inner[0])
        lists = [a for a in typing.get_args(hint) if typing.is_typeddict(a)] if typing.get_origin(hint) is list else []
        for item in value[key] if lists else ():
            _conforms(item, lists[0])


def test_json_follows_its_shape(ladder):
    run = target_run(np.random.default_rng(9), shift_after=0.3, shift=-0.2, share=0.6)
    (f,) = update_with_run(ladder, run, TOKENS[1])
    out = f.to_json()
    _conforms(out, RunForecastJson)
    assert out["off_path"] is not None and out["checkpoints"] == len(out["checkpoints_detail"])


def test_seen_to_and_the_runs_own_curve_recover_a_planted_line():
    """`seen_to` keeps the checkpoints up to the share of steps and records the real plan; the
    own-curve baseline recovers the end of a curve that is a line in logit vs ln tokens."""
    from forecast.backtesting.partial import own_curve, seen_to
    from forecast.forecasting.in_progress import Checkpoint, RunForecast
    from forecast.forecasting.predict import Interval

    run = target_run(np.random.default_rng(0), checkpoints=20)
    cut = seen_to(run, 0.25)
    assert len(cut.series["skill"].step) == 5 and cut.extra["planned_tokens"] == pytest.approx(TOKENS[1])
    assert cut.complete is False and run.complete is None
    logit = Logit(0.25, 1.0)
    tokens = np.geomspace(1e8, 1e9, 6)
    acc = logit.inverse(-2.0 + 0.8 * np.log(tokens / 1e8))
    band = Interval(0.5, 0.4, 0.6)
    points = tuple(Checkpoint(i, float(t), float(t / 1e10), float(a), band, 0.0) for i, (t, a) in enumerate(zip(tokens, acc)))
    f = RunForecast(skill="s", run="r", params=1e8, planned_tokens=1e10, tokens_seen=1e9, checkpoints=points,
                    ladder=None, accuracy=None, grok=None, grok_observed=None, p_grok=None, threshold=None, offset=None,
                    offset_sd=None, run_weight=0.0, run_alone=None, schedule="ladder-checkpoints", off_path=None, level=0.8)
    assert own_curve(f, 0.25, 1.0) == pytest.approx(float(logit.inverse(-2.0 + 0.8 * np.log(100))), abs=1e-9)


def test_a_run_of_another_family_is_read_against_the_ladder_and_says_so(ladder):
    run = dataclasses.replace(target_run(np.random.default_rng(4), share=0.5), family="mine")
    (f,) = update_with_run(ladder, run, TOKENS[1])
    assert any("read against the ladder synthetic/default" in n for n in f.notes)
    (g,) = update_with_run(ladder, dataclasses.replace(run, family="synthetic"), TOKENS[1])
    assert not any("read against" in n for n in g.notes)
