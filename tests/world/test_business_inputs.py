"""The scenario keys of issue 19 (``business:``, ``release.effects``): bad values are one
line naming the file, the line and the field, exit 2 (docs/architecture.md section 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import invoke, write

BASE = "name: shop\ntraffic: {rate: 10/s}\n"


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (
            BASE + "release:\n  effects:\n    conversion: {lift: 0.05}\n",
            5,
            "release.effects.conversion",
            "release.effects needs a business: block",
        ),
        (
            BASE + "business: {conversion: {rate: 0.03}}\nrelease:\n  effects:\n    order_value: {cohort: beta}\n",
            6,
            "release.effects.order_value.cohort",
            "is not a cohort of traffic.cohorts (got beta)",
        ),
        (
            BASE + "business: {conversion: {rate: 0.6}}\nrelease:\n  effects:\n"
            "    conversion: {lift: 0.1, novelty: {lift: 0.7, half_life: 2d}}\n",
            6,
            "release.effects.conversion.lift",
            "the candidate's conversion rate would reach 1.08 (must stay below 1)",
        ),
        (
            BASE + "business:\n  conversion: {rate: 0.03}\n  order_value: {median: -3, sigma: 1}\n",
            5,
            "business.order_value.median",
            "greater than 0",
        ),
        (BASE + "business:\n  conversion: {rate: 1.5}\n", 4, "business.conversion.rate", "less than 1"),
        (BASE + "business:\n  requests_per_session: 0.5\n", 4, "business.requests_per_session", "1"),
        (
            BASE + "business: {}\nrelease:\n  effects:\n    conversion: {novelty: {lift: 0.2, half_life: 0s}}\n",
            6,
            "release.effects.conversion.novelty.half_life",
            "greater than 0",
        ),
        (BASE + "business:\n  conversion: {rate: 0.03, lift: 0.1}\n", 4, "business.conversion.lift", "unknown key"),
    ],
)
def test_bad_business_keys_are_one_line_at_the_field(tmp_path: Path, text: str, line: int, field: str, message: str):
    path = write(tmp_path, "shop.yaml", text)
    result = invoke("validate", path)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"{path}:{line}: {field}: "), lines[0]
    assert message in lines[0], lines[0]


def test_a_business_block_validates_with_its_defaults(tmp_path: Path):
    result = invoke("validate", write(tmp_path, "shop.yaml", BASE + "business: {}\n"))
    assert result.exit_code == 0, result.stderr
