"""Reading a toymoe output directory into Python: JSON files as dicts, NPZ files as numpy arrays, summary.csv as
typed columns (a pandas DataFrame when pandas is installed).

The reader is deliberately generic: it reads the files that exist and never assumes a fixed column list, so it
keeps working when the tool adds columns or files. What it does check is that the files agree with each other
where they overlap (summary.csv and results.npz), because a join of two different runs would be silently wrong.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ToyMoEError

# Files every `toymoe run` output directory has (at least one of them): they tell a toymoe directory from any other.
_MARKERS = ("provenance.json", "config.json")

_INT = re.compile(r"[+-]?[0-9]+")
# What the tool writes for a real number: Swift's shortest round-trip form ("0.1", "1e-05", "5.0e-324"), or the
# non-finite spellings. Stricter than float(), which would also take "1_000" or " 1 ".
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.IGNORECASE)
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
# Integers a float64 holds exactly; a column of larger ones with gaps stays Python ints rather than be rounded.
_EXACT_IN_FLOAT = 2**53


def _pandas():
    """pandas, or None when it is not installed (it is optional)."""
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def typed_column(values: list[str]) -> np.ndarray:
    """Types one CSV column from its text: the narrowest of int64/uint64, float64, bool, else strings.

    An empty field is "missing": NaN in a numeric column (so an integer column with gaps becomes float64, as in
    pandas, unless its integers are too large for a float64 to hold exactly: then it is an object array of Python
    ints and None), None in a boolean column (object array), "" in a string column. A column that is empty in
    every row is float64 NaN. ``inf``, ``-inf`` and ``nan`` are numbers. Integers beyond int64 (the sweep's uint64
    seeds) become uint64, never a rounded float.
    """
    present = [v for v in values if v != ""]
    missing = len(present) < len(values)
    if not present:
        return np.full(len(values), np.nan)
    if all(_INT.fullmatch(v) for v in present):
        ints = [int(v) for v in values if v != ""]
        lo, hi = min(ints), max(ints)
        if not missing:
            if _INT64_MIN <= lo and hi <= _INT64_MAX:
                return np.array(ints, dtype=np.int64)
            if lo >= 0 and hi <= _UINT64_MAX:
                return np.array(ints, dtype=np.uint64)
            return np.array(ints, dtype=object)
        if max(-lo, hi) <= _EXACT_IN_FLOAT:
            return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
        return np.array([int(v) if v != "" else None for v in values], dtype=object)
    if all(_FLOAT.fullmatch(v) for v in present):
        return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
    if all(v in ("true", "false") for v in present):
        if not missing:
            return np.array([v == "true" for v in values], dtype=bool)
        return np.array([None if v == "" else v == "true" for v in values], dtype=object)
    return np.array(values, dtype=object)


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """Reads a CSV file with a header row into {column: typed numpy array}, in the file's column order."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ToyMoEError(f"{path}: empty file (expected a header row)")
    header, body = rows[0], rows[1:]
    seen = set()
    for name in header:
        if name in seen:
            raise ToyMoEError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
    for i, row in enumerate(body):
        if len(row) != len(header):
            # csv.reader does not give line numbers of rows with quoted newlines; the row number is exact.
            raise ToyMoEError(f"{path}: data row {i + 1} has {len(row)} fields, the header has {len(header)}")
    return {name: typed_column([row[j] for row in body]) for j, name in enumerate(header)}


_NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _decode_non_finite(obj: dict) -> Any:
    """toymoe writes NaN and ±Inf in JSON as {"non_finite": "nan"|"inf"|"-inf"} (JSON has neither); read back as floats."""
    if len(obj) == 1 and obj.get("non_finite") in _NON_FINITE:
        return _NON_FINITE[obj["non_finite"]]
    return obj


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f, object_hook=_decode_non_finite)
        except json.JSONDecodeError as e:
            raise ToyMoEError(f"{path}: not valid JSON ({e})") from None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {name: z[name] for name in z.files}


class Result:
    """A toymoe output directory, loaded. Attributes are None (or empty) when the file is absent:

    - ``path``: the directory (a ``pathlib.Path``)
    - ``provenance``, ``config``: provenance.json and config.json, as dicts
    - ``sweep``: sweep.json (the declared sweep: name, cells, replicates, selection) for a sweep, else None
    - ``result``: result.json, the table the script (or its sweep's ``finish``) returned
    - ``summary_json``: summary.json, which some scripts write (the bundled paper scripts do)
    - ``results``: results.npz as {name: ndarray}; {} when there is none
    - ``summary``: summary.csv, one row per kept replicate: a pandas DataFrame when pandas is installed, else a
      dict {column: ndarray} in the file's column order (see ``typed_column`` for the types)

    A sweep's summary.csv and results.npz exist only once every cell is finished; ``frame()`` joins them.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"toymoe.load: {self.path} is not a directory")
        if not any((self.path / m).is_file() for m in _MARKERS):
            raise ToyMoEError(f"toymoe.load: {self.path} is not a toymoe output directory "
                              f"(it has neither {' nor '.join(_MARKERS)})")
        self.provenance = self._json_if_present("provenance.json")
        self.config = self._json_if_present("config.json")
        self.sweep = self._json_if_present("sweep.json")
        self.result = self._json_if_present("result.json")
        self.summary_json = self._json_if_present("summary.json")
        npz = self.path / "results.npz"
        self.results: dict[str, np.ndarray] = _read_npz(npz) if npz.is_file() else {}
        csv_path = self.path / "summary.csv"
        self._columns = read_csv(csv_path) if csv_path.is_file() else None
        pd = _pandas()
        if self._columns is None:
            self.summary = None
        elif pd is not None:
            self.summary = pd.DataFrame(self._columns)
        else:
            self.summary = dict(self._columns)

    def _json_if_present(self, name: str) -> Any:
        p = self.path / name
        return _read_json(p) if p.is_file() else None

    def files(self, pattern: str = "**/*") -> list[str]:
        """Paths of the directory's files matching a glob ``pattern`` (e.g. ``"*.svg"``, ``"cells/**/*.npz"``),
        relative to ``path``, sorted. Hidden files (the tool's temporaries) are left out."""
        out = []
        for p in self.path.glob(pattern):
            rel = p.relative_to(self.path)
            if p.is_file() and not any(part.startswith(".") for part in rel.parts):
                out.append(rel.as_posix())
        return sorted(out)

    def array(self, name: str) -> np.ndarray | dict[str, np.ndarray]:
        """A saved array file under ``path``: an ``.npy`` as an ndarray, an ``.npz`` as {name: ndarray}."""
        p = self.path / name
        if name.endswith(".npz"):
            return _read_npz(p)
        return np.load(p, allow_pickle=False)

    def json(self, name: str) -> Any:
        """A JSON file under ``path`` (e.g. a sweep's cell file), parsed."""
        return _read_json(self.path / name)

    def frame(self):
        """summary.csv joined row by row with results.npz, as a pandas DataFrame.

        Columns: every summary.csv column, then each results.npz array not already there (an array of shape
        (rows, ...) becomes a column holding one ndarray per row). An array that results.npz shares with
        summary.csv — the same name, or ``param_<key>`` for a parameter column ``<key>`` — is not repeated, but
        it must agree with the CSV on every row the CSV fills, else this raises ToyMoEError: the two files would
        then not be from the same run. Raises ToyMoEError when there is no summary (a script without a sweep, or a
        sweep not finished), when results.npz is missing, or when an array's length is not the number of rows.
        """
        pd = _pandas()
        if pd is None:
            raise ImportError("toymoe: Result.frame() needs pandas (pip install pandas); "
                              "without it, .summary is a dict of numpy columns and .results a dict of arrays")
        if self._columns is None:
            if self.sweep is not None:
                raise ToyMoEError(f"{self.path}: the sweep has no summary.csv yet, so it is not finished: run the "
                                  "same command with --resume (or `toymoe merge` its shards) to complete it")
            raise ToyMoEError(f"{self.path}: no summary.csv (the script declared no sweep); "
                              "its returned table is .result and its files are .files()")
        if not self.results:
            raise ToyMoEError(f"{self.path}: summary.csv is there but results.npz is not: the summary was not "
                              "completed; `toymoe run ... --resume` of the finished sweep writes both again")
        columns = dict(self._columns)
        n = len(next(iter(columns.values()))) if columns else 0
        for name, arr in self.results.items():
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ToyMoEError(f"{self.path}: results.npz '{name}' has shape {arr.shape} but summary.csv has "
                                  f"{n} rows, so they cannot be joined row by row")
            twin = name if name in columns else name[len("param_"):] if name.startswith("param_") else None
            if twin is not None and twin in columns:
                _check_agree(self.path, twin, columns[twin], name, arr)
                continue
            columns[name] = arr if arr.ndim == 1 else _per_row(arr)
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        parts = [str(self.path)]
        if self.sweep is not None:
            rows = "not finished" if self._columns is None else f"{len(next(iter(self._columns.values()), []))} rows"
            parts.append(f"sweep {self.sweep.get('name')!r}, {rows}")
        parts.append(f"{len(self.results)} arrays in results.npz")
        return f"toymoe.Result({'; '.join(parts)})"


def _per_row(arr: np.ndarray) -> np.ndarray:
    """An object column whose row i is arr[i] (pandas cannot hold a 2-D array as one column otherwise)."""
    col = np.empty(arr.shape[0], dtype=object)
    for i in range(arr.shape[0]):
        col[i] = arr[i]
    return col


def _check_agree(path: Path, csv_name: str, csv_col: np.ndarray, npz_name: str, arr: np.ndarray) -> None:
    """Raises unless the results.npz array equals the summary.csv column wherever the CSV has a number.

    Rows the CSV leaves empty (NaN) are not compared: there the two files encode "none" differently by design
    (e.g. a failed step: empty in the CSV, a sentinel in the NPZ). Non-numeric columns are not compared.
    """
    if arr.ndim != 1 or csv_col.dtype == object or csv_col.dtype.kind not in "biuf" or arr.dtype.kind not in "biuf":
        return
    a = csv_col.astype(np.float64) if csv_col.dtype.kind == "f" else csv_col
    filled = ~np.isnan(a) if a.dtype.kind == "f" else np.ones(len(a), dtype=bool)
    b = arr.astype(np.float64) if a.dtype.kind == "f" else arr
    same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else (a == b)
    bad = np.flatnonzero(filled & ~same)
    if bad.size:
        i = int(bad[0])
        raise ToyMoEError(f"{path}: summary.csv '{csv_name}' and results.npz '{npz_name}' disagree at row {i} "
                          f"({a[i]!r} vs {b[i]!r}; {bad.size} rows differ): they are not from the same run")


def load(out: str | Path) -> Result:
    """Loads a toymoe output directory (what ``toymoe run ... --out OUT`` wrote). See ``Result``."""
    return Result(out)
