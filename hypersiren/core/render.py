"""The one rendering code path: a SIREN as a pure function of (params, coords).

Both the standalone ``Siren`` and the hypernetwork produce ``SirenParams``, and
every SIREN in hypersiren is evaluated by ``render``: single-signal fits, SDFs and
their images through ``Siren.forward``, the hypernetwork's through
``HyperSiren.render``. Three things compute outside it, on purpose: the ReLU, tanh
and positional-encoding baselines of ``single.coordinate_mlps`` (plain
``nn.Sequential``, not SIRENs), the reference design ``eval/bench.py`` times it
against (``ReferenceModel``), and ``eval/precision.py``'s
``rounded_render``, a copy of its loop with bf16 roundings inserted.
"""

from typing import NamedTuple

import torch
from torch import Tensor


class LayerParams(NamedTuple):
    """One linear layer for a batch of B networks."""

    weight: Tensor  # (B, fan_in, fan_out): transposed w.r.t. nn.Linear so a layer is x @ weight
    bias: Tensor  # (B, fan_out)


SirenParams = list[LayerParams]


def render(
    params: SirenParams,
    coords: Tensor,
    first_omega: float = 30.0,
    hidden_omega: float = 30.0,
    shifts: list[Tensor] | None = None,
) -> Tensor:
    """Evaluate B SIRENs: ``coords (B, N, D_in) -> values (B, N, D_out)``.

    Each layer is one batched GEMM with the bias fused in (``baddbmm``); omega is
    the GEMM's scale factor, never a pass over activations. Params with batch 1
    are shared by every row of ``coords``. Computed in the dtype of ``params``,
    autocast or not: sin(30 * x) in bf16 would carry ~0.1 rad phase error.

    ``shifts`` (one ``(B, N, fan_out)`` per layer) are per-point additions to each
    layer's bias: the modulations that local latent codes make, so one SIREN per
    image still varies its function from place to place.
    """
    check_coords(params, coords)
    batch, num_points, _ = coords.shape
    expected = [(batch, num_points, weight.shape[-1]) for weight, _ in params]
    if shifts is not None and [tuple(s.shape) for s in shifts] != expected:
        raise ValueError(
            f"shifts must be one (B, N, fan_out) per layer, {expected}, got {[tuple(s.shape) for s in shifts]}"
        )
    shared = params[0].weight.shape[0] == 1 and batch != 1
    hidden = coords.reshape(1, batch * num_points, -1) if shared else coords
    last = len(params) - 1
    with torch.autocast(coords.device.type, enabled=False):
        for index, (weight, bias) in enumerate(params):
            bias = bias.unsqueeze(1)  # (B, 1, out): broadcast over points
            if shifts is not None:
                bias = bias + shifts[index].to(bias.dtype).reshape(bias.shape[0], -1, bias.shape[-1])
            if index == last:
                hidden = torch.baddbmm(bias, hidden, weight)
            else:
                omega = first_omega if index == 0 else hidden_omega
                hidden = _SineLayer.apply(hidden, weight, bias, omega)
    return hidden.reshape(batch, num_points, -1)


class _SineLayer(torch.autograd.Function):
    """``sin(omega * (hidden @ weight + bias))``: one hidden SIREN layer for B networks.

    hidden ``(B, N, in)``, weight ``(B, in, out)``, bias ``(B, 1, out)`` or per point
    ``(B, N, out)`` -> ``(B, N, out)``.
    Activations are a step's largest tensors, and each fresh one costs a pass over
    memory (on CPU also the page faults of new pages). Autograd of the plain ops
    makes three per layer in backward (cos, times grad, input gradient) and keeps
    omega-scaled copies of weight and bias. Here omega is the GEMMs' alpha/beta and
    grad is multiplied by cos(pre) in place (``eval/bench.py`` times each choice).
    With ``create_graph`` (gradient/Laplacian losses) backward recomputes the
    pre-activation with differentiable ops, so derivatives of every order stay exact.
    Without grad, sin is taken in place: inference keeps one activation per layer.
    """

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, bias: Tensor, omega: float) -> Tensor:
        pre = torch.baddbmm(bias, hidden, weight, beta=omega, alpha=omega)
        if not any(ctx.needs_input_grad):
            return pre.sin_()
        ctx.save_for_backward(hidden, weight, bias, pre)
        ctx.omega = omega
        return torch.sin(pre)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        hidden, weight, bias, pre = ctx.saved_tensors
        omega = ctx.omega
        needs_hidden, needs_weight, needs_bias, _ = ctx.needs_input_grad
        if torch.is_grad_enabled():  # create_graph: the backward itself must be differentiable
            pre = torch.baddbmm(bias, hidden, weight, beta=omega, alpha=omega)
            grad_linear = omega * grad * torch.cos(pre)  # d loss / d(hidden @ weight + bias)
            return (
                grad_linear @ weight.mT if needs_hidden else None,
                hidden.mT @ grad_linear if needs_weight else None,
                grad_linear.sum_to_size(bias.shape) if needs_bias else None,
                None,
            )
        grad_pre = _mul_cos_(grad, pre)  # d loss / d pre; pre's factor omega enters via the GEMMs' alpha
        return (
            _scaled_bmm(grad_pre, weight.mT, omega) if needs_hidden else None,
            _scaled_bmm(hidden.mT, grad_pre, omega) if needs_weight else None,
            grad_pre.sum_to_size(bias.shape) * omega if needs_bias else None,
            None,
        )


COS_CHUNK = 1 << 18  # elements (1 MiB of fp32): cos of a chunk stays in cache until it is used


def _mul_cos_(grad: Tensor, pre: Tensor) -> Tensor:
    """``grad *= cos(pre)`` in place; on CPU cos is taken in cache-sized chunks: no full-size temporary.

    In place is safe because ``grad`` is never shared: inside ``render`` a sine layer's
    output feeds exactly one op (the next layer), whose backward made ``grad`` fresh.
    The loop is over memory chunks, not samples, and CPU-only: on a GPU the caching
    allocator makes the temporary free, and kernel launches are what would cost.
    """
    if grad.device.type != "cpu" or not (grad.is_contiguous() and pre.is_contiguous()):
        return grad.mul_(torch.cos(pre))
    chunk = COS_CHUNK
    flat_grad, flat_pre = grad.view(-1), pre.view(-1)
    scratch = pre.new_empty(min(chunk, flat_pre.numel()))
    for start in range(0, flat_pre.numel(), chunk):
        pre_part = flat_pre[start : start + chunk]
        flat_grad[start : start + chunk].mul_(torch.cos(pre_part, out=scratch[: pre_part.numel()]))
    return grad


def _scaled_bmm(left: Tensor, right: Tensor, scale: float) -> Tensor:
    """``scale * left @ right`` for ``(B, n, k) @ (B, k, m)``, scaled inside the GEMM rather than after."""
    out = left.new_empty(left.shape[0], left.shape[1], right.shape[2])
    return torch.baddbmm(out, left, right, beta=0, alpha=scale, out=out)  # beta=0: out's contents are never read


def check_coords(params: SirenParams, coords: Tensor) -> None:
    """Raise a ValueError naming the problem if ``coords`` cannot be rendered by ``params``."""
    if coords.dim() != 3:
        raise ValueError(f"coords must be (B, N, D_in), got shape {tuple(coords.shape)}")
    if coords.shape[1] == 0:
        raise ValueError(f"coords {tuple(coords.shape)} hold no point (N = 0): pass at least one point per sample")
    params_batch, in_features, _ = params[0].weight.shape
    if coords.shape[-1] != in_features:
        raise ValueError(
            f"coords have {coords.shape[-1]} dims per point but the SIREN takes {in_features}: "
            f"pass coords of shape (B, N, {in_features})"
        )
    if params_batch not in (1, coords.shape[0]):
        raise ValueError(f"params are for {params_batch} samples but coords for {coords.shape[0]}")
    if not coords.is_floating_point():
        raise ValueError(f"coords must be floating point, got {coords.dtype}")
