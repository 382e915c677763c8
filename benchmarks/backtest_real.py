"""Backtest forecasts on real ladders and leaderboards: hold out the largest models, fit the
rest, and score every item (a skill at a held-out model's final checkpoint).

Run: `.venv/bin/python benchmarks/backtest_real.py [--quick] [--draws N] [--per-skill]`.
Prints one row per dataset: items with a number / all items; MAE (accuracy points) and
mean relative error over *all* items, where an item with no number counts with the
carried-over value's error; the same for the two baselines run in the same process
(`carry`: the largest fitted model's value; `loglin`: a line in log compute); the ratio of
the MAE to the carry-over MAE; 80% interval coverage overall and per confidence grade
(coverage %, and how many items got that grade).

Datasets: Pythia ≤1.4B → 2.8B (and deduped) and ≤410M → 2.8B; the OLMo ladder ≤1B → 3B,
≤760M → 1B, 3B and ≤370M → 3B (all budgets); every leaderboard family with ≥ 2 sizes (its
largest predicted from the rest), fitted within the family alone and with the other
families pooled (`--pool families`), and from the smallest half of its sizes; and the
BIG-bench-style emergent tasks joined to the leaderboard.

A second table splits every dataset by reach, the e-folds a held-out item lies beyond the
largest fitted pilot (`forecast.fitting.reach.extrapolation_distance`: the larger of
ln(C/C_max) and ln(N/N_max)), in buckets < 2, 2–3.5 and ≥ 3.5: items, MAE, mean relative
error, the MAE's ratio to the carried-over value's and 80% coverage, over all items (a
missing number counts with the carried-over error; its reach is then read off the runs).
Then the GSM8K items that jump ≥ 10 points over their family's previous member, and how
many are forecast within 10 points; and Pythia ≤410M → 2.8B over the tasks with ≥ 1,000
items (`forecast.runs.benchmarks.items_for`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_data  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from forecast.backtesting.backtest import backtest, backtest_latent  # noqa: E402
from forecast.fitting.fit import FitOptions  # noqa: E402
from forecast.fitting.reach import extrapolation_distance  # noqa: E402
from forecast.runs.benchmarks import items_for  # noqa: E402

REACH_BUCKETS = ((0.0, 2.0, "< 2"), (2.0, 3.5, "2–3.5"), (3.5, float("inf"), "≥ 3.5"))
"""Reach buckets, e-folds beyond the largest fitted pilot."""
JUMP = 0.10
"""A GSM8K jump: this much accuracy over the family's previous member."""


@dataclass(frozen=True)
class Case:
    name: str
    runs: list
    holdout: str
    pool: str | None = None
    board: bool = False  # a leaderboard case (its GSM8K jumps are counted)
    latent: bool = False  # the latent-capability law (`backtest_latent`) instead of `backtest`


def skip_middle(runs: list, fit_max: float) -> list:
    """The runs of size ≤ `fit_max` and of the largest size: fit the small, score the largest."""
    largest = max(r.params for r in runs)
    return [r for r in runs if r.params <= fit_max or r.params == largest]


def smallest_half(runs: list) -> list:
    """Per family with ≥ 3 sizes: its largest member and the smallest half of the rest."""
    sizes: dict[str, list[float]] = {}
    for r in runs:
        sizes.setdefault(r.family, [])
        if r.params not in sizes[r.family]:
            sizes[r.family].append(r.params)
    keep = {}
    for family, ss in sizes.items():
        ss = sorted(ss)
        if len(ss) >= 3:
            keep[family] = set(ss[:max(1, (len(ss) - 1) // 2)]) | {ss[-1]}
    return [r for r in runs if r.family in keep and r.params in keep[r.family]]


def cases(quick: bool, pool: bool) -> list[Case]:
    py = real_data.pythia()
    pythia = [r for r in py if r.family == "pythia"]
    out = [Case("Pythia ≤1.4B → 2.8B", pythia, "largest"),
           Case("Pythia-deduped ≤1.4B → 2.8B", [r for r in py if r.family == "pythia-deduped"], "largest"),
           Case("Pythia ≤410M → 2.8B", skip_middle(pythia, 4.2e8), "largest")]
    olmo = real_data.olmo()
    out.append(Case("OLMo ≤1B → 3B", olmo, "largest"))
    out.append(Case("OLMo ≤370M → 3B", skip_middle(olmo, 4e8), "largest"))
    if quick:
        return out
    out.append(Case("OLMo ≤760M → 1B, 3B", olmo, "largest:2"))
    board = real_data.families_with(real_data.leaderboard(), 2)
    emergent = real_data.families_with(real_data.emergent(), 2)
    out.append(Case(f"Leaderboard, {len({r.family for r in board})} families ≥2 sizes", board, "largest", board=True))
    if pool:
        out.append(Case("  … with the other families pooled", board, "largest", "families", board=True))
    out.append(Case("  … latent-capability law (all families)", board, "largest", board=True, latent=True))
    out.append(Case("  … latent law as `predict` runs it (--pool latent)", board, "largest", "latent", board=True))
    half = smallest_half(board)
    out.append(Case(f"Leaderboard, {len({r.family for r in half})} families ≥3, smallest half", half, "largest",
                    board=True))
    if pool:
        out.append(Case("  … smallest half, other families pooled", half, "largest", "families", board=True))
    out.append(Case("  … smallest half, latent-capability law", half, "largest", board=True, latent=True))
    out.append(Case("  … smallest half, --pool latent", half, "largest", "latent", board=True))
    out.append(Case(f"Emergent tasks, {len({r.family for r in emergent})} families ≥2", emergent, "largest"))
    if pool:
        out.append(Case("  … with the other families pooled", emergent, "largest", "families"))
    return out


def pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}"


def grade(s: dict, g: str) -> str:
    c = s["coverage_by_confidence"][g]
    return "-" if not c["count"] else f"{pct(c['coverage'], 0)} ({c['count']})"


def reach_of(p, sk, runs: list) -> float:
    """The item's reach: the backtest's distance, or (no number) ln of the held-out run's
    compute, else its parameters, over the largest fitted run's."""
    if p.distance is not None:
        return p.distance
    fitted = [r for r in runs if r.family == sk.family and sk.skill in r.skills and r.params < p.params]
    if not fitted:
        return 0.0
    flops = [r.final_flops for r in fitted]
    if all(math.isfinite(f) for f in flops) and math.isfinite(p.flops):
        return float(extrapolation_distance(p.params, p.flops, max(r.params for r in fitted), max(flops)))
    return float(max(0.0, math.log(p.params / max(r.params for r in fitted))))


def previous_member(runs: list, family: str, skill: str, params: float) -> float | None:
    """The skill's final accuracy at the family's next smaller member, or None."""
    smaller = [r for r in runs if r.family == family and skill in r.skills and r.params < params]
    if not smaller:
        return None
    prev = max(smaller, key=lambda r: r.params)
    return float(prev.series[skill].accuracy[-1])


def summarise(points: list) -> dict:
    """MAE, relative error, carried-over MAE and 80% coverage over final points (a missing
    number counts with the carried-over error)."""
    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None
    mae = mean([p.error("predicted", fill=True) for p in points])
    carry = mean([p.error("carry") for p in points])
    covered = [p.covered for p in points if p.covered is not None]
    return {"items": len(points), "mae": mae, "carry": carry,
            "rel": mean([p.error("predicted", fill=True) / p.actual for p in points
                         if p.actual > 0 and p.error("predicted", fill=True) is not None]),
            "ratio": None if not carry or mae is None else mae / carry,
            "cover": sum(covered) / len(covered) if covered else None, "covered_n": len(covered)}


def olmo_7b(draws: int) -> None:
    """The OLMo ladder with val and test splits as separate skills, fitted on 190M–1.3B (all
    budgets) and forecast at OLMo-2 7B trained on 4T tokens: each task's variants side by
    side (the law is the one weighed heaviest at the target's reach), their largest gap in
    median and the widest 80% interval (points)."""
    from forecast.fits import fit
    from forecast.fitting.tasks import task_of
    runs = [r for r in real_data.olmo(splits=True) if r.params < 2e9]
    fits = fit(runs, options=FitOptions(draws=draws))
    rows = []
    for sf in fits.skills:
        (f,) = fits.predict(params=6_887_575_552, tokens=3.945e12, skills=[sf.skill])
        a = f.accuracy
        rows.append((task_of(sf.skill), sf.skill, f.law, str(f.status), a.median, a.low, a.high))
        print(f"{sf.skill:28s} {f.law:32s} {str(f.status):18s} {100 * a.median:5.1f} "
              f"[{100 * a.low:5.1f}–{100 * a.high:5.1f}] width {100 * (a.high - a.low):4.1f}")
    tasks: dict[str, list] = {}
    for r in rows:
        tasks.setdefault(r[0], []).append(r)
    gaps = [max(r[4] for r in rs) - min(r[4] for r in rs) for rs in tasks.values() if len(rs) > 1]
    print(f"largest gap in median between variants of one task: {100 * max(gaps):.1f} points; "
          f"widest 80% interval: {100 * max(r[6] - r[5] for r in rows):.1f} points")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Pythia and OLMo ≤1B → 3B only")
    parser.add_argument("--draws", type=int, default=FitOptions().draws)
    parser.add_argument("--no-pool", action="store_true", help="skip the pooled-families rows")
    parser.add_argument("--per-skill", action="store_true", help="also print one row per skill")
    parser.add_argument("--only", default=None,
                        help="run only the datasets whose name holds this text (several: comma-separated)")
    parser.add_argument("--olmo-7b", action="store_true",
                        help="only: OLMo val/test splits fitted ≤1.3B, forecast at 7B-4T, side by side")
    args = parser.parse_args()
    if args.olmo_7b:
        return olmo_7b(args.draws)
    if not real_data.available():
        sys.exit(f"no data at {real_data.SHARED}; set FORECAST_SHARED_DATA")
    console = Console(width=240)
    table = Table(title="Backtest on real data: held-out final checkpoints, accuracy points, all items")
    for col in ("dataset", "numbered/items", "MAE", "rel.err %", "carry MAE", "carry rel %", "loglin MAE",
                "MAE/carry", "cover80 %", "high", "medium", "low", "time s"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    per_skill = []
    reach_rows: list[tuple[str, str, dict]] = []
    jumps: list[tuple[str, str, str, float, float | None, float]] = []  # dataset, family, run, jump, forecast, actual
    big_tasks: list[str] = []
    full_board = real_data.leaderboard()  # a jump is over the family's previous member in the whole table
    wanted = None if args.only is None else [w.strip() for w in args.only.split(",")]
    for case in [c for c in cases(args.quick, not args.no_pool) if wanted is None or any(w in c.name for w in wanted)]:
        start = time.perf_counter()
        options = FitOptions(draws=args.draws, pool=case.pool)
        result = backtest_latent(case.runs) if case.latent else \
            backtest(case.runs, holdout=case.holdout, options=options)
        elapsed = time.perf_counter() - start
        s = result.summary()
        ratio = None if not s["carry_mae_all"] else s["mae_all"] / s["carry_mae_all"]
        table.add_row(case.name, f"{s['numbered']}/{s['items']}", pct(s["mae_all"]), pct(s["relative_error_all"]),
                      pct(s["carry_mae_all"]), pct(s["carry_relative_error_all"]), pct(s["loglinear_mae_all"]),
                      "-" if ratio is None else f"{ratio:.2f}", pct(s["coverage"], 1), grade(s, "high"),
                      grade(s, "medium"), grade(s, "low"), f"{elapsed:.0f}")
        items = []
        for sk in result.skills:
            for p in sk.points:
                if p.final:
                    per_skill.append((case.name, sk.family, sk.skill, p.run, sk.law or f"np: {sk.reason}", p))
                    items.append((sk, p, reach_of(p, sk, case.runs)))
        for lo, hi, label in REACH_BUCKETS:
            reach_rows.append((case.name, label, summarise([p for _, p, d in items if lo <= d < hi])))
        if case.board:
            jumps += [(case.name, sk.family, p.run, p.actual - prev, p.predicted, p.actual)
                      for sk, p, _ in items if "gsm8k" in sk.skill.lower()
                      and (prev := previous_member(full_board, sk.family, sk.skill, p.params)) is not None
                      and p.actual - prev >= JUMP]
        if case.name == "Pythia ≤410M → 2.8B":
            big = [p for sk, p, _ in items if (items_for(sk.skill) or 0) >= 1000]
            big_tasks.append(f"{case.name}, tasks with ≥ 1,000 items: {len(big)} items, "
                             f"{sum(p.predicted is not None for p in big)} with a number, "
                             f"MAE {pct(summarise(big)['mae'])} points")
    console.print(table)
    reach = Table(title="By reach (e-folds beyond the largest fitted pilot), final checkpoints, all items")
    for col in ("dataset", "reach", "items", "MAE", "rel.err %", "carry MAE", "MAE/carry", "cover80 %"):
        reach.add_column(col, justify="left" if col in ("dataset", "reach") else "right")
    for name, label, r in reach_rows:
        if r["items"]:
            reach.add_row(name, label, str(r["items"]), pct(r["mae"]), pct(r["rel"]), pct(r["carry"]),
                          "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
                          "-" if r["cover"] is None else f"{pct(r['cover'], 1)} ({r['covered_n']})")
    console.print(reach)
    for line in big_tasks:
        console.print(line)
    if jumps:
        console.print(f"GSM8K items ≥ {100 * JUMP:.0f} points over the family's previous member, forecast "
                      "within 10 points (run actual vs forecast):")
        for name in dict.fromkeys(j[0] for j in jumps):
            js = [j for j in jumps if j[0] == name]
            ok = sum(1 for j in js if j[4] is not None and abs(j[4] - j[5]) <= 0.10)
            console.print(f"  {name}: {ok}/{len(js)} within 10 points; " + ", ".join(
                f"{j[2].split('/')[-1]} {pct(j[5], 1)} vs {'-' if j[4] is None else pct(j[4], 1)}" for j in js))
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
