"""Held-out evaluation of generated muons: distances between samples, a classifier two-sample
test, and the likelihood where a model has one."""

from __future__ import annotations

import torch
from scipy import stats
from torch import nn

from fastgen._checks import check_number
from fastgen.metrics import (
    frechet_distance,
    kernel_inception_distance,
    sinkhorn_divergence,
    wasserstein_1d,
)
from fastgen.tracing import annotate

# Sinkhorn as a metric: small blur and slow epsilon scaling for accurate values (GeomLoss's
# default scaling of 0.5 favours gradients).
SINKHORN_BLUR, SINKHORN_SCALING = 0.05, 0.9
CLASSIFIER_STEPS, CLASSIFIER_HIDDEN, CLASSIFIER_FOLDS = 400, 64, 5


def classifier_auc(
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator,
    folds: int = CLASSIFIER_FOLDS,
) -> float:
    """Classifier two-sample test (Lopez-Paz & Oquab 2016, arXiv:1610.06545) with k-fold
    cross-validation as sbibm's ``c2st`` (Lueckmann et al. 2021): the rows of ``real`` and
    ``fake`` are shuffled into ``folds`` folds; for each, an MLP trained on the other folds
    scores it, and the ROC AUC on it (the Mann-Whitney U statistic over ``n_real * n_fake``)
    is averaged over the folds. 0.5: indistinguishable, 1: separable. Every row is scored
    once, so the estimate's spread is smaller than one train/test split's. ``folds``: an int
    ``>= 2``."""
    check_number("folds", folds, minimum=2, integer=True)
    inputs = torch.cat([real, fake]).float()
    labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
    order = torch.randperm(len(inputs), generator=generator)
    aucs = []
    for test in order.chunk(folds):
        train = torch.ones(len(inputs), dtype=torch.bool)
        train[test] = False
        scores = _classifier_scores(inputs[train], labels[train], inputs[test], generator)
        test_labels = labels[test]
        positive, negative = scores[test_labels == 1], scores[test_labels == 0]
        u = stats.mannwhitneyu(positive.numpy(), negative.numpy()).statistic
        aucs.append(u / (len(positive) * len(negative)))
    return float(sum(aucs) / len(aucs))


def _classifier_scores(inputs, labels, test_inputs, generator) -> torch.Tensor:
    """Logits for ``test_inputs`` of an MLP trained (full batch, Adam) on ``inputs``."""
    mean, std = inputs.mean(0), inputs.std(0).clamp(min=1e-6)
    # the initialisation comes from `generator` too, without touching the global random state
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
    inputs = (inputs - mean) / std
    for _ in range(CLASSIFIER_STEPS):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(classifier(inputs).squeeze(1), labels).backward()
        optimizer.step()
    with torch.no_grad():
        return classifier((test_inputs - mean) / std).squeeze(1)


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
