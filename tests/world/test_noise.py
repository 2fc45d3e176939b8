"""Production noise (``sim.world.noise``): each model's law, and the fast path against the
per-request mode under all of them at once.

Each law test simulates a few hundred runs at a fixed canary weight (no policy) and
checks the statistic the model is defined by: the dispersion index of counts per window,
the correlation of the versions' shocks, the spread of per-run levels, a one-pod canary
against a ten-pod primary, the autocorrelation of an Ornstein–Uhlenbeck process, the
decay of a cold start, latency under load. Tolerances are several standard errors of the
estimate at these run counts; each test also checks that the effect is absent without
the model, so a model that does nothing fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.inputs.scenario import Scenario
from sim.world.controller import prepare
from sim.world.draws import gamma_rows, stream_states
from sim.world.exact import ExactTraffic
from sim.world.fast import FastTraffic
from sim.world.noise import Latent, NoiseModel
from sim.world.telemetry import CANARY, PRIMARY, Telemetry
from tests.world.test_fast import Routes

SEED = 20261206


def scenario(
    rate: float = 10.0, noise: dict | None = None, replicas: int = 1, horizon: str = "1h", **extra
) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "noise",
            "horizon": horizon,
            "after_promotion": 0,
            "traffic": {"rate": rate, "users": 1000},
            "baseline": {"error_rate": 0.01, "latency": {"median": "40ms", "p99": "250ms"}, "replicas": replicas},
            "telemetry": {"scrape_interval": "15s", **extra.pop("telemetry", {})},
            "noise": noise or {},
            **extra,
        }
    )


def latent(sc: Scenario, seeds: list[int], pods: tuple[int, int], ready: float | None = 0.0) -> Latent:
    horizon = sc.horizon + sc.after_promotion
    lat = NoiseModel(sc, pods, float(prepare(sc).rate.cumulative(horizon)) / horizon).draw(seeds)
    if ready is not None:
        for r in range(len(seeds)):
            lat.canary_ready(r, ready)
    return lat


def telemetry(sc: Scenario, runs: int) -> Telemetry:
    tel = Telemetry(runs, sc.horizon, sc.telemetry.scrape_interval, 0.0, None, sc.telemetry.buckets_ms,
                    primary_histogram=True)  # fmt: skip
    tel.reads_primary = True
    return tel


def fast(sc: Scenario, runs: int, weight: float = 50, pods: tuple[int, int] = (1, 1), seed: int = SEED) -> FastTraffic:
    """A batch of ``runs`` served up to the horizon at a fixed canary weight."""
    seeds = [seed + r for r in range(runs)]
    prep = prepare(sc)
    routes = Routes(np.full(runs, weight), 1)
    ft = FastTraffic(prep.rate, prep.population, prep.release, routes, telemetry(sc, runs), stream_states(seeds, 0),
                     noise=sc.telemetry.noise, latent=latent(sc, seeds, pods), pods=pods)  # fmt: skip
    ft.advance(np.arange(runs), sc.horizon)
    return ft


def per_window(x: np.ndarray, slots: int) -> np.ndarray:
    """Counts per scrape slot (R, K) summed over windows of ``slots`` slots (slot 0 is empty)."""
    x = x[:, 1:]
    k = x.shape[1] // slots
    return x[:, : k * slots].reshape(len(x), k, slots).sum(axis=2)


def dispersion(counts: np.ndarray) -> float:
    """Variance over mean of counts that share one expectation."""
    return float(counts.var(ddof=1) / counts.mean())


# --- the samplers --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [0.3, 1.0, 4.0, 60.0])
def test_gamma_sampler_draws_its_law(shape: float) -> None:
    """Marsaglia–Tsang (and its boost below shape 1) against scipy's Gamma CDF."""
    x = gamma_rows(stream_states([SEED], 6), np.array([0]), shape, 20000)[0]
    assert stats.kstest(x, stats.gamma(shape).cdf).pvalue > 1e-3
    wrong = stats.kstest(x, stats.gamma(shape * 1.1).cdf).pvalue
    assert wrong < 1e-3


# --- each law --------------------------------------------------------------------------------


def test_request_dispersion_is_the_stated_index_at_its_window() -> None:
    """Gamma blocks per minute: per-minute counts at 10/s have variance/mean = 8 (± 5%); a
    15 s slot, a quarter of a block, has 1 + 7/4."""
    noisy = fast(scenario(noise={"requests": {"dispersion": 8, "window": "1m"}}), 300)
    plain = fast(scenario(), 300)
    for ft, want in ((noisy, 8.0), (plain, 1.0)):
        per_min = per_window(ft.telemetry.n[:, :, PRIMARY] + ft.telemetry.n[:, :, CANARY], 4)
        assert dispersion(per_min) == pytest.approx(want, rel=0.05)
    # Within a window, a scrape slot's count has index 1 + (8 - 1)/4.
    slot = noisy.telemetry.n[:, 1:-1, PRIMARY] + noisy.telemetry.n[:, 1:-1, CANARY]
    assert dispersion(slot) == pytest.approx(1 + 7 / 4, rel=0.05)


def _pearson(errors: np.ndarray, requests: np.ndarray, p: float) -> float:
    """Dispersion of error counts given the request counts (Pearson's)."""
    return float(((errors - requests * p) ** 2).sum() / (requests * p).sum())


def test_error_dispersion_given_requests_is_the_stated_index() -> None:
    sc = scenario(rate=50, noise={"errors": {"dispersion": 4, "window": "1m"}})
    for ft, want in ((fast(sc, 300), 4.0), (fast(scenario(rate=50), 300), 1.0)):
        tel = ft.telemetry
        for v in (PRIMARY, CANARY):
            e, n = per_window(tel.err[:, :, v], 4), per_window(tel.n[:, :, v], 4)
            # The index was set at the whole traffic's mean rate; each version sees half.
            expected = 1 + (want - 1) / 2
            assert _pearson(e, n, 0.01) == pytest.approx(expected, rel=0.07)


@pytest.mark.parametrize("shared", [True, False])
def test_error_shocks_are_shared_by_both_versions_only_when_shared(shared: bool) -> None:
    sc = scenario(rate=200, noise={"errors": {"dispersion": 40, "window": "1m", "shared": shared}})
    tel = fast(sc, 100).telemetry
    ratio = [per_window(tel.err[:, :, v], 4) / per_window(tel.n[:, :, v], 4) for v in (PRIMARY, CANARY)]
    r = np.corrcoef(ratio[0].ravel(), ratio[1].ravel())[0, 1]
    assert r > 0.8 if shared else abs(r) < 0.05


def test_run_effects_spread_each_runs_level() -> None:
    """Per run, the log of the mean rate has sd 0.3; error ratio and latency shift with it."""
    sc = scenario(rate=20, noise={"run": {"rate": 0.3, "error_rate": 0.5, "latency": 0.2}})
    tel = fast(sc, 400).telemetry
    n = tel.n[:, :, PRIMARY].sum(axis=1) + tel.n[:, :, CANARY].sum(axis=1)
    assert np.log(n).std() == pytest.approx(0.3, rel=0.1)
    assert n.mean() == pytest.approx(20 * 3600, rel=0.03)  # mean 1 as a multiplier
    ratio = tel.err[:, :, PRIMARY].sum(axis=1) / tel.n[:, :, PRIMARY].sum(axis=1)
    assert np.log(ratio).std() == pytest.approx(0.5, rel=0.12)
    plain = fast(scenario(rate=20), 400).telemetry
    assert np.log(plain.n[:, :, PRIMARY].sum(axis=1)).std() < 0.02


def test_a_one_pod_canary_is_hit_harder_than_a_ten_pod_primary() -> None:
    """Per pod a lognormal error multiplier (sd 0.8 of its log): the run-to-run spread of a
    version's error ratio is that of the mean of its pods' multipliers."""
    sc = scenario(rate=500, noise={"pods": {"error_rate": 0.8}}, horizon="20m")
    tel = fast(sc, 400, pods=(10, 1)).telemetry
    ratio = [tel.err[:, :, v].sum(axis=1) / tel.n[:, :, v].sum(axis=1) / 0.01 for v in (PRIMARY, CANARY)]
    # One pod: the log of its multiplier is N(-0.32, 0.8²) (mean 1 as a multiplier).
    assert np.log(ratio[CANARY]).std() == pytest.approx(0.8, rel=0.08)
    assert np.log(ratio[CANARY]).mean() == pytest.approx(-0.32, abs=0.1)
    # Ten pods: the mean of ten multipliers, variance (e^{σ²} - 1) / 10.
    assert ratio[PRIMARY].var() == pytest.approx((np.exp(0.8**2) - 1) / 10, rel=0.3)
    assert ratio[CANARY].mean() == pytest.approx(1.0, abs=0.15)  # 3 standard errors of a heavy tail


def test_an_ou_process_has_its_autocorrelation() -> None:
    """log multiplier: stationary sd 0.4, correlation exp(-lag/tau) over noise steps."""
    sc = scenario(noise={"processes": [{"of": "error_rate", "sigma": 0.4, "tau": "2m"}]})
    lat = latent(sc, list(range(400)), (1, 1))
    lat.ensure(240)
    assert lat.error is not None
    x = np.log(lat.error[:, 0, :240]) + 0.4**2 / 2  # the process itself: mean 0, sd 0.4
    assert x.std() == pytest.approx(0.4, rel=0.05)
    for lag in (1, 4, 8):
        r = (x[:, :-lag] * x[:, lag:]).mean() / 0.4**2
        assert r == pytest.approx(np.exp(-lag * 15 / 120), abs=0.04)
    np.testing.assert_array_equal(lat.error[:, 0], lat.error[:, 1])  # shared by default


def test_a_cold_start_decays_from_when_the_pods_serve() -> None:
    """Expectations (no random noise): the canary's error ratio per slot is
    p (1 + 4 exp(-age / 1m)), age at the middle of the slot; the primary's is p."""
    sc = scenario(rate=100, noise={"cold_start": {"error_factor": 5, "latency_factor": 3, "decay": "1m"}},
                  telemetry={"noise": False}, horizon="10m")  # fmt: skip
    tel = fast(sc, 1).telemetry
    age = 15 * np.arange(1, 40) - 7.5
    ratio = tel.err[0, 1:40, CANARY] / tel.n[0, 1:40, CANARY]
    np.testing.assert_allclose(ratio, 0.01 * (1 + 4 * np.exp(-age / 60)), rtol=1e-9)
    np.testing.assert_allclose(tel.err[0, 1:40, PRIMARY] / tel.n[0, 1:40, PRIMARY], 0.01, rtol=1e-9)
    # Latency: the first slot's canary histogram is 3x slower (its median bucket moves).
    first = tel.hist[0, 1] / tel.hist[0, 1].sum()
    late = tel.hist[0, 39] / tel.hist[0, 39].sum()
    assert (first * np.arange(len(first))).sum() > (late * np.arange(len(late))).sum() + 0.5


def test_latency_grows_with_load_per_pod() -> None:
    """A one-pod canary at 50% serves 5x the per-pod rate of a ten-pod primary: slower."""
    sc = scenario(rate=400, noise={"load": {"capacity": 250}}, telemetry={"noise": False}, horizon="5m")
    tel = fast(sc, 1, pods=(10, 1)).telemetry
    bounds = np.array([*sc.telemetry.buckets_ms, np.inf])
    canary, primary = tel.hist[0, 1:].sum(axis=0), tel.hist_primary[0, 1:].sum(axis=0)
    assert (canary * np.log(np.minimum(bounds, 1e7))).sum() / canary.sum() > (
        primary * np.log(np.minimum(bounds, 1e7))
    ).sum() / primary.sum()


def test_noise_false_gives_expectations_whatever_the_models() -> None:
    every = {
        "requests": {"dispersion": 10},
        "errors": {"dispersion": 5},
        "run": {"rate": 0.5, "error_rate": 0.5},
        "pods": {"error_rate": 0.5},
        "processes": [{"of": "rate", "sigma": 0.5, "tau": "5m"}],
    }
    a = fast(scenario(noise=every, telemetry={"noise": False}), 3, pods=(3, 2)).telemetry
    b = fast(scenario(telemetry={"noise": False}), 3, pods=(3, 2)).telemetry
    np.testing.assert_allclose(a.n, b.n)
    np.testing.assert_allclose(a.err, b.err)


def test_scenario_keys_are_checked() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="whole number of noise steps"):
        scenario(noise={"requests": {"dispersion": 3, "window": "20s"}})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        scenario(noise={"requests": {"dispersion": 0.5}})


# --- fast path against the per-request mode ----------------------------------------------------

EVERY = {
    "requests": {"dispersion": 6, "window": "1m"},
    "errors": {"dispersion": 3, "window": "1m"},
    "run": {"rate": 0.2, "error_rate": 0.3},
    "pods": {"error_rate": 0.6},
    "processes": [{"of": "error_rate", "sigma": 0.5, "tau": "1m", "shared": False}],
    "cold_start": {"error_factor": 4, "decay": "2m"},
}


def _exact(sc: Scenario, seeds: list[int], weight: float, pods: tuple[int, int]) -> list[ExactTraffic]:
    prep = prepare(sc)
    out = []
    for seed in seeds:
        et = ExactTraffic(prep.rate, prep.population, prep.release, Routes(np.array([weight]), 1), telemetry(sc, 1),
                          [np.random.default_rng([seed, 99])], latent=latent(sc, [seed], pods), pods=pods)  # fmt: skip
        et.advance(np.array([0]), sc.horizon)
        out.append(et)
    return out


def _summaries(n: np.ndarray, err: np.ndarray, excess: np.ndarray) -> dict[str, np.ndarray]:
    return {"requests": n, "errors": err, "excess": excess}


def test_fast_and_exact_agree_in_distribution_under_every_noise_model() -> None:
    """Same runs' latent paths (one noise stream), Poisson draws apart: the canary's
    requests, errors and excess errors, and the primary's errors, agree (Cramér–von Mises,
    Bonferroni over the family); the same test tells a fast world without pod noise apart."""
    sc = scenario(rate=4, noise=EVERY, horizon="15m", baseline={"error_rate": 0.02, "replicas": 2},
                  release={"faults": [{"kind": "error_rate", "factor": 2}]})  # fmt: skip
    pods, runs, weight = (2, 1), 150, 50
    seeds = [SEED + r for r in range(runs)]
    exact = _exact(sc, seeds, weight, pods)
    ft = fast(sc, runs, weight=weight, pods=pods)

    def family(n, err, excess, primary_err):
        return {"requests": n, "errors": err, "excess": excess, "primary errors": primary_err}

    e = family(
        np.array([x.ledger.requests.sum() for x in exact]),
        np.array([x.ledger.errors.sum() for x in exact]),
        np.array([x.ledger.excess.sum() for x in exact]),
        np.array([x.telemetry.err[0, :, PRIMARY].sum() for x in exact]),
    )
    f = family(ft.ledger.requests.sum(axis=1), ft.ledger.errors.sum(axis=1), ft.ledger.excess.sum(axis=1),
               ft.telemetry.err[:, :, PRIMARY].sum(axis=1))  # fmt: skip
    level = 0.01 / len(e)
    for key in e:
        assert stats.cramervonmises_2samp(e[key], f[key]).pvalue > level, key
    other = Scenario.model_validate({**sc.model_dump(), "noise": {**EVERY, "pods": None}})
    g = fast(other, runs, weight=weight, pods=pods)
    assert stats.cramervonmises_2samp(e["errors"], g.ledger.errors.sum(axis=1)).pvalue < level


LATENCY = {
    "run": {"latency": 0.3},
    "pods": {"latency": 0.5, "error_rate": 0.5},
    "processes": [{"of": "latency", "sigma": 0.3, "tau": "2m", "shared": False}],
    "cold_start": {"latency_factor": 3, "error_factor": 2, "decay": "2m"},
    "load": {"capacity": 10},
}


def _mean_bucket(hist: np.ndarray) -> np.ndarray:
    """Each run's mean bucket index of a histogram (R, slots, B)."""
    h = hist.sum(axis=1)
    return (h * np.arange(h.shape[1])).sum(axis=1) / np.maximum(h.sum(axis=1), 1)


def test_fast_and_exact_agree_on_latency_under_its_noise_models() -> None:
    """Latency scaled per run, pod, process path, cold start and load, and failed requests
    with a law of their own (timeouts near 1 s): the canary's and the primary's histograms
    (mean bucket per run) agree between the modes, and differ without the pods' latency."""
    base = {"error_rate": 0.05, "replicas": 2, "latency": {"median": "40ms", "p99": "250ms"},
            "error_latency": {"median": "1s", "p99": "1500ms"}}  # fmt: skip
    sc = scenario(rate=4, noise=LATENCY, horizon="10m", baseline=base)
    pods, runs, weight = (2, 1), 150, 50
    seeds = [SEED + r for r in range(runs)]
    exact = _exact(sc, seeds, weight, pods)
    ft = fast(sc, runs, weight=weight, pods=pods)
    level = 0.01 / 2
    e_c = _mean_bucket(np.concatenate([x.telemetry.hist for x in exact]))
    e_p = _mean_bucket(np.concatenate([x.telemetry.hist_primary for x in exact]))
    assert stats.cramervonmises_2samp(e_c, _mean_bucket(ft.telemetry.hist)).pvalue > level
    assert stats.cramervonmises_2samp(e_p, _mean_bucket(ft.telemetry.hist_primary)).pvalue > level
    other = Scenario.model_validate({**sc.model_dump(), "noise": {**LATENCY, "pods": {"error_rate": 0.5}}})
    g = fast(other, runs, weight=weight, pods=pods)
    assert stats.cramervonmises_2samp(e_c, _mean_bucket(g.telemetry.hist)).pvalue < level


def test_a_pods_share_of_the_failures_follows_its_multiplier_in_the_series() -> None:
    """Under per-pod error noise, the raw series of a three-pod canary split its failed
    requests over the pods in proportion to the pods' multipliers (chi-square over 200
    runs, 2 degrees of freedom each), where even shares would be far off."""
    from sim.inputs.policy import scenario_policy
    from sim.world import exporters
    from sim.world.controller import World

    sc = scenario(rate=40, noise={"pods": {"error_rate": 0.7}}, horizon="20m", replicas=3,
                  policy={"flagger": {"analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                          "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 0}}]}}})  # fmt: skip
    world = World(sc, scenario_policy(sc), list(range(2000, 2200)), keep_series=True)
    world.run()
    store, latent_ = world.series, world.latent
    assert store is not None and latent_.pod_error is not None
    u = store.universe
    failed = [np.flatnonzero((u.version == 1) & (u.code == 1) & (u.kind == exporters.REQUESTS) & (u.pod == j))
              for j in range(3)]  # fmt: skip
    assert all(len(f) >= 1 for f in failed)
    per_pod = np.stack([store.total[:, f].sum(axis=1) for f in failed], axis=1)  # (R, 3)
    total = per_pod.sum(axis=1, keepdims=True)

    def chi2(shares: np.ndarray) -> float:
        expected = total * shares
        return float((((per_pod - expected) ** 2) / np.maximum(expected, 1e-9)).sum())

    m = latent_.pod_error[:, 1, :3]
    # 200 runs x 2 degrees of freedom: mean 400, sd 28.
    assert 250 < chi2(m / m.sum(axis=1, keepdims=True)) < 560
    assert chi2(np.full((1, 3), 1 / 3)) > 2000
