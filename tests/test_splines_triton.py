"""The Triton spline kernels against the float64 reference: forward, inverse and backward,
odd sizes, several K and every tails setting, outputs poisoned with NaN before each launch.
Without a GPU they run under TRITON_INTERPRET=1 (tests/conftest.py)."""

import pytest
import torch
from spline_cases import bounded_inputs, inputs_for, spline_params
from tolerances import assert_matches_reference

import fastgen

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")
spline_kernels = pytest.importorskip("fastgen.kernels.splines")

BOUND = 2.5
NAMES = ("outputs", "logabsdet", "grad inputs", "grad widths", "grad heights", "grad derivs")


def _run(spline, inputs, params, dtype, backend, device, **kwargs):
    """Outputs, logabsdet and the gradients of a random weighting of both."""
    leaves = [t.to(device=device, dtype=dtype).requires_grad_() for t in (inputs, *params)]
    outputs, logabsdet = spline(*leaves, backend=backend, **kwargs)
    generator = torch.Generator().manual_seed(0)  # the same weights for every run of a test
    weights = [
        torch.randn(inputs.shape, generator=generator, dtype=torch.float64).to(device, dtype)
        for _ in range(2)
    ]
    loss = (outputs * weights[0] + logabsdet * weights[1]).sum()
    grads = torch.autograd.grad(loss, leaves)
    return [t.detach().cpu() for t in (outputs, logabsdet, *grads)]


def _check(spline, inputs, params, device, **kwargs):
    ref64 = _run(spline, inputs, params, torch.float64, "torch", device, **kwargs)
    ref32 = _run(spline, inputs, params, torch.float32, "torch", device, **kwargs)
    ours = _run(spline, inputs, params, torch.float32, "triton", device, **kwargs)
    names = [f"triton {name}" for name in NAMES]
    assert_matches_reference(ours, ref64, ref32, name=names, samples=inputs.numel())


@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
@pytest.mark.parametrize("num_bins", [2, 3, 8, 17, 64])
@pytest.mark.parametrize("size", [1, 3, 127, 1000])
def test_linear_tails(size, num_bins, inverse, device, generator):
    inputs = inputs_for((size,), BOUND, generator=generator)
    params = spline_params((size,), num_bins, "linear", generator=generator)
    _check(
        fastgen.unconstrained_rational_quadratic_spline,
        inputs,
        params,
        device,
        inverse=inverse,
        tails="linear",
        tail_bound=BOUND,
    )


@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_other_minimums_and_bound(inverse, device, generator):
    inputs = inputs_for((300,), 5.0, generator=generator)
    params = spline_params((300,), 6, "linear", scale=2.0, generator=generator)
    _check(
        fastgen.unconstrained_rational_quadratic_spline,
        inputs,
        params,
        device,
        inverse=inverse,
        tail_bound=5.0,
        min_bin_width=0.05,
        min_bin_height=0.1,
        min_derivative=0.2,
    )


@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
@pytest.mark.parametrize("num_bins", [3, 8, 17])
def test_circular_tails(num_bins, inverse, device, generator):
    inputs = inputs_for((127,), BOUND, generator=generator)
    params = spline_params((127,), num_bins, "circular", generator=generator)
    _check(
        fastgen.unconstrained_rational_quadratic_spline,
        inputs,
        params,
        device,
        inverse=inverse,
        tails="circular",
        tail_bound=BOUND,
    )


@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
@pytest.mark.parametrize("num_bins", [2, 8])
def test_bounded(num_bins, inverse, device, generator):
    left, right, bottom, top = -1.0, 2.0, 0.5, 3.0
    lower, upper = (bottom, top) if inverse else (left, right)
    inputs = bounded_inputs((127,), lower, upper, generator=generator)
    params = spline_params((127,), num_bins, None, generator=generator)
    bounds = dict(left=left, right=right, bottom=bottom, top=top)
    _check(fastgen.rational_quadratic_spline, inputs, params, device, inverse=inverse, **bounds)


def test_batched_shapes_and_packed_views(device, generator):
    """(..., D) inputs with parameters sliced from one packed tensor, as a conditioner
    outputs them, and non-contiguous upstream gradients (``expand`` from ``sum``)."""
    num_bins = 5
    packed = torch.randn(6, 7, 3 * num_bins - 1, generator=generator, dtype=torch.float64)
    params = packed.split([num_bins, num_bins, num_bins - 1], dim=-1)
    inputs = inputs_for((6, 7), BOUND, generator=generator)
    spline = fastgen.unconstrained_rational_quadratic_spline
    _check(spline, inputs, params, device, tail_bound=BOUND)
    flat = spline_kernels._flatten(inputs, *params)
    for view, original in zip(flat[1:], params, strict=True):
        assert view.data_ptr() == original.data_ptr(), "parameter views must not be copied"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype, device, generator):
    """Half inputs are computed in float32 and rounded once: the kernel matches the
    reference on the same half inputs to within the rounding of the result."""
    inputs = inputs_for((1000,), BOUND, generator=generator).to(dtype).double()
    params = [
        p.to(dtype).double() for p in spline_params((1000,), 8, "linear", generator=generator)
    ]
    # Round-off of the float32 computation plus one rounding to the half dtype.
    eps = torch.finfo(dtype).eps
    for inverse in (False, True):
        kwargs = dict(inverse=inverse, tail_bound=BOUND)
        spline = fastgen.unconstrained_rational_quadratic_spline
        ours = _run(spline, inputs, params, dtype, "triton", device, **kwargs)
        ref = _run(spline, inputs, params, dtype, "torch", device, **kwargs)
        ref64 = _run(spline, inputs, params, torch.float64, "torch", device, **kwargs)
        names = [f"{dtype} {name}" for name in NAMES]
        assert_matches_reference(ours, ref64, ref, name=names, atol=2 * eps, typical_atol=eps)


def test_empty_inputs_launch_nothing(device):
    params = [p.float().to(device) for p in spline_params((0, 3), 4, "linear")]
    inputs = torch.empty(0, 3, device=device)
    out, lad = fastgen.unconstrained_rational_quadratic_spline(inputs, *params, backend="triton")
    assert out.shape == lad.shape == (0, 3)


def test_nan_inputs(device, generator):
    params = [p.float().to(device) for p in spline_params((3,), 8, "linear", generator=generator)]
    inputs = torch.tensor([0.1, float("nan"), -0.2], device=device)
    out, lad = fastgen.unconstrained_rational_quadratic_spline(inputs, *params, backend="triton")
    assert out[1].isnan() and lad[1] == 0 and out[[0, 2]].isfinite().all()
