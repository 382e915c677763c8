"""Evaluation of a pilot model on held-out problems: exact-match accuracy, answer NLL and
the probability of the exact answer.

Exact match of greedy decoding is computed in one teacher-forced forward pass: greedy
decoding reproduces the answer (and stops at its END) exactly when, at every answer
position, the argmax of the next-token logits given the true prefix is the true token;
by induction the greedy output then follows the true answer, and at the first position
where the argmax differs it leaves it. `greedy_generate` decodes for real and the tests
check that both agree. For scratchpad formats the whole written answer must match.

The same pass gives the probability the model assigns to the exact answer (teacher
forcing: the product of its answer tokens' probabilities, exp(−answer NLL)), averaged
over problems: a continuous pass rate that moves long before greedy accuracy does, as
PassUntil (Hu et al. 2024, "Predicting Emergent Abilities with Infinite Resolution
Evaluation") measures pass rates far below what a finite sample resolves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forecast.pilot.data import IGNORE, Batch
from forecast.pilot.model import GPT
from forecast.pilot.vocab import END_ID, PAD_ID, decode, encode


@dataclass(frozen=True)
class SkillScore:
    """One skill at one checkpoint."""

    accuracy: float  # fraction of problems answered exactly (greedy decoding)
    loss: float  # answer NLL: nats summed over the answer's tokens (and END), mean over problems
    prob: float  # probability of the exact answer, exp(-answer NLL) per problem, mean over problems
    nll_sum: float  # nats summed over every answer token of every problem
    answer_tokens: int  # answer tokens (END included) over all problems
    problems: int  # evaluation set size (n)


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (tensor cores); plain fp32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def score(model: GPT, batch: Batch, chunk: int = 512) -> SkillScore:
    """Exact-match accuracy, answer NLL and exact-answer probability of a single model on
    one skill's held-out batch."""
    return score_members(model, [batch], chunk)[0]


@torch.no_grad()
def score_members(model: GPT, batches: Sequence[Batch], chunk: int = 512) -> list[SkillScore]:
    """`score` for every member of an ensemble at once: member e on `batches[e]` (the same
    problems, each in its member's format), padded to one length and run as one batch."""
    if len(batches) != model.members:
        raise ValueError(f"{len(batches)} batches for an ensemble of {model.members}")
    device = batches[0].inputs.device
    width = max(b.inputs.shape[1] for b in batches)
    inputs = torch.stack([F.pad(b.inputs, (0, width - b.inputs.shape[1]), value=PAD_ID) for b in batches])
    targets = torch.stack([F.pad(b.targets, (0, width - b.targets.shape[1]), value=IGNORE) for b in batches])
    members, problems = inputs.shape[:2]
    correct = torch.zeros(members, dtype=torch.float64, device=device)
    nll_sum = torch.zeros(members, dtype=torch.float64, device=device)
    prob_sum = torch.zeros(members, dtype=torch.float64, device=device)
    for start in range(0, problems, chunk):
        ids, tgt = inputs[:, start:start + chunk], targets[:, start:start + chunk]
        with autocast_for(device):
            logits = model(ids)
        logits = logits.float()
        mask = tgt != IGNORE
        nll = F.cross_entropy(logits.permute(0, 3, 1, 2), tgt.clamp(min=0), reduction="none") * mask
        per_problem = nll.sum(dim=2, dtype=torch.float64)  # (E, rows)
        nll_sum += per_problem.sum(dim=1)
        prob_sum += torch.exp(-per_problem).sum(dim=1)
        right = (logits.argmax(-1) == tgt) | ~mask
        correct += right.all(dim=2).sum(dim=1)
    answer_tokens = (targets != IGNORE).sum(dim=(1, 2)).tolist()
    correct, nll_sum, prob_sum = correct.tolist(), nll_sum.tolist(), prob_sum.tolist()  # one transfer per skill
    return [SkillScore(correct[e] / problems, nll_sum[e] / problems, prob_sum[e] / problems, nll_sum[e],
                       int(answer_tokens[e]), problems) for e in range(members)]


@torch.no_grad()
def greedy_generate(model: GPT, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy decoding of a batch of prompts (full recompute each step, right-padded), each
    stopped at its END token. Returns the generated answers without END."""
    device = next(model.parameters()).device
    lengths = torch.tensor([len(p) for p in prompts], device=device)
    width = min(int(lengths.max()) + max_new_tokens, model.config.block_size)
    ids = torch.full((len(prompts), width), PAD_ID, dtype=torch.long, device=device)
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = torch.from_numpy(encode(prompt))
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    rows = torch.arange(len(prompts), device=device)
    answers: list[list[int]] = [[] for _ in prompts]
    for _ in range(max_new_tokens):
        if done.all() or int(lengths.max()) >= width:
            break
        with autocast_for(device):
            logits = model(ids[:, : int(lengths.max())])
        nxt = logits[rows, lengths - 1].argmax(-1)
        for row in torch.nonzero(~done).flatten().tolist():
            answers[row].append(int(nxt[row]))
        done |= nxt == END_ID
        ids[rows[~done], lengths[~done]] = nxt[~done]
        lengths = torch.where(done, lengths, lengths + 1)
    return [decode(a) for a in answers]
