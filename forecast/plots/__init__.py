"""Plots (PNG): forecast trajectories, grok point vs model size, backtests, recipe comparisons.

Pure functions from fits, forecasts or backtests to a `matplotlib.figure.Figure` (one module
per figure; `layout` holds what they share); `save` writes a PNG atomically. Everything
random comes from seeded `SurfaceSamples`, so identical inputs give identical images.

Conventions (STYLE.md, point 9): log x (training compute in FLOPs, or parameters), a dotted
chance line, fitted curves solid inside the pilots' range and dashed beyond, shaded
interval bands, the target marked. Skills the fit calls not-predictable get no panel; they
are listed with their reason in a note under the figure.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from forecast.io import atomic_write_bytes, mark_png
from forecast.plots.backtest import backtest_figure
from forecast.plots.compare import compare_figure
from forecast.plots.forecast import forecast_figure
from forecast.plots.layout import DEFAULT_STYLE, PlotStyle
from forecast.plots.scaling import CROSSED, BEFORE, NEVER, Crossing, first_crossing, grok_scaling_figure


def save(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as a PNG at `path`, atomically: readers see the old file or the new one,
    never a partial one; the file gets the umask's mode, like any file the user makes."""
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    atomic_write_bytes(path, mark_png(buffer.getvalue()))  # marked as ours: a later --plot may replace it
    return Path(path)


__all__ = [
    "DEFAULT_STYLE", "PlotStyle", "save", "forecast_figure", "grok_scaling_figure", "backtest_figure",
    "compare_figure", "first_crossing", "Crossing", "CROSSED", "BEFORE", "NEVER",
]
