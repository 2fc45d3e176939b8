"""Argo Rollouts manifests -> the pdsim ``argo:`` policy.

``import_argo`` reads the Kubernetes objects of one or more YAML files (as
``kubectl apply -f a -f b`` would see them): exactly one ``Rollout``
(``argoproj.io/v1alpha1``) and any number of ``AnalysisTemplate`` and
``ClusterAnalysisTemplate`` objects. It returns the pdsim policy mapping
``{"argo": {"strategy", "replicas", "templates", "clusterTemplates"}}``, validated with
the same models as a policy file, so every error names a line *in the manifest*
(``rollout.yaml:52: spec.strategy.canary.steps[2].setWeight: ...``).

Template references resolve as the controller resolves them (``rollout/analysis.go``
``getAnalysisTemplatesFromRefs``, ``utils/analysis/helpers.go``): ``clusterScope: true``
against ClusterAnalysisTemplates, otherwise against AnalysisTemplates of the Rollout's
namespace; nested ``templates`` of a template are followed and flattened into it
(metrics, args, dryRun, measurementRetention, each template once); arguments merge like
``MergeArgs`` (an argument left without a value is an error, as is one set twice with
different values, or two metrics of one analysis with the same name).

Every key of ``RolloutSpec``, ``RolloutStrategy``, ``CanaryStrategy``,
``BlueGreenStrategy``, ``CanaryStep``, ``RolloutTrafficRouting``, ``RolloutAnalysis``
(and ``RolloutAnalysisBackground``), ``AnalysisTemplateSpec``, ``Metric`` and
``MetricProvider`` (``pkg/apis/rollouts/v1alpha1/types.go``, ``analysis_types.go``) is
handled explicitly, in one of four ways:

* copied into the policy: ``replicas`` (default 1), ``progressDeadlineSeconds`` and
  ``progressDeadlineAbort``, and the whole ``strategy`` as written
  (the policy reads what it models from it, e.g. ``maxSurge`` for replica counts); the
  templates' ``spec``;
* kept or dropped quietly, because it only shapes Kubernetes objects (or pod counts,
  which size nothing here) and never changes a promote/abort decision or what users see:
  ``selector``, ``template``, ``workloadRef`` (the pod template is elsewhere),
  ``revisionHistoryLimit``, ``restartAt``, ``analysis`` (run history limits),
  ``rollbackWindow`` (pdsim always rolls out a new revision), services and pod metadata,
  ``maxSurge``/``maxUnavailable``, ``antiAffinity``, ``pingPong``,
  ``minPodsPerReplicaSet``, ``previewReplicaCount``, ``scaleDownDelayRevisionLimit``,
  ``abortScaleDownDelaySeconds`` and ``scaleDownDelaySeconds`` (old or aborted pods
  that get no traffic: until the post-promotion run succeeds the previous version is
  still ``status.stableRS``, which ``GetOtherRSs`` leaves out of the scale-down and
  ``reconcileBlueGreenStableReplicaSet`` keeps at full size, so a failed post-promotion
  analysis switches back to a full-size stable at once, whatever the delay), the
  router blocks of ``trafficRouting`` (they all route by weight), ``managedRoutes``,
  ``measurementRetention`` (counters are kept),
  ``analysisRunMetadata``, metric provider connection details;
* copied or ignored *with a warning* (``FILE:LINE: FIELD: not modelled: why``), because
  the real controller would decide differently with it: ``paused: true``,
  ``minReadySeconds``, ``dynamicStableScale``,
  ``replicaProgressThreshold``, ``maxTrafficWeight``, ALB stickiness, NGINX
  ``canary-by-*`` annotations, ``plugin`` steps (simulated as a step that completes at once),
  ``setMirrorRoute.match``, ``analysis.args[].valueFrom`` and template ``fieldRef``
  arguments (kept symbolic), every metric provider but Prometheus (outcome scripted as a
  webhook), Prometheus ``rangeQuery``;
* refused with an error: ``experiment`` steps (pdsim does not simulate Experiments), and
  steps Argo itself rejects (``setCanaryScale``/``setHeaderRoute``/``setMirrorRoute``
  without the traffic routing they need, two of ``setWeight``/``pause``/``experiment``/
  ``analysis`` in one step, a pause ``duration`` Go cannot parse such as ``1d``).

``dryRun`` patterns match anywhere in a metric name (Go ``regexp.MatchString``), as in
Argo; a step may combine ``setCanaryScale``/``setHeaderRoute``/``setMirrorRoute`` with
one of ``setWeight``/``pause``/``analysis`` (``examples/apisix/rollout.yaml``), and a
sub-second pause truncates to whole seconds (``RolloutPause.DurationSeconds``).

A key that is not a field of the Argo type at all is an error, as it is for
``kubectl apply`` (strict field validation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import NOT_GIVEN, InputError
from sim.importers.argo.fields import (
    API_VERSION,
    CLUSTER_TEMPLATE,
    GROUP,
    KINDS,
    ROLLOUT,
    SPEC_KEYS,
    TEMPLATE,
    WHY,
    Warnings,
    check_keys,
)
from sim.importers.argo.strategy import check_strategy, resolve_analyses, validate_strategy
from sim.importers.argo.templates import Template, Templates, check_template_spec, flattened_spec, read_template
from sim.importers.manifests import (
    ImportResult,
    error_at,
    files_text,
    kubernetes_objects,
    location_of,
    object_metadata,
    policy_file_text,
    source_files,
    the_object,
)
from sim.inputs.validation import validation_to_input_error
from sim.policies.argo.spec import ArgoPolicySpec
from sim.yamlio import YamlDoc


def _is_argo_object(data: Any) -> bool:
    """Whether a YAML document is an Argo Rollout, AnalysisTemplate or ClusterAnalysisTemplate."""
    return (
        isinstance(data, Mapping)
        and isinstance(data.get("apiVersion"), str)
        and data["apiVersion"].startswith(GROUP)
        and data.get("kind") in KINDS
    )


def is_argo_bundle(docs: Sequence[YamlDoc]) -> bool:
    """Whether manifest documents are an Argo Rollouts bundle: a Rollout or analysis
    templates, and no Flagger Canary (Argo templates next to a Canary are left to it).

    Raises:
        InputError: for a document that is not a Kubernetes object, or an Argo Rollout
            next to a Flagger Canary (two policies).
    """
    objects = kubernetes_objects(docs)
    argo = [d for d in objects if _is_argo_object(d.data)]
    if not argo:
        return False
    canary = next(
        (d for d in objects if str(d.data["apiVersion"]).startswith("flagger.app/") and d.data["kind"] == "Canary"),
        None,
    )
    if canary is None:
        return True
    rollout = next((d for d in argo if d.data["kind"] == ROLLOUT), None)
    if rollout is not None:
        raise error_at(
            rollout,
            (),
            f"an Argo Rollout and a Flagger Canary (at {location_of(canary)}) are two "
            "policies; give the manifests of one of them",
        )
    return False


# --- the Rollout ------------------------------------------------------------------------------------


def _split_objects(docs: Sequence[YamlDoc]) -> tuple[list[YamlDoc], list[YamlDoc]]:
    """(Rollouts, AnalysisTemplates and ClusterAnalysisTemplates) among the documents."""
    rollouts: list[YamlDoc] = []
    templates: list[YamlDoc] = []
    for obj in kubernetes_objects(docs):
        if not _is_argo_object(obj.data):
            continue  # other objects (Services, Experiments, ...): nothing to decide
        if obj.data["apiVersion"] != API_VERSION:
            raise error_at(obj, ("apiVersion",), f"pdsim reads {API_VERSION} objects", got=obj.data["apiVersion"])
        (rollouts if obj.data["kind"] == ROLLOUT else templates).append(obj)
    return rollouts, templates


#: The RolloutSpec fields copied into the policy beside strategy and replicas.
DEADLINE_KEYS = ("progressDeadlineSeconds", "progressDeadlineAbort")


def _rollout_spec(doc: YamlDoc, out: Warnings) -> Mapping[str, Any]:
    spec = doc.data.get("spec")
    if not isinstance(spec, Mapping):
        raise error_at(
            doc,
            ("spec",) if "spec" in doc.data else (),
            "a Rollout needs a spec mapping",
            **({"got": spec} if "spec" in doc.data else {}),
        )
    check_keys(doc, ("spec",), spec, SPEC_KEYS, "RolloutSpec")
    strategy = spec.get("strategy")
    if not isinstance(strategy, Mapping) or (strategy.get("canary") is None and strategy.get("blueGreen") is None):
        raise error_at(
            doc,
            ("spec", "strategy") if "strategy" in spec else ("spec",),
            "a Rollout needs spec.strategy.canary or spec.strategy.blueGreen",
        )
    if spec.get("paused") is True:
        out.add(doc, ("spec", "paused"), WHY["paused"])
    if isinstance(spec.get("minReadySeconds"), int) and spec["minReadySeconds"] > 0:
        out.add(doc, ("spec", "minReadySeconds"), WHY["minReadySeconds"])
    return spec


def _policy_error(err: ValidationError, doc: YamlDoc) -> InputError:
    """An ArgoPolicySpec error on strategy/replicas as a line of the Rollout (``spec.*``)."""
    spec = doc.data["spec"]
    view = YamlDoc(
        {"argo": {k: spec[k] for k in ("strategy", "replicas", *DEADLINE_KEYS) if k in spec}},
        doc.file,
        {("argo",) + loc[1:]: line for loc, line in doc.lines.items() if loc[:1] == ("spec",)},
    )
    e = validation_to_input_error(err, view, prefix=("argo",))
    fld = e.field or ""
    if fld == "argo" or fld.startswith(("argo.", "argo[")):
        fld = "spec" + fld[len("argo") :]
    kwargs = {} if e.got is NOT_GIVEN else {"got": e.got}
    return InputError(e.file, e.line, fld or None, e.message, **kwargs)


def _tables(templates: Templates, used: list[Template]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``templates`` and ``clusterTemplates`` of the policy: the used ones, then the others
    (as ``kubectl apply`` would create them) unless their name is taken."""
    ns: dict[str, Any] = {}
    cluster: dict[str, Any] = {}
    for t in used + [t for t in templates.all if t not in used]:
        table = cluster if t.cluster else ns
        if t.name not in table:
            table[t.name] = flattened_spec(templates, t)
    return ns, cluster


def import_argo(docs: Sequence[YamlDoc]) -> ImportResult[ArgoPolicySpec]:
    """Turn the documents of Argo Rollouts manifests into a pdsim ``argo:`` policy.

    Args:
        docs: every document of every file (``sim.yamlio.load_yaml_all``), in order.
            Objects that are not a Rollout or an analysis template (Services,
            Experiments, ...) are ignored.

    Returns:
        The policy mapping, its validated spec, the Rollout's name and the warnings.

    Raises:
        InputError: no Rollout or several; an unresolved template reference; a field
            Argo does not have or a value pdsim rejects, at its line in the manifest.
    """
    docs = list(docs)
    sources = source_files(docs)
    files = files_text(sources)
    rollouts, template_docs = _split_objects(docs)
    rollout = the_object(rollouts, sources, "Argo", "Rollout", API_VERSION)
    name, namespace = object_metadata(rollout)
    name = name or Path(rollout.file).stem
    out = Warnings()
    spec = _rollout_spec(rollout, out)
    loc = ("spec", "strategy")
    strategy = check_strategy(rollout, loc, spec["strategy"], out)
    templates = Templates([read_template(d) for d in template_docs], namespace, files)
    model = validate_strategy(rollout, loc, strategy)
    used = resolve_analyses(rollout, loc, spec["strategy"], model, templates, out)
    ns_tables, cluster_tables = _tables(templates, used)

    argo: dict[str, Any] = {
        "strategy": strategy,
        "replicas": spec["replicas"] if spec.get("replicas") is not None else 1,
    }
    for key in DEADLINE_KEYS:  # the update's progress deadline
        if spec.get(key) is not None:
            argo[key] = spec[key]
    if ns_tables:
        argo["templates"] = ns_tables
    if cluster_tables:
        argo["clusterTemplates"] = cluster_tables
    try:
        policy_spec = ArgoPolicySpec.model_validate(argo)
    except ValidationError as err:
        raise _policy_error(err, rollout) from None
    return ImportResult(policy={"argo": argo}, spec=policy_spec, name=name, warnings=out.lines, sources=sources)


# --- pdsim policy files combined with template manifests ---------------------------------------------


def _analysis_templates(docs: Sequence[YamlDoc]) -> list[Template]:
    """The AnalysisTemplates and ClusterAnalysisTemplates among manifest documents (for a
    pdsim policy file combined with them).

    Raises:
        InputError: for a Rollout among them (it would be a second policy) or a bad template.
    """
    rollouts, template_docs = _split_objects(docs)
    if rollouts:
        raise error_at(rollouts[0], (), "a Rollout cannot be combined with a pdsim policy file; give one of them")
    return [read_template(d) for d in template_docs]


def combine_policy_file(doc: YamlDoc, data: Mapping[str, Any], manifests: Sequence[YamlDoc]) -> dict[str, Any]:
    """The policy file's mapping with the templates of the manifests added to ``argo:``.

    Raises:
        InputError: a template given both ways or twice, or a bad template manifest.
    """
    extra = _analysis_templates(manifests)
    argo = data.get("argo")
    if not extra or not isinstance(argo, Mapping):
        return dict(data)
    templates = Templates(extra, None, ", ".join(dict.fromkeys(t.doc.file for t in extra)))
    argo = dict(argo)
    added: dict[tuple[str, str], Template] = {}
    for t in extra:
        key = "clusterTemplates" if t.cluster else "templates"
        own = argo.get(key)
        table = dict(own) if isinstance(own, Mapping) else {}
        if (key, t.name) in added:
            raise error_at(
                t.doc,
                ("metadata", "name"),
                f"{t.kind} {t.name!r} is defined more than once (also at "
                f"{added[key, t.name].where}); pdsim keys templates by name",
            )
        if t.name in table:
            raise InputError(
                doc.file,
                doc.line_of(("argo", key, t.name)),
                f"argo.{key}.{t.name}",
                f"also defined by the {t.kind} at {t.where}; keep one",
            )
        table[t.name] = flattened_spec(templates, t)
        added[key, t.name] = t
        argo[key] = table
    return {**data, "argo": argo}


def policy_file_warnings(
    doc: YamlDoc, data: Mapping[str, Any], spec: ArgoPolicySpec, manifests: Sequence[YamlDoc] = ()
) -> list[str]:
    """Check the ``argo:`` block of a (validated) pdsim policy file as a Rollout's strategy
    is checked, and return the warnings for what is not modelled.

    Args:
        doc: the policy file.
        data: the policy mapping validated as ``spec`` (templates of manifests merged in).
        spec: the validated ``argo:`` policy.
        manifests: the template manifests combined with the file (their templates'
            warnings and errors point into them).

    Raises:
        InputError: as ``import_argo`` does, at the line of the policy file.
    """
    argo = data["argo"]
    out = Warnings()
    loc = ("argo", "strategy")
    check_strategy(doc, loc, argo["strategy"], out)
    from_manifests = {(t.cluster, t.name): t for t in _analysis_templates(manifests)}
    own: list[Template] = []
    for key, kind in (("templates", TEMPLATE), ("clusterTemplates", CLUSTER_TEMPLATE)):
        for name, raw in (argo.get(key) or {}).items():
            t = from_manifests.get((kind == CLUSTER_TEMPLATE, name))
            if t is None:
                here = ("argo", key, name)
                t = Template(doc, here, kind, name, None, raw, check_template_spec(doc, here, raw, nested_ok=False))
            own.append(t)
    files = ", ".join(dict.fromkeys([doc.file] + [t.doc.file for t in own]))
    templates = Templates(own, None, files)
    resolve_analyses(doc, loc, argo["strategy"], spec.strategy, templates, out)
    return out.lines


# --- writing the policy file --------------------------------------------------------------------


def policy_yaml(result: ImportResult[ArgoPolicySpec]) -> str:
    """The pdsim policy file of an Argo import (``sim.importers.manifests.policy_file_text``)."""
    return policy_file_text(result, "Argo Rollouts", "Rollout")


__all__ = [
    "API_VERSION",
    "combine_policy_file",
    "import_argo",
    "is_argo_bundle",
    "policy_file_warnings",
    "policy_yaml",
]
