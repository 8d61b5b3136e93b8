"""Neural-spline-flow training step: fastgen against nflows and zuko, eager and compiled.

What is measured: one Adam step (``zero_grad``, ``loss = -log_prob(x).mean()``, ``backward``,
``step``) of a 5-layer autoregressive rational-quadratic spline flow on 8 features (MADE
conditioners with hidden 128 and 2 residual blocks, 8 bins, linear tails at 3, reverse
permutations between layers), float32, inputs ~ N(0, 1), batch 2048:

* ``fastgen``: :class:`fastgen.flows.NeuralSplineFlow`;
* ``nflows``: the same flow assembled from nflows classes
  (``MaskedPiecewiseRationalQuadraticAutoregressiveTransform``, ``ReversePermutation``);
* ``zuko``: ``zuko.flows.NSF(8, transforms=5, bins=8, hidden_features=[128] * 5)`` (a plain
  masked MLP of 5 hidden layers in place of the residual MADE).

The three have the same number of parameters, 454,680 (``extra_info["parameters"]``; the
bench fails if they drift apart). Providers ``fastgen-auto`` (Triton on CUDA, the reference
on CPU), ``nflows``, ``zuko`` and, for each, ``+compile``: the loss ``-log_prob(x).mean()``
under ``torch.compile`` (default inductor, ``dynamic=False``; backward compiled with it,
the optimizer step eager). The first step, which compiles, is outside the timed rounds; its
excess over the median is ``extra_info["compile_s"]``. A peer that does not import is
skipped. The intra-op threads follow :func:`fastgen.threads.set_threads` for the
conditioner's output (``batch * 8 * 23`` values: one thread at batch 2048);
``FASTGEN_NUM_THREADS`` fixes them. Timings are never asserted.

Run::

    pytest bench/test_bench_nsf.py --benchmark-json nsf.json && python -m bench.report nsf.json
    FASTGEN_NUM_THREADS=2 python -m bench.test_bench_nsf   # same-run table, interleaved
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import pytest
import torch

from fastgen.flows import NeuralSplineFlow
from fastgen.threads import set_threads

FEATURES, HIDDEN, BATCH, LAYERS, NUM_BINS, TAIL_BOUND = 8, 128, 2048, 5, 8, 3.0
PARAMETERS = 454_680
PEERS = ("fastgen-auto", "nflows", "zuko")
PROVIDERS = tuple(p + suffix for p in PEERS for suffix in ("", "+compile"))


def _batches() -> list[int]:
    text = os.environ.get("FASTGEN_BENCH_SIZES", "").strip()
    return [int(s) for s in text.split(",") if s.strip()] if text else [BATCH]


def build_flow(provider: str, device: str):
    """``(module, log_prob)`` of the flow of the training step (eager)."""
    torch.manual_seed(0)
    if provider.startswith("fastgen"):
        backend = "torch" if provider == "fastgen-torch" else "auto"
        flow = NeuralSplineFlow(
            FEATURES,
            num_layers=LAYERS,
            hidden_features=HIDDEN,
            num_bins=NUM_BINS,
            tail_bound=TAIL_BOUND,
            backend=backend,
        )
        return flow.to(device), flow.log_prob
    if provider == "nflows":
        pytest.importorskip("nflows", reason="nflows is not installed")
        from nflows import distributions, flows, transforms

        layers = []
        for i in range(LAYERS):
            layers.append(
                transforms.MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                    FEATURES,
                    HIDDEN,
                    num_bins=NUM_BINS,
                    tails="linear",
                    tail_bound=TAIL_BOUND,
                )
            )
            if i < LAYERS - 1:
                layers.append(transforms.ReversePermutation(FEATURES))
        flow = flows.Flow(
            transforms.CompositeTransform(layers), distributions.StandardNormal([FEATURES])
        )
        return flow.to(device), flow.log_prob
    zuko = pytest.importorskip("zuko", reason="zuko is not installed")
    flow = zuko.flows.NSF(
        FEATURES, transforms=LAYERS, bins=NUM_BINS, hidden_features=[HIDDEN] * 5
    ).to(device)
    return flow, lambda x: flow().log_prob(x)


def training_step(provider: str, inputs: torch.Tensor):
    """``(module, step)``: ``step()`` runs one Adam step and returns the loss."""
    compiled = provider.endswith("+compile")
    model, log_prob = build_flow(provider.removesuffix("+compile"), str(inputs.device))

    def loss_fn(x):
        return -log_prob(x).mean()

    if compiled:
        torch._dynamo.reset()  # no earlier cache or recompile limit counts
        loss_fn = torch.compile(loss_fn, dynamic=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad()
        loss = loss_fn(inputs)
        loss.backward()
        optimizer.step()
        return loss

    return model, step


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("batch", _batches(), ids=lambda b: f"batch={b}")
def test_nsf_training_step(benchmark, measure, device, provider, batch):
    threads = set_threads(batch * FEATURES * (3 * NUM_BINS - 1))  # before compiling
    inputs = torch.randn(batch, FEATURES, device=device)
    model, step = training_step(provider, inputs)
    assert _count(model) == PARAMETERS, f"{provider}: {_count(model)} parameters"
    start = time.perf_counter()
    assert step().isfinite()
    first_step = time.perf_counter() - start
    benchmark.group = f"nsf {device} train step batch={batch}"
    benchmark.extra_info.update(
        provider=provider, device=device, batch=batch, parameters=PARAMETERS, threads=threads
    )
    median = measure(step, elements=batch * 256)
    if median and provider.endswith("+compile"):
        benchmark.extra_info["compile_s"] = max(0.0, first_step - median)


def same_run_table(repeats: int = 7, device: str = "cpu") -> str:
    """Every provider's median step time, interleaved round-robin in one run, the ratios
    against nflows and zuko+compile, and each compiled provider's compile time."""
    inputs = torch.randn(BATCH, FEATURES, device=device)
    steps, compile_s = {}, {}
    for provider in PROVIDERS:
        _, step = training_step(provider, inputs)
        start = time.perf_counter()
        step()
        compile_s[provider] = time.perf_counter() - start
        steps[provider] = step
    times = {p: [] for p in steps}
    for _ in range(repeats):
        for provider, step in steps.items():
            start = time.perf_counter()
            step()
            times[provider].append(time.perf_counter() - start)
    medians = {p: statistics.median(t) for p, t in times.items()}
    lines = [
        "| provider | median (ms) | nflows / provider | zuko+compile / provider | compile (s) |",
        "|---|---|---|---|---|",
    ]
    for provider, median in medians.items():
        first = compile_s[provider] - median
        compile_text = f"{first:.1f}" if provider.endswith("+compile") else ""
        lines.append(
            f"| {provider} | {1e3 * median:.1f} | {medians['nflows'] / median:.2f} | "
            f"{medians['zuko+compile'] / median:.2f} | {compile_text} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from bench.report import cpu_name

    threads = set_threads(BATCH * FEATURES * (3 * NUM_BINS - 1))
    print(
        f"NSF train step, 5 AR RQS layers, features={FEATURES}, hidden={HIDDEN}, "
        f"batch={BATCH}, {PARAMETERS:,} parameters; CPU: {cpu_name()}; torch {torch.__version__}, "
        f"{threads} intra-op thread(s)",
        file=sys.stderr,
    )
    print(same_run_table())
