"""Helpers shared by the kernel launchers. Imports only torch and the standard library, so that
``fastgen.backend`` can use :func:`interpreter_enabled` without importing triton."""

from __future__ import annotations

import contextlib
import dataclasses
import os

import torch

# The values of TRITON_INTERPRET that switch Triton's interpreter on: Triton reads the variable
# with its getenv_bool (triton.knobs.runtime.interpret), case-insensitively and unstripped.
INTERPRETER_ON = ("1", "y", "yes", "on", "true")


def interpreter_enabled() -> bool:
    """Whether ``TRITON_INTERPRET`` switches Triton's CPU interpreter on, read as Triton reads
    it, so that the launchers and the backend chooser agree with the ``@triton.jit`` decorator.
    (Triton reads it when a kernel is decorated: set it before importing the kernels.)"""
    return os.environ.get("TRITON_INTERPRET", "").lower() in INTERPRETER_ON


# CUDA's grid limits: axis 0 up to 2^31 - 1 blocks, axes 1 and 2 up to 65,535.
MAX_GRID = (2**31 - 1, 65_535, 65_535)


def checked_grid(*axes: int) -> tuple[int, ...]:
    """``axes`` as a launch grid, after checking CUDA's limits (a launcher puts its unbounded
    dimension on axis 0): a clear error instead of CUDA's ``invalid argument``.

    Raises:
        ValueError: an axis beyond its limit.
    """
    for i, (size, limit) in enumerate(zip(axes, MAX_GRID, strict=False)):
        if size > limit:
            raise ValueError(f"grid axis {i} has {size} blocks, CUDA allows at most {limit}")
    return tuple(axes)


def tf32_enabled() -> bool:
    """Whether PyTorch lets float32 matmuls on CUDA use TF32 tensor cores, read through the
    ``fp32_precision`` API where it exists (torch >= 2.9; it reflects the legacy flag too)
    and ``allow_tf32`` otherwise: reading ``allow_tf32`` raises once a user has set the new
    API. Default off."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        return matmul.fp32_precision == "tf32"
    return bool(matmul.allow_tf32)


def input_precision(dtype: torch.dtype) -> str:
    """``tl.dot``'s ``input_precision`` for operands of ``dtype``, as ``torch.matmul`` would
    compute them on the same GPU: ``"tf32"`` for float32 when :func:`tf32_enabled`, else
    ``"ieee"`` (float16 / bfloat16 operands use the tensor cores either way). The one place
    that decides it."""
    return "tf32" if dtype == torch.float32 and tf32_enabled() else "ieee"


def new_empty(shape, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Every launcher allocates its outputs here, so that tests can poison them (fill them
    with NaN) and catch an element a kernel forgot to write."""
    return torch.empty(shape, dtype=dtype, device=device)


def device_guard(tensor: torch.Tensor):
    """Make ``tensor``'s GPU the current one for the launch (Triton launches on the current
    device); a no-op for CPU tensors under the interpreter."""
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()


@dataclasses.dataclass(frozen=True)
class AotConfig:
    """One compilation of a kernel: argument types by name (``"*fp32"``, ``"i32"``,
    ``"fp32"``; unlisted pointers are ``*fp32``, other arguments ``i32``), constexpr values
    (also integers specialised as constants, such as the JIT's integers equal to 1), and the
    arguments divisible by 16 (None: every pointer, as torch allocations are)."""

    kernel: object  # triton.runtime.jit.JITFunction
    constexprs: dict
    types: dict
    num_warps: int = 4
    label: str = ""
    divisible: tuple | None = None

    def signature(self) -> dict:
        signature = {}
        for param in self.kernel.params:
            name = param.name
            if param.is_constexpr or name in self.constexprs:
                signature[name] = "constexpr"
            elif name in self.types:
                signature[name] = self.types[name]
            elif name.endswith("_ptr"):
                signature[name] = "*fp32"
            else:
                signature[name] = "i32"
        return signature
