"""The package's layout as a contract: one direction of flow (no import cycle, each module
importable on its own), small modules, a CLI of thin shells that starts without the
numerical stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest
from helpers import REPO

PACKAGES = ("forecast",)
MAX_LINES = 400
HEAVY = ("torch", "numpy", "scipy", "matplotlib", "lmfit")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """Project modules a module imports at import time (module level, not inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {n for n in names if n in known}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        deps = _top_level_imports(path, known)
        # importing a.b.c first imports its packages a and a.b (a module's own packages are
        # not its dependencies: a package's __init__ may import its children)
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        deps |= {".".join(d.split(".")[:i]) for d in deps for i in range(1, d.count(".") + 1)}
        graph[name] = deps - own - {name}
    return graph


def test_no_import_cycle():
    try:
        order = list(TopologicalSorter(_graph()).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert set(order) == set(_modules())


def test_every_module_imports_on_its_own_in_reverse_dependency_order():
    """In a fresh interpreter, each module imported with every project module unloaded
    first, from the top of the flow (cli, plots, fits) down to the leaves."""
    order = list(TopologicalSorter(_graph()).static_order())[::-1]
    halves = (order[0::2], order[1::2])  # two interpreters side by side (the CI machine has 2 cores)
    procs = [subprocess.Popen([sys.executable, "-c", (
        "import importlib, sys\n"
        f"for name in {half!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] in ('forecast',)]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for half in halves]
    for proc in procs:
        _, stderr = proc.communicate()
        assert proc.returncode == 0, stderr


def test_the_library_never_imports_the_cli():
    for name, deps in _graph().items():
        if not name.startswith("forecast.cli"):
            assert not any(d.startswith("forecast.cli") for d in deps), name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_stay_small(name):
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by concept (limit {MAX_LINES})"


def test_cli_holds_no_library_logic():
    """The shells parse, call the library and render: no numerical imports at all, and no
    JSON shapes built by hand (every --json goes through `print_json` and a `to_json`)."""
    for path in sorted((REPO / "forecast" / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in HEAVY for n in names), f"{path.name} imports {names}"
        assert "json.dumps" not in path.read_text() or path.name == "common.py", path.name


def test_cli_starts_without_the_numerical_stack():
    """`forecast --help` and usage errors answer in well under a second: importing the CLI
    loads none of torch, numpy, scipy, matplotlib or lmfit."""
    script = "import sys, forecast.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % (HEAVY,)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


# The flow's stages, earliest first: a module may import from its own stage or an earlier one,
# never a later one (function-level imports included). `forecast/__init__.py` sits above all
# (its names load lazily).
STAGES = (
    ("forecast.errors", "forecast.version", "forecast.quantities", "forecast.io", "forecast.threads",
     "forecast.options", "forecast.schema"),
    ("forecast.runs",),
    ("forecast.importers", "forecast.pilot"),
    ("forecast.fitting",),
    ("forecast.store", "forecast.forecasting"),
    ("forecast.fits",),
    ("forecast.backtesting",),
    ("forecast.design",),
    ("forecast.plots",),
    ("forecast.demo",),
    ("forecast.cli",),
)


def _stage(module: str) -> int:
    for rank, prefixes in enumerate(STAGES):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no stage: add it to STAGES in tests/test_layout.py")


def _all_imports(path: Path, known: set[str]) -> set[str]:
    """Project modules a module imports anywhere (module level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in found if n in known}


def test_every_module_belongs_to_a_stage():
    for name in _modules():
        if name != "forecast":
            _stage(name)


def test_no_import_runs_against_the_flow():
    modules = _modules()
    known = set(modules)
    backwards = []
    for name, path in modules.items():
        if name == "forecast":
            continue
        for dep in _all_imports(path, known) - {"forecast"}:
            if _stage(dep) > _stage(name):
                backwards.append(f"{name} imports {dep}")
    assert not backwards, "imports against the flow (runs → fits → forecasts → rendering):\n" + "\n".join(sorted(backwards))
