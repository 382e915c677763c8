"""Model shape, parameter and FLOP accounting, and greedy-decoding evaluation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from forecast.pilot.data import IGNORE, collate, eval_problems, training_batch
from forecast.pilot.evaluate import greedy_generate, score
from forecast.pilot.model import GPT, ModelConfig
from forecast.pilot.recipes import Phase, RecipeSpec
from forecast.pilot.skills import SortDigits
from forecast.pilot.trainer import EvalConfig, TrainConfig, eval_steps, learning_rate


@pytest.mark.parametrize("layers, width, heads", [(1, 16, 2), (2, 32, 2), (3, 96, 4), (5, 128, 4)])
def test_parameter_counts_match_hand_formula(layers, width, heads):
    config = ModelConfig(layers, width, heads, block_size=24)
    model = GPT(config, torch.Generator().manual_seed(0))
    d, vocab = width, config.vocab_size
    # per block: QKV 3d^2 + output d^2 + MLP 8d^2 + two LayerNorm gains; final LayerNorm gain
    non_embedding = layers * (12 * d * d + 2 * d) + d
    assert config.params_non_embedding == non_embedding
    assert sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("wte", "wpe"))) == non_embedding
    assert config.params_total == model.count_params() == non_embedding + vocab * d + 24 * d
    assert config.params_matmul == 12 * layers * d * d + d * vocab


def test_training_flops_match_torch_flop_counter():
    """6·N_matmul·T + 12·L·d·T² per sequence equals the matmul FLOPs torch counts for a
    forward + backward pass (math attention, so the attention matmuls are visible to it)."""
    config = ModelConfig(2, 32, 2, block_size=16)
    model = GPT(config, torch.Generator().manual_seed(0))
    tokens = torch.randint(0, config.vocab_size, (4, 16))
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        model(tokens).sum().backward()
    assert config.training_flops([16] * 4) == counter.get_total_flops()
    assert config.training_flops([16] * 4) == 6 * config.params_matmul * 64 + 12 * 2 * 32 * 16**2 * 4
    # sequences of different lengths add up per sequence
    assert config.training_flops([3, 5]) == config.training_flops([3]) + config.training_flops([5])


def test_schedule_and_eval_steps():
    train = TrainConfig(steps=1000, lr=1e-3, warmup_steps=10)
    assert learning_rate(train, 5) == pytest.approx(5e-4) and learning_rate(train, 999) == 1e-3
    cosine = TrainConfig(steps=1000, lr=1e-3, warmup_steps=10, decay="cosine", min_lr_frac=0.1)
    assert learning_rate(cosine, 1000) == pytest.approx(1e-4) and learning_rate(cosine, 10) == pytest.approx(1e-3)
    steps = eval_steps(train, EvalConfig(points=10, first=10))
    assert steps[0] == 10 and steps[-1] == 1000 and steps == sorted(set(steps))
    ratios = np.diff(np.log(steps))
    assert ratios.max() - ratios.min() < 0.05  # log-spaced


def test_teacher_forced_exact_match_equals_greedy_decoding():
    """Train a small model part way on sorting, then check that the one-pass exact-match
    accuracy agrees problem by problem with real greedy decoding."""
    torch.manual_seed(0)
    skill = SortDigits(3)
    skills, recipe = {"sort": skill}, RecipeSpec("r", {}, (Phase({"sort": 1.0}),))
    problems = eval_problems(skill, 96, seed=0)
    held = {"sort": problems}
    model = GPT(ModelConfig(1, 32, 2, block_size=skill.max_length("plain")), torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(1, 120):
        batch = training_batch(skills, recipe, held, seed=0, step=step, batch_size=64)
        loss = F.cross_entropy(model(batch.inputs).transpose(1, 2), batch.targets, ignore_index=IGNORE)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    examples = [skill.render(tuple(int(x) for x in p), "plain") for p in problems]
    result = score(model, collate(examples), chunk=32)
    generated = greedy_generate(model, [e.prompt for e in examples], max_new_tokens=8)
    exact = np.mean([g == e.answer for g, e in zip(generated, examples)])
    assert 0.05 < exact < 0.95  # part-trained: some right, some wrong, so the comparison means something
    assert result.accuracy == exact and result.problems == 96
    assert result.loss > 0 and result.answer_tokens == 96 * 4
    # the probability of the exact answer, teacher-forced: mean over problems of exp(-NLL)
    with torch.no_grad():
        batch = collate(examples)
        logp = torch.log_softmax(model(batch.inputs), -1)
        mask = batch.targets != IGNORE
        picked = logp.gather(-1, batch.targets.clamp(min=0)[..., None])[..., 0] * mask
        expected = float(torch.exp(picked.sum(1).double()).mean())
    assert result.prob == pytest.approx(expected, rel=1e-5)
    assert 0 < result.prob < 1
