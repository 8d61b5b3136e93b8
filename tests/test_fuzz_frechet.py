"""Property tests of the Fréchet distance and the matrix roots: FD >= 0 and 0 on identical
inputs, symmetric, the float64 value at magnitudes whose squares overflow the dtype (features
~1e20 in float32, ~1e150 in float64; FD scales as c^2), empty batches and errors that name the
caller's argument. Oracle: FD of the unscaled features (homogeneity), and the pytorch-fid
formula with scipy's sqrtm for the value itself. Tiny and time-bounded."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastgen.linalg import trace_sqrt_product, trace_sqrt_product_factors
from fastgen.metrics import calculate_frechet_distance, frechet_distance

FUZZ = settings(max_examples=25, deadline=None)


@st.composite
def feature_pairs(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    d = draw(st.integers(1, 4))
    n1, n2 = draw(st.integers(2, 7)), draw(st.integers(2, 7))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n1, d, generator=g, dtype=torch.float64)
    y = torch.randn(n2, d, generator=g, dtype=torch.float64) * 1.5 + draw(st.floats(0, 2))
    return x, y


def _pytorch_fid(x, y):
    """pytorch-fid's formula with scipy's sqrtm (its oracle), in float64."""
    x, y = x.numpy(), y.numpy()
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


@FUZZ
@given(feature_pairs())
def test_non_negative_symmetric_and_zero_on_identical(pair):
    x, y = pair
    value = frechet_distance(x, y)
    scale = 1 + x.square().sum(1).max().item() + y.square().sum(1).max().item()
    assert value >= -1e-10 * scale
    assert value == pytest.approx(frechet_distance(y, x), rel=1e-9, abs=1e-10 * scale)
    assert abs(frechet_distance(x, x.clone())) <= 1e-10 * scale
    if min(len(x), len(y)) > x.shape[1]:  # scipy's sqrtm is reliable on full-rank products
        assert value == pytest.approx(_pytorch_fid(x, y), rel=1e-6, abs=1e-8 * scale)


@FUZZ
@given(
    feature_pairs(),
    st.sampled_from(
        [
            (torch.float32, 1e20),
            (torch.float32, 1e-20),
            (torch.float64, 1e150),
            (torch.float64, 1e-150),
        ]
    ),
)
def test_magnitudes_whose_squares_overflow(pair, case):
    """FD(c x, c y) = c^2 FD(x, y): features ~1e20 (float32) and ~1e150 (float64), whose
    squares overflow the dtype (float32) or pass 1e300 (float64), and their inverses."""
    x, y = pair
    dtype, c = case
    expected = frechet_distance(x, y) * c * c
    value = frechet_distance((x * c).to(dtype), (y * c).to(dtype))
    rel = 1e-4 if dtype == torch.float32 else 1e-9
    scale = (1 + x.square().sum(1).max().item() + y.square().sum(1).max().item()) * c * c
    assert value == pytest.approx(expected, rel=rel, abs=rel * scale)
    mu1, mu2 = (x * c).mean(0).numpy(), (y * c).mean(0).numpy()
    s1 = np.atleast_2d(np.cov((x * c).numpy(), rowvar=False))
    s2 = np.atleast_2d(np.cov((y * c).numpy(), rowvar=False))
    if dtype == torch.float64:  # 1e300 covariances, given directly
        value = calculate_frechet_distance(mu1, s1, mu2, s2)
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-9 * scale)


def test_value_beyond_the_dtype_is_inf_not_an_error():
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64) * 1e160
    assert frechet_distance(x, x + 1e160) == math.inf


def test_trace_sqrt_product_near_the_float64_limit():
    s1 = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64)) * 1e300
    s2 = torch.diag(torch.tensor([4.0, 9.0], dtype=torch.float64)) * 1e300
    assert trace_sqrt_product(s1, s2).item() == pytest.approx(8e300, rel=1e-12)
    f1 = torch.tensor([[1.0], [0.0]], dtype=torch.float64) * 1e200
    f2 = torch.tensor([[2.0], [0.0]], dtype=torch.float64) * 1e100
    assert trace_sqrt_product_factors(f1, f2).item() == pytest.approx(2e300, rel=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: frechet_distance(torch.zeros(0, 3), torch.randn(4, 3)), "features1 needs"),
        (lambda: frechet_distance(torch.randn(4, 3), torch.zeros(0, 3)), "features2 needs"),
        (lambda: frechet_distance(torch.zeros(4, 0), torch.zeros(4, 0)), "features1 needs"),
        (
            lambda: calculate_frechet_distance(
                np.zeros(0), np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0))
            ),
            "sigma1 must have n >= 1",
        ),
        (
            lambda: calculate_frechet_distance(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2)),
            "sigma1 must be positive semi-definite",
        ),
        (
            lambda: calculate_frechet_distance(
                np.zeros(2), np.eye(2), np.zeros(2), np.full((2, 2), np.inf)
            ),
            "sigma2 must be finite",
        ),
    ],
)
def test_errors_name_the_callers_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
