"""Triton helpers and constants shared by the kernels: the tile matmul of the matmul-shaped
kernels (Newton-Schulz, MMD, k-NN) and ``LOG2E`` for ``exp2``-based exponentials (MMD, Sinkhorn)."""

from __future__ import annotations

import triton
import triton.language as tl

# log2(e): exp(x) = exp2(x * LOG2E), exp2 being the GPU's native instruction.
LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def _tile_matmul(
    a_rows,  # [BLOCK_M, 1] pointers to the tile's rows of A
    stride_a_k,
    row_mask,  # [BLOCK_M]
    b_cols,  # [1, BLOCK_N] pointers to the tile's columns of B
    stride_b_k,
    col_mask,  # [BLOCK_N]
    n_k,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """``[BLOCK_M, BLOCK_N]`` float32 tile of ``A @ B`` over the shared dimension ``n_k``.

    ``a_rows``: ``[BLOCK_M, 1]`` pointers to the tile's rows of A (``stride_a_k`` between
    their elements); ``b_cols``: ``[1, BLOCK_N]`` pointers to its columns of B. Out-of-range
    rows, columns and the ragged last ``k`` step load as 0. Inputs of any float dtype are
    multiplied in float32 (``tl.dot`` needs one dtype)."""
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, n_k, BLOCK_K):
        ks = k + tl.arange(0, BLOCK_K)
        k_mask = ks < n_k
        a_mask = row_mask[:, None] & k_mask[None, :]
        b_mask = k_mask[:, None] & col_mask[None, :]
        a = tl.load(a_rows + ks[None, :] * stride_a_k, mask=a_mask, other=0.0)
        b = tl.load(b_cols + ks[:, None] * stride_b_k, mask=b_mask, other=0.0)
        acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision=INPUT_PRECISION)
    return acc
