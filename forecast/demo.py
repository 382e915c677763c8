"""The main job end to end: train the `demo` pilot ladder, fit it, forecast a larger model.

    result = run_demo("out/demo", target_params=1e6)
    result.forecasts   # one SkillForecast per skill

Each stage writes what the matching command would (runs under `out/runs/demo/`, fits under
`out/fits/`), so the stages can be rerun or inspected one at a time with `forecast pilot`,
`forecast fit` and `forecast predict`. Rerunning skips finished pilot runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from forecast.fitting import FitOptions, fit
from forecast.fits import Fits
from forecast.optimize import torch_threads
from forecast.predict import SkillForecast
from forecast.run_files import load_runs
from forecast.runs import Run

DEMO_PRESET = "demo"
DEMO_TARGET_PARAMS = 1e6
"""Default target: 1M non-embedding parameters, ten times the demo's largest pilot (~100k)."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo made: the pilot runs, their fits, and the forecast for the target."""

    runs_dir: Path  # the pilot runs (one directory per run)
    fits_dir: Path  # the fits (`forecast predict --fits` reads it)
    runs: list[Run]
    fits: Fits
    forecasts: list[SkillForecast]


def run_demo(
    out: str | Path,
    target_params: float = DEMO_TARGET_PARAMS,
    device: str | torch.device = "cpu",
    progress: Callable | None = None,
    fit_options: FitOptions | None = None,
    preset: str = DEMO_PRESET,
    threads: int | None = None,
) -> DemoResult:
    """Pilot ladder -> fits -> forecast for a model of `target_params` non-embedding
    parameters trained compute-optimally (20 tokens per parameter, as `forecast predict`).

    `progress` receives the trainer's `Progress` reports (see `forecast.pilot.train_run`);
    `preset` swaps the ladder (the tests use `tiny`); `threads` is torch's CPU thread count
    while training (None: torch's default)."""
    from forecast.pilot import preset_ladder, resolve_device, run_ladder

    out = Path(out)
    ladder = preset_ladder(preset)
    runs_dir, fits_dir = out / "runs" / ladder.name, out / "fits"
    with torch_threads(threads):
        run_ladder(ladder.run_specs(), runs_dir, resolve_device(device) if isinstance(device, str) else device,
                   progress)
    runs = load_runs(runs_dir)
    fits = fit(runs, options=fit_options or FitOptions())
    fits.save(fits_dir)
    forecasts = fits.predict(target_params, skills=["all"])
    return DemoResult(runs_dir, fits_dir, runs, fits, forecasts)
