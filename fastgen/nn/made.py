"""MADE: masked autoencoder for distribution estimation (Germain et al. 2015,
arXiv:1502.03509), with nflows' architecture, degree assignment and output layout.

The one difference from ``nflows.transforms.made.MADE`` is the order of the hidden units:
fastgen sorts them by degree (hidden units are exchangeable, so the family of functions is the
same), which turns the zero part of every masked weight into a staircase of whole tiles that
the Triton kernel skips. :meth:`MADE.load_nflows_state_dict` copies an nflows model across,
reordering its hidden units.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import init

from fastgen._checks import check_bool, check_number, check_tensor
from fastgen.nn.masked_linear import MaskedLinear, activation_name


def input_degrees(features: int) -> torch.Tensor:
    """Degrees ``1..D`` of MADE's inputs (and, tiled, of its outputs)."""
    return torch.arange(1, features + 1)


def hidden_degrees(
    in_degrees: torch.Tensor, out_features: int, features: int, random_mask: bool
) -> torch.Tensor:
    """nflows' hidden degrees, sorted: ``arange(H) % max(1, D - 1) + min(1, D - 1)``, or with
    ``random_mask`` uniform integers in ``[min(min in_degrees, D - 1), D)``."""
    if random_mask:
        low = min(int(in_degrees.min()), features - 1)
        degrees = torch.randint(low=low, high=features, size=[out_features], dtype=torch.long)
    else:
        degrees = torch.arange(out_features) % max(1, features - 1) + min(1, features - 1)
    return degrees.sort().values


def _hidden_layer(in_degrees, out_features, features, random_mask, activation=None, backend=None):
    out_degrees = hidden_degrees(in_degrees, out_features, features, random_mask)
    return MaskedLinear(
        len(in_degrees),
        out_features,
        in_degrees,
        out_degrees,
        activation=activation,
        backend=backend,
    )


def _fused(activation):
    """The kernel's name for ``activation`` if it can be fused, else None."""
    try:
        return activation_name(activation)
    except ValueError:
        return None


class MaskedFeedforwardBlock(nn.Module):
    """``dropout(act(linear(batch_norm(x))))`` on masked units (nflows' block; the activation
    is fused into the masked linear layer when it is one the kernel knows)."""

    def __init__(
        self,
        in_degrees,
        autoregressive_features,
        context_features=None,
        random_mask=False,
        activation=F.relu,
        dropout_probability=0.0,
        use_batch_norm=False,
        backend=None,
    ):
        super().__init__()
        features = len(in_degrees)
        self.batch_norm = nn.BatchNorm1d(features, eps=1e-3) if use_batch_norm else None
        self.linear = _hidden_layer(
            in_degrees, features, autoregressive_features, random_mask, _fused(activation), backend
        )
        self.degrees = self.linear.out_degrees
        self.activation = activation
        self.dropout = nn.Dropout(p=dropout_probability)

    def forward(self, inputs, context=None):
        temps = inputs if self.batch_norm is None else self.batch_norm(inputs)
        temps = self.linear(temps)
        if self.linear.activation is None:
            temps = self.activation(temps)
        return self.dropout(temps)


class MaskedResidualBlock(nn.Module):
    """nflows' masked residual block: ``x + linear_1(dropout(act(bn(linear_0(act(bn(x))) +
    context_layer(c)))))``; the last layer starts near zero (uniform +-1e-3)."""

    def __init__(
        self,
        in_degrees,
        autoregressive_features,
        context_features=None,
        random_mask=False,
        activation=F.relu,
        dropout_probability=0.0,
        use_batch_norm=False,
        zero_initialization=True,
        backend=None,
    ):
        if random_mask:
            raise ValueError("Masked residual block can't be used with random masks.")
        super().__init__()
        features = len(in_degrees)
        if context_features is not None:
            self.context_layer = nn.Linear(context_features, features)
        self.use_batch_norm = use_batch_norm
        if use_batch_norm:
            self.batch_norm_layers = nn.ModuleList(
                [nn.BatchNorm1d(features, eps=1e-3) for _ in range(2)]
            )
        # The inner activation follows linear_0 directly unless a context or a batch norm
        # comes in between: then it is fused into linear_0's epilogue.
        inner = None if context_features is not None or use_batch_norm else _fused(activation)
        linear_0 = _hidden_layer(
            in_degrees, features, autoregressive_features, False, inner, backend
        )
        linear_1 = _hidden_layer(
            linear_0.out_degrees, features, autoregressive_features, False, None, backend
        )
        self.linear_layers = nn.ModuleList([linear_0, linear_1])
        self.degrees = linear_1.out_degrees
        if not bool(torch.all(self.degrees >= in_degrees)):
            raise RuntimeError(
                "In a masked residual block, the output degrees can't be less "
                "than the corresponding input degrees."
            )
        self.activation = activation
        self.dropout = nn.Dropout(p=dropout_probability)
        if zero_initialization:
            init.uniform_(linear_1.weight, a=-1e-3, b=1e-3)
            init.uniform_(linear_1.bias, a=-1e-3, b=1e-3)

    def forward(self, inputs, context=None):
        temps = inputs
        if self.use_batch_norm:
            temps = self.batch_norm_layers[0](temps)
        temps = self.activation(temps)
        temps = self.linear_layers[0](temps)
        if context is not None:
            temps = temps + self.context_layer(context)
        if self.use_batch_norm:
            temps = self.batch_norm_layers[1](temps)
        if self.linear_layers[0].activation is None:
            temps = self.activation(temps)
        temps = self.dropout(temps)
        temps = self.linear_layers[1](temps)
        return inputs + temps


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation (Germain et al. 2015, arXiv:1502.03509):
    a network whose outputs for feature ``d`` depend on ``inputs[..., :d]`` only, the
    conditioner of autoregressive flows. Same constructor and numbers as
    ``nflows.transforms.made.MADE``.

    Inputs have degrees ``1..D``; hidden units get nflows' sequential degrees (or random ones
    with ``random_mask``), here sorted; the output layer is strict with degrees
    ``1..D``, each repeated ``m`` times. The output ``(..., D * m)`` is feature-major:
    ``outputs.view(..., D, m)[..., d, :]`` are the ``m = output_multiplier`` parameters of
    feature ``d``. The context enters through an ``nn.Linear`` added to the first hidden
    layer and inside each residual block, as in nflows.

    Args:
        features: ``D >= 1``.
        hidden_features: ``H >= 1``, the width of every hidden layer.
        context_features: ``C >= 1`` for a conditional network, or None.
        num_blocks: ``>= 0`` residual (or feedforward) blocks after the first layer.
        output_multiplier: ``m >= 1`` outputs per feature.
        use_residual_blocks: residual blocks (nflows' default) or feedforward blocks.
        random_mask: random hidden degrees (feedforward blocks only).
        activation: any callable; ``F.relu``, ``F.gelu``, ``torch.tanh``, ``F.elu``,
            ``F.silu`` are fused into the masked layers where nothing comes in between.
        dropout_probability: in ``[0, 1]``, inside each block.
        use_batch_norm: batch norm inside each block.
        backend: for the masked layers (``"auto"``, ``"triton"``, ``"torch"``, None).

    Shapes and dtypes: ``inputs (B, D)``, ``context (B, C)`` -> ``(B, D * m)``, in the dtype
    of the parameters (see :class:`fastgen.nn.MaskedLinear`).

    Raises:
        TypeError: a non-integer count, a non-bool flag; inputs or context not floating
            tensors.
        ValueError: a count below its minimum; residual blocks with random masks; at call
            time, ``inputs.shape[-1] != D``, a context given to a model without
            ``context_features`` or missing for one with, a context of the wrong width or
            batch.

    Example:
        >>> import torch
        >>> from fastgen.nn import MADE
        >>> _ = torch.manual_seed(0)
        >>> made = MADE(features=3, hidden_features=16, output_multiplier=2)
        >>> made(torch.randn(4, 3)).shape
        torch.Size([4, 6])
        >>> # outputs of feature 0 are constant: they may depend on no input
        >>> params = made(torch.randn(4, 3)).view(4, 3, 2)
        >>> torch.allclose(params[:, 0], params[0, 0].expand(4, 2))
        True
    """

    def __init__(
        self,
        features,
        hidden_features,
        context_features=None,
        num_blocks=2,
        output_multiplier=1,
        use_residual_blocks=True,
        random_mask=False,
        activation=F.relu,
        dropout_probability=0.0,
        use_batch_norm=False,
        backend=None,
    ):
        features = check_number("features", features, integer=True, minimum=1)
        hidden_features = check_number("hidden_features", hidden_features, integer=True, minimum=1)
        context_features = check_number(
            "context_features", context_features, integer=True, minimum=1, allow_none=True
        )
        num_blocks = check_number("num_blocks", num_blocks, integer=True, minimum=0)
        output_multiplier = check_number(
            "output_multiplier", output_multiplier, integer=True, minimum=1
        )
        use_residual_blocks = check_bool("use_residual_blocks", use_residual_blocks)
        random_mask = check_bool("random_mask", random_mask)
        use_batch_norm = check_bool("use_batch_norm", use_batch_norm)
        check_number("dropout_probability", dropout_probability, minimum=0, maximum=1)
        if use_residual_blocks and random_mask:
            raise ValueError("Residual blocks can't be used with random masks.")
        super().__init__()
        self.features = features
        self.context_features = context_features
        self.output_multiplier = output_multiplier
        # nflows applies the activation after the first layer only without residual blocks,
        # after adding the context: fused when there is no context.
        fused = None
        if not use_residual_blocks and context_features is None:
            fused = _fused(activation)
        self.initial_layer = _hidden_layer(
            input_degrees(features), hidden_features, features, random_mask, fused, backend
        )
        if context_features is not None:
            self.context_layer = nn.Linear(context_features, hidden_features)
        self.use_residual_blocks = use_residual_blocks
        self.activation = activation
        block = MaskedResidualBlock if use_residual_blocks else MaskedFeedforwardBlock
        blocks = []
        degrees = self.initial_layer.out_degrees
        for _ in range(num_blocks):
            blocks.append(
                block(
                    degrees,
                    features,
                    context_features,
                    random_mask,
                    activation,
                    dropout_probability,
                    use_batch_norm,
                    backend=backend,
                )
            )
            degrees = blocks[-1].degrees
        self.blocks = nn.ModuleList(blocks)
        out_degrees = input_degrees(features).repeat_interleave(output_multiplier)
        self.final_layer = MaskedLinear(
            len(degrees),
            features * output_multiplier,
            degrees,
            out_degrees,
            strict=True,
            backend=backend,
        )

    def _check(self, inputs, context):
        check_tensor("inputs", inputs)
        if inputs.dim() < 1 or inputs.shape[-1] != self.features:
            raise ValueError(
                f"inputs must have shape (batch, features) = (batch, "
                f"{self.features}), got {tuple(inputs.shape)}"
            )
        if self.context_features is None:
            if context is not None:
                raise ValueError("context was given but this model has context_features=None")
            return
        if context is None:
            raise ValueError(
                f"context of shape (batch, {self.context_features}) is required: this model "
                f"has context_features={self.context_features}"
            )
        check_tensor("context", context)
        if context.shape[-1] != self.context_features or context.shape[:-1] != inputs.shape[:-1]:
            raise ValueError(
                f"context must have shape {tuple(inputs.shape[:-1])} + "
                f"({self.context_features},), got {tuple(context.shape)}"
            )

    def forward(self, inputs, context=None):
        self._check(inputs, context)
        temps = self.initial_layer(inputs)
        if context is not None:
            temps = temps + self.activation(self.context_layer(context))
        if not self.use_residual_blocks and self.initial_layer.activation is None:
            temps = self.activation(temps)
        for block in self.blocks:
            temps = block(temps, context)
        return self.final_layer(temps)

    def masked_layers(self):
        """The masked linear layers in the order the data flows through them."""
        layers = [self.initial_layer]
        for block in self.blocks:
            layers += list(block.linear_layers) if self.use_residual_blocks else [block.linear]
        return layers + [self.final_layer]

    @torch.no_grad()
    def load_nflows_state_dict(self, state_dict, prefix: str = "") -> None:
        """Copy the parameters of an ``nflows.transforms.made.MADE`` (its ``state_dict()``,
        keys optionally under ``prefix``) into this model of the same architecture, reordering
        each hidden layer's units by degree (stable sort) and adopting nflows' degrees (so
        random masks carry over too). The two models then compute the same function.

        Raises:
            ValueError: a missing key or a shape that does not match.
        """
        source = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        names = {id(module): name for name, module in self.named_modules()}

        def take(key, shape):
            if key not in source:
                raise ValueError(f"state_dict has no key {prefix + key!r}")
            value = source[key]
            if tuple(value.shape) != tuple(shape):
                raise ValueError(
                    f"{prefix + key} has shape {tuple(value.shape)}, expected {tuple(shape)}"
                )
            return value

        def permuted_vectors(module, perm):
            for key, tensor in module.state_dict().items():
                value = take(f"{names[id(module)]}.{key}", tensor.shape)
                tensor.copy_(value[perm] if value.dim() == 1 else value)

        in_perm = torch.arange(self.features)
        in_degrees = input_degrees(self.features)
        perms = {}
        for layer in self.masked_layers():
            name = names[id(layer)]
            degrees = take(f"{name}.degrees", layer.out_degrees.shape)
            strict = layer is self.final_layer
            perm = torch.arange(len(degrees)) if strict else torch.sort(degrees, stable=True)[1]
            layer.weight.copy_(take(f"{name}.weight", layer.weight.shape)[perm][:, in_perm])
            if layer.bias is not None:
                layer.bias.copy_(take(f"{name}.bias", layer.bias.shape)[perm])
            layer.set_degrees(in_degrees, degrees[perm])
            perms[id(layer)] = (in_perm, perm)
            in_perm, in_degrees = perm, degrees[perm]
        if self.context_features is not None:
            first = perms[id(self.initial_layer)][1]
            weight = take("context_layer.weight", self.context_layer.weight.shape)
            self.context_layer.weight.copy_(weight[first])
            self.context_layer.bias.copy_(take("context_layer.bias", (len(first),))[first])
        for block in self.blocks:
            if self.use_residual_blocks:
                block_in, inner = perms[id(block.linear_layers[0])]
                if not torch.equal(perms[id(block.linear_layers[1])][1], block_in):
                    raise ValueError("residual block whose output order differs from its input")
                if self.context_features is not None:
                    block.context_layer.weight.copy_(
                        take(
                            f"{names[id(block)]}.context_layer.weight",
                            block.context_layer.weight.shape,
                        )[inner]
                    )
                    block.context_layer.bias.copy_(
                        take(f"{names[id(block)]}.context_layer.bias", (len(inner),))[inner]
                    )
                if block.use_batch_norm:
                    permuted_vectors(block.batch_norm_layers[0], block_in)
                    permuted_vectors(block.batch_norm_layers[1], inner)
            elif block.batch_norm is not None:
                permuted_vectors(block.batch_norm, perms[id(block.linear)][0])
