"""Pydantic validation errors as one ``FILE:LINE: FIELD: message (got VALUE)`` line.

Every reader of user files (scenarios, policy files, manifests, sweeps) validates a
loaded ``YamlDoc`` with pydantic models and reports the first problem at its line in the
file; this module is that translation, shared so the messages read the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sim.errors import InputError, field_path
from sim.yamlio import YamlDoc


def _data_loc(data: Any, loc: Sequence[Any], missing: bool) -> tuple[Any, ...]:
    """Keep only the parts of a pydantic error location that exist in the data.

    Pydantic adds union tags (``error_rate``) and validator names to locations; the
    user's file has only keys and indexes. A missing key is named at the end.
    """
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif missing and i == len(loc) - 1:
            out.append(part)
            break
        else:
            continue
        out.append(part)
    return tuple(out)


def validation_to_input_error(err: ValidationError, doc: YamlDoc, prefix: Sequence[Any] = ()) -> InputError:
    """Turn the first pydantic error into one ``FILE:LINE: FIELD: message (got VALUE)``.

    Args:
        err: what pydantic raised when validating (part of) ``doc.data``.
        doc: the document the data came from (for file and lines).
        prefix: where the validated data sits in ``doc`` (``("spec",)`` for a manifest's
            spec); the error's location is read below it.
    """
    errors = err.errors(include_url=False)
    # A typo'd required key yields "missing" for the right name and "unknown key" for the
    # typo; the typo, at its own line, is what the user needs to see.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(prefix) + tuple(first["loc"])
    data_loc = _data_loc(doc.data, loc, first["type"] == "missing")
    msg = first["msg"]
    for noise in ("Value error, ", "Assertion failed, "):
        msg = msg.replace(noise, "")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "finite_number":  # NaN or an infinity (models refuse them, sim.models)
        msg = "must be a finite number"
    kwargs: dict[str, Any] = {}
    if first["type"] != "missing" and "input" in first and not isinstance(first["input"], (dict, list)):
        kwargs["got"] = first["input"]
    return InputError(doc.file, doc.line_of(data_loc), field_path(data_loc) or "(top level)", msg, **kwargs)


__all__ = ["validation_to_input_error"]


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


def validate_document(doc: YamlDoc, model: type[_ModelT], shape: str) -> _ModelT:
    """``model`` validated from the document's top-level mapping, errors at their line.

    Raises:
        InputError: the top level is not a mapping (``require_mapping``), or the first
            problem pydantic finds, at its line in the file.
    """
    data = require_mapping(doc, shape)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise validation_to_input_error(err, doc) from None
