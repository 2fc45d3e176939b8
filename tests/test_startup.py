"""What ``pdsim`` loads to start (issue 17 item 4): behaviour, not time.

The libraries a command does not use stay out of the process (docs/architecture.md section
2, "Lazy imports"): every check runs the command in a fresh interpreter and reads its
``sys.modules``. The wall times live in ``benchmarks/bench_startup.py``, never here.
Also here: the pandas-free record columns ``pdsim run`` summarises (``RecordsTable``) hold
what the Arrow table of the same records holds; and the compiled kernels are loaded from
numba's on-disk cache, in a fresh copy of the package, a read-only one, and one whose home
is read-only too (where ``pdsim`` gives numba a private folder); slow: each compiles them once.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim.inputs.policy import load_scenario_and_policy
from sim.runs.runner import RecordsTable, run_batch
from sim.runs.store import records_table
from sim.stats import SUMMARY_COLUMNS, summarize_records
from tests.helpers import REPO, SCENARIOS

#: Runs a ``pdsim`` command (click's group, without the exit handler of ``sim.cli.main``,
#: which ends the process before anything could be reported) and reports the modules loaded.
_PROBE = """
import json, sys
args = json.loads(sys.argv[1])
from sim.cli import cli
code = 0
if args is not None:
    try:
        code = cli.main(args=args, prog_name="pdsim", standalone_mode=False)
    except SystemExit as err:
        code = err.code
sys.stderr.write("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""

#: Libraries no command needs until it simulates, reports or reads results.
HEAVY = ("scipy", "pandas", "matplotlib", "pyarrow", "numba", "simpy", "joblib", "jinja2", "optuna", "sqlalchemy")


def _loaded(args: list[str] | None, cwd: Path = REPO, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter holds after ``pdsim ARGS`` (None: after importing sim.cli)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd), **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    return set(report["modules"])


def _heavy(modules: set[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(name for name in names if name in modules)


def test_importing_the_cli_loads_neither_numpy_nor_any_heavy_library() -> None:
    modules = _loaded(None)
    assert _heavy(modules, (*HEAVY, "numpy", "pydantic")) == []
    assert "sim.cli" in modules  # the probe did import it


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["validate", "--help"]])
def test_help_loads_neither_numpy_nor_any_heavy_library(args: list[str]) -> None:
    assert _heavy(_loaded(args), (*HEAVY, "numpy", "pydantic")) == []


#: A Flagger policy decided by a statistical judge (the sequential e-process).
JUDGED = REPO / "gates" / "policies" / "flagger-sequential.yaml"


@pytest.mark.parametrize(
    "paths",
    [
        ["good-release.yaml"],  # Flagger, builtin metrics
        ["argo-canary-steps.yaml"],  # Argo Rollouts with AnalysisTemplates
        ["small-regression.yaml", str(JUDGED)],  # a policy file with a judge
    ],
)
def test_validate_loads_no_heavy_library(paths: list[str]) -> None:
    modules = _loaded(["validate", *(str(SCENARIOS / p) for p in paths)])
    assert "sim.inputs.policy" in modules  # the policy was built, not only the YAML read
    # Every judge's module is loaded (policies/judges/__init__.py), none of their scipy.
    assert "sim.policies.judges.bayes" in modules and "sim.policies.judges.classical" in modules
    assert _heavy(modules) == []


#: Modules of the Argo reconciler: a scenario's model names the ``argo:`` block
#: (``sim.policies.argo.spec``), only an Argo policy's building needs these.
ARGO_RECONCILER = ("sim.policies.argo.rollout", "sim.policies.argo.plan", "sim.policies.argo.class_keys")


@pytest.mark.parametrize("args", [["validate", "good-release.yaml"], ["run", "good-release.yaml", "--runs", "1"]])
def test_a_flagger_policy_loads_no_argo_reconciler(args: list[str]) -> None:
    modules = _loaded([args[0], str(SCENARIOS / args[1]), *args[2:]])
    assert "sim.policies.argo.spec" in modules and "sim.policies.flagger.spec" in modules
    assert _heavy(modules, ARGO_RECONCILER) == []


def test_an_argo_policy_loads_its_reconciler() -> None:
    modules = _loaded(["run", str(SCENARIOS / "argo-canary-steps.yaml"), "--runs", "1"])
    assert _heavy(modules, ARGO_RECONCILER) == sorted(ARGO_RECONCILER)


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_run_loads_neither_pandas_nor_matplotlib_nor_scipy_stats(extra: list[str]) -> None:
    modules = _loaded(["run", str(SCENARIOS / "good-release.yaml"), "--runs", "1", *extra])
    assert "sim.world.controller" in modules  # it did simulate
    # pyarrow.compute: only reading a results folder needs it (sim/runs/store.py).
    unused = ("pandas", "matplotlib", "scipy.stats", "scipy.optimize", "simpy", "joblib", "jinja2", "pyarrow.compute")
    assert _heavy(modules, unused) == []


def test_a_judged_run_loads_no_scipy_stats() -> None:
    # The sequential e-process needs scipy.special only (sim/policies/judges/sequential.py).
    modules = _loaded(["run", str(SCENARIOS / "small-regression.yaml"), "--policy", str(JUDGED), "--runs", "1"])
    assert "sim.policies.judges.sequential" in modules
    assert _heavy(modules, ("pandas", "matplotlib", "scipy.stats")) == []


def test_importing_the_draws_loads_no_compiled_kernel() -> None:
    # A kernel with an explicit signature is loaded from numba's cache (or compiled) when its
    # module is imported; the draws' are typed by their first call instead (sim/world/draws.py).
    probe = (
        "from sim.world import draws\n"
        "print(sum(len(f.signatures) for f in vars(draws).values() if hasattr(f, 'signatures')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "NUMBA_DEBUG_CACHE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["0"]  # no "[cache] ... loaded" line either


def test_the_command_runs_with_the_start_up_collector_thresholds() -> None:
    from sim.cli import STARTUP_GC_THRESHOLDS

    # The group's main is replaced by a probe: what matters is what ``sim.cli.main`` set up
    # before handing over to it.
    probe = (
        "import gc, sys\n"
        "import sim.cli\n"
        "sim.cli.cli.main = lambda *a, **k: print(list(gc.get_threshold())) or 0\n"
        "sim.cli.main(['--version'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == list(STARTUP_GC_THRESHOLDS)
    assert STARTUP_GC_THRESHOLDS[0] > 700  # above the interpreter's default


# --- the record columns a run summarises -------------------------------------------------


def _same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("scenario", ["error-spike.yaml", "good-release.yaml"])
def test_record_columns_hold_what_the_arrow_table_holds(scenario: str) -> None:
    loaded, policy, _ = load_scenario_and_policy(str(SCENARIOS / scenario), ())
    records = run_batch(loaded, policy, 120, 5)
    table = RecordsTable()
    table.add(records[:50])
    table.add(records[50:])
    assert table.runs == 120

    arrow = records_table(records)
    reference = arrow.to_pandas()
    for name in reference.columns:  # texts as objects, as RecordsTable.frame has them
        # (and an all-null one, e.g. ``winner`` without business:, which Arrow gives as strings)
        column = reference[name]
        if isinstance(column.dtype, pd.StringDtype) and column.isna().all():
            reference[name] = pd.Series([None] * len(column), dtype=object)
        elif isinstance(column.dtype, pd.CategoricalDtype):
            reference[name] = reference[name].astype(object)
    pd.testing.assert_frame_equal(table.frame(), reference)
    pd.testing.assert_frame_equal(table.frame(["outcome", "run"]), reference[["outcome", "run"]])

    rows = list(table.dicts(rows=7))
    assert len(rows) == 120
    for got, want, record in zip(rows, arrow.to_pylist(), records):
        assert list(got) == list(want) == list(record.as_dict())
        assert all(_same(got[k], want[k]) and type(got[k]) is type(want[k]) for k in want)

    columns = table.columns(SUMMARY_COLUMNS)
    assert summarize_records(columns) == summarize_records(reference[list(SUMMARY_COLUMNS)])
    assert summarize_records(columns) == summarize_records([r.as_dict() for r in records])
    expected = reference["outcome"].value_counts().to_dict()
    assert table.outcome_counts() == expected


def test_record_columns_keep_missing_values_apart_from_nan() -> None:
    loaded, policy, _ = load_scenario_and_policy(str(SCENARIOS / "good-release.yaml"), ())
    records = run_batch(loaded, policy, 3, 1)
    assert all(r.detection_time_s is None for r in records)  # nothing detected on a good release
    table = RecordsTable()
    table.add(records)
    assert [row["detection_time_s"] for row in table.dicts()] == [None, None, None]
    assert all(math.isnan(v) for v in table.columns(["detection_time_s"])["detection_time_s"])


def test_an_empty_record_table_summarises_to_no_runs() -> None:
    table = RecordsTable()
    assert summarize_records(table.columns(SUMMARY_COLUMNS))["runs"] == 0
    assert list(table.dicts()) == [] and table.outcome_counts() == {}


# --- numba's on-disk cache ---------------------------------------------------------------


def _cache_events(cwd: Path, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "sim", "run", "scenarios/good-release.yaml", "--runs", "1"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd), "NUMBA_DEBUG_CACHE": "1", **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "NumbaWarning" not in done.stderr  # e.g. "cannot cache function": compiled every run
    return [line for line in done.stdout.splitlines() if line.startswith("[cache]")]


def _fresh_copy(tmp_path: Path) -> Path:
    root = tmp_path / "pdsim"
    shutil.copytree(REPO / "sim", root / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SCENARIOS, root / "scenarios")
    return root


def _unwritable_install(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the package where no ``__pycache__`` can be made (each is a file: even root
    cannot make a folder there) and a home whose cache folder cannot be made either."""
    root = _fresh_copy(tmp_path)
    for folder in [root / "sim", *(p for p in (root / "sim").rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("not a folder")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    (tmp_path / "tmp").mkdir()
    env = {"HOME": str(blocked / "home"), "XDG_CACHE_HOME": str(blocked / "cache"), "TMPDIR": str(tmp_path / "tmp")}
    return root, env


@pytest.mark.slow
def test_a_fresh_copy_compiles_its_kernels_once_then_loads_them_from_the_cache(tmp_path: Path) -> None:
    root = _fresh_copy(tmp_path)
    first = _cache_events(root, {})
    assert any("data saved" in line for line in first)
    second = _cache_events(root, {})
    assert [line for line in second if "saved" in line] == []  # nothing compiled again
    assert any("data loaded" in line for line in second)
    assert all(str(root / "sim") in line for line in second)  # the package's own __pycache__


@pytest.mark.slow
def test_a_read_only_install_caches_its_kernels_in_the_users_cache(tmp_path: Path) -> None:
    root, env = _unwritable_install(tmp_path)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # a home that can be written
    _cache_events(root, env)
    second = _cache_events(root, env)
    assert [line for line in second if "saved" in line] == []
    assert second and all(str(tmp_path / "cache" / "numba") in line for line in second)


def test_without_a_writable_cache_numba_gets_a_private_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.cli import _numba_cache_folder

    root, env = _unwritable_install(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    folder = _numba_cache_folder(root / "sim")
    assert folder == tmp_path / "tmp" / f"pdsim-numba-{os.getuid()}"
    assert folder.is_dir() and folder.stat().st_mode & 0o077 == 0
    assert _numba_cache_folder(root / "sim") == folder  # the same one next time

    # A folder of that name that others can write is not used: a planted kernel would run.
    folder.chmod(0o777)
    other = _numba_cache_folder(root / "sim")
    assert other is not None and other != folder and other.parent == tmp_path / "tmp"

    # Nothing to do when the package can cache, or when the user chose a folder.
    assert _numba_cache_folder(REPO / "sim") is None
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "chosen"))
    assert _numba_cache_folder(root / "sim") is None


@pytest.mark.slow
def test_an_install_numba_cannot_cache_in_still_runs_and_caches_its_kernels(tmp_path: Path) -> None:
    # Without the fallback: "internal error: RuntimeError: cannot cache function '_hashmix':
    # no locator available for file .../sim/runs/seedseq.py" (numba/core/caching.py
    # _CacheImpl), exit 3.
    root, env = _unwritable_install(tmp_path)
    first = _cache_events(root, env)
    assert any("data saved" in line for line in first)
    second = _cache_events(root, env)
    assert [line for line in second if "saved" in line] == []
    folder = str(tmp_path / "tmp" / f"pdsim-numba-{os.getuid()}")
    assert second and all(folder in line for line in second)
