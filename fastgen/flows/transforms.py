"""The transform interface of fastgen's flows and the transforms that hold no network:
composition, inversion and permutations (nflows' classes of the same names).

A transform maps ``inputs (B, D)`` to ``(outputs (B, D), logabsdet (B,))`` with
``logabsdet = log|det d outputs / d inputs|`` of the direction called: ``forward`` goes from
data to noise, ``inverse`` from noise to data, both with an optional ``context (B, C)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fastgen._checks import check_number, check_tensor


def check_inputs(inputs, features: int) -> None:
    """``TypeError`` / ``ValueError`` unless ``inputs`` is a floating ``(B, features)`` tensor."""
    check_tensor("inputs", inputs)
    if inputs.dim() != 2 or inputs.shape[1] != features:
        raise ValueError(
            f"inputs must have shape (batch, features) = (batch, {features}), got "
            f"{tuple(inputs.shape)}"
        )


class Transform(nn.Module):
    """Base class of the flow transforms (nflows ``Transform``).

    Subclasses define ``forward(inputs, context=None)`` and ``inverse(inputs, context=None)``,
    each returning ``(outputs (B, D), logabsdet (B,))``; ``logabsdet`` of ``inverse`` is the
    log-determinant of the inverse map at ``inputs``, so ``inverse(forward(x))`` returns ``x``
    and minus the forward ``logabsdet``.
    """

    def forward(self, inputs, context=None):
        raise NotImplementedError

    def inverse(self, inputs, context=None):
        raise NotImplementedError


class CompositeTransform(Transform):
    """The transforms applied in order: ``forward = t_n o ... o t_1``, logabsdets added
    (nflows ``CompositeTransform``); ``inverse`` runs their inverses in reverse order.

    Args:
        transforms: ``t_1, ..., t_n``, each a :class:`Transform`; every one receives the
            same ``context``.

    Example:
        >>> import torch
        >>> from fastgen.flows import CompositeTransform, ReversePermutation
        >>> t = CompositeTransform([ReversePermutation(3), ReversePermutation(3)])
        >>> t(torch.tensor([[1.0, 2.0, 3.0]]))
        (tensor([[1., 2., 3.]]), tensor([0.]))
    """

    def __init__(self, transforms: Sequence[Transform]):
        super().__init__()
        self._transforms = nn.ModuleList(transforms)

    @staticmethod
    def _cascade(inputs, funcs, context):
        total = inputs.new_zeros(inputs.shape[0])
        for func in funcs:
            inputs, logabsdet = func(inputs, context)
            total = total + logabsdet
        return inputs, total

    def forward(self, inputs, context=None):
        return self._cascade(inputs, self._transforms, context)

    def inverse(self, inputs, context=None):
        return self._cascade(inputs, [t.inverse for t in reversed(self._transforms)], context)


class InverseTransform(Transform):
    """``transform`` run backwards: ``forward`` is ``transform.inverse`` and ``inverse`` is
    ``transform.forward`` (nflows ``InverseTransform``). An inverse autoregressive flow (IAF,
    Kingma et al. 2016, arXiv:1606.04934) is a masked autoregressive transform wrapped in it:
    sampling becomes one conditioner pass, density evaluation ``D`` passes.

    Args:
        transform: the :class:`Transform` to invert.

    Example:
        >>> import torch
        >>> from fastgen.flows import InverseTransform, Permutation
        >>> InverseTransform(Permutation(torch.tensor([1, 2, 0])))(torch.tensor([[0.0, 1.0, 2.0]]))
        (tensor([[2., 0., 1.]]), tensor([0.]))
    """

    def __init__(self, transform: Transform):
        super().__init__()
        self._transform = transform

    def forward(self, inputs, context=None):
        return self._transform.inverse(inputs, context)

    def inverse(self, inputs, context=None):
        return self._transform(inputs, context)


class Permutation(Transform):
    """Reorders the features: ``outputs = inputs.index_select(dim, permutation)``, logabsdet 0
    (nflows ``Permutation``; the buffer is ``_permutation`` as there). Placed between
    autoregressive or coupling layers, so that every feature is conditioned on the others.

    Args:
        permutation: ``(D,)`` integers, a permutation of ``0..D-1``.
        dim: the feature dimension of ``inputs`` (1 for ``(B, D)`` inputs).

    Raises:
        ValueError: ``permutation`` not a permutation of ``0..D-1``; inputs whose ``dim``
            does not have length ``D``.

    Example:
        >>> import torch
        >>> from fastgen.flows import Permutation
        >>> Permutation(torch.tensor([1, 2, 0]))(torch.tensor([[0.0, 1.0, 2.0]]))
        (tensor([[1., 2., 0.]]), tensor([0.]))
    """

    def __init__(self, permutation: torch.Tensor, dim: int = 1):
        permutation = torch.as_tensor(permutation, dtype=torch.long)
        if permutation.dim() != 1 or not torch.equal(
            permutation.sort().values, torch.arange(len(permutation))
        ):
            raise ValueError(f"permutation must be a permutation of 0..D-1, got {permutation}")
        super().__init__()
        self._dim = check_number("dim", dim, integer=True, minimum=0)
        self.register_buffer("_permutation", permutation)

    def _permute(self, inputs, permutation):
        check_tensor("inputs", inputs)
        if inputs.dim() <= self._dim or inputs.shape[self._dim] != len(permutation):
            raise ValueError(
                f"inputs must have {len(permutation)} features in dim {self._dim}, got shape "
                f"{tuple(inputs.shape)}"
            )
        outputs = inputs.index_select(self._dim, permutation)
        return outputs, inputs.new_zeros(inputs.shape[0])

    def forward(self, inputs, context=None):
        return self._permute(inputs, self._permutation)

    def inverse(self, inputs, context=None):
        return self._permute(inputs, torch.argsort(self._permutation))


class ReversePermutation(Permutation):
    """Reverses the order of the ``features`` features (nflows ``ReversePermutation``).

    Args:
        features: ``D >= 1``.
        dim: as :class:`Permutation`.

    Example:
        >>> import torch
        >>> from fastgen.flows import ReversePermutation
        >>> ReversePermutation(3)(torch.tensor([[0.0, 1.0, 2.0]]))[0]
        tensor([[2., 1., 0.]])
    """

    def __init__(self, features: int, dim: int = 1):
        features = check_number("features", features, integer=True, minimum=1)
        super().__init__(torch.arange(features - 1, -1, -1), dim)


class RandomPermutation(Permutation):
    """A random permutation of the ``features`` features, drawn once at construction from
    torch's global generator (nflows ``RandomPermutation``).

    Args:
        features: ``D >= 1``.
        dim: as :class:`Permutation`.

    Example:
        >>> import torch
        >>> from fastgen.flows import RandomPermutation
        >>> _ = torch.manual_seed(0)
        >>> RandomPermutation(4)._permutation.sort().values
        tensor([0, 1, 2, 3])
    """

    def __init__(self, features: int, dim: int = 1):
        features = check_number("features", features, integer=True, minimum=1)
        super().__init__(torch.randperm(features), dim)
