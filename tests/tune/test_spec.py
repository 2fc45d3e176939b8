"""sim.tuning.spec: TUNE files read, and every bad input one line naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import InputError
from sim.tuning.spec import load_tune
from tests.tune.tiny import SPACE, write_tiny


def _error(path: Path) -> InputError:
    with pytest.raises(InputError) as err:
        load_tune(path)
    assert "\n" not in str(err.value)
    return err.value


def _line(path: Path, text: str) -> int:
    """The 1-based line of the first line of ``path`` holding ``text``."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_tiny_file_loads(tmp_path: Path) -> None:
    tune = load_tune(write_tiny(tmp_path))
    assert tune.name == "tune"
    assert tune.rungs == [4, 12]
    assert tune.space.names == [
        "policy.flagger.analysis.interval",
        "policy.flagger.analysis.stepWeight",
        "policy.flagger.analysis.metrics[0].thresholdRange.min",
    ]
    assert [str(m) for m in tune.metrics] == ["excess_errors.mean", "detection_time_s.median", "false_rollback_rate"]
    assert tune.space.params[1].is_int and not tune.space.params[2].is_int
    assert tune.portfolio.stream == 0 and tune.validation.stream == 1
    assert tune.validation_runs == 16
    assert tune.base.data["flagger"]["analysis"]["stepWeight"] == 10


@pytest.mark.parametrize(
    ("space", "marker", "message"),
    [
        ("space:\n  policy.flagger.analysis.stepWeight: {low: 20, high: 2}\n", "stepWeight", "at least low"),
        ("space:\n  policy.flagger.analysis.interval: {choices: []}\n", "interval", "at least one choice"),
        ("space:\n  policy.flagger.analysis.stepWeight: {low: 2}\n", "stepWeight", "give low and high"),
        ("space:\n  policy.flagger.analysis.stepWeight: {low: 2, high: 5, choices: [3]}\n", "stepWeight", "either"),
        ("space:\n  policy.flagger.analysis.threshold: {low: 0, high: 5, log: true}\n", "threshold", "low > 0"),
        ("space:\n  policy.flagger.analysis.stepWeight: {low: 2, high: 5, wide: 1}\n", "wide", "unknown key"),
        ("space:\n  policy..x: {low: 2, high: 5}\n", "policy..x", "not a field path"),
        ("space:\n  release.faults[0].rate: {low: 0.1, high: 0.5}\n", "release", "starts with policy."),
        ("space:\n  policy.flagger.analysis.stepWeigth: {low: 2, high: 5}\n", "stepWeigth", "unknown key"),
        ("space:\n  policy.flagger.analysis.metrics[3].interval: {choices: [1m]}\n", "metrics[3]", "no [3]"),
        ("space:\n  policy.flagger.analysis.stepWeight: {low: -5, high: 5}\n", "stepWeight", ""),
        ("space:\n  policy.flagger.analysis.interval: {choices: [1m, soon]}\n", "interval", ""),
        ("space:\n  policy.flagger.analysis.stepWeight: {low: 1, high: 5, format: 'x'}\n", "stepWeight", "{}"),
    ],
)
def test_bad_space_names_its_line(tmp_path: Path, space: str, marker: str, message: str) -> None:
    path = write_tiny(tmp_path, space=space)
    err = _error(path)
    assert err.file == str(path)
    assert err.line == _line(path, marker), str(err)
    assert message in str(err)


def test_a_bad_value_names_the_space_key_and_the_policy_field(tmp_path: Path) -> None:
    path = write_tiny(tmp_path, space="space:\n  policy.flagger.analysis.stepWeight: {low: -5, high: 5}\n")
    err = _error(path)
    assert err.field.startswith("space.policy.flagger.analysis.stepWeight")
    assert "-5" in str(err)


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        (
            "objectives: [excess_errors.mean, detection_time_s.median]",
            "objectives: [excess_errors.avg]",
            "objectives",
            "mean, median or a percentile",
        ),
        ("false_rollback_rate: {max: 0.5}", "false_rollbacks: {max: 0.5}", "false_rollbacks", "a metric is a rate"),
        ("false_rollback_rate: {max: 0.5}", "false_rollback_rate: {}", "false_rollback_rate", "give max or min"),
        ("budget: 8", "budget: 0", "budget", "greater than or equal to 1"),
        ("budget: 8", "budget: 1000000", "budget", "less than or equal to"),
        (
            "racing: {min_runs: 4, max_runs: 12, eta: 3}",
            "racing: {min_runs: 40, max_runs: 12, eta: 3}",
            "racing",
            "at least min_runs",
        ),
        (
            "racing: {min_runs: 4, max_runs: 12, eta: 3}",
            "racing: {min_runs: 4, max_runs: 12, eta: 1}",
            "racing",
            "greater than or equal to 2",
        ),
        ("base: canary.yaml", "base: nope.yaml", "base", "no such file"),
        ("{scenario: bad.yaml, weight: 0.2}", "{scenario: bad.yaml, weight: 0.3}", "portfolio:", "sum to 1"),
        ("{scenario: bad.yaml, weight: 0.2}", "{scenario: gone.yaml, weight: 0.2}", "gone.yaml", "gone.yaml"),
        (
            "{scenario: bad.yaml, weight: 0.2}",
            "{scenario: bad.yaml, weight: 0.2, colour: red}",
            "colour",
            "unknown key",
        ),
        ("seed: 1", "seed: 1\nbudgets: 3", "budgets", "unknown key"),
        ("seed: 1", "seed: 1\npick: fastest", "pick", "balanced or one of the objectives"),
        ("seed: 1", "seed: 1\nconfidence: 1.5", "confidence", "less than 1"),
    ],
)
def test_bad_keys_name_their_line(tmp_path: Path, old: str, new: str, marker: str, message: str) -> None:
    path = write_tiny(tmp_path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    err = _error(path)
    assert err.file == str(path)
    assert err.line == _line(path, marker), str(err)
    assert message in str(err)


def test_pick_may_name_an_objective(tmp_path: Path) -> None:
    tune = load_tune(write_tiny(tmp_path, extra="pick: detection_time_s.median\n"))
    assert tune.spec.pick == "detection_time_s.median"


def test_a_missing_tune_file(tmp_path: Path) -> None:
    err = _error(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(err)


def test_base_may_be_a_list_and_a_manifest(tmp_path: Path) -> None:
    path = write_tiny(tmp_path)
    (tmp_path / "canary.yaml").write_text(
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: podinfo}\n"
        "spec:\n  analysis:\n    interval: 1m\n    threshold: 5\n    maxWeight: 50\n    stepWeight: 10\n"
        "    metrics:\n      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}\n"
    )
    path.write_text(path.read_text().replace("base: canary.yaml", "base: [canary.yaml]"))
    tune = load_tune(path)
    assert tune.base.name == "podinfo"
    assert tune.base_paths == [str(tmp_path / "canary.yaml")]


def test_validation_portfolio_is_its_own(tmp_path: Path) -> None:
    path = write_tiny(tmp_path, extra="")
    text = path.read_text().replace(
        "validation: {runs: 16}", "validation:\n  portfolio: [{scenario: bad.yaml, weight: 1}]\n  runs: 16"
    )
    path.write_text(text)
    tune = load_tune(path)
    assert [e.name for e in tune.validation.entries] == ["bad"]
    assert tune.validation.stream == 1


def test_space_default_is_the_tiny_space() -> None:
    assert SPACE.startswith("space:")


def test_with_runs_is_the_same_search_on_other_runs(tmp_path: Path) -> None:
    tf = load_tune(write_tiny(tmp_path))
    quick = tf.with_runs(2, 6, 10)
    assert (quick.rungs, quick.validation_runs) == ([2, 6], 10)
    assert (tf.rungs, tf.validation_runs) == ([4, 12], 16)  # the file's own search is untouched
    assert quick.sha256 != tf.sha256 and quick.space is tf.space and quick.portfolio is tf.portfolio
