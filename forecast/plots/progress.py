"""The figure a person watches while a run trains: per skill, the ladder's band to the planned
end, the run's checkpoints so far, the band updated by them, and the grok threshold."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from forecast.forecasting.in_progress import RunForecast
from forecast.forecasting.off_path import Z
from forecast.plots.layout import DEFAULT_STYLE, PlotStyle, grid, label_outer
from forecast.quantities import format_count

LADDER_COLOR = "0.45"
RUN_COLOR = "#1f77b4"


def progress_figure(forecasts: Sequence[RunForecast], style: PlotStyle = DEFAULT_STYLE) -> Figure:
    """One panel per skill with a forecast: accuracy vs training tokens (log) up to the planned
    end. Grey: the ladder's median and `level` band for a run of this size at each fraction of
    its schedule; blue: the run's checkpoints (red where beyond the ladder's 99% band) and the
    band updated by them, with the final forecasts (ladder-only, updated) as error bars at the
    planned end; faint: the grok threshold; a dotted vertical line where the run left the band."""
    shown = [f for f in forecasts if f.curves is not None]
    pct = f"{100 * shown[0].level:.0f}%" if shown else "80%"
    note = [f"Grey: the ladder's forecast for a run of this size (median, {pct} band) along its schedule; blue: "
            f"the run's checkpoints and the forecast updated by them ({pct}); red points: beyond the ladder's 99% "
            "band; error bars at the planned end: final accuracy, ladder-only and updated."]
    final_only = [f.skill for f in shown if f.schedule == "final-only"]
    if final_only:
        note.append("Final-only ladder (" + ", ".join(final_only) + "): no schedule shape, the bands assume a "
                    "checkpoint reads as its run's end and are widened.")
    skipped = [f"{f.skill}" for f in forecasts if f.curves is None]
    if skipped:
        note.append("No forecast (not shown): " + ", ".join(skipped))
    handles = [Line2D([], [], color=LADDER_COLOR, ls="--", label="ladder only"),
               Patch(color=LADDER_COLOR, alpha=style.band_alpha, label=f"ladder {pct}"),
               Line2D([], [], color=RUN_COLOR, marker="o", ms=3, ls="none", label="run checkpoints"),
               Line2D([], [], color=RUN_COLOR, label="updated"),
               Patch(color=RUN_COLOR, alpha=style.band_alpha, label=f"updated {pct}"),
               Line2D([], [], color="0.5", alpha=0.5, label="grok threshold")] if shown else []
    fig, axes = grid(len(shown), style, note, handles)
    for ax, f in zip(axes, shown):
        _panel(ax, f, style)
    label_outer(axes, "training tokens", "accuracy", style)
    if shown:
        f0 = shown[0]
        seen = "" if f0.fraction_seen is None else f", seen to {100 * f0.fraction_seen:.0f}%"
        fig.suptitle(f"{f0.run} ({format_count(f0.params)} params): forecast to {format_count(f0.planned_tokens)} "
                     f"planned tokens{seen}", fontsize=style.title_size + 1)
    return fig


def _panel(ax, f: RunForecast, style: PlotStyle) -> None:
    c = f.curves
    ax.set_xscale("log")
    ax.fill_between(c.tokens, c.ladder[0], c.ladder[2], color=LADDER_COLOR, alpha=style.band_alpha, lw=0)
    ax.plot(c.tokens, c.ladder[1], color=LADDER_COLOR, ls="--", lw=1.2)
    ax.fill_between(c.tokens, c.updated[0], c.updated[2], color=RUN_COLOR, alpha=style.band_alpha, lw=0)
    ax.plot(c.tokens, c.updated[1], color=RUN_COLOR, lw=1.4)
    if f.checkpoints:
        tokens = [p.tokens for p in f.checkpoints]
        acc = [p.accuracy for p in f.checkpoints]
        colors = [style.target_color if abs(p.z) > Z else RUN_COLOR for p in f.checkpoints]
        ax.scatter(tokens, acc, s=10, c=colors, zorder=3)
    end = f.planned_tokens
    for interval, color, dx in ((f.ladder.accuracy, LADDER_COLOR, 0.96), (f.accuracy, RUN_COLOR, 1.04)):
        if interval is not None:
            ax.errorbar([end * dx], [interval.median], yerr=[[interval.median - interval.low],
                                                             [interval.high - interval.median]],
                        color=color, capsize=3, lw=1.2, marker="o", ms=3)
    if f.threshold is not None:
        ax.axhline(f.threshold, color="0.5", alpha=0.5, lw=0.8)
    if f.off_path is not None:
        ax.axvline(f.off_path.tokens, color=style.target_color, lw=0.8, ls=":")
    title = f.skill
    if f.accuracy is not None:
        title += f"\nend {f.accuracy.median:.3f} (ladder {f.ladder.accuracy.median:.3f}), run weight {f.run_weight:.2f}"
    if f.off_path is not None:
        title += f"\nOFF PATH since {format_count(f.off_path.tokens)} tokens ({100 * f.off_path.by:+.1f} pts)"
    ax.set_title(title, fontsize=style.title_size)
