"""The README's promises, run: the Python API session works as written, with only
`forecast.*` names, on the shipped demo runs."""

from __future__ import annotations

import re
import shutil

import pytest
from helpers import REPO


def _python_api_block() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_python_api_session_uses_only_forecast_names():
    code = _python_api_block()
    imports = re.findall(r"^\s*(?:from|import)\s+(\S+)", code, re.M)
    assert imports == ["forecast"], imports


@pytest.mark.slow
def test_python_api_session_runs(tmp_path, monkeypatch):
    if not (REPO / "runs" / "demo").exists():
        pytest.skip("runs/demo is not in this checkout")
    shutil.copytree(REPO / "runs" / "demo", tmp_path / "runs" / "demo")
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_api_block(), "README.md (Python API)", "exec"), {})
    assert (tmp_path / "fits" / "index.json").exists() and (tmp_path / "forecast.png").stat().st_size > 10_000
