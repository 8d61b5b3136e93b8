"""torch.compile capture of the Triton path on a machine without a GPU.

What can be proven without CUDA, and how:

* The kernels must be ``JITFunction`` s: under ``TRITON_INTERPRET=1`` ``@triton.jit`` returns
  an interpreted function that ``torch.library.wrap_triton`` passes through untraced (it
  would run on fake tensors and fail). So ``fastgen.kernels`` is imported here with the
  interpreter off, and only then is ``TRITON_INTERPRET=1`` set, for the one purpose of
  letting :func:`fastgen.backend.resolve_backend` accept CPU tensors for ``backend="triton"``.
* The tensors are fake (``FakeTensorMode``): no kernel runs. They are CPU fake tensors: a
  CPU-only PyTorch build aborts the process (``PyTorch is not linked with support for cuda
  devices``) as soon as autograd records a node on a fake ``cuda`` tensor, so a backward
  graph cannot be captured on ``cuda`` fakes here. The graphs are the same up to the device
  of the allocations.
* Dynamo and AOTAutograd analyse each user kernel (which arguments it mutates) by lowering
  it to Triton IR for the active driver's target: a stub driver (:func:`stub_target`)
  reports ``GPUTarget("cuda", 90, 32)``, an H100 / H200.

``capture(fn, inputs)`` compiles ``fn`` with ``fullgraph=True`` and an AOTAutograd backend that
records the forward and backward graphs, runs forward and backward on fake inputs, and returns
the Triton kernels each graph launches (``triton_kernel_wrapper_functional`` nodes).
``graph_breaks(fn, inputs)`` is ``torch._dynamo.explain`` on fake inputs.

``python -m profiling.compile_capture [--json]`` captures the spline, the masked linear, the
penalty and the softmins, and counts the graph breaks of ``sinkhorn_divergence`` (diameter
given), ``mmd2_unbiased`` / KID and ``gradient_penalty``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

STUB_ARCH = 90


def _import_jit_kernels():
    """Import the kernels as JITFunctions, then let the dispatcher accept CPU tensors."""
    if "fastgen.kernels" in sys.modules:
        raise RuntimeError(
            "fastgen.kernels is already imported (perhaps under the "
            "interpreter): capture in a fresh process"
        )
    # before triton is imported: part of it reads the variable once
    os.environ.pop("TRITON_INTERPRET", None)
    from profiling.aot import kernel_modules

    kernel_modules()
    os.environ["TRITON_INTERPRET"] = "1"


@contextlib.contextmanager
def stub_target(arch: int = STUB_ARCH):
    """Make Triton's active driver a stub that reports ``sm_{arch}`` (no GPU needed):
    Dynamo's kernel analysis asks it for the compilation target, nothing else."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.backends.driver import DriverBase

    class StubDriver(DriverBase):
        def __init__(self):
            pass

        @classmethod
        def is_active(cls):
            return True

        def get_current_target(self):
            return GPUTarget("cuda", arch, 32)

        def get_current_device(self):
            return 0

        def get_current_stream(self, device=None):
            return 0

        def get_active_torch_device(self):
            raise NotImplementedError("stub driver: no device")

        def map_python_to_cpp_type(self, ty):
            raise NotImplementedError("stub driver: no launcher")

        def get_benchmarker(self):
            raise NotImplementedError("stub driver: no benchmarker")

        def get_device_interface(self):
            raise NotImplementedError("stub driver: no device")

        def get_empty_cache_for_benchmark(self):
            raise NotImplementedError("stub driver: no device")

        def clear_cache(self, cache):
            raise NotImplementedError("stub driver: no device")

    config = triton.runtime.driver
    previous = config._active  # None until first use; reset_active() needs a real driver
    config.set_active(StubDriver())
    try:
        yield
    finally:
        config._active = previous


def _kernels(graph) -> list[str]:
    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table

    return [
        kernel_side_table.get_kernel(node.kwargs["kernel_idx"]).fn.__name__
        for node in graph.graph.nodes
        if node.op == "call_function" and "triton_kernel_wrapper" in str(node.target)
    ]


def capture(fn, make_inputs) -> dict:
    """Forward and backward graphs of ``torch.compile(fn, fullgraph=True)`` on fake tensors
    from ``make_inputs()``: ``{"forward": [kernels...], "backward": [...], "graphs": n}``
    (n counts forward and backward graphs; one of each means no break)."""
    import torch
    from torch._dynamo.backends.common import aot_autograd
    from torch._subclasses.fake_tensor import FakeTensorMode

    graphs = {"forward": [], "backward": []}

    def recorder(kind):
        def compiler(graph, example_inputs):
            graphs[kind].append(_kernels(graph))
            return graph

        return compiler

    backend = aot_autograd(fw_compiler=recorder("forward"), bw_compiler=recorder("backward"))
    torch._dynamo.reset()
    with stub_target(), FakeTensorMode():
        inputs = make_inputs()
        outputs = torch.compile(fn, backend=backend, fullgraph=True)(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        leaves = [t for t in inputs if t.requires_grad]
        torch.autograd.grad(sum(o.sum() for o in outputs), leaves)
    return {
        "graphs": len(graphs["forward"]) + len(graphs["backward"]),
        "forward": [k for g in graphs["forward"] for k in g],
        "backward": [k for g in graphs["backward"] for k in g],
    }


def graph_breaks(fn, make_inputs) -> dict:
    """``torch._dynamo.explain`` of ``fn`` on fake tensors: graphs, breaks and their reasons."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    torch._dynamo.reset()
    # real module parameters (a critic's) are converted to fakes
    with stub_target(), FakeTensorMode(allow_non_fake_inputs=True):
        explanation = torch._dynamo.explain(fn)(*make_inputs())
    return {
        "graphs": explanation.graph_count,
        "graph_breaks": explanation.graph_break_count,
        "reasons": sorted({r.reason.splitlines()[0][:160] for r in explanation.break_reasons}),
    }


def _randn(*shape, grad=True):
    import torch

    return torch.randn(*shape).requires_grad_(grad)


def capture_cases() -> dict:
    """The Triton entry points, each as (fn, make_inputs)."""
    import torch
    from fastgen.kernels.sinkhorn import softmins_triton

    from fastgen.gan import penalty_from_gradients
    from fastgen.nn.masked_linear import masked_linear
    from fastgen.reference.sinkhorn import PAIRS_DEBIASED
    from fastgen.splines import unconstrained_rational_quadratic_spline

    def spline(x, w, h, d):
        return unconstrained_rational_quadratic_spline(x, w, h, d, backend="triton")

    def linear(x, w, b, din, dout):
        return masked_linear(x, w, b, din, dout, False, "gelu", "triton")

    def softmins(x, y, *hs):
        return softmins_triton(x, y, 0.1, 2, PAIRS_DEBIASED, hs)

    def made_degrees():
        return torch.arange(1, 9), (torch.arange(32) % 7 + 1).sort().values

    return {
        "spline": (spline, lambda: (_randn(100), _randn(100, 8), _randn(100, 8), _randn(100, 7))),
        "masked_linear": (
            linear,
            lambda: (_randn(33, 8), _randn(32, 8), _randn(32), *made_degrees()),
        ),
        "penalty": (
            lambda g: penalty_from_gradients(g, backend="triton"),
            lambda: (_randn(33, 20),),
        ),
        "softmins": (
            softmins,
            lambda: (
                _randn(1, 50, 3),
                _randn(1, 40, 3),
                *(_randn(1, n, grad=False) for n in (40, 50, 50, 40)),
            ),
        ),
    }


def break_cases() -> dict:
    """Public functions whose graph breaks are counted (fn, make_inputs)."""
    import torch

    from fastgen.gan import gradient_penalty
    from fastgen.metrics.mmd import _mmd2
    from fastgen.metrics.sinkhorn import sinkhorn_divergence

    critic = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def penalty(real, fake, eps):
        return gradient_penalty(
            lambda x: critic(x).squeeze(-1), real, fake, eps=eps, backend="triton"
        )

    return {
        "sinkhorn_divergence(diameter=4)": (
            lambda x, y: sinkhorn_divergence(x, y, diameter=4.0, backend="triton"),
            lambda: (_randn(50, 3), _randn(40, 3)),
        ),
        # KID's and mmd2_unbiased's computation after their checks (whose finiteness test
        # and the per-subset .item() are their documented host synchronisations)
        "mmd2 (KID subset)": (
            lambda x, y: _mmd2(x, y, "polynomial", 3, 0.2, 1.0, "triton"),
            lambda: (_randn(30, 5, grad=False), _randn(30, 5, grad=False)),
        ),
        "gradient_penalty": (
            penalty,
            lambda: (_randn(20, 6, grad=False), _randn(20, 6, grad=False), torch.rand(20)),
        ),
    }


def report() -> dict:
    _import_jit_kernels()
    return {
        "target": f"sm_{STUB_ARCH} (stub driver)",
        "captures": {name: capture(*case) for name, case in capture_cases().items()},
        "breaks": {name: graph_breaks(*case) for name, case in break_cases().items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m profiling.compile_capture", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    result = report()
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
