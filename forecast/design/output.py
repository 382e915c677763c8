"""A designed ladder as something to train: a table of (N, D) runs for an external trainer, or
a config that `forecast pilot --config` runs.

- **Table** (`.csv`): one row per run: `run, params, tokens, tokens_per_param, seed, flops`
  (FLOPs = 6·N·D), smallest first.
- **Pilot config** (`.toml` or `.json`, the format of `forecast.pilot.ladder`): the skills,
  recipes, training and evaluation settings of a base ladder (a preset, `demo` by default,
  or the user's own config), with its sizes replaced by the design's. Each rung's parameter
  count becomes the GPT shape (`pilot.model.ModelConfig`, non-embedding 12·L·d² + 2·L·d + d)
  closest to it in log params, at a width/depth ratio near `ASPECT`; its tokens become
  steps at the base ladder's measured tokens per step (batch size × mean sequence length of
  its first recipe), as a per-size `steps`. The pilot trainer counts every input token and
  6·N_matmul FLOPs per token plus attention, so its logged compute runs a little above the
  design's 6·N·D; the design's numbers are for N non-embedding parameters.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.design.space import LadderPlan
from forecast.io import atomic_write_text
from forecast.options import design_output_suffix
from forecast.quantities import FLOPS_PER_PARAM_TOKEN

ASPECT = 32.0
"""Width per layer the pilot shapes aim for (the presets use 8–32 at 2 layers; nanoGPT's
small models ~64)."""
MAX_LAYERS = 24
TABLE_COLUMNS = ("run", "params", "tokens", "tokens_per_param", "seed", "flops")


def table_text(ladder: LadderPlan, name: str = "pilot") -> str:
    """The (N, D) table of a ladder (module docstring), as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for i, rung in enumerate(ladder.rungs):
        for seed in range(rung.seeds):
            writer.writerow([f"{name}-{i}-s{seed}", f"{rung.params:.6g}", f"{rung.tokens:.6g}",
                             f"{rung.tokens / rung.params:.4g}", seed,
                             f"{FLOPS_PER_PARAM_TOKEN * rung.params * rung.tokens:.6g}"])
    return out.getvalue()


@dataclass(frozen=True)
class Shape:
    """A pilot GPT shape and its non-embedding parameter count."""

    layers: int
    width: int
    heads: int

    @property
    def params(self) -> int:
        d = self.width
        return self.layers * (12 * d * d + 2 * d) + d  # ModelConfig.params_non_embedding


def pilot_shape(params: float) -> Shape:
    """The GPT shape closest to `params` non-embedding parameters (log distance), preferring
    a width near `ASPECT` × depth; widths are multiples of 8, heads of size 16 where they fit."""
    best, best_cost = None, math.inf
    for layers in range(1, MAX_LAYERS + 1):
        guess = math.sqrt(max(params, 1.0) / (12 * layers))
        for width in {max(8, 8 * math.floor(guess / 8)), max(8, 8 * math.ceil(guess / 8))}:
            heads = max(1, width // 16) if width % 16 == 0 else (2 if width % 2 == 0 and width >= 16 else 1)
            shape = Shape(layers, width, heads)
            cost = abs(math.log(shape.params / params)) + 0.05 * abs(math.log(width / layers / ASPECT))
            if cost < best_cost:
                best, best_cost = shape, cost
    return best


def pilot_config(ladder: LadderPlan, base: Any, name: str) -> dict[str, Any]:
    """The pilot config (a dict in the file format) training `ladder` with the skills,
    recipes and settings of `base` (a `forecast.pilot.Ladder`)."""
    from forecast.pilot.ladder import parse_ladder

    per_step = tokens_per_step(base)
    config = base.to_json()
    sizes: dict[str, dict[str, int]] = {}
    for rung in ladder.rungs:
        shape = pilot_shape(rung.params)
        steps = max(1, round(rung.tokens / per_step))
        label = f"L{shape.layers}W{shape.width}_{steps}"
        label = label if label not in sizes else f"{label}_{len(sizes)}"
        sizes[label] = {"layers": shape.layers, "width": shape.width, "heads": shape.heads, "steps": steps}
    config.update(name=name, seeds=list(range(ladder.seeds)), sizes=sizes)
    config["train"] = {**config["train"], "steps": max(s["steps"] for s in sizes.values())}
    config["eval"] = {**config["eval"], "first": min(config["eval"]["first"], min(s["steps"] for s in sizes.values()))}
    parse_ladder(config, "the designed ladder")  # what we write must load
    return config


def tokens_per_step(base: Any, steps: int = 8) -> float:
    """Mean training tokens per optimizer step of `base`'s first recipe, over its first steps."""
    from forecast.pilot.data import eval_problems, training_batch

    recipe = base.recipes[0]
    # the trainer's held-out sets, so the batches are the ones a run trains on
    held = {n: eval_problems(s, base.eval.size, base.eval.seed) for n, s in base.skills.items()}
    total = sum(training_batch(base.skills, recipe, held, 0, s, base.train.batch_size).tokens for s in range(1, steps + 1))
    return total / steps


def toml_text(config: dict[str, Any]) -> str:
    """A pilot config as TOML: scalars first, then one table per mapping, `[[recipes]]` last."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, (dict, list))
             or (isinstance(v, list) and not any(isinstance(x, dict) for x in v))]
    for key, value in config.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
    for key, value in config.items():
        if isinstance(value, list) and any(isinstance(x, dict) for x in value):
            for item in value:
                lines += ["", f"[[{key}]]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()
                                               if v is not None]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def write_ladder(ladder: LadderPlan, path: str | Path, *, base: Any = None, name: str = "design") -> str:
    """Write the ladder to `path`: `.csv` a table, `.toml`/`.json` a pilot config (on `base`,
    a pilot `Ladder`; default the `demo` preset). Returns what was written, in words."""
    path = Path(path)
    suffix = design_output_suffix(path)
    if suffix == ".csv":
        atomic_write_text(path, table_text(ladder, name))
        return f"a table of {ladder.runs} runs (params, tokens) for an external trainer"
    if base is None:
        from forecast.pilot.presets import preset_ladder
        base = preset_ladder("demo")
    config = pilot_config(ladder, base, name)
    atomic_write_text(path, json.dumps(config, indent=2) + "\n" if suffix == ".json" else toml_text(config))
    return f"a pilot config of {len(config['sizes'])} sizes × {ladder.seeds} seed(s) (`forecast pilot --config {path}`)"
