"""The search of ``pdsim tune``: optuna's multi-objective TPE, racing, the fresh-seed check.

**Asking.** Candidates are asked from optuna's ``TPESampler`` (multivariate, with the
constant liar, so that the candidates of one batch spread out) in batches of ``BATCH``;
each is simulated, then the whole batch is told, in candidate order: its objectives'
point estimates, and each constraint as ``value - max`` (or ``min - value``), positive when
violated (optuna's ``Trial.set_constraint``). The sampler is made anew for every ask,
seeded from (seed, candidate): what candidate *i* is depends only on the seed and the
candidates told before its batch, never on the number of workers, on timing, or on an
interruption (a resumed search asks exactly what an uninterrupted one would). The study
lives in ``DIR/study.journal`` (optuna's journal file storage).

**Racing** (successive halving). Every candidate is simulated at rung 0: ``racing.min_runs``
runs of each portfolio scenario, on the same run seeds for every candidate (common random
numbers: ``sim.tuning.portfolio.simulate``). When the budget is spent, the best 1/eta go on
to rung 1, whose runs *extend* theirs (runs ``min_runs .. min_runs * eta - 1`` are added),
and so on up to ``racing.max_runs``. "Best" while racing: fewest constraints that the
candidate could not *show* it meets on the last rung's runs (each constraint judged on its
interval projected to the last rung, ``sim.tuning.metrics.projected``: the pessimistic end,
with the width it will have then), then the non-dominated rank of the objectives, then the
crowding distance (spread along the front). Judging the constraint on the point value
instead races on candidates that sit just under the ceiling, which the last rung then
cannot admit; judging it on today's wide interval drops every candidate at rung 0. The
frontier and the recommendation come from the last rung, where a constraint is met only
when the pessimistic end of its interval meets it. The base policy (candidate -1) is
simulated at every rung on the same runs. The sampler is told each constraint the same way
(projected), so it learns where demonstrably safe policies lie.

**Picking** (``pick: balanced``). Among frontier candidates (the base included), the one
with the smallest geometric mean of candidate objective / base objective over the
objectives; an objective that is 0 or undefined for the base is left out. ``pick: M``
takes the frontier candidate with the smallest objective M.

**The fresh-seed check.** The recommendation and the base are simulated on the validation
portfolio with stream-1 seeds, which no search run uses, and compared paired (the same
runs): the winner's curse (a candidate picked because its search runs were lucky) shows as
a gap between the search's estimate and the fresh one.

**Pieces.** Every simulated piece (a candidate, a portfolio scenario, a range of runs) is
written to ``DIR/runs/`` atomically as it finishes, named by what determines it, and read
back instead of simulated again on ``--resume``. Library code never prints: progress goes to
a callback.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.inputs.policy import build_policy
from sim.inputs.scenario import PolicySpec
from sim.policies.base import Policy
from sim.runs.atomic import atomic_write
from sim.tuning.metrics import Estimate, MetricName, estimates, meets, paired, projected
from sim.tuning.portfolio import Portfolio, Task, run_tasks
from sim.tuning.space import apply
from sim.tuning.spec import BALANCED, TuneFile

if TYPE_CHECKING:
    import pandas as pd
    from optuna import Study
    from optuna.trial import FrozenTrial

#: Candidates asked before any of them is told (independent of --workers: the same seed
#: gives the same search for any worker count).
BATCH = 8
#: Most runs in one simulated piece (a task, a file).
PIECE = 500
#: The study's file in DIR.
JOURNAL = "study.journal"
#: The folder of simulated pieces in DIR.
RUNS = "runs"
#: What optuna is told for an objective or constraint without a finite value (no bad
#: release detected at all, say): worse than any real one.
WORST = 1e12
#: The study's name in the journal.
STUDY = "pdsim-tune"


class SearchError(Exception):
    """The output folder cannot take this search (not empty, another search's)."""


@dataclass(frozen=True)
class Progress:
    """Where a search is, for a progress bar.

    Attributes:
        done: rollouts simulated or read back so far.
        total: rollouts the search will take (it changes when ``--time`` cuts the budget).
        stage: ``search``, ``rung R/N`` or ``validation``.
        candidates: candidates simulated at rung 0 so far.
        budget: candidates the search asks for.
        best: the current recommendation, as a short text, or None.
    """

    done: int
    total: int
    stage: str
    candidates: int
    budget: int
    best: str | None


@dataclass
class Candidate:
    """A candidate policy and what is known of it.

    Attributes:
        id: its number (the base policy is -1).
        label: a short name (``interval=30s stepWeight=5``).
        values: PATH -> the value written into the policy.
        columns: PATH -> the value as ``candidates.parquet`` holds it.
        policy: the policy object (None when its values do not make a valid policy).
        rung: the highest rung it reached (-1: not simulated).
        estimates: metric text -> its estimate at that rung.
        error: why its values make no valid policy, or None.
    """

    id: int
    label: str
    values: dict[str, Any]
    columns: dict[str, Any]
    policy: Policy | None
    rung: int = -1
    estimates: dict[str, Estimate] = field(default_factory=dict)
    error: str | None = None

    @property
    def key(self) -> str:
        """What names its pieces: its number and a digest of its values."""
        digest = hashlib.sha256(json.dumps(self.values, sort_keys=True, default=str).encode()).hexdigest()[:10]
        return f"{'base' if self.id < 0 else f'c{self.id:05d}'}-{digest}"


@dataclass
class SearchState:
    """The result of a search (what ``sim.tuning.outputs`` writes).

    Attributes:
        tune: the TUNE file.
        out: the output folder.
        seed: the root seed.
        budget: candidates asked (fewer than asked for when ``--time`` ran out).
        rungs: runs per portfolio scenario at each rung.
        base: the base policy (candidate -1).
        candidates: every candidate asked, by id.
        frontier: ids of the frontier candidates (the base may be one).
        best: the recommendation's id (-1: the base), or None when nothing is feasible.
        validation: ``validation.json``'s content ({} without a recommendation).
        rollouts: rollouts simulated or read back in all.
        elapsed_s: seconds this call took.
        done: whether the search finished (False while it runs).
    """

    tune: TuneFile
    out: Path
    seed: int
    budget: int
    rungs: list[int]
    base: Candidate
    candidates: dict[int, Candidate] = field(default_factory=dict)
    frontier: list[int] = field(default_factory=list)
    best: int | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    rollouts: int = 0
    elapsed_s: float = 0.0
    done: bool = False

    def every(self) -> list[Candidate]:
        """The base, then every candidate in order."""
        return [self.base, *(self.candidates[i] for i in sorted(self.candidates))]

    def candidate(self, cid: int) -> Candidate:
        return self.base if cid < 0 else self.candidates[cid]


# --- pieces of runs -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """Runs ``start .. stop-1`` of one portfolio scenario under one candidate."""

    stream: str  # "s": search portfolio; "v": validation portfolio
    candidate: str  # Candidate.key
    entry: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.stream}-{self.candidate}-e{self.entry:03d}-{self.start:07d}-{self.stop:07d}.parquet"


def _ranges(start: int, stop: int) -> list[tuple[int, int]]:
    """``start .. stop`` in pieces of at most ``PIECE`` runs (a fixed split)."""
    return [(a, min(a + PIECE, stop)) for a in range(start, stop, PIECE)]


def _pieces(stream: str, cand: Candidate, portfolio: Portfolio, start: int, stop: int) -> list[_Piece]:
    return [_Piece(stream, cand.key, e.index, a, b) for e in portfolio.entries for a, b in _ranges(start, stop)]


class _Runner:
    """Simulates pieces (serially, on loky workers or on Dask), writes each as it finishes,
    and reads back the ones already written."""

    def __init__(self, folder: Path, seed: int, workers: int, client: Any, tick: Callable[[int], None]) -> None:
        self.folder = folder
        self.seed = seed
        self.workers = workers
        self.client = client
        self.tick = tick
        self.rollouts = 0
        self.seen: set[_Piece] = set()

    def _path(self, piece: _Piece) -> Path:
        return self.folder / piece.name

    def _write(self, piece: _Piece, frame: pd.DataFrame) -> None:
        atomic_write(self._path(piece), lambda tmp: frame.to_parquet(tmp, index=False))

    def run(self, jobs: Sequence[tuple[_Piece, Policy, Portfolio]]) -> dict[_Piece, pd.DataFrame]:
        """The frames of every piece, simulating only those not on disk."""
        import pandas as pd

        out: dict[_Piece, pd.DataFrame] = {}
        todo: dict[_Piece, tuple[_Piece, Policy, Portfolio]] = {}
        for piece, policy, portfolio in jobs:
            if piece in out or piece in todo:  # the base may be the recommendation too
                continue
            path = self._path(piece)
            if path.exists():
                out[piece] = pd.read_parquet(path)
                self._count(piece)
            else:
                todo[piece] = (piece, policy, portfolio)
        for piece, frame in self._stream(list(todo.values())):
            self._write(piece, frame)
            out[piece] = frame
            self._count(piece)
        return out

    def _count(self, piece: _Piece) -> None:
        if piece in self.seen:  # a rung reads its earlier rungs' pieces again
            return
        self.seen.add(piece)
        self.rollouts += piece.stop - piece.start
        self.tick(piece.stop - piece.start)

    def _stream(self, todo: list[tuple[_Piece, Policy, Portfolio]]) -> Iterator[tuple[_Piece, pd.DataFrame]]:
        """Simulate pieces, as they finish, in this process, on workers or on Dask
        (``sim.tuning.portfolio.run_tasks``); one call's pieces share one portfolio."""
        if not todo:
            return
        portfolio = todo[0][2]
        tasks = [Task(pol, p.entry, p.start, p.stop) for p, pol, _ in todo]
        piece_of = {id(t): p for t, (p, _, _) in zip(tasks, todo, strict=True)}
        workers = self.workers if len(todo) > 1 else 1
        for task, frame in run_tasks(tasks, portfolio, self.seed, workers=workers, client=self.client):
            yield piece_of[id(task)], frame


def _frame(frames: Mapping[_Piece, pd.DataFrame], pieces: Iterable[_Piece]) -> pd.DataFrame:
    """The runs of some pieces as one frame, in (scenario, run) order."""
    import pandas as pd

    frame = pd.concat([frames[p] for p in pieces], ignore_index=True)
    return frame.sort_values(["scenario", "run"], kind="stable").reset_index(drop=True)


# --- ranking ----------------------------------------------------------------------------------


def _points(cands: Sequence[Candidate], objectives: Sequence[MetricName]) -> np.ndarray:
    """Objective point values (rows: candidates), an undefined one as +infinity."""
    pts = np.array([[c.estimates[str(m)].value for m in objectives] for c in cands], dtype=float).reshape(
        len(cands), len(objectives)
    )
    pts[np.isnan(pts)] = np.inf
    return pts


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether point ``a`` dominates ``b`` (minimising): no worse anywhere, better somewhere."""
    return bool(np.all(a <= b) and np.any(a < b))


def nondominated_ranks(points: np.ndarray) -> np.ndarray:
    """Each point's non-dominated front (0: not dominated by any other point)."""
    n = len(points)
    ranks = np.full(n, -1)
    left = set(range(n))
    rank = 0
    while left:
        front = [i for i in left if not any(dominates(points[j], points[i]) for j in left if j != i)]
        for i in front:
            ranks[i] = rank
        left -= set(front)
        rank += 1
    return ranks


def crowding(points: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each point within its set (ends: infinity)."""
    n, m = points.shape
    out = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    finite = np.where(np.isfinite(points), points, np.nan)
    for j in range(m):
        col = finite[:, j]
        order = np.argsort(np.nan_to_num(col, nan=np.inf), kind="stable")
        out[order[0]] = out[order[-1]] = np.inf
        lo, hi = np.nanmin(col) if np.any(~np.isnan(col)) else 0.0, np.nanmax(col) if np.any(~np.isnan(col)) else 0.0
        span = hi - lo
        if not span > 0:
            continue
        for k in range(1, n - 1):
            gap = col[order[k + 1]] - col[order[k - 1]]
            out[order[k]] += gap / span if np.isfinite(gap) else np.inf
    return out


def _bound(cand: Candidate, name: str, tune: TuneFile) -> Estimate:
    """A constraint's estimate as racing judges it: projected to the last rung's runs."""
    return projected(cand.estimates[name], tune.rungs[max(cand.rung, 0)], tune.rungs[-1])


def _violations(cand: Candidate, tune: TuneFile, *, projection: bool) -> int:
    if projection:
        return sum(not meets(_bound(cand, c.name, tune), c.bound) for c in tune.constraints)
    return sum(not meets(cand.estimates[c.name], c.bound) for c in tune.constraints)


def survivors(cands: Sequence[Candidate], tune: TuneFile, keep: int) -> list[Candidate]:
    """The ``keep`` best candidates for the next rung: fewest constraints missed at the
    pessimistic end of their interval projected to the last rung first, then by
    non-dominated rank, then by crowding distance (larger first), then by id."""
    if not cands:
        return []
    pts = _points(cands, tune.objectives)
    miss = np.array([_violations(c, tune, projection=True) for c in cands])
    ranks = np.zeros(len(cands), dtype=int)
    crowd = np.zeros(len(cands))
    for v in sorted(set(miss.tolist())):
        idx = np.flatnonzero(miss == v)
        ranks[idx] = nondominated_ranks(pts[idx])
        for r in set(ranks[idx].tolist()):
            sub = idx[ranks[idx] == r]
            crowd[sub] = crowding(pts[sub])
    order = sorted(range(len(cands)), key=lambda i: (miss[i], ranks[i], -crowd[i], cands[i].id))
    return [cands[i] for i in order[:keep]]


def feasible(cand: Candidate, tune: TuneFile) -> bool:
    """Whether every constraint holds at the pessimistic end of its interval."""
    return _violations(cand, tune, projection=False) == 0


def frontier(cands: Sequence[Candidate], tune: TuneFile) -> list[Candidate]:
    """The non-dominated feasible candidates (on the objectives' point values), sorted by
    the first objective, then id."""
    ok = [c for c in cands if feasible(c, tune)]
    if not ok:
        return []
    pts = _points(ok, tune.objectives)
    ranks = nondominated_ranks(pts)
    front = [c for c, r in zip(ok, ranks, strict=True) if r == 0]
    return sorted(front, key=lambda c: (_points([c], tune.objectives)[0, 0], c.id))


def balanced_score(cand: Candidate, base: Candidate, objectives: Sequence[MetricName]) -> float:
    """The geometric mean of candidate / base over the objectives (an objective that is 0 or
    undefined for the base is left out; 1.0 when none is left)."""
    logs = []
    for m in objectives:
        b, c = base.estimates[str(m)].value, cand.estimates[str(m)].value
        if not (math.isfinite(b) and b > 0):
            continue
        ratio = c / b if math.isfinite(c) else math.inf
        logs.append(math.log(ratio) if ratio > 0 else -math.inf)
    return math.exp(sum(logs) / len(logs)) if logs else 1.0


def pick(front: Sequence[Candidate], base: Candidate, tune: TuneFile) -> Candidate | None:
    """The recommendation among frontier candidates (see the module docstring)."""
    if not front:
        return None
    firsts = {c.id: _points([c], tune.objectives)[0] for c in front}
    if tune.spec.pick == BALANCED:
        return min(front, key=lambda c: (balanced_score(c, base, tune.objectives), tuple(firsts[c.id]), c.id))
    j = [str(m) for m in tune.objectives].index(tune.spec.pick)
    return min(front, key=lambda c: (firsts[c.id][j], tuple(firsts[c.id]), c.id))


def describe_pick(rule: str) -> str:
    """The pick rule in words (for ``tune.json`` and the report)."""
    if rule == BALANCED:
        return (
            "among frontier candidates, the smallest geometric mean of candidate / base over the objectives "
            "(an objective that is 0 or undefined for the base is left out)"
        )
    return f"the frontier candidate with the smallest {rule}"


# --- the study --------------------------------------------------------------------------------


def ask_seed(seed: int, index: int) -> int:
    """The sampler's seed for candidate ``index`` of a search seeded ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint32)[0])


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """optuna logs every trial and warns about experimental options: library code is silent."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Experimental options, and a constraint set again when a resumed search
            # re-tells a trial an interruption left half-told (the value is the same).
            warnings.filterwarnings("ignore", module="optuna")
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def _repair_journal(path: Path) -> None:
    """Cut a line an interruption left half-written at the journal's end (optuna would read
    it glued to the next one), and a stale lock."""
    for lock in path.parent.glob(path.name + ".lock*"):
        lock.unlink(missing_ok=True)
    if not path.exists():
        return
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(cut)


def _open_study(out: Path, n_objectives: int) -> Study:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = out / JOURNAL
    _repair_journal(path)
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(
        storage=storage, study_name=STUDY, directions=["minimize"] * n_objectives, load_if_exists=True
    )


def _sampler(seed: int) -> Any:
    from optuna.samplers import TPESampler

    return TPESampler(seed=seed, multivariate=True, constant_liar=True)


def _asked(study: Study, names: Sequence[str]) -> list[FrozenTrial]:
    """The study's candidates in order: trials with every parameter. A trial an interruption
    left with only some parameters is failed here (the sampler ignores failed trials), so
    that the next ask sees what it would have seen uninterrupted."""
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False):
        if all(n in t.params for n in names):
            out.append(t)
        elif t.state == TrialState.RUNNING:
            study.tell(t.number, state=TrialState.FAIL)
    return out


def _finite(x: float) -> float:
    return x if math.isfinite(x) else WORST


def _tell(study: Study, trial: FrozenTrial, cand: Candidate, tune: TuneFile) -> None:
    from optuna.trial import Trial, TrialState

    if cand.policy is None or not cand.estimates:
        study.tell(trial.number, state=TrialState.FAIL)
        return
    live = Trial(study, trial._trial_id)
    for c in tune.constraints:
        # Positive when violated: the projected pessimistic end beyond the bound.
        est = _bound(cand, c.name, tune)
        gap = max(est.high - c.bound.get("max", math.inf), c.bound.get("min", -math.inf) - est.low)
        live.set_constraint(c.name, _finite(gap) if not math.isnan(gap) else WORST)
    study.tell(trial.number, [_finite(cand.estimates[str(m)].value) for m in tune.objectives])


def _as_dict(est: Estimate) -> dict[str, Any]:
    return dict(est.as_dict())


# --- the search -------------------------------------------------------------------------------


def make_candidate(tune: TuneFile, cid: int, drawn: Mapping[str, Any]) -> Candidate:
    """A candidate from optuna's params: its values, columns, label and policy (None, with
    the reason, when the values together make no valid policy)."""
    from pydantic import ValidationError

    values = tune.space.values(drawn)
    label = tune.space.label(drawn)
    cand = Candidate(cid, label, values, tune.space.columns(drawn), None)
    try:
        spec = PolicySpec.model_validate(apply(tune.base.data, values))
        cand.policy = build_policy(spec, name=f"{tune.name}#{cid}")
    except (ValidationError, ValueError) as err:
        cand.error = str(err).splitlines()[0]
    return cand


def base_candidate(tune: TuneFile) -> Candidate:
    """The base policy as candidate -1 (its columns: the base's own value at each PATH)."""
    from sim.tuning.space import choice_text

    columns: dict[str, Any] = {}
    for p in tune.space.params:
        node: Any = {"policy": tune.base.data}
        for part in p.parts:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                node = None
                break
        if p.is_numeric:
            columns[p.path] = node if isinstance(node, (int, float)) and not isinstance(node, bool) else math.nan
        else:
            columns[p.path] = choice_text(node)
    return Candidate(-1, "base", {}, columns, tune.base.build())


class _Search:
    def __init__(
        self,
        tune: TuneFile,
        out: Path,
        *,
        budget: int,
        time_s: float | None,
        workers: int,
        client: Any,
        seed: int,
        progress: Callable[[Progress], None] | None,
    ) -> None:
        self.tune = tune
        self.state = SearchState(tune, out, seed, budget, tune.rungs, base_candidate(tune))
        self.time_s = time_s
        self.began = time.monotonic()
        self.progress = progress
        self.stage = "search"
        self.done_rollouts = 0
        self.best_text: str | None = None
        (out / RUNS).mkdir(parents=True, exist_ok=True)
        self.runner = _Runner(out / RUNS, seed, workers, client, self._tick)

    # progress ---------------------------------------------------------------------------
    def total(self) -> int:
        """Rollouts the whole search takes, for the budget as it stands."""
        n_entries = len(self.tune.portfolio.entries)
        n, before, total = self.state.budget, 0, 0
        for runs in self.state.rungs:
            total += (n + 1) * (runs - before) * n_entries
            n, before = max(1, math.ceil(n / self.tune.spec.racing.eta)), runs
        return total + 2 * self.tune.validation_runs * len(self.tune.validation.entries)

    def _tick(self, rollouts: int) -> None:
        self.done_rollouts += rollouts
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            n0 = sum(1 for c in self.state.candidates.values() if c.rung >= 0)
            self.progress(Progress(self.done_rollouts, self.total(), self.stage, n0, self.state.budget, self.best_text))

    def _best_so_far(self, rung: int) -> None:
        cands = [c for c in self.state.candidates.values() if c.rung == rung and c.estimates]
        if self.state.base.rung == rung:
            cands.append(self.state.base)
        best = pick(frontier(cands, self.tune), self.state.base, self.tune)
        if best is not None:
            shown = " ".join(f"{m}={best.estimates[str(m)].value:.4g}" for m in self.tune.objectives)
            self.best_text = f"{'base' if best.id < 0 else f'#{best.id}'} {shown}"

    # evaluating -------------------------------------------------------------------------
    def evaluate(self, cands: Sequence[Candidate], rung: int) -> None:
        """Simulate ``cands`` up to ``rung``'s runs (the earlier rungs' runs are reused) and
        estimate every metric there."""
        portfolio = self.tune.portfolio
        jobs = []
        wanted: dict[int, list[_Piece]] = {}
        for c in cands:
            if c.policy is None:
                continue
            pieces = []
            before = 0
            for r in range(rung + 1):
                pieces += _pieces("s", c, portfolio, before, self.state.rungs[r])
                before = self.state.rungs[r]
            wanted[c.id] = pieces
            jobs += [(p, c.policy, portfolio) for p in pieces]
        frames = self.runner.run(jobs)
        for c in cands:
            if c.id in wanted:
                frame = _frame(frames, wanted[c.id])
                c.estimates = self._estimates(frame, portfolio)
                c.rung = rung

    def _estimates(self, frame: pd.DataFrame, portfolio: Portfolio) -> dict[str, Estimate]:
        return estimates(
            frame, portfolio.weights, self.tune.metrics, confidence=self.tune.spec.confidence, seed=self.state.seed
        )

    # the phases -------------------------------------------------------------------------
    def ask_and_tell(self, study: Study) -> None:
        """Rung 0: ask candidates batch by batch until the budget or the time is spent."""
        names = self.tune.space.names
        dists = self.tune.space.optuna_distributions()
        trials = _asked(study, names)
        self.evaluate([self.state.base], 0)
        index = 0
        while index < self.state.budget:
            # Out of time: no new candidates (those already asked, on a resume, are finished);
            # the first batch always runs, so that there is something to race.
            out_of_time = self.time_s is not None and time.monotonic() - self.began >= self.time_s
            if out_of_time and index > 0 and index >= len(trials):
                self.state.budget = index
                break
            batch = range(index, min(index + BATCH, self.state.budget))
            for i in batch:
                if i >= len(trials):
                    study.sampler = _sampler(ask_seed(self.state.seed, i))
                    study.ask(dists)
                    trials = _asked(study, names)
            cands = [make_candidate(self.tune, i, trials[i].params) for i in batch]
            self.evaluate(cands, 0)
            from optuna.trial import TrialState

            for i, c in zip(batch, cands, strict=True):
                self.state.candidates[i] = c
                if trials[i].state == TrialState.RUNNING:
                    _tell(study, trials[i], c, self.tune)
            self._best_so_far(0)
            index = batch.stop
            self._report()

    def race(self) -> None:
        """Rungs 1..: the best 1/eta of each rung go on, with their runs extended."""
        pool = [c for c in self.state.candidates.values() if c.policy is not None]
        eta = self.tune.spec.racing.eta
        last = len(self.state.rungs) - 1
        for rung in range(1, last + 1):
            self.stage = f"rung {rung}/{last}"
            pool = survivors(pool, self.tune, max(1, math.ceil(len(pool) / eta)))
            self.evaluate([*pool, self.state.base], rung)
            self._best_so_far(rung)
            self._report()

    def decide(self) -> None:
        """The frontier and the recommendation, at the last rung."""
        last = len(self.state.rungs) - 1
        finalists = [c for c in self.state.every() if c.rung == last]
        front = frontier(finalists, self.tune)
        self.state.frontier = [c.id for c in front]
        best = pick(front, self.state.base, self.tune)
        self.state.best = best.id if best is not None else None

    def validate(self) -> None:
        """The recommendation against the base on fresh seeds (paired), and both at the last
        rung on the search's seeds."""
        if self.state.best is None:
            self.state.validation = {}
            return
        self.stage = "validation"
        tune = self.tune
        best, base = self.state.candidate(self.state.best), self.state.base
        portfolio = tune.validation
        n = tune.validation_runs
        assert best.policy is not None and base.policy is not None
        pieces = {c.id: _pieces("v", c, portfolio, 0, n) for c in (base, best)}
        jobs = [(p, c.policy, portfolio) for c in (base, best) for p in pieces[c.id] if c.policy is not None]
        frames = self.runner.run(jobs)
        fb, fc = _frame(frames, pieces[base.id]), _frame(frames, pieces[best.id])
        conf, seed = tune.spec.confidence, self.state.seed
        fresh: dict[str, Any] = {}
        eb = estimates(fb, portfolio.weights, tune.metrics, confidence=conf, seed=seed)
        ec = estimates(fc, portfolio.weights, tune.metrics, confidence=conf, seed=seed)
        for m in tune.metrics:
            both = paired(fb, fc, portfolio.weights, m, confidence=conf, seed=seed)
            fresh[str(m)] = {
                "base": _as_dict(eb[str(m)]),
                "best": _as_dict(ec[str(m)]),
                "diff": _as_dict(both["diff"]),
                "ratio": _as_dict(both["ratio"]),
            }
        search = {
            str(m): {"base": _as_dict(base.estimates[str(m)]), "best": _as_dict(best.estimates[str(m)])}
            for m in tune.metrics
        }
        self.state.validation = {
            "runs": n,
            "best": best.id,
            "fresh": fresh,
            "search": search,
            "constraints_ok": {c.name: bool(meets(ec[c.name], c.bound)) for c in tune.constraints},
        }


def run_search(
    tune: TuneFile,
    out: Path,
    *,
    budget: int | None = None,
    time_s: float | None = None,
    workers: int = 1,
    client: Any = None,
    seed: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    started: Callable[[SearchState], None] | None = None,
) -> SearchState:
    """Search, race, decide and validate, storing the study and every piece in ``out``.

    ``out`` must already be prepared (``sim.tuning.outputs.prepare``); what is in it is reused.

    Args:
        tune: the loaded TUNE file.
        out: the output folder.
        budget: candidates to ask (default: the file's ``budget``).
        time_s: stop asking new candidates after this many seconds.
        workers: loky processes (results are identical for any count).
        client: a ``distributed.Client``, or None.
        seed: the root seed (default: the file's).
        progress: called with a :class:`Progress` as pieces finish.
        started: called once with the state before anything is simulated.

    Returns:
        The finished search.
    """
    seed = tune.spec.seed if seed is None else seed
    search = _Search(
        tune,
        out,
        budget=tune.spec.budget if budget is None else budget,
        time_s=time_s,
        workers=workers,
        client=client,
        seed=seed,
        progress=progress,
    )
    if started is not None:
        started(search.state)
    with _quiet_optuna():
        study = _open_study(out, len(tune.objectives))
        search.ask_and_tell(study)
    search.race()
    search.decide()
    search.validate()
    search.state.rollouts = search.runner.rollouts
    search.state.elapsed_s = time.monotonic() - search.began
    search.state.done = True
    return search.state


__all__ = [
    "BATCH",
    "JOURNAL",
    "PIECE",
    "RUNS",
    "Candidate",
    "Progress",
    "SearchError",
    "SearchState",
    "ask_seed",
    "balanced_score",
    "crowding",
    "describe_pick",
    "dominates",
    "feasible",
    "frontier",
    "make_candidate",
    "nondominated_ranks",
    "pick",
    "run_search",
    "survivors",
]
