"""Ahead-of-time compilation of Triton kernels for NVIDIA GPUs, on a machine without one.

``compile_kernel`` runs ``triton.compile`` for ``GPUTarget("cuda", arch, 32)`` (PTX, then
cubin through the ``ptxas`` Triton ships) and reads the cubin's resource usage with Triton's
``cuobjdump``: registers per thread, stack and local memory (non-zero means spills), shared
memory, and whether tensor-core instructions (``mma`` / ``wgmma``) appear in the PTX.

``python -m profiling.aot [--json]`` compiles every kernel's representative configurations
(``AOT_CONFIGS`` of each module in ``fastgen.kernels``) for sm_80 and sm_90 and prints the
table; it also lists every ``@triton.jit`` function that no configured kernel reaches, and
exits with status 1 when a kernel spills or a function is reached by no configuration. It
needs the real compiler, so it refuses to run under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from fastgen.kernels.utils import AotConfig, interpreter_enabled

ARCHS = (80, 90)


@dataclasses.dataclass(frozen=True)
class KernelResources:
    kernel: str
    label: str
    arch: int
    num_warps: int
    registers: int
    stack: int  # bytes of stack frame per thread; > 0 means spills (or local arrays)
    local: int  # bytes of local memory per thread
    shared: int  # bytes of static shared memory (Triton's allocation included)
    tensor_cores: bool

    @property
    def spills(self) -> int:
        return self.stack + self.local


def _triton_bin(tool: str) -> str:
    import triton

    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / tool)


_USAGE = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")


def _resource_usage(cubin: bytes) -> tuple[int, int, int, int]:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run(
            [_triton_bin("cuobjdump"), "--dump-resource-usage", f.name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    match = _USAGE.search(text)
    if match is None:
        raise RuntimeError(f"no resource usage in cuobjdump output:\n{text}")
    registers, stack, shared, local = map(int, match.groups())
    return registers, stack, shared, local


def compile_kernel(config: AotConfig, arch: int) -> KernelResources:
    """Compile ``config`` for ``sm_{arch}`` and return its resource usage.

    Raises:
        RuntimeError: under ``TRITON_INTERPRET=1`` (the kernel is then not compilable).
        triton.CompilationError: the kernel does not compile for that target.
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel = config.kernel
    if not isinstance(kernel, triton.runtime.jit.JITFunction):
        raise RuntimeError(
            f"{kernel.__name__} is not a JITFunction: unset TRITON_INTERPRET to compile ahead "
            "of time"
        )
    signature = config.signature()
    pointers = [i for i, t in enumerate(signature.values()) if t.startswith("*")]
    source = ASTSource(
        fn=kernel,
        signature=signature,
        constexprs=config.constexprs,
        # torch allocations are 16-byte aligned, as the JIT launcher would specialise them.
        attrs={(i,): [["tt.divisibility", 16]] for i in pointers},
    )
    compiled = triton.compile(
        source, target=GPUTarget("cuda", arch, 32), options={"num_warps": config.num_warps}
    )
    registers, stack, shared, local = _resource_usage(compiled.asm["cubin"])
    return KernelResources(
        kernel=kernel.__name__,
        label=config.label,
        arch=arch,
        num_warps=config.num_warps,
        registers=registers,
        stack=stack,
        local=local,
        shared=max(shared, compiled.metadata.shared),
        # PTX tensor-core instructions: mma.sync.* (sm_80) and wgmma.mma_async.* (sm_90)
        tensor_cores=bool(re.search(r"\b(?:wgmma|mma)\.", compiled.asm["ptx"])),
    )


def kernel_modules():
    """Every module of ``fastgen.kernels``, imported."""
    import fastgen.kernels as package

    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]


def jit_functions(module) -> dict:
    """The ``@triton.jit`` functions defined in ``module``, by name."""
    import triton

    kinds = (triton.runtime.jit.JITFunction,)
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, kinds) and value.fn.__module__ == module.__name__
    }


def uncovered(modules) -> tuple[list[str], list[str]]:
    """All ``@triton.jit`` functions of ``modules``, and those neither configured in
    ``AOT_CONFIGS`` nor called (directly or through other helpers) by a configured kernel."""
    functions, reached = {}, set()
    for module in modules:
        functions.update(jit_functions(module))
        reached.update(config.kernel.__name__ for config in getattr(module, "AOT_CONFIGS", ()))
    frontier = list(reached)
    while frontier:
        source = functions[frontier.pop()].src
        for name in functions:
            if name not in reached and re.search(rf"\b{name}\(", source):
                reached.add(name)
                frontier.append(name)
    return sorted(functions), sorted(set(functions) - reached)


def report(archs=ARCHS) -> tuple[list[KernelResources], list[str], list[str]]:
    """Compile every configured kernel for ``archs``; returns the table, every ``@triton.jit``
    function and those no configured kernel reaches."""
    modules = kernel_modules()
    rows = [
        compile_kernel(config, arch)
        for module in modules
        for config in getattr(module, "AOT_CONFIGS", ())
        for arch in archs
    ]
    return rows, *uncovered(modules)


def format_table(rows: list[KernelResources]) -> str:
    header = ("kernel", "config", "sm", "warps", "regs", "spills (B)", "smem (B)", "mma")
    lines = [header] + [
        (
            *map(str, (r.kernel, r.label, r.arch, r.num_warps, r.registers, r.spills, r.shared)),
            "yes" if r.tensor_cores else "no",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m profiling.aot", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--arch", type=int, action="append", help="sm version (default 80, 90)")
    args = parser.parse_args(argv)
    if interpreter_enabled():
        parser.error("unset TRITON_INTERPRET: ahead-of-time compilation needs the real compiler")
    # Triton 3.9 warns until FMA fusion is chosen explicitly: keep its default (on), as a
    # launch on a GPU would.
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    rows, functions, missing = report(tuple(args.arch or ARCHS))
    if args.json:
        kernels = [dataclasses.asdict(r) for r in rows]
        payload = {"kernels": kernels, "functions": functions, "uncovered": missing}
        print(json.dumps(payload, indent=1))
    else:
        print(format_table(rows))
    spilling = sorted({f"{r.kernel} ({r.label}, sm_{r.arch})" for r in rows if r.spills})
    for problem, names in (("spills", spilling), ("not compiled by any configuration", missing)):
        if names:
            print(f"{problem}: {', '.join(names)}", file=sys.stderr)
    return 1 if spilling or missing else 0


if __name__ == "__main__":
    sys.exit(main())
