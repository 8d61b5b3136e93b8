"""torch.compile captures the Triton path without a GPU (``profiling.compile_capture``: fake
tensors, kernels compiled to Triton IR for a stub sm_90 target): the spline, the masked
linear, the penalty and the softmins each give one forward and one backward graph that launch
their Triton kernels; ``sinkhorn_divergence`` with ``diameter`` given and MMD^2 (KID's
per-subset computation) compile without a graph break. Runs in a subprocess: this test
process decorated the kernels under TRITON_INTERPRET=1, and interpreted kernels cannot be
traced."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from profiling import module_command

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")


@pytest.fixture(scope="module")
def report():
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    result = subprocess.run(
        module_command("profiling.compile_capture", "--json"),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "name, forward, backward",
    [
        ("spline", ["_rq_spline_forward_kernel"], ["_rq_spline_backward_kernel"]),
        (
            "masked_linear",
            ["_masked_linear_forward_kernel"],
            ["_masked_linear_grad_input_kernel", "_masked_linear_grad_weight_kernel"],
        ),
        ("penalty", ["_sum_squares_kernel"], ["_penalty_backward_kernel"]),
        ("softmins", ["_softmin_kernel"], ["_softmin_grad_kernel"]),
    ],
)
def test_one_forward_and_one_backward_graph(report, name, forward, backward):
    capture = report["captures"][name]
    assert capture == {"graphs": 2, "forward": forward, "backward": backward}


@pytest.mark.parametrize("name", ["sinkhorn_divergence(diameter=4)", "mmd2 (KID subset)"])
def test_no_graph_breaks(report, name):
    assert report["breaks"][name] == {"graphs": 1, "graph_breaks": 0, "reasons": []}


def test_gradient_penalty_breaks_only_at_the_inner_autograd_call(report):
    """``gradient_penalty`` differentiates the critic inside (``torch.autograd.grad``), which
    Dynamo does not trace: the breaks are there and nowhere else."""
    breaks = report["breaks"]["gradient_penalty"]
    assert breaks["graph_breaks"] <= 3
    allowed = ("requires_grad_() intermediate leaked as output", "using `torch.autograd.grad`")
    assert all(reason.startswith(allowed) for reason in breaks["reasons"]), breaks
