"""Cut the shipped slices (runs/real/sources/*.csv) from the public tables in ../shared/data.

    python runs/real/slice.py ../shared/data

Rows and columns are copied verbatim (no value is changed); see runs/real/README.md for
what is kept and why."""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

LEADERBOARD_COLUMNS = ["Model", "Model Family", "Model Size (B)", "Pretraining Data Size (T)", "FLOPs (1E21)",
                       "MMLU", "ARC-C", "HellaSwag", "GSM8K"]
PYTHIA_STEPS = {"1000", "3000", "13000", "33000", "63000", "103000", "143000"}  # 2.1B ... 300B tokens
PYTHIA_ROWS = {("arc_easy", "acc"), ("sciq", "acc"), ("lambada_openai", "acc"), ("lambada_openai", "ppl")}


def main(shared: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(shared / "leaderboard" / "base-llm-benchmarks.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Pretraining Data Size (T)"]]  # tokens known: fits place models in tokens
    sizes = Counter(r["Model Family"] for r in rows)
    # families of >= 3 models (a trend a hold-out can check); Pythia comes as a trajectory below instead
    kept = [r for r in rows if sizes[r["Model Family"]] >= 3 and r["Model Family"] != "Pythia"]
    with open(out / "leaderboard.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, LEADERBOARD_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
    with open(shared / "pythia" / "pythia_evals.csv", newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        pythia = [r for r in reader if r["family"] == "pythia" and r["shots"] == "0" and r["step"] in PYTHIA_STEPS
                  and (r["task"], r["metric"]) in PYTHIA_ROWS]
    with open(out / "pythia.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(pythia)
    print(f"{len(kept)} leaderboard rows, {len(pythia)} pythia rows -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"), Path(__file__).resolve().parent / "sources")
