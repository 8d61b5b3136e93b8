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
    """One representative compilation of a kernel: argument types by name (``"*fp32"``,
    ``"i32"``, ``"fp32"``; constexpr arguments are filled in) and constexpr values."""

    kernel: object  # triton.runtime.jit.JITFunction
    constexprs: dict
    types: dict
    num_warps: int = 4
    label: str = ""

    def signature(self) -> dict:
        signature = {}
        for param in self.kernel.params:
            name = param.name
            if param.is_constexpr:
                signature[name] = "constexpr"
            elif name in self.types:
                signature[name] = self.types[name]
            elif name.endswith("_ptr"):
                signature[name] = "*fp32"
            else:
                signature[name] = "i32"
        return signature
