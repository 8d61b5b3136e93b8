"""Sample-based evaluation metrics for generative models."""

from fastgen.metrics.optimal_transport import (
    SamplesLoss,
    emd,
    emd2,
    sinkhorn_divergence,
    sliced_wasserstein,
    wasserstein_1d,
)

__all__ = [
    "SamplesLoss",
    "emd",
    "emd2",
    "sinkhorn_divergence",
    "sliced_wasserstein",
    "wasserstein_1d",
]
