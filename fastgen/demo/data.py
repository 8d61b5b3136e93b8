"""The demo's data: muon bundles (:mod:`fastgen.data`) and an invertible map to the
standardised space the models work in.

Latent coordinates, each fitted on the training split:

* ``log(radius)``, standardised (radii span 3e-4 to 90 m; the log keeps samples positive);
* ``azimuth * tail_bound / pi``: the periodic angle on ``[-tail_bound, tail_bound]``, the
  domain of a circular spline;
* ``log10_energy``, standardised.

Conditions (``cos_zenith``, ``log10_multiplicity``) are standardised. Densities transform
with :meth:`Preprocessing.log_abs_det`, so a model's log-likelihood of the latent coordinates
converts to nats per muon in the physical units (m, rad, log10 GeV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fastgen.data import load_muon_bundles

AZIMUTH = 1  # the periodic column


@dataclass
class Split:
    """Latent features ``(N, 3)``, standardised conditions ``(N, 2)`` and physical features."""

    latent: torch.Tensor
    conditions: torch.Tensor
    features: torch.Tensor


class Preprocessing:
    """Physical features <-> latent coordinates, and conditions -> standardised conditions."""

    def __init__(self, features: torch.Tensor, conditions: torch.Tensor, tail_bound: float):
        self.tail_bound = tail_bound
        logs = torch.stack([features[:, 0].log(), features[:, 2]], dim=1)
        self.mean, self.std = logs.mean(0), logs.std(0)
        self.condition_mean, self.condition_std = conditions.mean(0), conditions.std(0)

    def to_latent(self, features: torch.Tensor) -> torch.Tensor:
        radius, azimuth, log10_energy = features.unbind(1)
        scaled = (torch.stack([radius.log(), log10_energy], dim=1) - self.mean) / self.std
        return torch.stack([scaled[:, 0], azimuth * self.tail_bound / math.pi, scaled[:, 1]], 1)

    def from_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_latent`; the azimuth is wrapped into [-pi, pi)."""
        scaled = torch.stack([latent[:, 0], latent[:, 2]], dim=1) * self.std + self.mean
        azimuth = wrap(latent[:, AZIMUTH], self.tail_bound) * math.pi / self.tail_bound
        return torch.stack([scaled[:, 0].exp(), azimuth, scaled[:, 1]], dim=1)

    def log_abs_det(self, features: torch.Tensor) -> torch.Tensor:
        """``log |det d latent / d features|`` per muon, ``(N,)``."""
        constant = math.log(self.tail_bound / math.pi) - self.std.log().sum()
        return constant - features[:, 0].log()

    def standardise_conditions(self, conditions: torch.Tensor) -> torch.Tensor:
        return (conditions - self.condition_mean) / self.condition_std


def wrap(values: torch.Tensor, bound: float) -> torch.Tensor:
    """Periodic wrap into ``[-bound, bound)``."""
    return torch.remainder(values + bound, 2 * bound) - bound


def load(seed: int, tail_bound: float) -> tuple[Preprocessing, Split, Split]:
    """The preprocessing fitted on the training split, and both splits."""
    train_features, train_conditions = load_muon_bundles("train", seed=seed)
    test_features, test_conditions = load_muon_bundles("test", seed=seed)
    preprocessing = Preprocessing(train_features, train_conditions, tail_bound)
    splits = [
        Split(preprocessing.to_latent(f), preprocessing.standardise_conditions(c), f)
        for f, c in ((train_features, train_conditions), (test_features, test_conditions))
    ]
    return preprocessing, *splits
