"""The ``fastgen`` command. ``fastgen demo --help`` lists the demo's options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fastgen._checks import check_number, check_seed

DEFAULT_STEPS = 2000


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="fastgen", description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train and evaluate a neural spline flow and a WGAN-GP on embedded muon bundles",
        description="Train a conditional neural spline flow and a conditional WGAN-GP on "
        "KM3NeT atmospheric muon bundles, evaluate them on held-out bundles against a "
        "Gaussian baseline, print the results table and write results.json and figures.",
    )
    demo.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help=f"flow optimiser steps and GAN generator steps (default {DEFAULT_STEPS})",
    )
    demo.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    demo.add_argument(
        "--backend",
        choices=("auto", "torch", "triton"),
        default="auto",
        help="fastgen's hot paths: Triton kernels, PyTorch, or auto (default)",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("fastgen-demo"),
        help="output directory (default ./fastgen-demo)",
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="data split and training seed (an int >= 0)"
    )
    return main


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        check_number("--steps", args.steps, minimum=1, integer=True)
        check_seed("--seed", args.seed, allow_none=False)
    except ValueError as error:
        parser().error(str(error))
    import torch

    from fastgen.backend import KERNEL_DTYPES, resolve_backend

    if args.device == "cuda" and not torch.cuda.is_available():
        parser().error("--device cuda: no CUDA device is available")
    try:
        resolve_backend(
            args.backend, (torch.empty(0, device=args.device),), supported_dtypes=KERNEL_DTYPES
        )
    except ValueError as error:
        parser().error(f"--backend {args.backend}: {error}")
    if args.out.exists() and not args.out.is_dir():
        parser().error(f"--out {args.out}: exists and is not a directory")

    try:
        from rich.console import Console

        from fastgen import demo
        from fastgen.demo import report
    except ImportError as error:
        print(
            f"fastgen demo needs the demo extra (pip install 'fastgen[demo]'): {error}",
            file=sys.stderr,
        )
        return 1

    console = Console()
    summary = demo.run(
        args.steps,
        args.device,
        args.backend,
        args.out,
        args.seed,
        progress=report.Progress(console=console),
    )
    console.print(report.table(summary))
    backends = ", ".join(f"{k}: {v}" for k, v in summary["backends"].items())
    console.print(f"hot paths ran on: {backends}")
    console.print(f"wall time {summary['wall_seconds']:.0f} s; results and figures in {args.out}")
    if not demo.all_finite(summary):
        console.print("[red]some metrics are not finite[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
