"""Shared setup for the benchmark suites in ``bench/`` (pytest-benchmark).

Environment variables, all parsed here:

* ``FASTGEN_BENCH_SIZES``: comma-separated positive ints, the problem sizes ``n`` of every
  suite (e.g. ``FASTGEN_BENCH_SIZES=1000`` for a CI smoke run); unset, each suite's own
  ``DEFAULT_SIZES`` (a module constant), else ``DEFAULT_SIZES`` below;
* ``FASTGEN_BENCH_FID_DIM``: the feature dimension of the Fréchet suite (default 2048);
* ``FASTGEN_BENCH_ROUNDS``: rounds of the Fréchet suite, whose calls take seconds
  (default 3).

Fixtures every suite can use:

* ``device``: ``"cpu"``, plus ``"cuda"`` when ``torch.cuda.is_available()``.
* ``n``: the problem size, parametrized from the sizes above (module-scoped, so that
  module-scoped fixtures can build a problem once per size).
* ``fid_dim``, ``rounds``: the values of the variables above.
* ``measure``: ``measure(fn, elements=n)`` times ``fn()`` with ``benchmark.pedantic`` (one
  warm-up round, then ``rounds_for(elements)`` rounds of one call each, or ``rounds=``),
  synchronising CUDA inside the timed region, and returns the median in seconds (``None``
  under ``--benchmark-disable``).
* ``peak_memory``: ``with peak_memory(device) as memory: ...`` then ``memory.increase_mb``:
  the peak memory above the level before the block (CUDA: ``max_memory_allocated``; CPU: the
  process's resident memory sampled every 2 ms by a thread, an estimate that misses peaks
  shorter than that).

The torch version and intra-op thread count go into the JSON's ``machine_info``. On a busy
machine pin the threads (``OMP_NUM_THREADS=1``): an oversubscribed intra-op pool waits for
descheduled threads at every op and can inflate CPU times tenfold.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

# The oracles shared with the correctness suite (tests/fid_oracle.py, tests/mmd_oracle.py).
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))

DEFAULT_SIZES = (2**12, 2**16, 2**19)
DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


def env_ints(name: str, default) -> list[int]:
    """The comma-separated positive ints of environment variable ``name``, else ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return list(default)
    message = f"{name} must be comma-separated positive ints, got {text!r}"
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(message) from None
    if not values or min(values) < 1:
        raise ValueError(message)
    return values


def env_int(name: str, default: int) -> int:
    """The one positive int of environment variable ``name``, else ``default``."""
    values = env_ints(name, [default])
    if len(values) != 1:
        raise ValueError(f"{name} must be one positive int, got {os.environ[name]!r}")
    return values[0]


def bench_sizes(default=DEFAULT_SIZES) -> list[int]:
    """Sizes from ``FASTGEN_BENCH_SIZES``, else ``default``."""
    return env_ints("FASTGEN_BENCH_SIZES", default)


def pytest_generate_tests(metafunc):
    if "n" in metafunc.fixturenames:
        sizes = bench_sizes(getattr(metafunc.module, "DEFAULT_SIZES", DEFAULT_SIZES))
        metafunc.parametrize("n", sizes, ids=lambda n: f"n={n}", scope="module")


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


@pytest.fixture(scope="session")
def fid_dim() -> int:
    return env_int("FASTGEN_BENCH_FID_DIM", 2048)


@pytest.fixture(scope="session")
def rounds() -> int:
    return env_int("FASTGEN_BENCH_ROUNDS", 3)


@pytest.fixture
def measure(benchmark, device):
    def measure(fn, *, elements: int | None = None, rounds: int | None = None) -> float | None:
        if device == "cuda":

            def timed():
                fn()
                torch.cuda.synchronize()

        else:
            timed = fn
        rounds = rounds_for(elements) if rounds is None else rounds
        benchmark.pedantic(timed, rounds=rounds, warmup_rounds=1, iterations=1)
        return None if benchmark.stats is None else benchmark.stats.stats.median

    return measure


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory increase while the block runs, in ``increase_mb`` (see the module doc)."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = self.peak = _rss()
        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self.peak = max(self.peak, _rss())
                time.sleep(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss())
        self.increase_mb = (self.peak - self.base) / 1e6


@pytest.fixture
def peak_memory():
    return PeakMemory
