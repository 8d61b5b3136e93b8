"""fastgen.evaluation: each metric of ``evaluate`` against its peer or its formula written out
(scipy for 1-D Wasserstein and KS, CaloChallenge's separation power, fastgen's JetNet-convention
FPD / KPD, the prdc package, the Bayes AUC and the JSD of shifted Gaussians for the classifier
test), the uncertainties' formulas, the report's renderings and the argument checks."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from fastgen.evaluation import c2st, evaluate, separation_power
from fastgen.metrics import (
    frechet_distance,
    frechet_physics_distance,
    kernel_inception_distance,
    kernel_physics_distance,
    sinkhorn_divergence,
)


def _normal(n, shift, seed, d=2):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def _sets(n=400, m=300, d=3, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, d)) * [1.0, 2.0, 0.5][:d] + [0.0, 5.0, -1.0][:d]
    generated = rng.standard_normal((m, d)) * [1.1, 1.8, 0.5][:d] + [0.1, 5.0, -0.9][:d]
    return real, generated


# --- classifier two-sample test (moved from tests/test_demo_evaluate.py) ---


def test_same_distribution_is_indistinguishable():
    result = c2st(_normal(1500, 0.0, 1), _normal(1500, 0.0, 2))
    assert abs(result.auc - 0.5) < 0.04
    assert abs(result.jsd) < 0.1


@pytest.mark.parametrize("shift", [0.5, 1.0])
def test_shifted_gaussians_reach_the_bayes_auc(shift):
    # N(0, I) against N(shift * e1, I): the best score is x1, whose AUC is Phi(shift / sqrt 2)
    bayes = 0.5 * (1 + math.erf(shift / 2))
    real = _normal(1500, 0.0, 1)
    fake = _normal(1500, torch.tensor([shift, 0.0]), 2)
    result = c2st(real, fake, seed=0)
    assert abs(result.auc - bayes) < 0.03, (result.auc, bayes)
    assert 0 < result.auc_error < 0.03


def _jsd_bits(shift):
    """Jensen-Shannon divergence of N(0, 1) and N(shift, 1) in bits, by quadrature."""
    p = stats.norm(0, 1).pdf
    q = stats.norm(shift, 1).pdf

    def integrand(x):
        m = (p(x) + q(x)) / 2
        return 0.5 * (p(x) * np.log(p(x) / m) + q(x) * np.log(q(x) / m))

    return integrate.quad(integrand, -12, 12 + shift)[0] / math.log(2)


def test_jsd_from_the_classifier_is_the_gaussians_jsd():
    # ln 2 - BCE of a Bayes-optimal classifier is the JSD (CaloChallenge); a trained one
    # gets close from below
    shift = 2.0
    real = _normal(1500, 0.0, 1, d=1)
    fake = _normal(1500, shift, 2, d=1)
    result = c2st(real, fake, seed=0)
    assert abs(result.jsd - _jsd_bits(shift)) < 0.05, (result.jsd, _jsd_bits(shift))


def test_c2st_reproducible_and_leaves_the_global_random_state_alone():
    real, fake = _normal(300, 0.0, 1), _normal(300, 0.3, 2)
    state = torch.random.get_rng_state()
    first = c2st(real, fake, seed=5, steps=50)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert c2st(real, fake, seed=5, steps=50) == first


# --- separation power ---


def calochallenge_separation_power(real, generated, edges):
    """CaloChallenge's procedure (``evaluate.py``): ``plt.hist(..., bins, density=True)``
    of both (here ``np.histogram``, what it calls), times the bin widths so that each sums
    to 1, then ``_separation_power``: ``0.5 * sum((h1 - h2)^2 / (h1 + h2 + 1e-16))``."""
    h1, _ = np.histogram(real, bins=edges, density=True)
    h2, _ = np.histogram(generated, bins=edges, density=True)
    h1, h2 = h1 * np.diff(edges), h2 * np.diff(edges)
    return 0.5 * ((h1 - h2) ** 2 / (h1 + h2 + 1e-16)).sum()


@pytest.mark.parametrize("bins", [1, 7, 50])
def test_separation_power_is_calochallenges(bins):
    from fastgen.evaluation.histograms import shared_bins

    real, generated = (torch.from_numpy(a) for a in _sets())
    ours = separation_power(real, generated, bins)
    edges = shared_bins(real, generated, bins).numpy()
    for i in range(real.shape[1]):
        expected = calochallenge_separation_power(real[:, i], generated[:, i], edges[i])
        assert ours[i].item() == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_separation_power_limits():
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert separation_power(x, x).tolist() == [0.0, 0.0]
    assert separation_power(x, x + 100).tolist() == [1.0, 1.0]


# --- evaluate: each number against the function or formula it stands for ---


@pytest.fixture(scope="module")
def report():
    real, generated = _sets()
    metrics = (
        "wasserstein",
        "ks",
        "separation_power",
        "frechet",
        "kid",
        "fpd",
        "kpd",
        "sinkhorn",
        "prdc",
    )
    return evaluate(real, generated, feature_names=["a", "b", "c"], metrics=metrics, seed=3)


def test_per_feature_metrics_equal_scipy(report):
    real, generated = _sets()
    for i in range(3):
        w1 = stats.wasserstein_distance(real[:, i], generated[:, i])
        ks = stats.ks_2samp(real[:, i], generated[:, i])
        assert report.per_feature["wasserstein"][i].value == pytest.approx(w1, rel=1e-10)
        assert report.per_feature["ks"][i].value == pytest.approx(ks.statistic, rel=1e-12)
        assert report.per_feature["ks_pvalue"][i].value == pytest.approx(ks.pvalue, rel=1e-9)
        # bootstrap spreads of 20 resamples: positive and of the metric's scale
        for name in ("wasserstein", "ks", "separation_power"):
            metric = report.per_feature[name][i]
            assert 0 < metric.error < 0.5 * max(metric.value, 0.05), (name, metric)


def test_multivariate_metrics_equal_their_functions(report):
    real, generated = (torch.from_numpy(a) for a in _sets())
    mean, std = real.mean(0), real.std(0)
    real_std, generated_std = (real - mean) / std, (generated - mean) / std
    assert report.scalars["frechet"].value == pytest.approx(
        frechet_distance(real_std, generated_std), rel=1e-12
    )
    kid = kernel_inception_distance(real_std, generated_std, subset_size=300, seed=3)
    assert (report.scalars["kid"].value, report.scalars["kid"].error) == pytest.approx(kid)
    with pytest.warns(RuntimeWarning, match="Recommended number of samples"):
        fpd = frechet_physics_distance(real, generated, min_samples=150, max_samples=300, seed=3)
        kpd = kernel_physics_distance(real, generated, batch_size=300, seed=3)
    assert (report.scalars["fpd"].value, report.scalars["fpd"].error) == pytest.approx(fpd)
    assert (report.scalars["kpd"].value, report.scalars["kpd"].error) == pytest.approx(kpd)
    assert any("Recommended number of samples" in note for note in report.notes)
    sinkhorn = sinkhorn_divergence(real_std, generated_std, blur=0.05, scaling=0.9)
    assert report.scalars["sinkhorn"].value == pytest.approx(sinkhorn.item(), rel=1e-10)


def test_prdc_equals_the_prdc_package_with_binomial_errors(report):
    prdc = pytest.importorskip("prdc", reason="prdc is the oracle (pip install prdc)")
    real, generated = _sets()
    mean, std = real.mean(0), real.std(0, ddof=1)
    expected = prdc.compute_prdc(
        ((real - mean) / std).astype(np.float32), ((generated - mean) / std).astype(np.float32), 5
    )
    for name, value in expected.items():
        metric = report.scalars[name]
        assert metric.value == pytest.approx(float(value), abs=1e-12), name
        if name != "density":
            n = len(generated) if name == "precision" else len(real)
            assert metric.error == pytest.approx(math.sqrt(value * (1 - value) / n))


def test_report_renders(report, tmp_path):
    data = json.loads(report.to_json())
    assert data["features"] == ["a", "b", "c"]
    assert data["metrics"]["precision"]["error_method"] == "binomial"
    assert len(data["per_feature"]["wasserstein"]) == 3
    assert np.asarray(data["histograms"]["real"]).sum(1) == pytest.approx(np.ones(3))
    markdown = report.to_markdown()
    assert "| precision |" in markdown and "| a |" in markdown
    paths = report.save(tmp_path)
    assert sorted(p.name for p in paths) == [
        "correlations.png",
        "marginals.png",
        "report.json",
        "report.md",
    ]
    assert all(p.stat().st_size > 0 for p in paths)
    assert len(report.tables()) == 2


def test_seeded_and_reproducible():
    real, generated = _sets(120, 100)
    run = lambda seed: evaluate(real, generated, metrics=("wasserstein", "kid"), seed=seed)  # noqa: E731
    assert run(4).to_dict() == run(4).to_dict()
    assert run(4).scalars["kid"] != run(5).scalars["kid"]
    assert isinstance(evaluate(real, generated, metrics=("kid",), seed=None).settings["seed"], int)


def test_conditions_enter_the_classifier():
    # features identical in distribution, conditions shifted: only the joint test sees it
    real, generated = _normal(400, 0.0, 1), _normal(400, 0.0, 2)
    conditions = (_normal(400, 0.0, 3, d=1), _normal(400, 3.0, 4, d=1))
    plain = evaluate(real, generated, metrics=("c2st",), seed=0).scalars["c2st_auc"].value
    joint = evaluate(real, generated, conditions=conditions, metrics=("c2st",), seed=0)
    assert abs(plain - 0.5) < 0.1 and joint.scalars["c2st_auc"].value > 0.95


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(real=np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]])),
            ValueError,
            "real must be finite",
        ),
        (dict(generated=np.zeros((5, 3))), ValueError, "same size along axis -1"),
        (dict(feature_names=["x"]), ValueError, "feature_names must have D = 2 names, got 1"),
        (dict(metrics=("fid",)), ValueError, "metrics must be one of"),
        (dict(metrics="ks"), TypeError, "metrics must be a tuple"),
        (dict(seed=-1), ValueError, "seed must be >= 0"),
        (dict(bootstrap=1), ValueError, "bootstrap must be 0"),
        (dict(conditions=np.zeros((4, 1))), ValueError, "conditions of real must be"),
        (dict(conditions=(np.zeros((6, 1)),)), ValueError, "a pair"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = dict(real=np.random.default_rng(0).standard_normal((6, 2)), generated=np.ones((6, 2)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        evaluate(args.pop("real"), args.pop("generated"), **args)
