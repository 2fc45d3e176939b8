"""Damaged or foreign results given to ``pdsim report`` and ``sim.load_results`` (issue 13,
item 6 and the "exit 3 instead of exit 2" list): every record column is checked against the
run record's contract (docs/architecture.md section 5), a sweep's manifest against what its
readers use, and a chunk against the chunk schema. Each damage is one line
``FILE:LINE: FIELD: message`` and exit 2, LINE being a CSV file's row and 1 for a Parquet or
JSON file; never a traceback, never a silent wrong page."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sim
from sim.errors import InputError
from sim.report.results import read_results
from tests.helpers import REPO, TINY_SWEEP, invoke, write

SPIKE = REPO / "scenarios" / "error-spike.yaml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete ``pdsim run --out`` folder: 6 runs in 2 chunks."""
    out = tmp_path_factory.mktemp("run") / "out"
    result = invoke("run", SPIKE, "--runs", 6, "--out", out, "--chunk-size", 3)
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete ``pdsim sweep --out`` folder: 2 cells of 4 runs, 2 chunks each."""
    tmp = tmp_path_factory.mktemp("sweep")
    result = invoke("sweep", write(tmp, "sweep.yaml", TINY_SWEEP), "--out", tmp / "out", "--quiet")
    assert result.exit_code == 0, result.stderr
    return tmp / "out"


@pytest.fixture
def records(runs: Path) -> pd.DataFrame:
    return read_results(runs)


def refused(path: Path, tmp_path: Path, where: str, field: str | None, needle: str) -> str:
    """``pdsim report path`` exits 2 with one line ``where: field: ...needle...`` and writes no page."""
    html = tmp_path / "page.html"
    result = invoke("report", path, "--html", html)
    assert "Traceback" not in result.output + result.stderr
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    head = f"{where}: {field}: " if field else f"{where}: "
    assert lines[0].startswith(head) and needle in lines[0], lines[0]
    assert not html.exists()
    return lines[0]


def with_value(frame: pd.DataFrame, column: str, row: int, value: Any) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(object)
    out.loc[row, column] = value
    return out


# --- records files: every column in its domain ------------------------------------------------


@pytest.mark.parametrize(
    "column,row,value,needle",
    [
        ("release_bad", 3, "no", "must be true or false (got no)"),
        ("missed", 1, 1, "must be true or false (got 1)"),
        ("outcome", 2, "exploded", "must be one of promoted, rolled_back, unfinished (got exploded)"),
        ("decision_time_s", 4, "soon", "must be a number (got soon)"),
        ("excess_errors", 0, -5.0, "must be a finite count, 0 or more (got -5.0)"),
        ("canary_requests", 5, "inf", "must be a finite count, 0 or more (got inf)"),
        ("run", 1, -1, "must be an integer from 0 to"),
        ("run", 2, 1.5, "must be an integer from 0 to"),
        ("seed", 0, "x", "must be a number (got x)"),
        ("scenario", 5, None, "missing"),
    ],
)
def test_bad_value_in_a_csv_names_its_line_and_column(records, tmp_path, column, row, value, needle):
    path = tmp_path / "runs.csv"
    with_value(records, column, row, value).to_csv(path, index=False)
    refused(path, tmp_path, f"{path}:{row + 2}", column, needle)  # line 1 is the header
    with pytest.raises(InputError) as info:
        read_results(path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), row + 2, column)


@pytest.mark.parametrize(
    "column,value,needle",
    [
        ("release_bad", "no", "must be true or false"),
        ("outcome", "exploded", "must be one of promoted, rolled_back, unfinished"),
        ("decision_time_s", "soon", "must be a number"),
        ("users_affected", np.nan, "must be a finite count"),
        ("detection_time_s", -np.inf, "must be a finite time"),
    ],
)
def test_bad_value_in_a_parquet_file_names_its_column(records, tmp_path, column, value, needle):
    path = tmp_path / "runs.parquet"
    frame = with_value(records, column, 2, value)
    if isinstance(value, str):
        frame[column] = frame[column].astype(str)  # a whole column of text, as a foreign tool writes it
    frame.to_parquet(path)
    refused(path, tmp_path, f"{path}:1", column, needle)


def test_a_decided_run_needs_its_decision_time(records, tmp_path):
    decided = int(np.flatnonzero((records["outcome"] != "unfinished").to_numpy())[0])
    path = tmp_path / "runs.csv"
    with_value(records, "decision_time_s", decided, None).to_csv(path, index=False)
    refused(path, tmp_path, f"{path}:{decided + 2}", "decision_time_s", "missing for a promoted or rolled-back run")


def test_an_unfinished_run_has_no_decision_time(records, tmp_path):
    """Null times where the contract says so are not damage: a CSV of them reads back."""
    frame = records.copy()
    frame.loc[0, ["outcome", "decision_time_s", "detection_time_s"]] = ["unfinished", None, None]
    frame.loc[0, ["false_rollback", "missed"]] = [False, False]
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    back = read_results(path)
    assert len(back) == len(frame) and back["release_bad"].dtype == bool and back["run"].dtype == np.int64


def test_a_run_stored_twice_is_refused(records, tmp_path):
    path = tmp_path / "runs.csv"
    pd.concat([records, records.iloc[[2]]], ignore_index=True).to_csv(path, index=False)
    line = refused(path, tmp_path, f"{path}:{len(records) + 2}", "run", "run 2 (scenario error-spike")
    assert f"first at {path}:4" in line and "results of two runs mixed?" in line


def test_runs_mixed_in_a_run_folder_name_both_chunks(runs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(runs, out)
    shutil.copy(out / "records-00000.parquet", out / "records-00002.parquet")
    line = refused(out, tmp_path, f"{out / 'records-00002.parquet'}:1", "run", "is stored twice")
    assert f"first at {out / 'records-00000.parquet'}:1" in line


def test_a_foreign_parquet_file_in_a_run_folder(runs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(runs, out)
    pd.DataFrame({"a": [1]}).to_parquet(out / "records-00001.parquet")
    refused(out, tmp_path, f"{out / 'records-00001.parquet'}:1", None, "not run records: no column 'scenario'")


def test_a_truncated_chunk_in_a_run_folder(runs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(runs, out)
    chunk = out / "records-00001.parquet"
    chunk.write_bytes(chunk.read_bytes()[:200])
    refused(out, tmp_path, f"{chunk}:1", None, "cannot read results")


# --- sweep folders: the manifest and the chunks -----------------------------------------------


def _manifest(edit: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    def damage(out: Path) -> None:
        data = json.loads((out / "manifest.json").read_text())
        edit(data)
        (out / "manifest.json").write_text(json.dumps(data))

    return damage


def _truncate(out: Path) -> None:
    chunk = out / "records-c00001-00001.parquet"
    chunk.write_bytes(chunk.read_bytes()[:300])


def _foreign(out: Path) -> None:
    pd.DataFrame({"a": [1]}).to_parquet(out / "records-c00001-00001.parquet")


def _retyped(out: Path) -> None:
    chunk = out / "records-c00001-00001.parquet"
    frame = pd.read_parquet(chunk)
    frame["release_bad"] = frame["release_bad"].map({True: "yes", False: "no"})
    frame.to_parquet(chunk)


def _other_cell(out: Path) -> None:
    shutil.copy(out / "records-c00000-00000.parquet", out / "records-c00001-00001.parquet")


def _bad_outcome(out: Path) -> None:
    chunk = out / "records-c00001-00000.parquet"
    frame = pd.read_parquet(chunk)
    frame["outcome"] = "exploded"
    frame.astype({"cell": "int32"}).to_parquet(chunk)


SWEEP_DAMAGE = {
    "manifest without cells": (_manifest(lambda m: m.pop("cells")), "manifest.json", "cells", "must be a list"),
    "manifest without params": (_manifest(lambda m: m.pop("params")), "manifest.json", "params", "must be a list"),
    "cells listed twice": (
        _manifest(lambda m: m["cells"].insert(1, m["cells"][0])),
        "manifest.json",
        "cells[1].cell",
        "listed twice",
    ),
    "too few cells": (
        _manifest(lambda m: m["cells"].pop()),
        "manifest.json",
        "cells",
        "has no cell 1, yet records-c00001-00000.parquet holds its runs",
    ),
    "a cell with a parameter params lacks": (
        _manifest(lambda m: m["cells"][1]["params"].update({"traffic.users": 5})),
        "manifest.json",
        "cells[1].params",
        "must be a mapping of some of params to values",
    ),
    "not json": (lambda out: (out / "manifest.json").write_text("{"), "manifest.json", None, "cannot read"),
    "truncated chunk": (_truncate, "records-c00001-00001.parquet", None, "not a readable Parquet file"),
    "foreign chunk": (_foreign, "records-c00001-00001.parquet", "cell", "no such column, not a pdsim sweep chunk"),
    "retyped column": (
        _retyped,
        "records-c00001-00001.parquet",
        "release_bad",
        "a pdsim sweep chunk stores bool",
    ),
    "chunk of another cell": (_other_cell, "records-c00001-00001.parquet", "cell", "holds runs of other cells"),
    "unknown outcome": (_bad_outcome, "records-c00001-00000.parquet", "outcome", "must be one of promoted"),
}


@pytest.mark.parametrize("case", SWEEP_DAMAGE)
def test_damaged_sweep_folder(sweep, tmp_path, case):
    damage, file, field, needle = SWEEP_DAMAGE[case]
    out = tmp_path / "out"
    shutil.copytree(sweep, out)
    damage(out)
    refused(out, tmp_path, f"{out / file}:1", field, needle)
    # The public API raises the same error, not pyarrow's or pandas'.
    with pytest.raises(InputError) as info:
        sim.load_results(out)
    assert (info.value.file, info.value.line, info.value.field) == (str(out / file), 1, field)


def test_load_results_of_a_folder_without_a_sweep(tmp_path):
    with pytest.raises(InputError, match="holds no sweep results"):
        sim.load_results(tmp_path)


def test_damaged_chunk_says_how_to_recover(sweep, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(sweep, out)
    _truncate(out)
    line = refused(out, tmp_path, f"{out / 'records-c00001-00001.parquet'}:1", None, "not a readable Parquet file")
    assert line.endswith("delete it and finish the sweep with pdsim sweep --resume")


def test_resume_into_a_damaged_manifest_is_bad_input(sweep, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(sweep, out)
    _manifest(lambda m: m.pop("cells"))(out)
    spec = write(tmp_path, "sweep.yaml", TINY_SWEEP)
    result = invoke("sweep", spec, "--out", out, "--resume", "--quiet")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"{out / 'manifest.json'}:1: cells: must be a list of cells (a damaged manifest.json? start the sweep "
        "again in another --out) (got None)"
    ]


def test_intact_sweep_folder_reads_as_before(sweep):
    frame = sim.load_results(sweep)
    assert len(frame) == 8 and frame["kind"].isna().all() and set(frame["cell"]) == {0, 1}
    assert read_results(sweep)["run"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]


def test_the_bundled_sweep_reads_back(tmp_path: Path) -> None:
    """``sweeps/flagger-thresholds.yaml`` end to end: its portfolio gives some cells a severity
    parameter and not others, and the check of what is read back takes that as it is (the
    manifest check once refused it after the sweep had run)."""
    out = tmp_path / "out"
    result = invoke("sweep", REPO / "sweeps" / "flagger-thresholds.yaml", "--runs", 2, "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    frame = sim.load_results(out)
    severity = frame["release.faults[0].rate"]
    assert severity.notna().any() and severity.isna().any()
    assert set(frame.loc[severity.notna(), "kind"]) == {"error-spike"}
    page = tmp_path / "page.html"
    assert invoke("report", out, "--html", page).exit_code == 0 and page.stat().st_size > 0


def test_a_sweep_folder_written_before_the_business_outcomes_still_loads(sweep, tmp_path):
    """Chunks without the business columns (issue 19 added them) read as null there."""
    import pyarrow.parquet as pq

    from sim.outcomes import BUSINESS_COLUMNS

    out = tmp_path / "out"
    shutil.copytree(sweep, out)
    for chunk in out.glob("records-*.parquet"):
        pq.write_table(pq.read_table(chunk).drop_columns(BUSINESS_COLUMNS), chunk)
    frame = sim.load_results(out)
    assert len(frame) and all(frame[c].isna().all() for c in BUSINESS_COLUMNS)
    html = tmp_path / "page.html"
    assert invoke("report", out, "--html", html).exit_code == 0
    assert html.exists()
