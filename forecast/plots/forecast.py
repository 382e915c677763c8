"""The forecast figure: each skill's pilot trajectories, fitted curves and the target's band."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from forecast.plots.layout import (
    DEFAULT_STYLE, PlotStyle, budget_ladder, grid, groups_title, label_outer, not_predictable_note, panel_title,
    quantiles, size_colors,
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
    colors = size_colors([p.params for sf in shown for p in sf.pilots], style)
    pct = f"{100 * level:.0f}%"
    note = [f"Points: pilot checkpoints; solid: fitted median per pilot size; dashed: target median, shaded: "
            f"{pct} interval of model accuracy (without measurement noise); error bar at the end of training: {pct} "
            f"interval of one evaluation (with measurement noise); | on the threshold line: grok point (median "
            f"compute at which accuracy crosses half way from floor to plateau) with its {pct} interval."]
    if any(budget_ladder(sf) for sf in shown):
        note.append("Sizes trained to several token budgets: the laws describe final checkpoints (large markers); "
                    "intermediate ones sit mid learning-rate schedule.")
    note += not_predictable_note(skill_fits, [sf for sf in skill_fits if not sf.predictable])
    handles = [Line2D([], [], color=c, marker="o", ms=3, lw=0.8, label=format_count(s)) for s, c in colors.items()]
    handles += [
        Line2D([], [], color=style.target_color, ls="--", lw=1.6,
               label=f"target {format_count(target_params)} params"),
        Patch(color=style.target_color, alpha=style.band_alpha, label=f"{pct} interval"),
        Line2D([], [], color=style.target_color, marker="|", ms=10, mew=2, ls="none", label="grok point"),
        Line2D([], [], color=style.reference_color, ls=":", label="chance"),
        Line2D([], [], color="0.5", alpha=0.5, label="grok threshold"),
    ] if shown else []
    fig, axes = grid(len(shown), style, note, handles)
    for ax, sf in zip(axes, shown):
        surface = SurfaceSamples.of(sf, samples=samples, seed=seed)
        forecast = by_key.get((sf.family, sf.recipe, sf.skill)) or predict_skill(
            sf, target_params, tokens=target_tokens, level=level, seed=seed, samples=surface)
        _forecast_panel(ax, sf, surface, forecast, colors, level, style)
        p_grok = "" if forecast.p_grok is None else f", p(grok) {forecast.p_grok:.2f}"
        ax.set_title(f"{panel_title(sf, skill_fits)}\n{forecast.status}{p_grok}", fontsize=style.title_size)
    label_outer(axes, "training compute (FLOPs)", "accuracy", style)
    fig.suptitle(f"{groups_title(skill_fits)}: forecast for {format_count(target_params)} params, "
                 f"{format_count(target_tokens)} tokens", fontsize=style.title_size + 1)
    return fig


def _forecast_panel(ax: Axes, sf: SkillFit, surface: SurfaceSamples, forecast: SkillForecast,
                    colors: dict[float, tuple], level: float, style: PlotStyle) -> None:
    """Pilots, their fitted medians, the target's band, end point and grok point (FLOPs, log x)."""
    kappa = sf.flops_per_param_token
    ladder = budget_ladder(sf)
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
    ax.axhline(sf.chance, color=style.reference_color, ls=":", lw=1.0)
    ax.set_xscale("log")
    ax.tick_params(labelsize=style.font_size)
    if forecast.accuracy is None:  # out of range: the pilots alone
        return
    start = min(min(p.tokens) for p in sf.pilots)
    grid = np.geomspace(min(start, forecast.tokens), forecast.tokens, CURVE_POINTS)
    low, median, high = quantiles(surface.accuracy(forecast.params, grid), level)
    flops = kappa * forecast.params * grid
    ax.fill_between(flops, low, high, color=style.target_color, alpha=style.band_alpha, lw=0)
    ax.plot(flops, median, color=style.target_color, ls="--", lw=1.6)
    if forecast.threshold is not None:
        ax.axhline(forecast.threshold, color="0.5", lw=0.8, alpha=0.5)
    a = forecast.accuracy
    ax.errorbar(forecast.flops, a.median, yerr=[[a.median - a.low], [a.high - a.median]], fmt="o",
                color=style.target_color, ms=5, mec="white", capsize=3, zorder=5)
    left = min(min(p.flops) for p in sf.pilots) / 1.5
    right = max(forecast.flops, sf.max_flops) * 1.5
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    grok = forecast.grok
    if grok is not None and grok.tokens is not None and flops[0] < grok.flops <= right:  # else before the curve
        k = grok.flops_per_token
        low_flops = max(grok.low * k, left) if grok.low is not None else left
        high_flops = min(grok.high * k, right)
        ax.errorbar(grok.flops, forecast.threshold, xerr=[[grok.flops - low_flops], [high_flops - grok.flops]],
                    fmt="|", color=style.target_color, ms=12, mew=2, elinewidth=1.2, capsize=0, zorder=6)
        if grok.high * k > right:  # the interval runs on past the axis
            ax.plot(right, forecast.threshold, marker=">", color=style.target_color, ms=5, clip_on=False)
    ax.tick_params(labelsize=style.font_size)


