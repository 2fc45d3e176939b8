"""Results folders of ``pdsim run --out DIR`` (issue 13): one writer at a time, no results
replaced unless ``--force`` and then only by a complete run, sweeps never overwritten,
``pdsim report`` saying when a folder looks interrupted, and a folder that cannot be written
(disk full, read-only; ``pdsim sweep --out`` too) reported in one line with what it keeps."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim import cli as cli_mod
from sim.report.results import incomplete_folders, read_results
from sim.runs import store
from sim.runs.store import LOCK, STAGING_PREFIX
from tests.helpers import REPO, TINY_SWEEP, invoke, parse_page, write

SPIKE = REPO / "scenarios" / "error-spike.yaml"


def _run(out: Path, *args: object):
    return invoke("run", SPIKE, "--out", out, "--chunk-size", 10, *args)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry of ``folder`` (dot-names included) with the SHA-256 of its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir" for p in sorted(folder.iterdir())
    }


def _stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def old(tmp_path: Path) -> Path:
    """A folder holding a complete run: 30 runs of seed 1 in 3 chunks."""
    out = tmp_path / "out"
    result = _run(out, "--runs", 30, "--seed", 1)
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(out)) == [f"records-0000{k}.parquet" for k in range(3)] + ["summary.json"]
    return out


# --- item 1: one writer at a time ----------------------------------------------------------------


def test_second_run_refused_while_the_first_writes(tmp_path: Path) -> None:
    """A real second process is refused while the first holds the lock; once the first is
    killed (SIGKILL: no cleanup at all), the kernel has released the lock."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "sim", "run", str(SPIKE), "--chunk-size", "5", "--out", str(out)]
    first = subprocess.Popen([*cmd, "--runs", "1000000"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (out / "records-00000.parquet").exists():  # written under the lock
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the first run wrote no chunk in 60 s"
            time.sleep(0.1)
        second = subprocess.run([*cmd, "--runs", "5"], env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert second.stderr.splitlines() == [
            f"pdsim: {out} is being written by another pdsim run (it holds {LOCK}): "
            "wait for it to finish or choose another --out"
        ]
        assert first.poll() is None  # the first one goes on, undisturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        if first.stderr:
            first.stderr.close()
    assert (out / LOCK).exists()  # left behind by the kill, but no longer locked
    result = _run(out, "--runs", 10, "--force")
    assert result.exit_code == 0, result.stderr
    # The killed run's chunk temporary, if it died mid-write, went with the new run.
    assert sorted(os.listdir(out)) == ["records-00000.parquet", "summary.json"]


def test_a_killed_writers_temporary_goes_with_the_next_run(old: Path) -> None:
    """A run killed mid-write (SIGKILL) leaves its chunk's temporary beside the results; the
    next run, holding the lock, knows no writer is alive and removes it (seen in CI after
    the SIGKILL above: the temporary outlived the --force run that replaced the results)."""
    stray = old / ".records-00003.parquet.4242.tmp"
    stray.write_bytes(b"half a chunk")
    keep = old / ".hidden-note"  # not a temporary of ours: left alone
    keep.write_text("mine")
    result = _run(old, "--runs", 10, "--force")
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(old)) == [".hidden-note", "records-00000.parquet", "summary.json"]


# --- item 2: results are replaced only with --force, and only by a complete run -------------------


def test_folder_with_results_refused_without_force(old: Path) -> None:
    before = _snapshot(old)
    result = _run(old, "--runs", 10, "--seed", 2)
    assert result.exit_code == 2
    assert _stderr_lines(result) == [
        f"pdsim: {old} already holds results of a pdsim run: pass --force to replace them "
        "(once the new run is complete), or choose another --out"
    ]
    assert _snapshot(old) == before


@pytest.mark.parametrize("keep", ["records-00001.parquet", "summary.json"])
def test_any_run_result_counts(old: Path, keep: str) -> None:
    """Chunks of an interrupted run, or a summary alone, are results too."""
    for p in old.iterdir():
        if p.name != keep:
            p.unlink()
    assert _run(old, "--runs", 10).exit_code == 2
    assert os.listdir(old) == [keep]


def test_force_replaces_the_old_results_once_complete(old: Path) -> None:
    (old / "notes.txt").write_text("mine")
    stale = old / f"{STAGING_PREFIX}dead"  # the staging folder of a killed --force run
    stale.mkdir()
    (stale / "records-00000.parquet").write_bytes(b"half")
    result = _run(old, "--runs", 20, "--seed", 2, "--force")
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(old)) == ["notes.txt", "records-00000.parquet", "records-00001.parquet", "summary.json"]
    frame = read_results(old)
    assert list(frame["run"]) == list(range(20))
    assert json.loads((old / "summary.json").read_text())["seed"] == 2
    assert "records-00000.parquet and summary.json" not in result.stdout
    assert result.stdout.splitlines()[-1] == f"results: 2 chunk file(s) and summary.json in {old}"


def test_interrupted_force_run_leaves_the_old_results(old: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(old)
    real_call = cli_mod.ChunkWriter.__call__
    written: list[Path] = []

    def interrupt_after_one(self, records):
        if len(self.files) == 1:
            written.extend(self.files)
            raise KeyboardInterrupt
        real_call(self, records)

    monkeypatch.setattr(cli_mod.ChunkWriter, "__call__", interrupt_after_one)
    result = _run(old, "--runs", 40, "--seed", 2, "--force")
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    # What the interrupt keeps is the earlier results, not the discarded staged chunk.
    assert (
        result.stderr.strip()
        == f"pdsim: interrupted; {old} keeps its earlier results (the new run's chunks were discarded)"
    )
    assert written and written[0].parent.name.startswith(STAGING_PREFIX)  # the new chunk was staged
    assert _snapshot(old) == before  # exactly the old results: no staging folder, no lock file
    assert json.loads((old / "summary.json").read_text())["seed"] == 1


@pytest.mark.parametrize("force", [False, True])
def test_sweep_folder_refused(tmp_path: Path, force: bool) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": 1}\n')
    (out / "summary.json").write_text('{"sweep": "mine"}\n')
    before = _snapshot(out)
    result = _run(out, "--runs", 5, *(["--force"] if force else []))
    assert result.exit_code == 2
    assert _stderr_lines(result) == [
        f"pdsim: {out} holds sweep results (manifest.json or sweep chunks); "
        "pdsim run --out would replace their summary.json: choose another --out"
    ]
    assert _snapshot(out) == before


def test_readers_skip_the_staging_folder(old: Path) -> None:
    staging = old / f"{STAGING_PREFIX}x"
    staging.mkdir()
    (staging / "records-00000.parquet").write_bytes((old / "records-00000.parquet").read_bytes())
    assert len(read_results(old)) == 30
    assert incomplete_folders(old) == []


def test_run_help_documents_force() -> None:
    text = " ".join(invoke("run", "--help").stdout.split())
    assert "--force" in text and "once the new run is complete" in text
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "[--out DIR [--force]]" in readme and "--force" in readme.split("## Command line")[1].split("\n## ")[0]


# --- item 4: pdsim report on an interrupted folder --------------------------------------------------


def _report(results: Path, html: Path):
    result = invoke("report", results, "--html", html)
    assert result.exit_code == 0, result.stderr
    return result


def test_report_on_an_interrupted_run(old: Path, tmp_path: Path) -> None:
    (old / "summary.json").unlink()
    (old / "records-00002.parquet").unlink()
    html = tmp_path / "r.html"
    result = _report(old, html)
    line = f"{old} looks incomplete: no summary.json (an interrupted run?); 20 runs in 2 chunks"
    assert _stderr_lines(result) == [f"pdsim: {line}"]
    page = html.read_text()
    assert 'id="notice"' in page and "no summary.json (an interrupted run?)" in page


def test_report_on_a_folder_with_gaps(old: Path, tmp_path: Path) -> None:
    (old / "records-00001.parquet").unlink()
    result = _report(old, tmp_path / "r.html")
    assert _stderr_lines(result) == [f"pdsim: {old} looks incomplete: 20 runs in 2 chunks, runs 10-19 missing"]
    (old / "summary.json").unlink()
    assert incomplete_folders(old) == [
        f"{old} looks incomplete: no summary.json (an interrupted run?); 20 runs in 2 chunks, runs 10-19 missing"
    ]


def test_report_on_mixed_runs(old: Path) -> None:
    """Chunks of two runs in one folder (what a second writer used to leave)."""
    chunk = pd.read_parquet(old / "records-00000.parquet")
    chunk.to_parquet(old / "records-00003.parquet")
    assert incomplete_folders(old) == [
        f"{old} looks incomplete: 40 runs in 4 chunks, runs 0-9 repeated (results of two runs mixed?)"
    ]


def test_report_on_complete_folders_says_nothing(old: Path, tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    result = _report(old, html)
    assert _stderr_lines(result) == []
    assert 'id="notice"' not in html.read_text()
    parse_page(html.read_text())


# --- disk full, read-only: one line, exit 2, finished chunks intact --------------------------------


def _fail_writes_after(monkeypatch: pytest.MonkeyPatch, good: int, code: int) -> list[Path]:
    """Let ``good`` atomic writes of results through, then fail each with ``OSError(code)``
    (ENOSPC, EROFS: what a full disk or a read-only mount says; chmod does not stop root)."""
    written: list[Path] = []
    real = store.atomic_write

    def atomic_write(path, write):
        if len(written) >= good:
            raise OSError(code, os.strerror(code))
        real(path, write)
        written.append(path)

    monkeypatch.setattr(store, "atomic_write", atomic_write)
    return written


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*") if p.name != LOCK]


@pytest.mark.parametrize("workers", [1, 2])
def test_run_out_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """The line is the only one: with workers, joblib's note on the tasks it cancels is not shown."""
    _fail_writes_after(monkeypatch, 1, errno.ENOSPC)
    out = tmp_path / "out"
    result = _run(out, "--runs", 30, "--workers", workers)
    assert result.exit_code == 2 and "Traceback" not in result.output + result.stderr
    assert _stderr_lines(result) == [
        f"pdsim: {out}: cannot write: No space left on device; 1 finished chunk(s) kept in {out}"
    ]
    assert sorted(os.listdir(out)) == ["records-00000.parquet"] and _no_temporaries(out)
    assert list(read_results(out)["run"]) == list(range(10))  # the finished chunk is whole


def test_force_run_on_a_full_disk_keeps_the_old_results(old: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(old)
    _fail_writes_after(monkeypatch, 1, errno.ENOSPC)
    result = _run(old, "--runs", 30, "--seed", 2, "--force")
    assert result.exit_code == 2
    assert _stderr_lines(result) == [
        f"pdsim: {old}: cannot write: No space left on device; {old} keeps its earlier results "
        "(the new run's chunks were discarded)"
    ]
    assert _snapshot(old) == before


def _sweep(tmp_path: Path, out: Path, *args: object):
    spec = write(tmp_path, "sweep.yaml", TINY_SWEEP)
    return spec, invoke("sweep", spec, "--out", out, "--quiet", *args)


@pytest.mark.parametrize("good,code", [(3, errno.ENOSPC), (1, errno.EROFS)])
def test_sweep_out_that_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, good: int, code: int
) -> None:
    """The manifest and ``good - 1`` chunks are written, then the disk is full (or the
    mount read-only): one line, exit 2, and a resume finishes the very same sweep."""
    _fail_writes_after(monkeypatch, good, code)
    out = tmp_path / "out"
    spec, result = _sweep(tmp_path, out)
    assert result.exit_code == 2 and "Traceback" not in result.output + result.stderr
    assert _stderr_lines(result) == [
        f"pdsim: {out}: cannot write: {os.strerror(code)}; {good - 1} finished chunk(s) are intact, "
        f"resume with pdsim sweep {spec} --out {out} --resume"
    ]
    assert len(list(out.glob("records-*.parquet"))) == good - 1 and _no_temporaries(out)
    monkeypatch.undo()
    _, resumed = _sweep(tmp_path, out, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    _, whole = _sweep(tmp_path, tmp_path / "whole")
    pd.testing.assert_frame_equal(sim.load_results(out), sim.load_results(tmp_path / "whole"))


def test_sweep_out_that_cannot_take_its_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_writes_after(monkeypatch, 0, errno.EROFS)
    out = tmp_path / "out"
    spec, result = _sweep(tmp_path, out)
    assert result.exit_code == 2
    assert _stderr_lines(result) == [
        f"pdsim: {out}: cannot write: Read-only file system; 0 finished chunk(s) are intact, "
        f"resume with pdsim sweep {spec} --out {out} --resume"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder (the monkeypatched tests cover it)")
def test_sweep_out_into_a_read_only_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o500)
    try:
        spec, result = _sweep(tmp_path, out)
    finally:
        out.chmod(0o700)
    assert result.exit_code == 2
    assert _stderr_lines(result)[0].startswith(f"pdsim: {out}: cannot write: Permission denied; 0 finished chunk(s)")


# --- out of memory: the internal-error handler's one line -------------------------------------------


def test_run_out_of_memory_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.runs import runner

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(runner, "iter_chunks", exhausted)
    result = _run(tmp_path / "out", "--runs", 10)
    assert result.exit_code == 3
    assert _stderr_lines(result) == [
        "pdsim: out of memory (MemoryError); lower --runs or --workers, shorten the scenario's horizon, "
        "or give pdsim more memory"
    ]


def test_internal_error_whose_message_cannot_be_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler itself runs out of memory building the line: a preformatted one instead."""
    from sim.runs import runner

    class Unprintable(RuntimeError):
        def __str__(self) -> str:
            raise MemoryError

    def broken(*args, **kwargs):
        raise Unprintable

    monkeypatch.setattr(runner, "iter_chunks", broken)
    result = _run(tmp_path / "out", "--runs", 10)
    assert result.exit_code == 3 and "Traceback" not in result.output + result.stderr
    assert _stderr_lines(result) == [
        "pdsim: internal error (its message could not be built; set PDSIM_DEBUG=1 to see it)"
    ]
