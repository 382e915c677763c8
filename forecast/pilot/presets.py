"""Built-in ladders, written in the config-file format (`forecast pilot --show-config`
prints any of them as JSON, ready to edit and pass to --config)."""

from __future__ import annotations

from typing import Any

from forecast.errors import UsageError
from forecast.pilot.ladder import Ladder, parse_ladder

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "name": "tiny",
        "skills": {"add": {"digits": 2}, "sort": {"length": 3}},
        "sizes": {"xs": {"layers": 1, "width": 16, "heads": 2}, "s": {"layers": 1, "width": 32, "heads": 2}},
        "train": {"steps": 150, "batch_size": 64, "lr": 1e-2, "warmup_steps": 10},
        "eval": {"size": 64, "points": 8, "first": 5},
        "recipes": [{"label": "reverse", "formats": {"add": "reverse"}, "mix": {"add": 1, "sort": 1}}],
    },
}


def preset_ladder(name: str) -> Ladder:
    """The built-in ladder `name`; `UsageError` lists the presets for an unknown name."""
    if name not in PRESETS:
        raise UsageError(f"--preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return parse_ladder(PRESETS[name], f"preset '{name}'")
