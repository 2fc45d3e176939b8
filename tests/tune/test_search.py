"""sim.tuning.search: determinism, resuming, racing, the frontier and the pick rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import sim
from sim.tuning import portfolio as portfolio_module
from sim.tuning.api import tune
from sim.tuning.metrics import Estimate
from sim.tuning.search import (
    Candidate,
    SearchError,
    balanced_score,
    frontier,
    nondominated_ranks,
    pick,
    survivors,
)
from sim.tuning.spec import load_tune
from tests.tune.tiny import write_tiny

OBJECTIVES = ["excess_errors.mean", "detection_time_s.median"]
CONSTRAINT = "false_rollback_rate"


def _frame(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "candidates.parquet")


# --- the pieces of the rule, on made-up estimates --------------------------------------------


def _cand(cid: int, a: float, b: float, fr: tuple[float, float, float] = (0.0, 0.0, 0.1)) -> Candidate:
    est = {
        OBJECTIVES[0]: Estimate(a, a, a, 10),
        OBJECTIVES[1]: Estimate(b, b, b, 10),
        CONSTRAINT: Estimate(*fr, 10),
    }
    return Candidate(cid, f"c{cid}", {}, {}, None, rung=1, estimates=est)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return load_tune(write_tiny(tmp_path_factory.mktemp("tiny")))


def test_nondominated_ranks() -> None:
    import numpy as np

    pts = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [6, 6], [math.inf, 0]])
    assert nondominated_ranks(pts).tolist() == [0, 0, 0, 1, 2, 0]


def test_frontier_is_feasible_on_the_pessimistic_bound_and_non_dominated(tiny) -> None:
    # The constraint is false_rollback_rate <= 0.5 (upper end of the interval).
    a = _cand(0, 1, 5)
    b = _cand(1, 2, 2)
    c = _cand(2, 3, 3)  # dominated by b
    d = _cand(3, 0.5, 0.5, fr=(0.2, 0.1, 0.6))  # best objectives, but its upper bound breaks the ceiling
    front = frontier([a, b, c, d], tiny)
    assert [x.id for x in front] == [0, 1]  # sorted by the first objective


def test_survivors_judge_constraints_projected_to_the_last_rung(tiny) -> None:
    # The constraint is false_rollback_rate <= 0.5; tiny's rungs are 4 and 12 runs, so a
    # rung-0 interval projects to sqrt(1/3) of its width. d's upper end (0.7) projects to
    # 0.45 + 0.25 x 0.577 = 0.594: it could not show it is under 0.5 however long it ran.
    # f's (0.75) projects to 0.2 + 0.55 x 0.577 = 0.518 ... also out; g's (0.6) to 0.431: in.
    d = _cand(3, 0.5, 0.5, fr=(0.45, 0.3, 0.7))
    f = _cand(5, 0.2, 0.2, fr=(0.2, 0.0, 0.75))
    g = _cand(6, 3, 3, fr=(0.2, 0.0, 0.6))
    a = _cand(0, 1, 5)
    for c in (d, f, g, a):
        object.__setattr__(c, "rung", 0)
    assert [x.id for x in survivors([d, f, g, a], tiny, 2)] == [0, 6]
    # With room for all: those that cannot show they meet it come last, f before d (f dominates d).
    assert [x.id for x in survivors([d, f, a], tiny, 3)] == [0, 5, 3]


def test_balanced_pick_is_the_smallest_geometric_mean_of_ratios(tiny) -> None:
    base = _cand(-1, 10, 100)
    a = _cand(0, 5, 100)  # sqrt(0.5 x 1) = 0.707
    b = _cand(1, 1, 400)  # sqrt(0.1 x 4) = 0.632
    assert balanced_score(a, base, tiny.objectives) == pytest.approx(math.sqrt(0.5))
    assert balanced_score(b, base, tiny.objectives) == pytest.approx(math.sqrt(0.4))
    assert pick([a, b], base, tiny).id == 1


def test_balanced_pick_leaves_out_an_objective_that_is_zero_for_the_base(tiny) -> None:
    base = _cand(-1, 0, 100)
    a = _cand(0, 50, 90)
    b = _cand(1, 1, 95)
    assert balanced_score(a, base, tiny.objectives) == pytest.approx(0.9)
    assert pick([a, b], base, tiny).id == 0


def test_pick_by_objective_name(tmp_path: Path) -> None:
    tf = load_tune(write_tiny(tmp_path, extra="pick: detection_time_s.median\n"))
    base = _cand(-1, 10, 100)
    assert pick([_cand(0, 5, 100), _cand(1, 9, 50)], base, tf).id == 1


# --- whole searches ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("done")
    path = write_tiny(folder, budget=16)
    return path, tune(path, folder / "out")


def test_outputs_and_columns(done) -> None:
    path, result = done
    out = result.out
    for name in ("tune.json", "candidates.parquet", "frontier.parquet", "validation.json", "best-policy.yaml"):
        assert (out / name).is_file(), name
    frame = _frame(out)
    space = load_tune(path).space.names
    metrics = [*OBJECTIVES, CONSTRAINT]
    expected = ["candidate", "label", "base", *space, "rung", "runs", "rollouts"]
    expected += [c for m in metrics for c in (m, f"{m}_low", f"{m}_high")]
    expected += [f"{CONSTRAINT}_ok", "feasible", "frontier", "best"]
    assert list(frame.columns) == expected
    assert frame["candidate"].tolist() == list(range(-1, 16))
    assert frame.loc[0, "base"] and frame.loc[0, "policy.flagger.analysis.stepWeight"] == 10
    assert frame["best"].sum() == 1
    info = json.loads((out / "tune.json").read_text())
    assert info["status"] == "done" and info["rungs"] == [4, 12] and info["best"] == result.state.best
    front = pd.read_parquet(out / "frontier.parquet")
    assert front["candidate"].tolist() == frame[frame["frontier"]].sort_values(OBJECTIVES[0])["candidate"].tolist()


def test_frontier_rows_are_feasible_and_dominated_by_no_finalist(done) -> None:
    _, result = done
    frame = _frame(result.out)
    last = frame[frame["rung"] == frame["rung"].max()]
    ok = last[last[f"{CONSTRAINT}_high"] <= 0.5]
    front = frame[frame["frontier"]]
    assert len(front) >= 1
    assert (front[f"{CONSTRAINT}_high"] <= 0.5).all() and front["feasible"].all()
    pts = ok[OBJECTIVES].fillna(math.inf).to_numpy()
    for _, row in front.iterrows():
        p = row[OBJECTIVES].astype(float).fillna(math.inf).to_numpy()
        assert not any((q <= p).all() and (q < p).any() for q in pts)
    for _, row in ok[~ok["frontier"]].iterrows():  # every other feasible finalist is dominated
        p = row[OBJECTIVES].astype(float).fillna(math.inf).to_numpy()
        assert any((q <= p).all() and (q < p).any() for q in pts)


def test_racing_keeps_a_third_and_extends_their_runs(done) -> None:
    _, result = done
    frame = _frame(result.out)
    finalists = frame[(frame["rung"] == 1) & ~frame["base"]]
    assert len(finalists) == math.ceil(16 / 3)
    assert (frame[frame["rung"] == 0]["runs"] == 4).all() and (finalists["runs"] == 12).all()
    runs = sorted(p.name for p in (result.out / "runs").iterdir())
    for cid in finalists["candidate"]:
        mine = [n for n in runs if n.startswith(f"s-c{cid:05d}-")]
        # rung 1 added runs 4..11 next to rung 0's 0..3: nothing simulated twice
        assert sorted(n.rsplit("-", 2)[1:] for n in mine) == [
            ["0000000", "0000004.parquet"],
            ["0000000", "0000004.parquet"],
            ["0000004", "0000012.parquet"],
            ["0000004", "0000012.parquet"],
        ]
    assert result.state.rollouts == 2 * (17 * 4 + (len(finalists) + 1) * 8) + 2 * 2 * 16


def test_rung_one_reuses_rung_zero_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, int, int]] = []
    real = portfolio_module.simulate

    def spy(policy, portfolio, entry, start, stop, seed):
        calls.append((policy.name, portfolio.stream, entry, start, stop))
        return real(policy, portfolio, entry, start, stop, seed)

    monkeypatch.setattr(portfolio_module, "simulate", spy)
    tune(write_tiny(tmp_path, budget=3), tmp_path / "out")
    assert len(calls) == len(set(calls))  # no range of a policy is simulated twice
    search = [c for c in calls if c[1] == 0]
    assert {c[3:] for c in search} == {(0, 4), (4, 12)}


def test_same_seed_same_candidates_for_any_worker_count(done, tmp_path: Path) -> None:
    path, result = done
    again = tune(path, tmp_path / "two", workers=2)
    pd.testing.assert_frame_equal(_frame(result.out), _frame(again.out))
    assert json.loads((result.out / "validation.json").read_text()) == json.loads(
        (again.out / "validation.json").read_text()
    )


def test_another_seed_another_search(done, tmp_path: Path) -> None:
    path, result = done
    other = tune(path, tmp_path / "other", seed=2, budget=8)
    a, b = _frame(result.out), _frame(other.out)
    assert a.iloc[1:9]["label"].tolist() != b.iloc[1:]["label"].tolist()


@pytest.mark.parametrize("when", ["after-batch", "mid-batch"])
def test_resume_after_an_interruption_gives_the_same_search(done, tmp_path: Path, when: str) -> None:
    path, result = done
    out = tmp_path / "resumed"

    def interrupt(p) -> None:
        if when == "after-batch" and p.candidates >= 8:
            raise KeyboardInterrupt
        # Mid-batch: the second batch is asked and partly simulated, not told.
        if when == "mid-batch" and p.candidates >= 8 and p.done > 2 * 9 * 4 + 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune(path, out, progress=interrupt)
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(
        study_name="pdsim-tune", storage=JournalStorage(JournalFileBackend(str(out / "study.journal")))
    )
    states = [t.state.name for t in study.get_trials()]
    assert states.count("COMPLETE") == 8
    assert states.count("RUNNING") == (8 if when == "mid-batch" else 0)
    assert json.loads((out / "tune.json").read_text())["status"] == "running"
    assert not (out / "candidates.parquet").exists()
    with pytest.raises(SearchError, match="--resume"):
        tune(path, out)
    resumed = tune(path, out, resume=True)
    pd.testing.assert_frame_equal(_frame(result.out), _frame(resumed.out))
    assert resumed.best == result.best


def test_resume_refuses_another_seed(done, tmp_path: Path) -> None:
    path, _ = done
    out = tmp_path / "o"
    out.mkdir()
    (out / "tune.json").write_text(json.dumps({"sha256": load_tune(path).sha256, "seed": 1}))
    with pytest.raises(SearchError, match="seed 1, not 5"):
        tune(path, out, resume=True, seed=5)


def test_best_policy_runs_and_matches_the_recommendation(done) -> None:
    _, result = done
    from sim.inputs.policy import read_policy

    loaded = read_policy([result.out / "best-policy.yaml"])
    assert loaded.data == result.best_policy
    for path, value in result.best.items():
        node = {"policy": loaded.data}
        for part in sim.sweeps.spec.parse_path(path):
            node = node[part]
        assert node == value


def test_validation_is_paired_on_fresh_seeds(done) -> None:
    _, result = done
    v = result.validation
    assert v["runs"] == 16
    assert set(v["fresh"]) == {*OBJECTIVES, CONSTRAINT}
    for m in v["fresh"].values():
        assert set(m) == {"base", "best", "diff", "ratio"}
    assert set(v["constraints_ok"]) == {CONSTRAINT}
    fresh = sorted(p.name for p in (result.out / "runs").iterdir() if p.name.startswith("v-"))
    assert len(fresh) == 2 * 2  # base and best, two scenarios, one piece each


def test_sim_tune_is_the_function_even_after_the_package_is_imported() -> None:
    import sim.tuning.spec  # noqa: F401  (binds sim.tuning, never sim.tune)
    from sim.tuning.api import tune

    assert sim.tune is tune
