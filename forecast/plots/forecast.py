"""The forecast figure: each skill's pilot trajectories, fitted curves and the target's band."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from forecast.plots.layout import (
    DEFAULT_STYLE, PlotStyle, budget_ladder, grid, groups_title, keep_drawn_legend, label_outer, mark,
    not_predictable_note, panel_title, quantiles, size_colors,
)
from forecast.forecasting.predict import SkillForecast, predict_skill
from forecast.quantities import format_count
from forecast.fitting.results import SkillFit
from forecast.forecasting.samples import SAMPLES, SurfaceSamples

CURVE_POINTS = 60
"""Token values (log-spaced) per drawn curve."""


def forecast_figure(
    skill_fits: Sequence[SkillFit],
    target_params: float,
    target_tokens: float,
    forecasts: Sequence[SkillForecast] | None = None,
    level: float = 0.8,
    *,
    verification: Mapping[str, Any] | None = None,
    samples: int = SAMPLES,
    seed: int = 0,
    style: PlotStyle = DEFAULT_STYLE,
) -> Figure:
    """One panel per predictable skill: accuracy vs training tokens (log; the unit the
    tables use), with the target's training FLOPs on a secondary axis on top.

    Pilot checkpoints coloured by model size (parameters) with the fitted median per size
    (solid, over that size's tokens); the target model of `target_params` parameters trained
    on `target_tokens` tokens as a dashed median from the smallest pilot tokens to its end,
    with the `level` interval of its model accuracy shaded (no measurement noise); its end of
    training with the `level` interval of one evaluation (with noise) as an error bar;
    the grok point (median tokens at which accuracy crosses the grok threshold) as a
    diamond on the threshold line with its interval, an arrow where it runs past the axis;
    chance dotted, threshold faint (an arrow at the top edge when it lies far above the
    data). `forecasts` (from `predict_skill` for the same target) are matched by skill, else
    computed here. `verification`: runs of the target's size trained after the forecast (the
    demo), drawn in black, one marker each: label -> per skill (tokens, accuracy), or for one
    run just per skill (tokens, accuracy) (labelled "verification run")."""
    runs = _verification_runs(verification)
    shown = [sf for sf in skill_fits if sf.predictable]
    by_key = {(f.family, f.recipe, f.skill): f for f in forecasts or ()}
    colors = size_colors([p.params for sf in shown for p in sf.pilots], style)
    pct = f"{100 * level:.0f}%"
    note = [f"Points: pilot checkpoints; solid: fitted median per pilot size; dashed: target median, shaded: "
            f"{pct} interval of model accuracy (without measurement noise); error bar at the end of training: {pct} "
            f"interval of one evaluation (with measurement noise, so wider than the band); diamond on the threshold "
            f"line: grok point (median tokens at which accuracy crosses half way from floor to plateau) with its "
            f"{pct} interval, an arrow where it runs past the axis. Top axis: the target's training FLOPs at those tokens."]
    if any(budget_ladder(sf) for sf in shown):
        note.append("Sizes trained to several token budgets: the laws describe final checkpoints (large markers); "
                    "intermediate ones sit mid learning-rate schedule.")
    note += not_predictable_note(skill_fits, [sf for sf in skill_fits if not sf.predictable])
    handles = [Line2D([], [], color=c, marker="o", ms=3, lw=0.8, label=format_count(s)) for s, c in colors.items()]
    handles += [
        Line2D([], [], color=style.target_color, ls="--", lw=1.6, label=f"target {format_count(target_params)} params"),
        Patch(color=style.target_color, alpha=style.band_alpha, label=f"{pct} model interval"),
        Line2D([], [], color=style.target_color, marker="o", ms=5, mec="white", ls="none",
               label=f"end: {pct} of one evaluation"),
        Line2D([], [], color=style.target_color, marker="D", ms=5, mfc="white", ls="none", label="grok point"),
        *(Line2D([], [], color="black", marker=marker, ms=5, lw=0.8, label=label) for label, marker, _ in runs),
        Line2D([], [], color=style.reference_color, ls=":", label="chance"),
        Line2D([], [], color="0.5", alpha=0.5, label="grok threshold"),
    ] if shown else []
    fig, axes = grid(len(shown), style, note, handles)
    for ax, sf in zip(axes, shown):
        surface = SurfaceSamples.of(sf, samples=samples, seed=seed)
        forecast = by_key.get((sf.family, sf.recipe, sf.skill)) or predict_skill(
            sf, target_params, tokens=target_tokens, level=level, seed=seed, samples=surface)
        _forecast_panel(ax, sf, surface, forecast, colors, level, style)
        for label, marker, series in runs:
            if sf.skill in series:
                tokens, accuracy = series[sf.skill]
                mark(label, *ax.plot(tokens, accuracy, color="black", marker=marker, ms=5, lw=0.8, zorder=7))
        p_grok = "" if forecast.p_grok is None else f", p(grok) {forecast.p_grok:.2f}"
        ax.set_title(f"{panel_title(sf, skill_fits)}\n{forecast.status}{p_grok}", fontsize=style.title_size)
    label_outer(axes, "training tokens", "accuracy", style)
    keep_drawn_legend(fig)
    fig.suptitle(f"{groups_title(skill_fits)}: forecast for {format_count(target_params)} params, "
                 f"{format_count(target_tokens)} tokens", fontsize=style.title_size + 1)
    return fig


VERIFICATION_MARKERS = ("*", "P", "X", "s")  # one per verification run (the diamond is the grok point's)


def _verification_runs(verification: Mapping[str, Any] | None) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(label, marker, per-skill (tokens, accuracy)) of each verification run."""
    if not verification:
        return []
    if all(isinstance(v, tuple) for v in verification.values()):  # one run: skill -> (tokens, accuracy)
        verification = {"verification run": verification}
    return [(label, VERIFICATION_MARKERS[i % len(VERIFICATION_MARKERS)], series)
            for i, (label, series) in enumerate(verification.items())]


def _forecast_panel(ax: Axes, sf: SkillFit, surface: SurfaceSamples, forecast: SkillForecast,
                    colors: dict[float, tuple], level: float, style: PlotStyle) -> None:
    """Pilots, their fitted medians, the target's band, end point and grok point (tokens, log x)."""
    ladder = budget_ladder(sf)
    for pilot in sorted(sf.pilots, key=lambda p: p.params):
        color = colors[pilot.params]
        mark(format_count(pilot.params), *ax.plot(pilot.tokens, pilot.accuracy, color=color, marker="o", ms=2.2,
                                                  lw=0.5, alpha=0.3 if ladder else 0.55))
        if ladder:  # the fit read only the final checkpoints
            last = int(np.argmax(pilot.tokens))
            ax.plot(pilot.tokens[last], pilot.accuracy[last], color=color, marker="o", ms=4.5, mec="0.15", mew=0.5,
                    zorder=4)
    for params in sf.sizes:
        tokens = [t for p in sf.pilots if p.params == params for t in p.tokens]
        grid_tokens = np.geomspace(min(tokens), max(tokens), CURVE_POINTS)
        median = np.median(surface.accuracy(params, grid_tokens), axis=0)
        ax.plot(grid_tokens, median, color=colors[params], lw=1.4)
    mark("chance", ax.axhline(sf.chance, color=style.reference_color, ls=":", lw=1.0))
    ax.set_xscale("log")
    ax.tick_params(labelsize=style.font_size)
    first = min(min(p.tokens) for p in sf.pilots)
    if forecast.accuracy is None:  # out of range: the pilots alone, and why
        ax.text(0.5, 0.5, f"no forecast: {forecast.status}", transform=ax.transAxes, ha="center", va="center",
                fontsize=style.font_size, color="0.3", wrap=True)
        return
    grid_tokens = np.geomspace(min(first, forecast.tokens), forecast.tokens, CURVE_POINTS)
    low, median, high = quantiles(surface.accuracy(forecast.params, grid_tokens), level)
    mark(f"{100 * level:.0f}% model interval",
         ax.fill_between(grid_tokens, low, high, color=style.target_color, alpha=style.band_alpha, lw=0))
    mark(f"target {format_count(forecast.params)} params",
         *ax.plot(grid_tokens, median, color=style.target_color, ls="--", lw=1.6))
    a = forecast.accuracy
    mark(f"end: {100 * level:.0f}% of one evaluation",
         ax.errorbar(forecast.tokens, a.median, yerr=[[a.median - a.low], [a.high - a.median]], fmt="o",
                     color=style.target_color, ms=5, mec="white", capsize=3, zorder=5))
    left = min(first, forecast.tokens) / 1.5
    right = max(forecast.tokens, max(max(p.tokens) for p in sf.pilots)) * 1.5
    ax.set_xlim(left, right)
    kappa_n = sf.flops_per_param_token * forecast.params
    top = ax.secondary_xaxis("top", functions=(lambda t: t * kappa_n, lambda f: f / kappa_n))
    top.tick_params(labelsize=style.font_size - 1)  # (named in the note: a label here would crowd the title)
    if forecast.threshold is not None:
        _threshold(ax, forecast.threshold, style)
    grok = forecast.grok
    if grok is not None and grok.tokens is not None and forecast.threshold is not None and left < grok.tokens <= right:
        y = min(forecast.threshold, ax.get_ylim()[1])
        low_t = max(grok.low, left) if grok.low is not None else left
        high_t = min(grok.high, right)
        mark("grok point", ax.errorbar(grok.tokens, y, xerr=[[grok.tokens - low_t], [high_t - grok.tokens]], fmt="D",
                                       color=style.target_color, mfc="white", ms=5, mew=1.4, elinewidth=1.2,
                                       capsize=0, zorder=6))
        if grok.high > right:  # the interval runs on past the axis: an arrow just inside its edge
            ax.plot(right / 1.12, y, marker=">", color=style.target_color, ms=5, zorder=6)


def _threshold(ax: Axes, threshold: float, style: PlotStyle) -> None:
    """The grok threshold as a faint line when it lies within (or near) the drawn data; far
    above it, an arrow at the top edge with its value, so it does not squash the panel."""
    low, high = ax.get_ylim()
    if threshold <= high + 0.25 * (high - low):
        mark("grok threshold", ax.axhline(threshold, color="0.5", lw=0.8, alpha=0.5))
        return
    ax.set_ylim(low, high)
    ax.annotate(f"threshold {threshold:.2f} ↑", xy=(0.02, 0.98), xycoords="axes fraction", ha="left", va="top",
                fontsize=style.font_size - 1, color="0.4")  # top left: trajectories start low there
