"""Pure-PyTorch Sinkhorn softmins: the correctness oracle of :mod:`fastgen.kernels.sinkhorn`
and the CPU path of :mod:`fastgen.metrics.sinkhorn` (which holds GeomLoss's loop, schedule
and cost, shared by both backends, and validates the arguments).

Every Sinkhorn step is a few *softmins*: for points ``x_i`` (rows), ``y_j`` (columns) and a
vector ``h_j`` on the columns,

    f_i = -eps log sum_j exp(h_j - C(x_i, y_j) / eps),   C = |x - y|^2 / 2 (p = 2), |x - y| (p = 1)

:func:`softmin` computes it in row chunks against all columns, so that no more than
``CHUNK_ELEMENTS`` cost entries exist at once (a small problem is one chunk: the dense path).
For ``p = 2`` the row term ``|x_i|^2 / 2 eps`` is taken out of the log-sum-exp, so a chunk is
one ``baddbmm`` (``h_j - |y_j|^2 / 2 eps + <x_i, y_j> / eps``) and an in-place log-sum-exp
whose exponents are floored at ``EXP_FLOOR`` (subnormal exponentials are ~50x slower on
CPUs); the chunk stays in cache, where GeomLoss's tensorized backend streams four ``N x M``
matrices through DRAM.

Gradients are written out (:class:`Softmins`): ``d f_i / d x_i = sum_j pi_ij dC/dx_i`` with the
row-softmax ``pi_ij = exp(h_j - C_ij / eps + f_i / eps)``, recomputed chunk by chunk, so the
backward pass needs no ``N x M`` memory either. As in GeomLoss, gradients flow into the *row*
points only (the columns and ``h`` are detached), which is what the envelope theorem asks for.
"""

from __future__ import annotations

import torch

# Cost entries per chunk (4 MiB in float32): measured at N = M = 10^4, D = 3 on one thread,
# 2**19 to 2**20 are fastest (0.20 s per softmin; 2**16: 0.53 s, per-op overheads; 2**22:
# 0.23 s, out of cache). Peak memory is a few chunks, whatever N and M.
CHUNK_ELEMENTS = 2**20
# Floor of the exponents in the log-sum-exp after the max is subtracted. exp of anything lower
# is subnormal in float32 (under e^-87.3) and CPUs compute subnormal results about 50x slower
# (measured: 46 ms against 0.8 ms per 1e6 exps): the far tail of a cost row at small eps,
# i.e. most entries, would dominate the run time (it does in GeomLoss's tensorized backend).
# Raising those terms to e^-80 changes a row sum (>= 1) by at most M e^-80 < 1e-29 M, below
# float64 round-off.
EXP_FLOOR = -80.0
# Clamp of the squared distance under the square root for p = 1, as GeomLoss's
# ``distances`` (keeps the gradient finite at x = y).
P1_SQUARED_DISTANCE_MIN = 1e-8

# Softmin problems by the point sets that play rows and columns (0: x, 1: y), in the order
# the Sinkhorn loop uses them: f_ba (x against y), g_ab (y against x), f_aa, g_bb.
PAIRS_BALANCED = ((0, 1), (1, 0))
PAIRS_DEBIASED = ((0, 1), (1, 0), (0, 0), (1, 1))


def _row_chunks(rows: int, batch: int, cols: int):
    step = max(1, CHUNK_ELEMENTS // max(1, batch * cols))
    return [(start, min(rows, start + step)) for start in range(0, rows, step)]


def _squared_distances(x, y):
    """``|x_i|^2 + |y_j|^2 - 2 <x_i, y_j>`` as GeomLoss's ``squared_distances``."""
    xy = torch.bmm(x, y.transpose(1, 2))
    return xy.mul_(-2).add_((x * x).sum(-1, keepdim=True)).add_((y * y).sum(-1).unsqueeze(1))


def _log_kernel(x, y, h, eps, p):
    """``h_j - C_ij / eps`` for a chunk ``x (B, n, D)`` against ``y (B, m, D)``, minus the row
    term ``|x_i|^2 / 2 eps`` for p = 2 (returned separately, ``(B, n, 1)``; 0 for p = 1)."""
    if p == 2:
        shift = (h - (y * y).sum(-1) / (2 * eps)).unsqueeze(1)
        s = torch.baddbmm(shift, x, y.transpose(1, 2), alpha=1 / eps)
        return s, (x * x).sum(-1, keepdim=True) / (2 * eps)
    cost = _squared_distances(x, y).clamp_min(P1_SQUARED_DISTANCE_MIN).sqrt()
    return h.unsqueeze(1) - cost / eps, torch.zeros_like(x[..., :1])


def _logsumexp_(s: torch.Tensor) -> torch.Tensor:
    """``log sum_j exp(s_ij)`` over the last axis, overwriting ``s``; exponents floored at
    ``EXP_FLOOR`` below the row maximum (NaN propagates)."""
    m = s.amax(2, keepdim=True)
    total = s.sub_(m).clamp_(min=EXP_FLOOR).exp_().sum(2)
    return total.log_().add_(m.squeeze(2))


def softmin(x: torch.Tensor, y: torch.Tensor, h: torch.Tensor, eps: float, p: int) -> torch.Tensor:
    """``f_i = -eps log sum_j exp(h_j - C(x_i, y_j) / eps)`` for ``x (B, N, D)``,
    ``y (B, M, D)``, ``h (B, M)``; returns ``(B, N)``. No autograd graph is kept per chunk;
    use :class:`Softmins` for gradients."""
    out = torch.empty(x.shape[:2], dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for start, stop in _row_chunks(x.shape[1], x.shape[0], y.shape[1]):
            s, row = _log_kernel(x[:, start:stop], y, h, eps, p)
            out[:, start:stop] = -eps * (_logsumexp_(s) - row.squeeze(2))
    return out


def softmin_grad(x, y, h, f, grad_f, eps, p):
    """``grad_f_i * d f_i / d x_i = grad_f_i sum_j pi_ij dC/dx_i`` with
    ``pi_ij = exp(h_j - C_ij / eps + f_i / eps)`` (rows of ``pi`` sum to 1) and
    ``dC/dx_i = x_i - y_j`` (p = 2) or ``(x_i - y_j) / |x_i - y_j|`` (p = 1; 0 where the
    squared distance is under GeomLoss's clamp). Shapes as :func:`softmin`; returns
    ``(B, N, D)``."""
    grad = torch.empty_like(x)
    with torch.no_grad():
        for start, stop in _row_chunks(x.shape[1], x.shape[0], y.shape[1]):
            xc = x[:, start:stop]
            s, row = _log_kernel(xc, y, h, eps, p)
            weights = (s - row + f[:, start:stop, None] / eps).clamp_(min=EXP_FLOOR).exp_()
            if p == 1:
                squared = _squared_distances(xc, y)
                weights = torch.where(
                    squared >= P1_SQUARED_DISTANCE_MIN, weights / squared.sqrt(), 0
                )
            # sum_j w_ij (x_i - y_j) = x_i sum_j w_ij - (w y)_i
            g = xc * weights.sum(2, keepdim=True) - torch.bmm(weights, y)
            grad[:, start:stop] = grad_f[:, start:stop, None] * g
    return grad


class Softmins(torch.autograd.Function):
    """Several softmins between ``x`` and ``y`` (``pairs``: which set plays rows and columns)
    with gradients into the row points; ``h`` vectors get none (GeomLoss detaches them)."""

    @staticmethod
    def forward(ctx, x, y, eps, p, pairs, *hs):
        points = (x.detach(), y.detach())
        outs = [
            softmin(points[r], points[c], h, eps, p) for (r, c), h in zip(pairs, hs, strict=True)
        ]
        ctx.save_for_backward(x, y, *hs, *outs)
        ctx.settings = (eps, p, pairs)
        return tuple(outs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_outs):
        eps, p, pairs = ctx.settings
        x, y, *rest = ctx.saved_tensors
        hs, outs = rest[: len(pairs)], rest[len(pairs) :]
        points = (x, y)
        grads = [None, None]
        for (r, c), h, f, g in zip(pairs, hs, outs, grad_outs, strict=True):
            if g is None or not ctx.needs_input_grad[r]:
                continue
            grad = softmin_grad(points[r], points[c], h, f, g, eps, p)
            grads[r] = grad if grads[r] is None else grads[r] + grad
        return (*grads, None, None, None, *[None] * len(hs))


def softmins_reference(x, y, eps, p, pairs, hs):
    """The softmins of one Sinkhorn step, same contract as
    :func:`fastgen.kernels.sinkhorn.softmins_triton`: for each ``(r, c)`` of ``pairs``
    (``PAIRS_BALANCED`` or ``PAIRS_DEBIASED``; 0: ``x (B, N, D)``, 1: ``y (B, M, D)``) and
    the matching column vector of ``hs``, :func:`softmin` of set ``r`` against set ``c``.
    Returns one ``(B, rows)`` tensor per pair; gradients flow into the row points."""
    return Softmins.apply(x, y, eps, p, tuple(pairs), *hs)
