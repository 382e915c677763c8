"""The demo's one figure (`forecast demo --plot`): per skill the pilots, the fitted curves,
the verification model's forecast band and grok point, and its runs' own checkpoints."""

from __future__ import annotations

from typing import Any


def demo_figure(result: Any) -> Any:
    """`forecast_figure` for the verification model of a `DemoResult` (one panel per
    predictable skill), with each verification run's checkpoints drawn on the forecast
    bands in black (one marker per seed) and a title that says what the figure shows."""
    from forecast.plots import forecast_figure
    from forecast.quantities import format_count

    f0 = result.forecasts[0]
    skill_fits = result.fits.select(f0.family, f0.recipe, ["all"])
    verification = {f"verification seed {run.seed}":
                    {k: (s.tokens, s.accuracy) for k, s in run.series.items()} for run in result.verification}
    fig = forecast_figure(skill_fits, f0.params, f0.tokens, result.forecasts, f0.level, verification=verification)
    title = fig.get_suptitle()  # the forecast figure's own: group, target, tokens
    fig.suptitle((title + "\n" if title else "") + f"Forecast for a {format_count(f0.params)}-parameter model made from pilots of "
                 f"{format_count(min(r.params for r in result.runs))}-{format_count(max(r.params for r in result.runs))}"
                 " parameters" + (", then that model trained (black)" if result.verification else ""), fontsize=9)
    return fig
