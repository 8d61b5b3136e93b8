"""Reading the user's sample files for ``fastgen evaluate``: ``.npy``, ``.npz`` (``file.npz``
or ``file.npz:array``), ``.csv`` (comma-separated, an optional header row of column names)
and HDF5 (``file.h5:group/dataset``; ``.h5`` / ``.hdf5``). Every problem is an
:class:`InputError` that names the file and says what was expected and found."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HDF5_SUFFIXES = (".h5", ".hdf5")
SUFFIXES = (".npy", ".npz", ".csv", *HDF5_SUFFIXES)


class InputError(ValueError):
    """A sample file that cannot be evaluated; the message says why."""


def _split(spec: str) -> tuple[Path, str | None]:
    """``file.npz:key`` -> ``(file.npz, key)``; a path without a key -> ``(path, None)``."""
    head, colon, key = spec.rpartition(":")
    if colon and Path(head).suffix.lower() in (".npz", *HDF5_SUFFIXES):
        return Path(head), key
    return Path(spec), None


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if key is None and len(names) == 1:
            key = names[0]
        if key is None or key not in names:
            wanted = "an array name (file.npz:NAME)" if key is None else f"array {key!r}"
            raise InputError(f"{path}: needs {wanted}; it holds {names}")
        return archive[key]


def _read_hdf5(path: Path, key: str | None) -> np.ndarray:
    try:
        import h5py
    except ImportError:
        raise InputError(f"{path}: reading HDF5 needs h5py (pip install h5py)") from None

    with h5py.File(path, "r") as f:
        datasets = []
        f.visititems(
            lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None
        )
        if key is None and len(datasets) == 1:
            key = datasets[0]
        if key is None or key.strip("/") not in datasets:
            wanted = "a dataset path (file.h5:PATH)" if key is None else f"dataset {key!r}"
            raise InputError(f"{path}: needs {wanted}; it holds {datasets}")
        return f[key][()]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    with path.open() as f:
        first = f.readline()
    fields = [field.strip() for field in first.split(",")]
    header = None if all(_is_number(field) for field in fields) else fields
    try:
        values = np.loadtxt(path, delimiter=",", skiprows=int(header is not None), ndmin=2)
    except ValueError as error:
        raise InputError(f"{path}: not a numeric CSV table ({error})") from None
    return values, header


def read_samples(spec: str, columns: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Read a ``(N, D)`` sample table and its column names from ``spec``.

    Args:
        spec: ``path``, ``path.npz:array`` or ``path.h5:dataset`` (see the module docstring).
            An ``.npz`` / HDF5 file with a single array needs no name. A 1-D array is one
            column.
        columns: columns to keep, in order: names (a CSV header's) or integer indices
            (negative from the end); ``None`` keeps all.

    Returns:
        ``(values, names)``: a float array (float32 stays float32, other dtypes become
        float64) and ``D`` column names (the CSV header, else ``"0"``, ``"1"``, ...).

    Raises:
        InputError: missing file, unknown format, missing array / dataset, non-numeric
            values, not 1-D or 2-D, no rows, unknown columns, NaN or inf entries (with the
            first one's row and column).
    """
    path, key = _split(spec)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    header = None
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            values = _read_npz(path, key)
        elif suffix == ".csv":
            values, header = _read_csv(path)
        elif suffix in HDF5_SUFFIXES:
            values = _read_hdf5(path, key)
        else:
            raise InputError(f"{path}: unknown format {suffix!r}; expected one of {SUFFIXES}")
    except InputError:
        raise
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read it as {suffix} ({error})") from None
    values = np.asarray(values)
    if values.dtype.kind not in "fiub":
        raise InputError(f"{spec}: expected numbers, got dtype {values.dtype}")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise InputError(
            f"{spec}: expected a 1-D or 2-D (rows, columns) array, got shape {values.shape}"
        )
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise InputError(f"{spec}: no samples (shape {values.shape})")
    names = header or [str(i) for i in range(values.shape[1])]
    if header is not None and len(header) != values.shape[1]:
        raise InputError(f"{spec}: header has {len(header)} names for {values.shape[1]} columns")
    if columns is not None:
        picked = [_column_index(spec, column, names) for column in columns]
        values, names = values[:, picked], [names[i] for i in picked]
    values = values.astype(np.float32 if values.dtype == np.float32 else np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise InputError(
            f"{spec}: {int(bad.sum())} NaN or inf entries, the first at row {row}, column "
            f"{names[column]!r}; remove or fix those rows"
        )
    return values, names


def _column_index(spec: str, column: str, names: list[str]) -> int:
    if column in names:
        return names.index(column)
    try:
        index = int(column)
    except ValueError:
        raise InputError(f"{spec}: no column {column!r}; columns are {names}") from None
    if not -len(names) <= index < len(names):
        raise InputError(f"{spec}: column index {index} out of range for {len(names)} columns")
    return index % len(names)
