"""Headless Chromium (Debian's package) for the tests that check a page really renders.

``chromium(tmp_path, *args, url=...)`` runs it once with a fresh profile and the flags a
closed network and a container need; ``needs_chromium`` skips a test, saying why, where
``chromium`` is not installed (``make test`` installs it through apt where it can).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH (apt-get install -y chromium) - browser render tests skipped"
)


def chromium(tmp_path: Path, *args: str, url: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    """Run headless Chromium on ``url`` with ``args`` (``--dump-dom``, ``--screenshot=...``)."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Containers often have a tiny /dev/shm; without this Chromium can crash there.
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
        url,
    ]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish within {timeout_s:g}s: {exc}")
