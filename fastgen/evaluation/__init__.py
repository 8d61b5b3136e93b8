"""The evaluation suite of generative fast simulation in one call, :func:`evaluate`, behind
``fastgen evaluate`` and the demo: per-feature 1-D distances and CaloChallenge's separation
power, multivariate distances (Sinkhorn, Fréchet, KID, JetNet's FPD / KPD), precision /
recall / density / coverage, and a classifier two-sample test, each with its uncertainty
where one is defined; the :class:`EvaluationReport` renders as tables, JSON and figures."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats

from fastgen._checks import check_choice, check_number, check_pair, check_samples, check_seed
from fastgen.evaluation.classifier import ClassifierTest, c2st
from fastgen.evaluation.histograms import (
    BINS,
    normalised_histograms,
    separation_power,
    shared_bins,
    triangular_discrimination,
)
from fastgen.evaluation.report import EvaluationReport, Metric
from fastgen.metrics import (
    frechet_distance,
    frechet_physics_distance,
    kernel_inception_distance,
    kernel_physics_distance,
    sinkhorn_divergence,
    wasserstein_1d,
)
from fastgen.metrics.prdc import NEAREST_K, prdc_per_sample

__all__ = [
    "METRICS",
    "ClassifierTest",
    "EvaluationReport",
    "Metric",
    "c2st",
    "evaluate",
    "separation_power",
]

METRICS = (
    "wasserstein",
    "ks",
    "separation_power",
    "frechet",
    "kid",
    "fpd",
    "kpd",
    "sinkhorn",
    "prdc",
    "c2st",
)
# Sinkhorn as a metric: small blur and slow epsilon scaling for accurate values (GeomLoss's
# default scaling of 0.5 favours gradients).
SINKHORN_BLUR, SINKHORN_SCALING = 0.05, 0.9
# Rows of each set that the quadratic-cost Sinkhorn and the classifier (trained full batch,
# STEPS steps, k times) see at most: a random subset from the seed.
SINKHORN_SAMPLES, CLASSIFIER_SAMPLES = 5_000, 20_000
BOOTSTRAP = 20
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
# JetNet's defaults, capped by the data: FPD's batch sizes run from min(20,000, n / 2) to
# min(50,000, n) and KPD's batches hold min(5,000, n) rows, n the smaller set.
FPD_MIN_SAMPLES, FPD_MAX_SAMPLES, KPD_BATCH_SIZE = 20_000, 50_000, 5_000


def _conditions_pair(conditions, real, generated):
    """``(real_conditions, generated_conditions)`` or ``(None, None)``."""
    if conditions is None:
        return None, None
    if isinstance(conditions, (tuple, list)):
        if len(conditions) != 2:
            raise ValueError(
                "conditions must be one array or a pair (real_conditions, "
                f"generated_conditions), got a sequence of {len(conditions)}"
            )
        pair = [check_samples(f"conditions[{i}]", c) for i, c in enumerate(conditions)]
    else:
        shared = check_samples("conditions", conditions)
        pair = [shared, shared]
    for name, c, data in zip(("real", "generated"), pair, (real, generated), strict=True):
        if len(c) != len(data):
            raise ValueError(
                f"conditions of {name} must be (N, C) with N = {len(data)} rows, as {name}; "
                f"got {tuple(c.shape)}"
            )
    return pair[0].to(real), pair[1].to(real)


def _subset(values: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    if len(values) <= size:
        return values
    return values[torch.randperm(len(values), generator=generator)[:size].to(values.device)]


def evaluate(
    real,
    generated,
    *,
    conditions=None,
    feature_names: list[str] | None = None,
    metrics: tuple[str, ...] = METRICS,
    seed: int | None = 0,
    nearest_k: int = NEAREST_K,
    bins: int = BINS,
    bootstrap: int = BOOTSTRAP,
    sinkhorn_samples: int = SINKHORN_SAMPLES,
    classifier_samples: int = CLASSIFIER_SAMPLES,
    backend: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvaluationReport:
    """Compare ``generated`` samples to ``real`` ones with the metrics of generative fast
    simulation; every number with its uncertainty where one is defined.

    Per feature, in the features' own units:

    * ``wasserstein``: 1-D Wasserstein-1 distance (POT's ``wasserstein_1d``, p = 1);
    * ``ks``: two-sample Kolmogorov-Smirnov statistic and ``ks_pvalue`` (scipy);
    * ``separation_power``: CaloChallenge's triangular discrimination of the two normalised
      histograms on shared bins (arXiv:2009.03796 eq. 15; :mod:`.histograms`).

    On the features standardised by the real set's mean and standard deviation:

    * ``frechet``: Fréchet distance of Gaussian fits (:func:`fastgen.metrics.frechet_distance`);
    * ``kid``: kernel inception distance, torch-fidelity's (100 subsets of
      ``min(1000, N, M)`` rows), its subset spread as the error;
    * ``sinkhorn``: debiased Sinkhorn divergence (GeomLoss's, ``p = 2``, blur 0.05, scaling
      0.9) on at most ``sinkhorn_samples`` rows of each;
    * ``prdc``: ``precision``, ``recall``, ``density``, ``coverage``
      (:func:`fastgen.metrics.compute_prdc`, closed balls, ``nearest_k``), in float32;
    * ``c2st``: classifier two-sample test (:func:`c2st`: ``c2st_auc``, mean ROC AUC over 5
      folds as sbibm's, and ``c2st_jsd``, CaloChallenge's JSD) on at most
      ``classifier_samples`` rows of each, the conditions appended as inputs.

    On the raw features with JetNet's conventions (each divided by the real max |value|):
    ``fpd`` (Fréchet physics distance, extrapolated to infinite samples, with the fit's
    error) and ``kpd`` (kernel physics distance, median and half the 68% band).

    Uncertainties (one standard deviation): the bootstrap spread over ``bootstrap``
    resamplings of both sets (with replacement; fixed bins) for the per-feature metrics and
    the Fréchet distance; the metric's own for KID, FPD, KPD and the classifier's AUC (fold
    spread / sqrt(folds)); binomial ``sqrt(p (1 - p) / n)`` for precision, recall and
    coverage and ``std / sqrt(M)`` for density (treating the balls as fixed); none for the
    Sinkhorn divergence and the JSD.

    Args:
        real: ``(N, D)``; generated: ``(M, D)``; torch / NumPy / DLPack arrays, finite,
            ``N, M >= 2`` (more than ``nearest_k`` for PRDC); computed in float64 (PRDC in
            float32) on their device.
        conditions: ``None``; one ``(N, C)`` array shared row by row (the generator was run
            at the real rows' conditions; needs ``N = M``); or a pair ``(real_conditions
            (N, C), generated_conditions (M, C))``. They enter the classifier test only,
            which then tests the joint distribution of features and conditions.
        feature_names: ``D`` names (default ``feature 0`` ...).
        metrics: a subset of :data:`METRICS`.
        seed: every random draw (subsets, bootstrap, folds, KID / FPD / KPD batches);
            ``None``: fresh entropy, recorded in the report's settings.
        nearest_k, bins, bootstrap, sinkhorn_samples, classifier_samples: see above
            (``bootstrap = 0``: no bootstrap errors).
        backend: ``"auto" | "triton" | "torch" | None`` for the Sinkhorn, KPD/KID and PRDC
            hot paths (:mod:`fastgen.backend`).
        progress: called with each metric's name when it is done.

    Returns:
        :class:`EvaluationReport`.

    Raises:
        TypeError / ValueError: non-arrays, not 2-D, NaN or inf (data are never dropped
        silently), different ``D``, too few rows, bad ``conditions``, ``feature_names``,
        ``metrics``, counts or ``seed``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> real, generated = torch.randn(300, 2, generator=g), torch.randn(300, 2, generator=g)
        >>> report = evaluate(real, generated, metrics=("wasserstein", "prdc"), bootstrap=5)
        >>> sorted(report.values())
        ['coverage', 'density', 'precision', 'recall', 'wasserstein']
    """
    real, generated = check_samples("real", real), check_samples("generated", generated)
    # one dtype for both: float64 when either is, else float32 (half inputs too)
    dtype = torch.promote_types(torch.promote_types(real.dtype, generated.dtype), torch.float32)
    real, generated = real.to(dtype), generated.to(dtype)
    check_pair(("real", "generated"), real, generated)
    real_conditions, generated_conditions = _conditions_pair(conditions, real, generated)
    dims = real.shape[1]
    if feature_names is None:
        feature_names = [f"feature {i}" for i in range(dims)]
    feature_names = [str(name) for name in feature_names]
    if len(feature_names) != dims:
        raise ValueError(f"feature_names must have D = {dims} names, got {len(feature_names)}")
    if isinstance(metrics, str):
        raise TypeError(f"metrics must be a tuple of names from {METRICS}, got {metrics!r}")
    metrics = tuple(check_choice("metrics", name, METRICS) for name in metrics)
    nearest_k = check_number("nearest_k", nearest_k, minimum=1, integer=True)
    bins = check_number("bins", bins, minimum=1, integer=True)
    bootstrap = check_number("bootstrap", bootstrap, minimum=0, integer=True)
    if bootstrap == 1:
        raise ValueError("bootstrap must be 0 (no errors) or >= 2 resamplings, got 1")
    sinkhorn_samples = check_number("sinkhorn_samples", sinkhorn_samples, minimum=2, integer=True)
    classifier_samples = check_number(
        "classifier_samples", classifier_samples, minimum=2, integer=True
    )
    seed = check_seed("seed", seed)
    if seed is None:
        seed = secrets.randbits(32)
    progress = progress or (lambda name: None)
    generator = torch.Generator().manual_seed(seed)
    smaller = min(len(real), len(generated))

    mean, std = real.mean(0), real.std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    real_std, generated_std = (real - mean) / std, (generated - mean) / std
    resamples = [
        (
            torch.randint(len(real), (len(real),), generator=generator).to(real.device),
            torch.randint(len(generated), (len(generated),), generator=generator).to(real.device),
        )
        for _ in range(bootstrap)
    ]

    def bootstrapped(fn, first, second):
        """``fn(first, second)`` and its bootstrap spread (``None`` without resamples)."""
        value = fn(first, second)
        if not resamples:
            return value, None
        values = np.asarray([fn(first[i], second[j]) for i, j in resamples], dtype=np.float64)
        return value, np.std(values, axis=0, ddof=1)

    scalars, per_feature, notes = {}, {}, []
    edges = shared_bins(real, generated, bins)
    histograms = {
        "edges": edges,
        "real": normalised_histograms(real, edges),
        "generated": normalised_histograms(generated, edges),
        "real_rows": len(real),
        "generated_rows": len(generated),
    }

    def feature_metrics(name, fn, method="bootstrap"):
        value, error = bootstrapped(fn, real, generated)
        errors = [None] * dims if error is None else [float(e) for e in error]
        per_feature[name] = [
            Metric(float(v), e, method if e is not None else None)
            for v, e in zip(np.atleast_1d(value), errors, strict=True)
        ]

    for name in metrics:
        if name == "wasserstein":
            feature_metrics(name, lambda a, b: wasserstein_1d(a, b, p=1).cpu().numpy())
        elif name == "ks":
            feature_metrics(name, _ks_statistics)
            per_feature["ks_pvalue"] = [Metric(float(p)) for p in _ks(real, generated, "pvalue")]
        elif name == "separation_power":
            feature_metrics(
                name,
                lambda a, b: triangular_discrimination(
                    normalised_histograms(a, edges), normalised_histograms(b, edges)
                ).numpy(),
            )
        elif name == "frechet":
            value, error = bootstrapped(frechet_distance, real_std, generated_std)
            if error is None:
                scalars[name] = Metric(float(value))
            else:
                scalars[name] = Metric(float(value), float(error), "bootstrap")
        elif name == "kid":
            size = min(KID_SUBSET_SIZE, smaller)
            value, error = kernel_inception_distance(
                real_std,
                generated_std,
                subsets=KID_SUBSETS,
                subset_size=size,
                seed=seed % 2**32,  # torch-fidelity's np.random.RandomState takes 32 bits
                backend=backend,
            )
            scalars[name] = Metric(value, error, "spread over subsets (torch-fidelity)")
        elif name in ("fpd", "kpd"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if name == "fpd":
                    high = min(FPD_MAX_SAMPLES, smaller)
                    low = max(2, min(FPD_MIN_SAMPLES, high // 2))
                    value, error = frechet_physics_distance(
                        real, generated, min_samples=low, max_samples=high, seed=seed
                    )
                    method = "fit of FD(N) = FPD + b / N (JetNet)"
                else:
                    value, error = kernel_physics_distance(
                        real,
                        generated,
                        batch_size=min(KPD_BATCH_SIZE, smaller),
                        seed=seed,
                        backend=backend,
                    )
                    method = "half the 68% band over batches (JetNet)"
            notes += sorted({f"{name}: {w.message}" for w in caught})
            scalars[name] = Metric(value, error, method)
        elif name == "sinkhorn":
            value = sinkhorn_divergence(
                _subset(real_std, sinkhorn_samples, generator),
                _subset(generated_std, sinkhorn_samples, generator),
                blur=SINKHORN_BLUR,
                scaling=SINKHORN_SCALING,
                backend=backend,
            )
            scalars[name] = Metric(float(value))
        elif name == "prdc":
            scalars.update(_prdc(real_std, generated_std, nearest_k, backend))
        elif name == "c2st":
            first, second = real, generated
            if real_conditions is not None:
                first = torch.cat([real, real_conditions], 1)
                second = torch.cat([generated, generated_conditions], 1)
            result = c2st(
                _subset(first, classifier_samples, generator),
                _subset(second, classifier_samples, generator),
                seed=seed,
            )
            scalars["c2st_auc"] = Metric(result.auc, result.auc_error, "fold spread / sqrt(k)")
            scalars["c2st_jsd"] = Metric(result.jsd)
        progress(name)

    return EvaluationReport(
        feature_names=feature_names,
        scalars=scalars,
        per_feature=per_feature,
        histograms=histograms,
        correlations={"real": _correlation(real), "generated": _correlation(generated)},
        settings={
            "seed": seed,
            "real_rows": len(real),
            "generated_rows": len(generated),
            "features": dims,
            "conditions": 0 if real_conditions is None else real_conditions.shape[1],
            "metrics": list(metrics),
            "nearest_k": nearest_k,
            "bins": bins,
            "bootstrap": bootstrap,
            "sinkhorn_blur": SINKHORN_BLUR,
            "sinkhorn_scaling": SINKHORN_SCALING,
            "sinkhorn_samples": min(sinkhorn_samples, smaller),
            "classifier_samples": min(classifier_samples, smaller),
        },
        notes=notes,
    )


def _ks(first: torch.Tensor, second: torch.Tensor, field: str) -> np.ndarray:
    a, b = first.cpu().numpy(), second.cpu().numpy()
    result = stats.ks_2samp(a, b, axis=0)
    return np.atleast_1d(getattr(result, field))


def _ks_statistics(first, second) -> np.ndarray:
    return _ks(first, second, "statistic")


def _prdc(real, generated, nearest_k, backend) -> dict[str, Metric]:
    """PRDC with binomial (precision, recall, coverage) and standard-error (density)
    uncertainties, which hold the balls fixed."""
    in_real_balls, recalled, covered = prdc_per_sample(
        real.float(), generated.float(), nearest_k, backend=backend
    )
    out = {}
    for name, indicator in (
        ("precision", in_real_balls > 0),
        ("recall", recalled),
        ("coverage", covered),
    ):
        p = indicator.double().mean().item()
        out[name] = Metric(p, (p * (1 - p) / len(indicator)) ** 0.5, "binomial")
    density = in_real_balls.double() / nearest_k
    error = (density.std() / len(density) ** 0.5).item()
    out["density"] = Metric(density.mean().item(), error, "standard error over generated")
    # in the order of the paper's names
    return {k: out[k] for k in ("precision", "recall", "density", "coverage")}


def _correlation(values: torch.Tensor) -> torch.Tensor:
    """``(D, D)`` Pearson correlations on the CPU; 0 off the diagonal for a constant
    feature."""
    matrix = torch.corrcoef(values.T.cpu()).reshape(values.shape[1], values.shape[1])
    return torch.nan_to_num(matrix, nan=0.0).fill_diagonal_(1.0)
