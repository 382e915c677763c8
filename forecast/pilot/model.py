"""A compact decoder-only transformer (GPT), as a stack of E independent models of one shape.

After nanoGPT's `model.py` (Karpathy): pre-norm blocks, causal
`F.scaled_dot_product_attention`, learned absolute positions, a 4x GELU MLP, no biases,
token embedding tied to the output projection.

Every parameter carries a leading *member* axis: `GPT(config, generators)` holds one model
per generator (an *ensemble*; one generator is a single model), and every matrix multiply
is one batched `torch.bmm` over the members. Nothing mixes members: member e's weights are
the slices [e], its input the rows [e], and it is initialised from its own generator
exactly as it would be alone. Training E runs of one shape this way costs one set of
kernel launches instead of E (small models are launch- and overhead-bound on every device).

Inputs are *flat*: token ids (E, N) whose N axis is a sequence of blocks, block b holding
`rows` sequences of `length` positions each, right-padded (see `data.pack`). Sequences of
similar length share a block, so little is padded; attention runs per block. Positions
restart at 0 in every row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from forecast.pilot.vocab import VOCAB_SIZE

Blocks = tuple[tuple[int, int], ...]
"""The layout of a flat N axis: (rows, length) per block, in order; N = Σ rows·length."""


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
    def training_flops(self, lengths: torch.Tensor | Sequence[int]) -> float:
        """Model FLOPs of one training step (forward + backward) over sequences of the given
        lengths (input tokens each; padding is not counted).

        Per token, 6·N_matmul for the weights (2 forward, 4 backward FLOPs per weight:
        Kaplan et al. 2020 sec. 2.1) plus 12·L·d·T for attention over a length-T sequence
        (QKᵀ and A·V, 2·T·d each per layer forward, x3 for training; full T×T as computed,
        no causal discount: PaLM appendix B, nanoGPT's `estimate_mfu`). Summed per sequence:
        6·N_matmul·T + 12·L·d·T². This is the standard count: the trainer skips the output
        projection at prompt positions (no target there), which the count includes.
        """
        lengths = torch.as_tensor(lengths, dtype=torch.float64)
        tokens = float(lengths.sum())
        squares = float((lengths * lengths).sum())
        return 6.0 * self.params_matmul * tokens + 12.0 * self.n_layer * self.n_embd * squares


def _stacked(members: int, *shape: int, fill: float | None = None) -> nn.Parameter:
    data = torch.empty(members, *shape) if fill is None else torch.full((members, *shape), fill)
    return nn.Parameter(data)


class Block(nn.Module):
    """Pre-norm transformer block, E members: x + attn(ln(x)), then x + mlp(ln(x)).
    Matrices are stored (E, in, out), so a layer is `torch.bmm(x, W)`."""

    def __init__(self, config: ModelConfig, members: int) -> None:
        super().__init__()
        d = config.n_embd
        self.n_head = config.n_head
        self.ln1 = _stacked(members, d, fill=1.0)
        self.qkv = _stacked(members, d, 3 * d)
        self.proj = _stacked(members, d, d)
        self.ln2 = _stacked(members, d, fill=1.0)
        self.fc = _stacked(members, d, 4 * d)
        self.out = _stacked(members, 4 * d, d)

    def forward(self, x: torch.Tensor, blocks: Blocks) -> torch.Tensor:
        x = x + torch.bmm(self._attend(torch.bmm(layer_norm(x, self.ln1), self.qkv), blocks), self.proj)
        return x + torch.bmm(F.gelu(torch.bmm(layer_norm(x, self.ln2), self.fc)), self.out)

    def _attend(self, qkv: torch.Tensor, blocks: Blocks) -> torch.Tensor:
        """Causal self-attention within each row of each block: (E, N, 3d) -> (E, N, d).
        Rows of every member go to one SDPA call per block (attention has no weights)."""
        members, _, width3 = qkv.shape
        width, heads = width3 // 3, self.n_head
        fused = torch.compiler.is_compiling() and qkv.device.type == "cpu"
        outs, start = [], 0
        for rows, length in blocks:
            part = qkv[:, start:start + rows * length].view(members, rows, length, 3, heads, width // heads)
            q, k, v = part.permute(3, 0, 1, 4, 2, 5)  # each (E, rows, heads, length, head size), views
            if fused:
                y = _fused_attention(q, k, v)
            else:  # SDPA's flash kernel wants (batch, heads, length, head size)
                q, k, v = (t.reshape(members * rows, heads, length, -1) for t in (q, k, v))
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True).view(members, rows, heads, length, -1)
            outs.append(y.permute(0, 1, 3, 2, 4).reshape(members, rows * length, width))
            start += rows * length
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


def _fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention written as broadcast products and sums, for `torch.compile` on CPU:
    inductor fuses it into loops over each (row, head), where SDPA's flash kernel spends
    most of its time per tiny (length ≤ 64, head size ≤ 32) problem; measured 2x faster at
    13 positions, 1.15x at 22. The same function as SDPA with `is_causal`."""
    length = q.shape[-2]
    scores = (q[..., :, None, :] * k[..., None, :, :]).sum(-1) * q.shape[-1] ** -0.5
    causal = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
    weights = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
    return (weights[..., :, :, None] * v[..., None, :, :]).sum(-2)


def layer_norm(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """LayerNorm without bias, one gain vector per member: x (E, N, d), gain (E, d)."""
    return F.layer_norm(x, x.shape[-1:]) * gain[:, None, :]


class GPT(nn.Module):
    """E models of one shape: flat token ids (E, N) -> hidden states, -> next-token logits.

    `GPT(config, generator)` is one model; `GPT(config, [g0, g1, ...])` an ensemble whose
    member e starts exactly as `GPT(config, g_e)` does. `model(idx)` takes padded ids
    (E, B, T), or (B, T) for a single model, and returns logits of the same leading shape."""

    def __init__(self, config: ModelConfig, generators: torch.Generator | Sequence[torch.Generator]) -> None:
        super().__init__()
        generators = [generators] if isinstance(generators, torch.Generator) else list(generators)
        self.config = config
        self.members = members = len(generators)
        self.wte = _stacked(members, config.vocab_size, config.n_embd)
        self.wpe = _stacked(members, config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config, members) for _ in range(config.n_layer))
        self.ln_f = _stacked(members, config.n_embd, fill=1.0)
        self._init_weights(generators)

    def _init_weights(self, generators: Sequence[torch.Generator]) -> None:
        """GPT-2 initialisation (as nanoGPT): N(0, 0.02) everywhere, residual output
        projections scaled by 1/sqrt(2·n_layer); LayerNorm gains 1. Member e's draws come
        from generator e on the CPU, parameter by parameter, so a seed gives the same
        initial model on every device and in any ensemble."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        matrices = [(n, p) for n, p in self.named_parameters() if p.dim() > 2]
        with torch.no_grad():
            for e, generator in enumerate(generators):
                for name, p in matrices:
                    std = residual_std if name.endswith((".proj", ".out")) else 0.02
                    p[e].copy_(torch.randn(p.shape[1:], generator=generator) * std)

    def hidden(self, tokens: torch.Tensor, blocks: Blocks) -> torch.Tensor:
        """Final-LayerNorm hidden states (E, N, d) of flat token ids (E, N) laid out in `blocks`."""
        members, width = self.members, self.config.n_embd
        longest = max(length for _, length in blocks)
        if longest > self.config.block_size:
            raise ValueError(f"input of {longest} tokens exceeds block_size {self.config.block_size}")
        device = tokens.device
        positions = torch.cat([torch.arange(length, device=device).repeat(rows) for rows, length in blocks])
        offsets = torch.arange(members, device=device)[:, None]
        x = F.embedding(tokens + offsets * self.config.vocab_size, self.wte.view(-1, width)) \
            + F.embedding(positions + offsets * self.config.block_size, self.wpe.view(-1, width))
        for block in self.blocks:
            x = block(x, blocks)
        return layer_norm(x, self.ln_f)

    def logits(self, hidden: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits (E, M, V) at positions `index` (E, M) of `hidden` (all when
        None): the output projection is tied to the token embedding."""
        if index is not None:
            hidden = torch.gather(hidden, 1, index[..., None].expand(-1, -1, hidden.shape[-1]))
        return torch.bmm(hidden, self.wte.transpose(1, 2))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        single = idx.dim() == 2
        if single:
            if self.members != 1:
                raise ValueError(f"ids of shape {tuple(idx.shape)} for an ensemble of {self.members}: give (E, B, T)")
            idx = idx[None]
        members, rows, length = idx.shape
        logits = self.logits(self.hidden(idx.reshape(members, rows * length), ((rows, length),)))
        logits = logits.view(members, rows, length, -1)
        return logits[0] if single else logits

    def count_params(self) -> int:
        """Parameters of one member."""
        return sum(p[0].numel() for p in self.parameters())
