"""Fixtures shared by the whole suite (helpers that are not fixtures: ``tests/helpers``).

pytest loads this file before collecting any test module. Test modules import shared
functions and constants with ``from tests.helpers import ...`` (the repository's root is on
``sys.path`` under ``python -m pytest``, which ``make test`` runs, and in xdist's workers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.inputs.scenario import Scenario, load_scenario
from tests.helpers import REPO, SCENARIO_FILES, SCENARIOS, TEST_FIXTURES, UPSTREAM_FIXTURES


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository's root."""
    return REPO


@pytest.fixture(scope="session")
def scenarios_dir() -> Path:
    """The folder of the bundled scenarios (``scenarios/``)."""
    return SCENARIOS


@pytest.fixture(scope="session")
def scenario_files() -> list[Path]:
    """Every bundled scenario file, sorted by name."""
    return list(SCENARIO_FILES)


@pytest.fixture(scope="session")
def error_spike() -> Scenario:
    """scenarios/error-spike.yaml, loaded: a Flagger canary whose release fails 5% of requests.

    Scenarios are frozen, so one instance serves the whole session.
    """
    return load_scenario(SCENARIOS / "error-spike.yaml")


@pytest.fixture(scope="session")
def good_release() -> Scenario:
    """scenarios/good-release.yaml, loaded: the same canary on a release without faults."""
    return load_scenario(SCENARIOS / "good-release.yaml")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """This suite's own inputs (``tests/fixtures``: recorded observations, Kayenta cases)."""
    return TEST_FIXTURES


@pytest.fixture(scope="session")
def upstream_fixtures() -> Path:
    """Manifests copied from Flagger and Argo Rollouts (``flagger/``, ``argo/``).

    They live beside the repository (../shared/fixtures/upstream, or $PDSIM_UPSTREAM_FIXTURES);
    a test that asks for them is skipped, saying where they were looked for, when they are missing.
    """
    if not UPSTREAM_FIXTURES.is_dir():
        pytest.skip(f"upstream fixtures not found at {UPSTREAM_FIXTURES}")
    return UPSTREAM_FIXTURES
