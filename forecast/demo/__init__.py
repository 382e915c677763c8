"""The main job end to end: shipped pilots -> fits -> a forecast for a larger model, before
it exists -> that model trained (one run per seed), its outcome beside the forecast.

    result = run_demo("out/demo")
    result.forecasts   # one SkillForecast per skill, for the verification model
    result.checks      # per seed and skill: what that model did, and whether the forecast held
    result.story       # the closing lines

The `demo` ladder (forecast/pilot/presets/demo.toml; shipped in runs/demo, retrained by
`train_pilots`) aims at three grains of skill: one that every pilot groks (sooner in tokens
for larger ones), a harder one that the smaller pilots do not grok within the budget while
the larger ones do, and a composite word problem that no pilot gets right while the
probability it gives the right answer rises with size. On the shipped pilots only the first
nearly holds (9 of 10 pilots): at 3K-58K parameters the seed, not the size, decides the
harder skill, and the composite's probability does not rise (README, "The main job";
docs/demo-ladder.md for the fact-table skills probed instead). After fitting, the demo forecasts its `[verify]`
model (>= 4x the largest pilot) for the tokens it will train on, then trains it, once per
seed, and scores the forecast: final accuracy inside the interval, and the grok point
against the one it showed. Nothing is hidden: a miss is printed as one, with its likely cause.

Each stage writes what the matching command would (fits under `OUT/fits/`, the verification
runs under `OUT/runs/<ladder>-verify/`, retrained pilots under `OUT/runs/<ladder>/`), so the
stages can be rerun or inspected one at a time with `forecast pilot`, `fit`, `predict` and
`backtest`. Rerunning skips finished runs.

Modules: `job` (the stages), `checks` (forecast beside outcome, a miss's likely cause),
`story` (the closing lines), `figure` (the one figure of `--plot`).
"""

from forecast.demo.checks import SkillCheck, check, crossing, likely_cause
from forecast.demo.figure import demo_figure
from forecast.demo.job import DEMO_PRESET, DEMO_THREADS, FIT_OPTIONS, SHIPPED_RUNS, DemoResult, run_demo
from forecast.demo.story import story

__all__ = ["SkillCheck", "check", "crossing", "likely_cause", "demo_figure", "DEMO_PRESET", "DEMO_THREADS",
           "FIT_OPTIONS", "SHIPPED_RUNS", "DemoResult", "run_demo", "story"]
