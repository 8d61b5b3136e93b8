"""The gradient-penalty Triton kernels against the float64 reference: interpolation and
penalty, forward and backward, short and long rows (one and several tiles per row), strided
inputs and half precision, outputs poisoned with NaN before each launch. Without a GPU they
run under TRITON_INTERPRET=1 (tests/conftest.py)."""

import pytest
import torch
from tolerances import assert_matches_reference

import fastgen.gan as gan

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")
gradient_penalty = pytest.importorskip("fastgen.kernels.gradient_penalty")

# (B, features): whole rows per tile, a partial tile, and rows split over several tiles.
SHAPES = [(1, 1), (3, 5), (1000, 3), (7, 127), (5, 2 * gradient_penalty.TILE_ELEMENTS + 3)]
# float64 reference, float32 reference, float32 kernel
RUNS = ((torch.float64, "torch"), (torch.float32, "torch"), (torch.float32, "triton"))


def _interpolation(real, fake, eps, upstream, dtype, backend, device):
    leaves = [t.to(device=device, dtype=dtype).requires_grad_() for t in (real, fake)]
    x_hat = gan.interpolate(*leaves, eps.to(device=device, dtype=dtype), backend=backend)
    grads = torch.autograd.grad(x_hat, leaves, upstream.to(device=device, dtype=dtype))
    return [t.detach().cpu() for t in (x_hat, *grads)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_interpolate(shape, device, generator):
    real, fake, upstream = (
        torch.randn(shape, generator=generator, dtype=torch.float64) for _ in range(3)
    )
    eps = torch.rand(shape[0], generator=generator, dtype=torch.float64)
    ref64, ref32, ours = (
        _interpolation(real, fake, eps, upstream, dtype, backend, device) for dtype, backend in RUNS
    )
    names = ("triton x_hat", "triton grad real", "triton grad fake")
    assert_matches_reference(ours, ref64, ref32, name=names)


def _penalty(gradients, dtype, backend, device, **kwargs):
    leaf = gradients.to(device=device, dtype=dtype).requires_grad_()
    penalty = gan.penalty_from_gradients(leaf, backend=backend, **kwargs)
    (grad,) = torch.autograd.grad(penalty, leaf)
    return [t.detach().cpu() for t in (penalty, grad)]


@pytest.mark.parametrize("one_sided", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_penalty(shape, one_sided, device, generator):
    # norms spread around the target, so that the one-sided clamp is active for some rows
    gradients = torch.randn(shape, generator=generator, dtype=torch.float64) / shape[1] ** 0.5
    gradients *= torch.rand(shape[0], 1, generator=generator, dtype=torch.float64) * 2
    kwargs = dict(target=1.0, one_sided=one_sided, weight=10.0)
    ref64, ref32, ours = (
        _penalty(gradients, dtype, backend, device, **kwargs) for dtype, backend in RUNS
    )
    names = ("triton penalty", "triton grad gradients")
    assert_matches_reference(ours, ref64, ref32, name=names)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_accumulates_in_float32(dtype, device, generator):
    """Half-precision data, float32 arithmetic: the kernels equal the reference, which
    computes in float32 too, within one rounding of the half type (the two evaluate the
    interpolation in different orders)."""
    shape, ulp = (6, 3000), torch.finfo(dtype).eps
    subnormal_ulp = torch.finfo(dtype).smallest_normal * ulp  # spacing below the normals
    real, fake, upstream = (torch.randn(shape, generator=generator).to(dtype) for _ in range(3))
    eps = torch.rand(shape[0], generator=generator).to(dtype)
    ours = _interpolation(real, fake, eps, upstream, dtype, "triton", device)
    ref = _interpolation(real, fake, eps, upstream, torch.float32, "torch", device)
    for a, b in zip(ours, ref, strict=True):
        assert a.dtype == dtype
        torch.testing.assert_close(a.float(), b.to(dtype).float(), rtol=ulp, atol=subnormal_ulp)
    gradients = torch.randn(shape, generator=generator).to(dtype) / 40
    ours = _penalty(gradients, dtype, "triton", device)
    ref = _penalty(gradients, torch.float32, "torch", device)
    for a, b in zip(ours, ref, strict=True):
        assert a.dtype == dtype
        torch.testing.assert_close(a.float(), b.to(dtype).float(), rtol=ulp, atol=subnormal_ulp)


def test_strided_inputs_are_read_in_place(device, generator):
    """Transposed views and a channels-last image batch: strides go to the kernel."""
    real = torch.randn(40, 6, generator=generator).to(device).t()  # (6, 40), column stride 6
    fake = torch.randn(6, 40, generator=generator).to(device)
    eps = torch.rand(12, generator=generator).to(device)[::2]
    expected = gan.interpolate(real, fake, eps, backend="torch")
    torch.testing.assert_close(gan.interpolate(real, fake, eps, backend="triton"), expected)
    images = torch.randn(3, 4, 5, 5, generator=generator).to(device)
    images = images.to(memory_format=torch.channels_last)
    ours = gan.penalty_from_gradients(images, backend="triton")
    torch.testing.assert_close(ours, gan.penalty_from_gradients(images, backend="torch"))
