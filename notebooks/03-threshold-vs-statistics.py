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
# # Thresholds vs statistics: the same canary, judged four ways
#
# Flagger's threshold check ("success rate at least 99%") looks at the canary alone. A
# comparative judge looks at the canary *against the primary*: it is not fooled when a
# dependency outage hurts both versions, and it sees a regression that stays above the
# threshold. Here the bundled Flagger canary (same ramp, same `threshold`, same hooks)
# meets three releases with four judges:
#
# * `thresholds`: Flagger's own check;
# * `sequential`: the Lindon–Malek count e-process (anytime-valid: checking every minute
#   keeps the false-rollback rate at most `alpha`);
# * `naive`: a fixed-horizon z test repeated at every tick (peeking: its error rate grows
#   with every look);
# * `kayenta`: the replica of Kayenta's NetflixACAJudge (Mann–Whitney on per-step error
#   percentages), with 15 s points after the 2-minute warm-up.
#
# Every policy meets the same traffic, faults and noise in run *k* (common random numbers).

# %% tags=["parameters"]
scenario_paths = [
    "../scenarios/good-release.yaml",
    "../scenarios/common-mode-outage.yaml",
    "../scenarios/small-regression.yaml",
]
alpha = 0.01
runs = 200

# %%
# %matplotlib inline
import pandas as pd

from sim.inputs.scenario import load_scenario
from sim.policies.flagger.canary import FlaggerCanary
from sim.policies.flagger.spec import FlaggerPolicySpec
from sim.report.plots import detection_cdf_figure
from sim.runs.runner import records_frame, run_batch
from sim.stats import wilson_interval

judges = {
    "thresholds": None,
    "sequential": {"kind": "sequential", "alpha": alpha},
    "naive": {"kind": "naive", "alpha": alpha},
    "kayenta": {"kind": "kayenta", "step": "15s", "beginCanaryAnalysisAfter": "2m"},
}


def judged(scenario, name, block):
    """The scenario's own Flagger canary, with ``block`` as its judge (None: thresholds)."""
    spec = scenario.policy.flagger.model_dump(exclude_unset=True)
    if block is not None:
        spec["judge"] = block
    return FlaggerCanary(FlaggerPolicySpec.model_validate(spec), name=name)


frames = []
for path in scenario_paths:
    scenario = load_scenario(path)
    for name, block in judges.items():
        frames.append(records_frame(run_batch(scenario, judged(scenario, name, block), runs, scenario.seed)))
frame = pd.concat(frames, ignore_index=True)
print(f"{len(frame):,} rollouts: {len(scenario_paths)} scenarios × {len(judges)} judges × {runs} runs")

# %% [markdown]
# ## Rolled back, with 95% intervals
#
# On `good-release` and `common-mode-outage` every rollback is a false one; on
# `small-regression` (0.1% → 0.3% errors) every rollback is a detection.

# %%
rows = []
for (scenario, policy), g in frame.groupby(["scenario", "policy"], sort=False):
    k, n = int((g.outcome == "rolled_back").sum()), len(g)
    lo, hi = wilson_interval(k, n)
    rows.append(
        {
            "scenario": scenario,
            "judge": policy,
            "rolled back": f"{k / n:.1%} [{lo:.1%}, {hi:.1%}]",
            "mean excess errors": round(float(g.excess_errors.mean()), 1),
        }
    )
table = pd.DataFrame(rows)
print(table.to_string(index=False))

# %% [markdown]
# The threshold policy rolls back every good release caught in the outage (both versions
# fail) and promotes every small regression, whose errors (0.3%) stay inside the 99% bound
# and then hit all traffic for `after_promotion`. The sequential judge does neither. The
# naive repeated test rolls back good releases far more often than its `alpha`.

# %%
bad = frame[frame.scenario == "small-regression"]
detection_cdf_figure(bad, by="policy", title="small-regression: time to detect (0.1% → 0.3% errors)")
