"""``pdsim calibrate`` end to end: the scenario written loads and says what was fitted
from what, the report compares recorded and simulated, bad input is one line and exit 2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.inputs.scenario import load_scenario
from tests.calibrate.exports import LE, counts_to_series, query_range
from tests.helpers import invoke, parse_page, write


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory):
    """Two hours at 15 s of a 3-pod service: 20 requests/s, 2% errors, lognormal latency."""
    rng = np.random.default_rng(11)
    t, pods = 480, 3
    req = rng.poisson(20 * 15 / pods, size=(t, pods))
    err = rng.binomial(req, 0.02)
    z = np.exp(rng.normal(math.log(40), math.log(250 / 40) / 2.326, size=(pods, 100_000)))
    bins = np.concatenate([[0], LE, [np.inf]])
    lat = np.stack([np.histogram(z[j], bins=bins)[0] for j in range(pods)]).astype(float)
    series = counts_to_series((req - err).astype(float), err.astype(float), lat, pods=("a", "b", "c"))
    folder = tmp_path_factory.mktemp("calibrate")
    return write(folder, "web.json", query_range(series, 15.0))


def test_calibrate_writes_a_loadable_commented_scenario(export, tmp_path) -> None:
    out = tmp_path / "web.yaml"
    result = invoke("calibrate", export, "-o", out)
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    scenario = load_scenario(out)
    assert scenario.name == "calibrated-web"
    assert scenario.traffic.rate.constant == pytest.approx(20, rel=0.03)
    assert scenario.baseline.error_rate == pytest.approx(0.02, rel=0.1)
    assert scenario.baseline.latency.median == pytest.approx(40, rel=0.05)
    assert scenario.baseline.replicas == 3
    assert scenario.telemetry.scrape_interval == 15 and scenario.telemetry.provider == "istio"
    assert scenario.policy is not None and scenario.release.faults == []
    for said in ("# traffic.rate:", "# baseline.error_rate:", "# baseline.latency: maximum likelihood", "# Requests:"):
        assert said in text
    assert "web.json" in text
    run = invoke("run", out, "--runs", 2)  # loadable and runnable at once
    assert run.exit_code == 0, run.stderr


def test_the_report_puts_recorded_and_simulated_side_by_side(export, tmp_path) -> None:
    out, html = tmp_path / "web.yaml", tmp_path / "web.html"
    result = invoke("calibrate", export, "-o", out, "--report", html)
    assert result.exit_code == 0, result.stderr
    page = html.read_text()
    for statistic in ("mean rate", "error ratio", "request dispersion at 60s", "latency p99", "requests per minute"):
        assert statistic in page
    assert page.count("data:image/png;base64,") == 3
    parse_page(page)  # well-formed


def test_output_onto_an_input_is_refused(export) -> None:
    before = export.read_text()
    result = invoke("calibrate", export, "-o", export)
    assert result.exit_code == 2
    assert "would overwrite the input" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert export.read_text() == before


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("empty.json", "", "empty.json:1: empty file"),
        ("vector.json", '{"data": {"resultType": "vector", "result": []}}', "resultType"),
        ("up.json", query_range({(("__name__", "up"),): np.arange(5.0)}, 15.0), "no request counter"),
    ],
)
def test_bad_exports_are_one_line_and_exit_2(tmp_path, name: str, text: str, expected: str) -> None:
    result = invoke("calibrate", write(tmp_path, name, text), "-o", tmp_path / "out.yaml")
    assert result.exit_code == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_report_for_a_provider_not_simulated_is_one_line(tmp_path) -> None:
    series = {(("__name__", "response_total"), ("direction", "inbound"), ("status_code", "200")): np.arange(10.0)}
    path = write(tmp_path, "linkerd.json", query_range(series, 15.0))
    result = invoke("calibrate", path, "-o", tmp_path / "out.yaml", "--report", tmp_path / "r.html")
    assert result.exit_code == 2
    assert "--report: simulating the linkerd exporter's series is not supported yet" in result.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_timeouts_become_error_latency(tmp_path) -> None:
    rng = np.random.default_rng(13)
    t = 240
    req = rng.poisson(300, size=(t, 1))
    err = rng.binomial(req, 0.02)
    bins = np.concatenate([[0], LE, [np.inf]])
    ok_lat = np.histogram(np.exp(rng.normal(math.log(40), 0.8, 50_000)), bins=bins)[0][None, :].astype(float)
    err_lat = np.histogram(rng.lognormal(math.log(2000), 0.1, 2_000), bins=bins)[0][None, :].astype(float)
    series = counts_to_series((req - err).astype(float), err.astype(float), ok_lat, err_lat)
    out = tmp_path / "out.yaml"
    result = invoke("calibrate", write(tmp_path, "t.json", query_range(series, 15.0)), "-o", out)
    assert result.exit_code == 0, result.stderr
    scenario = load_scenario(out)
    assert scenario.baseline.error_latency is not None
    assert scenario.baseline.error_latency.median == pytest.approx(2000, rel=0.1)
    assert scenario.baseline.latency.median == pytest.approx(40, rel=0.1)
    assert "# baseline.error_latency: failed (5xx) requests' latency differs" in out.read_text()


@pytest.mark.filterwarnings("error")
def test_the_shortest_recording_reports_without_warnings(tmp_path) -> None:
    rows = [
        f'{1767225600 + 15 * i},"istio_requests_total{{pod=""a"",response_code=""200""}}",{10 + 12 * i}'
        for i in range(3)
    ]
    path = write(tmp_path, "tiny.csv", "timestamp,metric,value\n" + "\n".join(rows) + "\n")
    result = invoke("calibrate", path, "-o", tmp_path / "tiny.yaml", "--report", tmp_path / "tiny.html")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert load_scenario(tmp_path / "tiny.yaml").traffic.rate.constant == pytest.approx(24 / 30)
