"""The `forecast` command line: parses arguments, calls the `forecast` library, renders.

Results go to stdout (rich tables, or plain JSON with `--json`); progress and logs go to
stderr. Every `ForecastError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box as rich_box
from rich.console import Console
from rich.table import Table as RichTable

from forecast.backtest import backtest as backtest_runs
from forecast.errors import ForecastError, UsageError
from forecast.fit import ALL_LAWS, FitOptions, fit as fit_runs
from forecast.fits import Fits, SkillFit
from forecast.importers import (
    LongColumns, SkippedWarning, import_lm_eval, import_long, import_table, import_wide_csv, parse_chance_overrides,
)
from forecast.importers.common import check_params_kind, parse_assignments
from forecast.plan import plan_budget, plan_target
from forecast.predict import TOKENS_PER_PARAM, SkillForecast, pilot_grok_point, predict as predict_fits
from forecast.quantities import format_count, format_flops, parse_quantity
from forecast.runs import Recipe, Run, load_run, load_runs, run_summary, write_runs

app = typer.Typer(
    help="Forecast when and whether a large model will grok each skill, from small pilot runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
import_app = typer.Typer(help="Import evaluation results as runs (one directory per run).", no_args_is_help=True)
app.add_typer(import_app, name="import")

# results; when piped (not a terminal) rich would assume 80 columns and fold the tables
console = Console(width=None if sys.stdout.isatty() else 140)
log = Console(stderr=True)  # progress and logs


def command(target: typer.Typer = app, *args: Any, **kwargs: Any) -> Callable:
    """Register a command whose `ForecastError`s become one stderr line and exit code 2."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a: Any, **k: Any) -> Any:
            try:
                return fn(*a, **k)
            except ForecastError as exc:
                print(f"error: {exc}", file=sys.stderr)
                raise typer.Exit(2) from None

        return target.command(*args, **kwargs)(wrapper)

    return decorate


def print_json(data: Any) -> None:
    """Machine-readable output: plain `json.dumps`, nothing else on stdout."""
    print(json.dumps(data, indent=2, allow_nan=False))


# ============================================================================ runs & import
# (runs store: `forecast runs`, `forecast import lm-eval|csv|table|long`)


ImportJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ImportOut = Annotated[Path | None, typer.Option("--out", help="Runs directory to write into (one folder per run).")]
ImportOverwrite = Annotated[bool, typer.Option("--overwrite", help="Replace run folders that already exist in --out.")]
ImportFamily = Annotated[str, typer.Option("--family", help="Model family / ladder; runs of different families are never pooled.")]
ImportRecipe = Annotated[str, typer.Option("--recipe", help="Data-recipe label.")]
ImportParamsKind = Annotated[str, typer.Option("--params-kind", help="Which parameter count: non-embedding, total or unknown.")]
ImportChance = Annotated[list[str] | None, typer.Option("--chance", help="Chance accuracy, SKILL=VALUE (repeatable); overrides the known table.")]
ImportParams = Annotated[str | None, typer.Option("--params", help="Parameter count: 410M, 4.1e8, 302311424 (required).")]
ImportTokensPerStep = Annotated[str | None, typer.Option("--tokens-per-step", help="Training tokens per optimizer step (Pythia: 2097152).")]


@command(app, "runs")
def runs_command(
    directory: Annotated[Path, typer.Argument(help="A runs directory (or one run directory).")],
    json_out: ImportJson = False,
) -> None:
    """List the runs in DIR: family, recipe, size, tokens, checkpoints and skills."""
    summaries = [run_summary(run) for run in load_runs(directory)]
    if json_out:
        print_json(summaries)
    else:
        console.print(_runs_table(summaries, f"{_n_runs(len(summaries))} in {directory}"))


def _n_runs(count: int) -> str:
    return f"{count} run{'' if count == 1 else 's'}"


def _runs_table(summaries: list[dict[str, Any]], title: str) -> RichTable:
    """One row per run; the skill and metric names, shared by most runs, go in the caption."""
    skills = sorted({k for s in summaries for k in s["skills"]})
    metrics = sorted({k for s in summaries for k in s["metrics"]})
    caption = f"skills: {', '.join(skills) or '-'}" + (f"\nmetrics: {', '.join(metrics)}" if metrics else "")
    table = RichTable(title=title, title_justify="left", caption=caption, caption_justify="left",
                      box=rich_box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    headers = ("run", "family", "recipe", "params", "tokens", "ckpts", "skills") + (("metrics",) if metrics else ())
    for header in headers:
        table.add_column(header, justify="left" if header in ("run", "family", "recipe") else "right",
                         no_wrap=header == "run")  # names stay whole; others shrink on a narrow terminal
    for s in summaries:
        tokens = format_count(s["tokens_max"]) if s["tokens_min"] == s["tokens_max"] else \
            f"{format_count(s['tokens_min'])}–{format_count(s['tokens_max'])}"
        cells = [s["name"], s["family"], s["recipe"], format_count(s["params"]), tokens, str(s["checkpoints"]),
                 str(len(s["skills"]))]
        table.add_row(*cells, *([str(len(s["metrics"]))] if metrics else []))
    return table


def _write_imported(read: Callable[[], list[Run]], out: Path | None, overwrite: bool, json_out: bool) -> None:
    """Run an importer, write its runs all-or-nothing, then print what was written.

    Notes about input left out are printed only once everything succeeded, so a failure is
    exactly one line on stderr."""
    if out is None:
        raise UsageError("--out is required: the runs directory to write into, e.g. --out runs/")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedWarning)
        runs = read()
    written = write_runs(runs, out, overwrite=overwrite)
    for warning in caught:
        log.print(f"note: {warning.message}", markup=False, highlight=False, soft_wrap=True)
    summaries = [run_summary(run) | {"path": str(path)} for run, path in zip(runs, written)]
    if json_out:
        print_json(summaries)
    else:
        console.print(_runs_table(summaries, f"wrote {_n_runs(len(summaries))} to {out}"))


def _required_quantity(text: str | None, flag: str, hint: str) -> float:
    if text is None:
        raise UsageError(f"{flag} is required: {hint}")
    return parse_quantity(text, what=flag)


def _unit_quantity(text: str, flag: str) -> float:
    return parse_quantity(text, what=flag)


@command(import_app, "lm-eval")
def import_lm_eval_command(
    paths: Annotated[list[Path], typer.Argument(help="Results JSON files, or folders of them.")],
    out: ImportOut = None,
    params: ImportParams = None,
    tokens_per_step: ImportTokensPerStep = None,
    params_kind: ImportParamsKind = "unknown",
    family: ImportFamily = "default",
    recipe: ImportRecipe = "default",
    name: Annotated[str | None, typer.Option("--name", help="Run name (default: the model's name).")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Accuracy metric, repeatable as a preference list (default: acc, then exact_match); "
                         "NAME or NAME,FILTER.")] = None,
    average: Annotated[list[str] | None, typer.Option(
        "--average", help="Average subtasks into one skill, PREFIX=SKILL, e.g. hendrycksTest-=mmlu (repeatable).")] = None,
    chance: ImportChance = None,
    overwrite: ImportOverwrite = False,
    json_out: ImportJson = False,
) -> None:
    """Import lm-evaluation-harness results JSON (0.4 or the older per-checkpoint files)."""
    _write_imported(lambda: import_lm_eval(
        paths, params=_required_quantity(params, "--params", "the model's parameter count, e.g. --params 410M"),
        tokens_per_step=_required_quantity(tokens_per_step, "--tokens-per-step",
                                  "training tokens per optimizer step, e.g. 2097152 for Pythia"),
        params_kind=check_params_kind(params_kind), family=family, recipe=Recipe(recipe), name=name,
        metrics=tuple(metric) if metric else ("acc", "exact_match"),
        chance=parse_chance_overrides(chance or []),
        average=parse_assignments(average or [], "--average", "hendrycksTest-=mmlu"),
    ), out, overwrite, json_out)


@command(import_app, "csv")
def import_csv_command(
    files: Annotated[list[Path], typer.Argument(help="Wide CSV files, one run each (one row per step).")],
    out: ImportOut = None,
    params: ImportParams = None,
    accuracy_columns: Annotated[str | None, typer.Option(
        "--accuracy-columns", help="Regex over column names; group 1 is the skill (accuracy in [0, 1]).")] = None,
    loss_columns: Annotated[str | None, typer.Option(
        "--loss-columns", help="Regex for task-loss columns (lower is better); group 1 is the skill.")] = None,
    metric_columns: Annotated[str | None, typer.Option(
        "--metric-columns", help="Regex for run-level loss-only metrics (validation loss); group 1 names it.")] = None,
    step_column: Annotated[str, typer.Option("--step-column", help="Optimizer-step column.")] = "_step",
    tokens_column: Annotated[str | None, typer.Option("--tokens-column", help="Training-tokens-seen column.")] = None,
    tokens_per_step: ImportTokensPerStep = None,
    flops_column: Annotated[str | None, typer.Option("--flops-column", help="Training-FLOPs column.")] = None,
    flops_unit: Annotated[str, typer.Option("--flops-unit", help="FLOPs per unit of --flops-column (GFLOPs: 1e9).")] = "1",
    params_kind: ImportParamsKind = "unknown",
    family: ImportFamily = "default",
    recipe: ImportRecipe = "default",
    name: Annotated[str | None, typer.Option("--name", help="Run name (default: the file stem; one file only).")] = None,
    chance: ImportChance = None,
    overwrite: ImportOverwrite = False,
    json_out: ImportJson = False,
) -> None:
    """Import wide per-run CSVs (W&B exports): columns mapped to skills by regex."""
    _write_imported(lambda: import_wide_csv(
        files, params=_required_quantity(params, "--params", "the model's parameter count, e.g. --params 1279395840"),
        accuracy_columns=accuracy_columns, loss_columns=loss_columns, metric_columns=metric_columns,
        step_column=step_column, tokens_column=tokens_column,
        tokens_per_step=None if tokens_per_step is None else parse_quantity(tokens_per_step, what="--tokens-per-step"),
        flops_column=flops_column, flops_unit=_unit_quantity(flops_unit, "--flops-unit"),
        family=family, recipe=Recipe(recipe), name=name, params_kind=check_params_kind(params_kind),
        chance=parse_chance_overrides(chance or []),
    ), out, overwrite, json_out)


@command(import_app, "table")
def import_table_command(
    file: Annotated[Path, typer.Argument(help="Leaderboard CSV, one row per model.")],
    out: ImportOut = None,
    name_column: Annotated[str | None, typer.Option("--name-column", help="Model-name column (required).")] = None,
    family_column: Annotated[str | None, typer.Option("--family-column", help="Model-family column.")] = None,
    params_column: Annotated[str | None, typer.Option("--params-column", help="Parameter-count column (required).")] = None,
    params_unit: Annotated[str, typer.Option("--params-unit", help="Parameters per unit of --params-column (billions: 1e9).")] = "1",
    tokens_column: Annotated[str | None, typer.Option("--tokens-column", help="Training-tokens column.")] = None,
    tokens_unit: Annotated[str, typer.Option("--tokens-unit", help="Tokens per unit of --tokens-column (trillions: 1e12).")] = "1",
    flops_column: Annotated[str | None, typer.Option("--flops-column", help="Training-FLOPs column.")] = None,
    flops_unit: Annotated[str, typer.Option("--flops-unit", help="FLOPs per unit of --flops-column (e.g. 1e21).")] = "1",
    skills: Annotated[str | None, typer.Option("--skills", help="Benchmark columns, A,B,C (default: all other columns).")] = None,
    missing_tokens: Annotated[str, typer.Option(
        "--missing-tokens", help="A model with neither tokens nor FLOPs: error, skip it, or keep it with unknown tokens.")] = "error",
    params_kind: ImportParamsKind = "unknown",
    family: ImportFamily = "default",
    recipe: ImportRecipe = "default",
    chance: ImportChance = None,
    overwrite: ImportOverwrite = False,
    json_out: ImportJson = False,
) -> None:
    """Import a leaderboard table: one single-checkpoint run per model."""
    for flag, value in (("--name-column", name_column), ("--params-column", params_column)):
        if value is None:
            raise UsageError(f"{flag} is required: the column holding {'model names' if 'name' in flag else 'model sizes'}")
    _write_imported(lambda: import_table(
        file, name_column=name_column, params_column=params_column, params_unit=_unit_quantity(params_unit, "--params-unit"),
        family_column=family_column, family=family, tokens_column=tokens_column,
        tokens_unit=_unit_quantity(tokens_unit, "--tokens-unit"), flops_column=flops_column,
        flops_unit=_unit_quantity(flops_unit, "--flops-unit"),
        skills=None if skills is None else [s.strip() for s in skills.split(",") if s.strip()],
        recipe=Recipe(recipe), params_kind=check_params_kind(params_kind),
        chance=parse_chance_overrides(chance or []), missing_tokens=missing_tokens,
    ), out, overwrite, json_out)


@command(import_app, "long")
def import_long_command(
    file: Annotated[Path, typer.Argument(help="Tidy CSV, one row per model × checkpoint × task × metric.")],
    out: ImportOut = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Accuracy metric, repeatable as a preference list (default: acc).")] = None,
    shots: Annotated[int | None, typer.Option("--shots", help="Keep only rows with this many few-shot examples.")] = None,
    model_column: Annotated[str, typer.Option("--model-column")] = "model",
    step_column: Annotated[str, typer.Option("--step-column")] = "step",
    task_column: Annotated[str, typer.Option("--task-column")] = "task",
    metric_column: Annotated[str, typer.Option("--metric-column")] = "metric",
    value_column: Annotated[str, typer.Option("--value-column")] = "value",
    params_column: Annotated[str, typer.Option("--params-column", help="e.g. nonembedding_params")] = "params",
    family_column: Annotated[str | None, typer.Option("--family-column", help="[default: family, if present]")] = None,
    tokens_column: Annotated[str | None, typer.Option("--tokens-column", help="[default: tokens, if present]")] = None,
    flops_column: Annotated[str | None, typer.Option("--flops-column", help="[default: flops, if present]")] = None,
    stderr_column: Annotated[str | None, typer.Option("--stderr-column", help="[default: stderr, if present]")] = None,
    n_column: Annotated[str | None, typer.Option("--n-column", help="Sample counts [default: n, if present]")] = None,
    shots_column: Annotated[str | None, typer.Option("--shots-column", help="[default: shots, if present]")] = None,
    tokens_per_step: ImportTokensPerStep = None,
    params_kind: ImportParamsKind = "unknown",
    family: ImportFamily = "default",
    recipe: ImportRecipe = "default",
    chance: ImportChance = None,
    overwrite: ImportOverwrite = False,
    json_out: ImportJson = False,
) -> None:
    """Import a tidy evaluation table (one row per model × checkpoint × task × metric); one run per model."""
    columns = LongColumns(
        model=model_column, step=step_column, task=task_column, metric=metric_column, value=value_column,
        params=params_column, family=family_column, tokens=tokens_column, flops=flops_column,
        stderr=stderr_column, n=n_column, shots=shots_column,
    )
    _write_imported(lambda: import_long(
        file, columns=columns, metrics=tuple(metric) if metric else ("acc",), shots=shots,
        tokens_per_step=None if tokens_per_step is None else parse_quantity(tokens_per_step, what="--tokens-per-step"),
        family=family, recipe=Recipe(recipe), params_kind=check_params_kind(params_kind),
        chance=parse_chance_overrides(chance or []),
    ), out, overwrite, json_out)


# ============================================================================ pilot
# (pilot trainer: `forecast pilot`)


@command(app, "pilot")
def pilot(
    directory: Path = typer.Argument(None, help="With --status: a ladder directory, OUT/<ladder name>."),
    preset: str = typer.Option(None, "--preset", help="Built-in ladder: tiny, demo, formats, formats_cpu, curriculum, curriculum_cpu."),
    config: Path = typer.Option(None, "--config", help="Ladder config file (.toml or .json); see README 'Pilot runs'."),
    out: Path = typer.Option(Path("runs"), "--out", help="Runs go to OUT/<ladder name>/<run name>/."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    seeds: int = typer.Option(None, "--seeds", min=1, help="Train seeds 0..K-1 (default: the config's seeds)."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads for torch per run (default: one per core; "
                                "with --jobs N, cores // N; on Slurm, 1). Runs are identical for equal thread counts."),
    executor: str = typer.Option("local", "--executor", help="local: this machine; slurm: one Slurm job per run "
                                 "(submitit); submitit-local: the Slurm jobs as local processes, without a cluster."),
    jobs: int = typer.Option(1, "--jobs", help="Runs at once with --executor local (a process pool; on GPUs one run "
                             "per GPU); 1 trains them in turn in this process."),
    status: bool = typer.Option(False, "--status", help="Show which runs are finished, running, failed or pending, and exit."),
    partition: str = typer.Option(None, "--partition", help="Slurm partition (default: the cluster's)."),
    time_min: int = typer.Option(60, "--time", help="Slurm time limit per run, in minutes; a job that hits it requeues and resumes."),
    gpus_per_task: int = typer.Option(None, "--gpus-per-task", help="GPUs per Slurm job (default: 1 with --device cuda, else 0)."),
    array_parallelism: int = typer.Option(64, "--array-parallelism", help="Most Slurm array tasks running at once."),
    wait_jobs: bool = typer.Option(False, "--wait", help="With --executor slurm: wait for the jobs and print the summary."),
    show_config: bool = typer.Option(False, "--show-config", help="Print the ladder config as JSON (usable with --config) and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train a pilot ladder of small transformers on synthetic skills, writing runs as they train.

    Rerunning the same command resumes an interrupted ladder and skips finished runs."""
    from forecast.pilot import load_ladder, preset_names, preset_ladder
    from forecast.pilot.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor}: unknown executor; use {', '.join(EXECUTORS)}")
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: give a positive number of parallel runs, e.g. --jobs 2")
    if status and directory is not None and preset is None and config is None:
        _print_sweep_status(directory, None, as_json)
        return
    if directory is not None:
        raise UsageError(f"{directory}: a directory argument goes with --status alone; to train, "
                         "give --preset or --config (and --out)")
    if (preset is None) == (config is None):
        raise UsageError(f"give exactly one of --preset ({', '.join(preset_names())}) or --config FILE"
                         + (", or a ladder directory with --status" if status else ""))
    ladder = preset_ladder(preset) if preset is not None else load_ladder(config)
    if show_config:
        print_json(ladder.to_json())
        return
    specs = ladder.run_specs(seeds)
    family_dir = out / ladder.name
    if status:
        _print_sweep_status(family_dir, specs, as_json)
    elif executor == "local":
        _pilot_local(ladder, specs, family_dir, device, threads, jobs, as_json)
    else:
        _pilot_submitit(ladder, specs, family_dir, executor, device, threads, as_json, wait_jobs or executor != "slurm",
                        partition, time_min, gpus_per_task, array_parallelism)


def _pilot_local(ladder: Any, specs: list[Any], family_dir: Path, device: str, threads: int | None, jobs: int,
                 as_json: bool) -> None:
    """Train on this machine: in turn (--jobs 1), or in a process pool."""
    from forecast.pilot import resolve_device
    from forecast.pilot.executors import check_jobs, default_threads, make_jobs, run_pool, run_sequential
    from forecast.pilot.sweep import SweepError, record_sweep

    torch_device = resolve_device(device)
    check_jobs(jobs, torch_device)
    if jobs == 1:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        log.print(f"pilot ladder [bold]{ladder.name}[/]: {len(specs)} runs on {torch_device.type} -> {family_dir}")
        with _pilot_progress() as (bars, report):
            overall = bars.add_task("ladder", total=len(specs), info="")
            paths = []
            for job in make_jobs(specs, family_dir, torch_device.type, None):
                bars.update(overall, description=f"ladder ({job.spec.name})")
                paths.extend(run_sequential([job], report))
                bars.advance(overall)
        _print_pilot_summary([load_run(p) for p in paths], as_json)
        return
    threads = threads or default_threads(jobs)
    record_sweep(family_dir, _swept_ladder(ladder, specs), {"executor": "local", "jobs": jobs, "threads": threads})
    log.print(f"pilot ladder [bold]{ladder.name}[/]: {len(specs)} runs, {jobs} at a time on {torch_device.type} "
              f"({threads} torch thread{'s' if threads > 1 else ''} each) -> {family_dir}")
    with _pilot_progress() as (bars, report):
        overall = bars.add_task("ladder", total=len(specs), info="")
        outcomes = run_pool(make_jobs(specs, family_dir, torch_device.type, threads), jobs, torch_device, report,
                            lambda _: bars.advance(overall))
    _finish_sweep(outcomes, as_json, SweepError)


def _pilot_submitit(ladder: Any, specs: list[Any], family_dir: Path, executor: str, device: str,
                    threads: int | None, as_json: bool, wait: bool, partition: str | None, time_min: int,
                    gpus_per_task: int | None, array_parallelism: int) -> None:
    """Submit the unfinished runs as one submitit job array; wait for them unless on Slurm without --wait."""
    from forecast.pilot.executors import Outcome, SlurmOptions, make_jobs, submit_submitit, submitit_executor, wait_submitit
    from forecast.pilot.sweep import FAILED, FINISHED, PENDING, SweepError, counts, record_sweep, sweep_status

    if device not in ("auto", "cpu", "cuda"):  # resolved on the node that runs each job
        raise UsageError(f"--device: unknown device {device!r}; use auto, cpu or cuda")
    for flag, value in (("--time", time_min), ("--array-parallelism", array_parallelism)):
        if value < 1:
            raise UsageError(f"{flag} {value}: give a positive number")
    if gpus_per_task is not None and gpus_per_task < 0:
        raise UsageError(f"--gpus-per-task {gpus_per_task}: give 0 or more GPUs")
    gpus = gpus_per_task if gpus_per_task is not None else int(device == "cuda")
    threads = threads or 1
    options = SlurmOptions(partition=partition, time_min=time_min, gpus_per_task=gpus, cpus_per_task=threads,
                           array_parallelism=array_parallelism, job_name=f"pilot-{ladder.name}")
    cluster = "slurm" if executor == "slurm" else "local"
    submitter = submitit_executor(cluster, family_dir / ".submitit", options)
    statuses = sweep_status(family_dir, specs)
    todo = [spec for spec, st in zip(specs, statuses) if st.state in (FAILED, PENDING)]
    finished = [spec for spec, st in zip(specs, statuses) if st.state == FINISHED]
    state = counts(statuses)
    log.print(f"pilot ladder [bold]{ladder.name}[/]: {len(specs)} runs ({state['finished']} finished, "
              f"{state['running']} running); submitting {len(todo)} via submitit ({cluster}) -> {family_dir}")
    run_jobs = make_jobs(todo, family_dir, device, threads)
    submitted = submit_submitit(run_jobs, submitter)
    job_ids = {job.spec.name: handle.job_id for job, handle in zip(run_jobs, submitted)}
    record_sweep(family_dir, _swept_ladder(ladder, specs),
                 {"executor": executor, "threads": threads, "gpus_per_task": gpus, "job_ids": job_ids})
    if not wait:
        if as_json:
            print_json({"submitted": job_ids, "ladder_dir": str(family_dir)})
        else:
            console.print(f"submitted {len(job_ids)} job(s): {', '.join(job_ids.values()) or '-'}; "
                          f"follow with: forecast pilot --status {family_dir}")
        return
    with _pilot_progress() as (bars, _):
        overall = bars.add_task("ladder", total=len(run_jobs), info="")
        outcomes = wait_submitit(run_jobs, submitted, grace_s=15.0 if cluster == "slurm" else 2.0, done=lambda _: bars.advance(overall))
    by_name = {o.name: o for o in [*(Outcome(s.name, family_dir / s.name) for s in finished), *outcomes]}
    _finish_sweep([by_name[s.name] for s in specs if s.name in by_name], as_json, SweepError)


def _swept_ladder(ladder: Any, specs: list[Any]) -> dict[str, Any]:
    """The ladder config with the seeds actually run (for `.sweep.json`)."""
    return ladder.to_json() | {"seeds": sorted({s.seed for s in specs})}


def _finish_sweep(outcomes: list[Any], as_json: bool, error: type[Exception]) -> None:
    """Summary of the runs that finished; then one line naming the failed ones, if any."""
    _print_pilot_summary([load_run(o.path) for o in outcomes if o.error is None], as_json)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise error(f"{len(failed)} of {len(outcomes)} runs failed ({'; '.join(f'{o.name}: {o.error}' for o in failed)}); "
                    "fix and rerun the same command: only unfinished runs run again")


def _print_sweep_status(family_dir: Path, specs: list[Any] | None, as_json: bool) -> None:
    """`forecast pilot --status`: one row per run, its state and what it is doing."""
    from forecast.pilot.sweep import counts, sweep_status

    statuses = sweep_status(family_dir, specs)
    tally = counts(statuses)
    if as_json:
        print_json({"ladder_dir": str(family_dir), "counts": tally, "runs": [s.to_json() for s in statuses]})
        return
    table = RichTable(title=f"{_n_runs(len(statuses))} in {family_dir}", title_justify="left",
                      caption=", ".join(f"{v} {k}" for k, v in tally.items()), caption_justify="left",
                      box=rich_box.SIMPLE_HEAD, pad_edge=False)
    for header in ("run", "state", "evaluated to step", "detail"):
        table.add_column(header, overflow="fold", no_wrap=header in ("run", "state"),
                         justify="right" if header.startswith("evaluated") else "left")
    for s in statuses:
        step = "-" if s.step is None else f"{s.step}/{s.steps if s.steps is not None else '?'}"
        table.add_row(s.name, s.state, step, s.detail)
    console.print(table)


@contextlib.contextmanager
def _pilot_progress() -> Any:
    """Rich progress bars on stderr: the ladder, and the current run's steps with tokens/s and
    per-skill accuracy at the latest evaluation."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=log, transient=False) as bars:
        tasks: dict[str, Any] = {}

        def report(p: Any) -> None:
            if p.run not in tasks:
                tasks[p.run] = bars.add_task(p.run, total=p.steps, info="")
            acc = " ".join(f"{k} {v:.2f}" for k, v in p.accuracy.items())
            info = "complete, skipped" if p.status == "skipped" else f"{p.tokens_per_second:,.0f} tok/s  {acc}"
            bars.update(tasks[p.run], completed=p.step, info=info)

        yield bars, report


def _print_pilot_summary(runs: list[Any], as_json: bool) -> None:
    """Final accuracy per run and skill (stdout)."""
    rows = [{"name": r.name, "path": str(r.path), "params": r.params, "tokens": r.final_tokens,
             "flops": r.final_flops, "accuracy": {s: float(r.series[s].accuracy[-1]) for s in r.skills}}
            for r in runs]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    from forecast.quantities import format_count, format_flops

    skills = list(rows[0]["accuracy"]) if rows else []
    table = Table(title="pilot runs (final accuracy)")
    for column in ("run", "params", "tokens", "FLOPs", *skills):
        table.add_column(column, justify="left" if column == "run" else "right")
    for row in rows:
        table.add_row(row["name"], format_count(row["params"]), format_count(row["tokens"]), format_flops(row["flops"]),
                      *(f"{row['accuracy'][s]:.2f}" for s in skills))
    console.print(table)


# ============================================================================ fit
# (fitting engine: `forecast fit`)


FitsDir = Annotated[Path, typer.Option("--fits", help="Directory of fits written by `forecast fit`.")]
FamilyOpt = Annotated[str | None, typer.Option("--family", help="Which family, when the fits or runs hold several.")]
RecipeOpt = Annotated[str | None, typer.Option("--recipe", help="Which data recipe, when there are several.")]
SkillOpt = Annotated[list[str] | None, typer.Option("--skill", help="Skill (repeatable, case-insensitive) or `all`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
IntervalOpt = Annotated[float, typer.Option("--interval", help="Central probability of the intervals.")]
DrawsOpt = Annotated[int, typer.Option("--draws", help="Bootstrap draws per candidate law.")]


def _fit_options(draws: int, seed: int, laws: str | None, smooth: bool, skip_fraction: float,
                 min_sizes: int) -> FitOptions:
    chosen = tuple(x.strip() for x in laws.split(",")) if laws else ALL_LAWS
    return FitOptions(laws=chosen, draws=draws, seed=seed, smooth=smooth, skip_fraction=skip_fraction,
                      min_sizes=min_sizes)


def _fit_row(sf: SkillFit) -> dict[str, Any]:
    """The summary `forecast fit` prints per skill (and its --json shape)."""
    best = sf.candidates[0] if sf.candidates else None
    grok = pilot_grok_point(sf) if sf.predictable else None
    return {
        "skill": sf.skill, "family": sf.family, "recipe": sf.recipe, "status": sf.status, "law": sf.chosen,
        "holdout_mae": None if best is None else best.holdout_mae,
        "grok_tokens_at_largest_pilot": None if grok is None else grok.tokens,
        "largest_pilot_params": max(sf.sizes) if sf.pilots else None,
        "why": sf.why or None, "reason": sf.reason, "warnings": list(sf.warnings),
    }


@command(app, "fit")
def fit_command(
    runs_dir: Annotated[Path, typer.Argument(help="Runs directory (from `forecast import` or `forecast pilot`).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the fits (merged with groups already there).")] = Path("fits"),
    skill: SkillOpt = None,
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    draws: DrawsOpt = FitOptions.draws,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap (fits are reproducible).")] = 0,
    laws: Annotated[str | None, typer.Option("--laws", help=f"Candidate laws, comma-separated: {', '.join(ALL_LAWS)}.")] = None,
    smooth: Annotated[bool, typer.Option("--smooth", help="Make accuracy non-decreasing in tokens per run first.")] = False,
    skip_fraction: Annotated[float, typer.Option("--skip-fraction", help="Ignore checkpoints before this fraction of a run's tokens (warm-up).")] = FitOptions.skip_fraction,
    min_sizes: Annotated[int, typer.Option("--min-sizes", help="Fewest model sizes to forecast from.")] = FitOptions.min_sizes,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write a PNG of the grok point against model size, per group.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fit every skill's transition, choose laws by how well they extrapolate, write fits/."""
    options = _fit_options(draws, seed, laws, smooth, skip_fraction, min_sizes)
    runs = load_runs(runs_dir)
    with log.status(f"fitting {len(runs)} runs"):
        fits = fit_runs(runs, skills=skill, family=family, recipe=recipe, options=options)
    fits.save(out)
    if plot is not None:
        from forecast import plots

        for i, (fam, rec) in enumerate(fits.groups()):
            path = plot if i == 0 else plot.with_name(f"{plot.stem}-{fam}-{rec}{plot.suffix}")
            plots.save(plots.grok_scaling_figure(fits.select(fam, rec)), path)
            log.print(f"wrote {path}")
    rows = [_fit_row(sf) for sf in fits.skills]
    if json_out:
        print_json(rows)
        return
    table = RichTable(title=f"fits of {_n_runs(len(runs))} written to {out}", title_justify="left",
                      box=rich_box.SIMPLE_HEAD, pad_edge=False)
    for header in ("family", "skill", "status", "law", "hold-out err", "grok at largest pilot", "note"):
        table.add_column(header, overflow="fold", no_wrap=header in ("skill", "status"))
    for r in rows:
        grok = "-" if r["grok_tokens_at_largest_pilot"] is None else \
            f"{format_count(r['grok_tokens_at_largest_pilot'])} tokens"
        err = "-" if r["holdout_mae"] is None else f"{100 * r['holdout_mae']:.1f} pts"
        note = r["reason"] or (r["warnings"][0] if r["warnings"] else "")
        table.add_row(r["family"], r["skill"], r["status"], r["law"] or "-", err, grok, note)
    console.print(table)


# ============================================================================ forecasts
# (`forecast predict`, `forecast plan`, `forecast backtest`, `forecast demo`)


def _interval_text(i: Any, pct: bool = True) -> str:
    if i is None:
        return "-"
    f = (lambda v: f"{100 * v:.1f}") if pct else format_count
    high = "beyond" if i.high == float("inf") else f(i.high)  # an interval with no upper end (never within the horizon)
    return f"{f(i.median)} [{f(i.low)}–{high}]"


def _forecast_table(forecasts: list[SkillForecast], title: str) -> RichTable:
    level = forecasts[0].level if forecasts else 0.8
    table = RichTable(title=title, title_justify="left", box=rich_box.SIMPLE_HEAD, pad_edge=False)
    for header in ("skill", "status", f"accuracy % [{level:.0%}]", "groks at tokens [interval]", "groks at FLOPs",
                   "P(grok)", "law"):
        table.add_column(header, overflow="fold", no_wrap=header in ("skill", "status"))
    notes = []
    for f in forecasts:
        if f.grok is None:
            grok, grok_flops = ("never within 100× the budget" if f.accuracy is not None else "-"), "-"
        else:
            high = "beyond" if f.grok.high_tokens is None else format_count(f.grok.high_tokens)
            grok = f"{format_count(f.grok.tokens)} [{format_count(f.grok.low_tokens)}–{high}]"
            grok_flops = format_flops(f.grok.flops)
        p = "-" if f.p_grok is None else f"{f.p_grok:.2f}"
        table.add_row(f.skill, f.status, _interval_text(f.accuracy), grok, grok_flops, p, (f.chosen or "-").split("[")[0])
        if f.reason:
            notes.append(f"{f.skill}: {f.reason}")
    shared = {w for f in forecasts for w in f.warnings if "compute is" in w or "smaller than every" in w}
    notes += [f"{f.skill}: {w}" for f in forecasts for w in f.warnings if "earliest any pilot" in w]
    notes += sorted(shared)
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table


@command(app, "predict")
def predict_command(
    params: Annotated[str, typer.Option("--params", help="Target model size in parameters: 70B, 410M, 7e10.")],
    tokens: Annotated[str | None, typer.Option("--tokens", help="Planned training tokens: 2T, 300B.")] = None,
    compute: Annotated[str | None, typer.Option("--compute", help="Planned training FLOPs: 1e24.")] = None,
    skill: SkillOpt = None,
    fits_dir: FitsDir = Path("fits"),
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    interval: IntervalOpt = 0.8,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Accuracy that counts as grokked (default: half way from chance to plateau).")] = None,
    tokens_per_param: Annotated[float, typer.Option("--tokens-per-param", help="Compute-optimal tokens per parameter when neither --tokens nor --compute is given.")] = TOKENS_PER_PARAM,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write a PNG of trajectories, fits and the forecast band.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """When and whether a model of --params groks each skill, and its accuracy at the end of training."""
    target = parse_quantity(params, what="--params")
    planned_tokens = None if tokens is None else parse_quantity(tokens, what="--tokens")
    planned_flops = None if compute is None else parse_quantity(compute, what="--compute")
    fits = Fits.load(fits_dir)
    forecasts = predict_fits(fits, target, tokens=planned_tokens, flops=planned_flops, skills=skill or ["all"],
                             family=family, recipe=recipe, level=interval, threshold=threshold,
                             tokens_per_param=tokens_per_param)
    if plot is not None:
        _plot_forecast(fits, forecasts, plot)
    if json_out:
        print_json([f.to_json() for f in forecasts])
        return
    f0 = forecasts[0]
    how = "given" if tokens or compute else f"compute-optimal, {tokens_per_param:g} tokens/param"
    console.print(_forecast_table(forecasts, f"{f0.family}/{f0.recipe} → {format_count(f0.params)} params, "
                                  f"{format_count(f0.tokens)} tokens ({how}), {format_flops(f0.flops)} FLOPs "
                                  f"({f0.extrapolation:.3g}× the largest pilot)"))


def _plot_forecast(fits: Fits, forecasts: list[SkillForecast], path: Path) -> None:
    from forecast import plots

    members = fits.select(forecasts[0].family, forecasts[0].recipe, [f.skill for f in forecasts])
    plots.save(plots.forecast_figure(members, forecasts[0].params, forecasts[0].tokens, forecasts=forecasts,
                                     level=forecasts[0].level), path)
    log.print(f"wrote {path}")


@command(app, "plan")
def plan_command(
    skill: SkillOpt = None,
    target: Annotated[float | None, typer.Option("--target", help="Accuracy to reach (with --skill): smallest compute that gets there.")] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Training FLOPs: what a compute-optimal model at this budget groks.")] = None,
    fits_dir: FitsDir = Path("fits"),
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    interval: IntervalOpt = 0.8,
    tokens_per_param: Annotated[float, typer.Option("--tokens-per-param", help="Compute-optimal tokens per parameter.")] = TOKENS_PER_PARAM,
    json_out: JsonOpt = False,
) -> None:
    """Compute-budget planning: `--skill S --target 0.6`, or `--budget 1e24`."""
    fits = Fits.load(fits_dir)
    if (target is None) == (budget is None):
        raise UsageError("give either --skill S --target ACC, or --budget FLOPS")
    if target is not None:
        if not skill or len(skill) != 1 or skill[0].lower() == "all":
            raise UsageError("--target needs exactly one --skill")
        result = plan_target(fits, skill[0], target, family=family, recipe=recipe, level=interval,
                             tokens_per_param=tokens_per_param)
        if json_out:
            print_json(result.to_json())
            return
        if result.flops is None:
            console.print(f"{result.skill} ≥ {target:g}: {result.status}: {result.reason}")
            return
        high = "beyond reach" if result.flops.high == float("inf") else format_flops(result.flops.high)
        console.print(
            f"{result.family}/{result.recipe}: {result.skill} reaches {target:g} at {format_flops(result.flops.median)} "
            f"FLOPs [{format_flops(result.flops.low)}–{high}, {interval:.0%}] on the compute-optimal path: "
            f"{format_count(result.params)} params × {format_count(result.tokens)} tokens "
            f"({result.tokens_per_param:g} tokens/param; {100 * result.reachable:.0f}% of samples reach it).")
        return
    flops = parse_quantity(budget, what="--budget")
    result = plan_budget(fits, flops, skills=skill, family=family, recipe=recipe, level=interval,
                         tokens_per_param=tokens_per_param)
    if json_out:
        print_json(result.to_json())
        return
    console.print(_forecast_table(list(result.forecasts), f"budget {format_flops(flops)} FLOPs → compute-optimal "
                                  f"{format_count(result.params)} params × {format_count(result.tokens)} tokens"))


@command(app, "backtest")
def backtest_command(
    runs_dir: Annotated[Path, typer.Argument(help="Runs directory.")],
    holdout: Annotated[str, typer.Option("--holdout", help="Held-out sizes: largest, largest:K, or params>=X.")] = "largest",
    skill: SkillOpt = None,
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    interval: IntervalOpt = 0.8,
    draws: DrawsOpt = FitOptions.draws,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write a PNG of held-out actual vs forecast.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Hold out the largest model(s), fit the rest, and score the forecasts against two baselines."""
    runs = load_runs(runs_dir)
    with log.status("backtesting"):
        result = backtest_runs(runs, holdout=holdout, family=family, recipe=recipe, skills=skill,
                               options=FitOptions(draws=draws), level=interval)
    if plot is not None:
        from forecast import plots

        plots.save(plots.backtest_figure(result), plot)
        log.print(f"wrote {plot}")
    summary = result.summary()
    if json_out:
        print_json({"holdout": holdout, "interval": interval, "summary": summary,
                    "summary_trajectory": result.summary(final=False), "skills": [{
            "skill": s.skill, "family": s.family, "recipe": s.recipe, "status": s.status, "law": s.law,
            "reason": s.reason, "mae": s.mae(), "carry_mae": s.mae("carry"), "loglinear_mae": s.mae("loglinear"),
            "grok_log10_errors": list(s.grok_errors),
            "points": [p.__dict__ | {"covered": p.covered} for p in s.points]} for s in result.skills]})
        return
    table = RichTable(title=f"backtest, held out: {holdout} ({', '.join(n for v in result.held_out.values() for n in v)})",
                      title_justify="left", box=rich_box.SIMPLE_HEAD, pad_edge=False)
    for header in ("family", "skill", "law", "actual", f"forecast [{interval:.0%}]", "error", "covered",
                   "carry err", "loglin err", "grok err (×)"):
        table.add_column(header, overflow="fold")
    pts = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    for s in result.skills:
        finals = [p for p in s.points if p.final]
        last = max(finals, key=lambda p: p.params, default=None) if finals else None
        if last is None:
            continue
        forecast_cell = "-" if last.predicted is None else f"{pts(last.predicted)} [{pts(last.low)}–{pts(last.high)}]"
        grok = "-" if not s.grok_errors else f"{10 ** abs(s.grok_errors[-1]):.2f}"
        table.add_row(s.family, s.skill, (s.law or "not-predictable").split("[")[0], pts(last.actual), forecast_cell,
                      pts(s.mae()), "-" if last.covered is None else ("yes" if last.covered else "no"),
                      pts(s.mae("carry")), pts(s.mae("loglinear")), grok)
    table.caption = (f"final checkpoints, accuracy points: MAE {pts(summary['mae'])} (carry {pts(summary['carry_mae'])}, "
                     f"log-linear {pts(summary['loglinear_mae'])}); mean relative error {pts(summary['relative_error'])}%; "
                     f"{interval:.0%} interval coverage {pts(summary['coverage'])}% of all held-out checkpoints; "
                     f"{summary['predicted']}/{summary['skills']} skills predictable")
    table.caption_justify = "left"
    console.print(table)


@command(app, "demo")
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Writes OUT/runs/demo/ (pilot runs) and OUT/fits/.")] = Path("out/demo"),
    params: Annotated[str, typer.Option("--params", help="Target model size in non-embedding parameters.")] = "1M",
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")] = "auto",
    json_out: JsonOpt = False,
) -> None:
    """The main job: train the `demo` pilot ladder, fit every skill, forecast a larger model.

    Rerunning skips finished pilot runs; `forecast predict --fits OUT/fits` forecasts other sizes."""
    from forecast.demo import run_demo
    from forecast.pilot import resolve_device

    target = parse_quantity(params, what="--params")
    torch_device = resolve_device(device)
    log.print(f"pilot ladder [bold]demo[/] on {torch_device.type} → {out / 'runs' / 'demo'}, then fits → {out / 'fits'}")
    with _pilot_progress() as (_, report):
        result = run_demo(out, target, torch_device, report)
    if json_out:
        print_json({"runs": str(result.runs_dir), "fits": str(result.fits_dir),
                    "fit": [_fit_row(sf) for sf in result.fits.skills],
                    "forecast": [f.to_json() for f in result.forecasts]})
        return
    _print_pilot_summary(result.runs, as_json=False)
    f0 = result.forecasts[0]
    console.print(_forecast_table(result.forecasts, f"forecast: {format_count(f0.params)} params, "
                                  f"{format_count(f0.tokens)} tokens (compute-optimal, {TOKENS_PER_PARAM:g} tokens/param), "
                                  f"{format_flops(f0.flops)} FLOPs ({f0.extrapolation:.3g}× the largest pilot)"))
    log.print(f"next: forecast predict --fits {result.fits_dir} --params 10M --skill all --plot forecast.png")


# ============================================================================ compare
# (`forecast compare`)


@command(app, "compare")
def compare_command(
    runs_dir: Annotated[Path, typer.Argument(help="Runs directory with several recipes (or families).")],
    by: Annotated[str, typer.Option("--by", help="What differs between the compared groups: recipe or family.")] = "recipe",
    skill: SkillOpt = None,
    family: FamilyOpt = None,
    recipe: RecipeOpt = None,
    target_params: Annotated[str | None, typer.Option("--target-params", help="Extrapolate to this size in parameters: 70B, 1M.")] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="Recipe to compare against (default: the fastest at the largest pilot size).")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Accuracy that counts as grokked (default: half way from floor to plateau, per recipe).")] = None,
    interval: IntervalOpt = 0.8,
    draws: DrawsOpt = FitOptions.draws,
    laws: Annotated[str | None, typer.Option("--laws", help=f"Candidate laws, comma-separated: {', '.join(ALL_LAWS)}.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write a PNG: trajectories and grok tokens vs size per recipe.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Which recipe makes each skill grok sooner, by how much, and whether that holds at the target size."""
    from forecast.compare import compare

    target = None if target_params is None else parse_quantity(target_params, what="--target-params")
    runs = load_runs(runs_dir)
    with log.status(f"fitting {len(runs)} runs"):
        fits = fit_runs(runs, family=family, recipe=recipe,
                        options=_fit_options(draws, 0, laws, False, FitOptions.skip_fraction, FitOptions.min_sizes))
    results = compare(fits, by=by, skills=skill, family=family, recipe=recipe, target_params=target,
                      baseline=baseline, threshold=threshold, level=interval)
    if plot is not None:
        from forecast import plots
        from forecast.compare_plot import compare_figure

        plots.save(compare_figure(results, fits), plot)
        log.print(f"wrote {plot}")
    if json_out:
        print_json([c.to_json() for c in results])
        return
    for c in results:
        table = RichTable(title=f"{c.skill}: tokens to grok threshold by {c.by} ({c.fixed}), baseline {c.baseline}",
                          title_justify="left", box=rich_box.SIMPLE_HEAD, pad_edge=False)
        sizes = sorted({s.params for s in c.speeds}, key=float)
        table.add_column(c.by)
        for n in sizes:
            pilot = any(s.pilot for s in c.speeds if s.params == n)
            table.add_column(f"{format_count(n)}{'' if pilot else ' (target)'}", overflow="fold")
        for group in sorted({s.group for s in c.speeds}):
            cells = []
            for n in sizes:
                sp = next(s for s in c.speeds if s.group == group and s.params == n)
                cells.append("never" if sp.tokens is None else _interval_text(sp.tokens, pct=False))
            table.add_row(group, *cells)
        for group, why in c.not_predictable.items():
            table.add_row(group, *(["not predictable"] + [""] * (len(sizes) - 1)))
        table.caption = "\n".join([v.text for v in c.verdicts] + [f"{g}: {why}" for g, why in c.not_predictable.items()])
        table.caption_justify = "left"
        console.print(table)

if __name__ == "__main__":
    app()
