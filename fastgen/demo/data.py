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

import numpy as np
import torch

from fastgen.data import FEATURE_NAMES, FEATURE_UNITS, load_muon_bundles

AZIMUTH = 1  # the periodic column
# The latent azimuth's range [-TAIL_BOUND, TAIL_BOUND), the flow's spline interval.
TAIL_BOUND = 3.0
FEATURE_LABELS = tuple(f"{n} [{u}]" for n, u in zip(FEATURE_NAMES, FEATURE_UNITS, strict=True))
# The share of the training bundles held out for validation (model selection): 68 of the 455
# training bundles, about 900 muons, enough for a Sinkhorn divergence that ranks checkpoints.
VALIDATION_FRACTION = 0.15


@dataclass
class Split:
    """Latent features ``(N, 3)``, standardised conditions ``(N, 2)`` and physical features."""

    latent: torch.Tensor
    conditions: torch.Tensor
    features: torch.Tensor

    def to(self, device) -> Split:
        """The latent features and conditions on ``device`` (the physical features stay)."""
        return Split(self.latent.to(device), self.conditions.to(device), self.features)


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

    def split(self, features: torch.Tensor, conditions: torch.Tensor) -> Split:
        """Physical features and conditions as a :class:`Split` in these coordinates."""
        return Split(self.to_latent(features), self.standardise_conditions(conditions), features)


def wrap(values: torch.Tensor, bound: float) -> torch.Tensor:
    """Periodic wrap into ``[-bound, bound)``."""
    return torch.remainder(values + bound, 2 * bound) - bound


def load(
    seed: int, tail_bound: float, validation_fraction: float = VALIDATION_FRACTION
) -> tuple[Preprocessing, Split, Split]:
    """The preprocessing fitted on the training split, the training split and the validation
    split.

    The validation split is ``validation_fraction`` of :func:`fastgen.data.load_muon_bundles`'s
    training bundles (a bundle's muons all in one split), drawn by
    ``numpy.random.default_rng([seed, 1])``; the training split is the rest. The test split is
    read separately, once, by :func:`load_test`.
    """
    features, conditions, bundles = load_muon_bundles("train", seed=seed, return_bundles=True)
    names = np.unique(bundles.numpy())
    held_out = np.random.default_rng([seed, 1]).permutation(names)
    held_out = held_out[: round(validation_fraction * len(names))]
    validation = torch.from_numpy(np.isin(bundles.numpy(), held_out))
    train = ~validation
    preprocessing = Preprocessing(features[train], conditions[train], tail_bound)
    split = preprocessing.split
    return (
        preprocessing,
        split(features[train], conditions[train]),
        split(features[validation], conditions[validation]),
    )


def load_test(seed: int, preprocessing: Preprocessing) -> Split:
    """The test split of ``seed`` (the bundles :func:`load` leaves out), in ``preprocessing``'s
    coordinates."""
    return preprocessing.split(*load_muon_bundles("test", seed=seed))
