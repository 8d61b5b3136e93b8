"""wasserstein_1d, sliced_wasserstein and emd2 / emd against POT (the oracle: ot.wasserstein_1d,
ot.sliced_wasserstein_distance with the same projections, ot.emd2)."""

import pytest
import torch

from fastgen.metrics import emd, emd2, sliced_wasserstein, wasserstein_1d

ot = pytest.importorskip("ot", reason="POT is not installed (test extra)")


@pytest.mark.parametrize("p", [1, 2, 1.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_wasserstein_1d_matches_pot(p, weighted):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(31, 5, generator=g, dtype=torch.float64)
    v = torch.randn(17, 5, generator=g, dtype=torch.float64) * 2 + 0.3
    uw = vw = None
    if weighted:
        uw = torch.rand(31, 5, generator=g, dtype=torch.float64)
        vw = torch.rand(17, 5, generator=g, dtype=torch.float64)
        uw, vw = uw / uw.sum(0), vw / vw.sum(0)
    ours = wasserstein_1d(u, v, uw, vw, p=p)
    theirs = ot.wasserstein_1d(u, v, uw, vw, p=p)
    assert ours.shape == (5,)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    # one column at a time equals the batched call; shared (N,) weights broadcast
    column = (uw[:, 2], vw[:, 2]) if weighted else (None, None)
    torch.testing.assert_close(wasserstein_1d(u[:, 2], v[:, 2], *column, p=p), ours[2])
    w = torch.rand(31, generator=g, dtype=torch.float64)
    w = w / w.sum()
    torch.testing.assert_close(
        wasserstein_1d(u, v, w, None, p=p), ot.wasserstein_1d(u, v, w, None, p=p)
    )


def test_wasserstein_1d_gradients_match_pot():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(20, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(25, 3, generator=g, dtype=torch.float64, requires_grad=True)
    ours = torch.autograd.grad(wasserstein_1d(u, v, p=2).sum(), (u, v))
    theirs = torch.autograd.grad(ot.wasserstein_1d(u, v, p=2).sum(), (u, v))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("p", [1, 2])
def test_sliced_wasserstein_matches_pot(p):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.randn(30, 6, generator=g, dtype=torch.float64) + 0.5
    projections = torch.tensor(ot.sliced.get_random_projections(6, 64, seed=0))
    ours = sliced_wasserstein(x, y, p=p, projections=projections)
    theirs = ot.sliced_wasserstein_distance(x, y, p=p, projections=projections)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    # seeded draws are reproducible and close to the many-projection value
    assert sliced_wasserstein(x, y, seed=3).item() == sliced_wasserstein(x, y, seed=3).item()
    many = sliced_wasserstein(x, y, n_projections=4000, seed=4)
    assert sliced_wasserstein(x, y, n_projections=500, seed=5).item() == pytest.approx(
        many.item(), rel=0.1
    )


def test_emd2_and_emd_match_pot():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 2, generator=g, dtype=torch.float64)
    y = torch.randn(9, 2, generator=g, dtype=torch.float64)
    a = torch.rand(12, generator=g, dtype=torch.float64) + 0.1
    b = torch.rand(9, generator=g, dtype=torch.float64) + 0.1
    a, b = a / a.sum(), b / b.sum()
    cost = torch.cdist(x, y)
    assert emd2(a, b, cost).item() == pytest.approx(ot.emd2(a, b, cost).item(), rel=1e-12)
    assert emd(x, y, a, b, p=1).item() == pytest.approx(ot.emd2(a, b, cost).item(), rel=1e-12)
    assert emd(x, y, a, b).item() == pytest.approx(
        ot.emd2(a, b, cost.square() / 2).item(), rel=1e-12
    )
    # gradients flow (POT's torch backend): d emd / d a sums to 0 along the simplex direction
    x.requires_grad_()
    grad = torch.autograd.grad(emd(x, y), x)[0]
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: wasserstein_1d(torch.randn(5, 2), torch.randn(4, 3)), ValueError, "trailing"),
        (
            lambda: wasserstein_1d(torch.randn(5), torch.randn(4), p=0.5),
            ValueError,
            "p must be >= 1",
        ),
        (lambda: wasserstein_1d(torch.randn(0), torch.randn(4)), ValueError, "non-empty"),
        (
            lambda: wasserstein_1d(torch.randn(5), torch.randn(4), -torch.ones(5)),
            ValueError,
            "u_weights must be non-negative",
        ),
        (
            lambda: sliced_wasserstein(torch.randn(5, 2), torch.randn(4, 3)),
            ValueError,
            "same size along axis -1",
        ),
        (
            lambda: sliced_wasserstein(torch.randn(5, 2), torch.randn(4, 2), n_projections=0),
            ValueError,
            "n_projections must be >= 1, got 0",
        ),
        (lambda: emd2(torch.ones(2) / 2, torch.ones(3) / 3, torch.ones(3, 2)), ValueError, "M"),
        (lambda: emd2(torch.ones(2), torch.ones(3) / 3, torch.ones(2, 3)), ValueError, "mass"),
    ],
)
def test_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_emd_without_pot(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "ot":
            raise ImportError("no POT")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install pot"):
        emd2(torch.ones(2) / 2, torch.ones(2) / 2, torch.ones(2, 2))
