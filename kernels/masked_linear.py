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

from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .utils import AotConfig, device_guard, interpreter_enabled, new_empty

# Activation codes: tl.constexpr, because jit code reads only constexpr globals; the launchers
# pass their plain values.
ACT_NONE = tl.constexpr(0)
ACT_RELU = tl.constexpr(1)
ACT_GELU = tl.constexpr(2)
ACT_TANH = tl.constexpr(3)
ACT_ELU = tl.constexpr(4)
ACT_SILU = tl.constexpr(5)
ACTIVATION_CODES = {
    None: ACT_NONE.value,
    "relu": ACT_RELU.value,
    "gelu": ACT_GELU.value,
    "tanh": ACT_TANH.value,
    "elu": ACT_ELU.value,
    "silu": ACT_SILU.value,
}
# Activations whose derivative is a function of the pre-activation only (not of the output).
NEEDS_PRE_ACTIVATION = (ACT_GELU.value, ACT_SILU.value)
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
    if ACT == ACT_RELU:
        return tl.maximum(z, 0.0)
    elif ACT == ACT_GELU:  # exact (erf) form, as F.gelu's default
        return 0.5 * z * (1.0 + tl.erf(z * 0.7071067811865476))
    elif ACT == ACT_TANH:
        return 2.0 * tl.sigmoid(2.0 * z) - 1.0
    elif ACT == ACT_ELU:  # alpha = 1
        return tl.where(z > 0.0, z, tl.exp(tl.minimum(z, 0.0)) - 1.0)
    elif ACT == ACT_SILU:
        return z * tl.sigmoid(z)
    else:
        return z


@triton.jit
def _activation_grad(v, ACT: tl.constexpr):
    """act'(z) from ``v``: the output y for relu, tanh, elu; the pre-activation z for gelu,
    silu (NEEDS_PRE_ACTIVATION)."""
    if ACT == ACT_RELU:
        return tl.where(v > 0.0, 1.0, 0.0)
    elif ACT == ACT_GELU:
        cdf = 0.5 * (1.0 + tl.erf(v * 0.7071067811865476))
        return cdf + v * tl.exp(-0.5 * v * v) * 0.3989422804014327
    elif ACT == ACT_TANH:
        return 1.0 - v * v
    elif ACT == ACT_ELU:
        return tl.where(v > 0.0, 1.0, v + 1.0)
    else:  # ACT_SILU
        s = tl.sigmoid(v)
        return s * (1.0 + v * (1.0 - s))


@triton.jit
def _load_block(ptr, rows, cols, row_mask, col_mask, stride_row, stride_col):
    """A [len(rows), len(cols)] tile of a strided matrix (zero outside the masks)."""
    mask = row_mask[:, None] & col_mask[None, :]
    return tl.load(
        ptr + rows[:, None] * stride_row + cols[None, :] * stride_col, mask=mask, other=0.0
    )


@triton.jit
def _load_weight(
    w_ptr,  # (N, K), strided
    cols,
    ks,
    col_mask,
    k_mask,
    out_deg,
    in_deg,
    stride_wn,
    stride_wk,
    STRICT: tl.constexpr,
):
    """The [len(cols), len(ks)] tile of W * M: masked-off weights are not even read (the mask
    is the load's predicate)."""
    mask = _connected(out_deg, in_deg, STRICT) & col_mask[:, None] & k_mask[None, :]
    return tl.load(
        w_ptr + cols[:, None] * stride_wn + ks[None, :] * stride_wk, mask=mask, other=0.0
    )


@triton.jit
def _load_grad(
    g_ptr,  # (M, N) upstream gradient, strided
    v_ptr,  # (M, N) saved y or z, strided; unused when ACT is ACT_NONE
    rows,
    cols,
    row_mask,
    col_mask,
    stride_gm,
    stride_gn,
    stride_vm,
    stride_vn,
    ACT: tl.constexpr,
):
    """g = grad_y * act'(v) on a [rows, cols] tile, in float32 (zero outside the masks)."""
    g = _load_block(g_ptr, rows, cols, row_mask, col_mask, stride_gm, stride_gn).to(tl.float32)
    if ACT != ACT_NONE:
        v = _load_block(v_ptr, rows, cols, row_mask, col_mask, stride_vm, stride_vn)
        g = g * _activation_grad(v.to(tl.float32), ACT)
    return g


@triton.jit
def _masked_linear_forward_kernel(
    x_ptr,  # (M, K), strided
    w_ptr,  # (N, K), strided
    b_ptr,  # (N,); unused unless HAS_BIAS
    in_deg_ptr,  # (K,) int32
    out_deg_ptr,  # (N,) int32
    y_ptr,  # (M, N), contiguous
    z_ptr,  # (M, N) pre-activation, contiguous; unused unless STORE_PRE
    M,
    N,
    K,
    stride_xm,
    stride_xk,
    stride_wn,
    stride_wk,
    HAS_BIAS: tl.constexpr,
    STRICT: tl.constexpr,
    ACT: tl.constexpr,
    STORE_PRE: tl.constexpr,
    PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
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
            x = _load_block(x_ptr, rows, ks, row_mask, k_mask, stride_xm, stride_xk)
            w = _load_weight(
                w_ptr, cols, ks, col_mask, k_mask, out_deg, in_deg, stride_wn, stride_wk, STRICT
            )
            x, w = _operand(x, UPCAST), _operand(w, UPCAST)
            acc = tl.dot(x, tl.trans(w), acc, input_precision=PRECISION)
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
    g_ptr,  # (M, N) upstream gradient, strided
    v_ptr,  # (M, N) saved y or z, strided; unused when ACT is ACT_NONE
    w_ptr,  # (N, K), strided
    in_deg_ptr,  # (K,) int32
    out_deg_ptr,  # (N,) int32
    gx_ptr,  # (M, K), contiguous
    M,
    N,
    K,
    stride_gm,
    stride_gn,
    stride_vm,
    stride_vn,
    stride_wn,
    stride_wk,
    STRICT: tl.constexpr,
    ACT: tl.constexpr,
    PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
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
            g = _load_grad(
                g_ptr,
                v_ptr,
                rows,
                cols,
                row_mask,
                col_mask,
                stride_gm,
                stride_gn,
                stride_vm,
                stride_vn,
                ACT,
            )
            w = _load_weight(
                w_ptr, cols, ks, col_mask, k_mask, out_deg, in_deg, stride_wn, stride_wk, STRICT
            )
            g, w = _operand(g.to(w.dtype), UPCAST), _operand(w, UPCAST)
            acc = tl.dot(g, w, acc, input_precision=PRECISION)
    offsets = rows[:, None] * K + ks[None, :]
    mask = row_mask[:, None] & k_mask[None, :]
    tl.store(gx_ptr + offsets, acc.to(gx_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _masked_linear_grad_weight_kernel(
    g_ptr,  # (M, N) upstream gradient, strided
    v_ptr,  # (M, N) saved y or z, strided; unused when ACT is ACT_NONE
    x_ptr,  # (M, K), strided
    in_deg_ptr,  # (K,) int32
    out_deg_ptr,  # (N,) int32
    gw_ptr,  # (N, K), contiguous
    gb_ptr,  # (N,); unused unless HAS_BIAS
    M,
    N,
    K,
    stride_gm,
    stride_gn,
    stride_vm,
    stride_vn,
    stride_xm,
    stride_xk,
    HAS_BIAS: tl.constexpr,
    STRICT: tl.constexpr,
    ACT: tl.constexpr,
    PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
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
            g = _load_grad(
                g_ptr,
                v_ptr,
                rows,
                cols,
                row_mask,
                col_mask,
                stride_gm,
                stride_gn,
                stride_vm,
                stride_vn,
                ACT,
            )
            if HAS_BIAS:
                acc_b += tl.sum(g, axis=0)
            x = _load_block(x_ptr, rows, ks, row_mask, k_mask, stride_xm, stride_xk)
            g, x = _operand(g.to(x.dtype), UPCAST), _operand(x, UPCAST)
            acc = tl.dot(tl.trans(g), x, acc, input_precision=PRECISION)
    acc = tl.where(_connected(out_deg, in_deg, STRICT), acc, 0.0)
    offsets = cols[:, None] * K + ks[None, :]
    mask = col_mask[:, None] & k_mask[None, :]
    tl.store(gw_ptr + offsets, acc.to(gw_ptr.dtype.element_ty), mask=mask)
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
    return dtype == torch.bfloat16 and interpreter_enabled()


def _precision(dtype: torch.dtype) -> str:
    if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


def _dot_settings(dtype: torch.dtype, m: int, n: int, k: int) -> dict:
    """The constexprs the three kernels share: tl.dot's precision and operand upcast, and the
    block sizes (:func:`block_settings`)."""
    block_m, block_n, block_k = block_settings(m, n, k)
    return dict(
        PRECISION=_precision(dtype),
        UPCAST=_upcast(dtype),
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
    )


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
    settings = _dot_settings(x.dtype, m, n, k)
    grid = (triton.cdiv(m, settings["BLOCK_M"]), triton.cdiv(n, settings["BLOCK_N"]))
    with device_guard(x):
        wrap_triton(_masked_linear_forward_kernel)[grid](
            x_ptr=x,
            w_ptr=weight,
            b_ptr=weight if bias is None else bias,
            in_deg_ptr=in_degrees,
            out_deg_ptr=out_degrees,
            y_ptr=y,
            z_ptr=z if store_pre else y,
            M=m,
            N=n,
            K=k,
            stride_xm=x.stride(0),
            stride_xk=x.stride(1),
            stride_wn=weight.stride(0),
            stride_wk=weight.stride(1),
            HAS_BIAS=bias is not None,
            STRICT=strict,
            ACT=activation,
            STORE_PRE=store_pre,
            **settings,
        )
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
    settings = _dot_settings(grad.dtype, m, n, k)
    grid = (triton.cdiv(m, settings["BLOCK_M"]), triton.cdiv(k, settings["BLOCK_K"]))
    with device_guard(grad):
        wrap_triton(_masked_linear_grad_input_kernel)[grid](
            g_ptr=grad,
            v_ptr=saved,
            w_ptr=weight,
            in_deg_ptr=in_degrees,
            out_deg_ptr=out_degrees,
            gx_ptr=grad_x,
            M=m,
            N=n,
            K=k,
            stride_gm=grad.stride(0),
            stride_gn=grad.stride(1),
            stride_vm=saved.stride(0),
            stride_vn=saved.stride(1),
            stride_wn=weight.stride(0),
            stride_wk=weight.stride(1),
            STRICT=strict,
            ACT=activation,
            **settings,
        )
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
    settings = _dot_settings(x.dtype, m, n, k)
    grid = (triton.cdiv(n, settings["BLOCK_N"]), max(1, triton.cdiv(k, settings["BLOCK_K"])))
    with device_guard(grad):
        wrap_triton(_masked_linear_grad_weight_kernel)[grid](
            g_ptr=grad,
            v_ptr=saved,
            x_ptr=x,
            in_deg_ptr=in_degrees,
            out_deg_ptr=out_degrees,
            gw_ptr=grad_w,
            gb_ptr=grad_b if has_bias else grad_w,
            M=m,
            N=n,
            K=k,
            stride_gm=grad.stride(0),
            stride_gn=grad.stride(1),
            stride_vm=saved.stride(0),
            stride_vn=saved.stride(1),
            stride_xm=x.stride(0),
            stride_xk=x.stride(1),
            HAS_BIAS=has_bias,
            STRICT=strict,
            ACT=activation,
            **settings,
        )
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
        y, z = masked_linear_forward(
            x, weight, bias, in_degrees, out_degrees, strict, code, store_pre
        )
        saved = z if store_pre else (y if code != ACT_NONE.value else None)
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
            grad_x = masked_linear_grad_input(
                grad_y, saved, weight, in_degrees, out_degrees, strict, code
            )
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_w, grad_b = masked_linear_grad_weight(
                grad_y, saved, x, in_degrees, out_degrees, has_bias, strict, code
            )
            grad_b = grad_b if has_bias else None
        return grad_x, grad_w, grad_b, None, None, None, None


def masked_linear_triton(x, weight, bias, in_degrees, out_degrees, strict, activation):
    """Same contract as ``fastgen.reference.masked_linear.masked_linear``, with int32 degrees
    in place of the mask; ``x (..., K)`` is viewed as 2-D outside the autograd Function."""
    y = MaskedLinearTriton.apply(
        x.reshape(-1, x.shape[-1]), weight, bias, in_degrees, out_degrees, strict, activation
    )
    return y.view(*x.shape[:-1], weight.shape[0])


# Representative compilations for profiling.aot: a hidden layer (256 -> 256, relu / gelu with
# its pre-activation) in float32 and bfloat16, and the strict output layer.
_DEGREE_TYPES = {"in_deg_ptr": "*i32", "out_deg_ptr": "*i32"}
_VALUE_POINTERS = (
    "x_ptr",
    "w_ptr",
    "b_ptr",
    "y_ptr",
    "z_ptr",
    "g_ptr",
    "v_ptr",
    "gx_ptr",
    "gw_ptr",
    "gb_ptr",
)


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
        },
        types=types,
        label=f"{label} {dtype}",
    )


# The hidden layers' flags; the output layer is strict, without activation.
_HIDDEN = dict(HAS_BIAS=True, STRICT=False)
_OUTPUT = dict(HAS_BIAS=True, STRICT=True, ACT=ACT_NONE.value)
AOT_CONFIGS = [
    # float32 with torch.backends.cuda.matmul.allow_tf32: the tensor-core path of float32
    _aot(
        _masked_linear_forward_kernel,
        "fp32",
        "hidden relu tf32",
        **_HIDDEN,
        ACT=ACT_RELU.value,
        STORE_PRE=False,
        PRECISION="tf32",
    ),
] + [
    config
    for dtype in ("fp32", "bf16")
    for config in (
        _aot(
            _masked_linear_forward_kernel,
            dtype,
            "hidden relu",
            **_HIDDEN,
            ACT=ACT_RELU.value,
            STORE_PRE=False,
        ),
        _aot(_masked_linear_forward_kernel, dtype, "output strict", **_OUTPUT, STORE_PRE=False),
        _aot(
            _masked_linear_forward_kernel,
            dtype,
            "hidden gelu",
            **_HIDDEN,
            ACT=ACT_GELU.value,
            STORE_PRE=True,
        ),
        _aot(
            _masked_linear_grad_input_kernel, dtype, "hidden tanh", STRICT=False, ACT=ACT_TANH.value
        ),
        _aot(
            _masked_linear_grad_input_kernel, dtype, "hidden silu", STRICT=False, ACT=ACT_SILU.value
        ),
        _aot(_masked_linear_grad_weight_kernel, dtype, "hidden elu", **_HIDDEN, ACT=ACT_ELU.value),
        _aot(_masked_linear_grad_weight_kernel, dtype, "output strict", **_OUTPUT),
        _aot(
            _masked_linear_grad_weight_kernel, dtype, "hidden gelu", **_HIDDEN, ACT=ACT_GELU.value
        ),
    )
]
