"""Throughput of the unconstrained rational-quadratic spline against nflows and zuko.

What is measured: one call of the spline on ``n`` elements (float32, ``K = 8`` bins,
``tail_bound = 3``, linear tails; inputs ~ N(0, 1.5^2) so about 5% fall in the tails,
unnormalised parameters ~ N(0, 1)), in three directions:

* ``forward``: ``(outputs, logabsdet)``;
* ``inverse``: the same with ``inverse=True`` (zuko: ``t.inv.call_and_ladj``);
* ``forward+backward``: forward, then ``torch.autograd.grad`` of
  ``outputs.sum() + logabsdet.sum()`` with respect to the inputs and all three parameters.

Providers: ``fastgen-auto`` (``backend="auto"``: the PyTorch reference on CPU, the Triton
kernel on CUDA; ``extra_info["backend"]`` says which), ``fastgen-torch`` (the reference),
``nflows`` (``unconstrained_rational_quadratic_spline``) and zuko
(``MonotonicRQSTransform(widths, heights, derivatives, bound=3)``, built inside the timed
call since building it normalises the parameters). zuko soft-clips the parameters and uses
``exp`` for the derivatives where nflows uses ``softplus``, so its numbers differ from the
others for the same tensors; the work per element is the same kind. A peer that does not
import is skipped. ``fastgen+compile``, ``nflows+compile`` and ``zuko+compile`` time the same
calls under ``torch.compile`` (default inductor, ``dynamic=False``; for fastgen the auto
backend): the first call, which compiles, is outside the timed rounds and its excess over
the median goes to ``extra_info["compile_s"]``. Each compiled benchmark starts from
``torch._dynamo.reset()`` so no earlier benchmark's cache (or its recompile limit) counts.

Timing: ``benchmark.pedantic`` with one warm-up round and ``rounds_for(n)`` rounds of one call
(see ``conftest.py``: 10 rounds at 2**19, 50 at 2**16 and below), which keeps the eager
providers near 1.5 minutes on a 2-core CPU; each compiled benchmark adds its compilation (10-20
s there; ``-k "not compile"`` skips them). Outside the timed region each benchmark runs once and
asserts that every output (and gradient) is finite, so a broken provider fails loudly. Timings
are never asserted.

Run (the path is needed: ``testpaths`` is ``tests``)::

    pytest bench/ --benchmark-group-by=group --benchmark-columns=median,iqr,ops
    pytest bench/ --benchmark-json out.json              # save every number and extra_info
    FASTGEN_BENCH_SIZES=1000 pytest bench/ -q             # tiny smoke run
    pytest bench/ --benchmark-disable                    # each function once, no timing

Benchmarks are grouped by ``rqs {device} {direction} n={n}``; read ratios between providers only
within one group of one run on one machine. On CPU ``fastgen-auto`` and ``fastgen-torch`` run
the same code, so their gap shows the run's noise. The intra-op threads follow
:func:`fastgen.threads.set_threads` for ``n * K`` values (one thread below 2^20 or on a busy
machine); ``FASTGEN_NUM_THREADS=1`` or ``2`` fixes the count for the 1- and 2-thread tables.
``extra_info`` holds the provider, resolved backend, direction, device, ``elements``,
``bytes_min`` (the traffic of a fused kernel: every tensor argument read once and every result
written once, ``(3K + 2) * 4`` bytes per element forward, ``(9K + 4) * 4`` forward+backward, for
float32 with ``K - 1`` derivatives), ``threads``, the effective ``GB/s`` at the median and,
compiled, ``compile_s``.
"""

from __future__ import annotations

import time

import pytest
import torch

import fastgen
from fastgen.backend import KERNEL_DTYPES, resolve_backend
from fastgen.threads import set_threads

NUM_BINS = 8
TAIL_BOUND = 3.0
INPUT_SCALE = 1.5
DTYPE = torch.float32
PROVIDERS = (
    "fastgen-auto",
    "fastgen-torch",
    "fastgen+compile",
    "nflows",
    "nflows+compile",
    "zuko",
    "zuko+compile",
)
DIRECTIONS = ("forward", "inverse", "forward+backward")


def make_spline(provider: str):
    """``spline(x, widths, heights, derivatives, inverse) -> (outputs, logabsdet)``."""
    if provider.endswith("+compile"):
        torch._dynamo.reset()
        return torch.compile(make_spline(provider.removesuffix("+compile")), dynamic=False)
    if provider.startswith("fastgen"):
        backend = provider.removeprefix("fastgen-") if "-" in provider else "auto"

        def spline(x, w, h, d, inverse):
            return fastgen.unconstrained_rational_quadratic_spline(
                x,
                w,
                h,
                d,
                inverse=inverse,
                tails="linear",
                tail_bound=TAIL_BOUND,
                backend=backend,
            )

    elif provider == "nflows":
        try:
            from nflows.transforms.splines.rational_quadratic import (
                unconstrained_rational_quadratic_spline,
            )
        except ImportError:
            pytest.skip("nflows is not installed")

        def spline(x, w, h, d, inverse):
            return unconstrained_rational_quadratic_spline(
                x, w, h, d, inverse=inverse, tails="linear", tail_bound=TAIL_BOUND
            )

    elif provider == "zuko":
        try:
            from zuko.transforms import MonotonicRQSTransform
        except ImportError:
            pytest.skip("zuko is not installed")

        def spline(x, w, h, d, inverse):
            t = MonotonicRQSTransform(w, h, d, bound=TAIL_BOUND)
            return (t.inv if inverse else t).call_and_ladj(x)

    else:
        raise ValueError(f"unknown provider {provider!r}")
    return spline


def make_inputs(n: int, device: str) -> list[torch.Tensor]:
    """Fresh ``[x, widths, heights, derivatives]``, the same numbers for every provider."""
    gen = torch.Generator().manual_seed(n)
    shapes = [(n,), (n, NUM_BINS), (n, NUM_BINS), (n, NUM_BINS - 1)]
    tensors = [torch.randn(shape, generator=gen, dtype=DTYPE) for shape in shapes]
    tensors[0] *= INPUT_SCALE
    return [t.to(device) for t in tensors]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_rqs(benchmark, measure, provider, direction, n, device):
    threads = set_threads(n * NUM_BINS)  # before compiling: inductor's loops use the count
    spline = make_spline(provider)
    tensors = make_inputs(n, device)
    backend = "torch"
    if provider in ("fastgen-auto", "fastgen+compile"):  # auto's choice here (not the interpreter)
        backend = resolve_backend("auto", tensors, supported_dtypes=KERNEL_DTYPES)

    if direction == "forward+backward":
        leaves = [t.requires_grad_() for t in tensors]

        def fn():
            outputs, logabsdet = spline(*leaves, False)
            grads = torch.autograd.grad(outputs.sum() + logabsdet.sum(), leaves)
            return outputs, logabsdet, *grads

    else:
        inverse = direction == "inverse"

        def fn():
            return spline(*tensors, inverse)

    start = time.perf_counter()
    results = fn()
    first_call = time.perf_counter() - start
    for result in results:
        assert torch.isfinite(result).all(), f"{provider} {direction}: non-finite results"

    bytes_read = sum(t.nbytes for t in tensors)
    bytes_written = results[0].nbytes + results[1].nbytes
    if direction == "forward+backward":  # backward: read arguments and 2 grads, write grads
        bytes_min = 3 * bytes_read + 2 * bytes_written
    else:
        bytes_min = bytes_read + bytes_written

    benchmark.group = f"rqs {device} {direction} n={n}"
    benchmark.extra_info.update(
        provider=provider,
        backend=backend,
        direction=direction,
        device=device,
        elements=n,
        num_bins=NUM_BINS,
        dtype=str(DTYPE),
        bytes_min=bytes_min,
        threads=threads,
    )
    median = measure(fn, elements=n)
    if median:
        benchmark.extra_info["GB/s"] = bytes_min / median / 1e9
        if provider.endswith("+compile"):
            benchmark.extra_info["compile_s"] = max(0.0, first_call - median)
