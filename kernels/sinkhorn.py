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
``(B, total)`` tensor and so are the outputs. Axis 2 is the batch.

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

from .utils import AotConfig, device_guard, new_empty

# constexpr: jit functions may read only constexpr globals.
LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)
# Largest D served by the direct-difference path (one coordinate per step, unrolled).
SMALL_D_MAX = 8
# GeomLoss's clamp of the squared distance under the square root (p = 1).
P1_SQUARED_DISTANCE_MIN = 1e-8


@triton.jit
def _squared_distances(x_ptr, y_ptr, rows, row_mask, cols, col_mask, dim, stride_xn, stride_xd,
                       stride_yn, stride_yd, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                       BLOCK_D: tl.constexpr, SMALL_D: tl.constexpr):  # fmt: skip
    """``|x_i - y_j|^2`` for a ``[BLOCK_M, BLOCK_N]`` tile (masked rows and columns read 0)."""
    if SMALL_D:
        sq = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for d in tl.static_range(BLOCK_D):
            # (a tensor comparison: the interpreter wants tensor masks)
            x_mask = row_mask & ((rows * 0 + d) < dim)
            y_mask = col_mask & ((cols * 0 + d) < dim)
            xd = tl.load(x_ptr + rows * stride_xn + d * stride_xd, mask=x_mask,
                         other=0.0).to(tl.float32)  # fmt: skip
            yd = tl.load(y_ptr + cols * stride_yn + d * stride_yd, mask=y_mask,
                         other=0.0).to(tl.float32)  # fmt: skip
            diff = xd[:, None] - yd[None, :]
            sq += diff * diff
    else:
        dot = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        xx = tl.zeros((BLOCK_M,), dtype=tl.float32)
        yy = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for d0 in range(0, dim, BLOCK_D):
            dcols = d0 + tl.arange(0, BLOCK_D)
            dmask = dcols < dim
            x_mask = row_mask[:, None] & dmask[None, :]
            y_mask = col_mask[:, None] & dmask[None, :]
            xt = tl.load(x_ptr + rows[:, None] * stride_xn + dcols[None, :] * stride_xd,
                         mask=x_mask, other=0.0).to(tl.float32)  # fmt: skip
            yt = tl.load(y_ptr + cols[:, None] * stride_yn + dcols[None, :] * stride_yd,
                         mask=y_mask, other=0.0).to(tl.float32)  # fmt: skip
            dot = tl.dot(xt, tl.trans(yt), dot, input_precision="ieee")
            xx += tl.sum(xt * xt, axis=1)
            yy += tl.sum(yt * yt, axis=1)
        sq = tl.maximum(xx[:, None] + yy[None, :] - 2.0 * dot, 0.0)
    return sq


@triton.jit
def _cost(sq, P: tl.constexpr):
    if P == 1:
        return tl.sqrt(tl.maximum(sq, 1e-8))
    else:
        return 0.5 * sq


@triton.jit
def _problem(n_x, n_y):
    """Rows / columns (0: x, 1: y) and offsets into the packed h and outputs of grid axis 1's
    problem: 0 f_ba (x, y), 1 g_ab (y, x), 2 f_aa (x, x), 3 g_bb (y, y)."""
    k = tl.program_id(1)
    row_is_y = k % 2
    col_is_y = row_is_y ^ (k < 2).to(tl.int32)
    h_start = tl.where(k >= 1, n_y, 0) + tl.where(k >= 2, n_x, 0) + tl.where(k >= 3, n_x, 0)
    out_start = tl.where(k >= 1, n_x, 0) + tl.where(k >= 2, n_y, 0) + tl.where(k >= 3, n_x, 0)
    n_rows = tl.where(row_is_y == 1, n_y, n_x)
    n_cols = tl.where(col_is_y == 1, n_y, n_x)
    return row_is_y, col_is_y, h_start, out_start, n_rows, n_cols


@triton.jit
def _point_base(x_ptr, y_ptr, is_y, batch, stride_xb, stride_yb):
    return tl.where(is_y == 1, y_ptr + batch * stride_yb, x_ptr + batch * stride_xb)


@triton.jit
def _program_setup(x_ptr, y_ptr, h_ptr, n_x, n_y, batch, stride_xb, stride_xn, stride_xd,
                   stride_yb, stride_yn, stride_yd, stride_hb, BLOCK_M: tl.constexpr):  # fmt: skip
    """What both kernels need of their program: its rows of grid axis 1's problem, the row
    and column clouds (bases and strides), the column potential, the output offset, the
    number of columns, and how many of them to stream (0 for programs past the problem's
    rows: the grid covers the larger cloud)."""
    row_is_y, col_is_y, h_start, out_start, n_rows, n_cols = _problem(n_x, n_y)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < n_rows
    row_base = _point_base(x_ptr, y_ptr, row_is_y, batch, stride_xb, stride_yb)
    col_base = _point_base(x_ptr, y_ptr, col_is_y, batch, stride_xb, stride_yb)
    stride_rn = tl.where(row_is_y == 1, stride_yn, stride_xn)
    stride_rd = tl.where(row_is_y == 1, stride_yd, stride_xd)
    stride_cn = tl.where(col_is_y == 1, stride_yn, stride_xn)
    stride_cd = tl.where(col_is_y == 1, stride_yd, stride_xd)
    h_row = h_ptr + batch * stride_hb + h_start
    n_cols_run = tl.where(tl.program_id(0) * BLOCK_M < n_rows, n_cols, 0)
    return (rows, row_mask, row_base, col_base, stride_rn, stride_rd, stride_cn, stride_cd,
            h_row, out_start, n_cols, n_cols_run)  # fmt: skip


@triton.jit
def _log_weights_tile(x_ptr, y_ptr, h_ptr, rows, row_mask, c0, n_cols, dim, stride_xn,
                      stride_xd, stride_yn, stride_yd, inv_eps, P: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                      SMALL_D: tl.constexpr):  # fmt: skip
    """``(h_j - C_ij / eps) log2(e)`` for one column block (-inf past the last column), the
    squared distances, and the columns."""
    cols = c0 + tl.arange(0, BLOCK_N)
    col_mask = cols < n_cols
    sq = _squared_distances(x_ptr, y_ptr, rows, row_mask, cols, col_mask, dim, stride_xn,
                            stride_xd, stride_yn, stride_yd, BLOCK_M, BLOCK_N, BLOCK_D,
                            SMALL_D)  # fmt: skip
    h = tl.load(h_ptr + cols, mask=col_mask, other=0.0)
    s = (h[None, :] - _cost(sq, P) * inv_eps) * LOG2E
    return tl.where(col_mask[None, :], s, float("-inf")), sq, cols, col_mask


@triton.jit
def _softmin_kernel(
    x_ptr, y_ptr, h_ptr, out_ptr, n_x, n_y, dim, stride_xb, stride_xn, stride_xd, stride_yb,
    stride_yn, stride_yd, stride_hb, stride_ob, eps,
    P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    SMALL_D: tl.constexpr,
):  # fmt: skip
    batch = tl.program_id(2).to(tl.int64)
    (rows, row_mask, row_base, col_base, stride_rn, stride_rd, stride_cn, stride_cd, h_row,
     out_start, n_cols, n_cols_run) = _program_setup(
        x_ptr, y_ptr, h_ptr, n_x, n_y, batch, stride_xb, stride_xn, stride_xd, stride_yb,
        stride_yn, stride_yd, stride_hb, BLOCK_M)  # fmt: skip
    inv_eps = 1.0 / eps

    m = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    total = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for c0 in range(0, n_cols_run, BLOCK_N):
        s, _, _, _ = _log_weights_tile(row_base, col_base, h_row, rows, row_mask, c0, n_cols,
                                       dim, stride_rn, stride_rd, stride_cn, stride_cd,
                                       inv_eps, P, BLOCK_M, BLOCK_N, BLOCK_D,
                                       SMALL_D)  # fmt: skip
        m_new = tl.maximum(m, tl.max(s, axis=1))
        total = total * tl.exp2(m - m_new) + tl.sum(tl.exp2(s - m_new[:, None]), axis=1)
        m = m_new
    # (rows past the end have total 0: keep log2 finite there, they are not stored)
    f = -eps * LN2 * (m + tl.log2(tl.where(row_mask, total, 1.0)))
    out = out_ptr + batch * stride_ob + out_start + rows
    tl.store(out, f.to(out_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def _softmin_grad_kernel(
    x_ptr, y_ptr, h_ptr, f_ptr, grad_f_ptr, grad_ptr, n_x, n_y, dim, stride_xb, stride_xn,
    stride_xd, stride_yb, stride_yn, stride_yd, stride_hb, stride_fb, stride_gfb, stride_gb,
    stride_gn, eps, n_dsplits,
    P: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    SMALL_D: tl.constexpr,
):  # fmt: skip
    batch = (tl.program_id(2) // n_dsplits).to(tl.int64)
    d0 = (tl.program_id(2) % n_dsplits) * BLOCK_D
    (rows, row_mask, row_base, col_base, stride_rn, stride_rd, stride_cn, stride_cd, h_row,
     out_start, n_cols, n_cols_run) = _program_setup(
        x_ptr, y_ptr, h_ptr, n_x, n_y, batch, stride_xb, stride_xn, stride_xd, stride_yb,
        stride_yn, stride_yd, stride_hb, BLOCK_M)  # fmt: skip
    inv_eps = 1.0 / eps
    f = tl.load(f_ptr + batch * stride_fb + out_start + rows, mask=row_mask, other=0.0)
    # log2 of the row normaliser: pi_ij = exp2(s_ij + f_i log2(e) / eps).
    shift = f.to(tl.float32) * inv_eps * LOG2E
    dcols = d0 + tl.arange(0, BLOCK_D)
    dmask = dcols < dim

    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    weight_sum = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for c0 in range(0, n_cols_run, BLOCK_N):
        s, sq, cols, col_mask = _log_weights_tile(row_base, col_base, h_row, rows, row_mask,
                                                  c0, n_cols, dim, stride_rn, stride_rd,
                                                  stride_cn, stride_cd, inv_eps, P, BLOCK_M,
                                                  BLOCK_N, BLOCK_D, SMALL_D)  # fmt: skip
        w = tl.exp2(s + shift[:, None])
        if P == 1:
            w = tl.where(sq >= 1e-8, w / tl.sqrt(tl.maximum(sq, 1e-8)), 0.0)
        weight_sum += tl.sum(w, axis=1)
        yt = tl.load(col_base + cols[:, None] * stride_cn + dcols[None, :] * stride_cd,
                     mask=col_mask[:, None] & dmask[None, :], other=0.0).to(tl.float32)  # fmt: skip
        if SMALL_D:
            # tl.dot needs 16 columns: a tiny D accumulates one coordinate at a time.
            for d in tl.static_range(BLOCK_D):
                yd = tl.sum(tl.where(tl.arange(0, BLOCK_D)[None, :] == d, yt, 0.0), axis=1)
                wy = tl.sum(w * yd[None, :], axis=1)
                acc += tl.where(tl.arange(0, BLOCK_D)[None, :] == d, wy[:, None], 0.0)
        else:
            acc = tl.dot(w, yt, acc, input_precision="ieee")
    xt = tl.load(row_base + rows[:, None] * stride_rn + dcols[None, :] * stride_rd,
                 mask=row_mask[:, None] & dmask[None, :], other=0.0).to(tl.float32)  # fmt: skip
    grad_f = tl.load(grad_f_ptr + batch * stride_gfb + out_start + rows, mask=row_mask,
                     other=0.0).to(tl.float32)  # fmt: skip
    grad = grad_f[:, None] * (xt * weight_sum[:, None] - acc)
    out = grad_ptr + batch * stride_gb + (out_start + rows[:, None]) * stride_gn + dcols[None, :]
    tl.store(out, grad.to(grad_ptr.dtype.element_ty), mask=row_mask[:, None] & dmask[None, :])


def _settings(dim: int, backward: bool = False):
    """Block sizes ``(BLOCK_M, BLOCK_N, BLOCK_D, SMALL_D)``, chosen from the sm_80 register
    counts of ``python -m profiling.aot`` at 4 warps: direct differences at 64 x 32 take 128
    registers (64 x 64: 255); the fp32 ``tl.dot`` path at 32 x 32 x 32 takes 186 forward
    (64 x 32 x 32 spills 648 B), and the backward, which also holds a (32, BLOCK_D)
    accumulator, 168 at BLOCK_D = 16 (255 at 32)."""
    if dim <= SMALL_D_MAX:
        return 64, 32, triton.next_power_of_2(dim), True
    return 32, 32, 16 if backward else 32, False


def _n_problems(n_x: int, n_y: int, n_h: int) -> int:
    """Number of problems from the packed h length (M, M + N, M + 2N or 2M + 2N)."""
    for k, total in ((1, n_y), (2, n_y + n_x), (3, n_y + 2 * n_x), (4, 2 * n_y + 2 * n_x)):
        if n_h == total:
            return k
    raise ValueError(f"packed h of length {n_h} fits no prefix of (f_ba, g_ab, f_aa, g_bb)")


def _out_length(n_x, n_y, k):
    return (n_x, n_x + n_y, 2 * n_x + n_y, 2 * n_x + 2 * n_y)[k - 1]


@triton_op("fastgen::sinkhorn_softmins", mutates_args=())
def softmins_forward(x: torch.Tensor, y: torch.Tensor, h: torch.Tensor, eps: float,
                     p: int) -> torch.Tensor:  # fmt: skip
    """``x (B, N, D)``, ``y (B, M, D)``, packed column vectors ``h (B, total)`` (float32) of
    the first ``k`` problems; returns the packed undamped softmins ``(B, total_out)``."""
    batch, n_x, dim = x.shape
    n_y = y.shape[1]
    k = _n_problems(n_x, n_y, h.shape[1])
    out = new_empty((batch, _out_length(n_x, n_y, k)), torch.float32, x.device)
    block_m, block_n, block_d, small_d = _settings(dim)
    grid = (triton.cdiv(max(n_x, n_y), block_m), k, batch)
    with device_guard(x):
        wrap_triton(_softmin_kernel)[grid](
            x, y, h, out, n_x, n_y, dim, x.stride(0), x.stride(1), x.stride(2), y.stride(0),
            y.stride(1), y.stride(2), h.stride(0), out.stride(0), float(eps),
            P=p, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, SMALL_D=small_d,
        )  # fmt: skip
    return out


@triton_op("fastgen::sinkhorn_softmins_backward", mutates_args=())
def softmins_backward(x: torch.Tensor, y: torch.Tensor, h: torch.Tensor, f: torch.Tensor,
                      grad_f: torch.Tensor, eps: float, p: int) -> torch.Tensor:  # fmt: skip
    """Row gradients ``(B, total_out, D)`` (float32) of the packed softmins ``f`` for the
    packed upstream gradients ``grad_f``."""
    batch, n_x, dim = x.shape
    n_y = y.shape[1]
    k = _n_problems(n_x, n_y, h.shape[1])
    grad = new_empty((batch, f.shape[1], dim), torch.float32, x.device)
    block_m, block_n, block_d, small_d = _settings(dim, backward=True)
    n_dsplits = triton.cdiv(dim, block_d)
    grid = (triton.cdiv(max(n_x, n_y), block_m), k, batch * n_dsplits)
    with device_guard(x):
        wrap_triton(_softmin_grad_kernel)[grid](
            x, y, h, f, grad_f, grad, n_x, n_y, dim, x.stride(0), x.stride(1), x.stride(2),
            y.stride(0), y.stride(1), y.stride(2), h.stride(0), f.stride(0), grad_f.stride(0),
            grad.stride(0), grad.stride(1), float(eps), n_dsplits,
            P=p, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, SMALL_D=small_d,
        )  # fmt: skip
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
        constexprs=dict(P=p, BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, SMALL_D=small),
        types=dict(eps="fp32"),
        label=f"D={dim} p={p}",
    )
    for kernel, backward in ((_softmin_kernel, False), (_softmin_grad_kernel, True))
    for dim, p in ((3, 2), (3, 1), (64, 2), (1024, 1))
    for bm, bn, bd, small in [_settings(dim, backward)]
]  # fmt: skip
