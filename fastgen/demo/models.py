"""The demo's three models of ``p(latent features | conditions)``: a conditional neural
spline flow, a conditional WGAN-GP and the baseline, a Gaussian conditioned linearly."""

from __future__ import annotations

import torch
from torch import nn

from fastgen.demo.data import AZIMUTH, wrap
from fastgen.flows import NeuralSplineFlow

FEATURES, CONDITIONS = 3, 2


def make_flow(
    tail_bound: float, backend: str | None = None, hidden_features: int = 64, num_layers: int = 5
):
    """Autoregressive RQ splines (8 bins), the azimuth with a circular spline."""
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
        out = self.net(torch.cat([noise, conditions], dim=1))
        azimuth = wrap(out[:, AZIMUTH], self.tail_bound)
        return torch.cat([out[:, :AZIMUTH], azimuth[:, None], out[:, AZIMUTH + 1 :]], dim=1)


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
        latent = (distribution.loc + noise @ self.scale_tril.T).float()
        latent[:, AZIMUTH] = wrap(latent[:, AZIMUTH], tail_bound)
        return latent
