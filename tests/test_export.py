"""fastgen.export: ONNX graphs of flows, VAE decoders and GAN generators, run by ONNX Runtime.

Oracle: the PyTorch model itself, eager. ONNX Runtime computes in float32 with its own kernels
(fused Gemm, its exp / log / sqrt, other summation orders), so its outputs are judged as every
float32 implementation in fastgen is (``tests/tolerances.py``): against the model in float64,
within a multiple of the float32 PyTorch model's own error plus a small absolute term. Each
graph is exported once at batch 2 and run at batches 1, 7 and 10,000 (a dynamic batch that
was really left dynamic), with inputs beyond the splines' tail bound.
"""

import copy
import doctest
import math

import pytest
import torch
from tolerances import assert_matches_reference
from torch import nn

import fastgen.export as export
from fastgen.cli import main
from fastgen.export import load_checkpoint, save_checkpoint, to_onnx
from fastgen.flows import (
    CompositeTransform,
    Flow,
    MaskedAffineAutoregressiveTransform,
    NeuralSplineFlow,
    ReversePermutation,
    StandardNormal,
)
from fastgen.vae import BernoulliLikelihood, ConditionalVAE

onnx = pytest.importorskip("onnx", reason="onnx is not installed (export extra)")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (export extra)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (export extra)")


TAIL_BOUND = 2.0
BATCHES = (1, 7, 10_000)


class Generator(nn.Module):
    """A conditional GAN generator, ``G(noise, context)``."""

    def __init__(self, noise_features=4, context_features=2, features=3):
        super().__init__()
        self.noise_features = noise_features
        self.net = nn.Sequential(
            nn.Linear(noise_features + context_features, 16),
            nn.LeakyReLU(0.2),
            nn.Linear(16, features),
        )

    def forward(self, noise, context):
        return self.net(torch.cat([noise, context], dim=1))


def _randomized(model):
    """Parameters far from their initialisation (a zero-initialised coupling conditioner is
    the identity), fixed by a seed of their own so that module-scoped graphs are shared."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.4 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def _maf():
    return Flow(
        CompositeTransform(
            [
                MaskedAffineAutoregressiveTransform(3, 16),
                ReversePermutation(3),
                MaskedAffineAutoregressiveTransform(3, 16),
            ]
        ),
        StandardNormal([3]),
    )


def _flow_sample(flow, noise, context):
    return flow._transform.inverse(noise, context)[0]


def _flow_log_prob(flow, inputs, context):
    return flow.log_prob(inputs, context)


def _vae_mean(vae, noise, context):
    decoded = vae.decode(noise, context)
    return torch.sigmoid(decoded) if isinstance(vae.likelihood, BernoulliLikelihood) else decoded


def _generate(generator, noise, context):
    return generator(noise, context)


# name: (model builder, method, eager function, input features, context features)
CASES = {
    "nsf_autoregressive_sample": (
        lambda: NeuralSplineFlow(
            3,
            2,
            num_layers=2,
            hidden_features=16,
            num_bins=4,
            tail_bound=TAIL_BOUND,
            circular_features=(1,),
        ),
        "sample",
        _flow_sample,
        3,
        2,
    ),
    "nsf_autoregressive_log_prob": (
        lambda: NeuralSplineFlow(
            3,
            2,
            num_layers=2,
            hidden_features=16,
            num_bins=4,
            tail_bound=TAIL_BOUND,
            circular_features=(1,),
        ),
        "log_prob",
        _flow_log_prob,
        3,
        2,
    ),
    "nsf_coupling_sample": (
        lambda: NeuralSplineFlow(
            4,
            2,
            num_layers=2,
            hidden_features=16,
            num_bins=4,
            tail_bound=TAIL_BOUND,
            autoregressive=False,
        ),
        "sample",
        _flow_sample,
        4,
        2,
    ),
    "nsf_coupling_log_prob": (
        lambda: NeuralSplineFlow(
            4,
            2,
            num_layers=2,
            hidden_features=16,
            num_bins=4,
            tail_bound=TAIL_BOUND,
            autoregressive=False,
        ),
        "log_prob",
        _flow_log_prob,
        4,
        2,
    ),
    "maf_sample": (_maf, "sample", _flow_sample, 3, None),
    "maf_log_prob": (_maf, "log_prob", _flow_log_prob, 3, None),
    "vae_gaussian_sample": (
        lambda: ConditionalVAE(3, 2, latent_features=2, hidden_features=16),
        "sample",
        _vae_mean,
        2,
        2,
    ),
    "vae_bernoulli_sample": (
        lambda: ConditionalVAE(
            3, latent_features=2, hidden_features=16, likelihood=BernoulliLikelihood()
        ),
        "sample",
        _vae_mean,
        2,
        None,
    ),
    "gan_generator_sample": (Generator, "sample", _generate, 4, 2),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def exported(request, tmp_path_factory):
    """``(case name, float32 model, graph, ONNX Runtime session)``, one export per case."""
    build, method, _, _, context_features = CASES[request.param]
    torch.manual_seed(0)
    model = _randomized(build())
    path = tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx"
    graph = to_onnx(model, path, method=method, context_features=context_features)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return request.param, model, graph, session


def _inputs(batch, features, context_features, generator):
    """Inputs spread over about twice the tail bound, so that many lie beyond it, with rows on
    the bound and far beyond it (where the splines are the identity), and a NaN."""
    x = 2 * TAIL_BOUND * torch.randn(batch, features, generator=generator)
    edges = torch.tensor([TAIL_BOUND, -TAIL_BOUND, 30 * TAIL_BOUND, -1e3, 0.0])
    for row in range(min(batch, len(edges))):
        x[row] = edges[(torch.arange(features) + row) % len(edges)]
    if batch > len(edges):
        x[len(edges), 0] = float("nan")  # NaN in, NaN out (that row)
    context = None
    if context_features is not None:
        context = torch.randn(batch, context_features, generator=generator)
    return x, context


@pytest.mark.parametrize("batch", BATCHES)
def test_onnx_runtime_matches_pytorch(exported, batch, generator):
    """ONNX Runtime's outputs are the float32 model's: as close to the float64 model as the
    float32 PyTorch model is, within c = 10 times its worst error + 1e-5 (errors relative to
    1 + |value|). Both are float32 with other kernels and summation orders; measured, ONNX
    Runtime's worst error is 0.5-2 times PyTorch's at every batch here, and the margin covers
    other CPUs' exp / log implementations. NaN exactly where the input row has one, finite
    elsewhere, also beyond the bound."""
    name, model, graph, session = exported
    _, _, function, features, context_features = CASES[name]
    x, context = _inputs(batch, features, context_features, generator)
    feeds = {graph.inputs[0][0]: x.numpy()}
    if context is not None:
        feeds["context"] = context.numpy()
    (out,) = session.run(None, feeds)
    out = torch.from_numpy(out)
    with torch.no_grad():
        ref32 = function(model, x, context)
        model64 = _double(model)
        ref64 = function(model64, x.double(), None if context is None else context.double())
    assert out.dtype == torch.float32 and out.shape == ref32.shape == (
        batch,
        *graph.outputs[0][1][1:],
    )
    assert_matches_reference(out, ref64, ref32, name=name, c=10.0, atol=1e-5)


def _double(model):
    return copy.deepcopy(model).double()


def test_sample_graph_is_flow_sample_given_its_base_draw(tmp_path):
    """The graph's ``samples`` at the noise that ``Flow.sample`` draws are its samples."""
    torch.manual_seed(0)
    flow = _randomized(CASES["maf_sample"][0]())
    graph = to_onnx(flow, tmp_path / "maf.onnx")
    session = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])
    torch.manual_seed(1)
    noise = torch.randn(5, 3)
    torch.manual_seed(1)
    with torch.no_grad():
        samples = flow.sample(5)
    (out,) = session.run(None, {"noise": noise.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), samples, rtol=1e-5, atol=1e-5)


def test_graph_signature_and_standard_operators(exported):
    """Input and output names and shapes as documented; a symbolic batch dimension; only
    standard ONNX operators (nothing from Triton or a custom domain); float32 inputs."""
    name, _, graph, session = exported
    _, method, _, features, context_features = CASES[name]
    expected = [("noise" if method == "sample" else "inputs", ("batch", features))]
    if context_features is not None:
        expected.append(("context", ("batch", context_features)))
    assert list(graph.inputs) == expected
    assert [i.name for i in session.get_inputs()] == [n for n, _ in expected]
    for spec in session.get_inputs() + session.get_outputs():
        assert spec.type == "tensor(float)"
        assert isinstance(spec.shape[0], str), f"{spec.name}: batch not symbolic: {spec.shape}"
    assert [o.name for o in session.get_outputs()] == [
        "samples" if method == "sample" else "log_prob"
    ]
    model = onnx.load(graph.path)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert graph.num_nodes == len(model.graph.node) > 0


def test_autoregressive_inverse_is_unrolled(tmp_path):
    """Sampling an autoregressive flow on D features runs D conditioner passes per layer:
    its graph has exactly D times the MADE matrix products of the log-density graph."""
    torch.manual_seed(0)
    flow = _randomized(CASES["maf_sample"][0]())
    counts = {}
    for method in ("sample", "log_prob"):
        graph = to_onnx(flow, tmp_path / f"{method}.onnx", method=method)
        nodes = onnx.load(graph.path).graph.node
        counts[method] = sum(node.op_type in ("MatMul", "Gemm") for node in nodes)
    assert counts["sample"] == 3 * counts["log_prob"], counts


def test_export_does_not_change_the_model(tmp_path):
    flow = _randomized(CASES["maf_sample"][0]()).train()
    state = {k: v.clone() for k, v in flow.state_dict().items()}
    to_onnx(flow, tmp_path / "maf.onnx")
    assert flow.training
    assert all(torch.equal(v, state[k]) for k, v in flow.state_dict().items())


def test_bad_arguments_name_the_argument(tmp_path):
    torch.manual_seed(0)
    flow = NeuralSplineFlow(2, context_features=2, num_layers=1, hidden_features=4)
    path = tmp_path / "x.onnx"
    with pytest.raises(ValueError, match="method must be one of"):
        to_onnx(flow, path, method="forward")
    with pytest.raises(ValueError, match=r"context_features must match .* = 2, got 3"):
        to_onnx(flow, path, context_features=3)
    with pytest.raises(ValueError, match="method must be 'sample' for a ConditionalVAE"):
        to_onnx(ConditionalVAE(3), path, method="log_prob")
    with pytest.raises(ValueError, match="method must be 'sample' for a GAN generator"):
        to_onnx(Generator(), path, method="log_prob", context_features=2)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        to_onnx(lambda noise: noise, path)
    with pytest.raises(ValueError, match="noise_features must be"):
        to_onnx(nn.Linear(2, 2), path)
    with pytest.raises(ValueError, match=r"model failed on example inputs noise \(2, 3\)"):
        to_onnx(nn.Linear(2, 2), path, noise_features=3)
    with pytest.raises(ValueError, match="model failed on example inputs .*context"):
        to_onnx(_maf(), path, context_features=2)  # an unconditional flow given a context
    with pytest.raises(ValueError, match="opset must be >= 18"):
        to_onnx(flow, path, opset=17)
    assert not path.exists()


def test_other_libraries_density_models_are_refused(tmp_path):
    """An nflows flow is a module with ``log_prob``: refused by kind, not traced as a
    generator (its splines would fail the exporter on boolean indexing anyway)."""
    flows = pytest.importorskip("nflows.flows", reason="nflows is not installed (test extra)")
    with pytest.raises(TypeError, match="model must be a fastgen.flows.Flow, .* nflows"):
        to_onnx(flows.MaskedAutoregressiveFlow(2, 4, 1, 1), tmp_path / "x.onnx")


def test_checkpoint_round_trip_and_cli(tmp_path, capsys):
    """``fastgen export`` on a checkpoint writes the graph of the saved model (at opset 20,
    which the bin count's translation must also serve)."""
    torch.manual_seed(0)
    config = dict(features=2, context_features=1, num_layers=1, hidden_features=8, num_bins=4)
    flow = _randomized(NeuralSplineFlow(**config))
    save_checkpoint(flow, tmp_path / "flow.pt", config)
    loaded = load_checkpoint(tmp_path / "flow.pt")
    x, c = torch.randn(4, 2), torch.randn(4, 1)
    with torch.no_grad():
        torch.testing.assert_close(loaded.log_prob(x, c), flow.log_prob(x, c), rtol=0, atol=0)

    out = tmp_path / "flow.onnx"
    args = ["export", str(tmp_path / "flow.pt"), str(out), "--method", "log_prob", "--opset", "20"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "inputs (batch, 2)" in printed and "log_prob (batch,)" in printed
    assert [(o.domain, o.version) for o in onnx.load(out).opset_import] == [("", 20)]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (log_prob,) = session.run(None, {"inputs": x.numpy(), "context": c.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(
            torch.from_numpy(log_prob), flow.log_prob(x, c), rtol=1e-4, atol=1e-4
        )


def test_checkpoint_errors(tmp_path, capsys):
    """Bad checkpoints and options exit with status 2 and a message naming the argument."""
    config = dict(features=2, num_layers=1, hidden_features=8)
    flow = NeuralSplineFlow(**config)
    with pytest.raises(ValueError, match="config must rebuild the model"):
        save_checkpoint(flow, tmp_path / "f.pt", dict(config, num_layers=2))
    with pytest.raises(TypeError, match=r"config\['activation'\] must be a number"):
        save_checkpoint(flow, tmp_path / "f.pt", dict(config, activation=math.sin))
    save_checkpoint(flow, tmp_path / "f.pt", config)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a fastgen checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    out = str(tmp_path / "x.onnx")
    for checkpoint, options, message in (
        ("other.pt", [], "not a fastgen checkpoint"),
        ("f.pt", ["--method", "mean"], "argument --method: invalid choice"),
        ("f.pt", ["--opset", "17"], "opset must be >= 18, got 17"),
        ("f.pt", ["--context-features", "0"], "context_features must be >= 1, got 0"),
    ):
        with pytest.raises(SystemExit) as exit:
            main(["export", str(tmp_path / checkpoint), out, *options])
        assert exit.value.code == 2 and message in capsys.readouterr().err


def test_docstring_examples_run_with_onnx():
    """The examples that ``# doctest: +SKIP`` leaves out where onnx is missing run here."""
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(verbose=False)
    for test in finder.find(export):
        for example in test.examples:
            example.options.pop(doctest.SKIP, None)
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0
