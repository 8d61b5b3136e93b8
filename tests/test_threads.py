"""The intra-op threads rule of fastgen.threads (the load average is patched: the rule, not
this machine's load, is under test)."""

import pytest
import torch

from fastgen import threads


@pytest.fixture
def idle(monkeypatch):
    def set_idle(cores):
        monkeypatch.setattr(threads, "idle_cores", lambda: cores)

    return set_idle


def test_small_workloads_get_one_thread(idle):
    idle(16)
    for elements in (0, 1, 2048 * 128, 2 * threads.MIN_ELEMENTS_PER_THREAD - 1):
        assert threads.recommended_threads(elements) == 1


def test_large_workloads_get_the_idle_cores_they_fill(idle):
    idle(4)
    assert threads.recommended_threads(2 * threads.MIN_ELEMENTS_PER_THREAD) == 2
    assert threads.recommended_threads(3 * threads.MIN_ELEMENTS_PER_THREAD + 5) == 3
    assert threads.recommended_threads(100 * threads.MIN_ELEMENTS_PER_THREAD) == 4
    idle(1)  # a busy machine: one thread whatever the size
    assert threads.recommended_threads(100 * threads.MIN_ELEMENTS_PER_THREAD) == 1


def test_idle_cores_subtract_other_runnable_processes(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    for load, expected in ((0.2, 8), (1.0, 8), (3.0, 6), (8.6, 1), (40.0, 1)):
        monkeypatch.setattr(threads.os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert threads.idle_cores() == expected, load


def test_set_threads_applies_the_rule_or_the_environment(monkeypatch):
    previous = torch.get_num_threads()
    monkeypatch.delenv("FASTGEN_NUM_THREADS", raising=False)
    try:
        assert threads.set_threads(10) == 1
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("FASTGEN_NUM_THREADS", "2")
        assert threads.set_threads(10) == 2
        assert torch.get_num_threads() == 2
        for bad in ("0", "two", "-1"):
            monkeypatch.setenv("FASTGEN_NUM_THREADS", bad)
            with pytest.raises(ValueError, match="FASTGEN_NUM_THREADS must be a positive"):
                threads.set_threads(10)
    finally:
        torch.set_num_threads(previous)


def test_bad_input():
    with pytest.raises(ValueError, match="largest_op_elements"):
        threads.recommended_threads(-1)
    with pytest.raises(TypeError, match="largest_op_elements"):
        threads.recommended_threads(2.5)
