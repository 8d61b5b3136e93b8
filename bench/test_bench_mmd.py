"""KID and MMD^2 (``fastgen.metrics.mmd``): time and peak memory against torch-fidelity's
dense NumPy formula.

What is measured (CPU, or CUDA for ``test_mmd_full`` when present; float32 features with a
decaying spectrum, ``D = 2048``, InceptionV3's pool features):

* ``test_kid``: ``kernel_inception_distance`` (100 subsets of 1,000, torch-fidelity's
  defaults) on ``(N, 2048)`` features against torch-fidelity's ``kid_features_to_metric``
  written out in NumPy with dense kernel matrices (tests/mmd_oracle.py);
* ``test_mmd_full``: ``mmd2_unbiased`` on all ``N`` rows (the dense formula would hold three
  ``N x N`` matrices: 60 GB at N = 50,000, so it is not run).

``extra_info["peak_mb"]``: the peak memory above the baseline during one call
(bench/conftest.py's ``peak_memory``), then one timed round (a call takes seconds to
minutes). Timings are never asserted; values must be finite.

Sizes: ``FASTGEN_BENCH_SIZES`` (comma-separated ``N``, default 5,000; ask for 50,000
explicitly). Run::

    FASTGEN_BENCH_SIZES=50000 pytest bench/test_bench_mmd.py --benchmark-group-by=group
    FASTGEN_BENCH_SIZES=1000 pytest bench/test_bench_mmd.py -q --benchmark-disable  # smoke
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fid_oracle import correlated_features
from mmd_oracle import torch_fidelity_kid

from fastgen.metrics import kernel_inception_distance, mmd2_unbiased

DEFAULT_SIZES = (5_000,)
DIM = 2048


def features(n: int, seed: int) -> np.ndarray:
    """float32 features with a decaying spectrum, like pooled network activations."""
    rng = np.random.default_rng(seed)
    return correlated_features(rng, n, DIM, shift=0.1 * seed).astype(np.float32)


@pytest.fixture(scope="module")
def kid_case(n):
    return features(n, 3), features(n, 4)


@pytest.mark.parametrize("provider", ["fastgen-auto", "torch-fidelity-numpy"])
def test_kid(benchmark, peak_memory, provider, n, kid_case):
    x, y = kid_case
    # torch-fidelity's defaults from N = 5,000 on; a tenth of the work for smoke sizes
    subsets, subset_size = (100, 1000) if n >= 5000 else (10, min(1000, n // 2))
    if provider == "fastgen-auto":
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def fn():
            return kernel_inception_distance(tx, ty, subsets=subsets, subset_size=subset_size)

    else:

        def fn():
            return torch_fidelity_kid(x, y, subsets, subset_size)

    with peak_memory("cpu") as memory:
        mean, std = fn()
    assert np.isfinite(mean) and np.isfinite(std)
    benchmark.group = f"kid N={n} D={DIM} subsets={subsets}x{subset_size}"
    benchmark.extra_info.update(
        provider=provider, N=n, kid_mean=mean, kid_std=std, peak_mb=memory.increase_mb
    )
    benchmark.pedantic(fn, rounds=1, iterations=1)


def test_mmd_full(benchmark, peak_memory, n, kid_case):
    """All N rows at once (the Triton kernel on CUDA, the blocked reference on CPU)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tx, ty = (torch.from_numpy(a).to(device) for a in kid_case)

    def fn():
        value = mmd2_unbiased(tx, ty)
        return value.item()  # synchronises CUDA

    with peak_memory(device) as memory:
        value = fn()
    assert np.isfinite(value)
    benchmark.group = f"mmd2 full N={n} D={DIM}"
    benchmark.extra_info.update(
        N=n, value=value, peak_mb=memory.increase_mb, dense_kernel_matrices_mb=3 * n * n * 4 / 1e6
    )
    benchmark.pedantic(fn, rounds=1, iterations=1)
