"""The demo's run: for each seed, split the bundles, train the four models, select the GAN's
checkpoint on the validation split, then read the test split once and evaluate every model on
it with :func:`fastgen.evaluation.evaluate`.

Reads as an example to copy: :func:`run_seed` is one experiment from data to metrics,
:func:`run` repeats it over seeds and aggregates, :class:`DemoResult` holds everything.
"""

from __future__ import annotations

import contextlib
import math
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fastgen import threads
from fastgen._checks import check_count, check_seed
from fastgen.backend import KERNEL_DTYPES, resolve_backend
from fastgen.demo import data, models, train
from fastgen.demo.data import TAIL_BOUND
from fastgen.evaluation import SINKHORN_BLUR, SINKHORN_SCALING, evaluate
from fastgen.evaluation.classifier import FOLDS
from fastgen.metrics import sinkhorn_divergence
from fastgen.tracing import annotate

MODELS = ("flow", "gan", "vae", "baseline")
LIKELIHOOD_BATCH_SIZE = 256  # the flow's and the VAE's; the GAN's is train.GAN_BATCH_SIZE
VALIDATION_INTERVAL = 100  # training steps between validation scores (every trained model)
# Latent draws of the VAE's importance-weighted log-likelihood (Burda et al.'s K = 5000 moves
# the demo's test NLL by less than 0.002 nats/muon from K = 1000; measured on seed 0).
IWAE_SAMPLES = 1000
# The largest op of the demo's training, for fastgen.threads' rule: a 128-unit layer of the
# GAN on a 256-row batch, 2^15 elements, far below the 2^19 per thread that pays for a second
# thread; so the rule gives one thread. Measured by `python -m profiling.demo_threads` (quiet
# 2-core Xeon, interleaved, medians of 5): training steps at 2 threads took 16x (flow), 19x
# (VAE) and 19x (GAN) as long as at 1.
LARGEST_OP_ELEMENTS = train.GAN_BATCH_SIZE * 128
HOT_PATHS = ("rq_spline", "masked_linear", "gradient_penalty", "sinkhorn")


@dataclass
class SeedResult:
    """One seed's outcome. ``metrics[model][name]``: the held-out numbers (``None`` where a
    model has none, e.g. the GAN's NLL); ``samples[model]``: generated physical features at
    the test conditions (``"data"``: the test muons); ``validation[restart]``: each GAN
    training's ``(step, Sinkhorn divergence)`` scores; ``gan_restart``: the index of the GAN
    training kept; ``selected_steps[model]``: the step of each trained model's kept checkpoint
    (flow and VAE: on their validation loss); ``seconds``: wall time per phase (``"gan"``: all
    restarts)."""

    seed: int
    metrics: dict[str, dict]
    samples: dict[str, torch.Tensor] = field(repr=False)
    validation: list[list[tuple[int, float]]]
    gan_restart: int
    selected_steps: dict[str, int]
    seconds: dict[str, float]


@dataclass
class DemoResult:
    """Every seed's :class:`SeedResult` and the run's settings; :meth:`summary` gives mean and
    standard deviation over seeds, :meth:`to_json` the file ``results.json`` holds."""

    settings: dict
    seeds: list[SeedResult]
    wall_seconds: float
    data: dict

    def summary(self) -> dict[str, dict[str, tuple[float, float] | None]]:
        """``{model: {metric: (mean, std) or None}}`` over seeds; per-feature lists give one
        entry per feature (``"ks[0]"`` ...). ``std`` is the sample standard deviation (0 for
        one seed)."""
        result = {}
        for model in MODELS:
            columns: dict[str, list] = {}
            for seed in self.seeds:
                for name, value in seed.metrics[model].items():
                    items = enumerate(value) if isinstance(value, list) else [(None, value)]
                    for i, item in items:
                        key = name if i is None else f"{name}[{i}]"
                        columns.setdefault(key, []).append(item)
            result[model] = {
                key: None if None in values else _mean_std(values)
                for key, values in columns.items()
            }
        return result

    def all_finite(self) -> bool:
        """Whether every metric that exists is a finite number, on every seed."""
        values = [v for stats in self.summary().values() for v in stats.values() if v]
        return all(math.isfinite(x) for pair in values for x in pair)

    def to_json(self) -> dict:
        return {
            "settings": self.settings,
            "data": self.data,
            "summary": self.summary(),
            "seeds": [
                {
                    "seed": s.seed,
                    "models": s.metrics,
                    "gan_validation": [[list(point) for point in run] for run in s.validation],
                    "gan_selected_restart": s.gan_restart,
                    "gan_selected_step": s.selected_steps["gan"],
                    "selected_steps": s.selected_steps,
                    "seconds": s.seconds,
                }
                for s in self.seeds
            ],
            "wall_seconds": self.wall_seconds,
            "environment": {"torch": torch.__version__, "python": platform.python_version()},
        }


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


@contextlib.contextmanager
def intra_op_threads(largest_op_elements: int):
    """Run the block with ``fastgen.threads.set_threads(largest_op_elements)`` (the rule, or
    ``FASTGEN_NUM_THREADS``), yielding the count; the previous count comes back after it, so
    the demo leaves the caller's process as it found it."""
    previous = torch.get_num_threads()
    try:
        yield threads.set_threads(largest_op_elements)
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _timed(phase: str, seconds: dict):
    """Record the block's wall time as ``seconds[phase]``."""
    start = time.perf_counter()
    yield
    seconds[phase] = time.perf_counter() - start


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


def validation_score(sample, split, seed: int, backend: str) -> float:
    """The Sinkhorn divergence (the test metric's settings) of ``sample(conditions)`` against
    the validation muons; the noise comes from a generator seeded with ``seed`` on every call,
    so that checkpoints are compared on the same draws.

    Measured on seeds 0-4 (batch 512): choosing the GAN's checkpoint on the validation
    classifier AUC (conditions as inputs; 2-8 s per score on the shared machine, against about
    0.4 s) or on the Sinkhorn divergence of latent and conditions together gave the same test
    AUC on average (0.542 and 0.548 against 0.544), so the cheaper score stays."""
    noise = torch.Generator(split.latent.device).manual_seed(seed)
    with torch.no_grad():
        generated = sample(split.conditions, noise)
    return sinkhorn_divergence(
        split.latent, generated, blur=SINKHORN_BLUR, scaling=SINKHORN_SCALING, backend=backend
    ).item()


def _fit_selected(trainer, model, split, steps: int, interval: int):
    """Checkpoint selection of a likelihood model on its training loss over the validation
    split (the flow's NLL, the VAE's negative ELBO): without it the flow's test NLL rose above
    the baseline's on seeds 1 and 2 as training went on (6.00 and 6.12 against 5.98 and
    5.97 nats/muon) while its samples stayed good."""

    def score() -> float:
        with torch.no_grad():
            return trainer.loss(split.latent, split.conditions)[0].item()

    return train.CheckpointSelection(model, score, interval, steps)


def _both(selection, advance, label: str):
    """The per-step callback: the selection, then the progress bar showing the loss."""

    def on_step(stats):
        selection(stats)
        advance(**{label: stats["loss"]})

    return on_step


def run_seed(
    seed: int,
    steps: int,
    device: str = "cpu",
    backend: str = "auto",
    validation_interval: int = VALIDATION_INTERVAL,
    progress=None,
) -> SeedResult:
    """Train the flow, the GAN (``train.GAN_RESTARTS`` trainings; the checkpoint that scores
    best on the validation split, over all of them, is kept), the VAE and the baseline on
    ``seed``'s training bundles; then read the test bundles and evaluate."""
    from fastgen.demo import report  # progress bars: rich, the demo extra

    progress = progress or report.Progress(enabled=False)
    seconds: dict[str, float] = {}
    torch.manual_seed(seed)
    data_rng = torch.Generator().manual_seed(seed)
    device_rng = torch.Generator(device).manual_seed(seed)
    preprocessing, train_split, validation_split = data.load(seed, TAIL_BOUND)
    x, c = train_split.latent.to(device), train_split.conditions.to(device)
    validation_split = validation_split.to(device)

    flow = models.make_flow(TAIL_BOUND, backend).to(device)
    trainer = train.FlowTrainer(flow, x, c, LIKELIHOOD_BATCH_SIZE, data_rng, steps)
    flow_selection = _fit_selected(trainer, flow, validation_split, steps, validation_interval)
    with progress.task(f"seed {seed}: flow", steps) as advance, _timed("flow", seconds):
        flow_training = train.fit(trainer, steps, _both(flow_selection, advance, "nll"))
    flow_selection.restore()

    def train_gan(restart: int):
        generator_net = models.Generator(TAIL_BOUND).to(device)
        critic = models.Critic().to(device)
        gan = train.GanTrainer(
            generator_net, critic, x, c, train.GAN_BATCH_SIZE, data_rng, device_rng, backend, steps
        )

        def score() -> float:
            return validation_score(gan.average.module, validation_split, seed, backend)

        selection = train.CheckpointSelection(gan.average.module, score, validation_interval, steps)
        label = f"seed {seed}: WGAN-GP {restart + 1}/{train.GAN_RESTARTS}"
        with progress.task(label, steps) as advance:

            def on_step(stats):
                selection(stats)
                advance(W=stats["wasserstein"])

            return gan, selection, train.fit(gan, steps, on_step)

    with _timed("gan", seconds):
        gan_runs = [train_gan(restart) for restart in range(train.GAN_RESTARTS)]
    # the restart whose kept checkpoint scored best on validation; the others are dropped
    kept = min(range(len(gan_runs)), key=lambda restart: gan_runs[restart][1].best_score)
    gan, selection, _ = gan_runs[kept]
    selection.restore()
    gan_training = {
        "seconds": sum(training["seconds"] for _, _, training in gan_runs),
        "samples_per_step": gan.samples_per_step * len(gan_runs),
    }

    vae = models.make_vae(TAIL_BOUND).to(device)
    trainer = train.VaeTrainer(vae, x, c, LIKELIHOOD_BATCH_SIZE, data_rng, steps)
    vae_selection = _fit_selected(trainer, vae, validation_split, steps, validation_interval)
    with progress.task(f"seed {seed}: VAE", steps) as advance, _timed("vae", seconds):
        vae_training = train.fit(trainer, steps, _both(vae_selection, advance, "-elbo"))
    vae_selection.restore()
    baseline = models.GaussianBaseline(train_split.latent, train_split.conditions)

    # Training is over: the test bundles are read now, once.
    test_split = data.load_test(seed, preprocessing)
    flow.eval()
    vae.eval()
    samplers = {
        "flow": lambda c: flow.sample(1, context=c).reshape(len(c), -1),
        "gan": lambda c: gan.average.module(c, generator=device_rng),
        "vae": lambda c: vae.sample(1, context=c).reshape(len(c), -1),
        "baseline": lambda c: baseline.sample(c.cpu(), TAIL_BOUND, data_rng),
    }
    metrics, samples = {}, {"data": test_split.features}
    x_test, c_test = test_split.latent.to(device), test_split.conditions.to(device)
    with progress.task(f"seed {seed}: evaluation", len(samplers)) as advance:
        with _timed("evaluation", seconds):
            for name, sample in samplers.items():
                start = time.perf_counter()
                with torch.no_grad():
                    latent = sample(c_test).detach().float().cpu()
                rate = len(latent) / (time.perf_counter() - start)
                features = preprocessing.from_latent(latent)
                metrics[name] = sample_metrics(test_split, latent, features, seed, backend)
                metrics[name]["generated_samples_per_second"] = rate
                samples[name] = features
                advance()
            log_abs_det = preprocessing.log_abs_det(test_split.features)
            with torch.no_grad():
                log_probs = {
                    "flow": flow.log_prob(x_test, context=c_test).cpu(),
                    "vae": vae.log_prob(x_test, c_test, num_samples=IWAE_SAMPLES).cpu(),
                    "baseline": baseline.log_prob(test_split.latent, test_split.conditions),
                }
    for name in MODELS:
        log_prob = log_probs.get(name)
        metrics[name]["nll"] = (
            None if log_prob is None else negative_log_likelihood(log_prob, log_abs_det)
        )
    selections = {"flow": flow_selection, "gan": selection, "vae": vae_selection}
    trainings = {"flow": flow_training, "gan": gan_training, "vae": vae_training}
    validation_seconds = {name: chosen.seconds for name, chosen in selections.items()}
    validation_seconds["gan"] = sum(chosen.seconds for _, chosen, _ in gan_runs)
    for name, training in trainings.items():
        # training rates without the validation scoring inside the loops
        rate = (
            steps * training["samples_per_step"] / (training["seconds"] - validation_seconds[name])
        )
        metrics[name]["training_samples_per_second"] = rate
        seconds[f"{name}_validation"] = validation_seconds[name]
    metrics["baseline"]["training_samples_per_second"] = None
    selected = {name: chosen.best_step for name, chosen in selections.items()}
    validation = [chosen.history for _, chosen, _ in gan_runs]
    return SeedResult(seed, metrics, samples, validation, kept, selected, seconds)


def run(
    steps: int,
    device: str,
    backend: str,
    out: Path,
    seeds: tuple[int, ...] = (0,),
    validation_interval: int = VALIDATION_INTERVAL,
    progress=None,
) -> DemoResult:
    """:func:`run_seed` for each of ``seeds``, under the intra-op threads that
    :mod:`fastgen.threads`' rule gives the demo's models (one; see :data:`LARGEST_OP_ELEMENTS`);
    writes
    ``out/results.json`` and the figures (those of the first seed, and the GAN's validation
    curves of all) and returns the :class:`DemoResult`.

    Args:
        steps: optimiser steps of the flow and the VAE, generator steps of the GAN (each
            after ``train.CRITIC_STEPS`` critic steps), an int ``>= 1``.
        device, backend: where the models train, and fastgen's hot-path backend.
        out: the output directory (created).
        seeds: ints ``>= 0``, each the data split, initialisations and minibatches of one run.
        validation_interval: training steps between validation scores (every trained
            model: checkpoint selection), an int ``>= 1``.
        progress: a ``report.Progress`` or ``None`` (no bars).
    """
    from fastgen.demo import report

    check_count("steps", steps)
    check_count("validation_interval", validation_interval)
    if not seeds:
        raise ValueError("seeds must hold at least one seed, got none")
    for seed in seeds:
        check_seed("seeds", seed, allow_none=False)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with intra_op_threads(LARGEST_OP_ELEMENTS) as thread_count:
        results = [
            run_seed(seed, steps, device, backend, validation_interval, progress) for seed in seeds
        ]
    hot_path_backend = resolve_backend(
        backend, (torch.empty(0, device=device),), supported_dtypes=KERNEL_DTYPES
    )
    features = results[0].samples["data"]
    result = DemoResult(
        settings={
            "steps": steps,
            "seeds": list(seeds),
            "device": device,
            "backend": backend,
            "backends": dict.fromkeys(HOT_PATHS, hot_path_backend),
            "threads": thread_count,
            "tail_bound": TAIL_BOUND,
            "likelihood_batch_size": LIKELIHOOD_BATCH_SIZE,
            "likelihood_lr": train.LIKELIHOOD_LR,
            "gan_batch_size": train.GAN_BATCH_SIZE,
            "gan_ema_decay": train.GAN_EMA_DECAY,
            "gan_restarts": train.GAN_RESTARTS,
            "critic_steps": train.CRITIC_STEPS,
            "penalty_weight": train.PENALTY_WEIGHT,
            "generator_lr": train.GENERATOR_LR,
            "critic_lr": train.CRITIC_LR,
            "gan_betas": list(train.GAN_BETAS),
            "validation_interval": validation_interval,
            "validation_fraction": data.VALIDATION_FRACTION,
            "iwae_samples": IWAE_SAMPLES,
            "sinkhorn_blur": SINKHORN_BLUR,
            "sinkhorn_scaling": SINKHORN_SCALING,
            "classifier_folds": FOLDS,
        },
        seeds=results,
        wall_seconds=0.0,
        data={"test_muons": len(features), "features": list(data.FEATURE_LABELS)},
    )
    report.figures(result, out)
    result.wall_seconds = time.perf_counter() - start
    report.write_json(result, out / "results.json")
    return result
