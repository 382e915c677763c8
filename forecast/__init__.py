"""forecast: when and whether a large language model will grok each downstream skill.

Flow: runs (`load_runs`) -> fits (`fit`) -> forecasts (`Fits.predict`, `Fits.plan`,
`backtest`) -> rendering (the CLI, plots).
"""

from forecast.errors import DataError, FitError, ForecastError, UsageError
from forecast.quantities import format_count, format_flops, parse_quantity
from forecast.runs import Recipe, Run, Series, load_run, load_runs, make_series, save_run, write_runs

__version__ = "0.1.0"

__all__ = [
    "DataError", "FitError", "ForecastError", "UsageError",
    "Recipe", "Run", "Series", "load_run", "load_runs", "make_series", "save_run", "write_runs",
    "format_count", "format_flops", "parse_quantity",
    "__version__",
]
