"""What the command line must never do to the user's files and processes (issue 13):
overwrite an input with an output (item 3), print a traceback or stay silent when
interrupted (item 12), leave worker processes behind when killed (item 13).

The interrupt and kill tests run ``python -m sim`` as a real process: signals and worker
processes cannot be tested in-process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CANARY_MANIFEST as CANARY
from tests.helpers import POLICY_FILE as POLICY
from tests.helpers import REPO, SCENARIOS, TEST_FIXTURES, invoke

#: The same policy as JSON (a policy file may be .json), for files named like results.
POLICY_JSON = (
    '{"flagger": {"analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,'
    ' "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]}}}'
)


def _copy_scenario(tmp_path: Path, name: str = "error-spike.yaml") -> Path:
    path = tmp_path / name
    shutil.copy(SCENARIOS / "error-spike.yaml", path)
    return path


def _refused(result, option: str, victim: Path, before: bytes) -> None:
    """One line ``pdsim: OPTION ... would overwrite ...``, exit 2, the input untouched."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"pdsim: {option} ") and "would overwrite the input" in result.stderr
    assert victim.read_bytes() == before


# --- item 3: no output option overwrites an input ----------------------------------------------


def test_run_trace_onto_the_scenario_a_symlink_to_it_or_a_policy_is_refused(tmp_path: Path) -> None:
    scenario = _copy_scenario(tmp_path)
    before = scenario.read_bytes()
    _refused(invoke("run", scenario, "--runs", 2, "--trace", scenario), "--trace", scenario, before)
    link = tmp_path / "link.jsonl"
    link.symlink_to(scenario)
    _refused(invoke("run", scenario, "--runs", 2, "--trace", link), "--trace", scenario, before)
    hard = tmp_path / "hard.jsonl"
    os.link(scenario, hard)
    _refused(invoke("run", scenario, "--runs", 2, "--trace", hard), "--trace", scenario, before)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    _refused(
        invoke("run", scenario, "--policy", policy, "--runs", 2, "--trace", policy), "--trace", policy, POLICY.encode()
    )
    # a file inside a --policy directory is an input too
    pdir = tmp_path / "pdir"
    pdir.mkdir()
    (pdir / "canary.yaml").write_text(POLICY)
    _refused(
        invoke("run", scenario, "--policy", pdir, "--runs", 2, "--trace", pdir / "canary.yaml"),
        "--trace",
        pdir / "canary.yaml",
        POLICY.encode(),
    )
    # another path is fine
    ok = invoke("run", scenario, "--runs", 2, "--trace", tmp_path / "trace.jsonl")
    assert ok.exit_code == 0, ok.stderr


def test_run_trace_onto_the_manifest_a_scenario_names_is_refused(tmp_path: Path) -> None:
    canary = tmp_path / "canary.yaml"
    canary.write_text(CANARY)
    scenario = tmp_path / "scenario.yaml"
    head, _, _ = (SCENARIOS / "error-spike.yaml").read_text().partition("\npolicy:")
    scenario.write_text(head + "\npolicy: {manifest: canary.yaml}\n")
    assert invoke("validate", scenario).exit_code == 0
    _refused(invoke("run", scenario, "--runs", 2, "--trace", canary), "--trace", canary, CANARY.encode())
    # and a gates file naming that scenario guards the manifest too
    gates = tmp_path / "gates.yaml"
    gates.write_text("runs: 5\nscenarios: [scenario.yaml]\nrequirements: {detection_rate: {min: 0}}\n")
    _refused(invoke("check", gates, "--junit", canary), "--junit", canary, CANARY.encode())


def test_run_out_never_replaces_an_input_file(tmp_path: Path) -> None:
    # a policy file that happens to be called summary.json, in the --out folder
    scenario = _copy_scenario(tmp_path)
    policy = tmp_path / "summary.json"
    policy.write_text(POLICY_JSON)
    before = policy.read_bytes()
    _refused(invoke("run", scenario, "--policy", policy, "--runs", 2, "--out", tmp_path), "--out", policy, before)
    assert not list(tmp_path.glob("records-*.parquet"))


def test_replay_trace_onto_the_observations_or_the_policy_is_refused(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    csv = tmp_path / "obs.csv"
    shutil.copy(TEST_FIXTURES / "replay" / "error-spike.csv", csv)
    before = csv.read_bytes()
    _refused(invoke("replay", policy, "--observations", csv, "--trace", csv), "--trace", csv, before)
    _refused(invoke("replay", policy, "--observations", csv, "--trace", policy), "--trace", policy, POLICY.encode())
    ok = invoke("replay", policy, "--observations", csv, "--trace", tmp_path / "t.jsonl")
    assert ok.exit_code == 0, ok.stderr


def _gates(tmp_path: Path) -> tuple[Path, Path]:
    scenario = _copy_scenario(tmp_path)
    gates = tmp_path / "gates.yaml"
    gates.write_text(f"runs: 5\nscenarios: [{scenario.name}]\nrequirements: {{detection_rate: {{min: 0}}}}\n")
    return gates, scenario


def test_check_junit_and_markdown_onto_the_gates_file_or_what_it_names_are_refused(tmp_path: Path) -> None:
    gates, scenario = _gates(tmp_path)
    before, scenario_before = gates.read_bytes(), scenario.read_bytes()
    _refused(invoke("check", gates, "--junit", gates), "--junit", gates, before)
    _refused(invoke("check", gates, "--markdown", gates), "--markdown", gates, before)
    _refused(invoke("check", gates, "--junit", scenario), "--junit", scenario, scenario_before)
    policy = tmp_path / "base.yaml"
    policy.write_text(POLICY)
    _refused(invoke("check", gates, "--baseline", policy, "--markdown", policy), "--markdown", policy, POLICY.encode())
    ok = invoke("check", gates, "--junit", tmp_path / "junit.xml")
    assert ok.exit_code == 0, ok.stderr


def test_report_html_onto_the_results_or_a_file_inside_them_is_refused(tmp_path: Path) -> None:
    scenario = _copy_scenario(tmp_path)
    out = tmp_path / "out"
    assert invoke("run", scenario, "--runs", 3, "--out", out).exit_code == 0
    chunk = next(out.glob("records-*.parquet"))
    before = chunk.read_bytes()
    _refused(invoke("report", out, "--html", chunk), "--html", chunk, before)
    _refused(invoke("report", chunk, "--html", chunk), "--html", chunk, before)
    summary = (out / "summary.json").read_bytes()
    _refused(invoke("report", out, "--html", out / "summary.json"), "--html", out / "summary.json", summary)
    _refused(
        invoke("report", out, "--scenario", scenario, "--html", scenario), "--html", scenario, scenario.read_bytes()
    )
    ok = invoke("report", out, "--html", out / "report.html")  # a new file beside the results is fine
    assert ok.exit_code == 0, ok.stderr


SWEEP = """\
scenario: error-spike.yaml
policies: [summary.json]
grid:
  policy.flagger.analysis.threshold: [1, 5]
runs: 4
seed: 5
"""


def test_sweep_out_onto_the_sweep_files_folder_keeps_its_inputs(tmp_path: Path) -> None:
    _copy_scenario(tmp_path)
    policy = tmp_path / "summary.json"  # a policy file the sweep names, where the summary goes
    policy.write_text(
        '{"flagger": {"analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,'
        ' "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]}}}'
    )
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    before = policy.read_bytes()
    _refused(invoke("sweep", sweep, "--out", tmp_path), "--out", policy, before)
    assert not (tmp_path / "manifest.json").exists()
    # the sweep file's own folder is a fine --out when nothing there would be replaced
    policy.rename(tmp_path / "policy.json")
    sweep.write_text(SWEEP.replace("summary.json", "policy.json"))
    ok = invoke("sweep", sweep, "--out", tmp_path)
    assert ok.exit_code == 0, ok.stderr


# --- item 12: Ctrl-C says what it kept, exit 130, no traceback -------------------------------------

#: Bounded waits: a command starts working within STARTUP s, and stops within STOP s of Ctrl-C.
STARTUP, STOP = 90.0, 60.0
#: More rollouts than any test lets finish.
MANY = 10**6


#: ``python -m sim`` with Ctrl-C's default Python handler, as in a shell's foreground job. A
#: process started in the background of a non-interactive shell (``cmd &``, as a CI runner
#: may start the suite) inherits SIGINT *ignored*, and rightly keeps ignoring it: these tests
#: would then see no interrupt at all.
_AS_A_TERMINAL_JOB = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('sim', run_name='__main__', alter_sys=True)"
)


class Pdsim:
    """``python -m sim ARGS`` in a process group of its own (as a shell job is), Ctrl-C
    armed, with its stderr read line by line as it comes."""

    def __init__(self, *args: object, cwd: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env.pop("PDSIM_DEBUG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _AS_A_TERMINAL_JOB, *map(str, args)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.out: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stderr, self.lines), (self.proc.stdout, self.out))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    def wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        end = time.monotonic() + STARTUP
        while not ready():
            assert self.proc.poll() is None, f"pdsim ended before {what}: {''.join(self.lines)}"
            assert time.monotonic() < end, f"no {what} after {STARTUP}s"
            time.sleep(0.05)

    def ctrl_c(self) -> tuple[int, str]:
        """SIGINT to the whole process group, as a terminal's Ctrl-C; (exit code, stderr)."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(STOP)
        for reader in self.readers:
            reader.join(STOP)
        return self.proc.returncode, "".join(self.lines)

    def kill_group(self) -> None:
        """Whatever is left of this process group (never other processes)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(STOP)


@pytest.fixture
def pdsim(tmp_path: Path) -> Iterator[Callable[..., Pdsim]]:
    started: list[Pdsim] = []

    def start(*args: object) -> Pdsim:
        started.append(Pdsim(*args, cwd=tmp_path))
        return started[-1]

    yield start
    for p in started:
        p.kill_group()


def _interrupted(code: int, stderr: str) -> str:
    """The last stderr line, once checked to be the only interrupt line, with exit 130."""
    assert code == 130, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    lines = stderr.splitlines()
    assert lines and [ln for ln in lines if "interrupted" in ln] == lines[-1:], stderr
    return lines[-1]


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_during_run_out_says_how_many_chunks_it_kept(
    pdsim: Callable[..., Pdsim], tmp_path: Path, workers: int
) -> None:
    out = tmp_path / "out"
    proc = pdsim("run", SCENARIOS / "error-spike.yaml", "--runs", MANY, "--chunk-size", 50, "--workers", workers,
                 "--out", out)  # fmt: skip
    proc.wait_for("chunk file", lambda: any(out.glob("records-*.parquet")))
    line = _interrupted(*proc.ctrl_c())
    kept = len(list(out.glob("records-*.parquet")))
    assert line == f"pdsim: interrupted; {kept} finished chunk(s) kept in {out}"
    assert kept >= 1 and not (out / "summary.json").exists()


# With --workers 2 the Ctrl-C lands while the workers start or run: they are forked with
# SIGINT blocked and ignore it (sim.runs.pool), so only pdsim's one line is printed. (Under
# loky, a worker still importing joblib printed its own traceback, issue 13.)
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_during_run_says_interrupted(pdsim: Callable[..., Pdsim], tmp_path: Path, workers: int) -> None:
    trace = tmp_path / "trace.jsonl"  # written just before the runs start
    proc = pdsim("run", SCENARIOS / "error-spike.yaml", "--runs", MANY, "--workers", workers, "--trace", trace)
    proc.wait_for("trace", trace.exists)
    time.sleep(1.0)  # into the runs (and the workers' start)
    assert _interrupted(*proc.ctrl_c()) == "pdsim: interrupted"
    assert proc.stdout == ""


def test_ctrl_c_during_a_sweep_says_how_to_resume(pdsim: Callable[..., Pdsim], tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    grid = "grid:\n  policy.flagger.analysis.threshold: [1, 5]\n"
    sweep.write_text(f"scenario: {SCENARIOS / 'error-spike.yaml'}\n{grid}runs: {MANY}\nchunk_size: 50\n")
    out = tmp_path / "out"
    proc = pdsim("sweep", sweep, "--out", out, "--workers", 2, "--runs", 2000)
    proc.wait_for("chunk file", lambda: any(out.glob("records-c*.parquet")))
    line = _interrupted(*proc.ctrl_c())
    kept = len(list(out.glob("records-c*.parquet")))
    assert line == (
        f"pdsim: interrupted; {kept} finished chunk(s) kept in {out}; "
        f"resume with pdsim sweep {sweep} --out {out} --resume --runs=2000 --workers=2"
    )


def test_ctrl_c_during_check_says_interrupted(pdsim: Callable[..., Pdsim], tmp_path: Path) -> None:
    gates = tmp_path / "gates.yaml"
    gates.write_text(
        f"scenarios:\n  - {{path: {SCENARIOS / 'good-release.yaml'}, runs: 5}}\n"
        f"  - {{path: {SCENARIOS / 'error-spike.yaml'}, runs: {MANY}}}\n"
        "requirements: {detection_rate: {min: 0}}\n"
    )
    proc = pdsim("check", gates, "--workers", 2)
    proc.wait_for("progress line", lambda: bool(proc.lines))  # the first scenario is done
    assert _interrupted(*proc.ctrl_c()) == "pdsim: interrupted"
    assert proc.lines[0].startswith("good-release")


# --- item 13: workers die with their parent ---------------------------------------------------------


def test_sigkill_of_pdsim_leaves_no_worker_holding_its_pipes(pdsim: Callable[..., Pdsim], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = pdsim("run", SCENARIOS / "error-spike.yaml", "--runs", MANY, "--chunk-size", 50, "--workers", 2,
                 "--out", out)  # fmt: skip
    proc.wait_for("chunk file", lambda: any(out.glob("records-*.parquet")))  # the workers are at work
    os.kill(proc.proc.pid, signal.SIGKILL)  # the parent only, as a CI runner's timeout does
    proc.proc.wait(STOP)
    # stdout and stderr reach EOF once every process holding them is gone: the workers and
    # loky's resource tracker (which ends when they do)
    for reader in proc.readers:
        reader.join(15)
    assert not any(reader.is_alive() for reader in proc.readers), "a worker still holds pdsim's pipes after 15 s"


def test_ctrl_c_inside_a_compiled_call_is_an_interrupt(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A Ctrl-C that lands inside a numba call surfaces as ``SystemError: ... returned a
    result with an exception set`` caused by the KeyboardInterrupt (seen in CI while numba
    compiled on first use): still one interrupt line and exit 130, not an internal error."""
    import sim.runs.runner as runner
    from sim.cli import cli

    def compiled_call_interrupted(*args: object, **kwargs: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as err:
            raise SystemError(
                "CPUDispatcher(<function multinomial_rows>) returned a result with an exception set"
            ) from err

    monkeypatch.setattr(runner, "iter_chunks", compiled_call_interrupted)
    code = cli.main(args=["run", str(SCENARIOS / "error-spike.yaml"), "--runs", "10"], standalone_mode=False)
    assert code == 130
    assert capsys.readouterr().err == "pdsim: interrupted\n"


def test_ctrl_c_inside_a_ctypes_callback_interrupts_without_a_traceback(tmp_path: Path) -> None:
    """A Ctrl-C that lands in a ctypes callback (numba's LLVM binding hands compiled code to
    its cache through one: llvmlite ``_raw_object_cache_notify``, seen in CI) cannot be raised
    there: Python prints it as "Exception ignored in" with a traceback and drops it. pdsim's
    hook delivers it again to the main thread, so the command stops, silently, as on any
    Ctrl-C."""
    script = tmp_path / "callback.py"
    script.write_text(
        "import ctypes, signal, sys, time\n"
        "from sim.cli import _Exit\n"
        "end = _Exit()\n"
        "sys.unraisablehook = end.unraisable\n"
        "signal.signal(signal.SIGINT, end.on_sigint_in_command)\n"
        "def notify():\n"
        "    raise KeyboardInterrupt\n"
        "callback = ctypes.CFUNCTYPE(None)(notify)\n"
        "try:\n"
        "    callback()\n"
        "    time.sleep(30)\n"
        "    print('lost')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', end.interrupting)\n"
    )
    done = subprocess.run([sys.executable, script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (done.stdout, done.stderr) == ("interrupted True\n", "")
