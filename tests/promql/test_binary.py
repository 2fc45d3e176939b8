"""Binary operators and vector matching (prometheus v2.42.0 promql/engine.go VectorBinop,
resultMetric, VectorscalarBinop, shouldDropMetricName, VectorAnd/Or/Unless)."""

from __future__ import annotations

import math

from sim.promql import labels_of
from tests.promql.batches import batch, run, series_of, single

REQ = {
    labels_of("req", pod="a", code="200"): [[6.0], [6.0]],
    labels_of("req", pod="a", code="500"): [[2.0], [2.0]],
    labels_of("req", pod="b", code="200"): [[0.0], [None]],
    labels_of("pods", pod="a", node="n1"): [[1.0], [1.0]],
    labels_of("pods", pod="b", node="n2"): [[4.0], [4.0]],
}


def test_scalar_arithmetic_and_comparison() -> None:
    data = batch([0.0], REQ)
    assert run("1 + 2 * 3", data, 0.0).value.values.tolist() == [7.0, 7.0]  # type: ignore[union-attr]
    assert run("2 > bool 1", data, 0.0).value.values.tolist() == [1.0, 1.0]  # type: ignore[union-attr]
    assert run("-7 % 3", data, 0.0).value.values[0] == -1.0  # type: ignore[union-attr]  # Go's math.Mod


def test_vector_scalar_drops_name_for_arithmetic_only() -> None:
    data = batch([0.0], REQ)
    assert series_of(run('req{code="500"} * 100', data, 0.0)) == {labels_of(pod="a", code="500"): 200.0}
    # A filter keeps the name and the sample value, also with the scalar on the left.
    assert series_of(run("req > 1", data, 0.0)) == {
        labels_of("req", pod="a", code="200"): 6.0,
        labels_of("req", pod="a", code="500"): 2.0,
    }
    assert series_of(run("3 < req", data, 0.0)) == {labels_of("req", pod="a", code="200"): 6.0}
    # bool drops the name and keeps every series.
    assert series_of(run("req > bool 1", data, 0.0), 1) == {
        labels_of(pod="a", code="200"): 1.0,
        labels_of(pod="a", code="500"): 1.0,
    }


def test_division_by_zero_is_nan_or_inf_not_empty() -> None:
    data = batch([0.0], REQ)
    value = single(run('sum(req{pod="b"}) / sum(req{pod="b"})', data, 0.0))
    assert value is not None and math.isnan(value)
    assert single(run('sum(req{pod="b"}) / sum(req{pod="b"})', data, 0.0), 1) is None
    assert single(run('sum(req{pod="a"}) / 0', data, 0.0)) == math.inf


def test_one_to_one_matching_on_all_labels_but_the_name() -> None:
    data = batch([0.0], REQ)
    assert series_of(run("req / req", data, 0.0), 1) == {
        labels_of(pod="a", code="200"): 1.0,
        labels_of(pod="a", code="500"): 1.0,
    }
    found = series_of(run("sum by (pod) (req) / on (pod) sum by (pod, node) (pods)", data, 0.0))
    assert found == {labels_of(pod="a"): 8.0, labels_of(pod="b"): 0.0}


def test_group_left_takes_extra_labels_from_the_one_side() -> None:
    data = batch([0.0], REQ)
    found = series_of(run("req * on (pod) group_left (node) pods", data, 0.0), 0)
    assert found == {
        labels_of(pod="a", code="200", node="n1"): 6.0,
        labels_of(pod="a", code="500", node="n1"): 2.0,
        labels_of(pod="b", code="200", node="n2"): 0.0,
    }
    found = series_of(run("pods * on (pod) group_right (node) req", data, 0.0), 1)
    assert found == {labels_of(pod="a", code="200", node="n1"): 6.0, labels_of(pod="a", code="500", node="n1"): 2.0}


def test_many_to_many_is_an_error_of_the_run() -> None:
    data = batch([0.0], REQ)
    result = run("pods / on (pod) req", data, 0.0)
    assert result.error is not None and result.error.tolist() == [True, True]
    assert result.message.startswith('found duplicate series for the match group {pod="a"} on the right hand-side')
    assert result.message.endswith(";many-to-many matching not allowed: matching labels must be unique on one side")
    result = run('req / on (pod) pods{pod="b"}', data, 0.0)
    assert result.error is None  # only pod b matches, and it is unique
    result = run("req / ignoring (code) pods", data, 0.0)  # node differs: no match
    assert result.error is None and series_of(result) == {}


def test_one_to_one_with_several_left_matches_is_an_error() -> None:
    data = batch([0.0], REQ)
    result = run("req + on (pod) pods", data, 0.0)
    assert result.error is not None and result.error.tolist() == [True, True]
    assert result.message == (
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    )
    # Only matches that are kept count: the filter drops both of pod a's.
    result = run("req < on (pod) pods", data, 0.0)
    assert result.error is None
    assert series_of(result) == {labels_of(pod="b"): 0.0}


def test_empty_side_short_circuits_before_the_duplicate_check() -> None:
    data = batch([0.0], REQ)
    result = run("nothing / on (pod) req", data, 0.0)
    assert result.error is None and series_of(result) == {}


def test_set_operators() -> None:
    data = batch([0.0], REQ)
    assert set(series_of(run('req and on (pod) pods{pod="b"}', data, 0.0))) == {labels_of("req", pod="b", code="200")}
    assert set(series_of(run('req unless on (pod) pods{pod="b"}', data, 0.0))) == {
        labels_of("req", pod="a", code="200"),
        labels_of("req", pod="a", code="500"),
    }
    found = series_of(run('req{code="500"} or on (pod) pods', data, 0.0))
    assert found == {labels_of("req", pod="a", code="500"): 2.0, labels_of("pods", pod="b", node="n2"): 4.0}


def test_unary_minus_drops_the_name() -> None:
    data = batch([0.0], REQ)
    assert series_of(run('-req{code="500"}', data, 0.0)) == {labels_of(pod="a", code="500"): -2.0}
