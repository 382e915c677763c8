"""Import lm-evaluation-harness results JSON: one run per evaluated model.

Two layouts are read:
- 0.4 (`results_<timestamp>.json`): metrics keyed `"acc,none"`, `"acc_stderr,none"`
  (metric, filter); sample counts in `n-samples`; the checkpoint in `config.model_args`
  (`revision=step1000`, as a dict or a `k=v,k=v` string).
- older per-checkpoint files (`410m_step1000.json`): `{"results": {task: {"acc": ..,
  "acc_stderr": ..}}}`, the step in `config.model_args` or else the file name.

Each task's accuracy is the first metric of the preference list (`acc`, then
`exact_match`) it reports; perplexity (`ppl`, `perplexity`) becomes its loss as ln(ppl),
nats per token, lower is better (LAMBADA's loss is a continuous intermediate for other
skills). Tasks with neither are left out with a `SkippedWarning`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forecast.errors import DataError, UsageError
from forecast.io import MAX_INTEGER, read_json
from forecast.importers.common import (
    Point, build_run, check_overrides_used, describe_sources, note_skipped, sanitize_run_name,
)
from forecast.importers.lm_eval_samples import read_samples, samples_file
from forecast.importers.subtasks import Score, average_subtasks
from forecast.runs.model import Recipe, Run

PERPLEXITY_METRICS = ("ppl", "perplexity")
_STEP = re.compile(r"(?<![A-Za-z])step_?(\d+)(?![\d.])", re.I)
_NOT_METRICS = {"alias", "name", "sample_len", "sample_count"}


@dataclass(frozen=True)
class ResultFile:
    """One results JSON: which model and checkpoint, and each task's metrics."""

    path: Path
    model: str  # `pretrained` from model_args ('' when absent)
    step: int
    metrics: Mapping[str, Mapping[tuple[str, str], float]]  # task -> (metric, filter) -> value
    stderrs: Mapping[str, Mapping[tuple[str, str], float]]  # task -> (metric, filter) -> stderr
    samples: Mapping[str, float] = field(default_factory=dict)  # task -> evaluated sample count
    shots: Mapping[str, int] = field(default_factory=dict)  # task -> few-shot examples
    groups: frozenset[str] = frozenset()  # tasks that aggregate others (0.4 `group_subtasks`)


def import_lm_eval(
    paths: Sequence[str | Path],
    *,
    params: float | Mapping[str, float],
    tokens_per_step: float,
    params_kind: str = "unknown",
    family: str = "default",
    recipe: Recipe | None = None,
    name: str | None = None,
    metrics: Sequence[str] = ("acc", "exact_match"),
    chance: Mapping[str, float] | None = None,
    average: Mapping[str, str] | None = None,
    samples: bool = False,
) -> list[Run]:
    """Read results JSON files (or folders of them) as runs, one per model.

    `params`: parameter count, or for files holding several models a mapping from each
    model (its `pretrained`, or its run name) to its count: one count is never given to
    several models. Tokens seen = step × `tokens_per_step` (Pythia: 2,097,152), FLOPs =
    6 · params · tokens. `metrics`: accuracy metrics by preference, each `name` or
    `name,filter`. `average`: prefix -> skill, e.g. {"hendrycksTest-": "mmlu"} (see
    `subtasks`). `samples`: also read each task's `samples_<task>_<date>.jsonl` beside its
    results file (`lm_eval_samples`): the mean probability of the correct choice as the
    skill's `prob`, and the mean NLL of the correct answer as its `loss`. The run is named
    `name`, else the last part of the model's `pretrained`.
    """
    if not metrics:
        raise UsageError("`metrics`: give at least one accuracy metric, e.g. `metrics='acc'`", parameter="metrics")
    files = [read_result_file(p) for p in find_result_files(paths)]
    by_model: dict[str, list[ResultFile]] = {}
    for result in files:
        by_model.setdefault(result.model, []).append(result)
    if name is not None and len(by_model) > 1:
        raise UsageError(f"`name={name!r}`: the files hold {len(by_model)} models ({', '.join(sorted(by_model))}); "
                         "import them one model at a time")
    chance = dict(chance or {})
    names = {model: name or sanitize_run_name(model.rstrip("/").split("/")[-1] or model_files[0].path.parent.name)
             for model, model_files in by_model.items()}
    folders = {model: {f.path.parent.name for f in model_files} for model, model_files in by_model.items()}
    sizes = _params_per_model(params, names, {m: sorted(f)[0] for m, f in folders.items() if len(f) == 1})
    runs = []
    for model, model_files in by_model.items():
        runs.append(_model_run(model, model_files, names[model], sizes[model], tokens_per_step, metrics, average or {},
                               chance, family, recipe, params_kind, paths, samples))
    check_overrides_used(chance, runs)
    return runs


def _params_per_model(params: float | Mapping[str, float], names: Mapping[str, str],
                      folders: Mapping[str, str]) -> dict[str, float]:
    """Each model's parameter count: one count for one model, else a mapping naming every
    model (by `pretrained`, run name, or the folder holding its files). A single count for
    several models is refused: they would all get the same size, silently."""
    listing = ", ".join(sorted(names.values()))
    if not isinstance(params, Mapping):
        if len(names) > 1:
            example = " ".join(f"`params={n}=N`" for n in sorted(names.values())[:2])
            raise UsageError(f"`params={params:g}`: the files hold {len(names)} models ({listing}), which would all get "
                             f"this size; give each its own, e.g. {example}, or import one model at a time")
        return {model: float(params) for model in names}
    out, used = {}, set()
    for model, run_name in names.items():
        key = next((k for k in (model, run_name, folders.get(model)) if k is not None and k in params), None)
        if key is None:
            raise UsageError(f"`params`: no count for model {run_name!r} (pretrained={model!r}); "
                             f"give `params={run_name}=N` for each of: {listing}", parameter="params")
        out[model] = float(params[key])
        used.add(key)
    unknown = sorted(set(params) - used)
    if unknown:
        raise UsageError(f"`params={unknown[0]}=...`: no model of that name in the files; the models are: {listing}",
                         parameter="params")
    return out


def find_result_files(paths: Sequence[str | Path]) -> list[Path]:
    """The given files, and every `*.json` under the given folders (sorted)."""
    if not paths:
        raise UsageError("give at least one results file or folder")
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*.json") if p.is_file())
            if not inside:
                raise DataError(path, None, "no results JSON files in this folder", "give the folder lm-eval wrote into")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(path, None, "file not found", "check the path")
    return found


def read_result_file(path: Path) -> ResultFile:
    """Parse one results JSON (0.4 or older layout)."""
    data = read_json(path, "lm-eval results JSON", "give the results JSON that lm-eval wrote")
    shape_fix = 'give an lm-eval results file: {"results": {task: {"acc,none": ..}}, "config": {..}}'
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise DataError(path, "results", "wrong JSON shape: no 'results' object of task -> metrics", shape_fix)
    if not data["results"]:
        raise DataError(path, "results", "no task results in the file", shape_fix)
    metrics: dict[str, dict[tuple[str, str], float]] = {}
    stderrs: dict[str, dict[tuple[str, str], float]] = {}
    for task, values in data["results"].items():
        if not isinstance(values, dict):
            raise DataError(path, f"results.{task}", f"expected an object of metric -> value, got {type(values).__name__}",
                            shape_fix)
        for key, value in values.items():
            if key in _NOT_METRICS:
                continue  # names and aliases
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not is_number:
                # the harness writes "N/A" for a stderr it could not compute; anything else that is
                # not a number (null, true, a string) would be a metric read as nothing, silently
                if "_stderr" in key and (value is None or (isinstance(value, str) and value.strip().upper() == "N/A")):
                    continue
                raise DataError(path, f"results.{task}.{key}", f"{json_text(value)} is not a number",
                                "give the metric as a number (or remove the task)")
            metric, _, filt = key.partition(",")
            filt = filt or "none"
            if metric.endswith("_stderr"):
                stderrs.setdefault(task, {})[(metric[: -len("_stderr")], filt)] = float(value)
            else:
                metrics.setdefault(task, {})[(metric, filt)] = float(value)
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    model_args = _model_args(config.get("model_args"))
    samples = {}
    n_samples = data.get("n-samples") or {}
    if not isinstance(n_samples, dict):
        raise DataError(path, "n-samples", "expected an object of task -> sample counts", shape_fix)
    for task, counts in n_samples.items():
        if isinstance(counts, dict):
            for which in ("effective", "original"):
                count = counts.get(which)
                if count is not None and not (isinstance(count, int) and not isinstance(count, bool) and count > 0):
                    raise DataError(path, f"n-samples.{task}.{which}", f"{json_text(count)} is not a positive whole "
                                    "number of samples", "give the count the harness wrote, or remove the entry")
            count = counts.get("effective", counts.get("original"))
            if count is not None:
                samples[task] = float(count)
    shots = {t: v for t, v in (data.get("n-shot") or {}).items() if isinstance(v, int)}
    if not shots and isinstance(config.get("num_fewshot"), int):
        shots = {t: config["num_fewshot"] for t in metrics}
    # the harness's own aggregates: keys of `group_subtasks` (0.4) and of `groups` (0.4.2+)
    # (a key of group_subtasks with an empty list is a plain task: 0.4.0 lists every task there)
    listed = data.get("group_subtasks") if isinstance(data.get("group_subtasks"), dict) else {}
    groups = frozenset([k for k, members in listed.items() if isinstance(members, list) and members]
                       + (list(data["groups"]) if isinstance(data.get("groups"), dict) else []))
    if "pretrained" in model_args and not model_args["pretrained"].strip():
        raise DataError(path, "config.model_args.pretrained", "empty model name",
                        "give pretrained=<model> as lm-eval wrote it, or name the run with `name`")
    return ResultFile(path, model_args.get("pretrained", ""), _step(path, model_args), metrics, stderrs, samples, shots,
                      groups)


def _model_args(raw: Any) -> dict[str, str]:
    """`config.model_args` as a dict: 0.4 writes a dict, older versions `k=v,k=v`."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, str):
        return dict(part.split("=", 1) for part in raw.split(",") if "=" in part)
    return {}


def _step(path: Path, model_args: Mapping[str, str]) -> int:
    """Checkpoint step from `revision=step<N>`, else from a file name like `410m_step1000.json`."""
    revision = model_args.get("revision", "").strip()
    from_revision = _STEP.search(revision)
    if from_revision is None and re.search(r"step", revision, re.I):
        raise DataError(path, "config.model_args.revision", f"cannot read the step in revision={revision!r}",
                        "steps are whole numbers >= 0: revision=step1000")
    from_name = _STEP.search(path.stem)
    if from_revision and from_name and from_revision.group(1) != from_name.group(1):
        raise DataError(path, "config.model_args.revision", f"revision says step {from_revision.group(1)} but the "
                        f"file name says step {from_name.group(1)}", "rename the file to match its revision")
    found = from_revision or from_name
    if not found:
        raise DataError(path, "config.model_args.revision", "no checkpoint step (no revision=step<N>, and the file "
                        "name has no _step<N>)", "evaluate with revision=step<N>, or name the file <model>_step<N>.json")
    step = int(found.group(1))
    if step > MAX_INTEGER:
        raise DataError(path, "config.model_args.revision", f"step {found.group(1)} is too large (over 2**63 - 1)",
                        "check the revision: steps are whole numbers such as step143000")
    return step


def json_text(value: Any) -> str:
    """A JSON value as the file shows it (null, true, "text"), for messages."""
    return json.dumps(value)[:40]


def _model_run(model: str, files: list[ResultFile], run_name: str, params: float, tokens_per_step: float,
               metrics: Sequence[str], average: Mapping[str, str], chance: Mapping[str, float], family: str,
               recipe: Recipe | None, params_kind: str, paths: Sequence[str | Path], samples: bool = False) -> Run:
    tasks = sorted({t for f in files for t in f.metrics})
    chosen = {t: m for t in tasks if (m := _choose_metric(t, files, metrics)) is not None}
    with_ppl = {t for f in files for t, ms in f.metrics.items() if any(k[0] in PERPLEXITY_METRICS for k in ms)}
    left_out = [t for t in tasks if t not in chosen and t not in with_ppl]
    if not chosen and not with_ppl:
        found = sorted({m for f in files for ms in f.metrics.values() for m, _ in ms})
        raise DataError(files[0].path if len(files) == 1 else files[0].path.parent, None,
                        f"`metrics={'/'.join(metrics)}` matched no task of {run_name} (the files report "
                        f"{', '.join(found[:8]) or 'no metric'})", "choose one of those with `metrics`")
    if left_out:
        note_skipped(f"{run_name}: {len(left_out)} tasks without metric {'/'.join(metrics)} left out: "
                     f"{', '.join(left_out[:6])}{', ...' if len(left_out) > 6 else ''}")
    checkpoints: dict[int, dict[str, Score]] = {}
    files_at: dict[int, list[Path]] = {}
    sampled: dict[str, int] = {}  # task -> checkpoints with a samples file
    for f in sorted(files, key=lambda f: (f.step, str(f.path))):
        scores = checkpoints.setdefault(f.step, {})
        files_at.setdefault(f.step, []).append(f.path)
        for task in f.metrics:
            score = _score(f, task, chosen.get(task))
            if score is None:
                continue
            if samples:
                score = with_samples(f.path, task, score, sampled)
            if task in scores:
                raise DataError(f.path, f"results.{task}", f"step {f.step} of {task!r} is also in {files_at[f.step][0]} "
                                "(duplicate checkpoint)", "keep one results file per checkpoint and task")
            scores[task] = score
    for prefix, skill in average.items():
        checkpoints = average_subtasks(checkpoints, prefix, skill, files_at, frozenset().union(*(f.groups for f in files)))
        member_metric = next((m for t, m in chosen.items() if t.startswith(prefix)), metrics[0])
        chosen = {t: m for t, m in chosen.items() if not t.startswith(prefix)} | {skill: member_metric}
    points: dict[str, list[Point]] = {}
    for step, scores in checkpoints.items():
        for task, s in scores.items():
            points.setdefault(task, []).append(Point(step, step * tokens_per_step, accuracy=s.accuracy, loss=s.loss,
                                                     stderr=s.stderr, n=s.n, prob=s.prob))
    shots = sorted({v for f in files for v in f.shots.values()})
    extra = {}
    if samples:
        if not sampled:
            raise DataError(files[0].path.parent, "samples", f"{run_name}: no samples_<task>_<date>.jsonl with "
                            "log-likelihoods beside the results files", "run lm-eval with --log_samples, or leave out "
                            "`samples`")
        without = sorted({t for t in points if t not in sampled and t in chosen})
        if without:
            note_skipped(f"{run_name}: no log-likelihood samples for {', '.join(without)} (generation tasks, or "
                         "evaluated without --log_samples): no continuous metric for them")
        extra["samples"] = {t: f"{count} checkpoints: prob = mean probability of the correct choice (normalised over "
                               "choices), loss = mean NLL of the correct answer (nats)"
                            for t, count in sorted(sampled.items())}
    return build_run(
        file=files[0].path if len(files) == 1 else files[0].path.parent, name=run_name, params=params,
        points=points, chance=chance, family=family, recipe=recipe, params_kind=params_kind, metric_of=chosen,
        source=describe_sources("lm-eval", paths),
        extra={"model": model, "files": len(files), "shots": shots,
               "metric": {t: m for t, m in sorted(chosen.items()) if t in points}, **extra},
    )


def with_samples(results: Path, task: str, score: Score, seen: dict[str, int]) -> Score:
    """The task's score with `prob` and `loss` from its samples file beside `results`
    (unchanged when there is none, or it holds no log-likelihoods); counts it in `seen`."""
    path = samples_file(results, task)
    found = None if path is None else read_samples(path)
    if found is None:
        return score
    seen[task] = seen.get(task, 0) + 1
    return replace(score, prob=found.prob, loss=found.loss, n=score.n if score.n is not None else float(found.n))


def _choose_metric(task: str, files: Sequence[ResultFile], metrics: Sequence[str]) -> str | None:
    """The first preferred metric (`name` or `name,filter`) the task reports in any file."""
    for wanted in metrics:
        name, _, filt = wanted.partition(",")
        for f in files:
            if any(k[0] == name and (not filt or k[1] == filt) for k in f.metrics.get(task, {})):
                return wanted
    return None


def _score(f: ResultFile, task: str, metric: str | None) -> Score | None:
    """The task's accuracy (by `metric`) and perplexity loss in one file; None if neither."""
    values = f.metrics[task]
    accuracy = stderr = loss = None
    if metric is not None:
        key = _resolve_filter(f, task, metric)
        if key is not None:
            accuracy = values[key]
            if not 0 <= accuracy <= 1:
                raise DataError(f.path, f"results.{task}.{','.join(key)}", f"accuracy {accuracy} outside [0, 1]",
                                "accuracies are fractions; choose another metric with `metrics`")
            stderr = f.stderrs.get(task, {}).get(key)
            if stderr is not None and not (math.isfinite(stderr) and stderr >= 0):
                raise DataError(f.path, f"results.{task}.{key[0]}_stderr", f"stderr {stderr} is not a finite number >= 0",
                                "fix or remove the stderr")
    ppl = [v for (m, _), v in values.items() if m in PERPLEXITY_METRICS]
    if ppl:
        if not (math.isfinite(ppl[0]) and ppl[0] > 0):
            raise DataError(f.path, f"results.{task}.ppl", f"perplexity {ppl[0]} is not a positive finite number",
                            "fix the value or remove the task")
        loss = math.log(ppl[0])
    if accuracy is None and loss is None:
        return None
    return Score(accuracy=accuracy, stderr=stderr, n=f.samples.get(task), loss=loss)


def _resolve_filter(f: ResultFile, task: str, metric: str) -> tuple[str, str] | None:
    """The (metric, filter) key to read: the given filter, else `none`, else the only one."""
    name, _, filt = metric.partition(",")
    keys = [k for k in f.metrics[task] if k[0] == name]
    if filt:
        return (name, filt) if (name, filt) in keys else None
    if not keys:
        return None
    if (name, "none") in keys:
        return (name, "none")
    if len(keys) == 1:
        return keys[0]
    filters = ", ".join(k[1] for k in keys)
    raise DataError(f.path, f"results.{task}", f"metric {name!r} has several filters ({filters})",
                    f"choose one with `metrics={name},{keys[0][1]}`")
