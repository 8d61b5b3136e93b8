"""Flows under ``torch.compile``: ``log_prob`` and the training loss (forward and backward)
are one graph (``fullgraph=True``), compiled once for every batch size (the first batch
marked dynamic, as the :class:`fastgen.flows.Flow` docstring recommends), with the profiler
on or off, and give eager's numbers and gradients.

Most tests use ``backend="aot_eager"``: it traces forward and backward exactly as inductor
does (dynamo, then AOTAutograd with symbolic batch sizes) without generating code, so graph
breaks and recompiles show at a fraction of the cost; one test runs inductor.
"""

import pytest
import torch
from torch._dynamo.utils import counters

from fastgen.flows import MaskedAutoregressiveFlow, NeuralSplineFlow
from fastgen.tracing import annotate

FEATURES, CONTEXT = 3, 2
BATCHES = (8, 16, 33, 5)


# name: (constructor, context features or None)
FLOWS = {
    "nsf": (
        lambda: NeuralSplineFlow(FEATURES, num_layers=2, hidden_features=16, num_bins=4),
        None,
    ),
    "nsf-context": (
        lambda: NeuralSplineFlow(FEATURES, CONTEXT, num_layers=2, hidden_features=16, num_bins=4),
        CONTEXT,
    ),
    "nsf-coupling-circular": (
        lambda: NeuralSplineFlow(
            FEATURES,
            CONTEXT,
            num_layers=2,
            hidden_features=16,
            num_bins=4,
            autoregressive=False,
            circular_features=[1],
        ),
        CONTEXT,
    ),
    "maf-batchnorm": (
        lambda: MaskedAutoregressiveFlow(
            FEATURES,
            16,
            num_layers=2,
            num_blocks_per_layer=1,
            batch_norm_between_layers=True,
            context_features=CONTEXT,
        ),
        CONTEXT,
    ),
}


def _arguments(batch, context_features, dtype=torch.float32):
    """``(inputs,)`` or ``(inputs, context)`` of ``batch`` rows."""
    inputs = torch.randn(batch, FEATURES, dtype=dtype)
    if context_features is None:
        return (inputs,)
    return inputs, torch.randn(batch, context_features, dtype=dtype)


def _loss(flow):
    def loss(*args):
        return -flow.log_prob(*args).mean()

    return loss


def _grads(flow, loss, args):
    flow.zero_grad()
    value = loss(*args)
    value.backward()
    return value.detach(), [p.grad.clone() for p in flow.parameters()]


def _check_compiled_step(flow, context_features, compiled, batches, dtype=torch.float32):
    """The compiled loss and parameter gradients against eager's at each batch size; the
    first batch's dim 0 is marked dynamic, as the :class:`fastgen.flows.Flow` docstring
    recommends."""
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-9)
    for i, batch in enumerate(batches):
        args = _arguments(batch, context_features, dtype)
        if i == 0:
            for tensor in args:
                torch._dynamo.mark_dynamic(tensor, 0)
        value, grads = _grads(flow, compiled, args)
        expected, expected_grads = _grads(flow, _loss(flow), args)
        torch.testing.assert_close(value, expected, **tolerance)
        for a, e in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(a, e, **tolerance)


@pytest.mark.parametrize("name", list(FLOWS))
def test_training_loss_is_one_graph_for_every_batch_size(name):
    """``fullgraph=True`` fails on any graph break; ``error_on_recompile`` on any recompile
    after the first compile, across four batch sizes."""
    torch._dynamo.reset()
    counters.clear()
    make, context_features = FLOWS[name]
    flow = make()
    compiled = torch.compile(_loss(flow), fullgraph=True, backend="aot_eager")
    _check_compiled_step(flow, context_features, compiled, BATCHES[:1])
    with torch._dynamo.config.patch(error_on_recompile=True):
        _check_compiled_step(flow, context_features, compiled, BATCHES[1:])
    assert counters["stats"]["unique_graphs"] == 1
    assert not counters["graph_break"]


def test_log_prob_compiles_once_and_matches_eager_without_gradients():
    """``torch.compile(flow.log_prob)`` under ``torch.no_grad`` (evaluation)."""
    torch._dynamo.reset()
    counters.clear()
    flow = FLOWS["nsf-context"][0]()
    compiled = torch.compile(flow.log_prob, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        for i, batch in enumerate(BATCHES):
            args = _arguments(batch, CONTEXT)
            if i == 0:
                for tensor in args:
                    torch._dynamo.mark_dynamic(tensor, 0)
            with torch._dynamo.config.patch(error_on_recompile=i > 0):
                actual = compiled(*args)
            torch.testing.assert_close(actual, flow.log_prob(*args))
    assert counters["stats"]["unique_graphs"] == 1


def test_unmarked_batch_recompiles_once_then_never():
    """Without a dynamic mark torch compiles the first batch size statically and, at the
    second size, once more with a symbolic batch: later sizes reuse that graph."""
    torch._dynamo.reset()
    counters.clear()
    flow = FLOWS["nsf"][0]()
    compiled = torch.compile(_loss(flow), fullgraph=True, backend="aot_eager")
    for i, batch in enumerate(BATCHES):
        with torch._dynamo.config.patch(error_on_recompile=i > 1):
            _grads(flow, compiled, _arguments(batch, None))
    assert counters["stats"]["unique_graphs"] == 2


def test_compiles_under_the_profiler():
    """fastgen's ``annotate`` ranges do nothing while compiling (``record_function`` would
    break the graph); eager calls under the same profiler still open them, and the compiled
    call is the same graph with the profiler on or off (no recompile)."""
    torch._dynamo.reset()
    counters.clear()
    flow = FLOWS["nsf"][0]()
    compiled = torch.compile(_loss(flow), fullgraph=True, backend="aot_eager")
    with torch.profiler.profile() as prof:
        _check_compiled_step(flow, None, compiled, BATCHES[:1])
    with torch._dynamo.config.patch(error_on_recompile=True):
        _check_compiled_step(flow, None, compiled, BATCHES[1:2])
    names = [event.name for event in prof.events()]
    # only the eager reference opened ranges: 2 layers of 6 masked layers and one spline
    assert names.count("fastgen.masked_linear") == 12
    assert names.count("fastgen.rq_spline") == 2
    assert counters["stats"]["unique_graphs"] == 1


def test_annotate_is_a_no_op_while_compiling():
    @annotate("fastgen.test_compiled")
    def double(x):
        return x * 2

    torch._dynamo.reset()
    with torch.profiler.profile() as prof:
        out = torch.compile(double, fullgraph=True, backend="aot_eager")(torch.ones(3))
    assert out.tolist() == [2.0, 2.0, 2.0]
    assert "fastgen.test_compiled" not in [event.name for event in prof.events()]


def test_inductor_training_step_compiles_once():
    """The code inductor generates for the NSF loss and its backward, at two batch sizes
    (float64: fused kernels round differently from eager, which the spline's ill-conditioned
    elements amplify in float32)."""
    torch._dynamo.reset()
    counters.clear()
    flow = NeuralSplineFlow(FEATURES, CONTEXT, num_layers=1, hidden_features=16, num_bins=4)
    flow = flow.double()  # one layer: inductor's code generation dominates this test's time
    compiled = torch.compile(_loss(flow), fullgraph=True)
    _check_compiled_step(flow, CONTEXT, compiled, BATCHES[:1], torch.float64)
    with torch._dynamo.config.patch(error_on_recompile=True):
        _check_compiled_step(flow, CONTEXT, compiled, BATCHES[1:2], torch.float64)
    assert counters["stats"]["unique_graphs"] == 1
