"""``fastgen evaluate`` on files of each format (.npy, .npz, .csv, HDF5), column selection,
conditions, and bad files: exit status 2 with a message that names the problem."""

import json

import numpy as np
import pytest

from fastgen.cli import main

h5py = pytest.importorskip("h5py", reason="h5py reads the HDF5 inputs")
FAST = ["--metrics", "wasserstein", "ks", "prdc", "--bootstrap", "0"]


def _data(seed, n=60, d=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d))


def _write(path, values, key="samples", header=None):
    """Write ``values`` to ``path`` in the format its suffix names; return the CLI spec."""
    if path.suffix == ".npy":
        np.save(path, values)
        return str(path)
    if path.suffix == ".npz":
        np.savez(path, **{key: values})
        return f"{path}:{key}"
    if path.suffix == ".csv":
        np.savetxt(path, values, delimiter=",", header=",".join(header or []), comments="")
        return str(path)
    with h5py.File(path, "w") as f:
        f.create_dataset(f"group/{key}", data=values)
    return f"{path}:group/{key}"


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".h5"])
def test_each_format(suffix, tmp_path, capsys):
    header = ["energy", "x", "y"] if suffix == ".csv" else None
    real = _write(tmp_path / f"real{suffix}", _data(0), header=header)
    generated = _write(tmp_path / f"generated{suffix}", _data(1).astype(np.float32), header=header)
    out = tmp_path / "out"
    assert main(["evaluate", real, generated, "--out", str(out), *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["features"] == (header or ["0", "1", "2"])
    assert set(report["metrics"]) == {"precision", "recall", "density", "coverage"}
    assert {p.name for p in out.iterdir()} == {
        "report.json",
        "report.md",
        "marginals.png",
        "correlations.png",
    }
    assert "precision" in capsys.readouterr().out


def test_columns_by_name_and_index_and_shared_conditions(tmp_path):
    real = _write(tmp_path / "real.csv", _data(0), header=["energy", "x", "y"])
    generated = _write(tmp_path / "generated.csv", _data(1), header=["energy", "x", "y"])
    conditions = _write(tmp_path / "conditions.npy", _data(2, d=1)[:, 0])  # 1-D: one column
    out = tmp_path / "out"
    args = ["evaluate", real, generated, "--columns", "y", "0", "--out", str(out)]
    args += ["--conditions", conditions, "--metrics", "wasserstein", "c2st", "--bootstrap", "0"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["features"] == ["y", "energy"]
    assert report["settings"]["conditions"] == 1
    assert "c2st_auc" in report["metrics"]


def _error(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", *args, *FAST])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_bad_files(tmp_path, capsys):
    good = _write(tmp_path / "good.npy", _data(0))
    nan = _data(1)
    nan[7, 2] = np.nan
    _write(tmp_path / "arrays.npz", _data(1))
    (tmp_path / "data.txt").write_text("1,2,3\n")
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,3\n4,oops,6\n")
    np.savez(tmp_path / "two.npz", first=_data(1), second=_data(2))
    cases = {
        str(tmp_path / "missing.npy"): "no such file",
        _write(tmp_path / "nan.npy", nan): "1 NaN or inf entries, the first at row 7, column '2'",
        _write(tmp_path / "cube.npy", np.zeros((4, 2, 2))): "expected a 1-D or 2-D",
        _write(tmp_path / "empty.npy", np.zeros((0, 3))): "no samples",
        _write(tmp_path / "text.npy", np.array([["a", "b"]])): "expected numbers",
        f"{tmp_path / 'arrays.npz'}:other": "needs array 'other'",
        str(tmp_path / "two.npz"): "needs an array name",
        str(tmp_path / "data.txt"): "unknown format '.txt'",
        str(tmp_path / "bad.csv"): "not a numeric CSV table",
        _write(tmp_path / "wide.npy", _data(1, d=4)): "REAL has 3 columns",
        f"{_write(tmp_path / 'h.h5', _data(1)).split(':')[0]}:nope": "dataset 'nope'",
    }
    for generated, message in cases.items():
        assert message in _error([good, generated], capsys), generated


def test_bad_options(tmp_path, capsys):
    real = _write(tmp_path / "real.csv", _data(0), header=["energy", "x", "y"])
    other = _write(tmp_path / "other.csv", _data(1), header=["energy", "x", "z"])
    assert "column names differ" in _error([real, other], capsys)
    assert "no column 'w'" in _error([real, real, "--columns", "w"], capsys)
    assert "column index 5 out of range" in _error([real, real, "--columns", "5"], capsys)
    assert "one or two files" in _error([real, real, "--conditions", real, real, real], capsys)
    assert "seed must be >= 0" in _error([real, real, "--seed", "-3"], capsys)
    conditions = _write(tmp_path / "conditions.npy", _data(2, n=10))
    assert "conditions of real must be" in _error([real, real, "--conditions", conditions], capsys)
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    assert "not a directory" in _error([real, real, "--out", str(not_a_directory)], capsys)
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", real, real, "--metrics", "fid"])
    assert exit_info.value.code == 2
    assert "unknown ['fid']" in capsys.readouterr().err
