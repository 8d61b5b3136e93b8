"""Seeds and integer options of the sample metrics and the evaluation suite, refused by name
(TypeError for a non-int, ValueError out of range), never an error from NumPy or C deep
inside (2^64 used to give "Maximum allowed dimension exceeded", "int too big to convert")."""

import numpy as np
import pytest
import torch

from fastgen.evaluation import evaluate
from fastgen.metrics import (
    frechet_physics_distance,
    kernel_inception_distance,
    kernel_physics_distance,
    sliced_wasserstein,
)

REAL = torch.randn(40, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
FAKE = REAL + 0.5
CALLS = {
    "subsets": lambda v: kernel_inception_distance(REAL, FAKE, subsets=v, subset_size=10),
    "subset_size": lambda v: kernel_inception_distance(REAL, FAKE, subsets=2, subset_size=v),
    "degree": lambda v: kernel_inception_distance(REAL, FAKE, subsets=2, subset_size=10, degree=v),
    "max_samples": lambda v: frechet_physics_distance(
        REAL, FAKE, min_samples=10, max_samples=v, num_batches=2, num_points=3
    ),
    "num_points": lambda v: frechet_physics_distance(
        REAL, FAKE, min_samples=10, max_samples=20, num_batches=2, num_points=v
    ),
    "batch_size": lambda v: kernel_physics_distance(REAL, FAKE, num_batches=2, batch_size=v),
    "num_batches": lambda v: kernel_physics_distance(REAL, FAKE, num_batches=v, batch_size=10),
    "n_projections": lambda v: sliced_wasserstein(REAL, FAKE, n_projections=v),
    "nearest_k": lambda v: evaluate(REAL, FAKE, metrics=("prdc",), nearest_k=v),
    "bins": lambda v: evaluate(REAL, FAKE, metrics=("ks",), bins=v),
    "sinkhorn_samples": lambda v: evaluate(REAL, FAKE, metrics=("sinkhorn",), sinkhorn_samples=v),
}
SEEDS = {
    "kid": lambda v: kernel_inception_distance(REAL, FAKE, subsets=2, subset_size=10, seed=v),
    "fpd": lambda v: frechet_physics_distance(
        REAL, FAKE, min_samples=10, max_samples=20, num_batches=2, num_points=3, seed=v
    ),
    "kpd": lambda v: kernel_physics_distance(REAL, FAKE, num_batches=2, batch_size=10, seed=v),
    "sliced": lambda v: sliced_wasserstein(REAL, FAKE, seed=v),
    "evaluate": lambda v: evaluate(REAL, FAKE, metrics=("wasserstein",), seed=v),
}
BAD = [(2**64, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("value, error", BAD, ids=repr)
@pytest.mark.parametrize("name", list(CALLS))
def test_counts_are_checked_by_name(name, value, error):
    with pytest.raises(error, match=name):
        CALLS[name](value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("value, error", BAD, ids=repr)
@pytest.mark.parametrize("name", list(SEEDS))
def test_seeds_are_checked_by_name(name, value, error):
    with pytest.raises(error, match="seed"):
        SEEDS[name](value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", list(SEEDS))
def test_numpy_integer_seeds_are_accepted(name):
    first, second = SEEDS[name](np.int64(7)), SEEDS[name](7)
    assert str(first) == str(second)
