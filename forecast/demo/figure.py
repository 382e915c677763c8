"""The demo's one figure (`forecast demo --plot`): per skill the pilots, the fitted curves,
the verification model's forecast band and grok point, and its runs' own checkpoints."""

from __future__ import annotations

from typing import Any

SEED_MARKERS = ("*", "P", "X", "D")  # one per verification seed


def demo_figure(result: Any) -> Any:
    """`forecast_figure` for the verification model of a `DemoResult` (one panel per
    predictable skill), with each verification run's checkpoints drawn on the forecast
    bands in black (one marker per seed) and a title that says what the figure shows."""
    from forecast.plots import forecast_figure

    f0 = result.forecasts[0]
    skill_fits = result.fits.select(f0.family, f0.recipe, ["all"])
    fig = forecast_figure(skill_fits, f0.params, f0.tokens, result.forecasts, f0.level)
    shown = [sf for sf in skill_fits if sf.predictable]
    for ax, sf in zip(fig.axes, shown):
        for run, marker in zip(result.verification, SEED_MARKERS):
            series = run.series.get(sf.skill)
            if series is not None:
                ax.plot(series.flops, series.accuracy, color="black", marker=marker, ms=5, lw=0.8, zorder=7,
                        label=f"verification run, seed {run.seed} (trained after the forecast)")
    if shown and result.verification:
        fig.axes[len(shown) - 1].legend(loc="upper left", fontsize=7, frameon=False)  # the last panel: often the emptiest
    from forecast.quantities import format_count

    title = fig.get_suptitle()  # the forecast figure's own: group, target, tokens
    fig.suptitle((title + "\n" if title else "") + f"Forecast for a {format_count(f0.params)}-parameter model made from pilots of "
                 f"{format_count(min(r.params for r in result.runs))}-{format_count(max(r.params for r in result.runs))}"
                 " parameters" + (", then that model trained (black)" if result.verification else ""), fontsize=9)
    return fig
