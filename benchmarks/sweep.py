"""A pilot sweep at lab scale, with planted transitions, and how well a fit recovers them.

`make_sweep` builds N runs (sizes × seeds) × K skills × C checkpoints: each skill is a
compute sigmoid, accuracy = σ(k·(ln C − m)) (chance 0, top 1), with its own planted
midpoint C½ = e^m FLOPs and steepness k; every checkpoint of every seed is a binomial draw
over `items` evaluation items. `recovered` reads the grok point a fit forecasts, per skill,
for the pilot size whose training the planted crossing falls in the middle of, and checks
whether its interval covers the planted one (the grok threshold is the midpoint between
chance and plateau, so the planted crossing is at C½).

Run: `nice .venv/bin/python benchmarks/sweep.py [--sizes 20] [--seeds 100] [--skills 50]
[--checkpoints 8]` prints wall and CPU time, peak resident memory (getrusage) and the
coverage of the planted midpoints. `benchmarks/fit_speed.py --sweep` runs the same.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import dataclass

import numpy as np

from forecast import Recipe, Run, make_series
from forecast.fitting.fit import FitOptions
from forecast.fits import Fits, fit

TOKENS_PER_PARAM = 20.0
"""Each run trains to 20 tokens per parameter (Hoffmann et al. 2022)."""


@dataclass(frozen=True)
class Planted:
    """The truth of one skill: grok midpoint `flops` (FLOPs, C½ = e^m) and steepness `k`
    (per e-fold of compute)."""

    skill: str
    flops: float
    k: float


def make_sweep(*, sizes: int = 20, seeds: int = 100, skills: int = 50, checkpoints: int = 8, items: int = 500,
               smallest: float = 1e6, largest: float = 1e9, seed: int = 0) -> tuple[list[Run], list[Planted]]:
    """`sizes` log-spaced model sizes (parameters) from `smallest` to `largest`, `seeds` runs
    each, `checkpoints` log-spaced evaluations from 1/30 of the run's 20 tokens per parameter
    to its end; midpoints planted uniformly in ln C over the middle of the sweep's compute."""
    rng = np.random.default_rng(seed)
    params = np.geomspace(smallest, largest, sizes)
    lo, hi = 6 * smallest * TOKENS_PER_PARAM * smallest, 6 * largest * TOKENS_PER_PARAM * largest
    mids = rng.uniform(np.log(lo) + 0.35 * np.log(hi / lo), np.log(lo) + 0.85 * np.log(hi / lo), skills)
    slopes = rng.uniform(0.8, 2.0, skills)
    planted = [Planted(f"task{j:02d}", float(np.exp(m)), float(k)) for j, (m, k) in enumerate(zip(mids, slopes))]
    steps = np.arange(1, checkpoints + 1)
    runs = []
    for size in params:
        tokens = np.geomspace(TOKENS_PER_PARAM * size / 30, TOKENS_PER_PARAM * size, checkpoints)
        log_c = np.log(6 * size * tokens)
        for s in range(seeds):
            series = {}
            for p in planted:
                truth = 1 / (1 + np.exp(-p.k * (log_c - np.log(p.flops))))
                series[p.skill] = make_series(p.skill, steps, tokens, accuracy=rng.binomial(items, truth) / items,
                                              n=np.full(checkpoints, items), params=size, chance=0.0)
            runs.append(Run(f"n{size:.3g}-s{s}", float(size), "sweep", Recipe(), series, seed=s))
    return runs, planted


@dataclass(frozen=True)
class Recovery:
    """How a fit's grok forecasts at the largest pilot size met the planted midpoints."""

    skills: int  # skills with a planted crossing inside the forecast's search range
    covered: int  # of those, intervals that hold the planted crossing
    median_log_error: float  # median |ln(forecast tokens / planted tokens)|
    median_log_width: float  # median ln(high / low) of the intervals (finite ones)

    @property
    def coverage(self) -> float:
        return self.covered / self.skills if self.skills else float("nan")


def recovered(fits: Fits, planted: list[Planted], sizes: np.ndarray, level: float = 0.8) -> Recovery:
    """Coverage of the planted grok points by the `level` intervals forecast, per skill, for
    the pilot size (of `sizes`, parameters) whose training the planted crossing falls in the
    middle of (in ln tokens): the crossing is then inside the data, where an honest interval
    holds the truth at its level."""
    total = covered = 0
    errors, widths = [], []
    for p in planted:
        crossing = p.flops / (6 * sizes)  # tokens at which each size crosses
        middle = np.log(TOKENS_PER_PARAM * sizes / np.sqrt(30))  # each run's middle, in ln tokens
        size = float(sizes[int(np.argmin(np.abs(np.log(crossing) - middle)))])
        (f,) = fits.predict(size, tokens=TOKENS_PER_PARAM * size, skills=[p.skill], level=level)
        if f.grok is None:
            continue
        truth = p.flops / (6 * size)
        low = f.grok.low if f.grok.low is not None else 0.0
        total += 1
        covered += int(low <= truth <= f.grok.high)
        if f.grok.tokens is not None:
            errors.append(abs(np.log(f.grok.tokens / truth)))
        if f.grok.low and np.isfinite(f.grok.high):
            widths.append(np.log(f.grok.high / f.grok.low))
    median = lambda v: float(np.median(v)) if v else float("nan")  # noqa: E731
    return Recovery(total, covered, median(errors), median(widths))


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_sweep(sizes: int, seeds: int, skills: int, checkpoints: int, draws: int, progress: bool = False) -> dict:
    """Generate, fit and score one sweep; wall and CPU seconds, peak memory, recovery."""
    runs, planted = make_sweep(sizes=sizes, seeds=seeds, skills=skills, checkpoints=checkpoints)
    made = peak_rss_gb()
    wall, cpu = time.perf_counter(), time.process_time()
    callback = None
    if progress:
        callback = lambda done, total, skill: print(f"  {done}/{total} {skill}", flush=True)  # noqa: E731
    fits = fit(runs, options=FitOptions(draws=draws), progress=callback)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rec = recovered(fits, planted, np.unique([r.params for r in runs]))
    return dict(runs=len(runs), skills=skills, checkpoints=checkpoints, points=len(runs) * skills * checkpoints,
                wall_s=wall, cpu_s=cpu, peak_rss_gb=peak_rss_gb(), rss_after_generation_gb=made,
                scored=rec.skills, covered=rec.covered, coverage=rec.coverage, median_log_error=rec.median_log_error,
                median_log_width=rec.median_log_width,
                laws={sf.skill: sf.law for sf in fits.skills})


def report(result: dict) -> str:
    laws: dict[str, int] = {}
    for law in result["laws"].values():
        laws[str(law)] = laws.get(str(law), 0) + 1
    return (f"sweep: {result['runs']} runs × {result['skills']} skills × {result['checkpoints']} checkpoints "
            f"({result['points']:,} points)\n"
            f"  wall {result['wall_s']:.1f} s, CPU {result['cpu_s']:.1f} s, peak resident memory "
            f"{result['peak_rss_gb']:.2f} GB (of which {result['rss_after_generation_gb']:.2f} GB after generating "
            f"the runs)\n"
            f"  planted midpoints inside the 80% grok intervals (per skill, at the size crossing mid-training): "
            f"{result['covered']}/"
            f"{result['scored']} ({100 * result['coverage']:.0f}%), median |ln(forecast/planted)| "
            f"{result['median_log_error']:.3f}, median interval width ln(high/low) {result['median_log_width']:.3f}\n"
            f"  chosen laws: {', '.join(f'{k} {v}' for k, v in sorted(laws.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--skills", type=int, default=50)
    parser.add_argument("--checkpoints", type=int, default=8)
    parser.add_argument("--draws", type=int, default=FitOptions().draws)
    parser.add_argument("--progress", action="store_true", help="print each skill as it is fitted")
    args = parser.parse_args()
    print(report(run_sweep(args.sizes, args.seeds, args.skills, args.checkpoints, args.draws, args.progress)))


if __name__ == "__main__":
    main()
