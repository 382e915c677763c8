"""Python parameter -> CLI flag, so a library error reads in the CLI's words.

Library messages name what the caller passed in Python, in backticks: `` `holdout` `` or
`` `holdout='largest:2'` `` (see `forecast.errors.UsageError`). `to_cli` rewrites each such
reference to the flag that sets it (`--holdout`, `--holdout largest:2`); anything else in
backticks (`` `forecast fit` ``) is left alone, and so is a name no flag sets.

A Python name set by different flags in different places (`metrics`: `--metric` when
importing, `--skill` in `forecast predict --metric loss`) is renamed by the function on
the call path that gives it the other meaning (`RENAMED_BY`): the nearest one wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FLAGS: dict[str, str] = {
    # fitting and forecasting (forecast.fit, Fits.predict/plan/compare, backtest)
    "skills": "--skill", "family": "--family", "recipe": "--recipe", "pool": "--pool",
    "allow_incomplete": "--allow-incomplete", "params": "--params", "tokens": "--tokens", "flops": "--compute",
    "level": "--interval", "threshold": "--threshold", "tokens_per_param": "--tokens-per-param",
    "target": "--target", "target_params": "--target-params", "target_tokens": "--target-tokens",
    "aggregate": "--aggregate", "by": "--by", "measure": "--measure", "baseline": "--baseline",
    "holdout": "--holdout", "metrics": "--metric",
    # design
    "budget": "--budget", "refine_draws": "--refine-draws",
    "refine": "--refine", "rank_by": "--rank-by", "candidates": "--candidates", "simulations": "--simulations",
    "per_skill": "--draws-per-skill", "skill_fits": "--fits", "draws": "--draws",
    # importers
    "out": "--out", "out_dir": "--out", "overwrite": "--overwrite", "chance": "--chance", "params_kind": "--params-kind",
    "name": "--name", "force": "--force",
    # runs in progress
    "run": "--run", "planned_tokens": "--tokens", "shares": "--partial",
    # the main job
    "train_pilots": "--train-pilots", "samples": "--samples", "average": "--average", "tokens_per_step": "--tokens-per-step",
    "accuracy_columns": "--accuracy-columns", "loss_columns": "--loss-columns",
    "metric_columns": "--metric-columns", "step_column": "--step-column", "tokens_column": "--tokens-column",
    "flops_column": "--flops-column", "name_column": "--name-column", "params_column": "--params-column",
    "family_column": "--family-column", "missing_tokens": "--missing-tokens", "where": "--where",
    "shots": "--shots", "shots_column": "--shots-column", "loss_metrics": "--loss-metrics",
    "error_metrics": "--error-metrics", "metric_column": "--metric-column", "model_column": "--model-column",
    "task_column": "--task-column", "value_column": "--value-column", "stderr_column": "--stderr-column",
    "n_column": "--n-column", "chance_column": "--chance-column",
    # pilot
    "jobs": "--jobs", "device": "--device", "ensemble": "--ensemble", "executor": "--executor",
    "preset": "--preset", "config": "--config", "status": "--status",
}
"""Every Python parameter a library message may name, with the flag that sets it."""

RENAMED_BY: dict[str, dict[str, str]] = {
    "import_table_command": {"skills": "--skills"},  # benchmark columns A,B,C
    "design_command": {"skills": "--skills"},
    "select_losses": {"metrics": "--skill"},  # loss series are chosen with --skill
    "plan_loss": {"target": "--loss"},
    "plan_budget": {"flops": "--budget"},
    "write_ladder": {"path": "--out"},  # the design written as a table or pilot config
    "sweep_status": {"family_dir": "--status"},
}
"""Functions (library or CLI command) under which a name has another flag."""

_REFERENCE = re.compile(r"`([a-z_][a-z0-9_]*)(?:=([^`]*))?`")


def flag_for(parameter: str, call_path: Iterable[str] = ()) -> str | None:
    """The flag that sets `parameter`, given the functions on the call path, innermost first."""
    for function in call_path:
        if parameter in RENAMED_BY.get(function, {}):
            return RENAMED_BY[function][parameter]
    return FLAGS.get(parameter)


def to_cli(message: str, call_path: Iterable[str] = ()) -> str:
    """`message` with each backticked parameter reference written as its flag."""
    path = tuple(call_path)

    def flag(match: re.Match[str]) -> str:
        name, value = match.groups()
        found = flag_for(name, path)
        if found is None:
            return match.group(0)
        if value is None or value == "True":  # `overwrite=True`: the switch alone
            return found
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return f"{found} {value}"

    return _REFERENCE.sub(flag, message)
