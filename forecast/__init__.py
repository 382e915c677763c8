"""forecast: when and whether a large language model will grok each downstream skill.

Flow: runs (`load_runs`) -> fits (`fit`) -> forecasts (`Fits.predict`, `Fits.plan`,
`compare`, `backtest`) -> rendering (the CLI, `forecast.plots`).

    import forecast
    runs = forecast.load_runs("runs/demo")
    fits = forecast.fit(runs)
    fits.predict(7e9, skills=["all"])

Names are imported on first use (PEP 562), so `import forecast` and the command line's
start-up do not pay for torch, scipy or matplotlib until a command needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

from forecast.version import __version__

_EXPORTS = {
    "DataError": "forecast.errors", "FitError": "forecast.errors", "ForecastError": "forecast.errors",
    "UsageError": "forecast.errors",
    "format_count": "forecast.quantities", "format_flops": "forecast.quantities",
    "parse_quantity": "forecast.quantities",
    "Recipe": "forecast.runs.model", "Run": "forecast.runs.model", "Series": "forecast.runs.model", "make_series": "forecast.runs.model",
    "load_run": "forecast.runs.files", "load_runs": "forecast.runs.files", "save_run": "forecast.runs.files",
    "scan_runs": "forecast.runs.files", "write_runs": "forecast.runs.files", "validate_run": "forecast.runs.checks",
    "Status": "forecast.fitting.status", "Note": "forecast.fitting.status",
    "FitOptions": "forecast.fitting.fit", "fit": "forecast.fits",
    "Fits": "forecast.fits", "SkillFit": "forecast.fitting.results",
    "SkillForecast": "forecast.forecasting.predict", "TargetPlan": "forecast.forecasting.plan", "BudgetPlan": "forecast.forecasting.plan",
    "compare": "forecast.forecasting.compare", "SkillComparison": "forecast.forecasting.compare",
    "LossLawFit": "forecast.fitting.loss_law", "fit_loss_law": "forecast.fitting.loss_law",
    "Backtest": "forecast.backtesting.results", "backtest": "forecast.backtesting.backtest",
    "compare_ladder": "forecast.forecasting.recipe_decision", "backtest_recipes": "forecast.backtesting.recipes",
    "update_with_run": "forecast.forecasting.in_progress", "partial_backtest": "forecast.backtesting.partial",
    "plots": "forecast.plots", "synthetic": "forecast.runs.synthetic",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forecast' has no attribute {name!r}")
    value = importlib.import_module(module)
    if name not in ("plots", "synthetic"):
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
