"""Kernel two-sample distances: the unbiased MMD^2 and the Kernel Inception Distance (KID;
Bińkowski et al. 2018, arXiv:1801.01401), with torch-fidelity's conventions.

The kernel sums are formed block by block (the reference: row blocks of at most
``2^22 / M`` rows; the Triton kernel :mod:`fastgen.kernels.mmd`: 64 x 64 tiles), never as an
``N x M`` matrix: 50,000 x 50,000 kernel values would take 20 GB in float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fastgen._checks import check_samples
from fastgen.backend import KERNEL_DTYPES, resolve_backend
from fastgen.tracing import annotate

KERNELS = ("polynomial", "rbf")
# Kernel values held at once by the reference (32 MB in float64).
BLOCK_ELEMENTS = 2**22


def _kernel_values(x, y, kernel, degree, gamma, coef0):
    if kernel == "polynomial":
        return (gamma * (x @ y.mT) + coef0) ** degree
    distance = x.square().sum(1)[:, None] + y.square().sum(1)[None, :] - 2 * (x @ y.mT)
    return torch.exp(-gamma * distance.clamp_min(0))


def kernel_sum_reference(x, y, kernel, degree, gamma, coef0) -> torch.Tensor:
    """``sum_ij k(x_i, y_j)`` (``y=None``: ``y = x`` without the diagonal) as a float64 0-d
    tensor, in the inputs' dtype (half: float32) with float64 block sums."""
    symmetric = y is None
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
        y = None if symmetric else y.float()
    other = x if symmetric else y
    rows = max(1, BLOCK_ELEMENTS // max(other.shape[0], 1))
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], rows):
        block = _kernel_values(x[start : start + rows], other, kernel, degree, gamma, coef0)
        total = total + block.sum(dtype=torch.float64)
    if symmetric:
        diagonal = _kernel_values_diagonal(x, kernel, degree, gamma, coef0)
        total = total - diagonal.sum(dtype=torch.float64)
    return total


def _kernel_values_diagonal(x, kernel, degree, gamma, coef0):
    if kernel == "polynomial":
        return (gamma * x.square().sum(1) + coef0) ** degree
    return torch.ones(x.shape[0], dtype=x.dtype, device=x.device)


def _check_number(name, value, minimum=None, integer=False):
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an int" if integer else "a Python number"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" and >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{name} must be finite{bound}, got {value}")
    return value


def _check_pair(x, y, names=("x", "y")):
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same D, got {x.shape[1]} and {y.shape[1]}"
        )
    if x.device != y.device:
        raise ValueError(
            f"{names[0]} and {names[1]} must be on one device, got {x.device} and {y.device}"
        )
    if x.dtype != y.dtype:
        raise TypeError(
            f"{names[0]} and {names[1]} must share one dtype, got {x.dtype} and {y.dtype}"
        )


def _check_kernel_args(kernel, degree, gamma, coef0, num_features):
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    _check_number("degree", degree, minimum=1, integer=True)
    gamma = 1.0 / num_features if gamma is None else float(_check_number("gamma", gamma, 0))
    return gamma, float(_check_number("coef0", coef0))


def _mmd2(x, y, kernel, degree, gamma, coef0, backend) -> torch.Tensor:
    """Validated inputs: the estimator from three kernel sums."""
    if resolve_backend(backend, [x, y], supported_dtypes=KERNEL_DTYPES) == "triton":
        from fastgen.kernels.mmd import kernel_sum
    else:
        kernel_sum = kernel_sum_reference
    m, n = x.shape[0], y.shape[0]
    xx = kernel_sum(x, None, kernel, degree, gamma, coef0)
    yy = kernel_sum(y, None, kernel, degree, gamma, coef0)
    xy = kernel_sum(x, y, kernel, degree, gamma, coef0)
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


@annotate("fastgen.mmd2_unbiased")
def mmd2_unbiased(
    x,
    y,
    kernel: str = "polynomial",
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """Unbiased estimate of the squared maximum mean discrepancy (Gretton et al. 2012):
    ``sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (n(n-1))
    - 2 sum_ij k(x_i, y_j) / (m n)``; torch-fidelity's ``mmd2(..., mmd_est="unbiased")`` for
    ``m = n``. It can be negative (it is unbiased, not clipped).

    Args:
        x: ``(m, D)``; y: ``(n, D)``; ``m, n >= 2``; same dtype and device; torch, NumPy or
            DLPack arrays. Computed in their dtype (half: float32) with float64 sums.
        kernel: ``"polynomial"``: ``(gamma <x, y> + coef0)^degree`` (KID: degree 3,
            ``gamma = 1 / D``, ``coef0 = 1``, torch-fidelity and scikit-learn's defaults);
            ``"rbf"``: ``exp(-gamma |x - y|^2)`` (``degree`` and ``coef0`` unused).
        degree: int ``>= 1``. gamma: ``> 0``, default ``1 / D``. coef0: finite.
        backend: ``"auto" | "triton" | "torch" | None``, see :mod:`fastgen.backend`; the
            kernel computes float32 / half inputs.

    Returns:
        float64 0-d tensor on the inputs' device.

    Raises:
        TypeError: non-arrays, non-floating or mixed dtypes, non-number parameters.
        ValueError: not 2-D, ``N < 2``, different ``D`` or devices, NaN / inf, bad
            ``kernel`` / ``degree`` / ``gamma`` / ``coef0`` / ``backend``.
    """
    x, y = check_samples("x", x), check_samples("y", y)
    _check_pair(x, y)
    gamma, coef0 = _check_kernel_args(kernel, degree, gamma, coef0, x.shape[1])
    return _mmd2(x, y, kernel, degree, gamma, coef0, backend)


def subset_mmd2(features1, features2, subsets, subset_size, seed, kernel, degree, gamma, coef0,
                backend, names) -> np.ndarray:  # fmt: skip
    """MMD^2 of ``subsets`` pairs of random subsets (each drawn without replacement by
    ``np.random.RandomState(seed).choice``, torch-fidelity's sampler): a float64 array."""
    x = check_samples(names[0], features1)
    y = check_samples(names[1], features2)
    _check_pair(x, y, names)
    _check_number("subsets", subsets, minimum=1, integer=True)
    _check_number("subset_size", subset_size, minimum=2, integer=True)
    if subset_size > min(x.shape[0], y.shape[0]):
        raise ValueError(
            f"subset_size must be <= the number of samples ({names[0]}: {x.shape[0]}, "
            f"{names[1]}: {y.shape[0]}), got {subset_size}"
        )
    gamma, coef0 = _check_kernel_args(kernel, degree, gamma, coef0, x.shape[1])
    rng = np.random.RandomState(seed)  # noqa: NPY002 - torch-fidelity's generator and draws
    values = np.empty(subsets)
    for i in range(subsets):
        first = torch.from_numpy(rng.choice(x.shape[0], subset_size, replace=False))
        second = torch.from_numpy(rng.choice(y.shape[0], subset_size, replace=False))
        values[i] = _mmd2(x[first.to(x.device)], y[second.to(y.device)], kernel, degree, gamma,
                          coef0, backend).item()  # fmt: skip
    return values


def kernel_inception_distance(
    features1,
    features2,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int | None = 2020,
    *,
    backend: str | None = None,
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018, arXiv:1801.01401), torch-fidelity's
    ``kid_features_to_metric``: the mean and (population) standard deviation of
    :func:`mmd2_unbiased` with the polynomial kernel over ``subsets`` pairs of random subsets
    of ``subset_size`` rows.

    Subsets are drawn as torch-fidelity draws them (``np.random.RandomState(seed)``,
    ``choice(N, subset_size, replace=False)`` for features1 then features2, per subset;
    torch-fidelity's default seed is 2020), so the same features give the same subsets.

    Args:
        features1: ``(N1, D)``; features2: ``(N2, D)``; same dtype; torch / NumPy / DLPack.
        subsets: int ``>= 1``. subset_size: ``2 <= subset_size <= min(N1, N2)``.
        degree, gamma (default ``1 / D``), coef0: the polynomial kernel.
        seed: for ``np.random.RandomState`` (``None``: fresh entropy).
        backend: see :func:`mmd2_unbiased`.

    Returns:
        ``(kid_mean, kid_std)`` Python floats.

    Raises:
        TypeError / ValueError: as :func:`mmd2_unbiased`; ``subset_size`` larger than a set.
    """
    values = subset_mmd2(features1, features2, subsets, subset_size, seed, "polynomial",
                         degree, gamma, coef0, backend, ("features1", "features2"))  # fmt: skip
    return float(np.mean(values)), float(np.std(values))
