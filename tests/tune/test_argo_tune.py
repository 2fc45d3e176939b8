"""The bundled Argo example (``tune/argo-canary.yaml``, issue 18) searched tiny, end to end.

Issue 18: "Argo spaces work the same way (step weights and pause durations,
``failureLimit``, ``interval``, ``count``, condition bounds)", and ``best-manifest.yaml``
is "the user's file with only the tuned fields changed, comments, order and other
documents kept". The search here is the example's base, space and releases on a few runs
(``TuneFile.with_runs``), with the false-rollback ceiling loosened so that a handful of
runs can meet it; what it checks is where every tuned Argo field goes: the Rollout's
``spec.strategy.canary.steps``, the AnalysisTemplate's ``spec.metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.inputs.policy import read_policy
from sim.sweeps.spec import parse_path
from sim.tuning.spec import load_tune
from sim.yamlio import load_yaml
from tests.helpers.paths import REPO

EXAMPLE = REPO / "tune" / "argo-canary.yaml"
ROLLOUT = REPO / "tune" / "argo" / "rollout.yaml"
TEMPLATE = REPO / "tune" / "argo" / "analysis-template.yaml"
#: Each tuned PATH's kind (its end) and the file its field lives in.
KINDS = {
    "setWeight": ROLLOUT,
    "pause.duration": ROLLOUT,
    "metrics[0].interval": TEMPLATE,
    "metrics[0].count": TEMPLATE,
    "metrics[0].failureLimit": TEMPLATE,
    "metrics[0].successCondition": TEMPLATE,
}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, sim.tuning.api.TuneResult]:
    # The example's own file, with three releases instead of nine and a ceiling that 8 runs
    # per release can meet (the upper 95% bound of 0 false rollbacks in 16 good runs is 19%).
    folder = tmp_path_factory.mktemp("argo")
    data = load_yaml(EXAMPLE, what="TUNE file").data
    data["base"] = [str(REPO / "tune" / p) for p in data["base"]]
    data["portfolio"] = [
        {"scenario": str(REPO / "tune" / "releases" / name), "weight": w}
        for name, w in [("good-100.yaml", 0.4), ("good-1000.yaml", 0.4), ("errors-5pct-100.yaml", 0.2)]
    ]
    data["validation"] = {"portfolio": data["portfolio"]}
    data["constraints"] = {"false_rollback_rate": {"max": 0.5}}
    path = folder / "argo-canary.yaml"
    path.write_text(json.dumps(data))
    tf = load_tune(path).with_runs(4, 8, 8)
    return folder / "out", sim.tune(tf, folder / "out", budget=4)


def _documents(text: str) -> list[str]:
    """best-manifest.yaml's two files: the Rollout's text, then the template's."""
    cut = text.index("\n---\n", text.index("kind: Rollout"))
    return [text[: cut + 1], text[cut + len("\n---\n") :]]


def _line_of(path: str) -> tuple[Path, int]:
    """The file and line index a tuned PATH's field is written on in the example's files:
    ``steps[i]`` is the i-th list item under ``steps:`` (one step per line there), a
    template field the line of its key (the template has one metric)."""
    parts = parse_path(path)
    if "steps" in parts:
        lines = ROLLOUT.read_text().splitlines()
        first = next(k for k, line in enumerate(lines) if line.strip() == "steps:") + 1
        items = [k for k in range(first, len(lines)) if lines[k].lstrip().startswith("- ")]
        return ROLLOUT, items[int(parts[parts.index("steps") + 1])]
    lines = TEMPLATE.read_text().splitlines()
    (k,) = [k for k, line in enumerate(lines) if line.strip().startswith(f"{parts[-1]}:")]
    return TEMPLATE, k


def _at(data: Any, parts: tuple[str | int, ...]) -> Any:
    for part in parts:
        data = data[part]
    return data


def test_the_example_space_is_every_argo_kind_the_issue_names() -> None:
    tf = load_tune(EXAMPLE)
    paths = [p.path for p in tf.space.params]
    for kind, source in KINDS.items():
        matching = [p for p in paths if p.endswith(kind)]
        assert matching, kind
        assert all(_line_of(p)[0] == source for p in matching)
    assert all(
        p.startswith(("policy.argo.strategy.canary.steps[", "policy.argo.templates.success-rate.metrics[0]."))
        for p in paths
    )


def test_best_manifest_reads_back_as_best_policy(tuned) -> None:
    out, result = tuned
    # the search found a candidate better than the base, so there is something to write back
    assert result.best, result.notes
    assert not result.notes, result.notes
    from_manifest = read_policy([out / "best-manifest.yaml"]).data
    assert from_manifest == read_policy([out / "best-policy.yaml"]).data
    assert from_manifest == result.best_policy


def test_only_the_tuned_lines_differ_each_in_its_own_document(tuned) -> None:
    out, result = tuned
    written = dict(zip([ROLLOUT, TEMPLATE], _documents((out / "best-manifest.yaml").read_text()), strict=True))
    changed: dict[tuple[Path, int], str] = {}
    for source, text in written.items():
        before, after = source.read_text().splitlines(), text.splitlines()
        assert len(before) == len(after), source.name
        changed |= {(source, k): a for k, (b, a) in enumerate(zip(before, after, strict=True)) if b != a}
    base = read_policy([ROLLOUT, TEMPLATE]).data
    expected: dict[tuple[Path, int], str] = {}
    for path, value in result.best.items():
        if value == _at(base, parse_path(path)[1:]):
            continue  # the base's own value drawn: its line stays as it was
        source, k = _line_of(path)
        key = parse_path(path)[-1]
        old = source.read_text().splitlines()[k]
        # the old line with the value swapped: key, indentation, flow style and comment kept
        old_value = str(_at(base, parse_path(path)[1:]))
        assert old.count(f"{key}: {old_value}") == 1, old
        expected[(source, k)] = old.replace(f"{key}: {old_value}", f"{key}: {value}")
    assert {kind for kind in KINDS if any(p.endswith(kind) for p in result.best)} == set(KINDS)
    assert changed == expected
