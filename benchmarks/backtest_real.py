"""Backtest forecasts on real ladders and leaderboards: hold out the largest models, fit the
rest, and score every item (a skill at a held-out model's final checkpoint).

Run: `.venv/bin/python benchmarks/backtest_real.py [--quick] [--draws N] [--per-skill]`.
Prints one row per dataset: items with a number / all items; MAE (accuracy points) and
mean relative error over *all* items, where an item with no number counts with the
carried-over value's error; the same for the two baselines run in the same process
(`carry`: the largest fitted model's value; `loglin`: a line in log compute); the ratio of
the MAE to the carry-over MAE; 80% interval coverage overall and per confidence grade
(coverage %, and how many items got that grade).

Datasets: Pythia ≤1.4B → 2.8B (and deduped); the OLMo ladder ≤1B → 3B and ≤760M → 1B, 3B;
every leaderboard family with ≥ 2 sizes (its largest predicted from the rest), fitted
within the family alone and with the other families pooled (`--pool families`); and the
BIG-bench-style emergent tasks joined to the leaderboard.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_data  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from forecast.backtesting.backtest import backtest  # noqa: E402
from forecast.fitting.fit import FitOptions  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    runs: list
    holdout: str
    pool: str | None = None


def cases(quick: bool, pool: bool) -> list[Case]:
    py = real_data.pythia()
    out = [Case("Pythia ≤1.4B → 2.8B", [r for r in py if r.family == "pythia"], "largest"),
           Case("Pythia-deduped ≤1.4B → 2.8B", [r for r in py if r.family == "pythia-deduped"], "largest")]
    olmo = real_data.olmo()
    out.append(Case("OLMo ≤1B → 3B", olmo, "largest"))
    if quick:
        return out
    out.append(Case("OLMo ≤760M → 1B, 3B", olmo, "largest:2"))
    board = real_data.families_with(real_data.leaderboard(), 2)
    emergent = real_data.families_with(real_data.emergent(), 2)
    out.append(Case(f"Leaderboard, {len({r.family for r in board})} families ≥2 sizes", board, "largest"))
    if pool:
        out.append(Case("  … with the other families pooled", board, "largest", "families"))
    out.append(Case(f"Emergent tasks, {len({r.family for r in emergent})} families ≥2", emergent, "largest"))
    if pool:
        out.append(Case("  … with the other families pooled", emergent, "largest", "families"))
    return out


def pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}"


def grade(s: dict, g: str) -> str:
    c = s["coverage_by_confidence"][g]
    return "-" if not c["count"] else f"{pct(c['coverage'], 0)} ({c['count']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Pythia and OLMo ≤1B → 3B only")
    parser.add_argument("--draws", type=int, default=FitOptions().draws)
    parser.add_argument("--no-pool", action="store_true", help="skip the pooled-families rows")
    parser.add_argument("--per-skill", action="store_true", help="also print one row per skill")
    args = parser.parse_args()
    if not real_data.available():
        sys.exit(f"no data at {real_data.SHARED}; set FORECAST_SHARED_DATA")
    console = Console(width=240)
    table = Table(title="Backtest on real data: held-out final checkpoints, accuracy points, all items")
    for col in ("dataset", "numbered/items", "MAE", "rel.err %", "carry MAE", "carry rel %", "loglin MAE",
                "MAE/carry", "cover80 %", "high", "medium", "low", "time s"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    per_skill = []
    for case in cases(args.quick, not args.no_pool):
        start = time.perf_counter()
        options = FitOptions(draws=args.draws, pool=case.pool)
        result = backtest(case.runs, holdout=case.holdout, options=options)
        elapsed = time.perf_counter() - start
        s = result.summary()
        ratio = None if not s["carry_mae_all"] else s["mae_all"] / s["carry_mae_all"]
        table.add_row(case.name, f"{s['numbered']}/{s['items']}", pct(s["mae_all"]), pct(s["relative_error_all"]),
                      pct(s["carry_mae_all"]), pct(s["carry_relative_error_all"]), pct(s["loglinear_mae_all"]),
                      "-" if ratio is None else f"{ratio:.2f}", pct(s["coverage"], 1), grade(s, "high"),
                      grade(s, "medium"), grade(s, "low"), f"{elapsed:.0f}")
        for sk in result.skills:
            for p in sk.points:
                if p.final:
                    per_skill.append((case.name, sk.family, sk.skill, p.run, sk.law or f"np: {sk.reason}", p))
    console.print(table)
    if args.per_skill:
        t = Table(title="Per item (final checkpoints, points)")
        for col in ("dataset", "family", "skill", "run", "law", "actual", "forecast [80%]", "conf", "carry"):
            t.add_column(col)
        for name, family, skill, run, law, p in per_skill:
            cell = "-" if p.predicted is None else f"{pct(p.predicted, 1)} [{pct(p.low, 1)}–{pct(p.high, 1)}]"
            t.add_row(name[:20], family, skill, run[:28], law[:40], pct(p.actual, 1), cell, p.confidence or "-",
                      pct(p.carry, 1))
        console.print(t)


if __name__ == "__main__":
    main()
