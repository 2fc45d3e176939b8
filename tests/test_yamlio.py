"""Tests for sim.yamlio and sim.errors."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest
import yaml

from sim import yamlio
from sim.errors import InputError, field_path
from sim.yamlio import MAX_BYTES, YamlDoc, load_yaml, load_yaml_all, loads_yaml
from tests.helpers import REPO, UPSTREAM_FIXTURES

needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")


@pytest.fixture(
    autouse=True,
    params=[pytest.param(True, id="libyaml", marks=needs_libyaml), pytest.param(False, id="python")],
)
def parser(request, monkeypatch):
    """Every test of this module runs with libyaml's parser and with the pure-Python one:
    the same data, the same lines and the same messages either way."""
    monkeypatch.setattr(yamlio, "USE_LIBYAML", request.param)
    return "libyaml" if request.param else "python"


SCENARIO = """\
# demo scenario
name: demo
policy:
  kind: flagger
  flagger:
    interval: 1m
    analysis:
      threshold: 5
      maxWeight: 50
      stepWeight: 10
      metrics:
        - name: request-success-rate
          thresholdRange: {min: 99}
        - name: latency
          interval: 30s
"""

LOL = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def write(tmp_path: Path, text: str | bytes, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path, line: int) -> InputError:
    """Load path, expect an InputError at line, return it."""
    with pytest.raises(InputError) as info:
        load_yaml(path)
    err = info.value
    text = str(err)
    assert text.startswith(f"{path}:{line}: "), text
    assert "\n" not in text and "\r" not in text
    assert err.line == line
    return err


# --- InputError / field_path -------------------------------------------------


def test_input_error_full_form():
    err = InputError("s.yaml", 9, "policy.maxWeight", "must be at most 100", 150)
    assert str(err) == "s.yaml:9: policy.maxWeight: must be at most 100 (got 150)"
    assert (err.file, err.line, err.field, err.message, err.got) == (
        "s.yaml",
        9,
        "policy.maxWeight",
        "must be at most 100",
        150,
    )


def test_input_error_optional_parts():
    assert str(InputError("s.yaml", None, None, "file is empty")) == "s.yaml:1: file is empty"
    assert str(InputError("s.yaml", 3, "", "bad")) == "s.yaml:3: bad"
    assert str(InputError("f", 2, "a", "bad", None)) == "f:2: a: bad (got None)"


@pytest.mark.parametrize(
    ("got", "rendered"),
    [("abc", "abc"), ("", "''"), ("a\nb\rc", "a b c"), ([1, 2], "[1, 2]"), ("x" * 100, "x" * 57 + "...")],
)
def test_input_error_got_rendering(got, rendered):
    assert str(InputError("f", 1, None, "m", got)) == f"f:1: m (got {rendered})"


def test_input_error_is_always_one_line():
    err = InputError("a\nb.yaml", 1, "x\ny", "two\nlines\u2028here", "v\r\n")
    assert str(err).splitlines() == [str(err)]


def test_input_error_pickles():
    for err in (InputError("f", 2, "a.b", "bad", 3), InputError("f", None, None, "bad")):
        clone = pickle.loads(pickle.dumps(err))
        assert str(clone) == str(err) and clone.got == err.got


def test_field_path():
    assert field_path(("policy", "steps", 2, "weight")) == "policy.steps[2].weight"
    assert field_path(()) == ""
    assert field_path([0, "a"]) == "[0].a"


# --- good input --------------------------------------------------------------


def test_data_and_line_numbers(tmp_path):
    doc = load_yaml(write(tmp_path, SCENARIO))
    assert isinstance(doc, YamlDoc)
    assert doc.data["policy"]["flagger"]["analysis"]["maxWeight"] == 50
    assert doc.file == str(tmp_path / "x.yaml")
    lines = doc.lines
    assert lines[("name",)] == 2
    assert lines[("policy",)] == 3
    assert lines[("policy", "flagger", "analysis", "maxWeight")] == 9
    assert lines[("policy", "flagger", "analysis", "metrics", 0)] == 12
    assert lines[("policy", "flagger", "analysis", "metrics", 0, "thresholdRange", "min")] == 13
    assert lines[("policy", "flagger", "analysis", "metrics", 1)] == 14
    assert lines[("policy", "flagger", "analysis", "metrics", 1, "interval")] == 15


def test_line_of_uses_deepest_known_prefix():
    doc = loads_yaml(SCENARIO)
    assert doc.line_of(("policy", "flagger", "analysis", "nope", 3)) == 7
    assert doc.line_of(["policy", "flagger", "interval"]) == 6
    assert doc.line_of(("missing",)) == doc.lines[()] == 2
    assert YamlDoc(None, "f", {}).line_of(("a",)) == 1


def test_scalar_types_follow_yaml_1_1():
    doc = loads_yaml(
        "i: 3\nf: 1.5\nb: yes\nn: ~\ns: '3'\nt: 2024-05-01\nts: 2024-05-01 10:00:00\nd: 15s\nk: {1: one}\n"
    )
    assert doc.data == {
        "i": 3,
        "f": 1.5,
        "b": True,
        "n": None,
        "s": "3",
        "t": "2024-05-01",
        "ts": "2024-05-01T10:00:00",
        "d": "15s",
        "k": {1: "one"},
    }


def test_anchors_aliases_and_merge_keys():
    doc = loads_yaml(
        "defaults: &defaults\n"  # 1
        "  interval: 1m\n"  # 2
        "  threshold: 5\n"  # 3
        "other: &other {threshold: 9, maxWeight: 30}\n"  # 4
        "a:\n"  # 5
        "  <<: *defaults\n"  # 6
        "  threshold: 10\n"  # 7
        "b:\n"  # 8
        "  <<: [*defaults, *other]\n"  # 9
        "steps:\n"  # 10
        "  - *defaults\n"  # 11
        "  - *other\n"  # 12
    )
    data = doc.data
    assert data["a"] == {"interval": "1m", "threshold": 10}
    # First listed merge source wins over later ones.
    assert data["b"] == {"interval": "1m", "threshold": 5, "maxWeight": 30}
    assert data["steps"] == [data["defaults"], data["other"]]
    assert data["steps"][0] is not data["defaults"]  # plain, independent copies
    assert doc.lines[("a", "threshold")] == 7
    assert doc.lines[("a", "interval")] == 2  # merged in: where it was written
    assert doc.lines[("steps", 1)] == 12  # the alias, not the anchor


def test_multi_document(tmp_path):
    path = write(tmp_path, "a: 1\n---\nb:\n  - 2\n---\n- x\n")
    docs = load_yaml_all(path)
    assert [d.data for d in docs] == [{"a": 1}, {"b": [2]}, ["x"]]
    assert docs[1].lines[("b", 0)] == 4
    assert all(d.file == str(path) for d in docs)
    with pytest.raises(InputError, match=r":1: file is empty$"):
        load_yaml_all(write(tmp_path, "# nothing\n", "empty.yaml"))


def test_utf8_bom_and_pathlike(tmp_path):
    path = write(tmp_path, "\ufeffname: ok\n")
    assert load_yaml(path).data == {"name": "ok"}
    assert load_yaml(str(path)).data == {"name": "ok"}


# --- bad input ---------------------------------------------------------------


def test_missing_file(tmp_path):
    err = load_error(tmp_path / "nope.yaml", 1)
    assert "cannot read file: No such file or directory" in str(err)
    assert err.field is None


def test_directory(tmp_path):
    assert str(load_error(tmp_path, 1)).endswith(":1: not a regular file (a directory)")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable(tmp_path):
    path = write(tmp_path, "a: 1\n")
    path.chmod(0)
    assert "Permission denied" in str(load_error(path, 1))


@pytest.mark.parametrize("text", ["", "\n  \n", "# only a comment\n\n# another\n"])
def test_empty(tmp_path, text):
    assert str(load_error(write(tmp_path, text), 1)).endswith(": file is empty")


def test_what_is_used_in_messages(tmp_path):
    with pytest.raises(InputError, match="scenario file is empty"):
        load_yaml(write(tmp_path, ""), what="scenario file")


@pytest.mark.parametrize(
    ("raw", "line"),
    [(b"a: 1\nb: 2\nc: \x00\x01\x02\n", 3), (b"a: 1\nb: \xff\xfe\n", 2), (b"\x89PNG\r\n\x1a\n\x00\x00", 1)],
)
def test_binary(tmp_path, raw, line):
    err = load_error(write(tmp_path, raw), line)
    assert "not a text file (binary or not UTF-8)" in str(err)


def test_control_character(tmp_path):
    assert "control character" in str(load_error(write(tmp_path, "a: 1\nb: \x07\n"), 2))


def test_too_large(tmp_path):
    path = write(tmp_path, b"a: " + b"x" * MAX_BYTES + b"\n")
    assert "too large" in str(load_error(path, 1))


def test_syntax_error(tmp_path):
    err = load_error(write(tmp_path, "a: 1\nb: 2\nc: d: e\n"), 3)
    assert str(err) == f"{tmp_path / 'x.yaml'}:3: YAML syntax error: mapping values are not allowed here"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: [1, 2\nb: 3\n", 2),
        ("a: 'open\n", 2),
        ("a: 1\n- b\n", 2),
        ("a: *undefined\n", 1),
        ("a: &x 1\nb: &x 2\n", 2),
        ("a: 1\n\tb: 2\n", 2),
    ],
)
def test_other_syntax_errors(tmp_path, text, line):
    assert "YAML syntax error" in str(load_error(write(tmp_path, text), line))


def test_python_tag_rejected_and_not_executed(tmp_path, capfd):
    marker = tmp_path / "pwned"
    text = (
        f'ok: 1\nx: !!python/object/apply:os.system ["touch {marker}"]\n'
        'y: !!python/object/apply:os.system ["echo hi"]\n'
    )
    err = load_error(write(tmp_path, text), 2)
    assert "unsupported YAML tag !!python/object/apply:os.system" in str(err)
    assert not marker.exists()
    assert "hi" not in capfd.readouterr().out


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a: 1\nb: !!python/name:os.system\n", 2, "!!python/name:os.system"),
        ("a: !!binary aGk=\n", 1, "!!binary"),
        ("a: !!set {x}\n", 1, "!!set"),
        ("a:\n  - !custom 3\n", 2, "!custom"),
        ("a: !!map x\n", 1, "cannot be used on a scalar"),
        ("a: !!int abc\n", 1, "not a valid !!int"),
        ("a:\n  <<: !!python/object:os.X {b: 1}\n", 2, "unsupported YAML tag !!python/object:os.X"),
        ("!!python/object/new:dict {}\n", 1, "!!python/object/new:dict"),
    ],
)
def test_unsupported_tags(tmp_path, text, line, fragment):
    assert fragment in str(load_error(write(tmp_path, text), line))


def test_alias_bomb_rejected_quickly(tmp_path):
    path = write(tmp_path, LOL)
    start = time.perf_counter()
    err = load_error(path, 6)  # `f` is the first node expanding past the limit
    assert time.perf_counter() - start < 1.0
    assert "possible alias bomb" in str(err)


def test_merge_key_bomb_rejected(tmp_path):
    lines = ["a0: &a0 {k: v}"]
    for i in range(1, 12):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} {{<<: [{refs}], k{i}: v}}")
    start = time.perf_counter()
    with pytest.raises(InputError, match="alias bomb"):
        load_yaml(write(tmp_path, "\n".join(lines) + "\n"))
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: &a [1, *a]\n", 1), ("a: &a\n  b:\n    c: *a\n", 3), ("a: &a {<<: *a}\n", 1)],
)
def test_recursive_alias(tmp_path, text, line):
    assert "recursive alias" in str(load_error(write(tmp_path, text), line))


@pytest.mark.parametrize("depth", [250, 1000])  # our cap; PyYAML's own recursion
def test_deep_nesting_is_an_input_error(tmp_path, depth):
    err = load_error(write(tmp_path, "a: " + "[" * depth + "]" * depth + "\n"), 1)
    assert "nested too deeply" in str(err)


def test_duplicate_key(tmp_path):
    err = load_error(write(tmp_path, "policy:\n  name: a\n  kind: b\n  name: c\n"), 4)
    assert str(err).endswith(": policy.name: duplicate key 'name'")


def test_merge_does_not_count_as_duplicate():
    assert loads_yaml("d: &d {x: 1}\ne:\n  <<: *d\n  x: 2\n").data["e"] == {"x": 2}


@pytest.mark.parametrize(("text", "line"), [("? [1, 2]\n: x\n", 1), ("a:\n  ? {b: 1}\n  : x\n", 2), ("{[1]: x}\n", 1)])
def test_non_scalar_key(tmp_path, text, line):
    assert "mapping key must be a plain value" in str(load_error(write(tmp_path, text), line))


def test_bad_merge_value(tmp_path):
    assert "merge key" in str(load_error(write(tmp_path, "a:\n  <<: 3\n"), 2))


def test_single_loader_rejects_several_documents(tmp_path):
    err = load_error(write(tmp_path, "a: 1\n---\nb: 2\n"), 2)
    assert "another one" in str(err)


def test_loads_yaml_errors_use_given_name():
    with pytest.raises(InputError) as info:
        loads_yaml("a: 1\na: 2\n", file="<stdin>")
    assert str(info.value) == "<stdin>:2: a: duplicate key 'a'"


def test_alias_budget_counts_only_nodes_added_by_aliases(monkeypatch):
    # Shrink the budget instead of writing a 100k-node file (pure-Python parse).
    monkeypatch.setattr(yamlio, "MAX_NODES", 50)
    big = "".join(f"- {{n: {i}}}\n" for i in range(100))  # ~300 nodes, no aliases
    assert len(loads_yaml(big).data) == 100
    assert len(loads_yaml("a: &a [1, 2, 3]\nb: [" + "*a, " * 10 + "]\n").data["b"]) == 10
    with pytest.raises(InputError, match="alias bomb"):
        loads_yaml("a: &a [1, 2, 3]\nb: [" + "*a, " * 20 + "]\n")


# --- libyaml and the pure-Python parser agree (issue 13, item 11) ---------------------


def _yaml_files() -> list[Path]:
    roots = [REPO / d for d in ("scenarios", "gates", "sweeps", "tests")] + [UPSTREAM_FIXTURES]
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))


@needs_libyaml
def test_both_parsers_give_the_same_documents_and_lines(monkeypatch, parser):
    if parser == "python":
        pytest.skip("compares both parsers once")
    files = _yaml_files()
    assert len(files) > 20  # the bundled files at least

    def load(path: Path, libyaml: bool) -> list | str:
        """The documents, or the one-line error of a file that does not load (an upstream
        example kubectl refuses too): both parsers must say the same."""
        monkeypatch.setattr(yamlio, "USE_LIBYAML", libyaml)
        try:
            return load_yaml_all(path)
        except InputError as err:
            return str(err)

    for path in files:
        fast, slow = load(path, True), load(path, False)
        if isinstance(fast, str) or isinstance(slow, str):
            assert fast == slow, path
            continue
        assert [(d.data, d.lines) for d in fast] == [(d.data, d.lines) for d in slow], path


TRICKY = [
    "a: |\n  two\n  lines\nb: >-\n  folded\n  text\nc: 'q''s'\nd: \"\\u00e9\\t\"\n",
    '? complex\n: value\n"quoted key": 1\nempty:\nnull_key: ~\n',
    "- [a, {b: c}, [d]]\n- {x: [1, 2], y: {z: w}}\n-\n  - nested\n  -   - deeper\n",
    "%YAML 1.1\n---\nplain multi\n  line scalar\n...\n",
    "defaults: &d {a: 1, b: 2}\nuse:\n  <<: *d\n  b: 3\nlist: [*d, *d]\nk: &s str\nm: {*s : v}\n",
    "# comment\nx: 1 # trailing\n\n\ny:\n- 1\n- 2\nz: !!str 3\nt: 2001-12-14t21:59:43.10-05:00\n",
]


@needs_libyaml
@pytest.mark.parametrize("text", TRICKY)
def test_both_parsers_agree_on_tricky_yaml(monkeypatch, text, parser):
    if parser == "python":
        pytest.skip("compares both parsers once")
    monkeypatch.setattr(yamlio, "USE_LIBYAML", True)
    fast = loads_yaml(text)
    monkeypatch.setattr(yamlio, "USE_LIBYAML", False)
    slow = loads_yaml(text)
    assert (fast.data, fast.lines) == (slow.data, slow.lines)


def test_aliases_in_a_big_file_keep_their_lines(parser):
    # An alias anywhere sends libyaml's graph through the tracking composer: lines of
    # alias uses, not of anchors, as with the pure-Python parser.
    text = "base: &b {x: 1}\nitems:\n" + "".join(f"  - {{n: {i}}}\n" for i in range(2000)) + "  - *b\n"
    doc = loads_yaml(text)
    assert doc.data["items"][-1] == {"x": 1}
    assert doc.lines[("items", 2000)] == 2003


def test_syntax_error_past_the_recheck_keeps_its_line(monkeypatch, parser):
    # Too far into the file to re-parse with PyYAML: libyaml's own words, same line.
    monkeypatch.setattr(yamlio, "RECHECK_CHARS", 0)
    with pytest.raises(InputError) as info:
        loads_yaml("a: 1\nb: 2\nc: d: e\n", file="x.yaml")
    assert str(info.value).startswith("x.yaml:3: YAML syntax error: mapping values are not allowed")
    assert "\n" not in str(info.value)


def test_the_gc_is_restored(parser):
    import gc

    loads_yaml("a: [1, 2]\n")
    assert gc.isenabled()
    with pytest.raises(InputError):
        loads_yaml("a: [1, 2\n")
    assert gc.isenabled()


@needs_libyaml
def test_a_legal_megabyte_loads_in_seconds(tmp_path, parser):
    # 5 MiB is the input limit; before libyaml a 4.8 MB file took 99 s (about 20 s a MB).
    # A 1 MB file is measured to keep the suite quick: about 0.8 s of CPU with libyaml.
    if parser == "python":
        pytest.skip("the pure-Python parser is the slow fallback")
    lines = ["name: big\nitems:\n"]
    lines += [f"  - {{name: metric-{i}, thresholdRange: {{min: 99.5}}, interval: 1m}}\n" for i in range(16_000)]
    path = write(tmp_path, "".join(lines))
    assert path.stat().st_size > 1_000_000
    start = time.process_time()
    doc = load_yaml(path)
    assert len(doc.data["items"]) == 16_000
    assert doc.lines[("items", 15_999, "interval")] == 16_002
    assert time.process_time() - start < 5.0
