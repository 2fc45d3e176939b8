"""Clearer messages (issue 13, "Clearer messages"): every bad input is one line that names
what the user gave and where, and hints at the fix; option errors are one line too."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import field_path, key_positions
from sim.yamlio import loads_yaml
from tests.helpers import SCENARIOS, invoke, line_of, write

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
        (["run", "{s}", "--runs", "1e9x"], "pdsim run: --runs: '1e9x' is not a valid integer (see pdsim run --help)"),
        (["run", "{s}", "--runs", "0"], "pdsim run: --runs: 0 is not in the range x>=1 (see pdsim run --help)"),
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
    assert "--runs INTEGER RANGE" in result.stdout
    bare = invoke()  # no command: the group's help, as click shows it
    assert bare.exit_code == 2
    assert "Usage: pdsim [OPTIONS] COMMAND [ARGS]..." in bare.stdout + bare.stderr
    assert "Commands:" in bare.stdout + bare.stderr
