"""Plot of a recipe comparison (PNG): per skill, observed trajectories of each recipe at
the largest pilot size, and tokens to the grok threshold against model size per recipe,
extrapolated to the target. Same conventions as `forecast.plots` (object API on Agg,
log axes, dashed beyond the pilots, shaded intervals)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from forecast.forecasting.compare import SkillComparison
from forecast.plots.layout import DEFAULT_STYLE, PlotStyle, grid, keep_drawn_legend, mark, shorten, size_axes, skill_colors
from forecast.fitting.results import SkillFit


def compare_figure(comparisons: Sequence[SkillComparison], fits, *, style: PlotStyle = DEFAULT_STYLE) -> Figure:
    """Two panels per skill: accuracy vs training tokens of every recipe's (or family's,
    under `by="family"`) largest pilot (observed), and grok amount vs parameters per group
    (median and interval at each pilot size, dashed on to the target). Interval ends past
    the axis (or never crossing) are arrows at the top; a panel with nothing to draw says why."""
    groups = sorted({s.group for c in comparisons for s in c.speeds} | {g for c in comparisons for g in c.not_predictable})
    colors = dict(zip(groups, skill_colors(len(groups), style)))
    level = comparisons[0].level if comparisons else 0.8
    measure = comparisons[0].measure if comparisons else "tokens"
    by = comparisons[0].by if comparisons else "recipe"
    note = [f"Right: median {measure} to the grok threshold with {100 * level:.0f}% intervals, per {by}; solid across "
            f"the pilot sizes, dashed to the target (star); an arrow: the interval runs past the axis (or the median "
            f"never crosses). Left: observed accuracy of each {by}'s largest pilot."]
    note += [f"{c.skill}/{g}: not predictable ({shorten(why)})" for c in comparisons for g, why in c.not_predictable.items()]
    handles = [Line2D([], [], color=colors[g], lw=1.5, label=g) for g in groups]
    fig, axes = grid(2 * len(comparisons), style, note, handles)
    skill_fits = getattr(fits, "skills", fits)  # a Fits or its skill fits
    for i, c in enumerate(comparisons):
        _trajectories(axes[2 * i], c, skill_fits, colors, style)
        _speeds(axes[2 * i + 1], c, colors, style)
    keep_drawn_legend(fig)
    return fig


def _trajectories(ax, c: SkillComparison, skill_fits: Sequence[SkillFit], colors: dict, style: PlotStyle) -> None:
    drawn = False
    for sf in skill_fits:
        label = sf.recipe if c.by == "recipe" else sf.family
        fixed = sf.family if c.by == "recipe" else sf.recipe
        if sf.skill != c.skill or fixed != c.fixed or label not in colors or not sf.pilots:
            continue
        largest = max(p.params for p in sf.pilots)
        for p in sf.pilots:
            if p.params == largest:
                mark(label, *ax.plot(p.tokens, p.accuracy, color=colors[label], lw=1.2, marker=".", ms=3))
                drawn = True
    ax.set_xscale("log")
    ax.set_title(f"{c.skill}: largest pilot per {c.by}", fontsize=style.title_size)
    if not drawn:
        _empty(ax, "no pilot trajectories in these fits", style)
    ax.set_xlabel("training tokens", fontsize=style.font_size)
    ax.set_ylabel("accuracy", fontsize=style.font_size)
    ax.tick_params(labelsize=style.font_size)


def _speeds(ax, c: SkillComparison, colors: dict, style: PlotStyle) -> None:
    rows = [s for s in c.speeds if s.amount is not None]
    never = sorted({s.group for s in c.speeds} - {s.group for s in rows})
    finite = [v for s in rows for v in (s.amount.median, s.amount.low) if math.isfinite(v) and v > 0]
    top = max(finite) * 10 if finite else None
    sizes = []
    for group in sorted({s.group for s in rows}):
        mine = [s for s in rows if s.group == group]
        n = np.array([s.params for s in mine])
        med = np.array([s.amount.median for s in mine])
        lo = np.array([s.amount.low for s in mine])
        raw = np.array([s.amount.high for s in mine])
        hi = np.minimum(raw, top)
        past = ~np.isfinite(raw) | (raw > top)
        pilot = np.array([s.pilot for s in mine])
        color = colors[group]
        mark(group, *ax.plot(n[pilot], med[pilot], color=color, lw=1.5, marker="o", ms=3))
        ax.fill_between(n[pilot], lo[pilot], hi[pilot], color=color, alpha=style.band_alpha, lw=0)
        if (~pilot).any():
            if pilot.any():  # dashed from the largest pilot that crossed on to the target
                last = np.flatnonzero(pilot)[-1]
                ax.plot([n[last], n[~pilot][0]], [med[last], med[~pilot][0]], color=color, lw=1.2, ls="--")
            ax.errorbar(n[~pilot], med[~pilot], yerr=[med[~pilot] - lo[~pilot], hi[~pilot] - med[~pilot]],
                        color=color, marker="*", ms=9, capsize=3, lw=1)
        if past.any():
            ax.plot(n[past], hi[past], marker=r"$\Uparrow$", ms=8, color=color, ls="none", zorder=5)
        sizes += list(n)
    ax.set_title(f"{c.skill}: when each {c.by} groks\n(baseline {c.baseline})", fontsize=style.title_size)
    if sizes:
        size_axes(ax, sizes, c.target_params, style, compute_optimal=False)
        ax.set_ylim(min(finite) / 3, top * 1.5)
    else:  # nothing to place on size axes: no ticks that would pretend a scale
        ax.set_xticks([])
        ax.set_yticks([])
    if never:
        what = "no " + c.by + " groks" if not rows else f"never groks: {', '.join(never)}"
        _empty(ax, f"{what} within the horizon" + ("" if rows else " at any size shown"), style,
               y=0.5 if not rows else 0.92)
    ax.set_xlabel("model size (parameters)", fontsize=style.font_size)
    ax.set_ylabel(f"{c.measure} to grok threshold", fontsize=style.font_size)
    ax.tick_params(labelsize=style.font_size)


def _empty(ax, text: str, style: PlotStyle, y: float = 0.5) -> None:
    """Say in the panel why it holds nothing (or less than its legend)."""
    ax.text(0.5, y, text, transform=ax.transAxes, ha="center", va="center", fontsize=style.font_size, color="0.3")
