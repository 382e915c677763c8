"""Every `--json` kind the CLI prints, run through the CLI and checked against its written
shape (`forecast.schema.documents.KINDS`, `forecast.schema.check`): keys, types, no NaN.

Each command runs once, on the shipped runs/demo and fits/, a tiny synthetic ladder of two
recipes (fitted once, with loss laws) and a tiny CPU pilot; documents are cached so a
command another one needs (the pilot before `--status`) runs only once. A new kind is a
TypedDict in the registry and a command line in `COMMANDS`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, invoke

from forecast import write_runs
from forecast.runs.synthetic import GrokTruth, synthetic_ladder
from forecast.schema.backtest import CoverageJson
from forecast.schema.check import check, check_document
from forecast.schema.documents import KINDS
from forecast.schema.outputs import IntervalJson

FAST = ("--draws", "10")
TRUTH = GrokTruth(d_half=1e8, n_ref=1e6, gamma=0.7, k=3.0)
DEMO_RUNS, DEMO_FITS = REPO / "runs" / "demo", REPO / "fits"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Two recipes of a synthetic ladder (3 sizes, 8 checkpoints, with task loss)."""
    root = tmp_path_factory.mktemp("shapes")
    for i, (label, d_half) in enumerate((("fast", 1e8), ("slow", 3e8))):
        truth = GrokTruth(d_half=d_half, n_ref=TRUTH.n_ref, gamma=TRUTH.gamma, k=TRUTH.k)
        runs = synthetic_ladder(truth, np.geomspace(1e5, 1e7, 3), tokens_range=(3e6, 3e8), checkpoints=8,
                                with_loss=True, recipe=label, rng=np.random.default_rng(i))
        write_runs(runs, root / "recipes" / label)
    (root / "table.csv").write_text("model,params,tokens,mmlu,gsm8k\na-1b,1e9,2e10,0.3,0.05\na-7b,7e9,1.4e11,0.45,0.15\n")
    board = ["model,family,params,tokens,arc,piqa"]  # two families, final checkpoints only
    for family, lift in (("a", 0.0), ("b", 0.03)):
        for i, params in enumerate((1e8, 3e8, 1e9, 3e9)):
            board.append(f"{family}-{i},{family},{params:g},{20 * params:g},{0.3 + 0.05 * i + lift:.3f},"
                         f"{0.6 + 0.04 * i + lift:.3f}")
    (root / "board.csv").write_text("\n".join(board) + "\n")
    imported = invoke("import", "table", root / "board.csv", "--name-column", "model", "--family-column", "family",
                      "--params-column", "params", "--tokens-column", "tokens", "--out", root / "board")
    assert imported.exit_code == 0, imported.stderr
    return root


def _submitted(monkeypatch, root: Path) -> list[object]:
    """`pilot --executor ...` without `--wait`: the submission itself is replaced (no Slurm here)."""
    import forecast.pilot.orchestrate as orchestrate

    def submit(ladder, specs, family_dir, *args, **kwargs):
        return orchestrate.Submission(job_ids={s.name: str(1000 + i) for i, s in enumerate(specs)}, finished=(),
                                      outcomes=None, state={"finished": 0, "running": 0, "failed": 0,
                                                            "pending": len(specs)})
    monkeypatch.setattr(orchestrate, "submit", submit)
    return ["pilot", "--preset", "tiny", "--executor", "submitit-local", "--out", root / "cluster"]


def _demo(monkeypatch, root: Path) -> list[object]:
    """`forecast demo` on the tiny preset with a quick fit, over the pilots `pilot` trained."""
    import forecast.demo as demo
    from forecast.fitting.fit import FitOptions

    real = demo.run_demo
    monkeypatch.setattr(demo, "run_demo", lambda out, device, *a, **k: real(
        out, device, *a, **(k | {"preset": "tiny", "jobs": 1, "threads": 1,
                                 "fit_options": FitOptions(draws=10, laws=("grok_scaling",), losses=True)})))
    return ["demo", "--device", "cpu", "--out", root / "pilots"]


def _largest(runs_dir: Path) -> Path:
    """The folder of the largest run in `runs_dir` (the run `predict --run` follows)."""
    return max(runs_dir.iterdir(), key=lambda p: json.loads((p / "run.json").read_text())["params"])


COMMANDS = {
    "runs": lambda mp, r: ["runs", DEMO_RUNS],
    "import": lambda mp, r: ["import", "table", r / "table.csv", "--name-column", "model", "--params-column", "params",
                             "--tokens-column", "tokens", "--out", r / "imported"],
    "ladder-config": lambda mp, r: ["pilot", "--preset", "tiny", "--show-config"],
    "pilot": lambda mp, r: ["pilot", "--preset", "tiny", "--device", "cpu", "--threads", "1", "--out", r / "pilots" / "runs"],
    "pilot-status": lambda mp, r: ["pilot", "--status", r / "pilots" / "runs" / "tiny"],
    "pilot-submitted": _submitted,
    "demo": _demo,
    "fit": lambda mp, r: ["fit", r / "recipes" / "fast", "--out", r / "fits", *FAST],
    "predict": lambda mp, r: ["predict", "--fits", DEMO_FITS, "--family", "demo", "--params", "1B", "--skill", "all",
                              "--aggregate", "avg=all"],
    "predict-loss": lambda mp, r: ["predict", "--metric", "loss", "--fits", r / "fits", "--params", "1B"],
    "plan-target": lambda mp, r: ["plan", "--fits", DEMO_FITS, "--family", "demo", "--skill", "add", "--target", "0.6"],
    "plan-budget": lambda mp, r: ["plan", "--fits", DEMO_FITS, "--family", "demo", "--budget", "1e18"],
    "plan-loss": lambda mp, r: ["plan", "--fits", r / "fits", "--loss", "2.0"],
    "backtest": lambda mp, r: ["backtest", r / "recipes" / "fast", *FAST],
    "compare": lambda mp, r: ["compare", r / "recipes", *FAST, "--laws", "grok_scaling", "--target-params", "1e8"],
    "compare-ladder": lambda mp, r: ["compare", r / "board", "--by", "family", "--judge", "target",
                                     "--target-params", "10B"],
    "backtest-recipes": lambda mp, r: ["backtest", r / "board", "--by", "family"],
    "predict-run": lambda mp, r: ["predict", "--fits", r / "fits", "--run", _largest(r / "recipes" / "fast")],
    "backtest-partial": lambda mp, r: ["backtest", r / "recipes" / "fast", "--partial", "0.25,0.5", *FAST],
    "design": lambda mp, r: ["design", "--target-params", "1M", "--budget", "1e13", "--sizes", "5", "--spacing", "2",
                             "--multipliers", "1", "--seeds", "1", "--refine", "0", "--draws-per-skill", "1",
                             "--skills", "add", "--out", r / "ladder.csv"],
    "design-next": lambda mp, r: ["design", "--runs", r / "recipes" / "fast", "--candidates", r / "recipes" / "slow",
                                  "--target-params", "1e8", "--simulations", "1"],
}
"""kind -> the command line (less `--json`) that prints it."""
NEEDS = {"pilot-status": "pilot", "demo": "pilot", "predict-loss": "fit", "plan-loss": "fit", "predict-run": "fit"}
"""kind -> the kind whose command must have run first (its files are this one's input)."""


@pytest.fixture(scope="module")
def documents(root):
    """kind -> printed document, each command run once, on demand."""
    cache: dict[str, dict] = {}

    def get(kind: str) -> dict:
        if kind not in cache:
            if kind in NEEDS:
                get(NEEDS[kind])
            with pytest.MonkeyPatch.context() as mp:
                result = invoke(*COMMANDS[kind](mp, root), "--json")
            assert result.exit_code == 0, (kind, result.stdout[-500:], result.stderr[-2000:])
            cache[kind] = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{kind}: {c} in output"))
        return cache[kind]
    return get


def test_every_kind_has_a_shape_and_a_command():
    assert set(COMMANDS) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_document_matches_its_shape(kind, documents):
    document = documents(kind)
    assert document["kind"] == kind
    problems = check_document(document)
    assert not problems, f"{kind}: the document departs from {KINDS[kind].__name__}:\n" + "\n".join(problems[:20])


def test_the_documents_exercise_their_nested_shapes(documents):
    """The shapes are only checked where the data has them: the commands must produce them."""
    assert documents("predict")["aggregates"] and any(f["grok"] for f in documents("plan-budget")["skills"])
    assert documents("demo")["checks"] and documents("demo")["checks"][0]["forecast"]
    assert documents("compare")["comparisons"][0]["verdicts"]
    assert documents("backtest")["skills"][0]["points"]
    assert documents("fit")["losses"] and documents("predict-loss")["forecasts"]
    assert documents("pilot-submitted")["submitted"] and documents("pilot-status")["runs"]


# ---------------------------------------------------------------------------- the checker can fail


def test_check_names_each_departure():
    good = {"median": 0.5, "low": 0.4, "high": None}
    assert check(good, IntervalJson) == []
    assert check({"median": 0.5, "low": 0.4}, IntervalJson) == ["$: missing key 'high' (IntervalJson)"]
    assert check(good | {"mean": 0.5}, IntervalJson) == ["$: unknown key 'mean' (not in IntervalJson)"]
    assert check(good | {"low": "0.4"}, IntervalJson) == ["$.low: expected a number, got '0.4'"]
    assert check(good | {"low": math.nan}, IntervalJson) == ["$.low: nan is not a finite number"]
    assert check(good | {"low": True}, IntervalJson) == ["$.low: expected a number, got True"]
    assert check({"coverage": None, "count": 1.5}, CoverageJson) == ["$.count: expected an integer, got 1.5"]
    assert check([good, {"median": 1}], list[IntervalJson]) == ["$[1]: missing key 'low' (IntervalJson)",
                                                                  "$[1]: missing key 'high' (IntervalJson)"]
    assert check({"a": 1.0, "b": "x"}, dict[str, float]) == ["$.b: expected a number, got 'x'"]


def test_check_document_reads_the_envelope():
    assert check_document({"format": 1, "kind": "plan-loss", "plans": []}) == []
    assert check_document({"format": 2, "kind": "plan-loss", "plans": []}) == ["$.format: expected 1"]
    assert check_document({"format": 1, "kind": "nope"})[0].startswith("$.kind: 'nope' is not a kind")
    assert check_document({"format": 1, "kind": "plan-loss"}) == ["$: missing key 'plans' (PlanLossJson)"]
