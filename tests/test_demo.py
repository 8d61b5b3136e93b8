"""``fastgen demo``: a short run end to end through the installed console script, and the
command line's errors."""

import json
import math
import shutil
import subprocess
import sys

import pytest

from fastgen import cli

MODELS = ("flow", "gan", "baseline")
METRICS = ("sinkhorn", "wasserstein_1d", "ks", "frechet", "kid", "classifier_auc",
           "generated_samples_per_second")  # fmt: skip


def test_short_run_writes_table_json_and_figures(tmp_path):
    script = shutil.which("fastgen")
    command = [script] if script else [sys.executable, "-m", "fastgen.cli"]
    result = subprocess.run([*command, "demo", "--steps", "20", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fastgen demo" in result.stdout and "classifier AUC" in result.stdout
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["settings"]["steps"] == 20
    for model in MODELS:
        metrics = summary["models"][model]
        for key in METRICS:
            values = metrics[key] if isinstance(metrics[key], list) else [metrics[key]]
            assert all(math.isfinite(v) for v in values), (model, key, metrics[key])
        assert 0 <= metrics["classifier_auc"] <= 1
        assert len(metrics["wasserstein_1d"]) == len(metrics["ks"]) == 3
    assert math.isfinite(summary["models"]["flow"]["nll"])
    assert math.isfinite(summary["models"]["baseline"]["nll"])
    assert summary["models"]["gan"]["nll"] is None
    assert set(summary["backends"].values()) == {"torch"}  # CPU: the reference everywhere
    for figure in ("marginals.png", "radius_energy.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--steps", "0"], "--steps must be >= 1, got 0"),
        (["--steps", "ten"], "argument --steps: invalid int value: 'ten'"),
        (["--device", "tpu"], "--device: invalid choice"),
        (["--backend", "numpy"], "--backend: invalid choice"),
        (["--seed", "1.5"], "argument --seed: invalid int value: '1.5'"),
        (["--seed", "-1"], "--seed must be >= 0 and <= 9223372036854775807, got -1"),
    ],
)
def test_invalid_arguments_exit_2(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_out_must_be_a_directory(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--out", str(path)])
    assert exit_info.value.code == 2
    assert "is not a directory" in capsys.readouterr().err
