"""Fréchet and kernel physics distances (FPD, KPD; Kansal et al. 2022, arXiv:2211.10295),
with JetNet's conventions (``jetnet.evaluation.fpd`` / ``kpd``): same arguments, same random
draws for the same seed, same fit and spread.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from fastgen._checks import check_number, check_sample_pair, check_seed
from fastgen.metrics.frechet import FeatureStatistics, calculate_frechet_distance
from fastgen.metrics.mmd import _mmd2

RECOMMENDED_SAMPLES = 50_000


def _prepare(real, fake, normalise):
    """Validated ``(N, D)`` tensors, divided by the real features' max |value| per feature
    (1 where that is 0) when ``normalise``, as JetNet does."""
    x, y = check_sample_pair(("real_features", "gen_features"), real, fake)
    if min(x.shape[0], y.shape[0]) < RECOMMENDED_SAMPLES:
        warnings.warn(
            f"Recommended number of samples is {RECOMMENDED_SAMPLES:,} (JetNet), got "
            f"{x.shape[0]:,} real and {y.shape[0]:,} generated",
            RuntimeWarning,
            stacklevel=3,
        )
    if normalise:
        maxes = x.abs().amax(0)
        maxes = torch.where(maxes == 0, torch.ones_like(maxes), maxes)
        x, y = x / maxes, y / maxes
    return x, y


def _fit_intercept(inverse_sizes: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """``values ~ a + b / N`` by least squares with ``a, b >= 0`` and the standard error of
    ``a``: what ``scipy.optimize.curve_fit(linear, 1 / N, values, bounds=([0, 0], [inf,
    inf]))`` returns (a convex problem: its minimum is the unconstrained one when feasible,
    else on a bound), with curve_fit's covariance ``inv(J^T J) |r|^2 / (M - 2)``."""
    design = np.stack([np.ones_like(inverse_sizes), inverse_sizes], axis=1)
    candidates = [np.linalg.lstsq(design, values, rcond=None)[0]]
    candidates.append(np.array([max(values.mean(), 0.0), 0.0]))  # b = 0
    slope = max(inverse_sizes.dot(values) / inverse_sizes.dot(inverse_sizes), 0.0)
    candidates.append(np.array([0.0, slope]))  # a = 0
    feasible = [c for c in candidates if (c >= 0).all()]
    params = min(feasible, key=lambda c: np.square(design @ c - values).sum())
    residual = np.square(design @ params - values).sum()
    dof = len(values) - 2
    variance = np.linalg.pinv(design.T @ design)[0, 0] * (residual / dof if dof > 0 else np.inf)
    return float(params[0]), float(np.sqrt(variance))


def frechet_physics_distance(
    real_features,
    gen_features,
    min_samples: int = 20_000,
    max_samples: int = 50_000,
    num_batches: int = 20,
    num_points: int = 10,
    normalise: bool = True,
    seed: int | None = 42,
) -> tuple[float, float]:
    """Fréchet physics distance (Kansal et al. 2022, arXiv:2211.10295): the Fréchet
    distance between Gaussians fitted to real and generated physics features, extrapolated to
    infinitely many samples to remove its ``1 / N`` bias: ``FPD = a`` of the fit
    ``FD(N) = a + b / N`` (``a, b >= 0``), with its standard error. JetNet's
    ``jetnet.evaluation.fpd``.

    For ``num_points`` batch sizes ``N`` evenly spaced in ``1 / N`` between ``min_samples``
    and ``max_samples`` (``int32``-truncated), the mean of ``num_batches`` Fréchet distances
    (:func:`fastgen.metrics.calculate_frechet_distance`) between ``N`` real and ``N``
    generated rows drawn with replacement by ``np.random.default_rng(seed).choice``, in
    JetNet's order; then the bounded least-squares fit and the standard error of ``a``
    (``scipy.optimize.curve_fit``'s).

    Args:
        real_features: ``(N1, D)`` features of real events (JetNet: the 36 energy flow
            polynomials of jets); torch / NumPy / DLPack, floating, finite; statistics in
            float64. JetNet recommends ``N >= 50,000`` (a ``RuntimeWarning`` below).
        gen_features: ``(N2, D)`` features of generated events, same dtype and device.
        min_samples: the smallest batch size, ``>= 2``.
        max_samples: the largest batch size, ``>= min_samples``.
        num_batches: Fréchet distances averaged per batch size, ``>= 1``.
        num_points: batch sizes in the fit, ``>= 3`` (two parameters and an error).
        normalise: divide both sets by the real features' max |value| per feature (1 where
            that is 0), as JetNet does, so that every feature weighs alike.
        seed: seed of ``np.random.default_rng`` (JetNet's default 42): an int ``>= 0``, or
            ``None`` for fresh entropy.

    Returns:
        ``(value, error)`` Python floats, in squared feature units.

    Raises:
        TypeError: bad arrays (as :func:`fastgen.metrics.mmd2_unbiased`), non-int counts or
            seed.
        ValueError: bad arrays, counts below their minimum, ``max_samples < min_samples``,
            a negative seed.

    Example:
        >>> import numpy as np
        >>> from fastgen.metrics import frechet_physics_distance
        >>> rng = np.random.default_rng(0)
        >>> real, fake = rng.normal(size=(500, 3)), rng.normal(1.0, 1.0, size=(500, 3))
        >>> value, error = frechet_physics_distance(  # warns: JetNet recommends 50,000 rows
        ...     real, fake, min_samples=100, max_samples=400, num_batches=2, num_points=3,
        ...     normalise=False,
        ... )
        >>> round(value)  # |mu1 - mu2|^2 = 3 for unit shifts in 3 features
        3
    """
    for name, value, minimum in (
        ("min_samples", min_samples, 2),
        ("max_samples", max_samples, 2),
        ("num_batches", num_batches, 1),
        ("num_points", num_points, 3),
    ):
        check_number(name, value, minimum=minimum, integer=True)
    seed = check_seed("seed", seed)
    if max_samples < min_samples:
        raise ValueError(f"max_samples must be >= min_samples = {min_samples}, got {max_samples}")
    x, y = _prepare(real_features, gen_features, normalise)
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    means = []
    for size in sizes:
        values = []
        for _ in range(num_batches):
            first = torch.from_numpy(rng.choice(x.shape[0], size=size)).to(x.device)
            second = torch.from_numpy(rng.choice(y.shape[0], size=size)).to(y.device)
            real, gen = (FeatureStatistics(x.shape[1]).update(t) for t in (x[first], y[second]))
            values.append(
                calculate_frechet_distance(real.mean, real.covariance, gen.mean, gen.covariance)
            )
        means.append(np.mean(values))
    return _fit_intercept(1 / sizes, np.asarray(means))


def kernel_physics_distance(
    real_features,
    gen_features,
    num_batches: int = 10,
    batch_size: int = 5_000,
    normalise: bool = True,
    seed: int = 42,
    *,
    backend: str | None = None,
) -> tuple[float, float]:
    """Kernel physics distance (Kansal et al. 2022, arXiv:2211.10295): the median over
    ``num_batches`` batches of the unbiased MMD^2 (:func:`fastgen.metrics.mmd2_unbiased`)
    with the degree-4 polynomial kernel (``gamma = 1 / D``, ``coef0 = 1``) between real and
    generated physics features, and half the 16.275 - 83.725 percentile range (one sigma)
    as its error. JetNet's ``jetnet.evaluation.kpd``.

    Batch ``i`` draws ``batch_size`` real then generated rows with replacement from
    ``np.random.default_rng(seed + 1000 i)``.

    Args:
        real_features: ``(N1, D)`` features of real events; torch / NumPy / DLPack,
            floating, finite (a ``RuntimeWarning`` below 50,000 rows, as JetNet).
        gen_features: ``(N2, D)`` features of generated events, same dtype and device.
        num_batches: batches in the median, ``>= 1``.
        batch_size: rows per batch and side, ``>= 2``.
        normalise: divide both sets by the real features' max |value| per feature, as
            JetNet does.
        seed: an int ``>= 0`` (batch ``i`` uses ``seed + 1000 i``; JetNet's default 42).
        backend: see :func:`fastgen.metrics.mmd2_unbiased`.

    Returns:
        ``(median, error)`` Python floats.

    Raises:
        TypeError: bad arrays, non-int counts or seed.
        ValueError: bad arrays, counts below their minimum, a negative seed.

    Example:
        >>> import numpy as np
        >>> from fastgen.metrics import kernel_physics_distance
        >>> real = np.random.default_rng(0).normal(size=(200, 3))
        >>> median, error = kernel_physics_distance(real, real + 1.0, num_batches=3, batch_size=50)
        >>> median > 3 * error  # shifted distributions: clearly above 0
        True
    """
    check_number("num_batches", num_batches, minimum=1, integer=True)
    check_number("batch_size", batch_size, minimum=2, integer=True)
    seed = check_seed("seed", seed, allow_none=False)
    x, y = _prepare(real_features, gen_features, normalise)
    gamma = 1.0 / x.shape[1]
    values = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        first = torch.from_numpy(rng.choice(x.shape[0], size=batch_size)).to(x.device)
        second = torch.from_numpy(rng.choice(y.shape[0], size=batch_size)).to(y.device)
        values.append(_mmd2(x[first], y[second], "polynomial", 4, gamma, 1.0, backend).item())
    low, high = np.percentile(values, [16.275, 83.725])
    return float(np.median(values)), float((high - low) / 2)
