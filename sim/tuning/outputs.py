"""The output folder of ``pdsim tune`` (docs: THE CONTRACT of issue 18).

* ``tune.json``: what was searched, how, and where it stands (``status``);
* ``candidates.parquet``: one row per candidate at the highest rung it reached (the base
  policy is candidate -1), its parameters, metrics with intervals, and flags;
* ``frontier.parquet``: the frontier's rows, sorted by the first objective;
* ``validation.json``: the recommendation against the base on fresh seeds, paired;
* ``best-policy.yaml``: the base's pdsim policy with the recommendation's values
  (``pdsim run SCENARIO --policy DIR/best-policy.yaml``);
* ``best-manifest.yaml``: the user's manifests with only the tuned fields changed, when
  the base is a real manifest (``sim.tuning.writeback``);
* ``report.html`` (``sim.tuning.report``);
* ``study.journal`` (the optuna study) and ``runs/`` (every simulated piece): what
  ``--resume`` continues from.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sim.runs.atomic import atomic_write
from sim.tuning.portfolio import relative_path
from sim.tuning.search import JOURNAL, RUNS, SearchError, SearchState, describe_pick, feasible
from sim.tuning.space import apply
from sim.tuning.spec import TuneFile

if TYPE_CHECKING:
    import pandas as pd

TUNE_JSON = "tune.json"
CANDIDATES = "candidates.parquet"
FRONTIER = "frontier.parquet"
VALIDATION = "validation.json"
BEST_POLICY = "best-policy.yaml"
BEST_MANIFEST = "best-manifest.yaml"
REPORT = "report.html"
#: Every name a search writes in its folder.
NAMES = (TUNE_JSON, CANDIDATES, FRONTIER, VALIDATION, BEST_POLICY, BEST_MANIFEST, REPORT, JOURNAL, RUNS)


def _write_text(path: Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, write)


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def base_is_manifest(tune: TuneFile) -> bool:
    """Whether the base's Canary or Rollout comes from a Kubernetes manifest (then
    ``best-manifest.yaml`` is written), not from a pdsim policy file."""
    from sim.importers.manifests import is_manifest
    from sim.yamlio import load_yaml_all

    for source in tune.base.sources:
        for doc in load_yaml_all(source, what="policy file"):
            if is_manifest(doc.data) and doc.data.get("kind") in ("Canary", "Rollout"):
                return True
    return False


def tune_record(state: SearchState, status: str) -> dict[str, Any]:
    """``tune.json``'s content."""
    tune = state.tune
    return {
        "name": tune.name,
        # Paths are relative to this folder: the folder reads the same from anywhere.
        "tune_file": relative_path(tune.path, state.out),
        "sha256": tune.sha256,
        "seed": state.seed,
        "budget": state.budget,
        "objectives": [str(m) for m in tune.objectives],
        "constraints": {c.name: c.bound for c in tune.constraints},
        "confidence": tune.spec.confidence,
        "space": {p.path: p.written() for p in tune.space.params},
        "rungs": list(state.rungs),
        "portfolio": tune.portfolio.describe(state.out),
        "validation_portfolio": tune.validation.describe(state.out),
        "validation_runs": tune.validation_runs,
        "base": {
            "paths": [relative_path(p, state.out) for p in tune.base_paths],
            "name": tune.base.name,
            "kind": "flagger" if tune.base.spec.flagger is not None else "argo",
            "manifest": base_is_manifest(tune),
        },
        "pick": {"rule": tune.spec.pick, "description": describe_pick(tune.spec.pick)},
        "best": state.best,
        "status": status,
        "elapsed_s": round(state.elapsed_s, 3),
        "rollouts": state.rollouts,
        "invalid": {str(c.id): c.error for c in state.candidates.values() if c.policy is None and c.error is not None},
    }


def prepare(out: Path, tune: TuneFile, seed: int, resume: bool) -> None:
    """Create or check the output folder.

    Raises:
        SearchError: ``out`` holds files and ``resume`` is not set; or, with ``resume``, it
            holds another search (another TUNE file's content or another seed).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SearchError(f"cannot use --out {out}: {err.strerror or err}") from None
    if not out.is_dir():
        raise SearchError(f"--out {out} is not a folder")
    names = sorted(p.name for p in out.iterdir())
    if not names:
        return
    if not resume:
        raise SearchError(
            f"{out} is not empty ({', '.join(names[:3])}): "
            "pass --resume to continue its search, or choose another --out"
        )
    path = out / TUNE_JSON
    if not path.is_file():
        raise SearchError(f"cannot resume into {out}: it holds no {TUNE_JSON}; choose another --out")
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SearchError(f"cannot resume into {out}: {TUNE_JSON} cannot be read ({err})") from None
    if before.get("sha256") != tune.sha256:
        raise SearchError(f"cannot resume into {out}: it holds a search of another TUNE file (or an edited one)")
    if before.get("seed") != seed:
        raise SearchError(f"cannot resume into {out}: its search has seed {before.get('seed')}, not {seed}")


def write_started(state: SearchState) -> None:
    """``tune.json`` with ``status: running`` (before anything is simulated)."""
    _write_json(state.out / TUNE_JSON, tune_record(state, "running"))


def candidates_frame(state: SearchState) -> pd.DataFrame:
    """``candidates.parquet``'s rows: every simulated candidate (the base first, as -1)."""
    import pandas as pd

    tune = state.tune
    last = len(state.rungs) - 1
    n_entries = len(tune.portfolio.entries)
    front = set(state.frontier)
    rows = []
    for c in state.every():
        if c.rung < 0:
            continue
        row: dict[str, Any] = {"candidate": c.id, "label": c.label, "base": c.id < 0}
        row.update({p: c.columns[p] for p in tune.space.names})
        runs = state.rungs[c.rung]
        row.update({"rung": c.rung, "runs": runs, "rollouts": runs * n_entries})
        for m in tune.metrics:
            est = c.estimates[str(m)]
            row.update({str(m): est.value, f"{m}_low": est.low, f"{m}_high": est.high})
        from sim.tuning.metrics import meets

        for con in tune.constraints:
            row[f"{con.name}_ok"] = bool(meets(c.estimates[con.name], con.bound))
        row["feasible"] = feasible(c, tune)
        row["frontier"] = c.rung == last and c.id in front
        row["best"] = c.id == state.best
        rows.append(row)
    frame = pd.DataFrame(rows)
    for p in tune.space.params:
        if p.is_numeric:
            frame[p.path] = frame[p.path].astype(float if not p.is_int else object)
            if p.is_int:
                # The base may lack a value (NaN): a nullable integer column keeps the ints.
                frame[p.path] = pd.array([None if _missing(v) else int(v) for v in frame[p.path]], dtype="Int64")
        else:
            frame[p.path] = frame[p.path].astype(str)
    for m in tune.metrics:
        for col in (str(m), f"{m}_low", f"{m}_high"):
            frame[col] = frame[col].astype(float)
    return frame


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def frontier_frame(candidates: pd.DataFrame, state: SearchState) -> pd.DataFrame:
    """``frontier.parquet``: the frontier's rows, sorted by the first objective."""
    first = str(state.tune.objectives[0])
    front = candidates[candidates["frontier"]]
    return front.sort_values([first, "candidate"], kind="stable").reset_index(drop=True)


def best_policy(state: SearchState) -> dict[str, Any] | None:
    """The recommendation as a pdsim policy mapping (None without one)."""
    if state.best is None:
        return None
    values = state.candidate(state.best).values
    return apply(state.tune.base.data, values)


def policy_text(state: SearchState, policy: dict[str, Any]) -> str:
    """``best-policy.yaml``: a header saying where it comes from, then the policy mapping."""
    best = state.candidate(state.best) if state.best is not None else None
    header = [
        f"# pdsim policy recommended by pdsim tune ({state.tune.name}, seed {state.seed}).",
        f"# Candidate {best.id if best is not None else '-'}: {best.label if best is not None else ''}",
        f"# Base: {', '.join(state.tune.base_paths)}",
        "# Run it: pdsim run SCENARIO.yaml --policy best-policy.yaml",
    ]
    body = yaml.safe_dump(policy, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16)
    return "".join(line.replace("\n", " ") + "\n" for line in header) + body


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_outputs(state: SearchState) -> list[str]:
    """Write every output of a finished search into its folder.

    Returns:
        Notes on outputs not written and why (one line each; no recommendation, a helper
        module not available).
    """
    out = state.out
    notes: list[str] = []
    frame = candidates_frame(state)
    _write_parquet(out / CANDIDATES, frame)
    _write_parquet(out / FRONTIER, frontier_frame(frame, state))
    _write_json(out / VALIDATION, state.validation)
    policy = best_policy(state)
    if policy is None:
        notes.append(f"no candidate met every constraint at the last rung: no {BEST_POLICY}")
    else:
        _write_text(out / BEST_POLICY, policy_text(state, policy))
        if base_is_manifest(state.tune):
            notes += _write_manifest(state)
    _write_json(out / TUNE_JSON, tune_record(state, "done"))
    notes += _write_report(out)
    return notes


def _write_manifest(state: SearchState) -> list[str]:
    """``best-manifest.yaml``, and a note for each tuned value it could not hold (a
    pdsim-only setting such as a judge) or when the file does not read back as the
    recommendation (it then still helps as a diff, but best-policy.yaml is the truth)."""
    import tempfile

    from sim.inputs.policy import read_policy
    from sim.inputs.scenario import PolicySpec
    from sim.tuning.writeback import write_back

    assert state.best is not None
    wb = write_back(state.tune.base_paths, state.candidate(state.best).values)
    _write_text(state.out / BEST_MANIFEST, wb.text)
    notes = [
        f"{BEST_MANIFEST}: {path} not written: {wb.reasons.get(path, 'no manifest field')}" for path in wb.not_written
    ]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / BEST_MANIFEST
        copy.write_text(wb.text, encoding="utf-8")
        expected = apply(
            state.tune.base.data,
            {p: v for p, v in state.candidate(state.best).values.items() if p not in wb.not_written},
        )
        # Compared as validated policies: a judge left out and `judge: null` are the same policy.
        if read_policy([copy]).spec != PolicySpec.model_validate(expected):
            notes.append(f"{BEST_MANIFEST} does not read back as the recommendation: use {BEST_POLICY}")
    return notes


def _write_report(out: Path) -> list[str]:
    from sim.tuning.report import write_report

    write_report(out)
    return []


__all__ = [
    "BEST_MANIFEST",
    "BEST_POLICY",
    "CANDIDATES",
    "FRONTIER",
    "NAMES",
    "REPORT",
    "TUNE_JSON",
    "VALIDATION",
    "base_is_manifest",
    "best_policy",
    "candidates_frame",
    "frontier_frame",
    "policy_text",
    "prepare",
    "tune_record",
    "write_outputs",
    "write_started",
]
