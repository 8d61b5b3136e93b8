"""MADE against nflows' MADE with the weights copied across (the oracle), its autoregressive
property from the autograd Jacobian, the Triton backend against the reference with a context,
and the errors of bad input."""

import pytest
import torch
import torch.nn.functional as F

from fastgen.nn import MADE

made_module = pytest.importorskip("nflows.transforms.made", reason="nflows is not installed")

CONFIGS = {
    "residual": dict(use_residual_blocks=True),
    "residual-context": dict(use_residual_blocks=True, context_features=3),
    "residual-batchnorm-tanh": dict(
        use_residual_blocks=True, use_batch_norm=True, activation=torch.tanh
    ),
    "feedforward": dict(use_residual_blocks=False, activation=F.elu),
    "feedforward-context": dict(use_residual_blocks=False, context_features=2),
    "feedforward-random": dict(use_residual_blocks=False, random_mask=True, num_blocks=3),
    "custom-activation": dict(use_residual_blocks=False, activation=lambda x: x * torch.sigmoid(x)),
}


def _pair(features, hidden, multiplier, seed, **kwargs):
    torch.manual_seed(seed)
    theirs = made_module.MADE(features, hidden, output_multiplier=multiplier, **kwargs)
    with torch.no_grad():  # away from the residual blocks' near-zero initialisation
        for p in theirs.parameters():
            p.add_(0.3 * torch.randn_like(p))
    ours = MADE(features, hidden, output_multiplier=multiplier, **kwargs)
    ours.load_nflows_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("features", [1, 5])
def test_matches_nflows(features, config):
    kwargs = CONFIGS[config]
    ours, theirs = _pair(features, 23, 3, seed=features, **kwargs)
    inputs = torch.randn(64, features)
    context = torch.randn(64, kwargs["context_features"]) if "context_features" in kwargs else None
    expected = theirs(inputs, context)
    actual = ours(inputs, context)
    assert actual.shape == (64, features * 3)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("random_mask", [False, True], ids=["sequential", "random"])
@pytest.mark.parametrize("features", [1, 4, 9])
def test_autoregressive_property(features, random_mask):
    """d outputs[d, :] / d inputs[j] is exactly zero for j >= d, and the network is not
    trivially zero (some j < d dependence exists for d >= 1)."""
    torch.manual_seed(features)
    made = MADE(
        features,
        30,
        output_multiplier=2,
        use_residual_blocks=not random_mask,
        random_mask=random_mask,
        num_blocks=2,
    ).double()
    for p in made.parameters():  # away from the residual blocks' near-zero initialisation
        torch.nn.init.normal_(p)
    inputs = torch.randn(features, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda x: made(x[None])[0], inputs)
    jacobian = jacobian.view(features, 2, features)
    for d in range(features):
        assert (jacobian[d, :, d:] == 0).all(), d
    if features > 1 and not random_mask:
        assert (jacobian[features - 1, :, : features - 1] != 0).any()


def test_triton_backend_with_context(device):
    pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")
    torch.manual_seed(0)
    made = MADE(6, 40, context_features=3, output_multiplier=4, use_residual_blocks=True)
    for p in made.parameters():
        torch.nn.init.normal_(p, std=0.3)
    made = made.to(device)
    inputs = torch.randn(21, 6, device=device)
    context = torch.randn(21, 3, device=device)
    results = {}
    for backend in ("torch", "triton"):
        for layer in made.masked_layers():
            layer.backend = backend
        made.zero_grad()
        out = made(inputs, context)
        (out * torch.linspace(-1, 1, out.numel(), device=device).view_as(out)).sum().backward()
        results[backend] = [out.detach()] + [p.grad.clone() for p in made.parameters()]
    for a, b in zip(results["triton"], results["torch"], strict=True):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=2e-5)


def test_sorted_hidden_units_make_dead_tiles():
    kernel = pytest.importorskip("fastgen.kernels.masked_linear")
    made = MADE(8, 256, output_multiplier=23)
    hidden = made.blocks[0].linear_layers[0]
    assert kernel.tile_skip_fraction(hidden.in_degrees, hidden.out_degrees, False) > 0.2
    final = made.final_layer
    assert kernel.tile_skip_fraction(final.in_degrees, final.out_degrees, True) > 0.2


def test_bad_input():
    made = MADE(4, 16)
    with pytest.raises(ValueError, match="inputs must have shape"):
        made(torch.randn(3, 5))
    with pytest.raises(ValueError, match="context was given"):
        made(torch.randn(3, 4), torch.randn(3, 2))
    conditional = MADE(4, 16, context_features=2)
    with pytest.raises(ValueError, match="context of shape"):
        conditional(torch.randn(3, 4))
    with pytest.raises(ValueError, match="context must have shape"):
        conditional(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(ValueError, match="random masks"):
        MADE(4, 16, random_mask=True)
    with pytest.raises(TypeError, match="inputs must be a torch.Tensor"):
        made([[0.0] * 4])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(features=0), ValueError, "features must be >= 1, got 0"),
        (dict(features=2.0), TypeError, "features must be an int"),
        (dict(hidden_features=0), ValueError, "hidden_features must be >= 1"),
        (dict(context_features=0), ValueError, "context_features must be >= 1"),
        (dict(num_blocks=-1), ValueError, "num_blocks must be >= 0"),
        (dict(output_multiplier=0), ValueError, "output_multiplier must be >= 1"),
        (dict(use_residual_blocks=1), TypeError, "use_residual_blocks must be a bool"),
        (dict(dropout_probability=1.5), ValueError, "dropout_probability must be"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        MADE(**{"features": 4, "hidden_features": 16, **kwargs})
