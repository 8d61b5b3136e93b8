"""RealNVP affine coupling, BatchNorm, MAF and IAF flows: equal to nflows with the weights
copied (float64 within 1e-10; float32 judged by nflows' own float32 error),
inverse(forward(x)) = x and logabsdet = log|det J| of the autograd Jacobian (float64), the
density of 2-D flows integrating to 1, and argument errors."""

import pytest
import torch
from test_transforms import _assert_same, _perturb, _residual_net, assert_inverse_and_logabsdet
from torch import nn

from fastgen.flows import (
    AffineCouplingTransform,
    AffineElementwiseTransform,
    BatchNorm,
    CompositeTransform,
    Flow,
    InverseAutoregressiveFlow,
    InverseTransform,
    MaskedAffineAutoregressiveTransform,
    MaskedAutoregressiveFlow,
    StandardNormal,
)

nflows_transforms = pytest.importorskip("nflows.transforms", reason="nflows is not installed")
nflows_flows = pytest.importorskip("nflows.flows", reason="nflows is not installed")
nflows_distributions = pytest.importorskip("nflows.distributions", reason="nflows is not installed")

BATCH, CONTEXT = 257, 3


@pytest.mark.parametrize("mask", [[1, 0, 1, 0, 1], [0, 0, 0, 1, 0]], ids=["alternate", "one"])
@pytest.mark.parametrize("context_features", [None, CONTEXT])
def test_affine_coupling_matches_nflows(mask, context_features):
    torch.manual_seed(0)
    theirs = nflows_transforms.AffineCouplingTransform(mask, _residual_net(context_features))
    _perturb(theirs, scale=0.5)
    ours = AffineCouplingTransform(mask, _residual_net(context_features))
    ours.transform_net.load_state_dict(theirs.transform_net.state_dict())
    context = None if context_features is None else torch.randn(BATCH, CONTEXT)
    _assert_same(ours, theirs, 1.5 * torch.randn(BATCH, 5), context)


@pytest.mark.parametrize("context_features", [None, CONTEXT])
def test_iaf_layer_matches_nflows(context_features):
    torch.manual_seed(1)
    theirs = nflows_transforms.InverseTransform(
        nflows_transforms.MaskedAffineAutoregressiveTransform(5, 20, context_features)
    )
    _perturb(theirs)
    ours = InverseTransform(MaskedAffineAutoregressiveTransform(5, 20, context_features))
    ours._transform.load_nflows_state_dict(theirs._transform.state_dict())
    context = None if context_features is None else torch.randn(BATCH, CONTEXT)
    _assert_same(ours, theirs, 1.5 * torch.randn(BATCH, 5), context)


def _close(actual, expected):
    """float64 agreement within 1e-10 relative to 1 + |value|."""
    assert actual.shape == expected.shape
    assert ((actual - expected).abs() / (1 + expected.abs())).max() <= 1e-10


def test_batchnorm_matches_nflows():
    """Training mode (batch statistics, running-statistics update) over three batches, then
    eval mode (running statistics) forward and inverse, from nflows' state."""
    torch.manual_seed(2)
    theirs = nflows_transforms.BatchNorm(4, eps=1e-4, momentum=0.3).double()
    _perturb(theirs)
    ours = BatchNorm(4, eps=1e-4, momentum=0.3).double()
    ours.load_state_dict(theirs.state_dict())
    for _ in range(3):
        x = 2.0 * torch.randn(64, 4, dtype=torch.float64) + torch.randn(4, dtype=torch.float64)
        for a, e in zip(ours(x), theirs(x), strict=True):
            _close(a, e)
        _close(ours.running_mean, theirs.running_mean)
        _close(ours.running_var, theirs.running_var)
    ours.eval(), theirs.eval()
    x = 2.0 * torch.randn(64, 4, dtype=torch.float64)
    for direction in ("forward", "inverse"):
        for a, e in zip(getattr(ours, direction)(x), getattr(theirs, direction)(x), strict=True):
            _close(a, e)
    # the running statistics moved: eval mode is not the identity-like fresh layer
    assert (ours.running_var - 1).abs().max() > 0.5


def _copy_nflows_layers(ours, theirs):
    """Per layer of two CompositeTransforms: the MADEs by load_nflows_state_dict, the rest
    (BatchNorm, permutations) by their (same) state_dict keys."""
    for a, e in zip(ours._transforms, theirs._transforms, strict=True):
        if isinstance(a, MaskedAffineAutoregressiveTransform):
            a.load_nflows_state_dict(e.state_dict())
        else:
            a.load_state_dict(e.state_dict())


def test_maf_and_iaf_flows_match_nflows():
    """nflows' MaskedAutoregressiveFlow with batch norm between layers: log_prob in training
    mode (twice, so the running statistics are compared after an update) and in eval mode;
    the IAF is nflows' ``Flow(InverseTransform(that transform), StandardNormal)``."""
    torch.manual_seed(3)
    kwargs = dict(
        features=4,
        hidden_features=12,
        num_layers=3,
        num_blocks_per_layer=2,
        batch_norm_between_layers=True,
    )
    theirs = nflows_flows.MaskedAutoregressiveFlow(**kwargs).double()
    _perturb(theirs)
    ours = MaskedAutoregressiveFlow(**kwargs).double()
    _copy_nflows_layers(ours._transform, theirs._transform)
    x = 1.5 * torch.randn(BATCH, 4, dtype=torch.float64)
    for _ in range(2):
        _close(ours.log_prob(x), theirs.log_prob(x))
    layers = list(zip(ours._transform._transforms, theirs._transform._transforms, strict=True))
    for a, e in layers[2::3]:
        assert isinstance(a, BatchNorm)
        _close(a.running_mean, e.running_mean)
        _close(a.running_var, e.running_var)
    ours.eval(), theirs.eval()
    _close(ours.log_prob(x), theirs.log_prob(x))

    their_iaf = nflows_flows.Flow(
        nflows_transforms.InverseTransform(theirs._transform),
        nflows_distributions.StandardNormal([4]),
    ).double()
    our_iaf = InverseAutoregressiveFlow(**kwargs).double().eval()
    _copy_nflows_layers(our_iaf._transform._transform, theirs._transform)
    _close(our_iaf.log_prob(x), their_iaf.log_prob(x))
    noise = torch.randn(BATCH, 4, dtype=torch.float64)
    for a, e in zip(
        our_iaf._transform.inverse(noise), their_iaf._transform.inverse(noise), strict=True
    ):
        _close(a, e)


def _float64_layers():
    torch.manual_seed(4)
    norm = BatchNorm(4, momentum=0.5)
    norm(2.0 * torch.randn(32, 4) + 1.0)  # running statistics away from (0, 1)
    layers = {
        "coupling": AffineCouplingTransform([1, 0, 0, 1], _residual_net(None)),
        "coupling-context": AffineCouplingTransform([0, 1, 1, 1], _residual_net(2)),
        "batchnorm-eval": norm.eval(),
        "iaf-context": InverseTransform(MaskedAffineAutoregressiveTransform(4, 16, 2)),
        "iaf-flow-context": InverseAutoregressiveFlow(
            4, 8, 2, 1, batch_norm_between_layers=True, context_features=2
        )._transform.eval(),
    }
    for t in layers.values():
        with torch.no_grad():
            for p in t.parameters():
                p.add_(0.5 * torch.randn_like(p))
    return layers


LAYERS = _float64_layers()


@pytest.mark.parametrize("name", list(LAYERS))
def test_inverse_and_logabsdet_float64(name):
    torch.manual_seed(5)
    inputs = 1.5 * torch.randn(3, 4, dtype=torch.float64)
    context = torch.randn(3, 2, dtype=torch.float64) if "context" in name else None
    assert_inverse_and_logabsdet(LAYERS[name].double(), inputs, context)


class _TanhNet(nn.Module):
    """A bounded conditioner (a ReLU net's shift grows with its input, so a stack of
    couplings can have tails too heavy for a grid)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.hidden, self.out = nn.Linear(in_features, 16), nn.Linear(16, out_features)

    def forward(self, inputs, context=None):
        return self.out(torch.tanh(self.hidden(inputs)))


def _realnvp_2d():
    torch.manual_seed(6)
    norm = BatchNorm(2)
    norm(torch.randn(64, 2) * torch.tensor([2.0, 0.5]) + 1.0)
    layers = [
        AffineCouplingTransform([1, 0], _TanhNet),
        AffineCouplingTransform([0, 1], _TanhNet),
        norm.eval(),
        AffineCouplingTransform([1, 0], _TanhNet),
    ]
    return Flow(CompositeTransform(layers), StandardNormal([2]))


def _iaf_2d():
    torch.manual_seed(7)
    return InverseAutoregressiveFlow(2, 8, 3, 1, batch_norm_between_layers=True).eval()


@pytest.mark.parametrize(
    "make, half_width", [(_realnvp_2d, 12.0), (_iaf_2d, 6.0)], ids=["realnvp", "iaf"]
)
def test_density_integrates_to_one(make, half_width):
    """Midpoint sum of exp(log_prob) over [-L, L]^2 on a 480 x 480 grid: within 1e-4 of 1
    (measured: 1.5e-9 RealNVP, 2.5e-7 IAF). The box covers the mass: none of 20,000 samples
    falls outside [-5L/6, 5L/6]^2. The flow is far from the base (its log-density differs
    from the base's by more than 1)."""
    flow = make().double()
    _perturb(flow, scale=0.1)
    with torch.no_grad():
        samples = flow.sample(20_000)
        assert samples.abs().max() < 5 * half_width / 6, samples.abs().max()
        step = 2 * half_width / 480
        axis = torch.arange(-half_width + step / 2, half_width, step, dtype=torch.float64)
        grid = torch.cartesian_prod(axis, axis)
        log_prob = flow.log_prob(grid)
    total = log_prob.exp().sum().item() * step**2
    assert abs(total - 1) < 1e-4, total
    base = StandardNormal([2]).double().log_prob(grid)
    assert (log_prob - base).abs().max() > 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale_activation must be one of"):
        AffineElementwiseTransform(scale_activation="tanh")
    with pytest.raises(ValueError, match="mask must mark at least one feature"):
        AffineCouplingTransform([0, 0], _residual_net(None))
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, features\)"):
        AffineCouplingTransform([1, 0], _residual_net(None))(torch.randn(3, 3))
    with pytest.raises(ValueError, match="features must be >= 1"):
        BatchNorm(0)
    with pytest.raises(TypeError, match="features must be an int"):
        BatchNorm(2.0)
    with pytest.raises(ValueError, match="eps must be > 0"):
        BatchNorm(2, eps=0.0)
    with pytest.raises(ValueError, match="momentum must be >= 0 and <= 1, got 1.5"):
        BatchNorm(2, momentum=1.5)
    with pytest.raises(ValueError, match="at least 2 rows in training mode"):
        BatchNorm(2)(torch.randn(1, 2))
    with pytest.raises(RuntimeError, match="needs eval mode"):
        BatchNorm(2).inverse(torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, features\)"):
        BatchNorm(2).eval()(torch.randn(3, 3))
    with pytest.raises(ValueError, match="num_layers must be >= 1"):
        MaskedAutoregressiveFlow(2, 8, 0, 1)
    with pytest.raises(TypeError, match="batch_norm_between_layers must be a bool"):
        InverseAutoregressiveFlow(2, 8, 1, 1, batch_norm_between_layers=1)


def test_batchnorm_nan_propagates():
    """A NaN in a training batch: that batch's outputs and the running statistics are NaN."""
    norm = BatchNorm(2)
    x = torch.randn(4, 2)
    x[1, 0] = float("nan")
    outputs, _ = norm(x)
    assert outputs[:, 0].isnan().all() and not outputs[:, 1].isnan().any()
    assert norm.running_mean[0].isnan() and not norm.running_mean[1].isnan()
