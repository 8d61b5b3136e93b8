"""Extract the muon-bundle table that ``fastgen demo`` trains on, once, from the KM3NeT test
data (``pip install km3net-testdata==0.4.31 h5py``), into ``fastgen/data/muon_bundles.npz``.

Source: MUPAGE atmospheric-muon simulation samples of the KM3NeT neutrino telescope, shipped
in the MIT-licensed PyPI package ``km3net-testdata`` 0.4.31 (files
``hdf5/atmospheric_muons_sample.h5`` and ``hdf5/mupage_ARCA.h5``, table ``mc_tracks``; see
``fastgen/data/LICENSE-km3net-testdata.txt``).

Per muon (the (radius, angle, log energy) triple of GAN fast-simulation work):

* ``radius``: lateral distance in metres from the bundle axis, the line along the bundle's
  common direction ``d`` through the energy-weighted centroid of its muons' positions;
* ``azimuth``: angle in radians, in (-pi, pi], around the axis, measured from ``e1``, the
  detector's x axis projected onto the plane perpendicular to ``d``, towards ``e2 = d x e1``.
  Every muon here is downgoing (``dir_z <= -0.29``), so ``|d_x| < 0.96`` and the projection is
  well conditioned; for a vertical bundle ``e1`` is the x axis itself, so the frame varies
  smoothly through the near-vertical bundles;
* ``log10_energy``: log10 of the muon energy in GeV.

Per bundle, as conditions of each of its muons: ``cos_zenith = -d_z`` (1 for vertically
downgoing) and ``log10_multiplicity``, log10 of the number of muons kept in the bundle.
Muons with zero energy are dropped, then bundles with fewer than two muons. ``bundle`` numbers
the bundles 0, 1, ... in the order (file, group_id).

Run from the repository root: ``python scripts/extract_muon_bundles.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

FILES = ("hdf5/atmospheric_muons_sample.h5", "hdf5/mupage_ARCA.h5")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "fastgen" / "data" / "muon_bundles.npz"


def read_tracks() -> dict[str, np.ndarray]:
    """The muons of both files: direction, position, energy and a global bundle key."""
    import h5py
    from km3net_testdata import data_path

    columns = ("dir_x", "dir_y", "dir_z", "pos_x", "pos_y", "pos_z", "energy", "group_id")
    parts = []
    for index, name in enumerate(FILES):
        with h5py.File(data_path(name), "r") as file:
            table = file["mc_tracks"][:]
        part = {column: table[column].astype(np.float64) for column in columns}
        part["file"] = np.full(len(table), index)
        parts.append(part)
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def bundle_table(tracks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-muon features and conditions (see the module docstring) from raw tracks."""
    keep = tracks["energy"] > 0
    tracks = {key: value[keep] for key, value in tracks.items()}
    keys = np.stack([tracks["file"], tracks["group_id"]], axis=1)
    _, bundle, multiplicity = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    keep = multiplicity[bundle] >= 2
    tracks = {key: value[keep] for key, value in tracks.items()}
    _, bundle, multiplicity = np.unique(keys[keep], axis=0, return_inverse=True, return_counts=True)

    energy = tracks["energy"]
    direction = np.stack([tracks["dir_x"], tracks["dir_y"], tracks["dir_z"]], axis=1)
    position = np.stack([tracks["pos_x"], tracks["pos_y"], tracks["pos_z"]], axis=1)
    # the common direction (identical within a bundle up to rounding) and the centroid
    axis = np.zeros((len(multiplicity), 3))
    np.add.at(axis, bundle, direction)
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    centroid = np.zeros((len(multiplicity), 3))
    np.add.at(centroid, bundle, energy[:, None] * position)
    centroid /= np.bincount(bundle, weights=energy)[:, None]

    d = axis[bundle]
    offset = position - centroid[bundle]
    lateral = offset - np.sum(offset * d, axis=1, keepdims=True) * d
    e1 = np.array([1.0, 0.0, 0.0]) - d[:, :1] * d
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(d, e1)
    azimuth = np.arctan2(np.sum(lateral * e2, axis=1), np.sum(lateral * e1, axis=1))
    return {
        "bundle": bundle.astype(np.int32),
        "radius": np.linalg.norm(lateral, axis=1).astype(np.float32),
        "azimuth": azimuth.astype(np.float32),
        "log10_energy": np.log10(energy).astype(np.float32),
        "cos_zenith": (-d[:, 2]).astype(np.float32),
        "log10_multiplicity": np.log10(multiplicity[bundle]).astype(np.float32),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    table = bundle_table(read_tracks())
    np.savez_compressed(args.out, **table)
    print(f"{len(table['bundle'])} muons in {table['bundle'].max() + 1} bundles -> {args.out}")


if __name__ == "__main__":
    main()
