"""Fused gradient-penalty pieces for WGAN-GP / R1 / R2: the per-sample interpolation and the
penalty on per-sample gradient norms, each with its backward kernel.

Every kernel sees its tensors as ``(B, F)`` matrices (``F`` features per sample, strides
passed in) and one program handles a ``[ROWS, BLOCK_F]`` tile, so that both a million tiny
rows and 64 rows of 3 x 256 x 256 features fill the GPU: the grid is
``(cdiv(B, ROWS), cdiv(F, BLOCK_F))``. The per-sample norm is a split reduction: each tile
writes its rows' partial sums of squares (float32, also for half-precision gradients) and the
``(B, cdiv(F, BLOCK_F))`` partials are summed afterwards, a few bytes per sample.

Memory traffic per element of a ``(B, F)`` tensor, ``b`` bytes per value, each input read
once and each output written once, next to PyTorch's ops counted with
``python -m profiling.traffic`` (float32, F = 64):

* interpolation forward: reads ``real`` and ``fake``, writes ``x_hat``: ``3b`` (the
  hand-written ``eps * real + (1 - eps) * fake``: ``7b`` in 4 ops; ``torch.lerp``, the
  reference: ``3b``). Backward: reads the upstream gradient, writes the gradients of
  ``real`` and ``fake`` that are needed: up to ``3b``.
* penalty forward and backward: reads ``g`` twice, writes its gradient: ``3b`` (PyTorch's
  ``norm``, its backward and the per-sample arithmetic: about ``7b`` in 15 ops).

FLOPs are 2 to 3 per element: every kernel here is bandwidth-bound, its floor is bytes over
the GPU's bandwidth.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .utils import AotConfig, device_guard, new_empty

# Elements per tile: 16 per thread at 4 warps, enough in flight to stream at full bandwidth.
TILE_ELEMENTS = 2048


@triton.jit
def _tile(n_rows, n_cols, ROWS: tl.constexpr, BLOCK_F: tl.constexpr):
    """This program's rows, columns (int64) and the masks of its ``[ROWS, BLOCK_F]`` tile."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_F + tl.arange(0, BLOCK_F)
    row_mask = rows < n_rows
    return rows, cols, row_mask, row_mask[:, None] & (cols < n_cols)[None, :]


@triton.jit
def _load_tile(ptr, rows, cols, mask, stride_row, stride_col):
    offsets = rows[:, None] * stride_row + cols[None, :] * stride_col
    return tl.load(ptr + offsets, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _store_tile(ptr, value, rows, cols, mask, n_cols):
    """Store into a contiguous ``(B, F)`` output."""
    offsets = rows[:, None] * n_cols + cols[None, :]
    tl.store(ptr + offsets, value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _interpolate_kernel(
    real_ptr,  # (B, F), strided
    fake_ptr,  # (B, F), strided
    eps_ptr,  # (B,), strided
    out_ptr,  # (B, F), contiguous
    n_rows,
    n_cols,
    stride_real_row,
    stride_real_col,
    stride_fake_row,
    stride_fake_col,
    stride_eps,
    ROWS: tl.constexpr,
    BLOCK_F: tl.constexpr,
):
    rows, cols, row_mask, mask = _tile(n_rows, n_cols, ROWS, BLOCK_F)
    real = _load_tile(real_ptr, rows, cols, mask, stride_real_row, stride_real_col)
    fake = _load_tile(fake_ptr, rows, cols, mask, stride_fake_row, stride_fake_col)
    eps = tl.load(eps_ptr + rows * stride_eps, mask=row_mask, other=0.0).to(tl.float32)
    _store_tile(out_ptr, fake + eps[:, None] * (real - fake), rows, cols, mask, n_cols)


@triton.jit
def _sum_squares_kernel(
    grad_ptr,  # (B, F), strided
    partial_ptr,  # (B, cdiv(F, BLOCK_F)) float32, contiguous
    n_rows,
    n_cols,
    stride_row,
    stride_col,
    ROWS: tl.constexpr,
    BLOCK_F: tl.constexpr,
):
    rows, cols, row_mask, mask = _tile(n_rows, n_cols, ROWS, BLOCK_F)
    grad = _load_tile(grad_ptr, rows, cols, mask, stride_row, stride_col)
    # This tile writes one column of the partial sums.
    partial_offsets = rows * tl.num_programs(1) + tl.program_id(1)
    tl.store(partial_ptr + partial_offsets, tl.sum(grad * grad, axis=1), mask=row_mask)


@triton.jit
def _interpolate_backward_kernel(
    grad_ptr,  # (B, F), strided
    eps_ptr,  # (B,), strided
    grad_real_ptr,  # (B, F), contiguous; unused unless NEED_REAL
    grad_fake_ptr,  # (B, F), contiguous; unused unless NEED_FAKE
    n_rows,
    n_cols,
    stride_grad_row,
    stride_grad_col,
    stride_eps,
    NEED_REAL: tl.constexpr,
    NEED_FAKE: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_F: tl.constexpr,
):
    rows, cols, row_mask, mask = _tile(n_rows, n_cols, ROWS, BLOCK_F)
    grad = _load_tile(grad_ptr, rows, cols, mask, stride_grad_row, stride_grad_col)
    eps = tl.load(eps_ptr + rows * stride_eps, mask=row_mask, other=0.0).to(tl.float32)
    grad_real = eps[:, None] * grad
    if NEED_REAL:
        _store_tile(grad_real_ptr, grad_real, rows, cols, mask, n_cols)
    if NEED_FAKE:
        _store_tile(grad_fake_ptr, grad - grad_real, rows, cols, mask, n_cols)


@triton.jit
def _penalty_backward_kernel(
    grad_ptr,  # (B, F), strided
    norms_ptr,  # (B,) float32, contiguous
    upstream_ptr,  # () the loss's upstream gradient
    out_ptr,  # (B, F), contiguous
    n_rows,
    n_cols,
    stride_row,
    stride_col,
    target,
    scale,
    ONE_SIDED: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_F: tl.constexpr,
):
    # d/dg_i of scale / 2 * excess_i^2 = scale * excess_i / ||g_i|| * g_i, taken as 0 for a
    # zero row (its norm's subgradient), so a zero gradient never turns into NaN.
    rows, cols, row_mask, mask = _tile(n_rows, n_cols, ROWS, BLOCK_F)
    norms = tl.load(norms_ptr + rows, mask=row_mask, other=0.0)
    excess = norms - target
    if ONE_SIDED:
        excess = tl.maximum(excess, 0.0)
    positive = norms > 0.0
    coefficient = tl.where(positive, excess / tl.where(positive, norms, 1.0), 0.0)
    coefficient *= scale * tl.load(upstream_ptr).to(tl.float32)
    grad = _load_tile(grad_ptr, rows, cols, mask, stride_row, stride_col)
    _store_tile(out_ptr, coefficient[:, None] * grad, rows, cols, mask, n_cols)


def _settings(n_cols: int) -> tuple[int, int]:
    """(ROWS, BLOCK_F): whole rows per tile when they are short, one row's chunk otherwise."""
    block_f = min(triton.next_power_of_2(n_cols), TILE_ELEMENTS)
    return TILE_ELEMENTS // block_f, block_f


def _grid(n_rows: int, n_cols: int) -> tuple[tuple[int, int], int, int]:
    rows, block_f = _settings(n_cols)
    return (triton.cdiv(n_rows, rows), triton.cdiv(n_cols, block_f)), rows, block_f


def _matrix(tensor: torch.Tensor) -> torch.Tensor:
    """The ``(B, F)`` view (a copy only when the feature dimensions cannot be merged)."""
    return tensor.reshape(len(tensor), -1)


@triton_op("fastgen::interpolate", mutates_args=())
def interpolate_forward(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``fake + eps * (real - fake)``; ``real, fake (B, ...)``, ``eps (B,)``. Contiguous out."""
    out = new_empty(real.shape, real.dtype, real.device)
    r, f = _matrix(real), _matrix(fake)
    n_rows, n_cols = r.shape
    if out.numel() == 0:
        return out
    grid, rows, block_f = _grid(n_rows, n_cols)
    with device_guard(real):
        wrap_triton(_interpolate_kernel)[grid](
            real_ptr=r,
            fake_ptr=f,
            eps_ptr=eps,
            out_ptr=out,
            n_rows=n_rows,
            n_cols=n_cols,
            stride_real_row=r.stride(0),
            stride_real_col=r.stride(1),
            stride_fake_row=f.stride(0),
            stride_fake_col=f.stride(1),
            stride_eps=eps.stride(0),
            ROWS=rows,
            BLOCK_F=block_f,
        )
    return out


@triton_op("fastgen::interpolate_backward", mutates_args=())
def interpolate_backward(
    grad: torch.Tensor, eps: torch.Tensor, need_real: bool, need_fake: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``real`` (``eps * grad``) and ``fake`` (``(1 - eps) * grad``); one that
    is not needed comes back empty."""
    g = _matrix(grad)
    n_rows, n_cols = g.shape
    shapes = [grad.shape if need else (0,) for need in (need_real, need_fake)]
    grad_real, grad_fake = (new_empty(shape, grad.dtype, grad.device) for shape in shapes)
    if grad.numel() == 0:
        return grad_real, grad_fake
    grid, rows, block_f = _grid(n_rows, n_cols)
    with device_guard(grad):
        wrap_triton(_interpolate_backward_kernel)[grid](
            grad_ptr=g,
            eps_ptr=eps,
            grad_real_ptr=grad_real,
            grad_fake_ptr=grad_fake,
            n_rows=n_rows,
            n_cols=n_cols,
            stride_grad_row=g.stride(0),
            stride_grad_col=g.stride(1),
            stride_eps=eps.stride(0),
            NEED_REAL=need_real,
            NEED_FAKE=need_fake,
            ROWS=rows,
            BLOCK_F=block_f,
        )
    return grad_real, grad_fake


@triton_op("fastgen::gradient_norms", mutates_args=())
def gradient_norms(gradients: torch.Tensor) -> torch.Tensor:
    """``||g_i||_2`` of each sample, float32 ``(B,)``."""
    g = _matrix(gradients)
    n_rows, n_cols = g.shape
    grid, rows, block_f = _grid(n_rows, n_cols)
    partial = new_empty((n_rows, grid[1]), torch.float32, gradients.device)
    with device_guard(gradients):
        wrap_triton(_sum_squares_kernel)[grid](
            grad_ptr=g,
            partial_ptr=partial,
            n_rows=n_rows,
            n_cols=n_cols,
            stride_row=g.stride(0),
            stride_col=g.stride(1),
            ROWS=rows,
            BLOCK_F=block_f,
        )
    return partial.sum(dim=1).sqrt()


@triton_op("fastgen::gradient_penalty_backward", mutates_args=())
def gradient_penalty_backward(
    gradients: torch.Tensor,
    norms: torch.Tensor,
    upstream: torch.Tensor,
    target: float,
    one_sided: bool,
    weight: float,
) -> torch.Tensor:
    """The penalty's gradient with respect to ``gradients``, scaled by ``upstream`` (0-d)."""
    g = _matrix(gradients)
    n_rows, n_cols = g.shape
    out = new_empty(gradients.shape, gradients.dtype, gradients.device)
    grid, rows, block_f = _grid(n_rows, n_cols)
    with device_guard(gradients):
        wrap_triton(_penalty_backward_kernel)[grid](
            grad_ptr=g,
            norms_ptr=norms,
            upstream_ptr=upstream,
            out_ptr=out,
            n_rows=n_rows,
            n_cols=n_cols,
            stride_row=g.stride(0),
            stride_col=g.stride(1),
            target=float(target),
            scale=2.0 * weight / n_rows,
            ONE_SIDED=one_sided,
            ROWS=rows,
            BLOCK_F=block_f,
        )
    return out


class InterpolateTriton(torch.autograd.Function):
    """Autograd glue for the interpolation; ``eps`` gets no gradient."""

    @staticmethod
    def forward(ctx, real, fake, eps):
        ctx.save_for_backward(eps)
        return interpolate_forward(real, fake, eps)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (eps,) = ctx.saved_tensors
        need_real, need_fake = ctx.needs_input_grad[:2]
        grad_real, grad_fake = interpolate_backward(grad, eps, need_real, need_fake)
        return grad_real if need_real else None, grad_fake if need_fake else None, None


class GradientPenaltyTriton(torch.autograd.Function):
    """Autograd glue for the penalty: the backward kernel recomputes nothing but the norms'
    coefficients, from the saved float32 norms."""

    @staticmethod
    def forward(ctx, gradients, target, one_sided, weight):
        norms = gradient_norms(gradients)
        excess = norms - target
        if one_sided:
            excess = excess.clamp(min=0)
        ctx.save_for_backward(gradients, norms)
        ctx.args = (float(target), bool(one_sided), float(weight))
        return (weight * excess.square().mean()).to(gradients.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, upstream):
        gradients, norms = ctx.saved_tensors
        return gradient_penalty_backward(gradients, norms, upstream, *ctx.args), None, None, None


# Representative compilations for profiling.aot: short rows (whole rows per tile) in float32 and
# long rows (one chunk per tile) in bfloat16.
_AOT_KERNELS = (
    (_interpolate_kernel, ("real_ptr", "fake_ptr", "eps_ptr", "out_ptr"), {}),
    (_sum_squares_kernel, ("grad_ptr",), {}),
    (
        _interpolate_backward_kernel,
        ("grad_ptr", "eps_ptr", "grad_real_ptr", "grad_fake_ptr"),
        dict(NEED_REAL=True, NEED_FAKE=True),
    ),
    (_penalty_backward_kernel, ("grad_ptr", "upstream_ptr", "out_ptr"), dict(ONE_SIDED=False)),
)
AOT_CONFIGS = [
    AotConfig(
        kernel,
        constexprs=dict(ROWS=rows, BLOCK_F=block_f, **flags),
        types=dict.fromkeys(pointers, dtype) | {"target": "fp32", "scale": "fp32"},
        label=f"F={n_cols} {dtype[1:]}",
    )
    for kernel, pointers, flags in _AOT_KERNELS
    for n_cols, dtype in ((64, "*fp32"), (3 * 256 * 256, "*bf16"))
    for rows, block_f in [_settings(n_cols)]
]
