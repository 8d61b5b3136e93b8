"""Sinkhorn divergence: fastgen against GeomLoss's tensorized backend and POT's sinkhorn_log.

What is measured: one evaluation of the loss value and its gradient with respect to ``x`` for
``N = M = n`` points in ``D`` dimensions (``x ~ N(0, 1)``, ``y ~ N(0.5, 0.8^2)``, float32,
uniform weights), GeomLoss's default settings (``p=2, blur=0.05, scaling=0.5, debias=True``):

* ``fastgen``: ``fastgen.metrics.SamplesLoss()`` with ``backend="auto"`` (on the CPU the
  blocked reference: row chunks of ``CHUNK_ELEMENTS`` cost entries, never ``N x M``);
* ``geomloss``: ``geomloss.SamplesLoss(backend="tensorized")``, the dense backend that needs
  no KeOps (four ``N x M`` cost matrices);
* ``pot``: ``ot.sinkhorn2(a, b, M, reg=blur^2, method="sinkhorn_log",
  numItermax=POT_ITERATIONS)`` on ``M = |x - y|^2 / 2`` (built inside the timed call; no
  gradient, biased OT_eps, 10 plain iterations at the final eps instead of epsilon scaling:
  this prices one dense log-domain iteration, it is not a run to equal accuracy).

Sizes: ``FASTGEN_BENCH_SIZES`` (comma-separated ``n``; bench/conftest.py), default ``2000``.
GeomLoss at ``n = 10000`` takes over a minute and a few GB, so it runs only when that size is
asked for; peers are skipped above ``n = 20000`` (GeomLoss would need ``16 n^2`` bytes: 160 GB at
``n = 10^5``), where only fastgen's blocked path runs::

    OMP_NUM_THREADS=1 FASTGEN_BENCH_SIZES=10000 pytest bench/test_bench_sinkhorn.py \\
        --benchmark-group-by=group --benchmark-columns=median,rounds
    OMP_NUM_THREADS=1 FASTGEN_BENCH_SIZES=100000 pytest bench/test_bench_sinkhorn.py \\
        -k "fastgen and not 64"
    FASTGEN_BENCH_SIZES=1000 pytest bench/test_bench_sinkhorn.py -q --benchmark-disable

Rounds: 3 at ``n <= 2000``, else 1 (one evaluation is seconds to minutes). ``extra_info``:
provider, ``n``, ``D``, the value, ``peak_mb`` (increase of the process's resident memory
during the timed calls above its level before: bench/conftest.py's ``peak_memory``), and for
fastgen the number of softmin passes and their bytes / FLOPs (see ``kernels/sinkhorn.py``).
Timings are never asserted; outside the timed region every provider's value must be finite
and fastgen's must equal GeomLoss's.
"""

from __future__ import annotations

import pytest
import torch

from fastgen.metrics import SamplesLoss
from fastgen.metrics import sinkhorn as ref

BLUR, SCALING = 0.05, 0.5
PEER_MAX_N = 20000
# POT runs plain iterations at the final eps; each is two dense log-sum-exps (seconds at
# n = 10^4), so a few suffice to price one.
POT_ITERATIONS = 10
DEFAULT_SIZES = (2000,)
PROVIDERS = ("fastgen", "geomloss", "pot")


def _points(n, d):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = torch.randn(n, d, generator=g) * 0.8 + 0.5
    return x, y


def _provider(name, x, y):
    """A call returning the value (and computing the gradient where the provider can)."""
    if name == "fastgen":
        loss = SamplesLoss(blur=BLUR, scaling=SCALING)
    elif name == "geomloss":
        geomloss = pytest.importorskip("geomloss", reason="geomloss is not installed")
        loss = geomloss.SamplesLoss("sinkhorn", blur=BLUR, scaling=SCALING, backend="tensorized")
    else:
        ot = pytest.importorskip("ot", reason="POT is not installed")
        n, m = x.shape[0], y.shape[0]
        a, b = torch.full((n,), 1 / n), torch.full((m,), 1 / m)

        def pot():
            cost = torch.cdist(x, y).square_().div_(2)
            return ot.sinkhorn2(
                a, b, cost, BLUR**2, method="sinkhorn_log", numItermax=POT_ITERATIONS
            )

        return pot

    def call():
        xs = x.clone().requires_grad_()
        value = loss(xs, y)
        (grad,) = torch.autograd.grad(value, xs)
        return value.detach(), grad

    return call


def _softmin_work(n, d):
    """Softmin passes of one evaluation and bytes / FLOPs of each (kernels/sinkhorn.py)."""
    x, y = _points(min(n, 2000), d)
    diameter = ref.max_diameter(x[None], y[None])
    passes = 4 * (len(ref.epsilon_schedule(2, diameter, BLUR, SCALING)) + 2)
    return passes, (2 * n * d + 2 * n) * 4, n * n * (2 * d + 8)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("d", [3, 64], ids=lambda d: f"D={d}")
def test_sinkhorn(benchmark, peak_memory, provider, d, n):
    if provider != "fastgen" and n > PEER_MAX_N:
        pytest.skip(f"{provider} needs N x M dense matrices: {16 * n * n / 2**30:.0f} GiB")
    if provider == "fastgen" and n > PEER_MAX_N and d != 3:
        pytest.skip("the large-N run is D = 3 only")
    x, y = _points(n, d)
    call = _provider(provider, x, y)
    benchmark.group = f"sinkhorn cpu D={d} n={n}"
    rounds = 3 if n <= 2000 else 1
    with peak_memory("cpu") as memory:  # the timed calls themselves: GeomLoss at 10^4 runs once
        result = benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=0)
    value = result[0] if isinstance(result, tuple) else result
    assert torch.isfinite(value).all()
    if provider == "fastgen" and n <= 2000:
        geomloss = pytest.importorskip("geomloss", reason="geomloss is not installed")
        expected = geomloss.SamplesLoss("sinkhorn", blur=BLUR, backend="tensorized")(x, y)
        assert value.item() == pytest.approx(expected.item(), rel=1e-4)
    passes, bytes_per, flops_per = _softmin_work(n, d)
    benchmark.extra_info.update(
        provider=provider,
        n=n,
        D=d,
        value=value.item(),
        peak_mb=memory.increase_mb,
        threads=torch.get_num_threads(),
        softmin_passes=passes if provider == "fastgen" else None,
        softmin_bytes=bytes_per if provider == "fastgen" else None,
        softmin_flops=flops_per if provider == "fastgen" else None,
    )
