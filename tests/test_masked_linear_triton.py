"""The Triton masked-linear kernels against the float64 reference ``F.linear(x, W * M, b)``
+ activation: forward and the three gradients, feature counts 1 to 100, sequential (sorted,
as fastgen's MADE orders them) and random (unsorted) degrees, every activation, strict and
not, outputs poisoned with NaN before each launch. Without a GPU they run under
TRITON_INTERPRET=1 (tests/conftest.py)."""

import pytest
import torch
from tolerances import assert_matches_reference

from fastgen.nn import masked_linear
from fastgen.reference.masked_linear import ACTIVATIONS

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")
kernel = pytest.importorskip("fastgen.kernels.masked_linear")

NAMES = ("outputs", "grad input", "grad weight", "grad bias")


def _degrees(kind, in_features, out_features, features, generator):
    """MADE-like degrees: sequential (inputs 1..F, outputs sorted cyclic as fastgen's MADE)
    or random integers in [0, F) in no order."""
    if kind == "sequential":
        in_degrees = torch.arange(in_features) % features + 1
        out_degrees = torch.arange(out_features) % max(1, features - 1) + min(1, features - 1)
        return in_degrees, out_degrees.sort().values
    in_degrees = torch.randint(0, features, (in_features,), generator=generator)
    return in_degrees, torch.randint(0, features, (out_features,), generator=generator)


def _run(inputs, weight, bias, degrees, strict, activation, dtype, backend, device):
    leaves = [t.to(device=device, dtype=dtype).requires_grad_() for t in (inputs, weight, bias)]
    out = masked_linear(*leaves, *degrees, strict=strict, activation=activation, backend=backend)
    generator = torch.Generator().manual_seed(1)  # the same weights for every run of a test
    upstream = torch.randn(out.shape, generator=generator, dtype=torch.float64).to(device, dtype)
    grads = torch.autograd.grad((out * upstream).sum(), leaves)
    return [t.detach().cpu() for t in (out, *grads)]


def _check(batch_shape, in_features, out_features, kind, strict, activation, device, generator):
    degrees = _degrees(kind, in_features, out_features, max(in_features, 2), generator)
    inputs = torch.randn(*batch_shape, in_features, generator=generator, dtype=torch.float64)
    weight = torch.randn(out_features, in_features, generator=generator, dtype=torch.float64)
    bias = torch.randn(out_features, generator=generator, dtype=torch.float64)
    args = (inputs, weight, bias, degrees, strict, activation)
    ref64 = _run(*args, torch.float64, "torch", device)
    ref32 = _run(*args, torch.float32, "torch", device)
    ours = _run(*args, torch.float32, "triton", device)
    assert_matches_reference(ours, ref64, ref32, name=[f"triton {name}" for name in NAMES])
    # masked weights get exactly zero gradient, as (g.T @ x) * M
    mask = kernel_mask(degrees, strict)
    assert (ours[2][~mask] == 0).all()


def kernel_mask(degrees, strict):
    in_degrees, out_degrees = degrees
    return out_degrees[:, None] > in_degrees if strict else out_degrees[:, None] >= in_degrees


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("features", [1, 3, 7, 33, 100])
def test_hidden_layer(features, activation, device, generator):
    """Sequential degrees, F -> F + 5 units, a batch that is not a multiple of the tile."""
    _check((37,), features, features + 5, "sequential", False, activation, device, generator)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("features", [3, 33])
def test_random_degrees_strict(features, activation, device, generator):
    _check((19,), features, 2 * features + 1, "random", True, activation, device, generator)


@pytest.mark.parametrize("kind", ["sequential", "random"])
def test_output_layer_and_batched_inputs(kind, device, generator):
    """Strict output layer (features x multiplier outputs) on (2, 3, K) inputs."""
    _check((2, 3), 70, 7 * 5, kind, True, None, device, generator)


def test_strided_input_view(device, generator):
    """A transposed (non-contiguous) input is read through its strides, not copied."""
    base = torch.randn(20, 33, generator=generator)
    inputs = base.t().to(device)
    weight = torch.randn(17, 20, generator=generator).to(device)
    degrees = _degrees("random", 20, 17, 5, generator)
    ours = masked_linear(inputs, weight, None, *degrees, activation="tanh", backend="triton")
    ref = masked_linear(
        inputs.double(), weight.double(), None, *degrees, activation="tanh", backend="torch"
    )
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype, device, generator):
    """Half inputs accumulate in float32: within the half rounding of the float64 result of
    the same (rounded) inputs."""
    degrees = _degrees("sequential", 40, 48, 40, generator)
    inputs = torch.randn(33, 40, generator=generator).to(dtype)
    weight = (torch.randn(48, 40, generator=generator) / 6).to(dtype)
    bias = torch.randn(48, generator=generator).to(dtype)
    tensors = [t.to(device) for t in (inputs, weight, bias)]
    ours = masked_linear(*tensors, *degrees, activation="silu", backend="triton")
    tensors = [t.double() for t in (inputs, weight, bias)]
    ref = masked_linear(*tensors, *degrees, activation="silu", backend="torch")
    assert ours.dtype == dtype
    eps = torch.finfo(dtype).eps
    assert ((ours.double().cpu() - ref).abs() <= 2 * eps * (1 + ref.abs())).all()


def test_tile_skip_fraction_counts_dead_tiles():
    """Hidden 256 -> 256 with 8 features, sorted: a staircase of dead tiles; an all-connected
    layer (degree 0 inputs) skips nothing; strict output degrees against themselves skip the
    diagonal-below tiles."""
    hidden = (torch.arange(256) % 7 + 1).sort().values
    skipped = kernel.tile_skip_fraction(hidden, hidden, strict=False)
    block_n, block_k = 64, 32
    dead = sum(
        int(hidden[n : n + block_n].max() < hidden[k : k + block_k].min())
        for n in range(0, 256, block_n)
        for k in range(0, 256, block_k)
    )
    assert skipped == pytest.approx(dead / (4 * 8)) and skipped > 0.2
    assert kernel.tile_skip_fraction(torch.zeros(16), hidden, strict=False) == 0.0


def test_empty_batch(device, generator):
    weight = torch.randn(4, 3, generator=generator).to(device).requires_grad_()
    inputs = torch.empty(0, 3, device=device, requires_grad=True)
    out = masked_linear(inputs, weight, None, torch.arange(3), torch.arange(4), backend="triton")
    out.sum().backward()
    assert out.shape == (0, 4) and (weight.grad == 0).all()
