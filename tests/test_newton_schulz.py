"""The Triton Newton-Schulz kernel (fused-epilogue batched matmul) against torch matmuls in
float64, and sqrtm's Newton-Schulz path on it: convergence, the eigh fallback of ``auto``
and the refusal of ``newton_schulz`` on rank-deficient input. Without a GPU the kernel runs
under TRITON_INTERPRET=1 (tl.dot exact float32, ``input_precision="ieee"``)."""

import pytest
import torch

from fastgen.linalg import sqrtm
from fastgen.reference.newton_schulz import fused_gemm as fused_gemm_reference

pytest.importorskip("triton", reason="triton is not installed (optional on CPU)")
newton_schulz = pytest.importorskip("fastgen.kernels.newton_schulz")


def _reference(a, b, c, alpha, beta, gamma):
    """The torch reference in float64."""
    c = None if c is None else c.double()
    return fused_gemm_reference(a.double(), b.double(), c, alpha, beta, gamma)


@pytest.mark.parametrize("n", [1, 3, 16, 17, 70])
@pytest.mark.parametrize("with_c", [False, True])
def test_fused_gemm_matches_torch(n, with_c, device):
    a, b, c = (torch.randn(2, n, n, device=device) for _ in range(3))
    c = c if with_c else None
    alpha, beta, gamma = -0.5, 1.25, 1.5
    out = newton_schulz.fused_gemm(a, b, c, alpha, beta, gamma, "ieee")
    assert out.shape == (2, n, n) and out.dtype == torch.float32
    expected = _reference(a.cpu(), b.cpu(), None if c is None else c.cpu(), alpha, beta, gamma)
    # float32 accumulation over n products: a few ulp of the sum of |a_ik b_kj|
    bound = 4 * n * torch.finfo(torch.float32).eps * (a.abs().double() @ b.abs().double())
    assert ((out.cpu().double() - expected).abs() <= bound.cpu() + 1e-6).all()


def test_fused_gemm_strided_inputs(device):
    """Transposed views and a batch slice go in through their strides, uncopied."""
    base = torch.randn(3, 20, 20, device=device)
    a, b = base[::2].mT, base[1:2].expand(2, 20, 20)
    out = newton_schulz.fused_gemm(a, b, None, 1.0, 0.0, 0.0, "ieee")
    expected = a.cpu().double() @ b.cpu().double()
    assert (out.cpu().double() - expected).abs().max() < 1e-4


def test_fused_gemm_rejects_bad_arguments(device):
    a = torch.randn(1, 4, 4, device=device)
    with pytest.raises(ValueError, match="input_precision"):
        newton_schulz.fused_gemm(a, a, None, 1.0, 0.0, 0.0, "tf64")
    with pytest.raises(ValueError, match="b must be float32"):
        newton_schulz.fused_gemm(a, a.double(), None, 1.0, 0.0, 0.0, "ieee")


def _with_spectrum(seed, eigenvalues):
    g = torch.Generator().manual_seed(seed)
    n = eigenvalues.shape[0]
    q, _ = torch.linalg.qr(torch.randn(2, n, n, generator=g, dtype=torch.float64))
    matrix = (q * eigenvalues) @ q.mT
    return (matrix + matrix.mT) / 2


@pytest.mark.parametrize("n", [5, 33])
def test_sqrtm_newton_schulz_triton_matches_reference(n, device):
    """Condition number 100: converges; the kernel's root equals the torch iteration's
    float64 root to float32 accuracy, and squares back to A."""
    matrix = _with_spectrum(n, torch.logspace(0, -2, n, dtype=torch.float64))
    root = sqrtm(
        matrix.float().to(device), "newton_schulz", backend="triton", input_precision="ieee"
    )
    expected = sqrtm(matrix, "newton_schulz", backend="torch")
    assert root.dtype == torch.float32
    assert ((root.cpu().double() - expected).norm() / expected.norm()) < 1e-5
    assert ((root.double() @ root.double()).cpu() - matrix).norm() / matrix.norm() < 1e-5


def test_rank_deficient_input_falls_back_or_is_refused(device):
    """N < D covariance: Newton-Schulz cannot converge; ``auto`` returns the eigh root,
    ``newton_schulz`` raises."""
    g = torch.Generator().manual_seed(3)
    features = torch.randn(6, 24, generator=g, dtype=torch.float64)
    covariance = torch.cov(features.mT).float().to(device)
    root = sqrtm(covariance, "auto", backend="triton", input_precision="ieee")
    expected = sqrtm(covariance.cpu(), "eigh").double()
    assert ((root.cpu().double() - expected).norm() / expected.norm()) < 1e-5
    with pytest.raises(ValueError, match="did not converge"):
        sqrtm(covariance, "newton_schulz", backend="triton", input_precision="ieee")


def test_half_inputs_are_returned_in_their_dtype(device):
    matrix = _with_spectrum(1, torch.linspace(1, 0.5, 8, dtype=torch.float64))
    root = sqrtm(
        matrix.to(device=device, dtype=torch.bfloat16),
        "newton_schulz",
        backend="triton",
        input_precision="ieee",
    )
    assert root.dtype == torch.bfloat16
    expected = sqrtm(matrix, "eigh")
    assert (root.cpu().double() - expected).abs().max() < 2e-2
