"""k-nearest-neighbour distances and ball counts without the ``N x M`` distance matrix: the
hot path of precision, recall, density and coverage (:func:`fastgen.metrics.compute_prdc`).

Each program owns ``BLOCK_M`` rows of ``X`` and walks all of ``Y`` in ``BLOCK_N``-row tiles.
A tile of squared distances is ``|x|^2 + |y|^2 - 2 <x, y>`` with ``<x, y>`` from ``tl.dot``
(:func:`fastgen.kernels.tiles._tile_matmul`) in float32 with ``INPUT_PRECISION="ieee"``
(tf32's 10-bit mantissa would move points across ball boundaries: the comparisons need the
distances, not only their ranking, to float32 accuracy), clamped at 0 and snapped to 0 below
the expansion's rounding bound ``D eps (|x|^2 + |y|^2)`` exactly as the reference
(:mod:`fastgen.reference.knn`) does, so that duplicated points are 0 apart in both.

* ``_knn_kernel`` keeps each row's ``k`` smallest squared distances so far in registers, an
  unsorted ``[BLOCK_M, BLOCK_TOP]`` tile (slots past ``k`` hold ``-inf`` so that its row
  maximum is the current ``k``-th smallest). A tile of ``Y`` is merged by at most
  ``min(k, c)`` passes, ``c`` the largest number of its entries in one row below that row's
  current ``k``-th: each pass moves every row's smallest remaining entry into the slot of its
  largest kept one when smaller. After the first few tiles ``c`` is mostly 0 or 1, so the
  merge costs little next to the ``2 D`` FLOPs per pair of the distances.
* ``_ball_count_kernel`` counts, per row ``x_i``, the ``y_j`` with ``d2(x_i, y_j) <= r2_j``
  (``Y``'s squared ball radii) and keeps the smallest ``d2(x_i, y_j)``.

Both write one value per row: no atomics, deterministic. Cost for ``N = M = 50,000``,
``D = 64``: ``2 N M D`` = 0.32 TFLOP per pass (PRDC makes four), against ``(N + M) D`` reads
per row block: compute-bound; the floor is the float32 FMA rate (about 60 TFLOP/s on an H100,
a few ms per pass). Grids are 1-D (``cdiv(N, BLOCK_M)`` programs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .tiles import _tile_matmul
from .utils import AotConfig, device_guard, new_empty

# Ahead-of-time for sm_80 / sm_90 (Triton 3.9), 8 warps, over the launchers' runtime keys:
# 32 x 64 x 16 compiles without spills (top-k kernel at most 128 / 138 registers, counts
# 128 / 80); 64 x 64 x 16 used 255 registers and spilled 16 bytes on sm_80 for D = 1 with
# k <= 8, BLOCK_K = 32 spilled 64-112 bytes on sm_80, BLOCK_K = 8 spilled 8 bytes in the
# counts kernel on sm_90.
BLOCK_M = 32
BLOCK_N = 64
BLOCK_K = 16
NUM_WARPS = 8
# Largest k the register top-k serves (BLOCK_TOP slots); PRDC uses k = 5 (Naeem et al.).
# Larger k runs on the reference: a 16-slot top-k at 32 x 64 spilled 24 B on sm_90.
MAX_K = 8
# The top-k widths the launcher creates: the powers of two from 2 to MAX_K.
BLOCK_TOPS = (2, 4, 8)
INPUT_PRECISION = "ieee"
# Relative rounding bound of the float32 expansion, per feature: the snap tolerance is
# D * FLOAT32_EPS * (|x|^2 + |y|^2).
FLOAT32_EPS = torch.finfo(torch.float32).eps


@triton.jit
def _squared_distance_tile(
    x_ptr,
    y_ptr,
    x_sq,
    y_sq_ptr,
    rows,
    row_mask,
    cols,
    col_mask,
    d,
    stride_x_row,
    stride_x_col,
    stride_y_row,
    stride_y_col,
    snap,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """``[BLOCK_M, BLOCK_N]`` float32 squared distances; ``inf`` in columns past ``M``."""
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
    y_sq = tl.load(y_sq_ptr + cols, mask=col_mask, other=0.0)
    norms = x_sq[:, None] + y_sq[None, :]
    d2 = tl.maximum(norms - 2.0 * dots, 0.0)
    d2 = tl.where(d2 <= snap * norms, 0.0, d2)
    return tl.where(col_mask[None, :], d2, float("inf"))


@triton.jit
def _knn_kernel(
    x_ptr,  # (N, D) any float dtype, any strides
    y_ptr,  # (M, D) same dtype
    x_sq_ptr,  # (N,) float32 squared norms
    y_sq_ptr,  # (M,) float32 squared norms
    out_ptr,  # (N,) float32: squared distance to the k-th nearest row of Y
    n_x,
    n_y,
    d,
    k,
    stride_x_row,
    stride_x_col,
    stride_y_row,
    stride_y_col,
    snap,
    EXCLUDE_SELF: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_TOP: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < n_x
    x_sq = tl.load(x_sq_ptr + rows, mask=row_mask, other=0.0)
    slots = tl.arange(0, BLOCK_TOP)
    empty = tl.where(slots < k, float("inf"), float("-inf"))
    best = tl.zeros((BLOCK_M, BLOCK_TOP), dtype=tl.float32) + empty[None, :]
    tile_cols = tl.arange(0, BLOCK_N)
    for start in range(0, n_y, BLOCK_N):
        cols = start + tile_cols.to(tl.int64)
        col_mask = cols < n_y
        d2 = _squared_distance_tile(
            x_ptr,
            y_ptr,
            x_sq,
            y_sq_ptr,
            rows,
            row_mask,
            cols,
            col_mask,
            d,
            stride_x_row,
            stride_x_col,
            stride_y_row,
            stride_y_col,
            snap,
            INPUT_PRECISION,
            BLOCK_M,
            BLOCK_N,
            BLOCK_K,
        )
        if EXCLUDE_SELF:
            d2 = tl.where(rows[:, None] == cols[None, :], float("inf"), d2)
        kth = tl.max(best, axis=1)
        below = tl.sum((d2 < kth[:, None]).to(tl.int32), axis=1)
        passes = tl.minimum(tl.max(below, axis=0), k)
        for _ in range(0, passes):
            smallest = tl.min(d2, axis=1)
            at_smallest = tl.argmin(d2, axis=1)
            largest_kept = tl.max(best, axis=1)
            at_largest = tl.argmax(best, axis=1)
            replace = (slots[None, :] == at_largest[:, None]) & (smallest < largest_kept)[:, None]
            best = tl.where(replace, smallest[:, None], best)
            d2 = tl.where(tile_cols[None, :] == at_smallest[:, None], float("inf"), d2)
    tl.store(out_ptr + rows, tl.max(best, axis=1), mask=row_mask)


@triton.jit
def _ball_count_kernel(
    x_ptr,  # (N, D) any float dtype, any strides
    y_ptr,  # (M, D) same dtype
    x_sq_ptr,  # (N,) float32 squared norms
    y_sq_ptr,  # (M,) float32 squared norms
    radii_sq_ptr,  # (M,) float32 squared ball radii of Y
    count_ptr,  # (N,) int32: #{j: d2(x_i, y_j) <= radii_sq_j}
    nearest_ptr,  # (N,) float32: min_j d2(x_i, y_j)
    n_x,
    n_y,
    d,
    stride_x_row,
    stride_x_col,
    stride_y_row,
    stride_y_col,
    snap,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < n_x
    x_sq = tl.load(x_sq_ptr + rows, mask=row_mask, other=0.0)
    count = tl.zeros((BLOCK_M,), dtype=tl.int32)
    nearest = tl.full((BLOCK_M,), float("inf"), dtype=tl.float32)
    for start in range(0, n_y, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N).to(tl.int64)
        col_mask = cols < n_y
        d2 = _squared_distance_tile(
            x_ptr,
            y_ptr,
            x_sq,
            y_sq_ptr,
            rows,
            row_mask,
            cols,
            col_mask,
            d,
            stride_x_row,
            stride_x_col,
            stride_y_row,
            stride_y_col,
            snap,
            INPUT_PRECISION,
            BLOCK_M,
            BLOCK_N,
            BLOCK_K,
        )
        # masked columns have radius -inf: never inside
        radii_sq = tl.load(radii_sq_ptr + cols, mask=col_mask, other=float("-inf"))
        count += tl.sum((d2 <= radii_sq[None, :]).to(tl.int32), axis=1)
        nearest = tl.minimum(nearest, tl.min(d2, axis=1))
    tl.store(count_ptr + rows, count, mask=row_mask)
    tl.store(nearest_ptr + rows, nearest, mask=row_mask)


def _squared_norms(x: torch.Tensor) -> torch.Tensor:
    return x.float().square().sum(1)


@triton_op("fastgen::knn", mutates_args=())
def knn_triton(x: torch.Tensor, y: torch.Tensor, k: int, exclude_self: bool) -> torch.Tensor:
    """``(N,)`` float32 squared distance from each row of ``x (N, D)`` to its ``k``-th nearest
    row of ``y (M, D)`` (``k <= MAX_K``), as :func:`fastgen.reference.knn.knn_reference`."""
    out = new_empty((x.shape[0],), torch.float32, x.device)
    if x.shape[0] == 0:
        return out
    x_sq = _squared_norms(x)
    y_sq = x_sq if exclude_self else _squared_norms(y)
    with device_guard(x):
        wrap_triton(_knn_kernel)[(triton.cdiv(x.shape[0], BLOCK_M),)](
            x_ptr=x,
            y_ptr=y,
            x_sq_ptr=x_sq,
            y_sq_ptr=y_sq,
            out_ptr=out,
            n_x=x.shape[0],
            n_y=y.shape[0],
            d=x.shape[1],
            k=k,
            stride_x_row=x.stride(0),
            stride_x_col=x.stride(1),
            stride_y_row=y.stride(0),
            stride_y_col=y.stride(1),
            snap=float(x.shape[1] * FLOAT32_EPS),
            EXCLUDE_SELF=exclude_self,
            INPUT_PRECISION=INPUT_PRECISION,
            BLOCK_M=BLOCK_M,
            BLOCK_N=BLOCK_N,
            BLOCK_K=BLOCK_K,
            BLOCK_TOP=max(2, triton.next_power_of_2(k)),
            num_warps=NUM_WARPS,
        )
    return out


@triton_op("fastgen::ball_counts", mutates_args=())
def ball_counts_triton(
    x: torch.Tensor, y: torch.Tensor, radii_sq: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of ``x (N, D)``: ``#{j: d2(x_i, y_j) <= radii_sq_j}`` (int32 ``(N,)``) and
    ``min_j d2(x_i, y_j)`` (float32 ``(N,)``), as
    :func:`fastgen.reference.knn.ball_counts_reference`."""
    count = new_empty((x.shape[0],), torch.int32, x.device)
    nearest = new_empty((x.shape[0],), torch.float32, x.device)
    if x.shape[0] == 0:
        return count, nearest
    with device_guard(x):
        wrap_triton(_ball_count_kernel)[(triton.cdiv(x.shape[0], BLOCK_M),)](
            x_ptr=x,
            y_ptr=y,
            x_sq_ptr=_squared_norms(x),
            y_sq_ptr=_squared_norms(y),
            radii_sq_ptr=radii_sq.float(),
            count_ptr=count,
            nearest_ptr=nearest,
            n_x=x.shape[0],
            n_y=y.shape[0],
            d=x.shape[1],
            stride_x_row=x.stride(0),
            stride_x_col=x.stride(1),
            stride_y_row=y.stride(0),
            stride_y_col=y.stride(1),
            snap=float(x.shape[1] * FLOAT32_EPS),
            INPUT_PRECISION=INPUT_PRECISION,
            BLOCK_M=BLOCK_M,
            BLOCK_N=BLOCK_N,
            BLOCK_K=BLOCK_K,
            num_warps=NUM_WARPS,
        )
    return count, nearest


# Every compilation the launchers create, for profiling.aot.
AOT_CONFIGS = [
    AotConfig(
        _knn_kernel,
        constexprs=dict(
            EXCLUDE_SELF=exclude_self,
            INPUT_PRECISION=INPUT_PRECISION,
            BLOCK_M=BLOCK_M,
            BLOCK_N=BLOCK_N,
            BLOCK_K=BLOCK_K,
            BLOCK_TOP=block_top,
        ),
        types=dict(snap="fp32"),
        num_warps=NUM_WARPS,
        label=f"top {block_top}{' self' if exclude_self else ''}",
    )
    for exclude_self in (True, False)
    for block_top in BLOCK_TOPS
] + [
    AotConfig(
        _ball_count_kernel,
        constexprs=dict(
            INPUT_PRECISION=INPUT_PRECISION,
            BLOCK_M=BLOCK_M,
            BLOCK_N=BLOCK_N,
            BLOCK_K=BLOCK_K,
        ),
        types=dict(snap="fp32", count_ptr="*i32"),
        num_warps=NUM_WARPS,
        label="counts",
    )
]
