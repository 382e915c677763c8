"""Synthetic pilot ladders drawn from known laws: data with a known answer for tests and
benchmarks (planted-parameter recovery, interval coverage, recipe trends).

Truth is given in natural units: the grok point D½(N) = d_half·(N/n_ref)^−gamma tokens,
steepness k per e-fold of tokens, and an accuracy rising from `chance` to `plateau`.
Accuracy at each checkpoint is drawn as binomial(n_eval, p)/n_eval, like a real benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecast.runs.model import Recipe, Run, make_series


@dataclass(frozen=True)
class GrokTruth:
    """A skill that groks at D½(N) = d_half·(N/n_ref)^−gamma tokens (N in parameters)."""

    d_half: float = 1e8  # tokens to the midpoint at N = n_ref
    n_ref: float = 1e6  # parameters
    gamma: float = 0.7  # larger models grok after fewer tokens
    k: float = 3.0  # steepness per e-fold of tokens
    chance: float = 0.0
    plateau: float = 1.0  # accuracy reached after the transition

    def grok_tokens(self, params: float | np.ndarray) -> np.ndarray:
        """Tokens at which accuracy is half way from chance to the plateau."""
        return self.d_half * (np.asarray(params, dtype=float) / self.n_ref) ** -self.gamma

    def accuracy(self, params: float | np.ndarray, tokens: float | np.ndarray) -> np.ndarray:
        x = np.log(np.asarray(tokens, dtype=float)) - np.log(self.grok_tokens(params))
        return self.chance + (self.plateau - self.chance) / (1 + np.exp(-self.k * x))

    def task_loss(self, params: float | np.ndarray, tokens: float | np.ndarray) -> np.ndarray:
        """A smooth task loss (nats) that falls as accuracy rises: ln(1 + e^{−k·x}) + 0.1,
        i.e. −ln of the sigmoid, the loss of a model whose answer probability is σ(k·x)."""
        x = np.log(np.asarray(tokens, dtype=float)) - np.log(self.grok_tokens(params))
        return np.logaddexp(0, -self.k * x) + 0.1


def synthetic_ladder(
    truth: GrokTruth,
    sizes: Sequence[float],
    *,
    tokens_range: tuple[float, float] = (1e6, 1e9),
    checkpoints: int = 20,
    n_eval: int = 500,
    seeds: int = 1,
    family: str = "synthetic",
    recipe: str = "default",
    skill: str = "skill",
    with_loss: bool = False,
    rng: np.random.Generator | None = None,
) -> list[Run]:
    """One run per (size, seed): log-spaced checkpoints over `tokens_range`, binomial noise."""
    rng = rng or np.random.default_rng(0)
    tokens = np.geomspace(*tokens_range, checkpoints)
    runs = []
    for size in sizes:
        for seed in range(seeds):
            p = truth.accuracy(size, tokens)
            acc = rng.binomial(n_eval, p) / n_eval
            loss = None
            if with_loss:
                loss = truth.task_loss(size, tokens) * np.exp(rng.normal(0, 0.01, len(tokens)))
            series = make_series(skill, range(1, checkpoints + 1), tokens, accuracy=acc, loss=loss,
                                 n=np.full(checkpoints, n_eval), params=size, chance=truth.chance)
            runs.append(Run(name=f"{family}-{recipe}-{size:.3g}-s{seed}", params=float(size), family=family,
                            recipe=Recipe(recipe), series={skill: series}, params_kind="non-embedding",
                            seed=seed, source="forecast.runs.synthetic"))
    return runs
