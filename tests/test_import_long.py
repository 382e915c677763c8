"""`import long` on files as papers release them: empty steps (final checkpoints), a chance
column, loss-like and error-rate metrics by name, run-level losses, row filters."""

from __future__ import annotations

import math

import pytest
from helpers import assert_one_line_error, invoke, output, shared_data, snapshot
from overtrain import CHANCES, ITEMS, RATIOS, SIZES, model_name, tasks, write_table

import forecast
from forecast.importers import LongColumns, import_long


def test_overtrain_table_imports_with_one_command(tmp_path):
    """Acceptance: empty steps, a chance column, `loss` and `error` metrics; no per-task flags."""
    table = write_table(tmp_path / "ot.csv")
    result = invoke("import", "long", table, "--out", tmp_path / "runs", "--json")
    data = output(result, "import")
    assert len(data["runs"]) == len(SIZES) * len(RATIOS) == 15
    assert all(len(r["skills"]) == 17 and r["metrics"] == ["c4_val"] for r in data["runs"])
    runs = {r.name: r for r in forecast.load_runs(tmp_path / "runs")}
    run = runs[model_name(SIZES[2], RATIOS[1])]
    assert run.params == SIZES[2] and run.final_tokens == RATIOS[1] * SIZES[2] and run.family == "overtrain"
    for task, chance in zip(tasks(), CHANCES):
        s = run.series[task["name"]]
        assert s.chance == pytest.approx(chance, abs=1e-4) and list(s.step) == [0] and s.n[0] == ITEMS
        assert 0 <= s.accuracy[0] <= 1
    raw = [r for r in table.read_text().splitlines() if r.startswith(run.name + ",") and ",task00,error," in r]
    assert run.series["task00"].accuracy[0] == pytest.approx(1 - float(raw[0].split(",")[7]))
    assert run.extra["converted"]["task00"] == "accuracy = 1 - error"
    assert run.extra["loss_metric"]["c4_val"]["metric"] == "loss"
    assert not run.series["c4_val"].is_skill and run.series["c4_val"].loss[0] > 1.7


def test_empty_step_is_the_final_checkpoint(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("model,params,step,tokens,task,metric,value\n"
                    "m,100,10,1000,piqa,acc,0.55\n"
                    "m,100,,5000,piqa,acc,0.61\n"
                    "m,100,,5000,val,loss,3.2\n"
                    "m,100,10,1000,val,loss,3.9\n")
    (run,) = import_long(path)
    assert list(run.series["piqa"].step) == [10, 11] and list(run.series["piqa"].tokens) == [1000, 5000]
    assert list(run.series["val"].loss) == [3.9, 3.2] and "final_checkpoint" in run.extra


def test_no_step_column_at_all(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("model,params,tokens,task,metric,value\nm,100,5000,piqa,acc,0.6\n")
    (run,) = import_long(path)
    assert list(run.series["piqa"].step) == [0] and run.final_tokens == 5000


def test_loss_metrics_by_preference_and_conversion(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("model,params,step,tokens,task,metric,value\n"
                    "m,100,0,10,lambada,acc,0.1\n"
                    "m,100,0,10,lambada,ppl,100\n"
                    "m,100,0,10,lambada,bpb,1.5\n"
                    "m,100,0,10,wiki,ppl,20\n")
    (run,) = import_long(path)
    assert run.series["lambada"].loss[0] == 1.5  # bpb comes before ppl in the default preference
    assert run.series["wiki"].loss[0] == pytest.approx(math.log(20))
    assert run.extra["loss_metric"]["wiki"] == {"metric": "ppl", "as": "ln(ppl): nats per token"}
    (run,) = import_long(path, loss_metrics=("ppl",))
    assert run.series["lambada"].loss[0] == pytest.approx(math.log(100))


def test_chance_column_and_override(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("model,params,step,tokens,task,metric,value,chance\n"
                    "m,100,0,10,mystery,acc,0.3,0.2\n"
                    "m,100,1,20,mystery,acc,0.4,0.2\n"
                    "m,100,0,10,piqa,acc,0.5,\n")
    (run,) = import_long(path)
    assert run.series["mystery"].chance == 0.2 and run.series["piqa"].chance == 0.5  # empty cell: the known table
    (run,) = import_long(path, chance={"mystery": 0.25})
    assert run.series["mystery"].chance == 0.25


def test_where_keeps_the_chosen_rows(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("model,params,tokens,task,metric,value,excluded\n"
                    "a,100,1000,val,loss,3.0,0\n"
                    "b,200,1000,val,loss,2.9,1\n")
    runs = import_long(path, where={"excluded": "0"})
    assert [r.name for r in runs] == ["a"]


def test_chinchilla_imports_as_loss_only_runs(tmp_path):
    table = shared_data("chinchilla", "chinchilla_approach3.csv")
    result = invoke("import", "long", table, "--where", "excluded_in_epoch_fit=0", "--out", tmp_path / "runs", "--json")
    data = output(result, "import")
    assert len(data["runs"]) == 240 and "only the loss metric massivetext" in result.stderr
    run = forecast.load_runs(tmp_path / "runs")[0]
    assert run.skills == () and run.metrics == ("massivetext",) and run.family == "chinchilla-approach3"


BAD = "model,params,step,tokens,task,metric,value,chance\n"


@pytest.mark.parametrize("rows, flags, fragments", [
    ("m,100,,,piqa,acc,0.5,0.5\n", (), (":2", "empty tokens cell with an empty step")),
    ("m,100,0,10,t,acc,0.5,0.5\nm,100,1,20,t,acc,0.5,0.25\n", (), (":3", "chance 0.25 here", "one chance level")),
    ("m,100,0,10,t,acc,0.5,1.5\n", (), (":2", "field 'chance'", "random-guess accuracy")),
    ("m,100,0,10,t,error,42,0.5\n", (), (":2", "give an error rate as a fraction")),
    ("m,100,0,10,t,acc,0.5,0.5\n", ("--where", "nope=1"), ("field 'nope'", "--where")),
    ("m,100,0,10,t,acc,0.5,0.5\n", ("--where", "nocolumn"), ("--where: expected COLUMN=VALUE",)),
    ("m,100,0,10,t,acc,0.5,0.5\n", ("--loss-metrics", "acc"), ("'acc' is named as more than one kind",)),
    ("m,100,5,10,t,acc,0.5,0.5\nm,100,,5,t,acc,0.6,0.5\n", (), ("tokens decrease", "final checkpoint (empty step)")),
])
def test_long_bad_input(tmp_path, rows, flags, fragments):
    path = tmp_path / "long.csv"
    path.write_text(BAD + rows)
    out = tmp_path / "runs"
    before = snapshot(out)
    assert_one_line_error(invoke("import", "long", path, *flags, "--out", out), *fragments)
    assert snapshot(out) == before


def test_long_columns_explicit_step_must_exist(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("model,params,tokens,task,metric,value\nm,100,5,t,acc,0.5\n")
    with pytest.raises(forecast.DataError, match="no column 'iteration'"):
        import_long(path, columns=LongColumns(step="iteration"))
