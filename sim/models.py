"""The bases of every input model and the field types they share.

Every file pdsim reads (scenarios, policy files, sweeps, judges) is validated by pydantic
models built on ``StrictModel``: unknown keys are errors (reported with file and line by
``sim.errors``), models are frozen (a loaded scenario is shared by many runs and memoised
by identity), and fields may be given by name or by alias. ``LooseModel`` is for the
Kubernetes-side objects whose extra keys do not change decisions: they are kept, not
refused, and the importers warn about the ones that matter.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from sim.limits import MAX_RUNS
from sim.units import parse_duration

__all__ = ["Duration", "LooseModel", "RunCount", "StrictModel", "parse_run_count"]


class StrictModel(BaseModel):
    """Unknown keys refused, instances frozen, fields by name or alias."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class LooseModel(BaseModel):
    """Unknown keys kept (Kubernetes objects), instances frozen, fields by name or alias."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


#: A Go duration (``15s``, ``1m30s``) or a number of seconds, as a float of seconds.
Duration = Annotated[float, BeforeValidator(parse_duration)]


# --- run counts (issue 13 item 8, helper "sizes") -------------------------------------------


def parse_run_count(value: object, minimum: int | None = 1) -> int:
    """A number of rollouts: a whole number from ``minimum`` (None: unchecked) to ``limits.MAX_RUNS``.

    Written as an integer (``1000``) or in scientific notation (``1e6``, which YAML reads
    as a string and ``--runs`` as text), as long as it is a whole number.

    Raises:
        ValueError: not a whole number, or out of range; the message states the limit.
    """
    whole = "must be a whole number of runs, e.g. 1000 or 1e6"
    if isinstance(value, bool):
        raise ValueError(whole)
    n: int | float
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        n = value
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            n = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise ValueError(whole) from None
    else:
        raise ValueError(whole)
    if isinstance(n, float) and not (math.isfinite(n) and n.is_integer()):
        raise ValueError(whole)
    if minimum is not None and n < minimum:
        raise ValueError(f"must be an integer of at least {minimum}")
    if n > MAX_RUNS:
        # Compared before converting: 1e30 is refused without building a 31-digit int.
        raise ValueError(f"must be at most {MAX_RUNS:,} runs")
    return int(n)


def _run_count(value: object) -> int:
    return parse_run_count(value, None)  # the minimum is the field's ``ge`` (pydantic's message)


#: ``runs:`` of scenario and sweep files (see ``parse_run_count``).
RunCount = Annotated[int, BeforeValidator(_run_count), Field(ge=1, le=MAX_RUNS)]
