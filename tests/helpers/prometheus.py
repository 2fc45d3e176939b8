"""A real Prometheus (Debian's 2.42 package) serving series that pdsim wrote, for the tests.

``PrometheusServer(openmetrics_text)`` loads the text with ``promtool tsdb
create-blocks-from openmetrics`` into a temporary TSDB, starts ``prometheus`` on a free
port of 127.0.0.1 with no scrape targets, waits for ``/-/ready`` and answers instant
queries through ``/api/v1/query``. The server is killed (and the directory removed) on
``close()``, on leaving a ``with`` block, and at interpreter exit, so a failing test
leaves no process behind. Start-up takes well under a second (measured: ~0.3 s).

When ``prometheus`` or ``promtool`` is not installed, ``MISSING`` says why, and
``prometheus_server`` (the fixture factory) skips the tests with that reason; ``make test``
installs the package through apt where it can.
"""

from __future__ import annotations

import atexit
import json
import math
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
#: Why the tests against a real Prometheus cannot run here, or "" when they can.
MISSING = (
    ""
    if PROMETHEUS and PROMTOOL
    else "prometheus/promtool not installed (Debian package `prometheus`; `make test` installs it as root)"
)

# No scrape targets: the server only serves the blocks promtool wrote.
_CONFIG = "global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\nscrape_configs: []\n"

#: Labels of a result series, sorted by name (``__name__`` included when Prometheus keeps it).
LabelKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class QueryResult:
    """What Prometheus answered to one instant query.

    Attributes:
        kind: ``"vector"``, ``"scalar"``, ``"matrix"``, ``"string"`` or ``"error"``.
        vector: for a vector, labels -> value (empty dict: an empty result).
        scalar: for a scalar, its value.
        matrix: for a matrix, labels -> ((unix seconds, value), ...).
        error: for an error, Prometheus's message.
    """

    kind: str
    vector: dict[LabelKey, float] | None = None
    scalar: float | None = None
    matrix: dict[LabelKey, tuple[tuple[float, float], ...]] | None = None
    error: str = ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _value(text: str) -> float:
    return float(text)  # Prometheus writes NaN, +Inf, -Inf, which float() reads


def _key(metric: dict[str, str]) -> LabelKey:
    return tuple(sorted(metric.items()))


class PrometheusServer:
    """A Prometheus serving ``openmetrics`` (OpenMetrics text with timestamps).

    Args:
        openmetrics: the series, as ``sim.promql.openmetrics.write_openmetrics`` writes them.
        lookback: ``--query.lookback-delta`` (Prometheus's default is 5m).
    """

    def __init__(self, openmetrics: str, *, lookback: str = "5m") -> None:
        if MISSING:
            raise RuntimeError(MISSING)
        assert PROMETHEUS and PROMTOOL
        self._dir = Path(tempfile.mkdtemp(prefix="pdsim-prometheus-"))
        self._process: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)
        try:
            self._start(openmetrics, lookback)
        except BaseException:
            self.close()
            raise

    def _start(self, openmetrics: str, lookback: str) -> None:
        assert PROMETHEUS and PROMTOOL
        source = self._dir / "series.om"
        source.write_text(openmetrics)
        data = self._dir / "data"
        done = subprocess.run(
            [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"promtool refused the series: {done.stderr.strip() or done.stdout.strip()}")
        (self._dir / "prometheus.yml").write_text(_CONFIG)
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._log = (self._dir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self._dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                # The series are dated 2026-01-01: the default 15-day retention would delete them.
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--query.lookback-delta={lookback}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready after 60 s: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self) -> str:
        """The end of the server's log, for failure messages."""
        path = self._dir / "prometheus.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def query(self, expr: str, at_s: float) -> QueryResult:
        """Evaluate ``expr`` at unix time ``at_s`` (seconds, milliseconds exact)."""
        ms = round(at_s * 1000)
        params = urllib.parse.urlencode({"query": expr, "time": f"{ms // 1000}.{ms % 1000:03d}"})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as err:  # 400/422: a bad query or an evaluation error
            body = json.load(err)
        if body.get("status") != "success":
            return QueryResult("error", error=str(body.get("error", body)))
        data = body["data"]
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return QueryResult(kind, vector={_key(r["metric"]): _value(r["value"][1]) for r in result})
        if kind == "scalar":
            return QueryResult(kind, scalar=_value(result[1]))
        if kind == "matrix":
            matrix = {_key(r["metric"]): tuple((float(t), _value(v)) for t, v in r["values"]) for r in result}
            return QueryResult(kind, matrix=matrix)
        return QueryResult(kind, error=f"unexpected result {data!r}")

    def close(self) -> None:
        """Kill the server and remove its directory (safe to call more than once)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def same_value(ours: float, theirs: float, rel: float = 1e-9) -> bool:
    """Equal as the issue asks: relative ``rel``, NaN equals NaN, infinities exactly."""
    if math.isnan(ours) or math.isnan(theirs):
        return math.isnan(ours) and math.isnan(theirs)
    if math.isinf(ours) or math.isinf(theirs):
        return ours == theirs
    return abs(ours - theirs) <= rel * max(abs(ours), abs(theirs)) or ours == theirs


__all__ = ["MISSING", "PrometheusServer", "QueryResult", "same_value"]
