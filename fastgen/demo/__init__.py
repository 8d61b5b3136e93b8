"""``fastgen demo``: a conditional neural spline flow and a conditional WGAN-GP learn the
muon-bundle distribution (radius, azimuth, log energy given the bundle's zenith and
multiplicity; :mod:`fastgen.data`), and fastgen's metrics judge their samples against held-out
bundles, next to a baseline Gaussian conditioned linearly on the conditions.

Outputs in ``out``: ``results.json`` (every number and the settings), ``marginals.png`` and
``radius_energy.png``; the results table is printed.
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

import torch

from fastgen._checks import check_number, check_seed
from fastgen.backend import KERNEL_DTYPES, resolve_backend
from fastgen.data import FEATURE_NAMES, FEATURE_UNITS
from fastgen.demo import data as demo_data
from fastgen.demo import models, report, train
from fastgen.evaluation import SINKHORN_BLUR, SINKHORN_SCALING, evaluate
from fastgen.evaluation.classifier import FOLDS
from fastgen.tracing import annotate

TAIL_BOUND = 3.0
BATCH_SIZE = 256  # the flow's; the GAN's is train.GAN_BATCH_SIZE
HOT_PATHS = ("rq_spline", "masked_linear", "gradient_penalty", "sinkhorn")


def _sample_timed(sample, conditions) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    with torch.no_grad():
        latent = sample(conditions)
    return latent, len(conditions) / (time.perf_counter() - start)


@annotate("evaluate.metrics")
def sample_metrics(test_split, latent, features, seed: int, backend: str) -> dict:
    """The metrics of generated ``latent`` / ``features`` against the held-out split (same
    conditions, row by row): Sinkhorn, Fréchet, KID and the classifier test (conditions as
    inputs) in the standardised latent space, where the three coordinates share one scale;
    1-D Wasserstein and KS per feature in physical units."""
    latent_report = evaluate(
        test_split.latent,
        latent,
        conditions=test_split.conditions,
        metrics=("sinkhorn", "frechet", "kid", "c2st"),
        seed=seed,
        bootstrap=0,
        backend=backend,
    )
    feature_report = evaluate(
        test_split.features, features, metrics=("wasserstein", "ks"), seed=seed, bootstrap=0
    )
    values = {**latent_report.values(), **feature_report.values()}
    return {
        "sinkhorn": values["sinkhorn"],
        "wasserstein_1d": values["wasserstein"],
        "ks": values["ks"],
        "frechet": values["frechet"],
        "kid": values["kid"],
        "classifier_auc": values["c2st_auc"],
    }


def negative_log_likelihood(log_prob_latent: torch.Tensor, log_abs_det: torch.Tensor) -> float:
    """Mean NLL per muon in the physical units: ``-(log p(latent) + log |d latent / d x|)``."""
    return -(log_prob_latent.double() + log_abs_det.double()).mean().item()


def run(steps: int, device: str, backend: str, out: Path, seed: int, progress=None) -> dict:
    """Train, sample, evaluate, write ``out/results.json`` and the figures; returns the
    results dictionary. ``steps``: optimiser steps of the flow and generator steps of the GAN
    (each after 5 critic steps), an int ``>= 1``. ``seed``: an int ``>= 0`` for the data
    split, the initialisations and the minibatches. ``progress``: a ``report.Progress`` or
    ``None``."""
    check_number("steps", steps, minimum=1, integer=True)
    check_seed("seed", seed, allow_none=False)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    data_rng = torch.Generator().manual_seed(seed)
    device_rng = torch.Generator(device).manual_seed(seed)
    preprocessing, train_split, test_split = demo_data.load(seed, TAIL_BOUND)
    x_train, c_train = train_split.latent.to(device), train_split.conditions.to(device)
    x_test, c_test = test_split.latent.to(device), test_split.conditions.to(device)
    progress = progress or report.Progress(enabled=False)

    flow = models.make_flow(TAIL_BOUND, backend).to(device)
    flow_trainer = train.FlowTrainer(flow, x_train, c_train, BATCH_SIZE, data_rng, steps)
    with progress.task("flow (maximum likelihood)", steps) as advance:
        flow_training = train.fit(flow_trainer, steps, lambda stats: advance(nll=stats["loss"]))
    generator_net = models.Generator(TAIL_BOUND).to(device)
    critic = models.Critic().to(device)
    gan_trainer = train.GanTrainer(
        generator_net,
        critic,
        x_train,
        c_train,
        train.GAN_BATCH_SIZE,
        data_rng,
        device_rng,
        backend,
        total_steps=steps,
    )
    with progress.task("WGAN-GP (5 critic steps each)", steps) as advance:
        gan_training = train.fit(gan_trainer, steps, lambda stats: advance(W=stats["wasserstein"]))
    baseline = models.GaussianBaseline(train_split.latent, train_split.conditions)

    flow.eval()
    samplers = {
        "flow": lambda c: flow.sample(1, context=c).reshape(len(c), -1),
        "gan": lambda c: gan_trainer.average.module(c, generator=device_rng),
        "baseline": lambda c: baseline.sample(c.cpu(), TAIL_BOUND, data_rng),
    }
    log_abs_det = preprocessing.log_abs_det(test_split.features)
    results = {}
    with progress.task("evaluation", len(samplers)) as advance:
        for name, sample in samplers.items():
            latent, rate = _sample_timed(sample, c_test)
            latent = latent.detach().float().cpu()
            features = preprocessing.from_latent(latent)
            metrics = sample_metrics(test_split, latent, features, seed, backend)
            metrics["generated_samples_per_second"] = rate
            results[name] = {"metrics": metrics, "samples": features}
            advance()
    with torch.no_grad():
        flow_log_prob = flow.log_prob(x_test, context=c_test).cpu()
    baseline_log_prob = baseline.log_prob(test_split.latent, test_split.conditions)
    results["flow"]["metrics"]["nll"] = negative_log_likelihood(flow_log_prob, log_abs_det)
    results["baseline"]["metrics"]["nll"] = negative_log_likelihood(baseline_log_prob, log_abs_det)
    results["gan"]["metrics"]["nll"] = None  # an implicit model has no likelihood
    results["flow"]["metrics"]["training_samples_per_second"] = flow_training["samples_per_second"]
    results["gan"]["metrics"]["training_samples_per_second"] = gan_training["samples_per_second"]
    results["baseline"]["metrics"]["training_samples_per_second"] = None

    hot_path_backend = resolve_backend(backend, (x_test,), supported_dtypes=KERNEL_DTYPES)
    summary = {
        "settings": {
            "steps": steps,
            "flow_batch_size": BATCH_SIZE,
            "gan_batch_size": train.GAN_BATCH_SIZE,
            "gan_ema_decay": train.GAN_EMA_DECAY,
            "device": device,
            "backend": backend,
            "seed": seed,
            "tail_bound": TAIL_BOUND,
            "critic_steps": train.CRITIC_STEPS,
            "penalty_weight": train.PENALTY_WEIGHT,
            "generator_lr": train.GENERATOR_LR,
            "critic_lr": train.CRITIC_LR,
            "gan_betas": list(train.GAN_BETAS),
            "likelihood_lr": train.LIKELIHOOD_LR,
            "sinkhorn_blur": SINKHORN_BLUR,
            "sinkhorn_scaling": SINKHORN_SCALING,
            "classifier_folds": FOLDS,
        },
        "data": {
            "train_muons": len(train_split.latent),
            "test_muons": len(test_split.latent),
            "features": [f"{n} [{u}]" for n, u in zip(FEATURE_NAMES, FEATURE_UNITS, strict=True)],
        },
        "backends": dict.fromkeys(HOT_PATHS, hot_path_backend),
        "models": {name: value["metrics"] for name, value in results.items()},
        "losses": {"flow": flow_training["history"], "gan": gan_training["history"]},
        "environment": {"torch": torch.__version__, "python": platform.python_version()},
    }
    report.figures(test_split.features, {k: v["samples"] for k, v in results.items()}, out)
    summary["wall_seconds"] = time.perf_counter() - start
    (out / "results.json").write_text(json.dumps(summary, indent=1, allow_nan=True))
    return summary


def all_finite(summary: dict) -> bool:
    """Whether every metric that exists is a finite number."""
    values = [v for metrics in summary["models"].values() for v in metrics.values()]
    flat = [x for v in values if v is not None for x in (v if isinstance(v, list) else [v])]
    return all(math.isfinite(x) for x in flat)
