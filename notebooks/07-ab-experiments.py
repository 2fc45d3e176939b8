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
# # A/B experiments: which version is more effective, and what deciding costs
#
# A/B testing, as the mission puts it: the new version runs alongside the old, a share of
# the users is diverted to it, and **business metrics** decide which version is more
# effective. pdsim simulates sessions that convert, orders with heavy-tailed values and
# engagement, per user with sticky assignment, and an experiment policy that looks at the
# data once a day and decides with a statistical rule.
#
# This notebook asks three questions of the bundled scenarios (`scenarios/ab-*.yaml`):
#
# 1. **Is the rule honest?** In an A/A test (no lift) every winner is a false winner. Does
#    the false-winner rate stay within alpha when the experiment looks every day?
# 2. **How much power, how fast, at what cost?** With a real 5% lift: how often is the
#    candidate promoted, after how many days, and how many conversions did the worse
#    version cost meanwhile (regret)?
# 3. **What fools it?** A lift that fades (novelty) and a lift that comes with errors
#    (the guardrail).
#
# Run it live with `jupytext --to ipynb notebooks/07-ab-experiments.py` and Jupyter. In
# `make test` papermill injects tiny parameters: the figures then prove nothing, they only
# run.

# %% tags=["parameters"]
runs = 400  # runs per (scenario, rule); 2,000 or more for tight intervals
scenario_dir = "../scenarios"  # relative to notebooks/
workers = 1  # processes; the results are the same for any count

# %%
# %matplotlib inline
from pathlib import Path

import pandas as pd

from sim.inputs.scenario import load_scenario
from sim.policies.experiment import ExperimentPolicy
from sim.policies.experiment.plan import proportion_power
from sim.policies.experiment.spec import ExperimentPolicySpec
from sim.report.experiments import experiment_power_figure, regret_time_figure
from sim.runs.runner import records_frame, run_batch
from sim.stats import summarize_business, wilson_interval

names = ("ab-conversion-aa", "ab-conversion-lift", "ab-novelty", "ab-guardrail")
scenarios = {name: load_scenario(Path(scenario_dir) / f"{name}.yaml") for name in names}

#: The rules compared, each at alpha 0.05 with 14 daily looks over at most 14 days. The
#: fixed test's planned sample (per arm) is reached after about 6 days at this traffic.
rules = {
    "sequential": {"kind": "sequential", "alpha": 0.05},
    "group-sequential": {"kind": "group-sequential", "alpha": 0.05, "looks": 14},
    "fixed (planned)": {"kind": "fixed", "alpha": 0.05, "sample_size": 500_000},
    "fixed, peeked daily": {"kind": "fixed", "alpha": 0.05, "sample_size": 500_000, "peek": True},
    "bayes": {"kind": "bayes"},
}


def experiment(scenario, label, test):
    """The scenario's own experiment with another decision rule."""
    spec = scenario.policy.experiment.model_dump(exclude_unset=True)
    spec["test"] = test
    return ExperimentPolicy(ExperimentPolicySpec.model_validate(spec), name=label)


def simulate(name, labels=tuple(rules)):
    scenario = scenarios[name]
    frames = []
    for label in labels:
        policy = experiment(scenario, label, rules[label])
        frames.append(records_frame(run_batch(scenario, policy, runs, scenario.seed, workers=workers)))
    return pd.concat(frames, ignore_index=True)


def rate(k, n):
    lo, hi = wilson_interval(k, n)
    return f"{k / n:.1%} [{lo:.1%}, {hi:.1%}]" if n else "-"


# %% [markdown]
# ## 1. A/A: false winners under daily looks
#
# The anytime-valid rules (the mixture SPRT, group-sequential spending) and the fixed test
# analysed once at its planned sample keep false winners within alpha = 5%. The same fixed
# test looked at every day and stopped at the first "significant" day does not, and the
# Bayesian rule has no such guarantee at all.

# %%
aa = simulate("ab-conversion-aa")
rows = []
for label, g in aa.groupby("policy", sort=False):
    k = int((g.winner != "none").sum())
    rows.append(
        {"rule": label, "false winners [95% CI]": rate(k, len(g)), "mean sessions": f"{g.sessions.mean():,.0f}"}
    )
print(pd.DataFrame(rows).to_string(index=False))

# %% [markdown]
# ## 2. A real lift: power, time to decide, regret
#
# With a 5% lift of a 3% conversion rate, the candidate is the right call. The fixed
# test's power at its planned sample has a closed form (`sim.policies.experiment.plan`);
# the simulated rate should match it within its interval. The sequential test pays for
# being allowed to look every day with a longer time to decide, and the regret column
# counts what that time costs: conversions the primary lost against the candidate while
# the experiment ran.

# %%
lift = simulate("ab-conversion-lift")
# The fixed test decides at the first daily look past its planned sample, on all the
# sessions so far: its analytic power is that of each run's own sessions per arm.
fixed = lift[lift.policy == "fixed (planned)"]
analytic = float(fixed.sessions.map(lambda s: proportion_power(0.03, 0.05, s / 2, method="unpooled")).mean())
rows = []
for label, g in lift.groupby("policy", sort=False):
    k = int((g.winner == "candidate").sum())
    decided = g.decision_time_s[g.winner == "candidate"] / 86400
    covered = g.dropna(subset=["lift_ci_low"])
    cov = int(((covered.lift_ci_low <= covered.true_lift) & (covered.true_lift <= covered.lift_ci_high)).sum())
    rows.append(
        {
            "rule": label,
            "power [95% CI]": rate(k, len(g)),
            "median days to promote": round(float(decided.median()), 1) if len(decided) else None,
            "CI coverage": rate(cov, len(covered)),
            "mean regret (conversions)": round(float(g.regret_conversions.mean()), 1),
        }
    )
print(pd.DataFrame(rows).to_string(index=False))
print(f"analytic power of the planned fixed test at its runs' samples: {analytic:.1%}")

# %%
both = pd.concat([aa, lift], ignore_index=True)
experiment_power_figure(both, by="policy", title="P(promote) at no lift and at +5%")

# %%
regret_time_figure(lift, by="policy", regret="regret_conversions", title="+5% lift: what deciding costs")

# %% [markdown]
# ## 3. What fools a test: novelty, and conversions bought with errors
#
# `ab-novelty`: +20% at first, fading by half every 2 days to +1%, below the 2% that
# matters. The early days look spectacular; a rule that decides in them over-estimates
# the lift. `ab-guardrail`: +5% conversions, but 2% of the candidate's requests fail; the
# guardrail on the request success rate stops it.

# %%
for name in ("ab-novelty", "ab-guardrail"):
    frame = simulate(name, labels=("sequential",))
    summary = summarize_business(frame)
    winners = {w: f"{v['rate']:.1%}" for w, v in summary["winners"].items()}
    print(
        f"{name}: winners {winners}; correct {summary['correct_rate']['rate']:.1%}; "
        f"lift estimate mean {frame.lift_estimate.mean():+.2%} vs true {frame.true_lift.iloc[0]:+.2%}; "
        f"mean excess errors {frame.excess_errors.mean():,.0f}"
    )
