"""The records of every bundled scenario are unchanged (issue 17: speed work changes no result).

Recomputes the digests of ``tests/fixtures/record_digests.json`` (every field of every
record, floats by repr; the cases are listed in ``tests/helpers/record_digests.py``) and
fails naming each case whose records changed, with its outcome counts and mean decision time
before and after and the first run that differs. A change meant to change results
regenerates the fixture with ``tools/record_digests.py --write`` and says so in its commit;
speed work never does.
"""

from __future__ import annotations

import pytest

from tests.helpers.record_digests import (
    RUNS,
    SLOW_RUNS,
    Case,
    Entry,
    cases,
    compute,
    difference,
    differences,
    digest_records,
    load_fixture,
)

CASES = cases()


@pytest.fixture(scope="module")
def fixture() -> dict[str, dict[str, Entry]]:
    return load_fixture()


def test_the_fixture_lists_every_case(fixture: dict[str, dict[str, Entry]]) -> None:
    """A scenario or policy file added without its digest fails here, by name."""
    for runs in (RUNS, SLOW_RUNS):
        entries = fixture[str(runs)]
        assert sorted(entries) == sorted(c.key for c in CASES), (
            "regenerate with tools/record_digests.py --write --slow: "
            f"missing {sorted({c.key for c in CASES} - entries.keys())}, "
            f"extra {sorted(entries.keys() - {c.key for c in CASES})}"
        )
        assert all(e.runs == runs and len(e.run_digests) * e.block == runs for e in entries.values())


def test_records_unchanged(fixture: dict[str, dict[str, Entry]]) -> None:
    """Every case's records, 200 runs each, as committed (about 30 s on one core)."""
    got = {c.key: compute(c, RUNS) for c in CASES}
    changed = differences(fixture[str(RUNS)], got, [c.key for c in CASES])
    assert not changed, "records changed:\n" + "\n".join(changed)


@pytest.mark.slow
def test_records_unchanged_many_runs(fixture: dict[str, dict[str, Entry]]) -> None:
    """The same at 2,000 runs per case (rarer paths: late rollbacks, rare outcomes)."""
    got = {c.key: compute(c, SLOW_RUNS) for c in CASES}
    changed = differences(fixture[str(SLOW_RUNS)], got, [c.key for c in CASES])
    assert not changed, "records changed:\n" + "\n".join(changed)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["good-release", "argo-canary-steps", "good-release@judge:sequential"])
def test_records_unchanged_on_two_workers(fixture: dict[str, dict[str, Entry]], key: str) -> None:
    """Records do not depend on the workers that computed them (run_batch's contract)."""
    case = next(c for c in CASES if c.key == key)
    line = difference(key, fixture[str(SLOW_RUNS)][key], compute(case, SLOW_RUNS, workers=2))
    assert line is None, line


class _Record:
    """A stand-in run record: what the digest reads (``as_dict`` and two fields)."""

    def __init__(self, **fields: object) -> None:
        self.fields = {"outcome": "promoted", "decision_time_s": 420.0, **fields}
        self.outcome = self.fields["outcome"]
        self.decision_time_s = self.fields["decision_time_s"]

    def as_dict(self) -> dict[str, object]:
        return dict(self.fields)


def test_a_last_bit_change_is_caught_and_named() -> None:
    """The check can fail: one float one ulp off in run 3 changes the digest, and the
    message names the case, the first differing run and the summaries."""
    import math

    before = [_Record(run=i, excess_errors=0.1) for i in range(5)]
    after = [_Record(run=i, excess_errors=math.nextafter(0.1, 1.0) if i == 3 else 0.1) for i in range(5)]
    line = difference("x@judge:k", digest_records(before, 7), digest_records(after, 7))
    assert line is not None
    assert line.startswith("x@judge:k: records changed (5 runs, seed 7); first differing run 3;")
    assert "outcomes {'promoted': 5} -> {'promoted': 5}" in line
    blocks = difference("x", digest_records(before, 7, block=2), digest_records(after, 7, block=2))
    assert blocks is not None and "first differing run in 2..3;" in blocks


def test_an_int_become_float_is_a_change_but_a_numpy_scalar_is_not() -> None:
    """Types are digested as the Python values they stand for: a count that turns from
    int to float is a change; the same value as a numpy scalar is not."""
    import numpy as np

    plain = digest_records([_Record(ticks=5, excess_errors=0.25)], 1).digest
    assert digest_records([_Record(ticks=5.0, excess_errors=0.25)], 1).digest != plain
    assert digest_records([_Record(ticks=np.int64(5), excess_errors=np.float64(0.25))], 1).digest == plain


def test_every_judge_kind_and_policy_file_is_a_case() -> None:
    """The cases the issue names: each bundled scenario, and good-release and error-spike
    under every judge kind and every gates/sweeps policy file."""
    keys = {c.key for c in CASES}
    for stem in ("good-release", "error-spike"):
        for kind in ("sequential", "msprt", "group-sequential", "sprt", "naive", "bayes", "kayenta"):
            assert f"{stem}@judge:{kind}" in keys
        assert f"{stem}@gates/policies/argo-canary.yaml" in keys
        assert f"{stem}@sweeps/policies/threshold-2.yaml" in keys
    assert {"argo-canary-steps", "calibrated-nab-elb"} <= keys
    assert all(isinstance(c, Case) for c in CASES)
