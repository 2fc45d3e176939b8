"""Real service recordings into Prometheus ``/api/v1/query_range`` exports (issue 15).

Usage: python tools/recordings.py [--nab GIT_DIR] [--out data/recordings]

Reads two series of the Numenta Anomaly Benchmark (github.com/numenta/NAB, MIT licence) at
the pinned commit ``NAB_COMMIT`` with ``git show`` (``--nab``: a clone or mirror of NAB) and
writes, into ``--out``:

* ``nab-elb-request-count.json``: ``realAWSCloudwatch/elb_request_count_8c0756.csv`` (the
  5-minute request counts of a real AWS Elastic Load Balancer, 14 days) as the cumulative
  counter ``istio_requests_total`` with the labels Istio's destination reporter publishes
  for one pod (taken from pdsim's own exporter, ``sim.world.exporters``), response code 200:
  the load balancer's whole traffic as one pod's series, since the source has no pods and no
  status codes. CloudWatch stamps a period with its start, so the total up to the end of period
  i is the sample at ``t_i + 5m``; a zero sample at the first period's start makes every
  recorded count an increase between two consecutive samples. A missing period (8 of them)
  stays missing: no sample is invented.
* ``nab-ec2-request-latency.json``: ``realKnownCause/ec2_request_latency_system_failure.csv``
  (an EC2 instance's request latency, one value per 5 minutes) as the gauge
  ``aws_ec2_request_latency_average``: a CloudWatch *average* per period, not a histogram,
  so it is kept as what it is (no buckets are invented; it cannot give quantiles).

NAB's timestamps carry no time zone; they are written as if UTC. The same inputs always give
the same bytes (the files are committed; ``tests/test_recordings.py`` checks them).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.promql.openmetrics import api_time, api_value  # noqa: E402

NAB_URL = "https://github.com/numenta/NAB"
NAB_COMMIT = "ea702d75cc2258d9d7dd35ca8e5e2539d71f3140"
NAB_DEFAULT_DIR = Path("/work/.mirror/numenta+NAB/repo")
ELB_PATH = "data/realAWSCloudwatch/elb_request_count_8c0756.csv"
LATENCY_PATH = "data/realKnownCause/ec2_request_latency_system_failure.csv"
ELB_FILE = "nab-elb-request-count.json"
LATENCY_FILE = "nab-ec2-request-latency.json"
LATENCY_METRIC = "aws_ec2_request_latency_average"
#: sha256 of each source file at NAB_COMMIT: the conversion refuses anything else.
SOURCE_SHA256 = {
    ELB_PATH: "74c26574a01ca9fb89dddb5021e2e13c3a93eb25dc640438a9acb1ceb00f1021",
    LATENCY_PATH: "98378580aa80157e057c61d59d81daddccc6c65a2c0c800e3f01f603b8215c3f",
    "LICENSE.txt": "0a0b4d0b10cb1f7ed9ab2993ef93defc03447e6eba9daca1315dd32dae4877e3",
}
#: The recordings' period: CloudWatch's 5-minute statistics.
STEP_S = 300


@dataclass(frozen=True)
class Recording:
    """One recorded series: unix times (seconds, as if UTC) and values, in file order."""

    times_s: np.ndarray
    values: np.ndarray


def parse_nab_csv(text: str) -> Recording:
    """A NAB data file (``timestamp,value`` with ``YYYY-MM-DD HH:MM:SS`` times)."""
    rows = list(csv.reader(io.StringIO(text)))
    if rows[0] != ["timestamp", "value"]:
        raise ValueError(f"not a NAB data file: header {rows[0]}")
    times = [datetime.strptime(t, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() for t, _ in rows[1:]]
    return Recording(np.array(times, dtype=float), np.array([float(v) for _, v in rows[1:]]))


def nab_file(nab_dir: Path, path: str, commit: str = NAB_COMMIT) -> str:
    """A file of NAB at ``commit``, read from a clone or mirror with ``git show``, checked
    against ``SOURCE_SHA256``."""
    data = subprocess.run(
        ["git", "-C", str(nab_dir), "show", f"{commit}:{path}"], check=True, capture_output=True
    ).stdout
    if path in SOURCE_SHA256 and hashlib.sha256(data).hexdigest() != SOURCE_SHA256[path]:
        raise ValueError(f"{path} at {commit} is not the file this conversion was written for")
    return data.decode()


def istio_service_labels() -> dict[str, str]:
    """The labels of ``istio_requests_total`` (reporter destination, code 200) of one pod of
    a plain Deployment ``podinfo``, as pdsim's Istio exporter publishes them: the canary
    pod's series of a simulated good release, addressed through the workload's own Service
    (the recorded service is under no rollout, so no ``-canary`` Service). The recording
    then has exactly the label names a series of ``pdsim run --series`` has."""
    import sim

    scenario = sim.load_scenario(ROOT / "scenarios" / "good-release.yaml")
    scenario = scenario.model_copy(update={"horizon": 600.0, "after_promotion": 0.0})
    series = sim.run_one(scenario, sim.scenario_policy(scenario), 1, series=True).series
    assert series is not None
    found = [
        dict(labels)
        for labels in series.labels
        if dict(labels).get("__name__") == "istio_requests_total"
        and dict(labels).get("reporter") == "destination"
        and dict(labels).get("response_code") == "200"
    ]
    if not found:
        raise RuntimeError("the simulated good release published no istio_requests_total series")
    labels = min(found, key=lambda d: d["pod"])
    workload, namespace = labels["destination_workload"], labels["destination_workload_namespace"]
    return labels | {
        "destination_service": f"{workload}.{namespace}.svc.cluster.local",
        "destination_service_name": workload,
    }


def counter_samples(rec: Recording, step_s: float = STEP_S) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative counter whose increases are the recorded per-period counts.

    Period i starts at ``times_s[i]``; its total is sampled at its end, and a zero sample
    opens the first period. Returns (times, cumulative values).
    """
    times = np.concatenate([[rec.times_s[0]], rec.times_s + step_s])
    totals = np.concatenate([[0.0], np.cumsum(rec.values)])
    return times, totals


def strictly_increasing(rec: Recording) -> tuple[Recording, int]:
    """Keep the first of samples that do not come after their predecessor (Prometheus keeps
    one sample per time); returns the kept samples and how many were dropped."""
    keep = np.ones(rec.times_s.size, dtype=bool)
    last = -np.inf
    for i, t in enumerate(rec.times_s):
        keep[i] = t > last
        last = max(last, t)
    return Recording(rec.times_s[keep], rec.values[keep]), int((~keep).sum())


def query_range(metric: dict[str, str], times_s: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    """A Prometheus ``/api/v1/query_range`` success response holding one series."""
    points = [[api_time(float(t)), api_value(float(v))] for t, v in zip(times_s, values, strict=True)]
    return {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": metric, "values": points}]}}


def dumps(doc: dict[str, Any]) -> str:
    """Stable JSON text: one series' samples per line, small enough to diff."""
    series = doc["data"]["result"]
    parts = []
    for item in series:
        values = ",\n".join(json.dumps(p, separators=(",", ":")) for p in item["values"])
        parts.append(f'{{"metric":{json.dumps(item["metric"], sort_keys=True)},"values":[\n{values}\n]}}')
    return '{"status":"success","data":{"resultType":"matrix","result":[\n' + ",\n".join(parts) + "\n]}}\n"


def elb_export(rec: Recording, labels: dict[str, str]) -> dict[str, Any]:
    """The ELB request counts as the cumulative ``istio_requests_total`` of ``labels``."""
    times, totals = counter_samples(rec)
    return query_range(labels, times, totals)


def latency_export(rec: Recording) -> dict[str, Any]:
    """The EC2 latency averages as a gauge (kept at their recorded times)."""
    metric = {"__name__": LATENCY_METRIC, "job": "cloudwatch", "source": "numenta/NAB", "statistic": "Average"}
    return query_range(metric, rec.times_s, rec.values)


@dataclass(frozen=True)
class CountStats:
    """The dispersion statistics issue 15 quotes for 5-minute request counts."""

    periods: int
    mean: float
    variance_to_mean: float
    within_hour_median: float
    within_hour_mean: float
    within_hour_median_population: float
    daily_swing: float
    lag1_autocorrelation: float


def count_stats(rec: Recording) -> CountStats:
    """Variance/mean of all counts; within each clock hour (sample variance over the hour's
    counts / their mean, hours with at least 6 periods; median and mean over hours, and the
    median with the population variance, divisor n instead of n - 1); the
    daily swing (max / min over hours of the day of the mean count); the lag-1
    autocorrelation of the counts in file order (gaps ignored; NaN for constant counts)."""
    v = rec.values
    hours = np.floor(rec.times_s / 3600.0)
    ratios, population = [], []
    for h in np.unique(hours):
        c = v[hours == h]
        if c.size >= 6 and c.mean() > 0:
            ratios.append(c.var(ddof=1) / c.mean())
            population.append(c.var() / c.mean())
    hour_of_day = (hours % 24).astype(int)
    by_hour = np.array([v[hour_of_day == h].mean() for h in range(24)])
    x = v - v.mean()
    spread = float((x * x).sum())
    return CountStats(
        periods=int(v.size),
        mean=float(v.mean()),
        variance_to_mean=float(v.var(ddof=1) / v.mean()),
        within_hour_median=float(np.median(ratios)),
        within_hour_mean=float(np.mean(ratios)),
        within_hour_median_population=float(np.median(population)),
        daily_swing=float(by_hour.max() / by_hour.min()),
        lag1_autocorrelation=float((x[1:] * x[:-1]).sum() / spread) if spread > 0 else float("nan"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", type=Path, default=NAB_DEFAULT_DIR, help="a git clone or mirror of numenta/NAB")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "recordings")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    elb = parse_nab_csv(nab_file(args.nab, ELB_PATH))
    (args.out / ELB_FILE).write_text(dumps(elb_export(elb, istio_service_labels())))
    latency, dropped = strictly_increasing(parse_nab_csv(nab_file(args.nab, LATENCY_PATH)))
    (args.out / LATENCY_FILE).write_text(dumps(latency_export(latency)))
    (args.out / "LICENSE-NAB.txt").write_text(nab_file(args.nab, "LICENSE.txt"))

    s = count_stats(elb)
    print(f"{ELB_FILE}: {s.periods} periods, mean {s.mean:.2f} requests per 5 minutes")
    print(f"  variance/mean {s.variance_to_mean:.1f}")
    print(f"  within an hour: median {s.within_hour_median:.1f}, mean {s.within_hour_mean:.1f}")
    print(f"  within an hour, population variance: median {s.within_hour_median_population:.1f}")
    print(f"  daily swing {s.daily_swing:.2f}x, lag-1 autocorrelation {s.lag1_autocorrelation:.3f}")
    print(f"{LATENCY_FILE}: {latency.values.size} samples ({dropped} repeated timestamps dropped)")


if __name__ == "__main__":
    main()
