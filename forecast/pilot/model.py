"""A compact decoder-only transformer (GPT) with exact parameter and FLOP accounting.

After nanoGPT's `model.py` (Karpathy): pre-norm blocks, causal
`F.scaled_dot_product_attention`, learned absolute positions, a 4x GELU MLP, no biases,
token embedding tied to the output projection.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from forecast.pilot.vocab import VOCAB_SIZE


@dataclass(frozen=True)
class ModelConfig:
    """The shape of one model; every size of a ladder shares everything but the first three."""

    n_layer: int = 2  # depth: number of transformer blocks
    n_embd: int = 64  # width d_model; the MLP hidden layer is 4x this
    n_head: int = 2  # attention heads; must divide n_embd (head size n_embd / n_head)
    block_size: int = 32  # longest input in tokens: size of the learned position table
    vocab_size: int = VOCAB_SIZE  # character vocabulary (see vocab.py)

    def __post_init__(self) -> None:
        if min(self.n_layer, self.n_embd, self.n_head, self.block_size) <= 0 or self.n_embd % self.n_head:
            raise ValueError(f"invalid model shape {self}: sizes must be positive and n_head must divide n_embd")

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    # ---------------------------------------------------------------- parameter counts
    @property
    def params_non_embedding(self) -> int:
        """Parameters outside the token and position embeddings (Kaplan et al. 2020's N):
        per block 12·d² in matrices (QKV 3d², attention output d², MLP 8d²) plus two
        LayerNorm gains (2d), and the final LayerNorm gain (d)."""
        d = self.n_embd
        return self.n_layer * (12 * d * d + 2 * d) + d

    @property
    def params_total(self) -> int:
        """All parameters: non-embedding plus token (V·d, tied to the output) and position (T·d) tables."""
        return self.params_non_embedding + (self.vocab_size + self.block_size) * self.n_embd

    @property
    def params_matmul(self) -> int:
        """Weights that enter a matrix multiply for every token: the 12·L·d² block matrices plus
        the output projection d·V. LayerNorm gains and embedding lookups do no matmul."""
        return 12 * self.n_layer * self.n_embd**2 + self.n_embd * self.vocab_size

    # ---------------------------------------------------------------- FLOP accounting
    def training_flops(self, lengths: torch.Tensor | list[int]) -> float:
        """Model FLOPs of one training step (forward + backward) over sequences of the given
        lengths (input tokens each; padding is not counted).

        Per token, 6·N_matmul for the weights (2 forward, 4 backward FLOPs per weight:
        Kaplan et al. 2020 sec. 2.1) plus 12·L·d·T for attention over a length-T sequence
        (QKᵀ and A·V, 2·T·d each per layer forward, x3 for training; full T×T as computed,
        no causal discount: PaLM appendix B, nanoGPT's `estimate_mfu`). Summed per sequence:
        6·N_matmul·T + 12·L·d·T².
        """
        lengths = torch.as_tensor(lengths, dtype=torch.float64)
        tokens = float(lengths.sum())
        squares = float((lengths * lengths).sum())
        return 6.0 * self.params_matmul * tokens + 12.0 * self.n_layer * self.n_embd * squares


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.n_head, width // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, bias=False)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd, bias=False)
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.out = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    """Token ids (batch, length) -> next-token logits (batch, length, vocab)."""

    def __init__(self, config: ModelConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=False)
        self._init_weights(generator)

    def _init_weights(self, generator: torch.Generator) -> None:
        """GPT-2 initialisation (as nanoGPT): N(0, 0.02) everywhere, residual output
        projections scaled by 1/sqrt(2·n_layer). Drawn from `generator` on the CPU, so a
        seed gives the same initial model on every device."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue  # LayerNorm gains stay at 1
            std = residual_std if name.endswith(("attn.proj.weight", ".out.weight")) else 0.02
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=generator) * std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        length = idx.shape[1]
        if length > self.config.block_size:
            raise ValueError(f"input of {length} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(length, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)  # output projection tied to the embedding

    def count_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
