"""The PromQL Flagger runs: builtin queries per provider, and ``RenderQuery``.

Flagger's builtin metrics (``request-success-rate``, ``request-duration``) are PromQL
templates kept per mesh or ingress provider in fluxcd/flagger
``pkg/metrics/observers/<provider>.go`` (``istioQueries``, ``linkerdQueries``, ...). They
are data pdsim must reproduce to be faithful, so they are written out here as data (the
whitespace is ours: Flagger's Prometheus client collapses every run of whitespace to one
space before sending a query, ``pkg/metrics/providers/prometheus.go`` ``trimQuery``, so
only where whitespace is, not which, reaches Prometheus).

Templates are Go ``text/template`` texts rendered by ``RenderQuery``
(``pkg/metrics/observers/render.go``) with one function per field of the
``MetricTemplateModel`` (``pkg/apis/flagger/v1beta1/metric.go``, ``TemplateFunctions``):
``name``, ``namespace``, ``target``, ``service``, ``ingress``, ``route``, ``interval``
and ``variables`` (a map: ``{{ variables.x }}``), with ``missingkey=error``.
:func:`render_query` implements the part of ``text/template`` those templates use (text,
actions with ``{{-``/``-}}`` trim markers, comments, the model's functions, map keys,
``$variables``, ``printf`` with ``%s``/``%v``/``%q``, pipelines with ``|``) and refuses
anything else with a :class:`QueryTemplateError` naming it, rather than guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

SUCCESS_RATE, DURATION = "request-success-rate", "request-duration"


class QueryTemplateError(ValueError):
    """A query template Flagger could not render (``RenderQuery`` returns an error)."""


# --- the builtin queries (pkg/metrics/observers/*.go) -------------------------------------------

_ISTIO = {
    SUCCESS_RATE: """
    sum(
        rate(
            istio_requests_total{
                reporter="destination",
                destination_workload_namespace="{{ namespace }}",
                destination_workload=~"{{ target }}",
                response_code!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            istio_requests_total{
                reporter="destination",
                destination_workload_namespace="{{ namespace }}",
                destination_workload=~"{{ target }}"
            }[{{ interval }}]
        )
    )
    * 100""",
    DURATION: """
    histogram_quantile(
        0.99,
        sum(
            rate(
                istio_request_duration_milliseconds_bucket{
                    reporter="destination",
                    destination_workload_namespace="{{ namespace }}",
                    destination_workload=~"{{ target }}"
                }[{{ interval }}]
            )
        ) by (le)
    )""",
}

_LINKERD = {
    SUCCESS_RATE: """
    sum(
        rate(
            response_total{
                namespace="{{ namespace }}",
                deployment=~"{{ target }}",
                classification!="failure",
                direction="inbound"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            response_total{
                namespace="{{ namespace }}",
                deployment=~"{{ target }}",
                direction="inbound"
            }[{{ interval }}]
        )
    )
    * 100""",
    DURATION: """
    histogram_quantile(
        0.99,
        sum(
            rate(
                response_latency_ms_bucket{
                    namespace="{{ namespace }}",
                    deployment=~"{{ target }}",
                    direction="inbound"
                }[{{ interval }}]
            )
        ) by (le)
    )""",
}

_APPMESH = {
    SUCCESS_RATE: """
    sum(
        rate(
            envoy_cluster_upstream_rq{
                kubernetes_namespace="{{ namespace }}",
                kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",
                envoy_response_code!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            envoy_cluster_upstream_rq{
                kubernetes_namespace="{{ namespace }}",
                kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
            }[{{ interval }}]
        )
    )
    * 100""",
    DURATION: """
    histogram_quantile(
        0.99,
        sum(
            rate(
                envoy_cluster_upstream_rq_time_bucket{
                    kubernetes_namespace="{{ namespace }}",
                    kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
                }[{{ interval }}]
            )
        ) by (le)
    )""",
}


def _envoy(cluster: str, label: str = "envoy_cluster_name") -> dict[str, str]:
    """The builtins of the Envoy observers that select one cluster by a regex (Contour,
    Gloo, Kuma, Knative: identical but for the selector, trailing comma included)."""
    return {
        SUCCESS_RATE: f"""
    sum(
        rate(
            envoy_cluster_upstream_rq{{
                {label}=~"{cluster}",
                envoy_response_code!~"5.*"
            }}[{{{{ interval }}}}]
        )
    )
    /
    sum(
        rate(
            envoy_cluster_upstream_rq{{
                {label}=~"{cluster}",
            }}[{{{{ interval }}}}]
        )
    )
    * 100""",
        DURATION: f"""
    histogram_quantile(
        0.99,
        sum(
            rate(
                envoy_cluster_upstream_rq_time_bucket{{
                    {label}=~"{cluster}",
                }}[{{{{ interval }}}}]
            )
        ) by (le)
    )""",
    }


_CONTOUR = _envoy("{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+")
_GLOO = _envoy("{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+")
_KUMA = _envoy("{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", label="service")
_KNATIVE = _envoy("{{ namespace }}/{{ route }}")

_NGINX = {
    SUCCESS_RATE: """
    sum(
        rate(
            nginx_ingress_controller_requests{
                namespace="{{ namespace }}",
                ingress="{{ ingress }}",
                canary!="",
                status!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            nginx_ingress_controller_requests{
                namespace="{{ namespace }}",
                ingress="{{ ingress }}",
                canary!=""
            }[{{ interval }}]
        )
    )
    * 100""",
    DURATION: """
    sum(
        rate(
            nginx_ingress_controller_response_duration_seconds_sum{
                namespace="{{ namespace }}",
                ingress="{{ ingress }}",
                canary!=""
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            nginx_ingress_controller_response_duration_seconds_count{
                namespace="{{ namespace }}",
                ingress="{{ ingress }}",
                canary!=""
            }[{{ interval }}]
        )
    )
    * 1000""",
}

# The observer of the kubernetes and Gateway API providers (http.go): the app's own
# http_request_duration_seconds histogram, per pod.
_HTTP = {
    SUCCESS_RATE: """
    sum(
        rate(
            http_request_duration_seconds_count{
                kubernetes_namespace="{{ namespace }}",
                kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",
                status!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            http_request_duration_seconds_count{
                kubernetes_namespace="{{ namespace }}",
                kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
            }[{{ interval }}]
        )
    )
    * 100""",
    DURATION: """
    histogram_quantile(
        0.99,
        sum(
            rate(
                http_request_duration_seconds_bucket{
                    kubernetes_namespace="{{ namespace }}",
                    kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
                }[{{ interval }}]
            )
        ) by (le)
    )""",
}

# skipper.go routePattern: a template variable holding the route regex.
_SKIPPER_ROUTE = '{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }}'
_SKIPPER = {
    SUCCESS_RATE: _SKIPPER_ROUTE
    + """
    sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",code!~"5..",le="+Inf"}[{{ interval }}])) /
    sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",le="+Inf"}[{{ interval }}])) * 100""",
    DURATION: _SKIPPER_ROUTE
    + """
    sum(rate(skipper_serve_route_duration_seconds_sum{route=~"{{ $route }}"}[{{ interval }}])) /
    sum(rate(skipper_serve_route_duration_seconds_count{route=~"{{ $route }}"}[{{ interval }}])) * 1000""",
}

_TRAEFIK = {
    SUCCESS_RATE: """
    sum(
        rate(
            traefik_service_request_duration_seconds_bucket{
                service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd",
                code!~"5..",
                le="+Inf"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            traefik_service_request_duration_seconds_bucket{
                service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd",
                le="+Inf"
            }[{{ interval }}]
        )
    ) * 100""",
    DURATION: """
    histogram_quantile(
        0.99,
        sum(
            rate(
                traefik_service_request_duration_seconds_bucket{
                    service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd"
                }[{{ interval }}]
            )
        ) by (le)
    ) * 1000""",
}

_OSM = {
    SUCCESS_RATE: """
    sum(
        rate(
            osm_request_total{
                destination_namespace="{{ namespace }}",
                destination_kind="Deployment",
                destination_name="{{ target }}",
                response_code!~"5.*"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            osm_request_total{
                destination_namespace="{{ namespace }}",
                destination_kind="Deployment",
                destination_name="{{ target }}"
            }[{{ interval }}]
        )
    )
    * 100""",
    DURATION: """
    histogram_quantile(
        0.99,
        sum(
            rate(
                osm_request_duration_ms_bucket{
                    destination_namespace="{{ namespace }}",
                    destination_kind="Deployment",
                    destination_name="{{ target }}"
                }[{{ interval }}]
            )
        ) by (le)
    )""",
}

_APISIX = {
    SUCCESS_RATE: """
    sum(
        rate(
            apisix_http_status{
                route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+",
                code!~"5.."
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            apisix_http_status{
                route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"
            }[{{ interval }}]
        )
    ) * 100""",
    DURATION: """
    histogram_quantile(
        0.99,
        sum(
            rate(
                apisix_http_latency_bucket{
                    type=~"request",
                    route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"
                }[{{ interval }}]
            )
        ) by (le)
    )""",
}

#: Builtin query templates by observer (fluxcd/flagger ``pkg/metrics/observers/<observer>.go``,
#: the ``<observer>Queries`` maps; ``http`` is ``http.go``, the kubernetes and Gateway API
#: providers' observer). Keys: ``request-success-rate`` (percent) and ``request-duration``
#: (milliseconds, except ``http``'s seconds: see :data:`DURATION_TO_MS`).
BUILTIN_QUERIES: Mapping[str, Mapping[str, str]] = {
    "istio": _ISTIO,
    "linkerd": _LINKERD,
    "appmesh": _APPMESH,
    "contour": _CONTOUR,
    "gloo": _GLOO,
    "nginx": _NGINX,
    "http": _HTTP,
    "skipper": _SKIPPER,
    "traefik": _TRAEFIK,
    "osm": _OSM,
    "kuma": _KUMA,
    "apisix": _APISIX,
    "knative": _KNATIVE,
}

#: What an observer's ``GetRequestDuration`` multiplies the query's value by before
#: truncating it to whole milliseconds: ``time.Duration(int64(value*1000)) *
#: time.Millisecond`` in http.go (its histogram is in seconds), ``int64(value)`` elsewhere.
DURATION_TO_MS: Mapping[str, float] = {observer: 1000.0 if observer == "http" else 1.0 for observer in BUILTIN_QUERIES}

#: Provider strings whose observer is chosen by prefix (``appmesh:v1beta2``,
#: ``gloo:...``, ``gatewayapi:v1beta1``) in ``factory.go``'s ``Observer``; the others by
#: equality. Any other string (``smi:linkerd``, ``supergloo``, ``istio:service``) gets
#: the Istio observer, as in Flagger.
_BY_PREFIX = (("appmesh", "appmesh"), ("gloo", "gloo"), ("gatewayapi", "http"))
_BY_NAME = {
    "linkerd": "linkerd",
    "istio": "istio",
    "contour": "contour",
    "nginx": "nginx",
    "kubernetes": "http",
    "skipper": "skipper",
    "traefik": "traefik",
    "osm": "osm",
    "kuma": "kuma",
    "apisix": "apisix",
    "knative": "knative",
}
#: ``MetricsProviderServiceSuffix`` (``scheduler_metrics.go``): appended to the provider
#: when the Canary targets a plain Kubernetes Service.
SERVICE_SUFFIX = ":service"
KNATIVE_API_VERSION = "serving.knative.dev/v1"


def observer_of(metrics_provider: str) -> str:
    """The observer (key of :data:`BUILTIN_QUERIES`) Flagger uses for a metrics provider.

    fluxcd/flagger ``pkg/metrics/observers/factory.go``, ``Factory.Observer``: prefixes for
    appmesh, gloo and gatewayapi, equality for the others, Istio for anything else.
    """
    for prefix, observer in _BY_PREFIX:
        if metrics_provider.startswith(prefix):
            return observer
    return _BY_NAME.get(metrics_provider, "istio")


def metrics_provider(provider: str, target_kind: str = "Deployment", target_api_version: str = "apps/v1") -> str:
    """The metrics provider of a Canary's builtin checks (``runBuiltinMetricChecks``).

    The Canary's ``provider`` (the controller's ``-mesh-provider``, ``istio`` by default,
    when it is empty), plus ``:service`` when the target is a Kubernetes Service that is
    not a Knative one (``LocalObjectReference.IsKnativeService``). With the suffix, only
    the prefix-matched providers keep their own observer (``factory.go``).
    """
    provider = provider or "istio"
    if target_kind == "Service" and target_api_version != KNATIVE_API_VERSION:
        provider += SERVICE_SUFFIX
    return provider


# --- the model and RenderQuery ------------------------------------------------------------------


@dataclass(frozen=True)
class MetricTemplateModel:
    """Flagger's ``MetricTemplateModel`` (``pkg/apis/flagger/v1beta1/metric.go``): what a
    query template may name. ``toMetricModel`` (``scheduler_metrics.go``) fills it from
    the Canary; ``interval`` is the metric's ``interval`` text as written (``1m``)."""

    name: str = ""
    namespace: str = ""
    target: str = ""
    service: str = ""
    ingress: str = ""
    route: str = ""
    interval: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)

    def functions(self) -> dict[str, Callable[[], object]]:
        """``TemplateFunctions``: one function per field, none taking arguments."""
        return {
            "name": lambda: self.name,
            "namespace": lambda: self.namespace,
            "target": lambda: self.target,
            "service": lambda: self.service,
            "ingress": lambda: self.ingress,
            "route": lambda: self.route,
            "interval": lambda: self.interval,
            "variables": lambda: self.variables,
        }


# Go's text/template: the space characters a trim marker trims, and its keywords and builtin
# functions (text/template/funcs.go builtins), which pdsim does not evaluate.
_SPACES = " \t\r\n"
_KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue", "nil", "true", "false"}
)
_GO_BUILTINS = frozenset(
    {
        "and",
        "or",
        "not",
        "len",
        "index",
        "slice",
        "print",
        "println",
        "html",
        "js",
        "urlquery",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "call",
    }
)
_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\n]+)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<declare>:=)
      | (?P<assign>=)
      | (?P<pipe>\|)
      | (?P<open>\()
      | (?P<close>\))
      | (?P<variable>\$[A-Za-z0-9_]*)
      | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
      | (?P<dot>\.)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>[-+]?[0-9][0-9A-Za-z_.+-]*)
    """,
    re.VERBOSE,
)


class _Token(NamedTuple):
    kind: str
    text: str
    attached: bool  # no space before it (a field right after a term is a chain: variables.x)


class _Operand(NamedTuple):
    term: object  # a _Token, or a pipeline (list of commands) in parentheses
    chain: tuple[str, ...]  # field names after it


_Command = list[_Operand]
_Pipeline = list[_Command]


class _Action(NamedTuple):
    declare: str | None  # "$x" of "$x := ..." or "$x = ..."
    pipeline: _Pipeline


def _scan_action(text: str, start: int) -> tuple[list[_Token], int, bool]:
    """The tokens of the action starting at ``start`` (after ``{{`` and a left trim
    marker), the index after its ``}}``, and whether it ended with a right trim marker."""
    tokens: list[_Token] = []
    i, attached = start, False
    while True:
        if text.startswith("}}", i):
            return tokens, i + 2, False
        if i < len(text) and text[i] in _SPACES and text.startswith("-}}", i + 1):
            return tokens, i + 4, True
        m = _TOKEN.match(text, i)
        if m is None:
            if i >= len(text):
                raise QueryTemplateError("unclosed action: a {{ without }}")
            raise QueryTemplateError(f"unexpected {text[i]!r} in an action")
        kind = m.lastgroup or ""
        if kind == "space":
            attached = False
        else:
            tokens.append(_Token(kind, m.group(), attached))
            attached = True
        i = m.end()


def _parse(template: str) -> list[str | _Action]:
    """Text pieces and actions, trim markers applied (``text/template/parse``)."""
    nodes: list[str | _Action] = []
    i, trim_next = 0, False
    while True:
        j = template.find("{{", i)
        text = template[i:] if j < 0 else template[i:j]
        if trim_next:
            text = text.lstrip(_SPACES)
        if j < 0:
            nodes.append(text)
            return nodes
        k = j + 2
        if template.startswith("-", k) and template[k + 1 : k + 2] in tuple(_SPACES):
            text = text.rstrip(_SPACES)
            k += 2
        nodes.append(text)
        if template.startswith("/*", k):  # a comment: {{/* ... */}}, {{- /* ... */ -}}
            end = template.find("*/", k + 2)
            if end < 0:
                raise QueryTemplateError("unclosed comment")
            rest = end + 2
            if template.startswith("}}", rest):
                i, trim_next = rest + 2, False
            elif template[rest : rest + 1] in tuple(_SPACES) and template.startswith("-}}", rest + 1):
                i, trim_next = rest + 4, True
            else:
                raise QueryTemplateError("comment ends before closing delimiter")
            continue
        tokens, i, trim_next = _scan_action(template, k)
        nodes.append(_action(tokens))


def _action(tokens: list[_Token]) -> _Action:
    if not tokens:
        raise QueryTemplateError("missing value for command")
    declare = None
    if len(tokens) >= 2 and tokens[0].kind == "variable" and tokens[1].kind in ("declare", "assign"):
        declare = tokens[0].text
        tokens = tokens[2:]
    pipeline, rest = _pipeline(tokens, 0)
    if rest != len(tokens):
        raise QueryTemplateError(f"unexpected {tokens[rest].text!r} in an action")
    return _Action(declare, pipeline)


def _pipeline(tokens: list[_Token], i: int) -> tuple[_Pipeline, int]:
    commands: _Pipeline = []
    command: _Command = []
    while i < len(tokens) and tokens[i].kind != "close":
        tok = tokens[i]
        if tok.kind == "pipe":
            if not command:
                raise QueryTemplateError("missing command before |")
            commands.append(command)
            command, i = [], i + 1
            continue
        if tok.kind == "open":
            inner, i = _pipeline(tokens, i + 1)
            if i >= len(tokens):
                raise QueryTemplateError("unclosed left paren")
            term: object = inner
        elif tok.kind in ("declare", "assign"):
            raise QueryTemplateError(f"unexpected {tok.text!r} in an action")
        else:
            term = tok
        i += 1
        chain = []
        while i < len(tokens) and tokens[i].kind == "field" and tokens[i].attached:
            chain.append(tokens[i].text[1:])
            i += 1
        command.append(_Operand(term, tuple(chain)))
    if not command:
        raise QueryTemplateError("missing value for command")
    commands.append(command)
    return commands, i


_GO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _go_string(token: _Token) -> str:
    """The value of a Go string literal (interpreted or raw)."""
    body = token.text[1:-1]
    if token.kind == "raw":
        return body
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in _GO_ESCAPES:
            out.append(_GO_ESCAPES[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 2 : i + 2 + width]
            if not re.fullmatch(f"[0-9a-fA-F]{{{width}}}", digits):
                raise QueryTemplateError(f"bad escape in {token.text}")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        else:
            raise QueryTemplateError(f"escape \\{e} in {token.text} is not supported")
    return "".join(out)


def _go_text(value: object) -> str:
    """``fmt``'s ``%v`` of a template value: a string as is, a map as ``map[k:v ...]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_go_text(value[k])}" for k in sorted(value)) + "]"
    raise QueryTemplateError(f"cannot print a {type(value).__name__}")


def _go_type(value: object) -> str:
    return "string" if isinstance(value, str) else "map[string]string"


def _printf(args: list[object]) -> str:
    """Go's ``fmt.Sprintf`` for the verbs query templates use: ``%s``, ``%v``, ``%q``, ``%%``.

    Missing and extra arguments are written as Go writes them (``%!s(MISSING)``,
    ``%!(EXTRA string=x)``): Go does not fail on them, so neither does Flagger."""
    if not args or not isinstance(args[0], str):
        raise QueryTemplateError("printf needs a format string")
    fmt, rest = args[0], list(args[1:])
    out, i, used = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1 : i + 2]
        i += 2
        if verb == "%":
            out.append("%")
        elif verb in ("s", "v", "q"):
            if used >= len(rest):
                out.append(f"%!{verb}(MISSING)")
                continue
            value = rest[used]
            used += 1
            text = _go_text(value)
            out.append(json.dumps(text, ensure_ascii=False) if verb == "q" and isinstance(value, str) else text)
        else:
            raise QueryTemplateError(f"printf verb %{verb} is not supported by pdsim (only %s, %v, %q, %%)")
    if used < len(rest):
        extra = ", ".join(f"{_go_type(v)}={_go_text(v)}" for v in rest[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


class _Renderer:
    """One execution of a parsed template with a model (variables are per execution)."""

    def __init__(self, model: MetricTemplateModel) -> None:
        self.functions = model.functions()
        self.variables: dict[str, object] = {}

    def pipeline(self, pipeline: _Pipeline) -> object:
        value: object = None
        for n, command in enumerate(pipeline):
            value = self.command(command, None if n == 0 else (value,))
        return value

    def command(self, command: _Command, piped: tuple[object, ...] | None) -> object:
        first, args = command[0], command[1:]
        term = first.term
        if isinstance(term, _Token) and term.kind == "ident" and not first.chain:
            values = [self.operand(a) for a in args] + list(piped or ())
            return self.call(term.text, values)
        if args or piped is not None:
            raise QueryTemplateError(f"can't give argument to non-function {_describe(first)}")
        return self.operand(first)

    def operand(self, op: _Operand) -> object:
        term = op.term
        if isinstance(term, list):
            value = self.pipeline(term)
        else:
            assert isinstance(term, _Token)
            value = self.term(term)
        for name in op.chain:
            if not isinstance(value, Mapping):
                raise QueryTemplateError(f"can't evaluate field {name} in type {_go_type(value)}")
            if name not in value:
                # missingkey=error (RenderQuery), e.g. a templateVariables entry not set.
                raise QueryTemplateError(f'map has no entry for key "{name}"')
            value = value[name]
        return value

    def term(self, tok: _Token) -> object:
        if tok.kind in ("string", "raw"):
            return _go_string(tok)
        if tok.kind == "ident":
            return self.call(tok.text, [])
        if tok.kind == "variable":
            if tok.text not in self.variables:
                raise QueryTemplateError(f'undefined variable "{tok.text}"')
            return self.variables[tok.text]
        if tok.kind in ("field", "dot"):
            # RenderQuery executes with nil data: the model is reached through functions only.
            raise QueryTemplateError(f"{tok.text}: the template has no data, use the functions (e.g. {{{{ target }}}})")
        raise QueryTemplateError(f"{tok.text!r} is not supported in query templates by pdsim")

    def call(self, name: str, args: list[object]) -> object:
        if name in self.functions:
            if args:
                raise QueryTemplateError(f"wrong number of args for {name}: want 0 got {len(args)}")
            return self.functions[name]()
        if name == "printf":
            return _printf(args)
        if name in _KEYWORDS or name in _GO_BUILTINS:
            raise QueryTemplateError(f"{name!r} is not supported in query templates by pdsim")
        raise QueryTemplateError(f'function "{name}" not defined')


def _describe(op: _Operand) -> str:
    term = op.term
    text = term.text if isinstance(term, _Token) else "(...)"
    return text + "".join("." + c for c in op.chain)


def render_query(template: str, model: MetricTemplateModel) -> str:
    """``RenderQuery`` (fluxcd/flagger ``pkg/metrics/observers/render.go``): the template
    executed with the model's functions, ``missingkey=error``.

    Raises:
        QueryTemplateError: what Flagger would fail to parse or execute (an unknown
            function, a missing ``variables`` key), or a template feature pdsim does not
            evaluate (``if``, ``range``, Go's builtin functions other than ``printf``).
    """
    nodes = _parse(template)
    declared: set[str] = set()
    for node in nodes:  # text/template rejects undefined variables when parsing
        if isinstance(node, _Action):
            _check_variables(node.pipeline, declared)
            if node.declare is not None:
                declared.add(node.declare)
    run = _Renderer(model)
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
            continue
        value = run.pipeline(node.pipeline)
        if node.declare is not None:
            run.variables[node.declare] = value  # a declaration prints nothing
        else:
            out.append(_go_text(value))
    return "".join(out)


def _check_variables(pipeline: _Pipeline, declared: set[str]) -> None:
    for command in pipeline:
        for op in command:
            if isinstance(op.term, list):
                _check_variables(op.term, declared)
            elif isinstance(op.term, _Token) and op.term.kind == "variable" and op.term.text not in declared:
                raise QueryTemplateError(f'undefined variable "{op.term.text}"')


_WHITESPACE = re.compile(r"[\t\n\f\r ]+")  # Go RE2's \s (ASCII only)


def trim_query(query: str) -> str:
    """What Flagger's Prometheus client sends: every run of whitespace replaced by one space
    (``pkg/metrics/providers/prometheus.go``, ``trimQuery``; leading and trailing runs too)."""
    return _WHITESPACE.sub(" ", query)


_NON_WORD = re.compile(r"[^0-9A-Za-z_]")  # Go RE2's \W (ASCII)


def skipper_model(model: MetricTemplateModel) -> MetricTemplateModel:
    """``encodeModelForSkipper`` (skipper.go): non-word characters of ingress, name,
    namespace, service and target become ``_``, as Skipper's route names have them."""

    def enc(s: str) -> str:
        return _NON_WORD.sub("_", s)

    return replace(
        model,
        ingress=enc(model.ingress),
        name=enc(model.name),
        namespace=enc(model.namespace),
        service=enc(model.service),
        target=enc(model.target),
    )


def builtin_query(metrics_provider: str, metric: str, model: MetricTemplateModel) -> str:
    """The PromQL Flagger sends to Prometheus for a builtin metric.

    Args:
        metrics_provider: the provider string (see :func:`metrics_provider`), e.g.
            ``istio``, ``appmesh:v1beta2``, ``kubernetes``, ``istio:service``.
        metric: ``request-success-rate`` or ``request-duration``.
        model: the Canary's model (``interval``: the metric's interval text).

    Returns:
        The observer's query, rendered (``RenderQuery``) and trimmed (``trimQuery``).
    """
    observer = observer_of(metrics_provider)
    if observer == "skipper":
        model = skipper_model(model)
    return trim_query(render_query(BUILTIN_QUERIES[observer][metric], model))


__all__ = [
    "BUILTIN_QUERIES",
    "DURATION",
    "DURATION_TO_MS",
    "SUCCESS_RATE",
    "MetricTemplateModel",
    "QueryTemplateError",
    "builtin_query",
    "metrics_provider",
    "observer_of",
    "render_query",
    "skipper_model",
    "trim_query",
]
