"""Regenerate or check the digests of the records of every bundled scenario (issue 17).

The fixture ``tests/fixtures/record_digests.json`` holds, for every case of
``tests/helpers/record_digests.py`` (each bundled scenario with its own policy; good-release
and error-spike under each judge kind and each policy file of ``gates/policies/`` and
``sweeps/policies/``), the SHA-256 of every field of every record of a fixed number of runs
from the scenario's own seed. ``tests/test_records_unchanged.py`` recomputes it.

When regenerating is legitimate: a change that is *meant* to change results — a model made
more faithful, a bug fixed in what a run computes, a new random draw, a scenario or policy
file edited or added. Say so in the commit that carries the new fixture, with the cases that
changed and why (``--check`` lists them).

When it is not: speed work (vectorising, caching, parallel runs, lazy imports, moving code),
refactoring, anything meant to be invisible in the results. Such a change must leave every
digest as it is; if one differs, the change is wrong, whatever the speed-up. Never regenerate
to make the check pass.

Run from the repository's root::

    python tools/record_digests.py --check          # recompute, print what differs (exit 1)
    python tools/record_digests.py --write          # regenerate the default entries (200 runs)
    python tools/record_digests.py --write --slow   # ... and the slow variant's (2,000 runs)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.record_digests import (  # noqa: E402
    FIXTURE,
    RUNS,
    SLOW_RUNS,
    Entry,
    cases,
    compute,
    differences,
    load_fixture,
    write_fixture,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the fixture (see the docstring: when)")
    action.add_argument("--check", action="store_true", help="recompute and compare (exit 1 on a difference)")
    parser.add_argument("--slow", action="store_true", help=f"also the slow variant ({SLOW_RUNS} runs per case)")
    parser.add_argument("--only", metavar="KEY", action="append", help="only this case (repeatable; with --check)")
    args = parser.parse_args()

    sizes = [RUNS, SLOW_RUNS] if args.slow else [RUNS]
    selected = [c for c in cases() if not args.only or c.key in args.only]
    fixture = load_fixture() if FIXTURE.exists() else {}
    computed: dict[str, dict[str, Entry]] = {}
    failed = 0
    for runs in sizes:
        per: dict[str, Entry] = {}
        for case in selected:
            started = time.perf_counter()
            per[case.key] = compute(case, runs)
            took = time.perf_counter() - started
            print(f"{runs:5d} runs  {took:6.2f} s  {per[case.key].digest[:16]}  {case.key}", file=sys.stderr)
        computed[str(runs)] = per
        if args.check:
            found = differences(fixture.get(str(runs), {}), per, per.keys())
            for line in found:
                print(line)
            failed += len(found)
    if args.write:
        if args.only:
            parser.error("--only is for --check; --write regenerates every case")
        # The slow variant's entries are kept unless regenerated too.
        write_fixture({**fixture, **computed})
        print(f"wrote {FIXTURE.relative_to(Path.cwd()) if FIXTURE.is_relative_to(Path.cwd()) else FIXTURE}")
        return 0
    print("identical" if not failed else f"{failed} case(s) differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
