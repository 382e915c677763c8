"""Pilot trainer throughput: training tokens/s and model FLOP/s against the machine's peak.

    .venv/bin/python benchmarks/pilot_throughput.py --threads 1            # CPU table
    .venv/bin/python benchmarks/pilot_throughput.py --device cuda          # GPU table (MFU)
    options: --members 1,4,8  --seconds 3  --compile  --sizes 25k,1M  --batch 128  --clock process

Every row times real training steps of the trainer (`trainer.train_step`: the stacked
model, per-member clipping, fused AdamW) on real pilot batches (an add/sub/sort/word mix,
each member its own seed's stream, laid out by `data.pack`), for an ensemble of E runs of
one shape; E = 1 is a run trained alone. Tokens/s and FLOP/s are summed over the members;
"× alone" is the ensemble's summed tokens/s over E = 1's, measured in the same process.

Peak: on CPU, fp32 matmul FLOP/s measured here with a large square matmul on the same
threads; on CUDA, the GPU's dense bf16 tensor-core peak from `GPU_BF16_PEAK` (the
vendor's spec sheet) when the GPU is known, and a measured 8192² bf16 matmul either way.
`--clock process` times by this process's CPU time instead of the wall clock: on a machine
shared with other jobs (time-sliced cores), CPU seconds still measure the work, where wall
seconds measure the neighbours too. CPU only, with --threads 1 (it sums every thread).
Model FLOPs are `ModelConfig.training_flops` (6·N_matmul per token + 12·L·d·T attention,
padding not counted), so "% peak" is model FLOPs utilisation (MFU, PaLM appendix B). The
count includes the output projection at prompt positions, which the trainer skips (no
target there): about 6% of the count at 25k parameters, under 1% from 1M.
"""

from __future__ import annotations

import argparse
import time

import torch

from forecast.pilot.data import eval_problems, pack, training_batches
from forecast.pilot.model import GPT, ModelConfig
from forecast.pilot.recipes import Phase, RecipeSpec
from forecast.pilot.skills import Addition, SortDigits, Subtraction, WordProblem
from forecast.pilot.trainer import TrainConfig, optimizer_for, compiled_loss, torch_settings, train_step

# (label, layers, width, heads): non-embedding parameters ~ the label
CPU_SHAPES = [("25k", 2, 32, 2), ("100k", 2, 64, 4), ("1M", 5, 128, 4), ("3M", 4, 256, 4)]
GPU_SHAPES = [("1M", 5, 128, 4), ("5M", 6, 256, 4), ("25M", 8, 512, 8), ("100M", 12, 832, 13)]
GPU_BF16_PEAK = {  # dense bf16 tensor-core FLOP/s (no sparsity), from the vendors' spec sheets
    "H200": 989e12, "H100 SXM": 989e12, "H100 80GB HBM3": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12,
    "GH200": 989e12, "A100": 312e12, "A800": 312e12, "L40S": 362e12, "L40": 181e12, "L4": 121e12,
    "A10G": 70e12, "A10": 125e12, "RTX 4090": 165e12, "RTX 6000 Ada": 365e12, "A6000": 155e12, "B200": 2250e12,
}


def known_peak(name: str) -> float | None:
    """The spec-sheet bf16 peak of the GPU whose name contains a known model (longest match)."""
    hits = [k for k in GPU_BF16_PEAK if k.lower() in name.lower()]
    return GPU_BF16_PEAK[max(hits, key=len)] if hits else None


CLOCK = time.perf_counter  # or time.process_time (--clock process)


def matmul_peak(device: torch.device, seconds: float) -> float:
    """FLOP/s of a large square matmul: fp32 on CPU (2048²), bf16 on CUDA (8192²)."""
    n, dtype = (2048, torch.float32) if device.type == "cpu" else (8192, torch.bfloat16)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)
    _sync(device)
    count, start = 0, CLOCK()
    while CLOCK() - start < seconds:
        for _ in range(1 if device.type == "cpu" else 20):
            torch.mm(a, b)
            count += 1
        _sync(device)
    return 2 * n**3 * count / (CLOCK() - start)


def throughput(shape: tuple, members: int, batch_size: int, device: torch.device, seconds: float,
               compile: bool) -> dict:
    """Summed tokens/s and FLOP/s of real training steps of an ensemble of `members` runs."""
    label, layers, width, heads = shape
    skills = {"add": Addition(3), "sub": Subtraction(3), "sort": SortDigits(5), "word": WordProblem(2)}
    recipe = RecipeSpec("bench", {"add": "reverse", "sub": "reverse"}, (Phase({s: 1.0 for s in skills}),))
    held = {name: eval_problems(skill, 64, 0) for name, skill in skills.items()}
    block = max(s.max_length(recipe.format_of(n, skills)) for n, s in skills.items())
    config, train = ModelConfig(layers, width, heads, block), TrainConfig(batch_size=batch_size, lr=1e-3)
    steps = range(1, 17)
    data_start = time.perf_counter()
    streams = [training_batches(skills, recipe, held, seed, steps, batch_size) for seed in range(members)]
    lengths = [length for _, length in pack([s[0] for s in streams]).blocks] if compile else None  # as the trainer
    packed = [pack([s[i] for s in streams], lengths=lengths, min_rows=2 if compile else 1) for i in range(len(steps))]
    data_ms = 1e3 * (time.perf_counter() - data_start) / len(steps)  # per step of the whole ensemble
    batches = [p.to(device) for p in packed]
    tokens = [sum(s[i].tokens for s in streams) for i in range(len(steps))]
    flops = [sum(config.training_flops(s[i].lengths) for s in streams) for i in range(len(steps))]
    model = GPT(config, [torch.Generator().manual_seed(seed) for seed in range(members)]).to(device)
    optimizer = optimizer_for(model, train, device)
    loss_of = compiled_loss() if compile else None
    for batch in batches:  # warm-up (and compilation: a new block count is a new graph)
        train_step(model, optimizer, batch, train.lr, train.grad_clip, loss_of)
    _sync(device)
    done = done_tokens = done_flops = 0
    start = CLOCK()
    while CLOCK() - start < seconds or done < 3:
        for _ in range(1 if device.type == "cpu" else 10):
            i = done % len(batches)
            train_step(model, optimizer, batches[i], train.lr, train.grad_clip, loss_of)
            done, done_tokens, done_flops = done + 1, done_tokens + tokens[i], done_flops + flops[i]
        _sync(device)
    elapsed = CLOCK() - start
    return {"label": label, "params": config.params_non_embedding, "members": members, "batch": batch_size,
            "ms_per_step": 1e3 * elapsed / done, "tokens_per_s": done_tokens / elapsed,
            "flops_per_s": done_flops / elapsed, "data_ms": data_ms}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per configuration")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--members", default="1,4,8", help="ensemble sizes, comma-separated")
    parser.add_argument("--sizes", default=None, help="size labels to run (default: all for the device)")
    parser.add_argument("--batch", type=int, default=None, help="sequences per step per member (CPU 128, CUDA 512)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd steps")
    parser.add_argument("--clock", choices=("wall", "process"), default="wall",
                        help="time by the wall clock or by this process's CPU time (a busy shared machine)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.clock == "process":
        if device.type != "cpu" or args.threads != 1:
            parser.error("--clock process needs --device cpu and --threads 1")
        global CLOCK
        CLOCK = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = CPU_SHAPES if device.type == "cpu" else GPU_SHAPES
    if args.sizes:
        shapes = [s for s in shapes if s[0] in args.sizes.split(",")]
    batch = args.batch or (128 if device.type == "cpu" else 512)
    members = [int(m) for m in args.members.split(",")]
    with torch_settings(device):
        measured = matmul_peak(device, args.seconds)
        if device.type == "cpu":
            peak, source = measured, f"fp32 matmul peak {measured / 1e9:.1f} GFLOP/s (measured), " \
                                     f"{torch.get_num_threads()} thread(s), {args.clock} clock"
        else:
            name = torch.cuda.get_device_name()
            spec = known_peak(name)
            peak = spec or measured
            source = (f"{name}: bf16 dense peak {peak / 1e12:.0f} TFLOP/s ({'spec sheet' if spec else 'measured'}); "
                      f"measured 8192² bf16 matmul {measured / 1e12:.0f} TFLOP/s")
        print(f"device {device.type}: {source}; batch {batch} sequences per member")
        print(f"{'size':>5} {'params':>11} {'E':>2} {'compile':>7} {'ms/step':>8} {'tokens/s':>11} {'GFLOP/s':>9} "
              f"{'% peak':>6} {'× alone':>7} {'data ms':>7}")
        for shape in shapes:
            for compiled in [False, True] if args.compile else [False]:
                alone = None
                for count in members:
                    r = throughput(shape, count, batch, device, args.seconds, compiled)
                    alone = alone or (r["tokens_per_s"] if count == 1 else None)
                    ratio = f"{r['tokens_per_s'] / alone:>7.2f}" if alone else f"{'-':>7}"
                    print(f"{r['label']:>5} {r['params']:>11,} {count:>2} {str(compiled):>7} {r['ms_per_step']:>8.1f} "
                          f"{r['tokens_per_s']:>11,.0f} {r['flops_per_s'] / 1e9:>9.1f} "
                          f"{100 * r['flops_per_s'] / peak:>6.1f} {ratio} {r['data_ms']:>7.2f}", flush=True)
    if device.type == "cpu":
        print(f"(peak again after the table: {matmul_peak(device, args.seconds) / 1e9:.1f} GFLOP/s; "
              "a large gap means the machine was busy)")


if __name__ == "__main__":
    main()
