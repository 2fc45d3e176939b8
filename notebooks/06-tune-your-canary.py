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
# # Tune your canary: let the search find `interval`, `stepWeight`, `threshold` and bounds
#
# Notebook 02 swept a small grid by hand. Here `sim.tune` searches the whole space of a
# Flagger canary for the releases a team actually ships, under a ceiling on false
# rollbacks, and writes the recommendation back into the team's own Canary manifest.
#
# The bundled example (`tune/flagger-default.yaml`) starts from Flagger's documented
# defaults (1m interval, threshold 5, stepWeight 10, maxWeight 50, success rate ≥ 99%,
# p99 ≤ 500 ms) and meets nine kinds of release at 10 to 1,000 requests/s, 80% of them
# good. The search:
#
# 1. asks optuna's multi-objective TPE sampler for candidate policies, in batches;
# 2. simulates every candidate on the same runs of each release (common random numbers),
#    first on few runs, then races the best third on three times the runs, and so on
#    (successive halving);
# 3. keeps the candidates that meet every constraint *on the pessimistic end of its 95%
#    interval* at the last rung, and their Pareto frontier;
# 4. re-checks the recommendation against the base on other releases with seeds the search
#    never used (the winner's curse shows there, if anywhere).
#
# Run it live with `jupytext --to ipynb notebooks/06-tune-your-canary.py` and Jupyter. In
# `make test` papermill injects tiny parameters: the search then proves nothing, it only
# runs. The full search (the parameters below) takes a few minutes on two cores.

# %% tags=["parameters"]
tune_file = "../tune/flagger-default.yaml"  # relative to notebooks/
budget = 200  # candidate policies
min_runs, max_runs = 40, 1000  # runs per release at the first and the last racing rung
validation_runs = 2000  # runs per release of the fresh-seed check
workers = 2  # worker processes; the results are the same for any count

# %%
# %matplotlib inline
import difflib
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from tqdm.auto import tqdm

import sim
from sim.tuning.search import Progress
from sim.tuning.sensitivity import sensitivity
from sim.tuning.spec import load_tune

tf = load_tune(tune_file).with_runs(min_runs, max_runs, validation_runs)
print(f"{tf.name}: {len(tf.space.params)} parameters, {len(tf.portfolio.entries)} releases, rungs {tf.rungs}")
pd.DataFrame([{"release": e.name, "weight": e.weight} for e in tf.portfolio.entries])

# %% [markdown]
# ## The search
#
# The output folder holds the study (`study.journal`) and every simulated piece of runs:
# interrupt the cell and run it again with `resume=True`, and it carries on where it was.

# %%
out = Path(tempfile.mkdtemp(prefix="pdsim-tune-")) / "tuned"
bar = tqdm(total=1, unit="rollout")


def show(p: Progress) -> None:
    bar.total = p.total
    bar.n = p.done
    bar.set_postfix_str(f"{p.stage}, best {p.best or '-'}")
    bar.refresh()


result = sim.tune(tf, out, budget=budget, workers=workers, progress=show)
bar.close()
n = len(result.candidates) - 1  # the base is a row too
print(f"{n} candidates, {int(result.candidates['feasible'].sum())} feasible, frontier of {len(result.frontier)}")

# %% [markdown]
# ## The frontier
#
# Every candidate at the highest rung it reached: feasible ones (every constraint met on
# its interval's pessimistic end) in colour, the frontier joined, the base and the
# recommendation marked. Candidates dropped at early rungs carry wide intervals: they were
# measured on few runs, which is what racing saves.

# %%
x, y = (str(m) for m in tf.objectives[:2])
c = result.candidates
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.scatter(c[x], c[y], s=12, c="lightgrey", label="candidate")
ok = c[c["feasible"]]
ax.scatter(ok[x], ok[y], s=18, label="feasible")
front = result.frontier.sort_values(x)
ax.plot(front[x], front[y], "o-", color="black", label="frontier")
base = c[c["base"]].iloc[0]
ax.scatter([base[x]], [base[y]], marker="s", s=60, color="red", label="base")
if result.best is not None:
    best_row = c[c["best"]].iloc[0]
    ax.scatter([best_row[x]], [best_row[y]], marker="*", s=160, color="gold", edgecolor="black", label="recommended")
ax.set_xscale("symlog")
ax.set_xlabel(x)
ax.set_ylabel(y)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## The recommendation against the base, on fresh seeds
#
# Paired: run *k* of each validation release met the same traffic and faults under both
# policies, so the interval of the ratio reflects the policies, not the dice.


# %%
def interval(b: dict) -> str:
    if b.get("value") is None:
        return "n/a"
    low, high = b.get("low"), b.get("high")
    ends = f" [{low:.4g}, {high:.4g}]" if low is not None and high is not None else ""
    return f"{b['value']:.4g}{ends}"


if result.best is None:
    print("no candidate met every constraint: relax a constraint or widen the space")
else:
    fresh = result.validation["fresh"]
    for m, v in fresh.items():
        print(f"{m}: base {interval(v['base'])}, recommended {interval(v['best'])}, ratio {interval(v['ratio'])}")
    for name, ok_ in result.validation["constraints_ok"].items():
        print(f"constraint {name} on fresh seeds: {'met' if ok_ else 'NOT met'}")

# %% [markdown]
# ## Written back into the team's manifest
#
# `best-manifest.yaml` is `tune/canary.yaml` with only the tuned fields changed: comments,
# order and the other fields stay as the team wrote them. A judge is pdsim's extension,
# not a Flagger field: the file names it in a comment, and `best-policy.yaml` carries it.

# %%
manifest = out / "best-manifest.yaml"
if manifest.exists():
    before = (Path(tune_file).parent / "canary.yaml").read_text().splitlines()
    after = manifest.read_text().splitlines()
    print("\n".join(difflib.unified_diff(before, after, "canary.yaml", "best-manifest.yaml", lineterm="", n=0)))
for note in result.notes:
    print("note:", note)

# %% [markdown]
# ## What each parameter matters for
#
# `importance`: optuna's PED-ANOVA share of each objective's variation among the good
# candidates that each parameter explains; `rho`: Spearman's rank correlation with its
# 95% bootstrap interval (undefined for unordered choices such as the judge).

# %%
meta = json.loads((out / "tune.json").read_text())  # what was searched, as the folder records it
sens = sensitivity(result.candidates, meta)
sens[["objective", "param", "importance", "rho", "rho_low", "rho_high"]].round(3)

# %% [markdown]
# The full page (frontier, table of frontier candidates with intervals, the fresh-seed
# check and the sensitivity plots) is `report.html` in the output folder:

# %%
print(out / "report.html")
