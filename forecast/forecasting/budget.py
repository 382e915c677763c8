"""The training budget of a forecast's target: how many tokens (and FLOPs) it trains on.

One rule for skills (`forecast.forecasting.predict`) and losses (`forecast.forecasting.loss`): the given
tokens; or FLOPs / (κ·N); or `tokens_per_param`·N; or the runs' own tokens per parameter
when they agree on one (published families train 100–300+ tokens per parameter; pilots
often train every size for the same tokens); else the compute-optimal 20·N.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from forecast.errors import UsageError
from forecast.quantities import TOKENS_PER_PARAM

RATIO_SPREAD = math.log(2.0)
"""Largest spread (standard deviation of ln tokens/params over the runs) at which a group's
runs count as trained to one tokens-per-parameter ratio."""


MAX_PARAMS = 1e15
"""No model size above this many parameters is physical (10⁴× the largest trained today)."""


def unphysical(params: float | None, tokens: float | None) -> str | None:
    """Why a model of `params` parameters on `tokens` tokens is outside any physical range
    (below one parameter or token, above `MAX_PARAMS`, not finite); None when it is not."""
    from forecast.quantities import format_count

    for value, unit in ((params, "parameters"), (tokens, "tokens")):
        if value is None:
            continue
        if not math.isfinite(value) or value < 1:
            return f"{format_count(value) if math.isfinite(value) else value} {unit} is below one"
        if unit == "parameters" and value > MAX_PARAMS:
            return f"{format_count(value)} parameters is above any physical size ({MAX_PARAMS:.0e})"
    return None


def shared_ratio(ratios: Sequence[float]) -> float | None:
    """The tokens per parameter `ratios` (one per run, final tokens / params) agree on: their
    geometric mean when their spread is within `RATIO_SPREAD`; else None."""
    ratios = [r for r in ratios if math.isfinite(r) and r > 0]
    if len(ratios) < 2:
        return None
    logs = np.log(ratios)
    return float(np.exp(logs.mean())) if float(np.std(logs)) <= RATIO_SPREAD else None


def training_budget(params: float, kappa: float, tokens: float | None, flops: float | None,
                    tokens_per_param: float | None, ratios: Sequence[float]) -> tuple[float, float, str]:
    """(tokens, FLOPs, how the tokens were chosen) for a target of `params` parameters, with
    C = κ·N·D; `ratios` are the runs' own tokens per parameter."""
    if tokens is not None and flops is not None:
        raise UsageError("give `tokens` or `flops`, not both", parameter="flops")
    if tokens is not None:
        source = "given"
    elif flops is not None:
        tokens, source = flops / (kappa * params), "from-flops"
    elif tokens_per_param is not None:
        tokens, source = tokens_per_param * params, "given-tokens-per-param"
    else:
        ratio = shared_ratio(ratios)
        source = "group-tokens-per-param" if ratio is not None else "default-tokens-per-param"
        tokens = (ratio or TOKENS_PER_PARAM) * params
    return float(tokens), float(kappa * params * tokens), source
