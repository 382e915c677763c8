"""`forecast pilot` and `forecast demo`: train pilot ladders, and the main job (thin shells)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecast.cli.common import ForceOpt, at_least, JsonOpt, console, log, output_dir, output_file, positive_int, print_json
from forecast.cli.render import forecast_table, pilot_table, pilot_progress, sweep_table
from forecast.errors import DataError, UsageError
from forecast.quantities import format_count, format_flops


def pilot_command(
    directory: Annotated[Path | None, typer.Argument(help="With --status: a ladder directory, OUT/<ladder name>.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="Built-in ladder: tiny, demo, formats, formats_cpu, formats4_cpu, mix_cpu, curriculum, curriculum_cpu.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Ladder config file (.toml or .json); see README 'Pilot runs'.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Runs go to OUT/<ladder name>/<run name>/.")] = Path("runs"),
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")] = "auto",
    seeds: Annotated[int | None, typer.Option("--seeds", callback=at_least("--seeds", 1, "2", 1000), help="Train seeds 0..K-1 (default: the config's seeds).")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch per run (default: one per core; "
                       "with --jobs N, cores // N; on Slurm, 1). Runs are identical for equal thread counts.")] = None,
    executor: Annotated[str, typer.Option("--executor", help="local: this machine; slurm: one Slurm job per run "
                        "(submitit); submitit-local: the Slurm jobs as local processes, without a cluster.")] = "local",
    jobs: Annotated[int, typer.Option("--jobs", help="Runs at once with --executor local (a process pool; on GPUs one run "
                    "per GPU); 1 trains them in turn in this process.")] = 1,
    status: Annotated[bool, typer.Option("--status", help="Show which runs are finished, running, failed or pending, and exit.")] = False,
    partition: Annotated[str | None, typer.Option("--partition", help="Slurm partition (default: the cluster's).")] = None,
    time_min: Annotated[int, typer.Option("--time", help="Slurm time limit per run, in minutes; a job that hits it requeues and resumes.")] = 60,
    gpus_per_task: Annotated[int | None, typer.Option("--gpus-per-task", help="GPUs per Slurm job (default: 1 with --device cuda, else 0).")] = None,
    array_parallelism: Annotated[int, typer.Option("--array-parallelism", help="Most Slurm array tasks running at once.")] = 64,
    wait_jobs: Annotated[bool, typer.Option("--wait", help="With --executor slurm: wait for the jobs and print the summary.")] = False,
    show_config: Annotated[bool, typer.Option("--show-config", help="Print the ladder config as JSON (usable with --config) and exit.")] = False,
    ensemble: Annotated[str, typer.Option("--ensemble", help="auto: train runs of one model shape (seeds, recipes of "
                        "similar length) together as one stacked model, up to 8 at once; off: one run at a time.")] = "auto",
    compile_step: Annotated[bool, typer.Option("--compile", help="torch.compile the training step (opt-in; pays on "
                            "GPUs and larger models, see benchmarks/pilot_throughput.py).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a pilot ladder of small transformers on synthetic skills, writing runs as they train.

    Rerunning the same command resumes an interrupted ladder and skips finished runs."""
    if config is not None and not config.is_file():  # before torch loads (load_ladder reads it)
        raise DataError(config, None, "no such file" if not config.exists() else "not a file",
                        "give the path of a .toml or .json ladder config")
    from forecast.pilot import load_ladder, preset_ladder, preset_names
    from forecast.pilot.executors import EXECUTORS

    positive_int(seeds, "--seeds", "2")
    positive_int(threads, "--threads", "1")
    positive_int(jobs, "--jobs", "2")
    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor}: unknown executor; use {', '.join(EXECUTORS)}")
    if ensemble not in ("auto", "off"):
        raise UsageError(f"--ensemble {ensemble}: use auto (train compatible runs as one stacked model) or off")
    if status and directory is not None and preset is None and config is None:
        _print_status(directory, None, as_json)
        return
    if directory is not None:
        raise UsageError(f"{directory}: a directory argument goes with --status alone; to train, "
                         "give --preset or --config (and --out)")
    if (preset is None) == (config is None):
        raise UsageError(f"give exactly one of --preset ({', '.join(preset_names())}) or --config FILE"
                         + (", or a ladder directory with --status" if status else ""))
    ladder = preset_ladder(preset) if preset is not None else load_ladder(config)
    if show_config:
        print_json("ladder-config", **ladder.to_json())
        return
    specs = ladder.run_specs(seeds)
    family_dir = out / ladder.name
    if status:
        _print_status(family_dir, specs, as_json)
    elif executor == "local":
        _train_local(ladder, specs, family_dir, device, threads, jobs, as_json, ensemble, compile_step)
    else:
        _submit(ladder, specs, family_dir, executor, device, threads, as_json, wait_jobs or executor != "slurm",
                partition, time_min, gpus_per_task, array_parallelism, ensemble, compile_step)


def _train_local(ladder, specs, family_dir: Path, device: str, threads: int | None, jobs: int, as_json: bool,
                 ensemble: str, compile_step: bool) -> None:
    from forecast.io import check_writable_dir
    from forecast.pilot import resolve_device
    from forecast.pilot.executors import default_threads
    from forecast.pilot.orchestrate import run_local

    resolve_device(device)  # a bad --device is an error before anything is written
    check_writable_dir(family_dir, "--out")
    each = threads or default_threads(jobs)
    where = "in turn" if jobs == 1 else f"{jobs} at a time ({each} torch thread{'s' if each > 1 else ''} each)"
    log.print(f"pilot ladder [bold]{ladder.name}[/]: {len(specs)} runs, {where} -> {family_dir}")
    with pilot_progress() as (bars, report):
        overall = bars.add_task("ladder", total=len(specs), info="")
        outcomes = run_local(ladder, specs, family_dir, device, threads, jobs, report, lambda _: bars.advance(overall),
                             ensemble, compile_step)
    _finish(outcomes, as_json)


def _submit(ladder, specs, family_dir: Path, executor: str, device: str, threads: int | None, as_json: bool,
            wait: bool, partition: str | None, time_min: int, gpus_per_task: int | None, array_parallelism: int,
            ensemble: str, compile_step: bool) -> None:
    from forecast.pilot.executors import SlurmOptions
    from forecast.pilot.orchestrate import submit
    if device not in ("auto", "cpu", "cuda"):  # resolved on the node that runs each job
        raise UsageError(f"--device: unknown device {device!r}; use auto, cpu or cuda")

    positive_int(time_min, "--time", "60")
    positive_int(array_parallelism, "--array-parallelism", "64")
    if gpus_per_task is not None and gpus_per_task < 0:
        raise UsageError(f"--gpus-per-task {gpus_per_task}: give 0 or more GPUs")
    gpus = gpus_per_task if gpus_per_task is not None else int(device == "cuda")
    options = SlurmOptions(partition=partition, time_min=time_min, gpus_per_task=gpus, cpus_per_task=threads or 1,
                           array_parallelism=array_parallelism, job_name=f"pilot-{ladder.name}")

    def started(state: dict[str, int], todo: int, cluster: str) -> None:
        log.print(f"pilot ladder [bold]{ladder.name}[/]: {len(specs)} runs ({state['finished']} finished, "
                  f"{state['running']} running); submitting {todo} via submitit ({cluster}) -> {family_dir}")

    with pilot_progress() as (bars, _):
        overall = bars.add_task("ladder", total=len(specs), info="", visible=False)
        result = submit(ladder, specs, family_dir, executor, options, device, wait,
                        lambda _: bars.update(overall, advance=1, visible=True), started, ensemble, compile_step)
    if result.outcomes is None:
        if as_json:
            print_json("pilot-submitted", submitted=result.job_ids, ladder_dir=str(family_dir))
        else:
            console.print(f"submitted {len(result.job_ids)} job(s): {', '.join(result.job_ids.values()) or '-'}; "
                          f"follow with: forecast pilot --status {family_dir}")
        return
    _finish(list(result.outcomes), as_json)


def _finish(outcomes, as_json: bool) -> None:
    """Summary of the runs that finished; then one error naming the failed ones, if any."""
    from forecast.pilot.sweep import SweepError
    from forecast.runs.files import final_accuracy, load_run

    runs = [load_run(o.path) for o in outcomes if o.error is None]
    rows = [{"name": r.name, "path": str(r.path), "params": r.params, "tokens": r.final_tokens,
             "flops": r.final_flops, "accuracy": final_accuracy(r)} for r in runs]
    if as_json:
        print_json("pilot", runs=rows)
    else:
        console.print(pilot_table(rows))
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise SweepError(f"{len(failed)} of {len(outcomes)} runs failed ({'; '.join(f'{o.name}: {o.error}' for o in failed)}); "
                         "fix and rerun the same command: only unfinished runs run again")


def _print_status(family_dir: Path, specs, as_json: bool) -> None:
    """`forecast pilot --status`: one row per run, its state and what it is doing."""
    from forecast.pilot.sweep import counts, sweep_status

    statuses = sweep_status(family_dir, specs)
    tally = counts(statuses)
    if as_json:
        print_json("pilot-status", ladder_dir=str(family_dir), counts=tally, runs=[s.to_json() for s in statuses])
    else:
        console.print(sweep_table(str(family_dir), statuses, tally))


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Writes OUT/fits/ and OUT/runs/demo-verify/ (and OUT/runs/demo/ with --train-pilots).")] = Path("out/demo"),
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch per run (default 1: a fixed number, so results never depend on the machine's cores or load).")] = None,
    train_pilots: Annotated[bool, typer.Option("--train-pilots", help="Retrain the pilot ladder into OUT/runs/demo/ instead of fitting the shipped runs/demo.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="After the forecast, train the larger model "
                      "and print what it did beside the forecast (--no-verify: stop at the forecast).")] = True,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw every skill's forecast with the verification "
                    "run's points (PNG).")] = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """The main job: pilots -> fits -> a forecast for a larger model, before it is trained ->
    that model trained, and its outcome beside the forecast.

    Rerunning skips finished runs; `forecast predict --fits OUT/fits` forecasts other sizes."""
    if device not in ("auto", "cpu", "cuda"):  # before torch loads (resolve_device checks it again)
        raise UsageError(f"--device: unknown device {device!r}; use auto, cpu or cuda")
    positive_int(threads, "--threads", "1")
    output_file(plot, force=force)
    output_dir(out, "--out")
    from forecast.demo import run_demo
    from forecast.pilot import resolve_device

    device = resolve_device(device)  # no CUDA for --device cuda is an error before anything is written
    log.print(f"main job: pilot ladder [bold]demo[/] ({'retrained' if train_pilots else 'shipped'}), fits → "
              f"{out / 'fits'}, " + ("then a larger model to check the forecast" if verify else
                                      "and a forecast (no verification)"))
    with pilot_progress() as (_, report):
        result = run_demo(out, device, report, threads=threads, verify=verify, train_pilots=train_pilots,
                          stage=lambda s: log.print(f"[bold]{s}[/]"))
    if plot is not None:
        from forecast.demo import demo_figure
        from forecast.plots import save

        log.print(f"wrote {save(demo_figure(result), plot)}")
    if json_out:
        print_json("demo", runs=str(result.runs_dir), fits=str(result.fits_dir), fit=result.fits.summaries(),
                   forecasts=[f.to_json() for f in result.forecasts],
                   verification=[str(r.path) for r in result.verification], trained_pilots=result.trained_pilots,
                   checks=[c.to_json() for c in result.checks], seconds=result.seconds, story=result.story)
        return
    _print_demo(result)


def _print_demo(result) -> None:
    from forecast.runs.files import final_accuracy

    console.print(pilot_table([{"name": r.name, "params": r.params, "tokens": r.final_tokens, "flops": r.final_flops,
                                "accuracy": final_accuracy(r)} for r in result.runs]))
    f0 = result.forecasts[0]
    console.print(forecast_table(result.forecasts, f"forecast before training it: {format_count(f0.params)} params, "
                                 f"{format_count(f0.tokens)} tokens, {format_flops(f0.flops)} FLOPs"))
    if result.checks:
        console.print(_check_table(result.checks, f0.level))
    for line in result.story:
        console.print(line, highlight=False)
    log.print(f"next: forecast predict --fits {result.fits_dir} --params 10M --skill all --plot forecast.png")


def _check_table(checks, level: float):
    from forecast.cli.render import interval_text, table

    t = table(f"verification: the forecast beside what the {format_count(checks[0].forecast.params)}-param model did",
              ("seed", "skill", f"forecast accuracy % [{level:.0%}]", "actual %", "inside", "forecast grok (tokens)",
               "actual grok", "forecast ÷ actual"), no_wrap=("skill",))
    for c in checks:
        grok = c.forecast.grok
        forecast_grok = "-" if grok is None or grok.tokens is None else \
            f"{format_count(grok.tokens)} [{format_count(grok.low) if grok.low else '<'}–" \
            f"{format_count(grok.high) if grok.high != float('inf') else 'beyond'}]"
        inside = "-" if c.covered is None else ("yes" if c.covered else "MISS")
        ratio = "-" if c.grok_ratio is None else f"{c.grok_ratio:.2f}×" + ("" if c.grok_within_2x else " (MISS: over 2×)")
        t.add_row(str(c.seed), c.skill, interval_text(c.forecast.accuracy), f"{100 * c.accuracy:.1f}", inside,
                  forecast_grok, "never" if c.grok_tokens is None else format_count(c.grok_tokens), ratio)
    return t
