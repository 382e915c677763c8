"""A ladder: every (recipe, size, seed) of a pilot study, read from a TOML/JSON config or a preset.

Config file (TOML shown; JSON with the same structure works too):

    name = "mystudy"                  # ladder (family) name; runs are <name>-<recipe>-<size>-s<seed>
    seeds = [0]                       # or --seeds K on the command line (seeds 0..K-1)

    [skills]                          # evaluated skills: name = {kind = ..., options}
    add = { digits = 3 }              # kind defaults to the name: add, sub, mul1, sort, word, fact, factadd
    word = { digits = 2 }

    [sizes]                           # model shapes: label = {layers, width, heads[, lr]}
    s = { layers = 2, width = 32, heads = 2 }
    m = { layers = 2, width = 64, heads = 4, lr = 2e-3 }   # lr overrides train.lr for this size
    l = { layers = 4, width = 64, heads = 4, steps = 3000 } # steps overrides train.steps (a token budget per size)

    [train]                           # TrainConfig fields (trainer.py); all optional
    steps = 1500
    batch_size = 128
    lr = 3e-3

    [eval]                            # EvalConfig fields; all optional
    size = 256
    points = 16

    [[recipes]]                       # one or more; see recipes.py
    label = "reverse"
    formats = { add = "reverse" }
    mix = { add = 1, word = 1 }

    [verify]                          # optional: a model larger than the pilots, trained by
    layers = 2                        # `forecast demo` after fitting to check the forecast
    width = 96                        # (`forecast pilot` does not train it); steps defaults
    heads = 4                         # to train.steps, lr to train.lr
    lr = 4e-3
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from forecast.errors import DataError, UsageError
from forecast.pilot.model import ModelConfig
from forecast.pilot.recipes import LABEL, RecipeSpec, parse_recipe
from forecast.pilot.kinds import SKILL_KINDS
from forecast.pilot.skills import Skill
from forecast.pilot.records import VAL_LOSS
from forecast.pilot.trainer import EvalConfig, Progress, RunSpec, TrainConfig, train_runs
from forecast.schema.pilot import LadderConfigJson

_SIZE_FIELDS = {"layers": "n_layer", "width": "n_embd", "heads": "n_head"}
LADDER_FORMAT = 1
"""Version of the ladder config (an optional `format` key; `--show-config` writes it)."""


@dataclass(frozen=True)
class Ladder:
    """A pilot study: skills x sizes x recipes x seeds, trained with one TrainConfig."""

    name: str
    skills: Mapping[str, Skill]
    sizes: Mapping[str, ModelConfig]  # size label -> model shape, smallest first as written
    recipes: tuple[RecipeSpec, ...]
    train: TrainConfig
    eval: EvalConfig
    seeds: tuple[int, ...] = (0,)
    size_lr: Mapping[str, float] = dataclasses.field(default_factory=dict)  # per-size peak lr overrides
    verify: ModelConfig | None = None  # the demo's verification model (not a pilot)
    verify_train: TrainConfig | None = None  # its optimisation: the ladder's, with its own lr and steps
    size_steps: Mapping[str, int] = dataclasses.field(default_factory=dict)  # per-size training steps

    def train_for(self, size: str) -> TrainConfig:
        """The size's TrainConfig: the ladder's, with its own peak lr if it sets one (wider
        models usually want smaller rates) and its own steps if it sets them (a ladder whose
        sizes train to different token budgets, as `forecast design` proposes)."""
        train = dataclasses.replace(self.train, lr=self.size_lr[size]) if size in self.size_lr else self.train
        return dataclasses.replace(train, steps=self.size_steps[size]) if size in self.size_steps else train

    def run_specs(self, seeds: int | None = None) -> list[RunSpec]:
        """One spec per (seed, recipe, size), in that nesting (small models first); `seeds`
        overrides the configured seeds with 0..seeds-1."""
        chosen = self.seeds if seeds is None else tuple(range(seeds))
        return [
            RunSpec(f"{self.name}-{recipe.label}-{size}-s{seed}", self.name, size, seed, model, recipe,
                    self.skills, self.train_for(size), self.eval)
            for seed in chosen for recipe in self.recipes for size, model in self.sizes.items()
        ]

    def verify_spec(self, seed: int | None = None) -> RunSpec:
        """The verification run of `seed` (default the first): the first recipe, the `verify`
        model shape. Its name says "verify" where a pilot's names its size."""
        if self.verify is None or self.verify_train is None:
            raise UsageError(f"ladder {self.name!r} has no [verify] model; add one to its config")
        recipe, seed = self.recipes[0], self.seeds[0] if seed is None else seed
        return RunSpec(f"{self.name}-{recipe.label}-verify-s{seed}", self.name, "verify", seed, self.verify, recipe,
                       self.skills, self.verify_train, self.eval)

    def verify_specs(self) -> list[RunSpec]:
        """The verification run of every seed of the ladder (the check is run per seed)."""
        return [self.verify_spec(seed) for seed in self.seeds]

    def to_json(self) -> LadderConfigJson:
        """The config in the file format (`load_ladder` reads it back)."""
        verify = {} if self.verify is None or self.verify_train is None else {"verify": {
            **{k: getattr(self.verify, f) for k, f in _SIZE_FIELDS.items()},
            "lr": self.verify_train.lr, "steps": self.verify_train.steps}}
        return {
            "format": LADDER_FORMAT, "name": self.name, "seeds": list(self.seeds),
            "skills": {n: {"kind": s.kind, **s.options()} for n, s in self.skills.items()},
            "sizes": {n: {**{k: getattr(m, f) for k, f in _SIZE_FIELDS.items()},
                          **({"lr": self.size_lr[n]} if n in self.size_lr else {}),
                          **({"steps": self.size_steps[n]} if n in self.size_steps else {})}
                      for n, m in self.sizes.items()},
            "train": dataclasses.asdict(self.train), "eval": dataclasses.asdict(self.eval),
            "recipes": [r.to_json() for r in self.recipes],
        } | verify


def load_ladder(path: str | Path) -> Ladder:
    """Read a ladder config from a .toml or .json file; `DataError` names the file and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataError(path, None, "no such file", "give the path of a .toml or .json ladder config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"cannot read it ({exc.__class__.__name__})", "give a text .toml or .json file") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, None, f"invalid JSON: {exc.msg}", "fix the syntax", line=exc.lineno) from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(path, None, f"invalid TOML: {exc}", "fix the syntax (or use a .json file)") from None
    return parse_ladder(data, path)


def parse_ladder(data: Any, file: str | Path) -> Ladder:
    """Validate a config mapping (the file format above) into a `Ladder`."""
    if not isinstance(data, Mapping):
        raise DataError(file, None, "expected a table/object at the top level", "see the README's pilot config example")
    _no_unknown(data, {"format", "kind", "name", "seeds", "skills", "sizes", "train", "eval", "recipes", "verify"},
                file, "")
    if data.get("format", LADDER_FORMAT) != LADDER_FORMAT:
        raise DataError(file, "format", f"unsupported ladder config format {data.get('format')!r}",
                        f"this version reads format {LADDER_FORMAT}")
    name = data.get("name")
    if not isinstance(name, str) or not LABEL.match(name):
        raise DataError(file, "name", f"expected a ladder name of letters, digits, '_' or '.', got {name!r}",
                        'write e.g. name = "mystudy"')
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise DataError(file, "seeds", f"expected a non-empty list of non-negative integers, got {seeds!r}", "write e.g. seeds = [0, 1]")
    skills = _parse_skills(data.get("skills"), file)
    train = _parse_fields(TrainConfig, data.get("train", {}), file, "train")
    evaluation = _parse_fields(EvalConfig, data.get("eval", {}), file, "eval")
    _check_train(train, evaluation, skills, file)
    recipes_data = data.get("recipes")
    if not isinstance(recipes_data, list) or not recipes_data:
        raise DataError(file, "recipes", "expected a non-empty list of recipes", 'add [[recipes]] with a label and a mix')
    recipes = tuple(parse_recipe(r, skills, file, f"recipes[{i}]") for i, r in enumerate(recipes_data))
    labels = [r.label for r in recipes]
    if len(set(labels)) != len(labels):
        raise DataError(file, "recipes", f"two recipes share the label {next(l for l in labels if labels.count(l) > 1)!r}",
                        "give every recipe a distinct label")
    # one position table per ladder, long enough for every skill in every recipe's format
    block_size = max(s.max_length(r.format_of(n, skills)) for r in recipes for n, s in skills.items())
    sizes, size_lr, size_steps = _parse_sizes(data.get("sizes"), block_size, file)
    shortest = min([train.steps, *size_steps.values()]) if size_steps else train.steps
    for i, recipe in enumerate(recipes):
        scheduled = sum(p.steps or 0 for p in recipe.phases[:-1])
        if scheduled >= shortest:
            raise DataError(file, f"recipes[{i}].curriculum", f"phases before the last take {scheduled} steps, "
                            f"not fewer than the {shortest} steps a run trains", "shorten the phases or train longer")
    verify, verify_train = _parse_verify(data["verify"], train, block_size, file) if "verify" in data else (None, None)
    return Ladder(name, skills, sizes, recipes, train, evaluation, tuple(seeds), size_lr, verify, verify_train, size_steps)


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a UsageError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"`device`: unknown device {device!r}; use auto, cpu or cuda", parameter="device")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("`device='cuda'`: no CUDA device is available; use `device='cpu'` or auto", parameter="device")
    return torch.device(device)


def run_ladder(
    specs: list[RunSpec],
    out_dir: str | Path,
    device: str | torch.device = "cpu",
    progress: Callable[[Progress], None] | None = None,
    ensemble: str = "auto",
    compile: bool = False,
) -> list[Path]:
    """Train every run in this process (skipping complete ones, resuming interrupted ones),
    compatible runs together as ensembles (`ensemble` "auto"; "off": one at a time)."""
    from forecast.pilot.ensemble import ensemble_groups

    paths: dict[str, Path] = {}
    for group in ensemble_groups(specs, ensemble):
        paths.update(zip((s.name for s in group), train_runs(group, out_dir, device, progress, compile)))
    return [paths[s.name] for s in specs]


# ---------------------------------------------------------------------------- parsing helpers


def _parse_skills(data: Any, file: str | Path) -> dict[str, Skill]:
    if not isinstance(data, Mapping) or not data:
        raise DataError(file, "skills", "expected a non-empty table of skill name -> options",
                        f"write e.g. [skills] add = {{digits = 3}}; kinds: {', '.join(SKILL_KINDS)}")
    skills: dict[str, Skill] = {}
    for name, options in data.items():
        where = f"skills.{name}"
        if not LABEL.match(name) or name == VAL_LOSS:
            raise DataError(file, where, "invalid skill name", f"use letters, digits, '_' or '.', not {VAL_LOSS!r}")
        if not isinstance(options, Mapping):
            raise DataError(file, where, "expected a table of options", "write e.g. add = {digits = 3}")
        options = dict(options)
        kind = options.pop("kind", name)
        if kind not in SKILL_KINDS:
            raise DataError(file, f"{where}.kind", f"unknown skill kind {kind!r}", f"use one of {', '.join(SKILL_KINDS)}")
        cls = SKILL_KINDS[kind]
        allowed = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in options.items():
            if key not in allowed:
                raise DataError(file, f"{where}.{key}", "unknown option", f"{kind} takes {', '.join(allowed) or 'no options'}")
            if allowed[key].type in (bool, "bool"):
                if not isinstance(value, bool):
                    raise DataError(file, f"{where}.{key}", f"expected true or false, got {value!r}", f"write e.g. {key} = true")
                continue
            low, high = cls.option_bounds.get(key, (1, 9))
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise DataError(file, f"{where}.{key}", f"expected a whole number from {low} to {high}, got {value!r}",
                                f"write e.g. {key} = {getattr(cls(), key)}")
        skills[name] = cls(**options)
    return skills


def _parse_fields(cls: type, data: Any, file: str | Path, section: str) -> Any:
    """Build a config dataclass from a table, checking names and types field by field."""
    if not isinstance(data, Mapping):
        raise DataError(file, section, "expected a table", f"write [{section}] with key = value lines")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _no_unknown(data, set(fields), file, section)
    defaults = cls()
    for key, value in data.items():
        expected = type(getattr(defaults, key))
        ok = isinstance(value, expected) and not isinstance(value, bool)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise DataError(file, f"{section}.{key}", f"expected {expected.__name__}, got {value!r}",
                            f"default is {getattr(defaults, key)!r}")
    values = {k: (float(v) if isinstance(getattr(defaults, k), float) else v) for k, v in data.items()}
    return cls(**values)


def _check_train(train: TrainConfig, evaluation: EvalConfig, skills: Mapping[str, Skill], file: str | Path) -> None:
    checks = [
        ("train.steps", train.steps >= 1, "a positive number of optimizer steps"),
        ("train.batch_size", train.batch_size >= 1, "a positive number of sequences"),
        ("train.lr", 0 < train.lr < 1, "a learning rate in (0, 1), e.g. 3e-3"),
        ("train.warmup_steps", train.warmup_steps >= 0, "zero or more steps"),
        ("train.decay", train.decay in ("constant", "cosine"), '"constant" or "cosine"'),
        ("train.min_lr_frac", 0 <= train.min_lr_frac <= 1, "a fraction in [0, 1]"),
        ("train.weight_decay", train.weight_decay >= 0, "zero or more"),
        ("train.beta2", 0 < train.beta2 < 1, "a number in (0, 1), e.g. 0.99"),
        ("train.grad_clip", train.grad_clip > 0, "a positive gradient-norm bound"),
        ("eval.size", evaluation.size >= 1, "a positive number of problems"),
        ("eval.points", evaluation.points >= 1, "a positive number of evaluations"),
        ("eval.first", evaluation.first >= 1, "a step >= 1"),
        ("eval.seed", evaluation.seed >= 0, "a non-negative seed"),
    ]
    for where, ok, expected in checks:
        if not ok:
            raise DataError(file, where, "out of range", f"give {expected}")
    for name, skill in skills.items():
        if evaluation.size > skill.space // 10:
            raise DataError(file, "eval.size", f"{evaluation.size} held-out problems exceed 10% of the "
                            f"{skill.space} distinct problems of skill '{name}' (training would lose too many)",
                            f"use eval.size <= {skill.space // 10} or more digits for '{name}'")


def _parse_verify(shape: Any, train: TrainConfig, block_size: int, file: str | Path) -> tuple[ModelConfig, TrainConfig]:
    """The [verify] table: a model shape as in [sizes], with an optional lr and steps."""
    if not isinstance(shape, Mapping):
        raise DataError(file, "verify", "expected a table {layers, width, heads[, lr, steps]}",
                        "write e.g. [verify] layers = 2, width = 96, heads = 4")
    steps = shape.get("steps", train.steps)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise DataError(file, "verify.steps", f"expected a positive whole number of steps, got {steps!r}",
                        "write e.g. steps = 1500, or leave it out to train train.steps")
    sizes, lrs, _ = _parse_sizes({"": {k: v for k, v in shape.items() if k != "steps"}}, block_size, file, "verify")
    return sizes[""], dataclasses.replace(train, lr=lrs.get("", train.lr), steps=steps)


def _parse_sizes(data: Any, block_size: int, file: str | Path, section: str = "sizes"
                 ) -> tuple[dict[str, ModelConfig], dict[str, float], dict[str, int]]:
    if not isinstance(data, Mapping) or not data:
        raise DataError(file, "sizes", "expected a non-empty table of size label -> shape",
                        "write e.g. [sizes] s = {layers = 2, width = 32, heads = 2}")
    sizes, size_lr, size_steps = {}, {}, {}
    for label, shape in data.items():
        where = f"{section}.{label}" if label else section
        if label and not LABEL.match(label):
            raise DataError(file, where, "invalid size label", "use letters, digits, '_' or '.' (no '-')")
        if not isinstance(shape, Mapping):
            raise DataError(file, where, "expected {layers, width, heads}", "write e.g. s = {layers = 2, width = 32, heads = 2}")
        _no_unknown(shape, {*_SIZE_FIELDS, "lr", "steps"}, file, where)
        for key in _SIZE_FIELDS:
            value = shape.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DataError(file, f"{where}.{key}", f"expected a positive whole number, got {value!r}",
                                "write e.g. s = {layers = 2, width = 32, heads = 2}")
        if shape["width"] % shape["heads"]:
            raise DataError(file, f"{where}.heads", f"{shape['heads']} heads do not divide width {shape['width']}",
                            "choose heads that divide the width")
        if "lr" in shape:
            lr = shape["lr"]
            if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
                raise DataError(file, f"{where}.lr", f"expected a learning rate in (0, 1), got {lr!r}", "write e.g. lr = 2e-3")
            size_lr[label] = float(lr)
        if "steps" in shape:
            steps = shape["steps"]
            if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
                raise DataError(file, f"{where}.steps", f"expected a positive whole number of steps, got {steps!r}",
                                "write e.g. steps = 3000")
            size_steps[label] = steps
        sizes[label] = ModelConfig(shape["layers"], shape["width"], shape["heads"], block_size)
    return sizes, size_lr, size_steps


def _no_unknown(data: Mapping, known: set[str], file: str | Path, section: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        where = f"{section}.{unknown[0]}" if section else unknown[0]
        raise DataError(file, where, "unknown field", f"known fields here: {', '.join(sorted(known))}")
