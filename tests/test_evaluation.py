"""The demo's classifier two-sample test against analytic AUCs."""

import math

import pytest
import torch

from fastgen.demo.evaluate import classifier_auc


def _normal(n, shift, seed):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) + shift


def test_same_distribution_is_indistinguishable():
    auc = classifier_auc(_normal(1500, 0.0, 1), _normal(1500, 0.0, 2), torch.Generator())
    assert abs(auc - 0.5) < 0.04


@pytest.mark.parametrize("shift", [0.5, 1.0])
def test_shifted_gaussians_reach_the_bayes_auc(shift):
    # N(0, I) against N(shift * e1, I): the best score is x1, whose AUC is Phi(shift / sqrt 2)
    bayes = 0.5 * (1 + math.erf(shift / 2))
    real = _normal(1500, 0.0, 1)
    fake = _normal(1500, torch.tensor([shift, 0.0]), 2)
    auc = classifier_auc(real, fake, torch.Generator().manual_seed(0))
    assert abs(auc - bayes) < 0.03, (auc, bayes)


def test_reproducible_and_leaves_the_global_random_state_alone():
    real, fake = _normal(300, 0.0, 1), _normal(300, 0.3, 2)
    state = torch.random.get_rng_state()
    first = classifier_auc(real, fake, torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert classifier_auc(real, fake, torch.Generator().manual_seed(5)) == first
