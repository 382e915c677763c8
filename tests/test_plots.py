"""Plots: each figure from synthetic fits with a known grok law, saved as a valid PNG."""

from __future__ import annotations

import dataclasses
import math

import matplotlib
import pytest
from helpers import REPO, shared_data
from matplotlib.figure import Figure

from forecast import Recipe, Run, make_series, plots
from forecast.backtesting.results import Backtest, BacktestPoint, SkillBacktest
from forecast.backtesting.backtest import backtest
from forecast.fitting.fit import FitOptions
from forecast.fits import fit
from forecast.plots.layout import drawn_labels
from forecast.threads import torch_threads
from forecast.forecasting.predict import predict_skill
from forecast.runs.synthetic import GrokTruth, synthetic_ladder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIZES = [1e6, 3e6, 1e7, 3e7]
OPTIONS = FitOptions(draws=20, keep_draws=20)
FAST = dict(samples=100)  # Monte-Carlo samples per skill: plenty for a picture test


def ladder() -> list:
    """Two skills that grok at known points and one flat at chance (a level forecast, no grok point)."""
    skills = [
        synthetic_ladder(GrokTruth(), SIZES, checkpoints=12, skill="early"),
        synthetic_ladder(GrokTruth(d_half=1e9, gamma=0.5, chance=0.25, plateau=0.8), SIZES, checkpoints=12,
                         skill="late"),
        synthetic_ladder(GrokTruth(d_half=1e15, chance=0.25), SIZES, checkpoints=12, skill="flat"),
    ]
    return [dataclasses.replace(runs[0], series={k: v for r in runs for k, v in r.series.items()})
            for runs in zip(*skills)]


@pytest.fixture(scope="module")
def runs():
    return ladder()


@pytest.fixture(scope="module")
def skill_fits(runs):
    fits = fit(runs, options=OPTIONS).skills
    assert [sf.flat for sf in fits] == [False, True, False]  # early, flat, late (sorted)
    return fits


@pytest.fixture(scope="module")
def blank():
    """A skill with one checkpoint of one size: it supports no number at all."""
    series = make_series("blank", [1], [1e9], accuracy=[0.3], params=1e6, chance=0.25)
    (sf,) = fit([Run("one", 1e6, "one", Recipe(), {"blank": series})], options=OPTIONS).skills
    assert not sf.predictable
    return sf


def assert_png(path, min_bytes=10_000, max_bytes=2_000_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert min_bytes < len(data) < max_bytes
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def note_text(fig: Figure) -> str:
    """The figure's free text (note, title) with line wrapping undone."""
    return " ".join(" ".join(t.get_text().split()) for t in fig.texts)


def readable(fig: Figure) -> set[str]:
    """Check a figure as a person would read it, and return its legend labels: every legend
    entry stands for an artist some panel drew (`layout.mark`); no text (titles, labels,
    ticks, notes, legends) runs past the figure's edge; no two tick labels of an axis overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    edge = fig.bbox
    boxes = [(f"axes {ax.get_title()!r}", ax.get_tightbbox(renderer)) for ax in fig.axes]
    boxes += [(t.get_text(), t.get_window_extent(renderer)) for t in fig.texts if t.get_text().strip()]
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    boxes += [("legend", lg.get_window_extent(renderer)) for lg in legends]
    for what, box in boxes:
        assert box.x0 >= edge.x0 - 1 and box.y0 >= edge.y0 - 1 and box.x1 <= edge.x1 + 1 and box.y1 <= edge.y1 + 1, \
            f"cut off at the figure's edge: {what[:60]}"
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            shown = [t.label1 for t in axis._update_ticks() if t.label1.get_visible() and t.label1.get_text()]
            extents = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: (b.x0, b.y0))
            for a, b in zip(extents, extents[1:]):
                assert not a.overlaps(b), f"tick labels overlap on {ax.get_title()!r}"
    labels = {t.get_text() for lg in legends for t in lg.get_texts()}
    missing = labels - drawn_labels(fig)
    assert not missing, f"legend entries not drawn: {missing}"
    return labels


def test_forecast_figure_has_a_panel_per_predictable_skill(skill_fits, tmp_path):
    fig = plots.forecast_figure(skill_fits, 3e8, 6e9, **FAST)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        assert ax.get_title().split("\n")[0] in {"early", "late", "flat"}
    assert "flat" in fig.axes[1].get_title().split("\n")[1]  # the flat skill's status
    assert any(ax.get_xlabel() == "training tokens" for ax in fig.axes)  # the unit the tables use
    assert "without measurement noise" in note_text(fig)
    labels = readable(fig)
    assert {"target 300M params", "80% model interval", "grok point", "chance", "1M", "30M"} <= labels
    assert_png(plots.save(fig, tmp_path / "forecast.png"))


def test_forecast_figure_marks_the_target_and_uses_given_forecasts(skill_fits):
    late = skill_fits[2]
    given = predict_skill(late, 3e8, tokens=6e9, level=0.8)
    fig = plots.forecast_figure([late], 3e8, 6e9, forecasts=[given], **FAST)
    (ax,) = fig.axes
    assert given.status in ax.get_title()
    # the end-of-training point sits at the target's tokens and the x range reaches it
    assert ax.get_xlim()[1] > given.tokens
    assert ax.get_xlim()[0] < min(min(p.tokens) for p in late.pilots)
    readable(fig)


def test_forecast_figure_computes_what_predict_prints(skill_fits):
    late = skill_fits[2]
    printed = predict_skill(late, 3e8, tokens=6e9, level=0.8, seed=3)
    (ax,) = plots.forecast_figure([late], 3e8, 6e9, seed=3).axes
    assert ax.get_title().endswith(f"{printed.status}, p(grok) {printed.p_grok:.2f}")


def test_nothing_predictable_gives_a_note_and_no_panels(blank, tmp_path):
    fig = plots.forecast_figure([blank], 3e8, 6e9, **FAST)
    assert fig.axes == []
    assert "Not predictable (not shown): blank (a single checkpoint" in note_text(fig)
    assert_png(plots.save(fig, tmp_path / "empty.png"), min_bytes=1_000)


def test_grok_scaling_figure_overlays_few_skills_and_splits_on_request(skill_fits, tmp_path):
    fig = plots.grok_scaling_figure(skill_fits, target_params=3e8, **FAST)
    (ax,) = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_xlabel() == "model size (parameters)"
    assert "No transition in the pilots, so no grok point (not shown): flat" in note_text(fig)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"early", "late", "target 300M"} <= set(labels)
    assert readable(fig) == set(labels)
    assert_png(plots.save(fig, tmp_path / "grok.png"))
    split = plots.grok_scaling_figure(skill_fits, target_params=3e8, panels=True, **FAST)
    assert len(split.axes) == 2
    readable(split)
    assert "300M groks at" in split.axes[0].get_title()


def test_first_crossing_interpolates_in_log_tokens():
    crossing = plots.first_crossing([1e6, 1e8, 1e10], [0.1, 0.3, 0.9], threshold=0.6)
    assert crossing.kind == plots.CROSSED
    assert math.isclose(crossing.tokens, 1e9)  # half way from 0.3 to 0.9, half way in log tokens
    assert plots.first_crossing([1e6, 1e8], [0.7, 0.9], 0.6) == plots.Crossing(1e6, plots.BEFORE)
    assert plots.first_crossing([1e6, 1e8], [0.1, 0.2], 0.6) == plots.Crossing(1e8, plots.NEVER)


def test_backtest_figure_shows_held_out_trajectories(runs, tmp_path):
    with torch_threads(1):  # the fit-then-sample pattern runs ~3× faster on one torch thread (2-core CI)
        result = backtest(runs, options=OPTIONS)
    fig = plots.backtest_figure(result)
    assert len(fig.axes) == sum(1 for s in result.skills if s.law) == 3
    assert all(ax.get_xscale() == "log" for ax in fig.axes)
    # the panel's number is the table's (final checkpoint), the all-checkpoint one beside it, said so
    for ax, sb in zip(fig.axes, [s for s in result.skills if s.law]):
        assert f"final: MAE {100 * sb.mae():.1f} pts" in ax.get_title() and "(all: " in ax.get_title()
    assert "as `forecast backtest` prints them" in note_text(fig)
    assert readable(fig) >= {"measured (held out)", "forecast median", "80% interval", "carry-over", "log-linear"}
    assert_png(plots.save(fig, tmp_path / "backtest.png"))


def test_backtest_figure_with_final_points_only_is_one_scatter(tmp_path):
    def point(skill, actual, predicted):
        return BacktestPoint(skill=skill, run=f"{skill}-big", params=1e9, tokens=2e10, flops=1.2e20, final=True,
                             actual=actual, predicted=predicted, low=predicted - 0.05, high=predicted + 0.05,
                             carry=actual - 0.1, loglinear=actual + 0.05)
    skills = tuple(SkillBacktest(skill=s, family="f", recipe="default", status="fitted", reason=None, law="power_law",
                                 points=(point(s, a, a + 0.02), point(s, a + 0.1, a + 0.07)))
                   for s, a in (("a", 0.3), ("b", 0.6)))
    skipped = SkillBacktest(skill="c", family="f", recipe="default", status="not-predictable", reason="flat",
                            law=None, points=())
    fig = plots.backtest_figure(Backtest(holdout="largest", level=0.8, skills=(*skills, skipped)))
    (ax,) = fig.axes
    assert ax.get_xlabel() == "measured accuracy (held-out)"
    assert "c (flat)" in note_text(fig)
    assert readable(fig) == {"a", "b"}
    assert_png(plots.save(fig, tmp_path / "scatter.png"))


def test_save_is_atomic(skill_fits, tmp_path, monkeypatch):
    fig = plots.forecast_figure([skill_fits[0]], 3e8, 6e9, **FAST)
    path = plots.save(fig, tmp_path / "sub" / "f.png")
    before = path.read_bytes()
    assert list(path.parent.iterdir()) == [path]
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600

    def broken(self, handle):
        handle.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots.FigureCanvasAgg, "print_png", broken)
    with pytest.raises(RuntimeError):
        plots.save(fig, path)
    assert path.read_bytes() == before  # the old file, untouched
    assert list(path.parent.iterdir()) == [path]  # and no temporary file left


def test_figures_are_deterministic_and_leave_global_state_alone(skill_fits, tmp_path):
    rc = dict(matplotlib.rcParams)
    first = plots.save(plots.grok_scaling_figure(skill_fits[:1], 3e8, **FAST), tmp_path / "1.png").read_bytes()
    second = plots.save(plots.grok_scaling_figure(skill_fits[:1], 3e8, **FAST), tmp_path / "2.png").read_bytes()
    assert first == second
    assert dict(matplotlib.rcParams) == rc


# ---------------------------------------------------------------------------- on the shared data
#
# Pythia (standard and deduplicated Pile as two recipes of one family, two skills: arc_easy
# rises, MMLU sits at chance with its grok threshold far above the data), and the shipped
# demo ladder for the demo's figure.

REAL_SKILLS = ("arc_easy", "mmlu")


@pytest.fixture(scope="module")
def pythia():
    import warnings

    from forecast.importers import LongColumns, import_long

    path = shared_data("pythia", "pythia_evals.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = import_long(path, columns=LongColumns(params="nonembedding_params"), metrics=("acc",), shots=0,
                           params_kind="non-embedding")
    runs = [dataclasses.replace(r, family="pythia", recipe=Recipe("deduped" if "deduped" in r.family else "standard"),
                                series={k: v for k, v in r.series.items() if k in REAL_SKILLS}) for r in runs]
    with torch_threads(1):
        return runs, fit(runs, options=FitOptions(draws=20, keep_draws=20, losses=False))


@pytest.mark.slow
def test_real_forecast_and_scaling_figures_read_as_their_legends_say(pythia, tmp_path):
    runs, fits = pythia
    standard = fits.select("pythia", "standard")
    fig = plots.forecast_figure(standard, 7e9, 3e11, **FAST)
    labels = readable(fig)
    assert {"target 7B params", "80% model interval", "chance"} <= labels
    (mmlu,) = [ax for ax in fig.axes if ax.get_title().startswith("mmlu")]
    assert mmlu.get_ylim()[1] < 0.4  # the threshold (~0.6) is an arrow, not a squashed panel
    assert any("threshold" in t.get_text() for t in mmlu.texts)
    assert_png(plots.save(fig, tmp_path / "forecast.png"))
    scaling = plots.grok_scaling_figure(standard, 7e9, panels=True, samples=100)
    readable(scaling)
    assert_png(plots.save(scaling, tmp_path / "grok.png"))


@pytest.mark.slow
def test_real_backtest_figure_says_what_the_table_says(pythia, tmp_path):
    runs, _ = pythia
    standard = [r for r in runs if r.recipe.label == "standard"]
    with torch_threads(1):
        result = backtest(standard, options=FitOptions(draws=20, keep_draws=20, losses=False))
    fig = plots.backtest_figure(result)
    for ax, sb in zip(fig.axes, [s for s in result.skills if s.law]):
        assert f"final: MAE {100 * sb.mae():.1f} pts" in ax.get_title()
    readable(fig)
    assert_png(plots.save(fig, tmp_path / "backtest.png"))


@pytest.mark.slow
def test_real_compare_figure_names_the_grouping_and_labels_empty_panels(pythia, tmp_path):
    _, fits = pythia
    comparisons = fits.compare(by="recipe", target_params=7e9)
    fig = plots.compare_figure(comparisons, fits)
    labels = readable(fig)
    assert labels == {"deduped", "standard"}
    titles = [ax.get_title() for ax in fig.axes]
    assert all("recipe" in t for t in titles) and all(ax.get_ylabel() for ax in fig.axes)
    mmlu = [ax for ax in fig.axes if ax.get_title().startswith("mmlu: when")]
    assert mmlu and any("never groks" in t.get_text() or "no recipe groks" in t.get_text() for t in mmlu[0].texts)
    assert_png(plots.save(fig, tmp_path / "compare.png"))


def test_demo_figure_on_the_shipped_fits_keeps_its_legend_outside_the_panels(tmp_path):
    """The demo's figure from the shipped fits and runs: the verification run (here the
    largest shipped run standing in for it) is a legend entry of the figure, not a legend
    inside one panel, and the grok point's glyph differs from the end-of-training error bar."""
    from forecast import Fits, load_runs

    fits = Fits.load(REPO / "fits")
    skill_fits = fits.select("demo", "reverse")
    largest = max(load_runs(REPO / "runs" / "demo"), key=lambda r: r.params)
    verification = {k: (s.tokens, s.accuracy) for k, s in largest.series.items()}
    fig = plots.forecast_figure(skill_fits, largest.params * 4, largest.final_tokens, verification=verification, **FAST)
    labels = readable(fig)
    assert "verification run" in labels and all(ax.get_legend() is None for ax in fig.axes)
    glyphs = {h.get_label(): h.get_marker() for h in fig.legends[0].legend_handles if hasattr(h, "get_marker")}
    assert glyphs.get("grok point", "D") != glyphs[next(k for k in glyphs if k.startswith("end:"))]
    assert_png(plots.save(fig, tmp_path / "demo.png"))


def test_demo_figure_draws_every_verification_seed_on_the_tokens_axis(tmp_path):
    """`forecast demo --plot`'s figure (`forecast.demo.demo_figure`): one legend entry per
    verification seed, each drawn, the x axis in training tokens as the tables are, and a
    title that says what was forecast from what. Two shipped pilots stand in for the seeds."""
    from types import SimpleNamespace

    from forecast import Fits, load_runs
    from forecast.demo import demo_figure

    fits = Fits.load(REPO / "fits")
    runs = load_runs(REPO / "runs" / "demo")
    largest = max(r.params for r in runs)
    seeds = sorted((r for r in runs if r.params == largest), key=lambda r: r.seed)
    forecasts = fits.predict(4 * largest, tokens=seeds[0].final_tokens, skills=["all"], family="demo")
    fig = demo_figure(SimpleNamespace(forecasts=forecasts, fits=fits, verification=seeds, runs=runs))
    labels = readable(fig)
    for run in seeds:
        assert f"verification seed {run.seed}" in labels
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert "training tokens" in {ax.get_xlabel() for ax in fig.axes}
    assert "Forecast for a" in fig.get_suptitle() and "then that model trained" in fig.get_suptitle()
    assert_png(plots.save(fig, tmp_path / "demo.png"))
