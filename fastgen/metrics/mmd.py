"""Kernel two-sample distances: the unbiased MMD^2 and the Kernel Inception Distance (KID;
Bińkowski et al. 2018, arXiv:1801.01401), with torch-fidelity's conventions.

The kernel sums are formed block by block (the reference :mod:`fastgen.reference.mmd`: row
blocks of at most ``2^22 / M`` rows; the Triton kernel :mod:`fastgen.kernels.mmd`: 64 x 64
tiles), never as an ``N x M`` matrix: 50,000 x 50,000 kernel values would take 20 GB in
float64.
"""

from __future__ import annotations

import numpy as np
import torch

from fastgen._checks import check_choice, check_number, check_sample_pair, check_seed
from fastgen.backend import KERNEL_DTYPES, resolve_backend
from fastgen.reference import mmd as reference
from fastgen.tracing import annotate

KERNELS = ("polynomial", "rbf")
# torch-fidelity draws KID's subsets with NumPy's legacy RandomState: seeds below 2^32.
RANDOM_STATE_MAX_SEED = 2**32 - 1


def _check_kernel_args(kernel, degree, gamma, coef0, num_features):
    """Validated kernel parameters: ``(gamma, coef0)`` as floats, ``gamma`` defaulting to
    ``1 / D``."""
    check_choice("kernel", kernel, KERNELS)
    check_number("degree", degree, minimum=1, integer=True)
    gamma = check_number("gamma", gamma, minimum=0, allow_none=True)
    return (1.0 / num_features if gamma is None else gamma), check_number("coef0", coef0)


def _mmd2(x, y, kernel, degree, gamma, coef0, backend) -> torch.Tensor:
    """Validated inputs: the estimator from three kernel sums."""
    if resolve_backend(backend, [x, y], supported_dtypes=KERNEL_DTYPES) == "triton":
        from fastgen.kernels.mmd import kernel_sum
    else:
        kernel_sum = reference.kernel_sum
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
    """Unbiased estimate of the squared maximum mean discrepancy (Gretton et al. 2012,
    JMLR 13:723): ``sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (n(n-1))
    - 2 sum_ij k(x_i, y_j) / (m n)``, the distance between the kernel mean embeddings of the
    two samples' distributions; torch-fidelity's ``mmd2(..., mmd_est="unbiased")`` for
    ``m = n``. It can be negative (it is unbiased, not clipped).

    Args:
        x: the first sample, ``(m, D)`` with ``m >= 2``; torch, NumPy or DLPack, floating,
            finite. Kernel values in its dtype (float16 / bfloat16: float32), sums in
            float64.
        y: the second sample, ``(n, D)`` with ``n >= 2``, same dtype and device.
        kernel: ``"polynomial"``: ``(gamma <x, y> + coef0)^degree`` (KID: degree 3,
            ``gamma = 1 / D``, ``coef0 = 1``, torch-fidelity's and scikit-learn's defaults);
            ``"rbf"``: ``exp(-gamma |x - y|^2)`` (``degree`` and ``coef0`` unused).
        degree: the polynomial's degree, an int ``>= 1``.
        gamma: the kernel's scale, ``>= 0``: the inverse squared length scale of ``"rbf"``;
            default ``1 / D``.
        coef0: the polynomial's offset, finite.
        backend: ``"auto" | "triton" | "torch" | None``, see :mod:`fastgen.backend`; the
            Triton kernel computes float32 / half inputs.

    Returns:
        float64 0-d tensor on the inputs' device.

    Raises:
        TypeError: non-arrays, non-floating or mixed dtypes, non-number parameters, a
            non-int ``degree``.
        ValueError: not 2-D, ``N < 2``, different ``D`` or devices, NaN / inf, unknown
            ``kernel`` or ``backend``, ``degree < 1``, ``gamma < 0``, non-finite ``coef0``.

    Example:
        >>> import torch
        >>> from fastgen.metrics import mmd2_unbiased
        >>> x = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
        >>> round(mmd2_unbiased(x, x + 1.0).item(), 4)
        21.6667
    """
    x, y = check_sample_pair(("x", "y"), x, y)
    gamma, coef0 = _check_kernel_args(kernel, degree, gamma, coef0, x.shape[1])
    return _mmd2(x, y, kernel, degree, gamma, coef0, backend)


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
    of ``subset_size`` rows. Unlike FID it is unbiased, so values from different sample
    sizes compare.

    Args:
        features1: the first feature set (real images' Inception features for KID),
            ``(N1, D)``; torch, NumPy or DLPack, floating.
        features2: the second feature set, ``(N2, D)``, same dtype and device.
        subsets: the number of subset pairs averaged, ``>= 1``; more shrink the spread of the
            mean, not its expectation.
        subset_size: rows per subset, ``2 <= subset_size <= min(N1, N2)`` (torch-fidelity's
            default 1000).
        degree: the polynomial kernel's degree, ``>= 1``.
        gamma: the kernel's scale, ``>= 0``; default ``1 / D``.
        coef0: the kernel's offset, finite.
        seed: seed of ``np.random.RandomState``, which draws the subsets as torch-fidelity
            does (``choice(N, subset_size, replace=False)`` for features1 then features2, per
            subset), so the same features and seed give torch-fidelity's subsets; an int in
            ``[0, 2^32 - 1]`` (torch-fidelity's default 2020) or ``None`` (fresh entropy).
        backend: see :func:`mmd2_unbiased`.

    Returns:
        ``(kid_mean, kid_std)`` Python floats.

    Raises:
        TypeError: as :func:`mmd2_unbiased`; ``subsets``, ``subset_size`` or ``seed`` not an
            int.
        ValueError: as :func:`mmd2_unbiased`; ``subsets < 1``, ``subset_size`` out of range,
            ``seed`` out of range.

    Example:
        >>> import numpy as np
        >>> from fastgen.metrics import kernel_inception_distance
        >>> rng = np.random.default_rng(0)
        >>> real, fake = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
        >>> mean, std = kernel_inception_distance(real, fake, subsets=10, subset_size=20)
        >>> abs(mean) < 3 * std  # same distribution: KID about 0
        True
    """
    names = ("features1", "features2")
    x, y = check_sample_pair(names, features1, features2)
    check_number("subsets", subsets, minimum=1, integer=True)
    check_number("subset_size", subset_size, minimum=2, integer=True)
    seed = check_seed("seed", seed, maximum=RANDOM_STATE_MAX_SEED)
    if subset_size > min(x.shape[0], y.shape[0]):
        raise ValueError(
            f"subset_size must be <= the number of samples ({names[0]}: {x.shape[0]}, "
            f"{names[1]}: {y.shape[0]}), got {subset_size}"
        )
    gamma, coef0 = _check_kernel_args("polynomial", degree, gamma, coef0, x.shape[1])
    rng = np.random.RandomState(seed)  # noqa: NPY002 - torch-fidelity's generator and draws
    values = np.empty(subsets)
    for i in range(subsets):
        first = torch.from_numpy(rng.choice(x.shape[0], subset_size, replace=False))
        second = torch.from_numpy(rng.choice(y.shape[0], subset_size, replace=False))
        values[i] = _mmd2(
            x[first.to(x.device)],
            y[second.to(y.device)],
            "polynomial",
            degree,
            gamma,
            coef0,
            backend,
        ).item()
    return float(np.mean(values)), float(np.std(values))
