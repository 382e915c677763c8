"""Fit speed: the project's batched fit against a naive per-draw `curve_fit` loop.

Job: 100 skills × 5 model sizes × 20 checkpoints, the compute-sigmoid law, 1,000 bootstrap
draws per skill (runs resampled within size, checkpoints within run, accuracies perturbed by
their binomial noise). Both run in this process on the same data:
- project: `forecast.fit` (rolling hold-out, multi-start, lmfit polish, batched bootstrap);
- naive: per skill one `scipy.optimize.curve_fit` point fit, then one `curve_fit` per draw
  on the resampled points, started from the point estimate.
Prints wall and CPU times, the ratios (the machine is shared: CPU time is the steadier), peak
resident memory, and how far the two bootstrap distributions of the midpoint parameter agree
(difference of medians and of 80% interval ends, in units of the naive interval's width).
The naive loop is slow (~5 s per skill): `--naive-skills K` times it on the first K skills
and scales its time per skill to all of them (said in the output).

`--sweep` runs the lab-scale case instead (`benchmarks/sweep.py`): N runs (sizes × seeds) ×
K skills × C checkpoints with planted transitions, sized by `--sizes --seeds --skills
--checkpoints`; it prints wall and CPU time, peak memory and the coverage of the planted
midpoints by the forecast intervals.

Run: `.venv/bin/python benchmarks/fit_speed.py [--skills 100] [--draws 1000] [--naive-skills 20]`
or `.venv/bin/python benchmarks/fit_speed.py --sweep [--sizes 20 --seeds 100 --skills 50 --checkpoints 8]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.optimize import curve_fit

from forecast import Recipe, Run, make_series
from forecast.fitting.estimate import bootstrap_weights
from forecast.fitting.fit import FitOptions
from forecast.fits import fit
from forecast.fitting.observations import observations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import peak_rss_gb, report, run_sweep  # noqa: E402


def make_runs(skills: int, rng: np.random.Generator) -> list[Run]:
    """5 sizes × 20 log-spaced checkpoints; each skill a sigmoid in log compute with its own
    midpoint and steepness; binomial noise over 500 items."""
    sizes = np.geomspace(1e6, 1e8, 5)
    tokens = np.geomspace(1e8, 1e10, 20)
    mids = rng.uniform(np.log(6e15), np.log(6e17), skills)
    slopes = rng.uniform(0.8, 2.5, skills)
    runs = []
    for size in sizes:
        series = {}
        for j in range(skills):
            p = 1 / (1 + np.exp(-slopes[j] * (np.log(6 * size * tokens) - mids[j])))
            series[f"s{j:03d}"] = make_series(f"s{j:03d}", range(1, 21), tokens, accuracy=rng.binomial(500, p) / 500,
                                              n=np.full(20, 500), params=size, chance=0.0)
        runs.append(Run(f"m{size:.0e}", size, "speed", Recipe(), series))
    return runs


def naive(runs: list[Run], skill: str, draws: int, rng: np.random.Generator, c_ref: float) -> np.ndarray:
    """Bootstrap draws of the midpoint m (ln FLOPs/C_ref) with one curve_fit per draw."""
    obs = observations(runs, skill)
    x = np.log(obs.flops / c_ref)
    se = obs.stderr

    def law(x, m, k, amp):
        return amp / (1 + np.exp(-k * (x - m)))

    bounds = ([-15, 0.02, 0.02], [15, 50, 1.0])
    sigma = np.sqrt(se**2 + 0.01**2)
    point, _ = curve_fit(law, x, obs.accuracy, p0=[0.0, 2.0, 0.95], bounds=bounds, sigma=sigma, method="trf",
                         loss="huber", f_scale=2.0)
    _, weights = bootstrap_weights(obs, draws, rng)
    out = np.empty(draws)
    for b in range(draws):
        idx = np.repeat(np.arange(len(x)), weights[b].astype(int))
        y = np.clip(obs.accuracy + rng.standard_normal(len(x)) * se, 0, 1)[idx]
        try:
            theta, _ = curve_fit(law, x[idx], y, p0=point, bounds=bounds, sigma=sigma[idx], method="trf",
                                 loss="huber", f_scale=2.0)
        except RuntimeError:
            theta = [np.nan]
        out[b] = theta[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skills", type=int, default=None, help="skills (default 100; with --sweep 50)")
    parser.add_argument("--draws", type=int, default=None, help="bootstrap draws (default 1000; with --sweep 400)")
    parser.add_argument("--naive-skills", type=int, default=None,
                        help="time the naive loop on this many skills and scale up (default: all)")
    parser.add_argument("--sweep", action="store_true", help="the sweep case (benchmarks/sweep.py) instead")
    parser.add_argument("--sizes", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--checkpoints", type=int, default=8)
    args = parser.parse_args()
    if args.sweep:
        draws = FitOptions().draws if args.draws is None else args.draws
        print(report(run_sweep(args.sizes, args.seeds, args.skills or 50, args.checkpoints, draws)))
        return
    args.skills, args.draws = args.skills or 100, args.draws or 1000
    rng = np.random.default_rng(0)
    runs = make_runs(args.skills, rng)
    options = FitOptions(laws=("compute_sigmoid",), draws=args.draws, keep_draws=args.draws)

    wall, cpu = time.perf_counter(), time.process_time()
    fits = fit(runs, options=options)
    project, project_cpu = time.perf_counter() - wall, time.process_time() - cpu

    n_naive = min(args.naive_skills or args.skills, args.skills)
    wall, cpu = time.perf_counter(), time.process_time()
    agreement = []
    for sf in fits.skills[:n_naive]:
        draws = naive(runs, sf.skill, args.draws, np.random.default_rng(1), sf.scales.flops)
        c = sf.candidates[0].fit
        ours = c.draws[:, c.spec.param_names.index("m")]
        width = np.nanquantile(draws, 0.9) - np.nanquantile(draws, 0.1)
        if width > 0:  # a naive bootstrap stuck on a bound has no width to compare against
            agreement.append([abs(np.nanquantile(ours, q) - np.nanquantile(draws, q)) / width
                              for q in (0.1, 0.5, 0.9)])
    naive_time = (time.perf_counter() - wall) * args.skills / n_naive
    naive_cpu = (time.process_time() - cpu) * args.skills / n_naive
    agreement = np.array(agreement)

    table = Table(title=f"fit speed: {args.skills} skills × 5 sizes × 20 checkpoints, {args.draws} bootstrap draws")
    for col in ("method", "wall s", "CPU s", "× project (wall)", "× project (CPU)"):
        table.add_column(col, justify="right")
    table.add_row("project (forecast.fit)", f"{project:.1f}", f"{project_cpu:.1f}", "1.0", "1.0")
    scaled = "" if n_naive == args.skills else f" (timed on {n_naive} skills, scaled ×{args.skills / n_naive:g})"
    table.add_row(f"naive curve_fit per draw{scaled}", f"{naive_time:.1f}", f"{naive_cpu:.1f}",
                  f"{naive_time / project:.1f}", f"{naive_cpu / project_cpu:.1f}")
    Console(width=140).print(table)
    print(f"bootstrap of the midpoint m, |project − naive| / naive 80% width over {len(agreement)} skills: "
          f"median quantile {np.median(agreement[:, 1]):.3f} (max {agreement[:, 1].max():.3f}), "
          f"10%/90% ends {np.median(agreement[:, [0, 2]]):.3f} (max {agreement[:, [0, 2]].max():.3f})")
    print(f"peak resident memory {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
