"""Fréchet distance (FID) against pytorch-fid's formula with scipy.linalg.sqrtm (float64),
streaming statistics against two-pass np.cov, and input validation."""

import numpy as np
import pytest
import torch
from fid_oracle import correlated_features, pytorch_fid_formula

from fastgen.metrics import (
    FeatureStatistics,
    FrechetDistance,
    calculate_frechet_distance,
    frechet_distance,
)

pytest.importorskip("scipy", reason="scipy is the oracle of these tests")

RTOL = 1e-6  # float64 paths


def _pair(seed, d, n1, n2):
    rng = np.random.default_rng(seed)
    x1 = correlated_features(rng, n1, d)
    x2 = correlated_features(rng, n2, d, shift=rng.standard_normal(d) * 0.3)
    return x1, x2


def _stats(x):
    return x.mean(0), np.cov(x, rowvar=False)


def _check_all_routes(x1, x2):
    expected = pytorch_fid_formula(*_stats(x1), *_stats(x2))
    mu1, s1 = _stats(x1)
    mu2, s2 = _stats(x2)
    got = {
        "auto (numpy)": calculate_frechet_distance(mu1, s1, mu2, s2),
        "eigh (torch)": calculate_frechet_distance(
            *(torch.from_numpy(a) for a in (mu1, s1, mu2, s2)), method="eigh"
        ),
        "features auto": frechet_distance(torch.from_numpy(x1), torch.from_numpy(x2)),
        "features eigh": frechet_distance(x1, x2, method="eigh"),
    }
    for name, value in got.items():
        assert isinstance(value, float), name
        assert value == pytest.approx(expected, rel=RTOL), f"{name}: {value} vs {expected}"


@pytest.mark.parametrize(
    "d, n1, n2",
    [
        (2, 500, 400),
        (2, 2, 2),
        (64, 1000, 700),
        (64, 40, 50),
        (64, 30, 1000),
        (512, 2000, 1500),
        (512, 300, 200),
    ],
    ids=lambda v: str(v),
)
def test_matches_pytorch_fid_formula(d, n1, n2):
    """N > D (full rank) and N <= D (rank-deficient covariances), and mixed."""
    _check_all_routes(*_pair(d + n1 + n2, d, n1, n2))


def test_matches_pytorch_fid_formula_d2048_rank_deficient():
    """The InceptionV3 size with N < D; scipy takes 10-20 s here, so one case only."""
    _check_all_routes(*_pair(7, 2048, 600, 500))


def test_identity_case_is_exactly_2048():
    """pytorch-fid's own test: equal identity covariances, means 0 and 1, D = 2048."""
    d = 2048
    mu1, mu2, sigma = np.zeros(d), np.ones(d), np.eye(d)
    assert calculate_frechet_distance(mu1, sigma, mu2, sigma) == 2048.0
    assert calculate_frechet_distance(mu1, sigma, mu2, sigma, method="eigh") == 2048.0


def test_newton_schulz_method_full_rank_and_refusal_when_singular():
    x1, x2 = _pair(3, 32, 400, 300)
    expected = pytorch_fid_formula(*_stats(x1), *_stats(x2))
    value = calculate_frechet_distance(*_stats(x1), *_stats(x2), method="newton_schulz")
    assert value == pytest.approx(expected, rel=RTOL)
    x1, x2 = _pair(4, 32, 300, 10)  # sigma2 singular: the symmetric product is too
    with pytest.raises(ValueError, match="did not converge"):
        calculate_frechet_distance(*_stats(x1), *_stats(x2), method="newton_schulz")


def test_inputs_numpy_torch_dlpack_and_float32():
    x1, x2 = _pair(5, 16, 100, 80)
    mu1, s1 = _stats(x1)
    mu2, s2 = _stats(x2)
    reference = calculate_frechet_distance(mu1, s1, mu2, s2)
    tensors = [torch.from_numpy(a) for a in (mu1, s1, mu2, s2)]
    assert calculate_frechet_distance(*tensors) == pytest.approx(reference, rel=1e-12)

    class DLPackOnly:  # any DLPack producer (CuPy, JAX, ...)
        def __init__(self, array):
            self.array = array

        def __dlpack__(self, **kwargs):
            return self.array.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self.array.__dlpack_device__()

    wrapped = [DLPackOnly(a) for a in (mu1, s1, mu2, s2)]
    assert calculate_frechet_distance(*wrapped) == pytest.approx(reference, rel=1e-12)
    # float32 statistics are computed in float64: the same number as their float64 copies.
    f32 = [a.astype(np.float32) for a in (mu1, s1, mu2, s2)]
    expected = pytorch_fid_formula(*(a.astype(np.float64) for a in f32))
    assert calculate_frechet_distance(*f32) == pytest.approx(expected, rel=RTOL)


def test_scalar_statistics_as_pytorch_fid():
    """np.atleast_1d / atleast_2d: scalars are D = 1."""
    value = calculate_frechet_distance(
        np.float64(0.5), np.float64(4.0), np.float64(-1.0), np.float64(1.0)
    )
    assert value == pytest.approx(pytorch_fid_formula(0.5, 4.0, -1.0, 1.0), rel=1e-12)
    assert value == pytest.approx(1.5**2 + 4 + 1 - 2 * 2, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_streaming_statistics_equal_two_pass_np_cov(dtype):
    """Uneven batch splits (1, 2, 97, ...) and merges of separately fed instances equal
    np.mean / np.cov of the concatenation to 1e-12 relative (float32 features are
    accumulated in float64)."""
    rng = np.random.default_rng(11)
    d = 24
    # a large common offset: the naive sum of squares would lose about 8 digits here
    x = (correlated_features(rng, 1337, d) + 1e4).astype(np.float64)
    features = torch.from_numpy(x).to(dtype)
    reference = features.double().numpy()
    expected_mean, expected_cov = reference.mean(0), np.cov(reference, rowvar=False)
    splits = [1, 2, 97, 400, 3, 500, 334]
    parts = features.split(splits)
    whole = FeatureStatistics(d)
    for part in parts:
        whole.update(part)
    left, right = FeatureStatistics(d), FeatureStatistics(d)
    for i, part in enumerate(parts):
        (left if i % 2 else right).update(part.numpy())
    merged = FeatureStatistics(d).merge(left).merge(right)
    for stats in (whole, merged):
        assert stats.num_samples == 1337
        assert stats.mean.dtype == torch.float64 and stats.covariance.shape == (d, d)
        np.testing.assert_allclose(stats.mean.numpy(), expected_mean, rtol=1e-12)
        scale = np.abs(expected_cov).max()
        np.testing.assert_allclose(
            stats.covariance.numpy(), expected_cov, rtol=0, atol=1e-12 * scale
        )
    assert left.num_samples + right.num_samples == 1337  # merge leaves its arguments alone


def test_frechet_distance_object_streams_like_the_function():
    x1, x2 = _pair(13, 20, 300, 250)
    metric = FrechetDistance(20)
    metric.update(real=x1[:100])
    metric.update(real=torch.from_numpy(x1[100:]), fake=x2[:7])
    metric.update(fake=x2[7:])
    expected = pytorch_fid_formula(*_stats(x1), *_stats(x2))
    assert metric.compute() == pytest.approx(expected, rel=RTOL)
    metric.reset(real=False)
    assert metric.real.num_samples == 300 and metric.fake.num_samples == 0
    with pytest.raises(ValueError, match="fake"):
        metric.compute()
    metric.update(fake=x2)
    assert metric.compute() == pytest.approx(expected, rel=RTOL)
    metric.reset()
    assert metric.real.num_samples == 0


def test_errors_name_the_argument():
    mu, sigma = np.zeros(3), np.eye(3)
    with pytest.raises(ValueError, match="mu1 and mu2"):
        calculate_frechet_distance(mu, sigma, np.zeros(4), sigma)
    with pytest.raises(ValueError, match="sigma1 and sigma2"):
        calculate_frechet_distance(mu, sigma, mu, np.eye(4))
    with pytest.raises(ValueError, match=r"D = len\(mu1\) = 4"):
        calculate_frechet_distance(np.zeros(4), sigma, np.zeros(4), sigma)
    with pytest.raises(ValueError, match="mu2 must be finite"):
        calculate_frechet_distance(mu, sigma, np.array([0, np.nan, 0]), sigma)
    with pytest.raises(ValueError, match="sigma1 must be symmetric"):
        calculate_frechet_distance(mu, np.triu(np.ones((3, 3))), mu, sigma)
    with pytest.raises(ValueError, match="positive semi-definite"):
        calculate_frechet_distance(mu, sigma, mu, -sigma)
    with pytest.raises(ValueError, match="positive semi-definite"):
        calculate_frechet_distance(mu, -sigma, mu, sigma)
    with pytest.raises(TypeError, match="sigma2 must be a torch.Tensor, a NumPy array"):
        calculate_frechet_distance(mu, sigma, mu, [[1.0]])
    with pytest.raises(TypeError, match="mu1 must have a floating-point dtype"):
        calculate_frechet_distance(np.zeros(3, dtype=np.int64), sigma, mu, sigma)
    with pytest.raises(ValueError, match="eps must be >= 0, got -1.0"):
        calculate_frechet_distance(mu, sigma, mu, sigma, eps=-1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        calculate_frechet_distance(mu, sigma, mu, sigma, method="scipy")
    with pytest.raises(ValueError, match="features2 needs N >= 2"):
        frechet_distance(np.zeros((5, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="same size along axis -1"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"features must be \(N, 3\)"):
        FeatureStatistics(3).update(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="features must be finite"):
        FeatureStatistics(3).update(np.full((5, 3), np.inf))
    with pytest.raises(ValueError, match="covariance needs at least 2 samples, got 1"):
        _ = FeatureStatistics(3).update(np.zeros((1, 3))).covariance
    with pytest.raises(ValueError, match="num_features = 3"):
        FeatureStatistics(3).merge(FeatureStatistics(4))
    with pytest.raises(TypeError, match="dtype must be"):
        FeatureStatistics(3, dtype=torch.float16)
    with pytest.raises(ValueError, match="num_features must be >= 1, got 0"):
        FeatureStatistics(0)
    with pytest.raises(ValueError, match="update needs"):
        FrechetDistance(3).update()
