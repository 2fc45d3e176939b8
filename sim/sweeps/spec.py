"""Sweep files: what a sweep simulates, read with file/line error messages.

A sweep file names base scenarios, policies, a grid (or a list of cases) over fields of
either, replications per cell and a root seed; optionally a release portfolio::

    scenario: ../scenarios/good-release.yaml      # or scenarios: [a.yaml, b.yaml]
    policies:                                     # default: each scenario's own policy
      - ../policies/strict.yaml                   # a policy file, manifest or directory
      - [canary.yaml, templates/]                 # several paths combined into one policy
      - {name: fast, flagger: {analysis: {...}}}  # inline
    grid:                                         # the product of every key's values
      policy.flagger.analysis.threshold: [2, 5, 10]
    cases:                                        # and/or a list of points (times the grid)
      - {"release.faults[0].rate": 0.01, policy.flagger.analysis.stepWeight: 5}
    portfolio:
      - {name: good, weight: 0.85, set: {release.faults: []}}
      - name: error-spike
        weight: 0.15
        set: {release.faults: [{kind: error_rate, rate: 0.01}]}
        severity: {path: release.faults[0].rate, loguniform: [0.002, 0.05]}
        strata: 4
    runs: 1000
    seed: 7

A field PATH is dotted keys and ``[i]`` indexes from the scenario's root
(``release.faults[0].rate``) or from the policy (``policy.flagger.analysis.threshold``).
Relative paths in the file are relative to the file. :mod:`sim.sweeps.execute` expands a
:class:`SweepSpec` into cells; this module only reads and checks the file.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from sim.errors import InputError
from sim.inputs.files import open_regular
from sim.inputs.validation import validate_document
from sim.models import RunCount, Seed, StrictModel, Text, field_error, valid_text
from sim.yamlio import YamlDoc, load_yaml

_PATH_RE = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*")
_PART_RE = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]")
#: The largest |z| a lognormal draw reaches: plan.py draws u = (stratum + U) / strata with
#: U a double in [0, 1), so u >= 2**-53 or u = 0 (z = -inf, a draw of 0) and
#: u <= 1 - 2**-53, where the normal quantile is about 8.21.
_Z_MAX = 8.3


def parse_path(path: str) -> tuple[str | int, ...]:
    """``"release.faults[0].rate"`` -> ``("release", "faults", 0, "rate")``.

    Raises:
        ValueError: when ``path`` is not dotted keys and ``[i]`` indexes.
    """
    if not isinstance(path, str) or not _PATH_RE.fullmatch(path):
        raise ValueError("not a field path such as release.faults[0].rate or policy.flagger.analysis.threshold")
    return tuple(m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _PART_RE.finditer(path))


class Severity(StrictModel):
    """A severity drawn from a distribution: exactly one of uniform, loguniform, lognormal.

    ``uniform``/``loguniform`` are ``[low, high]``; ``lognormal`` is ``{median, sigma}``.
    """

    path: str
    uniform: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    loguniform: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2)] | None = None
    lognormal: dict[str, float] | None = None

    @model_validator(mode="after")
    def _one(self) -> Severity:
        given = [x for x in (self.uniform, self.loguniform, self.lognormal) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one distribution: uniform, loguniform or lognormal")
        pair = self.uniform or self.loguniform
        if pair is not None and not pair[0] <= pair[1]:
            raise ValueError("[low, high] needs low <= high")
        if pair is not None and not math.isfinite(pair[1] - pair[0]):
            raise ValueError("[low, high] spans more than the largest float: draws would be infinite")
        if self.lognormal is not None and (
            set(self.lognormal) != {"median", "sigma"} or self.lognormal["median"] <= 0 or self.lognormal["sigma"] < 0
        ):
            raise ValueError("lognormal needs {median: > 0, sigma: >= 0}")
        if self.lognormal is not None:
            # The largest draw, median * e^(z sigma), must be a float: compared as logarithms.
            median, sigma = self.lognormal["median"], self.lognormal["sigma"]
            if math.log(median) + _Z_MAX * sigma > math.log(sys.float_info.max):
                raise ValueError(
                    f"lognormal draws reach median x e^({_Z_MAX:g} x sigma), beyond the largest float: "
                    "give a smaller median or sigma"
                )
        return self

    def quantile(self, u: float) -> float:
        """The inverse distribution function at ``u`` in (0, 1)."""
        if self.uniform is not None:
            lo, hi = self.uniform
            return lo + u * (hi - lo)
        if self.loguniform is not None:
            lo, hi = self.loguniform
            return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        from scipy.stats import norm

        assert self.lognormal is not None
        if self.lognormal["sigma"] == 0.0:  # u = 0 gives z = -inf, and 0 x -inf is NaN
            return self.lognormal["median"]
        return self.lognormal["median"] * math.exp(self.lognormal["sigma"] * float(norm.ppf(u)))


class ReleaseKind(StrictModel):
    """One kind of release of a portfolio: what it sets on the scenario and how often it comes.

    ``severity`` draws one field from a distribution, by stratified sampling: ``strata``
    equal-probability strata, one draw in each (its own world), weighted equally.
    """

    name: Annotated[Text, Field(min_length=1)]
    weight: Annotated[float, Field(gt=0, le=1)]
    set: dict[str, Any] = {}
    severity: Severity | None = None
    strata: Annotated[int, Field(ge=1, le=1000)] = 1


class SweepSpec(StrictModel):
    """The validated content of a sweep file (paths still as written)."""

    name: Text | None = None
    description: Text = ""
    scenario: str | None = None
    scenarios: list[str] | None = None
    policies: list[str | list[str] | dict[str, Any]] | None = None
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    cases: list[dict[str, Any]] = []
    portfolio: list[ReleaseKind] = []
    runs: RunCount = 1000
    seed: Seed = 0
    chunk_size: Annotated[int, Field(ge=1)] = 1000

    @model_validator(mode="after")
    def _shape(self) -> SweepSpec:
        if (self.scenario is None) == (self.scenarios is None):
            raise ValueError("give exactly one of scenario or scenarios")
        if self.scenarios == []:
            raise ValueError("scenarios: give at least one scenario file")
        if self.policies == []:
            raise ValueError("policies: give at least one policy, or leave the key out for the scenarios' own")
        if self.portfolio and abs(sum(k.weight for k in self.portfolio) - 1.0) > 1e-6:
            raise ValueError(f"portfolio weights must sum to 1 (they sum to {sum(k.weight for k in self.portfolio):g})")
        names = [k.name for k in self.portfolio]
        if len(set(names)) != len(names):
            raise ValueError("portfolio kinds need distinct names")
        for i, entry in enumerate(self.policies or []):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                try:
                    valid_text(entry["name"])  # it names the policy in records and reports
                except ValueError as err:
                    raise field_error("SweepSpec", ("policies", i, "name"), str(err), entry["name"]) from None
        return self

    @property
    def scenario_paths(self) -> list[str]:
        return [self.scenario] if self.scenario is not None else list(self.scenarios or [])


class SweepFile:
    """A sweep file: its spec, its YAML (for lines), and its content hash.

    Attributes:
        path: the file as given.
        doc: the loaded YAML document.
        spec: the validated spec.
        sha256: hex digest of the file's bytes.
    """

    def __init__(self, path: str, doc: YamlDoc, spec: SweepSpec, sha256: str) -> None:
        self.path = path
        self.doc = doc
        self.spec = spec
        self.sha256 = sha256

    @property
    def base(self) -> Path:
        """The directory relative paths in the file are read from."""
        return Path(self.path).parent

    def error(self, loc: tuple, message: str, **got: Any) -> InputError:
        """An InputError at the line of ``loc`` in this file."""
        return InputError(self.path, self.doc.line_of(loc), self.doc.field_path(loc), message, **got)

    def name(self) -> str:
        return self.spec.name or Path(self.path).stem


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open_regular(path) as fh:  # a FIFO would block the sweep before it starts
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_paths(sweep: SweepFile) -> None:
    """Every PATH key of grid, cases, portfolio set and severity parses; policy paths
    are only for grid and cases (a portfolio describes releases, not policies)."""
    spec = sweep.spec
    keyed: list[tuple[tuple, str]] = [(("grid", k), k) for k in spec.grid]
    keyed += [(("cases", i, k), k) for i, case in enumerate(spec.cases) for k in case]
    for i, kind in enumerate(spec.portfolio):
        keyed += [(("portfolio", i, "set", k), k) for k in kind.set]
        if kind.severity is not None:
            keyed.append((("portfolio", i, "severity", "path"), kind.severity.path))
    for loc, path in keyed:
        try:
            parts = parse_path(path)
        except ValueError as err:
            raise sweep.error(loc, str(err), got=path) from None
        if loc[0] == "portfolio" and parts[0] == "policy":
            raise sweep.error(
                loc, "a portfolio sets release fields, not the policy (sweep the policy in grid)", got=path
            )
        if parts[0] in ("name", "runs", "seed"):
            raise sweep.error(loc, f"{parts[0]} is set by the sweep itself, not swept", got=path)


def load_sweep(path: str | os.PathLike[str]) -> SweepFile:
    """Read and check a sweep file's shape (files it names are read by :mod:`sim.sweeps.execute`).

    Raises:
        InputError: one line naming the file, the line and the field.
    """
    doc = load_yaml(path, what="sweep file")
    spec = validate_document(doc, SweepSpec, "a sweep file must be a mapping (scenario, policies, grid, runs, ...)")
    sweep = SweepFile(str(path), doc, spec, file_sha256(path))
    _check_paths(sweep)
    return sweep


__all__ = ["ReleaseKind", "Severity", "SweepFile", "SweepSpec", "file_sha256", "load_sweep", "parse_path"]
