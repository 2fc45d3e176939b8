"""Fingerprint the records of every bundled scenario, to prove a refactor changed nothing.

Runs each ``scenarios/*.yaml`` with its own policy (fast path, the per-request mode for a
run, and run 0's trace) and under each policy of ``gates/policies/`` (a sequential judge
and an Argo canary among them), and prints one SHA-256 per scenario. Uses only the
public API (``sim.load_scenario`` and friends), so the same script runs on the tree
before and after a change::

    python tools/check_records.py --save before.json     # on the old tree
    python tools/check_records.py --check before.json    # on the new tree: exit 1 on any difference
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import sim

ROOT = Path(__file__).resolve().parent.parent


def _canonical(value: object) -> object:
    """JSON-safe and exact: floats by their repr, so a last-bit change shows."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _canonical(value.item())
    return value


def _add(digest: hashlib._Hash, records: list) -> None:
    for record in records:
        digest.update(json.dumps(_canonical(record.as_dict()), sort_keys=True).encode())


def fingerprint(path: Path, runs: int, exact_runs: int) -> str:
    scenario = sim.load_scenario(path)
    policy = sim.scenario_policy(scenario)
    digest = hashlib.sha256()
    records = sim.run_batch(scenario, policy, runs, scenario.seed)
    _add(digest, records)
    for other in sorted((ROOT / "gates" / "policies").glob("*.yaml")):
        _add(digest, sim.run_batch(scenario, sim.load_policy([str(other)]), runs // 4, scenario.seed))
    _add(digest, sim.run_batch(scenario, policy, exact_runs, scenario.seed, exact=True))
    result = sim.run_one(scenario, policy, records[0].seed, trace=True)
    digest.update(json.dumps(_canonical(result.trace), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="fast-path runs per scenario")
    parser.add_argument("--exact-runs", type=int, default=1, help="per-request runs per scenario")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--save", type=Path, help="write the fingerprints to this JSON file")
    group.add_argument("--check", type=Path, help="compare with fingerprints saved earlier")
    args = parser.parse_args()
    prints = {p.name: fingerprint(p, args.runs, args.exact_runs) for p in sorted((ROOT / "scenarios").glob("*.yaml"))}
    for name, value in prints.items():
        print(f"{value[:16]}  {name}")
    if args.save:
        args.save.write_text(json.dumps(prints, indent=1, sort_keys=True) + "\n")
    if args.check:
        saved = json.loads(args.check.read_text())
        differ = sorted(n for n in saved.keys() | prints.keys() if saved.get(n) != prints.get(n))
        print("identical" if not differ else "DIFFERENT: " + ", ".join(differ))
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
