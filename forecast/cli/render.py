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
from forecast.fitting.status import Note


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


NAMES_SHOWN = 6
"""A note shared by more rows than this names the first few and counts the rest (all under --verbose)."""


def names_text(labels: Sequence[str], verbose: bool = False) -> str:
    """`a, b, c` for few labels; `a, b, … and 12 more (15)` for many (all of them if `verbose`)."""
    labels = list(dict.fromkeys(labels))
    if verbose or len(labels) <= NAMES_SHOWN:
        return ", ".join(labels)
    return f"{', '.join(labels[:NAMES_SHOWN - 1])} and {len(labels) - NAMES_SHOWN + 1} more ({len(labels)})"


LISTING_NOTES = ("pooled-families",)
"""Notes whose message ends in a list of names (`head: a, b, c`): shortened unless verbose
(the list stays whole in --json, e.g. a forecast's `borrowed_from`)."""


def short_message(note: Note, verbose: bool = False) -> str:
    """A note's message, its trailing list of names cut to a few and a count (`names_text`)."""
    if verbose or note.code not in LISTING_NOTES or ": " not in note.message:
        return note.message
    head, _, listing = note.message.rpartition(": ")
    return f"{head}: {names_text(listing.split(', '))}"


def note_lines(per_row: Sequence[tuple[str, Sequence[Note]]], verbose: bool = False) -> list[str]:
    """Caption lines for notes, each message once: a message every row shares is printed
    alone, one shared by some rows is followed by the rows it concerns (a few named and the
    rest counted, unless `verbose`)."""
    rows: dict[str, list[str]] = {}
    for label, notes in per_row:
        for n in notes:
            rows.setdefault(short_message(n, verbose), []).append(label)
    everyone = len({label for label, _ in per_row})
    lines = []
    for message, labels in rows.items():
        if len(set(labels)) == everyone and everyone > 1:
            lines.append(message)
        else:
            lines.append(f"{names_text(labels, verbose)}: {message}")
    return lines


def row_label(family: str, name: str, families: int) -> str:
    """How a row is named in notes: `family/skill` when the rows span several families."""
    return f"{family}/{name}" if families > 1 else name


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


@contextlib.contextmanager
def fit_progress(title: str, enabled: bool) -> Iterator[Any]:
    """A progress bar over skills on stderr, with the time left, when `enabled` (a terminal,
    no --json); else the plain status line. Yields the `progress(done, total, skill)`
    callback of `forecast.fit` (None when disabled)."""
    if not enabled:
        with log.status(title):
            yield None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("skills"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), TextColumn("{task.fields[skill]}"))
    with Progress(*columns, console=log, transient=True) as bars:
        task = bars.add_task(title, total=None, skill="")

        def report(done: int, total: int, skill: str) -> None:
            bars.update(task, completed=done, total=total, skill=skill)

        yield report


# ---------------------------------------------------------------------------- fits and forecasts


FAMILY_SUMMARY_ROWS = 30
"""`forecast fit` prints one row per family, not per skill, above this many rows over
several families (`--verbose`: every row)."""


def reason_key(reason: str) -> str:
    """A reason with its numbers in parentheses left out, so that families told the same
    thing about different sizes share one caption line."""
    import re

    return re.sub(r"\s*\([^()]*\d[^()]*\)", "", reason)


def fit_table(rows: Sequence[dict[str, Any]], notes: Sequence[tuple[str, str, Sequence[Note]]], title: str,
              verbose: bool = False) -> Table:
    """The fits: one row per (family, skill), or one per family for large tables unless
    `verbose`. `notes`: (family, skill, notes) per skill fit."""
    families = sorted({r["family"] for r in rows})
    labelled = [(row_label(fam, skill, len(families)), ns) for fam, skill, ns in notes]
    if not verbose and len(families) > 1 and len(rows) > FAMILY_SUMMARY_ROWS:
        return family_fit_table(rows, notes, title)
    t = table(title, ("family", "skill", "status", "law", "hold-out err", "grok at largest pilot", "note"),
              no_wrap=("skill", "status"))
    for r in rows:
        grok = "-" if r["grok_tokens_at_largest_pilot"] is None else \
            f"{format_count(r['grok_tokens_at_largest_pilot'])} tokens"
        err = "-" if r["holdout_mae"] is None else f"{100 * r['holdout_mae']:.1f} pts"
        edges = r.get("at_bound") or []
        status = f"{r['status']}, at bound" if edges else r["status"]
        note = r["reason"] or (f"{', '.join(edges)} at a bound: a limit, not an estimate" if edges else "")
        t.add_row(r["family"], r["skill"], status, r["law"] or "-", err, grok, note)
    return caption(t, note_lines(labelled, verbose))


def family_fit_table(rows: Sequence[dict[str, Any]], notes: Sequence[tuple[str, str, Sequence[Note]]],
                     title: str) -> Table:
    """One row per family: how many skills were fitted, by which laws, and why the rest were
    not (a footnote per distinct reason); notes by kind with their counts. `--verbose` and
    `--json` hold every row."""
    families = sorted({r["family"] for r in rows})
    reasons: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        if r["reason"]:
            reasons.setdefault(reason_key(r["reason"]), []).append((r["family"], r["skill"]))
    keys = list(reasons)
    t = table(f"{title} ({plural(len(rows), 'skill fit')} in {_families(len(families))}; "
              "--verbose for every skill)", ("family", "skills", "fitted", "laws", "not fitted: why"),
              no_wrap=("family",), right=("skills", "fitted"))
    for fam in families:
        mine = [r for r in rows if r["family"] == fam]
        fitted = [r for r in mine if r["reason"] is None]
        laws = ", ".join(f"{law} {n}" if n > 1 else law for law, n in
                         sorted(_counts(r["law"] or "-" for r in fitted).items(), key=lambda kv: -kv[1]))
        why = sorted({keys.index(reason_key(r["reason"])) + 1 for r in mine if r["reason"]})
        t.add_row(fam, str(len(mine)), str(len(fitted)), laws or "-", " ".join(f"[{i}]" for i in why))
    lines = [f"[{i}] {key} ({plural(len(who), 'skill')} in {_families(len({f for f, _ in who}))})"
             for i, (key, who) in enumerate(reasons.items(), 1)]
    kinds: dict[str, tuple[str, set[str], int]] = {}
    for fam, _, ns in notes:
        for n in ns:
            example, fams, count = kinds.get(n.code, (short_message(n), set(), 0))
            kinds[n.code] = (example, fams | {fam}, count + 1)
    for code, (example, fams, count) in kinds.items():
        lines.append(f"note {code}: {plural(count, 'skill')} in {_families(len(fams))}, e.g. {example}")
    return caption(t, lines)


def _families(count: int) -> str:
    return f"{count} famil{'y' if count == 1 else 'ies'}"


def _counts(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def grok_text(f: Any) -> tuple[str, str]:
    """The 'groks at' cells of a forecast: tokens with interval, and FLOPs. A crossing
    earlier than the pilots resolve reads "< X" (with the interval's upper end when it
    lies later); an end past the search horizon reads "beyond"."""
    g = f.grok
    if g is None:
        return ("-", "-") if f.accuracy is None else ("not within 100× the budget", "-")
    if g.note is not None:
        if getattr(f, "tokens_unknown", False):
            return "unknown", "-"  # the runs give no tokens (the forecast's note says so)
        return ("no grok moment" if str(f.status) == "smooth" else "cannot be told"), "-"
    high = "beyond" if not math.isfinite(g.high) else format_count(g.high)
    low = f"<{format_count(g.resolution)}" if g.low is None else format_count(g.low)
    if g.tokens is None:
        top = f"{(1 + f.level) / 2:.0%}"  # the interval's upper end is this quantile
        later = (f" ({top}: beyond)" if not math.isfinite(g.high) else
                 f" ({top} by {high})" if g.high > g.resolution else "")
        return f"< {format_count(g.resolution)}{later}", f"< {format_flops(g.resolution * g.flops_per_token)}"
    return f"{format_count(g.tokens)} [{low}–{high}]", format_flops(g.flops)


def forecast_table(forecasts: Sequence[Any], title: str) -> Table:
    """One row per forecast; with a family (and its planned tokens) column when the
    forecasts span several (family, recipe) groups."""
    level = forecasts[0].level if forecasts else 0.8
    groups = {(f.family, f.recipe) for f in forecasts}
    many = len(groups) > 1
    recipes = len({r for _, r in groups}) > 1
    head = ("family", "tokens") if many else ()
    t = table(title, (*head, "skill", "status", f"accuracy % [{level:.0%}]", "groks at tokens [interval]",
                      "groks at FLOPs", "P(grok)", "confidence", "law"), no_wrap=("skill", "status"))
    reasons = []
    for f in forecasts:
        grok, grok_flops = grok_text(f)
        p = "-" if f.p_grok is None else f"{f.p_grok:.2f}"
        name = f"{f.family}/{f.recipe}" if recipes else f.family
        lead = (name, "unknown" if f.tokens_unknown or not math.isfinite(f.tokens) else format_count(f.tokens)) \
            if many else ()
        law = "latent" if f.borrowed == "latent" else (f.law or "-").split("[")[0]
        law += f" {f.path}" if f.path and f.path != "direct" else ""
        t.add_row(*lead, f.skill, str(f.status), interval_text(f.accuracy), grok, grok_flops, p, f.confidence or "-",
                  law)
        label = f"{name}/{f.skill}" if many else f.skill
        if f.reason:
            reasons.append((label, f.reason))
        elif f.confidence_reason and f.confidence == "low":
            reasons.append((label, f"low confidence: {f.confidence_reason}"))
    families = len({f.family for f in forecasts})
    grouped = note_lines([(label, (Note("reason", why),)) for label, why in reasons]) if many else \
        [f"{label}: {why}" for label, why in reasons]
    return caption(t, grouped + note_lines([(row_label(f.family, f.skill, families), f.notes) for f in forecasts]))


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
        return f"{head}: already reached within the pilots' compute: {result.reason}."
    if result.flops is None:
        return f"{head}: {result.status}: {result.reason}"
    f = result.flops
    high = "beyond reach" if not math.isfinite(f.high) else format_flops(f.high)
    return (f"{head} at {format_flops(f.median)} FLOPs [{format_flops(f.low)}–{high}, {result.level:.0%}] on the "
            f"compute-optimal path: {format_count(result.params)} params × {format_count(result.tokens)} tokens "
            f"({result.tokens_per_param:g} tokens/param; {100 * result.reachable:.0f}% of samples reach it).")
