"""What only a GPU can show (``gpu`` marker, skipped without CUDA): every kernel at GPU scale
against the float64 reference with NaN-poisoned outputs (float32 IEEE and TF32, float16,
bfloat16; Newton-Schulz converging in TF32), and the CUDA limits (grids past 65,535 on axes
1 and 2, offsets past 2^31 elements, up to 40 GB), each limit in its own process. The cases
are ``profiling.gpu_check``'s (``python -m profiling.gpu_check`` runs them within a time
budget and writes a report); ``pytest -m gpu`` runs them all."""

import json
import subprocess
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")

from profiling import module_command  # noqa: E402
from profiling.gpu_check import (  # noqa: E402
    GPU_SIZES,
    LIMITS,
    Budget,
    Context,
    correctness_cases,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA GPU (GPU-scale sizes, more than 2^31 elements, TF32)",
    ),
]

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    name: fn
    for name, _, fn in correctness_cases(
        Context("cuda", False, GPU_SIZES, Budget(float("inf")), ROOT)
    )
}


@pytest.mark.parametrize("name", list(CASES))
def test_gpu_scale_correctness(name):
    result = CASES[name]()
    failed = [row for row in result["outputs"] if not row["pass"]]
    assert not failed, failed


@pytest.mark.parametrize("name", [limit.name for limit in LIMITS])
def test_limit(name):
    done = subprocess.run(
        module_command("profiling.gpu_check", "--limit", name),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])[name]
    assert result["status"] == "pass", result
