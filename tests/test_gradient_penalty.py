"""fastgen.gan against a hand-written WGAN-GP / R1 / R2 (``torch.autograd.grad`` written out
here, as the paper's Algorithm 1 and most training scripts do): penalty values and every
critic parameter's gradient after ``backward()``, on both backends (the Triton kernels run
under TRITON_INTERPRET=1 without a GPU), plus the contract's edge cases."""

import pytest
import torch
from torch import nn

import fastgen.gan as gan
from fastgen.backend import TRITON_AVAILABLE

NEEDS_TRITON = pytest.mark.skipif(not TRITON_AVAILABLE, reason="triton is not installed")
BACKENDS = ["torch", pytest.param("triton", marks=NEEDS_TRITON)]
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}


class MLPCritic(nn.Module):
    def __init__(self, features, context_features=0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features + context_features, 32),
            nn.SiLU(),
            nn.Linear(32, 32),
            nn.Tanh(),
            nn.Linear(32, 1),
        )

    def forward(self, x, context=None):
        return self.net(x if context is None else torch.cat([x, context], dim=1))


class ConvCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, stride=2),
            nn.SiLU(),
            nn.Conv2d(4, 8, 3, stride=2),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(8 * 2 * 2, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(1)


def hand_written_penalty(critic, real, fake, eps, context=None, weight=10.0, target=1.0):
    x_hat = eps * real + (1 - eps) * fake
    if not x_hat.requires_grad:
        x_hat.requires_grad_()
    output = critic(x_hat) if context is None else critic(x_hat, context)
    (grads,) = torch.autograd.grad(output.sum(), x_hat, create_graph=True)
    return weight * ((grads.flatten(1).norm(2, dim=1) - target) ** 2).mean()


def _parameter_grads(critic, loss):
    """Every parameter's gradient (zero for the last bias, which no input gradient sees)."""
    return torch.autograd.grad(loss, list(critic.parameters()), materialize_grads=True)


def _assert_equal(actual, expected, dtype):
    tolerance = TOLERANCE[dtype]
    torch.testing.assert_close(actual, expected, rtol=tolerance, atol=tolerance)


CASES = {
    "mlp": (lambda: MLPCritic(6), (257, 6), None),
    "mlp-context": (lambda: MLPCritic(6, 3), (33, 6), 3),
    "conv": (ConvCritic, (9, 1, 14, 14), None),
}


# float64 runs on the reference only (the kernels compute in float32)
DTYPE_BACKENDS = [
    pytest.param(torch.float64, "torch", id="float64-torch"),
    pytest.param(torch.float32, "torch", id="float32-torch"),
    pytest.param(torch.float32, "triton", id="float32-triton", marks=NEEDS_TRITON),
]


@pytest.mark.parametrize("dtype, backend", DTYPE_BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_gradient_penalty_equals_hand_written(case, dtype, backend):
    make_critic, shape, context_features = CASES[case]
    torch.manual_seed(0)
    critic = make_critic().to(dtype)
    real, fake = torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
    context = (
        None if context_features is None else torch.randn(shape[0], context_features, dtype=dtype)
    )
    eps = torch.rand((shape[0],) + (1,) * (len(shape) - 1), dtype=dtype)

    expected = hand_written_penalty(critic, real, fake, eps, context)
    expected_grads = _parameter_grads(critic, expected)
    penalty = gan.gradient_penalty(critic, real, fake, context=context, eps=eps, backend=backend)
    grads = _parameter_grads(critic, penalty)

    assert penalty.shape == () and penalty.dtype == dtype
    _assert_equal(penalty, expected, dtype)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        _assert_equal(grad, expected_grad, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_reach_real_and_fake(backend):
    """A generator's output that is not detached gets the penalty's gradient through the
    interpolation's backward."""
    torch.manual_seed(1)
    critic = MLPCritic(5)
    real, fake = torch.randn(17, 5, requires_grad=True), torch.randn(17, 5, requires_grad=True)
    eps = torch.rand(17, 1)
    expected = torch.autograd.grad(hand_written_penalty(critic, real, fake, eps), (real, fake))
    penalty = gan.gradient_penalty(critic, real, fake, eps=eps, backend=backend)
    for actual, wanted in zip(torch.autograd.grad(penalty, (real, fake)), expected, strict=True):
        _assert_equal(actual, wanted, torch.float32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("one_sided", [False, True])
def test_one_sided_and_target(one_sided, backend):
    torch.manual_seed(2)
    critic = MLPCritic(4)
    real, fake, eps = torch.randn(64, 4), torch.randn(64, 4), torch.rand(64, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_()
    (grads,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    excess = grads.norm(dim=1) - 0.05
    expected = 3.0 * (excess.clamp(min=0) if one_sided else excess).square().mean()
    penalty = gan.gradient_penalty(
        critic, real, fake, eps=eps, weight=3.0, target=0.05, one_sided=one_sided, backend=backend
    )
    _assert_equal(penalty, expected, torch.float32)
    _assert_equal(
        _parameter_grads(critic, penalty), _parameter_grads(critic, expected), torch.float32
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("penalty_fn", ["r1_penalty", "r2_penalty"])
def test_r1_r2_equal_hand_written(penalty_fn, backend):
    torch.manual_seed(3)
    critic = ConvCritic()
    samples = torch.randn(6, 1, 14, 14)
    x = samples.clone().requires_grad_()
    (grads,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    expected = 7.0 / 2 * grads.flatten(1).square().sum(dim=1).mean()
    penalty = getattr(gan, penalty_fn)(critic, samples, gamma=7.0, backend=backend)
    _assert_equal(penalty, expected, torch.float32)
    for grad, wanted in zip(
        _parameter_grads(critic, penalty), _parameter_grads(critic, expected), strict=True
    ):
        _assert_equal(grad, wanted, torch.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_critic_loss_and_stats(backend):
    torch.manual_seed(4)
    critic = MLPCritic(3, 2)
    real, fake = torch.randn(40, 3), torch.randn(40, 3, requires_grad=True)
    context, eps = torch.randn(40, 2), torch.rand(40, 1)
    wasserstein = critic(real, context).mean() - critic(fake.detach(), context).mean()
    penalty = hand_written_penalty(critic, real, fake.detach(), eps, context)
    expected = -wasserstein + penalty
    loss, stats = gan.wgan_gp_critic_loss(
        critic, real, fake, context=context, eps=eps, backend=backend
    )
    _assert_equal(loss, expected, torch.float32)
    _assert_equal(stats["wasserstein"], wasserstein.detach(), torch.float32)
    _assert_equal(stats["gradient_penalty"], penalty.detach(), torch.float32)
    assert not stats["wasserstein"].requires_grad and not stats["gradient_penalty"].requires_grad
    _assert_equal(_parameter_grads(critic, loss), _parameter_grads(critic, expected), torch.float32)
    assert fake.grad is None  # the critic step does not train the generator


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("one_sided", [False, True])
@pytest.mark.parametrize("target", [0.0, 1.0])
def test_zero_gradient_row_gives_zero_derivative(target, one_sided, backend):
    gradients = torch.randn(4, 9)
    gradients[1] = 0.0
    gradients.requires_grad_()
    penalty = gan.penalty_from_gradients(gradients, target, one_sided, weight=2.0, backend=backend)
    (derivative,) = torch.autograd.grad(penalty, gradients)
    assert torch.isfinite(derivative).all()
    assert (derivative[1] == 0).all()


def test_eps_reproducible_with_generator():
    critic = MLPCritic(3)
    real, fake = torch.randn(20, 3), torch.randn(20, 3)
    values = [
        gan.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
        for _ in range(2)
    ]
    assert values[0].item() == values[1].item()
    eps = torch.rand((20, 1), generator=torch.Generator().manual_seed(5))
    assert values[0].item() == gan.gradient_penalty(critic, real, fake, eps=eps).item()
    other = gan.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(6))
    assert other.item() != values[0].item()


def test_penalty_under_no_grad_is_a_value():
    critic = MLPCritic(3)
    real, fake, eps = torch.randn(8, 3), torch.randn(8, 3), torch.rand(8)
    with_graph = gan.gradient_penalty(critic, real, fake, eps=eps)
    with torch.no_grad():
        value = gan.gradient_penalty(critic, real, fake, eps=eps)
    assert not value.requires_grad
    assert value.item() == with_graph.item()


def test_bad_inputs():
    critic = MLPCritic(3)
    real = torch.randn(8, 3)
    with pytest.raises(ValueError, match="same shape"):
        gan.gradient_penalty(critic, real, torch.randn(8, 4))
    with pytest.raises(TypeError, match="dtype"):
        gan.gradient_penalty(critic, real, real.double())
    with pytest.raises(TypeError, match="real must have a floating-point dtype"):
        gan.gradient_penalty(critic, real.long(), real.long())
    with pytest.raises(TypeError, match="fake must be a torch.Tensor"):
        gan.gradient_penalty(critic, real, real.numpy())
    with pytest.raises(ValueError, match="weight must be >= 0"):
        gan.gradient_penalty(critic, real, real, weight=-1.0)
    with pytest.raises(ValueError, match="target must be finite"):
        gan.penalty_from_gradients(real, float("nan"))
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        gan.r1_penalty(critic, real, gamma=-0.5)
    with pytest.raises(ValueError, match=r"critic output must have shape \(8,\) or \(8, 1\)"):
        gan.gradient_penalty(lambda x: x, real, real)
    with pytest.raises(ValueError, match="critic output must have shape"):
        gan.wgan_gp_critic_loss(lambda x: x.sum(), real, real)
    with pytest.raises(ValueError, match="does not depend on its input"):
        gan.gradient_penalty(lambda x: torch.zeros(len(x)), real, real)
    with pytest.raises(ValueError, match=r"eps must have shape \(8,\) or \(8, 1\)"):
        gan.interpolate(real, real, torch.rand(8, 3))
    with pytest.raises(ValueError, match="eps must not require grad"):
        gan.interpolate(real, real, torch.rand(8, requires_grad=True))
    with pytest.raises(ValueError, match=r"needs N >= 1 samples of >= 1 feature \(N, \.\.\.\)"):
        gan.gradient_penalty(critic, real[:0], real[:0])
    with pytest.raises(ValueError, match=r"needs N >= 1 samples of >= 1 feature \(N, \.\.\.\)"):
        gan.penalty_from_gradients(torch.randn(4, 0))
