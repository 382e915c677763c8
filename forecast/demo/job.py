"""The main job's stages: the shipped pilots (or a retrain) -> fits as `forecast fit`
makes them -> the forecast for the verification model -> that model trained, one run
per seed, and checked."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.demo.checks import SkillCheck, check
from forecast.errors import UsageError
from forecast.fits import Fits, fit
from forecast.fitting.fit import FitOptions
from forecast.forecasting.predict import SkillForecast
from forecast.quantities import format_count
from forecast.runs.files import load_run, load_runs
from forecast.runs.model import Run

DEMO_PRESET = "demo"
DEMO_THREADS = 1
"""Torch CPU threads per run when the caller names none: a fixed number, never one read off
the machine (its cores or its load), so the same seeds on the same kind of device give the
same numbers byte for byte. Parallelism comes from running runs side by side in processes
(`jobs`), which changes no number."""
FIT_OPTIONS = FitOptions(losses=True)
"""What `forecast fit` uses with no flags (400 bootstrap draws, seed 0, every law, loss laws
too): the demo's fits are the ones `forecast fit OUT/runs/demo` writes."""
SHIPPED_RUNS = Path(__file__).resolve().parents[2] / "runs"
"""The repository's runs/ (present in a clone and an editable install): the demo ladder's
pilots, trained once by `forecast demo --train-pilots --out .` (see README, "The main job")."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo made: pilots, fits, the forecast for the verification model, and how
    that model did, per seed (`verification` empty with `verify=False`)."""

    runs_dir: Path  # the pilot runs (one directory per run)
    fits_dir: Path  # the fits (`forecast predict --fits` reads it)
    runs: list[Run]
    fits: Fits
    forecasts: list[SkillForecast]  # for the verification model's size and tokens
    verification: list[Run]  # the verification model, one run per seed
    checks: list[SkillCheck]  # per seed, per skill
    seconds: dict[str, float]  # wall time of each stage: pilots, fit, verify, total
    trained_pilots: bool  # the pilots were trained by this call (else the shipped ones were fitted)
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
    train_pilots: bool = False,
    pilots: str | Path | None = None,
) -> DemoResult:
    """Pilot ladder -> fits -> forecast for the ladder's `[verify]` model at the tokens it
    trains on -> (with `verify`) that model trained once per ladder seed and checked.

    The pilots are the shipped ones (`pilots`, default `runs/<ladder>` of the repository)
    unless `train_pilots` (or none are shipped: the `tiny` preset of the tests), which trains
    them into `OUT/runs/<ladder>/`. `threads` is torch's CPU threads per run (default
    `DEMO_THREADS`); `jobs` runs go side by side (default: one per core on CPU), which
    changes no number. `progress` receives the trainer's `Progress` reports; `stage(text)`
    hears when each stage starts."""
    from forecast.pilot import preset_ladder, resolve_device
    from forecast.pilot.executors import cpu_cores

    begin = time.perf_counter()
    say = stage or (lambda _: None)
    out, threads = Path(out), threads or DEMO_THREADS
    ladder = preset_ladder(preset)
    torch_device = resolve_device(device) if isinstance(device, str) else device
    if jobs is None:
        jobs = 1 if torch_device.type == "cuda" else max(1, cpu_cores() // threads)
    specs = ladder.run_specs()
    shipped = Path(pilots) if pilots is not None else SHIPPED_RUNS / ladder.name
    retrain = train_pilots or (pilots is None and not shipped.exists())
    runs_dir = out / "runs" / ladder.name if retrain else shipped
    if retrain:
        say(f"pilots: training {len(specs)} runs of {len(ladder.sizes)} sizes into {runs_dir}")
        _train(ladder, specs, runs_dir, torch_device.type, threads, jobs, progress, ensemble="auto")
    else:
        say(f"pilots: the shipped {len(specs)} runs of {len(ladder.sizes)} sizes in {runs_dir} "
            "(--train-pilots retrains them)")
        _check_pilots(specs, runs_dir)
    pilots_done = time.perf_counter()
    runs = [load_run(runs_dir / s.name) for s in specs]
    say(f"fits: {len(runs)} runs, as `forecast fit {runs_dir}` fits them")
    fits = fit(runs, options=fit_options or FIT_OPTIONS)
    fits_dir = out / "fits"
    fits.save(fits_dir)
    fit_done = time.perf_counter()
    targets = ladder.verify_specs() if ladder.verify is not None else []
    params = float(targets[0].model.params_non_embedding) if targets else 10 * max(r.params for r in runs)
    tokens = verification_tokens(runs, ladder.train.steps, targets[0].train.steps if targets else ladder.train.steps)
    forecasts = fits.predict(params, tokens=tokens, skills=["all"], family=ladder.name)
    verification: list[Run] = []
    checks: list[SkillCheck] = []
    if verify and targets:
        verify_dir = out / "runs" / f"{ladder.name}-verify"
        say(f"verification: {format_count(params)} params, {format_count(tokens)} tokens, "
            f"seeds {', '.join(str(t.seed) for t in targets)}")
        # each seed alone (not as one ensemble), so the seeds train side by side on separate cores
        _train(ladder, targets, verify_dir, torch_device.type, threads, min(jobs, len(targets)), progress,
               ensemble="off")
        verification = [load_run(verify_dir / t.name) for t in targets]
        for run in verification:
            others = [o for o in verification if o is not run]
            checks += [check(f, run, others) for f in forecasts if f.skill in run.series]
    done = time.perf_counter()
    seconds = {"pilots": pilots_done - begin, "fit": fit_done - pilots_done,
               "verify": done - fit_done if verification else 0.0, "total": done - begin}
    from forecast.demo.story import story

    result = DemoResult(runs_dir, fits_dir, runs, fits, forecasts, verification, checks, seconds, retrain)
    return DemoResult(**{**result.__dict__, "story": story(result)})


def verification_tokens(runs: list[Run], pilot_steps: int, verify_steps: int) -> float:
    """Training tokens of the verification model: the pilots' mean final tokens (the same
    batch size and data), scaled by its steps over theirs."""
    return float(np.mean([r.final_tokens for r in runs])) * verify_steps / pilot_steps


def _train(ladder: Any, specs: list, runs_dir: Path, device: str, threads: int, jobs: int,
           progress: Callable | None, ensemble: str) -> None:
    from forecast.pilot.orchestrate import run_local
    from forecast.pilot.sweep import SweepError

    outcomes = run_local(ladder, specs, runs_dir, device, threads, jobs, progress, ensemble=ensemble)
    failed = [o for o in outcomes if o.error]
    if failed:
        raise SweepError(f"{len(failed)} run(s) failed: {'; '.join(f'{o.name}: {o.error}' for o in failed)}")


def _check_pilots(specs: list, runs_dir: Path) -> None:
    """Every pilot of the preset is in `runs_dir`, complete, and trained with the preset's
    configuration (a pilot from another config would make the forecast about other models)."""
    for spec in specs:
        meta = runs_dir / spec.name / "run.json"
        if not meta.exists():
            raise UsageError(f"{runs_dir}: no pilot {spec.name}; train the ladder with train_pilots",
                             parameter="train_pilots")
        extra = json.loads(meta.read_text()).get("extra", {})
        if extra.get("config") != json.loads(json.dumps(spec.to_json())) or not extra.get("complete"):
            raise UsageError(f"{runs_dir / spec.name}: not the preset's pilot (another configuration, or "
                             "unfinished); retrain the ladder with train_pilots", parameter="train_pilots")
