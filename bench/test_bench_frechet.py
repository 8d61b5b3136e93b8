"""Fréchet distance (FID) against pytorch-fid's scipy formula.

What is measured (CPU; float64 statistics, as pytorch-fid):

* ``test_fid_from_statistics``: ``calculate_frechet_distance(mu1, sigma1, mu2, sigma2)`` at
  ``D = FASTGEN_BENCH_FID_DIM`` (default 2048, InceptionV3's pool features) for two sample
  counts ``N`` (default 10,000: full-rank covariances; 1,000: rank-deficient, ``N < D``).
  Providers: ``fastgen-auto`` (Cholesky + one symmetric eigenvalue problem),
  ``fastgen-eigh`` (the symmetric form ``S1^(1/2) S2 S1^(1/2)``), ``scipy`` (pytorch-fid's
  ``calculate_frechet_distance`` written out with ``scipy.linalg.sqrtm``:
  tests/fid_oracle.py). Statistics are computed once, outside the timed region.
* ``test_fid_from_features``: the whole computation from ``(N, D)`` float32 features:
  ``fastgen.metrics.frechet_distance`` (for ``N <= D`` the ``N x N`` singular value route)
  against ``np.mean`` / ``np.cov`` + the scipy formula.

Every provider's FID (its last timed call's) is asserted equal to fastgen-eigh's, computed
once per case (relative 1e-6), so the ratio compares equal answers. Timings are never
asserted. Rounds: ``FASTGEN_BENCH_ROUNDS`` (default 3; scipy at D = 2048 takes 10-20 s a
call on a 2-core machine). KID and MMD^2: bench/test_bench_mmd.py.

Sizes: ``FASTGEN_BENCH_SIZES`` (comma-separated) replaces the ``N`` list (bench/conftest.py).
Run::

    OMP_NUM_THREADS=2 pytest bench/test_bench_frechet.py --benchmark-group-by=group \\
        --benchmark-columns=median,min,max
    FASTGEN_BENCH_SIZES=1000 FASTGEN_BENCH_FID_DIM=256 pytest bench/test_bench_frechet.py -q \\
        --benchmark-disable                                   # CI smoke run
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fid_oracle import correlated_features, pytorch_fid_formula

from fastgen.metrics import calculate_frechet_distance, frechet_distance

DEFAULT_SIZES = (10_000, 1_000)


def features(n: int, d: int, seed: int) -> np.ndarray:
    """float32 features with a decaying spectrum, like pooled network activations."""
    rng = np.random.default_rng(seed)
    return correlated_features(rng, n, d, shift=0.1 * seed).astype(np.float32)


@pytest.fixture(scope="module")
def fid_case(n, fid_dim):
    x1, x2 = features(n, fid_dim, 1), features(n, fid_dim, 2)
    stats = [(x.astype(np.float64).mean(0), np.cov(x, rowvar=False)) for x in (x1, x2)]
    expected = calculate_frechet_distance(*stats[0], *stats[1], method="eigh")
    return x1, x2, stats, expected


@pytest.mark.parametrize("provider", ["fastgen-auto", "fastgen-eigh", "scipy"])
def test_fid_from_statistics(benchmark, rounds, provider, n, fid_dim, fid_case):
    _, _, ((mu1, s1), (mu2, s2)), expected = fid_case
    if provider == "scipy":

        def fn():
            return pytorch_fid_formula(mu1, s1, mu2, s2)

    else:
        method = provider.removeprefix("fastgen-")

        def fn():
            return calculate_frechet_distance(mu1, s1, mu2, s2, method=method)

    benchmark.group = f"fid statistics D={fid_dim} N={n}"
    value = benchmark.pedantic(fn, rounds=rounds, iterations=1)
    assert value == pytest.approx(expected, rel=1e-6), f"{provider}: {value} vs {expected}"
    benchmark.extra_info.update(
        provider=provider, N=n, D=fid_dim, value=float(value), rank_deficient=n <= fid_dim
    )


@pytest.mark.parametrize("provider", ["fastgen-auto", "numpy+scipy"])
def test_fid_from_features(benchmark, rounds, provider, n, fid_dim, fid_case):
    x1, x2, _, expected = fid_case
    if provider == "numpy+scipy":

        def fn():
            stats = [(x.astype(np.float64).mean(0), np.cov(x, rowvar=False)) for x in (x1, x2)]
            return pytorch_fid_formula(*stats[0], *stats[1])

    else:
        t1, t2 = torch.from_numpy(x1), torch.from_numpy(x2)

        def fn():
            return frechet_distance(t1, t2)

    benchmark.group = f"fid features D={fid_dim} N={n}"
    value = benchmark.pedantic(fn, rounds=rounds, iterations=1)
    assert value == pytest.approx(expected, rel=1e-6), f"{provider}: {value} vs {expected}"
    benchmark.extra_info.update(provider=provider, N=n, D=fid_dim, value=float(value))
