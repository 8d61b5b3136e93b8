"""The embedded muon-bundle data: the loader's contract, and the shipped table against a
fresh extraction from the KM3NeT test data."""

import importlib.util
import math
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch

from fastgen.data import load_muon_bundles

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = files("fastgen.data") / "muon_bundles.npz"  # the installed copy


def test_shapes_units_and_ranges():
    train = load_muon_bundles("train")
    test = load_muon_bundles("test")
    assert len(train[0]) + len(test[0]) == 7768
    for features, conditions in (train, test):
        assert features.dtype == conditions.dtype == torch.float32
        assert features.shape[1] == 3 and conditions.shape == (len(features), 2)
        assert torch.isfinite(features).all() and torch.isfinite(conditions).all()
        radius, azimuth, log10_energy = features.T
        assert (radius >= 0).all() and radius.max() < 200  # metres, bundles are tens of m wide
        assert (azimuth > -math.pi).all() and (azimuth <= math.pi).all()
        assert log10_energy.min() > -2 and log10_energy.max() < 7  # 10 MeV .. 10 PeV
        cos_zenith, log10_multiplicity = conditions.T
        assert (cos_zenith > 0).all() and (cos_zenith <= 1).all()  # downgoing
        assert (log10_multiplicity >= math.log10(2) - 1e-6).all()


def test_split_is_by_bundle_and_reproducible():
    *train, train_bundles = load_muon_bundles("train", seed=3, return_bundles=True)
    *test, test_bundles = load_muon_bundles("test", seed=3, return_bundles=True)
    assert not set(train_bundles.tolist()) & set(test_bundles.tolist())
    assert len(set(train_bundles.tolist()) | set(test_bundles.tolist())) == 569
    assert len(set(test_bundles.tolist())) == round(0.2 * 569)
    again = load_muon_bundles("test", seed=3)
    assert all(torch.equal(a, b) for a, b in zip(test, again, strict=True))
    other = load_muon_bundles("test", seed=4, return_bundles=True)[2]
    assert set(other.tolist()) != set(test_bundles.tolist())
    # a bundle's conditions are the same for all of its muons
    for bundle in test_bundles.unique()[:20]:
        rows = test[1][test_bundles == bundle]
        assert (rows == rows[0]).all()
        assert rows[0, 1].item() == pytest.approx(math.log10(len(rows)), abs=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split must be one of"):
        load_muon_bundles("validation")
    with pytest.raises(ValueError, match="test_fraction"):
        load_muon_bundles("test", test_fraction=1.0)


@pytest.mark.skipif(
    importlib.util.find_spec("km3net_testdata") is None or importlib.util.find_spec("h5py") is None,
    reason="km3net-testdata and h5py (the extraction's sources) are not installed",
)
def test_shipped_table_equals_a_fresh_extraction(tmp_path):
    out = tmp_path / "bundles.npz"
    script = ROOT / "scripts" / "extract_muon_bundles.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True)
    fresh = np.load(out)
    with SHIPPED.open("rb") as handle:
        shipped = dict(np.load(handle))
    assert sorted(fresh) == sorted(shipped)
    for key in fresh:
        np.testing.assert_array_equal(fresh[key], shipped[key], err_msg=key)
