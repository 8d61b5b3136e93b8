"""The PyTorch reference spline against nflows, against mathematical identities, and under
torch.compile. nflows (its unconstrained and bounded splines) is the peer oracle; the
circular tails are checked against nflows' bounded spline with the boundary derivative
repeated at both ends, which is normflows' definition of them."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nflows.transforms.splines import rational_quadratic as nflows_rq
from spline_cases import bounded_inputs, inputs_for, spline_params
from tolerances import assert_matches_reference

import fastgen

BOUND = 3.0


def _nflows(x, w, h, d, inverse, tails, bound):
    if tails == "linear":
        return nflows_rq.unconstrained_rational_quadratic_spline(
            x, w, h, d, inverse=inverse, tails="linear", tail_bound=bound
        )
    # circular: the normflows convention, through nflows' bounded spline on the inside
    # elements (identity outside, as normflows)
    inside = (x >= -bound) & (x <= bound)
    d_full = torch.cat([d, d[..., :1]], dim=-1)
    out, lad = x.clone(), torch.zeros_like(x)
    out[inside], lad[inside] = nflows_rq.rational_quadratic_spline(
        x[inside],
        w[inside],
        h[inside],
        d_full[inside],
        inverse=inverse,
        left=-bound,
        right=bound,
        bottom=-bound,
        top=bound,
    )
    return out, lad


def _fastgen(x, w, h, d, inverse, tails, bound):
    return fastgen.unconstrained_rational_quadratic_spline(
        x, w, h, d, inverse=inverse, tails=tails, tail_bound=bound, backend="torch"
    )


@pytest.mark.parametrize("tails", ["linear", "circular"])
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("num_bins", [2, 5, 8, 16])
def test_matches_nflows(num_bins, inverse, tails):
    shape = (300, 7)
    x = inputs_for(shape, BOUND)
    params = spline_params(shape, num_bins, tails)
    ref64 = _nflows(x, *params, inverse, tails, BOUND)
    ours64 = _fastgen(x, *params, inverse, tails, BOUND)
    for name, a, b in zip(("outputs", "logabsdet"), ours64, ref64, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=f"float64 {name}")

    args32 = [t.float() for t in (x, *params)]
    nflows32 = _nflows(*args32, inverse, tails, BOUND)
    ours32 = _fastgen(*args32, inverse, tails, BOUND)
    for name, a, b, ref in zip(("outputs", "logabsdet"), ours32, nflows32, ref64, strict=True):
        # nflows' own float32 log-dets miss its float64 ones by more than 1e-5 on a few
        # percent of elements at K = 16: float32 is judged against float64, by nflows32.
        assert a.dtype == torch.float32
        assert_matches_reference(a, ref, b, name=f"float32 {name}")


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("num_bins", [2, 8])
def test_bounded_matches_nflows(num_bins, inverse):
    left, right, bottom, top = -2.0, 1.5, -1.0, 4.0
    # nflows checks [left, right] even for the inverse: stay inside both domains there.
    lower, upper = (bottom, right) if inverse else (left, right)
    x = bounded_inputs((500,), lower, upper)
    params = spline_params((500,), num_bins, None)
    kwargs = dict(inverse=inverse, left=left, right=right, bottom=bottom, top=top)
    ref = nflows_rq.rational_quadratic_spline(x, *params, **kwargs)
    ours = fastgen.rational_quadratic_spline(x, *params, **kwargs, backend="torch")
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_gradients_match_nflows_autograd():
    x = inputs_for((400,), BOUND).requires_grad_()
    params = [p.requires_grad_() for p in spline_params((400,), 8, "linear")]
    g_out, g_lad = torch.randn(400, dtype=torch.float64), torch.randn(400, dtype=torch.float64)
    for inverse in (False, True):
        grads = []
        for fn in (_nflows, _fastgen):
            out, lad = fn(x, *params, inverse, "linear", BOUND)
            grads.append(torch.autograd.grad((out * g_out + lad * g_lad).sum(), [x, *params]))
        for ours, ref in zip(*reversed(grads), strict=True):
            torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("tails", ["linear", "circular"])
@pytest.mark.parametrize("num_bins", [3, 8])
def test_inverse_of_forward_is_identity(num_bins, tails):
    x = inputs_for((2000,), BOUND)
    params = spline_params((2000,), num_bins, tails)
    y, lad = _fastgen(x, *params, False, tails, BOUND)
    x_back, lad_inverse = _fastgen(y, *params, True, tails, BOUND)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-10)
    torch.testing.assert_close(lad_inverse, -lad, rtol=0, atol=1e-9)
    # end knots pinned: the bounds map onto the bounds (to round-off in the bin's formula)
    torch.testing.assert_close(
        y[:2], torch.tensor([-BOUND, BOUND], dtype=y.dtype), rtol=0, atol=1e-15
    )


@pytest.mark.parametrize("tails", ["linear", "circular"])
@pytest.mark.parametrize("inverse", [False, True])
def test_logabsdet_is_log_derivative(inverse, tails):
    """logabsdet against the Jacobian's diagonal (autograd) and central differences."""
    x = inputs_for((64,), BOUND)
    params = spline_params((64,), 6, tails)

    def f(inputs):
        return _fastgen(inputs, *params, inverse, tails, BOUND)[0]

    _, lad = _fastgen(x, *params, inverse, tails, BOUND)
    jacobian = torch.autograd.functional.jacobian(f, x)
    assert torch.count_nonzero(jacobian - torch.diag(torch.diagonal(jacobian))) == 0
    torch.testing.assert_close(lad, torch.diagonal(jacobian).abs().log(), rtol=0, atol=1e-10)
    step = 1e-8  # truncation error O(step) at the knots, round-off O(1e-16 / step)
    inner = x.clamp(-BOUND + 2 * step, BOUND - 2 * step)
    slope = (f(inner + step) - f(inner - step)) / (2 * step)
    _, lad_inner = _fastgen(inner, *params, inverse, tails, BOUND)
    # Central differences are O(step) off where a knot (a jump in the second derivative)
    # lies within the step: a loose check, independent of fastgen's backward.
    torch.testing.assert_close(lad_inner, slope.log(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("tails", ["linear", "circular", None])
@pytest.mark.parametrize("inverse", [False, True])
def test_gradcheck(inverse, tails):
    shape, num_bins = (5, 3), 4
    params = [p.requires_grad_() for p in spline_params(shape, num_bins, tails)]
    if tails is None:
        x = bounded_inputs(shape, 0.05, 0.95).requires_grad_()

        def fn(*args):
            return fastgen.rational_quadratic_spline(*args, inverse=inverse, backend="torch")
    else:
        x = inputs_for(shape, 1.0).requires_grad_()
        x.data.view(-1)[:2] = torch.tensor([-1.3, 0.4])  # no input on a bound: not smooth there

        def fn(*args):
            return fastgen.unconstrained_rational_quadratic_spline(
                *args, inverse=inverse, tails=tails, backend="torch"
            )

    assert torch.autograd.gradcheck(fn, (x, *params))


def test_half_precision_is_computed_in_float32():
    x = inputs_for((1000,), BOUND)
    params = spline_params((1000,), 8, "linear")
    ref = _fastgen(*(t.float() for t in (x, *params)), False, "linear", BOUND)
    for dtype in (torch.float16, torch.bfloat16):
        args = [t.to(dtype) for t in (x, *params)]
        out = _fastgen(*args, False, "linear", BOUND)
        expected = _fastgen(*(t.float() for t in args), False, "linear", BOUND)
        for a, b in zip(out, expected, strict=True):
            assert a.dtype == dtype
            assert torch.equal(a, b.to(dtype))
        assert ref[0].dtype == torch.float32


def test_packed_parameter_views():
    """Parameters sliced from one packed tensor (as a conditioner outputs them)."""
    num_bins = 8
    packed = torch.randn(50, 4, 3 * num_bins - 1, dtype=torch.float64)
    w, h, d = packed.split([num_bins, num_bins, num_bins - 1], dim=-1)
    x = inputs_for((50, 4), BOUND)
    ours = _fastgen(x, w, h, d, False, "linear", BOUND)
    contiguous = _fastgen(x, w.contiguous(), h.contiguous(), d.contiguous(), False, "linear", BOUND)
    for a, b in zip(ours, contiguous, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_empty_inputs():
    params = spline_params((0,), 8, "linear")
    out, lad = _fastgen(torch.empty(0, dtype=torch.float64), *params, False, "linear", BOUND)
    assert out.shape == lad.shape == (0,)


def test_nan_inputs_propagate_like_nflows():
    params = spline_params((3,), 8, "linear")
    x = torch.tensor([0.1, float("nan"), -0.2], dtype=torch.float64)
    out, lad = _fastgen(x, *params, False, "linear", BOUND)
    assert out[1].isnan() and lad[1] == 0 and out[[0, 2]].isfinite().all()


def test_extreme_unnormalized_values_stay_finite():
    """Softmax inputs far beyond exp's range and huge derivatives: no inf / NaN."""
    x = inputs_for((200,), BOUND)
    w, h, d = spline_params((200,), 8, "linear", scale=300.0)
    for inverse in (False, True):
        out, lad = _fastgen(x, w, h, d, inverse, "linear", BOUND)
        assert out.isfinite().all() and lad.isfinite().all()


def _compiled_step(x, w, h, d):
    # the default backend (FASTGEN_BACKEND or auto) is resolved inside the graph too
    out, lad = fastgen.unconstrained_rational_quadratic_spline(
        x, w, h, d, tails="linear", tail_bound=BOUND
    )
    back, _ = fastgen.unconstrained_rational_quadratic_spline(
        out, w, h, d, inverse=True, tails="linear", tail_bound=BOUND, backend="torch"
    )
    return (out * back).sum() + lad.sum()


@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph(compiler):
    """One graph, forward and backward (float64: inductor's fused kernels round differently
    from eager in float32, which ill-conditioned elements amplify)."""
    torch._dynamo.reset()
    x = inputs_for((257,), BOUND).requires_grad_()
    params = [p.requires_grad_() for p in spline_params((257,), 8, "linear")]
    compiled = torch.compile(_compiled_step, fullgraph=True, backend=compiler)
    loss = compiled(x, *params)
    grads = torch.autograd.grad(loss, [x, *params])
    eager_loss = _compiled_step(x, *params)
    eager_grads = torch.autograd.grad(eager_loss, [x, *params])
    torch.testing.assert_close(loss, eager_loss, rtol=1e-10, atol=1e-9)
    for a, b in zip(grads, eager_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_bounded_spline_under_compile_gives_nan_outside():
    params = spline_params((4,), 5, None)
    x = torch.tensor([0.2, 1.5, -0.1, 0.7], dtype=torch.float64)

    def fn(inputs):
        return fastgen.rational_quadratic_spline(inputs, *params, backend="torch")

    with pytest.raises(ValueError, match=r"inputs must lie in \[left, right\]"):
        fn(x)
    torch._dynamo.reset()
    out, lad = torch.compile(fn, fullgraph=True, backend="aot_eager")(x)
    assert out[[1, 2]].isnan().all() and lad[[1, 2]].isnan().all()
    assert out[[0, 3]].isfinite().all()


def test_linear_tails_join_with_slope_one():
    """Linear tails: slope exactly 1 at the bounds, so the map is C^1 across them."""
    params = spline_params((2,), 8, "linear")
    x = torch.tensor([-BOUND, BOUND], dtype=torch.float64)
    _, lad = _fastgen(x, *params, False, "linear", BOUND)
    torch.testing.assert_close(lad, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    num_bins=st.integers(2, 20),
    tail_bound=st.floats(0.1, 10.0),
    min_fraction=st.tuples(*[st.floats(1e-3, 0.9)] * 2),
    min_derivative=st.floats(1e-4, 0.5),
    scale=st.floats(0.1, 3.0),
    inverse=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_nflows_for_any_settings(
    num_bins, tail_bound, min_fraction, min_derivative, scale, inverse, seed
):
    """Random K, tail bounds, minimum bin sizes / derivatives and parameter scales."""
    torch.manual_seed(seed)
    min_bin_width, min_bin_height = (f / num_bins for f in min_fraction)
    # Inputs exactly on a bound are left to the other tests: there the inverse's quadratic
    # cancels completely, and with near-zero derivatives round-off decides the last digits.
    x = (2 * torch.rand(64, dtype=torch.float64) - 1) * 1.5 * tail_bound
    params = spline_params((64,), num_bins, "linear", scale=scale)
    kwargs = dict(
        inverse=inverse,
        tail_bound=tail_bound,
        min_bin_width=min_bin_width,
        min_bin_height=min_bin_height,
        min_derivative=min_derivative,
    )
    ref = nflows_rq.unconstrained_rational_quadratic_spline(x, *params, **kwargs)
    ours = fastgen.unconstrained_rational_quadratic_spline(x, *params, **kwargs, backend="torch")
    # Near-degenerate bins (tiny minimums, wide parameters) amplify both implementations'
    # round-off differently: float64 agreement is to about 1e-10 there, 1e-13 typically.
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


def test_many_bins():
    """K = 300: past the narrow integer type used to count bins below 257."""
    x = inputs_for((200,), BOUND)
    params = spline_params((200,), 300, "linear")
    for inverse in (False, True):
        ref = _nflows(x, *params, inverse, "linear", BOUND)
        ours = _fastgen(x, *params, inverse, "linear", BOUND)
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-9)
