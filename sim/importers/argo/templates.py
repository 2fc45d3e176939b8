"""AnalysisTemplates and ClusterAnalysisTemplates of an Argo bundle: strict checks,
lookup by reference as the controller does it (``rollout/analysis.go``
``getAnalysisTemplatesFromRefs``), nested templates flattened (``utils/analysis/helpers.go``
``FlattenTemplates``, ``flattenArgs``), and the warnings of the metrics they hold."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sim.importers.argo.fields import (
    ARG_KEYS,
    CLUSTER_TEMPLATE,
    COUNT_FIELDS,
    DURATION_FIELDS,
    METRIC_KEYS,
    PROMETHEUS_KEYS,
    PROVIDERS,
    REF_KEYS,
    TEMPLATE,
    TEMPLATE_KEYS,
    TEMPLATE_VALUE_FROM_KEYS,
    WHY,
    Warnings,
    as_list,
    check_keys,
    field_location,
    go_duration,
    whole_number,
)
from sim.importers.manifests import error_at, object_metadata
from sim.inputs.validation import validation_to_input_error
from sim.policies.argo.spec import TemplateSpec
from sim.yamlio import YamlDoc

# --- templates -----------------------------------------------------------------------------------


@dataclass
class Template:
    """An AnalysisTemplate or ClusterAnalysisTemplate and where its spec was written."""

    doc: YamlDoc
    loc: tuple[Any, ...]  # where the spec mapping is in doc: ("spec",) in a manifest
    kind: str  # AnalysisTemplate | ClusterAnalysisTemplate
    name: str
    namespace: str | None
    raw: Mapping[str, Any]  # the spec as written
    model: TemplateSpec

    @property
    def cluster(self) -> bool:
        """Whether it is a ClusterAnalysisTemplate (``clusterScope: true`` refers to it)."""
        return self.kind == CLUSTER_TEMPLATE

    @property
    def where(self) -> str:
        """``FILE:LINE`` of the object (or of the policy file entry) for messages."""
        return f"{self.doc.file}:{self.doc.line_of(self.loc[:-1] if self.loc == ('spec',) else self.loc)}"

    def refs(self) -> list[tuple[int, Any]]:
        """The nested template references of the spec, with their indexes."""
        return list(enumerate(as_list(self.raw.get("templates"))))


def check_template_spec(doc: YamlDoc, loc: tuple[Any, ...], spec: Any, nested_ok: bool = True) -> TemplateSpec:
    """Strict keys and types of an ``AnalysisTemplateSpec``; literal durations and counts."""
    if not isinstance(spec, Mapping):
        raise error_at(doc, loc, "an AnalysisTemplate spec must be a mapping with metrics", got=spec)
    check_keys(doc, loc, spec, TEMPLATE_KEYS, "AnalysisTemplateSpec")
    if not nested_ok and spec.get("templates"):
        raise error_at(
            doc,
            loc + ("templates",),
            "nested templates are flattened by `pdsim import argo`; in a "
            "pdsim policy file list the metrics of the nested templates in this template",
        )
    for i, m in enumerate(as_list(spec.get("metrics"))):
        here = loc + ("metrics", i)
        check_keys(doc, here, m, METRIC_KEYS, "Metric")
        if not isinstance(m, Mapping):
            continue
        provider = m.get("provider")
        if not isinstance(provider, Mapping) or not provider:
            raise error_at(
                doc,
                here + ("provider",) if "provider" in m else here,
                f"metric {m.get('name')!r} needs a provider ({', '.join(PROVIDERS)})",
                **({"got": provider} if "provider" in m and not isinstance(provider, Mapping) else {}),
            )
        for key in provider:
            if key not in PROVIDERS:
                raise error_at(
                    doc,
                    here + ("provider", key),
                    f"unknown key: not a metric provider of Argo's MetricProvider ({', '.join(PROVIDERS)})",
                )
        if len(provider) > 1:
            raise error_at(
                doc,
                here + ("provider",),
                f"metric {m.get('name')!r} has {len(provider)} providers ({', '.join(provider)}); give exactly one",
            )
        check_keys(
            doc, here + ("provider", "prometheus"), provider.get("prometheus"), PROMETHEUS_KEYS, "PrometheusMetric"
        )
        for key in DURATION_FIELDS:
            value = m.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                raise error_at(
                    doc, here + (key,), "not a Go duration such as 30s, 5m or 1h30m (a unit is required)", got=value
                )
            if isinstance(value, str) and "{{" not in value:
                go_duration(doc, here + (key,), value)
        for key in COUNT_FIELDS:
            value = m.get(key)
            if isinstance(value, str) and "{{" not in value:
                whole_number(doc, here + (key,), value)
    for i, arg in enumerate(as_list(spec.get("args"))):
        check_keys(doc, loc + ("args", i), arg, ARG_KEYS, "Argument")
        if isinstance(arg, Mapping):
            check_keys(doc, loc + ("args", i, "valueFrom"), arg.get("valueFrom"), TEMPLATE_VALUE_FROM_KEYS, "ValueFrom")
    for i, ref in enumerate(as_list(spec.get("templates"))):
        check_keys(doc, loc + ("templates", i), ref, REF_KEYS, "AnalysisTemplateRef")
    data = {k: v for k, v in spec.items() if k != "templates"}
    try:
        model = TemplateSpec.model_validate(data)
    except ValidationError as err:
        raise validation_to_input_error(err, doc, prefix=loc) from None
    for i, ref in enumerate(as_list(spec.get("templates"))):
        if not isinstance(ref, Mapping) or not isinstance(ref.get("templateName"), str) or not ref["templateName"]:
            raise error_at(doc, loc + ("templates", i), "a template reference needs templateName", got=ref)
        if not isinstance(ref.get("clusterScope", False), bool):
            raise error_at(
                doc, loc + ("templates", i, "clusterScope"), "must be true or false", got=ref["clusterScope"]
            )
    return model


def read_template(doc: YamlDoc) -> Template:
    """An AnalysisTemplate or ClusterAnalysisTemplate object, checked (``check_template_spec``).

    Raises:
        InputError: for a template without a name or a spec, or a bad spec.
    """
    name, ns = object_metadata(doc)
    kind = doc.data["kind"]
    if not name:
        raise error_at(
            doc,
            ("metadata", "name") if "metadata" in doc.data else (),
            f"an {kind} needs metadata.name (templateName refers to it)",
        )
    if "spec" not in doc.data:
        raise error_at(doc, (), f"an {kind} needs a spec with metrics")
    model = check_template_spec(doc, ("spec",), doc.data["spec"])
    return Template(doc, ("spec",), kind, name, None if kind == CLUSTER_TEMPLATE else ns, doc.data["spec"], model)


class Templates:
    """The templates of a bundle, looked up as the controller looks them up."""

    def __init__(self, templates: list[Template], namespace: str | None, files: str) -> None:
        self.all = templates
        self.namespace = namespace
        self.files = files

    def lookup(self, name: str, cluster: bool, doc: YamlDoc, loc: tuple[Any, ...]) -> Template:
        """The template a reference at ``doc``/``loc`` (its templateName) names.

        Raises:
            InputError: at the reference, naming the missing template.
        """
        kind = CLUSTER_TEMPLATE if cluster else TEMPLATE
        same = [t for t in self.all if t.name == name and t.cluster == cluster]
        fits = (
            same
            if cluster
            else [t for t in same if t.namespace is None or self.namespace is None or t.namespace == self.namespace]
        )
        if not fits:
            if same:
                where = ", ".join(sorted({t.namespace or "" for t in same}))
                raise error_at(
                    doc,
                    loc,
                    f"{kind} {name!r} is in namespace {where}, not in the Rollout's namespace {self.namespace!r}",
                    got=name,
                )
            other = [t for t in self.all if t.name == name]
            hint = ""
            if other:
                hint = (
                    " (a ClusterAnalysisTemplate of that name is given: add clusterScope: true)"
                    if not cluster
                    else " (an AnalysisTemplate of that name is given: drop clusterScope: true)"
                )
            raise error_at(
                doc,
                loc,
                f"no {kind} named {name!r} in {self.files}{hint}; pass the file that "
                "defines it too (e.g. --policy templates.yaml)",
                got=name,
            )
        if not cluster:
            exact = [t for t in fits if t.namespace == self.namespace]
            fits = exact or fits
        if len(fits) > 1:
            places = ", ".join(t.where for t in fits)
            raise error_at(doc, loc, f"{kind} {name!r} is defined more than once ({places})", got=name)
        return fits[0]

    def closure(self, t: Template, chain: tuple[Template, ...] = ()) -> list[Template]:
        """``t`` and the templates it nests, each once, in the controller's order."""
        if t in chain:
            cycle = " -> ".join(x.name for x in chain + (t,))
            raise error_at(t.doc, t.loc + ("templates",), f"nested templates form a cycle ({cycle})")
        out = [t]
        for i, ref in t.refs():
            inner = self.lookup(
                ref["templateName"],
                bool(ref.get("clusterScope", False)),
                t.doc,
                t.loc + ("templates", i, "templateName"),
            )
            for x in self.closure(inner, chain + (t,)):
                if x not in out:
                    out.append(x)
        return out


def flatten_order(templates: Iterable[Template]) -> list[Template]:
    """``FilterUniqueTemplates`` then ``FlattenTemplates``: namespaced first, then cluster ones."""
    unique: list[Template] = []
    for t in templates:
        if t not in unique:
            unique.append(t)
    return [t for t in unique if not t.cluster] + [t for t in unique if t.cluster]


def flatten_args(templates: list[Template]) -> dict[str, tuple[Template, int, Mapping[str, Any]]]:
    """``flattenArgs``: the templates' arguments by name (a value wins over none; two
    different values are an error)."""
    out: dict[str, tuple[Template, int, Mapping[str, Any]]] = {}
    for t in templates:
        for i, arg in enumerate(as_list(t.raw.get("args"))):
            name = arg["name"]
            prev = out.get(name)
            if prev is None:
                out[name] = (t, i, arg)
                continue
            pt, pi, parg = prev
            if parg.get("value") is not None and arg.get("value") is not None and parg["value"] != arg["value"]:
                raise error_at(
                    t.doc,
                    t.loc + ("args", i, "value"),
                    f"argument {name!r} is also given with a "
                    f"different value ({parg['value']!r}) by {pt.kind} {pt.name!r} at "
                    f"{field_location(pt.doc, pt.loc + ('args', pi, 'value'))}; Argo refuses to combine them",
                    got=arg["value"],
                )
            if parg.get("value") is None:
                out[name] = (t, i, arg)
    return out


def flattened_spec(templates: Templates, t: Template) -> dict[str, Any]:
    """The spec of ``t`` with its nested templates flattened into it (for the policy)."""
    spec = copy.deepcopy(dict(t.raw))
    if not t.raw.get("templates"):
        spec.pop("templates", None)
        return spec
    chain = flatten_order(templates.closure(t))
    spec.pop("templates")
    metrics = [copy.deepcopy(m) for x in chain for m in as_list(x.raw.get("metrics"))]
    args = [copy.deepcopy(dict(arg)) for _, _, arg in flatten_args(chain).values()]
    for key, value in (("metrics", metrics), ("args", args)):
        if value:
            spec[key] = value
        else:
            spec.pop(key, None)
    for key in ("dryRun", "measurementRetention"):
        merged = [copy.deepcopy(e) for x in chain for e in as_list(x.raw.get(key))]
        if merged:
            spec[key] = merged
    return spec


def template_warnings(t: Template, out: Warnings) -> None:
    """Warnings for a template an analysis uses."""
    for i, m in enumerate(as_list(t.raw.get("metrics"))):
        here = t.loc + ("metrics", i, "provider")
        kind = next(iter(m["provider"]))
        name = m.get("name")
        if kind == "prometheus":
            if isinstance(m["provider"]["prometheus"], Mapping) and m["provider"]["prometheus"].get("rangeQuery"):
                out.add(t.doc, here + ("prometheus", "rangeQuery"), WHY["rangeQuery"])
        elif kind == "kayenta":
            out.add(t.doc, here + (kind,), WHY["kayenta"].format(name=name))
        elif kind == "job":
            out.add(t.doc, here + (kind,), WHY["job"].format(name=name))
        else:
            out.add(t.doc, here + (kind,), WHY["provider"].format(kind=kind, name=name))
    for i, arg in enumerate(as_list(t.raw.get("args"))):
        vf = arg.get("valueFrom")
        # A secretKeyRef carries credentials: it never decides. A fieldRef may feed a query.
        if isinstance(vf, Mapping) and vf.get("fieldRef") is not None and arg.get("value") is None:
            out.add(
                t.doc, t.loc + ("args", i, "valueFrom"), WHY["valueFrom"].format(value="{{args." + arg["name"] + "}}")
            )
