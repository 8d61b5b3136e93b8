"""Sinkhorn divergences between point clouds with GeomLoss's API and numbers.

``geomloss.SamplesLoss("sinkhorn", ...)`` 0.2+ (Feydy et al. 2019, arXiv:1810.08278; Cuturi
2013, arXiv:1306.0895), cost ``|x - y|^p / p``. The algorithm is GeomLoss's
(``geomloss/_legacy/sinkhorn_divergence.py`` and ``sinkhorn_samples.py``), reproduced step for
step so that the numbers agree: the epsilon-scaling schedule (:func:`epsilon_schedule`) from
the diameter of the joint bounding box (:func:`max_diameter`), symmetric averaged updates, the
final extrapolation step that carries the gradients (envelope theorem; :func:`sinkhorn_loop`)
and the debiased / unbalanced cost (:func:`sinkhorn_cost`). Both backends run this loop; they
differ only in the softmins of each step, which stream over the points and never hold the
``N x M`` cost matrix: :func:`fastgen.kernels.sinkhorn.softmins_triton` on CUDA,
:func:`fastgen.reference.sinkhorn.softmins_reference` (row chunks) otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from fastgen._checks import (
    check_bool,
    check_choice,
    check_equal_mass,
    check_number,
    check_point_clouds,
    check_weights,
)
from fastgen.backend import HALF_DTYPES, KERNEL_DTYPES, resolve_backend
from fastgen.reference import sinkhorn as reference
from fastgen.tracing import annotate

# The Triton softmin streams D in chunks; beyond this the reference is used.
KERNEL_MAX_DIM = 1024
# GeomLoss's backend names: accepted for drop-in use, they mean "auto" (same numbers).
GEOMLOSS_BACKENDS = ("tensorized", "online", "multiscale")
# SamplesLoss's options, in GeomLoss's order: the keyword arguments of sinkhorn_divergence.
OPTIONS = ("loss", "p", "blur", "reach", "diameter", "scaling", "debias", "potentials", "backend")
# GeomLoss's log of a zero weight (``log_weights``): finite, so no inf - inf.
LOG_ZERO_WEIGHT = -100000.0


class SinkhornReport(NamedTuple):
    """Convergence report of :func:`sinkhorn_divergence` (``return_report=True``).

    Attributes:
        iterations: Sinkhorn updates run (one per temperature in ``eps_list``, plus the
            initialisation and the final extrapolation).
        marginal_error: ``(B,)`` or 0-d L1 error ``sum_i |sum_j pi_ij - a_i|`` of the
            transport plan of ``OT_eps(a, b)`` after the last update (meaningful for balanced
            transport): small when the loop has converged.
        diameter: the diameter the schedule started from.
        eps_list: the temperatures ``eps``, from ``diameter^p`` down to ``blur^p``.
    """

    iterations: int
    marginal_error: torch.Tensor
    diameter: float
    eps_list: list


# ----------------------------------------------------------------------------------------
# GeomLoss's loop, shared by both backends.


def max_diameter(x: torch.Tensor, y: torch.Tensor) -> float:
    """Diagonal of the bounding box of all points of ``x`` and ``y`` (every batch together),
    GeomLoss's default ``diameter``. One host synchronisation."""
    d = x.shape[-1]
    points = torch.cat((x.reshape(-1, d), y.reshape(-1, d)))
    return (points.amax(0) - points.amin(0)).norm().item()


def epsilon_schedule(p: float, diameter: float, blur: float, scaling: float) -> list[float]:
    """GeomLoss's temperatures: ``diameter^p``, then ``exp`` of
    ``arange(p log diameter, p log blur, p log scaling)``, then ``blur^p``. A non-finite
    diameter (NaN or inf in the data) gives ``[blur^p]``: the result is then NaN anyway."""
    if not np.isfinite(diameter) or diameter <= 0:
        return [blur**p]
    steps = np.arange(p * np.log(diameter), p * np.log(blur), p * np.log(scaling))
    return [diameter**p] + [float(np.exp(e)) for e in steps] + [blur**p]


def dampening(eps: float, rho: float | None) -> float:
    """Unbalanced damping ``1 / (1 + eps / rho)`` (1 when balanced)."""
    return 1.0 if rho is None else 1.0 / (1.0 + eps / rho)


def log_weights(a: torch.Tensor) -> torch.Tensor:
    """``log a`` with GeomLoss's finite ``-100000`` for zero weights."""
    return torch.where(a > 0, a.clamp_min(torch.finfo(a.dtype).tiny).log(), LOG_ZERO_WEIGHT)


def sinkhorn_loop(
    softmins: Callable[[float, Sequence[torch.Tensor]], Sequence[torch.Tensor]],
    a_log: torch.Tensor,
    b_log: torch.Tensor,
    eps_list: Sequence[float],
    rho: float | None,
    debias: bool,
):
    """GeomLoss's ``sinkhorn_loop`` (single scale): symmetric averaged updates under
    ``no_grad`` along ``eps_list``, then one extrapolation step with gradients.

    ``softmins(eps, hs)`` returns the undamped softmins of the problems f_ba, g_ab (and f_aa,
    g_bb when ``debias``) for the column vectors ``hs`` in that order.

    Returns ``(f_aa, g_bb, g_ab, f_ba, marginal_error)``; ``f_aa, g_bb`` are None without
    ``debias``; ``marginal_error (B,)`` is ``sum_i |a_i exp((f_i - f'_i) / eps) - a_i|`` for
    the last pair before extrapolation, ``f'`` the updated ``f_ba``: the L1 error of the
    plan's first marginal ``sum_j pi_ij`` against ``a`` (balanced problems).
    """

    def step(eps, g_ab, f_ba, f_aa, g_bb):
        hs = [b_log + g_ab / eps, a_log + f_ba / eps]
        if debias:
            hs += [a_log + f_aa / eps, b_log + g_bb / eps]
        return softmins(eps, hs)

    with torch.no_grad():
        eps = eps_list[0]
        damping = dampening(eps, rho)
        init = [damping * t for t in softmins(eps, [b_log, a_log] + ([a_log, b_log] * debias))]
        f_ba, g_ab = init[0], init[1]
        f_aa, g_bb = (init[2], init[3]) if debias else (None, None)
        for eps in eps_list:
            damping = dampening(eps, rho)
            new = [damping * t for t in step(eps, g_ab, f_ba, f_aa, g_bb)]
            f_ba, g_ab = 0.5 * (f_ba + new[0]), 0.5 * (g_ab + new[1])
            if debias:
                f_aa, g_bb = 0.5 * (f_aa + new[2]), 0.5 * (g_bb + new[3])
    # Extrapolation with gradients (the loop's potentials are constants: envelope theorem).
    final = step(eps, g_ab, f_ba, f_aa, g_bb)
    with torch.no_grad():
        a = a_log.exp()
        marginal_error = (a * ((f_ba - final[0].detach()) / eps).exp()).sub(a).abs().sum(-1)
    final = [damping * t for t in final]
    if debias:
        return final[2], final[3], final[1], final[0], marginal_error
    return None, None, final[1], final[0], marginal_error


def _scal(a, f):
    return (a * f).sum(-1)


def sinkhorn_cost(eps, rho, a, b, f_aa, g_bb, g_ab, f_ba, debias, potentials):
    """GeomLoss's ``sinkhorn_cost`` (batched): the debiased divergence
    ``<a, f_ba - f_aa> + <b, g_ab - g_bb>``, or the biased ``OT_eps``, or the potentials;
    unbalanced terms with ``(rho + eps / 2) (exp(-f / rho) ...)``."""
    if potentials:
        return (f_ba - f_aa, g_ab - g_bb) if debias else (f_ba, g_ab)
    if rho is None:
        if debias:
            return _scal(a, f_ba - f_aa) + _scal(b, g_ab - g_bb)
        return _scal(a, f_ba) + _scal(b, g_ab)
    weight = rho + eps / 2
    if debias:
        return _scal(a, weight * ((-f_aa / rho).exp() - (-f_ba / rho).exp())) + _scal(
            b, weight * ((-g_bb / rho).exp() - (-g_ab / rho).exp())
        )
    return _scal(a, weight * (1 - (-f_ba / rho).exp())) + _scal(
        b, weight * (1 - (-g_ab / rho).exp())
    )


# ----------------------------------------------------------------------------------------
# The public API.


def _check_options(loss, p, blur, reach, diameter, scaling, debias, potentials):
    if loss != "sinkhorn":
        raise ValueError(
            f"loss must be 'sinkhorn' (the only loss fastgen implements), got {loss!r}"
        )
    p = check_choice("p", p, (1, 2))
    blur = check_number("blur", blur, minimum=0, exclusive=True)
    reach = check_number("reach", reach, minimum=0, exclusive=True, allow_none=True)
    diameter = check_number("diameter", diameter, minimum=0, exclusive=True, allow_none=True)
    scaling = check_number("scaling", scaling, minimum=0, maximum=1, exclusive=True)
    check_bool("debias", debias)
    check_bool("potentials", potentials)
    return int(p), blur, reach, diameter, scaling


def _softmins_for(backend):
    if backend == "triton":
        from fastgen.kernels.sinkhorn import softmins_triton

        return softmins_triton
    return reference.softmins_reference


@annotate("fastgen.sinkhorn")
def _sinkhorn(a, x, b, y, *, loss, p, blur, reach, diameter, scaling, debias, potentials, backend):
    """Validation, dispatch, the loop and the cost; returns ``(value(s), report)``."""
    p, blur, reach, diameter, scaling = _check_options(
        loss, p, blur, reach, diameter, scaling, debias, potentials
    )
    check_point_clouds(x, y)
    a = check_weights("a", a, x)
    b = check_weights("b", b, y)
    if reach is None:
        check_equal_mass(a, b)
    if backend in GEOMLOSS_BACKENDS:
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
        diameter = max_diameter(x.detach(), y.detach())
    eps = blur**p
    rho = None if reach is None else reach**p
    eps_list = epsilon_schedule(p, diameter, blur, scaling)
    pairs = reference.PAIRS_DEBIASED if debias else reference.PAIRS_BALANCED
    softmins = _softmins_for(chosen)

    f_aa, g_bb, g_ab, f_ba, marginal_error = sinkhorn_loop(
        lambda e, hs: softmins(x, y, e, p, pairs, hs),
        log_weights(a),
        log_weights(b),
        eps_list,
        rho,
        debias,
    )
    values = sinkhorn_cost(eps, rho, a, b, f_aa, g_bb, g_ab, f_ba, debias, potentials)
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
    ``OT_eps(a, b)``: entropy-regularised optimal transport with cost
    ``C(x, y) = |x - y|^p / p`` (GeomLoss 0.2+: p = 2 gives ``|x - y|^2 / 2``) and temperature
    ``eps = blur^p``. The divergence interpolates between the Wasserstein distance
    (``blur -> 0``) and a kernel distance (``blur -> inf``), is non-negative and zero only for
    equal measures. Solved by GeomLoss's symmetric log-domain Sinkhorn with epsilon scaling:
    temperatures from ``diameter^p`` down to ``blur^p`` by factors ``scaling^p``.

    Gradients (with respect to ``x``, ``y``, ``a``, ``b``) follow GeomLoss: the potentials of
    the loop are constants (envelope theorem) and one last extrapolation step carries the
    gradient; for p = 2, ``d/dx_i = a_i sum_j pi_ij (x_i - y_j)`` minus the ``OT(a, a)`` term.

    Args:
        x: the first point cloud, ``(N, D)`` or batched ``(B, N, D)``; float32, float64, or
            float16 / bfloat16 (computed in float32, returned in their dtype).
        y: the second point cloud, ``(M, D)`` or ``(B, M, D)``, same dtype and device.
        a: weights of ``x``, ``(N,)`` / ``(B, N)`` (a trailing 1 is accepted), non-negative;
            default uniform ``1 / N``. Balanced transport needs ``a`` and ``b`` of equal total
            mass.
        b: weights of ``y``, ``(M,)`` / ``(B, M)``, as ``a``.
        loss: ``"sinkhorn"``, the only loss offered (GeomLoss's first argument).
        p: the exponent of the cost: 2 (``|x - y|^2 / 2``, the default) or 1 (``|x - y|``).
        blur: the finest scale the loss resolves, in the units of the points: details of the
            point positions below ``blur`` are smoothed out (temperature ``eps = blur^p``).
            GeomLoss's default 0.05 suits data in the unit cube; scale it with your data. Smaller
            values approach the Wasserstein distance but need more iterations.
        reach: ``None`` for balanced transport; a length ``> 0`` gives unbalanced transport
            whose marginal constraints are softened by a KL penalty of strength
            ``rho = reach^p``: mass is moved no farther than about ``reach``, so outliers
            and clouds of different total mass are handled.
        diameter: the largest distance between points, ``> 0``, where the epsilon schedule
            starts; default (None) the diagonal of the bounding box of all points (every
            batch together), one host synchronisation.
        scaling: the ratio ``(0, 1)`` between successive ``blur`` values of the epsilon
            schedule, i.e. the speed / accuracy trade-off: the loop runs about
            ``log(diameter / blur) / log(1 / scaling)`` iterations. GeomLoss's default 0.5 is
            fast and accurate enough for gradients in training; for a metric value raise it
            to 0.9 or more (several times the iterations) and check the report's
            ``marginal_error``.
        debias: subtract the self terms ``OT_eps(a, a) / 2 + OT_eps(b, b) / 2`` (the Sinkhorn
            divergence, no entropic bias); ``False``: ``OT_eps(a, b)``.
        potentials: return the dual potentials ``(f, g)`` instead of the value.
        backend: ``"auto"``, ``"triton"``, ``"torch"`` or None (``FASTGEN_BACKEND``), see
            :mod:`fastgen.backend`; GeomLoss's ``"tensorized"`` / ``"online"`` /
            ``"multiscale"`` mean ``"auto"`` (same numbers).
        return_report: also return a :class:`SinkhornReport`.

    Returns:
        A 0-d tensor (``(B,)`` when batched) in the dtype of ``x``; with ``potentials=True``
        the dual potentials ``(f (N,), g (M,))`` (batched ``(B, N)``, ``(B, M)``), debiased
        as in GeomLoss; with ``return_report=True`` the pair ``(result, report)``. NaN or inf
        in ``x`` / ``y`` give NaN (the schedule then has one temperature).

    Host synchronisations (as GeomLoss): the default ``diameter`` (the schedule's length
    depends on it) and, in eager mode, the checks of the weights' signs and masses. Under
    ``torch.compile`` the checks are skipped, the diameter still breaks the graph.

    Raises:
        TypeError: non-tensor or non-floating inputs, mixed dtypes, non-number options,
            non-bool ``debias`` / ``potentials``.
        ValueError: shapes (mismatched D or batch, empty clouds, weights not ``(N,)``),
            tensors on several devices, negative weights, unequal masses when balanced,
            ``blur`` / ``reach`` / ``diameter`` ``<= 0`` or non-finite, ``scaling`` outside
            (0, 1), ``p`` not 1 or 2, unknown ``loss`` or ``backend``.

    Example:
        >>> import torch
        >>> from fastgen.metrics import sinkhorn_divergence
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
        >>> sinkhorn_divergence(x, x).item()
        0.0
        >>> value = sinkhorn_divergence(x, x + 0.5, blur=0.01, scaling=0.9)
        >>> round(value.item(), 3)  # |shift|^2 / 2 = 0.25
        0.25
    """
    values, report = _sinkhorn(
        a,
        x,
        b,
        y,
        loss=loss,
        p=p,
        blur=blur,
        reach=reach,
        diameter=diameter,
        scaling=scaling,
        debias=debias,
        potentials=potentials,
        backend=backend,
    )
    return (values, report) if return_report else values


class SamplesLoss(torch.nn.Module):
    """Drop-in for ``geomloss.SamplesLoss(loss="sinkhorn", ...)``: ``L(x, y)`` or
    ``L(a, x, b, y)`` is :func:`sinkhorn_divergence` with the options given here.

    Same arguments, defaults and numbers as GeomLoss; each argument is documented at
    :func:`sinkhorn_divergence` (``blur``: the finest scale resolved; ``scaling``: raise it
    towards 0.9 for accurate values, keep 0.5 for fast gradients). ``backend``: fastgen's
    (``"auto"``, ``"triton"``, ``"torch"``, None) or GeomLoss's names (``"auto"``).
    GeomLoss's ``truncate``, ``cost``, ``kernel``, ``cluster_scale`` and ``verbose`` (KeOps
    multiscale and custom costs) are not offered.

    Raises:
        TypeError / ValueError: bad options when constructed; bad tensors when called, or a
            call with other than 2 or 4 arguments.

    Example:
        >>> import torch
        >>> from fastgen.metrics import SamplesLoss
        >>> loss = SamplesLoss("sinkhorn", p=2, blur=0.01, scaling=0.9)
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
        >>> round(loss(x, x + 0.5).item(), 3)
        0.25
        >>> a = torch.tensor([0.5, 0.5])
        >>> round(loss(a, x, a, x + 0.5).item(), 3)  # weights first, as GeomLoss
        0.25
    """

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

    def _options(self) -> dict:
        return {name: getattr(self, name) for name in OPTIONS}

    def forward(self, *args):
        if len(args) == 2:
            (x, y), a, b = args, None, None
        elif len(args) == 4:
            a, x, b, y = args
        else:
            raise ValueError(f"SamplesLoss takes (x, y) or (a, x, b, y), got {len(args)} arguments")
        return sinkhorn_divergence(x, y, a, b, **self._options())

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={value!r}" for name, value in self._options().items())
