"""forecast: when and whether a large language model will grok each downstream skill.

Flow: runs (`load_runs`) -> fits (`fit`) -> forecasts (`Fits.predict`, `Fits.plan_target`,
`Fits.plan_budget`, `backtest`) -> rendering (the CLI, `forecast.plots`).
"""

__version__ = "0.1.0"

from forecast.errors import DataError, FitError, ForecastError, UsageError  # noqa: E402
from forecast.quantities import format_count, format_flops, parse_quantity  # noqa: E402
from forecast.runs import (  # noqa: E402
    Recipe, Run, Series, load_run, load_runs, make_series, save_run, write_runs,
)
from forecast.fit import FitOptions, fit  # noqa: E402
from forecast.fits import Fits, SkillFit  # noqa: E402
from forecast.loss_law import LossLawFit, fit_loss_law  # noqa: E402
from forecast.backtest import Backtest, backtest  # noqa: E402

__all__ = [
    "DataError", "FitError", "ForecastError", "UsageError",
    "Recipe", "Run", "Series", "load_run", "load_runs", "make_series", "save_run", "write_runs",
    "format_count", "format_flops", "parse_quantity",
    "FitOptions", "fit", "Fits", "SkillFit", "LossLawFit", "fit_loss_law", "Backtest", "backtest",
    "__version__",
]
