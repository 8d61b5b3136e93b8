"""The demo's terminal output (rich progress bars and table), ``results.json`` and figures
(matplotlib's object API: no pyplot state, no backend switched at import)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from matplotlib.figure import Figure
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from fastgen.demo.experiment import MODELS, DemoResult

AXIS_LABELS = ("log10 radius [m]", "azimuth [rad]", "log10 energy [GeV]")
COLOURS = {
    "data": "black",
    "flow": "tab:blue",
    "gan": "tab:orange",
    "vae": "tab:green",
    "baseline": "tab:gray",
}
ROWS = (
    ("test NLL [nats/muon]", "nll"),
    ("Sinkhorn divergence", "sinkhorn"),
    ("classifier AUC", "classifier_auc"),
    ("W1 radius [m]", "wasserstein_1d[0]"),
    ("W1 azimuth [rad]", "wasserstein_1d[1]"),
    ("W1 log10 E", "wasserstein_1d[2]"),
    ("KS radius", "ks[0]"),
    ("KS azimuth", "ks[1]"),
    ("KS log10 E", "ks[2]"),
    ("Frechet distance", "frechet"),
    ("KID", "kid"),
    ("train samples/s", "training_samples_per_second"),
    ("generated/s", "generated_samples_per_second"),
)
BINS = 40


class Progress:
    """Progress bars with elapsed time and ETA; ``enabled=False`` shows nothing."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.enabled, self.console = enabled, console

    @contextlib.contextmanager
    def task(self, description: str, total: int):
        if not self.enabled:
            yield lambda **fields: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
        )
        with RichProgress(*columns, console=self.console) as bar:
            task = bar.add_task(description, total=total, status="")

            def advance(**fields):
                status = " ".join(f"{k} {v:.3f}" for k, v in fields.items())
                bar.update(task, advance=1, status=status)

            yield advance


def _cell(value: tuple[float, float] | None, seeds: int) -> str:
    if value is None:
        return "-"
    mean, std = value
    return f"{mean:.4g}" if seeds == 1 else f"{mean:.4g} ± {std:.2g}"


def table(result: DemoResult) -> Table:
    """Metrics (rows) by model (columns): the value for one seed, mean ± standard deviation
    over several."""
    settings, summary = result.settings, result.summary()
    seeds = len(result.seeds)
    title = (
        f"fastgen demo: {settings['steps']} steps, seeds {settings['seeds']}, device "
        f"{settings['device']}, backend {settings['backend']}"
    )
    out = Table(title=title)
    out.add_column("metric")
    for model in MODELS:
        out.add_column(model, justify="right")
    for label, key in ROWS:
        out.add_row(label, *(_cell(summary[model].get(key), seeds) for model in MODELS))
    kept = [(s.gan_restart + 1, s.selected_steps["gan"]) for s in result.seeds]
    out.caption = (
        "Held-out muons. Lower is better except the classifier two-sample AUC (0.5: samples "
        "indistinguishable from data). NLL in physical units (m, rad, log10 GeV; the VAE's "
        "an importance-weighted bound); Sinkhorn, Frechet and KID in the standardised latent "
        "space. GAN checkpoints chosen on validation, (training, step) per seed: "
        f"{kept}."
    )
    return out


def write_json(result: DemoResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_json(), indent=1, allow_nan=True))


def figures(result: DemoResult, out: Path) -> None:
    """``marginals.png`` and ``radius_energy.png`` of the first seed, ``gan_validation.png``
    of every seed."""
    samples = result.seeds[0].samples
    marginals(samples, out / "marginals.png")
    radius_energy(samples, out / "radius_energy.png")
    validation_curves(result, out / "gan_validation.png")


def _display(values: torch.Tensor, feature: int) -> torch.Tensor:
    """The plotted coordinate: log10 of the radius, the others as they are."""
    return values[:, feature].clamp(min=1e-4).log10() if feature == 0 else values[:, feature]


def marginals(samples: dict[str, torch.Tensor], path: Path) -> None:
    """Per feature: normalised histograms of data and models with the data's statistical
    band (Poisson, one standard deviation), and below, each model over data with its band
    ``ratio * sqrt(1 / n_model + 1 / n_data)`` per bin (bins of fewer than 5 data muons are
    left out of the ratio)."""
    figure = Figure(figsize=(14, 5.5))
    axes = figure.subplots(2, 3, sharex="col", gridspec_kw={"height_ratios": (3, 1.3)})
    for feature in range(3):
        top, bottom = axes[0, feature], axes[1, feature]
        data = _display(samples["data"], feature)
        low, high = data.quantile(0.001).item(), data.quantile(0.999).item()
        edges = torch.linspace(low, high, BINS + 1, dtype=torch.float64)
        centres, width = (edges[1:] + edges[:-1]) / 2, (high - low) / BINS
        counts = {
            name: torch.histogram(_display(values, feature).double(), edges).hist
            for name, values in samples.items()
        }
        for name, count in counts.items():
            total = len(samples[name])
            density, error = count / (total * width), count.sqrt() / (total * width)
            colour = COLOURS[name]
            top.stairs(density, edges, color=colour, label=name, lw=1.8 if name == "data" else 1.2)
            if name == "data":
                top.fill_between(
                    centres, density - error, density + error, step="mid", color=colour, alpha=0.2
                )
                continue
            enough = counts["data"] >= 5
            ratio = (density / (counts["data"] / (len(samples["data"]) * width))).where(
                enough, torch.nan
            )
            band = ratio * (1 / count.clamp(min=1) + 1 / counts["data"].clamp(min=1)).sqrt()
            bottom.stairs(ratio, edges, color=colour)
            bottom.fill_between(
                centres, ratio - band, ratio + band, step="mid", color=colour, alpha=0.15
            )
        # a collapsed model's spike must not flatten the data's histogram
        top.set_ylim(0, 1.6 * (counts["data"] / (len(samples["data"]) * width)).max().item())
        bottom.axhline(1, color="black", lw=0.8)
        bottom.set_ylim(0.5, 1.5)
        bottom.set_xlabel(AXIS_LABELS[feature])
    axes[0, 0].set_ylabel("density")
    axes[1, 0].set_ylabel("model / data")
    axes[0, -1].legend(fontsize=8)
    figure.suptitle(
        "Held-out muons against generated ones at the same conditions (bands: statistical, 1σ)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def radius_energy(samples: dict[str, torch.Tensor], path: Path) -> None:
    """log10 radius against log10 energy, one panel per source."""
    figure = Figure(figsize=(3.4 * len(samples), 3.6))
    axes = figure.subplots(1, len(samples), sharex=True, sharey=True)
    for ax, (name, values) in zip(axes, samples.items(), strict=True):
        ax.scatter(
            _display(values, 0).numpy(), values[:, 2].numpy(), s=2, alpha=0.4, color=COLOURS[name]
        )
        ax.set_title(name)
        ax.set_xlabel(AXIS_LABELS[0])
    axes[0].set_ylabel(AXIS_LABELS[2])
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def validation_curves(result: DemoResult, path: Path) -> None:
    """The GAN's validation Sinkhorn divergence over training, one colour per seed, the kept
    training solid and the other restarts dotted, the kept checkpoint marked."""
    figure = Figure(figsize=(6.5, 4))
    ax = figure.subplots()
    for index, seed in enumerate(result.seeds):
        color = f"C{index % 10}"  # matplotlib's default colour cycle
        for restart, history in enumerate(seed.validation):
            kept = restart == seed.gan_restart
            steps, scores = zip(*history, strict=True) if history else ((), ())
            style = {"ls": "-", "label": f"seed {seed.seed}"} if kept else {"ls": ":", "lw": 1}
            ax.plot(steps, scores, marker="." if kept else None, color=color, **style)
        best = dict(seed.validation[seed.gan_restart]).get(seed.selected_steps["gan"])
        if best is not None:
            ax.plot(seed.selected_steps["gan"], best, "*", ms=14, color=color, mec="black")
    ax.set_yscale("log")
    ax.set_xlabel("generator step")
    ax.set_ylabel("validation Sinkhorn divergence")
    ax.set_title("WGAN-GP (moving average): ★ kept; dotted: restarts not kept", fontsize=10)
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
