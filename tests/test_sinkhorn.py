"""Sinkhorn divergences (PyTorch reference path) against GeomLoss's tensorized backend, POT's
exact EMD, and mathematical identities; bad inputs raise clear errors.

Oracle: ``geomloss.SamplesLoss("sinkhorn", ..., backend="tensorized")`` with the same options.
float64 values and gradients agree to 1e-8 relative (to the largest entry); float32 results are
judged against GeomLoss in float64 by GeomLoss's own float32 error (tests/tolerances.py's
relative-oracle idea): ``err(ours32) <= 5 err(geomloss32) + 1e-4``, every error relative to the
largest float64 entry. (A flat 1e-4 would fail GeomLoss itself: its float32 gradients for p = 1
differ from its float64 ones by up to 0.3 relative, the cost |x - y| being non-smooth.)
"""

import pytest
import torch

from fastgen.metrics import SamplesLoss, emd, emd2, sinkhorn_divergence

geomloss = pytest.importorskip("geomloss", reason="geomloss is not installed (test extra)")


def _problem(batch, n, m, d, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (batch,) if batch else ()
    x = torch.randn(*shape, n, d, generator=g, dtype=dtype)
    y = torch.randn(*shape, m, d, generator=g, dtype=dtype) * 0.8 + 0.5
    a = torch.rand(*shape, n, generator=g, dtype=dtype) + 0.1
    b = torch.rand(*shape, m, generator=g, dtype=dtype) + 0.1
    return a / a.sum(-1, keepdim=True), x, b / b.sum(-1, keepdim=True), y


def _run(loss, tensors, dtype):
    leaves = [t.to(dtype).requires_grad_() for t in tensors]
    value = loss(*leaves)
    grads = torch.autograd.grad(value.sum(), leaves)
    return [t.detach().double() for t in (value, *grads)]


def _rel(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30)).item()


OPTIONS = [
    dict(p=2, blur=0.05),
    dict(p=2, blur=0.1, reach=0.5),
    dict(p=1, blur=0.1),
    dict(p=2, blur=0.2, scaling=0.9, debias=False),
    dict(p=1, blur=0.05, reach=1.0, scaling=0.7),
]
NAMES = ("value", "grad a", "grad x", "grad b", "grad y")


@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: "-".join(f"{k}{v}" for k, v in o.items())
)
@pytest.mark.parametrize("d", [1, 2, 3, 8, 64])
def test_matches_geomloss(d, options):
    tensors = _problem(3, 37, 23, d)
    theirs = geomloss.SamplesLoss("sinkhorn", backend="tensorized", **options)
    ours = SamplesLoss("sinkhorn", backend="torch", **options)
    ref64 = _run(theirs, tensors, torch.float64)
    ours64 = _run(ours, tensors, torch.float64)
    theirs32 = _run(theirs, tensors, torch.float32)
    ours32 = _run(ours, tensors, torch.float32)
    for name, a, b, c, r in zip(NAMES, ours64, ours32, theirs32, ref64, strict=True):
        assert a.shape == r.shape, name
        assert _rel(a, r) <= 1e-8, f"float64 {name}: {_rel(a, r):.3g}"
        assert _rel(b, r) <= 5 * _rel(c, r) + 1e-4, (
            f"float32 {name}: {_rel(b, r):.3g} vs {_rel(c, r):.3g}"
        )


@pytest.mark.parametrize("debias", [True, False])
def test_potentials_and_unbatched(debias):
    a, x, b, y = _problem(0, 30, 20, 3)
    for reach in (None, 0.7):
        kwargs = dict(blur=0.1, reach=reach, debias=debias, potentials=True)
        f, g = SamplesLoss(backend="torch", **kwargs)(a, x, b, y)
        f_ref, g_ref = geomloss.SamplesLoss("sinkhorn", backend="tensorized", **kwargs)(a, x, b, y)
        assert f.shape == (30,) and g.shape == (20,)
        assert _rel(f, f_ref) <= 1e-8 and _rel(g, g_ref) <= 1e-8
    value = sinkhorn_divergence(x, y, blur=0.1)  # uniform weights, the functional
    assert value.shape == ()
    assert (
        _rel(value, geomloss.SamplesLoss("sinkhorn", blur=0.1, backend="tensorized")(x, y)) <= 1e-8
    )


def test_blocked_path_equals_dense(monkeypatch):
    """Chunks of 5 rows (never the full matrix) give the dense numbers and gradients."""
    from fastgen.reference import sinkhorn as ref

    tensors = _problem(2, 41, 29, 3)
    loss = SamplesLoss(backend="torch", blur=0.1, reach=1.0)
    dense = _run(loss, tensors, torch.float64)
    monkeypatch.setattr(ref, "CHUNK_ELEMENTS", 5 * 2 * 41)
    blocked = _run(loss, tensors, torch.float64)
    for name, u, v in zip(NAMES, blocked, dense, strict=True):
        assert _rel(u, v) <= 1e-12, name


def test_report_and_convergence_to_emd():
    """Small blur and scaling 0.95: OT_eps (debias=False) approaches POT's exact EMD within
    the entropic bias bound eps log(N M) plus 1e-3 for the unconverged last step; the
    reported marginal error shrinks as scaling approaches 1 (more iterations)."""
    pytest.importorskip("ot", reason="POT is not installed (test extra)")
    a, x, b, y = _problem(0, 40, 30, 2)
    exact = emd(x, y, a, b).item()
    assert exact == pytest.approx(emd2(a, b, torch.cdist(x, y).square() / 2).item(), rel=1e-12)
    blur = 0.02
    errors = []
    for scaling in (0.5, 0.95, 0.99):
        value, report = sinkhorn_divergence(
            x, y, a, b, blur=blur, scaling=scaling, debias=False, return_report=True
        )
        assert report.iterations == len(report.eps_list) + 2 and report.eps_list[-1] == blur**2
        errors.append(report.marginal_error.item())
        if scaling == 0.95:
            bound = blur**2 * torch.log(torch.tensor(40.0 * 30)).item() + 1e-3
            assert abs(value.item() - exact) <= bound
    assert 2 > errors[0] > errors[1] > errors[2] > 0


def test_degenerate_inputs():
    x = torch.randn(50, 3, dtype=torch.float64)
    # identical clouds: S = 0 up to rounding; gradients vanish
    xr = x.clone().requires_grad_()
    s = sinkhorn_divergence(xr, x)
    assert abs(s.item()) < 1e-12
    assert torch.autograd.grad(s, xr)[0].abs().max() < 1e-10
    # one point against one point: |x - y|^2 / 2 exactly
    p, q = torch.tensor([[0.0, 1.0]]), torch.tensor([[3.0, -1.0]])
    assert sinkhorn_divergence(p, q).item() == pytest.approx(6.5, rel=1e-5)
    # tiny blur with coordinates of order 1e3 stays finite
    big = torch.randn(40, 2) * 1e3
    value = sinkhorn_divergence(big, big + 5.0, blur=1e-3)
    assert torch.isfinite(value)
    # NaN in x gives NaN (documented), not an exception
    bad = x.clone()
    bad[3, 1] = float("nan")
    assert torch.isnan(sinkhorn_divergence(bad, x))
    # half precision is computed in float32 and returned in the input dtype
    h = sinkhorn_divergence(x.half(), (x + 1).half())
    assert h.dtype == torch.float16
    assert h.item() == pytest.approx(sinkhorn_divergence(x, x + 1).item(), rel=1e-2)


@pytest.mark.parametrize(
    "kwargs, args, error, match",
    [
        (dict(blur=0.0), None, ValueError, "blur must be > 0"),
        (dict(blur=-1.0), None, ValueError, "blur must be > 0"),
        (dict(blur=float("nan")), None, ValueError, "blur must be finite"),
        (dict(scaling=1.0), None, ValueError, "scaling must be > 0 and < 1"),
        (dict(scaling=0.0), None, ValueError, "scaling must be > 0 and < 1"),
        (dict(reach=0.0), None, ValueError, "reach must be > 0"),
        (dict(diameter=-2.0), None, ValueError, "diameter must be > 0"),
        (dict(p=3), None, ValueError, r"p must be one of \(1, 2\), got 3"),
        (dict(loss="energy"), None, ValueError, "loss must be 'sinkhorn'"),
        (dict(blur="0.1"), None, TypeError, "blur must be a real number"),
        (dict(backend="cuda"), "ok", ValueError, "backend must be one of"),
        ({}, "dim", ValueError, "same size along axis -1"),
        ({}, "negative", ValueError, "a must be non-negative"),
        ({}, "mass", ValueError, "equal total mass"),
        ({}, "shape", ValueError, r"b must have shape \(20,\)"),
        ({}, "empty", ValueError, "non-empty"),
        ({}, "dtype", TypeError, "share one dtype"),
        ({}, "int", TypeError, "floating-point"),
        ({}, "rank", ValueError, r"\(N, D\) or \(B, N, D\)"),
        ({}, "batch", ValueError, "same batch size"),
    ],
)
def test_bad_inputs(kwargs, args, error, match):
    x, y = torch.randn(30, 3), torch.randn(20, 3)
    a, b = torch.full((30,), 1 / 30), torch.full((20,), 1 / 20)
    cases = {
        None: (a, x, b, y),
        "ok": (a, x, b, y),
        "dim": (a, x, b, torch.randn(20, 4)),
        "negative": (a - 2 * a * (torch.arange(30) == 0), x, b, y),
        "mass": (2 * a, x, b, y),
        "shape": (a, x, b[:10], y),
        "empty": (a[:0], x[:0], b, y),
        "dtype": (a, x, b.double(), y.double()),
        "int": (a, x.long(), b, y.long()),
        "rank": (a, x[0], b, y[0]),
        "batch": (a[None].expand(2, 30), x[None].expand(2, 30, 3), b[None], y[None]),
    }
    with pytest.raises(error, match=match):
        if args is None:
            SamplesLoss(**kwargs)(*cases[None])
        else:
            SamplesLoss(**kwargs)(*cases[args])
