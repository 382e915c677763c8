"""Backtest forecasts on real ladders: hold out the largest models, fit the rest, score.

Run: `.venv/bin/python benchmarks/backtest_real.py [--quick]`. Prints one row per dataset:
MAE in accuracy points and mean relative error on the held-out final checkpoints, 80%
interval coverage over all held-out checkpoints (and finals), and the same errors for two
baselines run in the same process: `carry` (the largest fitted model's value at the same
tokens) and `loglinear` (a straight line in log compute). Skills the fit calls
not-predictable are excluded from every column (counted in `pred`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_data  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from forecast.backtesting import backtest  # noqa: E402
from forecast.fitting import FitOptions  # noqa: E402


def cases(quick: bool):
    py = real_data.pythia()
    yield "Pythia ≤1.4B → 2.8B", [r for r in py if r.family == "pythia"], "largest"
    yield "Pythia-deduped ≤1.4B → 2.8B", [r for r in py if r.family == "pythia-deduped"], "largest"
    olmo = real_data.olmo()
    yield "OLMo ≤1B → 3B", olmo, "largest"
    if not quick:
        yield "OLMo ≤760M → 1B,3B", olmo, "largest:2"
        board = real_data.leaderboard()
        counts = {}
        for r in board:
            counts.setdefault(r.family, set()).add(r.params)
        families = {f for f, sizes in counts.items() if len(sizes) >= 3}
        yield f"Leaderboard, {len(families)} families ≥3 sizes", [r for r in board if r.family in families], "largest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Pythia and OLMo ≤1B → 3B only")
    parser.add_argument("--draws", type=int, default=FitOptions().draws)
    parser.add_argument("--per-skill", action="store_true", help="also print one row per skill")
    args = parser.parse_args()
    if not real_data.available():
        sys.exit(f"no data at {real_data.SHARED}; set FORECAST_SHARED_DATA")
    console = Console(width=220)
    table = Table(title="Backtest on real ladders (held-out finals; accuracy points)")
    for col in ("dataset", "pred", "MAE", "rel.err", "cover80 all/final", "carry MAE", "carry rel",
                "loglin MAE", "loglin rel", "grok |log10|", "time s"):
        table.add_column(col, justify="right" if col != "dataset" else "left")
    per_skill = []
    for name, runs, holdout in cases(args.quick):
        start = time.perf_counter()
        result = backtest(runs, holdout=holdout, options=FitOptions(draws=args.draws))
        elapsed = time.perf_counter() - start
        s = result.summary()
        pct = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
        table.add_row(name, f"{s['predicted']}/{s['skills']}", pct(s["mae"]), pct(s["relative_error"]),
                      f"{pct(s['coverage'])}/{pct(s['coverage_final'])}", pct(s["carry_mae"]),
                      pct(s["carry_relative_error"]), pct(s["loglinear_mae"]), pct(s["loglinear_relative_error"]),
                      "-" if s["grok_log10_error"] is None else f"{s['grok_log10_error']:.2f}", f"{elapsed:.0f}")
        for sk in result.skills:
            per_skill.append((name, sk.skill, sk.family, sk.law or f"not-predictable: {sk.reason}", sk.mae(),
                              sk.mae("carry"), sk.mae("loglinear")))
    console.print(table)
    if args.per_skill:
        t = Table(title="Per skill (final-checkpoint MAE, points)")
        for col in ("dataset", "family", "skill", "law", "MAE", "carry", "loglin"):
            t.add_column(col)
        for name, skill, family, law, mae, carry, loglin in per_skill:
            f = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
            t.add_row(name, family, skill, law[:60], f(mae), f(carry), f(loglin))
        console.print(t)


if __name__ == "__main__":
    main()
