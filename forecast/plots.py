"""Plots (PNG): forecast trajectories, grok point vs model size, backtests.

Pure functions from fits, forecasts or backtests to a `matplotlib.figure.Figure`, drawn
with the object API on the Agg canvas: no pyplot, no rcParams changes, so figures can be
made from any thread and never leak state between calls; the look is a `PlotStyle` passed
per call. Everything random comes from seeded `SurfaceSamples`, so identical inputs give
identical images. `save` writes a PNG atomically.

Conventions (STYLE.md, point 9): log x (training compute in FLOPs, or parameters), a dotted
chance line, fitted curves solid inside the pilots' range and dashed beyond, shaded
interval bands, the target marked. Skills the fit calls not-predictable get no panel; they
are listed with their reason in a note under the figure.
"""

from __future__ import annotations

import math
import os
import tempfile
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from forecast.backtest import Backtest, SkillBacktest
from forecast.fits import SkillFit
from forecast.optimize import one_thread
from forecast.predict import SkillForecast, predict_skill
from forecast.quantities import format_count
from forecast.samples import SAMPLES, SurfaceSamples

CURVE_POINTS = 60
"""Token values (log-spaced) per drawn curve."""
SCALING_SIZES = 25
"""Model sizes (log-spaced) at which the grok-vs-size curve is computed."""
PLOT_SAMPLES = 500
"""Monte-Carlo samples per skill for the grok-vs-size figure, whose grok search costs ~50
surface evaluations per size. The same samples serve every size, so its bands are smooth
even with few. (The forecast figure uses `predict`'s own count and seed: its numbers are
those `predict` prints.)"""
GROK_SEARCH = 1e3
"""The grok-vs-size search runs from the smallest pilot tokens / this to the largest × this."""
OVERLAY_SKILLS = 4
"""Up to this many skills share one grok-vs-size axes; more get a panel each."""


@dataclass(frozen=True)
class PlotStyle:
    """The look of a figure (sizes in inches and points), passed per call."""

    panel_width: float = 4.0
    panel_height: float = 3.0
    dpi: int = 110
    font_size: float = 8.0
    title_size: float = 9.0
    size_colormap: str = "viridis"  # sequential: pilot sizes, small (dark) to large (light)
    skill_colormap: str = "tab10"  # qualitative: one colour per skill
    target_color: str = "#c0392b"
    reference_color: str = "0.35"  # chance line, baselines
    band_alpha: float = 0.2


DEFAULT_STYLE = PlotStyle()


# ============================================================================ figures


@one_thread()  # small tensors: a second OpenMP thread only spins (measured)
def forecast_figure(
    skill_fits: Sequence[SkillFit],
    target_params: float,
    target_tokens: float,
    forecasts: Sequence[SkillForecast] | None = None,
    level: float = 0.8,
    *,
    samples: int = SAMPLES,
    seed: int = 0,
    style: PlotStyle = DEFAULT_STYLE,
) -> Figure:
    """One panel per predictable skill: accuracy vs training compute (FLOPs, log).

    Pilot checkpoints coloured by model size (parameters) with the fitted median per size
    (solid, over that size's tokens); the target model of `target_params` parameters trained
    on `target_tokens` tokens as a dashed median from the smallest pilot tokens to its end,
    with the `level` interval of its model accuracy shaded (no measurement noise); its end of
    training with the `level` interval of a measured accuracy (with noise) as an error bar;
    the grok point (median compute at which accuracy crosses the grok threshold) with its
    interval as a horizontal bar; chance dotted, threshold faint. `forecasts` (from
    `predict_skill` for the same target) are matched by skill, else computed here."""
    shown = [sf for sf in skill_fits if sf.predictable]
    by_key = {(f.family, f.recipe, f.skill): f for f in forecasts or ()}
    colors = _size_colors([p.params for sf in shown for p in sf.pilots], style)
    pct = f"{100 * level:.0f}%"
    note = [f"Points: pilot checkpoints; solid: fitted median per pilot size; dashed: target median, shaded: "
            f"{pct} interval of model accuracy (without measurement noise); error bar at the end of training: {pct} "
            f"interval of one evaluation (with measurement noise); | on the threshold line: grok point (median "
            f"compute at which accuracy crosses half way from floor to plateau) with its {pct} interval."]
    if any(_budget_ladder(sf) for sf in shown):
        note.append("Sizes trained to several token budgets: the laws describe final checkpoints (large markers); "
                    "intermediate ones sit mid learning-rate schedule.")
    note += _not_predictable(skill_fits, [sf for sf in skill_fits if not sf.predictable])
    handles = [Line2D([], [], color=c, marker="o", ms=3, lw=0.8, label=format_count(s)) for s, c in colors.items()]
    handles += [
        Line2D([], [], color=style.target_color, ls="--", lw=1.6,
               label=f"target {format_count(target_params)} params"),
        Patch(color=style.target_color, alpha=style.band_alpha, label=f"{pct} interval"),
        Line2D([], [], color=style.target_color, marker="|", ms=10, mew=2, ls="none", label="grok point"),
        Line2D([], [], color=style.reference_color, ls=":", label="chance"),
        Line2D([], [], color="0.5", alpha=0.5, label="grok threshold"),
    ] if shown else []
    fig, axes = _grid(len(shown), style, note, handles)
    for ax, sf in zip(axes, shown):
        surface = SurfaceSamples.of(sf, samples=samples, seed=seed)
        forecast = by_key.get((sf.family, sf.recipe, sf.skill)) or predict_skill(
            sf, target_params, tokens=target_tokens, level=level, seed=seed, samples=surface)
        _forecast_panel(ax, sf, surface, forecast, colors, level, style)
        ax.set_title(f"{_panel_title(sf, skill_fits)}\n{forecast.status}, p(grok) {forecast.p_grok:.2f}",
                     fontsize=style.title_size)
    _label_outer(axes, "training compute (FLOPs)", "accuracy", style)
    fig.suptitle(f"{_groups(skill_fits)}: forecast for {format_count(target_params)} params, "
                 f"{format_count(target_tokens)} tokens", fontsize=style.title_size + 1)
    return fig


@one_thread()  # small tensors: a second OpenMP thread only spins (measured)
def grok_scaling_figure(
    skill_fits: Sequence[SkillFit],
    target_params: float | None = None,
    level: float = 0.8,
    *,
    panels: bool | None = None,
    samples: int = PLOT_SAMPLES,
    seed: int = 0,
    style: PlotStyle = DEFAULT_STYLE,
) -> Figure:
    """Tokens to the grok threshold vs model size (parameters), both log, one colour per skill.

    Per pilot run the observed crossing (`first_crossing` of the median threshold by the
    smoothed trajectory; open triangles for bounds); the fitted median (solid across the
    pilot sizes, dashed beyond, out to `target_params`) with its `level` interval shaded,
    computed at `SCALING_SIZES` sizes; the target's median and interval as a star with an
    error bar. All skills share one axes, or with `panels` (default: more than
    `OVERLAY_SKILLS` skills) each skill gets its own panel on shared axes: overlaid wide
    bands hide each other."""
    shown = [sf for sf in skill_fits if sf.predictable]
    split = len(shown) > OVERLAY_SKILLS if panels is None else panels
    pct = f"{100 * level:.0f}%"
    note = [f"Markers: a pilot's first crossing of the grok threshold (half way from floor to plateau), from its "
            f"smoothed trajectory; open: a bound (already above at its first checkpoint, or not crossed by its last). "
            f"Lines: fitted median, solid across pilot sizes, dashed beyond; shaded: {pct} interval where the median "
            f"crosses; grey: 20 tokens per parameter (compute-optimal)."]
    note += _not_predictable(skill_fits, [sf for sf in skill_fits if not sf.predictable])
    markers = [
        Line2D([], [], color="0.3", marker="o", ls="none", label="pilot crossed"),
        Line2D([], [], color="0.3", marker="v", mfc="none", ls="none", label="above at first checkpoint (≤)"),
        Line2D([], [], color="0.3", marker="^", mfc="none", ls="none", label="not crossed by the end (≥)"),
    ]
    if target_params is not None:
        markers.append(Line2D([], [], color="0.3", marker="*", ms=9, ls="none",
                              label=f"target {format_count(target_params)}"))
    markers.append(Line2D([], [], color="0.6", lw=0.8, label="20 tokens/param"))
    if split:
        fig, axes = _grid(len(shown), style, note, markers if shown else (), share=True)
    else:
        fig, axes = _grid(1 if shown else 0, style, note, panel=(2.0, 1.5))
        axes = axes * len(shown)  # every skill on the one axes
    if not shown:
        return fig
    palette = _skill_colors(len(shown), style)
    drawn = []
    for ax, sf, color in zip(axes, shown, palette):
        curve = _grok_scaling_curve(ax, sf, target_params, color, level, samples, seed, style)
        drawn += curve.drawn
        if split:
            ax.set_title(f"{_panel_title(sf, skill_fits)}\n{curve.caption}", fontsize=style.title_size)
    sizes = [s for sf in shown for s in sf.sizes] + ([target_params] if target_params else [])
    unique = list(dict.fromkeys(axes))
    for ax in unique:
        _size_axes(ax, sizes, target_params, style)
    unique[0].set_ylim(min(drawn) / 3, max(drawn) * 3)  # bands may run on to the search's ends
    _label_outer(unique, "model size (parameters)", "tokens to grok threshold", style)
    title = f"{_groups(skill_fits)}: when each skill groks, by model size"
    if split:
        fig.suptitle(title, fontsize=style.title_size + 1)
    else:
        handles = [Line2D([], [], color=c, lw=1.5, label=_panel_title(sf, skill_fits)) for sf, c in zip(shown, palette)]
        fig.legend(handles=handles + markers, loc="outside right upper", fontsize=style.font_size, frameon=False)
        unique[0].set_title(title, fontsize=style.title_size)
    return fig


def backtest_figure(backtest: Backtest, *, style: PlotStyle = DEFAULT_STYLE) -> Figure:
    """How the forecasts fared on the held-out run(s).

    With held-out trajectories: one panel per predicted skill, accuracy vs training compute
    (FLOPs, log) of the held-out checkpoints: measured points, forecast median and interval
    band (with measurement noise, as `backtest` scores it), and the two baselines as thin
    grey lines. When only final checkpoints were scored (budget ladders): one scatter of
    forecast vs measured accuracy, all skills, with interval error bars and the y = x line."""
    scored = [s for s in backtest.skills if s.law]
    pct = f"{100 * backtest.level:.0f}%"
    skipped = _not_predictable(backtest.skills, [s for s in backtest.skills if not s.law])
    if all(p.final for s in scored for p in s.points):
        note = [f"Error bars: {pct} forecast interval (with measurement noise); diagonal: forecast = measured."]
        fig, axes = _grid(1 if scored else 0, style, note + skipped, panel=(1.6, 1.6))
        if scored:
            _backtest_scatter(axes[0], fig, scored, backtest, style)
        return fig
    note = [f"Points: measured accuracy of the held-out run; line and shaded band: forecast median and {pct} "
            "interval (with measurement noise); grey solid: carry-over baseline (largest fitted size at the same "
            "tokens); grey dash-dot: log-linear baseline (straight line in log compute)."]
    handles = [
        Line2D([], [], color="0.3", marker="o", ms=3, ls="none", label="measured (held out)"),
        Line2D([], [], color="0.3", lw=1.5, label="forecast median"),
        Patch(color="0.3", alpha=style.band_alpha, label=f"{pct} interval"),
        Line2D([], [], color=style.reference_color, lw=0.8, label="carry-over"),
        Line2D([], [], color=style.reference_color, lw=0.8, ls="-.", label="log-linear"),
    ] if scored else []
    fig, axes = _grid(len(scored), style, note + skipped, handles)
    for ax, sb in zip(axes, scored):
        _backtest_panel(ax, sb, scored, style)
    _label_outer(axes, "training compute (FLOPs)", "accuracy", style)
    held = sorted({(p.run, p.params) for s in scored for p in s.points}, key=lambda rp: rp[1])
    fig.suptitle(f"Backtest (hold out {backtest.holdout}): " + ", ".join(r for r, _ in held[:4])
                 + (" …" if len(held) > 4 else ""), fontsize=style.title_size + 1)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as a PNG at `path`, atomically: readers see the old file or the new one,
    never a partial one (a temporary file in the same directory, then `os.replace`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            FigureCanvasAgg(fig).print_png(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); an image is for sharing: keep the mode of
        # the file it replaces, else readable by all like any new file under umask 022
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ============================================================================ panels


def _forecast_panel(ax: Axes, sf: SkillFit, surface: SurfaceSamples, forecast: SkillForecast,
                    colors: dict[float, tuple], level: float, style: PlotStyle) -> None:
    """Pilots, their fitted medians, the target's band, end point and grok point (FLOPs, log x)."""
    kappa = sf.scales.flops_per_param_token
    ladder = _budget_ladder(sf)
    for pilot in sorted(sf.pilots, key=lambda p: p.params):
        color = colors[pilot.params]
        ax.plot(pilot.flops, pilot.accuracy, color=color, marker="o", ms=2.2, lw=0.5, alpha=0.3 if ladder else 0.55)
        if ladder:  # the fit read only the final checkpoints
            last = int(np.argmax(pilot.tokens))
            ax.plot(pilot.flops[last], pilot.accuracy[last], color=color, marker="o", ms=4.5, mec="0.15", mew=0.5,
                    zorder=4)
    for params in sf.sizes:
        tokens = [t for p in sf.pilots if p.params == params for t in p.tokens]
        grid = np.geomspace(min(tokens), max(tokens), CURVE_POINTS)
        median = np.median(surface.accuracy(params, grid), axis=0)
        ax.plot(kappa * params * grid, median, color=colors[params], lw=1.4)
    start = min(min(p.tokens) for p in sf.pilots)
    grid = np.geomspace(min(start, forecast.tokens), forecast.tokens, CURVE_POINTS)
    low, median, high = _quantiles(surface.accuracy(forecast.params, grid), level)
    flops = kappa * forecast.params * grid
    ax.fill_between(flops, low, high, color=style.target_color, alpha=style.band_alpha, lw=0)
    ax.plot(flops, median, color=style.target_color, ls="--", lw=1.6)
    ax.axhline(sf.chance, color=style.reference_color, ls=":", lw=1.0)
    ax.axhline(forecast.threshold, color="0.5", lw=0.8, alpha=0.5)
    a = forecast.accuracy
    ax.errorbar(forecast.flops, a.median, yerr=[[a.median - a.low], [a.high - a.median]], fmt="o",
                color=style.target_color, ms=5, mec="white", capsize=3, zorder=5)
    left = min(min(p.flops) for p in sf.pilots) / 1.5
    right = max(forecast.flops, sf.max_flops) * 1.5
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    grok = forecast.grok
    if grok is not None and flops[0] < grok.flops <= right:  # else it grokked before the curve starts
        high_flops = min(grok.high_flops or math.inf, right)
        ax.errorbar(grok.flops, forecast.threshold, xerr=[[grok.flops - max(grok.low_flops, left)],
                                                         [high_flops - grok.flops]],
                    fmt="|", color=style.target_color, ms=12, mew=2, elinewidth=1.2, capsize=0, zorder=6)
        if grok.high_flops is None or grok.high_flops > right:  # the interval runs on past the axis
            ax.plot(right, forecast.threshold, marker=">", color=style.target_color, ms=5, clip_on=False)
    ax.tick_params(labelsize=style.font_size)


@dataclass(frozen=True)
class _Curve:
    drawn: list[float]  # tokens of every crossing and median drawn (for the axis limits)
    caption: str  # the target's grok tokens and interval, for a panel title


def _grok_scaling_curve(ax: Axes, sf: SkillFit, target_params: float | None, color, level: float,
                        samples: int, seed: int, style: PlotStyle) -> _Curve:
    """One skill on grok-vs-size axes: pilot crossings, fitted median and band, target."""
    surface = SurfaceSamples.of(sf, samples=samples, seed=seed)
    thresholds = surface.threshold()
    threshold = float(np.median(thresholds))
    drawn = []
    for pilot in sf.pilots:
        crossing = first_crossing(pilot.tokens, pilot.smoothed, threshold)
        marker = {CROSSED: "o", BEFORE: "v", NEVER: "^"}[crossing.kind]
        ax.plot(pilot.params, crossing.tokens, marker=marker, ms=5, color=color,
                mfc=color if crossing.kind == CROSSED else "none", ls="none", zorder=4)
        drawn.append(crossing.tokens)
    all_tokens = [t for p in sf.pilots for t in p.tokens]
    low_tokens, high_tokens = min(all_tokens) / GROK_SEARCH, max(all_tokens) * GROK_SEARCH
    sizes = np.geomspace(min(sf.sizes), max(max(sf.sizes), target_params or 0), SCALING_SIZES)
    if target_params is not None:
        sizes = np.unique(np.append(sizes, target_params))
    found = np.array([surface.grok_tokens(n, thresholds, low_tokens, high_tokens) for n in sizes])  # (S, K)
    low, median, high = _quantiles(np.clip(found, low_tokens, high_tokens).T, level)  # never (inf) -> the top
    median[(median <= low_tokens) | (median >= high_tokens)] = np.nan  # at the search's ends: nothing to show
    known = np.isfinite(median)
    ax.fill_between(sizes, low, high, where=known, color=color, alpha=style.band_alpha, lw=0)
    inside = sizes <= max(sf.sizes) * (1 + 1e-9)
    beyond = ~inside | (sizes == sizes[inside][-1])  # share the last inside point: no gap
    ax.plot(sizes[inside], median[inside], color=color, lw=1.5)
    ax.plot(sizes[beyond], median[beyond], color=color, lw=1.5, ls="--")
    drawn += list(median[known])
    caption = ""
    if target_params is not None:
        i = int(np.flatnonzero(sizes == target_params)[0])
        if known[i]:
            ax.errorbar(target_params, median[i], yerr=[[median[i] - low[i]], [high[i] - median[i]]], fmt="*",
                        ms=13, color=color, mec="0.15", mew=0.6, capsize=3, zorder=5)
            upper = "never" if high[i] >= high_tokens else format_count(high[i])
            caption = (f"{format_count(target_params)} groks at {format_count(median[i])} tokens "
                       f"({100 * level:.0f}%: {format_count(low[i])}–{upper})")
        else:
            caption = f"{format_count(target_params)}: no crossing within {format_count(high_tokens)} tokens"
    return _Curve(drawn, caption)


def _size_axes(ax: Axes, sizes: Sequence[float], target_params: float | None, style: PlotStyle) -> None:
    """Log-log grok-vs-size axes: ticks at the pilot sizes, 20 tokens/param line, target line."""
    ends = np.array([min(sizes), max(sizes)])
    ax.plot(ends, 20 * ends, color="0.6", lw=0.8, zorder=0)
    if target_params is not None:
        ax.axvline(target_params, color=style.target_color, lw=0.8, alpha=0.4, zorder=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted(set(sizes))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter(_spaced_labels(ticks)))
    ax.xaxis.set_minor_locator(NullLocator())


def _budget_ladder(sf: SkillFit) -> bool:
    """True when some pilot size was trained to several token budgets: the fit then read
    only final checkpoints (`Observations.budget_ladder`), which the plots emphasise."""
    finals: dict[float, set[float]] = {}
    for p in sf.pilots:
        finals.setdefault(p.params, set()).add(round(max(p.tokens), -3))
    return any(len(budgets) >= 2 for budgets in finals.values())


def _spaced_labels(ticks: Sequence[float], gap: float = 0.08) -> list[str]:
    """Labels like "160M" for log-spaced ticks, blank where a tick sits closer than `gap`
    (a fraction of the log range) to the previous labelled one; the last is always labelled."""
    logs = np.log(ticks)
    least = gap * (logs[-1] - logs[0])
    labels, last = [], -math.inf
    for i, (tick, x) in enumerate(zip(ticks, logs)):
        keep = x - last >= least and (i == len(ticks) - 1 or logs[-1] - x >= least)
        labels.append(format_count(tick) if keep else "")
        last = x if keep else last
    labels[-1] = format_count(ticks[-1])
    return labels


def _backtest_panel(ax: Axes, sb: SkillBacktest, skills: Sequence[SkillBacktest], style: PlotStyle) -> None:
    """Held-out trajectories of one skill: measured, forecast with band, baselines."""
    runs = sorted({p.run: p.params for p in sb.points}.items(), key=lambda rp: rp[1])
    palette = _skill_colors(len(runs), style)
    for (run, _), color in zip(runs, palette):
        pts = sorted((p for p in sb.points if p.run == run), key=lambda p: p.flops)
        x = [p.flops for p in pts]
        ax.fill_between(x, [p.low for p in pts], [p.high for p in pts], color=color, alpha=style.band_alpha, lw=0)
        ax.plot(x, [p.predicted for p in pts], color=color, lw=1.5)
        ax.plot(x, [p.actual for p in pts], color=color, marker="o", ms=3, ls="none")
        ax.plot(x, [p.carry for p in pts], color=style.reference_color, lw=0.8)
        ax.plot(x, [p.loglinear for p in pts], color=style.reference_color, lw=0.8, ls="-.")
    ax.set_xscale("log")
    ax.tick_params(labelsize=style.font_size)
    mae = lambda which: _points(sb.mae(which, final=False))  # noqa: E731
    covered = [p.covered for p in sb.points if p.covered is not None]
    ax.set_title(f"{_panel_title(sb, skills)}\nMAE {mae('predicted')} pts (carry {mae('carry')}, log-lin "
                 f"{mae('loglinear')}), covered {100 * np.mean(covered):.0f}%", fontsize=style.title_size)


def _backtest_scatter(ax: Axes, fig: Figure, scored: Sequence[SkillBacktest], backtest: Backtest,
                      style: PlotStyle) -> None:
    """Forecast vs measured accuracy at held-out final checkpoints, one colour per skill."""
    palette = _skill_colors(len(scored), style)
    values = []
    for sb, color in zip(scored, palette):
        pts = [p for p in sb.points if p.predicted is not None]
        actual = np.array([p.actual for p in pts])
        pred = np.array([p.predicted for p in pts])
        yerr = np.array([[p.predicted - p.low for p in pts], [p.high - p.predicted for p in pts]])
        ax.errorbar(actual, pred, yerr=yerr, fmt="o", ms=4, color=color, capsize=2, lw=0.8,
                    label=_panel_title(sb, scored))
        values += [*actual, *(pred - yerr[0]), *(pred + yerr[1])]
    lo, hi = min(values) - 0.02, max(values) + 0.02
    ax.plot([lo, hi], [lo, hi], color=style.reference_color, lw=0.8, ls="--", zorder=0)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal")
    ax.set_xlabel("measured accuracy (held-out)", fontsize=style.font_size)
    ax.set_ylabel("forecast accuracy", fontsize=style.font_size)
    ax.tick_params(labelsize=style.font_size)
    s = backtest.summary()
    cover = "-" if s["coverage_final"] is None else f"{100 * s['coverage_final']:.0f}%"
    ax.set_title(f"Backtest (hold out {backtest.holdout})\nMAE {_points(s['mae'])} pts (carry "
                 f"{_points(s['carry_mae'])}, log-lin {_points(s['loglinear_mae'])}), covered {cover}",
                 fontsize=style.title_size)
    fig.legend(loc="outside right upper", fontsize=style.font_size, frameon=False)


# ============================================================================ helpers


CROSSED, BEFORE, NEVER = "crossed", "before", "never"


@dataclass(frozen=True)
class Crossing:
    """Where a pilot trajectory first reaches the grok threshold: `tokens` (training tokens)
    and `kind`: `crossed` (interpolated in log tokens between the checkpoints either side),
    `before` (already above at the first checkpoint: `tokens` is an upper bound) or `never`
    (not by the last checkpoint: `tokens` is the last, a lower bound)."""

    tokens: float
    kind: str


def first_crossing(tokens: Sequence[float], accuracy: Sequence[float], threshold: float) -> Crossing:
    """First crossing of `threshold` by a trajectory (accuracy at each checkpoint's tokens)."""
    tokens = np.asarray(tokens, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    order = np.argsort(tokens, kind="stable")
    tokens, accuracy = tokens[order], accuracy[order]
    above = np.flatnonzero(accuracy >= threshold)
    if len(above) == 0:
        return Crossing(float(tokens[-1]), NEVER)
    i = int(above[0])
    if i == 0:
        return Crossing(float(tokens[0]), BEFORE)
    if accuracy[i] <= accuracy[i - 1]:
        return Crossing(float(tokens[i]), CROSSED)
    t0, t1 = math.log(tokens[i - 1]), math.log(tokens[i])
    frac = (threshold - accuracy[i - 1]) / (accuracy[i] - accuracy[i - 1])
    return Crossing(math.exp(t0 + frac * (t1 - t0)), CROSSED)


def _grid(panels: int, style: PlotStyle, note: Sequence[str], handles: Sequence = (),
          panel: tuple[float, float] = (1.0, 1.0), share: bool = False) -> tuple[Figure, list[Axes]]:
    """A figure with `panels` axes in a grid (up to 4 columns); under them a legend of
    `handles` and the `note` paragraphs, in a strip the layout engine keeps panels out of."""
    ncols = 1 if panels <= 1 else 2 if panels <= 4 else 3 if panels <= 9 else 4
    nrows = max(1, math.ceil(panels / ncols))
    width = max(ncols * style.panel_width * panel[0], 6.0)
    line = style.font_size * 1.4 / 72  # inches per line of text
    chars = int(width * 72 / (style.font_size * 0.5))
    text = "\n".join(textwrap.fill(p, chars) for p in note if p)
    note_height = (text.count("\n") + 1) * line + 0.1 if text else 0.0
    legend_cols = min(len(handles), max(1, int(width / 1.6)))
    legend_height = math.ceil(len(handles) / legend_cols) * line * 1.15 + 0.1 if handles else 0.0
    strip = note_height + legend_height
    height = nrows * style.panel_height * panel[1] + strip + (0.0 if panels else 0.3)
    fig = Figure(figsize=(width, height), dpi=style.dpi,
                 layout=ConstrainedLayoutEngine(rect=(0, strip / height, 1, 1 - strip / height)))
    FigureCanvasAgg(fig)  # attach the Agg canvas: PNG output, no GUI, no pyplot
    if text:
        fig.text(0.01, 0.05 / height, text, fontsize=style.font_size - 0.5, va="bottom", ha="left", color="0.25")
    if handles:
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, strip / height), ncols=legend_cols,
                   fontsize=style.font_size, frameon=False, borderaxespad=0.2)
    if not panels:
        return fig, []
    axes = list(fig.subplots(nrows, ncols, squeeze=False, sharex=share, sharey=share).ravel())
    for ax in axes[panels:]:
        ax.remove()
    return fig, axes[:panels]


def _label_outer(axes: Sequence[Axes], xlabel: str, ylabel: str, style: PlotStyle) -> None:
    """Axis labels (with units) on the bottom panel of each column and the left column
    (tick labels too: shared axes hide them above a removed, empty slot)."""
    for ax in axes:
        spec = ax.get_subplotspec()
        below = [other for other in axes if other.get_subplotspec().colspan.start == spec.colspan.start
                 and other.get_subplotspec().rowspan.start > spec.rowspan.start]
        if not below:
            ax.set_xlabel(xlabel, fontsize=style.font_size)
            ax.xaxis.set_tick_params(labelbottom=True)
        if spec.colspan.start == 0:
            ax.set_ylabel(ylabel, fontsize=style.font_size)
        ax.tick_params(labelsize=style.font_size)


def _size_colors(sizes: Iterable[float], style: PlotStyle) -> dict[float, tuple]:
    """A colour per model size (parameters) on a sequential map, by log size; the map's pale
    end is left out so the largest size stays visible on white."""
    sizes = sorted(set(sizes))
    cmap = matplotlib.colormaps[style.size_colormap]
    if len(sizes) <= 1:
        return {s: cmap(0.0) for s in sizes}
    logs = np.log(sizes)
    return {s: cmap(0.85 * (v - logs[0]) / (logs[-1] - logs[0])) for s, v in zip(sizes, logs)}


def _skill_colors(count: int, style: PlotStyle) -> list[tuple]:
    cmap = matplotlib.colormaps[style.skill_colormap if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def _quantiles(samples: np.ndarray, level: float) -> np.ndarray:
    """Lower, median and upper `level` quantiles across samples (axis 0)."""
    return np.quantile(samples, [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)


def _not_predictable(items: Sequence, skipped: Sequence) -> list[str]:
    """The note listing `skipped` skills (fits or backtests among `items`) with their reasons."""
    listed = [f"{_panel_title(x, items)} ({_shorten(x.reason)})" for x in skipped]
    return ["Not predictable (not shown): " + "; ".join(listed)] if listed else []


def _panel_title(item, items: Sequence) -> str:
    """The skill's name, prefixed by its family (and recipe) when several groups are shown."""
    families = {x.family for x in items}
    recipes = {x.recipe for x in items}
    prefix = (f"{item.family}/" if len(families) > 1 else "") + (f"{item.recipe}/" if len(recipes) > 1 else "")
    return prefix + item.skill


def _groups(skill_fits: Sequence[SkillFit]) -> str:
    groups = sorted({(sf.family, sf.recipe) for sf in skill_fits})
    return ", ".join(f + ("" if r == "default" else f"/{r}") for f, r in groups) or "no fits"


def _shorten(text: str | None, limit: int = 110) -> str:
    """A reason for a note: cut to its first clause when long (reasons read "what: why")."""
    text = text or ""
    if len(text) > limit:
        text = text.split(":")[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _points(value: float | None) -> str:
    """An accuracy fraction as percentage points."""
    return "-" if value is None else f"{100 * value:.1f}"
