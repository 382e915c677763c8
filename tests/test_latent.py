"""The latent-capability law (`forecast.fitting.latent`) against a planted table: families
with their own offsets on one capability linear in log compute, benchmarks as sigmoids of it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecast import Recipe, Run, UsageError, make_series
from forecast.errors import DataError
from forecast.fitting.latent import fit_latent

FAMILIES = {"a": -1.0, "b": 0.0, "c": 0.8, "d": 0.3}  # planted offsets α_f
BENCH = {"easy": (0.25, 1.2, 0.5), "hard": (0.0, 2.0, -4.0), "mid": (0.25, 0.8, -0.5)}  # chance, loading w, bias c
C_REF = 1e21


def _truth(family: str, params: float, tokens: float, bench: str) -> float:
    chance, w, c = BENCH[bench]
    s = FAMILIES[family] + math.log(6 * params * tokens / C_REF)
    return chance + (1 - chance) / (1 + math.exp(-(c + w * s)))


def _table(sizes_of: dict[str, list[float]], rng) -> list[Run]:
    runs = []
    for family, sizes in sizes_of.items():
        for n in sizes:
            tokens = 20 * n
            series = {b: make_series(b, [1], [tokens], accuracy=[float(np.clip(_truth(family, n, tokens, b)
                                                                           + rng.normal(0, 0.003), 0, 1))],
                                     params=n, chance=BENCH[b][0]) for b in BENCH}
            runs.append(Run(name=f"{family}-{n:.2g}", params=n, family=family, recipe=Recipe("default"),
                            series=series, params_kind="total", source="test"))
    return runs


def test_a_family_s_next_model_is_placed_by_its_offset_and_the_others_crossings():
    """Family `a` has only small members, where `hard` still sits at 0: its 4× larger model
    is forecast from its offset (read off `easy` and `mid`) and the crossing other families
    showed on `hard`."""
    rng = np.random.default_rng(0)
    sizes = {f: list(np.geomspace(1e9, 3e10, 5)) for f in FAMILIES}
    sizes["a"] = [1e9, 2e9, 4e9]
    lf = fit_latent(_table(sizes, rng), draws=5)
    target = 1.6e10
    for f in lf.predict("a", target, tokens=20 * target):
        truth = _truth("a", target, 20 * target, f.skill)
        assert f.median == pytest.approx(truth, abs=0.03), f.skill
        assert f.low <= truth <= f.high
        assert set(f.borrowed_from) == {"b", "c", "d"}
    hard_small = _truth("a", 4e9, 80e9, "hard")
    hard_target = _truth("a", target, 20 * target, "hard")
    assert hard_target - hard_small > 0.1  # the planted jump is there to be found


def test_unknown_family_and_too_small_tables_are_errors():
    rng = np.random.default_rng(1)
    lf = fit_latent(_table({f: [1e9, 4e9, 1.6e10] for f in FAMILIES}, rng), draws=0)
    with pytest.raises(UsageError) as info:
        lf.predict("zzz", 1e10)
    assert info.value.parameter == "family"
    with pytest.raises(DataError):
        fit_latent(_table({"a": [1e9]}, rng), draws=0)
