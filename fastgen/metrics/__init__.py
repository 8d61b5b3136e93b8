"""Sample-based evaluation metrics for generative models, one module per peer API:
Sinkhorn divergences (:mod:`~fastgen.metrics.sinkhorn`, GeomLoss), Wasserstein distances and
EMD (:mod:`~fastgen.metrics.wasserstein`, POT), Fréchet distances (:mod:`~fastgen.metrics.frechet`,
pytorch-fid; FPD in :mod:`~fastgen.metrics.physics`, JetNet), kernel distances
(:mod:`~fastgen.metrics.mmd`, torch-fidelity; KPD in :mod:`~fastgen.metrics.physics`) and
precision / recall / density / coverage (:mod:`~fastgen.metrics.prdc`, prdc)."""

from fastgen.metrics.frechet import (
    FeatureStatistics,
    FrechetDistance,
    calculate_frechet_distance,
    frechet_distance,
)
from fastgen.metrics.mmd import kernel_inception_distance, mmd2_unbiased
from fastgen.metrics.physics import frechet_physics_distance, kernel_physics_distance
from fastgen.metrics.prdc import compute_nearest_neighbour_distances, compute_prdc
from fastgen.metrics.sinkhorn import SamplesLoss, sinkhorn_divergence
from fastgen.metrics.wasserstein import emd, emd2, sliced_wasserstein, wasserstein_1d

__all__ = [
    "FeatureStatistics",
    "FrechetDistance",
    "SamplesLoss",
    "calculate_frechet_distance",
    "compute_nearest_neighbour_distances",
    "compute_prdc",
    "emd",
    "emd2",
    "frechet_distance",
    "frechet_physics_distance",
    "kernel_inception_distance",
    "kernel_physics_distance",
    "mmd2_unbiased",
    "sinkhorn_divergence",
    "sliced_wasserstein",
    "wasserstein_1d",
]
