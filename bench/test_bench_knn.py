"""Precision / recall / density / coverage (the ``knn`` hot path): fastgen's tiled
``compute_prdc`` against the ``prdc`` package, time and peak memory.

What is measured: ``compute_prdc(real, fake, nearest_k=5)`` on ``(N, D)`` float32 Gaussian
features (``D = FASTGEN_BENCH_KNN_DIM``, default 64; the fake set shifted by 0.1), one call per
round (``FASTGEN_BENCH_ROUNDS``, default 1). Providers: ``fastgen`` (``backend="auto"``: the
blocked reference on CPU, the Triton kernels on CUDA; memory ``O(N)`` plus blocks of 2^22
distances) and ``prdc`` (``prdc.compute_prdc``: ``N x N`` float32 distance matrices and an
``N x N`` int64 ``argpartition``; measured 1.3 GB above its imports at N = 10,000, about
``13 N^2`` bytes: 33 GB at N = 50,000; skipped above ``FASTGEN_BENCH_PRDC_MAX``, default
20,000). ``extra_info["peak_mb"]``: resident memory above the baseline during the call
(sampled every 2 ms; CUDA: ``max_memory_allocated``). When both run, fastgen's four numbers
are asserted equal to prdc's (continuous data: no ties). Timings are never asserted.

Sizes: ``FASTGEN_BENCH_SIZES`` (comma-separated ``N``, default 10,000). Run::

    OMP_NUM_THREADS=2 pytest bench/test_bench_knn.py --benchmark-columns=median,min,max
    FASTGEN_BENCH_SIZES=50000 pytest bench/test_bench_knn.py -k fastgen   # prdc cannot
    FASTGEN_BENCH_SIZES=500 pytest bench/test_bench_knn.py --benchmark-disable   # CI smoke
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastgen.metrics import compute_prdc

DIM = int(os.environ.get("FASTGEN_BENCH_KNN_DIM", "64"))
ROUNDS = int(os.environ.get("FASTGEN_BENCH_ROUNDS", "1"))
PRDC_MAX = int(os.environ.get("FASTGEN_BENCH_PRDC_MAX", "20000"))
DEFAULT_SIZES = (10_000,)  # bench/conftest.py parametrizes n (FASTGEN_BENCH_SIZES overrides)
NEAREST_K = 5
_RESULTS: dict = {}


def _features(n: int, seed: int, shift: float) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, DIM)) + shift).astype(np.float32)


@pytest.mark.parametrize("provider", ["fastgen", "prdc"])
def test_prdc(benchmark, peak_memory, provider, n):
    if provider == "prdc":
        prdc = pytest.importorskip("prdc", reason="prdc is not installed")
        if n > PRDC_MAX:
            pytest.skip(
                f"prdc needs ~{13 * n * n / 1e9:.0f} GB at N = {n} (> FASTGEN_BENCH_PRDC_MAX)"
            )
    real, fake = _features(n, 1, 0.0), _features(n, 2, 0.1)
    device = "cpu"
    if provider == "prdc":

        def fn():
            scores = prdc.compute_prdc(real, fake, nearest_k=NEAREST_K)
            return {k: float(v) for k, v in scores.items()}

    else:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        real_t, fake_t = torch.from_numpy(real).to(device), torch.from_numpy(fake).to(device)

        def fn():
            return compute_prdc(real_t, fake_t, nearest_k=NEAREST_K)

    def measured():  # each timed call samples its memory
        with peak_memory(device) as memory:
            scores = fn()
        return scores, memory.increase_mb

    scores, peak = benchmark.pedantic(measured, rounds=ROUNDS, warmup_rounds=0, iterations=1)
    benchmark.extra_info.update(peak_mb=round(peak), n=n, d=DIM, **scores)
    _RESULTS[(provider, n)] = scores
    other = _RESULTS.get(("prdc" if provider == "fastgen" else "fastgen", n))
    if other is not None:
        assert scores == pytest.approx(other, abs=1e-12), (scores, other)
