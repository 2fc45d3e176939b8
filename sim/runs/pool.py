"""Worker processes: the ones ``pdsim run``, ``compare`` and ``check`` start, and loky's.

``piece_results`` runs one piece of work after another, ``work(start, stop)``, on worker
processes started for the call and given ``work`` (the scenario and the policy) once:

* forked where the platform forks safely (Linux), so a worker inherits this process's
  imports and compiled kernels and is at work in milliseconds, where a fresh interpreter
  spends seconds importing numpy, scipy, pandas, numba and pdsim before its first rollout
  (issue 17 item 3: with workers that start in seconds, two workers were no faster than one
  at 40,000 runs); spawned elsewhere, with ``work`` pickled once per worker;
* a piece is two numbers on the way out and its records as numpy columns on the way back
  (built in the worker: no record objects pickled one by one, no per-record work here);
* pieces are sized as they are handed out (``PieceSizes``): long enough that a piece's fixed
  costs vanish, short enough that progress moves, ``--out`` chunks appear steadily and the
  workers finish together.

Workers ignore Ctrl-C (this process takes it and stops them) and end themselves when this
process dies (``worker_setup``). ``parallel_results`` is the loky pool ``pdsim sweep`` uses,
with the same worker set-up.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from typing import Any

#: Seconds between a worker's checks that the process that started it is alive.
PARENT_POLL_S = 0.5
#: Most rollouts in one piece: a worker's fixed costs per piece (two messages, a lockstep
#: batch's set-up, its records' columns) are then negligible, and a piece's records stay small.
MAX_PIECE = 8000
#: The first piece of each worker, before its speed is known.
FIRST_PIECE = 250
#: Fewest rollouts in a piece (unless fewer are left, or the first piece is smaller): the
#: shrinking last pieces would otherwise be single runs, each paying a lockstep batch's
#: set-up.
MIN_PIECE = 100
#: Seconds of work a piece aims at once the speed is known.
PIECE_SECONDS = 0.75
#: Pieces handed to a worker ahead of the one it runs, so that it never waits for the next.
AHEAD = 2
#: Seconds given to a worker to leave after its last piece before it is killed.
_JOIN_S = 5.0
#: joblib's warning when a result generator closes early (``joblib/parallel.py``,
#: ``Parallel._warn_exit_early``): it starts with the finished tasks left unread, if any,
#: else with the tasks in flight it cancelled (``filterwarnings`` matches from the start).
CANCELLED_WARNING = r"\d+ tasks (have been successfully executed|which were still being processed)"


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)  # orphaned: nobody will read the result, and we hold the caller's pipes


def worker_setup(parent: int) -> None:
    """Runs first in every worker: the parent owns Ctrl-C, and a worker dies with it.

    * SIGINT is ignored: Ctrl-C reaches the whole process group, and a worker interrupted
      in its queue code or in numba's compiler prints a traceback on the shared stderr
      (issue 13 item 12). The parent gets the KeyboardInterrupt and stops the workers.
      Until this runs, SIGINT is blocked (the parent blocks it while it starts workers,
      and they inherit the mask); setting SIG_IGN discards one already pending.
    * A daemon thread polls ``os.getppid()`` and ends the worker when its parent is gone,
      e.g. after SIGKILL (item 13): a worker would otherwise wait for work, holding the
      parent's stdout and stderr open. Chosen over Linux's ``prctl(PR_SET_PDEATHSIG)``,
      which fires when the *thread* that forked the worker ends: loky also spawns workers
      from its executor-manager thread (``process_executor._ExecutorManagerThread`` calls
      ``_adjust_process_count``), which ends with each executor while the reusable workers
      live on. The poll is portable to every POSIX system.

    Args:
        parent: the process id of the process that started the worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    threading.Thread(target=_watch_parent, args=(parent,), name="pdsim-parent-watch", daemon=True).start()


class _SigintHeld:
    """SIGINT blocked in this thread while workers start: they inherit the blocked mask, so
    none can be interrupted before ``worker_setup`` ignores SIGINT. A Ctrl-C meanwhile is
    held back and raised once the mask is restored."""

    def __enter__(self) -> None:
        mask = hasattr(signal, "pthread_sigmask")
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if mask else None

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


def parallel_results(workers: int, tasks: Iterable[Any], **options: Any) -> Iterator[Any]:
    """``joblib.Parallel(tasks)`` on ``workers`` loky processes that ignore Ctrl-C (this
    process stops them) and die with this process (see ``worker_setup``).

    SIGINT is blocked in this thread while joblib starts: the workers, and loky's manager
    thread (which may start more), inherit the blocked mask. This is how loky starts its
    own resource tracker (``joblib/externals/loky/backend/resource_tracker.py``). The
    initializer and its argument are the same on every call, so loky keeps reusing one
    executor.

    Args:
        workers: worker processes.
        tasks: ``joblib.delayed`` calls.
        **options: more ``joblib.Parallel`` options (``return_as``, ``pre_dispatch``).

    Yields:
        The results, as ``return_as`` orders them.
    """
    from joblib import Parallel
    from joblib.parallel import LokyBackend

    backend = LokyBackend(initializer=worker_setup, initargs=(os.getpid(),))
    parallel = Parallel(n_jobs=workers, backend=backend, **options)
    with _SigintHeld():
        results = parallel(tasks)
    try:
        # Not ``yield from``: it would close ``results`` itself, before this ``finally``.
        for result in results:  # noqa: UP028 (see above)
            yield result
    finally:
        # Closed when this generator is (an interrupt, a consumer that stops): joblib then
        # aborts the tasks in flight, stops the workers and warns that it cancelled them.
        # The command says what it stopped in its own one line, and this close may come
        # late (when the generator is collected, after that line): the warning is silenced
        # here, wherever the close happens.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=CANCELLED_WARNING, category=UserWarning)
            if hasattr(results, "close"):  # a generator (``return_as="list"`` is a list)
                results.close()


class PieceSizes:
    """How many rollouts the next piece gets.

    A worker's first piece is ``FIRST_PIECE`` runs; after that a piece is what the workers
    simulate in ``PIECE_SECONDS`` at the speed measured so far, at most ``MAX_PIECE``, and
    never more than a ``1 / (2 * workers)`` share of the runs left, so that the pieces shrink
    towards the end and the workers finish together; never fewer than ``MIN_PIECE`` (or
    the first piece's size, when smaller). A run's record does not depend on its
    piece, so the sizes may follow the measured speed.

    Args:
        workers: processes the pieces are shared among.
        first: the size of the first pieces.
    """

    def __init__(self, workers: int, first: int = FIRST_PIECE) -> None:
        self.workers = max(1, workers)
        self.first = max(1, first)
        self.runs = 0
        self.seconds = 0.0

    def observe(self, runs: int, seconds: float) -> None:
        """A piece of ``runs`` rollouts took ``seconds`` of one worker's time."""
        self.runs += runs
        self.seconds += seconds

    def next(self, left: int) -> int:
        """The size of the next piece, with ``left`` runs not yet handed out."""
        if self.runs == 0:
            size = self.first
        else:
            size = int(PIECE_SECONDS * self.runs / max(self.seconds, 1e-9))
        share = math.ceil(left / (2 * self.workers))
        return min(max(min(size, MAX_PIECE, share), min(self.first, MIN_PIECE), 1), left)


def _context() -> Any:
    """Fork where it is safe and cheap (Linux; macOS's system libraries do not survive a
    fork), spawn elsewhere."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _sendable(err: BaseException) -> BaseException:
    """The worker's exception as the parent can unpickle it (else its text in a RuntimeError)."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:  # noqa: BLE001 - any exception that does not round-trip
        return RuntimeError(f"{type(err).__name__} in a worker: {err}")
    return err


def _serve(conn: Connection, parent: int, work: Callable[[int, int], Any]) -> None:
    """A worker's life: pieces in, results out, until told to stop (None) or orphaned."""
    worker_setup(parent)
    while True:
        try:
            piece = conn.recv()
        except EOFError:
            return
        if piece is None:
            return
        start, stop = piece
        began = time.perf_counter()
        try:
            result = work(start, stop)
        except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises it
            conn.send(("error", _sendable(err)))
            return
        conn.send(("done", result, time.perf_counter() - began))


class WorkerLost(RuntimeError):
    """A worker process ended without reporting its piece (killed: out of memory, say)."""


class _Worker:
    """One worker process, its pipe and the pieces handed to it, in order."""

    def __init__(self, ctx: Any, work: Callable[[int, int], Any]) -> None:
        self.conn, theirs = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(theirs, os.getpid(), work), daemon=True)
        with warnings.catch_warnings():
            # Python 3.12+ warns on every fork of a process with threads (tqdm's monitor,
            # a previous loky pool's): the child runs only pdsim's own code and takes none
            # of their locks.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.process.start()
        theirs.close()
        self.pieces: deque[tuple[int, range]] = deque()

    def give(self, index: int, piece: range) -> None:
        self.conn.send((piece.start, piece.stop))
        self.pieces.append((index, piece))

    def take(self) -> tuple[int, range, Any, float]:
        """The oldest piece's result (raises the worker's exception, or WorkerLost)."""
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(_JOIN_S)
            code = self.process.exitcode
            why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            hint = "; out of memory?" if code == -signal.SIGKILL else ""
            raise WorkerLost(f"a worker process ended without its results ({why}{hint})") from None
        if message[0] == "error":
            raise message[1]
        index, piece = self.pieces.popleft()
        return index, piece, message[1], message[2]

    def stop(self, finished: bool) -> None:
        """Tell an idle worker to leave; kill one still at work (nobody wants its piece)."""
        if finished:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(_JOIN_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


@contextmanager
def _collector_frozen() -> Iterator[None]:
    """This process's objects out of the cyclic collector's sight while workers fork.

    A forked worker inherits them all; its first lockstep batch collects once and freezes
    what the process holds (``world.controller``), and that first full pass walked every
    inherited object (a tenth of a second in each worker, measured). Frozen here, they are
    frozen in the worker too, so its pass walks only its own; and the collector never
    touches the inherited pages, which stay shared with this process instead of being
    copied. Unfrozen here once the workers are started: this process keeps its collector
    as it was.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def piece_results(
    work: Callable[[int, int], Any], runs: int, workers: int, sizes: PieceSizes | None = None
) -> Iterator[tuple[range, Any]]:
    """``work(start, stop)`` over runs 0 .. runs-1, piece by piece on ``workers`` processes.

    Only a bounded number of pieces is handed out ahead of the oldest unfinished one, so
    the results held here while an earlier piece runs are bounded too. Closing the
    generator (an interrupt, an error, a consumer that stops) kills the workers at once.

    Args:
        work: simulates one piece; picklable (a ``functools.partial`` of a module-level
            function) where workers are spawned.
        runs: the number of runs.
        workers: processes (at most one per piece is started).
        sizes: how pieces are sized (default ``PieceSizes(workers)``).

    Yields:
        ``(piece, work(piece.start, piece.stop))`` in run order.

    Raises:
        WorkerLost: a worker process died (the exception a worker raised is raised as is).
    """
    if runs <= 0:
        return
    sizes = sizes if sizes is not None else PieceSizes(workers)
    ctx = _context()
    pool: list[_Worker] = []
    finished = False
    try:
        with _SigintHeld(), _collector_frozen():
            for _ in range(max(1, min(workers, math.ceil(runs / sizes.first)))):
                pool.append(_Worker(ctx, work))
        window = (AHEAD + 1) * len(pool)
        handed = next_run = oldest = 0
        ready: dict[int, tuple[range, Any]] = {}

        def hand_out() -> None:
            nonlocal handed, next_run
            for worker in pool:
                while len(worker.pieces) < AHEAD and next_run < runs and handed - oldest < window:
                    size = sizes.next(runs - next_run)
                    worker.give(handed, range(next_run, next_run + size))
                    handed += 1
                    next_run += size

        hand_out()
        while oldest < handed:
            busy = {w.conn: w for w in pool if w.pieces}
            for conn in wait(list(busy)):
                index, piece, result, seconds = busy[conn].take()
                sizes.observe(len(piece), seconds)
                ready[index] = (piece, result)
            while oldest in ready:
                yield ready.pop(oldest)
                oldest += 1
            hand_out()
        finished = True
    finally:
        for worker in pool:
            worker.stop(finished)


__all__ = [
    "AHEAD",
    "CANCELLED_WARNING",
    "FIRST_PIECE",
    "MAX_PIECE",
    "MIN_PIECE",
    "PIECE_SECONDS",
    "PieceSizes",
    "WorkerLost",
    "parallel_results",
    "piece_results",
    "worker_setup",
]
