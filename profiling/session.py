"""What the training-loop profiles share: options, the ``torch.profiler`` run, the summary.

A profile runs a few warm-up steps, then ``steps`` steps under ``torch.profiler`` (CPU, plus
CUDA on a GPU), exports a Chrome trace (open it in ``chrome://tracing`` or Perfetto) and
prints the top ops and how the time divides between the ranges the training loop and the
library open: ``train.*`` (forward, loss, backward, optimizer step, validation), ``evaluate.*``
and ``fastgen.*`` (the hot paths: splines, masked linear layers, gradient penalty, ...).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

WARMUP_STEPS = 2


def setup(prog: str, description: str, argv):
    """The options (parsed and checked), the demo's train and test splits as
    ``(latent, conditions)`` on the device, and a seeded CPU generator for the minibatches."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--steps", type=int, default=20, help="profiled steps (default 20)")
    parser.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--backend", choices=("auto", "torch", "triton"), default="auto")
    parser.add_argument(
        "--trace",
        type=Path,
        default=Path(f"{prog.split('.')[-1]}.trace.json"),
        help="Chrome trace output path",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch < 1:
        parser.error("--steps and --batch must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    from fastgen.demo import TAIL_BOUND
    from fastgen.demo import data as demo_data

    torch.manual_seed(args.seed)
    _, train_split, held_out = demo_data.load(args.seed, TAIL_BOUND)  # held out: validation
    splits = [
        (split.latent.to(args.device), split.conditions.to(args.device))
        for split in (train_split, held_out)
    ]
    return args, *splits, torch.Generator().manual_seed(args.seed)


def range_totals(events, device: str) -> dict[str, float]:
    """Microseconds spent in each named range (``train.*``, ``evaluate.*``, ``fastgen.*``),
    summed over calls; device time on CUDA, CPU time otherwise."""
    totals = {}
    for event in events:
        if event.key.split(".")[0] in ("train", "evaluate", "fastgen"):
            time = event.device_time_total if device == "cuda" else event.cpu_time_total
            totals[event.key] = time
    return totals


def run(step: Callable[[], None], finish: Callable[[], None], args) -> dict[str, float]:
    """Profile ``args.steps`` calls of ``step`` then one of ``finish`` (the evaluation);
    prints the tables, writes the trace; returns the range totals in microseconds."""
    for _ in range(WARMUP_STEPS):
        step()
    activities = [ProfilerActivity.CPU]
    if args.device == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
        finish()
        if args.device == "cuda":
            torch.cuda.synchronize()
    args.trace.parent.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(args.trace))
    events = prof.key_averages()
    sort = "self_cuda_time_total" if args.device == "cuda" else "self_cpu_time_total"
    print(events.table(sort_by=sort, row_limit=15))
    totals = range_totals(events, args.device)
    phases = {k: v for k, v in totals.items() if not k.startswith("fastgen.")}
    whole = sum(phases.values())
    print(f"{'range':40s} {'ms':>10s} {'share':>7s}")
    for key, value in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{key:40s} {value / 1e3:10.2f} {value / whole:7.1%}")
    hot = sum(v for k, v in totals.items() if k.startswith("fastgen."))
    print(f"fastgen hot paths: {hot / whole:.1%} of the time in train.* and evaluate.* ranges")
    print(f"Chrome trace: {args.trace}")
    return totals
