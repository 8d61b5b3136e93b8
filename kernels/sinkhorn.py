"""Online log-sum-exp softmins for log-domain Sinkhorn, and their gradient, without a cost matrix.

For row points ``x_i``, column points ``y_j`` and a column vector ``h_j``, the softmin is

    f_i = -eps log sum_j exp(h_j - C(x_i, y_j) / eps),  C = |x - y|^2 / 2 (p = 2), |x - y| (p = 1)

One program owns ``BLOCK_M`` rows and streams the columns in blocks of ``BLOCK_N``, keeping a
running maximum and sum per row (FlashAttention's online softmax, in base 2), so memory is
``O((N + M) D)``. The cost tile is computed on the fly: for ``D <= 8`` from direct differences,
one coordinate at a time (exact, and no padding of a tiny ``D`` up to ``tl.dot``'s 16); for
larger ``D`` as ``|x|^2 + |y|^2 - 2 <x, y>`` clamped at 0, with ``tl.dot`` over ``D`` in chunks
of ``BLOCK_D`` (masked, so any ``D`` up to 1024 is exact: padding columns are zeros on both
sides). ``tl.dot`` runs in ``input_precision="ieee"``: TF32's 10-bit mantissa would put errors
of ``1e-3 |x| |y| / eps`` into the exponent.

One launch serves up to four softmins of one Sinkhorn step (grid axis 1): f_ba (x against y),
g_ab (y against x), f_aa (x against x), g_bb (y against y), the order of
``fastgen.reference.sinkhorn.PAIRS_DEBIASED``; the column vectors are packed into one
``(B, total)`` tensor and so are the outputs. Axis 0 enumerates the batch and the row blocks.

The gradient kernel computes, for the same problems and an upstream gradient ``w_i``,
``w_i sum_j pi_ij dC/dx_i`` with ``pi_ij = exp(h_j - C_ij / eps + f_i / eps)`` (the forward's
``f`` normalises the rows): ``dC/dx_i = x_i - y_j`` for p = 2, ``(x_i - y_j) / |x_i - y_j|``
for p = 1 (0 under GeomLoss's clamp of the squared distance at 1e-8). Its accumulator is
``(BLOCK_M, BLOCK_D)``: for ``D > BLOCK_D`` the output columns are split over grid axis 2
(each split recomputes the cost tile: ``D / 16`` times the forward's work, 4x at D = 64).

Work per softmin pass and problem (float32, ``b = 4`` bytes): reads ``(N + M) D b + M b``,
writes ``N b`` (the points stay in L2 between row blocks, so DRAM traffic is close to this);
FLOPs about ``N M (2 D + 8)`` (the distance: ``2D`` multiply-adds; the scale, exp2, running
max and sum: ~8, exp counted as one). At N = M = 10^4, D = 3: 0.32 MB and 1.4 GFLOP per
softmin, 10^8 exponentials: compute-bound on any GPU (about 4000 FLOP/B). An H100's MUFU
throughput (exp2: 16/clk/SM x 132 SMs x 1.76 GHz = 3.7e12/s) bounds it near 27 us per
softmin, fp32 FMA (67 TFLOP/s) near 21 us. One evaluation at GeomLoss's defaults runs
``4 (len(eps_list) + 2)`` softmins, 52 for the bench's clouds (diameter 13.8, blur 0.05,
scaling 0.5: 13 launches of 4): a floor of about 1.4 ms plus one gradient pass. At D = 64
the distance dominates: 1.4e10 FLOP per softmin, 0.2 ms at the fp32 rate (the dot runs in
IEEE fp32, without tensor cores).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .tiles import LOG2E
from .utils import AotConfig, checked_grid, device_guard, new_empty

# tl.constexpr: jit functions may read only constexpr globals.
LN2 = tl.constexpr(0.6931471805599453)
# GeomLoss's clamp of the squared distance under the square root (p = 1).
P1_SQUARED_DISTANCE_MIN = tl.constexpr(1e-8)
# Largest D served by the direct-difference path (one coordinate per step, unrolled).
SMALL_D_MAX = 8


@triton.jit
def _load_points(cloud, points, point_mask, dcols, dmask):
    """A ``[len(points), len(dcols)]`` float32 tile of a cloud's coordinates (0 outside)."""
    base, stride_n, stride_d, _ = cloud
    ptrs = base + points[:, None] * stride_n + dcols[None, :] * stride_d
    return tl.load(ptrs, mask=point_mask[:, None] & dmask[None, :], other=0.0).to(tl.float32)


@triton.jit
def _squared_distances(
    row_cloud,  # (base, stride_n, stride_d, n_points): the rows' points, (n_points, D)
    col_cloud,  # the columns' points, the same way
    rows,
    row_mask,
    cols,
    col_mask,
    dim,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    SMALL_D: tl.constexpr,
):
    """``|x_i - y_j|^2`` for a ``[BLOCK_M, BLOCK_N]`` tile (masked rows and columns read 0)."""
    x_ptr, stride_xn, stride_xd, _ = row_cloud
    y_ptr, stride_yn, stride_yd, _ = col_cloud
    if SMALL_D:
        sq = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for d in tl.static_range(BLOCK_D):
            # (a tensor comparison: the interpreter wants tensor masks)
            x_mask = row_mask & ((rows * 0 + d) < dim)
            y_mask = col_mask & ((cols * 0 + d) < dim)
            xd = tl.load(x_ptr + rows * stride_xn + d * stride_xd, mask=x_mask, other=0.0)
            yd = tl.load(y_ptr + cols * stride_yn + d * stride_yd, mask=y_mask, other=0.0)
            diff = xd.to(tl.float32)[:, None] - yd.to(tl.float32)[None, :]
            sq += diff * diff
    else:
        dot = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        xx = tl.zeros((BLOCK_M,), dtype=tl.float32)
        yy = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for d0 in range(0, dim, BLOCK_D):
            dcols = d0 + tl.arange(0, BLOCK_D)
            dmask = dcols < dim
            xt = _load_points(row_cloud, rows, row_mask, dcols, dmask)
            yt = _load_points(col_cloud, cols, col_mask, dcols, dmask)
            dot = tl.dot(xt, tl.trans(yt), dot, input_precision="ieee")
            xx += tl.sum(xt * xt, axis=1)
            yy += tl.sum(yt * yt, axis=1)
        # propagate_nan (in every clamp here): tl.maximum's default turns NaN into the other
        # operand, a NaN coordinate would become a finite distance.
        sq = tl.maximum(
            xx[:, None] + yy[None, :] - 2.0 * dot, 0.0, propagate_nan=tl.PropagateNan.ALL
        )
    return sq


@triton.jit
def _cost(sq, P: tl.constexpr):
    if P == 1:
        return tl.sqrt(tl.maximum(sq, P1_SQUARED_DISTANCE_MIN, propagate_nan=tl.PropagateNan.ALL))
    else:
        return 0.5 * sq


@triton.jit
def _pick(is_y, x_cloud, y_cloud):
    """``x_cloud`` where ``is_y`` is 0, ``y_cloud`` where it is 1, element by element."""
    x_base, x_stride_n, x_stride_d, n_x = x_cloud
    y_base, y_stride_n, y_stride_d, n_y = y_cloud
    base = tl.where(is_y == 1, y_base, x_base)
    stride_n = tl.where(is_y == 1, y_stride_n, x_stride_n)
    stride_d = tl.where(is_y == 1, y_stride_d, x_stride_d)
    return base, stride_n, stride_d, tl.where(is_y == 1, n_y, n_x)


@triton.jit
def _batch_and_row_block(n_x, n_y, BLOCK_M: tl.constexpr):
    """Grid axis 0 enumerates (batch, row block) pairs, the row blocks of one batch together:
    the batch never lands on axes 1 / 2, whose CUDA limit is 65,535."""
    row_blocks = tl.cdiv(tl.maximum(n_x, n_y), BLOCK_M)
    pid = tl.program_id(0)
    return (pid // row_blocks).to(tl.int64), (pid % row_blocks).to(tl.int64)


@triton.jit
def _problem(x_cloud, y_cloud, row_block, BLOCK_M: tl.constexpr):
    """Grid axis 1's problem, 0 f_ba (x, y), 1 g_ab (y, x), 2 f_aa (x, x), 3 g_bb (y, y), for
    this program: its row and column clouds, its rows and their mask, how many columns it
    streams (the problem's, or none for a program past its rows: the grid covers the larger
    cloud), and the offsets of its column vector in the packed h and of its rows in the
    packed outputs.

    A cloud is ``(base, stride_n, stride_d, n_points)``: this batch's ``(n_points, D)`` points.
    """
    _, _, _, n_x = x_cloud
    _, _, _, n_y = y_cloud
    k = tl.program_id(1)
    row_is_y = k % 2
    col_is_y = row_is_y ^ (k < 2).to(tl.int32)
    h_start = tl.where(k >= 1, n_y, 0) + tl.where(k >= 2, n_x, 0) + tl.where(k >= 3, n_x, 0)
    out_start = tl.where(k >= 1, n_x, 0) + tl.where(k >= 2, n_y, 0) + tl.where(k >= 3, n_x, 0)
    row_cloud = _pick(row_is_y, x_cloud, y_cloud)
    col_cloud = _pick(col_is_y, x_cloud, y_cloud)
    _, _, _, n_rows = row_cloud
    _, _, _, n_cols = col_cloud
    rows = row_block * BLOCK_M + tl.arange(0, BLOCK_M)
    n_cols_run = tl.where(row_block * BLOCK_M < n_rows, n_cols, 0)
    return row_cloud, col_cloud, rows, rows < n_rows, n_cols_run, h_start, out_start


@triton.jit
def _log_weights_tile(
    row_cloud,
    col_cloud,
    h_row,  # (n_cols,) float32: the problem's column vector
    rows,
    row_mask,
    c0,
    dim,
    inv_eps,
    P: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    SMALL_D: tl.constexpr,
):
    """``(h_j - C_ij / eps) log2(e)`` for the column block at ``c0`` (-inf past the last
    column), the squared distances, and the columns."""
    _, _, _, n_cols = col_cloud
    # int64: cols * stride_n passes 2^31 for clouds of more than 2^31 coordinates
    cols = tl.arange(0, BLOCK_N).to(tl.int64) + c0
    col_mask = cols < n_cols
    sq = _squared_distances(
        row_cloud,
        col_cloud,
        rows,
        row_mask,
        cols,
        col_mask,
        dim,
        BLOCK_M,
        BLOCK_N,
        BLOCK_D,
        SMALL_D,
    )
    h = tl.load(h_row + cols, mask=col_mask, other=0.0)
    s = (h[None, :] - _cost(sq, P) * inv_eps) * LOG2E
    return tl.where(col_mask[None, :], s, float("-inf")), sq, cols, col_mask


@triton.jit
def _softmin_kernel(
    x_ptr,  # (B, N, D), strided
    y_ptr,  # (B, M, D), strided
    h_ptr,  # (B, total) float32: the problems' column vectors, packed
    out_ptr,  # (B, total_out) float32: the problems' softmins, packed
    n_x,
    n_y,
    dim,
    stride_xb,
    stride_xn,
    stride_xd,
    stride_yb,
    stride_yn,
    stride_yd,
    stride_hb,
    stride_ob,
    eps,
    P: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    SMALL_D: tl.constexpr,
):
    batch, row_block = _batch_and_row_block(n_x, n_y, BLOCK_M)
    x_cloud = (x_ptr + batch * stride_xb, stride_xn, stride_xd, n_x)
    y_cloud = (y_ptr + batch * stride_yb, stride_yn, stride_yd, n_y)
    row_cloud, col_cloud, rows, row_mask, n_cols_run, h_start, out_start = _problem(
        x_cloud, y_cloud, row_block, BLOCK_M
    )
    h_row = h_ptr + batch * stride_hb + h_start
    inv_eps = 1.0 / eps

    m = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    total = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for c0 in range(0, n_cols_run, BLOCK_N):
        s, _, _, _ = _log_weights_tile(
            row_cloud,
            col_cloud,
            h_row,
            rows,
            row_mask,
            c0,
            dim,
            inv_eps,
            P,
            BLOCK_M,
            BLOCK_N,
            BLOCK_D,
            SMALL_D,
        )
        m_new = tl.maximum(m, tl.max(s, axis=1))
        total = total * tl.exp2(m - m_new) + tl.sum(tl.exp2(s - m_new[:, None]), axis=1)
        m = m_new
    # (rows past the end have total 0: keep log2 finite there, they are not stored)
    f = -eps * LN2 * (m + tl.log2(tl.where(row_mask, total, 1.0)))
    out = out_ptr + batch * stride_ob + out_start + rows
    tl.store(out, f.to(out_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def _softmin_grad_kernel(
    x_ptr,  # (B, N, D), strided
    y_ptr,  # (B, M, D), strided
    h_ptr,  # (B, total) float32: the problems' column vectors, packed
    f_ptr,  # (B, total_out) float32: the forward's softmins, packed
    grad_f_ptr,  # (B, total_out) float32: their upstream gradients, packed
    grad_ptr,  # (B, total_out, D) float32: the row points' gradients, packed
    n_x,
    n_y,
    dim,
    stride_xb,
    stride_xn,
    stride_xd,
    stride_yb,
    stride_yn,
    stride_yd,
    stride_hb,
    stride_fb,
    stride_gfb,
    stride_gb,
    stride_gn,
    eps,
    P: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    SMALL_D: tl.constexpr,
):
    batch, row_block = _batch_and_row_block(n_x, n_y, BLOCK_M)
    d0 = tl.program_id(2) * BLOCK_D
    inv_eps = 1.0 / eps
    x_cloud = (x_ptr + batch * stride_xb, stride_xn, stride_xd, n_x)
    y_cloud = (y_ptr + batch * stride_yb, stride_yn, stride_yd, n_y)
    row_cloud, col_cloud, rows, row_mask, n_cols_run, h_start, out_start = _problem(
        x_cloud, y_cloud, row_block, BLOCK_M
    )
    h_row = h_ptr + batch * stride_hb + h_start
    f = tl.load(f_ptr + batch * stride_fb + out_start + rows, mask=row_mask, other=0.0)
    # log2 of the row normaliser: pi_ij = exp2(s_ij + f_i log2(e) / eps).
    shift = f.to(tl.float32) * inv_eps * LOG2E
    dcols = d0 + tl.arange(0, BLOCK_D)
    dmask = dcols < dim

    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    weight_sum = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for c0 in range(0, n_cols_run, BLOCK_N):
        s, sq, cols, col_mask = _log_weights_tile(
            row_cloud,
            col_cloud,
            h_row,
            rows,
            row_mask,
            c0,
            dim,
            inv_eps,
            P,
            BLOCK_M,
            BLOCK_N,
            BLOCK_D,
            SMALL_D,
        )
        w = tl.exp2(s + shift[:, None])
        if P == 1:
            # 0 under the clamp, as GeomLoss; a NaN distance stays NaN.
            w = tl.where(
                sq < P1_SQUARED_DISTANCE_MIN,
                0.0,
                w
                / tl.sqrt(
                    tl.maximum(sq, P1_SQUARED_DISTANCE_MIN, propagate_nan=tl.PropagateNan.ALL)
                ),
            )
        weight_sum += tl.sum(w, axis=1)
        yt = _load_points(col_cloud, cols, col_mask, dcols, dmask)
        if SMALL_D:
            # tl.dot needs 16 columns: a tiny D accumulates one coordinate at a time.
            for d in tl.static_range(BLOCK_D):
                yd = tl.sum(tl.where(tl.arange(0, BLOCK_D)[None, :] == d, yt, 0.0), axis=1)
                wy = tl.sum(w * yd[None, :], axis=1)
                acc += tl.where(tl.arange(0, BLOCK_D)[None, :] == d, wy[:, None], 0.0)
        else:
            acc = tl.dot(w, yt, acc, input_precision="ieee")
    xt = _load_points(row_cloud, rows, row_mask, dcols, dmask)
    grad_f_row = grad_f_ptr + batch * stride_gfb + out_start
    grad_f = tl.load(grad_f_row + rows, mask=row_mask, other=0.0).to(tl.float32)
    grad = grad_f[:, None] * (xt * weight_sum[:, None] - acc)
    out = grad_ptr + batch * stride_gb + (out_start + rows[:, None]) * stride_gn + dcols[None, :]
    tl.store(out, grad.to(grad_ptr.dtype.element_ty), mask=row_mask[:, None] & dmask[None, :])


def _settings(dim: int) -> dict:
    """The constexprs ``BLOCK_M, BLOCK_N, BLOCK_D, SMALL_D`` of both kernels, chosen from the
    register counts of ``python -m profiling.aot`` over every runtime variant and the
    representative ones, sm_80 and sm_90, Triton 3.6 and 3.9 (:func:`_num_warps` gives the
    warps). Direct differences (D <= 8) at 64 x 32 and 8 warps: 64-190 registers (at 4 warps
    unit-stride variants spill 8 B on sm_90 under 3.9). The ``tl.dot`` path, forward and
    backward, at 16 x 16 x 16 and 4 warps: 70-108 registers; 32 x 32 x 32 spills 8-24 B
    under 3.6 at 4 or 8 warps (ptxas caps it at 128 or 168 registers)."""
    if dim <= SMALL_D_MAX:
        return dict(BLOCK_M=64, BLOCK_N=32, BLOCK_D=triton.next_power_of_2(dim), SMALL_D=True)
    return dict(BLOCK_M=16, BLOCK_N=16, BLOCK_D=16, SMALL_D=False)


def _num_warps(dim: int) -> int:
    """Warps per program (see :func:`_settings`)."""
    return 8 if dim <= SMALL_D_MAX else 4


def _n_problems(n_x: int, n_y: int, n_h: int) -> int:
    """Number of problems from the packed h length (M, M + N, M + 2N or 2M + 2N)."""
    for k, total in ((1, n_y), (2, n_y + n_x), (3, n_y + 2 * n_x), (4, 2 * n_y + 2 * n_x)):
        if n_h == total:
            return k
    raise ValueError(f"packed h of length {n_h} fits no prefix of (f_ba, g_ab, f_aa, g_bb)")


def _out_length(n_x, n_y, k):
    return (n_x, n_x + n_y, 2 * n_x + n_y, 2 * n_x + 2 * n_y)[k - 1]


def _shared_arguments(x, y, h, eps, p) -> dict:
    """The arguments both kernels take, by name; ``eps`` is pinned to a Python float (float32
    in the kernels)."""
    return dict(
        x_ptr=x,
        y_ptr=y,
        h_ptr=h,
        n_x=x.shape[1],
        n_y=y.shape[1],
        dim=x.shape[2],
        stride_xb=x.stride(0),
        stride_xn=x.stride(1),
        stride_xd=x.stride(2),
        stride_yb=y.stride(0),
        stride_yn=y.stride(1),
        stride_yd=y.stride(2),
        stride_hb=h.stride(0),
        eps=float(eps),
        P=p,
    )


def softmin_grid(batch, n_x, n_y, k, dim, blocks, backward=False) -> tuple[int, int, int]:
    """``(batch x row blocks, problems, column splits)``: the batch shares axis 0 with the row
    blocks (axes 1 and 2 stop at 65,535); the backward splits ``D`` over axis 2
    (``cdiv(D, BLOCK_D)`` <= 64 for D <= 1024)."""
    row_blocks = triton.cdiv(max(n_x, n_y), blocks["BLOCK_M"])
    splits = triton.cdiv(dim, blocks["BLOCK_D"]) if backward else 1
    return checked_grid(batch * row_blocks, k, splits)


@triton_op("fastgen::sinkhorn_softmins", mutates_args=())
def softmins_forward(
    x: torch.Tensor,
    y: torch.Tensor,
    h: torch.Tensor,
    eps: float,
    p: int,
) -> torch.Tensor:
    """``x (B, N, D)``, ``y (B, M, D)``, packed column vectors ``h (B, total)`` (float32) of
    the first ``k`` problems; returns the packed undamped softmins ``(B, total_out)``."""
    batch, n_x, dim = x.shape
    n_y = y.shape[1]
    k = _n_problems(n_x, n_y, h.shape[1])
    out = new_empty((batch, _out_length(n_x, n_y, k)), torch.float32, x.device)
    blocks = _settings(dim)
    grid = softmin_grid(batch, n_x, n_y, k, dim, blocks)
    with device_guard(x):
        wrap_triton(_softmin_kernel)[grid](
            out_ptr=out,
            stride_ob=out.stride(0),
            num_warps=_num_warps(dim),
            **_shared_arguments(x, y, h, eps, p),
            **blocks,
        )
    return out


@triton_op("fastgen::sinkhorn_softmins_backward", mutates_args=())
def softmins_backward(
    x: torch.Tensor,
    y: torch.Tensor,
    h: torch.Tensor,
    f: torch.Tensor,
    grad_f: torch.Tensor,
    eps: float,
    p: int,
) -> torch.Tensor:
    """Row gradients ``(B, total_out, D)`` (float32) of the packed softmins ``f`` for the
    packed upstream gradients ``grad_f``."""
    batch, n_x, dim = x.shape
    n_y = y.shape[1]
    k = _n_problems(n_x, n_y, h.shape[1])
    grad = new_empty((batch, f.shape[1], dim), torch.float32, x.device)
    blocks = _settings(dim)
    grid = softmin_grid(batch, n_x, n_y, k, dim, blocks, backward=True)
    with device_guard(x):
        wrap_triton(_softmin_grad_kernel)[grid](
            f_ptr=f,
            grad_f_ptr=grad_f,
            grad_ptr=grad,
            num_warps=_num_warps(dim),
            stride_fb=f.stride(0),
            stride_gfb=grad_f.stride(0),
            stride_gb=grad.stride(0),
            stride_gn=grad.stride(1),
            **_shared_arguments(x, y, h, eps, p),
            **blocks,
        )
    return grad


class SoftminsTriton(torch.autograd.Function):
    """Autograd glue with ``fastgen.reference.sinkhorn.Softmins``' contract: gradients into
    the row points only; the backward recomputes the cost from the saved points."""

    @staticmethod
    def forward(ctx, x, y, eps, p, pairs, *hs):
        h = torch.cat([t.float() for t in hs], dim=1)
        out = softmins_forward(x, y, h, float(eps), int(p))
        ctx.save_for_backward(x, y, h, out)
        ctx.settings = (float(eps), int(p), len(hs))
        n_x, n_y = x.shape[1], y.shape[1]
        sizes = [(n_x, n_y)[r] for r, _ in pairs]
        return tuple(t.to(x.dtype) for t in out.split(sizes, dim=1))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_outs):
        eps, p, k = ctx.settings
        x, y, h, out = ctx.saved_tensors
        n_x, n_y = x.shape[1], y.shape[1]
        sizes = [n_x, n_y, n_x, n_y][:k]
        # a problem whose output did not reach the loss has no upstream gradient: zeros
        grad_f = torch.cat(
            [
                torch.zeros_like(o) if g is None else g.float()
                for g, o in zip(grad_outs, out.split(sizes, 1), strict=True)
            ],
            dim=1,
        )
        grad = softmins_backward(x, y, h, out, grad_f, eps, p)
        parts = grad.split(sizes, dim=1)
        grad_x = parts[0] if k < 3 else parts[0] + parts[2]
        grad_y = None
        if k >= 2:
            grad_y = parts[1] if k < 4 else parts[1] + parts[3]
        grad_y = grad_y.to(y.dtype) if grad_y is not None else None
        return (grad_x.to(x.dtype), grad_y, None, None, None, *[None] * k)


def softmins_triton(x, y, eps, p, pairs, hs):
    """Same contract as ``fastgen.reference.sinkhorn.softmins_reference``: ``pairs`` must be
    a prefix of ``(f_ba, g_ab, f_aa, g_bb)``'s pairs."""
    expected = ((0, 1), (1, 0), (0, 0), (1, 1))[: len(pairs)]
    if tuple(pairs) != expected:
        raise ValueError(
            f"pairs must be a prefix of {((0, 1), (1, 0), (0, 0), (1, 1))}, got {pairs}"
        )
    return SoftminsTriton.apply(x, y, eps, p, tuple(pairs), *hs)


# Representative compilations for profiling.aot: tiny D (direct differences), D = 64 (tl.dot)
# and D = 1024 (chunked tl.dot), p = 2 and p = 1.
AOT_CONFIGS = [
    AotConfig(
        kernel,
        constexprs=dict(P=p, **_settings(dim)),
        types=dict(eps="fp32"),
        num_warps=_num_warps(dim),
        label=f"D={dim} p={p}",
    )
    for kernel in (_softmin_kernel, _softmin_grad_kernel)
    for dim, p in ((3, 2), (3, 1), (64, 2), (1024, 1))
]
