"""Evaluations per second of the PromQL engine on batch-sized inputs (issue 14).

Run: ``PYTHONPATH=. python benchmarks/promql_engine.py``. A batch of 500 runs x 64
sample slots x 50 series (a Flagger request counter by pod and code) and a histogram of
20 buckets x 4 series; each query is evaluated for all 500 rows at one instant.
"""

from __future__ import annotations

import math
import time

import numpy as np

from sim.promql import SeriesBatch, compile_query, labels_of

RUNS, SLOTS = 500, 64


def counter_batch() -> SeriesBatch:
    """50 request counters: 10 pods x 5 codes, scraped every 15 s, some born late."""
    rng = np.random.default_rng(1)
    labels = tuple(
        labels_of("x", a="b" if pod < 8 else "c", pod=f"p{pod}", code=code)
        for pod in range(10)
        for code in ("200", "201", "404", "500", "503")
    )
    times = np.arange(SLOTS) * 15.0
    increments = rng.poisson(3.0, size=(RUNS, SLOTS, len(labels))).astype(float)
    values = np.cumsum(increments, axis=1)
    present = values > 0
    return SeriesBatch(labels, times, values, present)


def lossy_counter_batch() -> SeriesBatch:
    """The counters with 2% of scrapes lost (their windows take the general path)."""
    batch = counter_batch()
    lost = np.random.default_rng(3).random(batch.present.shape) < 0.02
    return SeriesBatch(batch.labels, batch.times_s, batch.values, batch.present & ~lost)


def histogram_batch() -> SeriesBatch:
    """20 buckets x 4 series of a latency histogram."""
    rng = np.random.default_rng(2)
    bounds = [*(f"{b:g}" for b in np.geomspace(5, 5000, 19)), "+Inf"]
    labels = tuple(labels_of("h_bucket", pod=f"p{p}", le=le) for p in range(4) for le in bounds)
    times = np.arange(SLOTS) * 15.0
    per = rng.poisson(2.0, size=(RUNS, SLOTS, 4, 20)).astype(float)
    cumulative = np.cumsum(np.cumsum(per, axis=3), axis=1).reshape(RUNS, SLOTS, 80)
    return SeriesBatch(labels, times, cumulative, cumulative > 0)


QUERIES = {
    "flagger success rate": (
        'sum(rate(x{a="b",code!~"5.*"}[1m])) / sum(rate(x{a="b"}[1m])) * 100',
        counter_batch,
    ),
    "5xx ratio by pod": ('sum by (pod) (rate(x{code=~"5.."}[1m])) / sum by (pod) (rate(x[1m]))', counter_batch),
    "with 2% lost scrapes": (
        'sum(rate(x{a="b",code!~"5.*"}[1m])) / sum(rate(x{a="b"}[1m])) * 100',
        lossy_counter_batch,
    ),
    "irate": ('sum(irate(x{a="b"}[1m]))', counter_batch),
    "p99 latency": ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[1m])))", histogram_batch),
}


def machine_reference_us() -> float:
    """Microseconds of one numpy multiply of 25,000 floats: to compare runs across
    machines and loads (the engine's cost is a few dozen such passes)."""
    left, right = np.random.default_rng(0).random((2, 25_000))
    best = math.inf
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(200):
            np.multiply(left, right)
        best = min(best, (time.perf_counter() - start) / 200)
    return best * 1e6


def main() -> None:
    """Print evaluations per second of each query shape."""
    print(f"machine reference: {machine_reference_us():.1f} us per 25k-float numpy multiply")
    rows = np.arange(RUNS)
    for name, (text, make) in QUERIES.items():
        batch = make()
        query = compile_query(text)
        query.evaluate(batch, rows, 600.0)  # binds the universe
        # The best of several rounds, in wall and in CPU time: the machine may be shared.
        wall, cpu = [], []
        for _ in range(7):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(30):
                query.evaluate(batch, rows, 600.0)
            wall.append((time.perf_counter() - start) / 30)
            cpu.append((time.process_time() - start_cpu) / 30)
        elapsed = min(wall)
        print(
            f"{name:22s} {1 / elapsed:7.0f} evaluations/s  ({elapsed * 1e3:.3f} ms wall, "
            f"{min(cpu) * 1e3:.3f} ms CPU for {RUNS} runs)"
        )


if __name__ == "__main__":
    main()
