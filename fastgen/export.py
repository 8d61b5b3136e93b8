"""Trained flows, VAE decoders and GAN generators exported to ONNX, for C++ frameworks that
run ONNX Runtime (ATLAS's Athena, CMSSW).

:func:`to_onnx` writes one float32 graph with a dynamic batch dimension. Sampling takes the
base noise as an input, so the graph is deterministic and the C++ side owns the random
numbers; the autoregressive inverse is unrolled into ``features`` conditioner passes per
layer. :func:`save_checkpoint` / :func:`load_checkpoint` are the saved-model format that
``fastgen export`` reads: a ``state_dict`` plus the constructor's arguments, loadable with
``torch.load(weights_only=True)``.

The graph is traced with PyTorch's ``torch.export``-based exporter
(``torch.onnx.export(..., dynamo=True)``: the default in torch 2.13, passed explicitly; the
TorchScript exporter is deprecated) and its onnxscript translations from a float32 CPU copy
of the model whose fastgen hot paths all run their PyTorch references (``backend="torch"``):
the graph holds standard ONNX operators only, never a Triton kernel. fastgen's splines export
because the reference is branch-free (no boolean indexing, no host synchronisation).
"""

from __future__ import annotations

import copy
import importlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from fastgen._checks import check_choice, check_number
from fastgen.flows import Flow, StandardNormal
from fastgen.vae import BernoulliLikelihood, ConditionalVAE, GaussianLikelihood

METHODS = ("sample", "log_prob")
# torchlib's own opset (no version conversion); ONNX Runtime runs it since 1.14.
DEFAULT_OPSET = 18
# Example batch of the trace: >= 2, so that torch.export keeps the batch dimension symbolic.
_TRACE_BATCH = 2
CHECKPOINT_FORMAT = "fastgen-checkpoint-1"


class ExportedGraph(NamedTuple):
    """What :func:`to_onnx` wrote: the ``path``, the graph's ``inputs`` and ``outputs`` as
    ``(name, shape)`` pairs with ``"batch"`` for the dynamic dimension, and ``num_nodes``, the
    node count of the (optimised) graph."""

    path: Path
    inputs: tuple[tuple[str, tuple], ...]
    outputs: tuple[tuple[str, tuple], ...]
    num_nodes: int


class _Entry(nn.Module):
    """The traced function: ``function(model, x, context)`` with ``x (B, ...)`` and an
    optional ``context (B, C)``."""

    def __init__(self, model: nn.Module, function):
        super().__init__()
        self.model = model
        self.function = function

    def forward(self, x, context=None):
        return self.function(self.model, x, context)


def _flow_sample(flow, noise, context):
    return flow._transform.inverse(noise, context)[0]


def _flow_log_prob(flow, inputs, context):
    return flow.log_prob(inputs, context)


def _vae_mean(vae, noise, context):
    decoded = vae.decode(noise, context)
    return torch.sigmoid(decoded) if isinstance(vae.likelihood, BernoulliLikelihood) else decoded


def _generator_sample(generator, noise, context):
    return generator(noise) if context is None else generator(noise, context)


def _context_features(model, context_features):
    """The model's ``context_features`` when it declares one, checked against the argument."""
    context_features = check_number(
        "context_features", context_features, integer=True, minimum=1, allow_none=True
    )
    declared = getattr(model, "context_features", None)
    if declared is not None and context_features is not None and declared != context_features:
        raise ValueError(
            f"context_features must match the model's context_features = {declared}, got "
            f"{context_features}"
        )
    return declared if declared is not None else context_features


def _plan(model, method, context_features, noise_features):
    """``(function, input name, input features, output name, context_features)``."""
    method = check_choice("method", method, METHODS)
    context_features = _context_features(model, context_features)
    if isinstance(model, Flow):
        base = model._distribution
        if not isinstance(base, StandardNormal) or len(base._shape) != 1:
            raise ValueError(
                "model: a Flow exports with a StandardNormal base on (D,) events (the C++ side "
                f"draws N(0, 1) noise), got {type(base).__name__} of shape "
                f"{tuple(getattr(base, '_shape', ()))}"
            )
        features = base._shape[0]
        if method == "sample":
            return _flow_sample, "noise", features, "samples", context_features
        return _flow_log_prob, "inputs", features, "log_prob", context_features
    if isinstance(model, ConditionalVAE):
        if method != "sample":
            raise ValueError(
                "method must be 'sample' for a ConditionalVAE (its log_prob is an importance-"
                f"sampled estimate, not a deterministic graph), got {method!r}"
            )
        if not isinstance(model.likelihood, (GaussianLikelihood, BernoulliLikelihood)):
            raise ValueError(
                "model: a ConditionalVAE exports with a GaussianLikelihood or "
                f"BernoulliLikelihood, got {type(model.likelihood).__name__}"
            )
        return _vae_mean, "noise", model.latent_features, "samples", context_features
    if hasattr(model, "log_prob") or hasattr(model, "sample"):
        raise TypeError(
            "model must be a fastgen.flows.Flow, a fastgen.vae.ConditionalVAE or a GAN "
            "generator module called as generator(noise[, context]); got "
            f"{type(model).__module__}.{type(model).__qualname__}, a density model fastgen "
            "cannot export (rebuild it with fastgen.flows)"
        )
    if method != "sample":
        raise ValueError(f"method must be 'sample' for a GAN generator, got {method!r}")
    if noise_features is None:
        noise_features = getattr(model, "noise_features", None)
    if noise_features is None:
        raise ValueError(
            f"noise_features must be given for a generator ({type(model).__name__}) without a "
            "noise_features attribute"
        )
    noise_features = check_number("noise_features", noise_features, integer=True, minimum=1)
    return _generator_sample, "noise", noise_features, "samples", context_features


def _reference_copy(model: nn.Module) -> nn.Module:
    """A float32 CPU copy in eval mode whose fastgen hot paths run the PyTorch reference."""
    model = copy.deepcopy(model).to("cpu", torch.float32).eval().requires_grad_(False)
    for module in model.modules():
        if hasattr(module, "backend"):  # fastgen's layers: MaskedLinear, RQSElementwiseTransform
            module.backend = "torch"
    return model


@contextmanager
def _torch_backend():
    """``FASTGEN_BACKEND=torch`` for fastgen calls inside a generator that pass no backend."""
    previous = os.environ.get("FASTGEN_BACKEND")
    os.environ["FASTGEN_BACKEND"] = "torch"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["FASTGEN_BACKEND"]
        else:
            os.environ["FASTGEN_BACKEND"] = previous


def _sum_dim_int_list(self, dim=None, keepdim=False, dtype=-1):
    """``aten.sum.dim_IntList`` in ONNX. torchlib's translation hands 8-bit and bool tensors
    to ``ReduceSum``, which has no kernel for them (the spline reference counts bins in
    uint8): sum those in int32, then cast to the requested type."""
    import onnxscript
    from onnxscript import ir

    op = onnxscript.opset18
    out_type = self.dtype if dtype in (-1, None) else dtype
    if self.dtype in (ir.DataType.UINT8, ir.DataType.INT8, ir.DataType.BOOL):
        self = op.Cast(self, to=ir.DataType.INT32)
    if dim is None:
        total = op.ReduceSum(self, keepdims=keepdim)
    else:
        axes = op.Constant(value_ints=[dim] if isinstance(dim, int) else list(dim))
        total = op.ReduceSum(self, axes, keepdims=keepdim)
    return op.Cast(total, to=out_type)


def to_onnx(
    model: nn.Module,
    path,
    *,
    method: str = "sample",
    context_features: int | None = None,
    noise_features: int | None = None,
    opset: int = DEFAULT_OPSET,
) -> ExportedGraph:
    """Write ``model``'s sampler or log-density as an ONNX graph with a dynamic batch size.

    The graph, by model kind and ``method`` (``B`` is the dynamic batch, ``C`` the context
    features; the ``context`` input exists only for conditional models; all float32):

    * :class:`fastgen.flows.Flow` (standard normal base on ``D`` features), ``"sample"``:
      ``noise (B, D)``, ``context (B, C)`` -> ``samples (B, D)``, the flow's inverse at the
      noise (``flow.sample`` given its base draw). ``"log_prob"``: ``inputs (B, D)``,
      ``context (B, C)`` -> ``log_prob (B,)``. An autoregressive layer's inverse is unrolled
      into ``D`` conditioner passes, so its sampling graph grows as ``D`` times the layers.
    * :class:`fastgen.vae.ConditionalVAE`, ``"sample"`` only: ``noise (B, L)`` (the latent
      draw, ``L = latent_features``), ``context (B, C)`` -> ``samples (B, D)``, the decoder's
      conditional mean ``E[x | z, c]``: the mean of a :class:`~fastgen.vae.GaussianLikelihood`
      (without its observation noise), ``sigmoid(logits)`` of a
      :class:`~fastgen.vae.BernoulliLikelihood`.
    * any other module is a GAN generator called as ``model(noise)`` or
      ``model(noise, context)``, ``"sample"`` only: ``noise (B, N)``, ``context (B, C)`` ->
      ``samples (B, ...)``.

    The C++ side draws the noise from ``N(0, 1)`` (a GAN generator: from the distribution it
    was trained with). The model itself is not modified: a float32 CPU copy in eval mode is
    traced with every fastgen hot path on its PyTorch reference, so the graph holds standard
    ONNX operators only (see :mod:`fastgen.export`).

    Args:
        model: a fastgen ``Flow`` (e.g. :class:`fastgen.flows.NeuralSplineFlow`), a
            ``ConditionalVAE`` or a generator module, on any device and dtype.
        path: the ``.onnx`` file to write (weights included, one file).
        method: ``"sample"`` or ``"log_prob"`` (flows only).
        context_features: ``C``, for models that do not declare ``context_features``
            (a plain :class:`fastgen.flows.Flow`, a generator); None: unconditional.
        noise_features: ``N`` of a generator's noise, when it has no ``noise_features``
            attribute.
        opset: the ONNX opset, ``>= 18`` (default 18, ONNX Runtime 1.14 and later).

    Returns:
        :class:`ExportedGraph`: the path, input and output names and shapes, node count.

    Raises:
        ImportError: onnx or onnxscript missing (``pip install 'fastgen[export]'``).
        TypeError: ``model`` not an ``nn.Module``, or a density model of another library.
        ValueError: an unknown ``method``, a method the model kind lacks, ``context_features``
            unlike the model's, a missing ``noise_features``, ``opset < 18``, a flow whose base
            is not a standard normal; the model's own error (wrapped) when it fails on inputs
            of the declared shapes.

    Example:
        >>> import os, tempfile, torch
        >>> from fastgen.export import to_onnx
        >>> from fastgen.flows import NeuralSplineFlow
        >>> flow = NeuralSplineFlow(2, context_features=1, num_layers=1, hidden_features=8)
        >>> path = os.path.join(tempfile.mkdtemp(), "flow.onnx")
        >>> graph = to_onnx(flow, path, method="sample")  # doctest: +SKIP
        >>> graph.inputs, graph.outputs  # doctest: +SKIP
        ((('noise', ('batch', 2)), ('context', ('batch', 1))), (('samples', ('batch', 2)),))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    opset = check_number("opset", opset, integer=True, minimum=DEFAULT_OPSET)
    function, input_name, features, output_name, context_features = _plan(
        model, method, context_features, noise_features
    )
    try:
        import onnx
        import onnxscript  # noqa: F401  (the exporter's translation library)
    except ImportError as error:
        raise ImportError(
            f"fastgen.export needs onnx and onnxscript (pip install 'fastgen[export]'): {error}"
        ) from None

    entry = _Entry(_reference_copy(model), function).eval()
    args = [torch.randn(_TRACE_BATCH, features)]
    names = [input_name]
    if context_features is not None:
        args.append(torch.randn(_TRACE_BATCH, context_features))
        names.append("context")
    batch = torch.export.Dim("batch")
    path = Path(path)
    with _torch_backend(), torch.no_grad():
        try:
            expected = entry(*args)
        except (TypeError, ValueError, RuntimeError) as error:
            shapes = ", ".join(f"{n} {tuple(a.shape)}" for n, a in zip(names, args, strict=True))
            raise ValueError(
                f"model failed on example inputs {shapes} (check context_features and "
                f"noise_features): {error}"
            ) from error
        torch.onnx.export(
            entry,
            tuple(args),
            path,
            input_names=names,
            output_names=[output_name],
            opset_version=opset,
            dynamo=True,
            external_data=False,
            dynamic_shapes=tuple({0: batch} for _ in args),
            custom_translation_table={torch.ops.aten.sum.dim_IntList: _sum_dim_int_list},
            verbose=False,
        )
    graph = onnx.load(path).graph
    return ExportedGraph(
        path,
        tuple((n, ("batch", *a.shape[1:])) for n, a in zip(names, args, strict=True)),
        ((output_name, ("batch", *expected.shape[1:])),),
        len(graph.node),
    )


def save_checkpoint(model: nn.Module, path, config: dict) -> None:
    """Save ``model`` for :func:`load_checkpoint` and ``fastgen export``: its class's import
    path, the constructor's keyword arguments ``config`` and its ``state_dict``, in one
    ``torch.save`` file.

    This format, rather than ``torch.save(model)``, because it loads with
    ``torch.load(weights_only=True)``: no pickled code runs, and the file survives changes to
    fastgen's classes that keep their arguments and parameter names. The price: ``config`` must
    rebuild the model (``type(model)(**config)``, checked here) and hold only numbers,
    strings, booleans, None and lists / tuples / dicts of them.

    Args:
        model: a module whose class is importable by its module and qualified name.
        path: the file to write.
        config: the keyword arguments ``model`` was built with.

    Raises:
        TypeError: ``config`` not a dict, or holding other values; a class defined in a
            function (not importable).
        ValueError: ``type(model)(**config)`` has other parameter names or shapes.

    Example:
        >>> import os, tempfile
        >>> from fastgen.export import load_checkpoint, save_checkpoint
        >>> from fastgen.flows import NeuralSplineFlow
        >>> config = dict(features=2, num_layers=1, hidden_features=8)
        >>> path = os.path.join(tempfile.mkdtemp(), "flow.pt")
        >>> save_checkpoint(NeuralSplineFlow(**config), path, config)
        >>> type(load_checkpoint(path)).__name__
        'NeuralSplineFlow'
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict of constructor arguments, got {type(config)}")
    _check_plain("config", config)
    cls = type(model)
    if "<locals>" in cls.__qualname__:
        raise TypeError(f"model's class {cls.__qualname__} is not importable (defined locally)")
    rebuilt = _state_shapes(cls(**config))
    if rebuilt != _state_shapes(model):
        raise ValueError(
            f"config must rebuild the model: {cls.__name__}(**config) has parameters "
            f"{rebuilt}, the model {_state_shapes(model)}"
        )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "config": config,
            "state_dict": state,
        },
        path,
    )


def load_checkpoint(path) -> nn.Module:
    """The module :func:`save_checkpoint` wrote, in eval mode on the CPU.

    The file is read with ``torch.load(weights_only=True)``; the class it names is imported
    and must be a ``torch.nn.Module`` subclass, so a file can only choose which installed
    module class to build (still load files you trust: importing runs module code).

    Raises:
        ValueError: not a fastgen checkpoint, or a class that is not an ``nn.Module``.
        ImportError: the class's module is not installed.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"path {path} is not a fastgen checkpoint (written by fastgen.export.save_checkpoint)"
        )
    module_name, _, qualname = checkpoint["class"].partition(":")
    cls = importlib.import_module(module_name)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"path {path} names {checkpoint['class']}, not a torch.nn.Module class")
    model = cls(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def _check_plain(name: str, value) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{name} keys must be strings, got {key!r}")
            _check_plain(f"{name}[{key!r}]", item)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(f"{name}[{i}]", item)
    elif not (value is None or isinstance(value, (bool, int, float, str))):
        raise TypeError(
            f"{name} must be a number, string, bool or None (weights_only loading), got "
            f"{type(value).__name__}"
        )


def _state_shapes(model: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
