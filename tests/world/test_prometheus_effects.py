"""What evaluating queries as Prometheus does changes in outcomes (issue 14, item 7).

The cases are in ``tests/world/effects.py``; ``tools/prometheus_effects.py`` prints them
as the README's table. Each test runs a few hundred rollouts with a fixed seed; the bounds
sit far from what the previous signal-binding world gave (0% in every case but the
Istio control), so they fail if the semantics regress.
"""

from __future__ import annotations

from sim.runs.runner import run_batch
from tests.world.effects import CASES, Effect

RUNS = 300


def _share(case: Effect) -> float:
    records = run_batch(case.scenario, case.policy, RUNS, seed=case.seed)
    return sum(case.counts(r) for r in records) / len(records)


def _case(prefix: str) -> list[Effect]:
    return [c for c in CASES if c.name.startswith(prefix)]


def test_a_5xx_numerator_reads_no_data_until_a_5xx_series_exists() -> None:
    """``sum(rate(x{code=~"5.."}[1m]))`` is empty until the canary's first 5xx, and
    Flagger fails a check with no values (pkg/metrics/providers/prometheus.go RunQuery:
    ErrNoValuesFound): at 1 request/s a good release is almost always rolled back, at
    100/s rarely (a 5xx series exists from the first minutes)."""
    at_1, at_10, at_100 = (_share(c) for c in _case("Flagger, 5xx-numerator"))
    assert at_1 > 0.85 and 0.5 < at_10 < 0.95 and at_100 < 0.2
    assert at_1 > at_10 > at_100


def test_nginx_judges_the_mean_latency_istio_the_p99() -> None:
    """Flagger's nginx builtin request-duration is sum(_sum)/sum(_count) x 1000
    (pkg/metrics/observers/nginx.go): +400 ms on a 40 ms median gives a mean ~460 ms,
    under the 500 ms maximum, so Flagger-on-nginx promotes the regression; Istio's is a
    p99 (observers/istio.go) and catches it."""
    nginx, istio = _share(_case("Flagger on nginx")[0]), _share(_case("Flagger on Istio")[0])
    assert nginx > 0.9 and istio < 0.05


def test_argo_aborts_a_slightly_bad_release_at_low_traffic_by_chance() -> None:
    """At 1 request/s with 1% errors, a window holds few requests: ``result[0] >= 0.95``
    fails now and then, and the canary's new series make the first measurements Errors.
    irate reads only the last two samples (15 s of requests, promql/functions.go
    instantValue), so it fails more often than rate over the whole minute."""
    share = {f: _share(_case(f"Argo, success-rate template with {f},")[0]) for f in ("irate", "rate")}
    assert share["rate"] > 0.03 and share["irate"] > share["rate"]
