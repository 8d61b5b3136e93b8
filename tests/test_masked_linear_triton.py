"""The Triton masked-linear kernels against the float64 reference ``F.linear(x, W * M, b)``
+ activation: forward and the three gradients, feature counts 1 to 100, sequential (sorted,
as fastgen's MADE orders them) and random (unsorted) degrees, every activation, strict and
not, outputs poisoned with NaN before each launch. Without a GPU they run under
TRITON_INTERPRET=1 (tests/conftest.py)."""

import pytest
import torch
from tolerances import assert_close_to_reference

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
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64).to(device=device, dtype=dtype)  # fmt: skip
    grads = torch.autograd.grad((out * upstream).sum(), leaves)
    return [t.detach().cpu() for t in (out, *grads)]


def _check(batch_shape, in_features, out_features, kind, strict, activation, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    degrees = _degrees(kind, in_features, out_features, max(in_features, 2), generator)
    inputs = torch.randn(*batch_shape, in_features, generator=generator, dtype=torch.float64)
    weight = torch.randn(out_features, in_features, generator=generator, dtype=torch.float64)
    bias = torch.randn(out_features, generator=generator, dtype=torch.float64)
    args = (inputs, weight, bias, degrees, strict, activation)
    ref64 = _run(*args, torch.float64, "torch", device)
    ref32 = _run(*args, torch.float32, "torch", device)
    ours = _run(*args, torch.float32, "triton", device)
    for name, a, b, c in zip(NAMES, ours, ref64, ref32, strict=True):
        assert a.dtype == torch.float32 and a.shape == b.shape, name
        assert_close_to_reference(a, b, c, f"triton {name}", samples=a.numel())
    # masked weights get exactly zero gradient, as (g.T @ x) * M
    mask = kernel_mask(degrees, strict)
    assert (ours[2][~mask] == 0).all()


def kernel_mask(degrees, strict):
    in_degrees, out_degrees = degrees
    return out_degrees[:, None] > in_degrees if strict else out_degrees[:, None] >= in_degrees


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("features", [1, 3, 7, 33, 100])
def test_hidden_layer(features, activation, device):
    """Sequential degrees, F -> F + 5 units, a batch that is not a multiple of the tile."""
    _check((37,), features, features + 5, "sequential", False, activation, device)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("features", [3, 33])
def test_random_degrees_strict(features, activation, device):
    _check((19,), features, 2 * features + 1, "random", True, activation, device, seed=2)


@pytest.mark.parametrize("kind", ["sequential", "random"])
def test_output_layer_and_batched_inputs(kind, device):
    """Strict output layer (features x multiplier outputs) on (2, 3, K) inputs."""
    _check((2, 3), 70, 7 * 5, kind, True, None, device, seed=3)


def test_strided_input_view(device):
    """A transposed (non-contiguous) input is read through its strides, not copied."""
    generator = torch.Generator().manual_seed(4)
    base = torch.randn(20, 33, generator=generator)
    inputs = base.t().to(device)
    weight = torch.randn(17, 20, generator=generator).to(device)
    degrees = _degrees("random", 20, 17, 5, generator)
    ours = masked_linear(inputs, weight, None, *degrees, activation="tanh", backend="triton")
    ref = masked_linear(inputs.double(), weight.double(), None, *degrees, activation="tanh",
                        backend="torch")  # fmt: skip
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype, device):
    """Half inputs accumulate in float32: within the half rounding of the float64 result of
    the same (rounded) inputs."""
    generator = torch.Generator().manual_seed(5)
    degrees = _degrees("sequential", 40, 48, 40, generator)
    inputs = torch.randn(33, 40, generator=generator).to(dtype)
    weight = (torch.randn(48, 40, generator=generator) / 6).to(dtype)
    bias = torch.randn(48, generator=generator).to(dtype)
    ours = masked_linear(*(t.to(device) for t in (inputs, weight, bias)), *degrees,
                         activation="silu", backend="triton")  # fmt: skip
    ref = masked_linear(inputs.double(), weight.double(), bias.double(), *degrees,
                        activation="silu", backend="torch")  # fmt: skip
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


def test_empty_batch(device):
    weight = torch.randn(4, 3, device=device, requires_grad=True)
    inputs = torch.empty(0, 3, device=device, requires_grad=True)
    out = masked_linear(inputs, weight, None, torch.arange(3), torch.arange(4), backend="triton")
    out.sum().backward()
    assert out.shape == (0, 4) and (weight.grad == 0).all()


@pytest.mark.parametrize("in_features, out_features", [(0, 3), (3, 0), (0, 0)])
def test_zero_width_layers(in_features, out_features, device):
    """No inputs: the output is the activated bias; no outputs: an empty output. Both with
    the reference's gradients (``in_features = 0`` used to fail in ``reshape(-1, 0)``)."""
    _check((4, 2), in_features, out_features, "random", False, "tanh", device)
