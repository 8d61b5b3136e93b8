"""Flow and NeuralSplineFlow: the density integrates to 1 on a 2-D model, sampling agrees
with log_prob, conditional models, and errors."""

import pytest
import torch

from fastgen.flows import (
    Flow,
    MaskedAffineAutoregressiveTransform,
    NeuralSplineFlow,
    StandardNormal,
)


def _perturbed(flow, scale=0.3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return flow


@pytest.mark.parametrize("autoregressive", [True, False], ids=["autoregressive", "coupling"])
def test_density_integrates_to_one(autoregressive):
    """Riemann sum of exp(log_prob) over [-7, 7]^2 (the base puts < 1e-10 outside, and the
    spline only moves mass inside [-3, 3]); the flow is far from the identity (its log-density
    differs from the base's by O(1))."""
    torch.manual_seed(0)
    flow = NeuralSplineFlow(
        2, num_layers=3, hidden_features=16, num_bins=6, autoregressive=autoregressive
    ).double()
    _perturbed(flow, scale=0.1)  # larger moves make bins too narrow for a 400 x 400 grid
    step = 14 / 400
    axis = torch.arange(-7 + step / 2, 7, step, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        log_prob = flow.log_prob(grid)
    total = log_prob.exp().sum().item() * step**2
    assert abs(total - 1) < 1e-2, total
    base = StandardNormal([2]).double().log_prob(grid)
    assert (log_prob - base).abs().max() > 0.5


@pytest.mark.parametrize("autoregressive", [True, False], ids=["autoregressive", "coupling"])
def test_sample_agrees_with_log_prob(autoregressive):
    flow = _perturbed(
        NeuralSplineFlow(
            3,
            num_layers=2,
            hidden_features=16,
            num_bins=5,
            autoregressive=autoregressive,
            circular_features=[1],
        ).double()
    )
    torch.manual_seed(1)
    samples, log_prob = flow.sample_and_log_prob(50)
    torch.manual_seed(1)
    again = flow.sample(50)
    assert samples.shape == (50, 3) and log_prob.shape == (50,)
    torch.testing.assert_close(again, samples)
    torch.testing.assert_close(flow.log_prob(samples), log_prob, atol=1e-9, rtol=1e-9)


def test_conditional():
    flow = NeuralSplineFlow(3, context_features=2, num_layers=2, hidden_features=16).double()
    flow = _perturbed(flow)
    context = torch.randn(4, 2, dtype=torch.float64)
    samples, log_prob = flow.sample_and_log_prob(5, context)
    assert samples.shape == (4, 5, 3) and log_prob.shape == (4, 5)
    again = flow.log_prob(samples.reshape(20, 3), context.repeat_interleave(5, dim=0))
    torch.testing.assert_close(again, log_prob.reshape(20), atol=1e-9, rtol=1e-9)
    # the context matters
    other = flow.log_prob(samples.reshape(20, 3), torch.randn(20, 2, dtype=torch.float64))
    assert (other - again).abs().max() > 1e-3
    assert flow.sample(7, context).shape == (4, 7, 3)


def test_flow_with_custom_transform():
    flow = Flow(MaskedAffineAutoregressiveTransform(2, 8), StandardNormal([2]))
    inputs = torch.randn(6, 2)
    assert flow.log_prob(inputs).shape == (6,)


def test_bad_input():
    flow = NeuralSplineFlow(3, num_layers=1, hidden_features=8)
    with pytest.raises(ValueError, match="context was given"):
        flow.log_prob(torch.randn(2, 3), torch.randn(2, 1))
    with pytest.raises(ValueError, match="inputs must have shape"):
        flow.log_prob(torch.randn(2, 4))
    conditional = NeuralSplineFlow(3, context_features=2, num_layers=1, hidden_features=8)
    with pytest.raises(ValueError, match="context of shape"):
        conditional.log_prob(torch.randn(2, 3))
    with pytest.raises(ValueError, match="one row per input"):
        conditional.log_prob(torch.randn(2, 3), torch.randn(3, 2))
    coupling = NeuralSplineFlow(3, context_features=2, num_layers=1, autoregressive=False)
    with pytest.raises(ValueError, match="context must be given"):
        coupling.log_prob(torch.randn(2, 3))
    with pytest.raises(ValueError, match="num_samples"):
        flow.sample(0)
    with pytest.raises(ValueError, match="circular_features"):
        NeuralSplineFlow(3, circular_features=[3])
    with pytest.raises(ValueError, match="features must be >= 2"):
        NeuralSplineFlow(1, autoregressive=False)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(features=0), ValueError, "features must be >= 1, got 0"),
        (dict(features=3.0), TypeError, "features must be an int"),
        (dict(num_bins=1), ValueError, "num_bins must be >= 2, got 1"),
        (dict(hidden_features=0), ValueError, "hidden_features must be >= 1, got 0"),
        (dict(num_layers=0), ValueError, "num_layers must be >= 1, got 0"),
        (dict(context_features=0), ValueError, "context_features must be >= 1, got 0"),
        (dict(context_features=2.5), TypeError, "context_features must be an int"),
        (dict(num_blocks=-1), ValueError, "num_blocks must be >= 0, got -1"),
        (dict(tail_bound=-1.0), ValueError, "tail_bound must be > 0"),
        (dict(autoregressive=0), TypeError, "autoregressive must be a bool"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        NeuralSplineFlow(**{"features": 3, **kwargs})


@pytest.mark.parametrize("autoregressive", [True, False], ids=["autoregressive", "coupling"])
def test_state_dict_and_pickle_round_trip(autoregressive, tmp_path):
    """Mixed tails keep their feature groups out of the state_dict (they follow from the
    constructor), and whole models pickle (sbi saves posteriors that way)."""
    kwargs = dict(num_layers=2, hidden_features=8, num_bins=4, circular_features=[1])
    flow = _perturbed(NeuralSplineFlow(3, autoregressive=autoregressive, **kwargs))
    state = flow.state_dict()
    assert not [key for key in state if "elementwise" in key]
    other = NeuralSplineFlow(3, autoregressive=autoregressive, **kwargs)
    other.load_state_dict(state)
    inputs = torch.randn(6, 3)
    torch.testing.assert_close(other.log_prob(inputs), flow.log_prob(inputs))
    torch.save(flow, tmp_path / "flow.pt")
    loaded = torch.load(tmp_path / "flow.pt", weights_only=False)
    torch.testing.assert_close(loaded.log_prob(inputs), flow.log_prob(inputs))
