"""The Triton k-NN and ball-count kernels (fastgen.kernels.knn) against the float64
reference (fastgen.reference.knn), outputs poisoned with NaN before every launch (conftest);
and compute_prdc end to end on the Triton backend. Without a GPU they run under
TRITON_INTERPRET=1."""

import pytest
import torch
from tolerances import assert_matches_reference

from fastgen.metrics import compute_prdc
from fastgen.reference import knn as ref

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")
knn_kernels = pytest.importorskip("fastgen.kernels.knn")


def _points(seed, n, m, d):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(m, d, generator=g, dtype=torch.float64) * 1.3 + 0.2
    return x, y


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("n, m", [(1, 3), (3, 1), (127, 70), (70, 130)])
@pytest.mark.parametrize("d", [1, 3, 33])
def test_knn_and_ball_counts(n, m, d, k, device):
    seed = n * 1000 + m * 10 + d
    x, y = _points(seed, n, m, d)
    on = {"device": device, "dtype": torch.float32}
    for exclude_self, other in ((False, y), (True, x)):
        name = f"knn k={k} (N={n}, M={m}, D={d}, self={exclude_self}, seed={seed})"
        ours = knn_kernels.knn_triton(x.to(**on), other.to(**on), k, exclude_self).cpu()
        ref64 = ref.knn_reference(x, other, k, exclude_self)
        ref32 = ref.knn_reference(x.float(), other.float(), k, exclude_self)
        assert ours.dtype == torch.float32 and ours.shape == (n,)
        # rows with fewer than k candidates are inf in all three
        assert torch.equal(ours.isinf(), ref64.isinf()), name
        finite = ref64.isfinite()
        assert_matches_reference(
            ours[finite], ref64[finite], ref32[finite], name=name, typical_c=5.0
        )
    radii_sq = ref.knn_reference(y, y, 1, True) if m > 1 else torch.ones(m, dtype=torch.float64)
    counts, nearest = knn_kernels.ball_counts_triton(x.to(**on), y.to(**on), radii_sq.to(**on))
    counts64, nearest64 = ref.ball_counts_reference(x, y, radii_sq)
    nearest32 = ref.ball_counts_reference(x.float(), y.float(), radii_sq.float())[1]
    # continuous random points: no pair within float32 rounding of a ball's boundary
    assert torch.equal(counts.cpu(), counts64), f"counts (seed={seed})"
    assert_matches_reference(nearest.cpu(), nearest64, nearest32, name="nearest", typical_c=5.0)


def test_strided_and_half_inputs(device):
    x, y = _points(4, 50, 40, 6)
    wide = torch.zeros(50, 12, dtype=torch.float32, device=device)
    wide[:, ::2] = x.float().to(device)  # (50, 6) with column stride 2
    y_t = y.float().T.contiguous().to(device).T  # (40, 6) column-major
    expected = ref.knn_reference(x.float(), y.float(), 5, False)
    ours = knn_kernels.knn_triton(wide[:, ::2], y_t, 5, False).cpu()
    assert_matches_reference(ours, expected.double(), expected, name="strided knn", typical_c=5.0)
    for dtype in (torch.float16, torch.bfloat16):
        xh, yh = x.to(dtype), y.to(dtype)
        ours = knn_kernels.knn_triton(xh.to(device), yh.to(device), 5, False).cpu()
        ref64 = ref.knn_reference(xh.double(), yh.double(), 5, False)
        ref32 = ref.knn_reference(xh.float(), yh.float(), 5, False)
        assert_matches_reference(ours, ref64, ref32, name=f"{dtype} knn", typical_c=5.0)


def test_duplicates_are_zero_apart(device):
    # the snap to 0 below the rounding bound makes duplicated points exactly 0 apart, as in
    # the reference, whatever |x|
    g = torch.Generator().manual_seed(9)
    points = (torch.randn(20, 7, generator=g) * 30).repeat(4, 1).to(device)
    assert knn_kernels.knn_triton(points, points, 3, True).eq(0).all()
    counts, nearest = knn_kernels.ball_counts_triton(points, points, torch.zeros(80, device=device))
    assert counts.eq(4).all() and nearest.eq(0).all()


@pytest.mark.parametrize("nearest_k", [1, 5])
def test_prdc_on_triton_equals_the_reference(nearest_k, device):
    x, y = _points(21, 150, 127, 5)
    expected = compute_prdc(x, y, nearest_k, backend="torch")
    ours = compute_prdc(x.float().to(device), y.float().to(device), nearest_k, backend="triton")
    assert ours == pytest.approx(expected, abs=1e-12)


def test_triton_refuses_float64_and_large_k():
    x = torch.randn(30, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="dtype float64 is not one of"):
        compute_prdc(x, x, backend="triton")
    with pytest.raises(ValueError, match="nearest_k = 9 > 8"):
        compute_prdc(x.float(), x.float(), nearest_k=9, backend="triton")
