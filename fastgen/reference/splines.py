"""Pure-PyTorch rational-quadratic spline: the correctness oracle and the CPU fallback.

Math and conventions follow nflows (Durkan et al. 2019, arXiv:1906.04032): softmax bin sizes
with a minimum, end knots pinned exactly, ``min_derivative + softplus`` knot derivatives, the
stable inverse root ``2c / (-b - sqrt(b^2 - 4ac))``. Arguments are assumed validated by
:mod:`fastgen.splines`.

Why it is shaped the way it is (measured on a 2-core CPU at 2^19 elements, K = 8):

* Branch-free (``torch.where``, no boolean indexing, no host synchronisation), so it runs
  unchanged under ``torch.compile(fullgraph=True)``.
* No ``softmax`` or ``cumsum`` over the short last dimension (PyTorch's CPU kernels are 15x
  and 3x slower there than ``exp`` and a small matmul): every knot comes out of one matmul
  of ``exp(u - max u)`` (:func:`_knots`), and only each element's own bin is normalised.
* Few and small temporaries, in-place where autograd never sees them: the pass is
  memory-bound, and every full-size temporary costs about as much as the op that fills it.
  Elementwise ops that broadcast a per-row value over the short last dim (``u - max u``,
  ``torch.where``) are 2-5x slower than contiguous ones on the CPU: small matmuls with
  constant matrices do those jobs.
* The backward pass is written out (:func:`_spline_backward`) instead of left to autograd,
  whose chain through gather / cumsum / softmax allocates several full-size tensors per
  parameter. The same formulas are the spec of the Triton backward kernel; ``gradcheck`` and
  nflows' autograd gradients are their oracles.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

# Derivative at both end knots with linear tails: the tails are the identity, so the spline
# joins them with slope exactly 1 (nflows gets 1 - O(1e-7) through a softplus).
LINEAR_TAIL_DERIVATIVE = 1.0


class _Side(NamedTuple):
    """One axis of the knot grid (x: widths, y: heights) at each element's bin ``k``."""

    exp: torch.Tensor  # (..., K) exp(u - max u): the softmax's numerators
    total: torch.Tensor  # (..., 1) sum(exp)
    fractions: torch.Tensor  # (..., 2) knots k and k + 1 in [0, 1]: mbs j + c sum_{i < j} p_i
    lo: torch.Tensor  # (..., 1) position of the bin's lower knot
    size: torch.Tensor  # (..., 1) width (or height) of the bin


def _triangle(num_bins: int, like: torch.Tensor) -> torch.Tensor:
    """``T[i, j] = [i < j]`` (K, K), in the dtype and on the device of ``like``."""
    i = torch.arange(num_bins, device=like.device)
    return (i[:, None] < i).to(like.dtype)


def _knots(unnormalized: torch.Tensor, min_bin_size: float):
    """``exp(u - max u)`` (..., K) and ``exp @ A`` (..., K + 1): knot ``j``'s fraction of the
    span times ``S = sum(exp)`` for ``j < K``, then ``S`` itself.

    Knot ``j`` sits at ``mbs j + c sum_{i < j} p_i`` (``c = 1 - mbs K``), which is linear in
    ``exp`` up to the division by ``S``: ``A[i, j] = mbs j + c [i < j]``, ``A[i, K] = 1``. One
    small matmul replaces the cumulative sum, the normalisation and the minimum sizes; on the
    CPU it is several times faster than ``softmax`` / ``cumsum`` over a short last dim.
    """
    num_bins = unnormalized.shape[-1]
    shift = unnormalized.amax(dim=-1, keepdim=True)
    # u - shift: broadcasting a column over a short last dim is slow on the CPU; an outer
    # product with a row of -1 and an in-place add give the same numbers twice as fast.
    minus_ones = torch.full((1, num_bins), -1.0, dtype=shift.dtype, device=shift.device)
    exp = torch.exp_((shift @ minus_ones).add_(unnormalized))
    i = torch.arange(num_bins, device=exp.device, dtype=exp.dtype)
    matrix = min_bin_size * i + (1 - min_bin_size * num_bins) * _triangle(num_bins, exp)
    matrix = torch.cat([matrix, torch.ones_like(i)[:, None]], dim=-1)
    return exp, exp @ matrix


def _bin_index(fraction, knots):
    """Bin ``k`` ((..., 1) int64) of ``fraction`` ((..., 1) in [0, 1]): the count of interior
    knots at or below it. An input on an end knot lands in the end bin, with no epsilon
    added to a knot."""
    num_bins = knots.shape[-1] - 1
    above = fraction * knots[..., num_bins:] >= knots[..., 1:num_bins]
    # Summing bools in the narrowest type that holds K - 1 skips a wide copy of them.
    count_dtype = torch.uint8 if num_bins <= 256 else torch.int32
    return above.sum(dim=-1, keepdim=True, dtype=count_dtype).long()


def _side_at_bin(exp, knots, edges, lower, upper):
    """Bin ``k``'s lower knot and size, from its two knots ``edges`` = (k, k + 1). The end
    knots are pinned: knot 0's numerator is exactly 0 and knot K's is ``S`` itself."""
    num_bins, span = exp.shape[-1], upper - lower
    total = knots[..., num_bins:].contiguous()  # a strided divisor is 3x slower on the CPU
    fractions = knots.gather(-1, edges).div_(total)
    # Positions first, then their difference (as nflows): an input on an end knot is then
    # exactly at theta = 0 or 1.
    positions = fractions * span + lower
    lo = positions[..., :1]
    return _Side(exp, total, fractions, lo, positions[..., 1:] - lo)


def _bin_derivatives(unnormalized, edges, num_bins: int, tails, min_derivative: float):
    """Columns (..., 2) of ``unnormalized`` holding the derivatives at the knots ``edges``
    = (k, k + 1), their values there, the derivatives and (linear tails) which of them are
    end knots of fixed slope. Layouts: bounded ``(..., K + 1)``; ``"linear"`` ``(..., K - 1)``
    interior knots, slope 1 at both ends; ``"circular"`` ``(..., K)``, knot K is knot 0."""
    fixed = None
    if tails == "linear":
        columns = (edges - 1).clamp_(0, num_bins - 2)
        fixed = (edges == 0) | (edges == num_bins)
    elif tails == "circular":
        columns = edges.masked_fill(edges == num_bins, 0)
    else:
        columns = edges
    unnormalized = unnormalized.gather(-1, columns)
    derivatives = F.softplus(unnormalized).add_(min_derivative)
    if fixed is not None:
        derivatives.masked_fill_(fixed, LINEAR_TAIL_DERIVATIVE)
    return columns, unnormalized, derivatives, fixed


def _rq(theta, y_lo, height, delta, d_lo, d_hi, slope_sum, with_y: bool, with_partials: bool):
    """``y = y_lo + height * (delta theta^2 + d_lo tau) / D`` and
    ``log dy/dx = log(delta^2 M) - 2 log D``, ``tau = theta (1 - theta)``,
    ``D = delta + slope_sum tau``, ``slope_sum = d_lo + d_hi - 2 delta``,
    ``M = d_hi theta^2 + 2 delta tau + d_lo (1 - theta)^2``.

    ``y`` only ``with_y`` (the inverse knows it). With ``with_partials``, also the partial
    derivatives of ``y`` and ``l = log dy/dx`` with respect to theta, s = delta (= height /
    width), height, d_lo and d_hi, the others held fixed: ``((y_theta, l_theta), (y_s, l_s),
    y_h, (y_d0, l_d0), (y_d1, l_d1))``.
    """
    one_minus = 1 - theta
    tau = theta * one_minus
    theta2 = theta * theta
    denominator = torch.addcmul(delta, slope_sum, tau)
    numerator = torch.addcmul(delta * theta2, d_lo, tau)
    y = torch.addcmul(y_lo, height, numerator / denominator) if with_y else None
    m = torch.addcmul(d_hi * theta2, delta, tau, value=2).addcmul_(d_lo, one_minus * one_minus)
    logabsdet = torch.log_((delta * delta).mul_(m)).sub_(torch.log(denominator), alpha=2)
    if not with_partials:
        return y, logabsdet, ()
    inv_d, inv_m = 1 / denominator, 1 / m
    h_d2 = height * inv_d * inv_d
    dtau = 1 - 2 * theta
    y_theta = delta * height * m * inv_d * inv_d
    l_theta = 2 * (d_hi * theta + delta * dtau - d_lo * one_minus) * inv_m
    l_theta = l_theta - 2 * slope_sum * dtau * inv_d
    y_s = h_d2 * (theta2 * denominator - numerator * (1 - 2 * tau))
    l_s = 2 / delta + 2 * tau * inv_m - 2 * (1 - 2 * tau) * inv_d
    y_h = numerator * inv_d
    y_d0 = h_d2 * tau * (denominator - numerator)
    y_d1 = -h_d2 * numerator * tau
    l_d0 = one_minus * one_minus * inv_m - 2 * tau * inv_d
    l_d1 = theta2 * inv_m - 2 * tau * inv_d
    return y, logabsdet, ((y_theta, l_theta), (y_s, l_s), y_h, (y_d0, l_d0), (y_d1, l_d1))


def _inverse_theta(inputs, y_lo, height, delta, d_lo, d_hi, slope_sum):
    """Root in [0, 1] of the bin's quadratic ``a theta^2 + b theta + c = 0``, in the stable
    form ``2c / (-b - sqrt(b^2 - 4ac))``."""
    # issue 14: solved from the nearer knot (theta' = 1 - theta, d_lo <-> d_hi in the upper
    # half): from the far knot, a and b cancel to round-off when d_lo >> delta, d_hi.
    dy = inputs - y_lo
    upper = dy > 0.5 * height
    dy = torch.where(upper, (y_lo + height) - inputs, dy)
    d_near = torch.where(upper, d_hi, d_lo)
    a = torch.addcmul(dy * slope_sum, height, delta - d_near)
    b = torch.addcmul(height * d_near, dy, slope_sum, value=-1)
    c = -delta * dy
    # Round-off can push the discriminant a hair below 0 near the knots (nflows#87).
    discriminant = torch.addcmul(b * b, a, c, value=-4).clamp_min_(0)
    theta = (2 * c).div_(torch.sqrt_(discriminant).add_(b).neg_())
    theta = torch.where(upper, 1 - theta, theta)
    return theta.clamp_(0, 1)  # issue 14: round-off near a knot, NaN kept (torch.clamp)


def _spline(inputs, uw, uh, ud, inverse, bounds, min_sizes, tails, grad):
    """Forward or inverse pass on ``inputs`` ((..., 1), inside the domain); with ``grad``,
    also what :func:`_spline_backward` needs."""
    left, right, bottom, top = bounds
    mbw, mbh, mind = min_sizes
    x_exp, x_knots = _knots(uw, mbw)
    y_exp, y_knots = _knots(uh, mbh)
    if inverse:
        bin_idx = _bin_index(torch.sub(inputs, bottom).div_(top - bottom), y_knots)
    else:
        bin_idx = _bin_index(torch.sub(inputs, left).div_(right - left), x_knots)
    num_bins = uw.shape[-1]
    edges = bin_idx + torch.arange(2, device=bin_idx.device)
    x = _side_at_bin(x_exp, x_knots, edges, left, right)
    y = _side_at_bin(y_exp, y_knots, edges, bottom, top)
    columns, unnormalized, derivatives, fixed = _bin_derivatives(ud, edges, num_bins, tails, mind)
    d_lo, d_hi = derivatives[..., :1], derivatives[..., 1:]
    delta = y.size / x.size
    slope_sum = (d_lo + d_hi).sub_(delta, alpha=2)
    if inverse:
        theta = _inverse_theta(inputs, y.lo, y.size, delta, d_lo, d_hi, slope_sum)
    else:
        # issue 14: clamped to [0, 1] against round-off near a knot (NaN stays NaN)
        theta = torch.sub(inputs, x.lo).div_(x.size).clamp_(0, 1)
    outputs, logabsdet, partials = _rq(
        theta, y.lo, y.size, delta, d_lo, d_hi, slope_sum, not inverse, grad
    )
    if inverse:
        outputs, logabsdet = torch.addcmul(x.lo, theta, x.size), logabsdet.neg_()
    # The range is exactly the other interval: keep round-off from pushing an end point out
    # of it (the inverse would then take it for a tail and return the identity).
    outputs = outputs.clamp_(left, right) if inverse else outputs.clamp_(bottom, top)
    saved = None
    if grad:
        saved = (x, y, edges, columns, unnormalized, fixed, theta, delta, partials)
    return outputs, logabsdet, saved


def _grad_unnormalized(side: _Side, edges, jump_columns, grad_lo, grad_hi, span, min_bin_size):
    """Gradient (..., K) with respect to the unnormalised bin sizes, given the gradients
    (..., 1) with respect to the positions of the two knots ``edges`` = (k, k + 1).

    Interior knot ``j`` is ``lower + span (mbs j + c sum_{i<j} p_i)`` with ``p = softmax(u)``
    and ``c = 1 - mbs K``; pinned end knots carry no gradient. So ``dL/dp_i = span c (g_lo
    [i < k] + g_hi [i <= k])``, and the softmax backward ``p_i (dL/dp_i - sum_j p_j dL/dp_j)``
    needs ``c sum_{i<j} p_i = fraction_j - mbs j`` at both knots.

    Per row, ``dL/du_i / exp_i`` takes three values (i < k, i = k, i > k): it is the reverse
    cumulative sum of three jumps, at columns ``jump_columns`` = (k - 1, k, K - 1), which a
    scatter and a matmul with a triangle of ones build (``torch.where`` with per-row operands
    is several times slower over a short last dim on the CPU).
    """
    num_bins = side.exp.shape[-1]
    c = 1 - min_bin_size * num_bins
    bin_idx = edges[..., :1]
    scale = c * span / side.total
    g_lo = (grad_lo * scale).masked_fill_(bin_idx == 0, 0.0)
    g_hi = (grad_hi * scale).masked_fill_(bin_idx == num_bins - 1, 0.0)
    below = side.fractions - min_bin_size * edges.to(g_lo.dtype)  # c P(i < j), j = k, k + 1
    after = torch.addcmul(g_lo * below[..., :1], g_hi, below[..., 1:]).div_(-c)
    jumps = torch.cat([g_lo, g_hi, after], dim=-1)
    step = torch.zeros_like(side.exp).scatter_add_(-1, jump_columns, jumps)
    return (step @ (1 - _triangle(num_bins, step))).mul_(side.exp)  # [j >= i]


def _spline_backward(saved, inverse, spans, min_bin_sizes, ud_shape, grad_outputs, grad_lad):
    """Gradients (inputs, widths, heights, derivatives) of ``sum(grad_outputs * outputs +
    grad_lad * logabsdet)`` for inputs inside the domain.

    Forward: ``y = F(theta, p)``, ``theta = (x - x_lo) / width``. Inverse: ``x = x_lo + theta
    width`` where ``F(theta, p) = y``, so ``d theta / dy = 1 / F_theta`` and ``d theta / dp =
    -F_p / F_theta``; its log-det is ``-l(theta, p)``.
    """
    x, y, edges, columns, unnormalized, fixed, theta, delta, partials = saved
    (y_theta, l_theta), (y_s, l_s), y_h, (y_d0, l_d0), (y_d1, l_d1) = partials
    if inverse:
        grad_inputs = (grad_outputs * x.size - grad_lad * l_theta) / y_theta
        coef_y, coef_l, grad_x_lo = -grad_inputs, -grad_lad, grad_outputs
    else:
        grad_inputs = (grad_outputs * y_theta + grad_lad * l_theta) / x.size
        coef_y, coef_l, grad_x_lo = grad_outputs, grad_lad, -grad_inputs
    grad_s = coef_y * y_s + coef_l * l_s
    grad_width = grad_x_lo * theta - grad_s * delta / x.size
    grad_height = coef_y * y_h + grad_s / x.size
    (x_span, y_span), (mbw, mbh) = spans, min_bin_sizes
    bin_idx = edges[..., :1]
    jump_columns = torch.cat(
        [(bin_idx - 1).clamp_min_(0), bin_idx, torch.full_like(bin_idx, x.exp.shape[-1] - 1)],
        dim=-1,
    )
    grad_uw = _grad_unnormalized(
        x, edges, jump_columns, grad_x_lo - grad_width, grad_width, x_span, mbw
    )
    grad_uh = _grad_unnormalized(
        y, edges, jump_columns, coef_y - grad_height, grad_height, y_span, mbh
    )
    grad_d = torch.cat([coef_y * y_d0 + coef_l * l_d0, coef_y * y_d1 + coef_l * l_d1], dim=-1)
    grad_d.mul_(torch.sigmoid(unnormalized))  # softplus'
    if fixed is not None:
        grad_d.masked_fill_(fixed, 0.0)
    grad_ud = grad_d.new_zeros(ud_shape).scatter_add_(-1, columns, grad_d)
    return grad_inputs, grad_uw, grad_uh, grad_ud


class RationalQuadraticSpline(torch.autograd.Function):
    """Elementwise RQ spline of ``inputs`` (...,) with the identity (``identity_outside``)
    or NaN outside ``[left, right]`` (``[bottom, top]`` for the inverse), and its analytic
    backward. Parameters: widths and heights (..., K), derivatives in the layout of
    ``tails`` (see :func:`_bin_derivatives`)."""

    @staticmethod
    def forward(ctx, inputs, uw, uh, ud, inverse, bounds, min_sizes, tails, identity_outside):
        left, right, bottom, top = bounds
        lower, upper = (bottom, top) if inverse else (left, right)
        inputs = inputs[..., None]
        grad = any(ctx.needs_input_grad[:4])
        # Outside elements are evaluated at the bound (finite, then discarded), so no NaN or
        # inf from them reaches the result or the gradients. NaN inputs count as outside
        # (and stay NaN: torch.clamp propagates it).
        clamped = inputs.clamp(lower, upper)
        outside = clamped != inputs
        outputs, logabsdet, saved = _spline(
            clamped, uw, uh, ud, inverse, bounds, min_sizes, tails, grad
        )
        if identity_outside:
            outputs = torch.where(outside, inputs, outputs)
            # issue 14: identity tails have log-det 0 (also at +-inf), a NaN input a NaN one
            logabsdet.masked_fill_(outside, 0.0).masked_fill_(inputs.isnan(), float("nan"))
        else:
            outputs.masked_fill_(outside, float("nan"))
            logabsdet.masked_fill_(outside, float("nan"))
        if grad:
            ctx.saved = saved
            ctx.save_for_backward(outside)
            ctx.inverse, ctx.identity_outside, ctx.ud_shape = inverse, identity_outside, ud.shape
            ctx.spans = (right - left, top - bottom)
            ctx.min_bin_sizes = min_sizes[:2]
        return outputs[..., 0], logabsdet[..., 0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_outputs, grad_lad):
        (outside,) = ctx.saved_tensors
        grad_outputs, grad_lad = grad_outputs[..., None], grad_lad[..., None]
        grad_in, grad_uw, grad_uh, grad_ud = _spline_backward(
            ctx.saved,
            ctx.inverse,
            ctx.spans,
            ctx.min_bin_sizes,
            ctx.ud_shape,
            grad_outputs.masked_fill(outside, 0.0),
            grad_lad.masked_fill(outside, 0.0),
        )
        if ctx.identity_outside:
            grad_in = torch.where(outside, grad_outputs, grad_in)
        else:
            grad_in.masked_fill_(outside, float("nan"))
        return grad_in[..., 0], grad_uw, grad_uh, grad_ud, None, None, None, None, None
