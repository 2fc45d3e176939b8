"""Spinnaker Kayenta's own unit-test inputs (tests/fixtures/kayenta/kayenta_cases.json).

Extracted by tests/fixtures/kayenta/extract_kayenta_cases.py from the Scala suites at the
commit recorded in the file; each test here names the upstream suite and test it replays.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from tests.helpers import TEST_FIXTURES

CASES_FILE = TEST_FIXTURES / "kayenta" / "kayenta_cases.json"


@lru_cache(maxsize=1)
def _cases() -> dict:
    return json.loads(CASES_FILE.read_text())


def suite(name: str) -> dict[str, dict]:
    """The extracted tests of one upstream suite, by upstream test name."""
    return _cases()["suites"][name]["tests"]


def arrays(suite_name: str, test_name: str) -> dict[str, np.ndarray]:
    """The input arrays of one upstream test."""
    return {k: np.asarray(v) for k, v in suite(suite_name)[test_name]["arrays"].items()}
