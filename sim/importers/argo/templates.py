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
    _ARG_KEYS,
    _COUNT_FIELDS,
    _DURATION_FIELDS,
    _METRIC_KEYS,
    _PROMETHEUS_KEYS,
    _PROVIDERS,
    _REF_KEYS,
    _TEMPLATE_KEYS,
    _TEMPLATE_VALUE_FROM_KEYS,
    _WHY,
    CLUSTER_TEMPLATE,
    TEMPLATE,
    _at,
    _count,
    _duration,
    _keys,
    _list,
    _Warnings,
)
from sim.importers.flagger import _err, _metadata
from sim.inputs.scenario import validation_to_input_error
from sim.policies.argo.spec import TemplateSpec
from sim.yamlio import YamlDoc

# --- templates -----------------------------------------------------------------------------------


@dataclass
class _Template:
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
        return self.kind == CLUSTER_TEMPLATE

    @property
    def where(self) -> str:
        return f"{self.doc.file}:{self.doc.line_of(self.loc[:-1] if self.loc == ('spec',) else self.loc)}"

    def refs(self) -> list[tuple[int, Any]]:
        return list(enumerate(_list(self.raw.get("templates"))))


def _check_template_spec(doc: YamlDoc, loc: tuple[Any, ...], spec: Any, nested_ok: bool = True) -> TemplateSpec:
    """Strict keys and types of an ``AnalysisTemplateSpec``; literal durations and counts."""
    if not isinstance(spec, Mapping):
        raise _err(doc, loc, "an AnalysisTemplate spec must be a mapping with metrics", got=spec)
    _keys(doc, loc, spec, _TEMPLATE_KEYS, "AnalysisTemplateSpec")
    if not nested_ok and spec.get("templates"):
        raise _err(
            doc,
            loc + ("templates",),
            "nested templates are flattened by `pdsim import argo`; in a "
            "pdsim policy file list the metrics of the nested templates in this template",
        )
    for i, m in enumerate(_list(spec.get("metrics"))):
        here = loc + ("metrics", i)
        _keys(doc, here, m, _METRIC_KEYS, "Metric")
        if not isinstance(m, Mapping):
            continue
        provider = m.get("provider")
        if not isinstance(provider, Mapping) or not provider:
            raise _err(
                doc,
                here + ("provider",) if "provider" in m else here,
                f"metric {m.get('name')!r} needs a provider ({', '.join(_PROVIDERS)})",
                **({"got": provider} if "provider" in m and not isinstance(provider, Mapping) else {}),
            )
        for key in provider:
            if key not in _PROVIDERS:
                raise _err(
                    doc,
                    here + ("provider", key),
                    f"unknown key: not a metric provider of Argo's MetricProvider ({', '.join(_PROVIDERS)})",
                )
        if len(provider) > 1:
            raise _err(
                doc,
                here + ("provider",),
                f"metric {m.get('name')!r} has {len(provider)} providers ({', '.join(provider)}); give exactly one",
            )
        _keys(doc, here + ("provider", "prometheus"), provider.get("prometheus"), _PROMETHEUS_KEYS, "PrometheusMetric")
        for key in _DURATION_FIELDS:
            value = m.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                raise _err(
                    doc, here + (key,), "not a Go duration such as 30s, 5m or 1h30m (a unit is required)", got=value
                )
            if isinstance(value, str) and "{{" not in value:
                _duration(doc, here + (key,), value)
        for key in _COUNT_FIELDS:
            value = m.get(key)
            if isinstance(value, str) and "{{" not in value:
                _count(doc, here + (key,), value)
    for i, arg in enumerate(_list(spec.get("args"))):
        _keys(doc, loc + ("args", i), arg, _ARG_KEYS, "Argument")
        if isinstance(arg, Mapping):
            _keys(doc, loc + ("args", i, "valueFrom"), arg.get("valueFrom"), _TEMPLATE_VALUE_FROM_KEYS, "ValueFrom")
    for i, ref in enumerate(_list(spec.get("templates"))):
        _keys(doc, loc + ("templates", i), ref, _REF_KEYS, "AnalysisTemplateRef")
    data = {k: v for k, v in spec.items() if k != "templates"}
    try:
        model = TemplateSpec.model_validate(data)
    except ValidationError as err:
        raise validation_to_input_error(err, doc, prefix=loc) from None
    for i, ref in enumerate(_list(spec.get("templates"))):
        if not isinstance(ref, Mapping) or not isinstance(ref.get("templateName"), str) or not ref["templateName"]:
            raise _err(doc, loc + ("templates", i), "a template reference needs templateName", got=ref)
        if not isinstance(ref.get("clusterScope", False), bool):
            raise _err(doc, loc + ("templates", i, "clusterScope"), "must be true or false", got=ref["clusterScope"])
    return model


def _template(doc: YamlDoc) -> _Template:
    name, ns = _metadata(doc)
    kind = doc.data["kind"]
    if not name:
        raise _err(
            doc,
            ("metadata", "name") if "metadata" in doc.data else (),
            f"an {kind} needs metadata.name (templateName refers to it)",
        )
    if "spec" not in doc.data:
        raise _err(doc, (), f"an {kind} needs a spec with metrics")
    model = _check_template_spec(doc, ("spec",), doc.data["spec"])
    return _Template(doc, ("spec",), kind, name, None if kind == CLUSTER_TEMPLATE else ns, doc.data["spec"], model)


class _Templates:
    """The templates of a bundle, looked up as the controller looks them up."""

    def __init__(self, templates: list[_Template], namespace: str | None, files: str) -> None:
        self.all = templates
        self.namespace = namespace
        self.files = files

    def lookup(self, name: str, cluster: bool, doc: YamlDoc, loc: tuple[Any, ...]) -> _Template:
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
                raise _err(
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
            raise _err(
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
            raise _err(doc, loc, f"{kind} {name!r} is defined more than once ({places})", got=name)
        return fits[0]

    def closure(self, t: _Template, chain: tuple[_Template, ...] = ()) -> list[_Template]:
        """``t`` and the templates it nests, each once, in the controller's order."""
        if t in chain:
            cycle = " -> ".join(x.name for x in chain + (t,))
            raise _err(t.doc, t.loc + ("templates",), f"nested templates form a cycle ({cycle})")
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


def _ordered(templates: Iterable[_Template]) -> list[_Template]:
    """``FilterUniqueTemplates`` then ``FlattenTemplates``: namespaced first, then cluster ones."""
    unique: list[_Template] = []
    for t in templates:
        if t not in unique:
            unique.append(t)
    return [t for t in unique if not t.cluster] + [t for t in unique if t.cluster]


def _flatten_args(templates: list[_Template]) -> dict[str, tuple[_Template, int, Mapping[str, Any]]]:
    """``flattenArgs``: the templates' arguments by name (a value wins over none; two
    different values are an error)."""
    out: dict[str, tuple[_Template, int, Mapping[str, Any]]] = {}
    for t in templates:
        for i, arg in enumerate(_list(t.raw.get("args"))):
            name = arg["name"]
            prev = out.get(name)
            if prev is None:
                out[name] = (t, i, arg)
                continue
            pt, pi, parg = prev
            if parg.get("value") is not None and arg.get("value") is not None and parg["value"] != arg["value"]:
                raise _err(
                    t.doc,
                    t.loc + ("args", i, "value"),
                    f"argument {name!r} is also given with a "
                    f"different value ({parg['value']!r}) by {pt.kind} {pt.name!r} at "
                    f"{_at(pt.doc, pt.loc + ('args', pi, 'value'))}; Argo refuses to combine them",
                    got=arg["value"],
                )
            if parg.get("value") is None:
                out[name] = (t, i, arg)
    return out


def _flattened_spec(templates: _Templates, t: _Template) -> dict[str, Any]:
    """The spec of ``t`` with its nested templates flattened into it (for the policy)."""
    spec = copy.deepcopy(dict(t.raw))
    if not t.raw.get("templates"):
        spec.pop("templates", None)
        return spec
    chain = _ordered(templates.closure(t))
    spec.pop("templates")
    metrics = [copy.deepcopy(m) for x in chain for m in _list(x.raw.get("metrics"))]
    args = [copy.deepcopy(dict(arg)) for _, _, arg in _flatten_args(chain).values()]
    for key, value in (("metrics", metrics), ("args", args)):
        if value:
            spec[key] = value
        else:
            spec.pop(key, None)
    for key in ("dryRun", "measurementRetention"):
        merged = [copy.deepcopy(e) for x in chain for e in _list(x.raw.get(key))]
        if merged:
            spec[key] = merged
    return spec


def _template_warnings(t: _Template, out: _Warnings) -> None:
    """Warnings for a template an analysis uses."""
    for i, m in enumerate(_list(t.raw.get("metrics"))):
        here = t.loc + ("metrics", i, "provider")
        kind = next(iter(m["provider"]))
        name = m.get("name")
        if kind == "prometheus":
            if isinstance(m["provider"]["prometheus"], Mapping) and m["provider"]["prometheus"].get("rangeQuery"):
                out.add(t.doc, here + ("prometheus", "rangeQuery"), _WHY["rangeQuery"])
        elif kind == "kayenta":
            out.add(t.doc, here + (kind,), _WHY["kayenta"].format(name=name))
        elif kind == "job":
            out.add(t.doc, here + (kind,), _WHY["job"].format(name=name))
        else:
            out.add(t.doc, here + (kind,), _WHY["provider"].format(kind=kind, name=name))
    for i, arg in enumerate(_list(t.raw.get("args"))):
        vf = arg.get("valueFrom")
        # A secretKeyRef carries credentials: it never decides. A fieldRef may feed a query.
        if isinstance(vf, Mapping) and vf.get("fieldRef") is not None and arg.get("value") is None:
            out.add(
                t.doc, t.loc + ("args", i, "valueFrom"), _WHY["valueFrom"].format(value="{{args." + arg["name"] + "}}")
            )
