"""Forecasting a run while it trains, on the real ladders and on planted synthetic runs.

Run: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/in_progress.py [--quick] [--trials N] [--only real|synthetic]`.

1. Real data (`forecast backtest --partial` in code): the largest run of each ladder has its
   end hidden; from each visible share of its steps, the final accuracy of every skill with
   a benchmark of ≥ 1,000 items is forecast (updated by the visible checkpoints), beside the
   ladder-only forecast and the run's own curve extrapolated alone. Columns: MAE (accuracy
   points) of each; the updated MAE as a share of the ladder-only one; 80% coverage of the
   updated and the ladder-only interval; the binomial floor: the MAE a forecaster that knew
   each model's true final accuracy would make against one evaluation of it if that
   evaluation's error were independent of everything before it, √(2/π)·mean binomial stderr
   of the final checkpoint (the ladder-only forecast cannot beat it; the run's own checkpoints
   can, as they share the evaluation's items with its end); the run's checkpoints alone
   (through the ladder's schedule shape, no prior) and the best fixed mix of that and the
   ladder, its weight chosen in hindsight; the oracle curve (`oracle_floor`); and how many
   items had the off-path alarm standing.
   Cases: Pythia (and Pythia-deduped) ≤ 1.4B → 2.8B; OLMo ladder ≤ 1B → the six 3B runs.
2. Synthetic (`forecast.runs.synthetic`): a ladder of 4 sizes from a known law, a target one
   doubling larger with 40 checkpoints; planted off-path runs (accuracy moved by a known
   amount from 30% of training on) and on-path runs (the law, binomial noise only): how
   often the alarm rises, and how many checkpoints after the shift.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
import real_data  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from forecast.backtesting.partial import PartialBacktest, partial_backtest  # noqa: E402
from forecast.fits import fit  # noqa: E402
from forecast.fitting.fit import FitOptions  # noqa: E402
from forecast.forecasting.in_progress import update_with_run  # noqa: E402
from forecast.forecasting.off_path import first_alarm  # noqa: E402
from forecast.runs.benchmarks import items_for  # noqa: E402
from forecast.runs.synthetic import synthetic_ladder  # noqa: E402

console = Console(width=190)


def noise_floor(result: PartialBacktest) -> float:
    """√(2/π) × mean binomial stderr of the scored final accuracies (accuracy, fraction)."""
    finals = {(i.run, i.skill): i.actual for i in result.items}
    se = [math.sqrt(a * (1 - a) / items_for(s)) for (_, s), a in finals.items()]
    return math.sqrt(2 / math.pi) * float(np.mean(se))


def oracle_floor(result: PartialBacktest, runs) -> float:
    """MAE (fraction) of an oracle that knows each held-out run's smooth curve: a quadratic in
    ln tokens through its own checkpoints from 25% of training to the end, the end included,
    read at the end. What is left is the final evaluation's own scatter about its run's curve,
    which no forecast from earlier checkpoints can remove."""
    by_name = {r.name: r for r in runs}
    errors = []
    for run_name, skill in sorted({(i.run, i.skill) for i in result.items}):
        s = by_name[run_name].series[skill]
        ok = np.isfinite(s.tokens) & np.isfinite(s.accuracy) & (s.tokens > 0)
        order = np.argsort(s.tokens[ok])
        tokens, acc = s.tokens[ok][order], s.accuracy[ok][order]
        late = tokens >= 0.25 * tokens[-1]
        x = np.log(tokens[late])
        errors.append(abs(float(np.polyval(np.polyfit(x, acc[late], 2), x[-1])) - acc[-1]))
    return float(np.mean(errors))


def best_mix(rows) -> tuple[float, float]:
    """(MAE, weight c) of the best fixed mix c·run-alone + (1 − c)·ladder-only, chosen in
    hindsight on these items: no precision weighting of the two readings can do better."""
    rows = [i for i in rows if i.run_alone is not None and i.ladder is not None]
    return min((float(np.mean([abs(c * i.run_alone + (1 - c) * i.ladder - i.actual) for i in rows])), float(c))
               for c in np.linspace(0, 1, 41))


def real_table(cases, shares) -> Table:
    t = Table(title="Final accuracy from part of the run: MAE in points (items: run × skill, benchmarks ≥ 1,000 items)",
              title_justify="left")
    for h in ("case", "seen", "items", "updated", "ladder only", "run alone", "best mix", "own curve", "upd/ladder",
              "cov. upd", "cov. ladder", "binomial floor", "oracle curve", "off-path"):
        t.add_column(h, justify="left" if h == "case" else "right")
    pooled = []
    for name, runs in cases:
        start = time.time()
        result = partial_backtest(runs, shares, holdout="largest")
        floor, oracle = noise_floor(result), oracle_floor(result, runs)
        for s in result.scores:
            rows = [i for i in result.items if i.share == s.share]
            flagged = sum(i.off_path for i in rows)
            mix, weight = best_mix(rows)
            t.add_row(name, f"{100 * s.share:.0f}%", str(s.items), f"{100 * s.mae:.2f}", f"{100 * s.ladder_mae:.2f}",
                      f"{100 * s.run_alone_mae:.2f}", f"{100 * mix:.2f} ({weight:.2f})", f"{100 * s.own_mae:.2f}",
                      f"{s.mae / s.ladder_mae:.2f}", f"{100 * s.coverage:.0f}%", f"{100 * s.ladder_coverage:.0f}%",
                      f"{100 * floor:.2f}", f"{100 * oracle:.2f}", str(flagged))
        pooled += list(result.items)
        t.add_row(f"  ({time.time() - start:.0f} s; coverage over items and shares "
                  f"{100 * result.coverage:.0f}%)", *[""] * 13)
    hits = [i.low <= i.actual <= i.high for i in pooled]
    t.caption = (f"coverage over every case, item and share: {100 * np.mean(hits):.0f}% of {len(hits)}; best mix: "
                 "c·run alone + (1 − c)·ladder with c (in brackets) chosen in hindsight; oracle curve: a quadratic in "
                 "ln tokens through the run's own checkpoints from 25% to the end, read at the end")
    return t


def synthetic_table(trials: int) -> Table:
    from test_in_progress import N_EVAL, SIZES, TOKENS, TRUTH, target_run

    runs = synthetic_ladder(TRUTH, SIZES, tokens_range=TOKENS, checkpoints=24, n_eval=N_EVAL,
                            rng=np.random.default_rng(1))
    ladder = fit(runs, options=FitOptions(draws=60, laws=("grok_scaling", "compute_sigmoid")))
    t = Table(title=f"Off-path alarm, synthetic ladder ({trials} trials per shift, {3 * trials} on the path; "
              "target 16M params, 40 checkpoints)",
              title_justify="left")
    for h in ("planted shift after 30%", "flagged", "checkpoints after the shift (median, max)", "false alarm before"):
        t.add_column(h, justify="right")
    for shift in (0.0, -0.2, -0.1, -0.05, 0.05, 0.1):
        delays, early, flagged = [], 0, 0
        for seed in range(trials if shift else 3 * trials):
            run = target_run(np.random.default_rng(1000 + seed), shift_after=None if shift == 0 else 0.3, shift=shift)
            (f,) = update_with_run(ladder, run, TOKENS[1])
            z = np.array([c.z for c in f.checkpoints])
            alarm = first_alarm(z, np.array([c.innovation for c in f.checkpoints]))
            first_shifted = next(i for i, c in enumerate(f.checkpoints) if c.fraction >= 0.3)
            if alarm is None:
                continue
            flagged += 1
            if shift != 0 and alarm < first_shifted:
                early += 1
            elif shift != 0:
                delays.append(alarm - first_shifted + 1)
        delay = f"{np.median(delays):.0f}, {max(delays)}" if delays else "-"
        t.add_row("none (on path)" if shift == 0 else f"{shift:+.2f}", f"{flagged}/{trials if shift else 3 * trials}",
                  delay,
                  "-" if shift == 0 else str(early))
    t.caption = "checkpoints after the shift: 1 = flagged at the first shifted checkpoint's evaluation"
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Pythia and OLMo only, no deduped case")
    parser.add_argument("--trials", type=int, default=100, help="synthetic trials per planted shift")
    parser.add_argument("--only", choices=("real", "synthetic"), help="one of the two tables")
    args = parser.parse_args()
    shares = (0.1, 0.25, 0.5)
    cases = []
    if args.only == "synthetic":
        pass
    elif real_data.available():
        py = real_data.pythia()
        cases.append(("Pythia ≤1.4B → 2.8B", [r for r in py if r.family == "pythia"]))
        if not args.quick:
            cases.append(("Pythia-deduped ≤1.4B → 2.8B", [r for r in py if r.family == "pythia-deduped"]))
        cases.append(("OLMo ≤1B → 3B (6 runs)", real_data.olmo()))
        console.print(real_table(cases, shares))
    else:
        console.print(f"no shared data at {real_data.SHARED}: real-data table skipped")
    if args.only != "real":
        console.print(synthetic_table(args.trials))


if __name__ == "__main__":
    main()
