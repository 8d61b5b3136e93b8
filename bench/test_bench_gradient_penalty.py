"""WGAN-GP critic step: fastgen against the hand-written penalty most training scripts use.

What is measured, float32, for two critics:

* ``mlp``: a 64 -> 512 -> 512 -> 1 MLP critic (LeakyReLU 0.2) on a batch of 4096 x 64;
* ``conv``: a DCGAN-style critic (1 -> 64 -> 128 channels, 4x4 stride-2 convolutions,
  LeakyReLU 0.2, linear head) on a batch of 64 x 1 x 28 x 28 (MNIST-sized images);

in two parts:

* ``step``: the critic's loss ``mean D(fake) - mean D(real) + 10 * penalty`` and its
  ``backward()`` into the critic's parameters (the double backward through the penalty),
  without the optimizer update;
* ``elementwise``: only the penalty's element-wise work at the same shapes, the part fastgen
  fuses: the interpolation, the per-sample norms and penalty, and its gradient with respect
  to precomputed critic gradients. Its median over the step's is the share of the step
  those passes take.

Providers: ``fastgen-auto`` (``fastgen.gan.wgan_gp_critic_loss``; the fused PyTorch ops
``torch.lerp`` / ``vector_norm`` on CPU, the Triton kernels on CUDA) and ``hand-written``
(``eps * real + (1 - eps) * fake``, ``autograd.grad(..., create_graph=True)``,
``((g.norm(2, dim=1) - 1) ** 2).mean()``). Both draw the same ``eps``. Outside the timed
region each provider runs once and its loss must be finite; timings are never asserted.

Run::

    pytest bench/test_bench_gradient_penalty.py --benchmark-group-by=group \
        --benchmark-columns=median,iqr

Bytes each part moves, op by op, are printed by ``python -m profiling.traffic``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastgen import gan
from fastgen.backend import KERNEL_DTYPES, resolve_backend

WEIGHT = 10.0
ROUNDS = 10


def mlp_critic() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 512),
        nn.LeakyReLU(0.2),
        nn.Linear(512, 512),
        nn.LeakyReLU(0.2),
        nn.Linear(512, 1),
    )


def conv_critic() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 1),
    )


CASES = {"mlp": (mlp_critic, (4096, 64)), "conv": (conv_critic, (64, 1, 28, 28))}


def hand_written_loss(critic, real, fake, eps):
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_()
    (grads,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    penalty = WEIGHT * ((grads.view(len(grads), -1).norm(2, dim=1) - 1) ** 2).mean()
    return critic(fake).mean() - critic(real).mean() + penalty


def fastgen_loss(critic, real, fake, eps):
    return gan.wgan_gp_critic_loss(critic, real, fake, eps=eps, weight=WEIGHT)[0]


def hand_written_elementwise(real, fake, eps, grads):
    x_hat = eps * real + (1 - eps) * fake
    penalty = WEIGHT * ((grads.view(len(grads), -1).norm(2, dim=1) - 1) ** 2).mean()
    return x_hat, *torch.autograd.grad(penalty, grads)


def fastgen_elementwise(real, fake, eps, grads):
    x_hat = gan.interpolate(real, fake, eps)
    penalty = gan.penalty_from_gradients(grads, weight=WEIGHT)
    return x_hat, *torch.autograd.grad(penalty, grads)


PROVIDERS = {
    "fastgen-auto": (fastgen_loss, fastgen_elementwise),
    "hand-written": (hand_written_loss, hand_written_elementwise),
}


@pytest.mark.parametrize("part", ["step", "elementwise"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", CASES)
def test_critic_step(benchmark, measure, device, case, provider, part):
    make_critic, shape = CASES[case]
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # the critic's initialisation
    critic = make_critic().to(device)
    real, fake = (torch.randn(shape, generator=generator).to(device) for _ in range(2))
    eps = torch.rand((shape[0],) + (1,) * (len(shape) - 1), generator=generator).to(device)
    loss_fn, elementwise_fn = PROVIDERS[provider]
    if part == "step":

        def fn():
            loss = loss_fn(critic, real, fake, eps)
            loss.backward()
            return loss

    else:
        grads = torch.randn(shape, generator=generator).to(device).requires_grad_()

        def fn():
            return elementwise_fn(real, fake, eps, grads)

    results = fn()
    for result in results if isinstance(results, tuple) else (results,):
        assert torch.isfinite(result).all(), f"{provider} {case} {part}: non-finite result"
    backend = "torch"
    if provider == "fastgen-auto":
        backend = resolve_backend("auto", (real,), supported_dtypes=KERNEL_DTYPES)

    benchmark.group = f"wgan-gp {device} {case} {part}"
    benchmark.extra_info.update(
        provider=provider, backend=backend, case=case, part=part, shape=list(shape)
    )
    measure(fn, rounds=ROUNDS)
