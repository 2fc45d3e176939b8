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
# # Import your canary: what would your own Flagger manifest do?
#
# Point `manifests` at your Canary (and the MetricTemplates it references: several files
# combine as `kubectl apply -f` combines them). pdsim reads it as the Flagger controller
# would, tells you which fields it does not model, and runs it against the bundled
# scenarios: a good release (false rollbacks), error and latency regressions, a slow leak,
# a bug that only one cohort sees.
#
# The example is Flagger's own `artifacts/examples/istio-canary.yaml` (fluxcd/flagger), from
# the fixtures kept beside the repository.

# %% tags=["parameters"]
manifests = ["../../shared/fixtures/upstream/flagger/istio-canary.yaml"]  # relative to notebooks/
scenario_paths = [
    "../scenarios/good-release.yaml",
    "../scenarios/error-spike.yaml",
    "../scenarios/latency-regression.yaml",
    "../scenarios/slow-leak.yaml",
    "../scenarios/cohort-bug.yaml",
]
runs = 200

# %%
# %matplotlib inline
import pandas as pd

from sim.importers.flagger import import_flagger, policy_yaml
from sim.inputs.policy import read_manifests, read_policy
from sim.inputs.scenario import load_scenario
from sim.report.plots import blast_radius_figure, detection_cdf_figure, timeline_figure
from sim.runs.runner import records_frame, run_batch, run_one
from sim.seeds import run_seed
from sim.stats import summarize_records

loaded = read_policy(manifests)
policy = loaded.build()
print(f"policy {policy.name!r} from {', '.join(loaded.sources)}")
print("not modelled (the real controller may decide differently):")
for line in loaded.warnings:
    print("  " + line)

# %% [markdown]
# The same policy as a pdsim policy file (what `pdsim import flagger MANIFEST -o policy.yaml`
# writes), to keep beside your scenarios:

# %%
print(policy_yaml(import_flagger(read_manifests(manifests))))

# %% [markdown]
# ## Your canary against the bundled scenarios
#
# Every scenario keeps its own traffic, faults and seeds; only the policy is yours.

# %%
frames = []
for path in scenario_paths:
    scenario = load_scenario(path)
    frames.append(records_frame(run_batch(scenario, policy, runs, scenario.seed)))
frame = pd.concat(frames, ignore_index=True)


def pct(r: dict) -> str:
    return "n/a" if r["rate"] is None else f"{100 * r['rate']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}]"


rows = []
for name, runs_of in frame.groupby("scenario", sort=False):
    s = summarize_records(runs_of)
    rows.append(
        {
            "scenario": name,
            "runs": s["runs"],
            "false rollback rate": pct(s["false_rollback_rate"]),
            "detection rate": pct(s["detection_rate"]),
            "detection p50 (s)": s["detection_time_s"]["p50"]["value"],
            "excess errors, mean": round(s["excess_errors"]["mean"]["value"] or 0.0, 1),
        }
    )
pd.DataFrame(rows)

# %%
detection_cdf_figure(frame, by="scenario", title=f"{policy.name}: time to detect, per scenario")

# %%
blast_radius_figure(frame, by="scenario", title=f"{policy.name}: blast radius per bad release")

# %% [markdown]
# ## One rollout of the error spike under your canary
#
# A 15 s interval and 5% steps: many small checks. Note the no-data marks while the
# 1-minute success-rate window fills.

# %%
spike = load_scenario(scenario_paths[1])
result = run_one(spike, policy, run_seed(spike.seed, 0, 0), trace=True)
timeline_figure(
    result.trace,
    list(policy.queries()),
    title=f"{policy.name} on {spike.name}, run 0",
    fault_onset_s=result.record.fault_onset_s,
)
