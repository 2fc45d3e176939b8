"""Digests of the records of every bundled scenario: the check that speed work changes no result.

A *case* is one scenario run under one policy for a fixed number of runs from a fixed root
seed (the scenario's own). Its *entry* holds the SHA-256 of every field of every record, in
run order (floats by ``repr``, so a last-bit change shows), one short digest per run (to name
the first run that differs) and a summary to diagnose a difference at a glance: outcome
counts and the mean decision time.

The cases (``cases``): every ``scenarios/*.yaml`` with its own policy; and good-release and
error-spike under each statistical judge kind (the scenario's own Flagger analysis with a
``judge:`` block added), under each policy of ``gates/policies/`` and of
``sweeps/policies/``. Only the public API is used (``sim.load_scenario``,
``sim.scenario_policy``, ``sim.load_policy``, ``sim.run_batch``), so the same code digests
an older tree.

The fixture is ``tests/fixtures/record_digests.json``; ``tests/test_records_unchanged.py``
recomputes it and ``tools/record_digests.py --write`` regenerates it (see that tool for when
regenerating is legitimate).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.paths import REPO

#: The committed fixture.
FIXTURE = REPO / "tests" / "fixtures" / "record_digests.json"

#: Runs per case in the default suite and in the ``slow`` variant.
RUNS = 200
SLOW_RUNS = 2000

#: The scenarios every judge and every bundled policy file is run on.
JUDGED_SCENARIOS = ("good-release", "error-spike")

#: ``judge:`` blocks by name: each kind at its defaults (alpha 0.01 where it has one, as the
#: bundled gate does), and Kayenta also set up for a short canary (15 s points after the
#: 2-minute warm-up), which judges from real data where the defaults mostly see none.
JUDGES: dict[str, dict[str, Any]] = {
    "sequential": {"kind": "sequential", "alpha": 0.01},
    "msprt": {"kind": "msprt", "alpha": 0.01},
    "group-sequential": {"kind": "group-sequential", "alpha": 0.01},
    "sprt": {"kind": "sprt", "alpha": 0.01},
    "naive": {"kind": "naive", "alpha": 0.01},
    "bayes": {"kind": "bayes"},
    "kayenta": {"kind": "kayenta"},
    "kayenta-15s": {"kind": "kayenta", "step": "15s", "beginCanaryAnalysisAfter": "2m"},
}

#: Hex digits kept of each run's (or block's) own digest: enough to tell them apart, short
#: in the file.
RUN_DIGEST_CHARS = 10

#: Runs per block digest: each run of the default entries, blocks of 50 runs in the slow
#: variant's (the first differing run is then named within its block; the file stays small).
BLOCKS = {RUNS: 1, SLOW_RUNS: 50}


@dataclass(frozen=True)
class Case:
    """One scenario under one policy.

    Attributes:
        key: the fixture's key, ``scenario`` (its own policy), ``scenario@judge:KIND`` or
            ``scenario@gates/policies/NAME.yaml``.
        scenario: the scenario file.
        judge: a ``judge:`` block added to the scenario's own Flagger analysis, or None.
        policy_file: a policy file run instead of the scenario's own, or None.
    """

    key: str
    scenario: Path
    judge: dict[str, Any] | None = None
    policy_file: Path | None = None


@dataclass
class Entry:
    """What the fixture keeps of one case's records."""

    runs: int
    seed: int
    digest: str
    outcomes: dict[str, int]
    mean_decision_time_s: float | None
    block: int = 1
    run_digests: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "seed": self.seed,
            "digest": self.digest,
            "outcomes": dict(sorted(self.outcomes.items())),
            "mean_decision_time_s": self.mean_decision_time_s,
            "block": self.block,
            "run_digests": " ".join(self.run_digests),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            runs=data["runs"],
            seed=data["seed"],
            digest=data["digest"],
            outcomes=dict(data["outcomes"]),
            mean_decision_time_s=data["mean_decision_time_s"],
            block=data["block"],
            run_digests=data["run_digests"].split(),
        )


def cases(repo: Path = REPO) -> list[Case]:
    """Every case, in the fixture's order."""
    out = [Case(p.stem, p) for p in sorted((repo / "scenarios").glob("*.yaml"))]
    files = sorted((repo / "gates" / "policies").glob("*.yaml")) + sorted((repo / "sweeps" / "policies").glob("*.yaml"))
    for stem in JUDGED_SCENARIOS:
        scenario = repo / "scenarios" / f"{stem}.yaml"
        out += [Case(f"{stem}@judge:{name}", scenario, judge=block) for name, block in JUDGES.items()]
        out += [Case(f"{stem}@{f.relative_to(repo).as_posix()}", scenario, policy_file=f) for f in files]
    return out


def canonical(value: object) -> object:
    """JSON-safe and exact: floats by their repr (NaN and infinities by name), numpy scalars
    as their Python values."""
    value = plain(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def plain(value: object) -> object:
    """A numpy scalar as the Python value it stands for (``np.float64`` is a float whose
    repr differs), anything else as it is."""
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


#: Fields added to the record after the fixture's format was fixed (issue 19's business
#: outcomes): digested only where a record has a value, so that the records of scenarios
#: without a ``business:`` block (all null there) keep their digests. Written out, not
#: imported from ``sim.outcomes``: the helper digests older trees too (module docstring).
LATER_FIELDS = frozenset(
    {
        "winner",
        "correct",
        "true_lift",
        "lift_estimate",
        "lift_ci_low",
        "lift_ci_high",
        "regret_conversions",
        "regret_revenue",
        "regret_conversions_after_promotion",
        "regret_revenue_after_promotion",
        "sessions",
        "srm",
    }
)


def record_bytes(record: Any) -> bytes:
    """Every field of one record, canonical, with its Python type (an int that becomes a
    float shows; a numpy scalar counts as the Python value it stands for); a later field
    (``LATER_FIELDS``) only when it is not null."""
    fields = {
        k: [type(plain(v)).__name__, canonical(v)]
        for k, v in record.as_dict().items()
        if v is not None or k not in LATER_FIELDS
    }
    return json.dumps(fields, sort_keys=True).encode()


def digest_records(records: Sequence[Any], seed: int, block: int = 1) -> Entry:
    """The entry of a case's records, with a digest per ``block`` consecutive runs."""
    whole = hashlib.sha256()
    per_run = []
    for start in range(0, len(records), block):
        part = hashlib.sha256()
        for record in records[start : start + block]:
            one = hashlib.sha256(record_bytes(record)).digest()
            whole.update(one)
            part.update(one)
        per_run.append(part.hexdigest()[:RUN_DIGEST_CHARS])
    times = [r.decision_time_s for r in records if r.decision_time_s is not None]
    return Entry(
        runs=len(records),
        seed=seed,
        digest=whole.hexdigest(),
        outcomes=dict(Counter(r.outcome for r in records)),
        mean_decision_time_s=sum(times) / len(times) if times else None,
        block=block,
        run_digests=per_run,
    )


def _judged_policy(case: Case, workdir: Path) -> Any:
    """The scenario's own Flagger policy with the case's judge, loaded from a policy file
    named after the case (the records carry the policy's name)."""
    import sim

    raw = yaml.safe_load(case.scenario.read_text())["policy"]
    policy = {"flagger": {**raw["flagger"], "judge": case.judge}}
    path = workdir / f"{case.key.replace('@judge:', '-').replace('/', '-')}.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return sim.load_policy([path])


def policy_of(case: Case, workdir: Path) -> Any:
    """The policy a case runs (``workdir``: where a judged policy's file is written)."""
    import sim

    if case.policy_file is not None:
        return sim.load_policy([case.policy_file])
    if case.judge is not None:
        return _judged_policy(case, workdir)
    return sim.scenario_policy(sim.load_scenario(case.scenario), case.scenario)


def compute(case: Case, runs: int, *, workers: int = 1) -> Entry:
    """Run a case (``runs`` rollouts from the scenario's seed) and digest its records."""
    import sim

    scenario = sim.load_scenario(case.scenario)
    with tempfile.TemporaryDirectory() as tmp:
        policy = policy_of(case, Path(tmp))
        records = sim.run_batch(scenario, policy, runs, scenario.seed, workers=workers)
    return digest_records(records, scenario.seed, BLOCKS.get(runs, 1))


def load_fixture(path: Path = FIXTURE) -> dict[str, dict[str, Entry]]:
    """The committed entries: ``{str(runs): {case key: entry}}``."""
    data = json.loads(path.read_text())
    return {runs: {key: Entry.from_json(e) for key, e in entries.items()} for runs, entries in data.items()}


def write_fixture(entries: dict[str, dict[str, Entry]], path: Path = FIXTURE) -> None:
    """Write entries as the fixture (one case per line block, stable order)."""
    data = {runs: {key: e.as_json() for key, e in per.items()} for runs, per in sorted(entries.items())}
    path.write_text(json.dumps(data, indent=1) + "\n")


def difference(key: str, expected: Entry, got: Entry) -> str | None:
    """None when equal; else one paragraph naming the case, what changed and the first
    differing run."""
    if expected.digest == got.digest:
        return None
    block = next(
        (i for i, (a, b) in enumerate(zip(expected.run_digests, got.run_digests)) if a != b),
        min(len(expected.run_digests), len(got.run_digests)),
    )
    size = expected.block
    first = f"run {block}" if size == 1 else f"run in {block * size}..{(block + 1) * size - 1}"
    return (
        f"{key}: records changed ({expected.runs} runs, seed {expected.seed}); "
        f"first differing {first}; "
        f"outcomes {expected.outcomes} -> {got.outcomes}; "
        f"mean decision time {_seconds(expected.mean_decision_time_s)} -> {_seconds(got.mean_decision_time_s)}"
    )


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g} s"


def differences(expected: dict[str, Entry], got: dict[str, Entry], keys: Iterable[str]) -> list[str]:
    """A paragraph per case whose records differ (or that one side lacks)."""
    out = []
    for key in keys:
        if key not in expected:
            out.append(f"{key}: not in the fixture (regenerate it with tools/record_digests.py --write)")
        elif key not in got:
            out.append(f"{key}: in the fixture but no longer a case (a scenario or policy file removed?)")
        else:
            line = difference(key, expected[key], got[key])
            if line:
                out.append(line)
    return out
