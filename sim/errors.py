"""User-facing error type shared by every input reader of the simulator.

Messages follow the compiler convention ``FILE:LINE: FIELD.PATH: what is wrong
(got VALUE)`` so editors and CI log scrapers can jump straight to the culprit.
"""

from __future__ import annotations

import re
from collections.abc import Container, Sequence

# Everything str.splitlines() treats as a line break; any of them would split a
# message that must stay on one line.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_GOT_MAX = 60


class _NotGiven:
    """Sentinel type: distinguishes "no got value" from ``got=None``."""

    def __repr__(self) -> str:
        return "<not given>"

    def __reduce__(self) -> str:
        # Keep the singleton identity across pickling.
        return "NOT_GIVEN"


NOT_GIVEN = _NotGiven()


def one_line(text: str) -> str:
    """``text`` on one line: every line break ``str.splitlines()`` knows becomes a space."""
    return _LINE_BREAKS.sub(" ", text)


def _render_got(got: object) -> str:
    """Compact, single-line rendering of an offending value."""
    if isinstance(got, str):
        text = got if got else "''"
    else:
        text = repr(got)
    text = one_line(text)
    if len(text) > _GOT_MAX:
        text = text[: _GOT_MAX - 3] + "..."
    return text


def _key_text(key: object) -> str:
    """A mapping key as the user wrote it in YAML: ``0``, ``1.5``, ``true``, ``null``."""
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def field_path(loc: Sequence[object], mapping_keys: Container[int] = ()) -> str:
    """Render a location tuple as a FIELD.PATH.

    A list index reads ``[2]``, a mapping key ``.key``. A location alone cannot tell the
    mapping key ``0`` (YAML ``0: ...``) from the list index 0: ``mapping_keys`` names the
    positions of ``loc`` that are mapping keys (``key_positions`` finds them in the data;
    ``YamlDoc.field_path`` does both). Without it an int reads as a list index, any other
    part as a key.

    Args:
        loc: Mapping keys and list indexes from the document root, e.g. a
            ``YamlDoc.lines`` key or a pydantic error ``loc``.
        mapping_keys: Positions in ``loc`` of mapping keys that are not strings.

    Returns:
        ``"policy.steps[2].weight"`` for ``("policy", "steps", 2, "weight")``;
        ``"traffic.0"`` for ``("traffic", 0)`` with ``mapping_keys={1}``; ``""`` for the root.
    """
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int) and not isinstance(part, bool) and i not in mapping_keys:
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (part if isinstance(part, str) else _key_text(part))
    return out


def key_positions(data: object, loc: Sequence[object]) -> frozenset[int]:
    """The positions of ``loc`` that index a mapping (rather than a list) in ``data``.

    Walks ``data`` (plain dicts and lists, e.g. ``YamlDoc.data``) along ``loc`` as far as
    it goes; for ``field_path``'s ``mapping_keys``.
    """
    out = set()
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict):
            out.add(i)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    return frozenset(out)


class InputError(Exception):
    """Bad user input, rendered as exactly one line.

    ``str(err)`` is ``FILE:LINE: FIELD.PATH: message (got VALUE)``. The field
    part is left out when ``field`` is empty and the ``(got ...)`` suffix when
    ``got`` was not passed. A missing line renders as ``1`` so the output always
    parses as ``FILE:LINE:``.

    Attributes:
        file: Path of the offending file, as given by the caller.
        line: 1-based line number, or None when unknown.
        field: Dotted field path, or None.
        message: What is wrong.
        got: The offending value, or ``NOT_GIVEN``.
    """

    def __init__(
        self,
        file: str,
        line: int | None,
        field: str | None,
        message: str,
        got: object = NOT_GIVEN,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        self.got = got
        super().__init__(self._render())

    def _render(self) -> str:
        line = 1 if self.line is None else self.line
        text = f"{self.file}:{line}: "
        if self.field:
            text += f"{self.field}: "
        text += str(self.message)
        if self.got is not NOT_GIVEN:
            text += f" (got {_render_got(self.got)})"
        return one_line(text)

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        # Exceptions cross process boundaries (joblib workers) by pickling; the
        # default reduce would call __init__ with only the rendered string.
        args: tuple[object, ...] = (self.file, self.line, self.field, self.message)
        if self.got is not NOT_GIVEN:
            args += (self.got,)
        return (type(self), args)
