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
    """``value`` when it is one of ``choices``; ``ValueError`` listing them else."""
    if isinstance(value, (list, dict, set)) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_seed(name: str, seed):
    """A seed for ``torch.Generator.manual_seed`` / ``numpy.random.default_rng``: ``None``
    (fresh entropy) or an ``int`` in ``[0, 2**63 - 1]``."""
    return check_number(
        name, seed, minimum=SEED_RANGE[0], maximum=SEED_RANGE[1], integer=True, allow_none=True
    )


def check_pair(
    names: tuple[str, str],
    first: torch.Tensor,
    second: torch.Tensor,
    *,
    same_shape: bool = False,
    axis: int | None = -1,
) -> None:
    """Two tensors that are used together: one device, one dtype, and the same shape
    (``same_shape``) or the same size along ``axis`` (the feature axis; ``None``: no check)."""
    a, b = names
    if first.device != second.device:
        raise ValueError(
            f"{a} and {b} must be on one device, got {first.device} and {second.device}"
        )
    if first.dtype != second.dtype:
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


def check_samples(name: str, value) -> torch.Tensor:
    """``value`` as a finite floating ``(N, D)`` tensor with ``N >= 2`` samples (a covariance
    or an unbiased MMD needs two)."""
    features = as_float_tensor(name, value)
    if features.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got {tuple(features.shape)}")
    if features.shape[0] < 2:
        raise ValueError(f"{name} needs N >= 2 samples, got {features.shape[0]}")
    check_finite(name, features)
    return features
