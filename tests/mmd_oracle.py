"""torch-fidelity's dense MMD^2 formula written out in NumPy (float64): the oracle of
tests/test_mmd.py and tests/test_physics.py (KPD)."""

import numpy as np


def kernel_matrix(x, y, kernel, degree, gamma, coef0):
    """``(x @ y.T * gamma + coef0) ** degree`` (polynomial) or ``exp(-gamma |x - y|^2)``."""
    if kernel == "polynomial":
        return (x @ y.T * gamma + coef0) ** degree
    distance = (x**2).sum(1)[:, None] + (y**2).sum(1)[None, :] - 2 * x @ y.T
    return np.exp(-gamma * distance)


def dense_mmd2(x, y, kernel="polynomial", degree=3, gamma=None, coef0=1.0):
    """torch-fidelity's ``mmd2(K_XX, K_XY, K_YY, mmd_est="unbiased")`` from full kernel
    matrices, with ``m(m-1)``, ``n(n-1)`` and ``m n`` for sets of different sizes."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx, k_yy, k_xy = (
        kernel_matrix(a, b, kernel, degree, gamma, coef0) for a, b in ((x, x), (y, y), (x, y))
    )
    m, n = len(x), len(y)
    return (
        (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
        + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
        - 2 * k_xy.sum() / (m * n)
    )


def torch_fidelity_kid(x, y, subsets, subset_size, seed=2020):
    """torch-fidelity's ``kid_features_to_metric``: ``RandomState(seed)``, per subset a choice
    without replacement from ``x`` then from ``y``, the polynomial-kernel MMD^2 of the two;
    ``(mean, np.std)`` over the subsets."""
    rng = np.random.RandomState(seed)  # noqa: NPY002 - torch-fidelity's generator
    values = [
        dense_mmd2(
            x[rng.choice(len(x), subset_size, replace=False)],
            y[rng.choice(len(y), subset_size, replace=False)],
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))
