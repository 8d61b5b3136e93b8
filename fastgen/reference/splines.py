"""Pure-PyTorch rational-quadratic spline: the correctness oracle and the CPU path.

Math and conventions follow nflows (Durkan et al. 2019, arXiv:1906.04032): softmax bin sizes
with a minimum, end knots pinned exactly, ``min_derivative + softplus`` knot derivatives, the
stable inverse root ``2c / (-b - sqrt(b^2 - 4ac))``. Arguments are assumed validated by
:mod:`fastgen.splines`.

Why it is shaped the way it is (measured on a 2-core Xeon (model 167) VM at 2^19 elements, K = 8,
eager and under ``torch.compile``; same-run numbers in ``bench/test_bench_splines.py``):

* Branch-free (``torch.where``, no boolean indexing, no host synchronisation), so it runs
  unchanged under ``torch.compile(fullgraph=True)``.
* Bins first: the parameters are moved to ``(K, ...)`` once (:func:`_bins_first`). Every
  per-bin op then runs over contiguous rows of elements and a per-element value broadcasts
  over the bins along the outer dim, which the CPU vectorises, eagerly and in inductor's
  generated loops. Over a short last dim (nflows' and zuko's layout) it does neither:
  inductor vectorised the 8 bins with masked tails and ran several times slower.
* Element-wise math and short reductions over the bins, plus one small GEMM per side:
  ``M @ exp`` gives every knot and the softmax's sum (:func:`_knot_matrix`), and ``M.T``
  carries their gradients back. It replaces ``softmax``, ``cumsum`` and the minimum sizes;
  eagerly it is about 1.2x faster than writing those out, and under inductor (where ``cumsum``
  is an unfused library call on the CPU) at least as fast as a fused loop of additions.
* The backward pass is written out (:func:`_spline_backward`) instead of left to autograd,
  whose chain through gather / cumsum / softmax allocates several full-size tensors per
  parameter and does not fuse. It recomputes the rational function's partial derivatives
  from a few per-element values saved by the forward. The same formulas are the spec of the
  Triton backward kernel; ``gradcheck`` and nflows' autograd gradients are their oracles.
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

    exp: torch.Tensor  # (K, ...) exp(u - max u), bins first: the softmax's numerators
    total: torch.Tensor  # (...) sum(exp)
    frac_lo: torch.Tensor  # (...) fraction of the span at knot k (pinned: 0 at k = 0)
    frac_hi: torch.Tensor  # (...) fraction of the span at knot k + 1 (pinned: 1 at k = K - 1)
    lo: torch.Tensor  # (...) position of the bin's lower knot
    size: torch.Tensor  # (...) width (or height) of the bin


def _bins_first(unnormalized: torch.Tensor) -> torch.Tensor:
    """``(..., K)`` -> contiguous ``(K, ...)``: every per-bin op then runs over contiguous
    rows of elements, and a per-element value broadcasts over the bins along the outer dim
    (the CPU vectorises both, eager and under inductor; over a short last dim neither)."""
    return unnormalized.movedim(-1, 0).contiguous()


def _knot_matrix(num_bins: int, min_bin_size: float, like: torch.Tensor) -> torch.Tensor:
    """``M`` (K + 1, K) with ``(M @ exp)_j = S (mbs (j + 1) + c sum_{i <= j} p_i)`` for
    ``j < K`` (knot j + 1 times ``S = sum(exp)``, ``p = exp / S``, ``c = 1 - mbs K``) and
    ``(M @ exp)_K = S``: ``M[j, i] = mbs (j + 1) + c [i <= j]``, last row ones. One small
    GEMM gives every knot and the softmax's sum; ``M.T`` carries their gradients back."""
    i = torch.arange(num_bins, device=like.device, dtype=like.dtype)
    upper = (i[:, None] >= i).to(like.dtype)
    knots = min_bin_size * (i[:, None] + 1) + (1 - min_bin_size * num_bins) * upper
    return torch.cat([knots, torch.ones_like(i)[None]])


def _matmul_bins(matrix: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``matrix @ rows`` over the bin dim of ``rows`` (K, ...)."""
    return (matrix @ rows.flatten(1)).view(matrix.shape[0], *rows.shape[1:])


def _knots(unnormalized: torch.Tensor, matrix: torch.Tensor):
    """``exp(u - max u)`` (K, ...) and ``M @ exp`` (K + 1, ...) (:func:`_knot_matrix`) of
    ``u`` (K, ...)."""
    exp = torch.exp(unnormalized - unnormalized.amax(dim=0))
    return exp, _matmul_bins(matrix, exp)


def _bin_index(fraction: torch.Tensor, numerators: torch.Tensor) -> torch.Tensor:
    """Bin ``k`` ((...) int64) of ``fraction`` ((...) in [0, 1]): the count of interior
    knots at or below it (``numerators`` from :func:`_knots`). An input on an end knot
    lands in the end bin, with no epsilon added to a knot."""
    num_bins = numerators.shape[0] - 1
    above = fraction * numerators[num_bins] >= numerators[: num_bins - 1]
    # Summing bools in the narrowest type that holds K - 1 skips a wide int64 copy of them.
    count_dtype = torch.uint8 if num_bins <= 256 else torch.int32
    return above.sum(dim=0, dtype=count_dtype).long()


def _pick(rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``rows[index[e], e]`` for each element ``e``: rows (K, ...), index (...) int64."""
    return rows.gather(0, index[None])[0]


def _side_at_bin(exp, numerators, bin_idx, lower: float, upper: float):
    """Bin ``k``'s lower knot and size. The end knots are pinned: knot 0 at ``lower`` and
    knot K at ``upper`` exactly."""
    num_bins = exp.shape[0]
    total = numerators[num_bins]
    frac_lo = torch.where(bin_idx == 0, 0.0, _pick(numerators, (bin_idx - 1).clamp(min=0)) / total)
    frac_hi = torch.where(bin_idx == num_bins - 1, 1.0, _pick(numerators, bin_idx) / total)
    # Positions first, then their difference (as nflows): an input on an end knot is then
    # exactly at theta = 0 or 1.
    span = upper - lower
    lo, hi = frac_lo * span + lower, frac_hi * span + lower
    return _Side(exp, total, frac_lo, frac_hi, lo, hi - lo)


def _derivative_columns(bin_idx, num_bins: int, tails):
    """Columns (...) of ``unnormalized_derivatives`` holding the derivatives at the knots
    k and k + 1 of the bin ``bin_idx``, and (linear tails) whether each is an end knot of
    fixed slope. Layouts: bounded ``(..., K + 1)``; ``"linear"`` ``(..., K - 1)`` interior
    knots, slope 1 at both ends; ``"circular"`` ``(..., K)``, knot K is knot 0."""
    if tails == "linear":
        columns = (bin_idx - 1).clamp(min=0), bin_idx.clamp(max=num_bins - 2)
        return columns, (bin_idx == 0, bin_idx == num_bins - 1)
    if tails == "circular":
        return (bin_idx, torch.where(bin_idx == num_bins - 1, 0, bin_idx + 1)), None
    return (bin_idx, bin_idx + 1), None


def _rq(theta, y_lo, height, delta, d_lo, d_hi):
    """``y = y_lo + height * (delta theta^2 + d_lo tau) / D`` and
    ``log dy/dx = log(delta^2 M) - 2 log D``, ``tau = theta (1 - theta)``,
    ``D = delta + (d_lo + d_hi - 2 delta) tau``,
    ``M = d_hi theta^2 + 2 delta tau + d_lo (1 - theta)^2``."""
    one_minus = 1 - theta
    tau = theta * one_minus
    denominator = delta + (d_lo + d_hi - 2 * delta) * tau
    y = y_lo + height * (delta * theta * theta + d_lo * tau) / denominator
    m = d_hi * theta * theta + 2 * delta * tau + d_lo * one_minus * one_minus
    return y, torch.log(delta * delta * m) - 2 * torch.log(denominator)


def _rq_partials(theta, height, delta, d_lo, d_hi):
    """Partial derivatives of ``y`` and ``l = log dy/dx`` of :func:`_rq` with respect to
    theta, s = delta (= height / width), height, d_lo and d_hi, the others held fixed:
    ``((y_theta, l_theta), (y_s, l_s), y_h, (y_d0, l_d0), (y_d1, l_d1))``."""
    one_minus = 1 - theta
    tau = theta * one_minus
    theta2 = theta * theta
    slope_sum = d_lo + d_hi - 2 * delta
    denominator = delta + slope_sum * tau
    numerator = delta * theta2 + d_lo * tau
    m = d_hi * theta2 + 2 * delta * tau + d_lo * one_minus * one_minus
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
    return (y_theta, l_theta), (y_s, l_s), y_h, (y_d0, l_d0), (y_d1, l_d1)


def _inverse_theta(inputs, y_lo, height, delta, d_lo, d_hi):
    """Root in [0, 1] of the bin's quadratic ``a theta^2 + b theta + c = 0``, in the stable
    form ``2c / (-b - sqrt(b^2 - 4ac))``."""
    dy = inputs - y_lo
    slope_sum = d_lo + d_hi - 2 * delta
    a = dy * slope_sum + height * (delta - d_lo)
    b = height * d_lo - dy * slope_sum
    c = -delta * dy
    # Round-off can push the discriminant a hair below 0 near the knots (nflows#87).
    discriminant = (b * b - 4 * a * c).clamp_min(0)
    return 2 * c / (-b - torch.sqrt(discriminant))


def _spline(inputs, uw, uh, ud, inverse, bounds, min_sizes, tails):
    """Forward or inverse pass on ``inputs`` ((...), inside the domain; parameters (K, ...)
    bins first, derivatives (..., K'') as given): outputs, logabsdet and what
    :func:`_spline_backward` needs."""
    left, right, bottom, top = bounds
    mbw, mbh, mind = min_sizes
    num_bins = uw.shape[0]
    x_exp, x_numerators = _knots(uw, _knot_matrix(num_bins, mbw, uw))
    y_exp, y_numerators = _knots(uh, _knot_matrix(num_bins, mbh, uh))
    if inverse:
        bin_idx = _bin_index((inputs - bottom) / (top - bottom), y_numerators)
    else:
        bin_idx = _bin_index((inputs - left) / (right - left), x_numerators)
    x = _side_at_bin(x_exp, x_numerators, bin_idx, left, right)
    y = _side_at_bin(y_exp, y_numerators, bin_idx, bottom, top)
    columns, fixed = _derivative_columns(bin_idx, num_bins, tails)
    unnormalized = [ud.gather(-1, column[..., None])[..., 0] for column in columns]
    d_lo, d_hi = (F.softplus(u) + mind for u in unnormalized)
    if fixed is not None:
        d_lo = torch.where(fixed[0], LINEAR_TAIL_DERIVATIVE, d_lo)
        d_hi = torch.where(fixed[1], LINEAR_TAIL_DERIVATIVE, d_hi)
    delta = y.size / x.size
    if inverse:
        theta = _inverse_theta(inputs, y.lo, y.size, delta, d_lo, d_hi)
    else:
        theta = (inputs - x.lo) / x.size
    outputs, logabsdet = _rq(theta, y.lo, y.size, delta, d_lo, d_hi)
    if inverse:
        outputs, logabsdet = x.lo + theta * x.size, -logabsdet
    # The range is exactly the other interval: keep round-off from pushing an end point out
    # of it (the inverse would then take it for a tail and return the identity).
    outputs = outputs.clamp(left, right) if inverse else outputs.clamp(bottom, top)
    saved = (x, y, bin_idx, columns, unnormalized, fixed, theta, delta, d_lo, d_hi)
    return outputs, logabsdet, saved


def _grad_unnormalized(side: _Side, bin_idx, grad_lo, grad_hi, span: float, min_bin_size: float):
    """Gradient (K, ...) with respect to the unnormalised bin sizes, given the gradients
    (...) with respect to the positions of the bin's two knots k and k + 1.

    The knots are ``n_j / S`` with ``n = M @ exp`` (:func:`_knot_matrix`, ``S = n_K``), the
    pinned end knots constant. So ``dL/dn`` has three entries per element: ``span g_lo / S``
    at knot k (row k - 1), ``span g_hi / S`` at knot k + 1 (row k) and ``-(knot_k dL/dn_{k-1}
    + knot_{k+1} dL/dn_k)`` at ``S``; then ``dL/dexp = M.T @ dL/dn`` and ``dL/du = exp
    dL/dexp`` (the shift by ``max u`` carries none: the knots are invariant to it).
    """
    num_bins = side.exp.shape[0]
    scale = span / side.total
    g_lo = torch.where(bin_idx == 0, 0.0, grad_lo * scale)
    g_hi = torch.where(bin_idx == num_bins - 1, 0.0, grad_hi * scale)
    g_total = -(g_lo * side.frac_lo + g_hi * side.frac_hi)
    # rows k - 1 and k coincide at k = 0, where g_lo is 0: accumulate
    rows = torch.stack([(bin_idx - 1).clamp(min=0), bin_idx, torch.full_like(bin_idx, num_bins)])
    grad_n = side.exp.new_zeros(num_bins + 1, *bin_idx.shape)
    grad_n.scatter_add_(0, rows, torch.stack([g_lo, g_hi, g_total]))
    matrix = _knot_matrix(num_bins, min_bin_size, side.exp)
    return side.exp * _matmul_bins(matrix.T, grad_n)


def _spline_backward(saved, inverse, spans, min_bin_sizes, num_derivatives, grad_outputs, grad_lad):
    """Gradients (inputs (...), widths (K, ...), heights (K, ...), derivatives (..., K'')) of
    ``sum(grad_outputs * outputs + grad_lad * logabsdet)`` for inputs inside the domain.

    Forward: ``y = F(theta, p)``, ``theta = (x - x_lo) / width``. Inverse: ``x = x_lo + theta
    width`` where ``F(theta, p) = y``, so ``d theta / dy = 1 / F_theta`` and ``d theta / dp =
    -F_p / F_theta``; its log-det is ``-l(theta, p)``.
    """
    x, y, bin_idx, columns, unnormalized, fixed, theta, delta, d_lo, d_hi = saved
    partials = _rq_partials(theta, y.size, delta, d_lo, d_hi)
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
    grad_uw = _grad_unnormalized(x, bin_idx, grad_x_lo - grad_width, grad_width, x_span, mbw)
    grad_uh = _grad_unnormalized(y, bin_idx, coef_y - grad_height, grad_height, y_span, mbh)
    # softplus' = sigmoid; fixed end knots have none. The two knots' gradients go to their
    # columns (which coincide for linear tails at an end bin, where the fixed one is zero).
    grad_d = []
    for u, partial_y, partial_l, is_fixed in zip(
        unnormalized, (y_d0, y_d1), (l_d0, l_d1), fixed or (None, None), strict=True
    ):
        grad = (coef_y * partial_y + coef_l * partial_l) * torch.sigmoid(u)
        grad_d.append(grad if is_fixed is None else torch.where(is_fixed, 0.0, grad))
    grad_ud = grad_inputs.new_zeros(*grad_inputs.shape, num_derivatives)
    grad_ud.scatter_add_(-1, torch.stack(columns, dim=-1), torch.stack(grad_d, dim=-1))
    return grad_inputs, grad_uw, grad_uh, grad_ud


class RationalQuadraticSpline(torch.autograd.Function):
    """Elementwise RQ spline of ``inputs`` (...,) with the identity (``identity_outside``)
    or NaN outside ``[left, right]`` (``[bottom, top]`` for the inverse), and its analytic
    backward. Parameters: widths and heights (..., K), derivatives in the layout of
    ``tails`` (see :func:`_derivative_columns`)."""

    @staticmethod
    def forward(ctx, inputs, uw, uh, ud, inverse, bounds, min_sizes, tails, identity_outside):
        left, right, bottom, top = bounds
        lower, upper = (bottom, top) if inverse else (left, right)
        # Outside elements are evaluated at the bound (finite, then discarded), so no NaN or
        # inf from them reaches the result or the gradients. NaN inputs count as outside.
        clamped = inputs.clamp(lower, upper)
        outside = clamped != inputs
        outputs, logabsdet, saved = _spline(
            clamped, _bins_first(uw), _bins_first(uh), ud, inverse, bounds, min_sizes, tails
        )
        if identity_outside:
            outputs = torch.where(outside, inputs, outputs)
            logabsdet = torch.where(outside, 0.0, logabsdet)
        else:
            outputs = torch.where(outside, float("nan"), outputs)
            logabsdet = torch.where(outside, float("nan"), logabsdet)
        if any(ctx.needs_input_grad[:4]):
            x, y, bin_idx, columns, unnormalized, fixed, *rest = saved
            fixed = fixed or (None, None)
            ctx.save_for_backward(outside, *x, *y, bin_idx, *columns, *unnormalized, *fixed, *rest)
            ctx.inverse, ctx.identity_outside = inverse, identity_outside
            ctx.num_derivatives = ud.shape[-1]
            ctx.spans = (right - left, top - bottom)
            ctx.min_bin_sizes = min_sizes[:2]
        return outputs, logabsdet

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_outputs, grad_lad):
        outside, *t = ctx.saved_tensors
        fixed = None if t[17] is None else (t[17], t[18])
        x, y = _Side(*t[:6]), _Side(*t[6:12])
        saved = (x, y, t[12], (t[13], t[14]), (t[15], t[16]), fixed, *t[19:])
        grad_in, grad_uw, grad_uh, grad_ud = _spline_backward(
            saved,
            ctx.inverse,
            ctx.spans,
            ctx.min_bin_sizes,
            ctx.num_derivatives,
            torch.where(outside, 0.0, grad_outputs),
            torch.where(outside, 0.0, grad_lad),
        )
        if ctx.identity_outside:
            grad_in = torch.where(outside, grad_outputs, grad_in)
        else:
            grad_in = torch.where(outside, float("nan"), grad_in)
        # back to the parameters' (..., K) layout, as views (their consumer copies if needed)
        grads = (g.movedim(0, -1) for g in (grad_uw, grad_uh))
        return grad_in, *grads, grad_ud, None, None, None, None, None
