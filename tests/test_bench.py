"""``make bench`` (benchmarks/bench.py, issue 17): the table's shape, not its figures.

Nothing here is timed: speed lives in the benchmark. The smoke test runs the whole benchmark
with a handful of runs against HEAD (a temporary git worktree) and checks that it prints one
row per figure of the issue, with both trees' figures, a ratio, the target and a verdict.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

BENCH = REPO / "benchmarks" / "bench.py"

#: The figures of issue 17, in the table's order (items 1-5 and the README's start-up rows).
FIGURES = [
    "plain canary",
    "sequential judge (both metrics)",
    "sequential judge / plain canary",
    "Kayenta judge",
    "argo-canary-steps",
    "run --workers 2 vs 1",
    "compare --workers 2 vs 1",
    "check --workers 2 vs 1",
    "run --runs 1",
    "--help",
    "validate",
]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_readme_rewrite_keeps_everything_outside_the_markers(tmp_path: Path) -> None:
    bench = _bench_module()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nprose before\n\n{bench.START}\nold table\n{bench.END}\n\nprose after\n")
    bench.rewrite_readme("| a | b |", readme)
    table = f"{bench.START}\n```\n| a | b |\n```\n{bench.END}"
    assert readme.read_text() == f"# x\n\nprose before\n\n{table}\n\nprose after\n"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        bench.rewrite_readme("t", readme)


def test_the_readme_has_the_markers_and_the_baseline_is_a_commit() -> None:
    bench = _bench_module()
    text = (REPO / "README.md").read_text()
    assert text.index(bench.START) < text.index(bench.END)
    assert text.index("## Performance") < text.index(bench.START)
    assert re.fullmatch(r"[0-9a-f]{7,40}", bench.baseline_ref())


def test_the_ceiling_is_amdahls_law_with_the_start_up_unshared() -> None:
    bench = _bench_module()
    assert bench._ceiling(1.0, 7.0) == pytest.approx(7.0 / (1.0 + 3.0))  # 1.75x
    assert bench._ceiling(0.0, 5.0) == pytest.approx(2.0)  # nothing unshared: twice as fast
    assert bench._ceiling(2.0, 2.0) == pytest.approx(1.0)  # all start-up: no gain


def test_the_report_ends_with_its_notes() -> None:
    bench = _bench_module()
    row = bench.Row("f", "1", "2", "0.50x", ">= 1", True)
    text = bench.report(
        [row], now="n", before="b", host="h", sizes=bench.QUICK, repeats=1, notes=["run --workers 2: at most 1.60x"]
    )
    assert text.splitlines()[-2:] == ["targets met: 1 of 1", "run --workers 2: at most 1.60x"]


def test_a_row_is_one_markdown_line() -> None:
    bench = _bench_module()
    row = bench.Row("f", "1", "2", "0.50x", ">= 1", True)
    assert bench.table([row]).splitlines()[-1] == "| f | 1 | 2 | 0.50x | >= 1 | yes |"


@pytest.mark.slow
def test_quick_bench_against_head_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--runs", "3", "--base", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("machine: ") and "cores, Python " in lines[0]
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| figure")]
    assert len(rows) == len(FIGURES)
    for row, figure in zip(rows, FIGURES):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 6, row
        assert cells[0].startswith(figure), row
        assert cells[4].startswith((">=", "<")) and cells[5] in ("yes", "no"), row
    assert re.search(r"^targets met: \d+ of 11$", done.stdout, re.M)
