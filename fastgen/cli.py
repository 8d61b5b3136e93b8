"""The ``fastgen`` command. ``fastgen demo --help`` lists the demo's options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_STEPS = 2000


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


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
        type=_positive_int,
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
    demo.add_argument("--seed", type=_int, default=0, help="data split and training seed")
    _add_export_parser(commands)
    return main


def _add_export_parser(commands) -> None:
    from fastgen.export import DEFAULT_OPSET, METHODS

    export = commands.add_parser(
        "export",
        help="write a saved model's sampler or log-density as an ONNX graph",
        description="Export a checkpoint written by fastgen.export.save_checkpoint (a flow, a "
        "ConditionalVAE or a GAN generator) to one float32 ONNX file with a dynamic batch size, "
        "and print its input and output names and shapes.",
    )
    export.add_argument("checkpoint", type=Path, help="file written by save_checkpoint")
    export.add_argument("output", type=Path, help="the .onnx file to write")
    export.add_argument("--method", choices=METHODS, default="sample")
    # Integers are checked by to_onnx, whose errors name the argument.
    export.add_argument("--context-features", type=int, help="for models that do not declare it")
    export.add_argument(
        "--noise-features", type=int, help="a generator's noise size, if not declared"
    )
    export.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )


def _export(args) -> int:
    """``fastgen export``: argument errors exit through the parser, naming the option."""
    from fastgen.export import load_checkpoint, to_onnx

    try:
        model = load_checkpoint(args.checkpoint)
    except (OSError, ValueError, ImportError, RuntimeError) as error:
        parser().error(f"checkpoint {args.checkpoint}: {error}")
    try:
        graph = to_onnx(
            model,
            args.output,
            method=args.method,
            context_features=args.context_features,
            noise_features=args.noise_features,
            opset=args.opset,
        )
    except (TypeError, ValueError) as error:
        parser().error(str(error))
    for kind, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for name, shape in tensors:
            print(f"{kind} {name} ({', '.join(map(str, shape))}{',' * (len(shape) == 1)})")
    print(f"{graph.num_nodes} nodes written to {graph.path}")
    return 0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command == "export":
        return _export(args)
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
        print(f"fastgen demo needs the demo extra (pip install 'fastgen[demo]'): {error}",
              file=sys.stderr)  # fmt: skip
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
