"""Batched matmul with a fused epilogue, the one kernel of the Newton-Schulz square root.

``out = alpha A @ B + beta C + gamma I`` for ``(B, n, n)`` float32 matrices. The coupled
Newton-Schulz iteration of :func:`fastgen.linalg.sqrtm` is three of these per step:
``T = (3 I - Z Y) / 2`` (``alpha = -1/2``, ``gamma = 3/2``: the update's shift and scale are
applied to the accumulator in registers instead of a second pass over ``n^2`` values),
``Y <- Y T`` and ``Z <- T Z``; the final residual ``Y Y - A`` uses ``beta = -1``.

Each program computes one ``BLOCK_M x BLOCK_N`` tile of one matrix of the batch, looping over
``n`` in ``BLOCK_K`` steps with ``tl.dot`` (tensor cores on sm_80 / sm_90); masks handle any
``n``. ``INPUT_PRECISION``: ``"tf32"`` on GPUs by default (10-bit mantissa products, float32
accumulation: about 8x the ieee rate; the iteration's accepted residual is loosened to 5e-3
accordingly, see :data:`fastgen.linalg.NS_TOLERANCES`) or ``"ieee"`` (exact float32; what
Triton's CPU interpreter always computes, so the tests use it).

Cost per call: ``2 n^3`` FLOPs and ``(2 + [C] + 1) n^2`` values moved at the least: at
``n = 2048`` 17 GFLOP against 50 MB, hundreds of FLOP per byte, so it is compute-bound and its
floor is the tensor-core rate (about 400 TFLOP/s tf32 on an H100: 45 us per call).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .tiles import _tile_matmul
from .utils import AotConfig, device_guard, new_empty

DEFAULT_INPUT_PRECISION = "tf32"
INPUT_PRECISIONS = ("ieee", "tf32")


@triton.jit
def _fused_gemm_kernel(
    a_ptr,  # (B, n, n) float32, strided
    b_ptr,  # (B, n, n) float32, strided
    c_ptr,  # (B, n, n) float32, strided; unused unless HAS_C
    out_ptr,  # (B, n, n) float32
    n,
    stride_a_batch,
    stride_a_row,
    stride_a_col,
    stride_b_batch,
    stride_b_row,
    stride_b_col,
    stride_c_batch,
    stride_c_row,
    stride_c_col,
    stride_out_batch,
    stride_out_row,
    stride_out_col,
    alpha,
    beta,
    gamma,
    HAS_C: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    batch = tl.program_id(2).to(tl.int64)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask = rows < n
    col_mask = cols < n
    a_rows = a_ptr + batch * stride_a_batch + rows[:, None] * stride_a_row
    b_cols = b_ptr + batch * stride_b_batch + cols[None, :] * stride_b_col
    acc = _tile_matmul(
        a_rows,
        stride_a_col,
        row_mask,
        b_cols,
        stride_b_row,
        col_mask,
        n,
        INPUT_PRECISION,
        BLOCK_M,
        BLOCK_N,
        BLOCK_K,
    )
    # Epilogue: alpha A B + beta C + gamma I while the tile is in registers.
    out = alpha * acc
    mask = row_mask[:, None] & col_mask[None, :]
    if HAS_C:
        c_offsets = batch * stride_c_batch + rows[:, None] * stride_c_row
        c = tl.load(c_ptr + c_offsets + cols[None, :] * stride_c_col, mask=mask, other=0.0)
        out += beta * c
    out += tl.where(rows[:, None] == cols[None, :], gamma, 0.0)
    out_offsets = batch * stride_out_batch + rows[:, None] * stride_out_row
    tl.store(out_ptr + out_offsets + cols[None, :] * stride_out_col, out, mask=mask)


def _settings(n: int) -> tuple[int, int, int]:
    """(BLOCK_M = BLOCK_N, BLOCK_K, num_warps): 64 x 64 x 32 tiles with 8 warps on a GPU-sized
    n (80 to 122 registers in tf32, 97 to 218 in ieee, no spills; 4 warps needed up to 255),
    smaller tiles for small n (tl.dot needs at least 16)."""
    block = min(64, max(16, triton.next_power_of_2(n)))
    return block, min(32, block), 8 if block == 64 else 4


@triton_op("fastgen::ns_fused_gemm", mutates_args=())
def _fused_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    has_c: bool,
    alpha: float,
    beta: float,
    gamma: float,
    input_precision: str,
) -> torch.Tensor:
    batch, n, _ = a.shape
    out = new_empty((batch, n, n), torch.float32, a.device)
    if out.numel() == 0:
        return out
    block, block_k, num_warps = _settings(n)
    grid = (triton.cdiv(n, block), triton.cdiv(n, block), batch)
    with device_guard(a):
        wrap_triton(_fused_gemm_kernel)[grid](
            a_ptr=a,
            b_ptr=b,
            c_ptr=c,
            out_ptr=out,
            n=n,
            stride_a_batch=a.stride(0),
            stride_a_row=a.stride(1),
            stride_a_col=a.stride(2),
            stride_b_batch=b.stride(0),
            stride_b_row=b.stride(1),
            stride_b_col=b.stride(2),
            stride_c_batch=c.stride(0),
            stride_c_row=c.stride(1),
            stride_c_col=c.stride(2),
            stride_out_batch=out.stride(0),
            stride_out_row=out.stride(1),
            stride_out_col=out.stride(2),
            alpha=float(alpha),
            beta=float(beta),
            gamma=float(gamma),
            HAS_C=has_c,
            INPUT_PRECISION=input_precision,
            BLOCK_M=block,
            BLOCK_N=block,
            BLOCK_K=block_k,
            num_warps=num_warps,
        )
    return out


def fused_gemm(a, b, c, alpha, beta, gamma, input_precision=DEFAULT_INPUT_PRECISION):
    """``alpha a @ b + beta c + gamma I`` for float32 ``(B, n, n)`` tensors (``c`` may be
    ``None``); any strides. Returns a new contiguous float32 ``(B, n, n)`` tensor."""
    if input_precision not in INPUT_PRECISIONS:
        raise ValueError(
            f"input_precision must be one of {INPUT_PRECISIONS}, got {input_precision!r}"
        )
    for name, value in (("a", a), ("b", b), ("c", c)):
        if value is None:
            continue
        if value.dtype != torch.float32 or value.dim() != 3 or value.shape != a.shape:
            raise ValueError(
                f"{name} must be float32 (B, n, n) like a {tuple(a.shape)}, got "
                f"{value.dtype} {tuple(value.shape)}"
            )
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"a must be square (B, n, n), got {tuple(a.shape)}")
    has_c = c is not None
    return _fused_gemm(a, b, c if has_c else a, has_c, alpha, beta, gamma, input_precision)


# Representative compilations for profiling.aot: the GPU tile, both precisions, with and without C.
AOT_CONFIGS = [
    AotConfig(
        _fused_gemm_kernel,
        constexprs=dict(
            HAS_C=has_c,
            INPUT_PRECISION=precision,
            BLOCK_M=block,
            BLOCK_N=block,
            BLOCK_K=block_k,
        ),
        types=dict(alpha="fp32", beta="fp32", gamma="fp32"),
        num_warps=num_warps,
        label=f"n=2048 {block}x{block}x{block_k} {precision}{' +C' if has_c else ''}",
    )
    for block, block_k, num_warps in [_settings(2048)]
    for precision, has_c in (("tf32", False), ("tf32", True), ("ieee", False), ("ieee", True))
]
