"""fastgen.linalg: sqrtm (eigh and the Newton-Schulz torch reference) against scipy and the
identity sqrtm(A) @ sqrtm(A) = A; trace_sqrt_product against scipy's trace of sqrtm(S1 S2);
input validation. The Triton Newton-Schulz kernels are tested in test_newton_schulz.py."""

import numpy as np
import pytest
import scipy.linalg
import torch

from fastgen.linalg import sqrtm, trace_sqrt_product, trace_sqrt_product_factors


def _psd(seed, n, rank=None, batch=(), dtype=torch.float64):
    """Random symmetric PSD ``(*batch, n, n)`` of the given rank (default full), with a
    spread of eigenvalues (condition number about 1e3 when full rank)."""
    g = torch.Generator().manual_seed(seed)
    rank = n if rank is None else rank
    factor = torch.randn(*batch, n, rank, generator=g, dtype=torch.float64)
    factor = factor * torch.logspace(0, -1.5, rank, dtype=torch.float64)
    return (factor @ factor.mT).to(dtype)


def _with_spectrum(seed, eigenvalues, batch=()):
    """``Q diag(eigenvalues) Q^T`` with a random orthogonal ``Q`` (float64)."""
    g = torch.Generator().manual_seed(seed)
    n = eigenvalues.shape[0]
    q, _ = torch.linalg.qr(torch.randn(*batch, n, n, generator=g, dtype=torch.float64))
    matrix = (q * eigenvalues) @ q.mT
    return (matrix + matrix.mT) / 2


def _relative(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("method", ["auto", "eigh"])
@pytest.mark.parametrize("n, rank", [(1, None), (3, None), (3, 1), (50, None), (50, 20)])
def test_sqrtm_squares_back_and_matches_scipy(n, rank, method):
    matrix = _psd(n * 7 + (rank or 0), n, rank, batch=(2,))
    root = sqrtm(matrix, method)
    assert root.shape == matrix.shape and root.dtype == torch.float64
    assert _relative(root @ root, matrix) < 1e-12
    assert _relative(root, root.mT) == 0  # symmetric by construction
    assert torch.linalg.eigvalsh(root).min() > -1e-10  # the principal (PSD) root
    if rank is None:  # scipy's Schur method is accurate for non-singular inputs
        expected = np.stack([scipy.linalg.sqrtm(m) for m in matrix.numpy()])
        assert _relative(root, torch.from_numpy(np.real(expected))) < 1e-10


def test_sqrtm_float32_and_numpy_inputs():
    matrix = _with_spectrum(1, torch.logspace(0, -2, 20, dtype=torch.float64))
    root32 = sqrtm(matrix.float())
    assert root32.dtype == torch.float32
    assert _relative(root32.double(), sqrtm(matrix)) < 1e-5
    assert isinstance(sqrtm(matrix.numpy()), torch.Tensor)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_newton_schulz_reference_matches_eigh(dtype, tolerance):
    """Condition number 1e3 (float32 Newton-Schulz diverges from about 1e6 on: refused)."""
    spectrum = torch.logspace(0, -3, 40, dtype=torch.float64)
    matrix = _with_spectrum(2, spectrum, batch=(3,)).to(dtype)
    root = sqrtm(matrix, "newton_schulz", backend="torch")
    assert root.dtype == dtype
    assert _relative(root.double(), sqrtm(matrix.double(), "eigh")) < tolerance


@pytest.mark.parametrize("rank", [39, 10])
def test_newton_schulz_refuses_rank_deficient(rank):
    """Never a silently wrong root: no convergence on a singular input is an error."""
    matrix = _psd(3, 40, rank)
    with pytest.raises(ValueError, match="did not converge"):
        sqrtm(matrix, "newton_schulz", backend="torch")


def test_newton_schulz_refuses_indefinite_and_auto_reports_it():
    matrix = torch.diag(torch.tensor([1.0, 0.5, -0.25], dtype=torch.float64))
    with pytest.raises(ValueError, match="did not converge"):
        sqrtm(matrix, "newton_schulz", backend="torch")
    with pytest.raises(ValueError, match="positive semi-definite"):
        sqrtm(matrix)


def test_zero_matrix():
    zero = torch.zeros(4, 4, dtype=torch.float64)
    assert torch.equal(sqrtm(zero), zero)


@pytest.mark.parametrize("method", ["auto", "eigh", "newton_schulz"])
@pytest.mark.parametrize("rank1, rank2", [(None, None), (8, None), (None, 5), (8, 5)])
def test_trace_sqrt_product_matches_scipy(method, rank1, rank2):
    n = 30
    s1, s2 = _psd(11 + (rank1 or 0), n, rank1), _psd(12 + (rank2 or 0), n, rank2)
    expected = np.trace(scipy.linalg.sqrtm(s1.numpy() @ s2.numpy())).real
    # A singular sigma1 enters through its rank-r factor (an r x r problem); a singular
    # sigma2 leaves the symmetric product singular, where Newton-Schulz cannot converge.
    if method == "newton_schulz" and rank2:
        with pytest.raises(ValueError, match="did not converge"):
            trace_sqrt_product(s1, s2, method, backend="torch")
        return
    value = trace_sqrt_product(s1, s2, method, backend="torch")
    assert value.dtype == torch.float64 and value.shape == ()
    # scipy's Schur root of a singular product is accurate to about sqrt(eps) per null
    # eigenvalue; full rank: round-off.
    assert value.item() == pytest.approx(expected, rel=1e-10 if not (rank1 or rank2) else 1e-6)


def test_trace_sqrt_product_batched():
    s1, s2 = _psd(21, 12, batch=(2, 3)), _psd(22, 12, 6, batch=(2, 3))
    values = trace_sqrt_product(s1, s2)
    assert values.shape == (2, 3)
    for index in np.ndindex(2, 3):
        single = trace_sqrt_product(s1[index], s2[index], "eigh")
        assert values[index].item() == pytest.approx(single.item(), rel=1e-10)


def test_trace_sqrt_product_factors_equals_covariance_route():
    g = torch.Generator().manual_seed(5)
    x1 = torch.randn(9, 25, generator=g, dtype=torch.float64)
    x2 = torch.randn(14, 25, generator=g, dtype=torch.float64) * 2
    f1 = (x1 - x1.mean(0)).mT / np.sqrt(8)
    f2 = (x2 - x2.mean(0)).mT / np.sqrt(13)
    value = trace_sqrt_product_factors(f1, f2)
    expected = trace_sqrt_product(torch.cov(x1.mT), torch.cov(x2.mT), "eigh")
    assert value.item() == pytest.approx(expected.item(), rel=1e-9)


def test_sqrtm_errors():
    with pytest.raises(ValueError, match=r"square matrix \(\.\.\., n, n\), got \(3, 4\)"):
        sqrtm(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="square matrix"):
        sqrtm(torch.zeros(3))
    with pytest.raises(ValueError, match="n >= 1"):
        sqrtm(torch.zeros(2, 0, 0))
    with pytest.raises(ValueError, match="A must be symmetric"):
        sqrtm(torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="A must be finite"):
        sqrtm(torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        sqrtm(-torch.eye(3))
    with pytest.raises(TypeError, match="floating-point dtype"):
        sqrtm(torch.eye(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="A must be a torch.Tensor"):
        sqrtm([[1.0]])
    with pytest.raises(ValueError, match="method must be one of"):
        sqrtm(torch.eye(3), "schur")
    with pytest.raises(ValueError, match="input_precision"):
        sqrtm(torch.eye(3), input_precision="tf32x3")
    with pytest.raises(ValueError, match="backend must be one of"):
        sqrtm(torch.eye(3), "newton_schulz", backend="cuda")
    with pytest.raises(ValueError, match="sigma1 and sigma2 must have the same shape"):
        trace_sqrt_product(torch.eye(3), torch.eye(4))
    with pytest.raises(ValueError, match="sigma2 must be positive semi-definite"):
        trace_sqrt_product(torch.eye(3), -torch.eye(3))
    with pytest.raises(ValueError, match="factor2 must have the same size along axis 0"):
        trace_sqrt_product_factors(torch.zeros(3, 2), torch.zeros(4, 2))
