"""Array arguments of the metrics and linear-algebra entry points: NumPy, torch or DLPack."""

from __future__ import annotations

import numpy as np
import torch


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
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {tensor.dtype}")
    return tensor


# Elements tested at a time: the boolean mask of a 50,000 x 2048 feature set alone is 100 MB.
FINITE_CHUNK = 2**24


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
