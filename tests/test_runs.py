import json

import numpy as np
import pytest

from forecast import DataError, Recipe, Run, load_runs, make_series, write_runs


def _run(name="r1", params=1e6, family="fam"):
    add = make_series("add", [0, 100, 200], [0, 1e5, 2e5], accuracy=[0.0, 0.5, 0.9],
                      loss=[3.0, 1.0, np.nan], params=params, chance=0.0)
    val = make_series("val_loss", [0, 100, 200], [0, 1e5, 2e5], loss=[5.0, 4.0, 3.5], params=params)
    return Run(name, params, family, Recipe("plain", format="plain"), {"add": add, "val_loss": val},
               params_kind="non-embedding", seed=3, source="test")


def test_round_trip(tmp_path):
    run = _run()
    write_runs([run], tmp_path)
    (loaded,) = load_runs(tmp_path)
    assert loaded.name == "r1" and loaded.params == 1e6 and loaded.seed == 3
    assert loaded.recipe.format == "plain" and loaded.skills == ("add",) and loaded.metrics == ("val_loss",)
    np.testing.assert_allclose(loaded.series["add"].flops, 6 * 1e6 * np.array([0, 1e5, 2e5]))
    assert np.isnan(loaded.series["add"].loss[2])
    assert loaded.content_hash == run.content_hash


def test_write_refuses_to_overwrite(tmp_path):
    write_runs([_run()], tmp_path)
    before = (tmp_path / "r1" / "trajectory.csv").read_text()
    with pytest.raises(DataError, match="already exists"):
        write_runs([_run(params=2e6)], tmp_path)
    assert (tmp_path / "r1" / "trajectory.csv").read_text() == before
    write_runs([_run(params=2e6)], tmp_path, overwrite=True)
    assert load_runs(tmp_path)[0].params == 2e6


def test_bad_run_json_version(tmp_path):
    write_runs([_run()], tmp_path)
    meta = json.loads((tmp_path / "r1" / "run.json").read_text())
    meta["format"] = 99
    (tmp_path / "r1" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="format version 99"):
        load_runs(tmp_path)
