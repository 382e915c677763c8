"""A generated over-training-style ladder with planted parameters, written as such ladders
are released (Gadre et al. 2024: one row per model × task × metric, final checkpoints only):
5 sizes × 3 tokens-per-parameter ratios; per model a validation loss on a named corpus
(`c4_val`, metric `loss`) and 17 downstream tasks, each with its own chance level in a
`chance` column, a third of them reported as error rates (metric `error`); the step cell
is empty (the model's final checkpoint).

Planted: L(N, D) = E + A·N^−α + B·D^−β (with 0.3% run-to-run noise), and per task
accuracy = chance + (1 − chance)·σ(−k·(L − mid)) read on 2,000 items (binomial noise).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

SIZES = (11e6, 40e6, 150e6, 500e6, 1.6e9)
RATIOS = (20, 80, 320)
LAW = {"E": 1.7, "A": 200.0, "alpha": 0.34, "B": 250.0, "beta": 0.28}
CHANCES = (0.25, 0.25, 0.25, 0.5, 0.5, 0.2, 0.25, 0.5, 1 / 3, 0.25, 0.0, 0.25, 0.5, 0.25, 0.2, 0.25, 0.0)
ITEMS = 2000
LOSS_NOISE = 0.003


def true_loss(params: float, tokens: float) -> float:
    return LAW["E"] + LAW["A"] * params ** -LAW["alpha"] + LAW["B"] * tokens ** -LAW["beta"]


def tasks() -> list[dict]:
    rng = np.random.default_rng(17)
    return [{"name": f"task{i:02d}", "chance": c, "mid": float(rng.uniform(2.0, 3.3)), "k": float(rng.uniform(2.0, 5.0)),
             "metric": "error" if i % 3 == 0 else "acc"} for i, c in enumerate(CHANCES)]


def true_accuracy(task: dict, loss: float) -> float:
    return task["chance"] + (1 - task["chance"]) / (1 + math.exp(task["k"] * (loss - task["mid"])))


def model_name(params: float, ratio: int) -> str:
    return f"ot-{params / 1e6:g}M-x{ratio}"


def write_table(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["model", "family", "params", "tokens", "step", "task", "metric", "value", "chance", "n"])
        for params in SIZES:
            for ratio in RATIOS:
                name, tokens = model_name(params, ratio), ratio * params
                loss = true_loss(params, tokens) * math.exp(rng.normal(0, LOSS_NOISE))
                out.writerow([name, "overtrain", int(params), int(tokens), "", "c4_val", "loss", f"{loss:.5f}", "", ""])
                for task in tasks():
                    acc = true_accuracy(task, loss)
                    acc = min(max(acc + rng.normal(0, math.sqrt(acc * (1 - acc) / ITEMS)), 0.0), 1.0)
                    value = 1 - acc if task["metric"] == "error" else acc
                    out.writerow([name, "overtrain", int(params), int(tokens), "", task["name"], task["metric"],
                                  f"{value:.4f}", f"{task['chance']:.4f}", ITEMS])
    return path
