"""`forecast runs` and `forecast import ...`: the run store and the importers (thin shells)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from forecast.cli.common import JsonOpt, console, log, output_dir, plural, print_json, required
from forecast.cli.render import runs_table
from forecast.quantities import parse_quantity

import_app = typer.Typer(help="Import evaluation results as runs (one directory per run).", no_args_is_help=True)

def _out_path(value: str | None) -> Path | None:
    """`--out DIR` read as text, so that an empty value is refused (as a Path it would be '.')."""
    if value is None:
        return None
    if not value.strip():
        raise typer.BadParameter("empty path; give the runs directory to write into, e.g. --out runs/",
                                 param_hint="'--out'")
    return Path(value)


def _label(flag: str) -> Callable[[str], str]:
    """A family or recipe label: non-empty, no control characters (`forecast.runs.model.unsafe_label`)."""
    def check(value: str) -> str:
        from forecast.runs.model import unsafe_label

        why = unsafe_label(value) if value is not None else None
        if why is not None:
            raise typer.BadParameter(f"{value!r} {why}; give a label such as {flag} pythia", param_hint=f"'{flag}'")
        return value
    return check


ImportOut = Annotated[Path | None, typer.Option("--out", parser=_out_path, metavar="DIR",
                                                help="Runs directory to write into (one folder per run).")]
ImportOverwrite = Annotated[bool, typer.Option("--overwrite", help="Replace run folders that already exist in --out.")]
ImportFamily = Annotated[str, typer.Option("--family", callback=_label("--family"), help="Model family / ladder; runs of different families are never pooled.")]
ImportRecipe = Annotated[str, typer.Option("--recipe", callback=_label("--recipe"), help="Data-recipe label.")]
ImportParamsKind = Annotated[str, typer.Option("--params-kind", help="Which parameter count: non-embedding, total or unknown.")]
ImportChance = Annotated[list[str] | None, typer.Option("--chance", help="Chance accuracy, SKILL=VALUE (repeatable); overrides the known table.")]
ImportParams = Annotated[str | None, typer.Option("--params", help="Parameter count: 410M, 4.1e8, 302311424 (required).")]
ImportTokensPerStep = Annotated[str | None, typer.Option("--tokens-per-step", help="Training tokens per optimizer step (Pythia: 2097152).")]
ImportJson = JsonOpt


def runs_command(
    directory: Annotated[Path, typer.Argument(help="A runs directory (or one run directory).")],
    json_out: ImportJson = False,
) -> None:
    """List the runs in DIR: family, recipe, size, tokens, checkpoints and skills."""
    from forecast.runs.checks import implausible
    from forecast.runs.files import scan_runs

    scan = scan_runs(directory)
    summaries = [run.summary() for run in scan.runs]
    notes = [f"{p}: holds a trajectory.csv but no run.json; not a run (left out)" for p in scan.not_runs]
    notes += [f"{p}: {why}" for p, why in scan.skipped]
    notes += [f"{r.name}: training did not finish (complete: false); `forecast fit` leaves it out unless "
              "--allow-incomplete" for r in scan.incomplete]
    odd = {r.name: why for r in scan.runs if (why := implausible(r)) is not None}
    notes += [f"{name}: implausible input: {why}" for name, why in odd.items()]
    if json_out:
        print_json("runs", runs=summaries, not_runs=[str(p) for p in scan.not_runs],
                   incomplete=[r.name for r in scan.incomplete],
                   implausible=[{"name": name, "reason": why} for name, why in odd.items()])
    else:
        console.print(runs_table(summaries, f"{plural(len(summaries), 'run')} in {directory}", notes))


def _write_imported(read: Callable, out: Path | None, overwrite: bool, json_out: bool) -> None:
    """Import, write all-or-nothing, then print what was written (notes only on success)."""
    from forecast.importers import import_and_write
    from forecast.runs.checks import implausible
    from forecast.runs.files import run_summaries

    if out is not None:
        output_dir(out)  # before reading anything
    runs, written, notes = import_and_write(read, out, overwrite)
    notes += [f"{run.name}: implausible input: {why}" for run in runs if (why := implausible(run)) is not None]
    for note in notes:
        log.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    summaries = run_summaries(runs, written)
    if json_out:
        print_json("import", runs=summaries)
    else:
        console.print(runs_table(summaries, f"wrote {plural(len(summaries), 'run')} to {out}"))


def _required_quantity(text: str | None, flag: str, hint: str) -> float:
    return parse_quantity(required(text, flag, hint), what=flag)


def _params_option(items: list[str] | None, example: str = "410M") -> float | dict[str, float]:
    """`--params 410M` (one model), or `--params MODEL=COUNT` repeated (one per model)."""
    from forecast.errors import UsageError
    from forecast.importers import parse_assignments

    items = items or []
    if not items:
        raise UsageError(f"--params is required: the model's parameter count, e.g. --params {example} "
                         "(or --params MODEL=COUNT for each model)")
    if all("=" not in item for item in items):
        if len(items) > 1:
            raise UsageError(f"--params given {len(items)} times without MODEL=: write --params MODEL=COUNT per model")
        return parse_quantity(items[0], what="--params")
    if any("=" not in item for item in items):
        raise UsageError("--params: give one count for one model, or MODEL=COUNT for every model, not both")
    return {model: parse_quantity(count, what=f"--params {model}")
            for model, count in parse_assignments(items, "--params", "pythia-410m=302311424").items()}


def _unit_quantity(text: str, flag: str) -> float:
    return parse_quantity(text, what=flag)


@import_app.command("lm-eval")
def import_lm_eval_command(
    paths: Annotated[list[Path], typer.Argument(help="Results JSON files, or folders of them.")],
    out: ImportOut = None,
    params: Annotated[list[str] | None, typer.Option(
        "--params", help="Parameter count (410M, 4.1e8), or MODEL=COUNT per model when the files hold several "
                         "(repeatable; MODEL is the run name, the model's pretrained, or its folder).")] = None,
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
    samples: Annotated[bool, typer.Option(
        "--samples", help="Also read samples_<task>_<date>.jsonl (lm-eval --log_samples) beside each results file: "
                          "mean probability of the correct choice (prob) and mean NLL of the correct answer (loss).")
    ] = False,
    chance: ImportChance = None,
    overwrite: ImportOverwrite = False,
    json_out: ImportJson = False,
) -> None:
    """Import lm-evaluation-harness results JSON (0.4 or the older per-checkpoint files)."""
    from forecast.importers import check_params_kind, import_lm_eval, parse_assignments, parse_chance_overrides
    from forecast.runs.model import Recipe

    _write_imported(lambda: import_lm_eval(
        paths, params=_params_option(params), samples=samples,
        tokens_per_step=_required_quantity(tokens_per_step, "--tokens-per-step",
                                  "training tokens per optimizer step, e.g. 2097152 for Pythia"),
        params_kind=check_params_kind(params_kind), family=family, recipe=Recipe(recipe), name=name,
        metrics=tuple(metric) if metric else ("acc", "exact_match"),
        chance=parse_chance_overrides(chance or []),
        average=parse_assignments(average or [], "--average", "hendrycksTest-=mmlu"),
    ), out, overwrite, json_out)


@import_app.command("csv")
def import_csv_command(
    files: Annotated[list[Path], typer.Argument(help="Wide CSV files, one run each (one row per step).")],
    out: ImportOut = None,
    params: Annotated[list[str] | None, typer.Option("--params", help="Parameter count: 410M, 4.1e8 (required); for a "
                      "W&B multi-run export, RUN=COUNT for each run (repeatable).")] = None,
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
    from forecast.importers import check_params_kind, import_wide_csv, parse_chance_overrides
    from forecast.runs.model import Recipe

    _write_imported(lambda: import_wide_csv(
        files, params=_params_option(params, "1279395840"),
        accuracy_columns=accuracy_columns, loss_columns=loss_columns, metric_columns=metric_columns,
        step_column=step_column, tokens_column=tokens_column,
        tokens_per_step=None if tokens_per_step is None else parse_quantity(tokens_per_step, what="--tokens-per-step"),
        flops_column=flops_column, flops_unit=_unit_quantity(flops_unit, "--flops-unit"),
        family=family, recipe=Recipe(recipe), name=name, params_kind=check_params_kind(params_kind),
        chance=parse_chance_overrides(chance or []),
    ), out, overwrite, json_out)


@import_app.command("table")
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
    from forecast.errors import UsageError
    from forecast.importers import check_params_kind, import_table, parse_chance_overrides
    from forecast.runs.model import Recipe

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


@import_app.command("long")
def import_long_command(
    file: Annotated[Path, typer.Argument(help="Tidy CSV, one row per model × checkpoint × task × metric.")],
    out: ImportOut = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Accuracy metric, repeatable as a preference list (default: acc).")] = None,
    loss_metrics: Annotated[str, typer.Option(
        "--loss-metrics", help="Loss-like metrics (lower is better) by preference, A,B,...; ppl/perplexity become "
                               "ln(ppl). A task with only a loss is a run-level metric (validation loss).")
    ] = "loss,nll,bpb,ppl,perplexity",
    error_metrics: Annotated[str, typer.Option(
        "--error-metrics", help="Error-rate metrics, A,B,...: accuracy = 1 - value.")] = "error,error_rate,err,1-acc",
    shots: Annotated[int | None, typer.Option("--shots", help="Keep only rows with this many few-shot examples.")] = None,
    where: Annotated[list[str] | None, typer.Option(
        "--where", help="Keep only rows whose COLUMN holds VALUE, COLUMN=VALUE (repeatable).")] = None,
    model_column: Annotated[str, typer.Option("--model-column")] = "model",
    step_column: Annotated[str | None, typer.Option(
        "--step-column", help="[default: step, if present; an empty step is the final checkpoint]")] = None,
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
    chance_column: Annotated[str | None, typer.Option(
        "--chance-column", help="Per-row chance level of the task [default: chance, if present]")] = None,
    tokens_per_step: ImportTokensPerStep = None,
    params_kind: ImportParamsKind = "unknown",
    family: ImportFamily = "default",
    recipe: ImportRecipe = "default",
    chance: ImportChance = None,
    overwrite: ImportOverwrite = False,
    json_out: ImportJson = False,
) -> None:
    """Import a tidy evaluation table (one row per model × checkpoint × task × metric); one run per model."""
    from forecast.importers import LongColumns, check_params_kind, import_long, parse_chance_overrides
    from forecast.importers.long_rows import parse_where
    from forecast.runs.model import Recipe

    columns = LongColumns(
        model=model_column, step=step_column, task=task_column, metric=metric_column, value=value_column,
        params=params_column, family=family_column, tokens=tokens_column, flops=flops_column,
        stderr=stderr_column, n=n_column, shots=shots_column, chance=chance_column,
    )
    _write_imported(lambda: import_long(
        file, columns=columns, metrics=tuple(metric) if metric else ("acc",), shots=shots,
        loss_metrics=_names(loss_metrics), error_metrics=_names(error_metrics), where=parse_where(where or []),
        tokens_per_step=None if tokens_per_step is None else parse_quantity(tokens_per_step, what="--tokens-per-step"),
        family=family, recipe=Recipe(recipe), params_kind=check_params_kind(params_kind),
        chance=parse_chance_overrides(chance or []),
    ), out, overwrite, json_out)


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (empty: none)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())
