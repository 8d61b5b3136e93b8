"""Run models built with nflows (or sbi, which builds on it) through fastgen, in the spirit
of Liger-Kernel's ``apply_liger_kernel_to_*``.

``patch()`` replaces, wherever nflows looks them up:

* ``unconstrained_rational_quadratic_spline`` and ``rational_quadratic_spline`` (in
  ``nflows.transforms.splines``, ``...splines.rational_quadratic`` and
  ``nflows.transforms.autoregressive``, which imports them by name) with fastgen's, same
  signature and numbers (:mod:`fastgen.splines`);
* ``nflows.transforms.made.MaskedLinear.forward`` with fastgen's masked linear dispatch: the
  reference ``F.linear(x, W * M, b)`` on CPU, the Triton kernel on CUDA. nflows stores the
  mask and the output degrees only; the input degrees are recovered once per layer from the
  mask (``e_i = min{d_o : M[o, i] = 1}``, which reproduces ``M`` exactly as ``d_o >= e_i``;
  checked, else the layer keeps the plain masked product).

``unpatch()`` restores nflows' functions. Both are idempotent. Differences that remain:
fastgen raises ``ValueError`` where nflows raises ``InputOutsideDomain`` (bounded spline,
inputs outside the domain) or ``RuntimeError`` (unknown tails).
"""

from __future__ import annotations

import importlib

import torch

import fastgen
from fastgen.nn.masked_linear import _forward

# (module name, attribute) -> the original, while patched
_ORIGINALS: dict[tuple[str, str], object] = {}
_SPLINE_MODULES = (
    "nflows.transforms.splines",
    "nflows.transforms.splines.rational_quadratic",
    "nflows.transforms.autoregressive",
)
_NEVER = torch.iinfo(torch.int32).max


def _modules():
    try:
        names = (*_SPLINE_MODULES, "nflows.transforms.made")
        return {name: importlib.import_module(name) for name in names}
    except ImportError as error:
        raise ImportError(
            f"fastgen.integrations.nflows needs nflows: pip install nflows (import failed: {error})"
        ) from error


def _degrees_from_mask(layer):
    """int32 ``(in_degrees, out_degrees)`` reproducing ``layer.mask`` as ``d_o >= e_i``, cached
    on the layer (keyed on the mask's version), or None when the mask has no such form."""
    mask = layer.mask
    key = (mask.data_ptr(), mask._version)
    cached = getattr(layer, "_fastgen_degrees", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    out_degrees = layer.degrees.to(torch.int64)
    connected = mask > 0
    candidates = torch.where(connected, out_degrees[:, None], _NEVER)
    in_degrees = candidates.amin(dim=0)
    degrees = None
    if torch.equal(out_degrees[:, None] >= in_degrees, connected):
        degrees = (in_degrees.to(torch.int32), out_degrees.to(torch.int32))
    layer._fastgen_degrees = (key, degrees)
    return degrees


def _masked_linear_forward(self, x):
    degrees = _degrees_from_mask(self)
    if degrees is None:  # not a degree mask: nflows' own product, through the reference
        return torch.nn.functional.linear(x, self.weight * self.mask, self.bias)

    def masked_weight():  # nflows' own product, from the mask buffer it keeps
        return self.weight * self.mask

    return _forward(x, self.weight, self.bias, *degrees, masked_weight, False, None, None)


def _replacements(modules):
    yield from (
        (name, attr, getattr(fastgen, attr))
        for name in _SPLINE_MODULES
        for attr in ("unconstrained_rational_quadratic_spline", "rational_quadratic_spline")
    )
    yield "nflows.transforms.made", "MaskedLinear.forward", _masked_linear_forward


def _target(modules, name, attr):
    owner = modules[name]
    *path, last = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, last


def patch() -> None:
    """Route nflows' spline functions and ``MaskedLinear.forward`` through fastgen, for every
    nflows (or sbi) model, existing or built later, until :func:`unpatch`. Idempotent.

    Raises:
        ImportError: nflows is not installed.

    Example:
        >>> from fastgen.integrations import nflows as fastgen_nflows
        >>> fastgen_nflows.patch()
        >>> fastgen_nflows.is_patched()
        True
        >>> fastgen_nflows.unpatch()
        >>> fastgen_nflows.is_patched()
        False
    """
    modules = _modules()
    for name, attr, replacement in _replacements(modules):
        owner, last = _target(modules, name, attr)
        _ORIGINALS.setdefault((name, attr), getattr(owner, last))
        setattr(owner, last, replacement)


def unpatch() -> None:
    """Restore what :func:`patch` replaced (a no-op when not patched).

    Raises:
        ImportError: nflows is not installed.
    """
    modules = _modules()
    for (name, attr), original in list(_ORIGINALS.items()):
        owner, last = _target(modules, name, attr)
        setattr(owner, last, original)
        del _ORIGINALS[(name, attr)]


def is_patched() -> bool:
    """Whether :func:`patch` is in effect."""
    return bool(_ORIGINALS)
