"""emd2 as a drop-in for POT's ``ot.emd2`` (the oracle, called on the same inputs): NumPy
arrays and lists in give a ``float`` out, torch tensors a 0-d tensor in their dtype, as POT;
float32 weights judged with a float32 tolerance; NaN costs or points give NaN (POT: 0), inf
costs a clear error; numItermax checked by name. Property tests are tiny and time-bounded."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgen.metrics import emd, emd2

ot = pytest.importorskip("ot", reason="POT is not installed")

FUZZ = settings(max_examples=30, deadline=None)


@st.composite
def problems(draw):
    """Weights (uniform or random) and a cost matrix of 1 to 6 points a side, seeded."""
    seed = draw(st.integers(0, 2**31 - 1))
    n, m = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    uniform = draw(st.booleans())
    a = np.full(n, 1 / n) if uniform else rng.random(n) + 0.1
    b = np.full(m, 1 / m) if uniform else rng.random(m) + 0.1
    return a / a.sum(), b / b.sum(), rng.random((n, m)) * 10 ** draw(st.floats(-3, 3))


@FUZZ
@given(problems(), st.sampled_from(["numpy", "list", "torch"]), st.sampled_from([32, 64]))
def test_matches_pot_value_and_type(problem, kind, bits):
    dtype = np.float32 if bits == 32 else np.float64
    a, b, cost = (t.astype(dtype) for t in problem)
    if kind == "list":
        a, b = a.tolist(), b.tolist()
    elif kind == "torch":
        a, b, cost = (torch.from_numpy(t) for t in (a, b, cost))
    theirs = ot.emd2(a, b, cost)
    ours = emd2(a, b, cost)
    assert type(ours) is type(theirs)
    if kind == "torch":
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        ours, theirs = ours.item(), theirs.item()
    assert ours == pytest.approx(theirs, rel=1e-6 if bits == 32 else 1e-12, abs=1e-30)


@pytest.mark.parametrize("n", [3, 7, 11])
def test_uniform_float32_weights_are_accepted(n):
    """1/n in float32 sums to 1 only within float32 round-off (was refused)."""
    a = torch.full((n,), 1 / n)
    b = torch.full((2,), 0.5)
    cost = torch.rand(n, 2, generator=torch.Generator().manual_seed(n))
    assert emd2(a, b, cost).item() == pytest.approx(ot.emd2(a, b, cost).item(), rel=1e-6)


def test_empty_weights_mean_uniform_as_pot():
    cost = np.array([[1.0, 2.0], [2.0, 1.0], [0.5, 3.0]])
    assert emd2([], [], cost) == pytest.approx(ot.emd2([], [], cost), rel=1e-12)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_nan_cost_gives_nan(kind):
    cost = np.ones((2, 2))
    cost[0, 1] = math.nan
    a = b = np.full(2, 0.5)
    if kind == "torch":
        a, b, cost = (torch.from_numpy(t) for t in (a, b, cost))
    assert math.isnan(float(emd2(a, b, cost)))  # POT returns 0 with a warning


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_infinite_cost_is_refused_by_name(bad):
    cost = torch.ones(2, 2, dtype=torch.float64)
    cost[1, 0] = bad
    with pytest.raises(ValueError, match="M must not hold inf"):
        emd2(torch.full((2,), 0.5, dtype=torch.float64), torch.full((2,), 0.5).double(), cost)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_points_give_nan(bad):
    x = torch.rand(3, 2, dtype=torch.float64, requires_grad=True)
    y = torch.rand(4, 2, dtype=torch.float64)
    poisoned = x.clone()
    poisoned[0, 1] = bad
    assert torch.isnan(emd(poisoned, y))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_weights_are_refused_by_name(bad):
    a = np.array([0.5, bad])
    with pytest.raises(ValueError, match="a must be finite"):
        emd2(a, np.full(2, 0.5), np.ones((2, 2)))


@pytest.mark.parametrize(
    "value, error",
    [(0, ValueError), (-1, ValueError), (2**64, ValueError), (1.5, TypeError), (True, TypeError)],
)
def test_num_iter_max_is_checked_by_name(value, error):
    cost = np.ones((2, 2))
    with pytest.raises(error, match="numItermax"):
        emd2([], [], cost, numItermax=value)
    with pytest.raises(error, match="numItermax"):
        emd(torch.rand(2, 1), torch.rand(2, 1), numItermax=value)


def test_torch_and_numpy_are_not_mixed():
    with pytest.raises(TypeError, match="all be torch tensors or all NumPy"):
        emd2(torch.full((2,), 0.5), np.full(2, 0.5), np.ones((2, 2)))
