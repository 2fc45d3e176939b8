"""Importers: real controller manifests (Flagger Canary, ...) -> pdsim policies.

An importer reads the Kubernetes objects a user already has and returns the pdsim policy
mapping they describe (the ``policy:`` block of a scenario, e.g. ``{"flagger": {...}}``),
the validated spec and one warning line per field that changes decisions in the real
controller but is not modelled by pdsim.
"""

from __future__ import annotations

from sim.importers.flagger import ImportResult, import_flagger, is_manifest

__all__ = ["ImportResult", "import_flagger", "is_manifest"]
