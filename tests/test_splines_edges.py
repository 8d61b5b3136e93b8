"""Splines at their knots and with non-finite values (issue 14), both backends.

Inputs exactly on a knot's image and one ulp either side of it, with unnormalised parameters
up to about ±3e3, in every tails setting (the bounded spline with its end knots ``left /
right / bottom / top`` included), forward and inverse. Before issue 14 the position in the
bin (theta) came out a hair outside [0, 1] there and the log-determinant was NaN, and the
inverse lost up to all its digits near the top of a bin where ``d_lo >> delta, d_hi``.

The oracle is the float64 reference evaluated on the same (upcast) inputs and parameters;
"within round-off" is judged by a perturbation envelope: the largest change of that float64
answer when every input and parameter is moved by a few ulps of the tested dtype (random
signs). A backward-stable implementation stays within a small multiple of it; ill-conditioned
elements (flat bins, huge derivatives) get a wide envelope, well-conditioned ones a narrow
one. The Triton kernels run under TRITON_INTERPRET=1 on CPU tensors (tests/conftest.py).
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nflows.transforms.splines import rational_quadratic as nflows_rq
from spline_cases import DERIVATIVE_OFFSET

import fastgen

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
try:
    import fastgen.kernels.splines  # noqa: F401

    BACKENDS = ["torch", "triton"]
except ImportError:  # triton is optional on CPU
    BACKENDS = ["torch"]

# (left, right, bottom, top) of the bounded spline: different on purpose, so that a mix-up
# of the x and y intervals fails.
BOUNDS = (-1.0, 2.0, 0.5, 3.0)
TAIL_BOUND = 2.5
MIN_BIN_SIZE = 1e-3  # the default min_bin_width and min_bin_height
ENVELOPE_ULPS = 2.0
# A backward-stable result lies within a small multiple of the (first-order) envelope plus a
# few ulps of the answer: measured up to 3.6 x the envelope with the fixes of issue 14, up to
# 1.8e5 x (and NaN) without them (K = 2, 5, 10, scales 1 to 3e3, every tails setting).
ENVELOPE_FACTOR = 10.0
ULPS = 8.0


def _interval(tails, inverse):
    """The domain of the pass (x for forward, y for the inverse) and all four bounds."""
    if tails is None:
        left, right, bottom, top = BOUNDS
    else:
        left, bottom, right, top = -TAIL_BOUND, -TAIL_BOUND, TAIL_BOUND, TAIL_BOUND
    return ((bottom, top) if inverse else (left, right)), (left, right, bottom, top)


def _spline(inputs, params, inverse, tails, backend):
    if tails is None:
        left, right, bottom, top = BOUNDS
        return fastgen.rational_quadratic_spline(
            inputs,
            *params,
            inverse=inverse,
            left=left,
            right=right,
            bottom=bottom,
            top=top,
            backend=backend,
        )
    return fastgen.unconstrained_rational_quadratic_spline(
        inputs, *params, inverse=inverse, tails=tails, tail_bound=TAIL_BOUND, backend=backend
    )


def _knots(unnormalized, lower, upper):
    """All K + 1 knot positions (..., K + 1) in float64, from the definition (softmax with
    a minimum, cumulative sum, end knots pinned), independently of fastgen's code."""
    num_bins = unnormalized.shape[-1]
    sizes = MIN_BIN_SIZE + (1 - MIN_BIN_SIZE * num_bins) * torch.softmax(unnormalized, -1)
    fractions = torch.nn.functional.pad(torch.cumsum(sizes, -1), (1, 0))
    fractions[..., -1] = 1.0
    return lower + (upper - lower) * fractions


def _knot_problems(num_bins, scale, tails, inverse, dtype, seed):
    """Every knot image of 16 random splines, rounded to ``dtype``, and one ulp below and
    above it: inputs (N,) and parameters (N, K), all of ``dtype``."""
    generator = torch.Generator().manual_seed(seed)
    count = 16
    shapes = (num_bins, num_bins, num_bins + DERIVATIVE_OFFSET[tails])
    params = [
        scale * torch.randn(count, n, generator=generator, dtype=torch.float64) for n in shapes
    ]
    params = [p.to(dtype) for p in params]
    (lower, upper), _ = _interval(tails, inverse)
    knots = _knots(params[1 if inverse else 0].double(), lower, upper).to(dtype).flatten()
    plus = torch.nextafter(knots, torch.tensor(math.inf, dtype=dtype))
    minus = torch.nextafter(knots, torch.tensor(-math.inf, dtype=dtype))
    inputs = torch.cat([knots, plus, minus])
    if tails is None:  # the bounded spline refuses inputs outside its domain
        inputs = inputs.clamp(lower, upper)
    rows = torch.arange(count).repeat_interleave(num_bins + 1).repeat(3)
    return inputs, [p[rows] for p in params]


def _envelope(inputs, params, inverse, tails, dtype):
    """The float64 answer and its first-order change when every input and parameter ``a``
    moves by ``ENVELOPE_ULPS * eps(dtype) * (|a| + m)`` (``m``: the interval's magnitude for
    inputs, since knot positions are sums over it; 1 for parameters), the worst sign for
    each: ``sum_a |df/da| delta_a``. Taken at the input and at the input moved by that
    ``delta`` either way, because at a knot the two bins' derivatives differ."""
    eps = ENVELOPE_ULPS * torch.finfo(dtype).eps
    (lower, upper), _ = _interval(tails, inverse)
    args64 = [t.double() for t in (inputs, *params)]
    deltas = [
        eps * (t.abs() + (max(abs(lower), abs(upper)) if i == 0 else 1.0))
        for i, t in enumerate(args64)
    ]
    exact = _spline(args64[0], args64[1:], inverse, tails, "torch")
    spread = [torch.zeros_like(exact[0]), torch.zeros_like(exact[0])]
    for shift in (-1.0, 0.0, 1.0):
        shifted = args64[0] + shift * deltas[0]
        if tails is None:
            shifted = shifted.clamp(lower, upper)
        leaves = [t.clone().requires_grad_() for t in (shifted, *args64[1:])]
        values = _spline(leaves[0], leaves[1:], inverse, tails, "torch")
        for j, value in enumerate(values):
            grads = torch.autograd.grad(value.sum(), leaves, retain_graph=j == 0)
            change = sum(
                (g.abs() * d).reshape(len(inputs), -1).sum(-1)
                for g, d in zip(grads, deltas, strict=True)
            )
            spread[j] = torch.maximum(spread[j], change + (value.detach() - exact[j]).abs())
    return exact, spread


def _assert_within_roundoff(actual, exact, spread, dtype, name):
    assert actual.dtype == dtype
    assert actual.isfinite().all(), (
        f"{name}: non-finite values at {(~actual.isfinite()).nonzero().flatten().tolist()}"
    )
    error = (actual.double() - exact).abs()
    bound = ENVELOPE_FACTOR * spread + ULPS * torch.finfo(dtype).eps * (1 + exact.abs())
    worst = (error / bound).argmax()
    assert (error <= bound).all(), (
        f"{name}: error {error[worst]:.3g} > {bound[worst]:.3g} at element {worst.item()} "
        f"(float64 {exact[worst]:.17g}, got {actual[worst].item():.9g}, perturbation "
        f"envelope {spread[worst]:.3g})"
    )


def _edge_case(backend, num_bins, log_scale, tails, inverse, dtype, seed):
    inputs, params = _knot_problems(num_bins, 10.0**log_scale, tails, inverse, dtype, seed)
    exact = _envelope(inputs, params, inverse, tails, dtype)
    device_args = [t.to(DEVICE) for t in (inputs, *params)]
    outputs, logabsdet = _spline(device_args[0], device_args[1:], inverse, tails, backend)
    for name, actual, reference, spread in zip(
        ("outputs", "logabsdet"), (outputs, logabsdet), *exact, strict=True
    ):
        _assert_within_roundoff(actual.cpu(), reference, spread, dtype, f"{backend} {name}")


EDGE_SETTINGS = dict(
    num_bins=st.integers(2, 12),
    log_scale=st.floats(0.0, 3.5),
    tails=st.sampled_from(["linear", "circular", None]),
    inverse=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)


@settings(max_examples=20, deadline=None)
@given(**EDGE_SETTINGS)
def test_reference_at_knot_edges(num_bins, log_scale, tails, inverse, seed):
    _edge_case("torch", num_bins, log_scale, tails, inverse, torch.float32, seed)


def _nflows_forward(inputs, params, tails):
    """nflows' forward pass (float64); circular tails through its bounded spline with the
    boundary derivative repeated (normflows' definition), the identity outside."""
    widths, heights, derivatives = params
    if tails == "linear":
        return nflows_rq.unconstrained_rational_quadratic_spline(
            inputs, *params, tails="linear", tail_bound=TAIL_BOUND
        )
    if tails is None:
        left, right, bottom, top = BOUNDS
    else:
        left, bottom, right, top = -TAIL_BOUND, -TAIL_BOUND, TAIL_BOUND, TAIL_BOUND
        derivatives = torch.cat([derivatives, derivatives[..., :1]], dim=-1)
    inside = (inputs >= left) & (inputs <= right)
    outputs, logabsdet = inputs.clone(), torch.zeros_like(inputs)
    outputs[inside], logabsdet[inside] = nflows_rq.rational_quadratic_spline(
        inputs[inside],
        widths[inside],
        heights[inside],
        derivatives[inside],
        left=left,
        right=right,
        bottom=bottom,
        top=top,
    )
    return outputs, logabsdet


@settings(max_examples=15, deadline=None)
@given(**EDGE_SETTINGS)
def test_float64_reference_at_knot_edges(num_bins, log_scale, tails, inverse, seed):
    """The float64 reference, the oracle above, on its own knot images: the forward pass
    against nflows (an independent implementation); the inverse by its backward error, the
    forward pass (so checked) of its result giving back its input and minus its log-det."""
    dtype = torch.float64
    inputs, params = _knot_problems(num_bins, 10.0**log_scale, tails, inverse, dtype, seed)
    outputs, logabsdet = _spline(inputs, params, inverse, tails, "torch")
    if inverse:
        points, (expected, expected_lad) = outputs, (inputs, -logabsdet)
    else:
        points, (expected, expected_lad) = inputs, _nflows_forward(inputs, params, tails)
    (forward, forward_lad), spread = _envelope(points, params, False, tails, dtype)
    for name, actual, reference, width in (
        ("outputs", forward if inverse else outputs, expected, spread[0]),
        ("logabsdet", forward_lad if inverse else logabsdet, expected_lad, spread[1]),
    ):
        _assert_within_roundoff(actual, reference, width, dtype, f"float64 {name}")


@pytest.mark.skipif("triton" not in BACKENDS, reason="triton is not installed")
@settings(max_examples=12, deadline=None)
@given(**EDGE_SETTINGS)
def test_kernel_at_knot_edges(num_bins, log_scale, tails, inverse, seed):
    _edge_case("triton", num_bins, log_scale, tails, inverse, torch.float32, seed)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
@pytest.mark.parametrize("tails", ["linear", "circular", None])
def test_end_knots_map_onto_end_knots(tails, inverse, backend):
    """The end knots (``left, right`` to ``bottom, top``, or ``±tail_bound``) map onto the
    other interval's ends, with a finite log-det, at any parameter scale: exactly forward,
    within an ulp inverse (``x_lo + theta * width`` rounds; 3 ulps before issue 14)."""
    generator = torch.Generator().manual_seed(1)
    (lower, upper), (left, right, bottom, top) = _interval(tails, inverse)
    ends = (left, right) if inverse else (bottom, top)
    shapes = (8, 8, 8 + DERIVATIVE_OFFSET[tails])
    params = [1e3 * torch.randn(64, n, generator=generator) for n in shapes]
    inputs = torch.tensor([lower, upper]).repeat(32)
    args = [t.to(DEVICE) for t in (inputs, *params)]
    outputs, logabsdet = _spline(args[0], args[1:], inverse, tails, backend)
    ulp = torch.finfo(torch.float32).eps * max(map(abs, ends))
    torch.testing.assert_close(
        outputs.cpu(), torch.tensor(ends).repeat(32), rtol=0, atol=ulp if inverse else 0
    )
    assert logabsdet.isfinite().all()


NAN, INF = float("nan"), float("inf")


def _nonfinite_cases(num_bins, tails, inverse):
    """Inputs and parameters with one non-finite value per element (the rest are random),
    and which elements have NaN outputs (1), a NaN log-det only (0.5) or neither (0)."""
    generator = torch.Generator().manual_seed(2)
    (lower, upper), _ = _interval(tails, inverse)
    shapes = (num_bins, num_bins, num_bins + DERIVATIVE_OFFSET[tails])
    count = 9
    inputs = lower + (upper - lower) * torch.rand(count, generator=generator)
    params = [torch.randn(count, n, generator=generator) for n in shapes]
    inputs[0] = NAN
    params[0][1, 1] = NAN  # one width: the softmax, so every knot, is NaN
    params[1][2, 0] = NAN
    params[2][3, :] = NAN  # every derivative, so both of the element's bin
    params[0][4, -1] = INF  # softmax of +inf is NaN (inf - inf), as torch.softmax
    params[1][5, 0] = INF
    # softplus(inf) = inf: the log-det is inf - inf; the output is inf / inf, or its finite
    # limit where the bin's other knot has a finite slope
    params[2][6, :] = INF
    params[0][7, 0] = -INF  # softmax weight 0: a valid spline (that bin has the minimum width)
    params[2][8, :] = -INF  # softplus(-inf) = 0: derivative min_derivative, valid
    nan = torch.tensor([1.0] * 6 + [0.5] + [0.0] * 2)
    return inputs, params, nan


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
@pytest.mark.parametrize("tails", ["linear", "circular", None])
@pytest.mark.parametrize("num_bins", [2, 5])
def test_nonfinite_values_give_nan(num_bins, tails, inverse, backend):
    """NaN in the inputs or parameters, or +inf in the widths or heights, gives NaN outputs
    and log-det (the Triton kernel's clamps used to turn them into the bound, e.g.
    -tail_bound); +inf derivatives a NaN log-det; -inf parameters are the softmax /
    softplus limits and give the float64 reference's finite answer."""
    inputs, params, nan = _nonfinite_cases(num_bins, tails, inverse)
    if tails is None:  # NaN inputs are refused by name in eager mode: tested elsewhere
        inputs, params, nan = inputs[1:], [p[1:] for p in params], nan[1:]
    args = [t.to(DEVICE) for t in (inputs, *params)]
    outputs, logabsdet = (t.cpu() for t in _spline(args[0], args[1:], inverse, tails, backend))
    checked = nan != 0.5
    assert torch.equal(outputs.isnan()[checked], nan[checked] == 1), outputs.tolist()
    assert torch.equal(logabsdet.isnan(), nan > 0), logabsdet.tolist()
    exact = _spline(inputs.double(), [p.double() for p in params], inverse, tails, "torch")
    for values, reference in zip((outputs, logabsdet), exact, strict=True):
        finite = nan == 0
        torch.testing.assert_close(values[finite].double(), reference[finite], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
@pytest.mark.parametrize("tails", ["linear", "circular"])
def test_infinite_inputs_take_the_identity_tails(tails, inverse, backend):
    """±inf inputs lie in the identity tails: ±inf out, log-det exactly 0."""
    generator = torch.Generator().manual_seed(3)
    params = [torch.randn(2, n, generator=generator) for n in (4, 4, 4 + DERIVATIVE_OFFSET[tails])]
    inputs = torch.tensor([INF, -INF])
    args = [t.to(DEVICE) for t in (inputs, *params)]
    outputs, logabsdet = _spline(args[0], args[1:], inverse, tails, backend)
    assert torch.equal(outputs.cpu(), inputs) and torch.equal(logabsdet.cpu(), torch.zeros(2))
