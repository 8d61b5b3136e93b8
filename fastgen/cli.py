"""The ``fastgen`` command. ``fastgen demo --help`` and ``fastgen evaluate --help`` list the
subcommands' options."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from fastgen._checks import check_number, check_seed

DEFAULT_STEPS = 2000
VALIDATION_INTERVAL = 100  # fastgen.demo.experiment.VALIDATION_INTERVAL, without importing torch


def _seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``: distinct ints >= 0."""
    try:
        seeds = tuple(int(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers >= 0, got {text!r}"
        ) from None
    if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"must be distinct integers >= 0, got {text!r}")
    return seeds


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="fastgen", description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train and evaluate a neural spline flow, a WGAN-GP and a VAE on embedded muon "
        "bundles",
        description="Train a conditional neural spline flow, a conditional WGAN-GP (several "
        "trainings, the checkpoint kept chosen on validation bundles) and a conditional VAE on "
        "KM3NeT atmospheric muon bundles, evaluate them on held-out bundles against a Gaussian "
        "baseline, print the results table (mean ± std over seeds) and write results.json and "
        "figures.",
    )
    demo.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help=f"flow and VAE optimiser steps, GAN generator steps (default {DEFAULT_STEPS})",
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
        "--seeds",
        type=_seeds,
        default=(0,),
        help="comma-separated seeds, one run each: data split and training (default 0)",
    )
    demo.add_argument(
        "--validation-interval",
        type=int,
        default=VALIDATION_INTERVAL,
        help=f"training steps between validation scores (default {VALIDATION_INTERVAL})",
    )
    _add_evaluate_parser(commands)
    _add_export_parser(commands)
    return main


def _add_evaluate_parser(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="compare generated samples with real ones (fastgen.evaluation.evaluate)",
        description="Compare GENERATED samples with REAL ones: per-feature Wasserstein, KS and "
        "separation power, Sinkhorn, Frechet, KID, FPD/KPD, precision/recall/density/coverage "
        "and a classifier two-sample test, with uncertainties. Files: .npy, .npz "
        "(file.npz:ARRAY), .csv (optional header row), HDF5 (file.h5:DATASET). Writes "
        "report.json, report.md and PNG figures into --out. Exit status 2 on bad input.",
    )
    evaluate.add_argument("real", help="reference samples, (N, D)")
    evaluate.add_argument("generated", help="generated samples, (M, D)")
    evaluate.add_argument(
        "--conditions",
        nargs="+",
        metavar="FILE",
        help="conditions of each row: one file shared by both sets (N = M), or two files "
        "(real's, then generated's); they enter the classifier test",
    )
    evaluate.add_argument(
        "--columns", nargs="+", metavar="COLUMN", help="columns to compare, by name or index"
    )
    evaluate.add_argument(
        "--metrics",
        nargs="+",
        metavar="METRIC",
        help="a subset of: wasserstein ks separation_power frechet kid fpd kpd sinkhorn prdc "
        "c2st (default: all)",
    )
    evaluate.add_argument(
        "--seed", type=int, default=0, help="every random draw (an int >= 0; default 0)"
    )
    evaluate.add_argument(
        "--bootstrap", type=int, default=20, help="bootstrap resamplings (0: none; default 20)"
    )
    evaluate.add_argument("--nearest-k", type=int, default=5, help="PRDC's k (default 5)")
    evaluate.add_argument(
        "--backend", choices=("auto", "torch", "triton"), default="auto", help="hot paths"
    )
    evaluate.add_argument(
        "--out",
        type=Path,
        default=Path("fastgen-evaluation"),
        help="output directory (default ./fastgen-evaluation)",
    )
    evaluate.set_defaults(command_parser=evaluate)


def _prepare_out(out: Path, error) -> None:
    """Create ``--out`` and check that a file can be written in it, before any training or
    evaluation, so that no run loses its results at the end. ``error(message)`` exits with
    status 2. A real file is written (``os.access`` ignores read-only mounts and ACLs, and
    root passes it everywhere)."""
    if out.exists() and not out.is_dir():
        error(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as problem:  # a file in the way, no permission, read-only file system
        error(f"--out {out}: cannot write results there ({problem.strerror or problem})")


def _evaluate(args) -> int:
    """``fastgen evaluate``: read, check, evaluate with a progress bar, write, print."""
    from rich.console import Console
    from rich.progress import Progress

    from fastgen.evaluation import METRICS, evaluate
    from fastgen.evaluation.io import InputError, read_samples

    command = args.command_parser  # its error() prints the usage and exits with status 2
    try:
        check_seed("--seed", args.seed, allow_none=False)
        check_number("--bootstrap", args.bootstrap, minimum=0, integer=True)
        check_number("--nearest-k", args.nearest_k, minimum=1, integer=True)
    except ValueError as error:
        command.error(str(error))
    metrics = tuple(args.metrics or METRICS)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        command.error(f"--metrics: unknown {unknown}; choose from {list(METRICS)}")
    if args.conditions is not None and len(args.conditions) > 2:
        command.error(f"--conditions: one or two files, got {len(args.conditions)}")
    _prepare_out(args.out, command.error)
    try:
        real, names = read_samples(args.real, args.columns)
        generated, generated_names = read_samples(args.generated, args.columns)
        conditions = [read_samples(spec)[0] for spec in args.conditions or ()]
    except InputError as error:
        command.error(str(error))
    if real.shape[1] != generated.shape[1]:
        command.error(
            f"REAL has {real.shape[1]} columns {names}, GENERATED has {generated.shape[1]} "
            f"{generated_names}; select shared ones with --columns"
        )
    if names != generated_names and not all(n.isdigit() for n in names + generated_names):
        command.error(f"column names differ: REAL {names}, GENERATED {generated_names}")
    dtype = real.dtype if real.dtype == generated.dtype else "float64"
    real, generated = real.astype(dtype), generated.astype(dtype)
    conditions = [c.astype(dtype) for c in conditions]
    if len(conditions) == 1:
        conditions = conditions[0]
    console = Console()
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(metrics))
        try:
            report = evaluate(
                real,
                generated,
                conditions=conditions if len(conditions) else None,
                feature_names=names,
                metrics=metrics,
                seed=args.seed,
                nearest_k=args.nearest_k,
                bootstrap=args.bootstrap,
                backend=args.backend,
                progress=lambda name: bar.update(task, advance=1, description=name),
            )
        except (TypeError, ValueError) as error:
            command.error(str(error))
    for table in report.tables():
        console.print(table)
    paths = report.save(args.out)
    console.print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


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
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "export":
        return _export(args)
    try:
        check_number("--steps", args.steps, minimum=1, integer=True)
        check_number("--validation-interval", args.validation_interval, minimum=1, integer=True)
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
    _prepare_out(args.out, parser().error)

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
    result = demo.run(
        args.steps,
        args.device,
        args.backend,
        args.out,
        args.seeds,
        args.validation_interval,
        progress=report.Progress(console=console),
    )
    console.print(report.table(result))
    backends = ", ".join(f"{k}: {v}" for k, v in result.settings["backends"].items())
    console.print(f"hot paths ran on: {backends}")
    console.print(f"wall time {result.wall_seconds:.0f} s; results and figures in {args.out}")
    if not result.all_finite():
        console.print("[red]some metrics are not finite[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
