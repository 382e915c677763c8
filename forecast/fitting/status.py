"""Statuses and notes: the words a fit or a forecast is summed up in (a leaf module).

A `Status` says what can be told about a skill; a `Note` is a warning with a stable `code`,
so that renderers group and filter notes by kind (and print a note shared by every skill
once) without matching on message text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from forecast.schema.outputs import NoteJson


class Status(StrEnum):
    """What is known about one skill (README, "Statuses").

    Fits are `FITTED` or `NOT_PREDICTABLE`; a loss law may also be `WEAK`: fitted, but a
    parameter sits at a bound of its box or the run-to-run scatter is larger than the law's
    own change across the runs, so its numbers come with the note that says why. Forecasts of a fitted skill are one of:
    - `GROKKED_IN_PILOTS`: a pilot already crossed the grok threshold;
    - `IN_TRANSITION`: no pilot has; the target is forecast to cross within its budget;
    - `EMERGES_LATER`: forecast to cross only beyond the budget (or not within the horizon);
    - `SMOOTH`: accuracy rises steadily with scale but shows no plateau to be half way up:
      an accuracy forecast with no grok moment;
    - `FLAT`: no trend with scale is readable: the forecast is the level the largest
      pilots sit at, with its scatter; the *when* of a transition that has not started
      cannot be told;
    - `OUT_OF_RANGE`: the target lies beyond `reach.MAX_EXTRAPOLATION` e-folds of the
      pilots, or trains on far fewer tokens than any pilot was evaluated at
      (`predict.MAX_BELOW`): no number is given;
    - `NOT_PREDICTABLE`: the data supports no number at all.
    """

    FITTED = "fitted"
    WEAK = "weak"
    NOT_PREDICTABLE = "not-predictable"
    GROKKED_IN_PILOTS = "grokked-in-pilots"
    IN_TRANSITION = "in-transition"
    EMERGES_LATER = "emerges-later"
    SMOOTH = "smooth"
    FLAT = "flat"
    OUT_OF_RANGE = "out-of-range"


class NoteCode(StrEnum):
    """Kinds of note. Group-wide ones (the same for every skill of a fit) print once."""

    BUDGET_LADDER = "budget-ladder"  # sizes trained to several budgets: laws on final checkpoints
    FEW_SIZES = "few-sizes"  # too few sizes to score extrapolation
    AT_BOUND = "parameter-at-bound"
    NOISY = "scatter-exceeds-signal"  # the run-to-run scatter is larger than the law's change over the runs
    IMPLAUSIBLE_SPLIT = "implausible-split"  # a compute-optimal N or D outside any physical range
    NOT_CONVERGED = "not-converged"
    FAR = "far-extrapolation"  # the target is far beyond the pilots
    SMALLER = "smaller-than-pilots"
    EARLY_GROK = "grok-before-pilots"  # crossing earlier than any pilot evaluation
    POOLED = "pooled-families"  # other families informed the forecast
    UNKNOWN_TOKENS = "unknown-tokens"  # law in parameters alone
    INCOMPLETE = "incomplete-run"  # a pilot that did not finish was fitted (--allow-incomplete)
    IMPLAUSIBLE = "implausible-input"
    SPREAD = "laws-disagree"  # kept candidates disagree at the target
    TRAINING_LENGTH = "training-length"  # how the planned tokens were chosen
    ONE_TASK = "one-task"  # variants of one task (splits, normalisations) share one law and record


@dataclass(frozen=True)
class Note:
    """A warning: a stable `code` (a `NoteCode` value) and a one-line `message`."""

    code: str
    message: str

    def to_json(self) -> NoteJson:
        return {"code": str(self.code), "message": self.message}

    @classmethod
    def from_json(cls, data: dict) -> Note:
        return cls(str(data["code"]), str(data["message"]))

    def __str__(self) -> str:
        return self.message


def shared_notes(per_item: list[tuple[Note, ...]]) -> tuple[list[Note], list[list[Note]]]:
    """Split notes into those every item carries (print once) and each item's own."""
    if not per_item:
        return [], []
    common = set(per_item[0]).intersection(*map(set, per_item[1:])) if len(per_item) > 1 else set()
    shared = [n for n in per_item[0] if n in common]
    return shared, [[n for n in notes if n not in common] for notes in per_item]
