"""Rich tables and progress bars: how results look on a terminal (rendering only).

Each function takes library results (or their documented JSON summaries) and returns a
`rich` renderable; nothing here computes a forecast.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

from rich import box as rich_box
from rich.table import Table

from forecast.cli.common import log, plural
from forecast.quantities import format_count, format_flops
from forecast.fitting.status import Note, shared_notes


def table(title: str, headers: Sequence[str], *, no_wrap: Sequence[str] = (), right: Sequence[str] = ()) -> Table:
    out = Table(title=title, title_justify="left", box=rich_box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for header in headers:
        out.add_column(header, overflow="fold", no_wrap=header in no_wrap, justify="right" if header in right else "left")
    return out


def caption(t: Table, lines: Sequence[str]) -> Table:
    if lines:
        t.caption = "\n".join(lines)
        t.caption_justify = "left"
    return t


def interval_text(i: Any, pct: bool = True, count: bool = False) -> str:
    """`median [low–high]` of an `Interval` (accuracy in percent, or counts); an open
    upper end (never within the horizon) reads 'beyond'."""
    if i is None:
        return "-"
    f = (lambda v: f"{100 * v:.1f}") if pct and not count else format_count
    high = "beyond" if not math.isfinite(i.high) else f(i.high)
    return f"{f(i.median)} [{f(i.low)}–{high}]"


def note_lines(per_row: Sequence[tuple[str, Sequence[Note]]]) -> list[str]:
    """Caption lines for notes: those every row shares once, the rest prefixed by their row."""
    shared, own = shared_notes([tuple(notes) for _, notes in per_row])
    lines = [f"{label}: {n.message}" for (label, _), notes in zip(per_row, own) for n in notes]
    return lines + [n.message for n in dict.fromkeys(shared)]


# ---------------------------------------------------------------------------- runs


def runs_table(summaries: Sequence[dict[str, Any]], title: str, notes: Sequence[str] = ()) -> Table:
    """One row per run; the skill and metric names, shared by most runs, go in the caption."""
    skills = sorted({k for s in summaries for k in s["skills"]})
    metrics = sorted({k for s in summaries for k in s["metrics"]})
    headers = ("run", "family", "recipe", "params", "tokens", "ckpts", "skills") + (("metrics",) if metrics else ())
    t = table(title, headers, no_wrap=("run",), right=("params", "tokens", "ckpts", "skills", "metrics"))
    for s in summaries:
        tokens = format_count(s["tokens_max"]) if s["tokens_min"] == s["tokens_max"] else \
            f"{format_count(s['tokens_min'])}–{format_count(s['tokens_max'])}"
        name = s["name"] + (" (incomplete)" if s.get("complete") is False else "")
        cells = [name, s["family"], s["recipe"], format_count(s["params"]), tokens, str(s["checkpoints"]),
                 str(len(s["skills"]))]
        t.add_row(*cells, *([str(len(s["metrics"]))] if metrics else []))
    lines = [f"skills: {', '.join(skills) or '-'}"] + ([f"metrics: {', '.join(metrics)}"] if metrics else [])
    return caption(t, [*lines, *notes])


def pilot_table(rows: Sequence[dict[str, Any]]) -> Table:
    """Final accuracy per pilot run and skill."""
    skills = list(rows[0]["accuracy"]) if rows else []
    t = table("pilot runs (final accuracy)", ("run", "params", "tokens", "FLOPs", *skills), no_wrap=("run",),
              right=("params", "tokens", "FLOPs", *skills))
    for row in rows:
        t.add_row(row["name"], format_count(row["params"]), format_count(row["tokens"]), format_flops(row["flops"]),
                  *(f"{row['accuracy'][s]:.2f}" for s in skills))
    return t


def sweep_table(family_dir: str, statuses: Sequence[Any], tally: dict[str, int]) -> Table:
    t = table(f"{plural(len(statuses), 'run')} in {family_dir}", ("run", "state", "evaluated to step", "detail"),
              no_wrap=("run", "state"), right=("evaluated to step",))
    for s in statuses:
        step = "-" if s.step is None else f"{s.step}/{s.steps if s.steps is not None else '?'}"
        t.add_row(s.name, s.state, step, s.detail)
    return caption(t, [", ".join(f"{v} {k}" for k, v in tally.items())])


@contextlib.contextmanager
def pilot_progress() -> Iterator[tuple[Any, Any]]:
    """Rich progress bars on stderr: the ladder, and the current run's steps with tokens/s and
    per-skill accuracy at the latest evaluation. Yields (bars, report callback)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Column

    # the steps and the time never shrink; the info (tokens/s, accuracies) folds onto a second line
    columns = (TextColumn("{task.description}", table_column=Column(no_wrap=True)), BarColumn(bar_width=16),
               MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=11)),
               TimeElapsedColumn(table_column=Column(no_wrap=True)),
               TextColumn("{task.fields[info]}", table_column=Column(ratio=1, overflow="fold")))
    with Progress(*columns, console=log, transient=False) as bars:
        tasks: dict[str, Any] = {}

        def report(p: Any) -> None:
            if p.run not in tasks:
                tasks[p.run] = bars.add_task(p.run, total=p.steps, info="")
            acc = " ".join(f"{k} {v:.2f}" for k, v in p.accuracy.items())
            info = "complete, skipped" if p.status == "skipped" else f"{p.tokens_per_second:,.0f} tok/s  {acc}"
            bars.update(tasks[p.run], completed=p.step, info=info)

        yield bars, report


# ---------------------------------------------------------------------------- fits and forecasts


def fit_table(rows: Sequence[dict[str, Any]], notes: Sequence[tuple[str, Sequence[Note]]], title: str) -> Table:
    t = table(title, ("family", "skill", "status", "law", "hold-out err", "grok at largest pilot", "note"),
              no_wrap=("skill", "status"))
    for r in rows:
        grok = "-" if r["grok_tokens_at_largest_pilot"] is None else \
            f"{format_count(r['grok_tokens_at_largest_pilot'])} tokens"
        err = "-" if r["holdout_mae"] is None else f"{100 * r['holdout_mae']:.1f} pts"
        t.add_row(r["family"], r["skill"], r["status"], r["law"] or "-", err, grok, r["reason"] or "")
    return caption(t, note_lines(notes))


def grok_text(f: Any) -> tuple[str, str]:
    """The 'groks at' cells of a forecast: tokens with interval, and FLOPs."""
    g = f.grok
    if g is None:
        return ("-", "-") if f.accuracy is None else ("not within 100× the budget", "-")
    if g.note is not None:
        return ("no grok moment" if str(f.status) == "smooth" else "cannot be told"), "-"
    high = "beyond" if not math.isfinite(g.high) else format_count(g.high)
    low = f"<{format_count(g.resolution)}" if g.low is None else format_count(g.low)
    if g.tokens is None:
        return f"< {format_count(g.resolution)} [–{high}]", "-"
    return f"{format_count(g.tokens)} [{low}–{high}]", format_flops(g.flops)


def forecast_table(forecasts: Sequence[Any], title: str) -> Table:
    level = forecasts[0].level if forecasts else 0.8
    t = table(title, ("skill", "status", f"accuracy % [{level:.0%}]", "groks at tokens [interval]", "groks at FLOPs",
                      "P(grok)", "confidence", "law"), no_wrap=("skill", "status"))
    reasons = []
    for f in forecasts:
        grok, grok_flops = grok_text(f)
        p = "-" if f.p_grok is None else f"{f.p_grok:.2f}"
        t.add_row(f.skill, str(f.status), interval_text(f.accuracy), grok, grok_flops, p, f.confidence or "-",
                  (f.law or "-").split("[")[0])
        if f.reason:
            reasons.append(f"{f.skill}: {f.reason}")
        elif f.confidence_reason and f.confidence == "low":
            reasons.append(f"{f.skill}: low confidence: {f.confidence_reason}")
    return caption(t, reasons + note_lines([(f.skill, f.notes) for f in forecasts]))


def backtest_table(result: Any) -> Table:
    summary = result.summary()
    level = result.level
    held = ", ".join(n for v in result.held_out.values() for n in v)
    t = table(f"backtest, held out: {result.holdout} ({held})",
              ("family", "skill", "law", "actual", f"forecast [{level:.0%}]", "error", "covered", "carry err",
               "loglin err", "grok err (×)"))
    pts = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    for s in result.skills:
        finals = [p for p in s.points if p.final]
        if not finals:
            continue
        last = max(finals, key=lambda p: (p.params, p.tokens))
        cell = "-" if last.predicted is None else f"{pts(last.predicted)} [{pts(last.low)}–{pts(last.high)}]"
        grok = "-" if not s.grok_errors else f"{10 ** abs(s.grok_errors[-1]):.2f}"
        covered = [p.covered for p in finals if p.covered is not None]
        cover = "-" if not covered else (f"{sum(covered)}/{len(covered)}" if len(covered) > 1 else
                                         ("yes" if covered[0] else "no"))
        t.add_row(s.family, s.skill, (s.law or "not-predictable").split("[")[0], pts(last.actual), cell,
                  pts(s.mae()), cover, pts(s.mae("carry")), pts(s.mae("loglinear")), grok)
    grouped = lambda by: ", ".join(f"{k} {pts(v['coverage'])}% ({v['count']})"  # noqa: E731
                                   for k, v in summary[by].items() if v["count"])
    return caption(t, [
        f"final checkpoints, accuracy points: MAE {pts(summary['mae'])} (carry {pts(summary['carry_mae'])}, "
        f"log-linear {pts(summary['loglinear_mae'])}); mean relative error {pts(summary['relative_error'])}%; "
        f"{summary['numbered']}/{summary['items']} items with a number",
        f"{level:.0%} interval coverage {pts(summary['coverage'])}% of the held-out final checkpoints "
        f"({pts(summary['coverage_all_checkpoints'])}% of all held-out checkpoints); by confidence: "
        f"{grouped('coverage_by_confidence') or '-'}; by e-folds beyond the fitted sizes: "
        f"{grouped('coverage_by_distance') or '-'}"])


def compare_table(c: Any) -> Table:
    sizes = sorted({s.params for s in c.speeds}, key=float)
    headers = [c.by] + [f"{format_count(n)}{'' if any(s.pilot for s in c.speeds if s.params == n) else ' (target)'}"
                        for n in sizes]
    t = table(f"{c.skill}: {c.measure} to grok threshold by {c.by} ({c.fixed}), baseline {c.baseline}", headers)
    for group in sorted({s.group for s in c.speeds}):
        cells = []
        for n in sizes:
            sp = next(s for s in c.speeds if s.group == group and s.params == n)
            cells.append("never" if sp.amount is None else interval_text(sp.amount, count=True))
        t.add_row(group, *cells)
    for group in c.not_predictable:
        t.add_row(group, *(["not predictable"] + [""] * (len(sizes) - 1)))
    return caption(t, [v.text for v in c.verdicts] + [f"{g}: {why}" for g, why in c.not_predictable.items()])


def target_plan_text(result: Any) -> str:
    """One sentence for `forecast plan --target`."""
    head = f"{result.family}/{result.recipe}: {result.skill} ≥ {result.target:g}"
    if result.status == "already-reached":
        return f"{head}: already reached within the pilots' compute ({result.reason})."
    if result.flops is None:
        return f"{head}: {result.status}: {result.reason}"
    f = result.flops
    high = "beyond reach" if not math.isfinite(f.high) else format_flops(f.high)
    return (f"{head} at {format_flops(f.median)} FLOPs [{format_flops(f.low)}–{high}, {result.level:.0%}] on the "
            f"compute-optimal path: {format_count(result.params)} params × {format_count(result.tokens)} tokens "
            f"({result.tokens_per_param:g} tokens/param; {100 * result.reachable:.0f}% of samples reach it).")
