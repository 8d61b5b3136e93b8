"""Fused rational-quadratic spline: forward / inverse with log-det, and the backward pass.

One program handles ``BLOCK`` elements; each element's ``K`` widths and heights sit in one
row of a ``[BLOCK, BLOCK_K]`` tile, so the softmax, the cumulative sums, the bin search and
the pick of the bin's values are row reductions in registers. Derivatives are read only at
the bin's two knots. The backward kernel recomputes everything from the inputs (nothing is
saved but the inputs) and writes all four gradients. The math is
:mod:`fastgen.reference.splines`'s (knots from the cumulative sum rather than a matmul).

Memory traffic per element, K bins, linear tails (K - 1 derivatives), ``b`` bytes per value,
each input read once and each output written once:

* forward / inverse: reads ``x`` and ``3K - 1`` parameters (of the derivatives only the
  bin's two, but their memory sector is read whole), writes ``y`` and ``logabsdet``:
  ``(3K + 2) b``, 104 B at K = 8 in float32.
* backward: reads ``x``, ``3K - 1`` parameters and 2 upstream gradients, writes ``3K``
  gradients: ``(6K + 2) b``, 200 B at K = 8 in float32.

The PyTorch reference moves 1499 B per element forward and 3728 B forward+backward at K = 8
(nflows: 2430 and 8953), counted op by op with ``python -m profiling.traffic``.

FLOPs per element (counting exp / log / sqrt as one): about ``22K + 50`` forward (per side:
max, shift, exp, scan and sum over the row; the bin search; two masked picks per side; the
bin's rational function) and ``36K + 150`` backward (the recomputation, the partials, two
rows of softmax gradients): at K = 8 about 2 FLOP/B, far below a GPU's ratio of fp32 rate to
bandwidth (about 17 FLOP/B on an H100), so both kernels are bandwidth-bound and their floor
is bytes / bandwidth.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .utils import AotConfig, device_guard, new_empty

# How unnormalized_derivatives is laid out (see fastgen.reference.splines): (..., K + 1) with
# no tails, (..., K - 1) interior knots with linear tails, (..., K) with circular tails (knot K
# is knot 0). tl.constexpr, because jit code reads only constexpr globals; the launchers pass
# their plain values.
TAILS_NONE = tl.constexpr(0)
TAILS_LINEAR = tl.constexpr(1)
TAILS_CIRCULAR = tl.constexpr(2)
TAILS_CODES = {
    None: TAILS_NONE.value,
    "linear": TAILS_LINEAR.value,
    "circular": TAILS_CIRCULAR.value,
}
# BLOCK * BLOCK_K: 4 tile entries per thread at 4 warps keeps the backward kernel at about
# 140 registers without spills for K = 8 to 64 on sm_80 / sm_90 (2048 spilled; forward: 48).
TILE_ELEMENTS = 512


@triton.jit
def _softplus(x):
    # Stable log(1 + exp(x)).
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


@triton.jit
def _load_inputs(
    inputs_ptr,  # (n_elements,), strided
    stride_in,
    n_elements,
    left,
    right,
    bottom,
    top,
    INVERSE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """This program's rows, their inputs, which lie inside the spline's domain, and the
    inputs clamped to it (outside elements are evaluated at the bound, then replaced)."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    row_mask = rows < n_elements
    x = tl.load(inputs_ptr + rows * stride_in, mask=row_mask, other=0.0).to(tl.float32)
    if INVERSE:
        lower, upper = bottom, top
    else:
        lower, upper = left, right
    inside = (x >= lower) & (x <= upper)
    return rows, row_mask, x, inside, tl.minimum(tl.maximum(x, lower), upper)


@triton.jit
def _load_side(
    ptr,  # (n_elements, num_bins), strided: unnormalized widths or heights
    rows,
    row_mask,
    stride_row,
    stride_col,
    num_bins,
    min_bin_size,
    BLOCK_K: tl.constexpr,
):
    """exp(u - max u) and its cumulative sum ([BLOCK, BLOCK_K], zero past K) and the scale
    (1 - mbs K) / sum(exp) turning them into knot fractions."""
    cols = tl.arange(0, BLOCK_K)
    col_mask = cols < num_bins
    offsets = rows[:, None] * stride_row + cols[None, :] * stride_col
    mask = row_mask[:, None] & col_mask[None, :]
    u = tl.load(ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    u = tl.where(col_mask[None, :], u, float("-inf"))
    e = tl.exp(u - tl.max(u, axis=1)[:, None])
    c = tl.cumsum(e, axis=1)
    scale = (1.0 - min_bin_size * num_bins) / tl.sum(e, axis=1)
    return e, c, scale


@triton.jit
def _bin_index(fraction, c, scale, num_bins, min_bin_size, BLOCK_K: tl.constexpr):
    """Count of interior knots j = 1..K-1, at mbs j + scale C[j - 1], at or below fraction."""
    cols = tl.arange(0, BLOCK_K)
    knots = c * scale[:, None] + min_bin_size * (cols[None, :] + 1).to(tl.float32)
    below = (fraction[:, None] >= knots) & (cols[None, :] < num_bins - 1)
    return tl.sum(below.to(tl.int32), axis=1)


@triton.jit
def _side_at_bin(
    e,
    c,
    scale,
    bin_idx,
    last,
    lower,
    upper,
    min_bin_size,
    BLOCK_K: tl.constexpr,
):
    """Lower knot and size of each element's bin, with the two scaled partial sums
    (scale C[k - 1], scale C[k]) the backward pass needs."""
    cols = tl.arange(0, BLOCK_K)
    pick = cols[None, :] == bin_idx[:, None]
    below_hi = tl.sum(tl.where(pick, c, 0.0), axis=1) * scale
    own = tl.sum(tl.where(pick, e, 0.0), axis=1) * scale
    below_lo = below_hi - own
    fraction_lo = below_lo + min_bin_size * bin_idx.to(tl.float32)
    fraction_hi = tl.where(last, 1.0, below_hi + min_bin_size * (bin_idx + 1).to(tl.float32))
    # Positions first, then their difference, so an input on an end knot is at theta 0 or 1.
    span = upper - lower
    lo = lower + fraction_lo * span
    return lo, lower + fraction_hi * span - lo, below_lo, below_hi


@triton.jit
def _derivative_columns(bin_idx, last, num_bins, TAILS: tl.constexpr):
    """Columns of unnormalized_derivatives for the bin's two knots, and whether each is an
    end knot of fixed slope 1 (linear tails)."""
    if TAILS == TAILS_LINEAR:
        col_lo = tl.maximum(bin_idx - 1, 0)
        col_hi = tl.minimum(bin_idx, num_bins - 2)
        return col_lo, col_hi, bin_idx == 0, last
    elif TAILS == TAILS_CIRCULAR:  # no fixed slope
        return bin_idx, tl.where(last, 0, bin_idx + 1), tl.zeros_like(last), tl.zeros_like(last)
    else:  # TAILS_NONE: no fixed slope
        return bin_idx, bin_idx + 1, tl.zeros_like(last), tl.zeros_like(last)


@triton.jit
def _inverse_theta(y, y_lo, height, delta, d_lo, d_hi):
    """Root in [0, 1] of the bin's quadratic, in the stable form 2c / (-b - sqrt(b^2 - 4ac));
    the discriminant is clamped at 0 against round-off (nflows#87)."""
    dy = y - y_lo
    slope_sum = d_lo + d_hi - 2.0 * delta
    a = dy * slope_sum + height * (delta - d_lo)
    b = height * d_lo - dy * slope_sum
    c = -delta * dy
    discriminant = tl.maximum(b * b - 4.0 * a * c, 0.0)
    return (2.0 * c) / (-b - tl.sqrt(discriminant))


@triton.jit
def _rq(theta, y_lo, height, delta, d_lo, d_hi):
    """y and log dy/dx of the bin's rational quadratic, with D, M, numerator and tau."""
    one_minus = 1.0 - theta
    tau = theta * one_minus
    slope_sum = d_lo + d_hi - 2.0 * delta
    denominator = delta + slope_sum * tau
    numerator = delta * theta * theta + d_lo * tau
    y = y_lo + height * numerator / denominator
    m = d_hi * theta * theta + 2.0 * delta * tau + d_lo * one_minus * one_minus
    logabsdet = tl.log(delta * delta * m) - 2.0 * tl.log(denominator)
    return y, logabsdet, denominator, m, numerator, tau


@triton.jit
def _locate(
    x_in,  # [BLOCK] inputs clamped to the domain
    rows,  # [BLOCK] int64
    row_mask,  # [BLOCK]
    widths_ptr,  # (n_elements, num_bins), strided
    stride_w_row,
    stride_w_col,
    heights_ptr,  # (n_elements, num_bins), strided
    stride_h_row,
    stride_h_col,
    derivatives_ptr,  # (n_elements, num_derivatives), strided
    stride_d_row,
    stride_d_col,
    num_bins,
    left,
    right,
    bottom,
    top,
    min_bin_width,
    min_bin_height,
    min_derivative,
    INVERSE: tl.constexpr,
    TAILS: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """Each element's bin index, its two sides, its two knots and theta, grouped as
    ``bin_idx, x_side, y_side, lo_knot, hi_knot, theta``:

    * ``x_side`` (widths) and ``y_side`` (heights): ``(lo, size, e, scale, below_lo,
      below_hi)``, the bin's lower knot and size, then what the backward pass needs: the
      row's exp(u - max u) ``[BLOCK, BLOCK_K]``, the scale turning it into knot fractions and
      the scaled partial sums below the bin's two knots (:func:`_side_at_bin`);
    * ``lo_knot`` and ``hi_knot``: ``(d, ud, col, fixed)``, the derivative at the knot, its
      unnormalised value and column, and whether it is an end knot of fixed slope 1.
    """
    ew, cw, scale_w = _load_side(
        widths_ptr, rows, row_mask, stride_w_row, stride_w_col, num_bins, min_bin_width, BLOCK_K
    )
    eh, ch, scale_h = _load_side(
        heights_ptr, rows, row_mask, stride_h_row, stride_h_col, num_bins, min_bin_height, BLOCK_K
    )
    if INVERSE:
        fraction = (x_in - bottom) / (top - bottom)
        bin_idx = _bin_index(fraction, ch, scale_h, num_bins, min_bin_height, BLOCK_K)
    else:
        fraction = (x_in - left) / (right - left)
        bin_idx = _bin_index(fraction, cw, scale_w, num_bins, min_bin_width, BLOCK_K)
    last = bin_idx == num_bins - 1
    x_lo, width, xb_lo, xb_hi = _side_at_bin(
        ew, cw, scale_w, bin_idx, last, left, right, min_bin_width, BLOCK_K
    )
    y_lo, height, yb_lo, yb_hi = _side_at_bin(
        eh, ch, scale_h, bin_idx, last, bottom, top, min_bin_height, BLOCK_K
    )
    col_lo, col_hi, fixed_lo, fixed_hi = _derivative_columns(bin_idx, last, num_bins, TAILS)
    d_row = derivatives_ptr + rows * stride_d_row
    ud_lo = tl.load(d_row + col_lo * stride_d_col, mask=row_mask, other=0.0).to(tl.float32)
    ud_hi = tl.load(d_row + col_hi * stride_d_col, mask=row_mask, other=0.0).to(tl.float32)
    d_lo = tl.where(fixed_lo, 1.0, min_derivative + _softplus(ud_lo))
    d_hi = tl.where(fixed_hi, 1.0, min_derivative + _softplus(ud_hi))
    if INVERSE:
        theta = _inverse_theta(x_in, y_lo, height, height / width, d_lo, d_hi)
    else:
        theta = (x_in - x_lo) / width
    x_side = (x_lo, width, ew, scale_w, xb_lo, xb_hi)
    y_side = (y_lo, height, eh, scale_h, yb_lo, yb_hi)
    lo_knot = (d_lo, ud_lo, col_lo, fixed_lo)
    hi_knot = (d_hi, ud_hi, col_hi, fixed_hi)
    return bin_idx, x_side, y_side, lo_knot, hi_knot, theta


@triton.jit
def _rq_spline_forward_kernel(
    inputs_ptr,  # (n_elements,), strided
    widths_ptr,  # (n_elements, num_bins), strided
    heights_ptr,  # (n_elements, num_bins), strided
    derivatives_ptr,  # (n_elements, num_derivatives), strided
    outputs_ptr,  # (n_elements,), contiguous
    logabsdet_ptr,  # (n_elements,), contiguous
    n_elements,
    num_bins,
    stride_in,
    stride_w_row,
    stride_w_col,
    stride_h_row,
    stride_h_col,
    stride_d_row,
    stride_d_col,
    left,
    right,
    bottom,
    top,
    min_bin_width,
    min_bin_height,
    min_derivative,
    INVERSE: tl.constexpr,
    TAILS: tl.constexpr,
    IDENTITY_OUTSIDE: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    rows, row_mask, x, inside, x_in = _load_inputs(
        inputs_ptr, stride_in, n_elements, left, right, bottom, top, INVERSE, BLOCK
    )
    _, x_side, y_side, lo_knot, hi_knot, theta = _locate(
        x_in,
        rows,
        row_mask,
        widths_ptr,
        stride_w_row,
        stride_w_col,
        heights_ptr,
        stride_h_row,
        stride_h_col,
        derivatives_ptr,
        stride_d_row,
        stride_d_col,
        num_bins,
        left,
        right,
        bottom,
        top,
        min_bin_width,
        min_bin_height,
        min_derivative,
        INVERSE,
        TAILS,
        BLOCK_K,
    )
    x_lo, width, _, _, _, _ = x_side
    y_lo, height, _, _, _, _ = y_side
    d_lo, _, _, _ = lo_knot
    d_hi, _, _, _ = hi_knot
    y, logabsdet, _, _, _, _ = _rq(theta, y_lo, height, height / width, d_lo, d_hi)
    # Clamped to the range, as the reference does, so that end points stay end points.
    if INVERSE:
        y = tl.minimum(tl.maximum(x_lo + theta * width, left), right)
        logabsdet = -logabsdet
    else:
        y = tl.minimum(tl.maximum(y, bottom), top)
    if IDENTITY_OUTSIDE:
        y = tl.where(inside, y, x)
        logabsdet = tl.where(inside, logabsdet, 0.0)
    else:
        y = tl.where(inside, y, float("nan"))
        logabsdet = tl.where(inside, logabsdet, float("nan"))
    out_dtype = outputs_ptr.dtype.element_ty
    tl.store(outputs_ptr + rows, y.to(out_dtype), mask=row_mask)
    tl.store(logabsdet_ptr + rows, logabsdet.to(out_dtype), mask=row_mask)


@triton.jit
def _store_grad_side(
    ptr,  # (n_elements, num_bins), contiguous: the gradient of widths or heights
    rows,
    row_mask,
    side,
    bin_idx,
    grad_lo,
    grad_hi,
    span,
    num_bins,
    min_bin_size,
    BLOCK_K: tl.constexpr,
):
    """Gradient with respect to one row of unnormalised bin sizes from the gradients at the
    bin's two knot positions: p_i (dL/dp_i - sum_j p_j dL/dp_j) with dL/dp_i = span c (g_lo
    [i < k] + g_hi [i <= k]); pinned end knots carry none (fastgen.reference.splines).
    ``side`` is :func:`_locate`'s x or y side, ``span`` its range's length."""
    _, _, e, scale, below_lo, below_hi = side
    cols = tl.arange(0, BLOCK_K)
    g_lo = grad_lo * span
    g_hi = tl.where(bin_idx == num_bins - 1, 0.0, grad_hi * span)
    offset = (g_lo * below_lo + g_hi * below_hi) / (1.0 - min_bin_size * num_bins)
    k = bin_idx[:, None]
    at_k = tl.where(cols[None, :] == k, g_hi[:, None], 0.0)
    step = tl.where(cols[None, :] < k, (g_lo + g_hi)[:, None], at_k)
    grad = (step - offset[:, None]) * e * scale[:, None]
    mask = row_mask[:, None] & (cols[None, :] < num_bins)
    offsets = rows[:, None] * num_bins + cols[None, :]
    tl.store(ptr + offsets, grad.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rq_spline_backward_kernel(
    inputs_ptr,  # (n_elements,), strided
    widths_ptr,  # (n_elements, num_bins), strided
    heights_ptr,  # (n_elements, num_bins), strided
    derivatives_ptr,  # (n_elements, num_derivatives), strided
    grad_outputs_ptr,  # (n_elements,), strided
    grad_logabsdet_ptr,  # (n_elements,), strided
    grad_inputs_ptr,  # (n_elements,), contiguous
    grad_widths_ptr,  # (n_elements, num_bins), contiguous
    grad_heights_ptr,  # (n_elements, num_bins), contiguous
    grad_derivatives_ptr,  # (n_elements, num_derivatives), contiguous
    n_elements,
    num_bins,
    num_derivatives,
    stride_in,
    stride_w_row,
    stride_w_col,
    stride_h_row,
    stride_h_col,
    stride_d_row,
    stride_d_col,
    stride_grad_out,
    stride_grad_lad,
    left,
    right,
    bottom,
    top,
    min_bin_width,
    min_bin_height,
    min_derivative,
    INVERSE: tl.constexpr,
    TAILS: tl.constexpr,
    IDENTITY_OUTSIDE: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    rows, row_mask, x, inside, x_in = _load_inputs(
        inputs_ptr, stride_in, n_elements, left, right, bottom, top, INVERSE, BLOCK
    )
    g_out = tl.load(grad_outputs_ptr + rows * stride_grad_out, mask=row_mask, other=0.0)
    g_lad = tl.load(grad_logabsdet_ptr + rows * stride_grad_lad, mask=row_mask, other=0.0)
    g_out = g_out.to(tl.float32)
    g_lad = g_lad.to(tl.float32)
    g_out_in = tl.where(inside, g_out, 0.0)
    g_lad_in = tl.where(inside, g_lad, 0.0)
    bin_idx, x_side, y_side, lo_knot, hi_knot, theta = _locate(
        x_in,
        rows,
        row_mask,
        widths_ptr,
        stride_w_row,
        stride_w_col,
        heights_ptr,
        stride_h_row,
        stride_h_col,
        derivatives_ptr,
        stride_d_row,
        stride_d_col,
        num_bins,
        left,
        right,
        bottom,
        top,
        min_bin_width,
        min_bin_height,
        min_derivative,
        INVERSE,
        TAILS,
        BLOCK_K,
    )
    _, width, _, _, _, _ = x_side
    y_lo, height, _, _, _, _ = y_side
    d_lo, ud_lo, col_lo, fixed_lo = lo_knot
    d_hi, ud_hi, col_hi, fixed_hi = hi_knot
    delta = height / width
    _, _, denominator, m, numerator, tau = _rq(theta, y_lo, height, delta, d_lo, d_hi)

    # Partials of y and l = log dy/dx in theta, s = delta, height, d_lo, d_hi.
    one_minus = 1.0 - theta
    slope_sum = d_lo + d_hi - 2.0 * delta
    inv_d = 1.0 / denominator
    inv_m = 1.0 / m
    h_d2 = height * inv_d * inv_d
    dtau = 1.0 - 2.0 * theta
    y_theta = delta * height * m * inv_d * inv_d
    l_theta = 2.0 * (d_hi * theta + delta * dtau - d_lo * one_minus) * inv_m
    l_theta -= 2.0 * slope_sum * dtau * inv_d
    y_s = h_d2 * (theta * theta * denominator - numerator * (1.0 - 2.0 * tau))
    l_s = 2.0 / delta + 2.0 * tau * inv_m - 2.0 * (1.0 - 2.0 * tau) * inv_d
    y_h = numerator * inv_d
    y_d0 = h_d2 * tau * (denominator - numerator)
    y_d1 = -h_d2 * numerator * tau
    l_d0 = one_minus * one_minus * inv_m - 2.0 * tau * inv_d
    l_d1 = theta * theta * inv_m - 2.0 * tau * inv_d

    if INVERSE:
        g_in = (g_out_in * width - g_lad_in * l_theta) / y_theta
        coef_y = -g_in
        coef_l = -g_lad_in
        g_x_lo = g_out_in
    else:
        g_in = (g_out_in * y_theta + g_lad_in * l_theta) / width
        coef_y = g_out_in
        coef_l = g_lad_in
        g_x_lo = -g_in
    g_s = coef_y * y_s + coef_l * l_s
    g_width = g_x_lo * theta - g_s * delta / width
    g_height = coef_y * y_h + g_s / width

    if IDENTITY_OUTSIDE:
        g_in = tl.where(inside, g_in, g_out)
    else:
        g_in = tl.where(inside, g_in, float("nan"))
    tl.store(grad_inputs_ptr + rows, g_in.to(grad_inputs_ptr.dtype.element_ty), mask=row_mask)
    _store_grad_side(
        grad_widths_ptr,
        rows,
        row_mask,
        x_side,
        bin_idx,
        g_x_lo - g_width,
        g_width,
        right - left,
        num_bins,
        min_bin_width,
        BLOCK_K,
    )
    _store_grad_side(
        grad_heights_ptr,
        rows,
        row_mask,
        y_side,
        bin_idx,
        coef_y - g_height,
        g_height,
        top - bottom,
        num_bins,
        min_bin_height,
        BLOCK_K,
    )

    # softplus' = sigmoid; the two knots may share a column (circular K = 1 never; linear K = 2
    # through a fixed end), so the contributions add like a scatter_add.
    g_d_lo = tl.where(fixed_lo, 0.0, (coef_y * y_d0 + coef_l * l_d0) * tl.sigmoid(ud_lo))
    g_d_hi = tl.where(fixed_hi, 0.0, (coef_y * y_d1 + coef_l * l_d1) * tl.sigmoid(ud_hi))
    d_cols = tl.arange(0, BLOCK_D)[None, :]
    g_d = tl.where(d_cols == col_lo[:, None], g_d_lo[:, None], 0.0)
    g_d += tl.where(d_cols == col_hi[:, None], g_d_hi[:, None], 0.0)
    d_mask = row_mask[:, None] & (d_cols < num_derivatives)
    d_ptrs = grad_derivatives_ptr + rows[:, None] * num_derivatives + d_cols
    tl.store(d_ptrs, g_d.to(grad_derivatives_ptr.dtype.element_ty), mask=d_mask)


def _settings(num_bins: int) -> tuple[int, int]:
    """(BLOCK, BLOCK_K): elements per program and the padded bin count (TILE_ELEMENTS)."""
    block_k = triton.next_power_of_2(num_bins)
    return max(1, TILE_ELEMENTS // block_k), block_k


def _flatten(inputs, widths, heights, derivatives):
    """2-D views (copies only when the batch dimensions cannot be merged by a view)."""
    num_bins = widths.shape[-1]
    return (
        inputs.reshape(-1),
        widths.reshape(-1, num_bins),
        heights.reshape(-1, num_bins),
        derivatives.reshape(-1, derivatives.shape[-1]),
    )


def _shared_arguments(x, w, h, d, inverse, bounds, min_sizes, tails, identity_outside) -> dict:
    """The arguments both kernels take, by name, for the flattened tensors ``x, w, h, d``;
    scalar floats are pinned to Python floats (float32 in the kernels)."""
    left, right, bottom, top = map(float, bounds)
    min_bin_width, min_bin_height, min_derivative = map(float, min_sizes)
    block, block_k = _settings(w.shape[1])
    return dict(
        inputs_ptr=x,
        widths_ptr=w,
        heights_ptr=h,
        derivatives_ptr=d,
        n_elements=x.shape[0],
        num_bins=w.shape[1],
        stride_in=x.stride(0),
        stride_w_row=w.stride(0),
        stride_w_col=w.stride(1),
        stride_h_row=h.stride(0),
        stride_h_col=h.stride(1),
        stride_d_row=d.stride(0),
        stride_d_col=d.stride(1),
        left=left,
        right=right,
        bottom=bottom,
        top=top,
        min_bin_width=min_bin_width,
        min_bin_height=min_bin_height,
        min_derivative=min_derivative,
        INVERSE=inverse,
        TAILS=tails,
        IDENTITY_OUTSIDE=identity_outside,
        BLOCK=block,
        BLOCK_K=block_k,
    )


@triton_op("fastgen::rq_spline_forward", mutates_args=())
def rq_spline_forward(
    inputs: torch.Tensor,
    widths: torch.Tensor,
    heights: torch.Tensor,
    derivatives: torch.Tensor,
    inverse: bool,
    bounds: list[float],
    min_sizes: list[float],
    tails: int,
    identity_outside: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the forward kernel; ``inputs (...)``, parameters ``(..., K)`` / ``(..., K')``.
    Returns contiguous ``(outputs, logabsdet)`` shaped like ``inputs``."""
    outputs = new_empty(inputs.shape, inputs.dtype, inputs.device)
    logabsdet = new_empty(inputs.shape, inputs.dtype, inputs.device)
    if inputs.numel() == 0:
        return outputs, logabsdet
    args = _shared_arguments(
        *_flatten(inputs, widths, heights, derivatives),
        inverse,
        bounds,
        min_sizes,
        tails,
        identity_outside,
    )
    grid = (triton.cdiv(args["n_elements"], args["BLOCK"]),)
    with device_guard(inputs):
        wrap_triton(_rq_spline_forward_kernel)[grid](
            outputs_ptr=outputs,
            logabsdet_ptr=logabsdet,
            **args,
        )
    return outputs, logabsdet


@triton_op("fastgen::rq_spline_backward", mutates_args=())
def rq_spline_backward(
    inputs: torch.Tensor,
    widths: torch.Tensor,
    heights: torch.Tensor,
    derivatives: torch.Tensor,
    grad_outputs: torch.Tensor,
    grad_logabsdet: torch.Tensor,
    inverse: bool,
    bounds: list[float],
    min_sizes: list[float],
    tails: int,
    identity_outside: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the backward kernel; returns contiguous gradients for the four tensors."""
    grads = [new_empty(t.shape, t.dtype, t.device) for t in (inputs, widths, heights, derivatives)]
    if inputs.numel() == 0:
        return tuple(grads)
    x, w, h, d = _flatten(inputs, widths, heights, derivatives)
    args = _shared_arguments(x, w, h, d, inverse, bounds, min_sizes, tails, identity_outside)
    g_out, g_lad = grad_outputs.reshape(-1), grad_logabsdet.reshape(-1)
    grid = (triton.cdiv(args["n_elements"], args["BLOCK"]),)
    with device_guard(inputs):
        wrap_triton(_rq_spline_backward_kernel)[grid](
            grad_outputs_ptr=g_out,
            grad_logabsdet_ptr=g_lad,
            grad_inputs_ptr=grads[0],
            grad_widths_ptr=grads[1],
            grad_heights_ptr=grads[2],
            grad_derivatives_ptr=grads[3],
            num_derivatives=d.shape[1],
            stride_grad_out=g_out.stride(0),
            stride_grad_lad=g_lad.stride(0),
            BLOCK_D=triton.next_power_of_2(d.shape[1]),
            **args,
        )
    return tuple(grads)


class RationalQuadraticSplineTriton(torch.autograd.Function):
    """Autograd glue: the backward kernel recomputes from the saved inputs."""

    @staticmethod
    def forward(
        ctx,
        inputs,
        widths,
        heights,
        derivatives,
        inverse,
        bounds,
        min_sizes,
        tails,
        identity_outside,
    ):
        args = (
            bool(inverse),
            list(bounds),
            list(min_sizes),
            TAILS_CODES[tails],
            bool(identity_outside),
        )
        outputs, logabsdet = rq_spline_forward(inputs, widths, heights, derivatives, *args)
        ctx.save_for_backward(inputs, widths, heights, derivatives)
        ctx.args = args
        return outputs, logabsdet

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_outputs, grad_logabsdet):
        grads = rq_spline_backward(*ctx.saved_tensors, grad_outputs, grad_logabsdet, *ctx.args)
        return (*grads, None, None, None, None, None)


def rational_quadratic_spline_triton(
    inputs,
    widths,
    heights,
    derivatives,
    inverse,
    bounds,
    min_sizes,
    tails,
    identity_outside,
):
    """Same contract as ``fastgen.reference.splines.RationalQuadraticSpline.apply``."""
    return RationalQuadraticSplineTriton.apply(
        inputs, widths, heights, derivatives, inverse, bounds, min_sizes, tails, identity_outside
    )


# Representative compilations for profiling.aot / profiling: the smallest and largest tiles.
_FLOAT_ARGS = (
    "left",
    "right",
    "bottom",
    "top",
    "min_bin_width",
    "min_bin_height",
    "min_derivative",
)


def _aot(kernel, num_bins, inverse, tails, **extra):
    block, block_k = _settings(num_bins)
    tails_name = {code: name for name, code in TAILS_CODES.items()}[tails]
    return AotConfig(
        kernel,
        constexprs=dict(
            INVERSE=inverse,
            TAILS=tails,
            IDENTITY_OUTSIDE=True,
            BLOCK=block,
            BLOCK_K=block_k,
            **extra,
        ),
        types=dict.fromkeys(_FLOAT_ARGS, "fp32"),
        label=f"K={num_bins} {'inverse' if inverse else 'forward'} {tails_name}",
    )


AOT_CONFIGS = [
    config
    for num_bins, inverse, tails in (
        (8, False, TAILS_LINEAR.value),
        (64, True, TAILS_CIRCULAR.value),
    )
    for config in (
        _aot(_rq_spline_forward_kernel, num_bins, inverse, tails),
        _aot(
            _rq_spline_backward_kernel,
            num_bins,
            inverse,
            tails,
            BLOCK_D=triton.next_power_of_2(num_bins),
        ),
    )
]
