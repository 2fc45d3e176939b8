"""The raw series the world publishes (sim.world.series) and how the traffic paths fill them.

What is pinned: a series exists from the first scrape after its cell's first request (so
``rate()`` never sees that request), buckets are cumulative (``le``), a lost scrape has no
sample, requests split evenly over pods, a latency sum has the law's mean, and a run's
series depend on its seed only.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario
from sim.policies.flagger.canary import FlaggerCanary
from sim.promql import compile_query
from sim.runs.runner import run_one
from sim.world import exporters
from sim.world.controller import World
from sim.world.series import SeriesStore

NAMES = exporters.flagger_workloads("podinfo", "default")


def _store(pods: tuple[int, int] = (1, 1), missing: np.ndarray | None = None) -> SeriesStore:
    u = exporters.universe("istio", NAMES, pods, bounds_ms=(10.0, 100.0))
    return SeriesStore(u, pods, 1, 20, 15.0, missing)


def _cells(store: SeriesStore, segments: int) -> np.ndarray:
    return np.zeros((1, segments, 3, 2, max(store.pods), store.n_quantities))


def _column(store: SeriesStore, **want: str) -> int:
    hits = [
        k for k, labels in enumerate(store.universe.labels) if all(dict(labels).get(n) == v for n, v in want.items())
    ]
    assert len(hits) == 1, hits
    return hits[0]


def test_a_series_exists_from_the_scrape_after_its_first_request() -> None:
    """A client library creates a labelled child at its first observation: the first sample
    already holds it (Prometheus then never sees the counter move from 0)."""
    store = _store()
    cells = _cells(store, 3)
    cells[0, 1, 1, 1, 0, 0] = 2  # two 5xx on the canary in slot 2
    store.add(np.array([0]), np.array([1, 2, 3]), cells)
    k = _column(
        store,
        __name__="istio_requests_total",
        reporter="destination",
        response_code="500",
        destination_workload="podinfo",
    )
    b = store.batch()
    assert b.present[0, 1:4, k].tolist() == [False, True, True]
    assert b.values[0, 2:4, k].tolist() == [2.0, 2.0]


def test_buckets_are_cumulative_and_inf_is_the_count() -> None:
    store = _store()
    cells = _cells(store, 1)
    # 3 requests at <= 10 ms, 1 in (10, 100], 2 above: count 6, latency sum 900 ms.
    cells[0, 0, 1, 0, 0, :] = [6, 3, 1, 2, 900]
    store.add(np.array([0]), np.array([1]), cells)
    b = store.batch()
    le = {
        v: b.values[
            0,
            1,
            _column(
                store,
                __name__="istio_request_duration_milliseconds_bucket",
                reporter="destination",
                response_code="200",
                destination_workload="podinfo",
                le=v,
            ),
        ]
        for v in ("10", "100", "+Inf")
    }
    assert le == {"10": 3.0, "100": 4.0, "+Inf": 6.0}
    s = _column(
        store,
        __name__="istio_request_duration_milliseconds_sum",
        reporter="destination",
        response_code="200",
        destination_workload="podinfo",
    )
    assert b.values[0, 1, s] == 900.0


def test_a_lost_scrape_has_no_sample_and_the_next_one_carries_the_count() -> None:
    missing = np.zeros((1, 20), dtype=bool)
    missing[0, 2] = True
    store = _store(missing=missing)
    cells = _cells(store, 3)
    cells[0, :, 1, 0, 0, 0] = [1, 1, 1]
    store.add(np.array([0]), np.array([1, 2, 3]), cells)
    k = _column(
        store,
        __name__="istio_requests_total",
        reporter="destination",
        response_code="200",
        destination_workload="podinfo",
    )
    b = store.batch()
    assert b.present[0, 1:4, k].tolist() == [True, False, True]
    assert b.values[0, 3, k] == 3.0


def _scenario(**telemetry: object) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "series",
            "horizon": "20m",
            "traffic": {"rate": "20/s"},
            "telemetry": {"scrape_interval": "15s", **telemetry},
            "baseline": {"error_rate": 0.01, "replicas": 3},
            "policy": {
                "flagger": {
                    "analysis": {
                        "interval": "1m",
                        "threshold": 5,
                        "maxWeight": 50,
                        "stepWeight": 50,
                        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 90}}],
                    }
                }
            },
        }
    )


def test_requests_split_evenly_over_the_pods() -> None:
    """Three canary pods each get a third of the canary's requests (chi-square over 200 runs)."""
    sc = _scenario()
    policy = scenario_policy(sc)
    assert isinstance(policy, FlaggerCanary)
    world = World(sc, policy, list(range(1000, 1200)), keep_series=True)
    world.run()
    store = world.series
    assert store is not None
    u = store.universe
    canary_ok = np.flatnonzero((u.version == 1) & (u.code == 0) & (u.kind == exporters.REQUESTS) & (u.pod >= 0))
    assert len(canary_ok) == 3
    per_pod = store.total[:, canary_ok]
    total = per_pod.sum(axis=1, keepdims=True)
    stat = (((per_pod - total / 3) ** 2) / np.maximum(total / 3, 1e-9)).sum()
    # 200 runs x 2 degrees of freedom: mean 400, sd 28; a bias of 5% per pod gives ~3,000.
    assert 250 < stat < 550


def test_a_runs_series_depend_on_its_seed_only() -> None:
    sc = _scenario()
    policy = scenario_policy(sc)
    alone = run_one(sc, policy, 777, series=True).series
    world = World(sc, policy, [5, 777, 9], keep_series=True)
    together = world.run()[1].series
    assert alone is not None and together is not None
    n = min(alone.values.shape[1], together.values.shape[1])
    assert np.array_equal(alone.values[:, :n], together.values[:, :n])
    assert np.array_equal(alone.present[:, :n], together.present[:, :n])


@pytest.mark.parametrize("exact", [False, True])
def test_the_latency_sum_over_the_count_is_the_laws_mean(exact: bool) -> None:
    """nginx's request-duration builtin is sum(rate(_sum)) / sum(rate(_count)): the mean.
    Fast path (bucket means plus a normal deviation) and per-request mode agree with the
    lognormal's mean exp(mu + sigma^2/2) (median 40 ms, p99 250 ms: 57.55 ms)."""
    sc = _scenario()
    spec = sc.policy.flagger.model_copy(update={"provider": "nginx"})  # type: ignore[union-attr]
    analysis = spec.analysis.model_copy(
        update={
            "metrics": [
                *spec.analysis.metrics,
                spec.analysis.metrics[0].model_copy(
                    update={"name": "request-duration", "thresholdRange": None, "threshold": 10000.0}
                ),
            ]
        }
    )  # type: ignore[union-attr]
    policy = FlaggerCanary(spec.model_copy(update={"analysis": analysis}), "nginx")
    seeds = [3] if exact else list(range(40))
    sums, counts = 0.0, 0.0
    for s in seeds:
        b = run_one(sc, policy, s, series=True, exact=exact).series
        assert b is not None
        for k, labels in enumerate(b.labels):
            d = dict(labels)
            if d.get("canary") and d["__name__"] == "nginx_ingress_controller_response_duration_seconds_sum":
                sums += 1000 * b.values[0, :, k].max()
            elif d.get("canary") and d["__name__"] == "nginx_ingress_controller_response_duration_seconds_count":
                counts += b.values[0, :, k].max()
    assert counts > 1000
    assert sums / counts == pytest.approx(57.55, rel=0.08)


def test_rate_never_sees_a_new_series_first_increment() -> None:
    """Prometheus's rate() over a series born inside the window covers its samples only:
    the requests before its first scrape are lost (the issue's "new series" effect)."""
    store = _store()
    cells = _cells(store, 4)
    cells[0, :, 1, 1, 0, 0] = [5, 1, 1, 1]  # 5xx: 5 in slot 1, then 1 per slot
    store.add(np.array([0]), np.array([1, 2, 3, 4]), cells)
    q = compile_query(
        'sum(increase(istio_requests_total{reporter="destination",response_code="500",destination_workload="podinfo"}[1m]))'
    )
    res = q.evaluate(store.batch(), np.array([0]), 60.0)
    # Samples at 15 (5), 30 (6), 45 (7), 60 (8): +3 over 45 s, extrapolated 15 s back to
    # the window's start (less than 1.1 average gaps, and the counter would reach zero only
    # 75 s back; promql/functions.go extrapolatedRate): 3 x 60 / 45 = 4, never 8.
    assert res.value.values[0, 0] == pytest.approx(4.0)


@pytest.mark.parametrize("pick", ["buckets", "counts", "sums", "one-pod"])
def test_a_store_of_a_few_series_holds_what_the_whole_universe_does(pick: str) -> None:
    """Issue 17: the store builds only the cells and quantities its series read, and
    keeps running totals inside its compiled gather. A store cut to a few series holds,
    bit for bit, what the store of every series holds for them: over several runs (not
    in lockstep order), segments within one slot and across slots, and totals carried
    from one ``add`` to the next."""
    pods = (2, 3)
    u = exporters.universe("istio", NAMES, pods, bounds_ms=(10.0, 100.0, 250.0))
    kind = {"buckets": exporters.BUCKET, "counts": exporters.REQUESTS, "sums": exporters.SUM}
    if pick == "one-pod":
        keep = np.flatnonzero(u.pod == 1)
    else:
        keep = np.flatnonzero(u.kind == kind[pick])
    keep = keep[: max(1, len(keep) // 2)]  # some of them: cells some series does not read
    assert 0 < len(keep) < len(u.labels)
    whole = SeriesStore(u, pods, 4, 20, 15.0, None)
    few = SeriesStore(u.take(keep), pods, 4, 20, 15.0, None)
    rng = np.random.default_rng(7)
    for runs, slots in (([2, 0, 3], [1, 1, 2]), ([0, 1, 2, 3], [2, 3]), ([3, 0, 2], [3, 4, 4, 5])):
        cells = rng.poisson(3.0, (len(runs), len(slots)) + whole.cell_shape).astype(float)
        cells[..., -1] = rng.gamma(2.0, 40.0, cells.shape[:-1])  # latency sums, ms
        whole.add(np.array(runs), np.array(slots), cells.copy())
        few.add(np.array(runs), np.array(slots), cells.copy())
    a, b = whole.batch(), few.batch()
    assert a.present.any()
    assert np.array_equal(a.values[..., keep], b.values)
    assert np.array_equal(a.present[..., keep], b.present)
    assert np.array_equal(whole.total[:, keep], few.total)
