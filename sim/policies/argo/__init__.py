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
"""

from sim.policies.argo.rollout import ArgoRollout, ArgoState
from sim.policies.argo.spec import ArgoPolicySpec

__all__ = ["ArgoPolicySpec", "ArgoRollout", "ArgoState"]
