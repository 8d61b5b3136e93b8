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


@pytest.fixture
def device():
    return DEVICE
