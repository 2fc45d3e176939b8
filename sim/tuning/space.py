"""The search space of a TUNE file: policy fields and the values each may take.

A space key is a field PATH rooted at ``policy.`` (sweep-file syntax,
``policy.flagger.analysis.stepWeight``); its value is a distribution:

* ``{low, high}``: a number in the closed range; an integer when both ends are integers
  (and ``step``, if given); ``log: true`` draws it on a log scale; ``step`` keeps it on the
  grid ``low, low + step, ...``;
* ``{low, high, format: "result[0] >= {}"}``: the number written into a string (an Argo
  ``successCondition``), where ``{}`` stands for it;
* ``{choices: [...]}``: one of the listed values, any YAML value (a duration ``30s``,
  ``null``, a judge mapping).

Floats are rounded before they are used, so that policy files stay readable and what a
candidate ran is exactly what its row and ``best-policy.yaml`` say: to the decimals of
``step`` when a step is given, else to ``SIGNIFICANT`` significant digits (99.37, 0.9995).
The optimiser sees the same distributions (``optuna_distributions``); a choice is drawn as
its index, so that mappings and ``null`` can be choices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sim.errors import field_path
from sim.sweeps.plan import set_path
from sim.sweeps.spec import parse_path

if TYPE_CHECKING:  # optuna loads only when a search runs
    from optuna.distributions import BaseDistribution

#: Significant digits a float parameter keeps (without a ``step``).
SIGNIFICANT = 4


def round_value(value: float, step: float | None = None) -> float:
    """``value`` rounded as a float parameter is (see the module docstring).

    Args:
        value: the drawn number.
        step: the distribution's step, when it has one: the value keeps its decimals.
    """
    if not math.isfinite(value) or value == 0:
        return value
    if step is not None:
        exponent = Decimal(repr(float(step))).normalize().as_tuple().exponent
        decimals = max(0, -exponent) if isinstance(exponent, int) else 0
        return round(value, decimals)
    return float(f"{value:.{SIGNIFICANT}g}")


def number_text(value: float | int) -> str:
    """How a number is written into a ``format`` string: ``0.97``, ``5``, never ``5.0e-01``
    nor a float's noise (``0.30000000000000004``)."""
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text.removesuffix(".0") if text.endswith(".0") else text


def choice_text(value: Any) -> str:
    """A choice as a column of ``candidates.parquet`` holds it: a string as itself, anything
    else as its JSON text with sorted keys (``null`` for None)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Param:
    """One space key: a policy field and its distribution.

    Attributes:
        path: the PATH as written (``policy.flagger.analysis.stepWeight``); it names the
            parameter everywhere (optuna, columns, ``best-policy`` values).
        parts: the PATH parsed (``("policy", "flagger", ...)``).
        low: the lower end (None for choices).
        high: the upper end.
        log: drawn on a log scale.
        step: the grid step, or None.
        choices: the values to choose from (None for a range).
        format: the string a number is written into (``{}`` stands for it), or None.
    """

    path: str
    parts: tuple[str | int, ...]
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] | None = None
    format: str | None = None

    @property
    def is_int(self) -> bool:
        """Whether the parameter is an integer: both ends (and the step) are."""
        ends = (self.low, self.high) + ((self.step,) if self.step is not None else ())
        return self.choices is None and all(isinstance(v, int) and not isinstance(v, bool) for v in ends)

    @property
    def is_numeric(self) -> bool:
        """Whether the parameter's column holds numbers (a range), not choice texts."""
        return self.choices is None

    def optuna_distribution(self) -> BaseDistribution:
        """The optuna distribution of this parameter (a choice is drawn as its index)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices is not None:
            return CategoricalDistribution(list(range(len(self.choices))))
        assert self.low is not None and self.high is not None
        if self.is_int:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def number(self, drawn: Any) -> Any:
        """The parameter's value as its column holds it, from optuna's draw: an int, a
        rounded float, or a choice's text."""
        if self.choices is not None:
            return choice_text(self.choices[int(drawn)])
        if self.is_int:
            return int(drawn)
        return round_value(float(drawn), self.step)

    def value(self, drawn: Any) -> Any:
        """The value written into the policy for optuna's draw ``drawn`` (a number, or a
        choice's index): the choice itself, the number, or the number in ``format``."""
        if self.choices is not None:
            return self.choices[int(drawn)]
        number = self.number(drawn)
        return self.format.replace("{}", number_text(number)) if self.format is not None else number

    def ends(self) -> list[tuple[tuple, Any]]:
        """Every value a load-time check builds a policy with: (where in the space key's
        mapping it is written, the policy value): both ends, or each choice."""
        if self.choices is not None:
            return [(("choices", i), c) for i, c in enumerate(self.choices)]
        return [(("low",), self.value(self.low)), (("high",), self.value(self.high))]

    def written(self) -> dict[str, Any]:
        """The distribution as a TUNE file writes it (for ``tune.json``)."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        if self.format is not None:
            out["format"] = self.format
        return out


@dataclass(frozen=True)
class Space:
    """Every parameter of a search, in the TUNE file's order."""

    params: tuple[Param, ...]

    @property
    def names(self) -> list[str]:
        """The parameters' PATHs, in order."""
        return [p.path for p in self.params]

    def optuna_distributions(self) -> dict[str, BaseDistribution]:
        """PATH -> optuna distribution, for ``study.ask``."""
        return {p.path: p.optuna_distribution() for p in self.params}

    def values(self, drawn: Mapping[str, Any]) -> dict[str, Any]:
        """PATH -> the value written into the policy, from optuna's ``trial.params``."""
        return {p.path: p.value(drawn[p.path]) for p in self.params}

    def columns(self, drawn: Mapping[str, Any]) -> dict[str, Any]:
        """PATH -> the value as ``candidates.parquet`` holds it, from optuna's params."""
        return {p.path: p.number(drawn[p.path]) for p in self.params}

    def label(self, drawn: Mapping[str, Any]) -> str:
        """A short name of a candidate: ``interval=30s stepWeight=5 min=99.4``, each field
        by its last key unless two parameters end alike (then from below ``policy.``)."""
        lasts = [p.parts[-1] for p in self.params]
        bits = []
        for p in self.params:
            short = p.parts[-1] if lasts.count(p.parts[-1]) == 1 and isinstance(p.parts[-1], str) else None
            name = short if short is not None else field_path(p.parts[1:])
            shown = p.number(drawn[p.path])
            bits.append(f"{name}={shown if isinstance(shown, str) else number_text(shown)}")
        return " ".join(bits)


def make_param(path: str, dist: Mapping[str, Any]) -> Param:
    """A parameter from a space key and its (validated) distribution mapping.

    Raises:
        ValueError: the PATH is not a field path (``parse_path``).
    """
    choices = dist.get("choices")
    return Param(
        path=path,
        parts=parse_path(path),
        low=dist.get("low"),
        high=dist.get("high"),
        log=bool(dist.get("log", False)),
        step=dist.get("step"),
        choices=tuple(choices) if choices is not None else None,
        format=dist.get("format"),
    )


def apply(policy_data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a pdsim policy mapping with each PATH's value set (``sim.sweeps.plan.set_path``).

    Args:
        policy_data: the base's pdsim policy mapping (``{"flagger": {...}}``).
        values: PATH (rooted at ``policy.``) -> the value to write.

    Raises:
        ValueError: a PATH not rooted at ``policy.``, or one ``set_path`` cannot follow.
    """
    out: Any = dict(policy_data)
    for path, value in values.items():
        parts = parse_path(path)
        if parts[0] != "policy" or len(parts) < 2:
            raise ValueError(f"{path}: a space PATH starts with policy.")
        out = set_path(out, parts[1:], value)
    return dict(out)


__all__ = ["SIGNIFICANT", "Param", "Space", "apply", "choice_text", "make_param", "number_text", "round_value"]
