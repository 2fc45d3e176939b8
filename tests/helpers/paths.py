"""Where the repository, its bundled scenarios and the test fixtures are."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository's root (the folder holding sim/, tests/ and scenarios/).
REPO = Path(__file__).resolve().parents[2]

#: The bundled scenarios (``scenarios/*.yaml``), each a complete, valid scenario file.
SCENARIOS = REPO / "scenarios"
SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))

#: Inputs this suite owns (recorded observations for replay, Kayenta's cases).
TEST_FIXTURES = REPO / "tests" / "fixtures"

#: Manifests copied from Flagger's and Argo Rollouts' repositories (``flagger/``, ``argo/``),
#: kept beside the repository in ../shared/fixtures/upstream; PDSIM_UPSTREAM_FIXTURES points
#: elsewhere (a git worktree, say). Tests that need them skip when the folder is missing.
UPSTREAM_FIXTURES = Path(
    os.environ.get("PDSIM_UPSTREAM_FIXTURES") or REPO.parent / "shared" / "fixtures" / "upstream"
).resolve()
