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
# # Quickstart: one scenario, one policy, one timeline
#
# A release that fails 5% of its requests meets the bundled Flagger canary (10% steps every
# minute, rollback after 5 failed checks). We simulate a few hundred rollouts, read the
# outcomes with their confidence intervals, and look at how one rollout unfolded.
#
# Run it live with `jupytext --to ipynb notebooks/01-quickstart.py` and Jupyter, or as it
# is in `make test` (papermill injects the `parameters` cell below).

# %% tags=["parameters"]
scenario_path = "../scenarios/error-spike.yaml"  # relative to notebooks/
runs = 300

# %%
# %matplotlib inline
from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import load_scenario
from sim.report.plots import blast_radius_figure, detection_cdf_figure, timeline_figure
from sim.runs.runner import records_frame, run_batch, run_one
from sim.seeds import run_seed
from sim.stats import format_summary_table, summarize_records

scenario = load_scenario(scenario_path)
policy = scenario_policy(scenario, scenario_path)
print(scenario.description)

# %% [markdown]
# ## Many rollouts
#
# Run *k* always gets the seed `run_seed(root, 0, k)`: the same numbers on any machine and with
# any number of workers. Every rate carries a 95% Wilson interval, every quantile a
# distribution-free one.

# %%
frame = records_frame(run_batch(scenario, policy, runs, scenario.seed))
summary = summarize_records(frame)
print(format_summary_table(summary))

# %%
frame[["run", "outcome", "decision_time_s", "detection_time_s", "excess_errors", "users_affected"]].head()

# %% [markdown]
# ## One rollout, tick by tick
#
# Run 0 again with tracing on (a run's seed reproduces it alone): the canary's weight, each
# judged metric against its passing range, the failed-check counter, and the decision.

# %%
result = run_one(scenario, policy, run_seed(scenario.seed, 0, 0), trace=True)
assert result.record.outcome == frame.loc[0, "outcome"]  # the same run as in the batch
timeline_figure(
    result.trace,
    list(policy.queries()),
    title=f"{scenario.name}, run 0: {result.record.outcome}",
    fault_onset_s=result.record.fault_onset_s,
)

# %% [markdown]
# ## Across the runs
#
# When is the bad release rolled back, and how many requests fail first?

# %%
detection_cdf_figure(frame, by="policy")

# %%
blast_radius_figure(frame, by="policy")
