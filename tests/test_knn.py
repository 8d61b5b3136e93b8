"""The k-NN hot path's PyTorch reference (fastgen.reference.knn) against dense float64
distances, and fastgen.metrics.compute_prdc against the ``prdc`` package (Naeem et al.'s own
implementation) on continuous data; ties (identical and duplicated sets) against the paper's
closed-ball definition written out."""

import numpy as np
import pytest
import torch

from fastgen.metrics import compute_nearest_neighbour_distances, compute_prdc
from fastgen.reference import knn as ref

prdc = pytest.importorskip("prdc", reason="prdc is the oracle (pip install prdc)")
prdc_module = pytest.importorskip("prdc.prdc")


def _sets(seed, n, m, d):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, d)).astype(np.float32)
    fake = (rng.standard_normal((m, d)) * 1.2 + 0.3).astype(np.float32)
    return real, fake


def _dense(x, y):
    return torch.cdist(torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y).double())


@pytest.mark.parametrize(
    "n, m, d, k", [(1, 3, 2, 1), (3, 7, 5, 3), (127, 90, 4, 5), (200, 300, 17, 1)]
)
def test_reference_matches_dense_distances(n, m, d, k, monkeypatch):
    # a block of 64 distances forces many row blocks: the blocking must not change the answer
    monkeypatch.setattr(ref, "BLOCK_ELEMENTS", 64)
    x, y = (torch.from_numpy(a).double() for a in _sets(n * m, n, m, d))
    dense = _dense(x, y)
    expected = dense.topk(min(k, m), dim=1, largest=False).values[:, -1]
    assert torch.allclose(ref.knn_reference(x, y, k, False).sqrt(), expected, rtol=1e-10)
    radii = torch.rand(m, dtype=torch.float64) * 2
    counts, nearest = ref.ball_counts_reference(x, y, radii.square())
    assert torch.equal(counts, (dense <= radii).sum(1, dtype=torch.int32))
    assert torch.allclose(nearest.sqrt(), dense.amin(1), rtol=1e-10)


def test_reference_excludes_only_the_point_itself():
    x = torch.tensor([[0.0], [0.0], [1.0], [3.0]], dtype=torch.float64)
    # row 0's nearest other point is its duplicate (0 apart), then 1, then 3
    assert ref.knn_reference(x, x, 1, True).tolist() == [0.0, 0.0, 1.0, 4.0]
    assert ref.knn_reference(x, x, 3, True).tolist() == [9.0, 9.0, 4.0, 9.0]
    assert ref.knn_reference(x, x, 4, True).isinf().all()  # only 3 other points


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, m, d, k", [(300, 250, 8, 5), (500, 500, 3, 1), (200, 400, 64, 10)])
def test_prdc_equals_the_prdc_package(n, m, d, k, dtype):
    real, fake = (a.astype(dtype) for a in _sets(7 + n + d, n, m, d))
    expected = prdc.compute_prdc(real, fake, nearest_k=k)
    ours = compute_prdc(real, fake, nearest_k=k, backend="torch")
    for name, value in expected.items():
        assert ours[name] == pytest.approx(float(value), abs=1e-12), (name, ours, expected)


def test_nearest_neighbour_distances_equal_the_prdc_package():
    real, _ = _sets(3, 400, 1, 6)
    expected = prdc_module.compute_nearest_neighbour_distances(real, nearest_k=5)
    ours = compute_nearest_neighbour_distances(real, nearest_k=5, backend="torch")
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-5)


def test_identical_sets_closed_balls():
    # Naeem et al.'s closed balls: each real ball holds its centre and its k neighbours, so
    # density is (k + 1) / k; prdc's strict < leaves the k-th neighbour out (density 1).
    real, _ = _sets(11, 300, 1, 4)
    k = 5
    ours = compute_prdc(real, real.copy(), nearest_k=k, backend="torch")
    assert ours == {"precision": 1.0, "recall": 1.0, "density": (k + 1) / k, "coverage": 1.0}
    theirs = prdc.compute_prdc(real, real.copy(), nearest_k=k)
    assert theirs["density"] == 1.0


def test_duplicated_points_have_radius_zero_and_count():
    # every point 6 times: with k = 5 each radius is 0 (5 duplicates besides the point).
    # Closed balls hold the 6 copies: precision = recall = coverage = 1, density = 6 / 5;
    # prdc's strict comparison with a radius of 0 counts nothing.
    rng = np.random.default_rng(2)
    points = np.repeat(rng.standard_normal((40, 3)), 6, axis=0).astype(np.float32)
    shuffled = points[rng.permutation(len(points))]
    ours = compute_prdc(points, shuffled, nearest_k=5, backend="torch")
    assert ours == {"precision": 1.0, "recall": 1.0, "density": 6 / 5, "coverage": 1.0}
    assert compute_nearest_neighbour_distances(points, 5, backend="torch").eq(0).all()
    theirs = prdc.compute_prdc(points, shuffled, nearest_k=5)
    assert theirs["precision"] == theirs["density"] == theirs["coverage"] == 0.0


def test_far_from_the_origin():
    # In float32 the expansion |x|^2 + |y|^2 - 2<x, y> at |x| ~ 2000 loses ~0.5 in d2, more
    # than the k-NN radii; centring on the real mean first keeps it exact enough. prdc
    # (sklearn upcasts float32 to float64) is the oracle on the same shifted float32 data.
    real, fake = (a + np.float32(1000.0) for a in _sets(5, 300, 300, 4))
    expected = prdc.compute_prdc(real, fake, nearest_k=5)
    ours = compute_prdc(real, fake, backend="torch")
    assert ours == pytest.approx({k: float(v) for k, v in expected.items()}, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(real_features=np.full((5, 2), np.nan)), ValueError, "real_features must be finite"),
        (dict(fake_features=np.zeros((5, 3))), ValueError, "same size along axis -1"),
        (dict(nearest_k=5), ValueError, r"nearest_k must be < the number of rows of real"),
        (dict(nearest_k=0), ValueError, "nearest_k must be >= 1"),
        (dict(nearest_k=2.0), TypeError, "nearest_k must be an int"),
        (dict(real_features=np.zeros(5)), ValueError, r"real_features must be 2-D"),
        (dict(backend="cuda"), ValueError, "backend must be one of"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = dict(real_features=np.zeros((5, 2)), fake_features=np.ones((6, 2)), nearest_k=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        compute_prdc(**args)
