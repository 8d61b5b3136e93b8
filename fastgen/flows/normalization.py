"""Batch normalization as a flow transform (nflows ``BatchNorm``), placed between the layers
of a masked autoregressive flow (Papamakarios et al. 2017, arXiv:1705.07057, section 3.4;
Dinh et al. 2017, arXiv:1605.08803, section 3.7)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fastgen._checks import check_number
from fastgen.flows.transforms import Transform, check_inputs


class BatchNorm(Transform):
    """``y = w (x - mean) / sqrt(var + eps) + b`` per feature (nflows ``BatchNorm``), with a
    learned positive scale ``w = softplus(unconstrained_weight) + eps`` (starting at 1) and
    shift ``b``; ``logabsdet = sum_d (log w_d - log(var_d + eps) / 2)``, the same for every
    row.

    In training mode ``forward`` normalises with the batch's mean and unbiased variance, and
    moves the running statistics towards them:
    ``running = (1 - momentum) running + momentum batch`` (detached). ``logabsdet`` then
    treats the batch statistics as constants, as nflows and the MAF and RealNVP papers do (it
    is not the Jacobian of the whole batch map). In eval mode both directions use the running
    statistics and are exact inverses; ``inverse`` in training mode raises, so call
    ``.eval()`` before sampling.

    Unlike nflows, ``running_var`` starts at 1 (as ``torch.nn.BatchNorm1d``), not 0: a layer
    evaluated before any training step is then the identity rather than a scaling by
    ``1 / sqrt(eps)``. The ``state_dict`` keys are nflows' (``unconstrained_weight``,
    ``bias``, ``running_mean``, ``running_var``), so nflows' weights load unchanged.

    Args:
        features: ``D >= 1``.
        eps: ``> 0``, added to the variance, and the smallest scale ``w`` (nflows: 1e-5).
        momentum: in ``[0, 1]``, the weight of each batch in the running statistics.

    Shapes: ``inputs (B, D)`` -> ``(outputs (B, D), logabsdet (B,))``; ``context`` is ignored.
    A NaN in a training batch makes that batch's outputs and the running statistics NaN.

    Raises:
        TypeError: a non-integer ``features``; ``inputs`` not a floating tensor.
        ValueError: ``features < 1``, ``eps <= 0``, ``momentum`` outside ``[0, 1]``; inputs
            not ``(B, D)``; a training batch of fewer than 2 rows (no variance).
        RuntimeError: ``inverse`` in training mode.

    Example:
        >>> import torch
        >>> from fastgen.flows import BatchNorm
        >>> norm = BatchNorm(2)
        >>> x = torch.tensor([[0.0, 1.0], [2.0, 5.0]])
        >>> y, logabsdet = norm(x)  # training: batch mean (1, 3), variance (2, 8)
        >>> y
        tensor([[-0.7071, -0.7071],
                [ 0.7071,  0.7071]], grad_fn=<AddBackward0>)
        >>> norm.running_mean, norm.running_var
        (tensor([0.1000, 0.3000]), tensor([1.1000, 1.7000]))
        >>> _ = norm.eval()
        >>> torch.allclose(norm.inverse(norm(x)[0])[0], x)
        True
    """

    def __init__(self, features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.features = check_number("features", features, integer=True, minimum=1)
        self.eps = check_number("eps", eps, minimum=0, exclusive=True)
        self.momentum = check_number("momentum", momentum, minimum=0, maximum=1)
        # softplus^-1(1 - eps): the weight starts at exactly 1
        constant = math.log(math.expm1(1 - self.eps))
        self.unconstrained_weight = nn.Parameter(torch.full((self.features,), constant))
        self.bias = nn.Parameter(torch.zeros(self.features))
        self.register_buffer("running_mean", torch.zeros(self.features))
        self.register_buffer("running_var", torch.ones(self.features))

    @property
    def weight(self) -> torch.Tensor:
        return F.softplus(self.unconstrained_weight) + self.eps

    def _logabsdet(self, inputs, var):
        logabsdet = torch.log(self.weight) - 0.5 * torch.log(var + self.eps)
        return logabsdet.sum().repeat(inputs.shape[0])

    def forward(self, inputs, context=None):
        check_inputs(inputs, self.features)
        if self.training:
            if inputs.shape[0] < 2:
                raise ValueError(
                    f"inputs must have at least 2 rows in training mode (batch statistics), "
                    f"got {inputs.shape[0]}"
                )
            mean, var = inputs.mean(0), inputs.var(0)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        outputs = self.weight * ((inputs - mean) / torch.sqrt(var + self.eps)) + self.bias
        return outputs, self._logabsdet(inputs, var)

    def inverse(self, inputs, context=None):
        if self.training:
            raise RuntimeError(
                "BatchNorm.inverse uses the running statistics and needs eval mode: call "
                ".eval() before sampling"
            )
        check_inputs(inputs, self.features)
        var = self.running_var
        outputs = torch.sqrt(var + self.eps) * ((inputs - self.bias) / self.weight)
        return outputs + self.running_mean, -self._logabsdet(inputs, var)

    def extra_repr(self) -> str:
        return f"{self.features}, eps={self.eps}, momentum={self.momentum}"
