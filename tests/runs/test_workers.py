"""Worker processes for ``pdsim run``, ``compare`` and ``check`` (issue 17 item 3).

A run's record is a function of its seed, so neither the worker count, nor the pieces the
runs are cut into, nor the chunks they are written in may change a single record, and
``compare`` and ``check`` print the same for any ``--workers``. The pool itself: results in
run order whatever order the pieces finish in, a worker's exception raised as is, a worker
that dies named, and no worker left behind when the caller stops early.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import sim.runs.pool as pool
import sim.runs.runner as runner
from sim.inputs.policy import load_policy_with_warnings, scenario_policy
from sim.inputs.scenario import load_scenario
from sim.runs.pool import MAX_PIECE, PieceSizes, WorkerLost, piece_results
from sim.runs.runner import (
    RecordColumns,
    RecordsTable,
    iter_chunks,
    records_frame,
    records_of,
    run_batch,
    run_frame,
    run_frames,
    table_frame,
)
from sim.runs.store import records_table
from tests.helpers import POLICY_FILE, REPO, SCENARIOS, invoke

SPIKE = load_scenario(SCENARIOS / "error-spike.yaml")
SPIKE_POLICY = scenario_policy(SPIKE)
RUNS = 37


@pytest.fixture(scope="module")
def reference() -> list:
    """The records as one process simulates them, one lockstep batch at a time."""
    return run_batch(SPIKE, SPIKE_POLICY, RUNS, seed=11)


def _pieces_of(monkeypatch: pytest.MonkeyPatch, first: int, most: int) -> None:
    """Pieces of ``first`` runs, then of ``first`` to ``most`` (speed-sized pieces would be single runs)."""
    monkeypatch.setattr(runner, "FIRST_PIECE", first)
    monkeypatch.setattr(pool, "MAX_PIECE", most)
    monkeypatch.setattr(pool, "PIECE_SECONDS", 1e-9)


@pytest.mark.parametrize(
    ("workers", "first", "most", "chunk_size"),
    [(1, 3, 7, 5), (2, 1, 1, 4), (2, 5, 9, 10), (3, 2, 6, 37), (2, 250, MAX_PIECE, 1000)],
)
def test_records_do_not_depend_on_workers_pieces_or_chunks(
    reference: list, monkeypatch: pytest.MonkeyPatch, workers: int, first: int, most: int, chunk_size: int
) -> None:
    _pieces_of(monkeypatch, first, most)
    seen: list[int] = []
    chunks = list(
        iter_chunks(SPIKE, SPIKE_POLICY, RUNS, 11, workers=workers, chunk_size=chunk_size, progress=seen.append)
    )
    # This process's chunks are run records; the workers' come as their numpy columns.
    assert all(isinstance(c, RecordColumns) == (workers > 1) for c in chunks)
    records = [c.records() if isinstance(c, RecordColumns) else c for c in chunks]
    # As --out writes them: the table the records would make, schema and values.
    for chunk, recs in zip(chunks, records):
        if isinstance(chunk, RecordColumns):
            assert chunk.table().equals(records_table(recs), check_metadata=True)
    # Chunks end at multiples of chunk_size (the --out files), whatever the pieces were.
    ends = [chunk[-1].run + 1 for chunk in records]
    assert ends == [*range(chunk_size, RUNS, chunk_size), RUNS]
    assert [r for chunk in records for r in chunk] == reference
    assert sum(seen) == RUNS and all(n > 0 for n in seen)


def test_exact_mode_with_workers_is_the_same(tmp_path: Path) -> None:
    """The per-request mode's pieces go to workers too (a light scenario: every request is an event)."""
    path = tmp_path / "light.yaml"
    text = (SCENARIOS / "error-spike.yaml").read_text()
    assert "rate: 100/s" in text
    path.write_text(text.replace("rate: 100/s", "rate: 2/s"))
    light = load_scenario(path)
    policy = scenario_policy(light)
    one = run_batch(light, policy, 3, seed=2, exact=True)
    assert run_batch(light, policy, 3, seed=2, exact=True, workers=2) == one


def test_spawned_workers_give_the_same_records(reference: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where fork is not used (macOS, Windows), workers are spawned and get the scenario and
    policy pickled once: the same records."""
    monkeypatch.setattr(pool, "_context", lambda: multiprocessing.get_context("spawn"))
    assert run_batch(SPIKE, SPIKE_POLICY, RUNS, seed=11, workers=2) == reference


def test_run_frame_is_records_frame(reference: list) -> None:
    """compare and check decide on the same table as before, type for type."""
    pd.testing.assert_frame_equal(run_frame(SPIKE, SPIKE_POLICY, RUNS, 11, workers=2), records_frame(reference))
    # A column with no value at all (no rollback, so no detection time) stays None, not NaN.
    good = load_scenario(SCENARIOS / "good-release.yaml")
    records = run_batch(good, scenario_policy(good), 5, seed=3)
    assert all(r.detection_time_s is None for r in records)
    pd.testing.assert_frame_equal(table_frame(records_table(records)), records_frame(records))
    pd.testing.assert_frame_equal(table_frame(records_table([])), records_frame([]))


def test_records_round_trip_through_their_table(reference: list) -> None:
    assert records_of(records_table(reference)) == reference
    table = RecordsTable()
    table.add(RecordColumns.of(reference[:10]))
    table.add(reference[10:])
    assert table.runs == RUNS
    assert list(table.dicts()) == [r.as_dict() for r in reference]


def _coded(column: object) -> tuple:
    """A column's codes or values (their bytes: NaN equals NaN), missing mask and texts."""
    values, missing, texts = (getattr(column, a) for a in ("values", "missing", "texts"))
    return values.dtype.str, values.tobytes(), None if missing is None else missing.tolist(), texts


@pytest.mark.parametrize("cuts", [[0, 37], [0, 5, 20, 37], [0, 1, 2, 36, 37], [0, 12, 13, 30, 37]])
def test_record_columns_cut_and_joined_are_the_columns_of_the_runs(reference: list, cuts: list[int]) -> None:
    """Pieces cut into chunks and joined again code every field as the chunk's own runs
    would: texts numbered as they first appear, missing values where they were."""
    pieces = [RecordColumns.of(reference[a:b]) for a, b in zip(cuts, cuts[1:])]
    # A chunk across every piece boundary, from inside the first piece to inside the last.
    first, last = cuts[1] // 2, RUNS - (RUNS - cuts[-2]) // 2
    spans = [(max(a, first), min(b, last), a) for a, b in zip(cuts, cuts[1:])]
    parts = [piece.part(lo - a, hi - lo) for piece, (lo, hi, a) in zip(pieces, spans) if hi > lo]
    chunk = RecordColumns.joined(parts)
    expected = RecordColumns.of(reference[first:last])
    assert chunk.runs == expected.runs == last - first
    for name in expected.fields:
        assert _coded(chunk.fields[name]) == _coded(expected.fields[name]), name
    assert chunk.records() == reference[first:last]
    table = RecordsTable()
    table.add(chunk)
    assert table.outcome_counts() == dict(Counter(r.outcome for r in reference[first:last]))


def test_a_worker_builds_its_records_without_pandas() -> None:
    """pyarrow imports pandas the first time it builds an array (half a second): a worker's
    piece, records to columns to the bytes it sends, never does."""
    code = (
        "import pickle, sys\n"
        "from sim.inputs.policy import scenario_policy\n"
        "from sim.inputs.scenario import load_scenario\n"
        "from sim.runs.runner import worker_piece\n"
        f"s = load_scenario({str(SCENARIOS / 'error-spike.yaml')!r})\n"
        "piece = worker_piece(s, scenario_policy(s), 0, 3, seed=1)\n"
        "pickle.loads(pickle.dumps(piece))\n"
        "print(piece.runs, 'pandas' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "False"]


def _json(*args: object) -> dict:
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(("workers", "first", "most"), [(1, 3, 7), (2, 1, 1), (2, 5, 9), (3, 7, 30)])
def test_policies_share_one_stream_of_pieces_with_the_same_frames(
    reference: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, first: int, most: int
) -> None:
    """compare's two policies go to one set of workers as one stream of pieces, some
    pieces holding the end of one policy's runs and the start of the other's: each
    policy's frame is still its own ``run_frame``, run for run."""
    strict = tmp_path / "strict.yaml"
    strict.write_text(POLICY_FILE.replace("threshold: 5", "threshold: 1"))
    other, _ = load_policy_with_warnings([strict])
    expected = [records_frame(reference), records_frame(run_batch(SPIKE, other, RUNS, seed=11))]
    _pieces_of(monkeypatch, first, most)
    seen: list[int] = []
    frames = run_frames(SPIKE, [SPIKE_POLICY, other], RUNS, 11, workers=workers, progress=seen.append)
    assert len(frames) == 2
    for frame, want in zip(frames, expected):
        pd.testing.assert_frame_equal(frame, want)
    assert sum(seen) == 2 * RUNS
    assert [len(f) for f in run_frames(SPIKE, [SPIKE_POLICY, other], 0, 11, workers=workers)] == [0, 0]


def test_compare_is_the_same_for_any_workers(tmp_path: Path) -> None:
    strict, lax = tmp_path / "strict.yaml", tmp_path / "lax.yaml"
    strict.write_text(POLICY_FILE.replace("threshold: 5", "threshold: 1"))
    lax.write_text(POLICY_FILE)
    args = ("compare", SCENARIOS / "error-spike.yaml", strict, lax, "--runs", 40, "--json", "--quiet")
    one = _json(*args, "--workers", 1)
    assert one["runs"] == 40
    assert _json(*args, "--workers", 2) == one
    assert _json(*args, "--workers", 3) == one


def test_check_is_the_same_for_any_workers(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(POLICY_FILE.replace("threshold: 5", "threshold: 1"))
    gates = tmp_path / "gates.yaml"
    gates.write_text(
        "runs: 40\nseed: 7\nscenarios:\n"
        f"  - path: {SCENARIOS / 'error-spike.yaml'}\n"
        "    requirements: {detection_rate: {min: 0.5}, excess_errors.mean: {max: 1000}}\n"
        f"  - path: {SCENARIOS / 'good-release.yaml'}\n"
        "    requirements: {false_rollback_rate: {max: 0.5}}\n"
    )
    outputs = []
    for workers in (1, 2, 3):
        result = invoke("check", gates, "--baseline", baseline, "--workers", workers)
        assert result.exit_code in (0, 1), result.stderr
        outputs.append((result.exit_code, result.stdout))
    assert "paired runs" in outputs[0][1]  # the baseline comparison ran
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]


# --- the pool ---------------------------------------------------------------------------------------


def _slow_first(start: int, stop: int) -> list[int]:
    """Early pieces take longest: they finish after later ones."""
    time.sleep(0.2 if start == 0 else 0.0)
    return list(range(start, stop))


def test_results_come_in_run_order_whatever_finishes_first() -> None:
    out = list(piece_results(_slow_first, 50, 3, PieceSizes(3, first=4)))
    pieces = [piece for piece, _ in out]
    assert [r for _, result in out for r in result] == list(range(50))
    assert [p.start for p in pieces] == sorted(p.start for p in pieces)
    assert all(list(piece) == result for piece, result in out)


def _fails_at_ten(start: int, stop: int) -> int:
    if start <= 10 < stop:
        raise ValueError(f"run 10 of pid {os.getpid()}")
    return stop - start


def test_a_workers_exception_is_raised_as_is() -> None:
    with pytest.raises(ValueError, match="run 10 of pid") as err:
        list(piece_results(_fails_at_ten, 30, 2, PieceSizes(2, first=3)))
    assert str(os.getpid()) not in str(err.value)  # raised in a worker, not here


def _dies_at_ten(start: int, stop: int) -> int:
    if start <= 10 < stop:
        os.kill(os.getpid(), signal.SIGKILL)
    return stop - start


def test_a_worker_that_dies_is_named() -> None:
    with pytest.raises(WorkerLost, match=r"killed by signal 9; out of memory\?"):
        list(piece_results(_dies_at_ten, 30, 2, PieceSizes(2, first=3)))


def _pid(start: int, stop: int) -> int:
    time.sleep(0.05)
    return os.getpid()


def test_stopping_early_leaves_no_worker_behind() -> None:
    results = piece_results(_pid, 1000, 2, PieceSizes(2, first=1))
    pids = {next(results)[1], next(results)[1]}
    results.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped: not a child any more
    assert not multiprocessing.active_children()


def _nap(i: int) -> int:
    time.sleep(0.2)
    return i


@pytest.mark.parametrize("how", ["closed", "collected", "closed with results unread"])
def test_a_loky_pool_stopped_early_says_nothing(how: str) -> None:
    """joblib warns when its generator is closed with tasks in flight; a command stopped by
    Ctrl-C says what it kept in one line, and the generator may be closed after that line
    (when it is collected), so ``parallel_results`` closes it with that warning silenced
    (CI once saw it below ``pdsim sweep``'s interrupt line)."""
    from joblib import delayed

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        results = pool.parallel_results(2, (delayed(_nap)(i) for i in range(20)), return_as="generator_unordered")
        assert next(results) in range(20)
        if how.startswith("closed"):
            if how.endswith("unread"):  # joblib's warning then starts with the finished tasks
                time.sleep(0.5)
            results.close()
        else:
            del results
            gc.collect()
    assert not [w for w in seen if "tasks" in str(w.message)], [str(w.message) for w in seen]


def test_workers_start_only_for_pieces_there_are() -> None:
    out = list(piece_results(_pid, 1, 4, PieceSizes(4)))
    assert len(out) == 1 and out[0][1] != os.getpid()
    assert list(piece_results(_pid, 0, 4)) == []
    assert list(iter_chunks(SPIKE, SPIKE_POLICY, 0, 1, workers=2)) == []
    assert not multiprocessing.active_children()


def test_piece_sizes_follow_the_speed_and_shrink_at_the_end() -> None:
    sizes = PieceSizes(2, first=100)
    assert sizes.next(100_000) == 100  # before any speed is known
    sizes.observe(1000, 0.1)  # 10,000 runs/s: PIECE_SECONDS' worth, at most MAX_PIECE
    assert sizes.next(100_000) == min(int(pool.PIECE_SECONDS * 10_000), MAX_PIECE)
    assert sizes.next(1000) == 250  # a quarter of what is left, with two workers
    assert sizes.next(300) == pool.MIN_PIECE  # the last pieces shrink, down to MIN_PIECE
    assert sizes.next(1) == 1
    sizes.observe(1, 1000.0)  # very slow: MIN_PIECE runs
    assert sizes.next(10_000) == pool.MIN_PIECE
    exact = PieceSizes(2, first=1)  # a first piece below MIN_PIECE lowers the floor
    exact.observe(1, 1000.0)
    assert exact.next(10_000) == 1
