"""Bad input through the CLI (DESIGN §7): every malformed file or flag gives exit code 2 and
one stderr line naming the file and field (or flag) and a fix, and leaves `--out` untouched."""

from __future__ import annotations

import json

import pytest
from helpers import assert_one_line_error, invoke, snapshot

from forecast import Recipe, Run, make_series, write_runs

GOOD_CSV = """_step,tokens,eval/acc/piqa,eval/bpb/piqa,val/loss
0,0,0.5,1.2,5.0
100,1000,0.55,1.1,4.0
200,2000,0.6,1.0,3.5
"""
CSV_FLAGS = ("--params", "1M", "--tokens-column", "tokens", "--accuracy-columns", r"eval/acc/(\w+)",
             "--loss-columns", r"eval/bpb/(\w+)")


@pytest.fixture
def out(tmp_path):
    """A runs directory that already holds one good run, which no failure may touch."""
    directory = tmp_path / "runs"
    series = make_series("piqa", [0, 10], [0, 100], accuracy=[0.5, 0.6], params=1e6, chance=0.5)
    write_runs([Run("keep", 1e6, "fam", Recipe(), {"piqa": series})], directory)
    return directory


def fails(out, args, *fragments):
    """Run the command, check the one-line error and that `out` is byte-for-byte unchanged."""
    before = snapshot(out)
    line = assert_one_line_error(invoke(*args, "--out", out), *fragments)
    assert snapshot(out) == before
    return line


def csv_file(tmp_path, text, name="run.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_csv_imports(tmp_path, out):
    """The baseline the malformed cases below each break in one way."""
    result = invoke("import", "csv", csv_file(tmp_path, GOOD_CSV), *CSV_FLAGS, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert (out / "run" / "run.json").is_file() and (out / "keep" / "run.json").is_file()


# ---------------------------------------------------------------------------- wide CSV


def test_missing_step_column(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("_step", "step"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), str(path), "field '_step'", "--step-column", "'step'")


def test_regex_matching_no_column(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV)
    args = ("import", "csv", path, "--params", "1M", "--tokens-column", "tokens", "--accuracy-columns", r"acc/(\w+)_5shot")
    fails(out, args, str(path), "field '--accuracy-columns'", "matches no column", "'eval/acc/piqa'")


def test_nan_cell(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("0.55", "nan"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), f"{path}:3", "field 'eval/acc/piqa'", "NaN", "fix:")


def test_negative_tokens(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("100,1000", "100,-1000"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), f"{path}:3", "field 'tokens'", "below 0", "fix:")


def test_infinite_loss(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("1.1,4.0", "inf,4.0"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), f"{path}:3", "field 'eval/bpb/piqa'", "infinite", "fix:")


def test_accuracy_as_percent(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("0.6,", "60,"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), f"{path}:4", "field 'eval/acc/piqa'", "above 1", "0.42, not 42")


def test_non_monotone_tokens(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("200,2000", "200,500"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), f"{path}:4", "field 'tokens'", "non-monotone", "fix:")


def test_duplicate_checkpoint(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("200,2000", "100,2000"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), f"{path}:4", "field '_step'", "duplicate checkpoint", "fix:")


def test_empty_file(tmp_path, out):
    path = csv_file(tmp_path, "")
    fails(out, ("import", "csv", path, *CSV_FLAGS), str(path), "empty file", "fix:")


def test_header_only(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.splitlines()[0] + "\n")
    fails(out, ("import", "csv", path, *CSV_FLAGS), str(path), "no data rows", "fix:")


def test_file_not_found(tmp_path, out):
    path = tmp_path / "nope.csv"
    fails(out, ("import", "csv", path, *CSV_FLAGS), str(path), "file not found", "fix:")


def test_ragged_row(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("0,0,0.5,1.2,5.0", "0,0,0.5,1.2"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), f"{path}:2", "expected 5 cells, found 4", "fix:")


def test_non_numeric_cell(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("0.55", "n/a"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), f"{path}:3", "field 'eval/acc/piqa'", "'n/a'", "fix:")


def test_unparseable_params(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV)
    args = ("import", "csv", path, *CSV_FLAGS[2:], "--params", "70Q")
    fails(out, args, "--params", "'70Q'", "70B, 410M")


def test_missing_params(tmp_path, out):
    fails(out, ("import", "csv", csv_file(tmp_path, GOOD_CSV), *CSV_FLAGS[2:]), "--params is required", "--params 1279395840")


def test_invalid_regex(tmp_path, out):
    args = ("import", "csv", csv_file(tmp_path, GOOD_CSV), "--params", "1M", "--tokens-column", "tokens",
            "--accuracy-columns", "eval/acc/(")
    fails(out, args, "--accuracy-columns", "not a valid regular expression")


def test_regex_without_group(tmp_path, out):
    args = ("import", "csv", csv_file(tmp_path, GOOD_CSV), "--params", "1M", "--tokens-column", "tokens",
            "--accuracy-columns", "eval/acc/piqa")
    fails(out, args, "--accuracy-columns", "capture group")


def test_unknown_chance_level(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV.replace("eval/acc/piqa", "eval/acc/mytask"))
    fails(out, ("import", "csv", path, *CSV_FLAGS), str(path), "field 'chance'", "'mytask'", "--chance mytask=")


def test_bad_chance_override(tmp_path, out):
    fails(out, ("import", "csv", csv_file(tmp_path, GOOD_CSV), *CSV_FLAGS, "--chance", "piqa=1.5"),
          "--chance piqa=1.5", "[0, 1)")


def test_chance_override_for_missing_skill(tmp_path, out):
    fails(out, ("import", "csv", csv_file(tmp_path, GOOD_CSV), *CSV_FLAGS, "--chance", "pika=0.5"),
          "--chance pika", "skills are: piqa")


def test_unknown_params_kind(tmp_path, out):
    fails(out, ("import", "csv", csv_file(tmp_path, GOOD_CSV), *CSV_FLAGS, "--params-kind", "embedding"),
          "--params-kind", "non-embedding")


def test_existing_run_is_not_overwritten(tmp_path, out):
    path = csv_file(tmp_path, GOOD_CSV, name="keep.csv")
    fails(out, ("import", "csv", path, *CSV_FLAGS), str(out / "keep"), "already exists", "--overwrite")
    result = invoke("import", "csv", path, *CSV_FLAGS, "--out", out, "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert "eval/acc/piqa" in (out / "keep" / "run.json").read_text()


def test_second_file_bad_writes_nothing(tmp_path, out):
    """All or nothing: a bad second file leaves no trace of the good first one."""
    good = csv_file(tmp_path, GOOD_CSV, name="a.csv")
    bad = csv_file(tmp_path, GOOD_CSV.replace("0.6,", "1.6,"), name="b.csv")
    fails(out, ("import", "csv", good, bad, *CSV_FLAGS), f"{bad}:4")
    assert not (out / "a").exists()


# ---------------------------------------------------------------------------- lm-eval


LM_FLAGS = ("--params", "410M", "--tokens-per-step", "2097152")


def lm_file(tmp_path, data, name="410m_step1000.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_lm_eval_wrong_json_shape(tmp_path, out):
    path = lm_file(tmp_path, [{"acc": 0.5}])
    fails(out, ("import", "lm-eval", path, *LM_FLAGS), str(path), "field 'results'", "wrong JSON shape", "fix:")


def test_lm_eval_invalid_json(tmp_path, out):
    path = lm_file(tmp_path, '{"results": {')
    fails(out, ("import", "lm-eval", path, *LM_FLAGS), str(path), "not valid JSON", "fix:")


def test_lm_eval_no_step(tmp_path, out):
    path = lm_file(tmp_path, {"results": {"piqa": {"acc": 0.6}}}, name="results.json")
    fails(out, ("import", "lm-eval", path, *LM_FLAGS), str(path), "field 'config.model_args.revision'",
          "revision=step<N>")


def test_lm_eval_accuracy_out_of_range(tmp_path, out):
    path = lm_file(tmp_path, {"results": {"piqa": {"acc,none": 1.5}}})
    fails(out, ("import", "lm-eval", path, *LM_FLAGS), str(path), "field 'results.piqa.acc,none'", "outside [0, 1]")


def test_lm_eval_task_not_an_object(tmp_path, out):
    path = lm_file(tmp_path, {"results": {"piqa": 0.6}})
    fails(out, ("import", "lm-eval", path, *LM_FLAGS), str(path), "field 'results.piqa'", "fix:")


def test_lm_eval_folder_without_results(tmp_path, out):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing here")
    fails(out, ("import", "lm-eval", folder, *LM_FLAGS), str(folder), "no results JSON files", "fix:")


def test_lm_eval_duplicate_checkpoint(tmp_path, out):
    data = {"results": {"piqa": {"acc": 0.6}}, "config": {"model_args": "pretrained=m,revision=step1000"}}
    a = lm_file(tmp_path, data, name="a_step1000.json")
    b = lm_file(tmp_path, data, name="b_step1000.json")
    fails(out, ("import", "lm-eval", a, b, *LM_FLAGS), str(b), "field 'results.piqa'", "duplicate checkpoint")


def test_lm_eval_average_matching_nothing(tmp_path, out):
    path = lm_file(tmp_path, {"results": {"piqa": {"acc": 0.6}}})
    fails(out, ("import", "lm-eval", path, *LM_FLAGS, "--average", "hendrycksTest-=mmlu"),
          "--average hendrycksTest-=mmlu", "no task starts with")


def test_lm_eval_missing_tokens_per_step(tmp_path, out):
    path = lm_file(tmp_path, {"results": {"piqa": {"acc": 0.6}}})
    fails(out, ("import", "lm-eval", path, "--params", "410M"), "--tokens-per-step is required", "2097152")


# ---------------------------------------------------------------------------- table and long


BOARD = """Model,Family,Size (B),Tokens (T),GSM8K,MMLU
org/a-1b,a,1,0.1,0.01,0.25
org/a-7b,a,7,,0.2,0.4
"""
BOARD_FLAGS = ("--name-column", "Model", "--family-column", "Family", "--params-column", "Size (B)",
               "--params-unit", "1e9", "--tokens-column", "Tokens (T)", "--tokens-unit", "1e12")


def test_table_missing_tokens(tmp_path, out):
    path = csv_file(tmp_path, BOARD, name="board.csv")
    fails(out, ("import", "table", path, *BOARD_FLAGS), f"{path}:3", "field 'Tokens (T)'", "--missing-tokens skip")


def test_table_missing_skill_column(tmp_path, out):
    path = csv_file(tmp_path, BOARD.replace(",,", ",2,"), name="board.csv")
    fails(out, ("import", "table", path, *BOARD_FLAGS, "--skills", "GSM8K,ARC"), f"{path}:1", "field 'ARC'",
          "--skills", "'MMLU'")


def test_table_negative_params(tmp_path, out):
    path = csv_file(tmp_path, BOARD.replace(",,", ",2,").replace("a,7,", "a,-7,"), name="board.csv")
    fails(out, ("import", "table", path, *BOARD_FLAGS), f"{path}:3", "field 'Size (B)'", "below 0")


def test_table_duplicate_model(tmp_path, out):
    path = csv_file(tmp_path, BOARD.replace(",,", ",2,").replace("org/a-7b", "org/a-1b"), name="board.csv")
    fails(out, ("import", "table", path, *BOARD_FLAGS), f"{path}:3", "field 'Model'", "distinct name")


LONG = """model,params,step,tokens,task,metric,value,shots
m,1000000,0,0,piqa,acc,0.5,0
m,1000000,10,100,piqa,acc,0.6,0
m,1000000,10,100,piqa,acc,0.7,5
"""


def test_long_duplicate_checkpoint_needs_shots(tmp_path, out):
    path = csv_file(tmp_path, LONG, name="long.csv")
    fails(out, ("import", "long", path), f"{path}:4", "field 'step'", "duplicate checkpoint", "--shots")
    result = invoke("import", "long", path, "--shots", "0", "--out", out)
    assert result.exit_code == 0, result.stderr


def test_long_missing_value_column(tmp_path, out):
    path = csv_file(tmp_path, LONG.replace("value", "score"), name="long.csv")
    fails(out, ("import", "long", path), f"{path}:1", "field 'value'", "--value-column", "'score'")


def test_long_no_rows_for_metric(tmp_path, out):
    path = csv_file(tmp_path, LONG, name="long.csv")
    fails(out, ("import", "long", path, "--metric", "acc_norm"), str(path), "no rows with metric acc_norm", "fix:")


# ---------------------------------------------------------------------------- runs


def test_runs_directory_without_runs(tmp_path):
    assert_one_line_error(invoke("runs", tmp_path), str(tmp_path), "no runs found", "forecast import")


def test_runs_unknown_format_version(out):
    meta = json.loads((out / "keep" / "run.json").read_text())
    meta["format"] = 99
    (out / "keep" / "run.json").write_text(json.dumps(meta))
    assert_one_line_error(invoke("runs", out), str(out / "keep" / "run.json"), "field 'format'", "version 99",
                          "re-import")


def test_runs_missing_directory(tmp_path):
    assert_one_line_error(invoke("runs", tmp_path / "nope"), str(tmp_path / "nope"), "no such file", "fix:")
