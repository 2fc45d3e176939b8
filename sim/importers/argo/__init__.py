"""Argo Rollouts manifests (a Rollout and its AnalysisTemplates) into the pdsim ``argo:`` policy.

Parts:

* ``rollout``: ``import_argo``, the entry point, and the policy-file combination;
* ``strategy``: the Rollout's ``spec.strategy`` checked field by field;
* ``templates``: AnalysisTemplates resolved and flattened as the controller does;
* ``fields``: the known keys of every object and the checks they share.
"""

__all__ = ["fields", "rollout", "strategy", "templates"]
