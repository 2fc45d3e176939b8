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

import fcntl
import json
import os
import platform
import re
import shutil
import tempfile
import typing
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim import DISTRIBUTION
from sim.inputs.files import open_regular, read_bytes
from sim.limits import MAX_RESULTS_JSON_BYTES
from sim.outcomes import COLUMNS, RunRecord
from sim.runs.atomic import atomic_write

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
            # Under the lock, a staging folder is a dead --force run's: drop it.
            for stale in self.out.glob(STAGING_PREFIX + "*"):
                shutil.rmtree(stale, ignore_errors=True)
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
    """The manifest of a results folder.

    Raises:
        ResultsError: when the folder holds no readable manifest.json.
        InputError: when manifest.json is not a regular file or is over
            ``MAX_RESULTS_JSON_BYTES``.
    """
    path = Path(out) / MANIFEST
    if not os.path.lexists(path):
        raise ResultsError(f"{out} holds no sweep results ({MANIFEST} is missing)")
    raw = read_bytes(path, what=MANIFEST, limit=MAX_RESULTS_JSON_BYTES)  # a FIFO or /dev/zero: refused
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise ResultsError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ResultsError(f"{path} is not a pdsim sweep manifest of format {FORMAT}")
    return data


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
    rows = []
    for c in manifest["cells"]:
        row = {k: c[k] for k in ("cell", "world", "kind", "stratum", "weight")}
        row.update(c["params"])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["cell", "world", "kind", "stratum", "weight", *manifest["params"]])
    frame["cell"] = frame["cell"].astype("int32")
    frame["stratum"] = frame["stratum"].astype("Int64")
    return frame


def read_chunk(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """One chunk file's table (``columns``: all when None), refusing anything but a regular
    file: a FIFO named like a chunk would block the reader, a device would never end.

    Raises:
        InputError: ``FILE:1: not a regular file (a FIFO)`` and the like.
    """
    with open_regular(path, what="results chunk") as fh:
        return pq.read_table(fh, columns=columns)


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
        ResultsError: when the folder holds no sweep results.
    """
    out = Path(out)
    manifest = read_manifest(out)
    files = sorted(finished_chunks(out))
    want = None if columns is None else ["cell", *[c for c in columns if c != "cell" and c in _SCHEMA.names]]
    tables = [read_chunk(out / f, want) for f in files]
    schema = _SCHEMA if want is None else pa.schema([_SCHEMA.field(c) for c in want])
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    frame = table.to_pandas(strings_to_categorical=True)
    frame = frame.sort_values(["cell", "run"] if "run" in frame else ["cell"], kind="stable", ignore_index=True)
    cells = _cells_frame(manifest)
    return frame.merge(cells, on="cell", how="left", validate="many_to_one")


def iter_cells(out: str | os.PathLike[str], columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """The results of one cell at a time (the frame of :func:`load_results` cut by cell),
    reading only that cell's chunk files: memory is bounded by the largest cell."""
    out = Path(out)
    manifest = read_manifest(out)
    cells = _cells_frame(manifest)
    by_cell: dict[int, list[str]] = {}
    for name in sorted(finished_chunks(out)):
        m = CHUNK_RE.fullmatch(name)
        assert m is not None
        by_cell.setdefault(int(m.group(1)), []).append(name)
    want = None if columns is None else ["cell", *[c for c in columns if c != "cell" and c in _SCHEMA.names]]
    for cell, files in sorted(by_cell.items()):
        table = pa.concat_tables([read_chunk(out / f, want) for f in files])
        frame = table.to_pandas(strings_to_categorical=True)
        frame = frame.sort_values(["cell", "run"] if "run" in frame else ["cell"], kind="stable", ignore_index=True)
        yield frame.merge(cells[cells["cell"] == cell], on="cell", how="left", validate="many_to_one")


__all__ = [
    "MANIFEST",
    "iter_cells",
    "ResultsError",
    "RunFolder",
    "LOCK",
    "STAGING_PREFIX",
    "SUMMARY",
    "finished_chunks",
    "load_results",
    "package_versions",
    "read_chunk",
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
