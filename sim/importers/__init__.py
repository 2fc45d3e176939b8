"""Importers: real controller manifests (Flagger Canary, Argo Rollout) -> pdsim policies.

An importer reads the Kubernetes objects a user already has and returns the pdsim policy
mapping they describe (the ``policy:`` block of a scenario, e.g. ``{"flagger": {...}}``),
the validated spec and one warning line per field that changes decisions in the real
controller but is not modelled by pdsim.

Parts:

* ``manifests``: what every importer shares (``ImportResult``, ``is_manifest``, the
  Kubernetes objects of YAML documents, errors and warnings at their line, the policy
  file an import becomes);
* ``flagger``: a Flagger ``Canary`` and its ``MetricTemplate`` objects (``import_flagger``);
* ``argo``: an Argo ``Rollout`` and its analysis templates (``argo.rollout.import_argo``).
"""

from __future__ import annotations

from sim.importers.flagger import import_flagger
from sim.importers.manifests import ImportResult, is_manifest

__all__ = ["ImportResult", "import_flagger", "is_manifest"]
