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

from .tiles import _tile_matmul
from .utils import AotConfig, device_guard, new_empty

# The KERNEL codes: tl.constexpr, because jit code reads only constexpr globals; the launcher
# passes their plain values.
KERNEL_POLYNOMIAL = tl.constexpr(0)
KERNEL_RBF = tl.constexpr(1)
KERNEL_CODES = {"polynomial": KERNEL_POLYNOMIAL.value, "rbf": KERNEL_RBF.value}
BLOCK = 64
BLOCK_K = 32
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
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    partial = partial_ptr + pid_m.to(tl.int64) * tl.num_programs(1) + pid_n
    if SYMMETRIC and pid_n < pid_m:
        # The mirror tile (pid_n, pid_m) counts this one.
        tl.store(partial, 0.0)
        return
    rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
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
        distance = tl.maximum(x_sq[:, None] + y_sq[None, :] - 2.0 * dots, 0.0)
        values = tl.exp(-gamma * distance)
    keep = row_mask[:, None] & col_mask[None, :]
    if SYMMETRIC:
        keep &= rows[:, None] != cols[None, :]
    total = tl.sum(tl.sum(tl.where(keep, values, 0.0), axis=1), axis=0)
    if SYMMETRIC and pid_n > pid_m:
        total *= 2.0
    tl.store(partial, total)


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
    grid = (triton.cdiv(x.shape[0], BLOCK), triton.cdiv(y.shape[0], BLOCK))
    partial = new_empty(grid, torch.float32, x.device)
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
