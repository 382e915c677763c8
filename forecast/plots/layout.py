"""What every figure shares: the style, the panel grid with its note strip, colours and
axis helpers. Public, so each figure module (and the recipe comparison) uses the same.

Figures are drawn with matplotlib's object API on the Agg canvas: no pyplot, no rcParams
changes, so they can be made from any thread and never leak state between calls.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.container import Container
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from forecast.quantities import TOKENS_PER_PARAM, format_count
from forecast.fitting.results import SkillFit
from forecast.fitting.status import NoteCode


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


def grid(panels: int, style: PlotStyle, note: Sequence[str], handles: Sequence = (),
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
        kwargs = dict(loc="upper center", bbox_to_anchor=(0.5, strip / height), ncols=legend_cols,
                      fontsize=style.font_size, frameon=False, borderaxespad=0.2)
        fig.legend(handles=list(handles), **kwargs)
        fig._forecast_legend = (list(handles), kwargs)  # rebuilt by `keep_drawn_legend` once the panels are drawn
    if not panels:
        return fig, []
    axes = list(fig.subplots(nrows, ncols, squeeze=False, sharex=share, sharey=share).ravel())
    for ax in axes[panels:]:
        ax.remove()
    return fig, axes[:panels]


LEGEND_GID = "legend:"
"""Prefix of the gid of an artist a legend entry stands for: `mark(label, artist)`."""


def mark(label: str, *artists) -> None:
    """Tie drawn artists (or containers, as `errorbar` returns) to the legend entry `label`
    (the tests check that every legend entry stands for something drawn)."""
    for artist in artists:
        for part in artist.get_children() if isinstance(artist, Container) else [artist]:
            part.set_gid(LEGEND_GID + label)


def drawn_labels(fig: Figure) -> set[str]:
    """Labels of the legend entries some drawn artist stands for (`mark`)."""
    out = set()
    for ax in fig.axes:
        for artist in ax.findobj():
            gid = artist.get_gid()
            if isinstance(gid, str) and gid.startswith(LEGEND_GID):
                out.add(gid[len(LEGEND_GID):])
    return out


def keep_drawn_legend(fig: Figure) -> None:
    """Rebuild the legend `grid` made with only the entries some panel drew."""
    saved = getattr(fig, "_forecast_legend", None)
    if not saved or not fig.legends:
        return
    handles, kwargs = saved
    drawn = drawn_labels(fig)
    kept = [h for h in handles if h.get_label() in drawn]
    if len(kept) == len(handles):
        return
    fig.legends[0].remove()
    if kept:
        fig.legend(handles=kept, **{**kwargs, "ncols": min(kwargs["ncols"], len(kept))})


def label_outer(axes: Sequence[Axes], xlabel: str, ylabel: str, style: PlotStyle) -> None:
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


def size_colors(sizes: Iterable[float], style: PlotStyle) -> dict[float, tuple]:
    """A colour per model size (parameters) on a sequential map, by log size; the map's pale
    end is left out so the largest size stays visible on white."""
    sizes = sorted(set(sizes))
    cmap = matplotlib.colormaps[style.size_colormap]
    if len(sizes) <= 1:
        return {s: cmap(0.0) for s in sizes}
    logs = np.log(sizes)
    return {s: cmap(0.85 * (v - logs[0]) / (logs[-1] - logs[0])) for s, v in zip(sizes, logs)}


def skill_colors(count: int, style: PlotStyle) -> list[tuple]:
    cmap = matplotlib.colormaps[style.skill_colormap if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def quantiles(samples: np.ndarray, level: float) -> np.ndarray:
    """Lower, median and upper `level` quantiles across samples (axis 0)."""
    return np.quantile(samples, [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)


def not_predictable_note(items: Sequence, skipped: Sequence) -> list[str]:
    """The note listing `skipped` skills (fits or backtests among `items`) with their reasons."""
    listed = [f"{panel_title(x, items)} ({shorten(x.reason)})" for x in skipped]
    return ["Not predictable (not shown): " + "; ".join(listed)] if listed else []


def panel_title(item, items: Sequence) -> str:
    """The skill's name, prefixed by its family (and recipe) when several groups are shown."""
    families = {x.family for x in items}
    recipes = {x.recipe for x in items}
    prefix = (f"{item.family}/" if len(families) > 1 else "") + (f"{item.recipe}/" if len(recipes) > 1 else "")
    return prefix + item.skill


def groups_title(skill_fits: Sequence[SkillFit]) -> str:
    groups = sorted({(sf.family, sf.recipe) for sf in skill_fits})
    return ", ".join(f + ("" if r == "default" else f"/{r}") for f, r in groups) or "no fits"


def shorten(text: str | None, limit: int = 110) -> str:
    """A reason for a note: cut to its first clause when long (reasons read "what: why")."""
    text = text or ""
    if len(text) > limit:
        text = text.split(":")[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def points(value: float | None) -> str:
    """An accuracy fraction as percentage points."""
    return "-" if value is None else f"{100 * value:.1f}"


COMPUTE_OPTIMAL_LABEL = f"{TOKENS_PER_PARAM:g} tokens/param"


def size_axes(ax: Axes, sizes: Sequence[float], target_params: float | None, style: PlotStyle,
              compute_optimal: bool = True) -> None:
    """Log-log grok-vs-size axes: ticks at the pilot sizes, the 20 tokens/param line (a
    legend entry `COMPUTE_OPTIMAL_LABEL`; `compute_optimal` False leaves it out), target line."""
    ends = np.array([min(sizes), max(sizes)])
    if compute_optimal:
        mark(COMPUTE_OPTIMAL_LABEL, *ax.plot(ends, TOKENS_PER_PARAM * ends, color="0.6", lw=0.8, zorder=0))
    if target_params is not None:
        ax.axvline(target_params, color=style.target_color, lw=0.8, alpha=0.4, zorder=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted(set(sizes))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter(spaced_labels(ticks)))
    ax.xaxis.set_minor_locator(NullLocator())


def budget_ladder(sf: SkillFit) -> bool:
    """True when some pilot size was trained to several token budgets: the fit then read
    only final checkpoints, which the plots emphasise. The fit decided it once
    (`Observations.budget_ladder`) and recorded it as its `budget-ladder` note; read here."""
    return any(n.code == NoteCode.BUDGET_LADDER for n in sf.notes)


def spaced_labels(ticks: Sequence[float], gap: float = 0.14) -> list[str]:
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


