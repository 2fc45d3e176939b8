"""Clearer messages (issue 13, "Clearer messages"): every bad input is one line that names
what the user gave and where, and hints at the fix; option errors are one line too."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import field_path, key_positions
from sim.inputs.validation import looks_like, misplaced_hint
from sim.yamlio import loads_yaml
from tests.helpers import CANARY_MANIFEST, POLICY_FILE, SCENARIOS, invoke, line_of, write

SCENARIO = (SCENARIOS / "error-spike.yaml").read_text()


def _one_error(result) -> str:
    """The one stderr line of a command that failed on bad input (exit 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --- mapping keys that are not strings -------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "shown"),
    [("0", "traffic.0"), ("1.5", "traffic.1.5"), ("true", "traffic.true"), ("null", "traffic.null")],
)
def test_a_key_that_is_not_a_string_reads_as_a_key(tmp_path: Path, key: str, shown: str) -> None:
    # YAML reads `0:` as the number 0; it must not print like the list index `traffic[0]`,
    # and the line is the key's own, however pydantic spells the key in its location.
    text = SCENARIO.replace("  users: 20000\n", f"  users: 20000\n  {key}: 5\n")
    path = write(tmp_path, "s.yaml", text)
    err = _one_error(invoke("validate", path))
    assert err.startswith(f"{path}:{line_of(text, f'  {key}: 5')}: {shown}: a key must be a string; quote it"), err


def test_a_number_key_under_a_list_item_keeps_the_index(tmp_path: Path) -> None:
    text = SCENARIO.replace("thresholdRange: {min: 99}", "thresholdRange: {min: 99, 0: 1}")
    path = write(tmp_path, "s.yaml", text)
    err = _one_error(invoke("run", path, "--runs", 1))
    assert ": policy.flagger.analysis.metrics[0].thresholdRange.0: " in err, err


def test_yaml_errors_under_a_number_key_read_as_keys(tmp_path: Path) -> None:
    text = SCENARIO.replace("  users: 20000\n", "  users: 20000\n  0: 5\n  0: 6\n")
    path = write(tmp_path, "s.yaml", text)
    err = _one_error(invoke("validate", path))
    assert err == f"{path}:{line_of(text, '  0: 6')}: traffic.0: duplicate key 0", err


def test_field_path_tells_keys_from_indexes() -> None:
    doc = loads_yaml("a: {0: [x, {1: y}]}\n")
    loc = ("a", 0, 1, 1)
    assert field_path(loc) == "a[0][1][1]"  # without the data an int reads as an index
    assert key_positions(doc.data, loc) == {0, 1, 3}
    assert doc.field_path(loc) == "a.0[1].1"
    assert doc.line_of(loc) == 1


# --- command-line usage errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["run", "{s}", "--runs", "1e9x"],
            "pdsim run: --runs: must be a whole number of runs, e.g. 1000 or 1e6 (got 1e9x) (see pdsim run --help)",
        ),
        (
            ["run", "{s}", "--runs", "0"],
            "pdsim run: --runs: must be an integer of at least 1 (got 0) (see pdsim run --help)",
        ),
        (["run", "{s}", "--xyzzy"], "pdsim run: no such option --xyzzy (see pdsim run --help)"),
        (["run", "{s}", "--runs"], "pdsim run: option '--runs' requires an argument (see pdsim run --help)"),
        (["run"], "pdsim run: missing argument 'SCENARIO.yaml' (see pdsim run --help)"),
        (["run", "{s}", "extra"], "pdsim run: got unexpected extra argument (extra) (see pdsim run --help)"),
        (["replay", "{s}"], "pdsim replay: missing option '--observations' (see pdsim replay --help)"),
        (["import", "-o"], "pdsim import: option '-o' requires an argument (see pdsim import --help)"),
        (["nosuchcommand"], "pdsim: no such command 'nosuchcommand' (see pdsim --help)"),
        (["--bogus"], "pdsim: no such option --bogus (see pdsim --help)"),
    ],
)
def test_a_usage_error_is_one_line_with_a_pointer_to_help(tmp_path: Path, args: list[str], line: str) -> None:
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    result = invoke(*(a.format(s=scenario) for a in args))
    assert _one_error(result) == line
    assert result.stdout == ""


def test_a_misspelt_option_gets_click_suggestions_on_the_same_line(tmp_path: Path) -> None:
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    err = _one_error(invoke("run", scenario, "--rnus", "3"))
    assert err.startswith("pdsim run: no such option --rnus (did you mean ") and "--runs" in err, err
    assert err.endswith(" (see pdsim run --help)"), err


def test_help_is_unchanged() -> None:
    result = invoke("run", "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: pdsim run [OPTIONS] SCENARIO.yaml\n\n  Simulate many rollouts")
    assert "--runs INTEGER" in result.stdout and "--workers INTEGER RANGE" in result.stdout
    bare = invoke()  # no command: the group's help, as click shows it
    assert bare.exit_code == 2
    assert "Usage: pdsim [OPTIONS] COMMAND [ARGS]..." in bare.stdout + bare.stderr
    assert "Commands:" in bare.stdout + bare.stderr


# --- a file of one kind given where another is expected ------------------------------------------------

_SCENARIO_HINT = (
    "this looks like a scenario file: give it as SCENARIO, or pass a policy file (flagger:, argo:, experiment: or "
    "manifest:) or a Kubernetes manifest here"
)
_POLICY_HINT = (
    "this looks like a pdsim policy file: give it as a policy (--policy), or pass a scenario file "
    "(name:, traffic:, ...) here"
)


def test_a_multi_document_scenario_is_called_a_scenario_file(tmp_path: Path) -> None:
    text = SCENARIO + "---\nname: second\n"
    path = write(tmp_path, "s.yaml", text)
    for args in (["validate", path], ["run", path, "--runs", 1]):
        err = _one_error(invoke(*args))
        assert err == (
            f"{path}:{line_of(text, '---')}: expected one YAML document in this scenario file "
            "but found another one ('---')"
        ), err
        assert "policy" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["run", "{s}", "--policy", "{s}", "--runs", "1"],
        ["compare", "{s}", "{s}", "{s}", "--runs", "2"],
        ["replay", "{s}", "--observations", "{csv}"],
        ["check", "{gates}"],
    ],
)
def test_a_scenario_given_as_a_policy_gets_a_hint(tmp_path: Path, args: list[str]) -> None:
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    csv = write(tmp_path, "obs.csv", "t,metric,value\n0,request-success-rate,99.9\n")
    gates = write(
        tmp_path,
        "gates.yaml",
        "name: g\npolicy: s.yaml\nruns: 2\nscenarios:\n"
        "  - path: s.yaml\n    requirements: {detection_rate: {min: 0.5}}\n",
    )
    result = invoke(*(a.format(s=scenario, csv=csv, gates=gates) for a in args))
    assert _one_error(result) == f"{scenario}:1: name: unknown key; {_SCENARIO_HINT}"


def test_a_multi_document_scenario_given_as_a_policy_gets_the_hint(tmp_path: Path) -> None:
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    text = SCENARIO + "---\nname: second\n"
    both = write(tmp_path, "both.yaml", text)
    err = _one_error(invoke("run", scenario, "--policy", both, "--runs", 1))
    assert (
        err == f"{both}:{line_of(text, 'name: second')}: a pdsim policy file holds one YAML document; {_SCENARIO_HINT}"
    )


def test_a_policy_given_as_a_scenario_gets_a_hint(tmp_path: Path) -> None:
    policy = write(tmp_path, "p.yaml", POLICY_FILE)
    err = _one_error(invoke("run", policy, "--runs", 1))
    assert err == f"{policy}:1: flagger: unknown key; {_POLICY_HINT}"


def test_a_manifest_given_as_a_scenario_gets_a_hint(tmp_path: Path) -> None:
    manifest = write(tmp_path, "canary.yaml", CANARY_MANIFEST)
    err = _one_error(invoke("run", manifest, "--runs", 1))
    assert err == (
        f"{manifest}:1: apiVersion: unknown key; this looks like a Kubernetes manifest: give it as a policy "
        "(--policy), or pass a scenario file (name:, traffic:, ...) here"
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"name": "x", "traffic": {}}, "scenario"),
        ({"name": "x"}, "scenario"),
        ({"flagger": {}}, "policy"),
        ({"manifest": "c.yaml"}, "policy"),
        ({"apiVersion": "v1", "kind": "Canary", "name": "x"}, "manifest"),
        ({"name": "s", "grid": {}}, "sweep"),
        ({"name": "g", "policy": "p.yaml", "scenarios": []}, "gates"),
        ({"foo": 1}, None),
        ([1, 2], None),
    ],
)
def test_looks_like(data: object, kind: str | None) -> None:
    assert looks_like(data) == kind
    assert misplaced_hint(data, kind or "scenario") is None  # where it belongs: no hint


# --- pdsim validate DIR ------------------------------------------------------------------------------


def test_validate_a_directory_reads_what_it_documents_and_names_what_it_skips(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    scenario = write(folder, "s.yaml", SCENARIO)
    policy = write(folder, "p.yaml", POLICY_FILE)
    write(folder, "README.md", "# notes\n")
    write(folder, "runs.csv", "t,metric,value\n")
    (folder / "old").mkdir()
    gates = write(folder, "gates.yaml", "name: g\npolicy: p.yaml\nscenarios: []\n")
    result = invoke("validate", folder)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"{folder}: skipped README.md, old/, runs.csv (validate reads the *.yaml, *.yml, *.json files of a directory)",
        f"{gates}: skipped (a gates file; validate reads scenario, policy, manifest and TUNE files)",
        f"{scenario}: ok (scenario error-spike)",
        f"{policy}: ok (policy)",
    ]


def test_validate_a_directory_checks_each_rollout_with_its_templates(tmp_path: Path) -> None:
    folder = tmp_path / "canaries"
    folder.mkdir()
    first = write(folder, "a.yaml", CANARY_MANIFEST)
    second = write(folder, "b.yaml", CANARY_MANIFEST.replace("name: podinfo, namespace", "name: other, namespace"))
    result = invoke("validate", folder)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [f"{first}: ok (policy)", f"{second}: ok (policy)"]


def test_validate_a_directory_reports_each_bad_file(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    good = write(folder, "a.yaml", SCENARIO)
    bad = write(folder, "b.yaml", SCENARIO.replace("users: 20000", "users: many"))
    broken = write(folder, "c.yaml", "name: [\n")
    result = invoke("validate", folder)
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [f"{good}: ok (scenario error-spike)"]
    errors = result.stderr.splitlines()
    assert [e.split(":")[0] for e in errors] == [str(bad), str(broken)], errors


def test_validate_a_directory_without_inputs(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "# notes\n")
    result = invoke("validate", tmp_path)
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"{tmp_path}: skipped README.md (validate reads the *.yaml, *.yml, *.json files of a directory)"
    ]
    assert result.stderr.splitlines() == [
        f"{tmp_path}:1: the directory holds no scenario, policy or manifest files (*.yaml, *.yml, *.json)"
    ]


# --- paths the system refuses -------------------------------------------------------------------

#: Longer than any file name a Linux or macOS file system takes (ENAMETOOLONG).
LONG_NAME = "x" * 5000


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("gates", "policy: {name}\nscenarios: [{{path: " + str(SCENARIOS / "good-release.yaml") + "}}]\n"),
        ("sweep", "scenario: {name}\ngrid: {{policy.flagger.analysis.threshold: [1]}}\n"),
    ],
)
def test_a_file_name_too_long_is_no_such_file(tmp_path: Path, kind: str, text: str) -> None:
    """A path in a gates or sweep file that the system refuses to look up (a name too long:
    Python 3.11's ``Path.exists`` raises instead of answering False) is a missing file at its
    line (found by the fuzz test as an internal error)."""
    path = write(tmp_path, f"{kind}.yaml", text.format(name=LONG_NAME))
    result = invoke("check" if kind == "gates" else "sweep", path, *(["--out", tmp_path / "o"] * (kind == "sweep")))
    assert result.exit_code == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{path}:1: ") and "no such file or directory" in line, line[:300]


def test_a_path_the_system_refuses_is_one_line_wherever_it_is_met(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError about a path the user gave (too long, not allowed, missing) that reaches the
    top is the system's word on that path, exit 2, not an internal error; other OSErrors stay
    internal errors (exit 3)."""
    import errno

    from sim import cli

    def refused(path, *args, **kwargs):
        raise OSError(errno.ENAMETOOLONG, "File name too long", str(path))

    monkeypatch.setattr(cli, "_load_run_inputs", refused)
    result = invoke("run", SCENARIOS / "good-release.yaml")
    assert (result.exit_code, result.stderr) == (2, f"pdsim: {SCENARIOS / 'good-release.yaml'}: File name too long\n")

    def broken(path, *args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(cli, "_load_run_inputs", broken)
    result = invoke("run", SCENARIOS / "good-release.yaml")
    assert result.exit_code == 3 and result.stderr.startswith("pdsim: internal error: OSError"), result.stderr
