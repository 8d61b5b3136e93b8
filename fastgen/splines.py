"""Rational-quadratic splines (Durkan et al. 2019, arXiv:1906.04032), nflows-compatible.

Drop-in replacements for ``nflows.transforms.splines.rational_quadratic``'s
``unconstrained_rational_quadratic_spline`` and ``rational_quadratic_spline``: same
arguments, shapes and numbers, plus circular tails (normflows convention) and a ``backend``.
"""

from __future__ import annotations

import torch

from fastgen._checks import check_choice, check_number, check_tensor
from fastgen.backend import HALF_DTYPES, KERNEL_DTYPES, resolve_backend
from fastgen.reference.splines import RationalQuadraticSpline
from fastgen.tracing import annotate

DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3
TAILS = ("linear", "circular")


@annotate("fastgen.rq_spline")
def _spline(
    inputs,
    widths,
    heights,
    derivatives,
    inverse,
    bounds,
    min_bin_width,
    min_bin_height,
    min_derivative,
    tails,
    backend,
):
    """Validation and dispatch shared by both splines (``tails=None``: the bounded one)."""
    for name, value in (
        ("inputs", inputs),
        ("unnormalized_widths", widths),
        ("unnormalized_heights", heights),
        ("unnormalized_derivatives", derivatives),
    ):
        check_tensor(name, value)
    dtypes = {t.dtype for t in (inputs, widths, heights, derivatives)}
    if len(dtypes) > 1:
        raise TypeError(
            "inputs and the three parameter tensors must share one dtype, got "
            f"inputs {inputs.dtype}, unnormalized_widths {widths.dtype}, unnormalized_heights "
            f"{heights.dtype}, unnormalized_derivatives {derivatives.dtype}"
        )
    if widths.dim() == 0 or widths.shape[:-1] != inputs.shape:
        raise ValueError(
            "unnormalized_widths must have shape inputs.shape + (num_bins,) = "
            f"{tuple(inputs.shape)} + (K,), got {tuple(widths.shape)}"
        )
    num_bins = widths.shape[-1]
    if num_bins < 2:
        raise ValueError(f"num_bins (last dim of unnormalized_widths) must be >= 2, got {num_bins}")
    if heights.shape != widths.shape:
        raise ValueError(
            f"unnormalized_heights must have the shape of unnormalized_widths "
            f"{tuple(widths.shape)}, got {tuple(heights.shape)}"
        )
    num_derivatives = {"linear": -1, "circular": 0, None: 1}[tails]
    expected = (*inputs.shape, num_bins + num_derivatives)
    if tuple(derivatives.shape) != expected:
        raise ValueError(
            f"unnormalized_derivatives must have shape {expected} (num_bins {num_bins}"
            f"{num_derivatives:+d} for these tails), got {tuple(derivatives.shape)}"
        )
    for name, value in (("min_bin_width", min_bin_width), ("min_bin_height", min_bin_height)):
        value = check_number(name, value)
        if not 0 <= value * num_bins < 1:
            raise ValueError(
                f"{name} must be in [0, 1 / num_bins) = [0, {1 / num_bins:g}) for num_bins = "
                f"{num_bins}, got {value}"
            )
    check_number("min_derivative", min_derivative, minimum=0)
    if tails is None and not torch.compiler.is_compiling() and inputs.numel() > 0:
        lower, upper = bounds[2:] if inverse else bounds[:2]
        low, high = inputs.min().item(), inputs.max().item()  # NaN fails both tests below
        if not (low >= lower and high <= upper):
            domain = "[bottom, top]" if inverse else "[left, right]"
            raise ValueError(
                f"inputs must lie in {domain} = [{lower}, {upper}], got values in [{low}, {high}]"
            )

    # Outside the domain: identity with tails, NaN for the bounded spline (under compile).
    identity_outside = tails is not None
    min_sizes = (float(min_bin_width), float(min_bin_height), float(min_derivative))
    tensors = (inputs, widths, heights, derivatives)
    if resolve_backend(backend, tensors, supported_dtypes=KERNEL_DTYPES) == "triton":
        from fastgen.kernels.splines import rational_quadratic_spline_triton

        return rational_quadratic_spline_triton(
            *tensors, inverse, bounds, min_sizes, tails, identity_outside
        )
    dtype = inputs.dtype
    if dtype in HALF_DTYPES:
        tensors = tuple(t.float() for t in tensors)
    outputs, logabsdet = RationalQuadraticSpline.apply(
        *tensors, bool(inverse), bounds, min_sizes, tails, identity_outside
    )
    return outputs.to(dtype), logabsdet.to(dtype)


def unconstrained_rational_quadratic_spline(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tails: str = "linear",
    tail_bound: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monotonic rational-quadratic spline on ``[-B, B]``, ``B = tail_bound``, with tails.

    Elementwise ``y = f(x)`` with ``K`` bins; ``logabsdet = log|df/dx|`` at ``x`` (forward),
    or ``-log|df/dx|`` at the returned point (``inverse=True``, ``x = f^-1(y)``). Bin widths
    and heights are ``softmax`` of the unnormalised ones with a minimum
    (``min + (1 - min K) softmax``); knot derivatives ``min_derivative + softplus``.

    Args:
        inputs: ``(...)``, the points to transform. Any floating dtype; float16 / bfloat16 are
            computed in float32 and returned in their dtype.
        unnormalized_widths: ``(..., K)``, ``K >= 2`` bins: logits of the bin widths (the
            conditioner network's output), same dtype and device as ``inputs``.
        unnormalized_heights: ``(..., K)``: logits of the bin heights.
        unnormalized_derivatives: ``(..., K - 1)`` for ``tails="linear"`` (interior knots;
            the end knots have slope exactly 1 to join the identity tails), ``(..., K)`` for
            ``tails="circular"`` (the boundary derivative is shared by both ends, normflows'
            convention for angles on ``[-B, B]``).
        inverse: evaluate ``f^-1`` instead of ``f``.
        tails: ``"linear"`` or ``"circular"``; outside ``[-B, B]`` both are the identity
            with ``logabsdet = 0`` (inputs exactly on ``±B`` go through the spline).
        tail_bound: ``B > 0``, the half-width of the spline's interval, in the units of
            ``inputs``.
        min_bin_width: the least bin width as a fraction of ``2 B``, in ``[0, 1 / K)``: keeps
            the map's slope bounded.
        min_bin_height: the least bin height, as ``min_bin_width``.
        min_derivative: the least knot derivative, ``>= 0``: keeps the map invertible.
        backend: ``"auto"``, ``"triton"``, ``"torch"`` or ``None`` (``FASTGEN_BACKEND``);
            see :mod:`fastgen.backend`.

    Returns:
        ``(outputs, logabsdet)``, both ``(...)`` in the dtype of ``inputs``. NaN inputs give
        NaN outputs and logabsdet 0, as in nflows.

    Raises:
        TypeError: a non-tensor or non-floating argument, mixed dtypes, non-number bounds.
        ValueError: shapes that do not match ``inputs.shape + (K,)`` (and the derivative
            layout of ``tails``), ``K < 2``, ``min_bin_width * K >= 1`` (same for heights),
            ``tail_bound <= 0``, unknown ``tails`` or ``backend``, tensors on several devices.

    Matches ``nflows.transforms.splines.unconstrained_rational_quadratic_spline`` (and
    normflows' for ``tails="circular"``) without host synchronisation or boolean indexing.

    Example:
        >>> import torch
        >>> from fastgen import unconstrained_rational_quadratic_spline
        >>> inputs = torch.tensor([-2.0, -0.5, 0.5])
        >>> widths = heights = torch.zeros(3, 4)  # 4 equal bins: knots at -1, -0.5, ..., 1
        >>> derivatives = torch.zeros(3, 3)  # interior slopes softplus(0) + 1e-3
        >>> outputs, logabsdet = unconstrained_rational_quadratic_spline(
        ...     inputs, widths, heights, derivatives, tail_bound=1.0
        ... )
        >>> outputs.round(decimals=4)  # the identity tail, then two knots
        tensor([-2.0000, -0.5000,  0.5000])
        >>> logabsdet.round(decimals=4)  # 0 in the tail, log(0.6941) on the knots (nflows')
        tensor([ 0.0000, -0.3651, -0.3651])
    """
    check_choice("tails", tails, TAILS)
    bound = check_number("tail_bound", tail_bound, minimum=0, exclusive=True)
    return _spline(
        inputs,
        unnormalized_widths,
        unnormalized_heights,
        unnormalized_derivatives,
        inverse,
        (-bound, bound, -bound, bound),
        min_bin_width,
        min_bin_height,
        min_derivative,
        tails,
        backend,
    )


def rational_quadratic_spline(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    left: float = 0.0,
    right: float = 1.0,
    bottom: float = 0.0,
    top: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monotonic rational-quadratic spline mapping ``[left, right]`` onto ``[bottom, top]``.

    Same map, conventions and return values as
    :func:`unconstrained_rational_quadratic_spline`, without tails:
    ``unnormalized_derivatives`` is ``(..., K + 1)`` (one per knot, ends included).

    Inputs outside the domain (``[left, right]``, or ``[bottom, top]`` with ``inverse``)
    raise ``ValueError`` in eager mode, as nflows does (one host synchronisation). Under
    ``torch.compile`` that check is skipped (it would break the graph) and such elements
    give NaN outputs, logabsdet and input gradients.

    Args:
        inputs: ``(...)``, in ``[left, right]`` (``[bottom, top]`` with ``inverse``).
        unnormalized_widths: ``(..., K)``, as :func:`unconstrained_rational_quadratic_spline`.
        unnormalized_heights: ``(..., K)``.
        unnormalized_derivatives: ``(..., K + 1)``, one per knot.
        inverse: evaluate ``f^-1`` instead of ``f``.
        left: the domain's lower end.
        right: the domain's upper end, ``> left``.
        bottom: the image's lower end.
        top: the image's upper end, ``> bottom``.
        min_bin_width: in ``[0, 1 / K)``, as a fraction of ``right - left``.
        min_bin_height: in ``[0, 1 / K)``, as a fraction of ``top - bottom``.
        min_derivative: ``>= 0``.
        backend: as :func:`unconstrained_rational_quadratic_spline`.

    Returns:
        ``(outputs, logabsdet)``, both ``(...)`` in the dtype of ``inputs``.

    Raises:
        ValueError: inputs outside the domain (eager), ``right <= left`` or ``top <=
            bottom``, and everything :func:`unconstrained_rational_quadratic_spline` raises.
        TypeError: as :func:`unconstrained_rational_quadratic_spline`.

    Example:
        >>> import torch
        >>> from fastgen import rational_quadratic_spline
        >>> inputs = torch.tensor([0.0, 0.25, 1.0])
        >>> widths = heights = torch.zeros(3, 2)  # 2 equal bins
        >>> derivatives = torch.zeros(3, 3)  # slopes softplus(0) + 1e-3 at the 3 knots
        >>> outputs, logabsdet = rational_quadratic_spline(inputs, widths, heights, derivatives)
        >>> outputs.round(decimals=4)
        tensor([0.0000, 0.2500, 1.0000])
        >>> logabsdet.round(decimals=4)  # nflows' numbers
        tensor([-0.3651,  0.1660, -0.3651])
    """
    bounds = tuple(
        check_number(name, value)
        for name, value in (("left", left), ("right", right), ("bottom", bottom), ("top", top))
    )
    if bounds[1] <= bounds[0]:
        raise ValueError(f"right must be > left, got left={left}, right={right}")
    if bounds[3] <= bounds[2]:
        raise ValueError(f"top must be > bottom, got bottom={bottom}, top={top}")
    return _spline(
        inputs,
        unnormalized_widths,
        unnormalized_heights,
        unnormalized_derivatives,
        inverse,
        bounds,
        min_bin_width,
        min_bin_height,
        min_derivative,
        None,
        backend,
    )
