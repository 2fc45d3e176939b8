"""The notebooks in notebooks/ execute from top to bottom (jupytext percent-format .py files
converted to notebooks, parameters injected by papermill into the cell tagged
``parameters``, run by nbclient in a fresh kernel, with small CI-sized parameters).

The kernel talks over IPC sockets in a temporary directory rather than TCP ports:
parallel test workers (and other jobs on a shared CI machine) then cannot race for ports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO

jupytext = pytest.importorskip("jupytext", reason="notebook extra not installed (pip install -e '.[notebooks]')")
nbclient = pytest.importorskip("nbclient")
from jupyter_client.manager import KernelManager  # noqa: E402
from papermill.iorw import load_notebook_node  # noqa: E402
from papermill.parameterize import parameterize_notebook  # noqa: E402

NOTEBOOKS = REPO / "notebooks"
FIXTURES = REPO.parent / "shared" / "fixtures" / "upstream"

#: Parameters for CI: small enough that all notebooks together run in well under a minute.
CI_PARAMETERS = {
    "01-quickstart": {"runs": 100},
    "02-tune-flagger-canary": {"runs": 40, "interactive": False},
    "03-threshold-vs-statistics": {"runs": 60},
    "04-import-your-canary": {"runs": 60},
    "05-noise-and-calibration": {"runs": 30},
    # A search on a handful of candidates and runs: it shows the notebook runs, not a result.
    "06-tune-your-canary": {"budget": 4, "min_runs": 45, "max_runs": 135, "validation_runs": 135, "workers": 1},
    "07-ab-experiments": {"runs": 12},
}


def execute(name: str, tmp_path: Path, parameters: dict) -> object:
    ipynb = tmp_path / f"{name}.ipynb"
    jupytext.write(jupytext.read(NOTEBOOKS / f"{name}.py"), ipynb)
    nb = load_notebook_node(str(ipynb))  # papermill's loader: adds the metadata it needs
    tags = [c.metadata.tags for c in nb.cells if c.cell_type == "code"]
    assert any("parameters" in t for t in tags), f"{name}: no cell tagged 'parameters' for papermill"
    nb = parameterize_notebook(nb, parameters, report_mode=False)
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel-ipc"))
    client = nbclient.NotebookClient(
        nb, km=km, timeout=300, startup_timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    return nb


def outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if kind in o.get("data", {})]


def stream_text(nb) -> str:
    return "".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )


def test_every_notebook_is_tested():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == sorted(CI_PARAMETERS)


def test_01_quickstart(tmp_path):
    nb = execute("01-quickstart", tmp_path, CI_PARAMETERS["01-quickstart"])
    assert len(outputs(nb, "image/png")) == 3  # timeline, detection CDF, blast radius
    assert "detection_rate" in stream_text(nb) and "runs: 100" in stream_text(nb)


def test_02_tune_flagger_canary_static_path(tmp_path):
    nb = execute("02-tune-flagger-canary", tmp_path, CI_PARAMETERS["02-tune-flagger-canary"])
    assert len(outputs(nb, "image/png")) == 2  # frontier, false rollbacks
    text = stream_text(nb)
    assert "2,880 rollouts: 18 settings × 4 releases × 40 runs" in text
    assert "choose interval" in text  # a frontier setting met the false-rollback bound
    assert not outputs(nb, "application/vnd.jupyter.widget-view+json")  # no widgets in CI


def test_03_threshold_vs_statistics(tmp_path):
    """The notebook's point holds even at CI size: thresholds roll back every good release in
    the common-mode outage and miss every small regression; the sequential judge does neither."""
    nb = execute("03-threshold-vs-statistics", tmp_path, CI_PARAMETERS["03-threshold-vs-statistics"])
    text = stream_text(nb)
    assert "720 rollouts: 3 scenarios × 4 judges × 60 runs" in text
    lines = {
        tuple(line.split()[:2]): line
        for line in text.splitlines()
        if line.split()[:1] and line.split()[0] in ("good-release", "common-mode-outage", "small-regression")
    }
    assert lines[("common-mode-outage", "thresholds")].split()[2] == "100.0%"
    assert lines[("common-mode-outage", "sequential")].split()[2] == "0.0%"
    assert lines[("small-regression", "thresholds")].split()[2] == "0.0%"
    assert lines[("small-regression", "sequential")].split()[2] == "100.0%"
    assert len(outputs(nb, "image/png")) == 1


@pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason=f"upstream fixtures not found at {FIXTURES} (the notebook reads ../shared/fixtures beside the repository)",
)
def test_04_import_your_canary(tmp_path):
    nb = execute("04-import-your-canary", tmp_path, CI_PARAMETERS["04-import-your-canary"])
    text = stream_text(nb)
    assert "policy 'podinfo' from ../../shared/fixtures/upstream/flagger/istio-canary.yaml" in text
    assert "spec.autoscalerRef: not modelled" in text
    assert "interval: 15s" in text  # the imported policy file
    assert len(outputs(nb, "image/png")) == 3


def test_05_noise_and_calibration(tmp_path):
    """The recording's statistics, the decisions table with its guarantee verdicts and the
    false-rollback figure; the calibration part runs whether or not ``pdsim calibrate`` exists."""
    nb = execute("05-noise-and-calibration", tmp_path, CI_PARAMETERS["05-noise-and-calibration"])
    text = stream_text(nb)
    assert "4,032 five-minute counts, mean 61.8" in text
    assert "variance/mean 51.9" in text
    assert "2,100 rollouts: 5 noise models × 1 rates × 7 policies × 2 releases × 30 runs" in text
    assert "| none (Poisson) | 10 |" in text
    # Without the calibrate command the notebook says so; with it, the calibrated day is compared.
    assert "pdsim calibrate is not available" in text or "simulated (1 day)" in text
    assert len(outputs(nb, "image/png")) == 2


def test_06_tune_your_canary(tmp_path):
    nb = execute("06-tune-your-canary", tmp_path, CI_PARAMETERS["06-tune-your-canary"])
    text = stream_text(nb)
    assert "flagger-default: 7 parameters, 9 releases, rungs [45, 135]" in text
    assert "4 candidates, " in text and "frontier of " in text
    assert len(outputs(nb, "image/png")) == 1  # the frontier
    # Either a recommendation checked on fresh seeds (with the manifest's diff), or the reason.
    if "no candidate met every constraint" not in text:
        assert "excess_errors.mean: base " in text and "constraint false_rollback_rate on fresh seeds: " in text
        assert "+++ best-manifest.yaml" in text
    assert "report.html" in text


def test_07_ab_experiments(tmp_path):
    nb = execute("07-ab-experiments", tmp_path, CI_PARAMETERS["07-ab-experiments"])
    text = stream_text(nb)
    for rule in ("sequential", "group-sequential", "fixed (planned)", "fixed, peeked daily", "bayes"):
        assert rule in text
    assert "false winners [95% CI]" in text and "power [95% CI]" in text
    assert "analytic power of the planned fixed test" in text
    assert "ab-novelty: winners" in text and "ab-guardrail: winners" in text
    assert len(outputs(nb, "image/png")) == 2  # the power curve, regret against time to decide
