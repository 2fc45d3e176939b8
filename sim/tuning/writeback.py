"""Tuned values written back into the user's own manifests (``best-manifest.yaml``).

``write_back(paths, values)`` takes the base policy's PATHs as the TUNE file gives them
(Canary or Rollout manifests with their template files, a directory of them, or a pdsim
policy file ``manifest: x.yaml``) and the tuned values by space PATH
(``policy.flagger.analysis.stepWeight: 4``), and returns the text of every document of
those manifest files with only the tuned fields changed.

How a PATH finds its field follows the importers (``sim.importers.flagger``,
``sim.importers.argo``), which copy most fields one to one:

* Flagger: ``policy.flagger.analysis.*`` is the Canary's ``spec.analysis`` (or
  ``spec.canaryAnalysis`` when that is the block the importer read); ``provider``,
  ``progressDeadlineSeconds``, ``skipAnalysis``, ``suspend`` and the references
  (``targetRef``, ``service.name``, ...) are ``spec.*``; ``metricTemplates.NAME.*`` is the
  ``spec`` of the MetricTemplate named NAME;
* Argo: ``policy.argo.strategy.*`` is the Rollout's ``spec.strategy``; ``replicas`` and
  the progress deadline are ``spec.*``; ``templates.NAME.*`` and
  ``clusterTemplates.NAME.*`` are the ``spec`` of the AnalysisTemplate or
  ClusterAnalysisTemplate NAME. A template that nests others is flattened by the
  importer: its ``metrics[k]``, ``args[k]``, ``dryRun[k]`` and
  ``measurementRetention[k]`` are found in the nested template that holds them.

A PATH is *not written* (``WriteBack.not_written``, with a one-line reason each in
``WriteBack.reasons``, and a comment block at the top of the text) when it has no manifest
field: pdsim-only settings (``policy.flagger.judge``), fields the importer derives rather
than copies (``metadata``, a plugin step simulated as a pause, a dropped key), fields of a
pdsim policy file (not a manifest), an index past a list's end, or a field of a nested
template that other analyses also read. The rule that decides "copied one to one" is
checked, not assumed: the base policy's value at the PATH must equal the manifest's value
at the field (or both be absent; ``provider`` and ``replicas`` have importer defaults).

The text is the user's files edited in place, not re-serialised: each change replaces the
exact span of one YAML node (positions from the YAML composer), or inserts one entry into
a mapping, so comments, key order, quoting, indentation, line widths and every other
document stay byte for byte as written. A string value keeps the quoting style of the
node it replaces; a new key goes after the last scalar entry of its mapping (a scalar
value) or at its end (a mapping or list), indented as its siblings; values are rendered
so that a YAML 1.1 reader (the importers' PyYAML) reads back exactly the value given.
Files are joined with ``---``.

Why not ruamel.yaml's round-trip (load, set, dump), the library one would reach for: it
re-emits a whole file in one indentation style, so a file that mixes list styles (as
upstream manifests do) moves lines nobody tuned. Measured on the 15 upstream manifests of
``../shared/fixtures/upstream`` (load and dump, nothing changed, ``preserve_quotes``, wide
lines): 6 come back altered, e.g. every one of 53 lines of Argo's
``analysis-templates.yaml`` and 27 of 70 of Flagger's ``istio-abtest.yaml``. A user
reviewing ``best-manifest.yaml`` as a diff must see only the tuned lines. Values are still
parsed and rendered by a YAML library (PyYAML, the importers' reader); only the splice is ours.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sim.errors import InputError
from sim.importers.argo.fields import API_VERSION as ARGO_API
from sim.importers.argo.fields import CLUSTER_TEMPLATE, ROLLOUT, TEMPLATE
from sim.importers.argo.templates import Template, Templates, flatten_args, flatten_order, read_template
from sim.importers.flagger import API_VERSION as FLAGGER_API
from sim.importers.manifests import is_manifest, kubernetes_objects, object_metadata
from sim.inputs.files import read_text
from sim.inputs.policy import policy_files, read_policy
from sim.sweeps.spec import parse_path
from sim.yamlio import MAX_BYTES, YamlDoc, load_yaml_all

#: Policy PATHs (without ``policy.``) whose manifest field may be absent: the importer
#: fills a default (Flagger's ``-mesh-provider`` istio; a Rollout's one replica).
_DEFAULTED = {("flagger", "provider"), ("argo", "replicas")}
#: Canary ``spec`` keys the importer copies one to one into ``flagger:``.
_CANARY_SPEC = ("provider", "progressDeadlineSeconds", "skipAnalysis", "suspend", "targetRef", "service")
_CANARY_REFS = ("ingressRef", "routeRef")
#: Rollout ``spec`` keys copied into ``argo:``.
_ROLLOUT_SPEC = ("strategy", "replicas", "progressDeadlineSeconds", "progressDeadlineAbort")
#: Keys of a flattened template spec that are lists concatenated over its nested templates.
_FLATTENED_LISTS = ("metrics", "dryRun", "measurementRetention")
#: Wide enough that no rendered value is wrapped onto a second line.
_WIDTH = 1 << 30


@dataclass(frozen=True)
class WriteBack:
    """The base's manifests with the tuned values written in.

    Attributes:
        text: every document of the manifest files, in order, ``---`` between files; only
            the tuned fields differ from the files (and, when some PATHs were not written,
            a comment block at the top names them).
        changed: the PATHs written into a manifest field, in the order given (a value
            equal to the manifest's own is counted but leaves its text untouched).
        not_written: the PATHs with no manifest field to write, in the order given.
        reasons: for each PATH of ``not_written``, why, in one line.
        files: the manifest files, in the order their documents appear in ``text``.
    """

    text: str
    changed: tuple[str, ...]
    not_written: tuple[str, ...]
    reasons: Mapping[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()


class _Skip(Exception):
    """A PATH that has no manifest field: the reason, one line."""


_ABSENT = object()


@dataclass(frozen=True)
class _Object:
    """A Kubernetes object of a manifest file and where it is."""

    file: int  # index into the manifest files
    doc: int  # index of its YAML document in the file
    prefix: tuple[str | int, ...]  # where the object is in the document (``items`` of a List)
    view: YamlDoc  # the object as the importers see it

    @property
    def data(self) -> Any:
        return self.view.data

    def kind(self, api: str) -> str | None:
        return self.data["kind"] if self.data.get("apiVersion") == api else None


@dataclass(frozen=True)
class _Target:
    """A manifest field: file, document and the keys from the document's root."""

    file: int
    doc: int
    loc: tuple[str | int, ...]


# --- which files ------------------------------------------------------------------------------------


def _manifest_refs(files: Sequence[Path]) -> tuple[list[Path], str | None]:
    """The manifest files behind the base and the pdsim policy file among them (or None).

    A pdsim policy file ``manifest: x.yaml`` stands for its manifests; any other pdsim
    policy file is returned as the policy file, its manifests (templates) beside it.
    """
    out: list[Path] = []
    policy_file: str | None = None
    for f in files:
        docs = load_yaml_all(f, what="policy file")
        if any(is_manifest(d.data) for d in docs):
            out.append(f)
            continue
        data = docs[0].data
        if isinstance(data, Mapping) and set(data) == {"manifest"}:
            refs = data["manifest"] if isinstance(data["manifest"], list) else [data["manifest"]]
            out += policy_files([f.parent / r for r in refs])
        else:
            policy_file = str(f)
    return out, policy_file


# --- objects ------------------------------------------------------------------------------------------


def _prefix_of(root: Any, target: Any) -> tuple[str | int, ...] | None:
    """Where ``target`` (an object of a ``kind: List``) sits in ``root``, by identity."""
    if root is target:
        return ()
    items = root.get("items") if isinstance(root, Mapping) else None
    for i, item in enumerate(items if isinstance(items, list) else ()):
        inner = _prefix_of(item, target)
        if inner is not None:
            return ("items", i) + inner
    return None


def _objects(docs: Sequence[Sequence[YamlDoc]]) -> list[_Object]:
    out = []
    for i, file_docs in enumerate(docs):
        for j, doc in enumerate(file_docs):
            for view in kubernetes_objects([doc]):
                prefix = _prefix_of(doc.data, view.data)
                out.append(_Object(i, j, prefix if prefix is not None else (), view))
    return out


def _get(data: Any, loc: Sequence[str | int]) -> Any:
    """The value at ``loc``, or ``_ABSENT``."""
    for part in loc:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return _ABSENT
        elif not isinstance(data, Mapping) or part not in data:
            return _ABSENT
        data = data[part]
    return data


def _text(parts: Sequence[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else ("." if i else "") + p for i, p in enumerate(parts))


# --- where a PATH lives: Flagger ----------------------------------------------------------------------


def _flagger_target(
    parts: tuple[str | int, ...], objects: list[_Object], policy_file: str | None, policy: Mapping[str, Any]
) -> _Target:
    rest = parts[1:]
    canaries = [o for o in objects if o.kind(FLAGGER_API) == "Canary"]
    head = rest[0] if rest else None
    if head == "metricTemplates" and len(rest) >= 3:
        return _metric_template(rest[1], rest[2:], objects, canaries)
    if policy_file is not None or not canaries:
        raise _Skip(f"set in the pdsim policy file {policy_file}, not in a manifest")
    canary = canaries[0]
    spec = canary.data["spec"]
    key = "analysis" if spec.get("analysis") is not None else "canaryAnalysis"
    if head == "analysis":
        return _Target(canary.file, canary.doc, canary.prefix + ("spec", key) + rest[1:])
    if head in _CANARY_SPEC or head in _CANARY_REFS:
        return _Target(canary.file, canary.doc, canary.prefix + ("spec",) + rest)
    if head in ("metadata", "metricTemplates"):
        raise _Skip("derived by the importer from the Canary's metadata and templates, not a field to tune")
    raise _Skip("pdsim-only: no field of Flagger's Canary holds it")


def _metric_template(
    name: str | int, rest: tuple[str | int, ...], objects: list[_Object], canaries: list[_Object]
) -> _Target:
    """The MetricTemplate ``name`` the importer read; ``query`` and ``provider.type``/
    ``provider.address`` are copied from its spec."""
    same = [o for o in objects if o.kind(FLAGGER_API) == "MetricTemplate" and object_metadata(o.view)[0] == name]
    if not same:
        raise _Skip(f"MetricTemplate {name!r} is not defined in a manifest (the pdsim policy file holds it)")
    if len(same) > 1 and canaries:
        # The namespace the Canary's templateRef names (or the Canary's own), as the importer resolves it.
        canary_ns = object_metadata(canaries[0].view)[1]
        wanted = canary_ns
        analysis = canaries[0].data["spec"].get("analysis") or canaries[0].data["spec"].get("canaryAnalysis") or {}
        for m in analysis.get("metrics") or []:
            ref = m.get("templateRef") if isinstance(m, Mapping) else None
            if isinstance(ref, Mapping) and ref.get("name") == name:
                wanted = ref.get("namespace") or canary_ns
        same = [o for o in same if object_metadata(o.view)[1] == wanted] or same
    if len(same) > 1:
        raise _Skip(f"MetricTemplate {name!r} is defined more than once; edit the one the Canary uses by hand")
    t = same[0]
    if not rest or rest[0] not in ("query", "provider"):
        raise _Skip("not copied from the MetricTemplate by the importer")
    return _Target(t.file, t.doc, t.prefix + ("spec",) + rest)


# --- where a PATH lives: Argo ---------------------------------------------------------------------------


def _argo_target(
    parts: tuple[str | int, ...], objects: list[_Object], policy_file: str | None, policy: Mapping[str, Any]
) -> _Target:
    rest = parts[1:]
    head = rest[0] if rest else None
    rollouts = [o for o in objects if o.kind(ARGO_API) == ROLLOUT]
    if head in ("templates", "clusterTemplates") and len(rest) >= 3:
        strategy = policy["argo"].get("strategy")
        return _analysis_template(head == "clusterTemplates", str(rest[1]), rest[2:], objects, rollouts, strategy)
    if policy_file is not None or not rollouts:
        raise _Skip(f"set in the pdsim policy file {policy_file}, not in a manifest")
    if head in _ROLLOUT_SPEC:
        r = rollouts[0]
        return _Target(r.file, r.doc, r.prefix + ("spec",) + rest)
    raise _Skip("pdsim-only: no field of Argo's Rollout holds it")


def _referenced(strategy: Any) -> set[tuple[bool, str]]:
    """(clusterScope, templateName) of every template reference in a Rollout's strategy."""
    out: set[tuple[bool, str]] = set()
    if isinstance(strategy, Mapping):
        if isinstance(strategy.get("templateName"), str):
            out.add((bool(strategy.get("clusterScope", False)), strategy["templateName"]))
        for v in strategy.values():
            out |= _referenced(v)
    elif isinstance(strategy, list):
        for v in strategy:
            out |= _referenced(v)
    return out


def _analysis_template(
    cluster: bool,
    name: str,
    rest: tuple[str | int, ...],
    objects: list[_Object],
    rollouts: list[_Object],
    strategy: Any,
) -> _Target:
    kind = CLUSTER_TEMPLATE if cluster else TEMPLATE
    docs = [o for o in objects if o.kind(ARGO_API) in (TEMPLATE, CLUSTER_TEMPLATE)]
    read = [read_template(o.view) for o in docs]
    where = {id(t): o for t, o in zip(read, docs, strict=True)}
    namespace = object_metadata(rollouts[0].view)[1] if rollouts else None
    templates = Templates(read, namespace, "the manifests")
    if not any(t.name == name and t.cluster == cluster for t in read):
        raise _Skip(f"{kind} {name!r} is not defined in a manifest (the pdsim policy file holds it)")
    try:
        t = templates.lookup(name, cluster, read[0].doc, ())
        chain = flatten_order(templates.closure(t))
    except InputError as err:
        raise _Skip(f"{kind} {name!r}: {err.message}") from None
    holder, loc = t, rest
    if len(chain) > 1 and rest and isinstance(rest[0], str):
        holder, loc = _flattened(chain, t, rest)
    if holder is not t:
        # The field is the nested template's own: writing it changes every analysis that
        # reads that template, which is right only when no other analysis of the Rollout does.
        used = _referenced(strategy)
        readers = [
            x.name for x in read if x is not t and (x.cluster, x.name) in used and holder in templates.closure(x)
        ]
        if readers:
            raise _Skip(
                f"flattened from the nested {holder.kind} {holder.name!r}, which the Rollout's analyses also "
                f"read through {', '.join(readers)}; edit it by hand"
            )
    o = where[id(holder)]
    return _Target(o.file, o.doc, o.prefix + holder.loc + loc)


def _flattened(
    chain: list[Template], t: Template, rest: tuple[str | int, ...]
) -> tuple[Template, tuple[str | int, ...]]:
    """The template of a flattened chain that holds ``rest`` and the keys in its spec
    (``flattened_spec``: lists concatenated, arguments merged by ``flatten_args``)."""
    key = rest[0]
    index = rest[1] if len(rest) > 1 else None
    if key == "args" and isinstance(index, int):
        merged = list(flatten_args(chain).values())
        if index >= len(merged):
            raise _Skip(f"the flattened template has {len(merged)} argument(s), no [{index}]")
        holder, i, _ = merged[index]
        return holder, ("args", i) + rest[2:]
    if key in _FLATTENED_LISTS and isinstance(index, int):
        k = index
        for x in chain:
            items = x.raw.get(key) or []
            if k < len(items):
                return x, (key, k) + rest[2:]
            k -= len(items)
        raise _Skip(f"the flattened template has no {key}[{index}]")
    if key in _FLATTENED_LISTS or key == "args":
        raise _Skip(f"{key} is merged from the nested templates by the importer; give an item ({key}[i])")
    return t, rest


# --- editing the text ------------------------------------------------------------------------------------


def _compose_all(text: str) -> list[Node]:
    """Every document's node tree, with the position of each node in ``text``."""
    loader = yaml.SafeLoader(text)
    try:
        nodes: list[Node] = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:  # check_node(): a document follows
                nodes.append(node)
        return nodes
    finally:
        loader.dispose()


def _dump(value: Any, *, flow: bool, indent: int = 2) -> str:
    """``value`` as YAML text: flow style (one line), or block style."""
    return yaml.safe_dump(
        value, default_flow_style=flow, sort_keys=False, allow_unicode=True, width=_WIDTH, indent=min(max(2, indent), 9)
    )


def _value_text(value: Any, *, flow: bool, style: str | None = None) -> str:
    """A value to put where a node was: a scalar as its one-line YAML, keeping a quoted
    string's quoting style; a mapping or a list in flow style."""
    if isinstance(value, str) and "\n" not in value and style in ("'", '"'):
        return "'" + value.replace("'", "''") + "'" if style == "'" else json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and "\n" in value:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (Mapping, list)) or flow:
        return _dump({"k": value}, flow=True).strip()[len("{k: ") : -1]
    return _dump({"k": value}, flow=False).rstrip("\n")[len("k: ") :]


def _content_end(text: str, node: Node) -> int:
    """Where a node's own text ends (a block collection: its last item's end; a block
    scalar: its last character, before the line breaks it keeps)."""
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        return _content_end(text, node.value[-1][1])
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return _content_end(text, node.value[-1])
    start, end = node.start_mark.index, node.end_mark.index
    if isinstance(node, ScalarNode) and node.style in ("|", ">"):
        return start + len(text[start:end].rstrip())
    return end


def _after_colon(text: str, key: Node) -> int:
    """The position just after the ``:`` that follows a mapping key."""
    i = key.end_mark.index
    while text[i] in " \t":
        i += 1
    if text[i] != ":":
        raise _Skip("a mapping key pdsim cannot edit in place (a complex key); edit it by hand")
    return i + 1


def _splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _replace(text: str, node: Node, key: Node | None, value: Any, flow: bool) -> str:
    """``text`` with ``node`` (a mapping's value after ``key``, or a list item) replaced by ``value``."""
    is_scalar = not isinstance(value, (Mapping, list))
    if isinstance(node, ScalarNode) and node.start_mark.index < node.end_mark.index:
        start, end = node.start_mark.index, node.end_mark.index
        keep = text[_content_end(text, node) : end]  # a block scalar's line breaks
        new = _value_text(value, flow=flow, style=node.style if is_scalar else None)
        return _splice(text, start, end, new + keep)
    if key is None:
        start = node.start_mark.index
        return _splice(text, start, _content_end(text, node), _value_text(value, flow=True))
    colon = _after_colon(text, key)
    end = colon if isinstance(node, ScalarNode) else _content_end(text, node)
    return _splice(text, colon, end, " " + _value_text(value, flow=True))


def _insert(text: str, mapping: MappingNode, key: str, value: Any, indent_step: int) -> str:
    """``text`` with ``key: value`` added to ``mapping``."""
    if mapping.flow_style or not mapping.value:
        entry = _dump({key: value}, flow=True).strip()[1:-1]
        if mapping.value:
            at = _content_end(text, mapping.value[-1][1])
            return _splice(text, at, at, ", " + entry)
        close = mapping.end_mark.index - 1  # the mapping's "}"
        return _splice(text, close, close, entry)
    entries = mapping.value
    if not isinstance(value, Mapping):
        # A one-line value: after its closest relative (stepWeights after stepWeight), else
        # among the one-line settings, before the blocks (metrics, webhooks, steps).
        def shared(k: Node) -> int:
            return len(os.path.commonprefix([str(k.value), key]))

        kin = max(entries, key=lambda e: shared(e[0]))
        one_line = [e for e in entries if isinstance(e[1], ScalarNode) or e[1].flow_style]
        entries = [kin] if shared(kin[0]) >= 4 else one_line or entries
    at = _content_end(text, entries[-1][1])
    newline = text.find("\n", at)
    prefix = ""
    if newline < 0:
        at, prefix = len(text), "\n"
    else:
        at = newline + 1
    column = mapping.value[0][0].start_mark.column
    if isinstance(value, Mapping):
        # A new block mapping, its keys one indentation step in (as the file indents).
        inner = _dump(dict(value), flow=False, indent=indent_step).splitlines()
        block = [f"{_value_text(key, flow=False)}:"] + [" " * indent_step + line for line in inner]
    else:
        block = [f"{_value_text(key, flow=False)}: {_value_text(value, flow=False)}"]
    lines = "".join(" " * column + line + "\n" for line in block)
    return _splice(text, at, at, prefix + lines)


def _nest(keys: Sequence[str | int], value: Any) -> Any:
    for k in reversed(keys):
        if isinstance(k, int):
            raise _Skip(f"the manifest has no list at {k!r}'s parent")
        value = {k: value}
    return value


def _edit(text: str, doc: int, loc: tuple[str | int, ...], value: Any) -> str:
    """``text`` with the field at ``loc`` of document ``doc`` set to ``value`` (created,
    with any missing mappings above it, when absent)."""
    node: Node = _compose_all(text)[doc]
    key: Node | None = None
    flow = False
    column, step = 0, 2
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, MappingNode) and isinstance(part, str):
            found = next(((k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part), None)
            if node.value and not node.flow_style:
                here = node.value[0][0].start_mark.column
                if i and here > column:
                    step = here - column
                column = here
            if found is None:
                return _insert(text, node, part, _nest(loc[i + 1 :], value), step)
            flow = flow or bool(node.flow_style)
            key, node = found
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                raise _Skip(f"the manifest's list has {len(node.value)} item(s), no [{part}]")
            flow = flow or bool(node.flow_style)
            key, node = None, node.value[part]
        elif isinstance(node, ScalarNode) and isinstance(part, str) and node.tag.endswith(":null"):
            return _replace(text, node, key, _nest(loc[i:], value), flow)
        else:
            raise _Skip(f"the manifest's {_text(loc[:i]) or 'document'} is not a {type(part).__name__} container")
        if last:
            return _replace(text, node, key, value, flow)
    raise _Skip("an empty field path")


# --- putting it together --------------------------------------------------------------------------------


def _header(not_written: Sequence[str], reasons: Mapping[str, str]) -> str:
    lines = [
        "# pdsim tune: these tuned settings have no field in the manifests below;",
        "# best-policy.yaml holds them:",
    ]
    lines += [f"#   {p}: {reasons[p]}" for p in not_written]
    return "".join(" ".join(line.split("\n")) + "\n" for line in lines)


def _join(texts: Sequence[str]) -> str:
    """The files' texts as one stream: ``---`` between files, unless the next one starts
    its first document with ``---`` itself."""
    out = ""
    for i, text in enumerate(texts):
        if i:
            if not out.endswith("\n"):
                out += "\n"
            first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
            if not first.startswith("---"):
                out += "---\n"
        out += text
    return out


def write_back(paths: Sequence[str | os.PathLike[str]], values: Mapping[str, Any]) -> WriteBack:
    """Write tuned values into the base's manifests, keeping everything else as written.

    Args:
        paths: the base policy's PATHs as TUNE ``base`` gives them: manifest files,
            directories of them, or a pdsim policy file (``manifest: x.yaml``, or a
            policy plus template manifests).
        values: space PATH (``policy.flagger.analysis.stepWeight``) -> the value as the
            pdsim policy holds it (``4``, ``"30s"``, ``"result[0] >= 0.97"``, a judge mapping).

    Returns:
        The edited text and which PATHs were written and which were not (and why).

    Raises:
        ValueError: the base has no manifest to write into (a plain pdsim policy file:
            ``best-policy.yaml`` is then the whole answer), or a PATH is not a field path.
        InputError: the base cannot be read (as ``read_policy`` reports it).
    """
    base = read_policy(list(paths))  # validates the base as the search read it
    files, policy_file = _manifest_refs(policy_files(list(paths)))
    if not files:
        raise ValueError(
            f"{policy_file or 'the base'} is a pdsim policy file, not a Kubernetes manifest: there is "
            "no manifest to write the tuned values into (best-policy.yaml holds the tuned policy)"
        )
    texts = [read_text(f, what="manifest", limit=MAX_BYTES) for f in files]
    docs = [load_yaml_all(f, what="manifest") for f in files]
    objects = _objects(docs)
    controller = "flagger" if "flagger" in base.data else "argo"

    changed: list[str] = []
    not_written: list[str] = []
    reasons: dict[str, str] = {}
    for path, value in values.items():
        parts = parse_path(path)
        try:
            if not parts or parts[0] != "policy" or len(parts) < 3:
                raise _Skip("not a field of the policy")
            rest = parts[1:]
            if rest[0] != controller:
                raise _Skip(f"the base is {'a Flagger Canary' if controller == 'flagger' else 'an Argo Rollout'}")
            own = _get(base.data, rest)
            if (None if own is _ABSENT else own) == value and (own is _ABSENT or type(own) is type(value)):
                changed.append(path)  # the base's own value (a judge left out stays out): no edit
                continue
            find = _flagger_target if controller == "flagger" else _argo_target
            target = find(rest, objects, policy_file, base.data)
            inner = target.loc
            current = _get(docs[target.file][target.doc].data, inner)
            policy_value = _get(base.data, rest)
            if current is _ABSENT and policy_value is not _ABSENT and rest[:2] not in _DEFAULTED:
                raise _Skip("derived by the importer: the manifest has no such field")
            if current is not _ABSENT and current != policy_value:
                raise _Skip("derived by the importer: not a one-to-one copy of the manifest's field")
            if not (current == value and type(current) is type(value)):
                texts[target.file] = _edit(texts[target.file], target.doc, inner, value)
            changed.append(path)
        except _Skip as why:
            not_written.append(path)
            reasons[path] = str(why)
    text = _join(texts)
    if not_written:
        text = _header(not_written, reasons) + text
    return WriteBack(text, tuple(changed), tuple(not_written), reasons, tuple(str(f) for f in files))


__all__ = ["WriteBack", "write_back"]
