"""The limits of sim.limits at their edges (issue 13, items 5 and 7 and the exit-3 list).

Each limit is pinned twice: the largest legal value passes validation, and one beyond it
(plus the values the issue reported: ``rate: 1e19``, ``horizon: 1e300``, ``scrape_interval:
1ns``, ...) is refused with exit 2 and one line ``FILE:LINE: FIELD: message`` naming the
field and the limit, never a traceback or an internal error.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sim.gates.spec import load_gates
from sim.limits import MAX_BURSTS, MAX_SEED
from sim.sweeps.spec import load_sweep
from tests.helpers import POLICY_FILE, REPO, invoke, line_of, write

BASE = (
    """\
name: limits
horizon: 30m
after_promotion: 10m
traffic:
  rate: {constant: 100/s}
  users: 1000
baseline:
  error_rate: 0.001
release:
  test_rps: 0
  faults:
    - {kind: error_rate, rate: 0.05, onset: 0s}
telemetry:
  scrape_interval: 15s
policy:
"""
    + textwrap.indent(POLICY_FILE, "  ")
    + """\
runs: 10
seed: 1
"""
)

RATE = "  rate: {constant: 100/s}"
FAULT = "    - {kind: error_rate, rate: 0.05, onset: 0s}"
METRICS = "        - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}"


def _bursts(n: int, factor: float) -> str:
    """``n`` bursts of ``factor`` in one flow list, all over the first minute."""
    items = ", ".join(f"{{at: 0s, duration: 1m, factor: {factor}}}" for _ in range(n))
    return f"  rate: {{constant: 1/s, bursts: [{items}]}}"


def _hey(cmd: str) -> str:
    return METRICS + f"\n      webhooks:\n        - {{name: load, url: http://lt/, metadata: {{cmd: {cmd!r}}}}}"


@dataclass
class Limit:
    """One limit: the edits that make its largest legal value and those that go one beyond.

    ``needle`` is text on the line the error names (default: the last edit's new text).
    """

    id: str
    legal: list[tuple[str, str]]
    beyond: list[tuple[str, str]]
    field: str
    message: str
    needle: str = ""
    extra: list[list[tuple[str, str]]] = field(default_factory=list)  # more illegal values, same field


LIMITS = [
    Limit(
        "rate",
        [(RATE, "  rate: {constant: 100000000/s}")],
        [(RATE, "  rate: {constant: 100000001/s}")],
        "traffic.rate.constant",
        "at most 1e+08 requests/s",
        extra=[[(RATE, "  rate: {constant: 1e19}")], [(RATE, "  rate: {constant: 1e308}")]],
    ),
    Limit(
        "rate-shorthand",
        [(RATE, "  rate: 100000000")],
        [(RATE, "  rate: 1e19")],
        "traffic.rate",
        "at most 1e+08 requests/s",
        extra=[[(RATE, "  rate: 6000000060/m")]],
    ),
    Limit(
        "diurnal-peak",
        [(RATE, "  rate: {diurnal: {mean: 50000000/s, amplitude: 1}}")],
        [(RATE, "  rate: {diurnal: {mean: 50000001/s, amplitude: 1}}")],
        "traffic.rate.diurnal.mean",
        "the peak mean x (1 + amplitude) = 100000002 requests/s is above the limit of 1e+08 requests/s",
    ),
    Limit(
        "steps",
        [(RATE, "  rate: {steps: [{at: 0s, rate: 1/s}, {at: 1m, rate: 100000000/s}]}")],
        [(RATE, "  rate: {steps: [{at: 0s, rate: 1/s}, {at: 1m, rate: 100000001/s}]}")],
        "traffic.rate.steps[1].rate",
        "at most 1e+08 requests/s",
    ),
    Limit(
        "burst-factor",
        [(RATE, "  rate: {constant: 100/s, bursts: [{at: 1m, duration: 1m, factor: 1000000}]}")],
        [(RATE, "  rate: {constant: 1/s, bursts: [{at: 1m, duration: 1m, factor: 1000001}]}")],
        "traffic.rate.bursts[0].factor",
        "at most 1e+06",
        extra=[
            [(RATE, "  rate: {constant: 1/s, bursts: [{at: 1m, duration: 1m, factor: .inf}]}")],
        ],
    ),
    Limit(
        "stacked-bursts",
        [
            (
                RATE,
                "  rate: {constant: 100/s, bursts: [{at: 1m, duration: 2m, factor: 1000}, "
                "{at: 2m, duration: 1m, factor: 1000}]}",
            )
        ],
        [
            (
                RATE,
                "  rate: {constant: 101/s, bursts: [{at: 1m, duration: 2m, factor: 1000}, "
                "{at: 2m, duration: 1m, factor: 1000}]}",
            )
        ],
        "traffic.rate.bursts[1].factor",
        "the rate peaks at 101000000 requests/s",
    ),
    Limit(
        "burst-ends-before-the-next-starts",  # [at, at + duration): these two never overlap
        [
            (
                RATE,
                "  rate: {constant: 100/s, bursts: [{at: 1m, duration: 1m, factor: 1000000}, "
                "{at: 2m, duration: 1m, factor: 1000000}]}",
            )
        ],
        [
            (
                RATE,
                "  rate: {constant: 100/s, bursts: [{at: 1m, duration: 61s, factor: 1000000}, "
                "{at: 2m, duration: 1m, factor: 1000000}]}",
            )
        ],
        "traffic.rate.bursts[1].factor",
        "the rate peaks at 1e+14 requests/s",
    ),
    Limit(
        "burst-count",
        [(RATE, _bursts(MAX_BURSTS, 1))],
        [(RATE, _bursts(MAX_BURSTS + 1, 1))],
        "traffic.rate.bursts",
        "at most 1000 items",
        needle="  rate:",
        extra=[[(RATE, _bursts(5000, 2))]],
    ),
    Limit(
        "test-traffic-on-top",
        [("  test_rps: 0", "  test_rps: 99999900/s")],
        [("  test_rps: 0", "  test_rps: 99999901/s")],
        "release.test_rps",
        "above the limit of 1e+08 requests/s",
    ),
    Limit(
        "load-fault-capacity",
        [(FAULT, "    - {kind: load, capacity: 100000000/s}")],
        [(FAULT, "    - {kind: load, capacity: 100000001/s}")],
        "release.faults[0].capacity",
        "at most 1e+08 requests/s",
    ),
    Limit(
        "load-tester",
        [(METRICS, _hey("hey -z 1m -q 1000000 -c 100 http://app/"))],
        [(METRICS, _hey("hey -z 1m -q 1000000 -c 101 http://app/"))],
        "policy.flagger.analysis.webhooks[0].metadata.cmd",
        "this load test sends 101000000 requests/s, above the limit of 1e+08 requests/s",
        needle="hey -z",
    ),
    Limit(
        "load-tester-inf",
        [(METRICS, _hey("hey -z 1m -q 10 -c 1 http://app/"))],
        [(METRICS, _hey("hey -z 1m -q inf -c 1 http://app/"))],
        "policy.flagger.analysis.webhooks[0].metadata.cmd",
        "-q a finite number",
        needle="hey -z",
        extra=[[(METRICS, _hey("hey -z 1m -q nan -c 1 http://app/"))]],
    ),
    Limit(
        "users",
        [("  users: 1000", "  users: 10000000")],
        [("  users: 1000", "  users: 10000001")],
        "traffic.users",
        "at most 10,000,000 users",
        extra=[[("  users: 1000", f"  users: {2**53}")], [("  users: 1000", "  users: 1000000000000")]],
    ),
    Limit(
        "horizon",
        [("horizon: 30m", "horizon: 8784h"), ("scrape_interval: 15s", "scrape_interval: 1m")],
        [("horizon: 30m", "horizon: 8784h1s"), ("scrape_interval: 15s", "scrape_interval: 1m")],
        "horizon",
        "at most 8784h (366 days)",
        needle="horizon:",
        extra=[[("horizon: 30m", "horizon: 1e300")]],
    ),
    Limit(
        "after-promotion",
        [("after_promotion: 10m", "after_promotion: 8784h")],
        [("after_promotion: 10m", "after_promotion: 8784h1s")],
        "after_promotion",
        "at most 8784h (366 days)",
    ),
    Limit(
        "scrape-interval",
        [("horizon: 30m", "horizon: 1000s"), ("scrape_interval: 15s", "scrape_interval: 1ms")],
        [("scrape_interval: 15s", "scrape_interval: 999us")],
        "telemetry.scrape_interval",
        "at least 1ms",
        extra=[
            [("scrape_interval: 15s", "scrape_interval: 1ns")],
            [("scrape_interval: 15s", "scrape_interval: 1e-300")],
        ],
    ),
    Limit(
        "scrapes-per-run",
        [("horizon: 30m", "horizon: 1000s"), ("scrape_interval: 15s", "scrape_interval: 1ms")],
        [("horizon: 30m", "horizon: 1000001ms"), ("scrape_interval: 15s", "scrape_interval: 1ms")],
        "telemetry.scrape_interval",
        "scrapes per run, above the limit of 1,000,000",
    ),
    Limit(
        "intermittent-period",
        [
            (FAULT, "    - {kind: error_rate, rate: 0.05, intermittent: {period: 1ms}}"),
            ("horizon: 30m", "horizon: 400s"),
        ],
        [(FAULT, "    - {kind: error_rate, rate: 0.05, intermittent: {period: 999us}}")],
        "release.faults[0].intermittent.period",
        "at least 1ms",
    ),
    Limit(
        "flaps-per-run",
        [
            (FAULT, "    - {kind: error_rate, rate: 0.05, intermittent: {period: 1ms}}"),
            ("horizon: 30m", "horizon: 400s"),
        ],
        [
            (FAULT, "    - {kind: error_rate, rate: 0.05, intermittent: {period: 1ms}}"),
            ("horizon: 30m", "horizon: 401s"),
        ],
        "release.faults[0].intermittent.period",
        "flaps per run, above the limit of 1,000,000",
        needle="intermittent",
    ),
    Limit(
        "buckets",
        [("  scrape_interval: 15s", "  scrape_interval: 15s\n  buckets_ms: [1]")],
        [("  scrape_interval: 15s", "  scrape_interval: 15s\n  buckets_ms: []")],
        "telemetry.buckets_ms",
        "at least 1 item",
        needle="buckets_ms",
    ),
    Limit(
        "seed",
        [("seed: 1", f"seed: {MAX_SEED}")],
        [("seed: 1", f"seed: {MAX_SEED + 1}")],
        "seed",
        "at most 2**128 - 1",
    ),
]


def _edit(edits: list[tuple[str, str]], text: str = BASE) -> str:
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def _needle(limit: Limit, edits: list[tuple[str, str]]) -> str:
    return limit.needle or edits[-1][1].strip().splitlines()[-1]


@pytest.mark.parametrize("limit", LIMITS, ids=lambda x: x.id)
def test_largest_legal_value_validates(tmp_path: Path, limit: Limit) -> None:
    path = write(tmp_path, "scenario.yaml", _edit(limit.legal))
    result = invoke("validate", path)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("limit", LIMITS, ids=lambda x: x.id)
def test_one_beyond_is_exit_2_naming_the_field(tmp_path: Path, limit: Limit) -> None:
    for edits in [limit.beyond, *limit.extra]:
        text = _edit(edits)
        path = write(tmp_path, "scenario.yaml", text)
        result = invoke("validate", path)
        assert result.exit_code == 2, (edits, result.stdout)
        [line] = result.stderr.splitlines()
        assert line.startswith(f"{path}:{line_of(text, _needle(limit, edits))}: {limit.field}: "), line
        if edits is limit.beyond:
            assert limit.message in line
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
def test_a_lone_surrogate_is_not_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, libyaml: bool) -> None:
    """YAML's ``"\\uD800"`` escape names a lone surrogate, which no output can encode. libyaml
    refuses the escape itself; PyYAML's pure-Python parser reads it, and the model refuses the
    string (``sim.models.valid_text``). Either way: exit 2 at the line, never exit 3 later."""
    if libyaml:
        import yaml

        if not yaml.__with_libyaml__:
            pytest.skip("PyYAML without libyaml")
    else:
        monkeypatch.setattr("sim.yamlio._libyaml", lambda: False)
    path = write(tmp_path, "scenario.yaml", _edit([("name: limits", 'name: "caf\\u00e9"')]))
    assert invoke("validate", path).exit_code == 0
    text = _edit([("name: limits", 'name: "bad\\uD800name"')])
    path = write(tmp_path, "scenario.yaml", text)
    result = invoke("validate", path)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    expected = "invalid Unicode character escape" if libyaml else "name: not valid text: it holds a lone surrogate"
    assert line.startswith(f"{path}:{line_of(text, 'name: ')}: ") and expected in line, line


def test_nan_says_finite_number_not_a_range(tmp_path: Path) -> None:
    """Every float field refuses NaN and infinities in the same words (pydantic alone said
    "less than or equal to 1" of a NaN in a ranged field)."""
    for old, new, fld in [
        ("  error_rate: 0.001", "  error_rate: .nan", "baseline.error_rate"),
        (
            "thresholdRange: {min: 99}",
            "thresholdRange: {min: .nan}",
            "policy.flagger.analysis.metrics[0].thresholdRange.min",
        ),
        ("rate: 0.05, onset", "rate: .inf, onset", "release.faults[0].rate"),
        ("  scrape_interval: 15s", "  scrape_interval: 15s\n  buckets_ms: [1, .nan]", "telemetry.buckets_ms[1]"),
    ]:
        text = _edit([(old, new)])
        path = write(tmp_path, "scenario.yaml", text)
        result = invoke("validate", path)
        assert result.exit_code == 2
        needle = new.splitlines()[-1]
        assert result.stderr.strip().startswith(f"{path}:{line_of(text, needle)}: {fld}: must be a finite number (got ")


def test_seed_option_is_bounded_in_one_line(tmp_path: Path) -> None:
    """``--seed`` of ``run`` and ``compare``: the largest seed runs; one beyond (or a
    negative or non-integer one) is one line naming the option, exit 2."""
    path = write(tmp_path, "scenario.yaml", _edit([("runs: 10", "runs: 2")]))
    assert invoke("run", path, "--runs", 1, "--seed", MAX_SEED).exit_code == 0
    for bad in (MAX_SEED + 1, -1, "x"):
        result = invoke("run", path, "--runs", 1, "--seed", bad)
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            f"pdsim run: --seed: must be a whole number from 0 to 2**128 - 1 (got {bad}) (see pdsim run --help)"
        ]
    result = invoke("compare", path, REPO / "gates" / "policies" / "flagger-canary.yaml", path, "--seed", MAX_SEED + 1)
    assert result.exit_code == 2 and result.stderr.startswith("pdsim compare: --seed: ")


SWEEP = f"""\
scenario: {REPO / "scenarios" / "error-spike.yaml"}
portfolio:
  - name: spike
    weight: 1
    set: {{release.faults: [{{kind: error_rate, factor: 2, onset: 0s}}]}}
    severity: {{path: "release.faults[0].factor", lognormal: {{median: 1e300, sigma: 2}}}}
    strata: 4
runs: 2
seed: 1
"""


@pytest.mark.parametrize(
    ("old", "new", "fld", "message"),
    [
        ("seed: 1", f"seed: {MAX_SEED + 1}", "seed", "at most 2**128 - 1"),
        # The largest draw is median x e^(8.3 sigma): e^(690.8 + 24.9) is beyond the largest float.
        ("sigma: 2", "sigma: 3", "portfolio[0].severity", "beyond the largest float"),
        ("lognormal: {median: 1e300, sigma: 2}", "uniform: [-1e308, 1e308]", "portfolio[0].severity", "largest float"),
        (
            "runs: 2",
            'policies: [{name: "fa\\uD800st", manifest: c.yaml}]\nruns: 2',
            "policies[0].name",
            "not valid text",
        ),
    ],
)
def test_sweep_seed_and_severity_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, fld: str, message: str
) -> None:
    if "\\uD800" in new:  # libyaml refuses the escape itself (test_a_lone_surrogate_is_not_text)
        monkeypatch.setattr("sim.yamlio._libyaml", lambda: False)
    """The edges load; beyond them ``pdsim sweep`` stops at once with exit 2 (a lognormal
    median of 1e300 with a wide sigma drew infinities, written as JSON: exit 3)."""
    load_sweep(write(tmp_path, "edge.yaml", SWEEP.replace("seed: 1", f"seed: {MAX_SEED}")))
    text = SWEEP.replace(old, new)
    path = write(tmp_path, "sweep.yaml", text)
    result = invoke("sweep", path, "--out", tmp_path / "out")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{path}:{line_of(text, new.splitlines()[0])}: {fld}: ") and message in line, line
    assert not (tmp_path / "out").exists()


def test_gates_seed_is_bounded(tmp_path: Path) -> None:
    text = (REPO / "gates" / "flagger-canary.yaml").read_text()
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "policies").symlink_to(REPO / "gates" / "policies")
    (tmp_path / "scenarios").symlink_to(REPO / "scenarios")
    load_gates(write(gates, "edge.yaml", text.replace("seed: 2026", f"seed: {MAX_SEED}")))
    path = write(gates, "beyond.yaml", text.replace("seed: 2026", f"seed: {MAX_SEED + 1}"))
    result = invoke("check", path)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{path}:{line_of(text, 'seed: 2026')}: seed: at most 2**128 - 1 (got {MAX_SEED + 1})"
    ]
