"""Hostile inputs: mutated bundled files never crash pdsim, hang it or exhaust memory.

Issue 13's bar for "nothing hangs": hypothesis (with a fixed seed, so a failure reproduces)
mutates the bundled scenarios, gates files, sweep files, policy files and upstream manifests
with the values careless and hostile users write (huge and non-finite numbers, tiny
durations, wrong types, deleted keys, lone surrogates, long strings), and runs the pdsim
command that reads each. Every command must end with exit 0, 1 or 2, print no traceback,
finish within ``TIME_LIMIT_S`` and peak below ``MEMORY_LIMIT_BYTES``.

Each command runs in a child forked from this process (``_run_forked``): pdsim is already
imported there, so an example costs the command's work and not an interpreter start-up, and
``os.wait4`` reports that child's own peak resident memory. A child past the time limit is
killed and the example fails.
"""

from __future__ import annotations

import copy
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import REPO, SCENARIO_FILES, TEST_FIXTURES, UPSTREAM_FIXTURES

TIME_LIMIT_S = 30.0
MEMORY_LIMIT_BYTES = 2 * 1024**3
EXAMPLES = 200

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@dataclass
class Ended:
    """How one forked pdsim command ended."""

    code: int  # exit status, or -signal
    seconds: float
    peak_bytes: int
    stderr: str
    timed_out: bool


def _pdsim(argv: list[str]) -> None:
    from sim.cli import main

    main(argv)


def _child(entry: Callable[[list[str]], None], argv: list[str], out: str, err: str) -> None:
    """In the forked child: entry(argv) (pdsim's own entry point) with stdout/stderr to files, then exit."""
    code = 3
    try:
        for fd, path in ((1, out), (2, err)):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives until os._exit
        sys.stderr = open(2, "w", errors="backslashreplace", closefd=False)  # noqa: SIM115 - as Python's own
        signal.signal(signal.SIGINT, signal.default_int_handler)
        entry(argv)
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported below as exit 3 with the traceback
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _run_forked(
    argv: list[str], folder: str, entry: Callable[[list[str]], None] = _pdsim, time_limit_s: float = TIME_LIMIT_S
) -> Ended:
    """``pdsim ARGV`` in a forked child: exit code, time, the child's peak RSS and stderr."""
    out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        _child(entry, argv, out, err)
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        os.kill(pid, signal.SIGKILL)

    timer = threading.Timer(time_limit_s, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(pid, 0)
    finally:
        timer.cancel()
    seconds = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in kilobytes on Linux.
    peak = usage.ru_maxrss * 1024 if sys.platform != "darwin" else usage.ru_maxrss
    return Ended(code, seconds, peak, Path(err).read_text(errors="replace"), timed_out.is_set())


# --- what to mutate -------------------------------------------------------------------

#: Values users write by mistake or on purpose; each is tried at every kind of field.
HOSTILE = [
    0,
    -1,
    1,
    2**53,
    2**64,
    2**70,
    10**30,
    1e19,
    1e300,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    0.5,
    1e-300,
    "",
    "0s",
    "1ns",
    "1e-300s",
    "1e300",
    "100000000000000000000/s",
    "10000000d",
    "-5m",
    "\ud800",
    "x" * 5000,
    "${HOME}",
    "{{args.x}}",
    "result[0] >= 0.95",
    "../../../../etc/passwd",
    [],
    [0],
    {},
    {"": None},
    None,
    True,
    False,
]


def _paths(data: Any, at: tuple = ()) -> list[tuple]:
    """Every location in a document, the root excluded."""
    found = []
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return found
    for key, value in items:
        found.append(at + (key,))
        found.extend(_paths(value, at + (key,)))
    return found


def _parent(data: Any, path: tuple) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


def _whole_simulations(path: tuple) -> bool:
    """Whether path is an item of a list whose every item is simulated in full (a gates
    file's scenarios, a sweep's portfolio, policies or grid values): N copies are N times
    the work the user asked for, not a hang, so they are repeated only a little."""
    return any(key in ("scenarios", "portfolio", "policies", "grid", "cases") for key in path[:-1])


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """A copy of document with one to three hostile edits."""
    data = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(data, path), path[-1]
        edit = draw(st.sampled_from(["value", "value", "value", "delete", "repeat", "unknown-key"]))
        if edit == "value":
            parent[key] = draw(st.sampled_from(HOSTILE) | st.integers() | st.floats() | st.text(max_size=12))
        elif edit == "delete":
            del parent[key]
        elif edit == "repeat" and isinstance(parent, list):
            copies = [1, 2] if _whole_simulations(path) else [1, 50, 5000]
            parent.extend([parent[key]] * draw(st.sampled_from(copies)))
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["x", "runs", "seed", "rate", "interval", "0"]))] = draw(
                st.sampled_from(HOSTILE)
            )
    return data


def _absolute(document: Any, base: Path, keys: tuple[str, ...]) -> Any:
    """The document with the relative file paths under ``keys`` made absolute."""
    if isinstance(document, dict):
        return {
            k: (str(base / v) if k in keys and isinstance(v, str) else _absolute(v, base, keys))
            for k, v in document.items()
        }
    if isinstance(document, list):
        return [_absolute(v, base, keys) for v in document]
    return document


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _small_gates(path: Path) -> Any:
    gates = _absolute(_load(path), path.parent, ("policy", "path"))
    gates["runs"] = 2
    return gates


def _small_sweep(path: Path) -> Any:
    sweep = _absolute(_load(path), path.parent, ("scenario", "policies", "policy"))
    sweep["runs"] = 2
    return sweep


@dataclass
class Target:
    """A bundled file and the pdsim command that reads a mutated copy of it."""

    name: str
    document: Any
    command: Callable[[str, str], list[str]]  # (mutated file, scratch folder) -> argv


def _targets() -> list[Target]:
    targets = [
        Target(f"scenario {p.name}", _load(p), lambda f, d: ["run", f, "--runs", "3", "--workers", "1"])
        for p in SCENARIO_FILES
    ]
    targets += [Target(f"validate {p.name}", _load(p), lambda f, d: ["validate", f]) for p in SCENARIO_FILES[:4]]
    gates = sorted((REPO / "gates").glob("*.yaml"))
    targets += [Target(f"gates {p.name}", _small_gates(p), lambda f, d: ["check", f, "--workers", "1"]) for p in gates]
    policies = sorted((REPO / "gates" / "policies").glob("*.yaml"))
    good = str(REPO / "scenarios" / "good-release.yaml")
    targets += [
        Target(f"policy {p.name}", _load(p), lambda f, d: ["run", good, "--policy", f, "--runs", "3", "--workers", "1"])
        for p in policies
    ]
    sweeps = sorted((REPO / "sweeps").glob("*.yaml"))
    targets += [
        Target(
            f"sweep {p.name}",
            _small_sweep(p),
            lambda f, d: ["sweep", f, "--out", os.path.join(d, "out"), "--workers", "1", "--quiet"],
        )
        for p in sweeps
    ]
    for kind in ("flagger", "argo"):
        for p in sorted((UPSTREAM_FIXTURES / kind).glob("*.yaml"))[:6]:
            try:
                doc = _load(p)
            except yaml.YAMLError:  # multi-document manifests: the first document is enough
                doc = next(iter(yaml.safe_load_all(p.read_text())))
            targets.append(Target(f"import {kind}/{p.name}", doc, lambda f, d: ["import", f]))
    replay = TEST_FIXTURES / "replay" / "good-release.csv"
    if replay.exists():
        scenario = _load(REPO / "scenarios" / "good-release.yaml")
        targets.append(
            Target(
                "replay policy",
                {"flagger": scenario["policy"]["flagger"]},
                lambda f, d: ["replay", f, "--observations", str(replay)],
            )
        )
    return targets


TARGETS = _targets()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,  # a fixed seed: the same examples every run, a failure reproduces
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_crash_no_hang_no_blowup(data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(TARGETS), label="target")
    document = data.draw(mutated(target.document), label="document")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "input.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            # allow_unicode=False writes a lone surrogate as the escape "\ud800", as a user would.
            yaml.safe_dump(document, fh, allow_unicode=False, sort_keys=False, width=1_000_000)
        argv = target.command(path, folder)
        ended = _run_forked(argv, folder)
    what = f"pdsim {' '.join(argv)} ({target.name})"
    assert not ended.timed_out, f"{what} ran over {TIME_LIMIT_S:g} s"
    assert ended.code in (0, 1, 2), f"{what} exited {ended.code}:\n{ended.stderr[-3000:]}"
    assert "Traceback" not in ended.stderr, f"{what} printed a traceback:\n{ended.stderr[-3000:]}"
    assert ended.peak_bytes < MEMORY_LIMIT_BYTES, f"{what} peaked at {ended.peak_bytes / 2**30:.1f} GiB"


def _raise(argv: list[str]) -> None:
    raise RuntimeError("boom")


def _hang(argv: list[str]) -> None:
    time.sleep(60)


def _grow(argv: list[str]) -> None:
    block = bytearray(400 * 1024**2)  # touched below, so resident
    block[::4096] = b"x" * len(block[::4096])


def test_the_fork_harness_sees_failures(tmp_path: Path) -> None:
    """The harness itself: a clean refusal, a traceback, a hang and a memory peak are each seen."""
    refused = _run_forked(["run", str(tmp_path / "missing.yaml")], str(tmp_path))
    assert refused.code == 2 and "missing.yaml" in refused.stderr and not refused.timed_out
    crashed = _run_forked([], str(tmp_path), entry=_raise)
    assert crashed.code == 3 and "Traceback" in crashed.stderr
    hung = _run_forked([], str(tmp_path), entry=_hang, time_limit_s=1.0)
    assert hung.timed_out and hung.seconds < 30
    grown = _run_forked([], str(tmp_path), entry=_grow)
    assert grown.peak_bytes > 400 * 1024**2
