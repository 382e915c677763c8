"""`Fits`: the fitted skills of one or more groups, and the forecasts made from them.

The top of the library's flow (runs → fits → forecasts): `forecast.fit` returns a `Fits`,
`Fits.load` reads one back, and its methods forecast (`predict`), plan (`plan_target`,
`plan_budget`), and compare recipes (`compare`). Each method is a thin, typed front to
the module that does the work, so notebook users and the CLI call the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from forecast.forecasting.aggregate import AggregateForecast, aggregate_forecast
from forecast.forecasting.compare import SkillComparison, compare_skill_fits
from forecast.errors import UsageError
from forecast.fitting.fit import FitOptions, Progress, fit_runs
from forecast.schema.documents import FitSummaryJson
from forecast.store.files import load_fits, load_loss_fits, save_fits
from forecast.fitting.loss_fit import LossFit
from forecast.forecasting.loss import LossForecast, LossPlan, plan_loss, predict_loss, select_losses
from forecast.forecasting.plan import BudgetPlan, TargetPlan, plan_budget, plan_target
from forecast.forecasting.predict import SkillForecast, degenerate_bounds, pilot_grok_point, predict
from forecast.quantities import TOKENS_PER_PARAM
from forecast.fitting.results import SkillFit, choose_group, groups, match_skills, select, wants_all
from forecast.fitting.status import Status
from forecast.runs.model import Run


@dataclass(frozen=True, eq=False)
class Fits:
    """A collection of skill fits, keyed by (family, recipe, skill). Load with `Fits.load`."""

    skills: tuple[SkillFit, ...]
    tool: str = ""
    source: str | None = None  # directory loaded from
    losses: tuple[LossFit, ...] = ()  # loss laws L(N, D) per group and loss series (forecast.fitting.loss_fit)

    def groups(self) -> list[tuple[str, str]]:
        """The (family, recipe) groups held."""
        return groups(self.skills)

    def group(self, family: str | None = None, recipe: str | None = None) -> tuple[str, str]:
        """The one (family, recipe) group selected; `UsageError` if none or ambiguous."""
        return choose_group(self.skills, family, recipe)

    def select(self, family: str | None = None, recipe: str | None = None,
               skills: Sequence[str] | None = None) -> list[SkillFit]:
        """Skill fits of one group; `skills` None or ["all"] for every skill (case-insensitive)."""
        return select(self.skills, family, recipe, skills)

    # -------------------------------------------------------------------- forecasts

    def predict(self, params: float, *, tokens: float | None = None, flops: float | None = None,
                skills: Sequence[str] | None = None, family: str | None = None, recipe: str | None = None,
                level: float = 0.8, threshold: float | None = None, tokens_per_param: float | None = None,
                seed: int = 0) -> list[SkillForecast]:
        """Forecast each skill for a model of `params` parameters trained on `tokens` tokens
        (or `flops` FLOPs; neither: `tokens_per_param`·params, by default the group's own
        ratio when its runs show one, else 20). See `forecast.forecasting.predict`."""
        return predict(self.select(family, recipe, skills), params, tokens=tokens, flops=flops, level=level,
                       threshold=threshold, tokens_per_param=tokens_per_param, seed=seed)

    def predict_families(self, params: float, *, tokens: float | None = None, flops: float | None = None,
                         skills: Sequence[str] | None = None, recipe: str | None = None, level: float = 0.8,
                         threshold: float | None = None, tokens_per_param: float | None = None,
                         seed: int = 0) -> list[SkillForecast]:
        """`predict` for every (family, recipe) group that holds the skills (`skills` None or
        ["all"]: each group's every skill), family by family. A group whose runs give no
        training tokens cannot honour `tokens`/`flops`: its rows are `not-predictable`
        with that reason, and the others are still forecast."""
        chosen = [g for g in self.groups() if recipe is None or g[1] == recipe]
        if not chosen:
            choose_group(self.skills, None, recipe)  # raises, listing the groups held
        if not wants_all(skills):
            match_skills(sorted({s.skill for s in self.skills if (s.family, s.recipe) in chosen}), skills)
        out = []
        for fam, rec in chosen:
            members = {s.skill.lower(): s for s in self.skills if (s.family, s.recipe) == (fam, rec)}
            picked = list(members.values()) if wants_all(skills) else \
                [members[k.lower()] for k in dict.fromkeys(skills) if k.lower() in members]
            for sf in picked:
                try:
                    out += predict([sf], params, tokens=tokens, flops=flops, level=level, threshold=threshold,
                                   tokens_per_param=tokens_per_param, seed=seed)
                except UsageError as exc:
                    if sf.tokens_known:
                        raise
                    out.append(SkillForecast(
                        skill=sf.skill, family=fam, recipe=rec, params=params, tokens=math.nan, flops=math.nan,
                        tokens_source="unknown-like-pilots", status=Status.NOT_PREDICTABLE, accuracy=None, grok=None,
                        p_grok=None, threshold=None, extrapolation=None, level=level, reason=str(exc)))
        return out

    def plan_target(self, skill: str, target: float, *, family: str | None = None, recipe: str | None = None,
                    level: float = 0.8, tokens_per_param: float = TOKENS_PER_PARAM, seed: int = 0) -> TargetPlan:
        """Smallest compute-optimal training compute (FLOPs) forecast to reach `target`
        accuracy on `skill`, with an interval. See `forecast.forecasting.plan`."""
        (sf,) = self.select(family, recipe, [skill])
        return plan_target(sf, target, level=level, tokens_per_param=tokens_per_param, seed=seed)

    def plan_budget(self, flops: float, *, skills: Sequence[str] | None = None, family: str | None = None,
                    recipe: str | None = None, level: float = 0.8, threshold: float | None = None,
                    tokens_per_param: float = TOKENS_PER_PARAM, seed: int = 0) -> BudgetPlan:
        """Which skills a compute-optimal model at `flops` FLOPs groks, and how well."""
        return plan_budget(self.select(family, recipe, skills), flops, level=level, threshold=threshold,
                           tokens_per_param=tokens_per_param, seed=seed)

    def plan(self, *, skill: str | None = None, target: float | None = None, budget: float | None = None,
             **kwargs) -> TargetPlan | BudgetPlan:
        """`plan(skill=..., target=...)` is `plan_target`; `plan(budget=...)` is `plan_budget`."""
        if budget is not None and target is None:
            return self.plan_budget(budget, skills=None if skill is None else [skill], **kwargs)
        if target is not None and skill is not None and budget is None:
            return self.plan_target(skill, target, **kwargs)
        raise UsageError("plan: give skill and target, or budget")

    def compare(self, *, by: str = "recipe", skills: Sequence[str] | None = None, family: str | None = None,
                recipe: str | None = None, target_params: float | None = None, baseline: str | None = None,
                threshold: float | None = None, measure: str = "tokens", level: float = 0.8,
                seed: int = 0) -> list[SkillComparison]:
        """Speed of grokking of each recipe (or family), and whether the ranking holds at
        `target_params`. See `forecast.forecasting.compare`."""
        return compare_skill_fits(self.skills, by=by, skills=skills, family=family, recipe=recipe,
                                  target_params=target_params, baseline=baseline, threshold=threshold,
                                  measure=measure, level=level, seed=seed)

    def predict_aggregate(self, name: str, members: Sequence[str], params: float, *, tokens: float | None = None,
                          flops: float | None = None, family: str | None = None, recipe: str | None = None,
                          level: float = 0.8, tokens_per_param: float | None = None, seed: int = 0) -> AggregateForecast:
        """Forecast the mean accuracy over `members` (skill names, or ["all"]) from each
        member's own fit (`forecast.forecasting.aggregate`), not from a law refitted to the mean."""
        return aggregate_forecast(name, self.select(family, recipe, members), params, tokens=tokens, flops=flops,
                                  level=level, tokens_per_param=tokens_per_param, seed=seed)

    # -------------------------------------------------------------------- loss forecasts

    def select_losses(self, family: str | None = None, recipe: str | None = None,
                      metrics: Sequence[str] | None = None) -> list[LossFit]:
        """Loss fits of one group; `metrics` None or ["all"] for every loss series."""
        return select_losses(self.losses, family, recipe, metrics)

    def predict_loss(self, params: float, *, tokens: float | None = None, flops: float | None = None,
                     metrics: Sequence[str] | None = None, family: str | None = None, recipe: str | None = None,
                     level: float = 0.8, tokens_per_param: float | None = None, seed: int = 0) -> list[LossForecast]:
        """Forecast each loss series (validation loss, task losses) at `params` parameters
        trained on `tokens` tokens (or `flops`). See `forecast.forecasting.loss`."""
        return [predict_loss(f, params, tokens=tokens, flops=flops, level=level, tokens_per_param=tokens_per_param,
                             seed=seed) for f in self.select_losses(family, recipe, metrics)]

    def plan_loss(self, target: float, *, metrics: Sequence[str] | None = None, family: str | None = None,
                  recipe: str | None = None, level: float = 0.8, seed: int = 0) -> list[LossPlan]:
        """Smallest compute (and its compute-optimal N/D split) reaching `target` loss."""
        return [plan_loss(f, target, level=level, seed=seed) for f in self.select_losses(family, recipe, metrics)]

    def summaries(self) -> list[FitSummaryJson]:
        """One row per skill fit, what `forecast fit` prints (and its `--json` "skills"):
        status, chosen law, its hold-out error, the grok point of the largest pilot size,
        why the law was chosen or why the skill is not predictable, and the notes."""
        rows = []
        for sf in self.skills:
            best = sf.candidates[0] if sf.candidates else None
            grok = pilot_grok_point(sf) if sf.predictable else None
            rows.append({
                "skill": sf.skill, "family": sf.family, "recipe": sf.recipe, "status": str(sf.status), "law": sf.law,
                "holdout_mae": None if best is None or best.holdout is None else best.holdout.mae,
                "grok_tokens_at_largest_pilot": None if grok is None else grok.tokens,
                "largest_pilot_params": max(sf.sizes) if sf.pilots else None,
                "why": sf.why or None, "reason": sf.reason, "notes": [n.to_json() for n in sf.notes],
                "at_bound": list(degenerate_bounds(sf)),
            })
        return rows

    # -------------------------------------------------------------------- files

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write the fits under `out_dir`, replacing the skills they hold and keeping every
        other skill already there (one atomic switch; see `forecast.store.files`)."""
        return save_fits(self.skills, self.tool, out_dir, self.losses)

    @classmethod
    def load(cls, path: str | Path) -> Fits:
        skills, tool = load_fits(path)
        return cls(skills=tuple(skills), tool=tool, source=str(path), losses=tuple(load_loss_fits(path)))


def fit(runs: Sequence[Run], *, skills: Sequence[str] | None = None, family: str | None = None,
        recipe: str | None = None, options: FitOptions | None = None, progress: Progress | None = None) -> Fits:
    """Fit every skill of every (family, recipe) group in `runs` (or the chosen ones) and
    return the `Fits` that forecast from them; `progress(done, total, skill)` is called as
    skills are fitted. See `forecast.fitting.fit.fit_runs`."""
    fitted = fit_runs(runs, skills=skills, family=family, recipe=recipe, options=options, progress=progress)
    return Fits(skills=fitted.skills, tool=fitted.tool, losses=fitted.losses)
