"""The backtest figure: held-out trajectories (or finals) against their forecasts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from forecast.backtesting.results import Backtest, SkillBacktest
from forecast.plots.layout import (
    DEFAULT_STYLE, PlotStyle, grid, keep_drawn_legend, label_outer, mark, not_predictable_note, panel_title, points,
    skill_colors,
)


def backtest_figure(backtest: Backtest, *, style: PlotStyle = DEFAULT_STYLE) -> Figure:
    """How the forecasts fared on the held-out run(s).

    With held-out trajectories: one panel per predicted skill, accuracy vs training compute
    (FLOPs, log) of the held-out checkpoints: measured points, forecast median and interval
    band (with measurement noise, as `backtest` scores it), and the two baselines as thin
    grey lines. When only final checkpoints were scored (budget ladders): one scatter of
    forecast vs measured accuracy, all skills, with interval error bars and the y = x line."""
    scored = [s for s in backtest.skills if s.law]
    pct = f"{100 * backtest.level:.0f}%"
    skipped = not_predictable_note(backtest.skills, [s for s in backtest.skills if not s.law])
    if all(p.final for s in scored for p in s.points):
        note = [f"Error bars: {pct} forecast interval (with measurement noise); diagonal: forecast = measured."]
        fig, axes = grid(1 if scored else 0, style, note + skipped, panel=(1.6, 1.6))
        if scored:
            _backtest_scatter(axes[0], fig, scored, backtest, style)
        return fig
    note = [f"Points: measured accuracy of the held-out run; line and shaded band: forecast median and {pct} "
            "interval (with measurement noise); grey solid: carry-over baseline (largest fitted size at the same "
            "tokens); grey dash-dot: log-linear baseline (straight line in log compute). Panel titles: MAE and "
            "coverage at the final checkpoint, as `forecast backtest` prints them; in parentheses over every "
            "held-out checkpoint drawn."]
    handles = [
        Line2D([], [], color="0.3", marker="o", ms=3, ls="none", label="measured (held out)"),
        Line2D([], [], color="0.3", lw=1.5, label="forecast median"),
        Patch(color="0.3", alpha=style.band_alpha, label=f"{pct} interval"),
        Line2D([], [], color=style.reference_color, lw=0.8, label="carry-over"),
        Line2D([], [], color=style.reference_color, lw=0.8, ls="-.", label="log-linear"),
    ] if scored else []
    fig, axes = grid(len(scored), style, note + skipped, handles)
    for ax, sb in zip(axes, scored):
        _backtest_panel(ax, sb, scored, pct, style)
    label_outer(axes, "training tokens", "accuracy", style)
    keep_drawn_legend(fig)
    held = sorted({(p.run, p.params) for s in scored for p in s.points}, key=lambda rp: rp[1])
    fig.suptitle(f"Backtest (hold out {backtest.holdout}): " + ", ".join(r for r, _ in held[:4])
                 + (" …" if len(held) > 4 else ""), fontsize=style.title_size + 1)
    return fig


def _backtest_panel(ax: Axes, sb: SkillBacktest, skills: Sequence[SkillBacktest], pct: str, style: PlotStyle) -> None:
    """Held-out trajectories of one skill: measured, forecast with band, baselines."""
    runs = sorted({p.run: p.params for p in sb.points}.items(), key=lambda rp: rp[1])
    palette = skill_colors(len(runs), style)
    for (run, _), color in zip(runs, palette):
        pts = sorted((p for p in sb.points if p.run == run), key=lambda p: p.tokens)
        x = [p.tokens for p in pts]
        mark(f"{pct} interval", ax.fill_between(x, [p.low for p in pts], [p.high for p in pts], color=color,
                                                 alpha=style.band_alpha, lw=0))
        mark("forecast median", *ax.plot(x, [p.predicted for p in pts], color=color, lw=1.5))
        mark("measured (held out)", *ax.plot(x, [p.actual for p in pts], color=color, marker="o", ms=3, ls="none"))
        mark("carry-over", *ax.plot(x, [p.carry for p in pts], color=style.reference_color, lw=0.8))
        mark("log-linear", *ax.plot(x, [p.loglinear for p in pts], color=style.reference_color, lw=0.8, ls="-."))
    ax.set_xscale("log")
    ax.tick_params(labelsize=style.font_size)
    final = [p.covered for p in sb.points if p.covered is not None and p.final]
    every = [p.covered for p in sb.points if p.covered is not None]
    cover = lambda c: "-" if not c else f"{100 * np.mean(c):.0f}%"  # noqa: E731
    ax.set_title(f"{panel_title(sb, skills)}\nfinal: MAE {points(sb.mae())} pts, covered {cover(final)} "
                 f"(all: {points(sb.mae(final=False))}, {cover(every)})\ncarry {points(sb.mae('carry'))}, "
                 f"log-lin {points(sb.mae('loglinear'))}", fontsize=style.title_size)


def _backtest_scatter(ax: Axes, fig: Figure, scored: Sequence[SkillBacktest], backtest: Backtest,
                      style: PlotStyle) -> None:
    """Forecast vs measured accuracy at held-out final checkpoints, one colour per skill."""
    palette = skill_colors(len(scored), style)
    values = []
    for sb, color in zip(scored, palette):
        pts = [p for p in sb.points if p.predicted is not None]
        actual = np.array([p.actual for p in pts])
        pred = np.array([p.predicted for p in pts])
        yerr = np.array([[p.predicted - p.low for p in pts], [p.high - p.predicted for p in pts]])
        mark(panel_title(sb, scored), ax.errorbar(actual, pred, yerr=yerr, fmt="o", ms=4, color=color, capsize=2,
                                                  lw=0.8, label=panel_title(sb, scored)))
        values += [*actual, *(pred - yerr[0]), *(pred + yerr[1])]
    lo, hi = min(values) - 0.02, max(values) + 0.02
    ax.plot([lo, hi], [lo, hi], color=style.reference_color, lw=0.8, ls="--", zorder=0)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal")
    ax.set_xlabel("measured accuracy (held-out)", fontsize=style.font_size)
    ax.set_ylabel("forecast accuracy", fontsize=style.font_size)
    ax.tick_params(labelsize=style.font_size)
    s = backtest.summary()
    cover = "-" if s["coverage"] is None else f"{100 * s['coverage']:.0f}%"
    ax.set_title(f"Backtest (hold out {backtest.holdout})\nMAE {points(s['mae'])} pts (carry "
                 f"{points(s['carry_mae'])}, log-lin {points(s['loglinear_mae'])}), covered {cover}",
                 fontsize=style.title_size)
    fig.legend(loc="outside right upper", fontsize=style.font_size, frameon=False)


