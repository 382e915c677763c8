"""The demo's closing lines: what the pilots learned, what the forecast said before the
larger model existed, what the check found (per seed, misses with their likely cause), and
how long each stage took."""

from __future__ import annotations

from typing import Any

import numpy as np

from forecast.demo.checks import SkillCheck, crossing
from forecast.forecasting.predict import SkillForecast
from forecast.quantities import format_count
from forecast.runs.model import Run

GROK = 0.5  # accuracy counted as "learned" in the pilots' line (exact match, chance 0)


def story(result: Any) -> list[str]:
    """3-6 lines (a `DemoResult`): pilots, forecast, one line per verification seed, timing."""
    runs = result.runs
    sizes = sorted({r.params for r in runs})
    lines = [_pilot_line(runs, sizes, result.trained_pilots)]
    if result.forecasts:
        f0 = result.forecasts[0]
        parts = [_forecast_part(f) for f in result.forecasts]
        lines.append(f"Forecast, before training it, for {format_count(f0.params)} params "
                     f"({f0.params / sizes[-1]:.1f}x the largest pilot) on {format_count(f0.tokens)} tokens: "
                     + "; ".join(parts) + ".")
    for run in result.verification:
        lines.append(_check_line([c for c in result.checks if c.run == run.name], result.forecasts[0].level))
    s = result.seconds
    timing = f"Total time {_duration(s['total'])}: pilots {_duration(s['pilots'])}" + \
        ("" if result.trained_pilots else " (shipped)") + f", fits {_duration(s['fit'])}"
    lines.append(timing + (f", verification {_duration(s['verify'])}." if result.verification else "."))
    return lines


def pilot_grok_tokens(runs: list[Run], skill: str, sizes: list[float]) -> list[float | None]:
    """Per size, the median over seeds of the tokens at which the skill first reached
    `GROK` (None when fewer than half the seeds reached it)."""
    out: list[float | None] = []
    for size in sizes:
        crossings = [crossing(r.series[skill].tokens, r.series[skill].accuracy, GROK) for r in runs if r.params == size]
        reached = sorted(t for t in crossings if t is not None)
        out.append(float(np.median(reached)) if 2 * len(reached) >= len(crossings) and reached else None)
    return out


def _pilot_line(runs: list[Run], sizes: list[float], trained: bool) -> str:
    skills = sorted({k for r in runs for k in r.skills})
    parts = []
    for skill in skills:
        groks = pilot_grok_tokens(runs, skill, sizes)
        learned = [p for p, t in zip(sizes, groks) if t is not None]
        if len(learned) == len(sizes):
            parts.append(f"{skill} at every size ({format_count(groks[0])} tokens to {GROK:.0%} at the smallest, "
                         f"{format_count(groks[-1])} at the largest)")
        elif learned:
            parts.append(f"{skill} only from {format_count(learned[0])} params "
                         f"({len(learned)} of {len(sizes)} sizes within the budget)")
        else:
            best = max(float(r.series[skill].accuracy.max()) for r in runs)
            parts.append(f"no pilot learned {skill} (accuracy at most {best:.2f})" + _prob_trend(runs, skill, sizes))
    which = "trained now" if trained else "shipped"
    return (f"The pilots ({which}: {len(sizes)} sizes, {format_count(sizes[0])}-{format_count(sizes[-1])} params) "
            "learned " + "; ".join(parts) + ".")


def _prob_trend(runs: list[Run], skill: str, sizes: list[float]) -> str:
    """How the probability of the right answer (mean of the last 3 evaluations, over seeds)
    moved from the smallest pilots to the largest."""
    probs = []
    for size in (sizes[0], sizes[-1]):
        values = [float(np.mean(r.series[skill].prob[-3:])) for r in runs
                  if r.params == size and r.series[skill].has_prob]
        probs.append(float(np.mean(values)) if values else float("nan"))
    low, high = probs
    if not (np.isfinite(low) and np.isfinite(high) and low > 0):
        return ""
    if high > 1.1 * low:
        return f", while its answer probability rose from {low:.3f} to {high:.3f} with size"
    if high < low / 1.1:
        return f", and its answer probability fell from {low:.3f} to {high:.3f} with size"
    return f", and its answer probability stayed near {high:.3f} across sizes"


def _forecast_part(f: SkillForecast) -> str:
    if f.accuracy is None:
        return f"{f.skill} not predictable ({f.reason})"
    a = f.accuracy
    text = f"{f.skill} ends at {a.median:.2f} [{a.low:.2f}-{a.high:.2f}]"
    if f.grok is not None and f.grok.tokens is not None:
        text += f", groks at {format_count(f.grok.tokens)} tokens"
    if f.confidence:
        text += f" ({f.confidence} confidence)"
    return text


def _check_line(checks: list[SkillCheck], level: float) -> str:
    if not checks:
        return "Then trained it: no skill to check."
    head = f"Seed {checks[0].seed} ({checks[0].run})"
    scored = [c for c in checks if c.covered is not None]
    inside = sum(bool(c.covered) for c in scored)
    text = f"{head}: final accuracy inside the {level:.0%} interval for {inside} of {len(scored)} skills"
    groks = [f"{c.skill} grokked at {format_count(c.grok_tokens)} tokens, forecast {c.grok_ratio:.2f}x of that"
             for c in checks if c.grok_ratio is not None]
    text += f"; {'; '.join(groks)}" if groks else ""
    misses = [f"{c.skill}: {c.cause}" for c in checks if c.missed]
    return text + (f". MISS {'; MISS '.join(misses)}." if misses else ". Every check held.")


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
