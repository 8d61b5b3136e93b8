"""Fréchet distance between Gaussians fitted to two feature sets (FID; Heusel et al. 2017,
arXiv:1706.08500), pytorch-fid-compatible, with streaming float64 feature statistics.

``d^2 = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))``: the cross term comes from
:func:`fastgen.linalg.trace_sqrt_product` (a symmetric eigenvalue problem, exact for
singular covariances, no complex parts) or, from raw features with ``N < D``, from
:func:`fastgen.linalg.trace_sqrt_product_factors` (an ``N1 x N2`` singular value problem).
"""

from __future__ import annotations

import math

import torch

from fastgen._checks import (
    as_float_tensor,
    check_bool,
    check_choice,
    check_finite,
    check_number,
    check_sample_pair,
)
from fastgen.distributed import all_reduce_sum, collective_device, distributed_available
from fastgen.linalg import (
    METHODS,
    _check_covariances,
    _factor,
    _trace_sqrt_product,
    trace_sqrt_product_factors,
)
from fastgen.tracing import annotate

# Rows converted to float64 at a time: bounds the temporary copies of large feature sets.
CHUNK_ROWS = 8192
STATISTICS_DTYPES = (torch.float32, torch.float64)


@annotate("fastgen.calculate_frechet_distance")
def calculate_frechet_distance(
    mu1, sigma1, mu2, sigma2, eps: float = 1e-6, *, method: str = "auto"
) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``, pytorch-fid's
    ``calculate_frechet_distance`` (same arguments, same number):
    ``|mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2))``.

    Args:
        mu1: the first Gaussian's mean, ``(D,)`` (a scalar is ``D = 1``, as
            ``np.atleast_1d``). NumPy array, torch tensor or DLPack array of any floating
            dtype; everything is computed in float64.
        sigma1: the first Gaussian's covariance, ``(D, D)``, symmetric PSD (a scalar is
            ``(1, 1)``).
        mu2: the second Gaussian's mean, as ``mu1``.
        sigma2: the second Gaussian's covariance, as ``sigma1``, on its device.
        eps: pytorch-fid adds ``eps I`` to both covariances only when scipy's ``sqrtm`` of
            the product is not finite. The symmetric computation here is finite for every
            finite PSD input (singular ones included), so ``eps`` is validated and never
            needed; it is kept for signature compatibility.
        method: ``"auto"``, ``"eigh"`` or ``"newton_schulz"``, see
            :func:`fastgen.linalg.trace_sqrt_product`.

    Returns:
        Python float (the squared distance, as pytorch-fid returns).

    Raises:
        TypeError: non-array arguments or non-floating dtypes, ``eps`` not a number.
        ValueError: mismatched shapes, NaN / inf, non-symmetric or non-PSD covariances,
            ``eps < 0``, unknown ``method``.

    Example:
        >>> import numpy as np
        >>> from fastgen.metrics import calculate_frechet_distance
        >>> mu1, mu2 = np.zeros(2), np.array([3.0, 4.0])
        >>> sigma1, sigma2 = np.eye(2), 4 * np.eye(2)
        >>> calculate_frechet_distance(mu1, sigma1, mu2, sigma2)  # 25 + (2 + 8) - 2 (2 + 2)
        27.0
    """
    check_number("eps", eps, minimum=0)
    means = []
    for name, value in (("mu1", mu1), ("mu2", mu2)):
        mean = as_float_tensor(name, value)
        mean = mean.reshape(1) if mean.dim() == 0 else mean
        if mean.dim() != 1:
            raise ValueError(f"{name} must be 1-D (D,), got {tuple(mean.shape)}")
        check_finite(name, mean)
        means.append(mean.to(torch.float64))
    covariances = [as_float_tensor(n, v) for n, v in (("sigma1", sigma1), ("sigma2", sigma2))]
    covariances = [c.reshape(1, 1) if c.dim() == 0 else c for c in covariances]
    check_choice("method", method, METHODS)
    s1, s2, input_dtype = _check_covariances(*covariances)
    if means[0].shape != means[1].shape:
        raise ValueError(
            f"mu1 and mu2 must have the same shape, got {tuple(means[0].shape)} and "
            f"{tuple(means[1].shape)}"
        )
    if s1.dim() != 2 or s1.shape[0] != means[0].shape[0]:
        raise ValueError(
            f"sigma1 and sigma2 must be (D, D) with D = len(mu1) = {means[0].shape[0]}, got "
            f"{tuple(s1.shape)}"
        )
    device = s1.device
    diff = means[0].to(device) - means[1].to(device)
    cross = _trace_sqrt_product(s1, s2, input_dtype, method, None)
    traces = s1.trace() + s2.trace()
    return float(diff.dot(diff) + traces - 2 * cross)


class FeatureStatistics:
    """Streaming mean and unbiased covariance of ``(N, D)`` features, in float64.

    Each :meth:`update` folds a batch in with the parallel (Chan et al. 1979) update: with
    running ``(n_a, mean_a, M_a)``, ``M`` the sum of outer products of centred rows, and the
    batch's ``(n_b, mean_b, M_b)``: ``delta = mean_b - mean_a``,
    ``mean = mean_a + delta n_b / n``, ``M = M_a + M_b + delta delta^T n_a n_b / n``.
    Centring each batch on its own mean keeps the cancellation of the naive
    ``sum x x^T - n mean mean^T`` out, so the result equals a two-pass ``np.cov`` to about
    1e-12 relative whatever the batch sizes; :meth:`merge` combines two instances
    (different processes or devices) the same way. Memory: ``D^2 + D`` values, whatever N.

    Args:
        num_features: ``D``, an int ``>= 1``.
        dtype: accumulator dtype, ``torch.float64`` (default) or ``torch.float32``.
        device: accumulator device; ``None`` takes the first batch's.

    Properties ``num_samples``, ``mean`` ``(D,)``, ``covariance`` ``(D, D)`` (``M / (N - 1)``,
    as ``np.cov`` / ``torch.cov``; needs ``N >= 2``).

    Raises:
        TypeError: ``num_features`` not an int, ``dtype`` not float64 / float32.
        ValueError: ``num_features < 1``.

    Example:
        >>> import torch
        >>> from fastgen.metrics import FeatureStatistics
        >>> stats = FeatureStatistics(2)
        >>> stats = stats.update(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
        >>> stats = stats.update(torch.tensor([[0.0, 2.0], [2.0, 2.0]]))
        >>> stats.num_samples, stats.mean.tolist()
        (4, [1.0, 1.0])
        >>> torch.allclose(stats.covariance, torch.eye(2, dtype=torch.float64) * 4 / 3)
        True
    """

    def __init__(self, num_features: int, dtype: torch.dtype = torch.float64, device=None):
        num_features = check_number("num_features", num_features, minimum=1, integer=True)
        if dtype not in STATISTICS_DTYPES:
            raise TypeError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
        self.num_features = num_features
        self.dtype = dtype
        self.device = None if device is None else torch.device(device)
        self.reset()

    def reset(self) -> None:
        """Forget every sample."""
        self._count = 0
        self._mean = None
        self._scatter = None

    def _fold(self, count: int, mean: torch.Tensor, scatter: torch.Tensor) -> None:
        if self._count == 0:
            self._count, self._mean, self._scatter = count, mean, scatter
            return
        total = self._count + count
        delta = mean - self._mean
        self._mean = self._mean + delta * (count / total)
        self._scatter = self._scatter + scatter
        self._scatter += torch.outer(delta, delta) * (self._count * count / total)
        self._count = total

    def update(self, features) -> FeatureStatistics:
        """Add a batch ``(N, D)`` (torch, NumPy or DLPack; any floating dtype). Returns self.

        Raises TypeError / ValueError for a non-array, non-floating dtype, a shape other than
        ``(N, num_features)`` or NaN / inf entries."""
        batch = as_float_tensor("features", features)
        if batch.dim() != 2 or batch.shape[1] != self.num_features:
            raise ValueError(f"features must be (N, {self.num_features}), got {tuple(batch.shape)}")
        check_finite("features", batch)
        if self.device is None:
            self.device = batch.device
        for chunk in batch.split(CHUNK_ROWS):
            chunk = chunk.to(device=self.device, dtype=self.dtype)
            mean = chunk.mean(0)
            centred = chunk - mean
            self._fold(chunk.shape[0], mean, centred.mT @ centred)
        return self

    def merge(self, other: FeatureStatistics) -> FeatureStatistics:
        """Fold ``other``'s samples into this instance (``other`` is unchanged). Returns self."""
        if not isinstance(other, FeatureStatistics):
            raise TypeError(f"other must be a FeatureStatistics, got {type(other).__name__}")
        if other.num_features != self.num_features:
            raise ValueError(
                f"other must have num_features = {self.num_features}, got {other.num_features}"
            )
        if other._count:
            if self.device is None:
                self.device = other.device
            self._fold(
                other._count,
                other._mean.to(device=self.device, dtype=self.dtype),
                other._scatter.to(device=self.device, dtype=self.dtype),
            )
        return self

    def synced(self, process_group=None) -> FeatureStatistics:
        """A new instance holding the samples of every process of ``process_group`` (``None``:
        the default group); this one is unchanged. A collective: every process calls it,
        those without samples too. Without an initialised process group: a copy.

        Two all-reduces of sums: ``[n_r, n_r mean_r]`` gives ``n`` and ``mean``, then
        ``M = sum_r (M_r + n_r (mean_r - mean)(mean_r - mean)^T)``, exact in exact arithmetic
        and free of the cancellation of raw second moments; computed in float64 and stored
        in ``dtype``. Every process gets the same statistics. Memory and traffic:
        ``D^2 + D + 1`` values per process.

        Example:
            >>> stats = FeatureStatistics(3).update(torch.randn(10, 3))
            >>> stats.synced().num_samples  # one process: a copy
            10
        """
        result = FeatureStatistics(self.num_features, self.dtype, self.device)
        if not distributed_available():
            return result.merge(self)
        device = self.device if self.device is not None else collective_device(process_group)
        count = torch.tensor([float(self._count)], dtype=torch.float64, device=device)
        mean = torch.zeros(self.num_features, dtype=torch.float64, device=device)
        scatter = torch.zeros(
            self.num_features, self.num_features, dtype=torch.float64, device=device
        )
        if self._count:
            mean, scatter = self._mean.to(mean), self._scatter.to(scatter)
        sums = all_reduce_sum(torch.cat([count, count * mean]), process_group)
        total = int(sums[0])
        if total == 0:
            return result
        global_mean = sums[1:] / sums[0]
        delta = mean - global_mean
        scatter = scatter + torch.outer(delta, delta) * count
        result.device = device
        result._count = total
        result._mean = global_mean.to(self.dtype)
        result._scatter = all_reduce_sum(scatter, process_group).to(self.dtype)
        return result

    @property
    def num_samples(self) -> int:
        return self._count

    @property
    def mean(self) -> torch.Tensor:
        if self._count == 0:
            raise ValueError("mean needs at least 1 sample, got 0")
        return self._mean

    @property
    def covariance(self) -> torch.Tensor:
        if self._count < 2:
            raise ValueError(f"covariance needs at least 2 samples, got {self._count}")
        scatter = self._scatter / (self._count - 1)
        return (scatter + scatter.mT) / 2


@annotate("fastgen.frechet_distance")
def frechet_distance(features1, features2, method: str = "auto") -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID from features):
    ``calculate_frechet_distance(mean(X1), cov(X1), mean(X2), cov(X2))`` with unbiased
    (``N - 1``) covariances, as pytorch-fid computes them from activations.

    Args:
        features1: the first feature set (Inception activations of real images for FID),
            ``(N1, D)`` with ``N1 >= 2``; torch, NumPy or DLPack array of any floating dtype,
            computed in float64 (in chunks of 8192 rows); finite.
        features2: the second feature set, ``(N2, D)``, ``N2 >= 2``, on the same device.
        method:
            * ``"auto"``: a side with ``N_i <= D`` (singular covariance) enters through its
              centred features ``X_i^T / sqrt(N_i - 1)``, a side with ``N_i > D`` through the
              Cholesky factor of its covariance, and the cross term is the sum of singular
              values of the factors' ``r1 x r2`` product
              (:func:`fastgen.linalg.trace_sqrt_product_factors`); when both ``N_i > D``,
              :func:`fastgen.linalg.trace_sqrt_product` on the covariances.
            * ``"eigh"`` / ``"newton_schulz"``: covariances, then
              :func:`calculate_frechet_distance` with that method.

    Returns:
        Python float.

    Raises:
        TypeError: non-arrays, non-floating dtypes.
        ValueError: not 2-D, different ``D`` or devices, ``N < 2``, NaN / inf, unknown
            ``method``.

    Example:
        >>> import torch
        >>> from fastgen.metrics import frechet_distance
        >>> real = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
        >>> round(frechet_distance(real, real + 1.0), 6)  # the means differ by (1, 1)
        2.0
    """
    first, second = check_sample_pair(
        ("features1", "features2"), features1, features2, same_dtype=False
    )
    check_choice("method", method, METHODS)
    num_features = first.shape[1]
    if method != "auto" or min(x.shape[0] for x in (first, second)) > num_features:
        stats = [FeatureStatistics(num_features).update(x) for x in (first, second)]
        return calculate_frechet_distance(
            stats[0].mean, stats[0].covariance, stats[1].mean, stats[1].covariance, method=method
        )
    means, factors, traces = [], [], 0.0
    for name, features in (("features1", first), ("features2", second)):
        count = features.shape[0]
        if count <= num_features:
            # Singular covariance: the centred features are its thin factor.
            features = features.to(torch.float64)
            mean = features.mean(0)
            factor = (features - mean).mT / math.sqrt(count - 1)
            trace = factor.square().sum()
        else:
            stat = FeatureStatistics(num_features).update(features)
            mean, covariance = stat.mean, stat.covariance
            factor = _factor(name, covariance, features.dtype)
            trace = covariance.trace()
        means.append(mean)
        factors.append(factor)
        traces += trace
    diff = means[0] - means[1].to(means[0].device)
    cross = trace_sqrt_product_factors(*factors)
    return float(diff.dot(diff) + traces - 2 * cross)


class FrechetDistance:
    """Fréchet distance as a streaming metric object (torchmetrics style): feed real and
    generated features batch by batch, then :meth:`compute`.

    ``FrechetDistance(num_features)``; ``update(real=..., fake=...)`` (either or both,
    ``(N, D)`` torch / NumPy / DLPack batches) folds them into two
    :class:`FeatureStatistics`; ``compute()`` returns
    :func:`calculate_frechet_distance` of their means and covariances as a Python float
    (needs >= 2 samples on each side, all processes together); ``reset()`` forgets both
    (``reset(real=False)`` keeps the real statistics, as torchmetrics'
    ``reset_real_features=False``).

    Under ``torch.distributed`` (torchmetrics' ``sync_on_compute``): each process updates
    with its shard, and ``compute()`` reduces the statistics of every process of
    ``process_group`` (:meth:`FeatureStatistics.synced`, shards of any size) and returns the
    same value on every process, that of one process fed all the data; the local statistics
    stay local (a later ``update`` and ``compute`` count nothing twice). ``compute`` is then
    a collective: every process must call it.

    Args:
        num_features: ``D``, an int ``>= 1``.
        method: see :func:`fastgen.linalg.trace_sqrt_product`.
        device: accumulator device (``None``: the first batch's; a process without samples
            reduces on the CPU for gloo, the current CUDA device for NCCL).
        sync_on_compute: reduce across processes in ``compute`` when a process group is
            initialised (default True, as torchmetrics); False: this process's samples only.
        process_group: the ``torch.distributed`` group to reduce over (``None``: default).

    Raises:
        TypeError / ValueError: as :class:`FeatureStatistics`; unknown ``method``.

    Example:
        >>> import torch
        >>> from fastgen.metrics import FrechetDistance
        >>> metric = FrechetDistance(2)
        >>> batch = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
        >>> metric.update(real=batch, fake=batch + 1.0)
        >>> round(metric.compute(), 6)  # one process: no reduction
        2.0
    """

    def __init__(
        self,
        num_features: int,
        method: str = "auto",
        device=None,
        *,
        sync_on_compute: bool = True,
        process_group=None,
    ):
        self.method = check_choice("method", method, METHODS)
        self.sync_on_compute = check_bool("sync_on_compute", sync_on_compute)
        self.process_group = process_group
        self.real = FeatureStatistics(num_features, device=device)
        self.fake = FeatureStatistics(num_features, device=device)

    def update(self, real=None, fake=None) -> None:
        if real is None and fake is None:
            raise ValueError("update needs real=... and/or fake=... features, got neither")
        if real is not None:
            self.real.update(real)
        if fake is not None:
            self.fake.update(fake)

    def compute(self) -> float:
        real, fake = self.real, self.fake
        if self.sync_on_compute and distributed_available():
            real, fake = real.synced(self.process_group), fake.synced(self.process_group)
        for name, stats in (("real", real), ("fake", fake)):
            if stats.num_samples < 2:
                raise ValueError(f"compute needs >= 2 {name} samples, got {stats.num_samples}")
        return calculate_frechet_distance(
            real.mean, real.covariance, fake.mean, fake.covariance, method=self.method
        )

    def reset(self, real: bool = True) -> None:
        if real:
            self.real.reset()
        self.fake.reset()
