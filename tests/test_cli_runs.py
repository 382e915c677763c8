"""`forecast runs DIR`: the human table and the JSON list (keys documented in README)."""

from __future__ import annotations

from helpers import invoke, output

from forecast import Recipe, Run, make_series, write_runs

SUMMARY_KEYS = {"name", "family", "recipe", "params", "params_kind", "seed", "complete", "checkpoints", "tokens_min",
                "tokens_max", "flops_max", "skills", "metrics", "source", "path"}


def _ladder(tmp_path):
    runs = []
    for params in (1e6, 4e6):
        steps, tokens = [0, 100, 200], [0, 1e5, 2e5]
        series = {
            "add": make_series("add", steps, tokens, accuracy=[0, 0.4, 0.9], params=params, chance=0.0),
            "piqa": make_series("piqa", steps, tokens, accuracy=[0.5, 0.55, 0.6], params=params, chance=0.5),
            "val_loss": make_series("val_loss", steps, tokens, loss=[5, 4, 3.5], params=params),
        }
        runs.append(Run(f"pilot-{int(params / 1e6)}M", params, "pilots", Recipe("reverse"), series,
                        params_kind="non-embedding", seed=0, source="test"))
    write_runs(runs, tmp_path)
    return tmp_path


def test_runs_json(tmp_path):
    data = output(invoke("runs", _ladder(tmp_path), "--json"), "runs")["runs"]
    assert [d["name"] for d in data] == ["pilot-1M", "pilot-4M"]
    first = data[0]
    assert set(first) == SUMMARY_KEYS
    assert first == first | {
        "family": "pilots", "recipe": "reverse", "params": 1_000_000, "params_kind": "non-embedding", "seed": 0,
        "checkpoints": 3, "tokens_min": 0, "tokens_max": 200_000, "skills": ["add", "piqa"],
        "metrics": ["val_loss"], "source": "test", "path": str(tmp_path / "pilot-1M"),
    }
    assert first["flops_max"] == 6 * 1e6 * 2e5


def test_runs_table(tmp_path):
    result = invoke("runs", _ladder(tmp_path))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "2 runs in" in out
    for text in ("pilot-1M", "pilot-4M", "pilots", "reverse", "1M", "4M", "0–200K", "skills: add, piqa",
                 "metrics: val_loss"):
        assert text in out, text
    assert result.stderr == ""


def test_runs_of_one_run_directory(tmp_path):
    result = invoke("runs", _ladder(tmp_path) / "pilot-4M", "--json")
    assert [d["name"] for d in output(result, "runs")["runs"]] == ["pilot-4M"]


def test_import_prints_what_it_wrote(tmp_path):
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("step,acc_piqa\n0,0.5\n10,0.6\n")
    args = ("import", "csv", csv_path, "--params", "1M", "--tokens-per-step", "1000", "--step-column", "step",
            "--accuracy-columns", "acc_(.+)", "--out", tmp_path / "runs")
    table = invoke(*args)
    assert table.exit_code == 0 and "wrote 1 run to" in table.stdout and "r " in table.stdout
    again = invoke(*args, "--overwrite", "--json")
    (summary,) = output(again, "import")["runs"]
    assert summary["path"] == str(tmp_path / "runs" / "r") and summary["skills"] == ["piqa"]
    assert summary["source"] == f"forecast import csv: {csv_path}"
