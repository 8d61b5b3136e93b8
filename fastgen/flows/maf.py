"""Masked autoregressive and inverse autoregressive flows: :class:`MaskedAutoregressiveFlow`
(MAF, Papamakarios et al. 2017, arXiv:1705.07057; nflows ``MaskedAutoregressiveFlow``) and
:class:`InverseAutoregressiveFlow` (IAF, Kingma et al. 2016, arXiv:1606.04934), the same
layers run backwards."""

from __future__ import annotations

import torch.nn.functional as F

from fastgen._checks import check_bool, check_number
from fastgen.flows.autoregressive import MaskedAffineAutoregressiveTransform
from fastgen.flows.core import Flow
from fastgen.flows.distributions import StandardNormal
from fastgen.flows.normalization import BatchNorm
from fastgen.flows.transforms import (
    CompositeTransform,
    InverseTransform,
    RandomPermutation,
    ReversePermutation,
)


class MaskedAutoregressiveFlow(Flow):
    """Masked autoregressive flow with a standard normal base (Papamakarios et al. 2017,
    arXiv:1705.07057), nflows ``MaskedAutoregressiveFlow`` with the same arguments and
    layers, plus ``context_features`` for ``p(x | context)``.

    Each of the ``num_layers`` layers is a permutation (reverse, or random), a
    :class:`MaskedAffineAutoregressiveTransform` and, with ``batch_norm_between_layers``, a
    :class:`BatchNorm`. Cost: ``log_prob`` is one MADE pass per layer; ``sample`` needs
    ``features`` sequential passes per layer (:class:`InverseAutoregressiveFlow` is the
    other way round).

    Args:
        features: ``D >= 1``.
        hidden_features: ``>= 1``, the MADEs' width.
        num_layers: ``>= 1``.
        num_blocks_per_layer: ``>= 0`` (residual) blocks per MADE.
        use_residual_blocks, use_random_masks, activation, dropout_probability: the MADEs'
            (nflows' meaning).
        use_random_permutations: random instead of reverse permutations between layers
            (drawn from torch's global generator).
        batch_norm_within_layers: batch norm inside each MADE.
        batch_norm_between_layers: a :class:`BatchNorm` after each layer (sampling then
            needs ``.eval()``).
        context_features: ``C >= 1`` for a conditional flow, or None.
        backend: for the masked layers: ``"auto"``, ``"triton"``, ``"torch"`` or ``None``.

    Shapes and methods: as :class:`Flow`.

    Raises:
        TypeError: a non-integer count, a non-bool flag.
        ValueError: a count below its minimum; at call time, what :class:`Flow` raises.

    Example:
        >>> import torch
        >>> from fastgen.flows import MaskedAutoregressiveFlow
        >>> _ = torch.manual_seed(0)
        >>> flow = MaskedAutoregressiveFlow(3, 16, num_layers=2, num_blocks_per_layer=1,
        ...                                 batch_norm_between_layers=True)
        >>> loss = -flow.log_prob(torch.randn(8, 3)).mean()
        >>> flow.eval().sample(5).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        features,
        hidden_features,
        num_layers,
        num_blocks_per_layer,
        use_residual_blocks=True,
        use_random_masks=False,
        use_random_permutations=False,
        activation=F.relu,
        dropout_probability=0.0,
        batch_norm_within_layers=False,
        batch_norm_between_layers=False,
        context_features=None,
        backend=None,
    ):
        features = check_number("features", features, integer=True, minimum=1)
        num_layers = check_number("num_layers", num_layers, integer=True, minimum=1)
        num_blocks_per_layer = check_number(
            "num_blocks_per_layer", num_blocks_per_layer, integer=True, minimum=0
        )
        random = check_bool("use_random_permutations", use_random_permutations)
        between = check_bool("batch_norm_between_layers", batch_norm_between_layers)
        permutation = RandomPermutation if random else ReversePermutation
        layers = []
        for _ in range(num_layers):
            layers.append(permutation(features))
            layers.append(
                MaskedAffineAutoregressiveTransform(
                    features,
                    hidden_features,
                    context_features,
                    num_blocks=num_blocks_per_layer,
                    use_residual_blocks=use_residual_blocks,
                    random_mask=use_random_masks,
                    activation=activation,
                    dropout_probability=dropout_probability,
                    use_batch_norm=batch_norm_within_layers,
                    backend=backend,
                )
            )
            if between:
                layers.append(BatchNorm(features))
        super().__init__(CompositeTransform(layers), StandardNormal([features]))


class InverseAutoregressiveFlow(MaskedAutoregressiveFlow):
    """Inverse autoregressive flow (IAF, Kingma et al. 2016, arXiv:1606.04934): the
    :class:`MaskedAutoregressiveFlow` with the same arguments, its transform run backwards
    (:class:`InverseTransform` of the whole stack, as nflows composes it:
    ``Flow(InverseTransform(CompositeTransform(layers)), StandardNormal)``).

    Sampling is one MADE pass per layer and returns the samples' exact log-density for free
    (:meth:`sample_and_log_prob`): the flow for variational posteriors, reverse-KL training
    against an unnormalised target, or distilling a trained MAF (Parallel WaveNet). Density
    evaluation of external data (``log_prob``) needs ``features`` sequential passes per
    layer. With ``batch_norm_between_layers`` the batch statistics are taken on the sampling
    side (``BatchNorm.forward`` runs when sampling in training mode), and ``log_prob`` needs
    ``.eval()``.

    Args: those of :class:`MaskedAutoregressiveFlow`.

    Example:
        >>> import torch
        >>> from fastgen.flows import InverseAutoregressiveFlow
        >>> _ = torch.manual_seed(0)
        >>> flow = InverseAutoregressiveFlow(2, 16, num_layers=2, num_blocks_per_layer=1)
        >>> samples, log_prob = flow.sample_and_log_prob(4)  # one pass per layer
        >>> torch.allclose(flow.log_prob(samples), log_prob, atol=1e-5)
        True
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._transform = InverseTransform(self._transform)
