"""The one backend chooser (fastgen.backend.resolve_backend)."""

import pytest
import torch

from fastgen.backend import resolve_backend, triton_interpreter_enabled

SUPPORTED = (torch.float32, torch.float16, torch.bfloat16)


def _resolve(backend, *tensors, **kwargs):
    return resolve_backend(backend, tensors, supported_dtypes=SUPPORTED, **kwargs)


def test_torch_always_runs_the_reference():
    assert _resolve("torch", torch.zeros(3)) == "torch"
    assert _resolve("torch", torch.zeros(3, dtype=torch.float64)) == "torch"


def test_auto_on_cpu_picks_the_reference_even_under_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert _resolve("auto", torch.zeros(3)) == "torch"


def test_environment_default(monkeypatch):
    monkeypatch.setenv("FASTGEN_BACKEND", "torch")
    assert _resolve(None, torch.zeros(3)) == "torch"
    monkeypatch.setenv("FASTGEN_BACKEND", "fast")
    with pytest.raises(ValueError, match=r"FASTGEN_BACKEND must be one of .* got 'fast'"):
        _resolve(None, torch.zeros(3))


def test_unknown_backend():
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', 'triton', 'torch'\)"):
        _resolve("cuda", torch.zeros(3))


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1 is not set"):
        _resolve("triton", torch.zeros(3))
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    pytest.importorskip("triton", reason="triton is not installed")
    assert _resolve("triton", torch.zeros(3)) == "triton"


def test_triton_refusals_are_collected(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError) as info:
        _resolve("triton", torch.zeros(3, dtype=torch.float64), extra_refusals=["K too large"])
    message = str(info.value)
    assert "K too large" in message and "TRITON_INTERPRET=1" in message
    assert "dtype float64 is not one of float32, float16, bfloat16" in message


def test_tensors_on_several_devices():
    with pytest.raises(ValueError, match="one device"):
        _resolve("torch", torch.zeros(3), torch.zeros(3, device="meta"))


def test_non_cuda_accelerators_are_refused():
    with pytest.raises(ValueError, match="tensors are on meta"):
        _resolve("triton", torch.zeros(3, device="meta"))
    assert _resolve("auto", torch.zeros(3, device="meta")) == "torch"


@pytest.mark.parametrize(
    "value", ["1", "0", "", "true", "TRUE", "On", "yes", "y", "off", "2", " 1"]
)
def test_interpreter_check_reads_the_variable_as_triton_does(monkeypatch, value):
    """The one TRITON_INTERPRET reading agrees with Triton's own (the oracle)."""
    knobs = pytest.importorskip("triton.knobs", reason="triton is not installed (or < 3.4)")
    monkeypatch.setenv("TRITON_INTERPRET", value)
    assert triton_interpreter_enabled() == knobs.runtime.interpret
    monkeypatch.delenv("TRITON_INTERPRET")
    assert not triton_interpreter_enabled() and not knobs.runtime.interpret
