"""Importing real Argo Rollouts manifests (sim.importers.argo.rollout, sim.inputs.policy, `pdsim import argo`).

The fixtures are upstream files copied byte for byte (``/work/shared/fixtures/upstream/
README.md`` names their sources); field semantics follow argoproj/argo-rollouts
``pkg/apis/rollouts/v1alpha1/types.go`` (``RolloutSpec``, ``CanaryStrategy``,
``BlueGreenStrategy``, ``RolloutAnalysis``), ``analysis_types.go`` (``AnalysisTemplateSpec``,
``Metric``) and ``utils/analysis/helpers.go`` (``FlattenTemplates``, ``MergeArgs``).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from sim.errors import InputError
from sim.importers.argo.rollout import import_argo, policy_yaml
from sim.inputs.policy import load_policy, load_policy_with_warnings, read_policy, scenario_policy_with_warnings
from sim.inputs.scenario import load_scenario
from sim.outcomes import PROMOTED, ROLLED_BACK, UNFINISHED
from sim.policies.argo.plan import resolve_analyses
from sim.policies.argo.rollout import ArgoRollout
from sim.policies.checks import check_policy
from sim.runs.runner import run_batch, run_one
from sim.seeds import run_seed
from sim.units import parse_duration
from sim.yamlio import load_yaml_all, loads_yaml
from tests.helpers import REPO, SCENARIO_FILES, UPSTREAM_FIXTURES, invoke, line_of, write

FIXTURES = UPSTREAM_FIXTURES / "argo"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"upstream Argo fixtures not found at {FIXTURES}")
WARNING_RE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+): (?P<field>[\w.\[\]-]+): not modelled: \S.*$"
    # A query whose selectors name no simulated series (sim.world.metrics): upstream's istio
    # example selects the Service `canary`, which its Rollout does not have.
    r"|^metric '[\w-]+': .* selects none of the series the simulated \w+ exporter publishes .*$"
)

#: A Rollout for docs-success-rate-template.yaml (the docs show the template alone).
DOCS_ROLLOUT = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: guestbook
spec:
  replicas: 5
  strategy:
    canary:
      analysis:
        templates:
        - templateName: success-rate
        startingStep: 2
        args:
        - name: service-name
          value: guestbook-svc.default.svc.cluster.local
      steps:
      - setWeight: 20
      - pause: {duration: 10m}
      - setWeight: 40
      - pause: {duration: 10m}
"""

#: Each Rollout with the template files it needs ("docs-rollout" is DOCS_ROLLOUT).
BUNDLES = {
    "istio": ["rollouts-demo-istio-rollout.yaml", "rollouts-demo-istio-analysis.yaml"],
    "appmesh": ["appmesh-canary-rollout-with-prometheus-template.yaml"],
    "analysis-step": ["rollout-analysis-step.yaml", "analysis-templates.yaml", "cluster-analysis-templates.yaml"],
    "background": ["rollout-background-analysis.yaml", "analysis-templates.yaml"],
    "bluegreen": ["e2e-bluegreen-kitchensink-rollout.yaml", "e2e-analysistemplate-sleep-job.yaml"],
    "docs": ["docs-rollout", "docs-success-rate-template.yaml"],
}

#: What README.md says each bundle exercises: (kind, value) steps with pause durations in
#: seconds (None: until promoted), the analyses (kind -> templates), replicas, names.
EXPECTED = {
    "istio": dict(
        name="istio-rollout",
        replicas=1,
        steps=[("setWeight", 10), ("pause", None)]
        + [x for w in range(20, 100, 10) for x in (("setWeight", w), ("pause", 20.0))],
        startingStep=1,
        analyses={"background": ["istio-success-rate"]},
        metrics={
            "success-rate": dict(
                interval=20.0, initial_delay=60.0, count=None, failure_limit=0, success="result[0] > 0.90", failure=None
            )
        },
    ),
    "appmesh": dict(
        name="my-rollout",
        replicas=4,
        steps=[
            ("setWeight", 25),
            ("pause", None),
            ("setWeight", 50),
            ("pause", 600.0),
            ("setWeight", 75),
            ("pause", 600.0),
        ],
        startingStep=None,
        analyses={},
        metrics={},
    ),
    "analysis-step": dict(
        name="rollout-analysis-step",
        replicas=4,
        steps=[("setWeight", 25), ("analysis", None)],
        startingStep=None,
        analyses={"step:1": ["random-fail", "always-pass"]},
        metrics={
            "random-fail": dict(interval=5.0, initial_delay=0.0, count=2, failure_limit=1, success=None, failure=None),
            "pass": dict(interval=5.0, initial_delay=0.0, count=1, failure_limit=1, success=None, failure=None),
        },
    ),
    "background": dict(
        name="rollout-background-analysis",
        replicas=4,
        steps=[("setWeight", 25), ("pause", None)],
        startingStep=None,
        analyses={"background": ["random-fail"]},
        metrics={
            "random-fail": dict(interval=5.0, initial_delay=0.0, count=2, failure_limit=1, success=None, failure=None)
        },
    ),
    "bluegreen": dict(
        name="bluegreen-kitchensink",
        replicas=2,
        steps=[],
        startingStep=None,
        analyses={"pre": ["sleep-job"], "post": ["sleep-job"]},
        metrics={
            "sleep-job": dict(interval=None, initial_delay=0.0, count=1, failure_limit=0, success=None, failure=None)
        },
    ),
    "docs": dict(
        name="guestbook",
        replicas=5,
        steps=[("setWeight", 20), ("pause", 600.0), ("setWeight", 40), ("pause", 600.0)],
        startingStep=2,
        analyses={"background": ["success-rate"]},
        metrics={
            "success-rate": dict(
                interval=300.0,
                initial_delay=0.0,
                count=None,
                failure_limit=3,
                success="result[0] >= 0.95",
                failure=None,
            )
        },
    ),
}


def _paths(bundle: str, tmp_path: Path) -> list[Path]:
    return [
        write(tmp_path, "docs-rollout.yaml", DOCS_ROLLOUT) if f == "docs-rollout" else FIXTURES / f
        for f in BUNDLES[bundle]
    ]


def _import(*paths: Path):
    return import_argo([d for p in paths for d in load_yaml_all(p)])


def _raw_objects(paths: list[Path]) -> list[dict]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text()) if d]


def _rollout(paths: list[Path]) -> dict:
    [rollout] = [d for d in _raw_objects(paths) if d["kind"] == "Rollout"]
    return rollout


# --- every fixture participates and imports with the manifest's numbers --------------------------------


@needs_fixtures
def test_every_fixture_is_in_a_bundle():
    used = {f for files in BUNDLES.values() for f in files if f != "docs-rollout"}
    assert used == {p.name for p in FIXTURES.glob("*.yaml")}


@needs_fixtures
@pytest.mark.parametrize("bundle", BUNDLES)
def test_bundle_imports_with_the_manifests_numbers(bundle, tmp_path):
    paths = _paths(bundle, tmp_path)
    raw = _rollout(paths)
    exp = EXPECTED[bundle]
    result = _import(*paths)
    spec = result.spec

    assert result.name == raw["metadata"]["name"] == exp["name"]
    assert result.sources == [str(p) for p in paths]
    assert spec.replicas == raw["spec"].get("replicas", 1) == exp["replicas"]
    # The strategy is the manifest's, unchanged (no plugin steps here).
    assert result.policy["argo"]["strategy"] == raw["spec"]["strategy"]
    if spec.strategy.canary is not None:
        raw_steps = raw["spec"]["strategy"]["canary"]["steps"]
        got = []
        for st, rs in zip(spec.strategy.canary.steps, raw_steps, strict=True):
            if st.kind == "setWeight":
                assert st.setWeight == rs["setWeight"]
                got.append(("setWeight", st.setWeight))
            elif st.kind == "pause":
                want = rs["pause"].get("duration")
                assert st.pause.duration == (None if want is None else parse_duration(want))
                got.append(("pause", st.pause.duration))
            else:
                got.append((st.kind, None))
        assert got == exp["steps"]
        bg = spec.strategy.canary.analysis
        assert (bg.startingStep if bg else None) == exp["startingStep"]
    else:
        bg_raw = raw["spec"]["strategy"]["blueGreen"]
        bgs = spec.strategy.blueGreen
        assert (
            (bgs.autoPromotionSeconds, bgs.previewReplicaCount, bgs.scaleDownDelaySeconds)
            == (bg_raw["autoPromotionSeconds"], bg_raw["previewReplicaCount"], bg_raw["scaleDownDelaySeconds"])
            == (10, 1, 5)
        )
    # Templates: every one given is in the policy, its spec as written.
    for obj in _raw_objects(paths):
        if obj["kind"] == "AnalysisTemplate":
            assert result.policy["argo"]["templates"][obj["metadata"]["name"]] == obj["spec"]
        elif obj["kind"] == "ClusterAnalysisTemplate":
            assert result.policy["argo"]["clusterTemplates"][obj["metadata"]["name"]] == obj["spec"]
    # What the policy runs: the resolved analyses, arguments substituted.
    policy = ArgoRollout(spec, name=result.name)
    analyses = policy._analyses  # resolved MetricSpecs: the numbers the simulation uses
    refs = {"background": spec.strategy.canary.analysis if spec.strategy.canary else None}
    if spec.strategy.canary:
        refs.update({f"step:{i}": st.analysis for i, st in enumerate(spec.strategy.canary.steps)})
    else:
        bgs = spec.strategy.blueGreen
        refs.update(pre=bgs.prePromotionAnalysis, post=bgs.postPromotionAnalysis)
    assert {k: [t.templateName for t in refs[k].templates] for k in analyses} == exp["analyses"]
    got_metrics = {
        m.name: dict(
            interval=m.interval_s,
            initial_delay=m.initial_delay_s,
            count=m.count,
            failure_limit=m.failure_limit,
            success=m.success_condition,
            failure=m.failure_condition,
        )
        for specs, _ in analyses.values()
        for m in specs
    }
    assert got_metrics == exp["metrics"]
    # ... and each equals the template as written.
    for obj in _raw_objects(paths):
        for m in obj["spec"].get("metrics", []) if obj["kind"] != "Rollout" else []:
            if m["name"] not in got_metrics:
                continue
            g = got_metrics[m["name"]]
            assert g["interval"] == (parse_duration(m["interval"]) if "interval" in m else None)
            assert g["initial_delay"] == parse_duration(m.get("initialDelay", 0))
            assert g["failure_limit"] == m.get("failureLimit", 0)
            assert g["success"] == m.get("successCondition")


@needs_fixtures
def test_istio_args_are_substituted_and_valuefrom_reads_the_simulated_cluster():
    """``valueFrom: {fieldRef: {fieldPath: metadata.namespace}}`` is the Rollout's namespace
    (argo-rollouts utils/analysis/factory.go, BuildArgumentsForRolloutAnalysisRun): the
    simulated one, ``default``, so the query selects the world's series."""
    result = _import(FIXTURES / BUNDLES["istio"][0], FIXTURES / BUNDLES["istio"][1])
    [q] = ArgoRollout(result.spec).queries()
    assert q.name == "success-rate" and q.window_s == 40.0
    assert 'destination_service=~"canary.default.svc.cluster.local"' in q.query
    assert "{{" not in q.query


@needs_fixtures
def test_docs_template_args_are_substituted(tmp_path):
    result = _import(*_paths("docs", tmp_path))
    [q] = ArgoRollout(result.spec).queries()
    assert q.window_s == 300.0
    assert q.query.count('destination_service=~"guestbook-svc.default.svc.cluster.local"') == 2
    assert result.warnings == []


@needs_fixtures
def test_bluegreen_args_merge_like_argo():
    result = _import(*(FIXTURES / f for f in BUNDLES["bluegreen"]))
    _, metrics = ArgoRollout(result.spec)._analyses["post"]
    args = metrics["sleep-job"].provider["job"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["sleep 10 && exit 1"]  # the analysis's exit-code and duration win over the template's
    _, metrics = ArgoRollout(result.spec)._analyses["pre"]
    assert metrics["sleep-job"].provider["job"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "sleep 10 && exit 0"
    ]
    # count "{{args.count}}" -> the template's default "1".
    assert [m.count for m in ArgoRollout(result.spec)._analyses["pre"][0]] == [1]


@needs_fixtures
def test_appmesh_template_is_kept_though_the_analysis_is_commented_out():
    result = _import(FIXTURES / BUNDLES["appmesh"][0])
    t = result.spec.templates["success-rate"]
    assert [(m.name, m.interval, m.failureLimit, m.successCondition) for m in t.metrics] == [
        ("success-rate", "5m", 3, "result[0] >= 0.99")
    ]
    assert [a.name for a in t.args] == ["envoy_cluster_name"]
    assert result.spec.strategy.canary.analysis is None
    assert result.warnings == []  # appMesh routing, services, pod template: quiet


# --- the imported policies run ---------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("bundle", BUNDLES)
def test_bundle_runs_through_the_cli(bundle, tmp_path):
    paths = _paths(bundle, tmp_path)
    args = [x for p in paths for x in ("--policy", p)]
    result = invoke("run", REPO / "scenarios" / "error-spike.yaml", *args, "--runs", 3, "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["policy"] == EXPECTED[bundle]["name"] and out["runs"] == 3 and len(out["records"]) == 3
    assert sum(out["outcomes"].values()) == 3
    assert all(WARNING_RE.match(line) for line in result.stderr.splitlines()), result.stderr


@needs_fixtures
@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("scenario_path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_bundle_runs_against_every_bundled_scenario(bundle, scenario_path, tmp_path):
    # Two hours at most: a bundle whose rollout never finishes (an indefinite pause) would
    # otherwise tick every 15 s to an A/B experiment's 15-day horizon (minutes per run);
    # two hours show that the bundle runs in the scenario's world.
    scenario = load_scenario(scenario_path)
    scenario = scenario.model_copy(update={"horizon": min(scenario.horizon, 7200.0)})
    policy = load_policy(_paths(bundle, tmp_path))
    records = run_batch(scenario, policy, 2, seed=5)
    assert [r.run for r in records] == [0, 1]
    assert all(r.outcome in (PROMOTED, ROLLED_BACK, UNFINISHED) for r in records)
    trace = run_one(scenario, policy, run_seed(5, 0, 0), trace=True).trace
    assert trace and all(0 <= line["routed_weight"] <= 100 for line in trace)


@needs_fixtures
@pytest.mark.parametrize("bundle", BUNDLES)
def test_imported_policies_keep_the_contract(bundle, tmp_path):
    check_policy(load_policy(_paths(bundle, tmp_path)), episodes=20)


@needs_fixtures
def test_pause_without_duration_waits_for_manual_promotion(tmp_path):
    """appmesh pauses with `pause: {}`: nobody promotes by default, so the run ends
    unfinished at the horizon; a scripted `manual-promotion` lets it finish."""
    text = (REPO / "scenarios" / "good-release.yaml").read_text()
    base = text[: text.index("policy:")]
    waiting = write(tmp_path, "waiting.yaml", base + "runs: 2\nseed: 1\n")
    promoted = write(tmp_path, "promoted.yaml", base + "webhooks:\n  manual-promotion: pass\nruns: 2\nseed: 1\n")
    policy = load_policy([FIXTURES / BUNDLES["appmesh"][0]])
    assert {r.outcome for r in run_batch(load_scenario(waiting), policy, 2, seed=1)} == {UNFINISHED}
    assert {r.outcome for r in run_batch(load_scenario(promoted), policy, 2, seed=1)} == {PROMOTED}


# --- pdsim import argo -------------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("bundle", BUNDLES)
def test_import_output_reloads_as_the_same_policy(bundle, tmp_path):
    paths = _paths(bundle, tmp_path)
    out = tmp_path / "policy.yaml"
    result = invoke("import", "argo", *paths, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    text = out.read_text()
    assert text.startswith("# pdsim policy imported from Argo Rollouts manifests")
    assert all(f"#   {p}\n" in text for p in paths)  # the header names the sources
    docs = load_yaml_all(out)
    assert len(docs) == 1 and list(docs[0].data) == ["argo"]
    policy, warnings = load_policy_with_warnings([out])
    imported = _import(*paths)
    assert policy.spec == imported.spec
    assert policy.name == "policy"  # a policy file is named after its stem
    # Warnings went to stderr, one line each; the policy file warns for the same fields.
    lines = result.stderr.splitlines()
    assert lines == imported.warnings and all(WARNING_RE.match(line) for line in lines), lines
    assert len(warnings) == len(imported.warnings)
    # `pdsim validate` reads the output as a policy file.
    check = invoke("validate", out)
    assert check.exit_code == 0 and check.stdout.strip() == f"{out}: ok (policy)", check.stderr


@needs_fixtures
def test_import_to_stdout_keeps_queries_readable(tmp_path):
    result = invoke("import", "argo", *(FIXTURES / f for f in BUNDLES["istio"]))
    assert result.exit_code == 0, result.stderr
    assert "query: |" in result.stdout
    out = write(tmp_path, "imported.yaml", result.stdout)
    assert load_policy([out]).spec == _import(*(FIXTURES / f for f in BUNDLES["istio"])).spec


def test_import_errors_are_one_line_exit_2(tmp_path):
    rollout = write(tmp_path, "rollout.yaml", ROLLOUT)
    result = invoke("import", "argo", rollout)
    assert result.exit_code == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"{rollout}:{line_of(ROLLOUT, 'templateName: success-rate')}: "
        "spec.strategy.canary.analysis.templates[0].templateName: no AnalysisTemplate named "
        "'success-rate'"
    )
    result = invoke("import", "kayenta", rollout)
    assert result.exit_code == 2 and "unknown importer 'kayenta': use flagger or argo" in result.stderr
    template = write(tmp_path, "t.yaml", TEMPLATE)
    result = invoke("import", "argo", rollout, template, "-o", rollout)
    assert result.exit_code == 2 and "would overwrite" in result.stderr
    assert rollout.read_text() == ROLLOUT


# --- errors point into the manifests ------------------------------------------------------------------------

ROLLOUT = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: app
  namespace: shop
spec:
  replicas: 3
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec: {containers: [{name: app, image: app:2}]}
  strategy:
    canary:
      canaryService: app-canary
      stableService: app-stable
      trafficRouting:
        istio: {virtualService: {name: app, routes: [primary]}}
      analysis:
        templates:
        - templateName: success-rate
        startingStep: 1
        args:
        - {name: service, value: app-canary}
      steps:
      - setWeight: 10
      - pause: {duration: 1m}
      - setWeight: 50
      - pause: {duration: 2m}
"""

TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
  namespace: shop
spec:
  args:
  - name: service
  - name: limit
    value: "2"
  metrics:
  - name: success-rate
    interval: 30s
    count: 10
    failureLimit: "{{args.limit}}"
    successCondition: result[0] >= 0.99
    provider:
      prometheus:
        address: http://prometheus:9090
        query: |
          sum(rate(istio_requests_total{destination_service=~"{{args.service}}",response_code!~"5.*"}[1m])) /
          sum(rate(istio_requests_total{destination_service=~"{{args.service}}"}[1m]))
"""


def test_small_bundle_imports_and_substitutes(tmp_path):
    result = _import(write(tmp_path, "r.yaml", ROLLOUT), write(tmp_path, "t.yaml", TEMPLATE))
    [m] = ArgoRollout(result.spec)._analyses["background"][0]
    assert (m.interval_s, m.count, m.failure_limit) == (30.0, 10, 2)
    assert result.warnings == []


@pytest.mark.parametrize(
    ("where", "old", "new", "field", "needle"),
    [
        ("rollout", "setWeight: 50", "setWeight: 150", "spec.strategy.canary.steps[2].setWeight", "setWeight: 150"),
        ("rollout", "duration: 2m", "duration: soon", "spec.strategy.canary.steps[3].pause.duration", "duration: soon"),
        (
            "rollout",
            "startingStep: 1",
            "startingStep: one",
            "spec.strategy.canary.analysis.startingStep",
            "startingStep: one",
        ),
        (
            "rollout",
            "      - setWeight: 10\n",
            "      - setWeight: 10\n        pause: {}\n",
            "spec.strategy.canary.steps[0]",
            "setWeight: 10",
        ),
        (
            "rollout",
            "stableService: app-stable",
            "stableService: app-stable\n      stepz: []",
            "spec.strategy.canary.stepz",
            "stepz:",
        ),
        ("rollout", "  replicas: 3", "  replicas: 0", "spec.replicas", "replicas: 0"),
        ("rollout", "  replicas: 3", "  replicas: 3\n  pasued: true", "spec.pasued", "pasued:"),
        (
            "rollout",
            "startingStep: 1",
            "startingStep: 1\n        dryrun: []",
            "spec.strategy.canary.analysis.dryrun",
            "dryrun:",
        ),
        (
            "rollout",
            "value: app-canary}",
            "valeu: app-canary}",
            "spec.strategy.canary.analysis.args[0].valeu",
            "valeu:",
        ),
        (
            "rollout",
            "  strategy:\n",
            "  strategy:\n    blueGreen: {activeService: a}\n",
            "spec.strategy",
            "  strategy:",
        ),
        ("template", "interval: 30s", "interval: 30", "spec.metrics[0].interval", "interval: 30"),
        ("template", "count: 10", "count: many", "spec.metrics[0].count", "count: many"),
        ("template", "count: 10", "cuont: 10", "spec.metrics[0].cuont", "cuont: 10"),
        (
            "template",
            "address: http://prometheus:9090",
            "adress: http://prometheus:9090",
            "spec.metrics[0].provider.prometheus.adress",
            "adress:",
        ),
        (
            "template",
            "      prometheus:",
            "      datadoge: {}\n      prometheus:",
            "spec.metrics[0].provider.datadoge",
            "datadoge:",
        ),
        ("template", '    value: "2"', '    value: "two"', "spec.metrics[0].failureLimit", "failureLimit:"),
    ],
)
def test_bad_field_names_its_line(tmp_path, where, old, new, field, needle):
    texts = {"rollout": ROLLOUT, "template": TEMPLATE}
    assert texts[where].count(old) == 1
    texts[where] = texts[where].replace(old, new)
    rollout = write(tmp_path, "rollout.yaml", texts["rollout"])
    template = write(tmp_path, "template.yaml", texts["template"])
    path = rollout if where == "rollout" else template
    with pytest.raises(InputError) as info:
        load_policy([rollout, template])
    assert str(info.value).startswith(f"{path}:{line_of(texts[where], needle)}: {field}: "), str(info.value)
    # The same line through the CLI, exit 2 and nothing else on stderr.
    result = invoke(
        "run", REPO / "scenarios" / "error-spike.yaml", "--policy", rollout, "--policy", template, "--runs", 1
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [str(info.value)]


@needs_fixtures
@pytest.mark.parametrize(
    ("fixture", "old", "new", "field", "needle"),
    [
        (
            "rollouts-demo-istio-rollout.yaml",
            "setWeight: 30",
            "setWeight: 300",
            "spec.strategy.canary.steps[4].setWeight",
            "setWeight: 300",
        ),
        (
            "rollouts-demo-istio-rollout.yaml",
            "pause: {duration: 20s}\n      - setWeight: 50",
            "pause: {duration: 20x}\n      - setWeight: 50",
            "spec.strategy.canary.steps[7].pause.duration",
            "20x",
        ),
        (
            "rollout-analysis-step.yaml",
            "clusterScope: true",
            "clusterScope: yes please",
            "spec.strategy.canary.steps[1].analysis.templates[1].clusterScope",
            "clusterScope:",
        ),
        (
            "e2e-bluegreen-kitchensink-rollout.yaml",
            "autoPromotionSeconds: 10",
            "autoPromotionSeconds: ten",
            "spec.strategy.blueGreen.autoPromotionSeconds",
            "autoPromotionSeconds: ten",
        ),
        (
            "e2e-bluegreen-kitchensink-rollout.yaml",
            "previewReplicaCount: 1",
            "previewReplicaCount: 1\n      previewReplicas: 1",
            "spec.strategy.blueGreen.previewReplicas",
            "previewReplicas:",
        ),
    ],
)
def test_bad_field_in_a_real_manifest_names_its_line(tmp_path, fixture, old, new, field, needle):
    bundle = next(files for files in BUNDLES.values() if files[0] == fixture)
    text = (FIXTURES / fixture).read_text()
    assert text.count(old) == 1
    text = text.replace(old, new)
    path = write(tmp_path, fixture, text)
    with pytest.raises(InputError) as info:
        load_policy([path] + [FIXTURES / f for f in bundle[1:]])
    assert str(info.value).startswith(f"{path}:{line_of(text, needle)}: {field}: "), str(info.value)


@needs_fixtures
def test_bad_value_in_a_real_template_names_the_template_line(tmp_path):
    text = (FIXTURES / "rollouts-demo-istio-analysis.yaml").read_text().replace("interval: 20s", "interval: 20")
    template = write(tmp_path, "analysis.yaml", text)
    with pytest.raises(
        InputError,
        match=rf"^{re.escape(str(template))}:{line_of(text, 'interval: 20')}: "
        r"spec\.metrics\[0\]\.interval: not a Go duration",
    ):
        load_policy([FIXTURES / "rollouts-demo-istio-rollout.yaml", template])


@needs_fixtures
@pytest.mark.parametrize(
    ("given", "missing", "kind", "needle"),
    [
        (["analysis-templates.yaml"], "always-pass", "ClusterAnalysisTemplate", "templateName: always-pass"),
        (["cluster-analysis-templates.yaml"], "random-fail", "AnalysisTemplate", "templateName: random-fail"),
    ],
)
def test_missing_template_is_an_error_naming_it_where_referenced(given, missing, kind, needle):
    rollout = FIXTURES / "rollout-analysis-step.yaml"
    with pytest.raises(InputError) as info:
        load_policy([rollout] + [FIXTURES / f for f in given])
    msg = str(info.value)
    i = 0 if missing == "random-fail" else 1
    assert msg.startswith(
        f"{rollout}:{line_of(rollout.read_text(), needle)}: "
        f"spec.strategy.canary.steps[1].analysis.templates[{i}].templateName: "
        f"no {kind} named '{missing}' in "
    )
    assert "pass the file that defines it" in msg


@needs_fixtures
def test_missing_template_alone_and_wrong_scope():
    with pytest.raises(InputError, match=r"no AnalysisTemplate named 'random-fail'"):
        load_policy([FIXTURES / "rollout-background-analysis.yaml"])
    # The template exists, but as the other kind: say which clusterScope to use.
    text = (
        (FIXTURES / "cluster-analysis-templates.yaml")
        .read_text()
        .replace("kind: ClusterAnalysisTemplate", "kind: AnalysisTemplate")
    )
    with pytest.raises(
        InputError,
        match=r"no ClusterAnalysisTemplate named 'always-pass' .*an AnalysisTemplate "
        r"of that name is given: drop clusterScope: true",
    ):
        import_argo(
            load_yaml_all(FIXTURES / "rollout-analysis-step.yaml")
            + load_yaml_all(FIXTURES / "analysis-templates.yaml")
            + [loads_yaml(text, "cat.yaml")]
        )


def test_template_in_another_namespace_does_not_resolve(tmp_path):
    rollout = write(tmp_path, "r.yaml", ROLLOUT)
    template = write(tmp_path, "t.yaml", TEMPLATE.replace("namespace: shop", "namespace: other"))
    with pytest.raises(
        InputError,
        match=r"AnalysisTemplate 'success-rate' is in namespace other, not in the "
        r"Rollout's namespace 'shop'",
    ):
        _import(rollout, template)


def test_argument_without_value_is_an_error(tmp_path):
    text = ROLLOUT.replace("        args:\n        - {name: service, value: app-canary}\n", "")
    rollout = write(tmp_path, "r.yaml", text)
    with pytest.raises(InputError) as info:
        _import(rollout, write(tmp_path, "t.yaml", TEMPLATE))
    assert str(info.value).startswith(
        f"{rollout}:{line_of(text, '      analysis:')}: "
        "spec.strategy.canary.analysis: argument 'service' of AnalysisTemplate "
        "'success-rate'"
    )
    assert "args.service was not resolved" in str(info.value)


def test_argument_from_valuefrom_cannot_be_a_count(tmp_path):
    text = ROLLOUT.replace(
        "- {name: service, value: app-canary}",
        "- {name: service, value: app-canary}\n        - name: limit\n"
        "          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}",
    )
    template = write(tmp_path, "t.yaml", TEMPLATE)
    with pytest.raises(InputError) as info:
        _import(write(tmp_path, "r.yaml", text), template)
    assert str(info.value).startswith(
        f"{template}:{line_of(TEMPLATE, 'failureLimit')}: spec.metrics[0].failureLimit: "
        "is '<limit>' with the arguments of the analysis at "
    )


def test_two_metrics_with_one_name_are_an_error(tmp_path):
    other = TEMPLATE.replace("name: success-rate\n  namespace", "name: other\n  namespace")
    text = ROLLOUT.replace(
        "        - templateName: success-rate\n",
        "        - templateName: success-rate\n        - templateName: other\n",
    )
    two = write(tmp_path, "other.yaml", other)
    with pytest.raises(
        InputError,
        match=rf"^{re.escape(str(two))}:{line_of(other, '- name: success-rate')}: "
        r"spec\.metrics\[0\]\.name: metric "
        r"'success-rate' is also defined by AnalysisTemplate 'success-rate'",
    ):
        _import(write(tmp_path, "r.yaml", text), write(tmp_path, "t.yaml", TEMPLATE), two)


def test_conflicting_template_arguments_are_an_error(tmp_path):
    other = (
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: other}\nspec:\n"
        '  args:\n  - {name: limit, value: "3"}\n'
        "  metrics:\n  - name: up\n    provider: {web: {url: http://x/}}\n"
    )
    text = ROLLOUT.replace(
        "        - templateName: success-rate\n",
        "        - templateName: success-rate\n        - templateName: other\n",
    )
    with pytest.raises(InputError, match=r"argument 'limit' is also given with a different value \('2'\)"):
        _import(write(tmp_path, "r.yaml", text), write(tmp_path, "t.yaml", TEMPLATE), write(tmp_path, "o.yaml", other))


def test_no_rollout_or_two_rollouts_name_the_files(tmp_path):
    template = write(tmp_path, "t.yaml", TEMPLATE)
    with pytest.raises(
        InputError,
        match=rf"^{re.escape(str(template))}:1: no Argo Rollout .* in "
        rf"{re.escape(str(template))}$",
    ):
        read_policy([template])
    one = write(tmp_path, "one.yaml", ROLLOUT.replace("name: app\n", "name: first\n"))
    two = write(tmp_path, "two.yaml", ROLLOUT.replace("name: app\n", "name: second\n"))
    with pytest.raises(
        InputError,
        match=rf"^{re.escape(str(two))}:1: a second Rollout \(second\).*"
        rf"\(the first one, first, is at {re.escape(str(one))}:1\)",
    ):
        read_policy([one, two, template])


def test_other_argo_api_versions_are_refused(tmp_path):
    path = write(tmp_path, "r.yaml", ROLLOUT.replace("argoproj.io/v1alpha1", "argoproj.io/v1beta1"))
    with pytest.raises(InputError, match=r"r\.yaml:1: apiVersion: pdsim reads argoproj\.io/v1alpha1"):
        load_policy([path])


def test_a_rollout_and_a_flagger_canary_are_two_policies(tmp_path):
    canary = (
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: c}\n"
        "spec:\n  analysis: {interval: 1m, stepWeight: 10}\n"
    )
    with pytest.raises(InputError, match=r"an Argo Rollout and a Flagger Canary .* are two policies"):
        read_policy([write(tmp_path, "r.yaml", ROLLOUT), write(tmp_path, "c.yaml", canary)])
    # Argo templates next to a Canary are the Canary's business (Flagger ignores them).
    assert read_policy([write(tmp_path, "t.yaml", TEMPLATE), tmp_path / "c.yaml"]).spec.flagger is not None


# --- refused steps -------------------------------------------------------------------------------------------


def test_experiment_step_imports(tmp_path):
    """Issue 16: experiment steps are simulated (sim.policies.argo.experiment), no longer refused."""
    text = ROLLOUT.replace(
        "      - setWeight: 50\n",
        "      - experiment:\n          duration: 5m\n          templates:\n"
        "          - {name: baseline, specRef: stable}\n      - setWeight: 50\n",
    )
    path = write(tmp_path, "r.yaml", text)
    result = _import(path, write(tmp_path, "t.yaml", TEMPLATE))
    step = result.spec.strategy.canary.steps[2].experiment
    assert step.duration == 300.0 and step.templates[0].specRef == "stable"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("setCanaryScale: {replicas: 1}", "setCanaryScale needs spec.strategy.canary.trafficRouting"),
        ("setHeaderRoute: {name: h, match: [{headerName: x, headerValue: {exact: a}}]}", "setHeaderRoute needs"),
        ("setMirrorRoute: {name: m, percentage: 10}", "setMirrorRoute needs"),
    ],
)
def test_steps_argo_rejects_without_traffic_routing(tmp_path, step, message):
    text = ROLLOUT.replace(
        "      trafficRouting:\n        istio: {virtualService: {name: app, routes: [primary]}}\n", ""
    ).replace("      - setWeight: 50\n", f"      - {step}\n      - setWeight: 50\n")
    path = write(tmp_path, "r.yaml", text)
    with pytest.raises(
        InputError,
        match=rf"^{re.escape(str(path))}:{line_of(text, step[:10])}: "
        rf"spec\.strategy\.canary\.steps\[2\]\.{step.split(':')[0]}: {message}",
    ):
        _import(path, write(tmp_path, "t.yaml", TEMPLATE))


def test_header_match_needs_one_value_kind(tmp_path):
    text = ROLLOUT.replace(
        "      - setWeight: 50\n",
        "      - setHeaderRoute:\n          name: h\n          match:\n"
        "          - headerName: x\n            headerValue: {exact: a, prefix: b}\n"
        "      - setWeight: 50\n",
    )
    path = write(tmp_path, "r.yaml", text)
    with pytest.raises(
        InputError,
        match=rf":{line_of(text, 'headerValue')}: spec\.strategy\.canary\.steps\[2\]\."
        r"setHeaderRoute\.match\[0\]\.headerValue: a match value needs exactly one",
    ):
        _import(path, write(tmp_path, "t.yaml", TEMPLATE))


def test_plugin_step_warns_and_completes_at_once(tmp_path):
    text = ROLLOUT.replace(
        "      - setWeight: 50\n",
        "      - plugin:\n          name: argoproj-labs/gate\n          config: {wait: true}\n      - setWeight: 50\n",
    )
    path = write(tmp_path, "r.yaml", text)
    result = _import(path, write(tmp_path, "t.yaml", TEMPLATE))
    assert result.warnings == [
        f"{path}:{line_of(text, '- plugin:')}: spec.strategy.canary.steps[2].plugin: "
        "not modelled: " + result.warnings[0].split("not modelled: ", 1)[1]
    ]
    steps = result.spec.strategy.canary.steps
    assert [s.kind for s in steps] == ["setWeight", "pause", "pause", "setWeight", "pause"]  # indexes kept
    assert steps[2].pause.duration == 0
    assert result.policy["argo"]["strategy"]["canary"]["steps"][2] == {"pause": {"duration": 0}}
    check_policy(ArgoRollout(result.spec), episodes=5)


# --- warnings: decision-relevant fields only ---------------------------------------------------------------

WARNED = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: loud
spec:
  replicas: 10
  paused: true
  minReadySeconds: 30
  progressDeadlineSeconds: 300
  progressDeadlineAbort: true
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: loud}
  strategy:
    canary:
      canaryService: loud-canary
      stableService: loud-stable
      dynamicStableScale: true
      replicaProgressThreshold: {type: Percent, value: 80}
      trafficRouting:
        maxTrafficWeight: 1000
        nginx:
          stableIngress: loud
          additionalIngressAnnotations:
            canary-by-header: X-Canary
            canary-by-header-value: "yes"
        plugins:
          argoproj-labs/gatewayAPI: {httpRoute: loud}
        managedRoutes:
        - name: mirror
      analysis:
        templates:
        - templateName: checks
        args:
        - name: hash
          valueFrom:
            podTemplateHashValue: Latest
        dryRun:
        - metricName: success
      steps:
      - setWeight: 50
      - plugin:
          name: argoproj-labs/sleep
      - setMirrorRoute:
          name: mirror
          percentage: 30
          match:
          - method: {exact: GET}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: checks
spec:
  args:
  - name: hash
  - name: ns
    valueFrom:
      fieldRef: {fieldPath: metadata.namespace}
  - name: api-token
    valueFrom:
      secretKeyRef: {name: dd, key: token}
  metrics:
  - name: success-rate
    interval: 1m
    successCondition: result[0] >= 0.99
    provider:
      prometheus:
        query: sum(rate(ok{hash="{{args.hash}}"}[1m])) / sum(rate(all{hash="{{args.hash}}"}[1m]))
        rangeQuery: {start: now() - duration("5m"), end: now(), step: 1m}
  - name: judge
    provider:
      kayenta:
        address: http://kayenta/
        application: loud
        canaryConfigName: loud
        thresholds: {pass: 90, marginal: 75}
        scopes: []
  - name: smoke
    provider:
      web:
        url: http://smoke/{{args.ns}}
        jsonPath: "{$.ok}"
  - name: e2e
    provider:
      job:
        spec:
          template:
            spec:
              containers: [{name: e2e, image: e2e:1}]
              restartPolicy: Never
  - name: errors
    interval: 1m
    successCondition: result < 5
    provider:
      datadog:
        query: sum:errors{service:loud}
        apiVersion: v2
"""


def _warned_fields(result) -> dict[str, int]:
    got = {}
    for w in result.warnings:
        m = WARNING_RE.match(w)
        assert m, w
        got[m["field"]] = int(m["line"])
    assert len(got) == len(result.warnings)  # one line per field
    return got


def test_decision_relevant_unmodelled_fields_warn_with_their_lines(tmp_path):
    path = write(tmp_path, "loud.yaml", WARNED)
    result = _import(path)
    second = WARNED.index("---")

    def in_template(needle):
        return line_of(WARNED[second:], needle) + WARNED[:second].count("\n")

    assert _warned_fields(result) == {
        "spec.paused": line_of(WARNED, "paused: true"),
        "spec.minReadySeconds": line_of(WARNED, "minReadySeconds"),
        "spec.strategy.canary.dynamicStableScale": line_of(WARNED, "dynamicStableScale"),
        "spec.strategy.canary.replicaProgressThreshold": line_of(WARNED, "replicaProgressThreshold"),
        "spec.strategy.canary.trafficRouting.maxTrafficWeight": line_of(WARNED, "maxTrafficWeight"),
        "spec.strategy.canary.trafficRouting.nginx.additionalIngressAnnotations.canary-by-header": line_of(
            WARNED, "canary-by-header:"
        ),
        "spec.strategy.canary.trafficRouting.nginx.additionalIngressAnnotations.canary-by-header-value": line_of(
            WARNED, "canary-by-header-value"
        ),
        "spec.strategy.canary.steps[1].plugin": line_of(WARNED, "- plugin:"),
        "spec.strategy.canary.steps[2].setMirrorRoute.match": line_of(WARNED, "          match:"),
        "spec.args[1].valueFrom": in_template("valueFrom:"),
        "spec.metrics[0].provider.prometheus.rangeQuery": in_template("rangeQuery"),
        "spec.metrics[1].provider.kayenta": in_template("kayenta:"),
        "spec.metrics[2].provider.web": in_template("web:"),
        "spec.metrics[3].provider.job": in_template("job:"),
        "spec.metrics[4].provider.datadog": in_template("datadog:"),
    }
    by_field = {WARNING_RE.match(w)["field"]: w for w in result.warnings}
    assert (
        "the canary config lives in Kayenta: pdsim's Kayenta replica judges"
        in by_field["spec.metrics[1].provider.kayenta"]
    )
    assert "canaryConfigs" in by_field["spec.metrics[1].provider.kayenta"]
    for f, name in (("web", "smoke"), ("job", "e2e"), ("datadog", "errors")):
        w = by_field[f"spec.metrics[{['web', 'job', 'datadog'].index(f) + 2}].provider.{f}"]
        assert f"scripted in the scenario by metric name (webhooks: {{{name}: ...}}), default pass" in w, w
    # podTemplateHashValue reads the simulated cluster's hash: nothing to warn about.
    assert "spec.strategy.canary.analysis.args[0].valueFrom" not in by_field
    # dryRun matches names as Go's regexp.MatchString does, in Argo and in pdsim alike:
    # "success" dry-runs "success-rate", and there is nothing to warn about (issue 16).
    assert "spec.strategy.canary.analysis.dryRun[0].metricName" not in by_field
    # They still import: the fields pdsim keeps stay in the policy.
    assert result.spec.strategy.canary.trafficRouting["maxTrafficWeight"] == 1000
    assert result.spec.replicas == 10


def test_warnings_reach_the_cli(tmp_path):
    path = write(tmp_path, "loud.yaml", WARNED)
    result = invoke("validate", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{path}: ok (policy)"
    assert result.stderr.splitlines() == _import(path).warnings


QUIET = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: quiet
  namespace: prod
  labels: {team: web}
  annotations: {notes: "k8s only"}
spec:
  replicas: 4
  paused: false
  minReadySeconds: 0
  progressDeadlineSeconds: 900
  progressDeadlineAbort: false
  revisionHistoryLimit: 3
  restartAt: "2024-01-01T00:00:00Z"
  rollbackWindow: {revisions: 2}
  analysis: {successfulRunHistoryLimit: 3, unsuccessfulRunHistoryLimit: 5}
  selector: {matchLabels: {app: quiet}}
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: quiet, scaleDown: progressively}
  template:
    metadata: {labels: {app: quiet}}
    spec:
      containers: [{name: quiet, image: quiet:2, resources: {requests: {cpu: 10m}}}]
  strategy:
    canary:
      canaryService: quiet-canary
      stableService: quiet-stable
      maxSurge: "25%"
      maxUnavailable: 0
      antiAffinity:
        preferredDuringSchedulingIgnoredDuringExecution: {weight: 1}
      canaryMetadata: {labels: {role: canary}}
      stableMetadata: {labels: {role: stable}}
      scaleDownDelaySeconds: 30
      scaleDownDelayRevisionLimit: 1
      abortScaleDownDelaySeconds: 600
      minPodsPerReplicaSet: 2
      dynamicStableScale: false
      replicaProgressThreshold: {type: Percent, value: 100}
      pingPong: {pingService: ping, pongService: pong}
      trafficRouting:
        maxTrafficWeight: 100
        istio:
          virtualService: {name: quiet, routes: [primary]}
          destinationRule: {name: quiet, canarySubsetName: canary, stableSubsetName: stable}
        managedRoutes:
        - name: beta
      analysis:
        templates:
        - templateName: errors
        - templateName: shared
          clusterScope: true
        args:
        - {name: service, value: quiet-canary}
        dryRun:
        - metricName: errors
        measurementRetention:
        - {metricName: latency, limit: 20}
        analysisRunMetadata: {labels: {team: web}}
      steps:
      - setWeight: 20
      - setCanaryScale: {replicas: 2}
      - setHeaderRoute:
          name: beta
          match:
          - headerName: x-beta
            headerValue: {exact: "1"}
      - pause: {duration: 10m}
      - analysis:
          templates: [{templateName: errors}]
          args: [{name: service, value: quiet-canary}]
status:
  phase: Healthy
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: errors
  namespace: prod
spec:
  args:
  - name: service
  - name: hash
    value: unused
  - name: token
    valueFrom:
      secretKeyRef: {name: prom, key: token}
  measurementRetention:
  - {metricName: errors, limit: 5}
  metrics:
  - name: errors
    interval: 1m
    initialDelay: 30s
    count: 5
    failureLimit: 1
    inconclusiveLimit: 1
    consecutiveErrorLimit: 2
    consecutiveSuccessLimit: 0
    successCondition: result[0] < 0.01
    failureCondition: result[0] >= 0.05
    provider:
      prometheus:
        address: https://prometheus:9090
        timeout: 30
        insecure: true
        headers: [{key: Authorization, value: "Bearer {{args.token}}"}]
        authentication: {sigv4: {region: eu-west-1}}
        query: |
          sum(rate(http_requests_total{service="{{args.service}}",code=~"5.."}[1m])) /
          sum(rate(http_requests_total{service="{{args.service}}"}[1m]))
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata:
  name: shared
spec:
  metrics:
  - name: latency
    interval: 1m
    successCondition: result[0] < 500
    provider:
      prometheus:
        query: histogram_quantile(0.99, sum(rate(request_duration_bucket{service="{{args.service}}"}[1m])) by (le))
---
apiVersion: v1
kind: Service
metadata: {name: quiet-canary}
spec: {ports: [{port: 80}]}
"""


def test_kubernetes_only_fields_are_quiet(tmp_path):
    path = write(tmp_path, "quiet.yaml", QUIET)
    result = _import(path)
    assert result.warnings == []
    assert result.name == "quiet"
    assert set(result.spec.templates) == {"errors"} and set(result.spec.clusterTemplates) == {"shared"}
    # It runs: the queries are of well-known shapes.
    out = invoke("run", REPO / "scenarios" / "error-spike.yaml", "--policy", path, "--runs", 2, "--json")
    assert out.exit_code == 0, out.stderr
    check_policy(ArgoRollout(result.spec), episodes=5)


def test_blue_green_kubernetes_fields_are_quiet(tmp_path):
    text = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: bg}\nspec:\n  replicas: 2\n"
        "  strategy:\n    blueGreen:\n      activeService: a\n      previewService: p\n"
        "      previewReplicaCount: 1\n      autoPromotionEnabled: false\n      scaleDownDelaySeconds: 30\n"
        "      scaleDownDelayRevisionLimit: 1\n      abortScaleDownDelaySeconds: 30\n      maxUnavailable: 1\n"
        "      antiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {}}\n"
        "      previewMetadata: {labels: {role: preview}}\n      activeMetadata: {labels: {role: active}}\n"
    )
    result = _import(write(tmp_path, "bg.yaml", text))
    assert result.warnings == []
    assert result.spec.strategy.blueGreen.autoPromotionEnabled is False


# --- template features ---------------------------------------------------------------------------------------

NESTED = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: outer}
spec:
  args:
  - {name: service}
  templates:
  - templateName: inner
  - templateName: shared
    clusterScope: true
  metrics:
  - name: outer-metric
    provider: {web: {url: "http://x/{{args.service}}"}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: inner}
spec:
  args:
  - {name: limit, value: "1"}
  dryRun:
  - metricName: inner-metric
  metrics:
  - name: inner-metric
    count: 3
    interval: 10s
    failureLimit: "{{args.limit}}"
    provider: {job: {spec: {template: {spec: {containers: [{name: c, image: i}], restartPolicy: Never}}}}}
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: shared}
spec:
  metrics:
  - name: shared-metric
    provider: {web: {url: "http://y/"}}
"""


def test_nested_templates_are_flattened(tmp_path):
    text = ROLLOUT.replace("templateName: success-rate", "templateName: outer")
    result = _import(write(tmp_path, "r.yaml", text), write(tmp_path, "n.yaml", NESTED))
    outer = result.policy["argo"]["templates"]["outer"]
    assert "templates" not in outer
    assert [m["name"] for m in outer["metrics"]] == ["outer-metric", "inner-metric", "shared-metric"]
    assert outer["args"] == [{"name": "service"}, {"name": "limit", "value": "1"}]
    assert outer["dryRun"] == [{"metricName": "inner-metric"}]
    specs, _ = ArgoRollout(result.spec)._analyses["background"]
    assert [(m.name, m.count, m.failure_limit, m.dry_run) for m in specs] == [
        ("outer-metric", None, 0, False),
        ("inner-metric", 3, 1, True),
        ("shared-metric", None, 0, False),
    ]
    # The nested templates are there on their own too (as kubectl apply creates them).
    assert set(result.spec.templates) == {"outer", "inner"} and set(result.spec.clusterTemplates) == {"shared"}


def test_nested_template_cycle_and_missing_nested_template(tmp_path):
    text = ROLLOUT.replace("templateName: success-rate", "templateName: outer")
    rollout = write(tmp_path, "r.yaml", text)
    cyclic = NESTED.replace(
        "  metrics:\n  - name: inner-metric", "  templates: [{templateName: outer}]\n  metrics:\n  - name: inner-metric"
    )
    with pytest.raises(InputError, match=r"nested templates form a cycle \(outer -> inner -> outer\)"):
        _import(rollout, write(tmp_path, "c.yaml", cyclic))
    missing = NESTED[: NESTED.index("---\napiVersion: argoproj.io/v1alpha1\nkind: ClusterAnalysisTemplate")]
    path = write(tmp_path, "m.yaml", missing)
    with pytest.raises(
        InputError,
        match=rf"^{re.escape(str(path))}:{line_of(missing, 'templateName: shared')}: "
        r"spec\.templates\[1\]\.templateName: no "
        r"ClusterAnalysisTemplate named 'shared'",
    ):
        _import(rollout, path)


def test_dry_run_rule_matching_nothing_is_an_error(tmp_path):
    text = ROLLOUT.replace(
        "        startingStep: 1\n", "        startingStep: 1\n        dryRun:\n        - metricName: latency\n"
    )
    path = write(tmp_path, "r.yaml", text)
    with pytest.raises(
        InputError,
        match=rf"^{re.escape(str(path))}:{line_of(text, 'metricName: latency')}: "
        r"spec\.strategy\.canary\.analysis\.dryRun\[0\]\.metricName: matches no metric",
    ):
        _import(path, write(tmp_path, "t.yaml", TEMPLATE))


def test_metric_needs_exactly_one_provider(tmp_path):
    rollout = write(tmp_path, "r.yaml", ROLLOUT)
    two = TEMPLATE.replace("      prometheus:\n", "      web: {url: http://x/}\n      prometheus:\n")
    with pytest.raises(
        InputError,
        match=rf"t\.yaml:{line_of(two, '    provider:')}: spec\.metrics\[0\]\.provider: "
        r"metric 'success-rate' has 2 "
        r"providers \(web, prometheus\); give exactly one",
    ):
        _import(rollout, write(tmp_path, "t.yaml", two))
    none = TEMPLATE[: TEMPLATE.index("    provider:")]
    with pytest.raises(InputError, match=r"spec\.metrics\[0\]: metric 'success-rate' needs a provider"):
        _import(rollout, write(tmp_path, "t.yaml", none))


# --- combining paths -----------------------------------------------------------------------------------------


def test_bundle_in_one_file_a_directory_and_a_kind_list(tmp_path):
    template = write(tmp_path, "t.yaml", TEMPLATE)
    rollout = write(tmp_path, "r.yaml", ROLLOUT)
    spec = load_policy([rollout, template]).spec
    bundle = write(tmp_path, "bundle.yaml", f"{TEMPLATE}---\n{ROLLOUT}")
    assert load_policy([bundle]).spec == spec
    directory = tmp_path / "dir"
    directory.mkdir()
    shutil.copy(rollout, directory / "a-rollout.yaml")
    shutil.copy(template, directory / "b-template.yml")
    policy = load_policy([directory])
    assert policy.spec == spec and policy.name == "app"
    items = [yaml.safe_load(ROLLOUT), yaml.safe_load(TEMPLATE)]
    listed = write(tmp_path, "list.yaml", yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    assert load_policy([listed]).spec == spec


def test_pdsim_policy_file_combines_with_template_manifests(tmp_path):
    policy = write(
        tmp_path,
        "p.yaml",
        "argo:\n  replicas: 2\n  strategy:\n    canary:\n      analysis:\n"
        "        templates: [{templateName: success-rate}]\n        args: [{name: service, value: x}]\n"
        "      steps:\n      - setWeight: 20\n      - pause: {duration: 1m}\n",
    )
    template = write(tmp_path, "t.yaml", TEMPLATE)
    loaded = read_policy([policy, template])
    assert loaded.name == "p" and loaded.warnings == ()
    assert loaded.spec.argo.templates["success-rate"].metrics[0].interval == "30s"
    assert loaded.sources == (str(policy), str(template))
    with pytest.raises(InputError, match="a Rollout cannot be combined with a pdsim policy file"):
        read_policy([policy, write(tmp_path, "r.yaml", ROLLOUT)])
    # Defined in both places: keep one.
    both = write(tmp_path, "both.yaml", policy.read_text() + "  templates:\n    success-rate: {metrics: []}\n")
    with pytest.raises(
        InputError,
        match=rf"both\.yaml:{line_of(both.read_text(), 'success-rate:')}: "
        r"argo\.templates\.success-rate: also defined by the "
        r"AnalysisTemplate at .*t\.yaml:1; keep one",
    ):
        read_policy([both, template])


def test_policy_files_are_checked_and_warn_like_manifests(tmp_path):
    text = (
        "argo:\n  strategy:\n    canary:\n      steps:\n      - setWeight: 20\n      - analysis:\n"
        "          templates: [{templateName: smoke}]\n  templates:\n    smoke:\n      metrics:\n"
        "      - name: smoke\n        provider: {job: {spec: {}}}\n"
    )
    path = write(tmp_path, "p.yaml", text)
    _, warnings = load_policy_with_warnings([path])
    assert warnings == [
        f"{path}:12: argo.templates.smoke.metrics[0].provider.job: not modelled: "
        + warnings[0].split("not modelled: ", 1)[1]
    ]
    bad = write(
        tmp_path, "bad.yaml", text.replace("      - name: smoke\n", "      - name: smoke\n        intervall: 1m\n")
    )
    with pytest.raises(InputError, match=r"bad\.yaml:12: argo\.templates\.smoke\.metrics\[0\]\.intervall: unknown key"):
        load_policy([bad])


def test_scenario_manifest_can_name_argo_manifests(tmp_path):
    write(tmp_path, "r.yaml", ROLLOUT)
    write(tmp_path, "t.yaml", TEMPLATE)
    text = (REPO / "scenarios" / "error-spike.yaml").read_text()
    text = text[: text.index("policy:")] + "policy:\n  manifest: [r.yaml, t.yaml]\nruns: 2\nseed: 1\n"
    path = write(tmp_path, "scenario.yaml", text)
    policy, warnings = scenario_policy_with_warnings(load_scenario(path), path)
    assert policy.name == "app" and warnings == []
    result = invoke("run", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["policy"] == "app"


def test_policy_yaml_header_is_comments_only(tmp_path):
    result = _import(write(tmp_path, "loud.yaml", WARNED))
    text = policy_yaml(result)
    head, _ = text.split("argo:", 1)
    assert all(line.startswith("#") for line in head.splitlines())
    assert len([line for line in head.splitlines() if "not modelled" in line]) == len(result.warnings)
    assert yaml.safe_load(text) == result.policy


# --- scaleDownDelaySeconds ---------------------------------------------------------------------------------


@needs_fixtures
def test_scale_down_delay_with_post_promotion_analysis_changes_no_decision(tmp_path):
    """The kitchensink fixture has ``scaleDownDelaySeconds: 5`` and a post-promotion analysis.
    Until that analysis succeeds the previous version is still ``status.stableRS``:
    ``utils/replicaset/canary.go`` ``GetOtherRSs`` leaves the stable ReplicaSet out of the
    ReplicaSets ``rollout/bluegreen.go`` ``scaleDownOldReplicaSetsForBlueGreen`` may scale
    down, and ``reconcileBlueGreenStableReplicaSet`` scales it to ``spec.replicas`` at every
    reconcile. So an abort switches back to a full-size stable at once, whatever the delay
    (the docs' sentence about cancelling the run at the delay has no code path behind it):
    nothing to warn about, and the field is not read by the policy."""
    result = _import(*_paths("bluegreen", tmp_path))
    assert not [w for w in result.warnings if "scaleDownDelaySeconds" in w]
    assert result.spec.strategy.blueGreen.scaleDownDelaySeconds == 5


# --- values Argo's types hold but no rollout means (issue 13) ------------------------------------------------

#: Out-of-range values, each (old text, new text, field below the Rollout's spec or the template's spec,
#: message). Sources at argoproj/argo-rollouts 9f8d111d: ``utils/analysis/factory.go`` ``ValidateMetric``
#: ("failureLimit must be >= 0, or -1 to be disabled"; "failureLimit and consecutiveSuccessLimit cannot
#: both be disabled"; limits >= 0; it does not check ``count``, whose negative value would end the metric
#: after one measurement (``Metric.EffectiveCount`` in ``analysis_types.go``)); ``utils/replicaset/canary.go``
#: ``BeforeStartingStep`` (the background analysis waits while the step index is below ``startingStep``:
#: -1 means nothing and a ``startingStep`` past the last step means the analysis never runs, though
#: ``pkg/apis/rollouts/validation/validation.go`` ``ValidateRolloutStrategyCanary`` accepts any int32);
#: ``GetCanaryReplicasOrWeight`` (``setCanaryScale.weight`` is a percentage of the replicas) and
#: ``rollout/trafficrouting/istio/istio.go`` ``createMirrorRoute`` (``percentage`` of the traffic mirrored).
OUT_OF_RANGE = [
    (
        "      - setWeight: 10\n",
        "      - setCanaryScale: {weight: 500}\n      - setWeight: 10\n",
        "weight: 500",
        "strategy.canary.steps[0].setCanaryScale.weight",
        "less than or equal to 100",
    ),
    (
        "      - setWeight: 10\n",
        "      - setCanaryScale: {weight: -5}\n      - setWeight: 10\n",
        "weight: -5",
        "strategy.canary.steps[0].setCanaryScale.weight",
        "greater than or equal to 0",
    ),
    (
        "      - setWeight: 10\n",
        "      - setCanaryScale: {replicas: 10001}\n      - setWeight: 10\n",
        "replicas: 10001",
        "strategy.canary.steps[0].setCanaryScale.replicas",
        "at most 10,000 pods",
    ),
    (
        "      - setWeight: 10\n",
        "      - setMirrorRoute: {name: m, percentage: 500}\n      - setWeight: 10\n",
        "percentage: 500",
        "strategy.canary.steps[0].setMirrorRoute.percentage",
        "less than or equal to 100",
    ),
    ("  replicas: 3", f"  replicas: {2**70}", f"replicas: {2**70}", "replicas", "at most 10,000 pods"),
    (
        "startingStep: 1",
        "startingStep: -1",
        "startingStep: -1",
        "strategy.canary.analysis.startingStep",
        "greater than or equal to 0",
    ),
    (
        "startingStep: 1",
        "startingStep: 4",
        "startingStep: 4",
        "strategy.canary.analysis.startingStep",
        "must be less than the number of steps (4)",
    ),
    ("count: 10", "count: -3", "count: -3", "metrics[0].count", "must be >= 0"),
    (
        'failureLimit: "{{args.limit}}"',
        "failureLimit: -2",
        "failureLimit: -2",
        "metrics[0].failureLimit",
        "or -1 to be disabled",
    ),
    (
        'failureLimit: "{{args.limit}}"',
        "failureLimit: -1",
        "failureLimit: -1",
        "metrics[0].failureLimit",
        "cannot both be disabled",
    ),
    ("interval: 30s", "interval: 0s", "interval: 0s", "metrics[0].interval", "at least 1ms"),
]
#: The largest legal values at the same places: they import.
IN_RANGE = [
    ("      - setWeight: 10\n", "      - setCanaryScale: {weight: 100}\n      - setWeight: 10\n"),
    ("      - setWeight: 10\n", "      - setCanaryScale: {weight: 0, replicas: 10000}\n      - setWeight: 10\n"),
    ("      - setWeight: 10\n", "      - setMirrorRoute: {name: m, percentage: 100}\n      - setWeight: 10\n"),
    ("  replicas: 3", "  replicas: 10000"),
    ("startingStep: 1", "startingStep: 3"),
    ("count: 10", "count: 0"),
    ('failureLimit: "{{args.limit}}"', "failureLimit: -1\n    consecutiveSuccessLimit: 1"),
    ("interval: 30s", "interval: 1ms"),
]


def _inline_scenario(rollout: str, template: str) -> str:
    """A scenario whose inline ``argo:`` policy is the Rollout's strategy and replicas and the template."""
    spec = yaml.safe_load(rollout)["spec"]
    policy = {"argo": {"replicas": spec["replicas"], "strategy": spec["strategy"]}}
    policy["argo"]["templates"] = {"success-rate": yaml.safe_load(template)["spec"]}
    scenario = {"name": "inline", "horizon": "30m", "traffic": {"rate": "10/s"}, "policy": policy}
    return yaml.safe_dump(scenario, sort_keys=False, width=1000)


def _edited(old: str, new: str) -> dict[str, str]:
    texts = {"rollout": ROLLOUT, "template": TEMPLATE}
    where = "rollout" if old in ROLLOUT else "template"
    assert texts[where].count(old) == 1
    texts[where] = texts[where].replace(old, new)
    return texts


@pytest.mark.parametrize(("old", "new", "needle", "field", "message"), OUT_OF_RANGE)
def test_out_of_range_argo_fields_are_refused_in_manifests(tmp_path, old, new, needle, field, message):
    """``pdsim import argo``: exit 2, one line at the value (Rollout or template spec)."""
    texts = _edited(old, new)
    rollout = write(tmp_path, "rollout.yaml", texts["rollout"])
    template = write(tmp_path, "template.yaml", texts["template"])
    path, text = (rollout, texts["rollout"]) if old in ROLLOUT else (template, texts["template"])
    result = invoke("import", "argo", rollout, template)
    assert result.exit_code == 2 and result.stdout == "", result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{path}:{line_of(text, needle)}: spec.{field}: "), line
    assert message in line


@pytest.mark.parametrize(("old", "new", "needle", "field", "message"), OUT_OF_RANGE)
def test_out_of_range_argo_fields_are_refused_inline(tmp_path, old, new, needle, field, message):
    """The same values in a scenario's inline ``argo:`` policy: ``pdsim validate`` exit 2 at the value."""
    texts = _edited(old, new)
    text = _inline_scenario(texts["rollout"], texts["template"])
    path = write(tmp_path, "scenario.yaml", text)
    where = "policy.argo." if old in ROLLOUT else "policy.argo.templates.success-rate."
    result = invoke("validate", path)
    assert result.exit_code == 2, result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{path}:{line_of(text, needle)}: {where}{field}: "), line
    assert message in line


@pytest.mark.parametrize(("old", "new"), IN_RANGE)
def test_largest_legal_argo_values_import_and_validate(tmp_path, old, new):
    """The edges of OUT_OF_RANGE are legal, both ways."""
    texts = _edited(old, new)
    rollout = write(tmp_path, "rollout.yaml", texts["rollout"])
    template = write(tmp_path, "template.yaml", texts["template"])
    assert _import(rollout, template).spec is not None
    scenario = write(tmp_path, "scenario.yaml", _inline_scenario(texts["rollout"], texts["template"]))
    result = invoke("validate", scenario)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("value", ["1e300", "[]", "query"])
def test_provider_settings_must_be_an_object(tmp_path, value):
    """Each provider's settings are an object (argo-rollouts ``analysis_types.go``, ``MetricProvider``:
    one struct per provider); a scalar there was an internal error when the run began."""
    text = TEMPLATE[: TEMPLATE.index("      prometheus:")] + f"      prometheus: {value}\n"
    rollout = write(tmp_path, "rollout.yaml", ROLLOUT)
    template = write(tmp_path, "template.yaml", text)
    result = invoke("import", "argo", rollout, template)
    assert result.exit_code == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{template}:{line_of(text, '      prometheus:')}: spec.metrics[0].provider.prometheus: ")
    assert "valid dictionary" in line
    scenario = write(tmp_path, "scenario.yaml", _inline_scenario(ROLLOUT, text))
    result = invoke("run", scenario, "--runs", "2", "--workers", "1")
    assert result.exit_code == 2 and "provider.prometheus: " in result.stderr, result.stderr


# --- issue 16 (helper argo-rollout): steps and pauses as Argo validates and reads them -------------

EXAMPLES = REPO / "tests" / "fixtures" / "argo-examples"


def test_apisix_example_with_a_combined_step_imports():
    """argo-rollouts ``examples/apisix/rollout.yaml``: its first step holds setCanaryScale
    and setHeaderRoute, which ``pkg/apis/rollouts/validation/validation.go``
    ``hasMultipleStepsType`` allows (it forbids only two of setWeight, pause, experiment,
    analysis). It completes as setCanaryScale (``rollout/canary.go``
    ``completedCurrentCanaryStep`` tests SetCanaryScale before SetHeaderRoute)."""
    result = _import(EXAMPLES / "apisix" / "rollout.yaml")
    first = result.spec.strategy.canary.steps[0]
    assert first.setCanaryScale.replicas == 1 and first.setHeaderRoute.name == "set-header"
    assert first.kind == "setCanaryScale"
    assert [st.kind for st in result.spec.strategy.canary.steps][:3] == ["setCanaryScale", "pause", "setWeight"]


@pytest.mark.parametrize(
    ("step", "kinds"),
    [
        ("{setWeight: 20, pause: {}}", "setWeight, pause"),
        ("{setWeight: 20, analysis: {templates: [{templateName: success-rate}]}}", "setWeight, analysis"),
    ],
)
def test_two_exclusive_step_kinds_are_refused(tmp_path, step, kinds):
    """validation.go hasMultipleStepsType: two of setWeight/pause/experiment/analysis in one step."""
    text = ROLLOUT.replace("      - setWeight: 50\n", f"      - {step}\n")
    path = write(tmp_path, "r.yaml", text)
    with pytest.raises(InputError) as info:
        _import(path, write(tmp_path, "t.yaml", TEMPLATE))
    message = str(info.value)
    assert "\n" not in message and f"(got {kinds}): Argo rejects the Rollout" in message
    assert message.startswith(f"{path}:{line_of(text, step)}: ")


@pytest.mark.parametrize("duration", ["1d", "-5s", "-3", "5 minutes"])
def test_pause_durations_argo_rejects(tmp_path, duration):
    """pkg/apis/rollouts/v1alpha1/types.go RolloutPause.DurationSeconds: a string Go's
    time.ParseDuration cannot parse (no "d" unit) reads as -1, and validation.go rejects a
    negative duration ("Duration needs to be greater than 0")."""
    text = ROLLOUT.replace("pause: {duration: 1m}", f"pause: {{duration: {duration!r}}}".replace("'", '"'))
    path = write(tmp_path, "r.yaml", text)
    with pytest.raises(InputError) as info:
        _import(path, write(tmp_path, "t.yaml", TEMPLATE))
    message = str(info.value)
    assert "\n" not in message and "Duration needs to be greater than 0" in message
    assert "steps[1].pause.duration" in message


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("500ms", 0.0), ("1.9s", 1.0), ("90", 90.0), ("15", 15.0), ("1h30m", 5400.0), ("0", 0.0)],
)
def test_pause_durations_truncate_to_whole_seconds(tmp_path, duration, seconds):
    """RolloutPause.DurationSeconds: int32(d.Seconds()) truncates; digits alone are
    seconds (strconv.ParseInt); an integer (IntOrString) is seconds."""
    text = ROLLOUT.replace("pause: {duration: 1m}", f'pause: {{duration: "{duration}"}}')
    result = _import(write(tmp_path, "r.yaml", text), write(tmp_path, "t.yaml", TEMPLATE))
    assert result.spec.strategy.canary.steps[1].pause.duration == seconds
    number = ROLLOUT.replace("pause: {duration: 1m}", "pause: {duration: 15}")
    assert (
        _import(write(tmp_path, "n.yaml", number), write(tmp_path, "t.yaml", TEMPLATE))
        .spec.strategy.canary.steps[1]
        .pause.duration
        == 15.0
    )


def test_partial_dry_run_names_match_without_a_warning(tmp_path):
    """argo-rollouts utils/analysis/helpers.go GetDryRunMetrics (regexp.MatchString): the
    pattern "success" dry-runs "success-rate", in Argo and in pdsim; the importer used to
    warn that pdsim does not (issue 16)."""
    text = ROLLOUT.replace(
        "        startingStep: 1\n", "        startingStep: 1\n        dryRun:\n        - metricName: success\n"
    )
    result = _import(write(tmp_path, "r.yaml", text), write(tmp_path, "t.yaml", TEMPLATE))
    assert not [w for w in result.warnings if "dryRun" in w]
    specs, metrics = resolve_analyses(result.spec)["background"]
    assert {m.name for m in specs if m.dry_run} == set(metrics) == {"success-rate"}
