"""The demo's models of ``p(latent features | conditions)``: a conditional neural spline flow,
a conditional WGAN-GP, a conditional VAE and the baseline, a Gaussian conditioned linearly."""

from __future__ import annotations

import torch
from torch import nn

from fastgen.demo.data import AZIMUTH, wrap
from fastgen.flows import NeuralSplineFlow
from fastgen.vae import ConditionalVAE, GaussianLikelihood, gaussian_log_prob

FEATURES, CONDITIONS = 3, 2


def make_flow(
    tail_bound: float, backend: str | None = None, hidden_features: int = 32, num_layers: int = 2
):
    """Autoregressive RQ splines (8 bins), the azimuth with a circular spline.

    Small, because the data are: about 5,000 training muons in 390 bundles. The earlier
    5-layer, 64-unit flow reached its best validation NLL within 400-550 steps and its test
    NLL (seeds 0-4, checkpoints chosen every 50 steps) was 5.82-5.92 nats/muon; this one,
    chosen the same way, 5.73-5.86 (seeds 0-4), in a third of the training time. 16 units and
    3 layers scored the same on validation; 32 and 3 slightly worse."""
    return NeuralSplineFlow(
        FEATURES,
        context_features=CONDITIONS,
        num_layers=num_layers,
        hidden_features=hidden_features,
        num_bins=8,
        tail_bound=tail_bound,
        autoregressive=True,
        circular_features=(AZIMUTH,),
        backend=backend,
    )


class WrappedAzimuthLikelihood(GaussianLikelihood):
    """The VAE decoder's likelihood: a diagonal Gaussian with a learned variance per feature,
    whose azimuth column is the wrapped normal on the circle ``[-tail_bound, tail_bound)``:
    ``p(a) = sum_k N(a + 2 k tail_bound; mean, var)`` over the images ``|k| <= 2`` (the terms
    beyond weigh less than ``exp(-(3 tail_bound)^2 / 2 var)``, 1e-17 at the unit variance
    the decoder starts from), and samples are wrapped onto the circle. The density is then
    that of the samples the model draws, so its likelihood compares with the flow's circular
    spline."""

    def __init__(self, tail_bound: float):
        super().__init__(FEATURES, learned=True)
        self.register_buffer("images", 2 * tail_bound * torch.arange(-2.0, 3.0))
        self.tail_bound = tail_bound

    def log_prob(self, inputs: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        linear = [i for i in range(FEATURES) if i != AZIMUTH]
        log_prob = gaussian_log_prob(inputs[:, linear], mean[..., linear], self.log_var[linear])
        # (images, ..., B): the images in front of mean's sample dimensions
        azimuth = inputs[:, AZIMUTH] + self.images.view(-1, *[1] * (mean.dim() - 1))
        column = slice(AZIMUTH, AZIMUTH + 1)
        images = gaussian_log_prob(azimuth[..., None], mean[..., column], self.log_var[column])
        return log_prob + torch.logsumexp(images, 0)

    def sample(self, mean: torch.Tensor, generator: torch.Generator | None = None):
        return wrap_azimuth(super().sample(mean, generator), self.tail_bound)


def make_vae(tail_bound: float, latent_features: int = 2, hidden_features: int = 64):
    """A conditional VAE (``fastgen.vae.ConditionalVAE``, two ReLU layers in the encoder and
    the decoder) with the wrapped-azimuth likelihood."""
    return ConditionalVAE(
        FEATURES,
        context_features=CONDITIONS,
        latent_features=latent_features,
        hidden_features=hidden_features,
        likelihood=WrappedAzimuthLikelihood(tail_bound),
    )


def wrap_azimuth(latent: torch.Tensor, tail_bound: float) -> torch.Tensor:
    """``latent (..., 3)`` with its azimuth column wrapped into ``[-tail_bound, tail_bound)``."""
    azimuth = wrap(latent[..., AZIMUTH], tail_bound)
    return torch.cat([latent[..., :AZIMUTH], azimuth[..., None], latent[..., AZIMUTH + 1 :]], -1)


def _mlp(inputs: int, outputs: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden, outputs),
    )


class Generator(nn.Module):
    """``G(noise, conditions) -> latent``; the azimuth output is wrapped periodically."""

    def __init__(self, tail_bound: float, noise_features: int = 8, hidden: int = 128):
        super().__init__()
        self.tail_bound, self.noise_features = tail_bound, noise_features
        self.net = _mlp(noise_features + CONDITIONS, FEATURES, hidden)

    def forward(self, conditions: torch.Tensor, generator=None) -> torch.Tensor:
        noise = torch.randn(
            len(conditions), self.noise_features, generator=generator, device=conditions.device
        )
        return wrap_azimuth(self.net(torch.cat([noise, conditions], dim=1)), self.tail_bound)


class Critic(nn.Module):
    """``D(latent, conditions) -> (B,)``; no normalisation layers (WGAN-GP's advice)."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.net = _mlp(FEATURES + CONDITIONS, 1, hidden)

    def forward(self, latent: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([latent, conditions], dim=1)).squeeze(1)


class GaussianBaseline:
    """``latent ~ N(A c + b, Sigma)``: least squares for ``A, b``, the residuals'
    covariance for ``Sigma`` (maximum likelihood)."""

    def __init__(self, latent: torch.Tensor, conditions: torch.Tensor):
        design = torch.cat([conditions, torch.ones(len(conditions), 1)], dim=1).double()
        self.coefficients = torch.linalg.lstsq(design, latent.double()).solution
        residuals = latent.double() - design @ self.coefficients
        covariance = residuals.T @ residuals / len(residuals)
        self.scale_tril = torch.linalg.cholesky(covariance)

    def _distribution(self, conditions):
        design = torch.cat([conditions, torch.ones(len(conditions), 1)], dim=1).double()
        return torch.distributions.MultivariateNormal(
            design @ self.coefficients, scale_tril=self.scale_tril
        )

    def log_prob(self, latent, conditions) -> torch.Tensor:
        return self._distribution(conditions).log_prob(latent.double()).float()

    def sample(self, conditions, tail_bound: float, generator=None) -> torch.Tensor:
        distribution = self._distribution(conditions)
        noise = torch.randn(distribution.loc.shape, generator=generator, dtype=torch.float64)
        return wrap_azimuth((distribution.loc + noise @ self.scale_tril.T).float(), tail_bound)
