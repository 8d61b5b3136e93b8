"""MADE's masked linear layer (Germain et al. 2015, arXiv:1502.03509), nflows-compatible."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fastgen._checks import check_bool, check_number, check_tensor
from fastgen.backend import KERNEL_DTYPES, resolve_backend
from fastgen.reference.masked_linear import ACTIVATIONS, linear_activation, mask_from_degrees
from fastgen.tracing import annotate

# The callables nflows / zuko users pass as ``activation``, by the name the kernel fuses.
_CALLABLES = {
    F.relu: "relu",
    torch.relu: "relu",
    F.gelu: "gelu",
    torch.tanh: "tanh",
    F.tanh: "tanh",
    F.elu: "elu",
    F.silu: "silu",
}


def activation_name(activation) -> str | None:
    """The fused name (``None``, ``"relu"``, ``"gelu"``, ``"tanh"``, ``"elu"``, ``"silu"``) of
    ``activation`` given as a name, ``None`` or one of the functions ``F.relu``, ``F.gelu``,
    ``torch.tanh``, ``F.elu``, ``F.silu``.

    Raises:
        ValueError: any other value.
    """
    if activation is None or (isinstance(activation, str) and activation in ACTIVATIONS):
        return activation
    if callable(activation) and activation in _CALLABLES:
        return _CALLABLES[activation]
    names = ", ".join(repr(a) for a in ACTIVATIONS)
    raise ValueError(
        f"activation must be one of {names} or the matching torch function, got {activation!r}"
    )


def _check_degrees(name: str, degrees, length: int, length_name: str) -> torch.Tensor:
    if not isinstance(degrees, torch.Tensor):
        degrees = torch.as_tensor(degrees)
    if degrees.is_floating_point() or degrees.is_complex() or degrees.dtype == torch.bool:
        raise TypeError(f"{name} must be integers, got dtype {degrees.dtype}")
    if degrees.dim() != 1 or degrees.numel() != length:
        raise ValueError(
            f"{name} must have shape ({length_name},) = ({length},), got {tuple(degrees.shape)}"
        )
    return degrees.long()


def masked_linear(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    in_degrees: torch.Tensor,
    out_degrees: torch.Tensor,
    strict: bool = False,
    activation: str | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """``act(input @ (weight * M).T + bias)`` with ``M[o, i] = out_degrees[o] >= in_degrees[i]``
    (``>`` when ``strict``): the functional form of :class:`MaskedLinear`, which caches the
    mask and the int32 degrees.

    Args:
        input: ``(..., K)``, floating.
        weight: ``(N, K)``, the dtype of ``input``.
        bias: ``(N,)`` or None.
        in_degrees: ``(K,)`` integers.
        out_degrees: ``(N,)`` integers.
        strict: use ``>``.
        activation: as :class:`MaskedLinear`.
        backend: ``"auto"``, ``"triton"``, ``"torch"`` or ``None`` (``FASTGEN_BACKEND``).

    Returns:
        ``(..., N)`` in the dtype of ``input``.

    Raises:
        TypeError, ValueError: as :class:`MaskedLinear`.

    Example:
        >>> import torch
        >>> from fastgen.nn import masked_linear
        >>> weight = torch.ones(2, 2)
        >>> masked_linear(torch.tensor([[1.0, 2.0]]), weight, None, [1, 2], [1, 2])
        tensor([[1., 3.]])
    """
    check_tensor("input", input)
    check_tensor("weight", weight)
    if weight.dim() != 2:
        raise ValueError(
            f"weight must have shape (out_features, in_features), got {tuple(weight.shape)}"
        )
    out_features, in_features = weight.shape
    in_degrees = _check_degrees("in_degrees", in_degrees, in_features, "in_features")
    out_degrees = _check_degrees("out_degrees", out_degrees, out_features, "out_features")
    return _forward(
        input,
        weight,
        bias,
        in_degrees.int(),
        out_degrees.int(),
        None,
        strict,
        activation_name(activation),
        backend,
    )


@annotate("fastgen.masked_linear")
def _forward(input, weight, bias, in_i32, out_i32, masked_weight, strict, activation, backend):
    """Validated dispatch shared by the function and the module (``masked_weight``: a
    callable returning the module's ``W * M``, or None)."""
    check_tensor("input", input)
    out_features, in_features = weight.shape
    if input.dim() == 0 or input.shape[-1] != in_features:
        raise ValueError(
            f"input must have shape (..., in_features) = (..., {in_features}), got "
            f"{tuple(input.shape)}"
        )
    tensors = [input, weight] + ([] if bias is None else [bias])
    if len({t.dtype for t in tensors}) > 1:
        raise TypeError(
            f"input, weight and bias must share one dtype, got {[str(t.dtype) for t in tensors]}"
        )
    if bias is not None and tuple(bias.shape) != (out_features,):
        raise ValueError(f"bias must have shape ({out_features},), got {tuple(bias.shape)}")
    if resolve_backend(backend, tensors, supported_dtypes=KERNEL_DTYPES) == "triton":
        from fastgen.kernels.masked_linear import masked_linear_triton

        return masked_linear_triton(
            input,
            weight,
            bias,
            in_i32.to(input.device),
            out_i32.to(input.device),
            bool(strict),
            activation,
        )
    if masked_weight is None:
        mask = mask_from_degrees(in_i32, out_i32, strict, weight.dtype).to(weight.device)
        return linear_activation(input, weight * mask, bias, activation)
    return linear_activation(input, masked_weight(), bias, activation)


def _refresh_after_load(module, incompatible_keys) -> None:
    module._refresh()


class MaskedLinear(nn.Linear):
    """Masked linear layer of MADE (Germain et al. 2015, arXiv:1502.03509), nflows'
    ``MaskedLinear`` with the mask derived from degrees: ``y = act(x @ (W * M).T + b)``,
    ``M[o, i] = out_degrees[o] >= in_degrees[i]`` (``>`` when ``strict``, for output layers),
    so that an output of degree ``d`` only sees inputs of degree ``<= d``.

    Args:
        in_features: ``K >= 1``.
        out_features: ``N >= 1``.
        in_degrees: ``(K,)`` integers.
        out_degrees: ``(N,)`` integers.
        strict: use ``>`` (an output may not see its own input).
        bias: learn ``b (N,)``.
        activation: fused into the layer: ``None``, ``"relu"``, ``"gelu"`` (exact erf form),
            ``"tanh"``, ``"elu"`` (alpha 1), ``"silu"``, or the matching torch function.
        backend: ``"auto"``, ``"triton"``, ``"torch"`` or ``None`` (``FASTGEN_BACKEND``).

    Shapes and dtypes: ``input (..., K)`` -> ``(..., N)``; float32 / float16 / bfloat16 on the
    Triton kernel (float32 accumulation), any floating dtype on the reference. ``input``,
    ``weight`` and ``bias`` share one dtype.

    Parameters are nn.Linear's (same initialisation as nflows' ``MaskedLinear``); the degrees
    are persistent integer buffers ``in_degrees`` / ``out_degrees``; the float mask is a
    non-persistent buffer rebuilt when the degrees change (:meth:`set_degrees`, loading a
    state dict), so it is not recomputed per call.

    The Triton kernel derives the mask from the degrees on the fly and skips tiles that are
    entirely masked; units ordered by degree make most masked tiles whole.

    Raises:
        TypeError: non-integer sizes or degrees, non-bool ``strict`` / ``bias``; input not a
            floating tensor; mixed dtypes.
        ValueError: sizes below 1; degrees of the wrong length;
            ``input.shape[-1] != in_features``; unknown activation or backend.

    Example:
        >>> import torch
        >>> from fastgen.nn import MaskedLinear
        >>> layer = MaskedLinear(3, 2, in_degrees=[1, 2, 3], out_degrees=[1, 2], strict=True)
        >>> layer.mask
        tensor([[0., 0., 0.],
                [1., 0., 0.]])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        in_degrees,
        out_degrees,
        strict: bool = False,
        bias: bool = True,
        activation=None,
        backend: str | None = None,
    ):
        in_features = check_number("in_features", in_features, integer=True, minimum=1)
        out_features = check_number("out_features", out_features, integer=True, minimum=1)
        bias = check_bool("bias", bias)
        super().__init__(in_features, out_features, bias=bias)
        self.strict = check_bool("strict", strict)
        self.activation = activation_name(activation)
        self.backend = backend
        self.register_buffer("in_degrees", torch.zeros(in_features, dtype=torch.long))
        self.register_buffer("out_degrees", torch.zeros(out_features, dtype=torch.long))
        self.register_buffer("mask", torch.zeros(out_features, in_features), persistent=False)
        self.register_buffer(
            "_in_i32", torch.zeros(in_features, dtype=torch.int32), persistent=False
        )
        self.register_buffer(
            "_out_i32", torch.zeros(out_features, dtype=torch.int32), persistent=False
        )
        self.set_degrees(in_degrees, out_degrees)
        # a module-level function, not a lambda: the module must stay picklable (sbi pickles)
        self.register_load_state_dict_post_hook(_refresh_after_load)

    def set_degrees(self, in_degrees, out_degrees) -> None:
        """Replace the degrees (and the cached mask)."""
        in_degrees = _check_degrees("in_degrees", in_degrees, self.in_features, "in_features")
        out_degrees = _check_degrees("out_degrees", out_degrees, self.out_features, "out_features")
        with torch.no_grad():
            self.in_degrees.copy_(in_degrees)
            self.out_degrees.copy_(out_degrees)
        self._refresh()

    def _refresh(self) -> None:
        with torch.no_grad():
            self.mask.copy_(
                mask_from_degrees(self.in_degrees, self.out_degrees, self.strict, self.mask.dtype)
            )
            self._in_i32.copy_(self.in_degrees)
            self._out_i32.copy_(self.out_degrees)

    def masked_weight(self) -> torch.Tensor:
        """``W * M`` (N, K) as the reference path uses it.

        With autograd recording a gradient for the weight it is computed afresh (the product's
        backward masks ``grad_W``). Otherwise (``torch.no_grad``, inference, the ``D`` MADE
        passes of autoregressive sampling) the product is cached (one weight-sized tensor per
        layer) until the weight or the mask changes: the cache key holds their version
        counters, which every in-place update bumps (optimizer steps, ``load_state_dict``,
        ``torch.nn.init``, :meth:`set_degrees`), and their storages (``.to()``, ``.double()``,
        assigning ``.data``). Writes through ``weight.data`` (``weight.data.mul_(...)``)
        bypass the version counter: use ``weight.detach()`` or ``torch.no_grad()`` for manual
        updates. Measured on a 2-core Xeon, 1 thread: the ``F.linear`` calls of the 6 masked
        layers of an 8-feature MADE (hidden 128) run 1.8x faster at batch 1, 1.5x at 16, 1.1x
        at 256 with the cached product, equal at 2048.
        """
        weight, mask = self.weight, self.mask
        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and weight.requires_grad):
            return weight * mask.to(weight.dtype)
        key = (weight._version, weight.data_ptr(), weight.dtype, mask._version, mask.data_ptr())
        if getattr(self, "_masked_weight_key", None) != key:
            self._masked_weight_cache = (weight * mask.to(weight.dtype)).detach()
            self._masked_weight_key = key
        return self._masked_weight_cache

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(
            input,
            self.weight,
            self.bias,
            self._in_i32,
            self._out_i32,
            self.masked_weight,
            self.strict,
            self.activation,
            self.backend,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, strict={self.strict}, activation={self.activation!r}"
