"""nflows models patched with fastgen against the same models unpatched: same outputs,
logabsdet and parameter gradients (autoregressive RQS and coupling RQS transforms); the
patch reaches the functions nflows calls and unpatch restores them."""

import sys

import pytest
import torch

from fastgen.integrations import nflows as integration

transforms = pytest.importorskip("nflows.transforms", reason="nflows is not installed")
nets = pytest.importorskip("nflows.nn.nets", reason="nflows is not installed")
made = pytest.importorskip("nflows.transforms.made", reason="nflows is not installed")
autoregressive = pytest.importorskip("nflows.transforms.autoregressive")


@pytest.fixture(autouse=True)
def always_unpatch():
    yield
    integration.unpatch()


def _models():
    torch.manual_seed(0)
    ar = transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
        features=4,
        hidden_features=16,
        context_features=2,
        num_bins=5,
        tails="linear",
        tail_bound=3.0,
    )
    coupling = transforms.PiecewiseRationalQuadraticCouplingTransform(
        torch.tensor([1, 0, 1, 0]),
        lambda i, o: nets.ResidualNet(i, o, hidden_features=8, context_features=2),
        num_bins=5,
        tails="linear",
        tail_bound=3.0,
    )
    bounded = transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
        features=4, hidden_features=16, num_bins=5, tails=None
    )
    for model in (ar, coupling, bounded):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.2 * torch.randn_like(p))
    return {"autoregressive": ar, "coupling": coupling, "bounded": bounded}


def _run(model, name):
    """In float64, so that the comparison tests the functions, not float32 round-off (which
    the inverse amplifies to ~3e-5 in both implementations)."""
    model.double()
    generator = torch.Generator().manual_seed(1)
    if name == "bounded":
        inputs, context = torch.rand(64, 4, generator=generator) * 0.9 + 0.05, None
    else:
        inputs = 1.5 * torch.randn(64, 4, generator=generator)
        context = torch.randn(64, 2, generator=generator).double()
    inputs = inputs.double()
    model.zero_grad()
    outputs, logabsdet = model(inputs, context)
    recovered, _ = model.inverse(outputs.detach(), context)
    (outputs.square().sum() + logabsdet.sum()).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    return [outputs.detach(), logabsdet.detach(), recovered.detach(), *grads]


@pytest.mark.parametrize("name", ["autoregressive", "coupling", "bounded"])
def test_patched_matches_unpatched(name):
    model = _models()[name]
    expected = _run(model, name)
    integration.patch()
    assert integration.is_patched()
    actual = _run(model, name)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, atol=1e-10, rtol=1e-10)


def test_patch_reaches_nflows_and_unpatch_restores():
    import fastgen

    original = autoregressive.unconstrained_rational_quadratic_spline
    original_forward = made.MaskedLinear.forward
    integration.patch()
    integration.patch()  # idempotent
    splines = sys.modules["nflows.transforms.splines"]
    assert autoregressive.unconstrained_rational_quadratic_spline is (
        fastgen.unconstrained_rational_quadratic_spline
    )
    assert splines.rational_quadratic_spline is fastgen.rational_quadratic_spline
    assert made.MaskedLinear.forward is not original_forward
    calls = []
    spy = fastgen.unconstrained_rational_quadratic_spline
    autoregressive.unconstrained_rational_quadratic_spline = lambda *a, **k: (
        calls.append(1) or spy(*a, **k)
    )
    _models()["autoregressive"](torch.randn(3, 4), torch.randn(3, 2))
    assert calls, "the patched transform did not call fastgen's spline"
    integration.unpatch()
    assert autoregressive.unconstrained_rational_quadratic_spline is original
    assert made.MaskedLinear.forward is original_forward
    assert not integration.is_patched()


def test_degrees_recovered_from_nflows_masks():
    """The input degrees recovered from each nflows mask reproduce it exactly, random masks
    included."""
    torch.manual_seed(2)
    model = made.MADE(
        5, 24, num_blocks=2, use_residual_blocks=False, random_mask=True, output_multiplier=3
    )
    layers = [m for m in model.modules() if isinstance(m, made.MaskedLinear)]
    for layer in layers:
        in_degrees, out_degrees = integration._degrees_from_mask(layer)
        rebuilt = out_degrees[:, None].long() >= in_degrees.long()
        assert torch.equal(rebuilt, layer.mask > 0)


def test_missing_nflows_is_a_clear_error(monkeypatch):
    # undone here, before always_unpatch's teardown needs nflows again
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "nflows.transforms.made", None)
        with pytest.raises(ImportError, match="pip install nflows"):
            integration.patch()


def test_patched_made_on_the_triton_kernel(monkeypatch):
    """nflows' MADE (unsorted hidden degrees) through the Triton kernel with the degrees
    recovered from its masks: same outputs and gradients as unpatched nflows (float32)."""
    pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")
    torch.manual_seed(3)
    model = made.MADE(5, 24, context_features=2, output_multiplier=3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    inputs, context = torch.randn(33, 5), torch.randn(33, 2)

    def run():
        model.zero_grad()
        out = model(inputs, context)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        return [out.detach()] + [p.grad.clone() for p in model.parameters()]

    expected = run()
    integration.patch()
    monkeypatch.setenv("FASTGEN_BACKEND", "triton")
    actual = run()
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)
