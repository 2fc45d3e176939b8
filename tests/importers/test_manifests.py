"""The helpers every importer shares (``sim.importers.manifests``): objects of YAML
documents, errors and warnings at their line, the policy file an import becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import InputError
from sim.importers import ImportResult, is_manifest
from sim.importers.manifests import (
    error_at,
    kubernetes_objects,
    location_of,
    object_metadata,
    policy_file_text,
    warning_at,
)
from sim.policies.flagger.spec import FlaggerPolicySpec
from sim.yamlio import load_yaml_all

LIST = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b, namespace: prod}
---
"""


def _docs(tmp_path: Path, text: str):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_yaml_all(path)


def test_is_manifest_needs_api_version_or_kind():
    assert is_manifest({"kind": "Canary"}) and is_manifest({"apiVersion": "v1"})
    assert not is_manifest({"flagger": {}}) and not is_manifest(None) and not is_manifest([])


def test_list_items_are_objects_with_their_own_lines(tmp_path):
    objects = kubernetes_objects(_docs(tmp_path, LIST))  # the trailing empty document is skipped
    assert [o.data["kind"] for o in objects] == ["Service", "ConfigMap"]
    assert [object_metadata(o) for o in objects] == [("a", None), ("b", "prod")]
    assert location_of(objects[1]).endswith("m.yaml:7")
    err = error_at(objects[1], ("metadata", "name"), "bad", got="b")
    assert str(err).endswith("m.yaml:9: metadata.name: bad (got b)")
    line = warning_at(objects[0], ("kind",), "why\nacross lines")
    assert line.endswith("m.yaml:5: kind: not modelled: why across lines")


def test_a_document_that_is_not_an_object_is_an_error(tmp_path):
    with pytest.raises(InputError, match=r"m\.yaml:4: not a Kubernetes object"):
        kubernetes_objects(_docs(tmp_path, "kind: Service\napiVersion: v1\n---\nflagger: {}\n"))


def test_policy_file_text_names_the_sources_and_warnings():
    spec = FlaggerPolicySpec.model_validate({"analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10}})
    result = ImportResult(policy={"flagger": {"q": "a\nb"}}, spec=spec, name="app", warnings=["w"], sources=["c.yaml"])
    text = policy_file_text(result, "Argo Rollouts", "Rollout")
    assert text.startswith(
        "# pdsim policy imported from Argo Rollouts manifests (pdsim import argo).\n# Rollout: app\n"
    )
    assert "#   c.yaml\n" in text and "#   w\n" in text
    assert "q: |-\n    a\n    b\n" in text  # multi-line strings as literal blocks
