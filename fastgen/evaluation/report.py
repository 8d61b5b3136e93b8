"""The result of :func:`fastgen.evaluation.evaluate`: numbers with their uncertainties, and
their renderings (rich table, Markdown, JSON, matplotlib figures)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch

# Features drawn in the marginals figure (the first ones); the JSON keeps every feature.
FIGURE_FEATURES = 16
# What each metric means, for the table's last column and the JSON.
DESCRIPTIONS = {
    "sinkhorn": "debiased Sinkhorn divergence, standardised features (0: equal)",
    "frechet": "Frechet distance, standardised features (0: equal)",
    "kid": "kernel inception distance, standardised features (0: equal)",
    "fpd": "Frechet physics distance, JetNet (0: equal)",
    "kpd": "kernel physics distance, JetNet (0: equal)",
    "precision": "fraction of generated inside the real manifold (1: ideal)",
    "recall": "fraction of real inside the generated manifold (1: ideal)",
    "density": "real-neighbourhood density of generated (1: ideal)",
    "coverage": "fraction of real neighbourhoods with a generated point (1: ideal)",
    "c2st_auc": "classifier two-sample ROC AUC (0.5: indistinguishable)",
    "c2st_jsd": "CaloChallenge JSD from the classifier's BCE, bits (0: indistinguishable)",
    "wasserstein": "1-D Wasserstein-1 distance, feature units",
    "ks": "Kolmogorov-Smirnov statistic",
    "ks_pvalue": "Kolmogorov-Smirnov p-value",
    "separation_power": "CaloChallenge separation power (0: equal, 1: disjoint)",
}


@dataclasses.dataclass(frozen=True)
class Metric:
    """A value and its uncertainty (one standard deviation; ``None`` where none is
    defined), and how the uncertainty was obtained."""

    value: float
    error: float | None = None
    method: str | None = None

    def to_dict(self) -> dict:
        return {"value": self.value, "error": self.error, "error_method": self.method}


@dataclasses.dataclass
class EvaluationReport:
    """What :func:`fastgen.evaluation.evaluate` measured.

    Attributes:
        feature_names: ``D`` names.
        scalars: metric name -> :class:`Metric` (``sinkhorn``, ``frechet``, ``kid``, ``fpd``,
            ``kpd``, ``precision``, ``recall``, ``density``, ``coverage``, ``c2st_auc``,
            ``c2st_jsd``: those computed).
        per_feature: metric name -> ``D`` :class:`Metric` (``wasserstein``, ``ks``,
            ``ks_pvalue``, ``separation_power``).
        histograms: ``edges (D, B + 1)``, ``real`` and ``generated (D, B)`` fractions per bin,
            ``real_rows`` and ``generated_rows``: the shared-bin histograms of the figures.
        correlations: ``real`` and ``generated`` ``(D, D)`` Pearson correlation matrices.
        settings: every choice that shaped the numbers (seed, sizes, bins, ...).
        notes: warnings raised while computing (e.g. JetNet's sample-size warning).
    """

    feature_names: list[str]
    scalars: dict[str, Metric]
    per_feature: dict[str, list[Metric]]
    histograms: dict
    correlations: dict
    settings: dict
    notes: list[str] = dataclasses.field(default_factory=list)

    def values(self) -> dict:
        """Flat ``{name: value}`` (per-feature metrics: lists of ``D`` values)."""
        flat = {name: metric.value for name, metric in self.scalars.items()}
        flat.update({name: [m.value for m in ms] for name, ms in self.per_feature.items()})
        return flat

    def to_dict(self) -> dict:
        """Everything as JSON-ready Python objects (NaN stays NaN)."""
        return {
            "features": self.feature_names,
            "metrics": {name: metric.to_dict() for name, metric in self.scalars.items()},
            "per_feature": {
                name: {f: m.to_dict() for f, m in zip(self.feature_names, ms, strict=True)}
                for name, ms in self.per_feature.items()
            },
            "descriptions": {k: v for k, v in DESCRIPTIONS.items() if k in self._names()},
            "histograms": {
                k: v.tolist() if isinstance(v, torch.Tensor) else v
                for k, v in self.histograms.items()
            },
            "correlations": {k: v.tolist() for k, v in self.correlations.items()},
            "settings": self.settings,
            "notes": self.notes,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The :meth:`to_dict` as JSON text; written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    def _names(self) -> set[str]:
        return set(self.scalars) | set(self.per_feature)

    def _rows(self):
        """``(title, header, rows)`` of the scalar and the per-feature tables, as text."""
        scalar_rows = [
            (name, _format(m.value), _format(m.error), DESCRIPTIONS[name])
            for name, m in self.scalars.items()
        ]
        names = list(self.per_feature)
        feature_rows = [
            (feature, *(_with_error(self.per_feature[n][i]) for n in names))
            for i, feature in enumerate(self.feature_names)
        ]
        return [
            ("Metrics", ("metric", "value", "error", "meaning"), scalar_rows),
            ("Per feature", ("feature", *names), feature_rows),
        ]

    def to_markdown(self) -> str:
        """Markdown tables: scalar metrics, then per-feature metrics (value ± error)."""
        lines = ["# fastgen evaluation", ""]
        for title, header, rows in self._rows():
            if not rows or len(header) < 2:
                continue
            lines += [f"## {title}", "", "| " + " | ".join(header) + " |"]
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
        settings = ", ".join(f"{k} = {v}" for k, v in self.settings.items())
        lines += [f"Settings: {settings}.", ""]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def tables(self) -> list:
        """The same tables as ``rich.table.Table`` objects, for a terminal."""
        from rich.table import Table

        out = []
        for title, header, rows in self._rows():
            if not rows or len(header) < 2:
                continue
            table = Table(title=title)
            for i, column in enumerate(header):
                table.add_column(column, justify="left" if i == 0 else "right")
            for row in rows:
                table.add_row(*row)
            out.append(table)
        return out

    def figures(self, out: str | Path) -> list[Path]:
        """Write ``marginals.png`` (shared-bin histograms of the first
        ``FIGURE_FEATURES`` features with Poisson bands and a generated / real ratio panel)
        and ``correlations.png`` (Pearson correlations of real, generated and their
        difference) into ``out``; return their paths."""
        import matplotlib

        matplotlib.use("Agg")  # files only
        import matplotlib.pyplot as plt

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        if self.histograms:
            paths.append(out / "marginals.png")
            _marginals(plt, self.histograms, self.feature_names, paths[-1])
        if self.correlations and len(self.feature_names) > 1:
            paths.append(out / "correlations.png")
            _correlations(plt, self.correlations, self.feature_names, paths[-1])
        return paths

    def save(self, out: str | Path) -> list[Path]:
        """Write ``report.json``, ``report.md`` and the figures into ``out``; return the
        paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.to_json(out / "report.json")
        (out / "report.md").write_text(self.to_markdown())
        return [out / "report.json", out / "report.md", *self.figures(out)]


def _format(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _with_error(metric: Metric) -> str:
    if metric.error is None:
        return _format(metric.value)
    return f"{_format(metric.value)} ± {_format(metric.error)}"


def _marginals(plt, histograms, names, path) -> None:
    count = min(len(names), FIGURE_FEATURES)
    columns = min(4, count)
    rows = math.ceil(count / columns)
    fig = plt.figure(figsize=(4 * columns, 4 * rows))
    grid = fig.add_gridspec(2 * rows, columns, height_ratios=[3, 1] * rows, hspace=0.05)
    sizes = {"real": histograms["real_rows"], "generated": histograms["generated_rows"]}
    colours = {"real": "black", "generated": "tab:blue"}
    for feature in range(count):
        row, column = divmod(feature, columns)
        top = fig.add_subplot(grid[2 * row, column])
        ratio_axis = fig.add_subplot(grid[2 * row + 1, column], sharex=top)
        edges = histograms["edges"][feature]
        widths = edges.diff()
        densities, errors = {}, {}
        for source in ("real", "generated"):
            fractions = histograms[source][feature]
            # Poisson error of each bin's count, as a density
            densities[source] = fractions / widths
            errors[source] = (fractions / sizes[source]).sqrt() / widths
            top.stairs(
                densities[source].numpy(), edges.numpy(), color=colours[source], label=source
            )
            top.fill_between(
                edges[:-1].numpy(),
                (densities[source] - errors[source]).numpy(),
                (densities[source] + errors[source]).numpy(),
                step="post",
                color=colours[source],
                alpha=0.25,
            )
        ratio = densities["generated"] / densities["real"]
        relative = (errors["generated"] / densities["generated"]).square()
        relative = (relative + (errors["real"] / densities["real"]).square()).sqrt()
        ratio_axis.stairs(ratio.numpy(), edges.numpy(), color=colours["generated"])
        ratio_axis.fill_between(
            edges[:-1].numpy(),
            (ratio * (1 - relative)).numpy(),
            (ratio * (1 + relative)).numpy(),
            step="post",
            color=colours["generated"],
            alpha=0.25,
        )
        ratio_axis.axhline(1.0, color="black", lw=0.8)
        ratio_axis.set_ylim(0.5, 1.5)
        ratio_axis.set_xlabel(names[feature])
        ratio_axis.set_ylabel("gen / real")
        top.tick_params(labelbottom=False)
        top.set_ylabel("density")
        if feature == 0:
            top.legend()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _correlations(plt, correlations, names, path) -> None:
    matrices = {
        "real": correlations["real"],
        "generated": correlations["generated"],
        "generated - real": correlations["generated"] - correlations["real"],
    }
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (title, matrix) in zip(axes, matrices.items(), strict=True):
        image = ax.imshow(matrix.numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(title)
        if len(names) <= 20:
            ax.set_xticks(range(len(names)), names, rotation=90)
            ax.set_yticks(range(len(names)), names)
    fig.colorbar(image, ax=axes, shrink=0.8, label="Pearson correlation")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
