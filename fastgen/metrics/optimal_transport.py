"""Optimal-transport distances between point clouds: Sinkhorn divergences (GeomLoss-compatible),
1-D and sliced Wasserstein distances (POT-compatible) and exact EMD through POT.

Sinkhorn (Feydy et al. 2019, arXiv:1810.08278; Cuturi 2013, arXiv:1306.0895): the numbers of
``geomloss.SamplesLoss("sinkhorn", ...)`` 0.2+ (cost ``|x - y|^p / p``), computed with
streaming softmins that never hold the ``N x M`` cost matrix (Triton on CUDA, row chunks in
PyTorch on the CPU: :mod:`fastgen.reference.sinkhorn`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fastgen._checks import check_number, check_tensor
from fastgen.backend import HALF_DTYPES, KERNEL_DTYPES, resolve_backend
from fastgen.reference import sinkhorn as ref
from fastgen.tracing import annotate

# The Triton softmin streams D in chunks; beyond this the reference is used.
KERNEL_MAX_DIM = 1024
# GeomLoss's backend names: accepted for drop-in use, they mean "auto" (same numbers).
_GEOMLOSS_BACKENDS = ("tensorized", "online", "multiscale")
# Relative tolerance of the equal-total-mass check for balanced transport.
MASS_RTOL = {torch.float64: 1e-8}
DEFAULT_MASS_RTOL = 1e-4


class SinkhornReport(NamedTuple):
    """Convergence report of :func:`sinkhorn_divergence` (``return_report=True``).

    ``iterations``: Sinkhorn updates run (one per temperature in ``eps_list``, plus the
    initialisation and the final extrapolation). ``marginal_error``: ``(B,)`` or scalar L1
    error ``sum_i |sum_j pi_ij - a_i|`` of the transport plan of ``OT_eps(a, b)`` after the
    last update (meaningful for balanced transport). ``diameter`` and ``eps_list``: the
    schedule used."""

    iterations: int
    marginal_error: torch.Tensor
    diameter: float
    eps_list: list


def _check_positive(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    value = check_number(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _check_options(loss, p, blur, reach, diameter, scaling, debias, potentials):
    if loss != "sinkhorn":
        raise ValueError(
            f"loss must be 'sinkhorn' (the only loss fastgen implements), got {loss!r}"
        )
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2 (GeomLoss's sample costs), got {p!r}")
    blur = _check_positive("blur", blur)
    reach = _check_positive("reach", reach, allow_none=True)
    diameter = _check_positive("diameter", diameter, allow_none=True)
    scaling = check_number("scaling", scaling)
    if not 0 < scaling < 1:
        raise ValueError(f"scaling must be in (0, 1), got {scaling}")
    for name, value in (("debias", debias), ("potentials", potentials)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return int(p), blur, reach, diameter, scaling


def _check_points(x, y):
    check_tensor("x", x)
    check_tensor("y", y)
    if x.dim() not in (2, 3):
        raise ValueError(f"x must have shape (N, D) or (B, N, D), got {tuple(x.shape)}")
    if y.dim() != x.dim():
        raise ValueError(
            f"y must have as many dimensions as x ({x.dim()}), got shape {tuple(y.shape)}"
        )
    if x.dtype != y.dtype:
        raise TypeError(f"x and y must share one dtype, got x {x.dtype}, y {y.dtype}")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"x and y must have the same dimension D (last axis), got x {tuple(x.shape)}, "
            f"y {tuple(y.shape)}"
        )
    if x.dim() == 3 and x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same batch size, got {x.shape[0]} and {y.shape[0]}"
        )
    if (
        x.shape[-2] == 0
        or y.shape[-2] == 0
        or x.shape[-1] == 0
        or (x.dim() == 3 and x.shape[0] == 0)
    ):
        raise ValueError(f"x and y must be non-empty, got x {tuple(x.shape)}, y {tuple(y.shape)}")


def _check_weights(name, w, points):
    """Weights ``(N,)`` / ``(B, N)`` (GeomLoss also takes ``(N, 1)`` / ``(B, N, 1)``);
    ``None``: uniform ``1 / N``. Returns ``(B, N)``-compatible weights in the points' dtype."""
    expected = tuple(points.shape[:-1])
    if w is None:
        return torch.full(
            expected, 1.0 / points.shape[-2], dtype=points.dtype, device=points.device
        )
    check_tensor(name, w)
    if w.dtype != points.dtype:
        raise TypeError(f"{name} must have the dtype of the points {points.dtype}, got {w.dtype}")
    if w.dim() == len(expected) + 1 and w.shape[-1] == 1:
        w = w.squeeze(-1)
    if tuple(w.shape) != expected:
        raise ValueError(
            f"{name} must have shape {expected} (or {expected + (1,)}), got {tuple(w.shape)}"
        )
    if not torch.compiler.is_compiling() and bool((w < 0).any()):
        raise ValueError(f"{name} must be non-negative, got minimum {w.min().item()}")
    return w


def _check_equal_mass(a, b):
    if torch.compiler.is_compiling():
        return
    mass_a, mass_b = a.sum(-1), b.sum(-1)
    rtol = MASS_RTOL.get(a.dtype, DEFAULT_MASS_RTOL)
    if not bool(((mass_a - mass_b).abs() <= rtol * torch.maximum(mass_a, mass_b)).all()):
        raise ValueError(
            "balanced transport (reach=None) needs a and b of equal total mass, got sums "
            f"{mass_a.tolist()} and {mass_b.tolist()} (relative tolerance {rtol:g})"
        )


def _softmins_for(backend):
    if backend == "triton":
        from fastgen.kernels.sinkhorn import softmins_triton

        return softmins_triton
    return ref.softmins_reference


@annotate("fastgen.sinkhorn")
def _sinkhorn(a, x, b, y, *, loss, p, blur, reach, diameter, scaling, debias, potentials, backend):
    """Validation, dispatch, the loop and the cost; returns ``(value(s), report)``."""
    p, blur, reach, diameter, scaling = _check_options(
        loss, p, blur, reach, diameter, scaling, debias, potentials
    )
    _check_points(x, y)
    a = _check_weights("a", a, x)
    b = _check_weights("b", b, y)
    if reach is None:
        _check_equal_mass(a, b)
    if backend in _GEOMLOSS_BACKENDS:
        backend = "auto"
    refusals = [f"D = {x.shape[-1]} > {KERNEL_MAX_DIM}"] if x.shape[-1] > KERNEL_MAX_DIM else []
    chosen = resolve_backend(
        backend, (x, y, a, b), supported_dtypes=KERNEL_DTYPES, extra_refusals=refusals
    )

    batched = x.dim() == 3
    dtype = x.dtype
    if not batched:
        x, y, a, b = x.unsqueeze(0), y.unsqueeze(0), a.unsqueeze(0), b.unsqueeze(0)
    if dtype in HALF_DTYPES:  # float32 potentials in both backends
        x, y, a, b = x.float(), y.float(), a.float(), b.float()

    if diameter is None:
        diameter = ref.max_diameter(x.detach(), y.detach())
    eps = blur**p
    rho = None if reach is None else reach**p
    eps_list = ref.epsilon_schedule(p, diameter, blur, scaling)
    pairs = ref.PAIRS_DEBIASED if debias else ref.PAIRS_BALANCED
    softmins = _softmins_for(chosen)

    f_aa, g_bb, g_ab, f_ba, marginal_error = ref.sinkhorn_loop(
        lambda e, hs: softmins(x, y, e, p, pairs, hs),
        ref.log_weights(a),
        ref.log_weights(b),
        eps_list,
        rho,
        debias,
    )
    values = ref.sinkhorn_cost(eps, rho, a, b, f_aa, g_bb, g_ab, f_ba, debias, potentials)
    if potentials:
        values = tuple(v.to(dtype) if batched else v[0].to(dtype) for v in values)
    else:
        values = values.to(dtype) if batched else values[0].to(dtype)
    report = SinkhornReport(
        iterations=len(eps_list) + 2,
        marginal_error=marginal_error if batched else marginal_error[0],
        diameter=diameter,
        eps_list=eps_list,
    )
    return values, report


def sinkhorn_divergence(
    x: torch.Tensor,
    y: torch.Tensor,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    *,
    loss: str = "sinkhorn",
    p: int = 2,
    blur: float = 0.05,
    reach: float | None = None,
    diameter: float | None = None,
    scaling: float = 0.5,
    debias: bool = True,
    potentials: bool = False,
    backend: str | None = None,
    return_report: bool = False,
):
    """Debiased Sinkhorn divergence between weighted point clouds, GeomLoss's numbers.

    ``S_eps(a, b) = OT_eps(a, b) - OT_eps(a, a) / 2 - OT_eps(b, b) / 2`` (``debias=True``) or
    ``OT_eps(a, b)``, with cost ``C(x, y) = |x - y|^p / p`` (GeomLoss 0.2+: p = 2 gives
    ``|x - y|^2 / 2``), ``eps = blur^p``; with ``reach``, unbalanced transport with marginal
    penalty ``rho = reach^p`` (KL). Solved by GeomLoss's symmetric log-domain Sinkhorn with
    epsilon scaling: temperatures from ``diameter^p`` (default: the diagonal of the bounding
    box of all points, every batch together) down to ``blur^p`` by factors ``scaling^p``.

    Accuracy: GeomLoss's default ``scaling=0.5`` runs few iterations (about
    ``log(diameter / blur) / log 2``); that is tuned for gradients in training. For a metric
    value use ``scaling >= 0.9`` (several times the iterations) and check
    ``return_report=True``'s marginal error.

    Gradients (with respect to ``x``, ``y``, ``a``, ``b``) follow GeomLoss: the potentials of
    the loop are constants (envelope theorem) and one last extrapolation step carries the
    gradient; for p = 2, ``d/dx_i = a_i sum_j pi_ij (x_i - y_j)`` minus the ``OT(a, a)`` term.

    Args:
        x: ``(N, D)`` or ``(B, N, D)``; y: ``(M, D)`` or ``(B, M, D)``. float32, float64,
            float16 / bfloat16 (computed in float32, returned in their dtype).
        a, b: weights ``(N,)`` / ``(M,)`` (or ``(B, N)`` / ``(B, M)``; a trailing 1 is
            accepted), non-negative, equal total mass when balanced; default uniform.
        p: 1 or 2. blur, reach, diameter: > 0 (reach, diameter may be None).
        scaling: in (0, 1). debias: subtract the self terms. potentials: return ``(f, g)``.
        backend: ``"auto"``, ``"triton"``, ``"torch"`` or None (``FASTGEN_BACKEND``);
            GeomLoss's ``"tensorized"`` / ``"online"`` / ``"multiscale"`` mean ``"auto"``.
        return_report: also return a :class:`SinkhornReport`.

    Host synchronisations (as GeomLoss): the default ``diameter`` (the schedule's length
    depends on it) and, in eager mode, the checks of the weights' signs and masses. Under
    ``torch.compile`` the checks are skipped, the diameter still breaks the graph.

    Returns:
        A scalar (``(B,)`` when batched) in the dtype of ``x``; with ``potentials=True`` the
        dual potentials ``(f (N,), g (M,))`` (batched ``(B, N)``, ``(B, M)``), debiased as in
        GeomLoss. NaN or inf in ``x`` / ``y`` give NaN (the schedule then has one temperature).

    Raises:
        TypeError: non-tensor or non-floating inputs, mixed dtypes, non-number options.
        ValueError: shapes (mismatched D or batch, empty clouds, weights not ``(N,)``),
            negative weights, unequal masses when balanced, ``blur``/``reach``/``diameter``
            ``<= 0`` or non-finite, ``scaling`` outside (0, 1), ``p`` not 1 or 2, unknown
            ``loss`` or ``backend``.
    """
    values, report = _sinkhorn(
        a, x, b, y, loss=loss, p=p, blur=blur, reach=reach, diameter=diameter,
        scaling=scaling, debias=debias, potentials=potentials, backend=backend,
    )  # fmt: skip
    return (values, report) if return_report else values


class SamplesLoss(torch.nn.Module):
    """Drop-in for ``geomloss.SamplesLoss(loss="sinkhorn", ...)``: ``L(x, y)`` or
    ``L(a, x, b, y)``. Same arguments, defaults and numbers as GeomLoss; see
    :func:`sinkhorn_divergence` for the formula, shapes, dtypes and errors. ``backend``:
    fastgen's (``"auto"``, ``"triton"``, ``"torch"``, None) or GeomLoss's names (``"auto"``).
    GeomLoss's ``truncate``, ``cost``, ``kernel``, ``cluster_scale`` and ``verbose`` (KeOps
    multiscale and custom costs) are not offered."""

    def __init__(
        self,
        loss: str = "sinkhorn",
        p: int = 2,
        blur: float = 0.05,
        reach: float | None = None,
        diameter: float | None = None,
        scaling: float = 0.5,
        debias: bool = True,
        potentials: bool = False,
        backend: str | None = None,
    ):
        super().__init__()
        _check_options(loss, p, blur, reach, diameter, scaling, debias, potentials)
        self.loss, self.p, self.blur, self.reach = loss, p, blur, reach
        self.diameter, self.scaling, self.debias = diameter, scaling, debias
        self.potentials, self.backend = potentials, backend

    def forward(self, *args):
        if len(args) == 2:
            (x, y), a, b = args, None, None
        elif len(args) == 4:
            a, x, b, y = args
        else:
            raise ValueError(f"SamplesLoss takes (x, y) or (a, x, b, y), got {len(args)} arguments")
        values, _ = _sinkhorn(
            a, x, b, y, loss=self.loss, p=self.p, blur=self.blur, reach=self.reach,
            diameter=self.diameter, scaling=self.scaling, debias=self.debias,
            potentials=self.potentials, backend=self.backend,
        )  # fmt: skip
        return values

    def extra_repr(self) -> str:
        return (
            f"loss={self.loss!r}, p={self.p}, blur={self.blur}, reach={self.reach}, "
            f"diameter={self.diameter}, scaling={self.scaling}, debias={self.debias}"
        )


# ----------------------------------------------------------------------------------------
# Wasserstein distances in one dimension, sliced, and exact (POT).


def _check_p(p) -> float:
    p = check_number("p", p)
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    return p


def wasserstein_1d(
    u_values: torch.Tensor,
    v_values: torch.Tensor,
    u_weights: torch.Tensor | None = None,
    v_weights: torch.Tensor | None = None,
    p: float = 1,
) -> torch.Tensor:
    """``W_p^p`` between 1-D empirical distributions, column by column, POT's
    ``ot.wasserstein_1d``: ``int_0^1 |F_u^-1(q) - F_v^-1(q)|^p dq`` (the p-th power, as POT).

    Sort-based, ``O((N + M) log(N + M))`` per column; the quantile functions are merged on
    the union of both cumulative weights. Differentiable in values and weights (as POT).

    Args:
        u_values: ``(N, ...)``; v_values: ``(M, ...)`` with the same trailing dims, e.g.
            ``(N, D)`` samples give the D per-feature distances in one call.
        u_weights, v_weights: like the values, or ``(N,)`` / ``(M,)`` shared by every
            column; non-negative, summing to 1 per column; default uniform.
        p: >= 1.

    Returns:
        ``(...)`` in the values' dtype.

    Raises:
        TypeError, ValueError: non-tensors, mixed dtypes, empty inputs, shapes that do not
        match, negative weights, ``p < 1``.
    """
    check_tensor("u_values", u_values)
    check_tensor("v_values", v_values)
    p = _check_p(p)
    if u_values.dtype != v_values.dtype:
        raise TypeError(
            f"u_values and v_values must share one dtype, got {u_values.dtype}, {v_values.dtype}"
        )
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
            raise ValueError(f"{name} must be non-negative")
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
    on the unit sphere (Bonneel et al. 2015).

    Args:
        x: ``(N, D)``, y: ``(M, D)``; a, b: optional weights ``(N,)``, ``(M,)``.
        n_projections: >= 1 directions, drawn as normalised ``torch.randn(D, n, generator)``
            seeded with ``seed`` (None: torch's global generator) on the CPU.
        projections: ``(D, K)`` unit directions to use instead (e.g. POT's, to compare).
        p: >= 1.

    Returns:
        A scalar in the dtype of ``x``.

    Raises:
        TypeError, ValueError: as :func:`wasserstein_1d`, mismatched D, ``n_projections < 1``,
        ``projections`` not ``(D, K)``.
    """
    _check_points(x, y)
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, D), got {tuple(x.shape)}")
    p = _check_p(p)
    d = x.shape[1]
    if projections is None:
        if (
            isinstance(n_projections, bool)
            or not isinstance(n_projections, int)
            or n_projections < 1
        ):
            raise ValueError(f"n_projections must be an int >= 1, got {n_projections!r}")
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
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
    a: torch.Tensor, b: torch.Tensor, M: torch.Tensor, numItermax: int = 100000
) -> torch.Tensor:  # noqa: N803
    """Exact optimal-transport cost ``min_pi <pi, M>`` over plans with marginals ``a``, ``b``,
    POT's ``ot.emd2`` (network simplex, CPU; Bonneel et al. 2011). Differentiable in ``a``,
    ``b`` and ``M`` through POT's torch backend.

    Args:
        a: ``(N,)``, b: ``(M,)`` non-negative with equal sums; M: ``(N, M)`` costs; float32 or
            float64 (POT computes in float64). numItermax: simplex iteration cap (POT's).

    Returns:
        A scalar tensor on the inputs' device.

    Raises:
        ImportError: POT is not installed (``pip install pot``).
        TypeError, ValueError: non-tensors, shapes, negative weights or unequal masses.
    """
    for name, value in (("a", a), ("b", b), ("M", M)):
        check_tensor(name, value)
    if a.dim() != 1 or b.dim() != 1 or tuple(M.shape) != (a.shape[0], b.shape[0]):
        raise ValueError(
            f"a (N,), b (M,) and M (N, M) expected, got {tuple(a.shape)}, {tuple(b.shape)}, "
            f"{tuple(M.shape)}"
        )
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise ValueError("a and b must be non-empty")
    if bool((a < 0).any()) or bool((b < 0).any()):
        raise ValueError("a and b must be non-negative")
    _check_equal_mass(a.double(), b.double())
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
    POT's network simplex, CPU). The limit of :func:`sinkhorn_divergence` with
    ``debias=False`` as ``blur -> 0``.

    Args:
        x: ``(N, D)``, y: ``(M, D)``; a, b: weights (default uniform); p: 1 or 2.

    Returns:
        A scalar tensor, differentiable in ``x``, ``y``, ``a``, ``b``.

    Raises:
        ImportError: POT missing. TypeError, ValueError: as :func:`emd2`, mismatched D.
    """
    _check_points(x, y)
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, D), got {tuple(x.shape)}")
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    a = _check_weights("a", a, x)
    b = _check_weights("b", b, y)
    distances = torch.cdist(x, y)
    cost = distances if p == 1 else distances.square() / 2
    return emd2(a, b, cost, numItermax=numItermax)
