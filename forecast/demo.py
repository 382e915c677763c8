"""The main job end to end: pilots -> fits -> a forecast for a larger model -> that model
trained, its outcome beside the forecast.

    result = run_demo("out/demo")
    result.forecasts   # one SkillForecast per skill, for the verification model
    result.checks      # per skill: what that model did, and whether the forecast held
    result.story       # the closing lines

The `demo` ladder (forecast/pilot/presets/demo.toml) has three grains of skill: one that
every pilot groks (sooner in tokens for larger ones), a harder one only the larger pilots
begin to grok within the budget, and a composite word problem that no pilot gets right
while the probability it gives the right answer already rises with size. After fitting,
the demo forecasts its `[verify]` model (3-4x the largest pilot) for the tokens it will
train on, then trains it and scores the forecast: final accuracy inside the interval, and
the grok point against the one it showed. Nothing is hidden: a miss is reported as one.

Each stage writes what the matching command would (runs under `OUT/runs/<ladder>/`, fits
under `OUT/fits/`, the verification run under `OUT/runs/<ladder>-verify/`), so the stages
can be rerun or inspected one at a time with `forecast pilot`, `fit`, `predict` and
`backtest`. Rerunning skips finished runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.fitting.fit import FitOptions
from forecast.fits import fit
from forecast.fits import Fits
from forecast.threads import torch_threads
from forecast.forecasting.predict import SkillForecast
from forecast.quantities import format_count
from forecast.runs.crossing import NEVER, measured_crossing
from forecast.runs.files import load_run, load_runs
from forecast.runs.model import Run

DEMO_PRESET = "demo"


@dataclass(frozen=True)
class SkillCheck:
    """One skill of the verification model: its forecast beside what it did."""

    skill: str
    forecast: SkillForecast
    accuracy: float  # final accuracy of the verification model
    covered: bool | None  # inside the forecast's interval (None: no interval was given)
    grok_tokens: float | None  # tokens at which it crossed the forecast's grok threshold (None: it did not)
    grok_ratio: float | None  # forecast grok tokens / actual (None when either is missing)

    @property
    def grok_within_2x(self) -> bool | None:
        return None if self.grok_ratio is None else 0.5 <= self.grok_ratio <= 2.0

    def to_json(self) -> dict[str, Any]:
        return {"skill": self.skill, "forecast": self.forecast.to_json(), "accuracy": self.accuracy,
                "covered": self.covered, "grok_tokens": self.grok_tokens, "grok_ratio": self.grok_ratio,
                "grok_within_2x": self.grok_within_2x}


@dataclass(frozen=True)
class DemoResult:
    """What the demo made: pilots, fits, the forecast for the verification model, and how
    that model did (`verification` None with `verify=False`)."""

    runs_dir: Path  # the pilot runs (one directory per run)
    fits_dir: Path  # the fits (`forecast predict --fits` reads it)
    runs: list[Run]
    fits: Fits
    forecasts: list[SkillForecast]  # for the verification model's size and tokens
    verification: Run | None
    checks: list[SkillCheck]
    seconds: dict[str, float]  # wall time of each stage: pilots, fit, verify, total
    story: list[str] = field(default_factory=list)  # the closing lines


def run_demo(
    out: str | Path,
    device: Any = "cpu",
    progress: Callable | None = None,
    fit_options: FitOptions | None = None,
    preset: str = DEMO_PRESET,
    threads: int | None = None,
    verify: bool = True,
    jobs: int | None = None,
    stage: Callable[[str], None] | None = None,
) -> DemoResult:
    """Pilot ladder -> fits -> forecast for the ladder's `[verify]` model at the tokens it
    trains on -> (with `verify`) that model trained and checked.

    `progress` receives the trainer's `Progress` reports (see `forecast.pilot.train_runs`);
    `stage(text)` hears when each stage starts; `preset` swaps the ladder (the tests use
    `tiny`); `threads` is torch's CPU threads per run (default: one per run, `jobs` runs
    at once, as many as there are cores; the verification run takes every core)."""
    from forecast.pilot import preset_ladder, resolve_device
    from forecast.pilot.executors import cpu_cores
    from forecast.pilot.orchestrate import run_local

    begin = time.perf_counter()
    say = stage or (lambda _: None)
    out = Path(out)
    ladder = preset_ladder(preset)
    runs_dir, fits_dir, verify_dir = out / "runs" / ladder.name, out / "fits", out / "runs" / f"{ladder.name}-verify"
    torch_device = resolve_device(device) if isinstance(device, str) else device
    cores = cpu_cores()
    if jobs is None:
        jobs = 1 if torch_device.type == "cuda" else max(1, cores // (threads or 1))
    specs = ladder.run_specs()
    say(f"pilots: {len(specs)} runs of {len(ladder.sizes)} sizes")
    outcomes = run_local(ladder, specs, runs_dir, torch_device.type, threads or (1 if jobs > 1 else None), jobs,
                         progress)
    failed = [o for o in outcomes if o.error]
    if failed:
        from forecast.pilot.sweep import SweepError
        raise SweepError(f"{len(failed)} pilot run(s) failed: {'; '.join(f'{o.name}: {o.error}' for o in failed)}")
    pilots_done = time.perf_counter()
    runs = load_runs(runs_dir)
    say(f"fits: {len(runs)} runs")
    fits = fit(runs, options=fit_options or FitOptions())
    fits.save(fits_dir)
    fit_done = time.perf_counter()
    target = ladder.verify_spec() if ladder.verify is not None else None
    params = float(target.model.params_non_embedding) if target else 10 * max(r.params for r in runs)
    tokens = float(np.mean([r.final_tokens for r in runs if r.complete]))  # the pilots' budget: same steps and data
    if target is not None and target.train.steps != ladder.train.steps:
        tokens *= target.train.steps / ladder.train.steps
    forecasts = fits.predict(params, tokens=tokens, skills=["all"])
    verification, checks = None, []
    if verify and target is not None:
        from forecast.pilot import train_run

        say(f"verification: {format_count(params)} params, {format_count(tokens)} tokens")
        with torch_threads(threads or (_free_cores(cores) if torch_device.type == "cpu" else None)):
            verification = load_run(train_run(target, verify_dir, torch_device, progress))
        checks = [check(f, verification) for f in forecasts if f.skill in verification.series]
    done = time.perf_counter()
    seconds = {"pilots": pilots_done - begin, "fit": fit_done - pilots_done,
               "verify": done - fit_done if verification else 0.0, "total": done - begin}
    result = DemoResult(runs_dir, fits_dir, runs, fits, forecasts, verification, checks, seconds)
    return DemoResult(**{**result.__dict__, "story": story(result)})


def _free_cores(cores: int) -> int:
    """Threads for the one verification run: every core, or one when the machine is busy
    (load average at or above the core count): OpenMP threads waiting for a core they do
    not get spin, and slowed a 222K-parameter run ~8x on a shared 2-core machine."""
    try:
        busy = os.getloadavg()[0] >= cores
    except OSError:  # not available on this platform
        busy = False
    return 1 if busy else cores


def check(forecast: SkillForecast, run: Run) -> SkillCheck:
    """Score one skill's forecast against the run it forecast."""
    series = run.series[forecast.skill]
    final = float(series.accuracy[-1])
    a = forecast.accuracy
    covered = None if a is None else bool(a.low - 1e-9 <= final <= a.high + 1e-9)
    actual = None if forecast.threshold is None else crossing(series.tokens, series.accuracy, forecast.threshold,
                                                                       series.accuracy_stderr())
    predicted = forecast.grok.tokens if forecast.grok is not None else None
    ratio = predicted / actual if predicted and actual else None
    return SkillCheck(forecast.skill, forecast, final, covered, actual, ratio)


def crossing(tokens: np.ndarray, accuracy: np.ndarray, threshold: float,
             stderr: np.ndarray | None = None) -> float | None:
    """Tokens at which a run's accuracy first reaches `threshold` (`forecast.runs.crossing`,
    the measured crossing the backtest and the plots read too); None if never."""
    found = measured_crossing(tokens, accuracy, threshold, stderr)
    return None if found.kind == NEVER else found.tokens


# ---------------------------------------------------------------------------- the closing lines


def story(result: DemoResult) -> list[str]:
    """3-5 lines: what the pilots learned, what the larger model will learn and when, how
    sure, what the check found, and how long it took."""
    runs = result.runs
    sizes = sorted({r.params for r in runs})
    lines = [_pilot_line(runs, sizes)]
    if result.forecasts:
        f0 = result.forecasts[0]
        parts = [_forecast_part(f) for f in result.forecasts]
        lines.append(f"Forecast, before training it, for {format_count(f0.params)} params on "
                     f"{format_count(f0.tokens)} tokens: " + "; ".join(parts) + ".")
    if result.checks:
        lines.append(_check_line(result))
    s = result.seconds
    timing = f"Total time {_duration(s['total'])}: pilots {_duration(s['pilots'])}, fits {_duration(s['fit'])}"
    lines.append(timing + (f", verification {_duration(s['verify'])}." if result.verification else "."))
    return lines


def _pilot_line(runs: list[Run], sizes: list[float]) -> str:
    skills = sorted({k for r in runs for k in r.skills})
    parts = []
    for skill in skills:
        best = {p: max(float(r.series[skill].accuracy.max()) for r in runs if r.params == p) for p in sizes}
        learned = [p for p in sizes if best[p] >= 0.5]
        if len(learned) == len(sizes):
            parts.append(f"{skill} at every size")
        elif learned:
            parts.append(f"{skill} only from {format_count(learned[0])} params (best {max(best.values()):.2f})")
        else:
            parts.append(f"no pilot learned {skill} (accuracy at most {max(best.values()):.2f})"
                         + _prob_trend(runs, skill, sizes))
    return (f"The pilots ({len(sizes)} sizes, {format_count(sizes[0])}-{format_count(sizes[-1])} params) learned "
            + "; ".join(parts) + ".")


def _prob_trend(runs: list[Run], skill: str, sizes: list[float]) -> str:
    """How the probability of the right answer (mean of the last 3 evaluations, over seeds)
    moved from the smallest pilots to the largest."""
    probs = []
    for size in (sizes[0], sizes[-1]):
        values = [float(np.mean(r.series[skill].prob[-3:])) for r in runs
                  if r.params == size and r.series[skill].has_prob]
        probs.append(float(np.mean(values)) if values else float("nan"))
    low, high = probs
    if not (np.isfinite(low) and np.isfinite(high) and low > 0):
        return ""
    if high > 1.1 * low:
        return f", while its answer probability rose from {low:.3f} to {high:.3f} with size"
    if high < low / 1.1:
        return f", and its answer probability fell from {low:.3f} to {high:.3f} with size"
    return f", and its answer probability stayed near {high:.3f} across sizes"


def _forecast_part(f: SkillForecast) -> str:
    if f.accuracy is None:
        return f"{f.skill} not predictable ({f.reason})"
    a = f.accuracy
    text = f"{f.skill} ends at {a.median:.2f} [{a.low:.2f}-{a.high:.2f}]"
    if f.grok is not None and f.grok.tokens is not None and str(f.status) != "grokked-in-pilots":
        text += f", groks at {format_count(f.grok.tokens)} tokens"
    if f.confidence:
        text += f" ({f.confidence} confidence)"
    return text


def _check_line(result: DemoResult) -> str:
    checks = [c for c in result.checks if c.covered is not None]
    inside = sum(c.covered for c in checks)
    misses = [f"{c.skill} {c.accuracy:.2f} outside [{c.forecast.accuracy.low:.2f}-{c.forecast.accuracy.high:.2f}]"
              for c in checks if not c.covered]
    groks = [f"{c.skill} grokked at {format_count(c.grok_tokens)} tokens, forecast {c.grok_ratio:.2f}x of that "
             f"({'within' if c.grok_within_2x else 'NOT within'} 2x)" for c in result.checks if c.grok_ratio is not None]
    text = f"Then trained it: final accuracy inside the {result.forecasts[0].level:.0%} interval for {inside} of {len(checks)} skills"
    text += f" (miss: {'; '.join(misses)})" if misses else ""
    return text + (f"; {'; '.join(groks)}." if groks else ".")


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


# ---------------------------------------------------------------------------- the figure


def demo_figure(result: DemoResult) -> Any:
    """`forecast_figure` for the verification model (one panel per predictable skill), with
    the verification run's own checkpoints drawn on the forecast bands (black stars)."""
    from forecast.plots import forecast_figure

    f0 = result.forecasts[0]
    skill_fits = result.fits.select(f0.family, f0.recipe, ["all"])
    run = result.verification
    verification = None if run is None else {k: (s.tokens, s.accuracy) for k, s in run.series.items()}
    return forecast_figure(skill_fits, f0.params, f0.tokens, result.forecasts, f0.level, verification=verification)
