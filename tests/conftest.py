"""Test configuration: without a GPU, Triton kernels run under Triton's CPU interpreter.

``TRITON_INTERPRET`` is read when ``@triton.jit`` decorates a kernel, so it is set here,
before any test imports ``fastgen.kernels``. On a CUDA machine the kernels run for real.
"""

import os
import sys
from pathlib import Path

import pytest
import torch

# The repository's tools (profiling/) are not installed: make them importable, after
# site-packages, so that an installed fastgen still wins over the source tree (whose
# fastgen/ does not contain kernels/; pyproject maps it there).
sys.path.append(str(Path(__file__).resolve().parents[1]))

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# Triton 3.9 warns until the FMA-fusion default is chosen explicitly; keep its default (on).
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _nan_empty(shape, dtype, device):
    # integer outputs (counts) get their most negative value, which no count can equal
    fill = float("nan") if dtype.is_floating_point else torch.iinfo(dtype).min
    return torch.full(shape, fill, dtype=dtype, device=device)


@pytest.fixture(autouse=True)
def poisoned_outputs(monkeypatch):
    """In every test, every tensor a kernel launcher allocates (``new_empty``) starts as NaN
    (integers: their minimum): an element a kernel forgot to write fails the comparison."""
    from fastgen.backend import TRITON_AVAILABLE

    if TRITON_AVAILABLE:
        from profiling.aot import kernel_modules

        for module in kernel_modules():
            if hasattr(module, "new_empty"):
                monkeypatch.setattr(module, "new_empty", _nan_empty)


@pytest.fixture
def device():
    return DEVICE
