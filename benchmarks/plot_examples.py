"""Draw every figure of `forecast.plots` for a look by eye: a synthetic ladder with a known
grok law (always) and the real Pythia and OLMo ladders (when ../shared/data is there).

Run: `.venv/bin/python benchmarks/plot_examples.py OUT_DIR [--draws 100]`. Writes PNGs only;
nothing is checked (tests/test_plots.py does that).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_data  # noqa: E402

from forecast import plots  # noqa: E402
from forecast.backtesting.backtest import backtest  # noqa: E402
from forecast.fitting.fit import FitOptions  # noqa: E402
from forecast.fits import fit  # noqa: E402
from forecast.runs.synthetic import GrokTruth, synthetic_ladder  # noqa: E402


def synthetic_runs() -> list:
    """Three skills with known grok laws and one flat at chance, on a 1M–30M ladder."""
    sizes = [1e6, 3e6, 1e7, 3e7]
    ladders = [
        synthetic_ladder(GrokTruth(), sizes, skill="early"),
        synthetic_ladder(GrokTruth(d_half=5e9, chance=0.25), sizes, skill="late"),
        synthetic_ladder(GrokTruth(d_half=1e9, gamma=0.5, chance=0.25, plateau=0.8), sizes, skill="mid"),
        synthetic_ladder(GrokTruth(d_half=1e15, chance=0.25), sizes, skill="flat"),
    ]
    return [dataclasses.replace(group[0], series={k: v for r in group for k, v in r.series.items()})
            for group in zip(*ladders)]


def draw(name: str, runs: list, params: float, tokens: float, out: Path, options: FitOptions) -> None:
    fits = fit(runs, options=options).skills
    plots.save(plots.forecast_figure(fits, params, tokens), out / f"{name}-forecast.png")
    plots.save(plots.grok_scaling_figure(fits, params), out / f"{name}-grok.png")
    plots.save(plots.backtest_figure(backtest(runs, options=options)), out / f"{name}-backtest.png")
    print(f"{name}: {out}/{name}-{{forecast,grok,backtest}}.png", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--draws", type=int, default=100)
    args = parser.parse_args()
    options = FitOptions(draws=args.draws)
    draw("synthetic", synthetic_runs(), 3e8, 6e9, args.out, options)
    if real_data.available():
        draw("pythia", [r for r in real_data.pythia() if r.family == "pythia"], 7e9, 300e9, args.out, options)
        draw("olmo", real_data.olmo(), 7e9, 140e9, args.out, options)


if __name__ == "__main__":
    main()
