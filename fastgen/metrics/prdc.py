"""Precision, recall, density and coverage of generated samples (Naeem et al. 2020,
arXiv:2002.09797), with the ``prdc`` package's API (``compute_prdc``,
``compute_nearest_neighbour_distances``) and without its ``N x N`` matrices: the hot path
``knn`` (Triton kernel :mod:`fastgen.kernels.knn`; blocked reference
:mod:`fastgen.reference.knn`) walks the pairs tile by tile, so memory stays ``O(N + M)``.

Conventions (``prdc`` 0.2's, except ties):

* The radius of a real point ``x_i`` is the distance to its ``nearest_k``-th nearest *other*
  real point (``prdc`` takes the ``k + 1``-th smallest of a row that includes the point itself
  at distance 0; the same number, duplicates included). Default ``nearest_k = 5``.
* Balls are **closed**: ``y`` is in ``B(x_i, r_i)`` when ``|y - x_i| <= r_i``, the paper's
  definition (its eqs. for precision, recall, density, coverage). ``prdc`` compares with a
  strict ``<``. On continuous data ties have probability 0 and both agree; they differ on
  duplicated points. A point repeated more than ``nearest_k`` times has radius 0: ``prdc``
  then counts nothing inside its ball, so that for a discrete feature set it gives precision,
  density and coverage 0 to a perfect generator, where ``<=`` gives 1, ``(k + 1) / k``, 1.
  For two identical sets of distinct points both give precision = recall = coverage = 1;
  density is ``(k + 1) / k`` with ``<=`` (each ball holds its centre and its ``k`` neighbours),
  1 with ``<``.
* Distances are Euclidean, computed as ``|x|^2 + |y|^2 - 2 <x, y>`` after subtracting the real
  set's mean from both sets (which reduces the expansion's cancellation), in float32 (float64
  inputs: float64); squared distances below ``D eps (|x|^2 + |y|^2)`` count as 0, so points
  closer than the expansion can resolve are duplicates (:mod:`fastgen.reference.knn`).
"""

from __future__ import annotations

import torch

from fastgen._checks import check_number, check_pair, check_samples
from fastgen.backend import (
    KERNEL_DTYPES,
    TRITON_AVAILABLE,
    resolve_backend,
    triton_interpreter_enabled,
)
from fastgen.reference.knn import ball_counts_reference, knn_reference
from fastgen.tracing import annotate

NEAREST_K = 5


def _knn_functions(tensors, nearest_k, backend):
    """``(knn, ball_counts)`` of the backend that serves this call."""
    refusals = []
    # importing the kernels imports triton (seconds): only where they could run
    if TRITON_AVAILABLE and (tensors[0].is_cuda or triton_interpreter_enabled()):
        from fastgen.kernels.knn import MAX_K

        if nearest_k > MAX_K:
            refusals.append(f"nearest_k = {nearest_k} > {MAX_K}, the kernel's largest")
    chosen = resolve_backend(
        backend, tensors, supported_dtypes=KERNEL_DTYPES, extra_refusals=refusals
    )
    if chosen == "triton":
        from fastgen.kernels.knn import ball_counts_triton, knn_triton

        return knn_triton, ball_counts_triton
    return knn_reference, ball_counts_reference


def _prepare(names, *sets, nearest_k):
    """Validated sets in the compute dtype (float64 stays, others float32), centred on the
    first set's mean; ``nearest_k`` checked against every set's size."""
    tensors = [check_samples(name, value) for name, value in zip(names, sets, strict=True)]
    for name, tensor in zip(names[1:], tensors[1:], strict=True):
        check_pair((names[0], name), tensors[0], tensor)
    check_number("nearest_k", nearest_k, minimum=1, integer=True)
    for name, tensor in zip(names, tensors, strict=True):
        if nearest_k >= tensor.shape[0]:
            raise ValueError(
                f"nearest_k must be < the number of rows of {name} ({tensor.shape[0]}), "
                f"got {nearest_k}"
            )
    dtype = torch.float64 if tensors[0].dtype == torch.float64 else torch.float32
    mean = tensors[0].to(dtype).mean(0)
    return [t.to(dtype) - mean for t in tensors]


def compute_nearest_neighbour_distances(
    input_features, nearest_k: int = NEAREST_K, *, backend: str | None = None
) -> torch.Tensor:
    """Distance of each row to its ``nearest_k``-th nearest other row (its PRDC ball radius;
    ``prdc.compute_nearest_neighbour_distances``), without the ``N x N`` matrix.

    Args:
        input_features: ``(N, D)`` torch / NumPy / DLPack array, finite, ``N > nearest_k``.
        nearest_k: int ``>= 1``.
        backend: ``"auto" | "triton" | "torch" | None`` (:mod:`fastgen.backend`); the kernel
            serves float32 / half inputs and ``nearest_k <= 8``.

    Returns:
        ``(N,)`` float32 (float64 for float64 input) on the input's device.

    Raises:
        TypeError / ValueError: not a floating 2-D array, NaN / inf, ``nearest_k`` not an
        int in ``[1, N)``.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> compute_nearest_neighbour_distances(x, nearest_k=1, backend="torch")
        tensor([1., 1., 2.])
    """
    (features,) = _prepare(("input_features",), input_features, nearest_k=nearest_k)
    knn, _ = _knn_functions([features], nearest_k, backend)
    return knn(features, features, nearest_k, True).sqrt()


def prdc_per_sample(real_features, fake_features, nearest_k: int = NEAREST_K, *, backend=None):
    """The per-point terms whose means are PRDC: ``(in_real_balls (M,) int32: real balls
    holding each fake point, recalled (N,) bool: real points inside a fake ball, covered (N,)
    bool: real balls holding a fake point)``; precision = mean(in_real_balls > 0), density =
    mean(in_real_balls) / k, recall = mean(recalled), coverage = mean(covered). Arguments as
    :func:`compute_prdc`."""
    names = ("real_features", "fake_features")
    real, fake = _prepare(names, real_features, fake_features, nearest_k=nearest_k)
    knn, ball_counts = _knn_functions([real, fake], nearest_k, backend)
    real_radii = knn(real, real, nearest_k, True)
    fake_radii = knn(fake, fake, nearest_k, True)
    in_real_balls, _ = ball_counts(fake, real, real_radii)
    in_fake_balls, nearest_fake = ball_counts(real, fake, fake_radii)
    return in_real_balls, in_fake_balls > 0, nearest_fake <= real_radii


@annotate("fastgen.compute_prdc")
def compute_prdc(
    real_features, fake_features, nearest_k: int = NEAREST_K, *, backend: str | None = None
) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake_features`` against
    ``real_features`` (Naeem et al. 2020, arXiv:2002.09797), ``prdc.compute_prdc``'s
    numbers on continuous data (closed balls: see the module docstring for ties):

    * precision: fraction of fake points inside at least one real ball ``B(x_i, r_i)``;
    * recall: fraction of real points inside at least one fake ball;
    * density: ``(1 / kM) sum_j #{i: y_j in B(x_i, r_i)}`` (1 in expectation for equal
      distributions, above 1 where fakes crowd dense real regions);
    * coverage: fraction of real balls holding at least one fake point.

    ``r_i`` is the distance from ``x_i`` to its ``nearest_k``-th nearest other point of its
    own set. Time ``O((N + M)^2 D)`` in four tiled passes; memory ``O(N + M)``: at
    N = M = 50,000, D = 64 the reference holds blocks of 2^22 distances (16 MB) where ``prdc``
    needs several 10 GB matrices.

    Args:
        real_features: ``(N, D)``; fake_features: ``(M, D)``; same dtype and device; torch /
            NumPy / DLPack; finite; ``N, M > nearest_k``.
        nearest_k: int ``>= 1`` (``prdc``'s name; 5 in the paper).
        backend: see :func:`compute_nearest_neighbour_distances`.

    Returns:
        ``{"precision", "recall", "density", "coverage"}`` Python floats.

    Raises:
        TypeError / ValueError: as :func:`compute_nearest_neighbour_distances`, and for sets
        of different ``D``, dtype or device.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> real, fake = torch.randn(200, 3, generator=g), torch.randn(200, 3, generator=g)
        >>> scores = compute_prdc(real, fake, nearest_k=5)
        >>> sorted(scores)
        ['coverage', 'density', 'precision', 'recall']
    """
    in_real_balls, recalled, covered = prdc_per_sample(
        real_features, fake_features, nearest_k, backend=backend
    )
    return {
        "precision": (in_real_balls > 0).double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": in_real_balls.double().mean().item() / nearest_k,
        "coverage": covered.double().mean().item(),
    }
