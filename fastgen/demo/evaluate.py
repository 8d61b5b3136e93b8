"""Held-out evaluation of generated muons: distances between samples, a classifier two-sample
test, and the likelihood where a model has one."""

from __future__ import annotations

import torch
from scipy import stats
from torch import nn

from fastgen.metrics import (
    frechet_distance,
    kernel_inception_distance,
    sinkhorn_divergence,
    wasserstein_1d,
)
from fastgen.profiling import annotate

# Sinkhorn as a metric: small blur and slow epsilon scaling for accurate values (GeomLoss's
# default scaling of 0.5 favours gradients).
SINKHORN_BLUR, SINKHORN_SCALING = 0.05, 0.9
CLASSIFIER_STEPS, CLASSIFIER_HIDDEN = 400, 64


def classifier_auc(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator) -> float:
    """Classifier two-sample test (Lopez-Paz & Oquab 2016, arXiv:1610.06545): an MLP trained
    to tell ``real`` from ``fake`` rows on one half of each, its ROC AUC on the other half
    (0.5: indistinguishable, 1: separable). The AUC is the Mann-Whitney U statistic over
    ``n_real * n_fake``."""
    inputs = torch.cat([real, fake]).float()
    labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
    order = torch.randperm(len(inputs), generator=generator)
    train, test = order[: len(order) // 2], order[len(order) // 2 :]
    mean, std = inputs[train].mean(0), inputs[train].std(0).clamp(min=1e-6)
    inputs = (inputs - mean) / std
    # the classifier's initialisation comes from `generator` too, without touching the
    # global random state
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
        classifier = nn.Sequential(
            nn.Linear(inputs.shape[1], CLASSIFIER_HIDDEN),
            nn.SiLU(),
            nn.Linear(CLASSIFIER_HIDDEN, CLASSIFIER_HIDDEN),
            nn.SiLU(),
            nn.Linear(CLASSIFIER_HIDDEN, 1),
        )
    optimizer = torch.optim.Adam(classifier.parameters(), lr=3e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(CLASSIFIER_STEPS):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(classifier(inputs[train]).squeeze(1), labels[train]).backward()
        optimizer.step()
    with torch.no_grad():
        scores = classifier(inputs[test]).squeeze(1)
    positive, negative = scores[labels[test] == 1], scores[labels[test] == 0]
    u = stats.mannwhitneyu(positive.numpy(), negative.numpy()).statistic
    return float(u / (len(positive) * len(negative)))


@annotate("evaluate.metrics")
def sample_metrics(
    real_latent, fake_latent, real_features, fake_features, conditions, generator, backend
) -> dict:
    """Every sample-based metric of ``fake`` against ``real`` (same conditions, row by row).

    Distances in the latent space (standardised, see :mod:`fastgen.demo.data`) put the three
    coordinates on one scale; per-feature 1-D distances are in physical units.
    """
    kid_subset = min(1000, len(real_latent), len(fake_latent))
    kid = kernel_inception_distance(real_latent, fake_latent, subsets=100, subset_size=kid_subset)
    ks = [
        stats.ks_2samp(real_features[:, i].numpy(), fake_features[:, i].numpy()).statistic
        for i in range(real_features.shape[1])
    ]
    return {
        "sinkhorn": sinkhorn_divergence(
            real_latent, fake_latent, blur=SINKHORN_BLUR, scaling=SINKHORN_SCALING, backend=backend
        ).item(),
        "wasserstein_1d": wasserstein_1d(real_features, fake_features, p=1).tolist(),
        "ks": [float(v) for v in ks],
        "frechet": float(frechet_distance(real_latent, fake_latent)),
        "kid": float(kid[0]) if isinstance(kid, tuple) else float(kid),
        "classifier_auc": classifier_auc(
            torch.cat([real_latent, conditions], 1),
            torch.cat([fake_latent, conditions], 1),
            generator,
        ),
    }


def negative_log_likelihood(log_prob_latent: torch.Tensor, log_abs_det: torch.Tensor) -> float:
    """Mean NLL per muon in the physical units: ``-(log p(latent) + log |d latent / d x|)``."""
    return -(log_prob_latent.double() + log_abs_det.double()).mean().item()
