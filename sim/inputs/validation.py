"""Pydantic validation errors as one ``FILE:LINE: FIELD: message (got VALUE)`` line.

Every reader of user files (scenarios, policy files, manifests, sweeps) validates a
loaded ``YamlDoc`` with pydantic models and reports the first problem at its line in the
file; this module is that translation, shared so the messages read the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sim.errors import InputError
from sim.yamlio import YamlDoc


def _data_key(node: dict[Any, Any], part: Any, bad_key: bool) -> tuple[bool, Any]:
    """The key of ``node`` that a pydantic location part stands for, as ``(found, key)``.

    Pydantic writes a mapping key that is not a string as it can: ``0`` stays 0, but
    ``true`` becomes 1 and ``1.5`` or ``null`` become the strings ``"1.5"``, ``"None"``.
    The key itself (as ``YamlDoc.lines`` holds it) gives the line and an honest path.

    Args:
        node: the mapping the part indexes.
        part: the location part.
        bad_key: the error is about a key that is not a string: prefer such a key.
    """
    exact = [k for k in node if k == part and type(k) is type(part)]
    loose = [k for k in node if not isinstance(k, str) and (k == part or str(k) == str(part))]
    for key in (loose + exact) if bad_key else (exact + loose):
        return True, key
    return False, None


def _data_loc(data: Any, loc: Sequence[Any], missing: bool, bad_key: bool = False) -> tuple[Any, ...]:
    """Keep only the parts of a pydantic error location that exist in the data.

    Pydantic adds union tags (``error_rate``) and validator names to locations; the
    user's file has only keys and indexes. A missing key is named at the end. Mapping
    keys come back as the data has them (``_data_key``).
    """
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict):
            found, key = _data_key(node, part, bad_key and last)
            if found:
                node = node[key]
                out.append(key)
                continue
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            out.append(part)
            continue
        if missing and last:
            out.append(part)
    return tuple(out)


def validation_to_input_error(
    err: ValidationError, doc: YamlDoc, prefix: Sequence[Any] = (), hint: str | None = None
) -> InputError:
    """Turn the first pydantic error into one ``FILE:LINE: FIELD: message (got VALUE)``.

    Args:
        err: what pydantic raised when validating (part of) ``doc.data``.
        doc: the document the data came from (for file and lines).
        prefix: where the validated data sits in ``doc`` (``("spec",)`` for a manifest's
            spec); the error's location is read below it.
        hint: said after the message, e.g. that the file is of another kind
            (``misplaced_hint``).
    """
    errors = err.errors(include_url=False)
    # A typo'd required key yields "missing" for the right name and "unknown key" for the
    # typo; the typo, at its own line, is what the user needs to see.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(prefix) + tuple(first["loc"])
    data_loc = _data_loc(doc.data, loc, first["type"] == "missing", first["type"] == "invalid_key")
    msg = first["msg"]
    for noise in ("Value error, ", "Assertion failed, "):
        msg = msg.replace(noise, "")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "finite_number":  # NaN or an infinity (models refuse them, sim.models)
        msg = "must be a finite number"
    elif first["type"] == "invalid_key":
        # YAML reads `0:`, `1.5:`, `yes:` or `null:` as a number, a boolean or null.
        msg = "a key must be a string; quote it"
    kwargs: dict[str, Any] = {}
    if hint:
        # The file is of another kind: the hint, not the value of one of its keys, helps.
        msg = f"{msg}; {hint}"
    elif first["type"] != "missing" and "input" in first and not isinstance(first["input"], (dict, list)):
        kwargs["got"] = first["input"]
    return InputError(doc.file, doc.line_of(data_loc), doc.field_path(data_loc) or "(top level)", msg, **kwargs)


_ModelT = TypeVar("_ModelT", bound=BaseModel)


def require_mapping(doc: YamlDoc, shape: str) -> dict[str, Any]:
    """The document's top level, which must be a mapping.

    Args:
        doc: the loaded file.
        shape: what the message says the file must be, e.g. ``a scenario file must be a
            mapping of keys (name, traffic, ...)``.

    Raises:
        InputError: at line 1, naming the type found instead.
    """
    if not isinstance(doc.data, dict):
        raise InputError(doc.file, 1, None, shape, got=type(doc.data).__name__)
    return doc.data


def validate_document(doc: YamlDoc, model: type[_ModelT], shape: str, expected: str | None = None) -> _ModelT:
    """``model`` validated from the document's top-level mapping, errors at their line.

    Args:
        doc: the loaded file.
        model: what its top level must be.
        shape: the message when the top level is not a mapping (``require_mapping``).
        expected: the kind of file ``model`` reads (a ``KINDS`` key): a file of another
            kind gets ``misplaced_hint`` after its first error.

    Raises:
        InputError: the top level is not a mapping (``require_mapping``), or the first
            problem pydantic finds, at its line in the file.
    """
    data = require_mapping(doc, shape)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        hint = misplaced_hint(data, expected) if expected is not None else None
        raise validation_to_input_error(err, doc, hint=hint) from None


# --- files given in the wrong place ------------------------------------------------------------

#: The kinds of file pdsim reads, as messages name them.
KINDS = {
    "scenario": "a scenario file",
    "policy": "a pdsim policy file",
    "manifest": "a Kubernetes manifest",
    "sweep": "a sweep file",
    "gates": "a gates file",
    "tune": "a TUNE file",
}
#: What to do with a file of each kind.
_USE = {
    "scenario": "give it as SCENARIO",
    "policy": "give it as a policy (--policy)",
    "manifest": "give it as a policy (--policy)",
    "sweep": "run it with pdsim sweep",
    "gates": "run it with pdsim check",
    "tune": "run it with pdsim tune",
}
#: What a place that expects a kind of file takes.
_TAKES = {
    "scenario": "a scenario file (name:, traffic:, ...)",
    "policy": "a policy file (flagger:, argo:, experiment: or manifest:) or a Kubernetes manifest",
}
#: Top-level keys that only one kind of file has (docs/architecture.md section 7; the
#: sweep and gates models).
_SCENARIO_ONLY = frozenset({"traffic", "baseline", "release", "telemetry", "horizon", "after_promotion", "webhooks"})
_SWEEP_ONLY = frozenset({"grid", "portfolio", "policies", "cases", "chunk_size", "scenario"})
_GATES_ONLY = frozenset({"scenarios", "confidence", "inconclusive"})
#: A TUNE file also has ``portfolio`` and ``confidence``: it is told apart first.
_TUNE_ONLY = frozenset({"base", "space", "objectives", "constraints", "budget", "racing"})
_POLICY_KEYS = frozenset({"flagger", "argo", "experiment", "manifest"})


def looks_like(data: Any) -> str | None:
    """The kind of file (a ``KINDS`` key) a YAML document's top-level keys say it is.

    A Kubernetes object has ``apiVersion`` or ``kind``; a scenario, a TUNE, a sweep or a
    gates file has keys no other kind has; a policy file has only ``flagger``, ``argo``,
    ``experiment`` or ``manifest``; a mapping with just a ``name`` is a scenario missing its traffic.

    Returns:
        The kind, or None when the document is not a mapping or says nothing.
    """
    if not isinstance(data, Mapping):
        return None
    keys = set(data)
    if "apiVersion" in keys or "kind" in keys:
        return "manifest"
    for kind, only in (
        ("scenario", _SCENARIO_ONLY),
        ("tune", _TUNE_ONLY),
        ("sweep", _SWEEP_ONLY),
        ("gates", _GATES_ONLY),
    ):
        if keys & only:
            return kind
    if keys and keys <= _POLICY_KEYS:
        return "policy"
    return "scenario" if "name" in keys else None


def misplaced_hint(data: Any, expected: str) -> str | None:
    """A hint for a file of another kind than the one ``expected`` where it was given, e.g.
    ``this looks like a scenario file: give it as SCENARIO, or pass a policy file
    (flagger:, argo:, experiment: or manifest:) or a Kubernetes manifest here``.

    Args:
        data: the file's (first) document.
        expected: ``"scenario"`` or ``"policy"`` (a manifest is a policy too).

    Returns:
        The hint, or None when the file looks like what is expected, or like nothing.
    """
    found = looks_like(data)
    if found is None or found == expected or (expected == "policy" and found == "manifest"):
        return None
    return f"this looks like {KINDS[found]}: {_USE[found]}, or pass {_TAKES[expected]} here"


__all__ = [
    "KINDS",
    "looks_like",
    "misplaced_hint",
    "require_mapping",
    "validate_document",
    "validation_to_input_error",
]
