"""The demo's check: one skill's forecast, made before the model was trained, beside what
that model did; and, for a miss, the likely cause."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.forecasting.predict import SkillForecast
from forecast.quantities import format_count
from forecast.runs.crossing import NEVER, measured_crossing
from forecast.runs.model import Run


@dataclass(frozen=True)
class SkillCheck:
    """One skill of one verification run (one seed): its forecast beside what it did."""

    skill: str
    run: str  # the verification run's name
    seed: int
    forecast: SkillForecast
    accuracy: float  # final accuracy of the verification run
    covered: bool | None  # inside the forecast's interval (None: no interval was given)
    grok_tokens: float | None  # tokens at which it crossed the forecast's grok threshold (None: it did not)
    grok_ratio: float | None  # forecast grok tokens / actual (None when either is missing)
    cause: str | None = None  # for a miss: its likely cause (None when nothing missed)

    @property
    def grok_within_2x(self) -> bool | None:
        return None if self.grok_ratio is None else 0.5 <= self.grok_ratio <= 2.0

    @property
    def missed(self) -> bool:
        """Final accuracy outside the interval, or the grok point off by more than 2x, or a
        crossing forecast and not seen (or seen and not forecast)."""
        return self.covered is False or self.grok_within_2x is False or self._grok_disagrees

    @property
    def _grok_disagrees(self) -> bool:
        g = self.forecast.grok
        forecast_crosses = g is not None and g.tokens is not None and g.tokens <= self.forecast.tokens
        return str(self.forecast.status) == "emerges-later" and forecast_crosses and self.grok_tokens is None

    def to_json(self) -> dict[str, Any]:
        return {"skill": self.skill, "run": self.run, "seed": self.seed, "forecast": self.forecast.to_json(),
                "accuracy": self.accuracy, "covered": self.covered, "grok_tokens": self.grok_tokens,
                "grok_ratio": self.grok_ratio, "grok_within_2x": self.grok_within_2x, "missed": self.missed,
                "cause": self.cause}


def check(forecast: SkillForecast, run: Run, others: list[Run] | None = None) -> SkillCheck:
    """Score one skill's forecast against the run it forecast; `others` are the same
    model's other seeds (a spread between them is one likely cause of a miss)."""
    series = run.series[forecast.skill]
    final = float(series.accuracy[-1])
    a = forecast.accuracy
    covered = None if a is None else bool(a.low - 1e-9 <= final <= a.high + 1e-9)
    actual = None if forecast.threshold is None else crossing(series.tokens, series.accuracy, forecast.threshold,
                                                                       series.accuracy_stderr())
    predicted = forecast.grok.tokens if forecast.grok is not None else None
    ratio = predicted / actual if predicted and actual else None
    result = SkillCheck(forecast.skill, run.name, run.seed, forecast, final, covered, actual, ratio)
    if not result.missed:
        return result
    spread = [float(o.series[forecast.skill].accuracy[-1]) for o in others or [] if forecast.skill in o.series]
    return SkillCheck(**{**result.__dict__, "cause": likely_cause(result, spread)})


def likely_cause(c: SkillCheck, other_seeds: list[float]) -> str:
    """One sentence on why a check missed, from what the check itself shows: the seeds
    disagreeing by more than the interval is wide (the seed, not the size, decided the
    outcome), a grok point off in one direction (the pilots' grok-speed trend did not carry
    to this size), or a final accuracy beyond the interval (the chosen law misplaced it)."""
    f, a = c.forecast, c.forecast.accuracy
    width = None if a is None else a.high - a.low
    if other_seeds and width is not None and max(abs(c.accuracy - o) for o in other_seeds) > max(width, 0.1):
        return (f"seed spread: the other seed ended at {', '.join(f'{o:.2f}' for o in other_seeds)}, further "
                f"from this one than the interval is wide: at this size the seed, not the forecast, decided it")
    reach = "" if f.extrapolation is None else f" ({f.extrapolation:.0f}x the largest pilot's compute)"
    if c.grok_ratio is not None and not c.grok_within_2x:
        way = "later" if c.grok_ratio > 1 else "sooner"
        return (f"the pilots' grok-speed trend did not carry to this size{reach}: forecast {way} than the model "
                f"crossed ({format_count(c.grok_tokens)} tokens)")
    if c.grok_tokens is None and f.grok is not None and f.grok.tokens is not None:
        return f"forecast to cross at {format_count(f.grok.tokens)} tokens; it did not cross within its budget{reach}"
    if a is not None and not c.covered:
        side, placed = ("above", "too low") if c.accuracy > a.high else ("below", "too high")
        return f"ended {side} the interval{reach}: the law chosen ({f.law}) placed this size's accuracy {placed}"
    return "the forecast and the run disagree"


def crossing(tokens: np.ndarray, accuracy: np.ndarray, threshold: float,
             stderr: np.ndarray | None = None) -> float | None:
    """Tokens at which a run's accuracy first reaches `threshold` (`forecast.runs.crossing`,
    the measured crossing the backtest and the plots read too); None if never."""
    found = measured_crossing(tokens, accuracy, threshold, stderr)
    return None if found.kind == NEVER else found.tokens
