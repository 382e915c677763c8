"""How loss fits, loss forecasts, loss plans and task averages look on a terminal (rendering only)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from forecast.cli.render import caption, interval_text, note_lines, row_label, table
from forecast.quantities import format_count, format_flops


def _loss(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _loss_interval(i: Any) -> str:
    if i is None:
        return "-"
    return f"{_loss(i.median)} [{_loss(i.low)}–{_loss(i.high)}]"


def loss_fit_table(loss_fits: Sequence[Any], title: str, verbose: bool = False) -> Table:
    """One row per loss series: the fitted law, its hold-out and run-to-run scatter."""
    t = table(title, ("loss", "kind", "group", "status", "E", "A", "α", "B", "β", "runs", "points", "scatter",
                      "why not"), no_wrap=("loss",), right=("E", "A", "α", "B", "β", "runs", "points", "scatter"))
    for f in loss_fits:
        law = f.law or {}
        cell = lambda k, fmt="{:.4g}": "-" if k not in law else fmt.format(law[k])  # noqa: E731
        t.add_row(f.metric, f.kind, f"{f.family}/{f.recipe}", str(f.status), cell("E"), cell("A"), cell("alpha", "{:.3f}"),
                  cell("B"), cell("beta", "{:.3f}"), str(len(f.runs)), str(f.n_points),
                  "-" if not f.predictable else f"{100 * f.scatter:.2g}%", f.reason or "")
    families = len({f.family for f in loss_fits})
    lines = note_lines([(row_label(f.family, f.metric, families), f.notes) for f in loss_fits], verbose)
    lines.append("L(N, D) = E + A·N^−α + B·D^−β (N parameters, D tokens; Hoffmann et al. 2022 approach 3)")
    return caption(t, lines)


def loss_forecast_table(forecasts: Sequence[Any], title: str) -> Table:
    """One row per loss series: the law's value at the target and what a run would measure."""
    level = forecasts[0].level if forecasts else 0.8
    t = table(title, ("loss", "kind", "status", "law value", f"a run would measure ({100 * level:g}%)", "why not"),
              no_wrap=("loss",), right=("law value",))
    for f in forecasts:
        t.add_row(f.metric, f.kind, f.status, _loss(f.loss), _loss_interval(f.interval), f.reason or "")
    families = len({f.family for f in forecasts})
    return caption(t, note_lines([(row_label(f.family, f.metric, families), f.notes) for f in forecasts]))


def loss_plan_table(plans: Sequence[Any], title: str) -> Table:
    """One row per loss series: the compute reaching the target and its compute-optimal split."""
    level = plans[0].level if plans else 0.8
    t = table(title, ("loss", "status", f"FLOPs ({100 * level:g}%)", "params", "tokens", "tokens/param", "P(reach)",
                      "note"), no_wrap=("loss",), right=("params", "tokens", "tokens/param", "P(reach)"))
    for p in plans:
        flops = "-" if p.flops is None else (
            f"{format_flops(p.flops.median)} [{format_flops(p.flops.low)}–"
            f"{'beyond' if not math.isfinite(p.flops.high) else format_flops(p.flops.high)}]")
        ratio = "-" if p.params is None or p.tokens is None else f"{p.tokens / p.params:.3g}"
        t.add_row(p.metric, p.status, flops, "-" if p.params is None else format_count(p.params),
                  "-" if p.tokens is None else format_count(p.tokens), ratio, f"{p.reachable:.2f}", p.reason or "")
    return t


def aggregate_table(aggregates: Sequence[Any]) -> Table:
    """One row per task average: its accuracy forecast, from its members' fits."""
    level = aggregates[0].level if aggregates else 0.8
    t = table("averages of tasks (from each member's fit)", ("average", "members", "status",
                                                             f"accuracy % ({100 * level:g}%)", "chance %", "why not"),
              no_wrap=("average",))
    for a in aggregates:
        t.add_row(a.name, str(len(a.members)), a.status, interval_text(a.accuracy), f"{100 * a.chance:.1f}",
                  a.reason or "")
    return caption(t, [aggregates[0].method] if aggregates else [])
