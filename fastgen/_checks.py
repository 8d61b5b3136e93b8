"""The argument checks of every public entry point, in one place.

Each check names the caller's argument, the expected and the actual value, and raises
``TypeError`` for a wrong kind and ``ValueError`` for a wrong value. Array arguments of the
metrics accept NumPy, torch or DLPack arrays (:func:`as_float_tensor`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

# Elements tested at a time by check_finite: the boolean mask of a 50,000 x 2048 feature set
# alone is 100 MB.
FINITE_CHUNK = 2**24
# Seeds that torch.Generator.manual_seed and numpy.random.default_rng both accept.
SEED_RANGE = (0, 2**63 - 1)
# Relative tolerance of the equal-total-mass check of balanced optimal transport.
MASS_RTOL = {torch.float64: 1e-8}
DEFAULT_MASS_RTOL = 1e-4


def check_tensor(name: str, value) -> torch.Tensor:
    """``value`` itself when it is a floating-point ``torch.Tensor``; ``TypeError`` else."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    return value


def check_number(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    exclusive: bool = False,
    allow_none: bool = False,
):
    """``value`` as a Python ``int`` (``integer=True``) or ``float``, finite and in range.

    Args:
        name: the caller's argument name, used in the messages.
        value: a Python or NumPy number (``bool`` and tensors are refused: a tensor would
            make the caller synchronise with its device).
        minimum, maximum: the bounds, inclusive unless ``exclusive=True``.
        integer: refuse non-integers (``3.0`` included) and return an ``int``.
        exclusive: the bounds are excluded (``blur > 0``).
        allow_none: ``None`` passes through unchanged (an optional argument).

    Raises:
        TypeError: ``value`` is not a (real, integer when asked) number.
        ValueError: ``value`` is NaN, infinite or out of range.
    """
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kind):
        expected = "an int" if integer else "a real number"
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    value = int(value) if integer else float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    below = minimum is not None and (value <= minimum if exclusive else value < minimum)
    above = maximum is not None and (value >= maximum if exclusive else value > maximum)
    if below or above:
        low = "" if minimum is None else ("> " if exclusive else ">= ") + f"{minimum}"
        high = "" if maximum is None else ("< " if exclusive else "<= ") + f"{maximum}"
        raise ValueError(f"{name} must be {' and '.join(filter(None, (low, high)))}, got {value}")
    return value


def check_bool(name: str, value) -> bool:
    """``value`` when it is a ``bool``; ``TypeError`` else (``0`` / ``1`` are refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(name: str, value, choices: tuple) -> object:
    """``value`` when it is one of ``choices``; ``ValueError`` listing them else. A ``bool``
    is refused unless ``choices`` hold one (``True == 1`` would pass for ``(1, 2)``)."""
    is_bool = isinstance(value, (bool, np.bool_))
    if (
        isinstance(value, (list, dict, set))
        or value not in choices
        or (is_bool and not any(isinstance(c, bool) for c in choices))
    ):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_seed(name: str, seed, *, allow_none: bool = True, maximum: int = SEED_RANGE[1]):
    """A seed for ``torch.Generator.manual_seed`` / ``numpy.random.default_rng``: an ``int``
    in ``[0, maximum]`` or, when ``allow_none``, ``None`` (fresh entropy). NumPy's legacy
    ``RandomState`` takes ``maximum=2**32 - 1``."""
    return check_number(
        name, seed, minimum=SEED_RANGE[0], maximum=maximum, integer=True, allow_none=allow_none
    )


def check_pair(
    names: tuple[str, str],
    first: torch.Tensor,
    second: torch.Tensor,
    *,
    same_shape: bool = False,
    same_dtype: bool = True,
    axis: int | None = -1,
) -> None:
    """Two tensors that are used together: one device, one dtype (unless ``same_dtype=False``:
    statistics computed in float64 whatever the inputs), and the same shape (``same_shape``)
    or the same size along ``axis`` (the feature axis; ``None``: no check)."""
    a, b = names
    if first.device != second.device:
        raise ValueError(
            f"{a} and {b} must be on one device, got {first.device} and {second.device}"
        )
    if same_dtype and first.dtype != second.dtype:
        raise TypeError(f"{a} and {b} must share one dtype, got {first.dtype} and {second.dtype}")
    if same_shape and first.shape != second.shape:
        raise ValueError(
            f"{a} and {b} must have the same shape, got {tuple(first.shape)} and "
            f"{tuple(second.shape)}"
        )
    if not same_shape and axis is not None and first.shape[axis] != second.shape[axis]:
        raise ValueError(
            f"{a} and {b} must have the same size along axis {axis}, got "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )


def as_float_tensor(name: str, value) -> torch.Tensor:
    """``value`` as a floating-point ``torch.Tensor`` without a copy where possible.

    Accepts a ``torch.Tensor``, a NumPy array (or NumPy scalar) or any object with
    ``__dlpack__`` (CuPy, JAX, ...). Raises ``TypeError`` naming ``name`` for anything else
    or for a non-floating dtype.
    """
    if isinstance(value, torch.Tensor):
        tensor = value
    elif isinstance(value, (np.ndarray, np.generic)):
        tensor = torch.as_tensor(np.asarray(value))
    elif hasattr(value, "__dlpack__"):
        tensor = torch.from_dlpack(value)
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor, a NumPy array or a DLPack array, "
            f"got {type(value).__name__}"
        )
    return check_tensor(name, tensor)


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """``ValueError`` when ``tensor`` holds NaN or inf (one host synchronisation per chunk of
    about 2^24 elements along the first dimension)."""
    row = max(1, tensor[0].numel()) if tensor.dim() > 0 and tensor.shape[0] > 0 else 1
    chunks = tensor.split(max(1, FINITE_CHUNK // row)) if tensor.dim() > 0 else (tensor,)
    for chunk in chunks:
        if not bool(torch.isfinite(chunk).all()):
            raise ValueError(f"{name} must be finite, got NaN or inf entries")


def check_samples(
    name: str, value, *, min_samples: int = 2, flat: bool = True, finite: bool = True
) -> torch.Tensor:
    """``value`` as a floating tensor of ``N >= min_samples`` samples (first axis) of at least
    one feature each; torch, NumPy or DLPack (:func:`as_float_tensor`).

    Args:
        name: the caller's argument name, used in the messages.
        value: the samples.
        min_samples: the least ``N`` (a covariance or an unbiased MMD needs 2; a training
            batch 1).
        flat: ``(N, D)`` feature sets (the metrics); ``False``: ``(N, ...)`` of any rank
            (tabular ``(B, D)`` or image ``(B, C, H, W)`` training batches).
        finite: refuse NaN / inf (metric inputs; a training step lets NaN reach its loss).
    """
    samples = as_float_tensor(name, value)
    layout = "(N, D)" if flat else "(N, ...)"
    if samples.dim() == 0 or (flat and samples.dim() != 2):
        raise ValueError(f"{name} must be {layout}, got shape {tuple(samples.shape)}")
    if samples.shape[0] < min_samples or math.prod(samples.shape[1:]) == 0:
        raise ValueError(
            f"{name} needs N >= {min_samples} samples of >= 1 feature {layout}, got shape "
            f"{tuple(samples.shape)}"
        )
    if finite:
        check_finite(name, samples)
    return samples


def check_sample_pair(
    names: tuple[str, str], first, second, *, same_dtype: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two feature sets compared by a metric: each :func:`check_samples` (``(N_i, D)``,
    ``N_i >= 2``, finite), then :func:`check_pair` (one device, the same ``D``, one dtype
    unless ``same_dtype=False``). Returns them as tensors."""
    first, second = check_samples(names[0], first), check_samples(names[1], second)
    check_pair(names, first, second, same_dtype=same_dtype)
    return first, second


def check_point_clouds(x: torch.Tensor, y: torch.Tensor) -> None:
    """Point clouds ``x (N, D)``, ``y (M, D)`` or batched ``(B, N, D)``, ``(B, M, D)`` of
    optimal transport: floating tensors, one dtype and device, the same ``D`` (and ``B``),
    non-empty."""
    check_tensor("x", x)
    check_tensor("y", y)
    if x.dim() not in (2, 3):
        raise ValueError(f"x must have shape (N, D) or (B, N, D), got {tuple(x.shape)}")
    if y.dim() != x.dim():
        raise ValueError(
            f"y must have as many dimensions as x ({x.dim()}), got shape {tuple(y.shape)}"
        )
    check_pair(("x", "y"), x, y)
    if x.dim() == 3 and x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same batch size, got {x.shape[0]} and {y.shape[0]}"
        )
    if 0 in x.shape or 0 in y.shape:
        raise ValueError(f"x and y must be non-empty, got x {tuple(x.shape)}, y {tuple(y.shape)}")


def check_weights(name: str, weights: torch.Tensor | None, points: torch.Tensor) -> torch.Tensor:
    """Weights of ``points (N, D)`` / ``(B, N, D)``: ``(N,)`` / ``(B, N)`` (a trailing 1 is
    accepted, as GeomLoss), non-negative, in the points' dtype; ``None``: uniform ``1 / N``.
    The sign test synchronises with the device; it is skipped under ``torch.compile``."""
    expected = tuple(points.shape[:-1])
    if weights is None:
        return torch.full(
            expected, 1.0 / points.shape[-2], dtype=points.dtype, device=points.device
        )
    check_tensor(name, weights)
    if weights.dtype != points.dtype:
        raise TypeError(
            f"{name} must have the dtype of the points {points.dtype}, got {weights.dtype}"
        )
    if weights.dim() == len(expected) + 1 and weights.shape[-1] == 1:
        weights = weights.squeeze(-1)
    if tuple(weights.shape) != expected:
        raise ValueError(
            f"{name} must have shape {expected} (or {expected + (1,)}), got {tuple(weights.shape)}"
        )
    if not torch.compiler.is_compiling() and bool((weights < 0).any()):
        raise ValueError(f"{name} must be non-negative, got minimum {weights.min().item()}")
    return weights


def check_equal_mass(a: torch.Tensor, b: torch.Tensor) -> None:
    """Balanced transport: ``a.sum(-1)`` equals ``b.sum(-1)`` to ``MASS_RTOL`` (relative).
    Skipped under ``torch.compile`` (a host synchronisation)."""
    if torch.compiler.is_compiling():
        return
    mass_a, mass_b = a.sum(-1), b.sum(-1)
    rtol = MASS_RTOL.get(a.dtype, DEFAULT_MASS_RTOL)
    if not bool(((mass_a - mass_b).abs() <= rtol * torch.maximum(mass_a, mass_b)).all()):
        raise ValueError(
            "balanced transport (reach=None) needs a and b of equal total mass, got sums "
            f"{mass_a.tolist()} and {mass_b.tolist()} (relative tolerance {rtol:g})"
        )
