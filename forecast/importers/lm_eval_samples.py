"""lm-evaluation-harness per-item samples (`--log_samples`): continuous task metrics.

With `--log_samples` the harness writes, beside each `results_<date>.json`, one
`samples_<task>_<date>.jsonl` per task: one JSON object per evaluated item (and filter),

    {"doc_id": 0, "doc": {...}, "target": "2",
     "arguments": {"gen_args_0": {"arg_0": "<context>", "arg_1": " <choice 0>"}, ...},
     "resps": [[["-4.12", "False"]], ...], "filtered_resps": [["-4.12", "False"], ...],
     "filter": "none", "metrics": ["acc", "acc_norm"], "doc_hash": "...", "prompt_hash": "...",
     "target_hash": "...", "acc": 0.0, "acc_norm": 0.0}

For a loglikelihood task (`multiple_choice`, `loglikelihood`) each entry of
`filtered_resps` is one request's (log-likelihood, is-greedy) pair, written as strings by
the harness (`sanitize_list`); older harness versions write numbers and booleans. The
correct choice is `target` read as a choice index, else the choice whose continuation is
`target` (where an item logs `acc`, the reading that agrees with it). Per task, over its items:
- `prob`: mean probability of the correct choice, normalised over the choices
  (softmax of the log-likelihoods); with a single continuation (LAMBADA), its probability;
- `loss`: mean negative log-likelihood of the correct continuation, nats.
Where an item logs `acc`, the choice read as correct must agree with it (argmax), which
catches a target that names no correct choice.
"""

from __future__ import annotations

import gzip
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecast.errors import DataError
from forecast.io import MAX_INPUT_BYTES, decode_text, parse_json, read_bytes

FIX = "give the samples_<task>_<date>.jsonl that lm-eval --log_samples wrote"


@dataclass(frozen=True)
class SampleScores:
    """One task's continuous metrics at one checkpoint, from its samples file."""

    prob: float  # mean probability of the correct choice (normalised over choices)
    loss: float  # mean NLL of the correct continuation, nats
    n: int  # items
    path: Path


def samples_file(results: Path, task: str) -> Path | None:
    """`samples_<task>_<date>.jsonl` (or `.jsonl.gz`) beside `results_<date>.json`, if any."""
    if not results.stem.startswith("results_"):
        return None
    date = results.stem[len("results_"):]
    for suffix in (".jsonl", ".jsonl.gz"):
        path = results.with_name(f"samples_{task}_{date}{suffix}")
        if path.is_file():
            return path
    return None


def read_samples(path: Path) -> SampleScores | None:
    """The task's `SampleScores`, or None when its items hold no log-likelihoods (a
    generation task: nothing continuous to read). Malformed lines are `DataError`s."""
    lines = _lines(path)
    items = [(line, item) for line, item in lines]
    filters = sorted({str(item.get("filter", "none")) for _, item in items})
    if len(filters) > 1:
        if "none" not in filters:
            raise DataError(path, "filter", f"items under several filters ({', '.join(filters)}) and none is 'none'",
                            "give a loglikelihood task's samples (filter 'none')")
        items = [(line, item) for line, item in items if str(item.get("filter", "none")) == "none"]
    probs, losses, seen = [], [], {}
    for line, item in items:
        lls = _loglikelihoods(path, line, item)
        if lls is None:
            return None
        doc = item.get("doc_id")
        if doc in seen:
            raise DataError(path, "doc_id", f"doc_id {doc} twice (also line {seen[doc]})", FIX, line=line)
        seen[doc] = line
        gold = _gold(path, line, item, lls)
        if len(lls) == 1:
            probs.append(math.exp(lls[0]))
        else:
            shifted = np.exp(np.asarray(lls) - max(lls))
            probs.append(float(shifted[gold] / shifted.sum()))
        losses.append(-lls[gold])
    if not probs:
        raise DataError(path, None, "no items", FIX)
    return SampleScores(prob=float(np.mean(probs)), loss=float(np.mean(losses)), n=len(probs), path=path)


def _lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    data = read_bytes(path, "samples file", FIX)  # the input-file rules of forecast.io
    if path.suffix == ".gz":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                data = unzipped.read(MAX_INPUT_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise DataError(path, None, f"cannot read ({exc})", FIX) from None
        if len(data) > MAX_INPUT_BYTES:
            raise DataError(path, None, f"unzips to more than {MAX_INPUT_BYTES // 2**20} MiB", FIX)
    raw = decode_text(data, path, FIX)
    out = []
    for number, text in enumerate(raw.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            item = parse_json(text, path, FIX, line=number)
        except DataError as exc:  # one JSON document per line: say which line is not one
            raise DataError(path, exc.field, exc.problem.replace("not valid JSON", "not a JSON line"), FIX,
                            line=number) from None
        if not isinstance(item, dict):
            raise DataError(path, None, "a line is not a JSON object", FIX, line=number)
        out.append((number, item))
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _loglikelihoods(path: Path, line: int, item: dict[str, Any]) -> list[float] | None:
    """The log-likelihood of each request (choice) of one item; None for generations."""
    responses = item.get("filtered_resps", item.get("resps"))
    if not isinstance(responses, list) or not responses:
        raise DataError(path, "filtered_resps", "missing or empty", FIX, line=line)
    out = []
    for response in responses:
        while isinstance(response, list) and len(response) == 1 and isinstance(response[0], list):
            response = response[0]  # `resps` nests each request's pair once more
        value = _number(response[0]) if isinstance(response, list) and len(response) == 2 else None
        if value is None:
            return None  # generated text, not a (log-likelihood, is-greedy) pair
        if not math.isfinite(value) or value > 1e-6:
            raise DataError(path, "filtered_resps", f"log-likelihood {value} is not a finite number <= 0", FIX,
                            line=line)
        out.append(min(value, 0.0))
    return out


def _continuations(item: dict[str, Any]) -> list[str]:
    """Each request's continuation (the choice text), from `arguments`."""
    args = item.get("arguments")
    if isinstance(args, dict):  # 0.4: {"gen_args_0": {"arg_0": context, "arg_1": continuation}, ...}
        ordered = sorted(args, key=lambda k: int(k.rsplit("_", 1)[-1]) if k.rsplit("_", 1)[-1].isdigit() else 0)
        return [str(args[k].get("arg_1", "")) if isinstance(args[k], dict) else "" for k in ordered]
    if isinstance(args, list):  # older: [[context, continuation], ...]
        return [str(a[1]) if isinstance(a, list) and len(a) > 1 else "" for a in args]
    return []


def _gold(path: Path, line: int, item: dict[str, Any], lls: Sequence[float]) -> int:
    """Index of the correct choice: `target` as a choice index, else the choice whose
    continuation it spells (a target such as "7" may be either: the reading the item's
    `acc` agrees with wins)."""
    if len(lls) == 1:
        return 0
    target = item.get("target")
    if isinstance(target, list) and len(target) == 1:
        target = target[0]
    text = str(target).strip() if target is not None else ""
    readings = [int(text)] if text.isdigit() and int(text) < len(lls) else []
    readings += [i for i, c in enumerate(_continuations(item)) if c.strip() == text and i not in readings]
    if not readings:
        raise DataError(path, "target", f"target {target!r} is neither a choice index nor a choice's text "
                        f"(the item has {len(lls)} choices)", "give the samples file lm-eval wrote for this task",
                        line=line)
    acc = _number(item.get("acc"))
    tie = sorted(lls)[-1] == sorted(lls)[-2]
    if acc is not None and not tie:
        agreeing = [i for i in readings if (int(np.argmax(lls)) == i) == (acc >= 0.5)]
        if not agreeing:
            raise DataError(path, "target", f"the item's acc is {acc:g}, but the choice read as correct from target "
                            f"{target!r} (index {readings[0]}) {'is' if int(np.argmax(lls)) == readings[0] else 'is not'}"
                            " the most likely one", "the target must be the correct choice's index or text", line=line)
        return agreeing[0]
    return readings[0]
