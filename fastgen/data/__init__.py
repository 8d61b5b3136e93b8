"""Embedded data for ``fastgen demo``: atmospheric muon bundles from KM3NeT's MUPAGE simulation.

The table ``muon_bundles.npz`` was extracted once by ``scripts/extract_muon_bundles.py`` from
the KM3NeT test data (PyPI package ``km3net-testdata`` 0.4.31, MIT licence, copyright Tamas
Gal; ``LICENSE-km3net-testdata.txt`` beside this file): 7,768 muons in 569 bundles of at
least two muons. Column definitions are in that script's docstring.
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import torch

FEATURE_NAMES = ("radius", "azimuth", "log10_energy")
FEATURE_UNITS = ("m", "rad", "log10(E / GeV)")
CONDITION_NAMES = ("cos_zenith", "log10_multiplicity")
SPLITS = ("train", "test")


def load_muon_bundles(
    split: str = "train", seed: int = 0, test_fraction: float = 0.2, return_bundles: bool = False
) -> tuple[torch.Tensor, ...]:
    """Per-muon features and per-bundle conditions of one split, split by bundle.

    The bundles are shuffled with ``numpy.random.default_rng(seed)`` and the first
    ``round(test_fraction * 569)`` form the test split, so a bundle's muons are all in one
    split and the same ``seed`` gives the same split.

    Returns:
        ``(features, conditions)``, float32 tensors of shapes ``(N, 3)`` and ``(N, 2)``:
        features ``radius`` (m, lateral distance from the bundle axis, >= 0), ``azimuth``
        (rad, in (-pi, pi], around the axis; periodic) and ``log10_energy`` (log10 of the
        energy in GeV); conditions ``cos_zenith`` (in (0, 1], 1 for vertically downgoing)
        and ``log10_multiplicity`` (log10 of the bundle's number of muons, >= log10 2).
        With ``return_bundles``, also each muon's bundle number, int64 ``(N,)``.

    Raises:
        ValueError: ``split`` not ``"train"`` or ``"test"``, ``test_fraction`` not in (0, 1).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    with files(__name__).joinpath("muon_bundles.npz").open("rb") as handle:
        table = dict(np.load(handle))
    bundles = np.unique(table["bundle"])
    shuffled = np.random.default_rng(seed).permutation(bundles)
    test_bundles = shuffled[: round(test_fraction * len(bundles))]
    selected = np.isin(table["bundle"], test_bundles) == (split == "test")
    features = np.stack([table[name][selected] for name in FEATURE_NAMES], axis=1)
    conditions = np.stack([table[name][selected] for name in CONDITION_NAMES], axis=1)
    arrays = (features, conditions) + (
        (table["bundle"][selected].astype(np.int64),) if return_bundles else ()
    )
    return tuple(torch.from_numpy(array) for array in arrays)
