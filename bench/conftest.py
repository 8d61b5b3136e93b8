"""Shared setup for the benchmark suites in ``bench/`` (pytest-benchmark).

Fixtures every suite can use:

* ``device``: ``"cpu"``, plus ``"cuda"`` when ``torch.cuda.is_available()``.
* ``n``: the problem size (number of elements), from ``FASTGEN_BENCH_SIZES``
  (comma-separated ints, e.g. ``FASTGEN_BENCH_SIZES=1000`` for a CI smoke run) or
  ``DEFAULT_SIZES``. A suite whose size means something else defines its own ``n``.
* ``measure``: ``measure(fn, elements=n)`` times ``fn()`` with ``benchmark.pedantic`` (one
  warm-up round, then ``rounds_for(elements)`` rounds of one call each), synchronising CUDA
  inside the timed region, and returns the median in seconds (``None`` under
  ``--benchmark-disable``).

The torch version and intra-op thread count go into the JSON's ``machine_info``. On a busy
machine pin the threads (``OMP_NUM_THREADS=1``): an oversubscribed intra-op pool waits for
descheduled threads at every op and can inflate CPU times tenfold.
"""

from __future__ import annotations

import os

import pytest
import torch

DEFAULT_SIZES = (2**12, 2**16, 2**19)
DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


def bench_sizes() -> list[int]:
    """Sizes from ``FASTGEN_BENCH_SIZES`` (comma-separated positive ints), else the defaults."""
    text = os.environ.get("FASTGEN_BENCH_SIZES", "").strip()
    if not text:
        return list(DEFAULT_SIZES)
    message = f"FASTGEN_BENCH_SIZES must be comma-separated positive ints, got {text!r}"
    try:
        sizes = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(message) from None
    if not sizes or min(sizes) < 1:
        raise ValueError(message)
    return sizes


def rounds_for(elements: int) -> int:
    """Timed rounds: about 2**22 elements of work per benchmark, between 10 and 50 rounds."""
    return max(10, min(50, 2**22 // max(elements, 1)))


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch"] = torch.__version__
    machine_info["torch_num_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        machine_info["cuda_device"] = torch.cuda.get_device_name()


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(params=bench_sizes(), ids=lambda n: f"n={n}")
def n(request) -> int:
    return request.param


@pytest.fixture
def measure(benchmark, device):
    def measure(fn, *, elements: int) -> float | None:
        if device == "cuda":

            def timed():
                fn()
                torch.cuda.synchronize()

        else:
            timed = fn
        benchmark.pedantic(timed, rounds=rounds_for(elements), warmup_rounds=1, iterations=1)
        return None if benchmark.stats is None else benchmark.stats.stats.median

    return measure
