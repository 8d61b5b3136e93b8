"""Fused MADE masked linear layer: ``y = act(x @ (W * M).T + b)``, forward and backward.

The autoregressive mask ``M[o, i] = out_degrees[o] >= in_degrees[i]`` (``>`` when strict) is
never read from memory: each program loads the two degree vectors of its tile and derives
the mask on the fly. A tile pair whose mask is entirely zero (every output degree of the
tile below every input degree of the K block) is skipped: neither ``x`` nor ``W`` is loaded
and no ``tl.dot`` is issued. With units ordered by degree (``fastgen.nn.MADE`` sorts its hidden
units; input and output degrees are already sorted) the zero part of ``W * M`` is a
staircase and whole tiles fall in it; :func:`tile_skip_fraction` counts them.

Kernels (one idea each):

* forward: tiled ``x @ (W * M).T`` over live K blocks, bias and activation in the epilogue;
  writes ``y`` and, for activations whose derivative needs it (gelu, silu), the
  pre-activation ``z``;
* grad input: ``grad_x = g @ (W * M)`` over live N blocks;
* grad weight: ``grad_W = (g.T @ x) * M`` on live tiles only (dead tiles are written as zeros
  without a loop), ``grad_b = sum_m g`` by the programs of the first K block;

where ``g = grad_y * act'(z)`` is formed on the fly from ``grad_y`` and the saved ``y``
(relu, tanh, elu) or ``z`` (gelu, silu): it is never materialised.

Traffic per layer (``b`` bytes per value, batch ``B``, ``N`` outputs, ``K`` inputs, live
fraction ``f`` of the tiles): forward reads ``B K`` inputs once per N block and ``f N K``
weights once per M block, writes ``B N``; FLOPs ``2 f B N K``. At the MADE shapes of the
bench (B = 4096, N = K = 256) that is ``2 B N K f`` = 0.54 f GFLOP against about 8 MB:
compute-bound on a GPU, so the skipped tiles are skipped FLOPs.

Precision: ``tl.dot`` accumulates in float32. float32 inputs use ``input_precision="ieee"``
unless ``torch.backends.cuda.matmul.allow_tf32`` is set (PyTorch's default is off), matching
what ``F.linear`` does on the same GPU; float16 / bfloat16 inputs use the tensor cores with a
float32 accumulator and are returned in their dtype.
"""

from __future__ import annotations

import os
from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .utils import AotConfig, device_guard, new_empty

ACT_NONE, ACT_RELU, ACT_GELU, ACT_TANH, ACT_ELU, ACT_SILU = range(6)
ACTIVATION_CODES = {None: ACT_NONE, "relu": ACT_RELU, "gelu": ACT_GELU, "tanh": ACT_TANH,
                    "elu": ACT_ELU, "silu": ACT_SILU}  # fmt: skip
# Activations whose derivative is a function of the pre-activation only (not of the output).
NEEDS_PRE_ACTIVATION = (ACT_GELU, ACT_SILU)
# Degrees given to padding lanes: an output lane of degree -2^30 connects to nothing, an input
# lane of degree 2^30 to nothing, so padding never keeps a tile alive.
NEVER_OUT = tl.constexpr(-(2**30))
NEVER_IN = tl.constexpr(2**30)


@triton.jit
def _connected(out_deg, in_deg, STRICT: tl.constexpr):
    """The mask of a [len(out_deg), len(in_deg)] tile."""
    if STRICT:
        return out_deg[:, None] > in_deg[None, :]
    else:
        return out_deg[:, None] >= in_deg[None, :]


@triton.jit
def _live(out_deg, in_deg, STRICT: tl.constexpr):
    """Whether any entry of the tile is connected: the highest output degree reaches the
    lowest input degree."""
    if STRICT:
        return tl.max(out_deg, axis=0) > tl.min(in_deg, axis=0)
    else:
        return tl.max(out_deg, axis=0) >= tl.min(in_deg, axis=0)


@triton.jit
def _operand(v, UPCAST: tl.constexpr):
    """A tl.dot operand; UPCAST (bfloat16 under Triton's interpreter only, whose tl.dot reads
    bfloat16 operands as raw bits) widens it to float32 first. Compiled kernels never set it."""
    if UPCAST:
        return v.to(tl.float32)
    else:
        return v


@triton.jit
def _activation(z, ACT: tl.constexpr):
    if ACT == 1:  # relu
        return tl.maximum(z, 0.0)
    elif ACT == 2:  # gelu, exact (erf) form as F.gelu's default
        return 0.5 * z * (1.0 + tl.erf(z * 0.7071067811865476))
    elif ACT == 3:  # tanh
        return 2.0 * tl.sigmoid(2.0 * z) - 1.0
    elif ACT == 4:  # elu, alpha = 1
        return tl.where(z > 0.0, z, tl.exp(tl.minimum(z, 0.0)) - 1.0)
    elif ACT == 5:  # silu
        return z * tl.sigmoid(z)
    else:
        return z


@triton.jit
def _activation_grad(v, ACT: tl.constexpr):
    """act'(z) from ``v``: the output y for relu, tanh, elu; the pre-activation z for gelu,
    silu (NEEDS_PRE_ACTIVATION)."""
    if ACT == 1:
        return tl.where(v > 0.0, 1.0, 0.0)
    elif ACT == 2:
        cdf = 0.5 * (1.0 + tl.erf(v * 0.7071067811865476))
        return cdf + v * tl.exp(-0.5 * v * v) * 0.3989422804014327
    elif ACT == 3:
        return 1.0 - v * v
    elif ACT == 4:
        return tl.where(v > 0.0, 1.0, v + 1.0)
    else:  # silu
        s = tl.sigmoid(v)
        return s * (1.0 + v * (1.0 - s))


@triton.jit
def _load_grad(g_ptr, v_ptr, rows, cols, mask, stride_gm, stride_gn, stride_vm, stride_vn,
               ACT: tl.constexpr):  # fmt: skip
    """g = grad_y * act'(v) on a [rows, cols] tile, in float32 (zero outside ``mask``)."""
    g = tl.load(g_ptr + rows[:, None] * stride_gm + cols[None, :] * stride_gn, mask=mask,
                other=0.0).to(tl.float32)  # fmt: skip
    if ACT != 0:
        v = tl.load(v_ptr + rows[:, None] * stride_vm + cols[None, :] * stride_vn, mask=mask,
                    other=0.0).to(tl.float32)  # fmt: skip
        g = g * _activation_grad(v, ACT)
    return g


@triton.jit
def _masked_linear_forward_kernel(
    x_ptr, w_ptr, b_ptr, in_deg_ptr, out_deg_ptr, y_ptr, z_ptr,
    M, N, K, stride_xm, stride_xk, stride_wn, stride_wk,
    HAS_BIAS: tl.constexpr, STRICT: tl.constexpr, ACT: tl.constexpr, STORE_PRE: tl.constexpr,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr, BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask = rows < M
    col_mask = cols < N
    out_deg = tl.load(out_deg_ptr + cols, mask=col_mask, other=NEVER_OUT)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        k_mask = ks < K
        in_deg = tl.load(in_deg_ptr + ks, mask=k_mask, other=NEVER_IN)
        if _live(out_deg, in_deg, STRICT):
            x = tl.load(x_ptr + rows[:, None] * stride_xm + ks[None, :] * stride_xk,
                        mask=row_mask[:, None] & k_mask[None, :], other=0.0)  # fmt: skip
            # masked-off weights are not even read: the mask is the load's predicate
            w_mask = _connected(out_deg, in_deg, STRICT) & col_mask[:, None] & k_mask[None, :]
            w = tl.load(w_ptr + cols[:, None] * stride_wn + ks[None, :] * stride_wk,
                        mask=w_mask, other=0.0)  # fmt: skip
            acc = tl.dot(_operand(x, UPCAST), tl.trans(_operand(w, UPCAST)), acc,
                         input_precision=PRECISION)  # fmt: skip
    if HAS_BIAS:
        acc += tl.load(b_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    offsets = rows[:, None] * N + cols[None, :]
    mask = row_mask[:, None] & col_mask[None, :]
    if STORE_PRE:
        tl.store(z_ptr + offsets, acc.to(z_ptr.dtype.element_ty), mask=mask)
    y = _activation(acc, ACT)
    tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _masked_linear_grad_input_kernel(
    g_ptr, v_ptr, w_ptr, in_deg_ptr, out_deg_ptr, gx_ptr,
    M, N, K, stride_gm, stride_gn, stride_vm, stride_vn, stride_wn, stride_wk,
    STRICT: tl.constexpr, ACT: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    ks = tl.program_id(1).to(tl.int64) * BLOCK_K + tl.arange(0, BLOCK_K)
    row_mask = rows < M
    k_mask = ks < K
    in_deg = tl.load(in_deg_ptr + ks, mask=k_mask, other=NEVER_IN)
    acc = tl.zeros((BLOCK_M, BLOCK_K), dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        col_mask = cols < N
        out_deg = tl.load(out_deg_ptr + cols, mask=col_mask, other=NEVER_OUT)
        if _live(out_deg, in_deg, STRICT):
            g = _load_grad(g_ptr, v_ptr, rows, cols, row_mask[:, None] & col_mask[None, :],
                           stride_gm, stride_gn, stride_vm, stride_vn, ACT)  # fmt: skip
            w_mask = _connected(out_deg, in_deg, STRICT) & col_mask[:, None] & k_mask[None, :]
            w = tl.load(w_ptr + cols[:, None] * stride_wn + ks[None, :] * stride_wk,
                        mask=w_mask, other=0.0)  # fmt: skip
            acc = tl.dot(_operand(g.to(w.dtype), UPCAST), _operand(w, UPCAST), acc,
                         input_precision=PRECISION)  # fmt: skip
    offsets = rows[:, None] * K + ks[None, :]
    tl.store(gx_ptr + offsets, acc.to(gx_ptr.dtype.element_ty),
             mask=row_mask[:, None] & k_mask[None, :])  # fmt: skip


@triton.jit
def _masked_linear_grad_weight_kernel(
    g_ptr, v_ptr, x_ptr, in_deg_ptr, out_deg_ptr, gw_ptr, gb_ptr,
    M, N, K, stride_gm, stride_gn, stride_vm, stride_vn, stride_xm, stride_xk,
    HAS_BIAS: tl.constexpr, STRICT: tl.constexpr, ACT: tl.constexpr, PRECISION: tl.constexpr,
    UPCAST: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    pid_k = tl.program_id(1)
    cols = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = pid_k.to(tl.int64) * BLOCK_K + tl.arange(0, BLOCK_K)
    col_mask = cols < N
    k_mask = ks < K
    out_deg = tl.load(out_deg_ptr + cols, mask=col_mask, other=NEVER_OUT)
    in_deg = tl.load(in_deg_ptr + ks, mask=k_mask, other=NEVER_IN)
    acc = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
    acc_b = tl.zeros((BLOCK_N,), dtype=tl.float32)
    # A dead tile's gradient is zero without a loop, unless this program also owes grad_b
    # (the first K block of every N block computes it).
    need = _live(out_deg, in_deg, STRICT)
    if HAS_BIAS:
        need = need | (pid_k == 0)
    if need:
        for m0 in range(0, M, BLOCK_M):
            rows = m0 + tl.arange(0, BLOCK_M)
            row_mask = rows < M
            g = _load_grad(g_ptr, v_ptr, rows, cols, row_mask[:, None] & col_mask[None, :],
                           stride_gm, stride_gn, stride_vm, stride_vn, ACT)  # fmt: skip
            if HAS_BIAS:
                acc_b += tl.sum(g, axis=0)
            x = tl.load(x_ptr + rows[:, None] * stride_xm + ks[None, :] * stride_xk,
                        mask=row_mask[:, None] & k_mask[None, :], other=0.0)  # fmt: skip
            acc = tl.dot(tl.trans(_operand(g.to(x.dtype), UPCAST)), _operand(x, UPCAST), acc,
                         input_precision=PRECISION)  # fmt: skip
    acc = tl.where(_connected(out_deg, in_deg, STRICT), acc, 0.0)
    offsets = cols[:, None] * K + ks[None, :]
    tl.store(gw_ptr + offsets, acc.to(gw_ptr.dtype.element_ty),
             mask=col_mask[:, None] & k_mask[None, :])  # fmt: skip
    if HAS_BIAS:
        if pid_k == 0:
            tl.store(gb_ptr + cols, acc_b.to(gb_ptr.dtype.element_ty), mask=col_mask)


# Tiles: 32 x 64 outputs, K in blocks of 32 (a 256-unit layer is 4 x 8 weight tiles: fine
# enough for the degree staircase to leave whole tiles dead; 64 x 64 spills in float32 on
# sm_80). Smaller layers shrink the tile to fit;
# tl.dot needs every dimension >= 16.
MAX_BLOCK_M, MAX_BLOCK_N, MAX_BLOCK_K = 32, 64, 32


def _block(size: int, largest: int) -> int:
    return max(16, min(largest, triton.next_power_of_2(size)))


def block_settings(m: int, n: int, k: int) -> tuple[int, int, int]:
    """``(BLOCK_M, BLOCK_N, BLOCK_K)`` used for a batch of ``m``, ``n`` outputs, ``k`` inputs
    (the same for the three kernels)."""
    return _block(m, MAX_BLOCK_M), _block(n, MAX_BLOCK_N), _block(k, MAX_BLOCK_K)


def tile_skip_fraction(
    in_degrees: torch.Tensor,
    out_degrees: torch.Tensor,
    strict: bool,
    block_n: int | None = None,
    block_k: int | None = None,
) -> float:
    """Fraction of the (N block, K block) weight tiles the kernels skip (all masked), which is
    also the fraction of the matmul FLOPs skipped up to the ragged last blocks."""
    n, k = out_degrees.numel(), in_degrees.numel()
    _, default_n, default_k = block_settings(MAX_BLOCK_M, n, k)
    block_n, block_k = block_n or default_n, block_k or default_k
    out_max = torch.stack([c.max() for c in out_degrees.split(block_n)])
    in_min = torch.stack([c.min() for c in in_degrees.split(block_k)])
    live = out_max[:, None] > in_min if strict else out_max[:, None] >= in_min
    return 1.0 - live.float().mean().item()


def _upcast(dtype: torch.dtype) -> bool:
    return dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _precision(dtype: torch.dtype) -> str:
    if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


@triton_op("fastgen::masked_linear_forward", mutates_args=())
def masked_linear_forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],  # noqa: UP045 (the op schema parser reads Optional)
    in_degrees: torch.Tensor,
    out_degrees: torch.Tensor,
    strict: bool,
    activation: int,
    store_pre: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (M, K)``, ``weight (N, K)``, ``bias (N,)`` or None, int32 degrees ``(K,)``,
    ``(N,)``. Returns contiguous ``y (M, N)`` and ``z (M, N)`` (empty unless store_pre)."""
    m, k = x.shape
    n = weight.shape[0]
    y = new_empty((m, n), x.dtype, x.device)
    z = new_empty((m, n) if store_pre else (0,), x.dtype, x.device)
    if m == 0 or n == 0:
        return y, z
    # a vector of N elements, read with unit stride: a copy when strided costs nothing
    bias = None if bias is None else bias.contiguous()
    block_m, block_n, block_k = block_settings(m, n, k)
    grid = (triton.cdiv(m, block_m), triton.cdiv(n, block_n))
    with device_guard(x):
        wrap_triton(_masked_linear_forward_kernel)[grid](
            x, weight, weight if bias is None else bias, in_degrees, out_degrees, y,
            z if store_pre else y, m, n, k, x.stride(0), x.stride(1), weight.stride(0),
            weight.stride(1), HAS_BIAS=bias is not None, STRICT=strict, ACT=activation,
            STORE_PRE=store_pre, PRECISION=_precision(x.dtype), UPCAST=_upcast(x.dtype),
            BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k,
        )  # fmt: skip
    return y, z


@triton_op("fastgen::masked_linear_grad_input", mutates_args=())
def masked_linear_grad_input(
    grad: torch.Tensor,
    saved: torch.Tensor,
    weight: torch.Tensor,
    in_degrees: torch.Tensor,
    out_degrees: torch.Tensor,
    strict: bool,
    activation: int,
) -> torch.Tensor:
    """``grad_x (M, K) = (grad * act'(saved)) @ (W * M)``; ``saved`` is y or z (M, N)."""
    m, n = grad.shape
    k = weight.shape[1]
    grad_x = new_empty((m, k), grad.dtype, grad.device)
    if m == 0 or k == 0:
        return grad_x
    if n == 0:
        return grad_x.zero_()
    block_m, block_n, block_k = block_settings(m, n, k)
    grid = (triton.cdiv(m, block_m), triton.cdiv(k, block_k))
    with device_guard(grad):
        wrap_triton(_masked_linear_grad_input_kernel)[grid](
            grad, saved, weight, in_degrees, out_degrees, grad_x, m, n, k, grad.stride(0),
            grad.stride(1), saved.stride(0), saved.stride(1), weight.stride(0),
            weight.stride(1), STRICT=strict, ACT=activation, PRECISION=_precision(grad.dtype),
            UPCAST=_upcast(grad.dtype), BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k,
        )  # fmt: skip
    return grad_x


@triton_op("fastgen::masked_linear_grad_weight", mutates_args=())
def masked_linear_grad_weight(
    grad: torch.Tensor,
    saved: torch.Tensor,
    x: torch.Tensor,
    in_degrees: torch.Tensor,
    out_degrees: torch.Tensor,
    has_bias: bool,
    strict: bool,
    activation: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``grad_W (N, K) = (g.T @ x) * M`` and ``grad_b (N,) = g.sum(0)`` (empty without
    bias), ``g = grad * act'(saved)``."""
    m, n = grad.shape
    k = x.shape[1]
    grad_w = new_empty((n, k), x.dtype, x.device)
    grad_b = new_empty((n,) if has_bias else (0,), x.dtype, x.device)
    if n == 0 or (k == 0 and not has_bias):
        return grad_w, grad_b
    block_m, block_n, block_k = block_settings(m, n, k)
    grid = (triton.cdiv(n, block_n), max(1, triton.cdiv(k, block_k)))
    with device_guard(grad):
        wrap_triton(_masked_linear_grad_weight_kernel)[grid](
            grad, saved, x, in_degrees, out_degrees, grad_w, grad_b if has_bias else grad_w,
            m, n, k, grad.stride(0), grad.stride(1), saved.stride(0), saved.stride(1),
            x.stride(0), x.stride(1), HAS_BIAS=has_bias, STRICT=strict, ACT=activation,
            PRECISION=_precision(x.dtype), UPCAST=_upcast(x.dtype), BLOCK_M=block_m,
            BLOCK_N=block_n, BLOCK_K=block_k,
        )  # fmt: skip
    return grad_w, grad_b


class MaskedLinearTriton(torch.autograd.Function):
    """Autograd glue on 2-D ``x (M, K)``. Saves ``x``, ``W``, the degrees and, for the
    activation's derivative, ``y`` (relu, tanh, elu) or ``z`` (gelu, silu); nothing else
    without an activation, so callers may modify the output in place (nflows does).
    ``W * M`` is never formed."""

    @staticmethod
    def forward(ctx, x, weight, bias, in_degrees, out_degrees, strict, activation):
        code = ACTIVATION_CODES[activation]
        store_pre = code in NEEDS_PRE_ACTIVATION and any(ctx.needs_input_grad[:3])
        # the kernels read the degrees with unit stride (vectors: copies cost nothing)
        in_degrees, out_degrees = in_degrees.contiguous(), out_degrees.contiguous()
        y, z = masked_linear_forward(x, weight, bias, in_degrees, out_degrees, strict, code,
                                     store_pre)  # fmt: skip
        saved = z if store_pre else (y if code != ACT_NONE else None)
        ctx.save_for_backward(x, weight, in_degrees, out_degrees, saved)
        ctx.settings = (bool(strict), code, bias is not None)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y):
        x, weight, in_degrees, out_degrees, saved = ctx.saved_tensors
        strict, code, has_bias = ctx.settings
        # without an activation the kernels never read ``saved``: any (M, N) tensor will do
        saved = grad_y if saved is None else saved
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = masked_linear_grad_input(grad_y, saved, weight, in_degrees, out_degrees,
                                              strict, code)  # fmt: skip
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_w, grad_b = masked_linear_grad_weight(grad_y, saved, x, in_degrees, out_degrees,
                                                       has_bias, strict, code)  # fmt: skip
            grad_b = grad_b if has_bias else None
        return grad_x, grad_w, grad_b, None, None, None, None


def masked_linear_triton(x, weight, bias, in_degrees, out_degrees, strict, activation):
    """Same contract as ``fastgen.reference.masked_linear.masked_linear``, with int32 degrees
    in place of the mask; ``x (..., K)`` is viewed as 2-D outside the autograd Function."""
    y = MaskedLinearTriton.apply(x.reshape(-1, x.shape[-1]), weight, bias, in_degrees,
                                 out_degrees, strict, activation)  # fmt: skip
    return y.view(*x.shape[:-1], weight.shape[0])


# Representative compilations for profiling.aot: a hidden layer (256 -> 256, relu / gelu with
# its pre-activation) in float32 and bfloat16, and the strict output layer.
_DEGREE_TYPES = {"in_deg_ptr": "*i32", "out_deg_ptr": "*i32"}
_VALUE_POINTERS = ("x_ptr", "w_ptr", "b_ptr", "y_ptr", "z_ptr", "g_ptr", "v_ptr", "gx_ptr",
                   "gw_ptr", "gb_ptr")  # fmt: skip


def _aot(kernel, dtype, label, **constexprs):
    pointer = {"fp32": "*fp32", "bf16": "*bf16"}[dtype]
    types = dict.fromkeys(_VALUE_POINTERS, pointer) | _DEGREE_TYPES
    block_m, block_n, block_k = block_settings(4096, 256, 256)
    return AotConfig(
        kernel,
        constexprs={
            "PRECISION": "ieee",
            "UPCAST": False,
            "BLOCK_M": block_m,
            "BLOCK_N": block_n,
            "BLOCK_K": block_k,
            **constexprs,
        },  # fmt: skip
        types=types,
        label=f"{label} {dtype}",
    )


AOT_CONFIGS = [
    # float32 with torch.backends.cuda.matmul.allow_tf32: the tensor-core path of float32
    _aot(_masked_linear_forward_kernel, "fp32", "hidden relu tf32", HAS_BIAS=True,
         STRICT=False, ACT=ACT_RELU, STORE_PRE=False, PRECISION="tf32"),  # fmt: skip
] + [
    config
    for dtype in ("fp32", "bf16")
    for config in (
        _aot(_masked_linear_forward_kernel, dtype, "hidden relu", HAS_BIAS=True, STRICT=False,
             ACT=ACT_RELU, STORE_PRE=False),
        _aot(_masked_linear_forward_kernel, dtype, "output strict", HAS_BIAS=True, STRICT=True,
             ACT=ACT_NONE, STORE_PRE=False),
        _aot(_masked_linear_forward_kernel, dtype, "hidden gelu", HAS_BIAS=True, STRICT=False,
             ACT=ACT_GELU, STORE_PRE=True),
        _aot(_masked_linear_grad_input_kernel, dtype, "hidden tanh", STRICT=False,
             ACT=ACT_TANH),
        _aot(_masked_linear_grad_input_kernel, dtype, "hidden silu", STRICT=False,
             ACT=ACT_SILU),
        _aot(_masked_linear_grad_weight_kernel, dtype, "hidden elu", HAS_BIAS=True,
             STRICT=False, ACT=ACT_ELU),
        _aot(_masked_linear_grad_weight_kernel, dtype, "output strict", HAS_BIAS=True,
             STRICT=True, ACT=ACT_NONE),
        _aot(_masked_linear_grad_weight_kernel, dtype, "hidden gelu", HAS_BIAS=True,
             STRICT=False, ACT=ACT_GELU),
    )
]  # fmt: skip
