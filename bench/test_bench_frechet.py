"""Fréchet distance (FID) against pytorch-fid's scipy formula, and KID / MMD^2 time and memory.

What is measured (CPU unless CUDA is present; float64 statistics, as pytorch-fid):

* ``test_fid_from_statistics``: ``calculate_frechet_distance(mu1, sigma1, mu2, sigma2)`` at
  ``D = FASTGEN_BENCH_FID_DIM`` (default 2048, InceptionV3's pool features) for two sample
  counts ``N`` (default 10,000: full-rank covariances; 1,000: rank-deficient, ``N < D``).
  Providers: ``fastgen-auto`` (Cholesky + one symmetric eigenvalue problem),
  ``fastgen-eigh`` (the symmetric form ``S1^(1/2) S2 S1^(1/2)``), ``scipy`` (pytorch-fid's
  ``calculate_frechet_distance`` written out with ``scipy.linalg.sqrtm``, as
  tests/fid_oracle.py). Statistics are computed once, outside the timed region.
* ``test_fid_from_features``: the whole computation from ``(N, D)`` float32 features:
  ``fastgen.metrics.frechet_distance`` (for ``N <= D`` the ``N x N`` singular value route)
  against ``np.mean`` / ``np.cov`` + the scipy formula.
* ``test_kid``: ``kernel_inception_distance`` (100 subsets of 1,000, torch-fidelity's
  defaults) on ``(N, 2048)`` float32 features against torch-fidelity's dense NumPy formula;
  ``test_mmd_full``: ``mmd2_unbiased`` on all ``N`` rows (the dense formula would hold three
  ``N x N`` matrices: 60 GB at N = 50,000, so it is not run). ``extra_info["peak_mb"]``:
  the peak resident memory above the baseline during one call (sampled every 2 ms from
  ``/proc/self/statm``; CUDA: ``torch.cuda.max_memory_allocated``).

Every provider's FID (its last timed call's) is asserted equal to fastgen-eigh's, computed
once per case (relative 1e-6), so the ratio compares equal answers. Timings are never
asserted. Rounds: ``FASTGEN_BENCH_ROUNDS`` (default 3; scipy at D = 2048 takes 10-20 s a
call on a 2-core machine).

Sizes: ``FASTGEN_BENCH_SIZES`` (comma-separated) replaces the FID ``N`` list and the KID ``N``
(default KID / MMD size 5,000; ask for 50,000 explicitly). Run::

    OMP_NUM_THREADS=2 pytest bench/test_bench_frechet.py --benchmark-group-by=group \\
        --benchmark-columns=median,min,max
    FASTGEN_BENCH_SIZES=50000 pytest bench/test_bench_frechet.py -k "kid or mmd"
    FASTGEN_BENCH_SIZES=1000 FASTGEN_BENCH_FID_DIM=256 pytest bench/test_bench_frechet.py -q \\
        --benchmark-disable                                   # CI smoke run
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch

from fastgen.metrics import (
    calculate_frechet_distance,
    frechet_distance,
    kernel_inception_distance,
    mmd2_unbiased,
)

FID_DIM = int(os.environ.get("FASTGEN_BENCH_FID_DIM", "2048"))
ROUNDS = int(os.environ.get("FASTGEN_BENCH_ROUNDS", "3"))
_SIZES = [int(s) for s in os.environ.get("FASTGEN_BENCH_SIZES", "").split(",") if s.strip()]
FID_SIZES = _SIZES or [10_000, 1_000]
KID_SIZES = _SIZES or [5_000]
KID_DIM = 2048


def pytorch_fid_formula(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance with scipy.linalg.sqrtm (tests/fid_oracle)."""
    try:
        import scipy.linalg
    except ImportError:
        pytest.skip("scipy is not installed")
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def features(n: int, d: int, seed: int) -> np.ndarray:
    """float32 features with a decaying spectrum, like pooled network activations."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) * np.linspace(1.0, 0.05, d)[None, :] / np.sqrt(d)
    return (rng.standard_normal((n, d)) @ mix.T + 0.1 * seed).astype(np.float32)


def _timed(benchmark, fn, rounds=ROUNDS):
    """Time ``fn`` (one call under --benchmark-disable) and return its last result."""
    return benchmark.pedantic(fn, rounds=rounds, warmup_rounds=0, iterations=1)


def peak_memory_mb(fn):
    """``(fn(), peak memory above the baseline while it ran, in MB)``."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        result = fn()
        return result, (torch.cuda.max_memory_allocated() - base) / 1e6
    page = os.sysconf("SC_PAGE_SIZE")

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    base, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        result = fn()
    finally:
        done.set()
        thread.join()
    return result, (max(peak[0], rss()) - base) / 1e6


@pytest.fixture(scope="module", params=FID_SIZES, ids=lambda n: f"N={n}")
def fid_case(request):
    n = request.param
    x1, x2 = features(n, FID_DIM, 1), features(n, FID_DIM, 2)
    stats = [(x.astype(np.float64).mean(0), np.cov(x, rowvar=False)) for x in (x1, x2)]
    expected = calculate_frechet_distance(*stats[0], *stats[1], method="eigh")
    return n, x1, x2, stats, expected


@pytest.mark.parametrize("provider", ["fastgen-auto", "fastgen-eigh", "scipy"])
def test_fid_from_statistics(benchmark, provider, fid_case):
    n, _, _, ((mu1, s1), (mu2, s2)), expected = fid_case
    if provider == "scipy":

        def fn():
            return pytorch_fid_formula(mu1, s1, mu2, s2)

    else:
        method = provider.removeprefix("fastgen-")

        def fn():
            return calculate_frechet_distance(mu1, s1, mu2, s2, method=method)

    benchmark.group = f"fid statistics D={FID_DIM} N={n}"
    value = _timed(benchmark, fn)
    assert value == pytest.approx(expected, rel=1e-6), f"{provider}: {value} vs {expected}"
    benchmark.extra_info.update(provider=provider, N=n, D=FID_DIM, value=float(value),
                                rank_deficient=n <= FID_DIM)  # fmt: skip


@pytest.mark.parametrize("provider", ["fastgen-auto", "numpy+scipy"])
def test_fid_from_features(benchmark, provider, fid_case):
    n, x1, x2, _, expected = fid_case
    if provider == "numpy+scipy":

        def fn():
            stats = [(x.astype(np.float64).mean(0), np.cov(x, rowvar=False)) for x in (x1, x2)]
            return pytorch_fid_formula(*stats[0], *stats[1])

    else:
        t1, t2 = torch.from_numpy(x1), torch.from_numpy(x2)

        def fn():
            return frechet_distance(t1, t2)

    benchmark.group = f"fid features D={FID_DIM} N={n}"
    value = _timed(benchmark, fn)
    assert value == pytest.approx(expected, rel=1e-6), f"{provider}: {value} vs {expected}"
    benchmark.extra_info.update(provider=provider, N=n, D=FID_DIM, value=float(value))


def dense_kid(x, y, subsets, subset_size, seed=2020):
    """torch-fidelity's kid_features_to_metric in NumPy (float32 features, dense kernels)."""
    rng = np.random.RandomState(seed)  # noqa: NPY002
    values = []
    for _ in range(subsets):
        f1 = x[rng.choice(len(x), subset_size, replace=False)]
        f2 = y[rng.choice(len(y), subset_size, replace=False)]
        gamma = 1.0 / f1.shape[1]
        k11, k22, k12 = ((a @ b.T * gamma + 1) ** 3 for a, b in ((f1, f1), (f2, f2), (f1, f2)))
        m = len(f1)
        values.append((k11.sum() - np.trace(k11) + k22.sum() - np.trace(k22)) / (m * (m - 1))
                      - 2 * k12.sum() / m**2)  # fmt: skip
    return float(np.mean(values)), float(np.std(values))


@pytest.fixture(scope="module", params=KID_SIZES, ids=lambda n: f"N={n}")
def kid_case(request):
    n = request.param
    return n, features(n, KID_DIM, 3), features(n, KID_DIM, 4)


@pytest.mark.parametrize("provider", ["fastgen-auto", "torch-fidelity-numpy"])
def test_kid(benchmark, provider, kid_case):
    n, x, y = kid_case
    # torch-fidelity's defaults from N = 5,000 on; a tenth of the work for smoke sizes
    subsets, subset_size = (100, 1000) if n >= 5000 else (10, min(1000, n // 2))
    if provider == "fastgen-auto":
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def fn():
            return kernel_inception_distance(tx, ty, subsets=subsets, subset_size=subset_size)

    else:

        def fn():
            return dense_kid(x, y, subsets, subset_size)

    (mean, std), peak = peak_memory_mb(fn)
    assert np.isfinite(mean) and np.isfinite(std)
    benchmark.group = f"kid N={n} D={KID_DIM} subsets={subsets}x{subset_size}"
    benchmark.extra_info.update(provider=provider, N=n, kid_mean=mean, kid_std=std,
                                peak_mb=peak)  # fmt: skip
    _timed(benchmark, fn, rounds=1)


def test_mmd_full(benchmark, kid_case):
    """All N rows at once, float32 (the Triton kernel on CUDA, blocked reference on CPU)."""
    n, x, y = kid_case
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    if torch.cuda.is_available():
        tx, ty = tx.cuda(), ty.cuda()

    def fn():
        value = mmd2_unbiased(tx, ty)
        if value.is_cuda:
            torch.cuda.synchronize()
        return value

    value, peak = peak_memory_mb(fn)
    assert torch.isfinite(value)
    benchmark.group = f"mmd2 full N={n} D={KID_DIM}"
    benchmark.extra_info.update(N=n, value=value.item(), peak_mb=peak,
                                dense_kernel_matrices_mb=3 * n * n * 4 / 1e6)  # fmt: skip
    _timed(benchmark, fn, rounds=1)
