"""Safe YAML loading that remembers the line of every value.

Only plain data comes out, and every failure is an InputError with a line. We
build the data ourselves from the node graph (not ``construct_document``) so we
can record lines, reject duplicate keys, measure alias expansion *before*
expanding, and whitelist tags.

Where the node graph comes from (``docs/architecture.md`` has no contract on it; the
data and lines are the same every way, ``tests/test_yamlio.py`` runs both parsers):

* With libyaml (``yaml.__with_libyaml__``, true of PyPI's wheels), its C parser and
  C composer build the graph. That is what makes a legal 5 MiB file load in seconds
  instead of minutes (``benchmarks/bench_yaml.py``). libyaml's composer does not say
  where an alias was used, so when the graph is not a plain tree (a node reached
  twice, i.e. an alias, or nesting past ``MAX_DEPTH``) the text is composed again by
  PyYAML's composer over libyaml's events, with a hook that records alias lines, and
  checked for cycles and alias bombs. Most files have no alias.
* Without libyaml, PyYAML's pure-Python parser and the same hooked composer.

libyaml words syntax errors differently from PyYAML; a libyaml error is re-parsed
with PyYAML up to the offending line, when that is short, so messages read the same
on every installation.
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from sim.errors import InputError, field_path, key_positions
from sim.inputs.files import read_text, too_large_error
from sim.limits import MAX_YAML_BYTES

MAX_BYTES = MAX_YAML_BYTES
#: Whether events come from libyaml's C parser (see the module docstring); tests set it
#: to False to check that the pure-Python fallback gives the same documents and lines.
USE_LIBYAML: bool = yaml.__with_libyaml__
# A libyaml syntax error is re-parsed with the pure-Python parser (for its wording) only
# when the text up to the offending line is at most this long: about a second of work.
RECHECK_CHARS = 64 * 1024
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
# Scalar tags whose value is the text as written.
_TEXT_TAGS = frozenset({_STR, _VALUE, _MERGE})
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


class _Tracking(Composer):
    """PyYAML's composer, remembering where list items and mapping values were written as aliases."""

    if TYPE_CHECKING:  # provided by the parser each loader mixes in

        def check_event(self, *choices: Any) -> bool: ...
        def peek_event(self) -> Any: ...

    def _start_tracking(self) -> None:
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


class _PyLoader(_Tracking, yaml.SafeLoader):
    """Events from PyYAML's pure-Python parser."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._start_tracking()


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _CLoader(_Tracking, CParser, SafeConstructor, Resolver):
        """Events from libyaml; ``_Tracking`` comes first, so PyYAML's composer (not
        CParser's own) builds the nodes, with the same hook as the pure-Python loader."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_tracking()


def _libyaml() -> bool:
    return USE_LIBYAML and yaml.__with_libyaml__


def _tracking_loader(text: str) -> _PyLoader | _CLoader:
    return _CLoader(text) if _libyaml() else _PyLoader(text)


def _is_plain_tree(root: Node) -> bool:
    """Whether no node is reached twice and nothing nests deeper than ``MAX_DEPTH``.

    A node reached twice is an alias use (or a cycle): only then do alias lines, the
    alias-bomb measure and the cycle check matter. Most files have no alias at all.
    Walked a level at a time, with a repeat seen as a set that grew by less than the
    level's length: twice as fast as a node-by-node walk on a 5 MiB file.
    """
    seen: set[int] = set()
    level = [root]
    for _depth in range(MAX_DEPTH):
        before = len(seen)
        seen.update(map(id, level))
        if len(seen) != before + len(level):
            return False
        below: list[Node] = []
        for node in level:
            kind = type(node)
            if kind is SequenceNode:
                below += node.value
            elif kind is MappingNode:
                below += chain.from_iterable(node.value)
        if not below:
            return True
        level = below
    return False  # nodes below MAX_DEPTH levels


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a document is composed and built.

    A 5 MiB file makes millions of nodes and containers; each allocation burst would
    start a collection that walks all of them again, which tripled the load time. The
    node graph holds no cycles that outlive the load (a recursive alias is refused and
    then freed by the next collection), so nothing is lost by collecting afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _children(node: Node) -> list[tuple[Any, Node]]:
    if isinstance(node, SequenceNode):
        return list(enumerate(node.value))
    if isinstance(node, MappingNode):
        return [e for k, v in node.value for e in ((None, k), (id(k), v))]
    return []


def _check_graph(root: Node, file: str, loader: _PyLoader | _CLoader) -> None:
    """Reject cycles, alias bombs and absurd nesting before building any data.

    Iterative post-order DFS with sizes memoised by node id, so a shared node
    is measured once but counted at every reference: linear in the composed
    graph, however large the expansion would be.
    """
    alias_lines = loader.alias_lines
    max_size = MAX_NODES + loader.written
    sizes: dict[int, tuple[int, int]] = {}  # id -> (expanded size, depth)
    active = {id(root)}
    root_edges = _children(root)
    stack = [(root, root_edges, iter(root_edges))]
    while stack:
        node, all_edges, edges = stack[-1]
        for key, child in edges:
            if id(child) in sizes:
                continue
            if id(child) in active:
                line = alias_lines.get((id(node), key), _line(child))
                raise InputError(file, line, None, "recursive alias: a node contains itself")
            active.add(id(child))
            child_edges = _children(child)
            stack.append((child, child_edges, iter(child_edges)))
            break
        else:
            stack.pop()
            active.discard(id(node))
            kids = [sizes[id(c)] for _, c in all_edges]
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

    def __init__(self, constructor: SafeConstructor, alias_lines: dict[tuple[int, int], int], file: str) -> None:
        self.constructor = constructor  # builds scalars of non-string tags
        self.alias_lines = alias_lines
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
        kind = type(node)
        if node.tag not in _TAGS[kind]:
            self.check_tag(node, path)  # raises
        if kind is ScalarNode:
            # Strings are most scalars: returned without a call (a 5 MiB file has ~500k).
            return node.value if node.tag in _TEXT_TAGS else self.scalar(cast(ScalarNode, node), path)
        lines = self.lines
        if kind is SequenceNode:
            out = []
            alias_lines = self.alias_lines
            for i, child in enumerate(node.value):
                sub = path + (i,)
                line = alias_lines.get((id(node), i)) if alias_lines else None
                lines[sub] = line or child.start_mark.line + 1
                out.append(self.node(child, sub))
            return out
        result = {}
        self.mappings.add(path)
        # Neither a scalar nor a sequence: the one other kind of node.
        for key, key_node, value_node in self.pairs(cast(MappingNode, node), path):
            sub = path + (key,)
            lines[sub] = key_node.start_mark.line + 1
            result[key] = self.node(value_node, sub)
        return result

    def scalar(self, node: ScalarNode, path: tuple) -> Any:
        if node.tag in _TEXT_TAGS:
            return node.value
        try:
            # The tag's own constructor, without construct_object's memo of every node
            # (a scalar is built once per use anyway; that bookkeeping was a third of a load).
            value = SafeConstructor.yaml_constructors[node.tag](self.constructor, node)
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
        merged: dict[Any, tuple[Node, Node]] | None = None
        explicit: dict[Any, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if type(key_node) is ScalarNode and key_node.tag == _MERGE:
                merged = {} if merged is None else merged
                self.check_tag(value_node, path)
                seq = isinstance(value_node, SequenceNode)
                for source in value_node.value if seq else [value_node]:
                    if not isinstance(source, MappingNode):
                        raise self.fail(source, path, "merge key '<<' needs a mapping or a list of mappings")
                    self.check_tag(source, path)
                    for key, kn, vn in self.source_pairs(source, path):
                        merged.setdefault(key, (kn, vn))
                continue
            if type(key_node) is not ScalarNode:
                kind = _KIND[type(key_node)]
                raise self.fail(key_node, path, f"mapping key must be a plain value, not a {kind}")
            key = self.node(key_node, path)
            if key in explicit:
                raise self.fail(key_node, path + (key,), f"duplicate key {key!r}")
            explicit[key] = (key_node, value_node)
        if merged is not None:
            merged.update(explicit)
            explicit = merged
        return [(k, kn, vn) for k, (kn, vn) in explicit.items()]

    def source_pairs(self, node: MappingNode, path: tuple) -> list[tuple[Any, Node, Node]]:
        """``pairs`` of a mapping merged in with ``<<``, worked out once however often it is
        merged (a merge-key bomb is caught before building; this keeps legal reuse linear)."""
        if id(node) not in self._pairs_memo:
            self._pairs_memo[id(node)] = self.pairs(node, path)
        return self._pairs_memo[id(node)]


def _line_end(text: str, line: int) -> int:
    """Offset just past the end of 1-based ``line`` of ``text`` (its length if there is no such line)."""
    end = -1
    for _ in range(line):
        end = text.find("\n", end + 1)
        if end < 0:
            return len(text)
    return end + 1


def _in_python_words(err: Exception, text: str) -> Exception:
    """The pure-Python parser's account of a syntax error libyaml found, when it is cheap.

    libyaml and PyYAML stop at the same place but word it differently ("mapping values are
    not allowed in this context" / "... here"), and PyYAML's words name the offending
    character. So the text up to the end of the offending line is parsed again with PyYAML;
    its error is used when it points at the same line, else libyaml's stands.
    """
    if not isinstance(err, yaml.MarkedYAMLError):
        return err
    mark = err.problem_mark or err.context_mark
    if mark is None:
        return err
    end = _line_end(text, mark.line + 1)
    if end > RECHECK_CHARS:
        return err
    loader = _PyLoader(text[:end])
    try:
        while loader.check_node():
            loader.get_node()
    except yaml.MarkedYAMLError as python_err:
        python_mark = python_err.problem_mark or python_err.context_mark
        if python_mark is not None and python_mark.line == mark.line:
            return python_err
    except RecursionError as python_err:
        return python_err
    finally:
        loader.dispose()
    return err


def _compose_error(err: Exception, file: str) -> InputError:
    """A parser or composer failure as one line."""
    if isinstance(err, yaml.MarkedYAMLError):
        return _syntax_error(err, file)
    if isinstance(err, RecursionError):
        return InputError(file, 1, None, "nested too deeply")
    return InputError(file, 1, None, f"YAML error: {err}")


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
        raise too_large_error(file, what, MAX_BYTES)
    text = text.removeprefix("\ufeff")
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        detail = "binary or not UTF-8" if bad.group() == "\0" else f"control character U+{ord(bad.group()):04X}"
        raise InputError(file, line, None, f"not a text {what} ({detail})")
    return text


def _load(text: str, file: str, what: str, single: bool) -> list[YamlDoc]:
    text = _check_text(text, file, what)
    if text and not text.endswith("\n"):
        # A file ending in a bare "---" (an empty last document): libyaml places that
        # document a line below where PyYAML does unless the last line is terminated.
        text += "\n"
    with _gc_paused():
        # The nodes die when _documents returns, before the collector is back: its first
        # run then walks the data alone, not millions of nodes on top.
        return _documents(text, file, what, single)


def _documents(text: str, file: str, what: str, single: bool) -> list[YamlDoc]:
    if _libyaml():
        docs = _documents_fast(text, file, what, single)
        if docs is not None:
            return docs
    loader = _tracking_loader(text)
    try:
        nodes = _compose(loader, text, file, what, single)
        if not nodes:
            raise InputError(file, 1, None, f"{what} is empty")
        docs = []
        for node in nodes:
            if not _is_plain_tree(node):
                _check_graph(node, file, loader)
            docs.append(_Builder(loader, loader.alias_lines, file).build(node))
        return docs
    finally:
        loader.dispose()


def _documents_fast(text: str, file: str, what: str, single: bool) -> list[YamlDoc] | None:
    """The documents composed by libyaml alone, or None when they need the careful path.

    libyaml's own composer is three times faster than PyYAML's over the same events, but
    it does not say where aliases were used. So its graph is taken only when it is a
    plain tree (no alias, no deep nesting) and, for ``single``, one document; otherwise
    the text is composed again by the tracking composer, which reports as before.
    """
    loader = yaml.CSafeLoader(text)
    try:
        nodes = _compose(loader, text, file, what, single=False, limit=2 if single else None)
        if not nodes:
            raise InputError(file, 1, None, f"{what} is empty")
        if (single and len(nodes) > 1) or not all(_is_plain_tree(node) for node in nodes):
            return None
        return [_Builder(loader, {}, file).build(node) for node in nodes]
    finally:
        loader.dispose()


def _compose(loader: Any, text: str, file: str, what: str, single: bool, limit: int | None = None) -> list[Node]:
    """Every document's node graph (at most ``limit`` documents), syntax errors as one line."""
    nodes: list[Node] = []
    try:
        while (limit is None or len(nodes) < limit) and loader.check_node():
            nodes.append(cast(Node, loader.get_node()))  # check_node(): one follows
            if single and loader.check_node():
                line = loader.peek_event().start_mark.line + 1
                raise InputError(
                    file, line, None, f"expected one YAML document in this {what} but found another one ('---')"
                )
    except (yaml.YAMLError, RecursionError) as err:
        reported: Exception = err if isinstance(loader, _PyLoader) else _in_python_words(err, text)
        raise _compose_error(reported, file) from None
    return nodes


def _read(path: str | os.PathLike, what: str) -> tuple[str, str]:
    return os.fsdecode(path), read_text(path, what=what, limit=MAX_BYTES)


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
