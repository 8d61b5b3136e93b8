"""Training of the demo's flow and WGAN-GP, with profiler / NVTX ranges around each phase
(``fastgen.tracing.annotate``: free unless a profiler is running)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from fastgen.gan import gradient_penalty
from fastgen.tracing import annotate

# WGAN-GP as Gulrajani et al. 2017 train it (Algorithm 1).
CRITIC_STEPS = 5
PENALTY_WEIGHT = 10.0
GAN_LR, GAN_BETAS = 1e-4, (0.5, 0.9)
# Generated samples come from an exponential moving average of the generator's weights
# (Yazici et al. 2019, arXiv:1806.04498): at this learning rate the raw generator's sample
# quality oscillates from step to step (classifier AUC 0.52 to 0.66 over the last 1000 steps
# of a 2000-step run), its average's stays near 0.52 to 0.55. A cosine learning-rate decay
# damps the oscillation further.
GAN_EMA_DECAY = 0.99
GAN_BATCH_SIZE = 512
FLOW_LR = 1e-3


def batches(latent, conditions, batch_size, generator):
    """Endless minibatches: each epoch a new permutation, its last partial batch dropped."""
    while True:
        for index in torch.randperm(len(latent), generator=generator).split(batch_size):
            if len(index) == min(batch_size, len(latent)):
                index = index.to(latent.device)
                yield latent[index], conditions[index]


def _update(loss, optimizer):
    with annotate("train.backward"):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    with annotate("train.optimizer_step"):
        optimizer.step()


class FlowTrainer:
    """Maximum likelihood with Adam and a cosine learning-rate decay over ``total_steps``."""

    def __init__(self, flow, latent, conditions, batch_size, data_rng, total_steps):
        self.flow, self.samples_per_step = flow, batch_size
        self.optimizer = torch.optim.Adam(flow.parameters(), lr=FLOW_LR)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, total_steps)
        self.data = batches(latent, conditions, batch_size, data_rng)

    def step(self) -> dict:
        x, c = next(self.data)
        with annotate("train.forward"):
            log_prob = self.flow.log_prob(x, context=c)
        with annotate("train.loss"):
            loss = -log_prob.mean()
        _update(loss, self.optimizer)
        self.scheduler.step()
        return {"nll": loss.item()}


class GanTrainer:
    """One step: ``CRITIC_STEPS`` critic updates on ``mean D(fake) - mean D(real) +
    weight * gradient penalty``, then one generator update on ``-mean D(G(z, c), c)`` and of
    ``average``, the moving average of the generator to sample from. Both learning rates
    decay to zero over ``total_steps`` on a cosine, as the flow's. ``data_rng`` (CPU)
    draws minibatches; ``noise_rng`` (the models' device) the noise and the penalty's
    interpolation weights."""

    def __init__(
        self,
        generator_net,
        critic,
        latent,
        conditions,
        batch_size,
        data_rng,
        noise_rng,
        backend,
        total_steps,
    ):
        self.generator_net, self.critic, self.backend = generator_net, critic, backend
        self.noise_rng, self.samples_per_step = noise_rng, CRITIC_STEPS * batch_size
        self.optimizers = [
            torch.optim.Adam(net.parameters(), lr=GAN_LR, betas=GAN_BETAS)
            for net in (generator_net, critic)
        ]
        self.data = batches(latent, conditions, batch_size, data_rng)
        self.schedulers = [
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps)
            for optimizer in self.optimizers
        ]
        self.average = AveragedModel(
            generator_net, multi_avg_fn=get_ema_multi_avg_fn(GAN_EMA_DECAY)
        )

    def critic_step(self, x, c) -> dict:
        with annotate("train.forward"):
            with torch.no_grad():
                fake = self.generator_net(c, generator=self.noise_rng)
            critic_real, critic_fake = self.critic(x, c).mean(), self.critic(fake, c).mean()
        with annotate("train.penalty"):
            penalty = gradient_penalty(
                self.critic,
                x,
                fake,
                context=c,
                weight=PENALTY_WEIGHT,
                generator=self.noise_rng,
                backend=self.backend,
            )
        with annotate("train.loss"):
            loss = critic_fake - critic_real + penalty
        _update(loss, self.optimizers[1])
        return {"wasserstein": (critic_real - critic_fake).item(), "penalty": penalty.item()}

    def step(self) -> dict:
        for _ in range(CRITIC_STEPS):
            x, c = next(self.data)
            stats = self.critic_step(x, c)
        with annotate("train.forward"):
            scores = self.critic(self.generator_net(c, generator=self.noise_rng), c)
        with annotate("train.loss"):
            loss = -scores.mean()
        _update(loss, self.optimizers[0])
        self.average.update_parameters(self.generator_net)
        for scheduler in self.schedulers:
            scheduler.step()
        return stats | {"generator_loss": loss.item()}


def fit(trainer, steps: int, on_step: Callable[[dict], None] = lambda stats: None) -> dict:
    """Run ``steps`` trainer steps; the per-step statistics, seconds and training samples per
    second (real samples read)."""
    history, start = [], time.perf_counter()
    for _ in range(steps):
        history.append(trainer.step())
        on_step(history[-1])
    seconds = time.perf_counter() - start
    rate = steps * trainer.samples_per_step / seconds
    return {"history": history, "seconds": seconds, "samples_per_second": rate}
