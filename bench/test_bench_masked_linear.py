"""MADE forward+backward throughput: fastgen against nflows and zuko (the NSF training step
is ``test_bench_nsf.py``).

What is measured (float32, inputs ~ N(0, 1)):

* ``made fwd+bwd``: a MADE with ``features`` 8 or 64 inputs, ``hidden_features=256``, two
  residual blocks (6 masked layers), ``output_multiplier=23`` (the parameters of an 8-bin
  spline with linear tails), batch 4096: forward, then ``autograd.grad`` of a weighted sum of
  the outputs with respect to every parameter. nflows: ``nflows.transforms.made.MADE`` of the
  same architecture; zuko: ``zuko.nn.MaskedMLP`` with five hidden layers of 256 (a plain
  masked ReLU MLP, also 6 masked layers).

Providers ``fastgen-auto`` (Triton on CUDA, the reference on CPU), ``fastgen-torch``,
``nflows``, ``zuko``; a peer that does not import is skipped. ``extra_info`` has the
resolved backend and, for fastgen, ``tile_skip_fraction``: the fraction of weight tiles (and
so of matmul FLOPs) the Triton kernel skips for this model's masked layers (FLOP-weighted).

Timings are never asserted. Batch sizes come from ``FASTGEN_BENCH_SIZES`` when it is set
(e.g. ``FASTGEN_BENCH_SIZES=1000`` for a smoke run), else the sizes above. For the same-run
ratio table (providers interleaved round-robin, median of repeats) run::

    OMP_NUM_THREADS=1 python bench/test_bench_masked_linear.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import pytest
import torch

from fastgen.backend import KERNEL_DTYPES, resolve_backend
from fastgen.nn import MADE

PROVIDERS = ("fastgen-auto", "fastgen-torch", "nflows", "zuko")
MADE_FEATURES = (8, 64)
MADE_HIDDEN, MADE_BATCH, MULTIPLIER = 256, 4096, 23
NSF_FEATURES, NSF_HIDDEN, NUM_BINS = 8, 128, 8  # the MADE of one NSF layer (skip table)


def _batch(default: int) -> list[int]:
    text = os.environ.get("FASTGEN_BENCH_SIZES", "").strip()
    return [int(s) for s in text.split(",") if s.strip()] if text else [default]


def tile_skip_fraction(layers) -> float | None:
    """FLOP-weighted fraction of skipped weight tiles over masked layers (None without
    triton)."""
    try:
        from fastgen.kernels.masked_linear import tile_skip_fraction as fraction
    except ImportError:
        return None
    sizes = [layer.weight.numel() for layer in layers]
    skipped = [
        fraction(la.in_degrees, la.out_degrees, la.strict) * s
        for la, s in zip(layers, sizes, strict=True)
    ]
    return sum(skipped) / sum(sizes)


def build_made(provider: str, features: int, device: str):
    """``(module, call)`` where ``call(inputs)`` returns the conditioner outputs."""
    torch.manual_seed(0)
    if provider.startswith("fastgen"):
        backend = "torch" if provider == "fastgen-torch" else "auto"
        model = MADE(features, MADE_HIDDEN, output_multiplier=MULTIPLIER, backend=backend)
        return model.to(device), model
    if provider == "nflows":
        made = pytest.importorskip("nflows.transforms.made", reason="nflows is not installed")
        model = made.MADE(features, MADE_HIDDEN, output_multiplier=MULTIPLIER)
        return model.to(device), model
    zuko = pytest.importorskip("zuko", reason="zuko is not installed")
    adjacency = torch.ones(features, features, dtype=torch.bool).tril(-1)
    adjacency = adjacency.repeat_interleave(MULTIPLIER, dim=0)
    model = zuko.nn.MaskedMLP(adjacency, hidden_features=[MADE_HIDDEN] * 5)
    return model.to(device), model


def made_step(model, call, inputs, weights):
    params = [p for p in model.parameters() if p.requires_grad]

    def step():
        out = call(inputs)
        return torch.autograd.grad((out * weights).sum(), params)

    return step


def _resolved(provider, device):
    if not provider.startswith("fastgen"):
        return provider
    backend = "torch" if provider == "fastgen-torch" else "auto"
    return resolve_backend(backend, [torch.empty(0, device=device)], supported_dtypes=KERNEL_DTYPES)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("features", MADE_FEATURES, ids=lambda f: f"features={f}")
@pytest.mark.parametrize("batch", _batch(MADE_BATCH), ids=lambda b: f"batch={b}")
def test_made_forward_backward(benchmark, measure, device, provider, features, batch):
    model, call = build_made(provider, features, device)
    inputs = torch.randn(batch, features, device=device)
    weights = torch.randn(batch, features * MULTIPLIER, device=device)
    step = made_step(model, call, inputs, weights)
    assert all(g.isfinite().all() for g in step())
    benchmark.group = f"made {device} fwd+bwd features={features} batch={batch}"
    benchmark.extra_info.update(
        provider=provider,
        backend=_resolved(provider, device),
        device=device,
        batch=batch,
        features=features,
    )
    if provider.startswith("fastgen"):
        benchmark.extra_info["tile_skip_fraction"] = tile_skip_fraction(model.masked_layers())
    measure(step, elements=batch * 64)


def _same_run_table(repeats: int = 9, device: str = "cpu") -> str:
    """Every provider's median time per case, interleaved round-robin in one run, and the
    ratio nflows / provider (> 1: faster than nflows)."""
    cases = {}
    for features in MADE_FEATURES:
        inputs = torch.randn(MADE_BATCH, features, device=device)
        weights = torch.randn(MADE_BATCH, features * MULTIPLIER, device=device)
        cases[f"MADE fwd+bwd, features={features}, hidden=256, batch=4096"] = {
            p: made_step(*build_made(p, features, device), inputs, weights)
            for p in ("fastgen-torch", "nflows", "zuko")
        }
    lines = ["| case | provider | median (ms) | nflows / provider |", "|---|---|---|---|"]
    for case, steps in cases.items():
        times = {p: [] for p in steps}
        for step in steps.values():
            step()  # warm-up
        for _ in range(repeats):
            for provider, step in steps.items():
                start = time.perf_counter()
                step()
                times[provider].append(time.perf_counter() - start)
        medians = {p: statistics.median(t) for p, t in times.items()}
        for provider, median in medians.items():
            ratio = medians["nflows"] / median
            lines.append(f"| {case} | {provider} | {1e3 * median:.1f} | {ratio:.2f} |")
    return "\n".join(lines)


def _skip_table() -> str:
    lines = ["| model | masked layers | tile-skip fraction (FLOP-weighted) |", "|---|---|---|"]
    for features in MADE_FEATURES:
        made = MADE(features, MADE_HIDDEN, output_multiplier=MULTIPLIER)
        lines.append(
            f"| MADE features={features}, hidden=256, x23 outputs | "
            f"{len(made.masked_layers())} | "
            f"{tile_skip_fraction(made.masked_layers()):.3f} |"
        )
    made = MADE(NSF_FEATURES, NSF_HIDDEN, output_multiplier=3 * NUM_BINS - 1)
    fraction = tile_skip_fraction(made.masked_layers())
    lines.append(
        f"| NSF layer MADE features=8, hidden=128, x23 outputs | "
        f"{len(made.masked_layers())} | {fraction:.3f} |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}", file=sys.stderr)
    print(_skip_table())
    print()
    print(_same_run_table())
