"""The MaskedLinear module on the reference path: nflows' MaskedLinear as the oracle, the
cached mask following the degrees (set_degrees, load_state_dict, dtype moves), and errors."""

import pytest
import torch
import torch.nn.functional as F

from fastgen.nn import MaskedLinear, masked_linear

made = pytest.importorskip("nflows.transforms.made", reason="nflows is not installed")


@pytest.mark.parametrize("is_output", [False, True], ids=["hidden", "output"])
def test_matches_nflows_masked_linear(is_output):
    torch.manual_seed(0)
    in_degrees = torch.randint(1, 6, (13,))
    theirs = made.MaskedLinear(
        in_degrees, 10 if is_output else 17, 5, random_mask=False, is_output=is_output
    )
    ours = MaskedLinear(13, theirs.out_features, in_degrees, theirs.degrees, strict=is_output)
    ours.load_state_dict(
        {
            "weight": theirs.weight,
            "bias": theirs.bias,
            "in_degrees": in_degrees,
            "out_degrees": theirs.degrees,
        }
    )
    assert torch.equal(ours.mask, theirs.mask)
    inputs = torch.randn(4, 7, 13)
    torch.testing.assert_close(ours(inputs), theirs(inputs), atol=0, rtol=0)


@pytest.mark.parametrize("activation", [F.relu, F.gelu, torch.tanh, F.elu, F.silu])
def test_fused_activation_equals_applying_it(activation):
    layer = MaskedLinear(6, 5, torch.arange(6), torch.arange(5), activation=activation)
    plain = MaskedLinear(6, 5, torch.arange(6), torch.arange(5))
    plain.load_state_dict(layer.state_dict())
    inputs = torch.randn(3, 6)
    torch.testing.assert_close(layer(inputs), activation(plain(inputs)))


def test_mask_follows_degrees_and_dtype():
    layer = MaskedLinear(4, 3, [1, 2, 3, 4], [1, 1, 1])
    assert layer.mask.sum() == 3
    layer.set_degrees([1, 2, 3, 4], [4, 4, 4])
    assert layer.mask.sum() == 12
    other = MaskedLinear(4, 3, [1, 2, 3, 4], [2, 2, 2])
    other.load_state_dict(layer.state_dict())
    assert other.mask.sum() == 12 and other._out_i32.tolist() == [4, 4, 4]
    other = other.double()
    assert other(torch.randn(2, 4, dtype=torch.float64)).dtype == torch.float64
    assert "mask" not in other.state_dict()


def test_gradient_of_masked_weights_is_zero():
    layer = MaskedLinear(5, 4, torch.arange(5), torch.tensor([0, 1, 2, 3]), strict=True)
    layer(torch.randn(8, 5)).square().sum().backward()
    assert (layer.weight.grad[layer.mask == 0] == 0).all()
    assert (layer.weight.grad[layer.mask == 1] != 0).all()


def test_bad_input():
    with pytest.raises(ValueError, match=r"in_degrees must have shape \(in_features,\) = \(4,\)"):
        MaskedLinear(4, 3, [1, 2, 3], [1, 1, 1])
    with pytest.raises(ValueError, match=r"out_degrees must have shape \(out_features,\)"):
        MaskedLinear(4, 3, [1, 2, 3, 4], [1, 1])
    with pytest.raises(TypeError, match="in_degrees must be integers"):
        MaskedLinear(2, 1, torch.tensor([1.0, 2.0]), [1])
    with pytest.raises(ValueError, match="activation must be one of"):
        MaskedLinear(2, 1, [1, 2], [1], activation="softsign")
    with pytest.raises(ValueError, match="out_features must be >= 1, got 0"):
        MaskedLinear(2, 0, [1, 2], [])
    with pytest.raises(TypeError, match="strict must be a bool"):
        MaskedLinear(2, 1, [1, 2], [1], strict=1)
    layer = MaskedLinear(4, 3, [1, 2, 3, 4], [1, 2, 3])
    with pytest.raises(ValueError, match=r"input must have shape \(\.\.\., in_features\)"):
        layer(torch.randn(2, 5))
    with pytest.raises(TypeError, match="must share one dtype"):
        layer(torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        layer([[1.0] * 4])
    with pytest.raises(ValueError, match="backend must be one of"):
        masked_linear(
            torch.randn(2, 4), layer.weight, None, [1, 2, 3, 4], [1, 2, 3], backend="cuda"
        )


def test_pickles_with_torch_save(tmp_path):
    """Whole models are pickled (sbi saves posteriors that way)."""
    layer = MaskedLinear(4, 3, [1, 2, 3, 4], [1, 2, 3], activation="relu")
    torch.save(layer, tmp_path / "layer.pt")
    loaded = torch.load(tmp_path / "layer.pt", weights_only=False)
    inputs = torch.randn(2, 4)
    torch.testing.assert_close(loaded(inputs), layer(inputs))
    loaded.load_state_dict(layer.state_dict())  # the post-hook survives pickling


def _expected(layer, inputs):
    return F.linear(inputs, layer.weight.detach() * layer.mask, layer.bias.detach())


def test_cached_masked_weight_follows_every_weight_change():
    """Outside autograd the module reuses W * M; each way of changing W or M invalidates it."""
    torch.manual_seed(1)
    layer = MaskedLinear(6, 5, torch.arange(6), torch.tensor([0, 1, 2, 3, 4]))
    inputs = torch.randn(3, 6)

    def check(step):
        with torch.no_grad():
            out = layer(inputs)
        torch.testing.assert_close(out, _expected(layer, inputs), atol=1e-6, rtol=1e-6, msg=step)

    check("first call")
    with torch.no_grad():
        assert layer.masked_weight() is layer.masked_weight()  # cached while unchanged
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    for foreach in (False, True):  # both optimizer code paths bump the version counter
        optimizer.param_groups[0]["foreach"] = foreach
        layer(inputs).square().sum().backward()
        optimizer.step()
        check(f"optimizer step, foreach={foreach}")
    with torch.no_grad():
        layer.weight.mul_(-2.0)
    check("in-place update under no_grad")
    layer.weight.detach().add_(1.0)
    check("in-place update through detach()")
    torch.nn.init.normal_(layer.weight)
    check("torch.nn.init")
    layer.load_state_dict({**layer.state_dict(), "weight": torch.randn(5, 6)})
    check("load_state_dict")
    layer.set_degrees(torch.arange(6), torch.tensor([5, 5, 5, 5, 5]))
    check("set_degrees")
    layer.weight.data = torch.randn(5, 6)
    check("assigning .data")
    layer.double()
    with torch.no_grad():
        out = layer(inputs.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, _expected(layer, inputs.double()))


def test_cached_masked_weight_is_not_used_for_gradients():
    """With autograd on, W * M is recomputed, so grad_W is masked and reaches the weight."""
    layer = MaskedLinear(5, 4, torch.arange(5), torch.tensor([0, 1, 2, 3]), strict=True)
    inputs = torch.randn(8, 5)
    with torch.no_grad():
        layer(inputs)  # fills the cache
    layer(inputs).square().sum().backward()
    weight = layer.weight.detach().requires_grad_()
    reference = F.linear(inputs, weight * layer.mask, layer.bias.detach()).square().sum()
    (grad,) = torch.autograd.grad(reference, [weight])
    torch.testing.assert_close(layer.weight.grad, grad)
    assert (layer.weight.grad[layer.mask == 0] == 0).all()
