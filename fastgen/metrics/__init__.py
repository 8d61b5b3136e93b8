"""Sample-based evaluation metrics for generative models: optimal transport (Sinkhorn,
Wasserstein, EMD), Fréchet distances (FID, FPD) and kernel distances (KID, KPD),
precision / recall / density / coverage (PRDC)."""

from fastgen.metrics.frechet import (
    FeatureStatistics,
    FrechetDistance,
    calculate_frechet_distance,
    frechet_distance,
)
from fastgen.metrics.mmd import kernel_inception_distance, mmd2_unbiased
from fastgen.metrics.optimal_transport import (
    SamplesLoss,
    emd,
    emd2,
    sinkhorn_divergence,
    sliced_wasserstein,
    wasserstein_1d,
)
from fastgen.metrics.physics import frechet_physics_distance, kernel_physics_distance
from fastgen.metrics.prdc import compute_nearest_neighbour_distances, compute_prdc

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
