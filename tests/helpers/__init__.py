"""What many test modules share, written once. Import as ``from tests.helpers import ...``.

Parts:

* ``paths``: where things are (``REPO``, the bundled ``SCENARIOS`` and ``SCENARIO_FILES``,
  this suite's ``TEST_FIXTURES``, the ``UPSTREAM_FIXTURES`` copied from Flagger and Argo);
* ``contracts``: ``RECORD_FIELDS``, the fields every run record starts with, in order;
* ``cli``: ``invoke``, the ``pdsim`` command run in-process with stdout and stderr apart;
* ``files``: ``write`` a file into a test's directory, ``line_of`` a needle in a text;
* ``flagger``: Flagger's builtin metrics as a canary names them (``SR``, ``LAT``) and the
  observations the policy tests feed (``GOOD``, ``BAD_SR``, ``NOTHING``, ...);
* ``driving``: ``drive``, a policy stepped at its own ticks on given metric values;
* ``page``: ``parse_page``, the HTML report parsed into what the report tests look at;
* ``sweeps``: ``TINY_SWEEP``, a sweep file's text that runs in seconds (4 chunks).

Fixtures (``repo``, ``scenario_files``, ``error_spike``, ``upstream_fixtures``, ...) live in
``tests/conftest.py`` and are built from these names.
"""

from tests.helpers.cli import cli_runner, invoke
from tests.helpers.contracts import RECORD_FIELDS
from tests.helpers.driving import drive
from tests.helpers.files import line_of, write
from tests.helpers.flagger import (
    BAD_BOTH,
    BAD_LAT,
    BAD_SR,
    CANARY_MANIFEST,
    GOOD,
    LAT,
    NOTHING,
    POLICY_FILE,
    REQUEST_DURATION,
    SR,
    SUCCESS_RATE,
)
from tests.helpers.page import Page, parse_page
from tests.helpers.paths import REPO, SCENARIO_FILES, SCENARIOS, TEST_FIXTURES, UPSTREAM_FIXTURES
from tests.helpers.sweeps import TINY_SWEEP

__all__ = [
    "CANARY_MANIFEST",
    "POLICY_FILE",
    "BAD_BOTH",
    "BAD_LAT",
    "BAD_SR",
    "GOOD",
    "LAT",
    "NOTHING",
    "Page",
    "RECORD_FIELDS",
    "REPO",
    "REQUEST_DURATION",
    "SCENARIOS",
    "SCENARIO_FILES",
    "SR",
    "SUCCESS_RATE",
    "TEST_FIXTURES",
    "TINY_SWEEP",
    "UPSTREAM_FIXTURES",
    "cli_runner",
    "drive",
    "invoke",
    "line_of",
    "parse_page",
    "write",
]
