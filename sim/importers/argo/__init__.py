"""Argo Rollouts manifests (a Rollout and its AnalysisTemplates) into the pdsim ``argo:`` policy.

Parts:

* ``rollout``: ``import_argo``, the entry point, and the policy-file combination
  (``combine_policy_file``, ``policy_file_warnings``);
* ``strategy``: the Rollout's ``spec.strategy`` checked field by field, its analyses resolved;
* ``templates``: AnalysisTemplates resolved and flattened as the controller does;
* ``fields``: the known keys of every Argo type, the warnings' reasons and the checks the
  other parts share.

What every importer shares (errors at their line, ``ImportResult``) is in
``sim.importers.manifests``.
"""

__all__ = ["fields", "rollout", "strategy", "templates"]
