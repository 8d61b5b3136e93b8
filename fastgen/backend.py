"""The one place that decides whether a call runs a Triton kernel or the PyTorch reference.

``backend="auto" | "triton" | "torch"`` on every public entry point; ``None`` reads the
environment variable ``FASTGEN_BACKEND`` (default ``"auto"``).

* ``auto`` picks Triton when every tensor is on a CUDA device, Triton imports and the kernel
  supports the call (dtype, ...); otherwise the reference.
* ``triton`` insists on the kernel. On CPU tensors that is allowed only under Triton's
  interpreter (``TRITON_INTERPRET=1``, how kernels are tested without a GPU). When the kernel
  cannot serve the call, every reason is collected into one ``ValueError``.
* ``torch`` always runs the reference.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable

import torch

# The one reading of TRITON_INTERPRET, shared with the kernel launchers (imports no triton).
from fastgen.kernels.utils import interpreter_enabled as triton_interpreter_enabled

BACKENDS = ("auto", "triton", "torch")
# What the kernels accept: computed in float32 inside them and returned in the input dtype.
# float64 runs on the reference, which computes the half types in float32 too.
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
HALF_DTYPES = (torch.float16, torch.bfloat16)


# Whether the triton package is installed, looked up once (importing it waits for first use).
TRITON_AVAILABLE = importlib.util.find_spec("triton") is not None


def resolve_backend(
    backend: str | None,
    tensors: Iterable[torch.Tensor],
    *,
    supported_dtypes: tuple[torch.dtype, ...],
    extra_refusals: Iterable[str] = (),
) -> str:
    """Return ``"triton"`` or ``"torch"`` for a call on ``tensors``.

    Args:
        backend: ``"auto"``, ``"triton"``, ``"torch"`` or ``None`` (read ``FASTGEN_BACKEND``).
        tensors: the call's tensor arguments; they must share one device.
        supported_dtypes: dtypes the Triton kernel computes.
        extra_refusals: reasons, already found by the caller, why the kernel cannot serve this
            call (empty when it can).

    Raises:
        ValueError: unknown ``backend`` (or ``FASTGEN_BACKEND``), tensors on different devices,
            or ``backend="triton"`` for a call the kernel cannot serve (all reasons listed).
    """
    source = "backend"
    if backend is None:
        backend, source = os.environ.get("FASTGEN_BACKEND", "auto"), "FASTGEN_BACKEND"
    if backend not in BACKENDS:
        raise ValueError(f"{source} must be one of {BACKENDS}, got {backend!r}")
    tensors = list(tensors)
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"all tensors must be on one device, got {sorted(map(str, devices))}")
    if backend == "torch":
        return "torch"

    refusals = list(extra_refusals)
    if not TRITON_AVAILABLE:
        refusals.append("triton is not installed")
    device = devices.pop() if devices else torch.device("cpu")
    if device.type == "cpu":
        if not triton_interpreter_enabled():
            refusals.append("tensors are on the CPU and TRITON_INTERPRET=1 is not set")
    elif device.type != "cuda":
        refusals.append(f"tensors are on {device.type}, Triton kernels need cuda")
    dtypes = {t.dtype for t in tensors}
    for dtype in sorted(dtypes - set(supported_dtypes), key=str):
        names = ", ".join(str(d).removeprefix("torch.") for d in supported_dtypes)
        refusals.append(f"dtype {str(dtype).removeprefix('torch.')} is not one of {names}")

    if backend == "auto":
        # The interpreter is a testing tool: auto never chooses it.
        return "torch" if refusals or device.type != "cuda" else "triton"
    if refusals:
        raise ValueError("backend='triton' cannot run this call: " + "; ".join(refusals))
    return "triton"
