"""``python -m profiling.gpu_check --dry-run``: every step of the GPU check runs on the CPU
under Triton's interpreter at tiny sizes and passes (CI's guard that the command prepared for
a GPU window works), and the budget logic skips what does not fit and says so."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from profiling import module_command

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    result = subprocess.run(
        module_command("profiling.gpu_check", "--dry-run", "--out", str(out)),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_every_step_runs_and_passes(dry_run):
    report, _ = dry_run
    assert report["status"] == "pass"
    assert report["environment"]["dry_run"] is True
    steps = {step["step"]: step for step in report["steps"]}
    assert list(steps) == ["kernel-tests", "correctness", "compile", "limits", "timings"]
    assert all(step["status"] == "pass" for step in steps.values()), steps
    assert report["skipped"] == []


def test_report_content(dry_run):
    report, markdown = dry_run
    steps = {step["step"]: step for step in report["steps"]}
    assert "collected" in steps["kernel-tests"]["summary"]
    cases = [case["case"] for case in steps["correctness"]["cases"]]
    for kernel in ("spline", "masked linear", "penalty", "softmin", "mmd", "fused gemm", "sqrtm"):
        assert any(case.startswith(kernel) for case in cases), kernel
    for case in steps["correctness"]["cases"]:
        assert case["outputs"] and all(o["pass"] for o in case["outputs"]), case
    capture = steps["compile"]["cases"][0]["capture"]["captures"]
    assert set(capture) == {"spline", "masked_linear", "penalty", "softmins"}
    limits = {case["case"] for case in steps["limits"]["cases"]}
    assert limits == {
        "sinkhorn-batch",
        "gemm-batch",
        "mmd-columns",
        "penalty-features",
        "masked-linear-rows",
        "softmin-rows",
    }
    providers = {case["case"] for case in steps["timings"]["cases"]}
    assert {"triton", "torch", "hand-written WGAN-GP"} <= providers
    assert markdown.startswith("# gpu_check: pass")


def test_budget_skips_what_does_not_fit(tmp_path):
    sys.path.append(str(ROOT))
    from profiling.gpu_check import DRY_SIZES, Budget, Context

    ctx = Context("cpu", True, DRY_SIZES, Budget(10.0), tmp_path)
    ran = ctx.run_case("step", "small", 1.0, lambda: {"value": 1})
    skipped = ctx.run_case("step", "large", 60.0, lambda: {"value": 2})
    failed = ctx.run_case("step", "broken", 1.0, lambda: 1 / 0)
    assert ran["status"] == "pass" and ran["value"] == 1
    assert skipped == {"case": "large", "status": "skipped"}
    assert len(ctx.skipped) == 1 and ctx.skipped[0].startswith("step: large (estimated 60 s")
    assert failed["status"] == "error" and "ZeroDivisionError" in failed["error"]
