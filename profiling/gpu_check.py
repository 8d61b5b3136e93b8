"""Every Triton kernel checked on one CUDA GPU in one command, within a time budget.

``python -m profiling.gpu_check [--out DIR] [--budget-s N] [--dry-run]`` runs, in this order,
as much as fits in the budget (default 480 s, wall time including Triton's JIT compiles):

a. ``kernel-tests``: the kernel test files under pytest (``-n 8`` when pytest-xdist is
   installed), compiled on the GPU;
b. ``correctness``: every kernel at GPU scale against the float64 reference, outputs
   poisoned with NaN before each launch: spline (10^6 elements, both tails, K = 8 and 64,
   forward / inverse / backward, float32 / float16 / bfloat16), masked linear (MADE layers,
   batch 4099, float32 IEEE and TF32, float16, bfloat16), penalty (tabular and image
   shapes), softmin (D = 3, 64, 1024), MMD (5000 x 2048), fused GEMM and ``sqrtm``
   (n = 2048). An error is judged by the reference's own in the same precision:
   ``max|out - ref64| / (1 + |ref64|) <= 50 max|ref - ref64| / (1 + |ref64|) + 1e-3``;
c. ``compile``: ``torch.compile`` (aot_eager, then inductor) of each Triton entry point,
   forward and backward, against eager;
d. ``limits``: grids past 65,535 on axes 1 / 2 and offsets past 2^31 elements, each in its
   own subprocess (an illegal address poisons the CUDA context);
e. ``timings``: CUDA-event medians of Triton, the PyTorch reference on the GPU and the peers
   that are installed (nflows, GeomLoss tensorized, a hand-written WGAN-GP), with achieved
   GB/s and FLOP/s next to the floor of the fused minimum from :mod:`profiling.traffic`.

Each step has an estimated cost; a step (or a case inside it) that would end past the budget
is skipped and listed as such. The report is written to ``DIR/gpu_check.json`` and
``DIR/gpu_check.md`` (default ``DIR``: ``gpu_check-<UTC time>``).

``--dry-run`` runs the same code paths on the CPU under Triton's interpreter at tiny sizes
(pytest collects instead of running; compile capture uses fake tensors and a stub sm_90
target, :mod:`profiling.compile_capture`, since the interpreter cannot run under tracing);
CI runs it. It needs no GPU.

On the GPU image (torch, triton, numpy, scipy, pytest, pytest-xdist and hypothesis present)
it runs from a source checkout: ``pip install --no-deps -e .`` then the command above. The
peers are optional; to time them, carry their wheels (``pip download nflows zuko geomloss
pot --no-deps -d wheels`` on a machine with a network, then ``pip install --no-deps
wheels/*``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from profiling import module_command

ROOT = Path(__file__).resolve().parents[1]
KERNEL_TEST_FILES = (
    "tests/test_splines_triton.py",
    "tests/test_masked_linear_triton.py",
    "tests/test_gradient_penalty_triton.py",
    "tests/test_sinkhorn_triton.py",
    "tests/test_mmd.py",
    "tests/test_newton_schulz.py",
)
# An H200's measured copy bandwidth is about 4.3 TB/s, its fp32 FMA rate 67 TFLOP/s.
BANDWIDTH_TBS = 4.3
FLOPS_TFLOPS = 67.0
# The worst-error criterion of tests/tolerances.py.
WORST_FACTOR, WORST_ATOL = 50.0, 1e-3


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Problem sizes: the GPU run's, or the dry run's (tiny, for the interpreter)."""

    spline_elements: int
    spline_bins: tuple[int, ...]
    spline_dtypes: tuple[str, ...]
    made_batch: int
    made_features: tuple[int, int]  # (inputs, hidden units)
    penalty_shapes: tuple[tuple[int, ...], ...]
    softmin_points: tuple[tuple[int, int], ...]  # (D, points per cloud)
    mmd_shape: tuple[int, int]
    gemm_n: int
    repeats: int  # timing repetitions


GPU_SIZES = Sizes(
    spline_elements=10**6,
    spline_bins=(8, 64),
    spline_dtypes=("float32", "float16", "bfloat16"),
    made_batch=4099,
    made_features=(64, 512),
    penalty_shapes=((4099, 64), (512, 3, 64, 64)),
    softmin_points=((3, 4096), (64, 4096), (1024, 1024)),
    mmd_shape=(5000, 2048),
    gemm_n=2048,
    repeats=20,
)
DRY_SIZES = Sizes(
    spline_elements=37,
    spline_bins=(3,),
    spline_dtypes=("float32", "bfloat16"),
    made_batch=19,
    made_features=(4, 16),
    penalty_shapes=((5, 3), (2, 3, 4, 4)),
    softmin_points=((3, 9), (17, 5)),
    mmd_shape=(11, 5),
    gemm_n=8,
    repeats=1,
)


class Budget:
    """Wall-clock budget: ``fits(seconds)`` says whether a piece of work estimated at
    ``seconds`` ends before the deadline."""

    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.deadline = self.start + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def fits(self, seconds: float) -> bool:
        return seconds <= self.left()


@dataclasses.dataclass
class Context:
    device: str
    dry_run: bool
    sizes: Sizes
    budget: Budget
    out: Path
    skipped: list = dataclasses.field(default_factory=list)

    def run_case(self, step: str, name: str, estimate_s: float, fn: Callable[[], dict]) -> dict:
        """Run one case if its estimate fits the budget; a failure is recorded, not raised."""
        if not self.budget.fits(estimate_s):
            self.skipped.append(
                f"{step}: {name} (estimated {estimate_s:.0f} s, "
                f"{max(0.0, self.budget.left()):.0f} s left)"
            )
            return {"case": name, "status": "skipped"}
        started = time.monotonic()
        try:
            result = {"case": name, **fn()}
            result.setdefault("status", "pass")
        except Exception as error:  # noqa: BLE001 (the report names every failure)
            result = {"case": name, "status": "error", "error": _describe(error)}
        result["seconds"] = round(time.monotonic() - started, 2)
        return result

    def synchronize(self):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()


def _describe(error: BaseException) -> str:
    lines = traceback.format_exception_only(type(error), error)
    return "".join(lines).strip()[-2000:]


# --------------------------------------------------------------------------------------------
# comparison with the reference


def scaled_error(actual, ref64) -> float:
    """``max |actual - ref64| / (1 + |ref64|)``; NaN where exactly one of them is NaN."""
    import torch

    actual, ref64 = actual.double(), ref64.double()
    errors = (actual - ref64).abs() / (1 + ref64.abs())
    both = actual.isnan() & ref64.isnan()
    one = actual.isnan() != ref64.isnan()
    errors = errors.masked_fill(both, 0.0).masked_fill(one, float("nan"))
    return torch.nan_to_num(errors, posinf=float("inf")).max().item() if errors.numel() else 0.0


def judge(name: str, actual, ref64, ref_same) -> dict:
    """The error of ``actual`` against ``ref64`` next to the same-precision reference's."""
    error, ref_error = scaled_error(actual, ref64), scaled_error(ref_same, ref64)
    ok = error == error and error <= WORST_FACTOR * ref_error + WORST_ATOL
    return {"output": name, "error": error, "reference_error": ref_error, "pass": ok}


def collect(rows: list[dict]) -> dict:
    return {"status": "pass" if all(r["pass"] for r in rows) else "fail", "outputs": rows}


@contextlib.contextmanager
def poisoned_outputs():
    """Every tensor a kernel launcher allocates (``new_empty``) starts as NaN, as in the
    tests: an element a kernel forgot to write fails the comparison."""
    import torch

    from profiling.aot import kernel_modules

    def nan_empty(shape, dtype, device):
        return torch.full(shape, float("nan"), dtype=dtype, device=device)

    patched = [m for m in kernel_modules() if hasattr(m, "new_empty")]
    originals = [m.new_empty for m in patched]
    for module in patched:
        module.new_empty = nan_empty
    try:
        yield
    finally:
        for module, original in zip(patched, originals, strict=True):
            module.new_empty = original


def _dtype(name: str):
    import torch

    return getattr(torch, name)


def _grads(outputs, inputs, weights):
    """Gradients of ``sum(w * o)`` (fixed random upstream weights) with respect to
    ``inputs``; None for inputs the outputs do not depend on."""
    import torch

    total = sum((w.double() * o.double()).sum() for o, w in zip(outputs, weights, strict=True))
    return torch.autograd.grad(total, inputs, allow_unused=True)


def _three_ways(fn, inputs, dtype, upstream=None):
    """``fn(backend, *inputs)`` three times: Triton in ``dtype``, the reference in float64 and
    in ``dtype``; returns [(outputs, gradients)] for each (gradients when ``upstream``)."""
    import torch

    runs = []
    for backend, run_dtype in (("triton", dtype), ("torch", torch.float64), ("torch", dtype)):
        leaves = [t.detach().to(run_dtype).requires_grad_(upstream is not None) for t in inputs]
        with poisoned_outputs():
            outputs = fn(backend, *leaves)
            grads = _grads(outputs, leaves, upstream) if upstream is not None else ()
        runs.append((outputs, grads))
    return runs


def _judge_runs(label, names, runs, grad_names=()) -> list[dict]:
    (out, grads), (out64, grads64), (same, grads_same) = runs
    rows = [
        judge(f"{label} {name}", a, b, c)
        for name, a, b, c in zip(names, out, out64, same, strict=True)
    ]
    rows += [
        judge(f"{label} d/d{name}", a, b, c)
        for name, a, b, c in zip(grad_names, grads, grads64, grads_same, strict=True)
        if a is not None
    ]
    return rows


# --------------------------------------------------------------------------------------------
# b. correctness at GPU scale


def check_spline(ctx: Context, tails: str, num_bins: int, dtype_name: str) -> dict:
    import torch

    from fastgen.splines import unconstrained_rational_quadratic_spline as spline

    n, dtype = ctx.sizes.spline_elements, _dtype(dtype_name)
    generator = torch.Generator(ctx.device).manual_seed(num_bins)

    def draw(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=generator, device=ctx.device)

    params = (
        draw(n, num_bins),
        draw(n, num_bins),
        draw(n, num_bins - 1 if tails == "linear" else num_bins),
    )
    # 1.2 B: some inputs in the tails
    inputs = 2.4 * torch.rand(n, generator=generator, device=ctx.device) - 1.2
    upstream = (draw(n), draw(n))
    rows = []
    for inverse in (False, True):

        def fn(backend, x, w, h, d, inverse=inverse):
            return spline(x, w, h, d, inverse=inverse, tails=tails, tail_bound=1.0, backend=backend)

        runs = _three_ways(fn, (inputs, *params), dtype, upstream)
        label = "inverse" if inverse else "forward"
        rows += _judge_runs(
            label, ("outputs", "logabsdet"), runs, ("inputs", "widths", "heights", "derivatives")
        )
    return collect(rows)


def _made_degrees(features: int, hidden: int, device):
    """MADE degrees: inputs 1..D, hidden units sorted over 1..D-1, outputs 1..D."""
    import torch

    inputs = torch.arange(1, features + 1, device=device)
    hidden_deg = (torch.arange(hidden, device=device) % max(1, features - 1) + 1).sort().values
    return inputs, hidden_deg


def check_masked_linear(ctx: Context, mode: str) -> dict:
    import torch

    from fastgen.nn.masked_linear import masked_linear

    features, hidden = ctx.sizes.made_features
    batch = ctx.sizes.made_batch
    dtype = torch.float32 if mode.startswith("float32") else _dtype(mode)
    in_deg, hidden_deg = _made_degrees(features, hidden, ctx.device)
    generator = torch.Generator(ctx.device).manual_seed(1)
    layers = (  # (name, in degrees, out degrees, strict, activation)
        ("input layer", in_deg, hidden_deg, False, "relu"),
        ("hidden layer", hidden_deg, hidden_deg, False, "gelu"),
        ("output layer", hidden_deg, in_deg, True, None),
    )
    rows = []
    tf32 = mode == "float32 tf32"
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        for name, din, dout, strict, activation in layers:
            x = torch.randn(batch, len(din), generator=generator, device=ctx.device)
            weight = torch.randn(len(dout), len(din), generator=generator, device=ctx.device)
            weight /= len(din) ** 0.5
            bias = torch.randn(len(dout), generator=generator, device=ctx.device)
            upstream = (torch.randn(batch, len(dout), generator=generator, device=ctx.device),)

            def fn(backend, x, w, b, din=din, dout=dout, strict=strict, activation=activation):
                return (masked_linear(x, w, b, din, dout, strict, activation, backend),)

            runs = _three_ways(fn, (x, weight, bias), dtype, upstream)
            rows += _judge_runs(name, ("y",), runs, ("input", "weight", "bias"))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return collect(rows)


def check_penalty(ctx: Context, shape: tuple[int, ...], dtype_name: str) -> dict:
    import torch

    from fastgen.gan import interpolate, penalty_from_gradients

    generator = torch.Generator(ctx.device).manual_seed(2)
    real, fake, grads = (
        torch.randn(*shape, generator=generator, device=ctx.device) for _ in range(3)
    )
    eps = torch.rand(shape[0], generator=generator, device=ctx.device)
    upstream = (torch.randn(*shape, generator=generator, device=ctx.device),)

    def interp(backend, real, fake):
        return (interpolate(real, fake, eps.to(real.dtype), backend=backend),)

    def penalty(backend, g):
        return (penalty_from_gradients(g, weight=10.0, backend=backend),)

    dtype = _dtype(dtype_name)
    rows = _judge_runs(
        "interpolate",
        ("x_hat",),
        _three_ways(interp, (real, fake), dtype, upstream),
        ("real", "fake"),
    )
    one = (torch.ones((), device=ctx.device),)
    rows += _judge_runs(
        "penalty", ("value",), _three_ways(penalty, (grads,), dtype, one), ("gradients",)
    )
    return collect(rows)


def check_softmin(ctx: Context, dim: int, points: int, p: int) -> dict:
    import torch
    from fastgen.kernels.sinkhorn import softmins_triton

    from fastgen.reference.sinkhorn import PAIRS_DEBIASED, softmins_reference

    generator = torch.Generator(ctx.device).manual_seed(3)
    x = torch.randn(2, points, dim, generator=generator, device=ctx.device)
    y = torch.randn(2, points + 1, dim, generator=generator, device=ctx.device) + 0.5
    sizes = (points + 1, points, points, points + 1)  # h over the columns of each pair
    hs = [torch.randn(2, s, generator=generator, device=ctx.device) for s in sizes]
    eps = 0.1 * dim  # the scale of the squared distances
    upstream = [
        torch.randn(2, s, generator=generator, device=ctx.device)
        for s in (points, points + 1, points, points + 1)
    ]

    def fn(backend, x, y):
        softmins = softmins_triton if backend == "triton" else softmins_reference
        return softmins(x, y, eps, p, PAIRS_DEBIASED, [h.to(x.dtype) for h in hs])

    runs = _three_ways(fn, (x, y), torch.float32, upstream)
    return collect(
        _judge_runs(f"D={dim} p={p}", ("f_ba", "g_ab", "f_aa", "g_bb"), runs, ("x", "y"))
    )


def check_mmd(ctx: Context, kernel: str) -> dict:
    import torch

    from fastgen.metrics.mmd import mmd2_unbiased

    n, dim = ctx.sizes.mmd_shape
    generator = torch.Generator(ctx.device).manual_seed(4)
    x = torch.randn(n, dim, generator=generator, device=ctx.device)
    y = 1.1 * torch.randn(n, dim, generator=generator, device=ctx.device)

    def fn(backend, x, y):
        return (mmd2_unbiased(x, y, kernel=kernel, backend=backend).reshape(1),)

    runs = _three_ways(fn, (x, y), torch.float32)
    return collect(_judge_runs(f"mmd2 {kernel}", ("value",), runs))


def check_gemm(ctx: Context, precision: str) -> dict:
    import torch
    from fastgen.kernels.newton_schulz import fused_gemm

    from fastgen.reference.newton_schulz import fused_gemm as reference_gemm

    n = ctx.sizes.gemm_n
    generator = torch.Generator(ctx.device).manual_seed(5)
    a, b, c = (torch.randn(1, n, n, generator=generator, device=ctx.device) for _ in range(3))
    with poisoned_outputs():
        out = fused_gemm(a, b, c, 0.5, -1.5, 2.0, precision)
    ref64 = reference_gemm(a.double(), b.double(), c.double(), 0.5, -1.5, 2.0)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        same = reference_gemm(a, b, c, 0.5, -1.5, 2.0)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return collect([judge(f"a b + c ({precision})", out, ref64, same)])


def check_sqrtm(ctx: Context, precision: str) -> dict:
    import torch

    from fastgen.linalg import sqrtm

    n = ctx.sizes.gemm_n
    generator = torch.Generator(ctx.device).manual_seed(6)
    features = torch.randn(2 * n, n, generator=generator, device=ctx.device, dtype=torch.float64)
    matrix = features.T @ features / (2 * n)  # a covariance, condition number about 30
    with poisoned_outputs():
        root = sqrtm(matrix.float(), "newton_schulz", backend="triton", input_precision=precision)
    ref64 = sqrtm(matrix, "eigh", backend="torch")
    same = sqrtm(matrix.float(), "eigh", backend="torch")
    residual = ((root.double() @ root.double() - matrix).norm() / matrix.norm()).item()
    row = judge(f"sqrtm ({precision})", root, ref64, same)
    # TF32 rounds each product to 10 bits: the root is judged by its documented residual
    if precision == "tf32":
        row["pass"] = residual <= 5e-3
    return collect([row | {"relative_residual": residual}])


def correctness_cases(ctx: Context) -> list[tuple[str, float, Callable[[], dict]]]:
    """(name, estimated GPU seconds including JIT compiles, check) for every case of b."""
    s = ctx.sizes
    cases = [
        (
            f"spline {tails} K={k} {dtype}",
            6.0,
            lambda tails=tails, k=k, dtype=dtype: check_spline(ctx, tails, k, dtype),
        )
        for tails in ("linear", "circular")
        for k in s.spline_bins
        for dtype in s.spline_dtypes
    ]
    modes = ("float32 ieee", "float32 tf32", "float16", "bfloat16")
    cases += [
        (f"masked linear {mode}", 8.0, lambda mode=mode: check_masked_linear(ctx, mode))
        for mode in (modes if not ctx.dry_run else modes[::3])
    ]
    cases += [
        (
            f"penalty {shape} {dtype}",
            3.0,
            lambda shape=shape, dtype=dtype: check_penalty(ctx, shape, dtype),
        )
        for shape in s.penalty_shapes
        for dtype in ("float32", "bfloat16")
    ]
    cases += [
        (
            f"softmin D={dim} p={p}",
            6.0,
            lambda dim=dim, points=points, p=p: check_softmin(ctx, dim, points, p),
        )
        for dim, points in s.softmin_points
        for p in ((2, 1) if dim <= 3 else (2,))
    ]
    cases += [
        (f"mmd {kernel}", 4.0, lambda kernel=kernel: check_mmd(ctx, kernel))
        for kernel in ("polynomial", "rbf")
    ]
    precisions = ("ieee",) if ctx.dry_run else ("ieee", "tf32")
    cases += [(f"fused gemm {p}", 3.0, lambda p=p: check_gemm(ctx, p)) for p in precisions]
    cases += [(f"sqrtm {p}", 5.0, lambda p=p: check_sqrtm(ctx, p)) for p in precisions]
    return cases


def step_correctness(ctx: Context) -> dict:
    results = [
        ctx.run_case("correctness", name, estimate, fn)
        for name, estimate, fn in correctness_cases(ctx)
    ]
    return {"cases": results}


# --------------------------------------------------------------------------------------------
# a. kernel test files, d. limits: subprocesses


def _subprocess(ctx: Context, args: list[str], timeout: float, env=None) -> dict:
    started = time.monotonic()
    try:
        done = subprocess.run(
            args, cwd=ROOT, capture_output=True, text=True, timeout=max(1.0, timeout), env=env
        )
    except subprocess.TimeoutExpired as expired:
        tail = (expired.stdout or b"")[-3000:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        return {
            "status": "timeout",
            "seconds": round(time.monotonic() - started, 1),
            "output_tail": tail,
        }
    return {
        "status": "pass" if done.returncode == 0 else "fail",
        "returncode": done.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "output_tail": (done.stdout + done.stderr)[-3000:],
        "stdout_last_line": (done.stdout.strip().splitlines() or [""])[-1],
    }


def _has_xdist() -> bool:
    import importlib.util

    return importlib.util.find_spec("xdist") is not None


def step_kernel_tests(ctx: Context) -> dict:
    """The kernel test files. On the GPU they run compiled; the dry run only collects them
    (CI runs them under the interpreter in its own test job)."""
    args = module_command("pytest", "-q", "-p", "no:cacheprovider", *KERNEL_TEST_FILES)
    if ctx.dry_run:
        args.append("--collect-only")
    elif _has_xdist():
        args += ["-n", "8"]
    args += [f"--junitxml={ctx.out / 'kernel_tests.xml'}"]
    env = dict(os.environ)
    if ctx.dry_run:
        env["TRITON_INTERPRET"] = "1"
    result = _subprocess(ctx, args, ctx.budget.left() - 5, env)
    result["summary"] = result.pop("stdout_last_line", "")
    return result


@dataclasses.dataclass(frozen=True)
class Limit:
    """A launch at a CUDA limit: ``run(sizes, device)`` returns the judged outputs."""

    name: str
    what: str
    estimate_s: float
    run: Callable[[bool, str], dict]


def _limit_sinkhorn_batch(dry: bool, device: str) -> dict:
    """Sinkhorn softmins for a batch of 65,537 clouds: grid axis 2 (the batch) past 65,535."""
    import torch
    from fastgen.kernels.sinkhorn import softmins_triton

    from fastgen.reference.sinkhorn import PAIRS_BALANCED, softmins_reference

    batch = 3 if dry else 65_537
    generator = torch.Generator(device).manual_seed(7)
    x, y = (torch.randn(batch, 8, 3, generator=generator, device=device) for _ in range(2))
    hs = [torch.zeros(batch, 8, device=device)] * 2
    out = softmins_triton(x, y, 0.5, 2, PAIRS_BALANCED, hs)
    ref = softmins_reference(
        x.double(), y.double(), 0.5, 2, PAIRS_BALANCED, [h.double() for h in hs]
    )
    same = softmins_reference(x, y, 0.5, 2, PAIRS_BALANCED, hs)
    return collect(
        [judge(n, a, b, c) for n, a, b, c in zip(("f_ba", "g_ab"), out, ref, same, strict=True)]
    )


def _limit_gemm_batch(dry: bool, device: str) -> dict:
    """Newton-Schulz's fused GEMM on 65,537 matrices: grid axis 2 past 65,535."""
    import torch
    from fastgen.kernels.newton_schulz import fused_gemm

    from fastgen.reference.newton_schulz import fused_gemm as reference_gemm

    batch = 3 if dry else 65_537
    generator = torch.Generator(device).manual_seed(8)
    a, b = (torch.randn(batch, 16, 16, generator=generator, device=device) for _ in range(2))
    out = fused_gemm(a, b, None, 1.0, 0.0, 1.0, "ieee")
    ref = reference_gemm(a.double(), b.double(), None, 1.0, 0.0, 1.0)
    return collect([judge("a b + I", out, ref, reference_gemm(a, b, None, 1.0, 0.0, 1.0))])


def _limit_mmd_columns(dry: bool, device: str) -> dict:
    """MMD's kernel sum over 65,537 x 64 columns: grid axis 1 past 65,535."""
    import torch
    from fastgen.kernels.mmd import BLOCK, kernel_sum

    from fastgen.reference.mmd import kernel_sum as kernel_sum_reference

    columns = 70 if dry else 65_537 * BLOCK
    generator = torch.Generator(device).manual_seed(9)
    x = torch.randn(64, 8, generator=generator, device=device)
    y = torch.randn(columns, 8, generator=generator, device=device)
    out = kernel_sum(x, y, "rbf", 3, 0.125, 1.0).reshape(1)
    ref = kernel_sum_reference(x.double(), y.double(), "rbf", 3, 0.125, 1.0).reshape(1)
    same = kernel_sum_reference(x, y, "rbf", 3, 0.125, 1.0).reshape(1)
    return collect([judge("sum k(x, y)", out, ref, same)])


def _limit_penalty_features(dry: bool, device: str) -> dict:
    """Gradient norms of rows of 65,537 x 2048 features: grid axis 1 past 65,535."""
    import torch

    from fastgen.gan import penalty_from_gradients

    features = 70 if dry else 65_537 * 2048
    generator = torch.Generator(device).manual_seed(10)
    grads = torch.randn(2, features, generator=generator, device=device, dtype=torch.bfloat16)
    out = penalty_from_gradients(grads, backend="triton").reshape(1)
    ref = penalty_from_gradients(grads.double(), backend="torch").reshape(1)
    same = penalty_from_gradients(grads, backend="torch").reshape(1)
    return collect([judge("penalty", out, ref, same)])


def _limit_masked_linear_rows(dry: bool, device: str) -> dict:
    """Masked-linear grad weight over x (2^21 + 3, 1024) in bfloat16: row x stride past
    2^31 elements (int64 offsets)."""
    import torch

    from fastgen.nn.masked_linear import masked_linear

    rows, features = (5, 4) if dry else (2**21 + 3, 1024)
    generator = torch.Generator(device).manual_seed(11)
    x = torch.randn(rows, features, generator=generator, device=device, dtype=torch.bfloat16)
    in_deg = torch.arange(1, features + 1, device=device)
    out_deg = torch.arange(1, 17, device=device) % features + 1
    weight = torch.randn(16, features, generator=generator, device=device).requires_grad_()
    upstream = torch.randn(rows, 16, generator=generator, device=device)
    results = []
    for backend, dtype in (
        ("triton", torch.bfloat16),
        ("torch", torch.float64),
        ("torch", torch.bfloat16),
    ):
        w = weight.detach().to(dtype).requires_grad_()
        y = masked_linear(x.to(dtype), w, None, in_deg, out_deg, False, None, backend)
        results.append(torch.autograd.grad((y.float() * upstream).sum(), w)[0])
        del y
    return collect([judge("grad weight", *results)])


def _limit_softmin_rows(dry: bool, device: str) -> dict:
    """Softmin over x (1, 2^21 + 3, 1024): row x stride past 2^31 elements."""
    import torch
    from fastgen.kernels.sinkhorn import softmins_triton

    from fastgen.reference.sinkhorn import softmins_reference

    rows, dim = (5, 17) if dry else (2**21 + 3, 1024)
    generator = torch.Generator(device).manual_seed(12)
    x = torch.randn(1, rows, dim, generator=generator, device=device)
    y = torch.randn(1, 16, dim, generator=generator, device=device)
    h = torch.zeros(1, 16, device=device)
    eps = 0.1 * dim
    out = softmins_triton(x, y, eps, 2, ((0, 1),), [h])[0]
    same = softmins_reference(x, y, eps, 2, ((0, 1),), [h])[0]
    x64 = x.double()
    del x
    ref = softmins_reference(x64, y.double(), eps, 2, ((0, 1),), [h.double()])[0]
    return collect([judge("f_ba", out, ref, same)])


LIMITS = (
    Limit("sinkhorn-batch", "grid axis 2 > 65,535 (batch)", 20.0, _limit_sinkhorn_batch),
    Limit("gemm-batch", "grid axis 2 > 65,535 (batch)", 15.0, _limit_gemm_batch),
    Limit("mmd-columns", "grid axis 1 > 65,535 (columns)", 15.0, _limit_mmd_columns),
    Limit("penalty-features", "grid axis 1 > 65,535 (features)", 15.0, _limit_penalty_features),
    Limit("masked-linear-rows", "offsets > 2^31 (grad weight)", 30.0, _limit_masked_linear_rows),
    Limit("softmin-rows", "offsets > 2^31 (softmin)", 30.0, _limit_softmin_rows),
)


def run_limit(name: str, dry: bool) -> dict:
    """One limit, in this process (``--limit NAME``); prints its JSON result."""
    limit = next(limit for limit in LIMITS if limit.name == name)
    with poisoned_outputs():
        return limit.run(dry, "cpu" if dry else "cuda")


def step_limits(ctx: Context) -> dict:
    """On the GPU each limit in its own process (an illegal address poisons the CUDA context),
    three at a time (their cost is mostly start-up and JIT compiles; the largest takes about
    40 GB of GPU memory). The dry run, where nothing can poison a context, runs them all in
    one process: the same ``--limit`` path, one start-up instead of six."""
    from concurrent.futures import ThreadPoolExecutor

    def run_group(limits: list[Limit]) -> list[dict]:
        estimate = sum(limit.estimate_s for limit in limits)
        names = [limit.name for limit in limits]
        if not ctx.budget.fits(estimate):
            ctx.skipped += [f"limits: {name} (estimated {estimate:.0f} s)" for name in names]
            return [{"case": name, "status": "skipped"} for name in names]
        args = module_command("profiling.gpu_check", "--limit", ",".join(names))
        args += ["--dry-run"] if ctx.dry_run else []
        run = _subprocess(ctx, args, min(4 * estimate, ctx.budget.left()))
        outcomes = {}
        if run["status"] == "pass":
            outcomes = json.loads(run.pop("stdout_last_line"))
            del run["output_tail"]
        return [
            {"case": limit.name, "limit": limit.what, **run, **outcomes.get(limit.name, {})}
            for limit in limits
        ]

    groups = [list(LIMITS)] if ctx.dry_run else [[limit] for limit in LIMITS]
    with ThreadPoolExecutor(max_workers=3) as pool:
        return {"cases": [case for cases in pool.map(run_group, groups) for case in cases]}


# --------------------------------------------------------------------------------------------
# c. torch.compile


def _entry_points(ctx: Context):
    """(name, fn(*tensors) -> outputs, tensors) for each Triton entry point, tiny sizes."""
    import torch

    from fastgen.gan import penalty_from_gradients
    from fastgen.metrics.sinkhorn import sinkhorn_divergence
    from fastgen.nn.masked_linear import masked_linear
    from fastgen.splines import unconstrained_rational_quadratic_spline

    generator = torch.Generator(ctx.device).manual_seed(13)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, device=ctx.device).requires_grad_()

    in_deg, hidden_deg = _made_degrees(8, 32, ctx.device)
    return [
        (
            "spline",
            lambda x, w, h, d: unconstrained_rational_quadratic_spline(
                x, w, h, d, backend="triton"
            ),
            (randn(100), randn(100, 8), randn(100, 8), randn(100, 7)),
        ),
        (
            "masked linear",
            lambda x, w, b: masked_linear(x, w, b, in_deg, hidden_deg, False, "relu", "triton"),
            (randn(33, 8), randn(32, 8), randn(32)),
        ),
        ("penalty", lambda g: penalty_from_gradients(g, backend="triton"), (randn(33, 20),)),
        (
            "sinkhorn",
            lambda x, y: sinkhorn_divergence(x, y, diameter=4.0, backend="triton"),
            (randn(50, 3), randn(40, 3)),
        ),
    ]


def check_compile(ctx: Context, name: str, fn, tensors, backend: str) -> dict:
    import torch

    def loss(outputs):
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return sum(o.float().sum() for o in outputs)

    torch._dynamo.reset()
    eager = fn(*tensors)
    eager_grads = torch.autograd.grad(loss(eager), tensors)
    explanation = torch._dynamo.explain(fn)(*tensors)
    compiled = torch.compile(fn, backend=backend)(*tensors)
    grads = torch.autograd.grad(loss(compiled), tensors)
    eager = eager if isinstance(eager, tuple) else (eager,)
    compiled = compiled if isinstance(compiled, tuple) else (compiled,)
    rows = [
        judge(f"output {i}", c, e.double(), e)
        for i, (c, e) in enumerate(zip(compiled, eager, strict=True))
    ]
    rows += [
        judge(f"grad {i}", c, e.double(), e)
        for i, (c, e) in enumerate(zip(grads, eager_grads, strict=True))
    ]
    return collect(rows) | {
        "graphs": explanation.graph_count,
        "graph_breaks": explanation.graph_break_count,
        "break_reasons": [str(r.reason)[:200] for r in explanation.break_reasons],
    }


def step_compile(ctx: Context) -> dict:
    if ctx.dry_run:
        # The interpreter cannot run under tracing: capture with fake tensors instead.
        args = module_command("profiling.compile_capture", "--json")
        run = _subprocess(ctx, args, ctx.budget.left() - 5)
        if run["status"] == "pass":
            capture = json.loads(run.pop("stdout_last_line"))
            del run["output_tail"]
            one_each = all(
                c["graphs"] == 2 and c["forward"] and c["backward"]
                for c in capture["captures"].values()
            )
            run |= {
                "status": "pass" if one_each else "fail",
                "capture": capture,
                "graphs": {k: c["graphs"] for k, c in capture["captures"].items()},
                "graph_breaks": {k: b["graph_breaks"] for k, b in capture["breaks"].items()},
            }
        return {"cases": [{"case": "fake-tensor capture (stub sm_90)", **run}]}
    cases = [
        ctx.run_case(
            "compile",
            f"{name} {backend}",
            15.0,
            lambda fn=fn, tensors=tensors, backend=backend, name=name: check_compile(
                ctx, name, fn, tensors, backend
            ),
        )
        for backend in ("aot_eager", "inductor")
        for name, fn, tensors in _entry_points(ctx)
    ]
    return {"cases": cases}


# --------------------------------------------------------------------------------------------
# e. timings


def median_seconds(ctx: Context, fn: Callable[[], object]) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after one warm-up (CUDA events on
    the GPU; ``perf_counter`` on the CPU)."""
    import torch

    fn()
    ctx.synchronize()
    samples = []
    for _ in range(ctx.sizes.repeats):
        if ctx.device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3)
        else:
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _peer(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _timing_problems(ctx: Context):
    """(hot path, fused bytes, FLOPs, {provider: fn}) at the sizes of b."""
    import torch

    from fastgen.gan import penalty_from_gradients
    from fastgen.metrics.sinkhorn import sinkhorn_divergence
    from fastgen.nn.masked_linear import masked_linear
    from fastgen.splines import unconstrained_rational_quadratic_spline
    from profiling import traffic

    s, device = ctx.sizes, ctx.device
    problems = []

    n, k = s.spline_elements, 8
    x = (2 * torch.rand(n, device=device) - 1).requires_grad_()
    w, h, d = (torch.randn(n, k - (i == 2), device=device).requires_grad_() for i in range(3))
    fused, flops = next(
        (row[5], row[6]) for row in traffic.spline_rows(256, k) if row[2] == "forward+backward"
    )

    def spline_fn(impl):
        def run():
            out, lad = impl(x, w, h, d)
            torch.autograd.grad((out + lad).sum(), (x, w, h, d))

        return run

    providers = {
        backend: spline_fn(
            lambda *a, backend=backend: unconstrained_rational_quadratic_spline(*a, backend=backend)
        )
        for backend in ("triton", "torch")
    }
    nflows = _peer("nflows.transforms.splines.rational_quadratic")
    if nflows is not None:
        providers["nflows"] = spline_fn(
            lambda *a: nflows.unconstrained_rational_quadratic_spline(
                *a, tails="linear", tail_bound=1.0
            )
        )
    problems.append(("spline K=8 fwd+bwd", fused * n, flops * n, providers))

    batch, (features, hidden) = s.made_batch, s.made_features
    din, dout = _made_degrees(features, hidden, device)
    xs = torch.randn(batch, hidden, device=device)
    weight = torch.randn(hidden, hidden, device=device).requires_grad_()
    bias = torch.zeros(hidden, device=device, requires_grad=True)
    fused, flops = next(
        (row[5], row[6])
        for row in traffic.masked_linear_rows(hidden * 4, hidden)
        if row[2] == "forward+backward"
    )
    elements = batch * hidden
    providers = {
        backend: lambda backend=backend: torch.autograd.grad(
            masked_linear(xs, weight, bias, dout, dout, False, "relu", backend).sum(),
            (weight, bias),
        )
        for backend in ("triton", "torch")
    }
    problems.append(
        (
            f"masked linear {hidden}x{hidden} relu fwd+bwd",
            fused * elements,
            flops * elements,
            providers,
        )
    )

    shape = s.penalty_shapes[-1]
    grads = torch.randn(*shape, device=device).requires_grad_()
    elements = grads.numel()

    def hand_written():  # WGAN-GP as written in most training scripts
        penalty = ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean() * 10
        torch.autograd.grad(penalty, grads)

    providers = {
        backend: lambda backend=backend: torch.autograd.grad(
            penalty_from_gradients(grads, weight=10.0, backend=backend), grads
        )
        for backend in ("triton", "torch")
    } | {"hand-written WGAN-GP": hand_written}
    # fused: read g twice (norms, then backward), write grad once
    problems.append((f"penalty {shape} fwd+bwd", 3 * 4 * elements, 5 * elements, providers))

    dim, points = s.softmin_points[0]
    xa, ya = (torch.randn(points, dim, device=device) for _ in range(2))
    providers = {
        backend: lambda backend=backend: sinkhorn_divergence(xa, ya, diameter=8.0, backend=backend)
        for backend in ("triton", "torch")
    }
    geomloss = _peer("geomloss")
    if geomloss is not None:
        loss = geomloss.SamplesLoss("sinkhorn", blur=0.05, diameter=8.0, backend="tensorized")
        providers["geomloss tensorized"] = lambda: loss(xa, ya)
    # 4 softmins per temperature, (len(eps_list) + 2) rounds: counted from the reference
    from fastgen.metrics.sinkhorn import epsilon_schedule

    passes = 4 * (len(epsilon_schedule(2, 8.0, 0.05, 0.5)) + 2)
    entries = passes * points * points
    fused, flops = next((row[5], row[6]) for row in traffic.softmin_rows(64, dim))
    problems.append(
        (f"sinkhorn divergence N={points} D={dim}", fused * entries, flops * entries, providers)
    )
    return problems


def step_timings(ctx: Context) -> dict:
    rows = []
    for name, nbytes, flops, providers in _timing_problems(ctx):
        floor = max(nbytes / (BANDWIDTH_TBS * 1e12), flops / (FLOPS_TFLOPS * 1e12))
        for provider, fn in providers.items():

            def measure(fn=fn, nbytes=nbytes, flops=flops, floor=floor):
                seconds = median_seconds(ctx, fn)
                return {
                    "median_s": seconds,
                    "GB/s": nbytes / seconds / 1e9,
                    "TFLOP/s": flops / seconds / 1e12,
                    "floor_s": floor,
                }

            rows.append({"problem": name, **ctx.run_case("timings", provider, 5.0, measure)})
    return {"cases": rows}


# --------------------------------------------------------------------------------------------
# the run


STEPS = (  # (name, what, estimated GPU seconds, step)
    ("kernel-tests", "a. kernel test files", 150.0, step_kernel_tests),
    ("correctness", "b. GPU-scale correctness vs float64", 120.0, step_correctness),
    ("compile", "c. torch.compile of the Triton entry points", 90.0, step_compile),
    ("limits", "d. CUDA limits in subprocesses", 80.0, step_limits),
    ("timings", "e. CUDA-event medians vs peers", 40.0, step_timings),
)


def _environment(ctx: Context) -> dict:
    import torch
    import triton

    gpu = torch.cuda.get_device_name() if ctx.device == "cuda" else None
    return {
        "device": ctx.device,
        "gpu": gpu,
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "triton_interpret": os.environ.get("TRITON_INTERPRET", ""),
        "dry_run": ctx.dry_run,
    }


def run(ctx: Context) -> dict:
    report = {"environment": _environment(ctx), "steps": []}
    for name, what, estimate, step in STEPS:
        # the dry run checks code paths, not speed: every step runs
        estimate = 0.0 if ctx.dry_run else estimate
        if not ctx.budget.fits(min(estimate, 30.0)):
            ctx.skipped.append(f"{name}: the whole step ({ctx.budget.left():.0f} s left)")
            report["steps"].append({"step": name, "what": what, "status": "skipped"})
            continue
        started = time.monotonic()
        try:
            result = step(ctx)
        except Exception as error:  # noqa: BLE001 (one failing step must not hide the others)
            result = {"status": "error", "error": _describe(error)}
        result.setdefault("status", _status(result.get("cases", [])))
        report["steps"].append(
            {"step": name, "what": what, **result, "seconds": round(time.monotonic() - started, 1)}
        )
    report["skipped"] = ctx.skipped
    report["seconds"] = round(time.monotonic() - ctx.budget.start, 1)
    report["status"] = _status(report["steps"])
    return report


def _status(items: list[dict]) -> str:
    statuses = {item.get("status") for item in items}
    if statuses & {"fail", "error", "timeout"}:
        return "fail"
    return "pass" if statuses <= {"pass"} else "partial"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value).replace("|", "/").replace("\n", " ")


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        f"# gpu_check: {report['status']} in {report['seconds']} s",
        "",
        ", ".join(f"{key} {value}" for key, value in env.items()),
        "",
    ]
    for step in report["steps"]:
        lines += [f"## {step['what']}: {step['status']} ({step.get('seconds', 0)} s)", ""]
        if "summary" in step:
            lines += [f"pytest: `{step['summary']}`", ""]
        if "error" in step:
            lines += ["```", step["error"], "```", ""]
        cases = step.get("cases", [])
        if cases:
            lines += [
                "| case | status | s | worst output (error / reference's) | notes |",
                "|---|---|---|---|---|",
            ]
            for case in cases:
                outputs = case.get("outputs", [])
                worst = max(outputs, key=lambda o: (not o["pass"], o["error"]), default=None)
                judged = (
                    (f"{worst['output']}: {worst['error']:.2g} / {worst['reference_error']:.2g}")
                    if worst
                    else ""
                )
                notes = ", ".join(
                    f"{key} {_cell(case[key])}"
                    for key in (
                        "median_s",
                        "GB/s",
                        "TFLOP/s",
                        "floor_s",
                        "graphs",
                        "graph_breaks",
                        "limit",
                        "error",
                    )
                    if key in case
                )
                if case["status"] in ("fail", "timeout") and "output_tail" in case:
                    notes += " " + _cell(case["output_tail"][-300:])
                lines.append(
                    f"| {_cell(case.get('problem', ''))} {_cell(case['case'])} | "
                    f"{case['status']} | {case.get('seconds', '')} | {judged} | "
                    f"{notes} |"
                )
            lines.append("")
    lines += ["## Skipped", ""] + [f"- {item}" for item in report["skipped"] or ["nothing"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m profiling.gpu_check", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, help="report directory (default gpu_check-<time>)")
    parser.add_argument(
        "--budget-s", type=float, default=480.0, help="wall-time budget in seconds (default 480)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="same code paths on the CPU under the interpreter, tiny sizes",
    )
    parser.add_argument("--limit", help=argparse.SUPPRESS)  # one limit, in a subprocess
    args = parser.parse_args(argv)
    if args.dry_run:
        # read when @triton.jit decorates the kernels: before fastgen.kernels is imported
        os.environ["TRITON_INTERPRET"] = "1"
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    sys.path.append(str(ROOT))  # profiling/ itself, after an installed fastgen
    if args.limit:  # comma-separated names: {name: result} as one JSON line
        names = args.limit.split(",")
        print(json.dumps({name: run_limit(name, args.dry_run) for name in names}))
        return 0
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --dry-run to check the code paths on the CPU")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path(f"gpu_check-{stamp}")
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        device="cpu" if args.dry_run else "cuda",
        dry_run=args.dry_run,
        sizes=DRY_SIZES if args.dry_run else GPU_SIZES,
        budget=Budget(args.budget_s),
        out=out.resolve(),
    )
    report = run(ctx)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if report["status"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
