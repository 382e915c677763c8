"""Diagnostics of the task-loss chain on the OLMo ladder: per skill, the 3B error of each
law fitted alone (fit ≤370M and ≤1B), and which law the full selection chose.

Run: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/chain_olmo.py [--laws all,two_step]` (~30 s).
A law set is `all` (the default candidates) or laws joined by `+`.

Measured (branch `chain`, 2 cores): the chain alone, fit ≤1.3B → 3B, mean rel. error 5.05%
(main) → 3.86% (link on final checkpoints in a budget ladder) → 3.51% (and step 1 with one
exponent); fit ≤370M → 3B the chain has no hold-out record (one size left to fit on in the
hold-out cannot give an N-trend of the task loss) and the level or a direct law stands.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import real_data  # noqa: E402

from forecast.backtesting.backtest import backtest  # noqa: E402
from forecast.fitting.fit import ALL_LAWS, FitOptions  # noqa: E402
from backtest_real import skip_middle  # noqa: E402


def errors(runs: list, laws: tuple[str, ...], draws: int) -> dict[str, tuple[str, float, float]]:
    """Per skill: (law chosen, MAE points, mean relative error %) over the 3B final checkpoints."""
    result = backtest(runs, holdout="largest", options=FitOptions(laws=laws, draws=draws))
    out = {}
    for sk in result.skills:
        finals = [p for p in sk.points if p.final]
        err = [abs(p.predicted - p.actual) for p in finals if p.predicted is not None]
        rel = [abs(p.predicted - p.actual) / p.actual for p in finals if p.predicted is not None]
        out[sk.skill] = (sk.law or "-", 100 * float(np.mean(err)) if err else float("nan"),
                         100 * float(np.mean(rel)) if rel else float("nan"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="all,two_step", help="comma-separated law sets to compare ('all': default)")
    parser.add_argument("--draws", type=int, default=100)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    olmo = real_data.olmo()
    for name, runs in (("≤370M → 3B", skip_middle(olmo, 4e8)), ("≤1B → 3B", olmo)):
        table = {}
        for laws in args.laws.split(","):
            table[laws] = errors(runs, ALL_LAWS if laws == "all" else tuple(laws.split("+")), args.draws)
        print(f"\nOLMo {name}: per skill, law chosen / MAE / rel.err % per law set")
        for skill in sorted(next(iter(table.values()))):
            print(f"  {skill:26s}" + "".join(f" | {laws[:10]:10s} {t[skill][0][:34]:34s} {t[skill][1]:5.2f} "
                                             f"{t[skill][2]:5.2f}" for laws, t in table.items()))
        for laws, t in table.items():
            print(f"  mean {laws}: MAE {np.nanmean([v[1] for v in t.values()]):.2f}, "
                  f"rel {np.nanmean([v[2] for v in t.values()]):.2f}%")


if __name__ == "__main__":
    main()
