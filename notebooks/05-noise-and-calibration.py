# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Noise and calibration: would your policy survive production's noise?
#
# pdsim's default world draws Poisson counts: exact for an idealised service, and far calmer
# than a real one. The request counts of a real AWS load balancer (bundled in
# `data/recordings/`, from numenta/NAB) vary about fifty times as much as Poisson counts of the
# same mean. A policy tuned on Poisson noise looks safer than it is.
#
# This notebook
#
# 1. looks at that recording: how overdispersed it is, at which windows;
# 2. runs a small version of `benchmarks/noise_decisions.py`: A/A false rollbacks and detection
#    of a 2x error rate for Flagger's thresholds, Kayenta and the sequential judges under the
#    noise models of the scenario key `noise:`;
# 3. calibrates a scenario from the recording with `pdsim calibrate` and checks that the
#    simulated series look like the recorded one.

# %% tags=["parameters"]
runs = 200
rates = [10.0]
noise_models = [
    "none (Poisson)",
    "error dispersion 10 @1m, shared",
    "error dispersion 10 @1m, per version",
    "pod heterogeneity (errors 0.5, latency 0.2)",
    "cold start (errors 5x, latency 2x, decay 2m)",
]
recording = "../data/recordings/nab-elb-request-count.json"

# %%
# %matplotlib inline
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

ROOT = Path.cwd().parent
sys.path.insert(0, str(ROOT))  # benchmarks/ and tools/ beside sim/

from benchmarks import noise_decisions as nd  # noqa: E402
from sim.promql.openmetrics import read_series  # noqa: E402
from tools.recordings import Recording, count_stats  # noqa: E402

# %% [markdown]
# ## 1. A real service's request counts
#
# The file is a Prometheus `query_range` export of the counter `istio_requests_total`, one
# sample per 5 minutes: its increases are the load balancer's 5-minute request counts.

# %%
batch = read_series(recording)
present = batch.present[0, :, 0]
times, totals = batch.times_s[present], batch.values[0, present, 0]
counts = np.diff(totals)
starts = times[1:] - 300.0
stats = count_stats(Recording(starts, counts))
print(f"{stats.periods:,} five-minute counts, mean {stats.mean:.1f}")
print(f"variance/mean {stats.variance_to_mean:.1f} (Poisson: 1); within an hour {stats.within_hour_median:.1f}")
print(f"daily swing {stats.daily_swing:.2f}x; lag-1 autocorrelation {stats.lag1_autocorrelation:.3f}")


def dispersion_at(counts: np.ndarray, periods: int) -> float:
    """Variance/mean of the counts summed over windows of ``periods`` periods."""
    n = counts.size // periods * periods
    sums = counts[:n].reshape(-1, periods).sum(axis=1)
    return float(sums.var(ddof=1) / sums.mean())


windows = [1, 2, 3, 6, 12, 24, 48]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
days = (starts - starts[0]) / 86400.0
ax1.plot(days, counts, lw=0.5)
ax1.set_xlabel("days")
ax1.set_ylabel("requests per 5 minutes")
ax1.set_title("NAB elb_request_count_8c0756")
ax2.plot([5 * w for w in windows], [dispersion_at(counts, w) for w in windows], "o-", label="recorded")
ax2.axhline(1.0, color="grey", ls="--", label="Poisson")
ax2.set_xscale("log")
ax2.set_yscale("log")
ax2.set_xlabel("window, minutes")
ax2.set_ylabel("variance / mean")
ax2.set_title("dispersion index against window length")
ax2.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. What noise does to decisions
#
# The bundled good-release canary (ramp 10% to 50%, 1-minute analysis, rollback after 5
# failed checks), each policy meeting the same traffic under each noise model. A good release
# measures false rollbacks; a release whose canary has twice the error rate (0.1% → 0.2%)
# measures detection. A judge *keeps its guarantee* when the interval of its false rollback
# rate is not above its alpha (1%). Comparisons within a scrape slot are immune to shocks
# both versions share; not to what only the canary suffers (per-version bursts, a one-pod
# canary's own error multiplier, a cold start).

# %%
cells, skipped = nd.measure(noise_models, rates, runs, workers=1, seed=101)
for line in skipped:
    print("skipped:", line)
table = pd.DataFrame(
    [
        {
            "noise": c.noise,
            "requests/s": c.rate,
            "policy": c.policy,
            "false rollbacks": f"{c.false_rollbacks}/{c.good_runs}",
            "detected 2x": f"{c.detected}/{c.bad_runs}",
            "guarantee": {None: "none promised", True: "kept", False: "LOST"}[c.keeps_guarantee()],
        }
        for c in cells
    ]
)
print(
    f"{2 * runs * len(cells):,} rollouts: {len(noise_models)} noise models × {len(rates)} rates × "
    f"{len(nd.POLICIES)} policies × 2 releases × {runs} runs"
)
table

# %%
print("\n".join(nd.guarantee_table(cells)))

# %%
policies = list(nd.POLICIES.values())
fig, ax = plt.subplots(figsize=(11, 4))
width = 0.8 / len(policies)
for j, name in enumerate(policies):
    mine = [c for c in cells if c.policy == name and c.rate == rates[0]]
    rate = np.array([c.false_rollbacks / c.good_runs for c in mine])
    lo, hi = np.array([c.false_rollback_interval() for c in mine]).T
    x = np.arange(len(mine)) + (j - len(policies) / 2 + 0.5) * width
    ax.errorbar(x, 100 * rate, yerr=100 * np.array([rate - lo, hi - rate]), fmt="o", capsize=2, label=name)
ax.axhline(100 * nd.ALPHA, color="grey", ls="--", lw=1, label="alpha 1%")
ax.set_xticks(np.arange(len(noise_models)))
ax.set_xticklabels([n.split(" (")[0] for n in noise_models], rotation=15, ha="right")
ax.set_ylabel("A/A false rollbacks, % (95% CI)")
ax.set_title(f"False rollbacks per noise model at {rates[0]:g} requests/s")
ax.legend(ncol=4, fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Calibrate from the recording
#
# `pdsim calibrate EXPORT... -o SCENARIO.yaml` fits the traffic (level, daily cycle), the
# error rate and the overdispersion of the counts from a `query_range` export, and writes a
# scenario whose comments say what was fitted from what. The recording has no status codes
# (every request is a 200) and no pods, so it sets the traffic and its noise only.
#
# Then one day of the calibrated scenario, simulated as a stable service
# (`sim.calibrate.compare.stable_series`), is compared with the recording: the mean count per
# 5 minutes, the dispersion index at 5 minutes and at 1 hour, and the lag-1 autocorrelation.
# (Both parts are skipped, saying why, by a pdsim without the calibrate command.)


# %%
def pdsim(*args: str) -> subprocess.CompletedProcess:
    """The pdsim command of this checkout, its output captured."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, env=env)


def five_minute_counts(b) -> np.ndarray:
    """Per-5-minute increases of the summed istio_requests_total of run 0 of a series batch."""
    keep = [k for k, labels in enumerate(b.labels) if dict(labels).get("__name__") == "istio_requests_total"]
    grid = np.arange(b.times_s[0], b.times_s[-1] + 1e-9, 300.0)
    total = np.zeros(grid.size)
    for k in keep:
        have = b.present[0, :, k]
        if not have.any():
            continue  # a series of the universe this run never had
        # The counter's last value at or before each grid time (0 before its first sample).
        idx = np.searchsorted(b.times_s[have], grid, side="right") - 1
        total += np.where(idx >= 0, b.values[0, have, k][np.maximum(idx, 0)], 0.0)
    return np.diff(total)


def lag1(c: np.ndarray) -> float:
    x = c - c.mean()
    return float((x[1:] * x[:-1]).sum() / (x * x).sum())


calibrated = None
with tempfile.TemporaryDirectory() as tmp:
    out = Path(tmp) / "calibrated-nab-elb.yaml"
    done = pdsim("calibrate", recording, "-o", str(out))
    if done.returncode != 0 or not out.exists():
        print("pdsim calibrate is not available in this version:", (done.stderr or done.stdout).strip()[:300])
    else:
        print(out.read_text())
        from sim.inputs.scenario import load_scenario

        calibrated = load_scenario(out)

# %%
if calibrated is not None:
    try:
        from sim.calibrate.compare import stable_series

        simulated = five_minute_counts(stable_series(calibrated, "istio", 86400.0, 1))
    except (ImportError, AttributeError, TypeError, ValueError) as err:
        print(f"the stable-service simulation is not available: {type(err).__name__}: {err}")
    else:
        rows = []
        for name, c in (("recorded (14 days)", counts), ("simulated (1 day)", simulated)):
            rows.append(
                {
                    "series": name,
                    "5-minute counts": c.size,
                    "mean": round(float(c.mean()), 1),
                    "variance/mean at 5m": round(float(c.var(ddof=1) / c.mean()), 1),
                    "at 1h": round(dispersion_at(c, 12), 1),
                    "lag-1 autocorrelation": round(lag1(c), 3),
                }
            )
        print(pd.DataFrame(rows).to_string(index=False))
