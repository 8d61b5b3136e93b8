"""Sum of kernel values ``sum_ij k(x_i, y_j)`` without the ``N x M`` kernel matrix.

The unbiased MMD^2 (:func:`fastgen.metrics.mmd2_unbiased`) needs three such sums (``XX`` and
``YY`` without their diagonals, ``XY``). Each program computes one ``BLOCK_M x BLOCK_N`` tile
of ``X Y^T`` with ``tl.dot`` (:func:`fastgen.kernels.tiles._tile_matmul`), applies the kernel
in registers, ``(gamma <x, y> + coef0)^degree`` or ``exp(-gamma |x - y|^2)`` (from the squared
norms, ``|x|^2 + |y|^2 - 2 <x, y>`` clamped at 0), and writes the tile's float32 sum to its
slot of a ``(cdiv(N, BLOCK_M), cdiv(M, BLOCK_N))`` buffer that torch then sums in float64: no
atomics, so the result is deterministic, and memory is ``N M / 4096`` floats instead of
``N M``. For ``X = Y`` (``SYMMETRIC``) only tiles on or above the block diagonal compute;
off-diagonal ones count twice and the diagonal elements ``k(x_i, x_i)`` are left out.

``INPUT_PRECISION`` is ``"ieee"`` by default, on GPUs too: MMD^2 is a difference of sums of
order 1 that is often 1e-3 of them, so tf32's 1e-3 relative products would leave no digits.

Cost for ``N = M = 50,000``, ``D = 2048``: ``2 N^2 D`` = 10 TFLOP per full sum (half that
with symmetry), against reading each row of ``Y`` once per row-block of ``X``:
compute-bound on any GPU; its floor is the float32 FMA rate (about 60 TFLOP/s on an H100).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .tiles import LOG2E, _tile_matmul
from .utils import AotConfig, checked_grid, device_guard, new_empty

# The KERNEL codes: tl.constexpr, because jit code reads only constexpr globals; the launcher
# passes their plain values.
KERNEL_POLYNOMIAL = tl.constexpr(0)
KERNEL_RBF = tl.constexpr(1)
KERNEL_CODES = {"polynomial": KERNEL_POLYNOMIAL.value, "rbf": KERNEL_RBF.value}
BLOCK = 64
# K in steps of 16, not 32: with 32 the runtime variants whose feature count is not a multiple
# of 16 spill 16-24 B on sm_90 (Triton 3.9, capped at 128 registers). Tiles of 64 x 64 at 8
# warps: in the runtime variants, 32 x 32 at 4 warps spilled 16 B (polynomial, symmetric,
# sm_90, Triton 3.9) and 64 x 64 at 4 warps spilled in several under Triton 3.6 and 3.9.
BLOCK_K = 16
NUM_WARPS = 8


@triton.jit
def _kernel_sum_kernel(
    x_ptr,  # (N, D), strided
    y_ptr,  # (M, D), strided
    x_sq_ptr,  # (N,) float32 |x_i|^2; unused by the polynomial kernel
    y_sq_ptr,  # (M,) float32 |y_j|^2; unused by the polynomial kernel
    partial_ptr,  # (cdiv(N, BLOCK_M), cdiv(M, BLOCK_N)) float32, contiguous
    n_x,
    n_y,
    d,
    stride_x_row,
    stride_x_col,
    stride_y_row,
    stride_y_col,
    degree,
    gamma,
    coef0,
    KERNEL: tl.constexpr,
    SYMMETRIC: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    # one grid axis over the (row tile, column tile) pairs, row-major like ``partial``: a
    # second axis would stop at 65,535 column tiles
    tiles_n = tl.cdiv(n_y, BLOCK_N)
    pid = tl.program_id(0).to(tl.int64)
    pid_m = pid // tiles_n
    pid_n = pid % tiles_n
    partial = partial_ptr + pid
    if SYMMETRIC and pid_n < pid_m:
        # The mirror tile (pid_n, pid_m) counts this one.
        tl.store(partial, 0.0)
        return
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask = rows < n_x
    col_mask = cols < n_y
    dots = _tile_matmul(
        x_ptr + rows[:, None] * stride_x_row,
        stride_x_col,
        row_mask,
        y_ptr + cols[None, :] * stride_y_row,
        stride_y_col,
        col_mask,
        d,
        INPUT_PRECISION,
        BLOCK_M,
        BLOCK_N,
        BLOCK_K,
    )
    if KERNEL == KERNEL_POLYNOMIAL:
        base = gamma * dots + coef0
        values = base
        for _ in range(1, degree):
            values *= base
    else:  # KERNEL_RBF
        x_sq = tl.load(x_sq_ptr + rows, mask=row_mask, other=0.0)
        y_sq = tl.load(y_sq_ptr + cols, mask=col_mask, other=0.0)
        # exp(-gamma |x - y|^2) as exp2(gamma log2(e) min(2 <x, y> - |x|^2 - |y|^2, 0)): one
        # scalar scale per tile instead of a negation and a multiply per value. With the int32
        # diagonal mask below, this keeps every runtime variant spill-free on sm_80 and sm_90
        # under Triton 3.6 and 3.9 (tl.exp of the clamped distance, with int64 indices compared,
        # spilled 8 B on sm_90 under 3.6; either change alone left a spill under 3.6 or 3.9).
        negative = 2.0 * dots - x_sq[:, None] - y_sq[None, :]
        values = tl.exp2(
            tl.minimum(negative, 0.0, propagate_nan=tl.PropagateNan.ALL) * (gamma * LOG2E)
        )
    keep = row_mask[:, None] & col_mask[None, :]
    if SYMMETRIC:
        # Square tiles: the diagonal k(x_i, x_i) lies on the diagonal of the diagonal tiles,
        # found from the int32 offsets within the tile, not the int64 indices.
        tl.static_assert(BLOCK_M == BLOCK_N)
        offsets = tl.arange(0, BLOCK_M)
        keep &= (offsets[:, None] != offsets[None, :]) | (pid_m != pid_n)
    total = tl.sum(tl.sum(tl.where(keep, values, 0.0), axis=1), axis=0)
    if SYMMETRIC and pid_n > pid_m:
        total *= 2.0
    tl.store(partial, total)


def kernel_sum_grid(n_x: int, n_y: int) -> tuple[tuple[int, int], tuple[int, ...]]:
    """The ``(row tiles, column tiles)`` of the partial sums and the launch grid: one axis
    over all tiles (a second would stop at 65,535 column tiles, 4.2M points)."""
    tiles = (triton.cdiv(n_x, BLOCK), triton.cdiv(n_y, BLOCK))
    return tiles, checked_grid(tiles[0] * tiles[1])


@triton_op("fastgen::mmd_kernel_sum", mutates_args=())
def _kernel_sum(
    x: torch.Tensor,
    y: torch.Tensor,
    kernel: int,
    degree: int,
    gamma: float,
    coef0: float,
    symmetric: bool,
    input_precision: str,
) -> torch.Tensor:
    tiles, grid = kernel_sum_grid(x.shape[0], y.shape[0])
    partial = new_empty(tiles, torch.float32, x.device)
    if partial.numel() == 0:
        return partial
    if kernel == KERNEL_RBF.value:
        x_sq = x.float().square().sum(1)
        y_sq = x_sq if symmetric else y.float().square().sum(1)
    else:  # unused by the polynomial kernel
        x_sq = y_sq = partial
    with device_guard(x):
        wrap_triton(_kernel_sum_kernel)[grid](
            x_ptr=x,
            y_ptr=y,
            x_sq_ptr=x_sq,
            y_sq_ptr=y_sq,
            partial_ptr=partial,
            n_x=x.shape[0],
            n_y=y.shape[0],
            d=x.shape[1],
            stride_x_row=x.stride(0),
            stride_x_col=x.stride(1),
            stride_y_row=y.stride(0),
            stride_y_col=y.stride(1),
            degree=int(degree),
            gamma=float(gamma),
            coef0=float(coef0),
            KERNEL=kernel,
            SYMMETRIC=symmetric,
            INPUT_PRECISION=input_precision,
            BLOCK_M=BLOCK,
            BLOCK_N=BLOCK,
            BLOCK_K=BLOCK_K,
            num_warps=NUM_WARPS,
        )
    return partial


def kernel_sum(x, y, kernel, degree, gamma, coef0, input_precision="ieee"):
    """``sum_ij k(x_i, y_j)`` as a float64 0-d tensor; ``y=None`` means ``y = x`` without the
    diagonal (``sum_{i != j}``). ``x (N, D)``, ``y (M, D)``: float32 / float16 / bfloat16,
    any strides; ``kernel``: ``"polynomial"`` or ``"rbf"``."""
    symmetric = y is None
    y = x if symmetric else y
    partial = _kernel_sum(
        x, y, KERNEL_CODES[kernel], degree, gamma, coef0, symmetric, input_precision
    )
    return partial.sum(dtype=torch.float64)


# Representative compilations for profiling.aot.
AOT_CONFIGS = [
    AotConfig(
        _kernel_sum_kernel,
        constexprs=dict(
            KERNEL=code,
            SYMMETRIC=symmetric,
            INPUT_PRECISION="ieee",
            BLOCK_M=BLOCK,
            BLOCK_N=BLOCK,
            BLOCK_K=BLOCK_K,
        ),
        types=dict(gamma="fp32", coef0="fp32", degree="i32"),
        num_warps=NUM_WARPS,
        label=f"{name}{' XX' if symmetric else ' XY'}",
    )
    for name, code in KERNEL_CODES.items()
    for symmetric in (True, False)
]
