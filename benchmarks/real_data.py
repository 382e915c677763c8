"""Load the real public evaluation data in ../shared/data as runs (for the benchmarks).

Read in place (set FORECAST_SHARED_DATA to point elsewhere); never copied into the project.
The import settings are the ones README documents for `forecast import`.
"""

from __future__ import annotations

import csv
import os
import tempfile
import warnings
from pathlib import Path

from forecast.importers import LongColumns, import_long, import_table, import_wide_csv
from forecast.runs.model import Run

SHARED = Path(os.environ.get("FORECAST_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

OLMO_PARAMS = {"190M": 190_354_176, "370M": 371_262_464, "760M": 758_220_288, "1B": 1_279_395_840,
               "3B": 2_907_109_450}  # 3B from its FLOPs per token relative to the 1B (see README)
BOARD = dict(name_column="Model", family_column="Model Family", params_column="Model Size (B)", params_unit=1e9,
             params_kind="total", tokens_column="Pretraining Data Size (T)", tokens_unit=1e12,
             flops_column="FLOPs (1E21)", flops_unit=1e21)
EMERGENT_SKILLS = ("parsinlu_qa_2_acc", "word_unscrambling_2_exact_match", "ipa_transliterate_2_exact_match",
                   "arithmetic_3ds_2_acc", "arithmetic_3da_2_acc", "arithmetic_2dm_2_acc", "arithmetic_2da_2_acc")
"""The emergent tasks as accuracies (the BLEU column, 0–100, is not one)."""


def available() -> bool:
    return SHARED.exists()


def pythia() -> list[Run]:
    """12 runs (pythia and pythia-deduped, 70M–2.8B), zero-shot acc, LAMBADA loss = ln(ppl)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return import_long(SHARED / "pythia" / "pythia_evals.csv", columns=LongColumns(params="nonembedding_params"),
                           metrics=("acc",), shots=0, params_kind="non-embedding")


def olmo(splits: bool = False) -> list[Run]:
    """30 OLMo ladder runs: 5 sizes x 6 token budgets, accuracy and bits-per-byte task loss.
    By default the README's import (val and test averaged, the MMLU subgroups averaged);
    with `splits`, one skill per column (`arc_challenge_val`, `arc_challenge_test`,
    `mmlu_stem_val`, ...: 20 skills)."""
    if splits:
        accuracy, loss = r"^eval/downstream/(.+)_rc_5shot_(?:len_norm|acc)$", r"^eval/downstream_bpb/(.+)_rc_5shot_bpb$"
    else:
        accuracy = r"^eval/downstream/(mmlu|arc_easy|arc_challenge|[a-z]+)_"
        loss = r"^eval/downstream_bpb/(mmlu|arc_easy|arc_challenge|[a-z]+)_"
    runs = []
    for size, params in OLMO_PARAMS.items():
        runs += import_wide_csv(
            sorted((SHARED / "olmo-ladder").glob(f"{size}-*.csv")), params=params, params_kind="total",
            family="olmo-ladder", tokens_column="throughput/total_tokens",
            flops_column="throughput/total_training_Gflops", flops_unit=1e9,
            accuracy_columns=accuracy, loss_columns=loss, metric_columns=r"^eval/(.+)-validation/CrossEntropyLoss$")
    return runs


def leaderboard(missing_tokens: str = "keep") -> list[Run]:
    """Public base models, one checkpoint each; with "keep", models whose training tokens
    are unpublished are runs with unknown tokens (fitted in parameters alone)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return import_table(SHARED / "leaderboard" / "base-llm-benchmarks.csv", missing_tokens=missing_tokens,
                            **BOARD)


def emergent(missing_tokens: str = "keep") -> list[Run]:
    """The BIG-bench-style emergent tasks joined to the leaderboard on `Model` (sizes,
    tokens, families), as `forecast import table` reads a joined file."""
    board = {r["Model"]: r for r in csv.DictReader((SHARED / "leaderboard" / "base-llm-benchmarks.csv").open())}
    rows = [r for r in csv.DictReader((SHARED / "leaderboard" / "emergent-arithmetic.csv").open()) if r["Model"] in board]
    keys = [k for k in BOARD.values() if isinstance(k, str) and k in next(iter(board.values()))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "emergent-joined.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Model", *[k for k in keys if k != "Model"], *EMERGENT_SKILLS])
            for r in rows:
                writer.writerow([r["Model"], *[board[r["Model"]][k] for k in keys if k != "Model"],
                                 *[r[s] for s in EMERGENT_SKILLS]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return import_table(path, skills=list(EMERGENT_SKILLS), missing_tokens=missing_tokens,
                                chance={"parsinlu_qa_2_acc": 0.25}, **BOARD)


def families_with(runs: list[Run], members: int) -> list[Run]:
    """The runs of families with at least `members` distinct model sizes."""
    sizes: dict[str, set[float]] = {}
    for r in runs:
        sizes.setdefault(r.family, set()).add(r.params)
    return [r for r in runs if len(sizes[r.family]) >= members]
