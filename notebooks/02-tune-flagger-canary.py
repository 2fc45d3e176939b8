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
# # Tune a Flagger canary: interval × threshold × stepWeight on a release portfolio
#
# Every setting of a canary trades **speed** (how long a good release waits to be promoted)
# against **harm** (how many requests a bad release fails before it is rolled back, or
# after it is promoted) and **noise** (how often a good release is rolled back). We sweep
# the three knobs that matter most against a small portfolio of releases, keep the
# settings on the Pareto frontier, and pick one by what a minute of delay costs against a
# failed request.
#
# Live in Jupyter the choice has sliders (ipywidgets); in CI (`make test` runs this file
# with papermill, `interactive = False`) it takes the parameter values below.
#
# The grid is plain loops over `sim.runs.runner.run_batch`; every setting runs the same seeds,
# so run *k* of every setting meets the same traffic, faults and noise (common random
# numbers): differences between settings are the settings', not the dice's. For big grids
# use the sweep engine (`pdsim sweep`).

# %% tags=["parameters"]
portfolio = [
    "../scenarios/good-release.yaml",
    "../scenarios/error-spike.yaml",
    "../scenarios/latency-regression.yaml",
    "../scenarios/slow-leak.yaml",
]
intervals_s = [30, 60]  # analysis.interval
thresholds = [1, 3, 5]  # analysis.threshold: failed checks before rollback
step_weights = [10, 20, 50]  # analysis.stepWeight (%)
runs = 60  # rollouts per (setting, scenario)
cost_per_minute = 1.0  # what a minute of promotion delay costs ...
cost_per_error = 0.05  # ... against one failed request of a bad release
max_false_rollback = 0.10  # bound on the false-rollback rate (its 95% upper end)
interactive = True  # sliders (live); False: the static path (CI)

# %%
# %matplotlib inline
import itertools

import pandas as pd

from sim.inputs.scenario import load_scenario
from sim.report.plots import false_rollback_figure, frontier_figure
from sim.report.tradeoffs import tradeoff_table
from sim.runs.runner import records_frame, run_batch
from sim.runs.variants import flagger_variant

scenarios = [load_scenario(p) for p in portfolio]
base = scenarios[0].policy  # the bundled canary: the starting point of the search
params = ["interval", "threshold", "stepWeight"]

frames = []
for interval, threshold, step in itertools.product(intervals_s, thresholds, step_weights):
    policy = flagger_variant(
        base, name=f"{interval}s/{threshold}/{step}%", interval=interval, threshold=threshold, stepWeight=step
    )
    for scenario in scenarios:
        frame = records_frame(run_batch(scenario, policy, runs, scenario.seed))
        frame["interval"], frame["threshold"], frame["stepWeight"] = interval, threshold, step
        frames.append(frame)
results = pd.concat(frames, ignore_index=True)
settings = results.groupby(params).ngroups
print(f"{len(results):,} rollouts: {settings} settings × {len(scenarios)} releases × {runs} runs")

# %% [markdown]
# ## Each setting's speed, harm and noise
#
# `promote_time_s`: mean time to promote the good release; `blast_radius`: mean excess
# errors of a bad release (all bad releases of the portfolio); both with 95% intervals.

# %%
table = tradeoff_table(results, params)
columns = params + [
    "promote_time_s",
    "blast_radius",
    "blast_radius_low",
    "blast_radius_high",
    "false_rollback_rate",
    "false_rollback_rate_high",
    "detection_rate",
    "pareto",
]
table[columns].sort_values(["pareto", "promote_time_s"], ascending=[False, True]).round(3)

# %% [markdown]
# Read the bars before the points: with few runs per setting (CI runs 40) neighbouring
# settings' intervals overlap, and the frontier between them is not yet decided. Raise
# `runs` until the settings you hesitate between separate.

# %%
frontier_figure(results, params, title="Time to promote vs blast radius (interval s, threshold, stepWeight %)")

# %%
false_rollback_figure(
    results,
    x="threshold",
    by="interval",
    x_label="threshold: failed checks before rollback",
    title="False rollbacks of the good release, by threshold and interval (s)",
)

# %% [markdown]
# ## Pick a setting from the frontier
#
# Only frontier settings are worth choosing: any other is slower *and* more harmful than
# one of them. Among those whose false-rollback rate stays under the bound (its interval's
# upper end, so the bound holds with 95% confidence), the cheapest by
# `cost_per_minute × minutes to promote + cost_per_error × excess errors`.


# %%
def choose(
    table: pd.DataFrame, cost_per_minute: float, cost_per_error: float, max_false_rollback: float
) -> pd.DataFrame:
    """The frontier settings that meet the false-rollback bound, cheapest first."""
    ok = table[table["pareto"] & (table["false_rollback_rate_high"] <= max_false_rollback)].copy()
    ok["cost"] = cost_per_minute * ok["promote_time_s"] / 60.0 + cost_per_error * ok["blast_radius"]
    return ok.sort_values("cost")[params + ["promote_time_s", "blast_radius", "false_rollback_rate", "cost"]]


def describe(choice: pd.DataFrame) -> str:
    if choice.empty:
        return "no frontier setting meets the false-rollback bound: relax it, or widen the grid"
    best = choice.iloc[0]
    return (
        f"choose interval {best['interval']:g}s, threshold {best['threshold']:g}, stepWeight "
        f"{best['stepWeight']:g}%: promotes a good release in {best['promote_time_s'] / 60:.1f} min, "
        f"a bad release costs {best['blast_radius']:.0f} excess errors on average"
    )


choice = choose(table, cost_per_minute, cost_per_error, max_false_rollback)
print(describe(choice))
choice

# %%
if interactive:
    from ipywidgets import FloatLogSlider, FloatSlider, interact

    @interact(
        cost_per_minute=FloatLogSlider(value=cost_per_minute, base=10, min=-2, max=2, description="cost/min"),
        cost_per_error=FloatLogSlider(value=cost_per_error, base=10, min=-3, max=1, description="cost/error"),
        max_false_rollback=FloatSlider(value=max_false_rollback, min=0.01, max=0.5, step=0.01, description="max FRR"),
    )
    def pick(cost_per_minute: float, cost_per_error: float, max_false_rollback: float) -> pd.DataFrame:
        choice = choose(table, cost_per_minute, cost_per_error, max_false_rollback)
        print(describe(choice))
        return choice

# %% [markdown]
# Next: put the chosen setting in your Canary, and gate it in CI with `pdsim check` so a
# later change cannot quietly make it slower or more harmful (see `gates/` and the README).
