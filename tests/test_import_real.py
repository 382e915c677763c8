"""The importers on the real public data in ../shared/data, read in place, through the CLI
with the exact command lines the README documents."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from helpers import invoke, output, shared_data

from forecast import load_runs

PYTHIA_TOKENS_PER_STEP = 2_097_152
# Non-embedding parameter counts from pythia/README.md (GPT-NeoX formula).
PYTHIA_NONEMBEDDING = {"70m": 18_915_328, "160m": 85_056_000, "410m": 302_311_424, "1b": 805_736_448,
                       "1.4b": 1_208_602_624, "2.8b": 2_517_652_480}
PYTHIA_FOLDERS = ["pythia-70m", "pythia-160m", "pythia-410m", "pythia-1.4b", "pythia-2.8b", "pythia-70m-deduped",
                  "pythia-160m-deduped", "pythia-410m-deduped", "pythia-1b-deduped", "pythia-1.4b-deduped",
                  "pythia-2.8b-deduped"]
# OLMo ladder sizes (olmo-ladder/README.md); 3B derived from its FLOPs per token, see README.
OLMO_PARAMS = {"190M": 190_354_176, "370M": 371_262_464, "760M": 758_220_288, "1B": 1_279_395_840,
               "3B": 2_907_109_450}
OLMO_SKILLS = {"mmlu", "hellaswag", "arc_easy", "arc_challenge", "boolq", "csqa", "openbookqa", "piqa", "socialiqa",
               "winogrande"}
OLMO_FLAGS = ("--family", "olmo-ladder", "--params-kind", "total",
              "--tokens-column", "throughput/total_tokens",
              "--flops-column", "throughput/total_training_Gflops", "--flops-unit", "1e9",
              "--accuracy-columns", "^eval/downstream/(mmlu|arc_easy|arc_challenge|[a-z]+)_",
              "--loss-columns", "^eval/downstream_bpb/(mmlu|arc_easy|arc_challenge|[a-z]+)_",
              "--metric-columns", "^eval/(.+)-validation/CrossEntropyLoss$")
LEADERBOARD_FLAGS = ("--name-column", "Model", "--family-column", "Model Family",
                     "--params-column", "Model Size (B)", "--params-unit", "1e9", "--params-kind", "total",
                     "--tokens-column", "Pretraining Data Size (T)", "--tokens-unit", "1e12",
                     "--flops-column", "FLOPs (1E21)", "--flops-unit", "1e21")


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def pythia_command(folder, out):
    size = folder.removeprefix("pythia-").removesuffix("-deduped")
    family = "pythia-deduped" if folder.endswith("-deduped") else "pythia"
    return ("import", "lm-eval", shared_data("pythia", folder), "--name", folder, "--family", family,
            "--params", PYTHIA_NONEMBEDDING[size], "--params-kind", "non-embedding",
            "--tokens-per-step", PYTHIA_TOKENS_PER_STEP, "--average", "hendrycksTest-=mmlu", "--out", out)


# ---------------------------------------------------------------------------- Pythia folders


@pytest.fixture(scope="module")
def pythia_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pythia")
    for folder in PYTHIA_FOLDERS:
        ok(invoke(*pythia_command(folder, out)))
    return out


def test_every_pythia_folder_imports_with_one_command(pythia_dir):
    runs = {r.name: r for r in load_runs(pythia_dir)}
    assert sorted(runs) == sorted(PYTHIA_FOLDERS)
    for run in runs.values():
        assert len(run.steps) == 27 and run.steps[0] == 0
        assert {"lambada_openai", "piqa", "arc_easy", "arc_challenge", "sciq", "winogrande", "mmlu"} <= set(run.skills)
        assert not any(s.startswith("hendrycksTest") for s in run.series)
        assert run.family == ("pythia-deduped" if run.name.endswith("deduped") else "pythia")


def test_pythia_410m_summary(pythia_dir):
    summaries = output(invoke("runs", pythia_dir / "pythia-410m", "--json"), "runs")["runs"]
    (s,) = summaries
    assert s["params"] == 302_311_424 and s["params_kind"] == "non-embedding"
    assert s["checkpoints"] >= 20 and s["tokens_min"] == 0 and s["tokens_max"] == 143_000 * PYTHIA_TOKENS_PER_STEP
    assert {"lambada_openai", "piqa", "arc_easy", "arc_challenge", "sciq", "winogrande"} <= set(s["skills"])
    assert "pythia-410m" in s["source"]
    (run,) = load_runs(pythia_dir / "pythia-410m")
    for series in run.series.values():
        np.testing.assert_array_equal(series.tokens, series.step * PYTHIA_TOKENS_PER_STEP)


def _evals_csv(model, metric):
    """{(task, step): (value, stderr)} of pythia_evals.csv, zero-shot."""
    with open(shared_data("pythia", "pythia_evals.csv")) as handle:
        return {(r["task"], int(r["step"])): (float(r["value"]), float(r["stderr"])) for r in csv.DictReader(handle)
                if r["model"] == model and r["shots"] == "0" and r["metric"] == metric}


def test_pythia_values_match_the_published_table(pythia_dir):
    """Accuracy, the size-weighted MMLU average and LAMBADA's ln(ppl) loss equal pythia_evals.csv."""
    (run,) = load_runs(pythia_dir / "pythia-410m")
    acc, ppl = _evals_csv("pythia-410m", "acc"), _evals_csv("pythia-410m", "ppl")
    for skill in ("piqa", "arc_easy", "lambada_openai", "mmlu"):
        s = run.series[skill]
        np.testing.assert_allclose(s.accuracy, [acc[(skill, int(t))][0] for t in s.step], rtol=1e-12)
        np.testing.assert_allclose(s.stderr, [acc[(skill, int(t))][1] for t in s.step], rtol=1e-9)
    assert run.series["mmlu"].n[0] == 14_042  # question count, from the stderrs
    lam = run.series["lambada_openai"]
    np.testing.assert_allclose(lam.loss, [math.log(ppl[("lambada_openai", int(t))][0]) for t in lam.step], rtol=1e-12)
    assert lam.chance == 0 and run.series["piqa"].chance == 0.5 and run.series["mmlu"].chance == 0.25


# ---------------------------------------------------------------------------- OLMo ladder


@pytest.fixture(scope="module")
def olmo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("olmo")
    folder = shared_data("olmo-ladder")
    for size, params in OLMO_PARAMS.items():
        files = sorted(folder.glob(f"{size}-*.csv"))
        ok(invoke("import", "csv", *files, "--params", params, *OLMO_FLAGS, "--out", out))
    return out


def test_all_olmo_ladder_csvs_import(olmo_dir):
    runs = load_runs(olmo_dir)
    assert len(runs) == 30 and len({r.name for r in runs}) == 30
    for run in runs:
        size = run.name.split("-")[0]
        assert run.family == "olmo-ladder" and run.params == OLMO_PARAMS[size]
        assert set(run.skills) == OLMO_SKILLS
        assert set(run.metrics) == {"c4_en", "dolma_books", "dolma_common-crawl", "dolma_pes2o", "dolma_reddit",
                                    "dolma_stack", "dolma_wiki", "ice", "m2d2_s2orc", "pile", "wikitext_103"}
        for skill in OLMO_SKILLS:
            s = run.series[skill]
            assert s.has_loss and np.all(np.isfinite(s.loss)) and np.all(np.isfinite(s.accuracy))
    chance = {s: runs[0].series[s].chance for s in OLMO_SKILLS}
    assert chance == {"mmlu": 0.25, "hellaswag": 0.25, "arc_easy": 0.25, "arc_challenge": 0.25, "openbookqa": 0.25,
                      "csqa": 0.2, "socialiqa": pytest.approx(1 / 3), "piqa": 0.5, "boolq": 0.5, "winogrande": 0.5}


def test_olmo_values_are_the_csv_columns(olmo_dir):
    """MMLU is the mean of its 8 subgroup × split columns; tokens and FLOPs are the logged ones."""
    path = shared_data("olmo-ladder", "1B-5xC.csv")
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    (run,) = [r for r in load_runs(olmo_dir) if r.name == "1B-5xC"]
    mmlu_cols = [c for c in rows[0] if c.startswith("eval/downstream/mmlu_")]
    assert len(mmlu_cols) == 8
    mmlu = run.series["mmlu"]
    assert len(mmlu.step) == len(rows)
    np.testing.assert_allclose(mmlu.accuracy, [np.mean([float(r[c]) for c in mmlu_cols]) for r in rows], rtol=1e-12)
    np.testing.assert_allclose(mmlu.tokens, [float(r["throughput/total_tokens"]) for r in rows])
    np.testing.assert_allclose(mmlu.flops, [float(r["throughput/total_training_Gflops"]) * 1e9 for r in rows])
    np.testing.assert_allclose(run.series["c4_en"].loss, [float(r["eval/c4_en-validation/CrossEntropyLoss"]) for r in rows])
    assert run.series["c4_en"].accuracy is None
    assert run.extra["columns"]["accuracy"]["boolq"] == ["eval/downstream/boolq_val_rc_5shot_acc"]


# ---------------------------------------------------------------------------- leaderboard


def test_leaderboard_keeps_all_134_models(tmp_path):
    """With --missing-tokens keep, all 134 rows are runs; 23 have unknown training tokens."""
    path = shared_data("leaderboard", "base-llm-benchmarks.csv")
    result = ok(invoke("import", "table", path, *LEADERBOARD_FLAGS, "--missing-tokens", "keep", "--out", tmp_path,
                       "--json"))
    written = output(result, "import")["runs"]
    assert len(written) == 134 and all(r["family"] and "GSM8K" in r["skills"] for r in written)
    unknown = [r["name"] for r in written if r["tokens_max"] is None]
    assert len(unknown) == 23 and "Qwen--Qwen2-7B" in unknown
    runs = {r.name: r for r in load_runs(tmp_path)}
    assert len(runs) == 134 and math.isnan(runs["Qwen--Qwen2-7B"].final_tokens)


def test_leaderboard_accounts_for_all_134_models(tmp_path):
    """111 models import; the 23 whose tokens and FLOPs are both unpublished are named as left out."""
    path = shared_data("leaderboard", "base-llm-benchmarks.csv")
    result = ok(invoke("import", "table", path, *LEADERBOARD_FLAGS, "--missing-tokens", "skip", "--out", tmp_path,
                       "--json"))
    written = output(result, "import")["runs"]
    notes = result.stderr.strip().splitlines()
    (note,) = [n for n in notes if "implausible input" not in n]
    assert "left out 23 models" in note and "Qwen/Qwen2-7B" in note
    (odd,) = [n for n in notes if "implausible input" in n]  # 627T tokens: the source's 627B in the wrong unit
    assert "cerebras--btlm-3b-8k-base" in odd and "tokens per parameter" in odd
    assert len(written) == 111 and len(written) + 23 == 134
    runs = {r.name: r for r in load_runs(tmp_path)}
    llama = runs["meta-llama--Llama-2-7b-hf"]
    assert llama.extra["model"] == "meta-llama/Llama-2-7b-hf" and llama.family == "Llama-2"
    assert llama.params == 7e9 and llama.final_tokens == 2e12 and llama.final_flops == pytest.approx(84e21)
    assert llama.series["GSM8K"].chance == 0 and llama.series["GSM8K"].accuracy[0] == pytest.approx(0.1448066717210007)
    assert all("GSM8K" in r.skills and r.family for r in runs.values())
    assert all(len(r.steps) == 1 and r.final_tokens > 0 for r in runs.values())
    # an empty benchmark cell skips that benchmark for that model only
    assert sum("HumanEval" not in r.skills for r in runs.values()) > 0


def test_leaderboard_without_skip_names_the_first_incomplete_row(tmp_path):
    path = shared_data("leaderboard", "base-llm-benchmarks.csv")
    result = invoke("import", "table", path, *LEADERBOARD_FLAGS, "--out", tmp_path)
    assert result.exit_code == 2 and "Qwen/Qwen2-57B-A14B" in result.stderr and "--missing-tokens skip" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- lm-eval 0.4


def test_lm_eval_04_files(tmp_path):
    folder = shared_data("lm-eval", "pilot-410k")
    ok(invoke("import", "lm-eval", folder, "--params", "410k", "--tokens-per-step", "2048",
              "--chance", "toy_add_mc=0.25", "--out", tmp_path))
    (run,) = load_runs(tmp_path)
    assert run.name == "pilot-410k" and run.params == 410_000
    mc, gen = run.series["toy_add_mc"], run.series["toy_add_gen"]
    assert list(mc.step) == [1000, 2000] and list(mc.tokens) == [2_048_000, 4_096_000]
    assert mc.accuracy[0] == 0.32 and mc.stderr[0] == pytest.approx(0.06663945022680343) and mc.n[0] == 50
    assert mc.chance == 0.25 and gen.chance == 0 and gen.accuracy[0] == 0.0  # exact match: chance 0
    assert run.extra["metric"] == {"toy_add_gen": "exact_match", "toy_add_mc": "acc"}


def test_lm_eval_04_acc_norm(tmp_path):
    folder = shared_data("lm-eval", "pilot-410k")
    ok(invoke("import", "lm-eval", folder, "--params", "410k", "--tokens-per-step", "2048", "--metric", "acc_norm",
              "--metric", "exact_match", "--chance", "toy_add_mc=0.25", "--out", tmp_path))
    (run,) = load_runs(tmp_path)
    assert run.series["toy_add_mc"].accuracy[0] == 0.3


# ---------------------------------------------------------------------------- pythia_evals.csv


def test_pythia_evals_long_table(tmp_path):
    path = shared_data("pythia", "pythia_evals.csv")
    result = ok(invoke("import", "long", path, "--metric", "acc", "--shots", "0",
                       "--params-column", "nonembedding_params", "--params-kind", "non-embedding", "--out", tmp_path))
    assert "pythia-1b-0.5MtokBS" in result.stderr  # five-shot-only ablation runs: named as left out
    runs = {r.name: r for r in load_runs(tmp_path)}
    sizes = ["70m", "160m", "410m", "1b", "1.4b", "2.8b"]
    assert set(runs) == {f"pythia-{s}{d}" for s in sizes for d in ("", "-deduped")}
    one_b = runs["pythia-1b"]
    assert one_b.params == PYTHIA_NONEMBEDDING["1b"] and one_b.family == "pythia" and len(one_b.steps) == 27
    assert {"lambada_openai", "piqa", "arc_easy", "mmlu", "winogrande"} <= set(one_b.skills)
    lam = one_b.series["lambada_openai"]
    assert np.all(np.isfinite(lam.loss)) and lam.loss[-1] < lam.loss[0]  # ln(ppl) falls with training
    np.testing.assert_array_equal(lam.tokens, lam.step * PYTHIA_TOKENS_PER_STEP)
