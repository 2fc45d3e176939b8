"""Safe YAML loading that remembers the line of every value.

Only plain data comes out, and every failure is an InputError with a line. We
compose the node graph with ``yaml.SafeLoader`` but build the data ourselves
(not ``construct_document``) so we can record lines, reject duplicate keys,
measure alias expansion *before* expanding, and whitelist tags.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sim.errors import InputError, field_path, key_positions
from sim.limits import MAX_YAML_BYTES

MAX_BYTES = MAX_YAML_BYTES
# How many nodes aliases may add on top of the nodes actually written in the
# file; beyond that we assume an alias bomb ("billion laughs"). Counting only
# the excess means a big alias-free file (bounded by MAX_BYTES) is never
# mistaken for a bomb.
MAX_NODES = 100_000
# Real configs nest a dozen levels at most; the cap keeps our recursion safe.
MAX_DEPTH = 200

_P = "tag:yaml.org,2002:"
_MAP, _SEQ, _MERGE, _VALUE = _P + "map", _P + "seq", _P + "merge", _P + "value"
_STR = _P + "str"
# Scalar tags whose values are plain JSON-able data (timestamps become strings).
_SCALAR_TAGS = {_STR, _P + "int", _P + "float", _P + "bool", _P + "null", _P + "timestamp", _VALUE, _MERGE}
_TAGS = {ScalarNode: _SCALAR_TAGS, SequenceNode: {_SEQ}, MappingNode: {_MAP}}
_KIND = {ScalarNode: "scalar", SequenceNode: "list", MappingNode: "mapping"}


@dataclass
class YamlDoc:
    """One loaded YAML document plus the source line of each value.

    Attributes:
        data: Plain Python data: dict / list / str / int / float / bool / None.
        file: Path as given, for messages.
        lines: Location tuple (mapping keys and list indexes from the root) to
            1-based line. For mapping values this is the line of the key.
    """

    data: Any
    file: str
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int:
        """Line of the deepest known prefix of loc (falls back to 1)."""
        loc = tuple(loc)
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return 1

    def field_path(self, loc: Sequence[Any]) -> str:
        """``loc`` as a FIELD.PATH, a mapping key that is not a string (``0:``) told apart
        from a list index by the data (``sim.errors.field_path``)."""
        return field_path(loc, key_positions(self.data, loc))


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_P) :] if tag.startswith(_P) else tag


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class _Loader(yaml.SafeLoader):
    """SafeLoader that also remembers where list items were written as aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # (id(parent), edge) -> line of the `*alias`; the composer hands back
        # the anchored node itself, whose mark is the anchor's line. The edge is
        # the list index, or id(key node) for a mapping value.
        self.alias_lines: dict[tuple[int, int], int] = {}
        self.written = 0  # nodes composed from text, i.e. not via an alias

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if not self.check_event(AliasEvent):
            self.written += 1
        elif index is not None:  # None: a mapping key or the root; not tracked
            edge = index if type(index) is int else id(index)
            self.alias_lines[(id(parent), edge)] = self.peek_event().start_mark.line + 1
        return super().compose_node(parent, index)


def _children(node: Node) -> list[tuple[Any, Node]]:
    if isinstance(node, SequenceNode):
        return list(enumerate(node.value))
    if isinstance(node, MappingNode):
        return [e for k, v in node.value for e in ((None, k), (id(k), v))]
    return []


def _check_graph(root: Node, file: str, loader: _Loader) -> None:
    """Reject cycles, alias bombs and absurd nesting before building any data.

    Iterative post-order DFS with sizes memoised by node id, so a shared node
    is measured once but counted at every reference: linear in the composed
    graph, however large the expansion would be.
    """
    alias_lines = loader.alias_lines
    max_size = MAX_NODES + loader.written
    sizes: dict[int, tuple[int, int]] = {}  # id -> (expanded size, depth)
    active = {id(root)}
    stack = [(root, iter(_children(root)))]
    while stack:
        node, edges = stack[-1]
        for key, child in edges:
            if id(child) in sizes:
                continue
            if id(child) in active:
                line = alias_lines.get((id(node), key), _line(child))
                raise InputError(file, line, None, "recursive alias: a node contains itself")
            active.add(id(child))
            stack.append((child, iter(_children(child))))
            break
        else:
            stack.pop()
            active.discard(id(node))
            kids = [sizes[id(c)] for _, c in _children(node)]
            size = 1 + sum(s for s, _ in kids)
            depth = 1 + max((d for _, d in kids), default=0)
            if size > max_size:
                raise InputError(
                    file, _line(node), None, "too many nodes after expanding aliases (possible alias bomb)"
                )
            if depth > MAX_DEPTH:
                raise InputError(file, _line(node), None, f"nested too deeply (more than {MAX_DEPTH} levels)")
            sizes[id(node)] = (size, depth)


class _Builder:
    """Turns a checked node graph into plain data, recording lines as it goes."""

    def __init__(self, loader: _Loader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.lines: dict[tuple, int] = {}
        # Locations of the mappings built so far (including those still being built): a
        # message's path tells their keys from list indexes by them.
        self.mappings: set[tuple] = set()
        self._pairs_memo: dict[int, list[tuple[Any, Node, Node]]] = {}

    def build(self, root: Node) -> YamlDoc:
        self.lines[()] = _line(root)
        return YamlDoc(self.node(root, ()), self.file, self.lines)

    def fail(self, node: Node, path: tuple, message: str) -> InputError:
        keys = {i for i in range(len(path)) if path[:i] in self.mappings}
        return InputError(self.file, _line(node), field_path(path, keys) or None, message)

    def check_tag(self, node: Node, path: tuple) -> None:
        tag = node.tag
        if tag not in _TAGS[type(node)]:
            if tag in _SCALAR_TAGS | {_SEQ, _MAP}:
                msg = f"YAML tag {_tag_name(tag)} cannot be used on a {_KIND[type(node)]}"
            else:
                msg = f"unsupported YAML tag {_tag_name(tag)}"
            raise self.fail(node, path, msg)

    def node(self, node: Node, path: tuple) -> Any:
        self.check_tag(node, path)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            out = []
            for i, child in enumerate(node.value):
                sub = path + (i,)
                self.lines[sub] = self.loader.alias_lines.get((id(node), i), _line(child))
                out.append(self.node(child, sub))
            return out
        result = {}
        self.mappings.add(path)
        # Neither a scalar nor a sequence: the one other kind of node.
        for key, key_node, value_node in self.pairs(cast(MappingNode, node), path):
            sub = path + (key,)
            self.lines[sub] = _line(key_node)
            result[key] = self.node(value_node, sub)
        return result

    def scalar(self, node: ScalarNode, path: tuple) -> Any:
        if node.tag in (_STR, _VALUE, _MERGE):
            return node.value
        try:
            value = self.loader.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 - e.g. `!!int abc` raises a bare ValueError
            raise self.fail(node, path, f"not a valid {_tag_name(node.tag)} value") from None
        if isinstance(value, (_dt.date, _dt.datetime)):
            # Keep data JSON-able; consumers parse times themselves if needed.
            return value.isoformat()
        return value

    def pairs(self, node: MappingNode, path: tuple) -> list[tuple[Any, Node, Node]]:
        """Effective (key, key node, value node) entries, merge keys applied.

        Explicit keys override merged ones; among merged mappings the first
        one listed wins (YAML merge-key spec). Duplicate checks only look at
        explicit keys because overriding merged keys is the point of `<<`.
        """
        if id(node) in self._pairs_memo:
            return self._pairs_memo[id(node)]
        merged: dict[Any, tuple[Node, Node]] = {}
        explicit: dict[Any, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                self.check_tag(value_node, path)
                seq = isinstance(value_node, SequenceNode)
                for source in value_node.value if seq else [value_node]:
                    if not isinstance(source, MappingNode):
                        raise self.fail(source, path, "merge key '<<' needs a mapping or a list of mappings")
                    self.check_tag(source, path)
                    for key, kn, vn in self.pairs(source, path):
                        merged.setdefault(key, (kn, vn))
                continue
            if not isinstance(key_node, ScalarNode):
                kind = _KIND[type(key_node)]
                raise self.fail(key_node, path, f"mapping key must be a plain value, not a {kind}")
            key = self.node(key_node, path)
            if key in explicit:
                raise self.fail(key_node, path + (key,), f"duplicate key {key!r}")
            explicit[key] = (key_node, value_node)
        merged.update(explicit)
        result = [(k, kn, vn) for k, (kn, vn) in merged.items()]
        self._pairs_memo[id(node)] = result
        return result


def _syntax_error(err: yaml.MarkedYAMLError, file: str) -> InputError:
    mark = err.problem_mark or err.context_mark
    message = err.problem or err.context or "invalid YAML"
    if err.problem and err.context:
        # PyYAML splits messages like "while scanning a quoted scalar" (context,
        # often on an earlier line) + "found unexpected end of stream" (problem).
        where = f" at line {err.context_mark.line + 1}" if err.context_mark else ""
        message = f"{err.context}{where}: {err.problem}"
    return InputError(file, mark.line + 1 if mark else 1, None, f"YAML syntax error: {message}")


def _check_text(text: str, file: str, what: str) -> str:
    if len(text) > MAX_BYTES:
        raise InputError(file, 1, None, f"{what} is too large (limit is 5 MiB)")
    text = text.removeprefix("\ufeff")
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        detail = "binary or not UTF-8" if bad.group() == "\0" else f"control character U+{ord(bad.group()):04X}"
        raise InputError(file, line, None, f"not a text {what} ({detail})")
    return text


def _load(text: str, file: str, what: str, single: bool) -> list[YamlDoc]:
    text = _check_text(text, file, what)
    loader = _Loader(text)
    try:
        nodes: list[Node] = []
        try:
            while loader.check_node():
                nodes.append(cast(Node, loader.get_node()))  # check_node(): one follows
                if single and loader.check_node():
                    line = loader.peek_event().start_mark.line + 1
                    raise InputError(
                        file, line, None, f"expected one YAML document in this {what} but found another one ('---')"
                    )
        except yaml.MarkedYAMLError as err:
            raise _syntax_error(err, file) from None
        except yaml.YAMLError as err:
            raise InputError(file, 1, None, f"YAML error: {err}") from None
        except RecursionError:
            raise InputError(file, 1, None, "nested too deeply") from None
        if not nodes:
            raise InputError(file, 1, None, f"{what} is empty")
        docs = []
        for node in nodes:
            _check_graph(node, file, loader)
            docs.append(_Builder(loader, file).build(node))
        return docs
    finally:
        loader.dispose()


def _read(path: str | os.PathLike, what: str) -> tuple[str, str]:
    file = os.fsdecode(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)  # never slurp a huge file just to refuse it
    except OSError as err:
        raise InputError(file, 1, None, f"cannot read {what}: {err.strerror or err}") from None
    except ValueError as err:  # e.g. an embedded NUL in the path
        raise InputError(file, 1, None, f"cannot read {what}: {err}") from None
    if len(raw) > MAX_BYTES:
        raise InputError(file, 1, None, f"{what} is too large (limit is 5 MiB)")
    nul = raw.find(b"\0")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        nul = err.start if nul < 0 else min(nul, err.start)
    if nul >= 0:
        raise InputError(file, raw.count(b"\n", 0, nul) + 1, None, f"not a text {what} (binary or not UTF-8)")
    return file, text


def load_yaml(path: str | os.PathLike, *, what: str = "file") -> YamlDoc:
    """Load a file that must hold exactly one YAML document.

    Args:
        path: File to read.
        what: Noun used in messages, e.g. ``"scenario file"``.

    Returns:
        The document; ``data`` may be any YAML value, callers check its type.

    Raises:
        InputError: For any problem, with the most precise line known.
    """
    file, text = _read(path, what)
    return _load(text, file, what, single=True)[0]


def load_yaml_all(path: str | os.PathLike, *, what: str = "file") -> list[YamlDoc]:
    """Like load_yaml, for multi-document (``---``) files; never returns []."""
    file, text = _read(path, what)
    return _load(text, file, what, single=False)


def loads_yaml(text: str, file: str = "<string>") -> YamlDoc:
    """Like load_yaml, from a string (tests, stdin); file names it in messages."""
    return _load(text, file, "file", single=True)[0]
