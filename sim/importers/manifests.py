"""What every manifest importer shares: the Kubernetes objects of YAML documents, errors
and warnings at their line in the manifest, the import result and the policy file it
becomes.

The importers (``sim.importers.flagger``, ``sim.importers.argo``) differ in the objects
they read; they report alike: an error is an ``InputError`` at ``FILE:LINE: FIELD``, a
field that is not modelled is one warning line ``FILE:LINE: FIELD: not modelled: why``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import yaml

from sim.errors import InputError, one_line
from sim.inputs.validation import looks_like
from sim.policies.argo.spec import ArgoPolicySpec
from sim.policies.flagger.spec import FlaggerPolicySpec
from sim.yamlio import YamlDoc

#: The validated policy an importer yields: ``FlaggerPolicySpec`` or ``ArgoPolicySpec``.
_SpecT = TypeVar("_SpecT", FlaggerPolicySpec, ArgoPolicySpec)


@dataclass
class ImportResult(Generic[_SpecT]):
    """What a manifest import yields (Flagger's and Argo's importers alike).

    Attributes:
        policy: the pdsim policy mapping, ``{"flagger": {...}}`` or ``{"argo": {...}}``
            (the ``policy:`` block of a scenario; plain YAML-able data).
        spec: the validated ``flagger:`` or ``argo:`` policy.
        name: the Canary's or Rollout's ``metadata.name``.
        warnings: one line each, ``FILE:LINE: FIELD: not modelled: why``.
        sources: the files the objects came from, in order.
    """

    policy: dict[str, Any]
    spec: _SpecT
    name: str
    warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def is_manifest(data: Any) -> bool:
    """Whether a YAML document is a Kubernetes object (has ``apiVersion`` or ``kind``)."""
    return looks_like(data) == "manifest"


# --- errors and warnings at their line ------------------------------------------------------


def error_at(doc: YamlDoc, loc: Sequence[Any], message: str, **got: Any) -> InputError:
    """An ``InputError`` at the line of ``loc`` in ``doc``.

    Args:
        doc: the document the field was read from.
        loc: the field's keys and indexes in ``doc`` (``()``: the document itself).
        message: what is wrong.
        **got: ``got=VALUE`` to show the offending value.
    """
    return InputError(doc.file, doc.line_of(loc), doc.field_path(loc) or None, message, **got)


def warning_at(doc: YamlDoc, loc: Sequence[Any], why: str, verdict: str = "not modelled") -> str:
    """One warning line, ``FILE:LINE: FIELD: not modelled: why`` (or another verdict)."""
    return one_line(f"{doc.file}:{doc.line_of(loc)}: {doc.field_path(loc)}: {verdict}: {why}")


def location_of(doc: YamlDoc) -> str:
    """``FILE:LINE`` where an object starts, for messages that point at a second object."""
    return f"{doc.file}:{doc.line_of(())}"


# --- Kubernetes objects -------------------------------------------------------------------------


def _view(doc: YamlDoc, prefix: tuple[Any, ...], data: Any) -> YamlDoc:
    """The part of ``doc`` at ``prefix`` as a document of its own (same file and lines)."""
    n = len(prefix)
    lines = {loc[n:]: line for loc, line in doc.lines.items() if loc[:n] == prefix}
    return YamlDoc(data, doc.file, lines)


def kubernetes_objects(docs: Iterable[YamlDoc]) -> list[YamlDoc]:
    """The Kubernetes objects of the documents; ``kind: List`` items count one by one.

    Raises:
        InputError: for a document that is not a Kubernetes object, or an object
            without a string ``apiVersion`` and ``kind``.
    """
    out = []
    for doc in docs:
        data = doc.data
        if data is None:
            continue  # an empty document, e.g. a trailing '---'
        if not is_manifest(data):
            raise error_at(
                doc,
                (),
                "not a Kubernetes object (no apiVersion and kind) among manifests; "
                "a pdsim policy file cannot share a file with manifests",
            )
        for key in ("apiVersion", "kind"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise error_at(
                    doc,
                    (key,) if key in data else (),
                    f"a Kubernetes object needs a string {key}",
                    **({"got": data[key]} if key in data else {}),
                )
        items = data.get("items")
        if data["kind"].endswith("List") and isinstance(items, list):
            for i, item in enumerate(items):
                out.extend(kubernetes_objects([_view(doc, ("items", i), item)]))
            continue
        out.append(doc)
    return out


def object_metadata(doc: YamlDoc) -> tuple[str | None, str | None]:
    """An object's ``metadata.name`` and ``metadata.namespace`` (None when not given).

    Raises:
        InputError: for a ``metadata`` that is not a mapping, or a name or namespace
            that is not a string.
    """
    meta = doc.data.get("metadata")
    if meta is None:
        return None, None
    if not isinstance(meta, Mapping):
        raise error_at(doc, ("metadata",), "must be a mapping", got=meta)
    name, ns = meta.get("name"), meta.get("namespace")
    if name is not None and not isinstance(name, str):
        raise error_at(doc, ("metadata", "name"), "must be a string", got=name)
    if ns is not None and not isinstance(ns, str):
        raise error_at(doc, ("metadata", "namespace"), "must be a string", got=ns)
    return name, ns or None


# --- writing the policy file --------------------------------------------------------------------


def source_files(docs: Iterable[YamlDoc]) -> list[str]:
    """The files the documents came from, each once, in order (``ImportResult.sources``)."""
    return list(dict.fromkeys(d.file for d in docs))


def files_text(sources: Sequence[str]) -> str:
    """The source files for a message: ``a.yaml, b.yaml``, or ``(no files)``."""
    return ", ".join(sources) or "(no files)"


def the_object(
    objects: Sequence[YamlDoc], sources: Sequence[str], controller: str, kind: str, api_version: str
) -> YamlDoc:
    """The one ``kind`` object an importer simulates, among ``objects`` of that kind.

    Args:
        objects: the ``kind`` objects found in the manifests.
        sources: the files they were read from (``source_files``).
        controller: the controller's name for messages (``Flagger``, ``Argo``).
        kind: the object's kind (``Canary``, ``Rollout``).
        api_version: its ``apiVersion``.

    Raises:
        InputError: none was found (at the first file), or a second one (at its line).
    """
    files = files_text(sources)
    if not objects:
        raise InputError(
            sources[0] if sources else files,
            1,
            None,
            f"no {controller} {kind} (apiVersion: {api_version}, kind: {kind}) in {files}",
        )
    if len(objects) > 1:
        first, second = objects[0], objects[1]
        raise error_at(
            second,
            (),
            f"a second {kind} ({object_metadata(second)[0]}); pdsim simulates one {kind} at a "
            f"time (the first one, {object_metadata(first)[0]}, is at {location_of(first)})",
        )
    return objects[0]


class _PolicyDumper(yaml.SafeDumper):
    """Block-style YAML; multi-line strings (PromQL queries) as literal ``|`` blocks."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_PolicyDumper.add_representer(str, _str_presenter)


def policy_file_text(result: ImportResult[Any], controller: str, kind: str) -> str:
    """The pdsim policy file of an import: a header comment naming the sources (and what
    is not modelled), then the policy mapping (``flagger:`` or ``argo:``) as one YAML
    document.

    Args:
        result: the import.
        controller: the controller's name in the header (``Flagger``, ``Argo Rollouts``);
            its first word, lower case, is the ``pdsim import`` subcommand.
        kind: the kind of the imported object (``Canary``, ``Rollout``).
    """
    lines = [
        f"# pdsim policy imported from {controller} manifests (pdsim import {controller.split()[0].lower()}).",
        f"# {kind}: {result.name}",
        "# Sources:",
    ]
    lines += [f"#   {s}" for s in result.sources]
    if result.warnings:
        lines.append("# Not modelled by pdsim (the real controller may decide differently):")
        lines += [f"#   {w}" for w in result.warnings]
    body = yaml.dump(
        result.policy,
        Dumper=_PolicyDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 16,
    )
    return "".join(one_line(line) + "\n" for line in lines) + body


__all__ = [
    "files_text",
    "source_files",
    "the_object",
    "ImportResult",
    "error_at",
    "is_manifest",
    "kubernetes_objects",
    "location_of",
    "object_metadata",
    "policy_file_text",
    "warning_at",
]
