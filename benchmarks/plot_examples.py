"""Draw every figure of `forecast.plots` for a look by eye: a synthetic ladder with a known
grok law (always), the shipped demo fits with their largest run as the verification run,
and the real Pythia (forecast, grok, backtest; standard vs deduplicated Pile as a recipe
comparison) and OLMo ladders (when ../shared/data is there).

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

from forecast import Recipe, plots  # noqa: E402
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


def draw_demo(out: Path) -> None:
    """The demo's figure from the shipped fits, the largest shipped run standing in for the
    verification run (`forecast demo --plot` draws the real one)."""
    from forecast import Fits, load_runs

    root = Path(__file__).resolve().parents[1]
    largest = max(load_runs(root / "runs" / "demo"), key=lambda r: r.params)
    verification = {k: (s.tokens, s.accuracy) for k, s in largest.series.items()}
    fig = plots.forecast_figure(Fits.load(root / "fits").select(), 4 * largest.params, largest.final_tokens,
                                verification=verification)
    plots.save(fig, out / "demo-forecast.png")


def draw_compare(out: Path, options: FitOptions) -> None:
    """Pythia's two Pile versions as two recipes of one family, compared at 7B."""
    runs = [dataclasses.replace(r, family="pythia", recipe=Recipe("deduped" if "deduped" in r.family else "standard"))
            for r in real_data.pythia()]
    fits = fit(runs, options=options)
    plots.save(plots.compare_figure(fits.compare(by="recipe", target_params=7e9), fits), out / "pythia-compare.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--draws", type=int, default=100)
    args = parser.parse_args()
    options = FitOptions(draws=args.draws)
    draw("synthetic", synthetic_runs(), 3e8, 6e9, args.out, options)
    draw_demo(args.out)
    if real_data.available():
        draw_compare(args.out, options)
        draw("pythia", [r for r in real_data.pythia() if r.family == "pythia"], 7e9, 300e9, args.out, options)
        draw("olmo", real_data.olmo(), 7e9, 140e9, args.out, options)


if __name__ == "__main__":
    main()
