"""Checks on runs: `validate_run` enforces the run format's rules (a `DataError` naming the
file, field and fix); `implausible` flags valid data that looks wrong (a unit error in the
source, most likely), which callers report as a note rather than refuse."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from forecast.errors import DataError
from forecast.io import MAX_INTEGER
from forecast.runs.model import PARAMS_KINDS, TRAJECTORY_FILE, Run, Series, is_number, unsafe_label, unsafe_name

NAME_FIX = ("names are single folder names: no '/' or '\\', not '.' or '..', no control characters, "
            "at most 200 characters (run names also not starting with '.')")
MAX_STDERR = 0.5
"""Largest standard error an accuracy in [0, 1] can have (a coin: sqrt(0.25 / 1))."""

MAX_TOKENS_PER_PARAM = 1e4
"""Training tokens per parameter above which a run is implausible (published models train
at most a few thousand): such data is flagged, most likely a unit error in the source."""
BELOW_CHANCE = 0.05
"""A skill whose best accuracy stays this far below its chance level (5 points) is doubtful:
a small model scores near chance, a point or two under it by noise (MMLU's 0.23 at 0.25),
not 10 under; further below, the chance level or the metric is most likely wrong."""
MAX_PARAMS = 1e14
"""Parameter counts above this (100 T) are implausible for any model trained to date."""


def validate_run(run: Run, file: str | Path | None = None) -> None:
    """Check a run built in code (or loaded) against the format's rules; raise `DataError`."""
    file = file or (run.path / TRAJECTORY_FILE if run.path else f"run '{run.name}'")
    why = unsafe_name(run.name, hidden_ok=False)
    if why is not None:
        raise DataError(file, "name", f"run name {run.name!r} {why}", NAME_FIX)
    for field, value in (("family", run.family), ("recipe", run.recipe.label)):
        why = unsafe_label(value)
        if why is not None:
            raise DataError(file, field, f"{field} {value!r} {why}", "give a short label without control characters")
    if run.seed is not None and not 0 <= run.seed <= MAX_INTEGER:
        raise DataError(file, "seed", f"seed {run.seed} is not a whole number >= 0", 'write e.g. "seed": 0')
    if not (is_number(run.params) and math.isfinite(run.params) and run.params > 0):
        raise DataError(file, "params", f"must be a positive number of parameters, got {run.params!r}",
                        "give the parameter count, e.g. 4.1e8")
    if run.params_kind not in PARAMS_KINDS:
        raise DataError(file, "params_kind", f"unknown kind {run.params_kind!r}",
                        f"use one of {', '.join(PARAMS_KINDS)}")
    if not run.series:
        raise DataError(file, "skill", "the run has no checkpoints", "add at least one row per skill")
    folded: dict[str, str] = {}
    for name, s in run.series.items():
        why = unsafe_name(name)
        if why is not None:
            raise DataError(file, "skill", f"skill name {name!r} {why}", NAME_FIX)
        if name.casefold() in folded:  # `--skill add` matches case-insensitively: which one would it be?
            raise DataError(file, "skill", f"skills {folded[name.casefold()]!r} and {name!r} differ only in case",
                            "give them distinct names (skills are matched case-insensitively)")
        folded[name.casefold()] = name
        _validate_series(name, s, file)


def _validate_series(name: str, s: Series, file: str | Path) -> None:
    where = f"skill '{name}'"
    if len(s.step) == 0:
        raise DataError(file, "step", f"{where} has no checkpoints", "add rows or drop the skill")
    if np.any(s.step < 0):
        raise DataError(file, "step", f"{where} has a negative step", "steps count from 0")
    dup = s.step[1:][np.diff(s.step) == 0]
    if dup.size:
        raise DataError(file, "step", f"{where} has step {int(dup[0])} twice (duplicate checkpoint)",
                        "keep one row per step and skill")
    for col, values in (("tokens", s.tokens), ("flops", s.flops)):
        if np.any(np.isinf(values)) or np.any(values[np.isfinite(values)] < 0):
            raise DataError(file, col, f"{where} has a negative or infinite {col} value",
                            f"{col} must be finite and >= 0 (leave the cell empty if unknown)")
    if np.isnan(s.tokens).any() and not np.isnan(s.tokens).all():
        raise DataError(file, "tokens", f"{where} gives tokens on some checkpoints but not others",
                        "give tokens on every row of a skill, or on none if they are unknown")
    if np.any(np.diff(s.tokens) < 0):
        i = int(np.argmax(np.diff(s.tokens) < 0)) + 1
        raise DataError(file, "tokens", f"{where}: tokens decrease at step {int(s.step[i])} (non-monotone)",
                        "tokens seen must not decrease as steps increase; check the tokens column")
    if s.accuracy is not None:
        if not np.all(np.isfinite(s.accuracy)):
            raise DataError(file, "accuracy", f"{where} has NaN or infinite accuracy",
                            "drop those checkpoints or fill in the value")
        if np.any((s.accuracy < 0) | (s.accuracy > 1)):
            bad = float(s.accuracy[(s.accuracy < 0) | (s.accuracy > 1)][0])
            raise DataError(file, "accuracy", f"{where} has accuracy {bad} outside [0, 1]",
                            "give accuracy as a fraction (0.42, not 42)")
        if s.chance is None or not (0 <= s.chance < 1):
            raise DataError(file, "chance", f"{where} needs a chance level in [0, 1), got {s.chance!r}",
                            "0 for exact-match generation, 1/k for k-way multiple choice")
        if s.ceiling is not None and not (s.chance < s.ceiling <= 1):
            raise DataError(file, "ceiling", f"{where} has ceiling {s.ceiling} not in (chance, 1]",
                            "leave it empty or give the best attainable accuracy")
    elif s.loss is None or not np.all(np.isfinite(s.loss)):
        raise DataError(file, "loss", f"{where} has neither accuracy nor a finite loss on every row",
                        "a metric row without accuracy must give a loss")
    if s.prob is not None and np.any((s.prob[np.isfinite(s.prob)] < 0) | (s.prob[np.isfinite(s.prob)] > 1)):
        raise DataError(file, "prob", f"{where} has an answer probability outside [0, 1]",
                        "give the mean probability of the correct answer as a fraction")
    if s.loss is not None and np.any(np.isinf(s.loss)):
        raise DataError(file, "loss", f"{where} has an infinite loss", "leave the cell empty instead")
    if np.any(s.step > MAX_INTEGER):
        raise DataError(file, "step", f"{where} has a step above 2**63 - 1", "check the step column")
    if s.loss is not None and np.any(s.loss[np.isfinite(s.loss)] < 0):
        bad = float(s.loss[np.isfinite(s.loss) & (s.loss < 0)][0])
        raise DataError(file, "loss", f"{where} has loss {bad:g} < 0", "a loss (NLL, bits per byte) is >= 0")
    if s.stderr is not None:
        known = s.stderr[np.isfinite(s.stderr)]
        if np.any((known < 0) | (known > MAX_STDERR)):
            bad = float(known[(known < 0) | (known > MAX_STDERR)][0])
            raise DataError(file, "stderr", f"{where} has stderr {bad:g} outside [0, {MAX_STDERR}]",
                            "give the standard error of the accuracy as a fraction (0.012, not 1.2)")
    if s.n is not None:
        known = s.n[np.isfinite(s.n)]
        if np.any((known < 1) | (known != np.round(known)) | (known > MAX_INTEGER)):
            bad = float(known[(known < 1) | (known != np.round(known)) | (known > MAX_INTEGER)][0])
            raise DataError(file, "n", f"{where} has sample count {bad:g}, not a positive whole number",
                            "n is the number of items evaluated, e.g. 1838")
    if s.accuracy is not None and s.ceiling is not None and float(np.max(s.accuracy)) > s.ceiling:
        raise DataError(file, "ceiling", f"{where} reaches accuracy {float(np.max(s.accuracy)):g} above its ceiling "
                        f"{s.ceiling:g}", "the ceiling is the best attainable accuracy: raise it, or leave it empty")


def implausible(run: Run) -> str | None:
    """Why a valid run looks wrong (a unit error in the source, most likely), or None:
    more than `MAX_PARAMS` parameters, more than `MAX_TOKENS_PER_PARAM` tokens per
    parameter, no training tokens at its last checkpoint, or a skill whose accuracy stays
    `BELOW_CHANCE` below its chance level (a wrong chance, or a wrong metric)."""
    if run.params > MAX_PARAMS:
        return f"{run.params:.3g} parameters is more than any model trained (> {MAX_PARAMS:.0e})"
    final = run.final_tokens
    if math.isfinite(final) and final / run.params > MAX_TOKENS_PER_PARAM:
        return (f"{final:.3g} training tokens for {run.params:.3g} parameters is {final / run.params:.3g} "
                f"tokens per parameter, above the {MAX_TOKENS_PER_PARAM:.0e} that published models rarely exceed: "
                "check the units of tokens and params")
    if math.isfinite(final) and final == 0:
        return "the last checkpoint saw 0 training tokens"
    for name, s in run.series.items():
        if s.accuracy is not None and s.chance is not None and s.chance > 0 and \
                float(np.max(s.accuracy)) < s.chance - BELOW_CHANCE:
            return (f"skill '{name}' stays more than {BELOW_CHANCE * 100:.0f} points below its chance level "
                    f"{s.chance:g} (best accuracy {float(np.max(s.accuracy)):g}): check the chance level (--chance) "
                    "and the metric")
    return None
