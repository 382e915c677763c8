"""Built-in ladders, one config file each (`<name>.toml` in this folder), in the format
`forecast pilot --config` reads: copy one to start a study of your own
(`forecast pilot --preset NAME --show-config` prints it as JSON)."""

from __future__ import annotations

import tomllib
from importlib import resources

from forecast.errors import UsageError
from forecast.pilot.ladder import Ladder, parse_ladder


def preset_names() -> list[str]:
    """Names of the built-in presets, sorted."""
    return sorted(p.name.removesuffix(".toml") for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def preset_ladder(name: str) -> Ladder:
    """The built-in ladder `name`; `UsageError` lists the presets for an unknown name."""
    names = preset_names()
    if name not in names:
        raise UsageError(f"`preset`: unknown preset {name!r}; choose one of {', '.join(names)}", parameter="preset")
    path = resources.files(__name__) / f"{name}.toml"
    return parse_ladder(tomllib.loads(path.read_text()), f"preset '{name}'")
