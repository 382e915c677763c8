"""The `forecast design` study (docs/design.md): does a designed ladder forecast better than the
naive geometric ladder of the same compute, and does the top-ranked next run narrow the
forecast more than the median candidate?

    python benchmarks/design_study.py planted [--target 70B --tokens 1.4T --budget 1e22 --skills 20]
    python benchmarks/design_study.py olmo [--simulations 4]

`planted`: design a ladder (the default prior, the same settings as `forecast design`), then
back-test it and the geometric default (5 sizes ×2 at the target's tokens per parameter, one
seed) on fresh planted skills (another seed: laws the design never saw), each refitted with
the real pipeline and forecast at the target. Reports absolute error, width, coverage and
interval score, over all planted skills, over those whose transition lies beyond the naive
ladder's reach (no pilot of it, at its end, has risen 10% of the way from chance to the
plateau), over those of them the designed ladder reaches, and over the rest, with paired
differences (designed − geometric) and their standard errors.

`olmo`: fit the shared OLMo ladder's runs ≤ 760M, rank its 1B and 3B runs as candidate next
runs (expected narrowing of the 7B forecast per FLOP, from simulated outcomes), then add each
real run, refit, and measure the 7B intervals it actually leaves.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_data  # noqa: E402

from forecast.design.search import DEFAULT_SKILLS, SIM_DRAWS, Simulation, design, evaluate  # noqa: E402
from forecast.design.next_run import CandidateRun, _widths, rank_next_runs  # noqa: E402
from forecast.design.priors import default_prior  # noqa: E402
from forecast.design.space import geometric_ladder  # noqa: E402
from forecast.fitting.fit import FitOptions  # noqa: E402
from forecast.fits import fit  # noqa: E402
from forecast.quantities import format_count, format_flops, parse_quantity  # noqa: E402

REACH = 0.1
"""A planted transition is beyond a ladder's reach when its largest pilot, at its end, has risen
less than this share of the way from chance to the plateau."""


def _mean_se(values) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():+.4f} ± {v.std(ddof=1) / np.sqrt(len(v)):.4f}" if len(v) > 1 else f"{v.mean():+.4f}"


def _rise(laws, ladder) -> np.ndarray:
    """Per planted skill, the largest share of its rise any rung of `ladder` shows at its end."""
    params = np.array([r.params for r in ladder.rungs])
    tokens = np.array([r.tokens for r in ladder.rungs])
    rise = (laws.accuracy(params, tokens) - laws.chance[:, None]) / (laws.grok["plateau"] - laws.chance)[:, None]
    return rise.max(axis=1)


def planted(args) -> None:
    target, tokens, budget = (parse_quantity(args.target), parse_quantity(args.tokens), parse_quantity(args.budget))
    start = time.perf_counter()
    d = design(target, budget, target_tokens=tokens, seed=args.seed, jobs=args.jobs)
    print(f"design: {len(d.ranked)} candidates in {d.seconds:.0f} s; chosen {d.chosen.ladder.label} "
          f"(score {d.chosen.score:.3f}); geometric {d.geometric.ladder.label} (score {d.geometric.score:.3f})")
    print("\ntop candidates (design's own simulation):")
    print(f"{'ladder':48s} {'score':>6s} {'width':>6s} {'error':>6s} {'cover':>6s} {'draws':>5s}")
    for s in [*d.ranked[:8], d.geometric]:
        print(f"{s.ladder.label:48s} {s.score:6.3f} {s.width:6.3f} {s.error:6.3f} {s.coverage:6.2f} {len(s.outcomes):5d}")

    # the back-test: fresh planted laws (another seed), the same simulation settings
    sim = Simulation(target, tokens, seed=args.seed + 1)
    laws = default_prior(tuple(DEFAULT_SKILLS), args.skills, target, tokens, np.random.default_rng([args.seed + 1, 9]),
                         dict(DEFAULT_SKILLS))
    naive = geometric_ladder(budget, target, tokens)
    results = {"designed": evaluate(d.chosen.ladder, laws, sim, stage=5), "geometric": evaluate(naive, laws, sim, stage=5)}
    reach = {label: _rise(laws, ladder) for label, ladder in (("designed", d.chosen.ladder), ("geometric", naive))}
    beyond = reach["geometric"] < REACH
    print(f"\nback-test on {len(laws)} fresh planted skills at {format_count(target)} × {format_count(tokens)} "
          f"tokens; {int(beyond.sum())} lie beyond the geometric ladder's reach (no pilot of it has risen "
          f"{100 * REACH:.0f}% of the way), {int((beyond & (reach['designed'] >= REACH)).sum())} of them within the "
          "designed ladder's")
    print(f"{'subset':10s} {'ladder':10s} {'n':>3s} {'abs err':>8s} {'width':>7s} {'cover':>6s} {'score':>7s}")
    subsets = (("all", np.ones(len(laws), bool)), ("beyond", beyond),
               ("reached", beyond & (reach["designed"] >= REACH)), ("within", ~beyond))
    for name, mask in subsets:
        for label, res in results.items():
            o = [x for x, m in zip(res.outcomes, mask) if m]
            if not o:
                continue
            print(f"{name:10s} {label:10s} {len(o):3d} {np.mean([x.error for x in o]):8.4f} "
                  f"{np.mean([x.width for x in o]):7.4f} {np.mean([x.covered for x in o]):6.2f} "
                  f"{np.mean([x.score for x in o]):7.4f}")
        pairs = list(zip(results["designed"].outcomes, results["geometric"].outcomes, mask))
        diff = [a.error - b.error for a, b, m in pairs if m]
        score = [a.score - b.score for a, b, m in pairs if m]
        if diff:
            print(f"{name:10s} designed − geometric: abs err {_mean_se(diff)}, score {_mean_se(score)}")
    print(f"\nplanted study: {time.perf_counter() - start:.0f} s")


def olmo(args) -> None:
    start = time.perf_counter()
    runs = real_data.olmo()
    small = [r for r in runs if r.params < 1e9]  # 190M, 370M, 760M: 18 runs
    real = {r.name: r for r in runs if r.params > 1e9}  # 1B and 3B: 12 candidates
    cands = [CandidateRun.from_run(r) for r in real.values()]
    result = rank_next_runs(small, cands, 7e9, simulations=args.simulations, seed=args.seed)
    print(f"OLMo ≤ 760M, target 7B × {format_count(result.target_tokens)} tokens; {len(result.skills)} skills; "
          f"mean 80% width now {result.base:.4f}; ranked in {result.seconds:.0f} s")
    names = list(result.skills)
    actual = {}
    for c in cands:
        refit = fit([*small, real[c.name]], skills=names, options=FitOptions(draws=SIM_DRAWS, keep_draws=SIM_DRAWS))
        got = _widths(refit, names, 7e9, result.target_tokens, 0.8, 0)
        actual[c.name] = float(np.mean(list(got.values())))
    print(f"{'rank':>4s} {'run':14s} {'FLOPs':>8s} {'exp width':>9s} {'exp narrow':>10s} {'per 1e18':>9s} "
          f"{'act width':>9s} {'act narrow':>10s}")
    for i, r in enumerate(result.ranked, start=1):
        c = r.candidate
        print(f"{i:4d} {c.name:14s} {format_flops(c.flops):>8s} {r.width:9.4f} {r.narrowing:10.4f} {r.per_flop:9.2e} "
              f"{actual[c.name]:9.4f} {result.base - actual[c.name]:10.4f}")
    narrow = {n: result.base - w for n, w in actual.items()}
    flops = {c.name: c.flops for c in cands}
    for label, order in (("narrowing per FLOP", [r.candidate.name for r in result.ranked]),
                         ("narrowing", [r.candidate.name for r in sorted(result.ranked, key=lambda r: -r.narrowing)])):
        top, middle = order[0], order[(len(order) - 1) // 2]
        print(f"\nranked by expected {label}: top {top}, actual narrowing {narrow[top]:.4f} "
              f"({narrow[top] / flops[top] * 1e18:.2e} per 1e18 FLOPs); median-ranked {middle}: {narrow[middle]:.4f} "
              f"({narrow[middle] / flops[middle] * 1e18:.2e} per 1e18 FLOPs); median over all candidates "
              f"{float(np.median(list(narrow.values()))):.4f}")
    expected = [r.narrowing for r in result.ranked]
    rho = np.corrcoef(expected, [narrow[r.candidate.name] for r in result.ranked])[0, 1]
    print(f"correlation of expected and actual narrowing over the candidates: {rho:.2f}")
    print(f"\nOLMo study: {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("planted", "olmo"))
    parser.add_argument("--target", default="70B")
    parser.add_argument("--tokens", default="1.4T")
    parser.add_argument("--budget", default="1e22")
    parser.add_argument("--skills", type=int, default=50, help="fresh planted laws per skill for the back-test")
    parser.add_argument("--simulations", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.part == "olmo" and not real_data.available():
        sys.exit(f"no shared data at {real_data.SHARED}")
    (planted if args.part == "planted" else olmo)(args)


if __name__ == "__main__":
    main()
