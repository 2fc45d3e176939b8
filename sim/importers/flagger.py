"""Flagger manifests -> the pdsim ``flagger:`` policy.

``import_flagger`` reads the Kubernetes objects of one or more YAML files (as
``kubectl apply -f a -f b`` would see them): exactly one ``Canary``
(``flagger.app/v1beta1``) and any number of ``MetricTemplate`` objects. It returns the
pdsim policy mapping ``{"flagger": {...}}``, validated with the same models as a policy
file, so every error names a line *in the manifest* (``canary.yaml:41:
spec.analysis.maxWeight: ...``).

Every key of Flagger's ``CanarySpec`` and ``CanaryAnalysis``
(``pkg/apis/flagger/v1beta1/canary.go``) is handled explicitly, in one of three ways:

* copied into the policy: ``provider``, ``progressDeadlineSeconds``, ``skipAnalysis``, ``suspend``,
  the whole ``analysis`` (``canaryAnalysis``, the deprecated name, when ``analysis`` is
  absent; ``Canary.GetAnalysis``), and the names the metric queries render
  (``toMetricModel``): ``metadata`` name and namespace (``default`` when unset, as
  ``kubectl apply`` in the default namespace), ``targetRef``, ``service.name`` and ``service.retries``,
  ``ingressRef`` and ``routeRef``;
* ignored quietly, because it only shapes Kubernetes objects or notifications and never
  a promote/rollback decision: the rest of ``service`` (ports, gateways, ...),
  ``upstreamRef``, ``metricsServer``, ``revertOnDeletion``, ``analysis.alerts``, event
  webhooks, MetricTemplate provider details;
* copied or ignored *with a warning* (``FILE:LINE: FIELD: not modelled: why``), because
  the real controller would decide differently with it: ``autoscalerRef``,
  ``analysis.sessionAffinity``, load tests pdsim cannot size, A/B ``match`` conditions
  other than headers; and, copied and simulated as Flagger runs it, ``mirror: true`` on
  a provider whose router cannot mirror (the rollout never leaves its first step).

A key that is not a Flagger field at all is an error, as it is for ``kubectl apply``
(strict field validation).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import NOT_GIVEN, InputError
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
    warning_at,
)
from sim.inputs.validation import validation_to_input_error
from sim.policies.flagger.plan import mirrors_traffic, sticky_sessions
from sim.policies.flagger.spec import (
    DEFAULT_NAMESPACE,
    FlaggerAnalysis,
    FlaggerPolicySpec,
    MetricTemplateSpec,
    WebhookMetadata,
)
from sim.yamlio import YamlDoc

GROUP = "flagger.app/"
API_VERSION = "flagger.app/v1beta1"
DEFAULT_PROVIDER = "istio"  # the controller's -mesh-provider flag default

#: ``CanarySpec`` keys copied into the policy as they are.
_SPEC_COPIED = ("provider", "progressDeadlineSeconds", "skipAnalysis", "suspend")
#: ``CanarySpec`` references whose names the metric queries render: copied (``apiVersion``,
#: ``kind``, ``name``; of ``service`` only its ``name``).
_SPEC_NAMES = ("targetRef", "service", "ingressRef", "routeRef")
#: ``CanarySpec`` keys that only shape Kubernetes objects: ignored quietly.
_SPEC_QUIET = frozenset(
    {
        "upstreamRef",  # routing objects
        "metricsServer",  # where the builtin queries go; the scenario's telemetry answers them
        "revertOnDeletion",  # what happens when the Canary object is deleted
    }
)
#: Keys of an A/B ``match`` entry (Istio HTTPMatchRequest) that select no requests pdsim
#: would route differently: ``headers`` is evaluated, ``name`` is a label, ``ignoreUriCase``
#: only qualifies ``uri`` (which warns itself).
_MATCH_MODELLED = frozenset({"headers", "name", "ignoreUriCase"})
#: Load-tester task types that run a command in the background (a load test).
_LOAD_TEST_TYPES = (None, "", "cmd")

_WHY = {
    "autoscalerRef": "an HPA scales the canary with its traffic; pdsim's canary keeps a fixed "
    "capacity (matters for load-dependent faults)",
    "sessionAffinity": "only Istio's and the Gateway API routers write the session-affinity cookie "
    "routes; this provider's router routes every request by weight (pdsim does the same)",
    "mirror": "Flagger's router for this provider cannot mirror: GetRoutes never reports the "
    "mirror, so the canary repeats its first (mirroring) step at weight 0 and never decides",
    "mirror_iterations": "Flagger's router for this provider cannot mirror: the iterations run "
    "without mirrored traffic (the canary sees only load-test traffic)",
    "unthrottled": "an unthrottled hey (no -q) sends as fast as the canary answers; pdsim adds "
    "no load-test traffic for it",
    "unknown_load": "only `hey` load tests are sized; pdsim adds no load-test traffic for this command",
    "match": "pdsim matches A/B requests on headers (and cookies) only; this condition is "
    "dropped, so more requests reach the canary than in Flagger",
}


# --- MetricTemplates ---------------------------------------------------------------------------


@dataclass
class _Template:
    doc: YamlDoc
    name: str
    namespace: str | None
    spec: dict[str, Any]  # the MetricTemplateSpec mapping for the policy


def _template(doc: YamlDoc) -> _Template:
    name, ns = object_metadata(doc)
    if not name:
        raise error_at(
            doc,
            ("metadata", "name") if "metadata" in doc.data else (),
            "a MetricTemplate needs metadata.name (templateRef refers to it)",
        )
    spec = doc.data.get("spec", {})
    if not isinstance(spec, Mapping):
        raise error_at(doc, ("spec",), "must be a mapping with query and provider", got=spec)
    try:
        MetricTemplateSpec.model_validate(spec)
    except ValidationError as err:
        raise validation_to_input_error(err, doc, prefix=("spec",)) from None
    out: dict[str, Any] = {"query": spec.get("query", "")}
    provider = spec.get("provider") or {}
    # Only what names the metric source (type, address): headers may carry credentials,
    # and secret, region and TLS settings do not change what the scenario's binding answers.
    kept = {k: provider[k] for k in ("type", "address") if k in provider}
    if kept:
        out["provider"] = kept
    return _Template(doc, name, ns, out)


def _resolve(
    metric: str,
    ref: Mapping[str, Any],
    ref_ns: str | None,
    templates: list[_Template],
    doc: YamlDoc,
    loc: tuple[Any, ...],
    files: str,
) -> _Template:
    """The MetricTemplate a ``templateRef`` names (its namespace defaults to the Canary's)."""
    name = ref["name"]
    same = [t for t in templates if t.name == name]
    fits = [t for t in same if t.namespace is None or ref_ns is None or t.namespace == ref_ns]
    if not fits:
        if same:
            where = ", ".join(sorted({t.namespace or "" for t in same}))
            raise error_at(
                doc,
                loc + ("namespace",) if "namespace" in ref else loc,
                f"metric {metric!r}: MetricTemplate {name!r} is in namespace {where}, not in {ref_ns!r}",
                got=name,
            )
        raise error_at(
            doc,
            loc + ("name",),
            f"metric {metric!r}: no MetricTemplate named {name!r} in {files}; "
            "pass the file that defines it too (e.g. --policy templates.yaml)",
            got=name,
        )
    exact = [t for t in fits if t.namespace == ref_ns]
    fits = exact or fits
    if len(fits) > 1:
        places = ", ".join(location_of(t.doc) for t in fits)
        raise error_at(
            doc,
            loc + ("name",),
            f"metric {metric!r}: MetricTemplate {name!r} is defined more than once ({places})",
            got=name,
        )
    return fits[0]


# --- the Canary -------------------------------------------------------------------------------


def _clean_analysis(analysis: Any) -> Any:
    """A copy of ``spec.analysis`` for the policy: ``templateRef`` keeps name and namespace
    (``apiVersion``/``kind`` of a CrossNamespaceObjectReference select nothing: Flagger
    always reads a MetricTemplate)."""
    analysis = copy.deepcopy(analysis)
    metrics = analysis.get("metrics") if isinstance(analysis, dict) else None
    for m in metrics if isinstance(metrics, list) else []:
        ref = m.get("templateRef") if isinstance(m, dict) else None
        if isinstance(ref, dict):
            for key in ("apiVersion", "kind"):
                ref.pop(key, None)
    return analysis


def _validation_error(err: ValidationError, doc: YamlDoc, key: str) -> InputError:
    """A FlaggerPolicySpec error as a line of the manifest (under ``spec.<key>``)."""
    view = doc
    if key != "analysis":
        # Validated as `analysis`; point into `canaryAnalysis`, where the user wrote it.
        spec = dict(doc.data["spec"])
        spec["analysis"] = spec.pop(key)
        lines = dict(doc.lines)
        for loc, at in doc.lines.items():
            if loc[:2] == ("spec", key):
                lines[("spec", "analysis") + loc[2:]] = at
        view = YamlDoc({**doc.data, "spec": spec}, doc.file, lines)
    e = validation_to_input_error(err, view, prefix=("spec",))
    fld, message = e.field or "", e.message
    line: int | None = e.line
    if fld == "spec" and message.startswith("analysis: "):
        # A check across the whole analysis block (e.g. no stepWeight for a canary).
        fld, message, line = "spec.analysis", message[len("analysis: ") :], doc.line_of(("spec", key))
    if key != "analysis" and (fld == "spec.analysis" or fld.startswith(("spec.analysis.", "spec.analysis["))):
        fld = f"spec.{key}" + fld[len("spec.analysis") :]
    kwargs = {} if e.got is NOT_GIVEN else {"got": e.got}
    return InputError(e.file, line, fld or None, message, **kwargs)


def analysis_warnings(
    doc: YamlDoc, loc: tuple[Any, ...], raw: Mapping[str, Any], analysis: FlaggerAnalysis, provider: str = "istio"
) -> list[str]:
    """Warnings for the fields of a (validated) analysis block that pdsim does not model.

    Args:
        doc: the document the block was read from (for lines).
        loc: where the block is in ``doc`` (``("spec", "analysis")`` in a Canary,
            ``("flagger", "analysis")`` in a policy file).
        raw: the block as written (to tell a written key from a default).
        analysis: the validated block.
        provider: the Canary's provider (its router decides what routing does).

    Raises:
        InputError: for a ``hey`` load test whose options cannot be read (``-z abc``).
    """
    out = []
    if raw.get("sessionAffinity") is not None and not sticky_sessions(provider):
        out.append(warning_at(doc, loc + ("sessionAffinity",), _WHY["sessionAffinity"]))
    raw_match = raw.get("match") or []
    for i, m in enumerate(raw_match):
        for key in m:
            if key not in _MATCH_MODELLED:
                out.append(warning_at(doc, loc + ("match", i, key), _WHY["match"]))
    for i, hook in enumerate(analysis.webhooks):
        if hook.kind == "event":
            continue  # notifications: Flagger only logs their outcome
        here = loc + ("webhooks", i)
        meta: WebhookMetadata | dict[str, str] = hook.metadata or {}
        if hook.kind in ("rollout", "pre-rollout") and meta.get("cmd") and meta.get("type") in _LOAD_TEST_TYPES:
            try:
                rate = hook.load_test_rate()
            except (ValueError, ArithmeticError) as err:
                raise error_at(
                    doc, here + ("metadata", "cmd"), f"cannot read this load test command: {err}", got=meta["cmd"]
                ) from None
            if rate is None:
                why = _WHY["unthrottled"] if meta["cmd"].strip().startswith("hey") else _WHY["unknown_load"]
                out.append(warning_at(doc, here + ("metadata", "cmd"), why))
    return out


def _canary_spec(doc: YamlDoc) -> tuple[Mapping[str, Any], str]:
    """The Canary's spec and the key of its analysis block; unknown keys are errors."""
    spec = doc.data.get("spec")
    if not isinstance(spec, Mapping):
        raise error_at(
            doc,
            ("spec",) if "spec" in doc.data else (),
            "a Canary needs a spec mapping",
            **({"got": spec} if "spec" in doc.data else {}),
        )
    known = {*_SPEC_COPIED, *_SPEC_NAMES, *_SPEC_QUIET, "analysis", "canaryAnalysis", "autoscalerRef"}
    for key in spec:
        if key not in known:
            raise error_at(doc, ("spec", key), f"unknown key: not a field of Flagger's Canary spec ({API_VERSION})")
    if spec.get("analysis") is not None:
        return spec, "analysis"
    if spec.get("canaryAnalysis") is not None:
        return spec, "canaryAnalysis"
    raise error_at(doc, ("spec",), "a Canary needs spec.analysis (Flagger's CRD requires it)")


def _names(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The Canary's references that name series, as the policy keeps them."""
    out: dict[str, Any] = {}
    for key in _SPEC_NAMES:
        ref = spec.get(key)
        if not isinstance(ref, Mapping):
            if ref is not None:
                out[key] = ref  # validation names the problem at its line
            continue
        # Of ``service``: its name (series) and the mesh's retries (who sees a failure).
        keep = ("name", "retries") if key == "service" else ("apiVersion", "kind", "name")
        kept = {k: ref[k] for k in keep if k in ref}
        if kept or key != "service":
            out[key] = kept
    return out


def _flagger_objects(docs: Sequence[YamlDoc]) -> tuple[list[YamlDoc], list[YamlDoc]]:
    """(Canary objects, MetricTemplate objects) among the documents."""
    canaries: list[YamlDoc] = []
    templates: list[YamlDoc] = []
    for obj in kubernetes_objects(docs):
        api, kind = obj.data["apiVersion"], obj.data["kind"]
        if not api.startswith(GROUP) or kind not in ("Canary", "MetricTemplate"):
            continue  # other objects (and Flagger's AlertProviders): nothing to decide
        if api != API_VERSION:
            raise error_at(obj, ("apiVersion",), f"pdsim reads {API_VERSION} objects", got=api)
        (canaries if kind == "Canary" else templates).append(obj)
    return canaries, templates


def metric_templates(docs: Sequence[YamlDoc]) -> dict[str, dict[str, Any]]:
    """The MetricTemplates among manifest documents, as ``flagger.metricTemplates`` entries
    (for a pdsim policy file combined with MetricTemplate manifests).

    Raises:
        InputError: for a Canary among them (it would be a second policy), a bad
            template, or two templates of the same name.
    """
    canaries, template_docs = _flagger_objects(docs)
    if canaries:
        raise error_at(canaries[0], (), "a Canary cannot be combined with a pdsim policy file; give one of them")
    out: dict[str, _Template] = {}
    for t in map(_template, template_docs):
        other = out.setdefault(t.name, t)
        if other is not t:
            raise error_at(
                t.doc,
                ("metadata", "name"),
                f"MetricTemplate {t.name!r} is defined more than "
                f"once (also at {location_of(other.doc)}); pdsim keys templates by name",
            )
    return {name: t.spec for name, t in out.items()}


def import_flagger(docs: Sequence[YamlDoc]) -> ImportResult[FlaggerPolicySpec]:
    """Turn the documents of Flagger manifests into a pdsim ``flagger:`` policy.

    Args:
        docs: every document of every file (``sim.yamlio.load_yaml_all``), in order.
            Objects that are not Flagger's (Deployments, HPAs, ...) are ignored.

    Returns:
        The policy mapping, its validated spec, the Canary's name and the warnings.

    Raises:
        InputError: no Canary or several; an unresolved ``templateRef``; a field Flagger
            does not have or a value pdsim rejects, at its line in the manifest.
    """
    docs = list(docs)
    sources = source_files(docs)
    files = files_text(sources)
    canaries, template_docs = _flagger_objects(docs)
    canary = the_object(canaries, sources, "Flagger", "Canary", API_VERSION)
    name, namespace = object_metadata(canary)
    name = name or Path(canary.file).stem
    spec, key = _canary_spec(canary)
    raw_analysis = spec[key]

    flagger: dict[str, Any] = {"provider": spec.get("provider") or DEFAULT_PROVIDER}
    for k in ("progressDeadlineSeconds", "skipAnalysis", "suspend"):
        if k in spec:
            flagger[k] = spec[k]
    flagger["analysis"] = _clean_analysis(raw_analysis)
    flagger["metadata"] = {"name": name, "namespace": namespace or DEFAULT_NAMESPACE}
    flagger.update(_names(spec))

    templates = [_template(t) for t in template_docs]
    chosen: dict[str, _Template] = {}
    metrics = raw_analysis.get("metrics") if isinstance(raw_analysis, Mapping) else None
    for i, m in enumerate(metrics if isinstance(metrics, list) else []):
        ref = m.get("templateRef") if isinstance(m, Mapping) else None
        if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str):
            continue  # malformed: validation below names the problem
        loc = ("spec", key, "metrics", i, "templateRef")
        ref_ns = ref.get("namespace") if isinstance(ref.get("namespace"), str) else None
        t = _resolve(str(m.get("name")), ref, ref_ns or namespace, templates, canary, loc, files)
        other = chosen.setdefault(t.name, t)
        if other is not t:
            raise error_at(
                canary,
                loc + ("name",),
                f"MetricTemplates {t.name!r} from two namespaces "
                f"({other.namespace}, {t.namespace}) are referenced; pdsim keys templates by name",
            )
    for t in templates:  # unreferenced ones too, unless their name is taken
        chosen.setdefault(t.name, t)
    if chosen:
        flagger["metricTemplates"] = {n: t.spec for n, t in chosen.items()}

    try:
        model = FlaggerPolicySpec.model_validate(flagger)
    except ValidationError as err:
        raise _validation_error(err, canary, key) from None

    warnings: list[str] = []
    if spec.get("autoscalerRef") is not None:
        warnings.append(warning_at(canary, ("spec", "autoscalerRef"), _WHY["autoscalerRef"]))
    if key == "analysis" and spec.get("canaryAnalysis") is not None:
        warnings.append(
            warning_at(
                canary,
                ("spec", "canaryAnalysis"),
                "spec.analysis takes precedence (Canary.GetAnalysis)",
                verdict="ignored",
            )
        )
    if model.analysis is not None:
        warnings += analysis_warnings(canary, ("spec", key), raw_analysis, model.analysis, model.provider)
        if model.analysis.mirror and not model.skipAnalysis and not mirrors_traffic(model.provider, model.iterations()):
            why = _WHY["mirror"] if model.strategy() == "canary" else _WHY["mirror_iterations"]
            warnings.append(warning_at(canary, ("spec", key, "mirror"), why, verdict="simulated as Flagger runs it"))
    return ImportResult(policy={"flagger": flagger}, spec=model, name=name, warnings=warnings, sources=sources)


# --- writing the policy file --------------------------------------------------------------------


def policy_yaml(result: ImportResult[FlaggerPolicySpec]) -> str:
    """The pdsim policy file of a Flagger import (``sim.importers.manifests.policy_file_text``)."""
    return policy_file_text(result, "Flagger", "Canary")


__all__ = [
    "API_VERSION",
    "analysis_warnings",
    "import_flagger",
    "metric_templates",
    "policy_yaml",
]
