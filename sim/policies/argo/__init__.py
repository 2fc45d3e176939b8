"""Argo Rollouts, tick for tick (argoproj/argo-rollouts ``rollout/``, ``analysis/``).

Parts:

* ``spec``: the ``argo:`` block (strategy, AnalysisTemplates), ``ArgoPolicySpec``;
* ``plan``: what a spec implies before the first reconcile (steps, replicas, analyses);
* ``rollout``: the Rollout reconciler (``ArgoRollout``): canary steps and blue/green;
* ``analyses``: which AnalysisRuns a step or the background starts;
* ``analysis_run``: the AnalysisRun reconciler (measurements, limits, phases);
* ``expr``: a safe evaluator of ``successCondition`` / ``failureCondition``;
* ``kayenta``: the ``kayenta`` provider, judged by pdsim's Kayenta replica.
"""

__all__ = ["analyses", "analysis_run", "expr", "kayenta", "plan", "rollout", "spec"]
