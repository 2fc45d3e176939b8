"""``sim.tuning.writeback``: tuned values written into the user's manifests (issue 18).

The manifests are the upstream fixtures (Flagger's and Argo Rollouts' own examples, see
tests/README.md "Fixtures"). Every case re-imports the written text with ``read_policy``,
exactly as ``pdsim run --policy best-manifest.yaml`` would, and expects the base's pdsim
policy with the tuned values set (``sim.sweeps.plan.set_path``), and checks that every
line but the tuned ones is as the user wrote it.
"""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sim.inputs.policy import read_policy
from sim.sweeps.plan import set_path
from sim.sweeps.spec import parse_path
from sim.tuning.writeback import WriteBack, write_back
from tests.helpers import write

FLAGGER_VALUES: dict[str, Any] = {
    "policy.flagger.analysis.interval": "30s",
    "policy.flagger.analysis.stepWeight": 2,
    "policy.flagger.analysis.maxWeight": 30,
    "policy.flagger.analysis.threshold": 4,
    "policy.flagger.analysis.metrics[0].thresholdRange.min": 97.5,
    "policy.flagger.judge": {"kind": "sequential", "alpha": 0.01},
}

ARGO_VALUES: dict[str, Any] = {
    "policy.argo.strategy.canary.steps[2].setWeight": 15,
    "policy.argo.strategy.canary.steps[1].pause.duration": "30s",  # pause: {} -> a key added
    "policy.argo.strategy.canary.steps[3].pause.duration": "1m",
    "policy.argo.templates.istio-success-rate.metrics[0].successCondition": "result[0] >= 0.97",
    "policy.argo.templates.istio-success-rate.metrics[0].interval": "30s",
    "policy.argo.templates.istio-success-rate.metrics[0].failureLimit": 2,  # absent: added
    "policy.argo.templates.istio-success-rate.metrics[0].count": 10,  # absent: added
    "policy.argo.judge": {"kind": "sequential", "alpha": 0.01},  # pdsim-only: not written
}


def expected(base: list[Path], wb: WriteBack, values: Mapping[str, Any]) -> dict[str, Any]:
    """The base's pdsim policy with the written values set, as the search saw it."""
    data = read_policy(base).data
    for path in wb.changed:
        data = set_path(data, parse_path(path)[1:], values[path])
    return data


def reimported(wb: WriteBack, tmp_path: Path, *others: Path) -> dict[str, Any]:
    """The policy ``read_policy`` reads from the written text (beside ``others``)."""
    out = write(tmp_path, "best-manifest.yaml", wb.text)
    return read_policy([*others, out]).data


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def body(wb: WriteBack) -> str:
    """The text without the comment block naming what was not written."""
    lines = wb.text.splitlines(keepends=True)
    if wb.not_written:
        n = 2 + len(wb.not_written)
        assert all(line.startswith("#") for line in lines[:n])
        lines = lines[n:]
    return "".join(lines)


# --- Flagger ----------------------------------------------------------------------------------------


def test_flagger_canary_reimports_to_the_tuned_policy(upstream_fixtures: Path, tmp_path: Path) -> None:
    base = [upstream_fixtures / "flagger" / "istio-canary.yaml"]
    wb = write_back(base, FLAGGER_VALUES)
    assert wb.changed == tuple(p for p in FLAGGER_VALUES if p != "policy.flagger.judge")
    assert wb.not_written == ("policy.flagger.judge",)
    assert "pdsim-only" in wb.reasons["policy.flagger.judge"]
    assert reimported(wb, tmp_path) == expected(base, wb, FLAGGER_VALUES)


def test_flagger_only_the_tuned_lines_change(upstream_fixtures: Path) -> None:
    source = upstream_fixtures / "flagger" / "istio-canary.yaml"
    wb = write_back([source], FLAGGER_VALUES)
    removed, added = changed_lines(source.read_text(), body(wb))
    assert removed == [
        "    interval: 15s",
        "    threshold: 10",
        "    maxWeight: 50",
        "    stepWeight: 5",
        "        min: 99",
    ]
    assert added == [
        "    interval: 30s",
        "    threshold: 4",
        "    maxWeight: 30",
        "    stepWeight: 2",
        "        min: 97.5",
    ]
    # The top comment names what the manifest cannot hold and points at best-policy.yaml.
    head = wb.text.splitlines()[:3]
    assert "best-policy.yaml" in "\n".join(head) and "policy.flagger.judge" in head[2]


def test_absent_keys_are_added_beside_their_relatives(upstream_fixtures: Path, tmp_path: Path) -> None:
    base = [upstream_fixtures / "flagger" / "istio-canary.yaml"]
    values = {
        "policy.flagger.analysis.metrics[0].thresholdRange.max": 100,  # beside min: 99
        "policy.flagger.analysis.stepWeights": [1, 2, 5, 10],  # after stepWeight, before metrics
    }
    wb = write_back(base, values)
    assert wb.changed == tuple(values)
    removed, added = changed_lines(base[0].read_text(), wb.text)
    assert removed == []
    assert added == ["    stepWeights: [1, 2, 5, 10]", "        max: 100"]
    lines = wb.text.splitlines()
    assert lines[lines.index("    stepWeights: [1, 2, 5, 10]") - 1] == "    stepWeight: 5"
    assert lines[lines.index("        max: 100") - 1] == "        min: 99"
    assert reimported(wb, tmp_path) == expected(base, wb, values)


def test_quoted_strings_keep_their_quotes(upstream_fixtures: Path, tmp_path: Path) -> None:
    base = [upstream_fixtures / "flagger" / "istio-canary.yaml"]
    values = {
        "policy.flagger.analysis.webhooks[0].metadata.type": "cmd",  # was "bash"
        "policy.flagger.analysis.webhooks[0].metadata.cmd": "curl -sd 'x' http://podinfo-canary.test/ # 2",
    }
    wb = write_back(base, values)
    _, added = changed_lines(base[0].read_text(), wb.text)
    assert added == ['        type: "cmd"', "        cmd: \"curl -sd 'x' http://podinfo-canary.test/ # 2\""]
    assert reimported(wb, tmp_path) == expected(base, wb, values)


def test_single_quotes_and_values_that_would_read_as_another_type(tmp_path: Path) -> None:
    canary = write(
        tmp_path,
        "canary.yaml",
        """\
# my canary
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: app}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: app}
  canaryAnalysis:       # the deprecated name: the importer reads it, so it is written there
    interval: '1m'      # quoted on purpose
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
""",
    )
    values = {
        "policy.flagger.analysis.interval": "30s",
        "policy.flagger.analysis.metrics[0].thresholdRange.max": 100.0,
        "policy.flagger.analysis.maxWeight": 50,  # unchanged: counted, text untouched
    }
    wb = write_back([canary], values)
    assert wb.changed == tuple(values) and wb.not_written == ()
    removed, added = changed_lines(canary.read_text(), wb.text)
    assert removed == ["    interval: '1m'      # quoted on purpose", "      thresholdRange: {min: 99}"]
    assert added == ["    interval: '30s'      # quoted on purpose", "      thresholdRange: {min: 99, max: 100.0}"]
    assert reimported(wb, tmp_path) == expected([canary], wb, values)


def test_pdsim_policy_file_naming_its_manifest(upstream_fixtures: Path, tmp_path: Path) -> None:
    manifest = shutil.copy(upstream_fixtures / "flagger" / "istio-canary.yaml", tmp_path / "canary.yaml")
    policy = write(tmp_path, "policy.yaml", "manifest: canary.yaml\n")
    wb = write_back([policy], FLAGGER_VALUES)
    assert wb.files == (str(manifest),)
    assert wb.text == write_back([manifest], FLAGGER_VALUES).text
    assert reimported(wb, tmp_path) == expected([policy], wb, FLAGGER_VALUES)


def test_plain_pdsim_policy_file_has_no_manifest(tmp_path: Path) -> None:
    policy = write(
        tmp_path,
        "policy.yaml",
        "flagger:\n  analysis: {interval: 1m, threshold: 5, maxWeight: 50, stepWeight: 10}\n",
    )
    with pytest.raises(ValueError, match=r"policy\.yaml is a pdsim policy file, not a Kubernetes manifest"):
        write_back([policy], {"policy.flagger.analysis.interval": "30s"})


def test_policy_file_with_metric_templates_writes_the_templates(upstream_fixtures: Path, tmp_path: Path) -> None:
    template = upstream_fixtures / "flagger" / "metrictemplate-linkerd-latency.yaml"
    policy = write(
        tmp_path,
        "policy.yaml",
        """\
flagger:
  provider: linkerd
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: latency
      templateRef: {name: my-metric}
      thresholdRange: {max: 500}
      templateVariables: {direction: inbound}
""",
    )
    values = {
        "policy.flagger.metricTemplates.my-metric.provider.address": "http://prometheus.monitoring:9090",
        "policy.flagger.analysis.stepWeight": 5,
    }
    wb = write_back([policy, template], values)
    assert wb.changed == ("policy.flagger.metricTemplates.my-metric.provider.address",)
    assert wb.not_written == ("policy.flagger.analysis.stepWeight",)
    assert "pdsim policy file" in wb.reasons["policy.flagger.analysis.stepWeight"]
    _, added = changed_lines(template.read_text(), body(wb))
    assert added == ["    address: http://prometheus.monitoring:9090"]
    assert reimported(wb, tmp_path, policy) == expected([policy, template], wb, values)


def test_derived_and_missing_fields_are_not_written(upstream_fixtures: Path) -> None:
    values = {
        "policy.flagger.metadata.namespace": "prod",  # derived (default namespace)
        "policy.flagger.service.port": 8080,  # dropped by the importer
        "policy.flagger.analysis.metrics[5].interval": "1m",  # no such metric
        "policy.argo.replicas": 3,  # the other controller
        "policy.flagger.analysis.interval": "1m",
    }
    wb = write_back([upstream_fixtures / "flagger" / "istio-canary.yaml"], values)
    assert wb.changed == ("policy.flagger.analysis.interval",)
    assert wb.not_written == tuple(list(values)[:4])
    assert "derived" in wb.reasons["policy.flagger.metadata.namespace"]
    assert "derived" in wb.reasons["policy.flagger.service.port"]
    assert "no [5]" in wb.reasons["policy.flagger.analysis.metrics[5].interval"]
    assert "Flagger Canary" in wb.reasons["policy.argo.replicas"]


# --- Argo Rollouts ------------------------------------------------------------------------------------


def argo_files(upstream: Path) -> list[Path]:
    return [
        upstream / "argo" / "rollouts-demo-istio-rollout.yaml",
        upstream / "argo" / "rollouts-demo-istio-analysis.yaml",
    ]


def test_rollout_and_template_in_two_files(upstream_fixtures: Path, tmp_path: Path) -> None:
    base = argo_files(upstream_fixtures)
    wb = write_back(base, ARGO_VALUES)
    assert wb.not_written == ("policy.argo.judge",)
    assert wb.files == tuple(map(str, base))
    assert reimported(wb, tmp_path) == expected(base, wb, ARGO_VALUES)
    # One stream: the Rollout, "---", the template; only the tuned lines differ.
    rollout, template = body(wb).split("\n---\n")
    removed, added = changed_lines(base[0].read_text(), rollout + "\n")
    assert removed == [
        "      - pause: {}         # pause indefinitely",
        "      - setWeight: 20",
        "      - pause: {duration: 20s}",
    ]
    assert added == [
        "      - pause: {duration: 30s}         # pause indefinitely",
        "      - setWeight: 15",
        "      - pause: {duration: 1m}",
    ]
    removed, added = changed_lines(base[1].read_text(), template)
    assert removed == ["    interval: 20s", "    successCondition: result[0] > 0.90"]
    assert added == [
        "    interval: 30s",
        "    successCondition: result[0] >= 0.97",
        "    failureLimit: 2",
        "    count: 10",
    ]


def test_directory_base(upstream_fixtures: Path, tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    for f in argo_files(upstream_fixtures):
        shutil.copy(f, folder / f.name)
    wb = write_back([folder], ARGO_VALUES)
    assert [Path(f).name for f in wb.files] == sorted(f.name for f in argo_files(upstream_fixtures))
    assert reimported(wb, tmp_path) == expected([folder], wb, ARGO_VALUES)


def test_cluster_templates_and_a_file_that_starts_with_its_own_separator(
    upstream_fixtures: Path, tmp_path: Path
) -> None:
    argo = upstream_fixtures / "argo"
    base = [
        argo / "rollout-analysis-step.yaml",
        argo / "analysis-templates.yaml",
        argo / "cluster-analysis-templates.yaml",
    ]
    values = {
        "policy.argo.clusterTemplates.always-pass.metrics[0].count": 3,
        "policy.argo.templates.random-fail.metrics[0].failureLimit": 2,
        "policy.argo.strategy.canary.steps[0].setWeight": 10,
        "policy.argo.replicas": 4,  # unchanged
    }
    wb = write_back(base, values)
    assert wb.changed == tuple(values)
    assert reimported(wb, tmp_path) == expected(base, wb, values)
    # analysis-templates.yaml opens with comments and its own "---": no empty document added.
    assert "\n---\n---" not in wb.text and wb.text.count("\n---\n") == 3


def nested(tmp_path: Path, step: str = "") -> list[Path]:
    rollout = write(
        tmp_path,
        "rollout.yaml",
        f"""\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: app}}
spec:
  replicas: 2
  strategy:
    canary:
      analysis:
        templates:
        - templateName: outer
      steps:
      - setWeight: 20
      - pause: {{duration: 1m}}
{step}""",
    )
    templates = write(
        tmp_path,
        "templates.yaml",
        """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: outer}
spec:
  templates:
  - templateName: inner
  metrics:
  - name: errors
    interval: 1m
    successCondition: result[0] < 5
    provider: {prometheus: {address: http://prom:9090, query: errors}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: inner}
spec:
  metrics:
  - name: success-rate
    interval: 1m    # the nested template's own
    successCondition: result[0] >= 0.99
    provider: {prometheus: {address: http://prom:9090, query: rate}}
""",
    )
    return [rollout, templates]


def test_a_flattened_metric_is_written_where_it_lives(tmp_path: Path) -> None:
    base = nested(tmp_path)
    values = {"policy.argo.templates.outer.metrics[1].interval": "30s"}  # inner's metrics[0]
    wb = write_back(base, values)
    assert wb.changed == tuple(values)
    removed, added = changed_lines(base[1].read_text(), body(wb).split("\n---\n", 1)[1])
    assert (removed, added) == (
        ["    interval: 1m    # the nested template's own"],
        ["    interval: 30s    # the nested template's own"],
    )
    # The Rollout reads inner only through outer, so its analysis is the tuned one; the
    # table entry of inner itself (no analysis reads it alone) changes with it.
    want = expected(base, wb, values)
    want = set_path(want, ("argo", "templates", "inner", "metrics", 0, "interval"), "30s")
    assert reimported(wb, tmp_path) == want


def test_a_flattened_metric_another_analysis_reads_is_not_written(tmp_path: Path) -> None:
    base = nested(tmp_path, "      - analysis: {templates: [{templateName: inner}]}\n")
    wb = write_back(base, {"policy.argo.templates.outer.metrics[1].interval": "30s"})
    assert wb.changed == ()
    assert "nested AnalysisTemplate 'inner'" in wb.reasons["policy.argo.templates.outer.metrics[1].interval"]


def test_kind_list_items(tmp_path: Path, upstream_fixtures: Path) -> None:
    import yaml

    rollout = yaml.safe_load((upstream_fixtures / "argo" / "rollouts-demo-istio-rollout.yaml").read_text())
    template = yaml.safe_load((upstream_fixtures / "argo" / "rollouts-demo-istio-analysis.yaml").read_text())
    listed = write(
        tmp_path,
        "list.yaml",
        "# kubectl get -o yaml\n" + yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [rollout, template]}),
    )
    values = {
        "policy.argo.strategy.canary.steps[0].setWeight": 5,
        "policy.argo.templates.istio-success-rate.metrics[0].interval": "10s",
    }
    wb = write_back([listed], values)
    assert wb.changed == tuple(values)
    assert reimported(wb, tmp_path) == expected([listed], wb, values)


def test_a_value_the_base_already_has_needs_no_field(tmp_path: Path, upstream_fixtures: Path) -> None:
    """A tuned value equal to the base's own (no judge, as the base has none) changes
    nothing: it is neither edited nor listed as not written."""
    src = upstream_fixtures / "flagger" / "istio-canary.yaml"
    wb = write_back([src], {"policy.flagger.judge": None})
    assert wb.not_written == () and wb.changed == ("policy.flagger.judge",)
    assert wb.text == src.read_text()
    judged = write_back([src], {"policy.flagger.judge": {"kind": "sequential", "alpha": 0.01}})
    assert judged.not_written == ("policy.flagger.judge",) and judged.text.startswith("# pdsim tune")
