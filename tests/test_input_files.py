"""Input files are regular and bounded (issue 13, item 10).

A FIFO given as an input blocked pdsim for ever, ``/dev/urandom`` as observations was read
until 5.7 GB were gone. Every file pdsim reads now goes through ``sim/inputs/files.py``: a
FIFO, a device or a directory is refused with ``FILE:1: not a regular file (a FIFO)`` before
anything is read, and CSV files are capped in bytes and rows. These tests pin it for each
command and each kind of input; a watchdog turns a read that blocks into a failure instead
of a hung suite.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.errors import InputError
from sim.inputs.files import open_regular, read_bytes, read_text, size_text
from sim.inputs.scenario import load_scenario
from sim.runs import replay as replay_module
from sim.runs.replay import load_observations
from sim.runs.store import load_results
from sim.sweeps.spec import file_sha256
from tests.helpers import POLICY_FILE, REPO, SCENARIOS, TEST_FIXTURES, invoke, write

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and /dev need a POSIX system")

OBSERVATIONS = TEST_FIXTURES / "replay" / "good-release.csv"


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    """Fail a test whose read blocks (the bug pinned here) instead of hanging the suite."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("an input read blocked for 30 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "input.yaml"
    os.mkfifo(path)
    return path


def refused(result, path: Path | str, kind: str) -> None:
    """``pdsim`` exited 2 with the one line ``PATH:1: not a regular file (KIND)``."""
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"{path}:1: not a regular file ({kind})"]


# --- the shared helper ----------------------------------------------------------------------


def test_a_fifo_is_refused_without_blocking(fifo):
    with pytest.raises(InputError) as info:
        open_regular(fifo)
    assert str(info.value) == f"{fifo}:1: not a regular file (a FIFO)"


@pytest.mark.parametrize(("path", "kind"), [("/dev/null", "a character device"), ("/dev/zero", "a character device")])
def test_a_device_is_refused(path, kind):
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    with pytest.raises(InputError, match=rf"^{path}:1: not a regular file \({kind}\)$"):
        read_bytes(path, limit=100)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(InputError, match=r":1: not a regular file \(a directory\)$"):
        read_text(tmp_path, what="scenario file", limit=100)


def test_a_symlink_to_a_regular_file_is_read(tmp_path):
    target = write(tmp_path, "target.txt", "hello\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert read_text(link, limit=100) == "hello\n"


def test_a_symlink_to_a_fifo_is_refused(fifo, tmp_path):
    link = tmp_path / "link.yaml"
    link.symlink_to(fifo)
    with pytest.raises(InputError, match=r"link\.yaml:1: not a regular file \(a FIFO\)$"):
        open_regular(link)


def test_reads_stop_at_the_limit(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 101)
    assert read_bytes(path, limit=101) == b"x" * 101
    with pytest.raises(InputError, match=r"big\.bin:1: data is too large \(limit is 100 bytes\)$"):
        read_bytes(path, what="data", limit=100)


def test_text_errors_name_the_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfa\nb\n\xff\n")
    with pytest.raises(InputError, match=r"t\.csv:3: not a text CSV \(binary or not UTF-8\)$"):
        read_text(path, what="CSV", limit=100)
    path.write_bytes(b"\xef\xbb\xbfa,b\n")
    assert read_text(path, limit=100) == "a,b\n"  # the byte-order mark is dropped


def test_size_text():
    assert [size_text(n) for n in (5 << 20, 256 << 20, 1536, 100, 1 << 30)] == [
        "5 MiB",
        "256 MiB",
        "1.5 KiB",
        "100 bytes",
        "1 GiB",
    ]


# --- every command refuses a FIFO, a device and a directory ---------------------------------


def test_validate_refuses_a_fifo(fifo):
    refused(invoke("validate", fifo), fifo, "a FIFO")


def test_run_refuses_a_fifo_scenario(fifo):
    refused(invoke("run", fifo, "--runs", 1), fifo, "a FIFO")


def test_load_scenario_refuses_a_directory(tmp_path):
    # The command line refuses it first (click's path check); the library call does too.
    with pytest.raises(InputError, match=r":1: not a regular file \(a directory\)$"):
        load_scenario(tmp_path)


def test_run_refuses_a_device_as_policy():
    refused(
        invoke("run", SCENARIOS / "error-spike.yaml", "--policy", "/dev/null", "--runs", 1),
        "/dev/null",
        "a character device",
    )


def test_import_refuses_a_fifo_manifest(fifo):
    refused(invoke("import", "flagger", fifo), fifo, "a FIFO")


def test_check_refuses_a_fifo_gates_file(fifo):
    refused(invoke("check", fifo), fifo, "a FIFO")


def test_sweep_refuses_a_fifo_sweep_file(fifo, tmp_path):
    refused(invoke("sweep", fifo, "--out", tmp_path / "out"), fifo, "a FIFO")


def test_sweep_inputs_are_hashed_only_when_regular(fifo):
    with pytest.raises(InputError, match="not a regular file"):
        file_sha256(fifo)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_replay_refuses_a_device_as_observations(tmp_path, device):
    policy = write(tmp_path, "policy.yaml", POLICY_FILE)
    refused(invoke("replay", policy, "--observations", device), device, "a character device")


def test_replay_refuses_a_fifo_as_observations(tmp_path):
    policy = write(tmp_path, "policy.yaml", POLICY_FILE)
    fifo = tmp_path / "obs.csv"
    os.mkfifo(fifo)
    refused(invoke("replay", policy, "--observations", fifo), fifo, "a FIFO")


def test_report_refuses_a_fifo_results_file(tmp_path):
    fifo = tmp_path / "records.parquet"
    os.mkfifo(fifo)
    refused(invoke("report", fifo, "--html", tmp_path / "page.html"), fifo, "a FIFO")


def test_report_skips_a_fifo_among_run_chunks(tmp_path):
    # A folder's chunks are listed as regular files; a FIFO named like one is never opened.
    folder = tmp_path / "out"
    folder.mkdir()
    os.mkfifo(folder / "records-00000.parquet")
    result = invoke("report", folder, "--html", tmp_path / "page.html")
    assert result.exit_code == 2 and "no *.parquet result files" in result.stderr


def _sweep_folder(tmp_path: Path) -> Path:
    """A results folder with a minimal, complete sweep manifest: one cell, no chunk yet."""
    folder = tmp_path / "sweep"
    folder.mkdir()
    cell = {"cell": 0, "world": 0, "kind": None, "stratum": None, "weight": None, "params": {}}
    manifest = {
        "format": 1,
        "seed": 1,
        "runs": 2,
        "chunk_size": 2,
        "sweep": {"sha256": "0" * 64},
        "inputs": {},
        "params": [],
        "cells": [cell],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_load_results_refuses_a_fifo_chunk(tmp_path):
    folder = _sweep_folder(tmp_path)
    chunk = folder / "records-c00000-00000.parquet"
    os.mkfifo(chunk)
    with pytest.raises(InputError, match=r"records-c00000-00000\.parquet:1: not a regular file \(a FIFO\)$"):
        load_results(folder)


def test_report_refuses_a_fifo_chunk_of_a_sweep(tmp_path):
    folder = _sweep_folder(tmp_path)
    chunk = folder / "records-c00000-00000.parquet"
    os.mkfifo(chunk)
    refused(invoke("report", folder, "--html", tmp_path / "page.html"), chunk, "a FIFO")


def test_load_results_refuses_a_fifo_manifest(tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    os.mkfifo(folder / "manifest.json")
    with pytest.raises(InputError, match=r"manifest\.json:1: not a regular file \(a FIFO\)$"):
        load_results(folder)


# --- CSV caps -------------------------------------------------------------------------------


def test_observations_over_the_byte_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(replay_module, "MAX_CSV_BYTES", 200)
    policy = write(tmp_path, "policy.yaml", POLICY_FILE)
    obs = write(
        tmp_path, "obs.csv", "t,metric,value\n" + "".join(f"{60 * i},request-success-rate,99\n" for i in range(10))
    )
    assert obs.stat().st_size > 200
    result = invoke("replay", policy, "--observations", obs)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip() == f"{obs}:1: observations CSV is too large (limit is 200 bytes)"


def test_observations_over_the_row_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(replay_module, "MAX_CSV_ROWS", 3)
    rows = "".join(f"{60 * i},request-success-rate,99\n" for i in range(4))
    obs = write(tmp_path, "obs.csv", "t,metric,value\n\n" + rows)
    with pytest.raises(InputError) as info:
        load_observations(obs)
    assert str(info.value) == f"{obs}:6: too many rows (limit is 3)"
    monkeypatch.setattr(replay_module, "MAX_CSV_ROWS", 4)
    assert load_observations(obs) is not None  # at the cap: fine


def test_bundled_observations_fit_the_caps():
    load_observations(OBSERVATIONS)


def _records_csv(tmp_path: Path, runs: int) -> Path:
    header = "scenario,policy,run,outcome,release_bad\n"
    return write(tmp_path, "records.csv", header + "".join(f"s,p,{i},promoted,false\n" for i in range(runs)))


def test_results_csv_over_the_caps(tmp_path, monkeypatch):
    from sim.report import results

    path = _records_csv(tmp_path, 4)
    monkeypatch.setattr(results, "MAX_CSV_ROWS", 3)
    result = invoke("report", path, "--html", tmp_path / "page.html")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{path}:1: too many rows (limit is 3)"
    monkeypatch.setattr(results, "MAX_CSV_ROWS", 4)
    monkeypatch.setattr(results, "MAX_CSV_BYTES", 50)
    result = invoke("report", path, "--html", tmp_path / "page.html")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{path}:1: results CSV is too large (limit is 50 bytes)"


def test_a_symlinked_scenario_is_accepted(tmp_path):
    link = tmp_path / "scenario.yaml"
    link.symlink_to(REPO / "scenarios" / "error-spike.yaml")
    result = invoke("validate", link)
    assert result.exit_code == 0, result.stderr


def test_sweep_refuses_a_fifo_scenario_it_names(tmp_path):
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    sweep = write(
        tmp_path, "sweep.yaml", "name: x\nscenario: scenario.yaml\ngrid: {policy.flagger.analysis.threshold: [1]}\n"
    )
    refused(invoke("sweep", sweep, "--out", tmp_path / "out", "--runs", 1), fifo, "a FIFO")


def test_gates_refuse_a_fifo_scenario_they_name(tmp_path):
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    policy = write(tmp_path, "policy.yaml", POLICY_FILE)
    gates = write(
        tmp_path,
        "gates.yaml",
        f"name: x\npolicy: {policy.name}\nruns: 10\nscenarios:\n  - path: scenario.yaml\n"
        "    requirements: {false_rollback_rate: {max: 0.5}}\n",
    )
    refused(invoke("check", gates), fifo, "a FIFO")
