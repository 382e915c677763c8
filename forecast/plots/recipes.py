"""Plots of recipe decisions on final-checkpoint ladders (PNG): the backtest by recipe
(reliability of P(win), decision accuracy against ranking by the largest pilot) and the
forecasts at the target per skill and recipe. Object API on Agg (`layout.grid`)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from forecast.backtesting.recipes import RecipeBacktest
from forecast.forecasting.recipe_decision import LadderComparison
from forecast.plots.layout import DEFAULT_STYLE, PlotStyle, grid, skill_colors
from forecast.quantities import format_count


def recipe_backtest_figure(bt: RecipeBacktest, *, style: PlotStyle = DEFAULT_STYLE) -> Figure:
    """Left: reliability of P(predicted winner) by bin (observed share won against mean P,
    marker area by count; the diagonal is perfect calibration). Right: decision accuracy and
    Brier score of the forecast against ranking by the largest remaining pilot."""
    f = bt.flips()
    note = [f"{bt.summary_line()}.",
            f"Held out {format_count(bt.held_params)} params; fitted on ≤ {format_count(bt.pilot_params)}; "
            f"{bt.ties} exact ties left out; groups: {', '.join(bt.groups)}. Flips: the forecast disagreed with the "
            f"pilots' order {f['called']} times; the held-out order differed from it {f['actual']} times."]
    fig, (rel, bars) = grid(2, style, note)
    rel.plot([0.5, 1], [0.5, 1], ls=":", color=style.reference_color, lw=1)
    bins = [b for b in bt.reliability() if b["count"]]
    total = max(1, len(bt.decisions))
    rel.scatter([b["mean_p"] for b in bins], [b["observed"] for b in bins],
                s=[20 + 600 * b["count"] / total for b in bins], color=style.target_color, alpha=0.8, zorder=3)
    for b in bins:
        rel.annotate(str(b["count"]), (b["mean_p"], b["observed"]), textcoords="offset points", xytext=(6, -10),
                     fontsize=style.font_size - 1)
    rel.set(xlim=(0.48, 1.02), ylim=(0, 1.02), xlabel="P(predicted winner), bin mean",
            ylabel="share the predicted winner won")
    rel.set_title("reliability of P(win)", fontsize=style.title_size)
    labels = ["forecast", f"largest pilot ({format_count(bt.pilot_params)})"]
    acc = [bt.decision_accuracy or 0.0, bt.baseline_decision_accuracy or 0.0]
    brier = [bt.brier or 0.0, bt.baseline_brier or 0.0]
    x = [0, 1]
    colors = [style.target_color, style.reference_color]
    bars.bar([v - 0.18 for v in x], acc, width=0.34, color=colors, label="decision accuracy")
    bars.bar([v + 0.18 for v in x], brier, width=0.34, color=colors, alpha=0.45, hatch="//", label="Brier score")
    for v, a, b in zip(x, acc, brier):
        bars.text(v - 0.18, a + 0.01, f"{a:.3f}", ha="center", fontsize=style.font_size - 1)
        bars.text(v + 0.18, b + 0.01, f"{b:.3f}", ha="center", fontsize=style.font_size - 1)
    bars.axhline(0.5, ls=":", color=style.reference_color, lw=1)
    bars.set_xticks(x, labels)
    bars.set(ylim=(0, 1), ylabel="accuracy (solid) / Brier (hatched)")
    bars.set_title(f"{len(bt.decisions)} decisions", fontsize=style.title_size)
    return fig


def ladder_figure(c: LadderComparison, *, skills: int = 12, style: PlotStyle = DEFAULT_STYLE) -> Figure:
    """Per skill (the `skills` whose deciding metric separates the recipes best), each
    recipe's accuracy forecast at the target: median and interval; filled where the recipe
    wins every decided pair it is in, hollow otherwise."""
    groups = list(c.groups)
    colors = dict(zip(groups, skill_colors(len(groups), style)))
    shown = sorted(c.skills, key=lambda s: -s.snr[s.metric])[:skills]
    note = [c.recommendation + ".",
            f"Forecast accuracy at {format_count(c.target_params)} params, {format_count(c.target_tokens)} tokens, "
            f"{100 * c.level:.0f}% intervals; filled: the recipe wins every decided pair it is in (at least one)."]
    if len(c.skills) > skills:
        note.append(f"The {skills} skills of highest signal-to-noise shown; {len(c.skills) - skills} more in the "
                    "table and JSON.")
    note += [f"{s}: not predictable ({why})" for s, why in c.not_predictable.items()]
    handles = [Line2D([], [], color=colors[g], marker="o", lw=0, label=g) for g in groups]
    fig, axes = grid(len(shown), style, note, handles)
    for ax, s in zip(axes, shown):
        for k, f in enumerate(s.forecasts):
            decided = [p for p in s.pairs if p.decided and f.group in (p.winner, p.loser)]
            filled = bool(decided) and all(p.winner == f.group for p in decided)
            ax.errorbar([k], [f.accuracy.median], yerr=[[f.accuracy.median - f.accuracy.low],
                                                          [f.accuracy.high - f.accuracy.median]],
                        color=colors[f.group], marker="o", mfc=colors[f.group] if filled else "white", capsize=3)
        ax.set_xticks(range(len(s.forecasts)), [f.group for f in s.forecasts], fontsize=style.font_size - 1,
                      rotation=20)
        ax.set_ylabel("accuracy at the target")
        ax.set_title(f"{s.skill} (by {s.metric}, SNR {s.snr[s.metric]:.2g})", fontsize=style.title_size)
    return fig
