"""Ensembles: runs of one shape trained as one stacked model match the runs trained alone;
per-member checkpoints; resume when a kill left members at different steps; grouping;
the flat layout; the CUDA path (skipped without a GPU)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from forecast import load_runs
from forecast.threads import torch_threads
from forecast.pilot import ensemble_groups, parse_ladder, preset_ladder, train_run, train_runs
from forecast.pilot.data import IGNORE, eval_problems, pack, training_batches
from forecast.pilot.ensemble import load_members, mean_length, member_state
from forecast.pilot.model import GPT
from forecast.pilot.trainer import Progress, optimizer_for, torch_settings, train_step
from forecast.runs.files import load_run

REPO = Path(__file__).resolve().parents[1]


def _ladder(steps=40, seeds=(0, 1, 2), **train):
    """The tiny preset's 's' size, several seeds, short: seconds per run."""
    config = preset_ladder("tiny").to_json()
    config["sizes"] = {"s": config["sizes"]["s"]}
    config["seeds"] = list(seeds)
    config["train"].update(steps=steps, **train)
    config["eval"].update(points=4, first=5)
    return parse_ladder(config, "test")


def _series(run_dir, skill):
    return load_run(run_dir).series[skill]


TOLERANCE = {"loss": 2e-4, "prob": 1e-3}
"""Stated tolerance (float32, CPU, one thread): a member of an ensemble and the same run
trained alone agree at every evaluation of the first 40 steps to 2e-4 relative in answer NLL
(measured up to 4e-5), 1e-3 in exact-answer probability (measured up to 2e-4), and to one
problem in accuracy (measured: equal). They differ only by float
rounding (batched kernels sum in another order: ~1e-6 relative after one step); training
at these rates amplifies rounding as it does a change of thread count, so over a full run
the agreement is statistical, not to the digit."""


def test_ensemble_members_match_runs_trained_alone(tmp_path):
    specs = _ladder(seeds=(0, 1)).run_specs()
    with torch_threads(1):
        for spec in specs:
            train_run(spec, tmp_path / "alone", "cpu")
        train_runs(specs, tmp_path / "together", "cpu")
    for spec in specs:
        for skill in ("add", "sort"):
            alone, together = _series(tmp_path / "alone" / spec.name, skill), _series(tmp_path / "together" / spec.name, skill)
            np.testing.assert_array_equal(alone.tokens, together.tokens)  # each member its own data stream
            np.testing.assert_allclose(together.loss, alone.loss, rtol=TOLERANCE["loss"])
            np.testing.assert_allclose(together.prob, alone.prob, rtol=TOLERANCE["prob"])
            assert np.abs(together.accuracy - alone.accuracy).max() <= 1 / 64 + 1e-12
        record = load_run(tmp_path / "together" / spec.name)
        assert sorted(record.extra["trained_with"]) == sorted(s.name for s in specs if s is not spec)
    # the seeds differ from each other by far more than the tolerance: the members are distinct runs
    losses = [_series(tmp_path / "together" / s.name, "sort").loss for s in specs]
    assert np.abs(losses[0] - losses[1]).max() > 100 * TOLERANCE["loss"] * losses[0].max()


def test_float64_ensemble_agrees_with_alone_to_rounding():
    """In float64 the weights agree to 1e-11 relative after one step (measured 1e-13: the
    rounding of batched kernels) and to 1e-6 after 10 (measured 3e-8: Adam divides small
    gradients by their own size, which amplifies their rounding). A coupling between
    members would show at the scale of one update, lr = 1e-2."""
    spec = _ladder(steps=10, seeds=(0, 1)).run_specs()
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch_threads(1), torch_settings(torch.device("cpu")):
            for steps, tolerance in ((1, 1e-11), (10, 1e-6)):
                together, alone = _train_models(spec, steps), [_train_models([s], steps) for s in spec]
                for e in range(len(spec)):
                    for p_together, p_alone in zip(together.parameters(), alone[e].parameters()):
                        scale = float(p_alone.detach().abs().max())
                        assert float((p_together.detach()[e] - p_alone.detach()[0]).abs().max()) <= tolerance * scale
    finally:
        torch.set_default_dtype(before)


def _train_models(specs, steps):
    model = GPT(specs[0].model, [torch.Generator().manual_seed(s.seed) for s in specs])
    optimizer = optimizer_for(model, specs[0].train, torch.device("cpu"))
    held = {n: eval_problems(k, specs[0].eval.size, specs[0].eval.seed) for n, k in specs[0].skills.items()}
    streams = [training_batches(s.skills, s.recipe, held, s.seed, range(1, steps + 1), s.train.batch_size) for s in specs]
    for i in range(steps):
        train_step(model, optimizer, pack([b[i] for b in streams]), 1e-2, 1.0)
    return model


def test_member_checkpoints_move_between_ensembles():
    """A member's slice saved from an ensemble of 3 loads as a model of its own, optimizer
    moments included, and the two then take the same step."""
    specs = _ladder().run_specs()
    with torch_threads(1):
        together = _train_models(specs, 5)
        optimizer = optimizer_for(together, specs[0].train, torch.device("cpu"))
        held = {n: eval_problems(k, 64, 0) for n, k in specs[0].skills.items()}
        batch = [training_batches(s.skills, s.recipe, held, s.seed, [6], 64)[0] for s in specs]
        train_step(together, optimizer, pack(batch), 1e-2, 1.0)
        state = member_state(together, optimizer, 1)
        alone = GPT(specs[1].model, torch.Generator().manual_seed(99))
        alone_optimizer = optimizer_for(alone, specs[1].train, torch.device("cpu"))
        load_members(alone, alone_optimizer, [state])
        for p_alone, p_together in zip(alone.parameters(), together.parameters()):
            assert torch.equal(p_alone.detach()[0], p_together.detach()[1])
        train_step(together, optimizer, pack(batch), 1e-2, 1.0)
        train_step(alone, alone_optimizer, pack([batch[1]]), 1e-2, 1.0)
    for p_alone, p_together in zip(alone.parameters(), together.parameters()):
        torch.testing.assert_close(p_alone.detach()[0], p_together.detach()[1], rtol=1e-5, atol=1e-7)


class _Stop(Exception):
    pass


def test_resume_when_members_stopped_at_different_steps(tmp_path):
    """A kill between two members' checkpoints leaves them at different steps: the one
    behind catches up alone, then they train on together, and both complete with the
    trajectory of an uninterrupted ensemble (to the stated tolerance)."""
    specs = _ladder(seeds=(0, 1)).run_specs()
    with torch_threads(1):
        train_runs(specs, tmp_path / "whole", "cpu")

        def stop_after_second_eval(p: Progress) -> None:
            if p.status == "evaluated" and p.step >= 10 and p.run == specs[1].name:
                raise _Stop
        with pytest.raises(_Stop):
            train_runs(specs, tmp_path / "cut", "cpu", stop_after_second_eval)
        # as if killed after the first member's checkpoint at this step, before the second's
        states = [torch.load(tmp_path / "cut" / s.name / ".state.pt", weights_only=True) for s in specs]
        assert states[0]["step"] == states[1]["step"] >= 10
        first = json.loads((tmp_path / "cut" / specs[1].name / "run.json").read_text())
        assert not first["extra"]["complete"]
        for f in (tmp_path / "cut" / specs[1].name).iterdir():
            f.unlink()  # the second member: never started
        seen = []
        train_runs(specs, tmp_path / "cut", "cpu", lambda p: seen.append((p.run, p.step, p.status)))
    assert (specs[1].name, states[0]["step"], "evaluated") in seen
    for spec in specs:
        whole, cut = load_run(tmp_path / "whole" / spec.name), load_run(tmp_path / "cut" / spec.name)
        assert cut.extra["complete"] and not (tmp_path / "cut" / spec.name / ".state.pt").exists()
        for skill in ("add", "sort"):
            np.testing.assert_array_equal(cut.series[skill].step, whole.series[skill].step)
            np.testing.assert_allclose(cut.series[skill].loss, whole.series[skill].loss, rtol=TOLERANCE["loss"])


def test_groups_share_shape_and_length_and_keep_order():
    config = preset_ladder("formats_cpu").to_json()
    config["seeds"] = [0, 1]
    ladder = parse_ladder(config, "test")
    specs = ladder.run_specs()
    groups = ensemble_groups(specs)
    assert sorted(s.name for g in groups for s in g) == sorted(s.name for s in specs)
    for group in groups:
        assert len({(s.size, s.model) for s in group}) == 1 and len(group) <= 8
        # plain and reverse write answers of one length and train together; scratchpads alone
        labels = {s.recipe.label for s in group}
        assert labels in ({"plain", "reverse"}, {"scratch_simple"}, {"scratch_detailed"}), labels
        assert [specs.index(s) for s in group] == sorted(specs.index(s) for s in group)
    assert [len(g) for g in ensemble_groups(specs, "off")] == [1] * len(specs)
    assert max(len(g) for g in ensemble_groups(specs, max_members=2)) == 2


def test_pack_lays_out_every_sequence_once():
    specs = _ladder(seeds=(0, 1, 2)).run_specs()
    held = {n: eval_problems(k, 64, 0) for n, k in specs[0].skills.items()}
    batches = [training_batches(s.skills, s.recipe, held, s.seed, [3], 64)[0] for s in specs]
    packed = pack(batches)
    assert packed.tokens.shape[1] == sum(rows * length for rows, length in packed.blocks)
    for e, batch in enumerate(batches):
        start, found = 0, []
        for rows, length in packed.blocks:
            region = packed.tokens[e, start:start + rows * length].view(rows, length)
            found += [tuple(r[r != 0].tolist()) for r in region if (r != 0).any()]
            start += rows * length
        expected = [tuple(r[r != 0].tolist()) for r in batch.inputs]
        assert sorted(found) == sorted(expected)
        answers = packed.answer_targets[e][packed.answer_targets[e] != IGNORE]
        assert len(answers) == int(packed.answer_counts[e]) == int((batch.targets != IGNORE).sum())
    padded = packed.tokens.numel()
    assert padded < 1.15 * max(b.tokens for b in batches) * len(batches)  # little padding


@pytest.mark.slow
def test_resume_after_kill_of_an_ensemble_is_identical(tmp_path):
    """kill -9 an ensemble ladder after its first evaluation, rerun: byte-identical
    trajectories to the uninterrupted ladder (the same ensemble forms again)."""
    ladder = _ladder(steps=150, seeds=(0, 1))
    config = tmp_path / "ens.json"
    config.write_text(json.dumps(ladder.to_json()))
    command = [sys.executable, "-c", "from forecast.cli import app; app()", "pilot", "--config", str(config), "--device", "cpu",
               "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    whole = subprocess.run([*command, "--out", str(tmp_path / "whole")], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    process = subprocess.Popen([*command, "--out", str(tmp_path / "cut")], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dirs = [tmp_path / "cut" / ladder.name / s.name for s in ladder.run_specs()]
    deadline = time.monotonic() + 120
    while not all((d / f).exists() for d in dirs for f in (".state.pt", "run.json")):
        assert process.poll() is None and time.monotonic() < deadline, "ladder ended before its first evaluation"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    resumed = subprocess.run([*command, "--out", str(tmp_path / "cut")], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    for d in dirs:
        assert (d / "trajectory.csv").read_bytes() == (tmp_path / "whole" / ladder.name / d.name / "trajectory.csv").read_bytes()
    assert len(load_runs(tmp_path / "cut" / ladder.name)) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_path_trains_and_ensembles(tmp_path):
    """bf16 autocast, TF32, fused AdamW on the GPU: an ensemble of 2 trains, each member
    close to its run alone (bf16 tolerance), and the settings are put back after."""
    specs = _ladder(steps=40, seeds=(0, 1)).run_specs()
    precision = torch.get_float32_matmul_precision()
    train_runs(specs, tmp_path / "together", "cuda")
    train_run(specs[0], tmp_path / "alone", "cuda")
    assert torch.get_float32_matmul_precision() == precision
    run = load_run(tmp_path / "together" / specs[0].name)
    assert run.extra["device"] == "cuda" and run.extra["complete"]
    alone = _series(tmp_path / "alone" / specs[0].name, "sort")
    np.testing.assert_allclose(run.series["sort"].loss, alone.loss, rtol=0.05)
    assert run.series["sort"].loss[-1] < run.series["sort"].loss[0]


def test_a_curriculum_trains_with_the_mix_it_ends_in():
    """curriculum_cpu: 300 of 1,500 steps on the short parts, then the mix `uniform` trains
    on from the start: the two recipes' runs of one size and seed share an ensemble."""
    specs = preset_ladder("curriculum_cpu").run_specs()
    for group in ensemble_groups(specs):
        assert {s.recipe.label for s in group} == {"curriculum", "uniform"} and len({s.size for s in group}) == 1
    one = [s for s in specs if s.size == specs[0].size and s.seed == 0]
    lengths = {s.recipe.label: mean_length(s) for s in one}
    assert lengths["uniform"] * 0.85 < lengths["curriculum"] < lengths["uniform"]
