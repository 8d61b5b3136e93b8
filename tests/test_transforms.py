"""Flow transforms against their nflows counterparts with the weights copied across (same
outputs and logabsdet within 1e-5 in float32, forward and inverse), inverse(forward(x)) = x,
and logabsdet against log|det J| of the autograd Jacobian in float64; mixed per-feature tails
against the spline functions called feature by feature."""

import pytest
import torch
from tolerances import assert_matches_reference, scaled_errors

import fastgen
from fastgen.flows import (
    AffineElementwiseTransform,
    AutoregressiveTransform,
    CompositeTransform,
    CouplingTransform,
    InverseTransform,
    MaskedAffineAutoregressiveTransform,
    MaskedRQSAutoregressiveTransform,
    RandomPermutation,
    ReversePermutation,
    RQSCouplingTransform,
    RQSElementwiseTransform,
)
from fastgen.nn import MADE

nflows_transforms = pytest.importorskip("nflows.transforms", reason="nflows is not installed")
nflows_nets = pytest.importorskip("nflows.nn.nets", reason="nflows is not installed")

FEATURES, BATCH, CONTEXT = 5, 257, 3


def _perturb(module, scale=0.3):
    """Move every parameter away from its initialisation (the residual blocks start near
    zero), so that every part of the network matters."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def _assert_same(ours, theirs, inputs, context):
    """float64: the same function (within 1e-10 relative to 1 + |value|). float32: judged
    against nflows' float64 result by nflows' own float32 error (tests/tolerances.py): with
    these trained-looking weights (steep bins, logabsdet up to ~15) nflows' float32 results
    are themselves up to ~2e-5 from its float64 ones, so a flat 1e-5 between the two float32
    results would test round-off, not the function."""
    for direction in ("forward", "inverse"):
        results = {}
        for dtype in (torch.float32, torch.float64):
            args = (inputs.to(dtype), None if context is None else context.to(dtype))
            results[dtype] = [getattr(m.to(dtype), direction)(*args) for m in (ours, theirs)]
        (ours32, theirs32), (ours64, theirs64) = results[torch.float32], results[torch.float64]
        for name, a32, e32, a64, e64 in zip(
            ("outputs", "logabsdet"), ours32, theirs32, ours64, theirs64, strict=True
        ):
            where = f"{direction} {name}"
            assert a32.shape == e64.shape and a32.dtype == torch.float32, where
            assert scaled_errors(a64, e64).max() <= 1e-10, where
            assert_matches_reference(a32, e64, e32, name=where, c=10.0, atol=1e-5)


def _inputs(tails, batch=BATCH, features=FEATURES, dtype=torch.float32):
    if tails is None:
        return torch.rand(batch, features, dtype=dtype) * 0.98 + 0.01
    return 1.5 * torch.randn(batch, features, dtype=dtype)


@pytest.mark.parametrize("tails", [None, "linear"])
@pytest.mark.parametrize("context_features", [None, CONTEXT])
def test_autoregressive_rqs_matches_nflows(tails, context_features):
    torch.manual_seed(0)
    kwargs = dict(
        features=FEATURES,
        hidden_features=24,
        context_features=context_features,
        num_bins=6,
        tails=tails,
        tail_bound=3.0,
        num_blocks=2,
    )
    theirs = nflows_transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(**kwargs)
    _perturb(theirs)
    ours = MaskedRQSAutoregressiveTransform(**kwargs)
    ours.load_nflows_state_dict(theirs.state_dict())
    context = None if context_features is None else torch.randn(BATCH, CONTEXT)
    _assert_same(ours, theirs, _inputs(tails), context)


@pytest.mark.parametrize("use_residual_blocks", [True, False])
def test_affine_autoregressive_matches_nflows(use_residual_blocks):
    torch.manual_seed(1)
    kwargs = dict(
        features=FEATURES,
        hidden_features=20,
        context_features=CONTEXT,
        use_residual_blocks=use_residual_blocks,
    )
    theirs = nflows_transforms.MaskedAffineAutoregressiveTransform(**kwargs)
    _perturb(theirs)
    ours = MaskedAffineAutoregressiveTransform(**kwargs)
    ours.load_nflows_state_dict(theirs.state_dict())
    _assert_same(ours, theirs, _inputs("linear"), torch.randn(BATCH, CONTEXT))


def _residual_net(context_features):
    def create(in_features, out_features):
        return nflows_nets.ResidualNet(
            in_features,
            out_features,
            hidden_features=16,
            context_features=context_features,
            num_blocks=2,
        )

    return create


@pytest.mark.parametrize("tails", [None, "linear"])
@pytest.mark.parametrize("context_features", [None, CONTEXT])
def test_coupling_rqs_matches_nflows(tails, context_features):
    torch.manual_seed(2)
    mask = torch.tensor([1, 0, 1, 0, 1])
    kwargs = dict(num_bins=7, tails=tails, tail_bound=3.0)
    theirs = nflows_transforms.PiecewiseRationalQuadraticCouplingTransform(
        mask, _residual_net(context_features), **kwargs
    )
    _perturb(theirs)
    ours = RQSCouplingTransform(mask, _residual_net(context_features), **kwargs)
    ours.transform_net.load_state_dict(theirs.transform_net.state_dict())
    context = None if context_features is None else torch.randn(BATCH, CONTEXT)
    _assert_same(ours, theirs, _inputs(tails), context)


def test_permutations_and_composite_match_nflows():
    torch.manual_seed(3)
    permutation = RandomPermutation(FEATURES)
    theirs = nflows_transforms.CompositeTransform(
        [
            nflows_transforms.ReversePermutation(FEATURES),
            nflows_transforms.Permutation(permutation._permutation.clone()),
            nflows_transforms.MaskedAffineAutoregressiveTransform(FEATURES, 12),
            nflows_transforms.InverseTransform(
                nflows_transforms.MaskedAffineAutoregressiveTransform(FEATURES, 10)
            ),
        ]
    )
    _perturb(theirs)
    affine = MaskedAffineAutoregressiveTransform(FEATURES, 12)
    affine.load_nflows_state_dict(theirs._transforms[2].state_dict())
    inverse_affine = MaskedAffineAutoregressiveTransform(FEATURES, 10)
    inverse_affine.load_nflows_state_dict(theirs._transforms[3]._transform.state_dict())
    ours = CompositeTransform(
        [ReversePermutation(FEATURES), permutation, affine, InverseTransform(inverse_affine)]
    )
    _assert_same(ours, theirs, _inputs("linear"), None)


def _float64_transforms():
    torch.manual_seed(4)
    mixed = ("linear", "circular", "linear", "circular")
    transforms = {
        "rqs-linear": MaskedRQSAutoregressiveTransform(
            4, 16, num_bins=5, tails="linear", tail_bound=3.0
        ),
        "rqs-circular": MaskedRQSAutoregressiveTransform(
            4, 16, num_bins=5, tails="circular", tail_bound=3.0
        ),
        "rqs-mixed-context": MaskedRQSAutoregressiveTransform(
            4, 16, context_features=2, num_bins=5, tails=mixed, tail_bound=3.0
        ),
        "affine": MaskedAffineAutoregressiveTransform(4, 16, context_features=2),
        "coupling-mixed": RQSCouplingTransform(
            [1, 0, 1, 1],
            _residual_net(2),
            num_bins=4,
            tails=("circular", "linear", "linear"),
            tail_bound=3.0,
        ),
        "coupling-affine-context": CouplingTransform(
            [0, 1, 1, 0], _residual_net(2), AffineElementwiseTransform()
        ),
        "iaf-context": InverseTransform(MaskedAffineAutoregressiveTransform(4, 16, 2)),
        "composite": CompositeTransform(
            [
                MaskedAffineAutoregressiveTransform(4, 8),
                ReversePermutation(4),
                MaskedRQSAutoregressiveTransform(4, 8, num_bins=4, tails="linear", tail_bound=3.0),
            ]
        ),
    }
    for t in transforms.values():
        _perturb(t)
    return transforms


TRANSFORMS = _float64_transforms()


def assert_inverse_and_logabsdet(transform, inputs, context):
    """float64: inverse(forward(x)) = x with minus the logabsdet, and logabsdet = log|det J|
    of the autograd Jacobian of each row, within 1e-9."""
    outputs, logabsdet = transform(inputs, context)
    recovered, inverse_logabsdet = transform.inverse(outputs, context)
    torch.testing.assert_close(recovered, inputs, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet, atol=1e-9, rtol=1e-9)
    for b in range(inputs.shape[0]):
        ctx = None if context is None else context[b : b + 1]
        jacobian = torch.autograd.functional.jacobian(
            lambda x, ctx=ctx: transform(x[None], ctx)[0][0], inputs[b]
        )
        expected = torch.linalg.slogdet(jacobian).logabsdet
        torch.testing.assert_close(logabsdet[b], expected, atol=1e-9, rtol=1e-9)
    assert logabsdet.dtype == torch.float64 and logabsdet.shape == (inputs.shape[0],)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_inverse_and_logabsdet_float64(name):
    transform = TRANSFORMS[name].double()
    torch.manual_seed(5)
    inputs = _inputs("linear", batch=3, features=4, dtype=torch.float64)
    context = (
        torch.randn(3, 2, dtype=torch.float64)
        if "context" in name or "mixed" in name or (name == "affine")
        else None
    )
    assert_inverse_and_logabsdet(transform, inputs, context)


def test_bad_input():
    transform = MaskedRQSAutoregressiveTransform(3, 8, num_bins=4, tails="linear")
    with pytest.raises(ValueError, match="inputs must have shape"):
        transform(torch.randn(2, 4))
    with pytest.raises(ValueError, match="context was given"):
        transform(torch.randn(2, 3), torch.randn(2, 1))
    conditional = MaskedAffineAutoregressiveTransform(3, 8, context_features=2)
    with pytest.raises(ValueError, match="context of shape"):
        conditional(torch.randn(2, 3))
    with pytest.raises(ValueError, match="per-feature tails"):
        MaskedRQSAutoregressiveTransform(3, 8, tails=("linear", "circular"))
    with pytest.raises(ValueError, match="tails must be"):
        MaskedRQSAutoregressiveTransform(3, 8, tails="quadratic")
    with pytest.raises(ValueError, match="features in dim"):
        ReversePermutation(3)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="mask must"):
        RQSCouplingTransform([0, 0], _residual_net(None))
    with pytest.raises(ValueError, match="num_bins must be >= 2, got 1"):
        MaskedRQSAutoregressiveTransform(3, 8, num_bins=1)
    with pytest.raises(TypeError, match="features must be an int"):
        MaskedRQSAutoregressiveTransform(3.5, 8)
    with pytest.raises(ValueError, match="hidden_features must be >= 1"):
        MaskedAffineAutoregressiveTransform(3, 0)
    with pytest.raises(ValueError, match="context_features must be >= 1"):
        MaskedAffineAutoregressiveTransform(3, 8, context_features=0)
    with pytest.raises(ValueError, match="tail_bound must be > 0"):
        RQSCouplingTransform([1, 0], _residual_net(None), tails="linear", tail_bound=0.0)
    with pytest.raises(ValueError, match="output_multiplier = elementwise.params_per_feature"):
        AutoregressiveTransform(MADE(3, 8, output_multiplier=3), AffineElementwiseTransform())


def test_compiles_without_graph_breaks():
    """The reference path of a spline transform (MADE, masked layers, spline) is one graph."""
    torch.manual_seed(6)
    transform = MaskedRQSAutoregressiveTransform(
        4, 16, context_features=2, num_bins=5, tails="linear", tail_bound=3.0
    )
    inputs, context = torch.randn(8, 4), torch.randn(8, 2)
    # backend="eager": fullgraph=True already fails on any graph break; inductor adds ~20 s
    compiled = torch.compile(transform, fullgraph=True, backend="eager")
    for a, e in zip(compiled(inputs, context), transform(inputs, context), strict=True):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("inverse", [False, True])
def test_mixed_tails_match_the_spline_per_feature(inverse):
    """The grouping by tails against fastgen's spline functions called on each feature with
    its own tails (linear features: the first K - 1 derivative logits)."""
    torch.manual_seed(7)
    tails = ("circular", "linear", "linear", "circular", "linear")
    spline = RQSElementwiseTransform(5, num_bins=6, tails=tails, tail_bound=2.0).double()
    assert spline.params_per_feature == 18
    inputs = 1.5 * torch.randn(33, 5, dtype=torch.float64)
    params = torch.randn(33, 5, 18, dtype=torch.float64)
    outputs, logabsdet = (spline.inverse if inverse else spline)(inputs, params)
    total = torch.zeros(33, dtype=torch.float64)
    for d, t in enumerate(tails):
        derivatives = params[:, d, 12:] if t == "circular" else params[:, d, 12:17]
        expected, expected_logabsdet = fastgen.unconstrained_rational_quadratic_spline(
            inputs[:, d],
            params[:, d, :6],
            params[:, d, 6:12],
            derivatives,
            inverse=inverse,
            tails=t,
            tail_bound=2.0,
        )
        torch.testing.assert_close(outputs[:, d], expected, atol=1e-12, rtol=1e-12)
        total += expected_logabsdet
    torch.testing.assert_close(logabsdet, total, atol=1e-12, rtol=1e-12)


def test_params_per_feature_follow_nflows_layouts():
    counts = {None: 3 * 4 + 1, "linear": 3 * 4 - 1, "circular": 3 * 4, ("linear", "circular"): 12}
    for tails, expected in counts.items():
        features = len(tails) if isinstance(tails, tuple) else 2
        assert RQSElementwiseTransform(features, 4, tails).params_per_feature == expected
        made = MaskedRQSAutoregressiveTransform(features, 8, num_bins=4, tails=tails)
        assert made.autoregressive_net.output_multiplier == expected


def test_old_names_in_fastgen_nn():
    import fastgen.flows
    import fastgen.nn

    for name in fastgen.nn._MOVED_TO_FLOWS:
        assert getattr(fastgen.nn, name) is getattr(fastgen.flows, name)
    assert not hasattr(fastgen.nn, "Flow")
