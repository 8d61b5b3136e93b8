"""Classifier two-sample test: can a small network tell generated rows from real ones?"""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import torch
from scipy import stats
from torch import nn

from fastgen._checks import check_number, check_pair, check_samples, check_seed

FOLDS, STEPS, HIDDEN = 5, 400, 64
LEARNING_RATE = 3e-3


class ClassifierTest(NamedTuple):
    """``auc``: mean ROC AUC over the folds (0.5: indistinguishable, 1: separable);
    ``auc_error``: its standard error (fold spread / sqrt(folds)); ``jsd``: CaloChallenge's
    Jensen-Shannon divergence in bits from the out-of-fold binary cross-entropy,
    ``(ln 2 - BCE) / ln 2`` (0: indistinguishable, 1: separable; negative when the classifier
    does worse than a constant 1/2)."""

    auc: float
    auc_error: float
    jsd: float


def c2st(
    real,
    generated,
    *,
    folds: int = FOLDS,
    steps: int = STEPS,
    hidden: int = HIDDEN,
    seed: int | None = 0,
) -> ClassifierTest:
    """Classifier two-sample test (Lopez-Paz & Oquab 2016, arXiv:1610.06545) with k-fold
    cross-validation as sbibm's ``c2st`` (Lueckmann et al. 2021), scored by ROC AUC.

    The rows of both sets, labelled 1 (real) and 0 (generated), are shuffled into ``folds``
    folds; for each, an MLP (two hidden SiLU layers of ``hidden`` units, full-batch Adam for
    ``steps`` steps on inputs standardised by the training folds) trained on the other folds
    scores it, and its ROC AUC (the Mann-Whitney U statistic over ``n_real * n_generated``) is
    averaged over the folds. Every row is scored once, out of fold; the binary cross-entropy of
    those scores gives CaloChallenge's JSD (Krause et al., ``evaluate.py``: ``JSD = ln 2 -
    BCE``, printed in bits; exact for equal set sizes and a Bayes-optimal classifier).

    Args:
        real: ``(N, D)``; generated: ``(M, D)``; torch / NumPy / DLPack, finite. Append
            conditions as columns to test a conditional model.
        folds: int ``>= 2``; each fold needs rows of both classes.
        steps, hidden: training length and width (ints ``>= 1``).
        seed: shuffling and initialisation (``None``: fresh entropy); the global random
            state is left alone.

    Returns:
        :class:`ClassifierTest`.

    Raises:
        TypeError / ValueError: bad arrays (not 2-D, NaN, different D), counts or seed.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a, b = torch.randn(60, 2, generator=g), torch.randn(60, 2, generator=g) + 3
        >>> c2st(a, b, folds=2, steps=50).auc > 0.9
        True
    """
    real, generated = check_samples("real", real), check_samples("generated", generated)
    check_pair(("real", "generated"), real, generated)
    check_number("folds", folds, minimum=2, integer=True)
    check_number("steps", steps, minimum=1, integer=True)
    check_number("hidden", hidden, minimum=1, integer=True)
    seed = check_seed("seed", seed)
    if min(len(real), len(generated)) < folds:
        raise ValueError(
            f"folds must be <= the rows of each set ({len(real)} real, {len(generated)} "
            f"generated), got {folds}"
        )
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    inputs = torch.cat([real, generated]).float().cpu()
    labels = torch.cat([torch.ones(len(real)), torch.zeros(len(generated))])
    # Stratified folds: each class shuffled and dealt out, so every fold holds both.
    order = [torch.randperm(n, generator=generator) for n in (len(real), len(generated))]
    chunks = zip(order[0].chunk(folds), (order[1] + len(real)).chunk(folds), strict=True)
    aucs, logits = [], torch.empty(len(inputs))
    for real_rows, generated_rows in chunks:
        test = torch.cat([real_rows, generated_rows])
        train = torch.ones(len(inputs), dtype=torch.bool)
        train[test] = False
        scores = _classifier_scores(
            inputs[train], labels[train], inputs[test], generator, steps, hidden
        )
        logits[test] = scores
        positive, negative = scores[: len(real_rows)], scores[len(real_rows) :]
        u = stats.mannwhitneyu(positive.numpy(), negative.numpy()).statistic
        aucs.append(u / (len(positive) * len(negative)))
    aucs = torch.tensor(aucs, dtype=torch.float64)
    bce = nn.functional.binary_cross_entropy_with_logits(logits.double(), labels.double())
    return ClassifierTest(
        auc=aucs.mean().item(),
        auc_error=(aucs.std() / math.sqrt(folds)).item(),
        jsd=((math.log(2) - bce) / math.log(2)).item(),
    )


def _classifier_scores(inputs, labels, test_inputs, generator, steps, hidden) -> torch.Tensor:
    """Logits for ``test_inputs`` of an MLP trained (full batch, Adam) on ``inputs``."""
    mean, std = inputs.mean(0), inputs.std(0).clamp(min=1e-6)
    # the initialisation comes from `generator` too, without touching the global random state
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
        classifier = nn.Sequential(
            nn.Linear(inputs.shape[1], hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 1),
        )
    optimizer = torch.optim.Adam(classifier.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()
    inputs = (inputs - mean) / std
    with _one_thread():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(classifier(inputs).squeeze(1), labels).backward()
            optimizer.step()
        with torch.no_grad():
            return classifier((test_inputs - mean) / std).squeeze(1)


@contextlib.contextmanager
def _one_thread():
    """A 64-unit MLP's steps are too small to split: on a loaded 2-core machine two intra-op
    threads made c2st 28x slower than one (158 s against 5.6 s, 4,000 rows, 100 steps)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
