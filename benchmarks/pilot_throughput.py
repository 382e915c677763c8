"""Pilot trainer throughput: training tokens/s and model FLOP/s against the machine's peak.

    .venv/bin/python benchmarks/pilot_throughput.py [--device cpu|cuda] [--seconds 4] [--compile]

Peak is measured in this process with one large matmul (fp32 on CPU, bf16 on CUDA).
Model FLOPs are `ModelConfig.training_flops` (6·N_matmul per token + 12·L·d·T attention),
so "% of peak" is model FLOPs utilisation (MFU). Steps are real training steps (AdamW,
gradient clipping) on real pilot batches (add/sub/sort/word mix), data generation timed
separately.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from forecast.pilot.data import IGNORE, training_batch
from forecast.pilot.evaluate import autocast_for
from forecast.pilot.model import GPT, ModelConfig
from forecast.pilot.recipes import Phase, RecipeSpec
from forecast.pilot.skills import Addition, SortDigits, Subtraction, WordProblem

# (label, layers, width, heads): ~25k, ~100k, ~1M and ~3M non-embedding parameters
SHAPES = [("25k", 2, 32, 2), ("100k", 2, 64, 4), ("1M", 5, 128, 4), ("3M", 4, 256, 4)]
BATCHES = [128, 512]


def matmul_peak(device: torch.device, seconds: float) -> float:
    """FLOP/s of a large square matmul: fp32 on CPU, bf16 on CUDA."""
    n, dtype = (2048, torch.float32) if device.type == "cpu" else (8192, torch.bfloat16)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)
    _sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
        if device.type == "cuda" and count % 10:
            continue
        _sync(device)
    _sync(device)
    return 2 * n**3 * count / (time.perf_counter() - start)


def training_throughput(shape: tuple, batch_size: int, device: torch.device, seconds: float, compile: bool) -> dict:
    """Tokens/s, FLOP/s and data-generation share of real training steps for one model shape."""
    label, layers, width, heads = shape
    skills = {"add": Addition(3), "sub": Subtraction(3), "sort": SortDigits(5), "word": WordProblem(2)}
    recipe = RecipeSpec("bench", {"add": "reverse", "sub": "reverse"}, (Phase({s: 1.0 for s in skills}),))
    held = {s: frozenset() for s in skills}
    block = max(s.max_length(recipe.format_of(n, skills)) for n, s in skills.items())
    config = ModelConfig(layers, width, heads, block)
    model = GPT(config, torch.Generator().manual_seed(0)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    forward = torch.compile(model) if compile else model
    batches = [training_batch(skills, recipe, held, 0, step, batch_size) for step in range(1, 9)]
    data_start = time.perf_counter()
    for step in range(9, 17):
        training_batch(skills, recipe, held, 0, step, batch_size)
    data_seconds = (time.perf_counter() - data_start) / 8

    def train_step(batch) -> None:
        with autocast_for(device):
            logits = forward(batch.inputs)
        loss = F.cross_entropy(logits.float().transpose(1, 2), batch.targets, ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    batches = [b.to(device) for b in batches]
    for batch in batches[:3]:  # warm-up (and compilation)
        train_step(batch)
    _sync(device)
    steps = tokens = flops = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = batches[steps % len(batches)]
        train_step(batch)
        steps, tokens, flops = steps + 1, tokens + batch.tokens, flops + config.training_flops(batch.lengths)
    _sync(device)
    elapsed = time.perf_counter() - start
    return {"label": label, "params": config.params_non_embedding, "batch": batch_size, "ms_per_step": 1e3 * elapsed / steps,
            "tokens_per_s": tokens / elapsed, "flops_per_s": flops / elapsed, "data_ms": 1e3 * data_seconds}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per configuration")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    peak = matmul_peak(device, args.seconds)
    kind = "fp32" if device.type == "cpu" else "bf16"
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"device {device.type}{threads}: {kind} matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(f"{'size':>5} {'params':>9} {'batch':>5} {'compile':>7} {'ms/step':>8} {'tokens/s':>10} {'GFLOP/s':>8} {'% peak':>6} {'data ms':>7}")
    for shape in SHAPES:
        for batch_size in BATCHES:
            for compiled in ([False, True] if args.compile else [False]):
                r = training_throughput(shape, batch_size, device, args.seconds, compiled)
                print(f"{r['label']:>5} {r['params']:>9,} {r['batch']:>5} {str(compiled):>7} {r['ms_per_step']:>8.1f} "
                      f"{r['tokens_per_s']:>10,.0f} {r['flops_per_s'] / 1e9:>8.1f} {100 * r['flops_per_s'] / peak:>6.1f} "
                      f"{r['data_ms']:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
