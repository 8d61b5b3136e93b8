"""FPD / KPD against JetNet's ``fpd`` / ``kpd`` procedures written out with their own
building blocks (scipy sqrtm Fréchet distance, scipy.optimize.curve_fit, scipy.stats.iqr,
the dense MMD formula) on small sizes: same draws for the same seed, same numbers."""

import warnings

import numpy as np
import pytest
from fid_oracle import pytorch_fid_formula
from mmd_oracle import dense_mmd2

from fastgen.metrics import frechet_physics_distance, kernel_physics_distance
from fastgen.metrics.physics import _fit_intercept

scipy_optimize = pytest.importorskip("scipy.optimize")
scipy_stats = pytest.importorskip("scipy.stats")


def _normalise(x, y):
    maxes = np.max(np.abs(x), axis=0)
    maxes[maxes == 0] = 1
    return x / maxes, y / maxes


def jetnet_fpd(real, gen, min_samples, max_samples, num_batches, num_points, seed):
    x, y = _normalise(real, gen)
    batches = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    vals = []
    for batch_size in batches:
        points = []
        for _ in range(num_batches):
            a = x[rng.choice(len(x), size=batch_size)]
            b = y[rng.choice(len(y), size=batch_size)]
            points.append(
                pytorch_fid_formula(
                    a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
                )
            )
        vals.append(np.mean(points))
    # JetNet calls curve_fit with its default tolerances (1e-8 on the cost), which stops
    # up to ~1e-4 relative short of the least-squares optimum that fastgen computes exactly
    # when the intercept is small; tightened here so that the oracle is the optimum itself.
    params, covs = scipy_optimize.curve_fit(
        lambda t, a, b: a + b * t,
        1 / batches,
        vals,
        bounds=([0, 0], [np.inf, np.inf]),
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
    )
    return params[0], np.sqrt(np.diag(covs)[0])


def jetnet_kpd(real, gen, num_batches, batch_size, seed):
    x, y = _normalise(real, gen)
    vals = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        a = x[rng.choice(len(x), size=batch_size)]
        b = y[rng.choice(len(y), size=batch_size)]
        vals.append(dense_mmd2(a, b, degree=4))
    return np.median(vals), scipy_stats.iqr(vals, rng=(16.275, 83.725)) / 2


def _features(seed, n=600, d=5, shift=0.15):
    rng = np.random.default_rng(seed)
    scales = np.array([1.0, 10.0, 0.1, 3.0, 0.5])[:d]
    real = rng.standard_normal((n, d)) * scales
    gen = (rng.standard_normal((n + 37, d)) + shift) * scales
    return real, gen


@pytest.mark.filterwarnings("ignore:Recommended number of samples")
@pytest.mark.parametrize("shift", [0.3, 0.0])
def test_fpd_matches_jetnet(shift):
    real, gen = _features(1, shift=shift)
    args = dict(min_samples=100, max_samples=400, num_batches=3, num_points=5, seed=7)
    value, error = frechet_physics_distance(real, gen, **args)
    expected_value, expected_error = jetnet_fpd(real, gen, **args)
    assert isinstance(value, float) and isinstance(error, float)
    assert value == pytest.approx(expected_value, rel=1e-6, abs=1e-9)
    assert error == pytest.approx(expected_error, rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("slope_sign", [1.0, -1.0, 0.0])
def test_bounded_fit_matches_curve_fit(slope_sign):
    """Unconstrained optimum feasible, slope pinned at 0, intercept pinned at 0."""
    rng = np.random.default_rng(3)
    t = 1 / np.linspace(100, 1000, 8)
    values = 0.02 + slope_sign * 3.0 * t + rng.normal(0, 1e-3, 8)
    if slope_sign == 0.0:
        values = 5.0 * t + rng.normal(0, 1e-4, 8) - 0.01
    params, covs = scipy_optimize.curve_fit(
        lambda x, a, b: a + b * x, t, values, bounds=([0, 0], [np.inf, np.inf])
    )
    value, error = _fit_intercept(t, values)
    assert value == pytest.approx(params[0], rel=1e-5, abs=1e-8)
    assert error == pytest.approx(np.sqrt(covs[0, 0]), rel=1e-3)


@pytest.mark.filterwarnings("ignore:Recommended number of samples")
def test_kpd_matches_jetnet():
    real, gen = _features(2)
    value, error = kernel_physics_distance(real, gen, num_batches=7, batch_size=150, seed=5)
    expected_value, expected_error = jetnet_kpd(real, gen, 7, 150, 5)
    assert value == pytest.approx(expected_value, rel=1e-9, abs=1e-12)
    assert error == pytest.approx(expected_error, rel=1e-9, abs=1e-12)


def test_small_samples_warn_and_errors():
    real, gen = _features(3, n=50)
    with pytest.warns(RuntimeWarning, match="Recommended number of samples is 50,000"):
        kernel_physics_distance(real, gen, num_batches=2, batch_size=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="max_samples must be >= min_samples"):
            frechet_physics_distance(real, gen, min_samples=100, max_samples=50)
        with pytest.raises(ValueError, match="num_points must be >= 3, got 2"):
            frechet_physics_distance(real, gen, num_points=2)
        with pytest.raises(ValueError, match="same size along axis -1"):
            kernel_physics_distance(real, gen[:, :3])
        with pytest.raises(TypeError, match="batch_size must be an int"):
            kernel_physics_distance(real, gen, batch_size=10.0)
        with pytest.raises(TypeError, match="seed must be an int, got NoneType"):
            kernel_physics_distance(real, gen, seed=None)
        with pytest.raises(ValueError, match="seed must be >= 0 and <= 9223372036854775807"):
            frechet_physics_distance(real, gen, seed=-1)
