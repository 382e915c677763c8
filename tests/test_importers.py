"""The importer library on small hand-made inputs: averaging, perplexity, filters, naming."""

from __future__ import annotations

import json
import math
import warnings

import pytest

from forecast import DataError, UsageError, load_runs, write_runs
from forecast.importers import (
    LongColumns, SkippedWarning, import_lm_eval, import_long, import_table, import_wide_csv, sanitize_run_name,
)


def test_sanitize_run_name():
    assert sanitize_run_name("meta-llama/Llama-2-7b-hf") == "meta-llama--Llama-2-7b-hf"
    assert sanitize_run_name("my model (v2)") == "my_model__v2_"
    assert sanitize_run_name(".hidden") == "_hidden"


# ---------------------------------------------------------------------------- lm-eval


def _old_file(tmp_path, step, results, model="org/tiny"):
    path = tmp_path / f"tiny_step{step}.json"
    path.write_text(json.dumps({"results": results, "config": {"model_args": f"pretrained={model},revision=step{step}",
                                                               "num_fewshot": 0}}))
    return path


def _subject(p, n):
    """An old-harness result for a subject with n questions: stderr = sqrt(p(1-p)/(n-1))."""
    return {"acc": p, "acc_stderr": math.sqrt(p * (1 - p) / (n - 1))}


def test_lm_eval_averages_subjects_by_size(tmp_path):
    for step in (0, 10):
        _old_file(tmp_path, step, {"hendrycksTest-a": _subject(0.3, 100), "hendrycksTest-b": _subject(0.5, 300),
                                   "piqa": {"acc": 0.6, "acc_stderr": 0.01}})
    (run,) = import_lm_eval([tmp_path], params=1e6, tokens_per_step=1000, average={"hendrycksTest-": "mmlu"})
    mmlu = run.series["mmlu"]
    assert mmlu.accuracy[0] == pytest.approx((0.3 * 100 + 0.5 * 300) / 400)
    assert mmlu.n[0] == 400 and set(run.skills) == {"mmlu", "piqa"}
    se_a, se_b = _subject(0.3, 100)["acc_stderr"], _subject(0.5, 300)["acc_stderr"]
    assert mmlu.stderr[0] == pytest.approx(math.hypot(100 * se_a, 300 * se_b) / 400)
    assert list(mmlu.tokens) == [0, 10_000]


def test_lm_eval_averages_equally_without_sizes(tmp_path):
    _old_file(tmp_path, 5, {"hendrycksTest-a": {"acc": 0.3}, "hendrycksTest-b": {"acc": 0.5}})
    (run,) = import_lm_eval([tmp_path], params=1e6, tokens_per_step=1, average={"hendrycksTest-": "mmlu"})
    assert run.series["mmlu"].accuracy[0] == pytest.approx(0.4) and run.series["mmlu"].n is None


def test_lm_eval_subtask_missing_at_one_checkpoint_is_an_error(tmp_path):
    _old_file(tmp_path, 0, {"hendrycksTest-a": {"acc": 0.3}, "hendrycksTest-b": {"acc": 0.5}})
    _old_file(tmp_path, 10, {"hendrycksTest-a": {"acc": 0.3}})
    with pytest.raises(DataError, match="lacks 1 of the 2"):
        import_lm_eval([tmp_path], params=1e6, tokens_per_step=1, average={"hendrycksTest-": "mmlu"})


def _v04_file(tmp_path, step, results, n_samples=None, name=None):
    path = tmp_path / (name or f"results_{step}.json")
    path.write_text(json.dumps({
        "results": results, "n-samples": n_samples or {}, "n-shot": {t: 0 for t in results},
        "config": {"model": "hf", "model_args": {"pretrained": "org/tiny", "revision": f"step{step}"}},
    }))
    return path


def test_lm_eval_04_perplexity_becomes_loss(tmp_path):
    _v04_file(tmp_path, 100, {"lambada_openai": {"alias": "lambada", "perplexity,none": 20.0,
                                                 "perplexity_stderr,none": 1.0, "acc,none": 0.3,
                                                 "acc_stderr,none": "N/A"}},
              n_samples={"lambada_openai": {"original": 5153, "effective": 5153}})
    (run,) = import_lm_eval([tmp_path], params=1e6, tokens_per_step=10)
    lam = run.series["lambada_openai"]
    assert lam.loss[0] == pytest.approx(math.log(20.0)) and lam.accuracy[0] == 0.3 and lam.n[0] == 5153
    assert lam.stderr is None and lam.chance == 0 and run.name == "tiny"


def test_lm_eval_04_filters(tmp_path):
    _v04_file(tmp_path, 100, {"gsm8k": {"exact_match,strict-match": 0.1, "exact_match,flexible-extract": 0.2}})
    with pytest.raises(DataError, match="several filters"):
        import_lm_eval([tmp_path], params=1e6, tokens_per_step=10)
    (run,) = import_lm_eval([tmp_path], params=1e6, tokens_per_step=10, metrics=["exact_match,flexible-extract"])
    assert run.series["gsm8k"].accuracy[0] == 0.2 and run.series["gsm8k"].chance == 0


def test_lm_eval_04_weights_subtasks_by_n_samples(tmp_path):
    _v04_file(tmp_path, 100, {"mmlu_a": {"acc,none": 0.2}, "mmlu_b": {"acc,none": 0.6}},
              n_samples={"mmlu_a": {"effective": 30}, "mmlu_b": {"effective": 10}})
    (run,) = import_lm_eval([tmp_path], params=1e6, tokens_per_step=10, average={"mmlu_": "mmlu"})
    assert run.series["mmlu"].accuracy[0] == pytest.approx((0.2 * 30 + 0.6 * 10) / 40)


def test_lm_eval_one_run_per_model(tmp_path):
    _old_file(tmp_path, 0, {"piqa": {"acc": 0.5}}, model="org/a")
    (tmp_path / "b").mkdir()
    _old_file(tmp_path / "b", 0, {"piqa": {"acc": 0.5}}, model="org/b")
    runs = import_lm_eval([tmp_path], params={"a": 1e6, "org/b": 2e6}, tokens_per_step=1)
    assert sorted((r.name, r.params) for r in runs) == [("a", 1e6), ("b", 2e6)]
    with pytest.raises(UsageError, match="2 models"):
        import_lm_eval([tmp_path], params={"a": 1e6, "b": 2e6}, tokens_per_step=1, name="x")


def test_lm_eval_refuses_one_params_for_several_models(tmp_path):
    """Issue 18 item 3: one --params for folders of different models gave every model that size."""
    _old_file(tmp_path, 0, {"piqa": {"acc": 0.5}}, model="org/a")
    (tmp_path / "b").mkdir()
    _old_file(tmp_path / "b", 0, {"piqa": {"acc": 0.5}}, model="org/b")
    with pytest.raises(UsageError, match=r"2 models \(a, b\).*`params=a=N`"):
        import_lm_eval([tmp_path], params=1e6, tokens_per_step=1)
    with pytest.raises(UsageError, match="no count for model 'b'"):
        import_lm_eval([tmp_path], params={"a": 1e6}, tokens_per_step=1)
    with pytest.raises(UsageError, match="`params=c=...`: no model of that name"):
        import_lm_eval([tmp_path], params={"a": 1e6, "b": 1e6, "c": 1e6}, tokens_per_step=1)


def test_lm_eval_notes_tasks_without_accuracy(tmp_path):
    _old_file(tmp_path, 0, {"piqa": {"acc": 0.5}, "crows": {"pct_stereotype": 0.5}})
    with pytest.warns(SkippedWarning, match="crows"):
        (run,) = import_lm_eval([tmp_path], params=1e6, tokens_per_step=1)
    assert run.skills == ("piqa",)


# ---------------------------------------------------------------------------- wide CSV


def test_wide_csv_averages_columns_and_skips_partial_rows(tmp_path):
    path = tmp_path / "run.csv"
    path.write_text("_step,tok,acc/mmlu_a,acc/mmlu_b,bpb/mmlu_a,val\n"
                    "0,0,0.2,0.4,2.0,5\n"
                    "10,100,0.3,,1.5,4\n"
                    "20,200,0.5,0.7,1.0,\n")
    (run,) = import_wide_csv([path], params=1e6, tokens_column="tok", accuracy_columns=r"acc/(mmlu)_",
                             loss_columns=r"bpb/(mmlu)_", metric_columns=r"^(val)$", family="lad")
    mmlu = run.series["mmlu"]
    assert list(mmlu.step) == [0, 20] and list(mmlu.accuracy) == pytest.approx([0.3, 0.6])
    assert list(mmlu.loss) == [2.0, 1.0]
    assert list(run.series["val"].step) == [0, 10] and run.metrics == ("val",)
    assert list(mmlu.flops) == [0, 6e6 * 200]  # 6 · params · tokens without a FLOPs column


def test_wide_csv_flops_column_with_unit(tmp_path):
    path = tmp_path / "run.csv"
    path.write_text("_step,gflops,acc_piqa\n0,0,0.5\n10,3,0.6\n")
    (run,) = import_wide_csv([path], params=1e6, tokens_per_step=50, flops_column="gflops", flops_unit=1e9,
                             accuracy_columns="acc_(.+)")
    assert list(run.series["piqa"].flops) == [0, 3e9] and list(run.series["piqa"].tokens) == [0, 500]


# ---------------------------------------------------------------------------- table


def test_table_tokens_from_flops_and_skip(tmp_path):
    path = tmp_path / "board.csv"
    path.write_text("name,size,flops,GSM8K,MMLU\n"
                    "a/x,2,1.2,0.1,\n"
                    "a/y,4,,0.2,0.3\n")
    with pytest.warns(SkippedWarning, match="a/y"):
        (run,) = import_table(path, name_column="name", params_column="size", params_unit=1e9, flops_column="flops",
                              flops_unit=1e21, missing_tokens="skip", family="fam")
    assert run.name == "a--x" and run.final_tokens == pytest.approx(1.2e21 / (6 * 2e9)) and run.skills == ("GSM8K",)
    assert run.family == "fam" and run.source.endswith("board.csv line 2")


# ---------------------------------------------------------------------------- long


def test_long_metric_preference_and_perplexity(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("model,params,step,task,metric,value,stderr\n"
                    "m,100,0,lambada,acc,0.0,0.001\n"
                    "m,100,0,lambada,ppl,1000,5\n"
                    "m,100,5,lambada,acc,0.2,0.01\n"
                    "m,100,5,lambada,ppl,50,1\n"
                    "m,100,0,hellaswag,acc,0.25,0.01\n"
                    "m,100,0,hellaswag,acc_norm,0.26,0.01\n"
                    "m,100,5,hellaswag,acc,0.3,0.01\n"
                    "m,100,5,hellaswag,acc_norm,0.32,0.01\n")
    (run,) = import_long(path, metrics=["acc_norm", "acc"], tokens_per_step=10, columns=LongColumns())
    assert list(run.series["hellaswag"].accuracy) == [0.26, 0.32]
    lam = run.series["lambada"]
    assert list(lam.accuracy) == [0.0, 0.2] and list(lam.loss) == pytest.approx([math.log(1000), math.log(50)])
    assert list(lam.tokens) == [0, 50] and run.extra["metric"] == {"hellaswag": "acc_norm", "lambada": "acc"}


def test_library_runs_round_trip(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("model,params,step,tokens,task,metric,value\nm,100,0,0,piqa,acc,0.5\nm,100,1,10,piqa,acc,0.6\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = import_long(path)
    write_runs(runs, tmp_path / "runs")
    (loaded,) = load_runs(tmp_path / "runs")
    assert loaded.content_hash == runs[0].content_hash


def test_lm_eval_04_groups_are_not_averaged_in(tmp_path):
    """0.4 writes group aggregates (mmlu_stem) next to subjects; averaging them in would double count."""
    path = tmp_path / "results_1.json"
    path.write_text(json.dumps({
        "results": {"mmlu_stem": {"acc,none": 0.9}, "mmlu_a": {"acc,none": 0.2}, "mmlu_b": {"acc,none": 0.4}},
        "group_subtasks": {"mmlu_stem": ["mmlu_a", "mmlu_b"]},
        "config": {"model_args": "pretrained=x,revision=step1"},
    }))
    (run,) = import_lm_eval([path], params=1e6, tokens_per_step=1, average={"mmlu_": "mmlu"})
    assert run.skills == ("mmlu",) and run.series["mmlu"].accuracy[0] == pytest.approx(0.3)


def test_chance_of_look_alike_benchmarks():
    from forecast.runs.benchmarks import chance_for

    assert chance_for("mmlu_pro") == 0.1 and chance_for("mmlu_stem_val") == 0.25
    assert chance_for("mathqa") == 0.2 and chance_for("gsm8k") == 0.0 and chance_for("ARC-C") == 0.25


def test_lm_eval_04_nested_groups_and_leaf_keys_read_once(tmp_path):
    """lm-eval 0.4 lists a top group (mmlu), its subgroups (mmlu_stem) and every leaf task
    (with an empty list) in group_subtasks: each subject is counted once, the harness's own
    averages are left out with a note, and a leaf key is still a task."""
    path = tmp_path / "results_1.json"
    path.write_text(json.dumps({
        "results": {"mmlu": {"acc,none": 0.7}, "mmlu_stem": {"acc,none": 0.9}, "mmlu_a": {"acc,none": 0.2},
                    "mmlu_b": {"acc,none": 0.4}, "mmlu_c": {"acc,none": 0.6}},
        "group_subtasks": {"mmlu": ["mmlu_stem", "mmlu_c"], "mmlu_stem": ["mmlu_a", "mmlu_b"], "mmlu_a": [],
                           "mmlu_b": [], "mmlu_c": []},
        "config": {"model_args": "pretrained=x,revision=step1"},
    }))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedWarning)
        (run,) = import_lm_eval([path], params=1e6, tokens_per_step=1, average={"mmlu_": "mmlu"})
    assert run.skills == ("mmlu",) and run.series["mmlu"].accuracy[0] == pytest.approx(0.4)
    said = " ".join(str(w.message) for w in caught)
    assert "mmlu, mmlu_stem" in said and "3 subtasks is counted once" in said


WANDB = ("Step,run-a - eval/piqa_acc,run-a - eval/piqa_acc__MIN,run-a - eval/piqa_acc__MAX,"
         "run-b - eval/piqa_acc,run-b - eval/piqa_acc__MIN,run-b - eval/piqa_acc__MAX\n"
         "0,0.5,0.5,0.5,0.25,0.25,0.25\n100,0.55,0.54,0.56,,,\n200,0.6,0.6,0.6,0.62,0.61,0.63\n")


def test_wandb_multi_run_export_is_one_run_per_prefix(tmp_path):
    """A W&B chart export of two runs: two runs, each its own column (no MIN/MAX averaged in),
    run-a keeps the step where run-b is empty; notes name what was left out."""
    path = tmp_path / "chart.csv"
    path.write_text(WANDB)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedWarning)
        runs = import_wide_csv([path], params={"run-a": 1e6, "run-b": 2e6}, step_column="Step", tokens_per_step=1000,
                               accuracy_columns=r"eval/(\w+)_acc")
    a, b = sorted(runs, key=lambda r: r.name)
    assert (a.name, a.params, b.name, b.params) == ("run-a", 1e6, "run-b", 2e6)
    assert list(a.series["piqa"].step) == [0, 100, 200] and list(a.series["piqa"].accuracy) == [0.5, 0.55, 0.6]
    assert list(b.series["piqa"].step) == [0, 200] and list(b.series["piqa"].accuracy) == [0.25, 0.62]
    said = " ".join(str(w.message) for w in caught)
    assert "4 W&B min/max columns" in said and "'run-b' is empty on 1 of 3 rows" in said


def test_wandb_export_with_one_params_says_so(tmp_path):
    path = tmp_path / "chart.csv"
    path.write_text(WANDB)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedWarning)
        runs = import_wide_csv([path], params=1e6, step_column="Step", tokens_per_step=1000,
                               accuracy_columns=r"eval/(\w+)_acc")
    assert len(runs) == 2 and any("all 2 runs of the export get --params" in str(w.message) for w in caught)
    with pytest.raises(UsageError, match="no count for run 'run-b'"):
        import_wide_csv([path], params={"run-a": 1e6}, step_column="Step", tokens_per_step=1000,
                        accuracy_columns=r"eval/(\w+)_acc")
