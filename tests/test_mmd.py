"""MMD^2 / KID against torch-fidelity's dense formulas written out in NumPy (float64), and
the Triton tiled kernel-sum kernel (interpreter) against the float64 reference."""

import numpy as np
import pytest
import torch
from mmd_oracle import dense_mmd2, kernel_matrix
from tolerances import assert_matches_reference

from fastgen.metrics import kernel_inception_distance, mmd2_unbiased
from fastgen.reference import mmd as reference


def _features(seed, m, n, d, shift=0.3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, d)), rng.standard_normal((n, d)) * 1.1 + shift


@pytest.mark.parametrize("kernel", ["polynomial", "rbf"])
@pytest.mark.parametrize("m, n, d", [(2, 2, 1), (17, 40, 5), (300, 250, 64)])
def test_reference_matches_dense_formula(m, n, d, kernel, monkeypatch):
    x, y = _features(m + n + d, m, n, d)
    expected = dense_mmd2(x, y, kernel)
    assert mmd2_unbiased(x, y, kernel).item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    # blocks of a few rows: the blocking changes nothing
    monkeypatch.setattr(reference, "BLOCK_ELEMENTS", 3 * max(m, n))
    value = mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y), kernel, backend="torch")
    assert value.dtype == torch.float64 and value.shape == ()
    assert value.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_other_kernel_parameters():
    x, y = _features(1, 30, 20, 6)
    for degree, gamma, coef0 in ((1, 0.5, 0.0), (4, None, 1.0), (2, 2.0, -0.5)):
        expected = dense_mmd2(x, y, "polynomial", degree, gamma, coef0)
        value = mmd2_unbiased(x, y, degree=degree, gamma=gamma, coef0=coef0).item()
        assert value == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_kid_matches_torch_fidelity_loop():
    """torch-fidelity's kid_features_to_metric: RandomState(seed), choice without
    replacement for features1 then features2 per subset, mean and np.std."""
    x, y = _features(2, 80, 90, 8)
    subsets, size, seed = 6, 25, 2020
    rng = np.random.RandomState(seed)  # noqa: NPY002
    values = []
    for _ in range(subsets):
        f1 = x[rng.choice(len(x), size, replace=False)]
        f2 = y[rng.choice(len(y), size, replace=False)]
        values.append(dense_mmd2(f1, f2))
    mean, std = kernel_inception_distance(x, y, subsets=subsets, subset_size=size, seed=seed)
    assert isinstance(mean, float) and isinstance(std, float)
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values), rel=1e-8)


def _scale(x, y, kernel):
    """Size of the estimator's terms: round-off is relative to them, not to their difference."""
    x, y = x.double().cpu().numpy(), y.double().cpu().numpy()
    gamma = 1.0 / x.shape[1]
    pairs = ((x, x), (y, y))
    return sum(np.abs(kernel_matrix(a, b, kernel, 3, gamma, 1.0)).mean() for a, b in pairs)


@pytest.mark.parametrize("kernel", ["polynomial", "rbf"])
@pytest.mark.parametrize("m, n, d", [(2, 3, 1), (64, 65, 33), (130, 70, 40)])
def test_triton_matches_reference(m, n, d, kernel, device, poisoned_outputs):
    pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")
    x = torch.randn(m, d, device=device)
    y = torch.randn(n, d, device=device) * 1.2 + 0.1
    ours = mmd2_unbiased(x, y, kernel, backend="triton")
    ref64 = mmd2_unbiased(x.double(), y.double(), kernel, backend="torch")
    ref32 = mmd2_unbiased(x, y, kernel, backend="torch")
    floor = 64 * torch.finfo(torch.float32).eps * _scale(x, y, kernel)
    assert_matches_reference(ours, ref64, ref32, name="triton MMD^2", c=4.0, atol=floor)


def test_triton_half_and_strided_inputs(device, poisoned_outputs):
    pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")
    base = torch.randn(40, 2 * 24, device=device)
    x, y = base[:, ::2], base[:, 1::2] + 0.3  # column stride 2: no copy
    ours = mmd2_unbiased(x, y, backend="triton").item()
    ref64 = mmd2_unbiased(x.double(), y.double(), backend="torch").item()
    assert abs(ours - ref64) <= 64 * torch.finfo(torch.float32).eps * _scale(x, y, "polynomial")
    half_x, half_y = x.to(torch.bfloat16), y.to(torch.bfloat16)
    ours = mmd2_unbiased(half_x, half_y, backend="triton").item()
    ref = mmd2_unbiased(half_x.double(), half_y.double(), backend="torch").item()
    assert abs(ours - ref) <= 64 * torch.finfo(torch.float32).eps * _scale(x, y, "polynomial")


def test_errors():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="same size along axis -1"):
        mmd2_unbiased(x, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="y needs N >= 2"):
        mmd2_unbiased(x, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="x must be finite"):
        mmd2_unbiased(np.full((5, 3), np.nan), x)
    with pytest.raises(TypeError, match="share one dtype"):
        mmd2_unbiased(x, x.astype(np.float32))
    with pytest.raises(ValueError, match="kernel must be one of"):
        mmd2_unbiased(x, x, kernel="laplace")
    with pytest.raises(ValueError, match="degree must be >= 1, got 0"):
        mmd2_unbiased(x, x, degree=0)
    with pytest.raises(TypeError, match="degree must be an int"):
        mmd2_unbiased(x, x, degree=2.5)
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1.0"):
        mmd2_unbiased(x, x, gamma=-1.0)
    with pytest.raises(ValueError, match="subset_size must be <= the number of samples"):
        kernel_inception_distance(x, x, subset_size=6)
    with pytest.raises(ValueError, match="subsets must be >= 1, got 0"):
        kernel_inception_distance(x, x, subsets=0, subset_size=2)
    with pytest.raises(ValueError, match=r"seed must be >= 0 and <= 4294967295, got 4294967296"):
        kernel_inception_distance(x, x, subsets=1, subset_size=2, seed=2**32)
    with pytest.raises(TypeError, match="seed must be an int, got float 1.5"):
        kernel_inception_distance(x, x, subsets=1, subset_size=2, seed=1.5)
