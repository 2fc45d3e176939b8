"""A results folder on disk: the one Parquet schema and writer of run records.

``pdsim run --out DIR`` writes ``DIR/records-NNNNN.parquet`` per finished chunk (the run
record's columns). A sweep's folder holds ``DIR/manifest.json``, written before the first
chunk: the sweep file's SHA-256 and those of the files it reads, the root seed, replicates
per cell, the chunk size, package versions and the cells. Each finished chunk (a ``cell``
column, then the run record's) is written to a temporary name and renamed to
``DIR/records-cCCCCC-KKKKK.parquet``, so a file under its final name is always whole:
after a kill at any moment, ``--resume`` reruns exactly the chunks without a file and
the folder ends with the rows of an uninterrupted run.

A ``pdsim run --out`` folder is a :class:`RunFolder` while the run writes it: locked against
a second writer, refused when it already holds results (unless ``force``), and, with
``force``, filled through a staging folder so that old results are replaced only by a
complete new run.
"""

from __future__ import annotations

import bisect
import fcntl
import json
import math
import os
import platform
import re
import shutil
import tempfile
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import pyarrow as pa

from sim import DISTRIBUTION
from sim.errors import NOT_GIVEN, InputError, one_line
from sim.inputs.files import open_regular, read_bytes
from sim.limits import MAX_RESULTS_JSON_BYTES, MAX_RUNS, MAX_SEED
from sim.outcomes import BUSINESS_COLUMNS, COLUMNS, OUTCOMES, UNFINISHED, RunRecord
from sim.runs.atomic import atomic_write, stray_temporaries

if TYPE_CHECKING:  # pandas and Parquet load with the functions that read results (lazy imports)
    import pandas as pd

MANIFEST = "manifest.json"
#: The summary file of a results folder (``pdsim run --out`` and ``pdsim sweep --out``).
SUMMARY = "summary.json"
#: The lock file a ``pdsim run --out`` holds (``flock``) while it writes the folder.
LOCK = ".pdsim-lock"
#: Prefix of the staging folder, inside the results folder, of a ``--force`` run.
STAGING_PREFIX = ".pdsim-new-"
FORMAT = 1
CHUNK_RE = re.compile(r"records-c(\d{5,})-(\d{5,})\.parquet")
#: A chunk file of ``pdsim run --out`` (no cells: ``records-NNNNN.parquet``).
RUN_CHUNK_RE = re.compile(r"records-\d{5,}\.parquet")
_TMP_RE = re.compile(r"\.(records-c\d+-\d+\.parquet|manifest\.json|summary\.json)\.\d+\.tmp")
#: The manifest's ``versions`` keys and the distributions they are read from.
_PACKAGES = {
    "pdsim": DISTRIBUTION,
    **{name: name for name in ("numpy", "scipy", "pandas", "pyarrow", "simpy", "pydantic", "joblib")},
}


class ResultsError(Exception):
    """A results folder that cannot be used as asked (one line; the CLI exits 2)."""


class WriteFailed(ResultsError):
    """A results folder could not be written (disk full, read-only file system, no
    permission): an error of the environment, not of pdsim (the CLI exits 2).

    Every file under its final name is whole (each appears by rename), so the chunks
    finished before the failure stay intact.

    Attributes:
        out: the results folder.
        reason: what the system said (``No space left on device``).
    """

    def __init__(self, out: str | os.PathLike[str], err: OSError) -> None:
        self.out = Path(out)
        self.reason = err.strerror or one_line(str(err))
        super().__init__(f"{os.fspath(out)}: cannot write: {self.reason}")


class RunFolder:
    """The results folder of one ``pdsim run --out DIR``, held for the run's whole duration.

    Opening it creates ``DIR``, takes an exclusive ``flock`` on ``DIR/.pdsim-lock`` (the
    kernel releases it when the process dies, so a crashed run never leaves the folder
    locked) and checks what the folder holds: a sweep's results are refused, and so are a
    run's (chunks or ``summary.json``) unless ``force``. With ``force`` and old results,
    the new chunks and summary go to a staging folder ``DIR/.pdsim-new-XXXX/`` (readers skip
    dot-folders) and :meth:`commit` moves them into place; :meth:`close` without a commit
    removes the staging folder, so an interrupted run leaves the old results as they were.

    Attributes:
        out: the results folder.
        staging: the staging folder of a ``force`` run over old results, else None
            (None again once committed or closed).
        replacing: whether this run replaces earlier results (``force`` over old ones).
    """

    def __init__(self, out: str | os.PathLike[str], *, force: bool = False) -> None:
        """Open (create, lock, check) the folder.

        Raises:
            ResultsError: the folder cannot be created or written, another process holds
                its lock, it holds a sweep's results, or a run's without ``force``.
        """
        self.out = Path(out)
        self.staging: Path | None = None
        self.replacing = False
        self._lock_fd: int | None = None
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock()
            old = self._check(force)
            # Under the lock, a staging folder or a write's temporary is a dead run's: drop it.
            for stale in self.out.glob(STAGING_PREFIX + "*"):
                shutil.rmtree(stale, ignore_errors=True)
            for stray in stray_temporaries(self.out):
                stray.unlink(missing_ok=True)
            if old:
                self.replacing = True
                self.staging = Path(tempfile.mkdtemp(dir=self.out, prefix=STAGING_PREFIX))
            else:
                probe = tempfile.NamedTemporaryFile(dir=self.out, prefix=".pdsim-probe-")
                probe.close()
        except OSError as err:
            self.close()
            raise ResultsError(f"cannot use --out {out}: {err.strerror or err}") from None
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        path = self.out / LOCK
        # The lock file is removed by close(); a process that opened it just before could
        # then lock a file no longer in the folder. Locking, then checking that the name
        # still points at the locked file, closes that race.
        for _ in range(100):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ResultsError(
                    f"{self.out} is being written by another pdsim run (it holds {LOCK}): "
                    "wait for it to finish or choose another --out"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd = fd
                return
            os.close(fd)
        raise ResultsError(f"cannot lock {path}: it keeps being replaced")  # pragma: no cover

    def _check(self, force: bool) -> bool:
        """Refuse what must not be replaced; whether the folder holds a run's results."""
        names = {p.name for p in self.out.iterdir()}
        if MANIFEST in names or any(CHUNK_RE.fullmatch(n) for n in names):
            raise ResultsError(
                f"{self.out} holds sweep results ({MANIFEST} or sweep chunks); "
                "pdsim run --out would replace their summary.json: choose another --out"
            )
        old = SUMMARY in names or any(RUN_CHUNK_RE.fullmatch(n) for n in names)
        if old and not force:
            raise ResultsError(
                f"{self.out} already holds results of a pdsim run: pass --force to replace them "
                "(once the new run is complete), or choose another --out"
            )
        return old

    @property
    def write_dir(self) -> Path:
        """Where the run writes its chunks and summary: the staging folder or the folder."""
        return self.staging if self.staging is not None else self.out

    def commit(self) -> None:
        """Put a finished run's results in place of the old ones (a no-op without staging).

        The old summary goes first and the new one comes last, so a folder caught between
        never looks complete.
        """
        if self.staging is None:
            return
        staging = self.staging
        new = sorted(p.name for p in staging.iterdir() if RUN_CHUNK_RE.fullmatch(p.name))
        (self.out / SUMMARY).unlink(missing_ok=True)
        for old in self.out.iterdir():
            if RUN_CHUNK_RE.fullmatch(old.name):
                old.unlink()
        for name in new:
            os.replace(staging / name, self.out / name)
        if (staging / SUMMARY).exists():
            os.replace(staging / SUMMARY, self.out / SUMMARY)
        self.staging = None
        shutil.rmtree(staging, ignore_errors=True)

    def close(self) -> None:
        """Drop an uncommitted staging folder and release the lock (safe to call twice)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            try:
                (self.out / LOCK).unlink(missing_ok=True)  # still ours: we hold the lock
            except OSError:
                pass
            os.close(fd)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_schema() -> pa.Schema:
    """Parquet schema of run records: the run record's fields, typed from its annotations.

    Explicit types keep every chunk's schema the same even when a chunk has only nulls
    in a column (``detection_time_s`` when nothing was rolled back).
    """
    hints = typing.get_type_hints(RunRecord)
    base = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}
    fields = []
    for name in COLUMNS:
        args = [a for a in typing.get_args(hints[name]) if a is not type(None)] or [hints[name]]
        fields.append(pa.field(name, base.get(args[0], pa.string()) if len(args) == 1 else pa.string()))
    return pa.schema(fields)


_RECORDS = record_schema()
#: The record fields that may hold no value at all in a chunk (``RunRecord`` fields typed
#: ``X | None`` with a default: the business outcomes).
_NULLABLE = frozenset(BUSINESS_COLUMNS)
#: A sweep chunk's schema: the cell index, then the run record's fields.
_SCHEMA = pa.schema([pa.field("cell", pa.int32()), *_RECORDS])


def records_table(records: Sequence[RunRecord], *, cell: int | None = None) -> pa.Table:
    """The table of a chunk of records (column by column: no per-row dicts).

    Args:
        records: the chunk's run records, in run order.
        cell: the sweep cell they belong to; None (``pdsim run --out``) leaves out the
            ``cell`` column.
    """
    cols: dict[str, list[Any]] = {} if cell is None else {"cell": [cell] * len(records)}
    for name in COLUMNS:
        cols[name] = [getattr(r, name) for r in records]
    return pa.Table.from_pydict(cols, schema=_RECORDS if cell is None else _SCHEMA)


def run_chunk_name(index: int) -> str:
    """File name of the ``index``-th chunk of ``pdsim run --out`` (matches :data:`RUN_CHUNK_RE`)."""
    return f"records-{index:05d}.parquet"


def write_chunk(out: Path, name: str, table: pa.Table) -> Path:
    """Store one finished chunk under its final name, atomically."""
    import pyarrow.parquet as pq

    path = out / name
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return path


def write_json(path: Path, data: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, allow_nan=False)
            fh.write("\n")

    atomic_write(path, write)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name, distribution in _PACKAGES.items():
        try:
            out[name] = version(distribution)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def finished_chunks(out: Path) -> set[str]:
    """Names of the chunk files in ``out`` (each one whole: they appear by rename)."""
    return {p.name for p in out.iterdir() if CHUNK_RE.fullmatch(p.name)} if out.is_dir() else set()


def remove_temporaries(out: Path) -> int:
    """Delete the temporary files a killed sweep left behind; returns how many."""
    n = 0
    for p in out.iterdir():
        if _TMP_RE.fullmatch(p.name):
            p.unlink(missing_ok=True)
            n += 1
    return n


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a results folder, checked: every key the readers and ``--resume`` use
    is there with the type they expect.

    Raises:
        InputError: when the folder holds no readable, complete manifest.json (naming the
            file and the key), or manifest.json is not a regular file or is over
            ``MAX_RESULTS_JSON_BYTES``.
    """
    path = Path(out) / MANIFEST
    where = os.fspath(path)
    if not os.path.lexists(path):
        raise InputError(os.fspath(out), 1, None, f"holds no sweep results ({MANIFEST} is missing)")
    raw = read_bytes(path, what=MANIFEST, limit=MAX_RESULTS_JSON_BYTES)  # a FIFO or /dev/zero: refused
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise InputError(where, 1, None, f"cannot read: {one_line(str(err))}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(where, 1, "format", f"not a pdsim sweep manifest of format {FORMAT}")
    _check_manifest(data, where)
    return data


def _manifest_error(where: str, field: str, message: str, got: object = NOT_GIVEN) -> InputError:
    return InputError(where, 1, field, f"{message} (a damaged {MANIFEST}? start the sweep again in another --out)", got)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_manifest(data: dict[str, Any], where: str) -> None:
    """Refuse a manifest that lacks what :func:`load_results` and ``--resume`` read."""
    for key in ("seed", "runs", "chunk_size"):
        if not _is_int(data.get(key)) or data[key] < 0:
            raise _manifest_error(where, key, "must be a non-negative integer", data.get(key))
    sweep = data.get("sweep")
    if not isinstance(sweep, dict) or not isinstance(sweep.get("sha256"), str):
        raise _manifest_error(where, "sweep.sha256", "missing", sweep)
    if not isinstance(data.get("inputs"), dict):
        raise _manifest_error(where, "inputs", "must be a mapping of file to SHA-256", data.get("inputs"))
    params = data.get("params")
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params) or len(set(params)) < len(params):
        raise _manifest_error(where, "params", "must be a list of distinct parameter paths", params)
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise _manifest_error(where, "cells", "must be a list of cells", cells)
    seen: set[int] = set()
    for i, cell in enumerate(cells):
        at = f"cells[{i}]"
        if not isinstance(cell, dict):
            raise _manifest_error(where, at, "must be a mapping", cell)
        index = cell.get("cell")
        if not _is_int(index) or index < 0:
            raise _manifest_error(where, f"{at}.cell", "must be a non-negative integer", index)
        if index in seen:
            raise _manifest_error(where, f"{at}.cell", "listed twice", index)
        seen.add(index)
        if not _is_int(cell.get("world")) or cell["world"] < 0:
            raise _manifest_error(where, f"{at}.world", "must be a non-negative integer", cell.get("world"))
        if not (cell.get("kind") is None or isinstance(cell["kind"], str)):
            raise _manifest_error(where, f"{at}.kind", "must be a name or null", cell["kind"])
        if not (cell.get("stratum") is None or _is_int(cell["stratum"])):
            raise _manifest_error(where, f"{at}.stratum", "must be an integer or null", cell["stratum"])
        weight = cell.get("weight")
        if not (
            weight is None
            or (isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight))
        ):
            raise _manifest_error(where, f"{at}.weight", "must be a finite number or null", weight)
        values = cell.get("params")
        # A cell sets only the parameters that apply to it (a portfolio kind without a
        # severity has none for it: its column is empty there), never one params lacks.
        if not isinstance(values, dict) or not set(values) <= set(params):
            raise _manifest_error(where, f"{at}.params", "must be a mapping of some of params to values", values)


def resume_mismatch(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why results made under manifest ``old`` cannot be continued under ``new`` (None: they can)."""
    if old["sweep"]["sha256"] != new["sweep"]["sha256"]:
        return f"the sweep file {new['sweep']['file']} changed since these results were started"
    changed = [f for f, h in new["inputs"].items() if old["inputs"].get(f) != h]
    changed += [f for f in old["inputs"] if f not in new["inputs"]]
    if changed:
        return f"{changed[0]} changed since these results were started"
    for key in ("seed", "runs", "chunk_size"):
        if old[key] != new[key]:
            return f"{key} is {new[key]} now but {old[key]} in these results"
    if old["cells"] != new["cells"]:
        return "the sweep's cells differ from these results'"
    return None


def _cells_frame(manifest: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for c in manifest["cells"]:
        row = {k: c.get(k) for k in ("cell", "world", "kind", "stratum", "weight")}
        row.update(c["params"])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["cell", "world", "kind", "stratum", "weight", *manifest["params"]])
    frame["cell"] = frame["cell"].astype("int32")
    frame["stratum"] = frame["stratum"].astype("Int64")
    return frame


def _chunk_error(where: str, field: str | None, message: str) -> InputError:
    # A chunk is written whole or not at all, so a damaged one was changed afterwards:
    # --resume reruns exactly the chunks without a file.
    return InputError(where, 1, field, f"{message}: delete it and finish the sweep with pdsim sweep --resume")


def _same_type(got: pa.DataType, expected: pa.DataType, name: str = "") -> bool:
    """Whether a chunk's column type holds what the chunk schema's does (a chunk saved again
    by pandas stores its text as ``large_string``, and a column with no value, such as the
    business outcomes of a scenario without ``business:``, as ``null``)."""
    text = (pa.types.is_string, pa.types.is_large_string)
    return (
        got == expected
        or (any(t(got) for t in text) and any(t(expected) for t in text))
        or (pa.types.is_null(got) and name in _NULLABLE)
    )


def _read_chunk(path: Path, cell: int, columns: list[str] | None) -> pa.Table:
    """One sweep chunk, checked to be one: readable, of the chunk schema, holding its own cell."""
    where = os.fspath(path)
    # Opened once as a regular file: a FIFO named like a chunk would block the reader, a
    # device would never end.
    with open_regular(path, what="results chunk") as fh:
        return _checked_chunk(fh, where, cell, columns)


def _checked_chunk(fh: Any, where: str, cell: int, columns: list[str] | None) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(fh)
    except (OSError, ValueError) as err:  # pyarrow's errors subclass these
        raise _chunk_error(where, None, f"not a readable Parquet file ({one_line(str(err))})") from None
    for field in _SCHEMA:
        if field.name not in schema.names:
            if field.name in _NULLABLE:
                continue  # a chunk written before the business outcomes (issue 19): null
            raise _chunk_error(where, field.name, "no such column, not a pdsim sweep chunk")
        if not _same_type(schema.field(field.name).type, field.type, field.name):
            raise _chunk_error(
                where, field.name, f"is {schema.field(field.name).type}, a pdsim sweep chunk stores {field.type}"
            )
    extra = [n for n in schema.names if n not in _SCHEMA.names]
    if extra:
        raise _chunk_error(where, extra[0], "a column pdsim sweep chunks do not have")
    try:
        fh.seek(0)
        present = None if columns is None else [c for c in columns if c in schema.names]
        table = pq.read_table(fh, columns=present)
    except (OSError, ValueError) as err:
        raise _chunk_error(where, None, f"cannot read ({one_line(str(err))})") from None
    table = table.cast(pa.schema([_SCHEMA.field(n) for n in table.column_names]))
    wanted = _SCHEMA.names if columns is None else columns
    for name in [n for n in wanted if n in _NULLABLE and n not in table.column_names]:
        table = table.append_column(_SCHEMA.field(name), pa.nulls(table.num_rows, _SCHEMA.field(name).type))
    if table.column_names != [n for n in _SCHEMA.names if n in table.column_names]:
        table = table.select([n for n in _SCHEMA.names if n in table.column_names])
    import pyarrow.compute as pc  # lazy: only reading a results folder needs it, not `pdsim run`

    cells = table["cell"]
    if table.num_rows and (cells.null_count or pc.min_max(cells).as_py() != {"min": cell, "max": cell}):
        raise _chunk_error(where, "cell", f"holds runs of other cells than its name's, {cell}")
    return table


def _read_cells(
    out: Path, manifest: dict[str, Any], files: Sequence[str], columns: Sequence[str] | None
) -> pd.DataFrame:
    """The chunks ``files`` of a sweep folder as one checked, sorted frame (before the cells' columns join)."""
    listed = {c["cell"] for c in manifest["cells"]}
    numbered = []
    for name in files:
        m = CHUNK_RE.fullmatch(name)
        assert m is not None  # finished_chunks lists only such names
        if int(m.group(1)) not in listed:
            raise InputError(
                os.fspath(out / MANIFEST),
                1,
                "cells",
                f"has no cell {int(m.group(1))}, yet {name} holds its runs (a {MANIFEST} cut short?)",
            )
        numbered.append((name, int(m.group(1))))
    want = None if columns is None else ["cell", *[c for c in columns if c != "cell" and c in _SCHEMA.names]]
    tables = [_read_chunk(out / name, cell, want) for name, cell in numbered]
    schema = _SCHEMA if want is None else pa.schema([_SCHEMA.field(c) for c in want])
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    frame = table.to_pandas(strings_to_categorical=True)
    origin = RecordOrigin.of([(os.fspath(out / name), t.num_rows) for (name, _), t in zip(numbered, tables)])
    frame = check_records(frame, origin)
    return frame.sort_values(["cell", "run"] if "run" in frame else ["cell"], kind="stable", ignore_index=True)


def load_results(out: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A sweep's results as a tidy frame: one row per run, sorted by cell and run.

    Columns: ``cell``, the run record's (docs/architecture.md section 5 and pdsim's extensions),
    then ``world``, ``kind``, ``stratum``, ``weight`` (portfolio) and one column per
    swept parameter, named by its path (``policy.flagger.analysis.threshold``). Text
    columns are categoricals: a million rows take tens of megabytes, not gigabytes.

    Args:
        out: the results folder of ``pdsim sweep --out``.
        columns: record columns to read (default: all); ``cell`` and the cell columns
            (world, kind, stratum, weight, swept parameters) are always there.

    Raises:
        InputError: when the folder holds no sweep results, or damaged ones (a manifest
            without its cells, a truncated or foreign chunk, a record out of its contract):
            the message names the file and the key or column.
    """
    out = Path(out)
    manifest = read_manifest(out)
    frame = _read_cells(out, manifest, sorted(finished_chunks(out)), columns)
    return frame.merge(_cells_frame(manifest), on="cell", how="left", validate="many_to_one")


def iter_cells(out: str | os.PathLike[str], columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """The results of one cell at a time (the frame of :func:`load_results` cut by cell),
    reading only that cell's chunk files: memory is bounded by the largest cell.

    Raises:
        InputError: as :func:`load_results`, for the cell being read.
    """
    out = Path(out)
    manifest = read_manifest(out)
    cells = _cells_frame(manifest)
    by_cell: dict[int, list[str]] = {}
    for name in sorted(finished_chunks(out)):
        m = CHUNK_RE.fullmatch(name)
        assert m is not None
        by_cell.setdefault(int(m.group(1)), []).append(name)
    for cell, files in sorted(by_cell.items()):
        frame = _read_cells(out, manifest, files, columns)
        yield frame.merge(cells[cells["cell"] == cell], on="cell", how="left", validate="many_to_one")


# --- checking stored records: one check for run folders, sweep folders and records files ------

#: Record columns by what their values must be (docs/architecture.md section 5; what
#: tests/test_properties.py checks of every simulated record).
_NAMES = ("scenario", "policy")
_FLAGS = ("release_bad", "false_rollback", "missed")
_COUNTS = (
    "canary_requests",
    "canary_errors",
    "excess_errors",
    "users_exposed",
    "users_affected",
    "excess_errors_after_promotion",
)
#: How a flag reads in a CSV column that pandas could not read as booleans.
_FLAG_TEXT = {"True": True, "False": False, "true": True, "false": False}
#: Times that are null when there is nothing to time (``decision_time_s`` only while unfinished).
_TIMES = ("decision_time_s", "detection_time_s", "fault_onset_s")
#: Integer columns and their largest value: runs are numbered below the most one command
#: simulates; seeds are unsigned 64-bit.
_INTEGERS = {"run": MAX_RUNS - 1, "seed": MAX_SEED, "ticks": 2**63 - 1}


@dataclass(frozen=True)
class RecordOrigin:
    """Where the rows of a frame of run records were read from, for messages with file and line.

    Attributes:
        files: the files, in the order their rows were concatenated.
        ends: the running total of rows after each file.
        csv: the rows are the lines of one CSV file after its header (else each file is line 1).
    """

    files: tuple[str, ...]
    ends: tuple[int, ...]
    csv: bool = False

    @classmethod
    def of(cls, parts: Sequence[tuple[str, int]], *, csv: bool = False) -> RecordOrigin:
        """From ``(file, rows)`` pairs in concatenation order."""
        return cls(tuple(f for f, _ in parts), tuple(np.cumsum([n for _, n in parts], dtype=int).tolist()), csv)

    def locate(self, row: int) -> tuple[str, int]:
        """The file and line of the ``row``-th row (0-based position)."""
        i = min(bisect.bisect_right(self.ends, row), len(self.files) - 1)
        start = self.ends[i - 1] if i else 0
        return self.files[i], (row - start + 2 if self.csv else 1)


def _first(bad: Any) -> int | None:
    hits = np.flatnonzero(np.asarray(bad, dtype=bool))
    return int(hits[0]) if len(hits) else None


def _refuse(frame: pd.DataFrame, origin: RecordOrigin, column: str, bad: Any, message: str) -> None:
    row = _first(bad)
    if row is not None:
        file, line = origin.locate(row)
        got = frame[column].iloc[row]
        raise InputError(file, line, column, message, got=got.item() if isinstance(got, np.generic) else got)


def _numbers(frame: pd.DataFrame, origin: RecordOrigin, column: str) -> np.ndarray:
    """A column as float64 (null as NaN), refusing text and booleans where numbers belong."""
    import pandas as pd

    col = frame[column]
    if pd.api.types.is_bool_dtype(col.dtype):
        _refuse(frame, origin, column, np.ones(len(col), dtype=bool), "must be a number")
    if isinstance(col.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(col.dtype):
        values = pd.to_numeric(col.astype(object), errors="coerce")
        text = col.notna().to_numpy() & values.isna().to_numpy()
        text |= np.array([isinstance(v, bool) for v in col.astype(object)], dtype=bool)
        _refuse(frame, origin, column, text, "must be a number")
        col = values
    return col.to_numpy(dtype=float, na_value=np.nan)


def check_records(frame: pd.DataFrame, origin: RecordOrigin) -> pd.DataFrame:
    """Refuse run records out of their contract (docs/architecture.md section 5), column by column.

    Only the columns present are checked (a reader may ask for a few). Names are present;
    ``outcome`` is one of :data:`sim.outcomes.OUTCOMES`; flags are true or false; counts are
    finite and non-negative; times are finite and non-negative or null (``decision_time_s``
    null only for an unfinished run); ``run``, ``seed`` and ``ticks`` are non-negative
    integers; and no run is stored twice (same run number, scenario, policy and any
    non-record column such as a sweep's ``cell`` or a parameter).

    Args:
        frame: the records, rows in the order ``origin`` describes.
        origin: where each row was read from.

    Returns:
        ``frame``, with flags as ``bool`` and integers as ``int64`` when they were read as
        text or floats (a CSV file); otherwise unchanged.

    Raises:
        InputError: naming the file, line (the row of a CSV file, else 1) and column of the
            first bad value.
    """
    import pandas as pd

    fixed: dict[str, Any] = {}
    for column in _NAMES:
        if column in frame:
            _refuse(frame, origin, column, frame[column].isna(), "missing")
    if "outcome" in frame:
        outcome = frame["outcome"]
        _refuse(frame, origin, "outcome", ~outcome.isin(OUTCOMES), f"must be one of {', '.join(OUTCOMES)}")
    for column in _FLAGS:
        if column in frame and not pd.api.types.is_bool_dtype(frame[column].dtype):
            # One bad value makes a CSV column text: its good values read "True" and "False".
            values = frame[column].astype(object).map(lambda v: _FLAG_TEXT.get(v, v) if isinstance(v, str) else v)
            _refuse(
                frame,
                origin,
                column,
                [not isinstance(v, (bool, np.bool_)) for v in values],
                "must be true or false",
            )
            fixed[column] = values.astype(bool)
    for column in _COUNTS:
        if column in frame:
            x = _numbers(frame, origin, column)
            _refuse(frame, origin, column, ~(np.isfinite(x) & (x >= 0)), "must be a finite count, 0 or more")
    for column in _TIMES:
        if column in frame:
            x = _numbers(frame, origin, column)
            _refuse(
                frame, origin, column, ~np.isnan(x) & ~(np.isfinite(x) & (x >= 0)), "must be a finite time, 0 or more"
            )
            if column == "decision_time_s" and "outcome" in frame:
                undecided = np.isnan(x) & (frame["outcome"] != UNFINISHED).to_numpy()
                _refuse(frame, origin, column, undecided, "missing for a promoted or rolled-back run")
    for column, top in _INTEGERS.items():
        if column in frame:
            x = _numbers(frame, origin, column)
            whole = np.isfinite(x) & (x >= 0) & (x <= top)
            whole[whole] = x[whole] == np.floor(x[whole])
            _refuse(frame, origin, column, ~whole, f"must be an integer from 0 to {top}")
            if not pd.api.types.is_integer_dtype(frame[column].dtype):
                fixed[column] = x.astype(np.int64) if top < 2**53 else frame[column].astype(object).map(int)
    if fixed:
        frame = frame.assign(**fixed)
    _refuse_repeated_runs(frame, origin)
    return frame


def _refuse_repeated_runs(frame: pd.DataFrame, origin: RecordOrigin) -> None:
    """No run stored twice: results of two runs mixed would be pooled as one."""
    import pandas as pd

    if "run" not in frame:
        return
    if not frame["run"].duplicated().any():  # one group of runs: no key needed
        return
    key = [c for c in frame.columns if c not in COLUMNS] + [c for c in ("scenario", "policy", "run") if c in frame]
    # Text keys as integer codes: hashing many chunks of Arrow strings directly is ten times slower.
    codes = pd.DataFrame(
        {
            c: frame[c].to_numpy()
            if pd.api.types.is_numeric_dtype(frame[c].dtype)
            else pd.factorize(frame[c].to_numpy(dtype=object))[0]
            for c in key
        }
    )
    row = _first(codes.duplicated())
    if row is None:
        return
    groups = codes.groupby(key, sort=False, dropna=False).ngroup().to_numpy()
    first = int(np.flatnonzero(groups == groups[row])[0])
    file, line = origin.locate(row)
    where = ", ".join(f"{c} {frame[c].iloc[row]}" for c in key if c != "run")
    first_file, first_line = origin.locate(first)
    raise InputError(
        file,
        line,
        "run",
        f"run {frame['run'].iloc[row]} ({where}) is stored twice, first at {first_file}:{first_line}: "
        "results of two runs mixed? report them apart",
    )


__all__ = [
    "MANIFEST",
    "RecordOrigin",
    "check_records",
    "iter_cells",
    "ResultsError",
    "WriteFailed",
    "RunFolder",
    "LOCK",
    "STAGING_PREFIX",
    "SUMMARY",
    "finished_chunks",
    "load_results",
    "package_versions",
    "read_manifest",
    "record_schema",
    "records_table",
    "RUN_CHUNK_RE",
    "run_chunk_name",
    "remove_temporaries",
    "resume_mismatch",
    "write_chunk",
    "write_json",
]
