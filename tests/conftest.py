"""Test configuration: without a GPU, Triton kernels run under Triton's CPU interpreter.

``TRITON_INTERPRET`` is read when ``@triton.jit`` decorates a kernel, so it is set here,
before any test imports ``fastgen.kernels``. On a CUDA machine the kernels run for real.

Every test runs from its own seed, derived from its node id (so the same test draws the same
numbers in any run, alone or in the whole suite, and a failure replays by rerunning its node
id): the global torch, NumPy and ``random`` generators are seeded with it before the test,
the ``generator`` (torch) and ``rng`` (NumPy) fixtures are fresh generators seeded with it,
and a failing test's report shows it in a "seed" section (and in JUnit XML as a property).
"""

import hashlib
import os
import random
import sys
from pathlib import Path

import numpy as np
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
SEED = pytest.StashKey[int]()


def seed_of(nodeid: str) -> int:
    """A 32-bit seed from a test's node id (stable across runs, platforms and processes,
    unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:4], "little")


@pytest.fixture(autouse=True)
def seed(request, record_property) -> int:
    """This test's seed; the global generators are seeded with it before the test runs."""
    value = seed_of(request.node.nodeid)
    request.node.stash[SEED] = value
    record_property("seed", value)
    torch.manual_seed(value)
    np.random.seed(value)  # noqa: NPY002 - the legacy global state, for code that uses it
    random.seed(value)
    return value


@pytest.fixture
def generator(seed) -> torch.Generator:
    """A CPU torch generator seeded with this test's seed."""
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def rng(seed) -> np.random.Generator:
    """A NumPy generator seeded with this test's seed."""
    return np.random.default_rng(seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and SEED in item.stash:
        report.sections.append(
            ("seed", f"{item.stash[SEED]} (derived from the node id {item.nodeid!r})")
        )
    return report


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
