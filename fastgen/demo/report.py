"""The demo's terminal output (rich progress bars and table) and figures (matplotlib)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.progress import Progress as RichProgress  # noqa: E402
from rich.table import Table  # noqa: E402

MODELS = ("flow", "gan", "baseline")
AXIS_LABELS = ("log10 radius [m]", "azimuth [rad]", "log10 energy [GeV]")
COLOURS = {"data": "black", "flow": "tab:blue", "gan": "tab:orange", "baseline": "tab:gray"}


class Progress:
    """Progress bars for the training loops; ``enabled=False`` shows nothing."""

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
            TextColumn("{task.fields[status]}"),
        )
        with RichProgress(*columns, console=self.console) as bar:
            task = bar.add_task(description, total=total, status="")

            def advance(**fields):
                status = " ".join(f"{k} {v:.3f}" for k, v in fields.items())
                bar.update(task, advance=1, status=status)

            yield advance


def _cell(value, digits=4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def table(summary: dict) -> Table:
    """Metrics (rows) by model (columns)."""
    models = summary["models"]
    rows = [
        ("test NLL [nats/muon]", "nll"),
        ("Sinkhorn divergence", "sinkhorn"),
        ("W1 radius [m]", ("wasserstein_1d", 0)),
        ("W1 azimuth [rad]", ("wasserstein_1d", 1)),
        ("W1 log10 E", ("wasserstein_1d", 2)),
        ("KS radius", ("ks", 0)),
        ("KS azimuth", ("ks", 1)),
        ("KS log10 E", ("ks", 2)),
        ("Frechet distance", "frechet"),
        ("KID", "kid"),
        ("classifier AUC", "classifier_auc"),
        ("train samples/s", "training_samples_per_second"),
        ("generated/s", "generated_samples_per_second"),
    ]
    settings = summary["settings"]
    result = Table(
        title=f"fastgen demo: {settings['steps']} steps, device {settings['device']}, "
        f"backend {settings['backend']}"
    )
    result.add_column("metric")
    for model in MODELS:
        result.add_column(model, justify="right")
    for label, key in rows:
        result.add_row(label, *(_cell(_value(models[m], key)) for m in MODELS))
    result.caption = (
        "Held-out muons. Lower is better except the classifier two-sample AUC (0.5: samples "
        "indistinguishable from data). NLL in physical units (m, rad, log10 GeV); Sinkhorn, "
        "Frechet and KID in the standardised latent space."
    )
    return result


def _value(metrics: dict, key):
    if isinstance(key, tuple):
        values = metrics.get(key[0])
        return None if values is None else values[key[1]]
    return metrics.get(key)


def figures(features, samples: dict, out: Path) -> None:
    """``marginals.png``: histograms of each feature, data against every model;
    ``radius_energy.png``: log radius against log energy, one panel per source."""
    sources = {"data": features, **samples}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for i, ax in enumerate(axes):
        values = sources["data"][:, i]
        transform = (lambda v: v.clamp(min=1e-4).log10()) if i == 0 else (lambda v: v)
        low, high = (
            transform(values).quantile(0.001).item(),
            transform(values).quantile(0.999).item(),
        )
        for name, source in sources.items():
            ax.hist(
                transform(source[:, i]).numpy(),
                bins=50,
                range=(low, high),
                density=True,
                histtype="step",
                color=COLOURS[name],
                label=name,
                lw=1.5 if name == "data" else 1.2,
            )
        ax.set_xlabel(AXIS_LABELS[i])
    axes[0].set_ylabel("density")
    axes[-1].legend()
    fig.suptitle("Held-out muons: data against generated (same conditions)")
    fig.tight_layout()
    fig.savefig(out / "marginals.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(
        1, len(sources), figsize=(4 * len(sources), 3.8), sharex=True, sharey=True
    )
    for ax, (name, source) in zip(axes, sources.items(), strict=True):
        ax.scatter(
            source[:, 0].clamp(min=1e-4).log10().numpy(),
            source[:, 2].numpy(),
            s=2,
            alpha=0.4,
            color=COLOURS[name],
        )
        ax.set_title(name)
        ax.set_xlabel(AXIS_LABELS[0])
    axes[0].set_ylabel(AXIS_LABELS[2])
    fig.tight_layout()
    fig.savefig(out / "radius_energy.png", dpi=120)
    plt.close(fig)
