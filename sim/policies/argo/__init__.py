"""Argo Rollouts, tick for tick (argoproj/argo-rollouts ``rollout/``, ``analysis/``).

Parts:

* ``spec``: the ``argo:`` block (strategy, AnalysisTemplates), ``ArgoPolicySpec``;
* ``templates``: the AnalysisTemplate models and the ``analysis`` blocks that use them;
* ``analyses``: an ``analysis`` block resolved into the metric specs of a run;
* ``plan``: what a spec implies before the first reconcile (steps, pods, analyses by run);
* ``rollout``: the Rollout reconciler (``ArgoRollout``): canary steps and blue/green;
* ``analysis_run``: the AnalysisRun reconciler (measurements, limits, phases);
* ``expr``: a safe evaluator of ``successCondition`` / ``failureCondition`` (and, for the
  common forms, over many runs' samples at once: ``vector_condition``);
* ``class_keys``: what runs are keyed on for class stepping (the outcome of each
  metric's measurement, for all runs at once);
* ``kayenta``: the ``kayenta`` provider, judged by pdsim's Kayenta replica.

Layers, lowest first: ``expr``, ``analysis_run`` < ``class_keys``, ``templates`` < ``analyses`` < ``spec``
< ``plan`` < ``rollout``; none imports one above it.

The modules are listed, not imported: validating a scenario needs ``spec`` (the scenario
model names it) and what it builds on, not the reconciler (``plan``, ``rollout``), which
a Flagger policy never uses (docs/architecture.md section 2, "Lazy imports").
"""

__all__ = [
    "analyses",
    "analysis_run",
    "class_keys",
    "experiment",
    "expr",
    "kayenta",
    "plan",
    "rollout",
    "spec",
    "templates",
]
