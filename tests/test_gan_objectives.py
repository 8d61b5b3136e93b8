"""fastgen.gan's objectives against hand-written formulas (Python floats and math.log, the
papers' notation) and ``F.binary_cross_entropy_with_logits``; their limits at logits of
+-1e4; gradients by gradcheck in float64; and the weight-clipping helper."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fastgen.gan as gan

CRITIC_LOSSES = [
    gan.minimax_critic_loss,
    gan.hinge_critic_loss,
    gan.wasserstein_critic_loss,
]
GENERATOR_LOSSES = [
    gan.minimax_generator_loss,
    gan.non_saturating_generator_loss,
    gan.hinge_generator_loss,
    gan.wasserstein_generator_loss,
]


def sigmoid(t):
    return 1 / (1 + math.exp(-t))


def mean(values):
    return sum(values) / len(values)


# The papers' formulas on Python floats: D = sigmoid(logit) for the minimax family.
HAND_CRITIC = {
    gan.minimax_critic_loss: lambda r, f: (
        -mean([math.log(sigmoid(t)) for t in r]) - mean([math.log(1 - sigmoid(t)) for t in f])
    ),
    gan.hinge_critic_loss: lambda r, f: (
        mean([max(0, 1 - t) for t in r]) + mean([max(0, 1 + t) for t in f])
    ),
    gan.wasserstein_critic_loss: lambda r, f: mean(f) - mean(r),
}
HAND_GENERATOR = {
    gan.minimax_generator_loss: lambda f: mean([math.log(1 - sigmoid(t)) for t in f]),
    gan.non_saturating_generator_loss: lambda f: -mean([math.log(sigmoid(t)) for t in f]),
    gan.hinge_generator_loss: lambda f: -mean(f),
    gan.wasserstein_generator_loss: lambda f: -mean(f),
}


@pytest.fixture
def scores():
    generator = torch.Generator().manual_seed(0)
    real = 3 * torch.randn(7, 1, generator=generator, dtype=torch.float64)
    fake = 3 * torch.randn(5, generator=generator, dtype=torch.float64)  # (B,): any shape
    return real, fake


@pytest.mark.parametrize("loss", CRITIC_LOSSES, ids=lambda f: f.__name__)
def test_critic_losses_match_the_papers_formulas(loss, scores):
    real, fake = scores
    expected = HAND_CRITIC[loss](real.flatten().tolist(), fake.tolist())
    assert abs(loss(real, fake).item() - expected) < 1e-13
    value32 = loss(real.float(), fake.float())
    assert value32.dtype == torch.float32 and abs(value32.item() - expected) < 1e-5


@pytest.mark.parametrize("loss", GENERATOR_LOSSES, ids=lambda f: f.__name__)
def test_generator_losses_match_the_papers_formulas(loss, scores):
    _, fake = scores
    assert abs(loss(fake).item() - HAND_GENERATOR[loss](fake.tolist())) < 1e-13


def test_minimax_family_is_binary_cross_entropy(scores):
    real, fake = scores
    bce = F.binary_cross_entropy_with_logits
    ones, zeros = torch.ones_like, torch.zeros_like
    expected = bce(real, ones(real)) + bce(fake, zeros(fake))
    torch.testing.assert_close(gan.minimax_critic_loss(real, fake), expected, rtol=0, atol=1e-14)
    assert gan.non_saturating_critic_loss is gan.minimax_critic_loss
    torch.testing.assert_close(
        gan.non_saturating_generator_loss(fake), bce(fake, ones(fake)), rtol=0, atol=1e-14
    )
    torch.testing.assert_close(
        gan.minimax_generator_loss(fake), -bce(fake, zeros(fake)), rtol=0, atol=1e-14
    )


def test_patch_outputs_are_averaged_over_all_elements():
    generator = torch.Generator().manual_seed(1)
    real, fake = torch.randn(2, 4, 1, 3, 3, generator=generator)
    for loss in CRITIC_LOSSES:
        torch.testing.assert_close(loss(real, fake), loss(real.flatten(), fake.flatten()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_limits_at_extreme_logits(dtype):
    """At logits of +-1e4 every loss and gradient is finite and equals its limit: a confident
    correct critic has loss 0 and zero gradient, a confidently wrong one ``|logit|`` with
    gradient -+1 per element. The minimax generator's gradient vanishes when the critic
    rejects the samples (saturation), the non-saturating one's does not."""
    big = 1e4

    def value_and_grad(loss, *inputs):
        inputs = [torch.tensor([t], dtype=dtype, requires_grad=True) for t in inputs]
        value = loss(*inputs)
        grads = torch.autograd.grad(value, inputs)
        return [value.item(), *(g.item() for g in grads)]

    cases = [
        (gan.minimax_critic_loss, (big, -big), [0.0, 0.0, 0.0]),
        (gan.minimax_critic_loss, (-big, big), [2 * big, -1.0, 1.0]),
        (gan.non_saturating_generator_loss, (-big,), [big, -1.0]),
        (gan.non_saturating_generator_loss, (big,), [0.0, 0.0]),
        (gan.minimax_generator_loss, (-big,), [0.0, 0.0]),
        (gan.minimax_generator_loss, (big,), [-big, -1.0]),
        (gan.hinge_critic_loss, (big, -big), [0.0, 0.0, 0.0]),
        (gan.hinge_critic_loss, (-big, big), [2 * big + 2, -1.0, 1.0]),
        (gan.wasserstein_critic_loss, (big, -big), [-2 * big, -1.0, 1.0]),
    ]
    for loss, inputs, expected in cases:
        assert value_and_grad(loss, *inputs) == pytest.approx(expected, abs=1e-12), loss.__name__


@pytest.mark.parametrize("loss", CRITIC_LOSSES + GENERATOR_LOSSES, ids=lambda f: f.__name__)
def test_gradcheck(loss):
    generator = torch.Generator().manual_seed(2)
    # Away from the hinge's kinks at +-1 (finite differences step 1e-6).
    real = (2.5 * torch.randn(6, generator=generator, dtype=torch.float64)).requires_grad_()
    fake = (2.5 * torch.randn(4, generator=generator, dtype=torch.float64)).requires_grad_()
    for t in (real, fake):
        assert (t.detach().abs() - 1).abs().min() > 1e-3
    inputs = (real, fake) if loss in CRITIC_LOSSES else (fake,)
    assert torch.autograd.gradcheck(loss, inputs)


@pytest.mark.parametrize("loss", CRITIC_LOSSES + GENERATOR_LOSSES, ids=lambda f: f.__name__)
def test_nan_gives_nan(loss):
    values = torch.tensor([0.5, float("nan")])
    inputs = (torch.zeros(3), values) if loss in CRITIC_LOSSES else (values,)
    assert loss(*inputs).isnan()


def test_wasserstein_loss_plus_gradient_penalty_is_wgan_gp():
    torch.manual_seed(3)
    critic = nn.Sequential(nn.Linear(3, 16), nn.SiLU(), nn.Linear(16, 1))
    real, fake, eps = torch.randn(8, 3), torch.randn(8, 3), torch.rand(8)
    expected, _ = gan.wgan_gp_critic_loss(critic, real, fake, eps=eps, backend="torch")
    loss = gan.wasserstein_critic_loss(critic(real), critic(fake))
    loss = loss + gan.gradient_penalty(critic, real, fake, eps=eps, backend="torch")
    torch.testing.assert_close(loss, expected)


def test_clip_weights_in_place():
    torch.manual_seed(4)
    critic = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    before = [p.detach().clone() for p in critic.parameters()]
    pointers = [p.data_ptr() for p in critic.parameters()]
    with torch.no_grad():
        critic[0].weight[0, 0] = float("nan")
    gan.clip_weights_(critic, clip_value=0.1)
    for parameter, old, pointer in zip(critic.parameters(), before, pointers, strict=True):
        assert parameter.data_ptr() == pointer and parameter.grad is None
        # the bound as the float32 parameters hold it
        expected = torch.tensor([min(max(v, -0.1), 0.1) for v in old.flatten().tolist()]).tolist()
        actual = parameter.detach().flatten().tolist()
        if parameter is critic[0].weight:
            assert math.isnan(actual[0])
            expected, actual = expected[1:], actual[1:]
        assert actual == pytest.approx(expected, abs=0)
    weights = [torch.full((2,), 5.0), torch.full((3,), -5.0)]
    gan.clip_weights_(weights)  # default c = 0.01, Arjovsky et al.
    gan.clip_weights_(weights[0], clip_value=0.001)
    assert torch.equal(weights[0], torch.full((2,), 0.001))
    assert torch.equal(weights[1], torch.full((3,), -0.01))


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda: gan.minimax_critic_loss([0.0], torch.zeros(1)), TypeError, "real_logits"),
        (
            lambda: gan.hinge_critic_loss(torch.zeros(1), torch.zeros(1, dtype=torch.int64)),
            TypeError,
            "fake_scores",
        ),
        (
            lambda: gan.wasserstein_critic_loss(torch.zeros(0), torch.zeros(1)),
            ValueError,
            "real_scores",
        ),
        (
            lambda: gan.minimax_critic_loss(torch.zeros(1), torch.zeros(1, dtype=torch.float64)),
            TypeError,
            "real_logits and fake_logits",
        ),
        (
            lambda: gan.hinge_critic_loss(torch.zeros(1), torch.zeros(1, device="meta")),
            ValueError,
            "real_scores and fake_scores",
        ),
        (lambda: gan.non_saturating_generator_loss(torch.zeros(0)), ValueError, "fake_logits"),
        (lambda: gan.hinge_generator_loss(1.0), TypeError, "fake_scores"),
        (lambda: gan.clip_weights_(nn.Linear(2, 1), clip_value=0.0), ValueError, "clip_value"),
        (lambda: gan.clip_weights_([torch.zeros(1), 1.0]), TypeError, r"parameters\[1\]"),
    ],
)
def test_argument_errors_name_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()
