"""Wasserstein distances with POT's API and numbers: in one dimension (``ot.wasserstein_1d``),
sliced (``ot.sliced_wasserstein_distance``) and exact (``ot.emd2``, through POT).

The entropic counterpart, the Sinkhorn divergence with GeomLoss's API, is
:mod:`fastgen.metrics.sinkhorn`; :func:`emd` is its ``blur -> 0`` limit.
"""

from __future__ import annotations

import torch

from fastgen._checks import (
    check_choice,
    check_equal_mass,
    check_number,
    check_pair,
    check_point_clouds,
    check_seed,
    check_tensor,
    check_weights,
)


def wasserstein_1d(
    u_values: torch.Tensor,
    v_values: torch.Tensor,
    u_weights: torch.Tensor | None = None,
    v_weights: torch.Tensor | None = None,
    p: float = 1,
) -> torch.Tensor:
    """``W_p^p`` between 1-D empirical distributions, column by column, POT's
    ``ot.wasserstein_1d``: ``int_0^1 |F_u^-1(q) - F_v^-1(q)|^p dq`` (the p-th power, as POT),
    ``F^-1`` the quantile functions.

    Sort-based, ``O((N + M) log(N + M))`` per column; the quantile functions are merged on
    the union of both cumulative weights. Differentiable in values and weights (as POT).

    Args:
        u_values: samples of the first distributions, ``(N, ...)``: ``(N, D)`` samples give
            the D per-feature distances in one call. Any floating dtype.
        v_values: samples of the second distributions, ``(M, ...)``, the same trailing shape,
            dtype and device.
        u_weights: weights of ``u_values``, like them or ``(N,)`` shared by every column;
            non-negative, summing to 1 per column; default uniform ``1 / N``.
        v_weights: weights of ``v_values``, as ``u_weights``.
        p: the exponent of the cost ``|u - v|^p``, ``>= 1``.

    Returns:
        ``W_p^p`` of shape ``(...)`` (the trailing shape) in the values' dtype, in the
        values' units to the power ``p``.

    Raises:
        TypeError: non-tensors, non-floating or mixed dtypes, ``p`` not a number.
        ValueError: empty inputs, trailing shapes or weights that do not match, negative
            weights, tensors on several devices, ``p < 1``.

    Example:
        >>> import torch
        >>> from fastgen.metrics import wasserstein_1d
        >>> u = torch.tensor([0.0, 1.0, 2.0])
        >>> wasserstein_1d(u, u + 0.5).item()  # a shift by 0.5
        0.5
        >>> wasserstein_1d(u, u + 0.5, p=2).item()
        0.25
    """
    check_tensor("u_values", u_values)
    check_tensor("v_values", v_values)
    p = check_number("p", p, minimum=1)
    check_pair(("u_values", "v_values"), u_values, v_values, axis=None)
    if u_values.dim() == 0 or v_values.dim() == 0 or u_values.shape[1:] != v_values.shape[1:]:
        raise ValueError(
            "u_values (N, ...) and v_values (M, ...) must have the same trailing shape, got "
            f"{tuple(u_values.shape)} and {tuple(v_values.shape)}"
        )
    if u_values.shape[0] == 0 or v_values.shape[0] == 0:
        raise ValueError(
            "u_values and v_values must be non-empty, got "
            f"{tuple(u_values.shape)}, {tuple(v_values.shape)}"
        )

    def weights(name, w, values):
        if w is None:
            return torch.full_like(values, 1.0 / values.shape[0])
        check_tensor(name, w)
        if w.dim() == 1 and values.dim() > 1:
            w = w.reshape(-1, *[1] * (values.dim() - 1))
        if w.shape[0] != values.shape[0] or w.dim() != values.dim():
            raise ValueError(
                f"{name} must have shape {tuple(values.shape)} or ({values.shape[0]},), "
                f"got {tuple(w.shape)}"
            )
        if not torch.compiler.is_compiling() and bool((w < 0).any()):
            raise ValueError(f"{name} must be non-negative, got minimum {w.min().item()}")
        return w.to(values.dtype).expand_as(values)

    u_w = weights("u_weights", u_weights, u_values)
    v_w = weights("v_weights", v_weights, v_values)
    u_sorted, u_order = torch.sort(u_values, dim=0)
    v_sorted, v_order = torch.sort(v_values, dim=0)
    u_cum = torch.cumsum(torch.take_along_dim(u_w, u_order, 0), 0)
    v_cum = torch.cumsum(torch.take_along_dim(v_w, v_order, 0), 0)
    qs = torch.sort(torch.cat((u_cum, v_cum), 0), 0).values

    def quantiles(cum, sorted_values):
        # searchsorted wants the searched axis last and contiguous.
        idx = torch.searchsorted(cum.movedim(0, -1).contiguous(), qs.movedim(0, -1).contiguous())
        idx = idx.movedim(-1, 0).clamp_(0, sorted_values.shape[0] - 1)
        return torch.take_along_dim(sorted_values, idx, 0)

    delta = torch.diff(qs, dim=0, prepend=torch.zeros_like(qs[:1]))
    diff = (quantiles(u_cum, u_sorted) - quantiles(v_cum, v_sorted)).abs()
    return (delta * (diff if p == 1 else diff**p)).sum(0)


def _check_flat_clouds(x: torch.Tensor, y: torch.Tensor) -> None:
    check_point_clouds(x, y)
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, D), got {tuple(x.shape)}")


def sliced_wasserstein(
    x: torch.Tensor,
    y: torch.Tensor,
    n_projections: int = 128,
    p: float = 2,
    seed: int | None = None,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    projections: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sliced Wasserstein distance, POT's ``ot.sliced_wasserstein_distance``:
    ``(mean_k W_p^p(<x, theta_k>, <y, theta_k>))^(1/p)`` over directions ``theta_k`` uniform
    on the unit sphere (Bonneel et al. 2015): the Wasserstein distance of the 1-D
    projections, averaged, a cheap proxy of the D-dimensional one (``O(K N log N)``).

    Args:
        x: the first point cloud, ``(N, D)``, floating.
        y: the second point cloud, ``(M, D)``, same dtype and device.
        n_projections: the number ``K >= 1`` of random directions; the estimate's Monte-Carlo
            error falls like ``1 / sqrt(K)``.
        p: the exponent of the cost, ``>= 1``.
        seed: seed of the directions, drawn as normalised
            ``torch.randn(D, K, generator=torch.Generator().manual_seed(seed))`` in float64 on
            the CPU; ``None``: fresh entropy (a different estimate on every call).
        a: weights of ``x``, ``(N,)``, non-negative (see :func:`wasserstein_1d`); default
            uniform.
        b: weights of ``y``, ``(M,)``, as ``a``.
        projections: ``(D, K)`` unit directions to use instead of random ones (e.g. POT's,
            to compare); ``n_projections`` and ``seed`` are then unused.

    Returns:
        A 0-d tensor in the dtype of ``x``, in the units of the points.

    Raises:
        TypeError: as :func:`wasserstein_1d`; ``n_projections`` or ``seed`` not an int.
        ValueError: as :func:`wasserstein_1d`; not ``(N, D)``, mismatched D,
            ``n_projections < 1``, a negative seed, ``projections`` not ``(D, K)``.

    Example:
        >>> import torch
        >>> from fastgen.metrics import sliced_wasserstein
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
        >>> sliced_wasserstein(x, x, seed=0).item()
        0.0
        >>> axes = torch.eye(2)  # project on the coordinate axes
        >>> value = sliced_wasserstein(x, x + torch.tensor([1.0, 0.0]), projections=axes)
        >>> round(value.item(), 4)  # sqrt((1^2 + 0^2) / 2)
        0.7071
    """
    _check_flat_clouds(x, y)
    p = check_number("p", p, minimum=1)
    d = x.shape[1]
    if projections is None:
        n_projections = check_number("n_projections", n_projections, minimum=1, integer=True)
        seed = check_seed("seed", seed)
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        projections = torch.randn(d, n_projections, generator=generator, dtype=torch.float64)
        projections = (projections / projections.norm(dim=0, keepdim=True)).to(x)
    else:
        check_tensor("projections", projections)
        if projections.dim() != 2 or projections.shape[0] != d:
            raise ValueError(
                f"projections must have shape ({d}, K), got {tuple(projections.shape)}"
            )
        projections = projections.to(x)
    projected = wasserstein_1d(x @ projections, y @ projections, a, b, p=p)
    return projected.mean() ** (1.0 / p)


def _import_ot():
    try:
        import ot
    except ImportError as error:
        raise ImportError(
            "emd2 and emd need POT (Python Optimal Transport): pip install pot"
        ) from error
    return ot


def emd2(
    a: torch.Tensor,
    b: torch.Tensor,
    M: torch.Tensor,  # noqa: N803
    numItermax: int = 100000,  # noqa: N803
) -> torch.Tensor:
    """Exact optimal-transport cost ``min_pi <pi, M>`` over plans ``pi`` with marginals
    ``a``, ``b``, POT's ``ot.emd2`` (network simplex on the CPU, Bonneel et al. 2011).
    Differentiable in ``a``, ``b`` and ``M`` through POT's torch backend.

    Args:
        a: source weights ``(N,)``, non-negative; float32 or float64 (POT computes in
            float64).
        b: target weights ``(M,)``, non-negative, the same total mass as ``a``.
        M: the cost matrix ``(N, M)``: ``M[i, j]`` is the cost of moving a unit of mass from
            source ``i`` to target ``j``.
        numItermax: the simplex's iteration cap (POT's), ``>= 1``; POT warns when it is
            reached before the optimum.

    Returns:
        A 0-d tensor on ``M``'s device, in the units of ``M``.

    Raises:
        ImportError: POT is not installed (``pip install pot``).
        TypeError: non-tensors, non-floating dtypes, ``numItermax`` not an int.
        ValueError: shapes, empty or negative weights, unequal masses, ``numItermax < 1``.

    Example:
        >>> import torch
        >>> from fastgen.metrics import emd2
        >>> a = b = torch.tensor([0.5, 0.5], dtype=torch.float64)
        >>> cost = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
        >>> emd2(a, b, cost).item()
        0.0
    """
    for name, value in (("a", a), ("b", b), ("M", M)):
        check_tensor(name, value)
    check_number("numItermax", numItermax, minimum=1, integer=True)
    if a.dim() != 1 or b.dim() != 1 or tuple(M.shape) != (a.shape[0], b.shape[0]):
        raise ValueError(
            f"a (N,), b (M,) and M (N, M) expected, got {tuple(a.shape)}, {tuple(b.shape)}, "
            f"{tuple(M.shape)}"
        )
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise ValueError(f"a and b must be non-empty, got {tuple(a.shape)}, {tuple(b.shape)}")
    for name, weights in (("a", a), ("b", b)):
        if bool((weights < 0).any()):
            raise ValueError(f"{name} must be non-negative, got minimum {weights.min().item()}")
    check_equal_mass(a.double(), b.double())
    ot = _import_ot()
    device = M.device
    cost = ot.emd2(a.cpu(), b.cpu(), M.cpu(), numItermax=numItermax)
    return cost.to(device)


def emd(
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    p: int = 2,
    numItermax: int = 100000,  # noqa: N803
) -> torch.Tensor:
    """Exact optimal-transport cost between point clouds with GeomLoss's cost
    ``|x - y|^p / p``: :func:`emd2` on the dense ``(N, M)`` cost matrix (so ``N M`` memory;
    POT's network simplex, CPU). The limit of
    :func:`fastgen.metrics.sinkhorn_divergence` with ``debias=False`` as ``blur -> 0``.

    Args:
        x: the source points, ``(N, D)``, floating.
        y: the target points, ``(M, D)``, same dtype and device.
        a: weights of ``x``, ``(N,)``, non-negative; default uniform ``1 / N``.
        b: weights of ``y``, ``(M,)``, the same total mass as ``a``; default uniform.
        p: the exponent of the cost, 1 (``|x - y|``) or 2 (``|x - y|^2 / 2``).
        numItermax: as :func:`emd2`.

    Returns:
        A 0-d tensor, differentiable in ``x``, ``y``, ``a``, ``b``.

    Raises:
        ImportError: POT is not installed.
        TypeError, ValueError: as :func:`emd2`; not ``(N, D)``, mismatched D, ``p`` not 1
            or 2.

    Example:
        >>> import torch
        >>> from fastgen.metrics import emd
        >>> x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
        >>> emd(x, x + 2.0).item()  # every point moves by 2: 2^2 / 2
        2.0
    """
    _check_flat_clouds(x, y)
    p = check_choice("p", p, (1, 2))
    a = check_weights("a", a, x)
    b = check_weights("b", b, y)
    distances = torch.cdist(x, y)
    cost = distances if p == 1 else distances.square() / 2
    return emd2(a, b, cost, numItermax=numItermax)
