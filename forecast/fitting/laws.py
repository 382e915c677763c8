"""The laws: pure, vectorised functions of named, bounded parameters.

Every law maps a parameter tensor `theta` of shape (B, P) (B independent problems: skills,
start points or bootstrap draws) and inputs `x` (tensors broadcastable to (B, M), M points)
to predictions of shape (B, M). Inputs are normalised so that parameters are O(1):

- `x_params` = ln(N / N_ref): N = parameters (the count the runs give, see `Run.params_kind`)
- `x_tokens` = ln(D / D_ref): D = training tokens seen
- `x_flops`  = ln(C / C_ref): C = training FLOPs
- `loss`     = the intermediate task loss, standardised: (L − L_ref) / L_scale
- `floor`    = accuracy floor (chance, or estimated from the smallest models)
- `top`      = the highest attainable accuracy (1, or the skill's `ceiling`)

The references (N_ref, D_ref, C_ref, L_ref, L_scale) are stored with every fit, so the
parameters can be read back in natural units. Accuracy laws share one shape:
accuracy = floor + amp·(top − floor)·g(...), with g rising from 0 to 1 and `amp` the plateau
as a fraction of the room above the floor; the grok threshold is half way up that plateau.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import lmfit
import numpy as np
import torch

Tensor = torch.Tensor
Inputs = Mapping[str, Tensor]


@dataclass(frozen=True)
class Param:
    """One named parameter: bounds (inclusive, natural units), a start grid, and its meaning."""

    name: str
    lower: float
    upper: float
    starts: tuple[float, ...]
    doc: str


class Named:
    """A law's parameters by name: `p.m` is column `m` of θ, shaped (..., B, 1) to
    broadcast over points. Leading dimensions evaluate several parameter sets per problem
    at once (the finite differences of the least-squares solver)."""

    __slots__ = ("_theta", "_index")

    def __init__(self, theta: Tensor, names: tuple[str, ...]) -> None:
        self._theta = theta
        self._index = {name: i for i, name in enumerate(names)}

    def __getattr__(self, name: str) -> Tensor:
        try:
            i = self._index[name]
        except KeyError:
            raise AttributeError(name) from None
        return self._theta[..., i : i + 1]


@dataclass(frozen=True)
class Law:
    """A law: its formula, parameters with bounds and start grid, and the function itself
    (`fn(p, x)` reads parameters by name: `p.m`, `p.k`)."""

    name: str
    formula: str
    reference: str
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    fn: Callable[[Named, Inputs], Tensor]
    target: str = "accuracy"  # what it predicts: "accuracy" or "loss"

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """Parameter names, in order (computed once: read at every law evaluation)."""
        return tuple(p.name for p in self.params)

    @property
    def lower(self) -> np.ndarray:
        return np.array([p.lower for p in self.params])

    @property
    def upper(self) -> np.ndarray:
        return np.array([p.upper for p in self.params])

    @property
    def size(self) -> int:
        return len(self.params)

    def __call__(self, theta: Tensor, x: Inputs) -> Tensor:
        return self.fn(Named(theta, self.names), x)

    def column(self, theta: np.ndarray, name: str) -> np.ndarray:
        """Parameter `name` of every row of `theta` (B, P): shape (B,)."""
        return np.atleast_2d(theta)[:, self.names.index(name)]

    def start_grid(self) -> np.ndarray:
        """Cartesian product of every parameter's starts: shape (S, P)."""
        return np.array(list(itertools.product(*(p.starts for p in self.params))), dtype=np.float64)

    def lmfit_parameters(self, values: np.ndarray | None = None) -> lmfit.Parameters:
        """The law's parameters as `lmfit.Parameters` (bounds declared once, here)."""
        out = lmfit.Parameters()
        for i, p in enumerate(self.params):
            value = p.starts[0] if values is None else float(np.clip(values[i], p.lower, p.upper))
            out.add(p.name, value=value, min=p.lower, max=p.upper)
        return out


def _rise(x: Inputs, amp: Tensor | float, g: Tensor) -> Tensor:
    """floor + (plateau − floor)·g, the plateau at `amp` of the way from the least plateau
    the pilots allow (`least`: no law may level off below what a pilot already reached,
    beyond its noise) to `top`."""
    least = x.get("least", x["floor"])
    plateau = least + amp * (x["top"] - least)
    return x["floor"] + (plateau - x["floor"]) * g


AMP = Param("amp", 0.0, 1.0, (0.95, 0.5), "plateau, as a fraction of the way from the least plateau to the top")
"""The plateau parameter every saturating accuracy law shares."""
STEEPNESS_STARTS = (0.5, 2.0, 8.0)


# ----------------------------------------------------------------------------- accuracy laws


def _compute_sigmoid(p: Named, x: Inputs) -> Tensor:
    return _rise(x, p.amp, torch.sigmoid(p.k * (x["x_flops"] - p.m)))


COMPUTE_SIGMOID = Law(
    name="compute_sigmoid",
    formula="acc = floor + amp·(top − floor)·σ(k·(ln C/C_ref − m))",
    reference="Sigmoidal emergence in log compute (Wei et al. 2022; Ruan et al. 2024, sec. 3)",
    params=(
        Param("m", -15.0, 15.0, (-3.0, 0.0, 3.0, 7.0), "midpoint, ln(FLOPs/C_ref)"),
        Param("k", 0.02, 50.0, STEEPNESS_STARTS, "steepness per e-fold of FLOPs"),
        AMP,
    ),
    inputs=("x_flops",),
    fn=_compute_sigmoid,
)


def _grok_scaling(p: Named, x: Inputs) -> Tensor:
    xn = x["x_params"]
    midpoint = p.mu - p.gamma * xn  # ln(D_half(N)/D_ref): grok point falls as a power law in N
    steepness = p.k * torch.exp(p.delta * xn)
    return _rise(x, p.amp, torch.sigmoid(steepness * (x["x_tokens"] - midpoint)))


GROK_SCALING = Law(
    name="grok_scaling",
    formula="acc = floor + amp·(top − floor)·σ(k·(N/N_ref)^δ·(ln D/D_ref − mu + γ·ln N/N_ref)); "
    "D½(N) = D_ref·e^mu·(N/N_ref)^−γ",
    reference="Per-size sigmoid in log tokens with power laws in N for the transition point and "
    "steepness (grokking-point scaling; cf. Power et al. 2022, Nanda et al. 2023)",
    params=(
        Param("mu", -15.0, 15.0, (-2.0, 0.0, 2.0, 5.0), "ln(D½/D_ref) at N = N_ref"),
        Param("gamma", -3.0, 6.0, (0.0, 1.0, 2.5), "D½ ∝ N^−γ: larger models grok after fewer tokens"),
        Param("k", 0.02, 50.0, (0.7, 3.0, 10.0), "steepness per e-fold of tokens at N_ref"),
        Param("delta", -2.0, 2.0, (0.0,), "steepness ∝ N^δ"),
        AMP,
    ),
    inputs=("x_params", "x_tokens"),
    fn=_grok_scaling,
)


def _power_law(p: Named, x: Inputs) -> Tensor:
    return _rise(x, 1.0, torch.exp(-torch.exp(p.a - p.alpha * x["x_flops"])))


POWER_LAW = Law(
    name="power_law",
    formula="−ln Q = A·(C/C_ref)^−α, Q = (acc − floor)/(top − floor), A = e^a",
    reference="Power law on accuracy above chance (Schaeffer et al. 2023; Gadre et al. 2024)",
    params=(
        Param("a", -20.0, 20.0, (-1.0, 0.5, 2.0, 4.0), "ln A: −ln Q at C = C_ref"),
        Param("alpha", 0.01, 10.0, (0.2, 0.7, 2.0), "power-law exponent in FLOPs"),
    ),
    inputs=("x_flops",),
    fn=_power_law,
)


def _power_law_nd(p: Named, x: Inputs) -> Tensor:
    neg_log_q = torch.exp(p.a - p.alpha * x["x_params"]) + torch.exp(p.b - p.beta * x["x_tokens"])
    return _rise(x, 1.0, torch.exp(-neg_log_q))


def _power_law_cap(p: Named, x: Inputs) -> Tensor:
    return _rise(x, p.amp, torch.exp(-torch.exp(p.a - p.alpha * x["x_flops"])))


POWER_LAW_CAP = Law(
    name="power_law_cap",
    formula="−ln Q = A·(C/C_ref)^−α, Q = (acc − floor)/(plateau − floor), plateau estimated ≤ top",
    reference="Power law on accuracy above chance with an estimated ceiling: tasks whose items are "
    "partly unanswerable saturate below 1 (Gadre et al. 2024; Ruan et al. 2024)",
    params=(
        Param("a", -20.0, 20.0, (-1.0, 0.5, 2.0, 4.0), "ln A: −ln Q at C = C_ref"),
        Param("alpha", 0.01, 10.0, (0.2, 0.7, 2.0), "power-law exponent in FLOPs"),
        AMP,
    ),
    inputs=("x_flops",),
    fn=_power_law_cap,
)


POWER_LAW_ND = Law(
    name="power_law_nd",
    formula="−ln Q = A·(N/N_ref)^−α + B·(D/D_ref)^−β, Q = (acc − floor)/(top − floor), A = e^a, B = e^b",
    reference="Power law on accuracy above chance with separate parameter and data terms, the "
    "form of the Chinchilla loss law (Hoffmann et al. 2022) applied to −ln Q",
    params=(
        Param("a", -20.0, 20.0, (-1.0, 0.5, 2.0), "ln A: the parameter term at N = N_ref"),
        Param("alpha", 0.0, 5.0, (0.3, 1.0), "exponent in parameters"),
        Param("b", -20.0, 20.0, (-1.0, 0.5, 2.0), "ln B: the data term at D = D_ref"),
        Param("beta", 0.0, 5.0, (0.3, 1.0), "exponent in tokens"),
    ),
    inputs=("x_params", "x_tokens"),
    fn=_power_law_nd,
)


def _log_linear(p: Named, x: Inputs) -> Tensor:
    raw = p.level + p.slope * x["x_flops"]
    # clamp to [floor, top] smoothly enough for the optimiser: a straight line between them
    return torch.minimum(torch.maximum(raw, x["floor"] * torch.ones_like(raw)), x["top"] * torch.ones_like(raw))


LOG_LINEAR = Law(
    name="log_linear",
    formula="acc = clamp(level + slope·ln(C/C_ref), floor, top)",
    reference="Accuracy linear in log compute over the middle of the transition "
    "(Owen 2024; Ruan et al. 2024, sec. 4 as a baseline)",
    params=(
        Param("level", -2.0, 3.0, (0.3, 0.6), "accuracy at C = C_ref"),
        Param("slope", -1.0, 1.0, (0.0, 0.05), "accuracy per e-fold of FLOPs"),
    ),
    inputs=("x_flops",),
    fn=_log_linear,
)


def _loss_link(p: Named, x: Inputs) -> Tensor:
    return _rise(x, p.amp, torch.sigmoid(-p.k * (x["loss"] - p.l0)))


LOSS_LINK = Law(
    name="loss_link",
    formula="acc = floor + amp·(top − floor)·σ(−k·(L − L0)), L standardised",
    reference="Task loss → accuracy sigmoid, step 2 of Bhagia et al. 2024; Du et al. 2024",
    params=(
        Param("l0", -20.0, 20.0, (-2.0, -0.5, 0.5, 2.0), "loss at the midpoint (standardised)"),
        Param("k", 0.02, 100.0, (1.0, 4.0, 15.0), "steepness per standardised loss unit"),
        AMP,
    ),
    inputs=("loss",),
    fn=_loss_link,
)


# ----------------------------------------------------------------------------- loss law


def log_loss_law(p: Named, x: Inputs, beta: Tensor | None = None) -> Tensor:
    """ln L(N, D) = ln(E + A·N^−α + B·D^−β), written as a log-sum-exp of the three terms'
    logs: stable for the extreme starts of a grid search. The one declaration of the loss
    law's formula (Hoffmann et al. 2022, eq. 2); `loss_law`, the task-loss law (`beta` given:
    the tied exponent) and `forecast.fitting.loss_law` use it."""
    beta = p.beta if beta is None else beta
    terms = torch.broadcast_tensors(p.e, p.a - p.alpha * x["x_params"], p.b - beta * x["x_tokens"])
    return torch.logsumexp(torch.stack(terms), dim=0)


def _loss_law(p: Named, x: Inputs) -> Tensor:
    return torch.exp(log_loss_law(p, x))


LOSS_LAW = Law(
    name="loss_law",
    formula="L = E + A·(N/N_ref)^−α + B·(D/D_ref)^−β with E = e^e, A = e^a, B = e^b",
    reference="Hoffmann et al. 2022, approach 3; Besiroglu et al. 2024 (Epoch replication)",
    params=(
        Param("e", -5.0, 5.0, (-1.0, 0.0, 0.5, 1.0), "ln E, the irreducible loss"),
        Param("a", -10.0, 10.0, (-3.0, -1.0, 0.0, 1.0), "ln A at N = N_ref"),
        Param("alpha", 0.0, 3.0, (0.1, 0.3, 0.6, 1.2), "exponent in parameters"),
        Param("b", -10.0, 10.0, (-3.0, -1.0, 0.0, 1.0), "ln B at D = D_ref"),
        Param("beta", 0.0, 3.0, (0.1, 0.3, 0.6, 1.2), "exponent in tokens"),
    ),
    inputs=("x_params", "x_tokens"),
    fn=_loss_law,
    target="loss",
)


def _task_loss_law(p: Named, x: Inputs) -> Tensor:
    return torch.exp(log_loss_law(p, x, beta=p.alpha))


TASK_LOSS_LAW = Law(
    name="task_loss_law",
    formula="L = E + A·(N/N_ref)^−α + B·(D/D_ref)^−α with E = e^e, A = e^a, B = e^b (one exponent)",
    reference="Step 1 of the two-step chain (Bhagia et al. 2024), the Chinchilla form with the exponents "
    "tied: N_opt ∝ C^(β/(α+β)) ≈ C^0.5 (Hoffmann et al. 2022, approaches 1-2; Besiroglu et al. 2024: α 0.35, "
    "β 0.37). A ladder's budgets then read the exponent that two sizes alone cannot: on the OLMo ladder (bpb "
    "per task, final checkpoints) the 3B task loss from 190M and 370M missed by 3.0% tied, 4.3% untied; "
    "from 190M-760M, 1B by 1.5% and 2.0%",
    params=LOSS_LAW.params[:4],
    inputs=("x_params", "x_tokens"),
    fn=_task_loss_law,
    target="loss",
)


def _sigmoid_nd(p: Named, x: Inputs) -> Tensor:
    return _rise(x, 1.0, torch.sigmoid(p.a + p.b * x["x_params"] + p.c * x["x_tokens"]))


SIGMOID_ND = Law(
    name="sigmoid_nd",
    formula="acc = floor + (top − floor)·σ(a + b·ln N/N_ref + c·ln D/D_ref)",
    reference="Shared-slope sigmoid across model families, each family its own offset a (its "
    "efficiency): Sloth (Polo et al. 2025), Observational Scaling Laws (Ruan et al. 2024)",
    params=(
        Param("a", -30.0, 30.0, (0.0,), "logit of the accuracy above the floor at N_ref, D_ref"),
        Param("b", -10.0, 10.0, (1.0,), "logit per e-fold of parameters"),
        Param("c", -10.0, 10.0, (0.0,), "logit per e-fold of training tokens"),
    ),
    inputs=("x_params", "x_tokens"),
    fn=_sigmoid_nd,
)


def _level(p: Named, x: Inputs) -> Tensor:
    return p.level * torch.ones_like(x["x_flops"])


LEVEL = Law(
    name="level",
    formula="acc = level (the largest pilots' final accuracy, carried on)",
    reference="The no-trend forecast: what persistence forecasting predicts when no law beats it "
    "(cf. the carry-over baseline of Ruan et al. 2024)",
    params=(Param("level", 0.0, 1.0, (0.25, 0.5, 0.75), "accuracy, fraction"),),
    inputs=(),
    fn=_level,
)

ACCURACY_LAWS: dict[str, Law] = {
    law.name: law for law in (COMPUTE_SIGMOID, GROK_SCALING, POWER_LAW, POWER_LAW_CAP, POWER_LAW_ND, LOG_LINEAR,
                              LEVEL, SIGMOID_ND)}
"""Laws that map (parameters, tokens, FLOPs) straight to accuracy."""
POOLED_LAWS = ("sigmoid_nd",)
"""Laws fitted across families (`forecast.fitting.pooling`), not to one family alone."""


LAWS: dict[str, Law] = {law.name: law for law in (*ACCURACY_LAWS.values(), LOSS_LINK, LOSS_LAW, TASK_LOSS_LAW)}


def logit(p: np.ndarray | Tensor, eps: float = 1e-4):
    """ln(p/(1−p)) with p clipped to [eps, 1−eps]; works on numpy arrays and tensors."""
    if isinstance(p, Tensor):
        p = p.clamp(eps, 1 - eps)
        return torch.log(p) - torch.log1p(-p)
    p = np.clip(p, eps, 1 - eps)
    return np.log(p) - np.log1p(-p)
