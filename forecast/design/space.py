"""What a pilot ladder design chooses among: rungs, ladders, and the candidates a budget allows.

A *rung* is one model size trained to one token budget, `seeds` times; a *ladder* is a set
of rungs. Its compute is Σ 6·N·D·seeds (the 6ND rule, `quantities.FLOPS_PER_PARAM_TOKEN`),
with N the parameters the forecasts count.

The candidates (`candidate_ladders`) are geometric ladders that spend the whole pilot budget:
`sizes` model sizes, each `spacing` times the one below, every size trained at each of the
token `multipliers` (× the target's own tokens per parameter, so 1 is the target's recipe
scaled down), with `seeds` seeds. Given those knobs the budget fixes the largest size:

    budget = 6 · seeds · (D_T/N_T) · Σ_m m · Σ_i N_i²,   N_i = N_max · spacing^−i,

so every candidate trades the same compute between reach (a larger top rung), span (more or
wider-spaced sizes), noise (seeds) and token budgets (several per size, as the OLMo ladder
trains 0.5–10× Chinchilla). `geometric_ladder` is the naive default the design is judged
against: 5 sizes spaced ×2 at the target's tokens per parameter, one seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from forecast.errors import UsageError
from forecast.quantities import FLOPS_PER_PARAM_TOKEN, format_count, format_flops
from forecast.schema.design import LadderJson, RungJson

DEFAULT_SIZES = (3, 4, 5, 6)
"""How many model sizes a candidate ladder may have (3 is the fewest a hold-out can check)."""
DEFAULT_SPACINGS = (2.0, 4.0)
"""Ratios between neighbouring sizes (×2 is the usual ladder; ×4 spans more for the same compute)."""
DEFAULT_MULTIPLIERS = ((1.0,), (0.5, 1.0, 2.0), (4.0,))
"""Token budgets per size, as multiples of the target's tokens per parameter: one budget like
the target's, three around it (a budget ladder, fitted on final checkpoints), or 4× (smaller
models trained longer reach further in compute)."""
DEFAULT_SEEDS = (1, 2)
"""Seeds per rung the search considers (two halve the seed-to-seed scatter, at twice the cost)."""
MIN_PARAMS = 1e4
"""No rung smaller than this many parameters (the smallest trainable pilot GPT is ~1e3)."""


@dataclass(frozen=True)
class Rung:
    """One model size trained to one token budget, `seeds` times (one run per seed)."""

    params: float  # parameters (the count the forecasts use)
    tokens: float  # training tokens of each run
    seeds: int = 1

    @property
    def flops(self) -> float:
        """Training FLOPs of all its runs: 6·N·D per run."""
        return FLOPS_PER_PARAM_TOKEN * self.params * self.tokens * self.seeds

    def to_json(self) -> RungJson:
        return {"params": self.params, "tokens": self.tokens, "tokens_per_param": self.tokens / self.params,
                "seeds": self.seeds, "flops": self.flops}


@dataclass(frozen=True)
class LadderPlan:
    """A pilot ladder: its rungs (smallest first) and the knobs that made it."""

    rungs: tuple[Rung, ...]
    sizes: int  # distinct model sizes
    spacing: float  # ratio between neighbouring sizes
    multipliers: tuple[float, ...]  # token budgets per size, × the target's tokens per parameter
    seeds: int

    @property
    def label(self) -> str:
        """A short name, e.g. '5 sizes ×2 to 7.9B, 1× tokens, 1 seed'."""
        budgets = "/".join(f"{m:g}" for m in self.multipliers) + "×"
        return (f"{self.sizes} sizes ×{self.spacing:g} to {format_count(self.largest)}, {budgets} tokens, "
                f"{self.seeds} seed{'s' if self.seeds > 1 else ''}")

    @property
    def flops(self) -> float:
        return sum(r.flops for r in self.rungs)

    @property
    def runs(self) -> int:
        return sum(r.seeds for r in self.rungs)

    @property
    def largest(self) -> float:
        return max(r.params for r in self.rungs)

    @property
    def smallest(self) -> float:
        return min(r.params for r in self.rungs)

    def to_json(self) -> LadderJson:
        return {"label": self.label, "sizes": self.sizes, "spacing": self.spacing,
                "multipliers": list(self.multipliers), "seeds": self.seeds, "runs": self.runs,
                "flops": self.flops, "rungs": [r.to_json() for r in self.rungs]}


def budget_ladder(budget: float, target_params: float, target_tokens: float, *, sizes: int, spacing: float,
                  multipliers: Sequence[float], seeds: int) -> LadderPlan:
    """The geometric ladder with these knobs that spends exactly `budget` FLOPs."""
    if sizes < 1 or spacing <= 1 or seeds < 1 or not multipliers or min(multipliers) <= 0:
        raise UsageError("a ladder needs >= 1 size, spacing > 1, >= 1 seed and positive token multipliers")
    ratio = target_tokens / target_params
    weight = sum(spacing ** (-2 * i) for i in range(sizes))
    largest = math.sqrt(budget / (FLOPS_PER_PARAM_TOKEN * seeds * ratio * sum(multipliers) * weight))
    params = [largest * spacing ** -(sizes - 1 - i) for i in range(sizes)]
    rungs = tuple(Rung(n, m * ratio * n, seeds) for n in params for m in sorted(multipliers))
    return LadderPlan(rungs, sizes, float(spacing), tuple(sorted(float(m) for m in multipliers)), seeds)


def geometric_ladder(budget: float, target_params: float, target_tokens: float, sizes: int = 5,
                     spacing: float = 2.0) -> LadderPlan:
    """The naive default a design is judged against: `sizes` sizes spaced ×`spacing` at the
    target's tokens per parameter, one seed, spending `budget`."""
    return budget_ladder(budget, target_params, target_tokens, sizes=sizes, spacing=spacing, multipliers=(1.0,),
                         seeds=1)


@dataclass(frozen=True)
class Space:
    """The knobs the search crosses (every combination is one candidate)."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    spacings: tuple[float, ...] = DEFAULT_SPACINGS
    multipliers: tuple[tuple[float, ...], ...] = DEFAULT_MULTIPLIERS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    min_params: float = MIN_PARAMS


def candidate_ladders(budget: float, target_params: float, target_tokens: float,
                      space: Space = Space()) -> tuple[list[LadderPlan], list[str]]:
    """Every ladder of `space` that spends `budget`, and why the others were left out (a top
    rung as large as the target, or a bottom rung under `space.min_params`)."""
    check_target(target_params, target_tokens, budget)
    kept, dropped = [], []
    for sizes, spacing, multipliers, seeds in itertools.product(space.sizes, space.spacings, space.multipliers,
                                                                  space.seeds):
        ladder = budget_ladder(budget, target_params, target_tokens, sizes=sizes, spacing=spacing,
                               multipliers=multipliers, seeds=seeds)
        if ladder.largest >= target_params:
            dropped.append(f"{ladder.label}: its top rung is as large as the target")
        elif ladder.smallest < space.min_params:
            dropped.append(f"{ladder.label}: its bottom rung is under {format_count(space.min_params)} params")
        else:
            kept.append(ladder)
    if not kept:
        raise UsageError(f"no candidate ladder fits a budget of {format_flops(budget)} FLOPs for a "
                         f"{format_count(target_params)} target: " + "; ".join(dropped[:2]))
    return kept, dropped


def check_target(target_params: float, target_tokens: float, budget: float) -> None:
    target_flops = FLOPS_PER_PARAM_TOKEN * target_params * target_tokens
    if budget >= target_flops:
        raise UsageError(f"`budget={format_flops(budget)}` FLOPs is as much as training the target itself "
                         f"({format_flops(target_flops)}); a pilot budget is a small share of it, e.g. 1%",
                         parameter="budget")
