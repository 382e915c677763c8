"""Plot of a recipe comparison (PNG): per skill, observed trajectories of each recipe at
the largest pilot size, and tokens to the grok threshold against model size per recipe,
extrapolated to the target. Same conventions as `forecast.plots` (object API on Agg,
log axes, dashed beyond the pilots, shaded intervals)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from forecast.forecasting.compare import SkillComparison
from forecast.plots.layout import DEFAULT_STYLE, PlotStyle, grid, label_outer, size_axes, skill_colors
from forecast.fitting.results import SkillFit


def compare_figure(comparisons: Sequence[SkillComparison], fits, *, style: PlotStyle = DEFAULT_STYLE) -> Figure:
    """Two panels per skill: accuracy vs training tokens of every recipe's largest pilot
    (observed), and grok tokens vs parameters per recipe (median and interval at each pilot
    size, dashed on to the target)."""
    groups = sorted({s.group for c in comparisons for s in c.speeds} | {g for c in comparisons for g in c.not_predictable})
    colors = dict(zip(groups, skill_colors(len(groups), style)))
    level = comparisons[0].level if comparisons else 0.8
    measure = comparisons[0].measure if comparisons else "tokens"
    note = [f"Right: median {measure} to the grok threshold with {100 * level:.0f}% intervals, per recipe; solid across the "
            f"pilot sizes, dashed to the target (star). Left: observed accuracy of each recipe's largest pilot."]
    note += [f"{c.skill}/{g}: not predictable ({why})" for c in comparisons for g, why in c.not_predictable.items()]
    handles = [Line2D([], [], color=colors[g], lw=1.5, label=g) for g in groups]
    fig, axes = grid(2 * len(comparisons), style, note, handles)
    skill_fits = getattr(fits, "skills", fits)  # a Fits or its skill fits
    for i, c in enumerate(comparisons):
        _trajectories(axes[2 * i], c, skill_fits, colors, style)
        _speeds(axes[2 * i + 1], c, colors, style)
    return fig


def _trajectories(ax, c: SkillComparison, skill_fits: Sequence[SkillFit], colors: dict, style: PlotStyle) -> None:
    for sf in skill_fits:
        label = sf.recipe if c.by == "recipe" else sf.family
        fixed = sf.family if c.by == "recipe" else sf.recipe
        if sf.skill != c.skill or fixed != c.fixed or label not in colors or not sf.pilots:
            continue
        largest = max(p.params for p in sf.pilots)
        for p in sf.pilots:
            if p.params == largest:
                ax.plot(p.tokens, p.accuracy, color=colors[label], lw=1.2, marker=".", ms=3)
    ax.set_xscale("log")
    ax.set_title(f"{c.skill}: largest pilots", fontsize=style.title_size)
    label_outer([ax], "training tokens", "accuracy", style)


def _speeds(ax, c: SkillComparison, colors: dict, style: PlotStyle) -> None:
    sizes = []
    for group in sorted({s.group for s in c.speeds}):
        rows = [s for s in c.speeds if s.group == group and s.amount is not None]
        if not rows:
            continue
        n = np.array([s.params for s in rows])
        med = np.array([s.amount.median for s in rows])
        lo = np.array([s.amount.low for s in rows])
        hi = np.array([min(s.amount.high, 1e30) for s in rows])
        pilot = np.array([s.pilot for s in rows])
        color = colors[group]
        ax.plot(n[pilot], med[pilot], color=color, lw=1.5, marker="o", ms=3)
        ax.fill_between(n[pilot], lo[pilot], hi[pilot], color=color, alpha=style.band_alpha, lw=0)
        if (~pilot).any():
            if pilot.any():  # dashed from the largest pilot that crossed on to the target
                last = np.flatnonzero(pilot)[-1]
                ax.plot([n[last], n[~pilot][0]], [med[last], med[~pilot][0]], color=color, lw=1.2, ls="--")
            ax.errorbar(n[~pilot], med[~pilot], yerr=[med[~pilot] - lo[~pilot], hi[~pilot] - med[~pilot]],
                        color=color, marker="*", ms=9, capsize=3, lw=1)
        sizes += list(n)
    if sizes:
        size_axes(ax, sizes, c.target_params, style)
    ax.set_yscale("log")
    ax.set_title(f"{c.skill}: when each recipe groks (baseline {c.baseline})", fontsize=style.title_size)
    label_outer([ax], "model size (parameters)", f"{c.measure} to grok threshold", style)
