"""The grok-point figure: tokens to the grok threshold against model size, per skill."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from forecast.plots.layout import (
    COMPUTE_OPTIMAL_LABEL, DEFAULT_STYLE, PlotStyle, drawn_labels, grid, groups_title, keep_drawn_legend, label_outer,
    mark, not_predictable_note, panel_title, quantiles, size_axes, skill_colors,
)
from forecast.quantities import format_count
from forecast.runs.crossing import BEFORE, CROSSED, NEVER, Crossing, first_crossing  # noqa: F401 (re-exported by plots)
from forecast.fitting.results import SkillFit
from forecast.forecasting.samples import SurfaceSamples

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
    shown = [sf for sf in skill_fits if sf.predictable and not sf.flat]
    split = len(shown) > OVERLAY_SKILLS if panels is None else panels
    pct = f"{100 * level:.0f}%"
    note = [f"Markers: a pilot's first crossing of the grok threshold (half way from floor to plateau), from its "
            f"smoothed trajectory; open: a bound (already above at its first checkpoint, or not crossed by its last). "
            f"Lines: fitted median, solid across pilot sizes, dashed beyond; shaded: {pct} interval where the median "
            f"crosses; grey: 20 tokens per parameter (compute-optimal)."]
    note += not_predictable_note(skill_fits, [sf for sf in skill_fits if not sf.predictable])
    flat = [panel_title(sf, skill_fits) for sf in skill_fits if sf.predictable and sf.flat]
    if flat:
        note.append("No transition in the pilots, so no grok point (not shown): " + ", ".join(flat))
    markers = [
        Line2D([], [], color="0.3", marker="o", ls="none", label=KIND_LABELS[CROSSED]),
        Line2D([], [], color="0.3", marker="v", mfc="none", ls="none", label=KIND_LABELS[BEFORE]),
        Line2D([], [], color="0.3", marker="^", mfc="none", ls="none", label=KIND_LABELS[NEVER]),
        Line2D([], [], color="0.3", marker=r"$\Uparrow$", ms=8, ls="none", label=BEYOND_LABEL),
    ]
    if target_params is not None:
        markers.append(Line2D([], [], color="0.3", marker="*", ms=9, ls="none",
                              label=f"target {format_count(target_params)}"))
    markers.append(Line2D([], [], color="0.6", lw=0.8, label=COMPUTE_OPTIMAL_LABEL))
    if split:
        fig, axes = grid(len(shown), style, note, markers if shown else (), share=True)
    else:
        fig, axes = grid(1 if shown else 0, style, note, panel=(2.0, 1.5))
        axes = axes * len(shown)  # every skill on the one axes
    if not shown:
        return fig
    palette = skill_colors(len(shown), style)
    drawn, arrows = [], []
    for ax, sf, color in zip(axes, shown, palette):
        curve = _grok_scaling_curve(ax, sf, target_params, color, level, samples, seed, style, panel_title(sf, skill_fits))
        drawn += curve.drawn
        arrows.append((ax, curve.beyond, color, curve.search_top))
        if split:
            ax.set_title(f"{panel_title(sf, skill_fits)}\n{curve.caption}", fontsize=style.title_size)
    sizes = [s for sf in shown for s in sf.sizes] + ([target_params] if target_params else [])
    unique = list(dict.fromkeys(axes))
    for ax in unique:
        size_axes(ax, sizes, target_params, style)
    # bands may run on to the search's end: the axis stops short of it (arrows mark what runs past)
    search_top = min(curve_top for _, _, _, curve_top in arrows)
    unique[0].set_ylim(min(drawn) / 3, min(max(drawn) * 3, max(max(drawn) * 1.3, search_top / 1.5)))
    for ax, sizes_beyond, color, _ in arrows:  # an interval end past the axis (or the search): an arrow at the top
        if len(sizes_beyond):
            top = ax.get_ylim()[1] / 1.6
            every = sizes_beyond[::3]  # enough arrows to read, not a fence
            mark(BEYOND_LABEL, *ax.plot(every, np.full(len(every), top), marker=r"$\Uparrow$", ms=8, color=color,
                                        ls="none", zorder=5))
    label_outer(unique, "model size (parameters)", "tokens to grok threshold", style)
    title = f"{groups_title(skill_fits)}: when each skill groks, by model size"
    if split:
        fig.suptitle(title, fontsize=style.title_size + 1)
    else:
        handles = [Line2D([], [], color=c, lw=1.5, label=panel_title(sf, skill_fits)) for sf, c in zip(shown, palette)]
        present = drawn_labels(fig)
        fig.legend(handles=[h for h in handles + markers if h.get_label() in present], loc="outside right upper",
                   fontsize=style.font_size, frameon=False)
        unique[0].set_title(title, fontsize=style.title_size)
    if split:
        keep_drawn_legend(fig)
    return fig


@dataclass(frozen=True)
class _Curve:
    drawn: list[float]  # tokens of every crossing and median drawn (for the axis limits)
    caption: str  # the target's grok tokens and interval, for a panel title
    beyond: np.ndarray  # sizes whose interval runs past the search (drawn as arrows at the top)
    search_top: float  # tokens: the grok search's upper end


def _grok_scaling_curve(ax: Axes, sf: SkillFit, target_params: float | None, color, level: float,
                        samples: int, seed: int, style: PlotStyle, label: str) -> _Curve:
    """One skill on grok-vs-size axes: pilot crossings, fitted median and band, target."""
    surface = SurfaceSamples.of(sf, samples=samples, seed=seed)
    thresholds = surface.threshold()
    threshold = float(np.median(thresholds))
    drawn = []
    for pilot in sf.pilots:
        crossing = first_crossing(pilot.tokens, pilot.smoothed, threshold)
        marker = {CROSSED: "o", BEFORE: "v", NEVER: "^"}[crossing.kind]
        mark(KIND_LABELS[crossing.kind], *ax.plot(pilot.params, crossing.tokens, marker=marker, ms=5, color=color,
                                                  mfc=color if crossing.kind == CROSSED else "none", ls="none", zorder=4))
        drawn.append(crossing.tokens)
    all_tokens = [t for p in sf.pilots for t in p.tokens]
    low_tokens, high_tokens = min(all_tokens) / GROK_SEARCH, max(all_tokens) * GROK_SEARCH
    sizes = np.geomspace(min(sf.sizes), max(max(sf.sizes), target_params or 0), SCALING_SIZES)
    if target_params is not None:
        sizes = np.unique(np.append(sizes, target_params))
    found = np.array([surface.grok_tokens(n, thresholds, low_tokens, high_tokens) for n in sizes])  # (S, K)
    low, median, high = quantiles(np.clip(found, low_tokens, high_tokens).T, level)  # never (inf) -> the top
    median[(median <= low_tokens) | (median >= high_tokens)] = np.nan  # at the search's ends: nothing to show
    known = np.isfinite(median)
    past = known & (high >= high_tokens * (1 - 1e-9))  # the interval's top is the search's end, not a number
    ax.fill_between(sizes, low, high, where=known, color=color, alpha=style.band_alpha, lw=0)
    inside = sizes <= max(sf.sizes) * (1 + 1e-9)
    beyond = ~inside | (sizes == sizes[inside][-1])  # share the last inside point: no gap
    mark(label, *ax.plot(sizes[inside], median[inside], color=color, lw=1.5))
    ax.plot(sizes[beyond], median[beyond], color=color, lw=1.5, ls="--")
    drawn += list(median[known])
    caption = ""
    if target_params is not None:
        i = int(np.flatnonzero(sizes == target_params)[0])
        if known[i]:
            mark(f"target {format_count(target_params)}",
                 ax.errorbar(target_params, median[i], yerr=[[median[i] - low[i]], [high[i] - median[i]]], fmt="*",
                             ms=13, color=color, mec="0.15", mew=0.6, capsize=3, zorder=5))
            upper = "never" if high[i] >= high_tokens else format_count(high[i])
            caption = (f"{format_count(target_params)} groks at {format_count(median[i])} tokens "
                       f"({100 * level:.0f}%: {format_count(low[i])}–{upper})")
        else:
            caption = f"{format_count(target_params)}: no crossing within {format_count(high_tokens)} tokens"
    return _Curve(drawn, caption, sizes[past], high_tokens)


KIND_LABELS = {CROSSED: "pilot crossed", BEFORE: "above at first checkpoint (≤)", NEVER: "not crossed by the end (≥)"}
BEYOND_LABEL = "interval runs past the search"
