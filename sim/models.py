"""The bases of every input model and the field types they share.

Every file pdsim reads (scenarios, policy files, sweeps, judges) is validated by pydantic
models built on ``StrictModel``: unknown keys are errors (reported with file and line by
``sim.errors``), models are frozen (a loaded scenario is shared by many runs and memoised
by identity), and fields may be given by name or by alias. ``LooseModel`` is for the
Kubernetes-side objects whose extra keys do not change decisions: they are kept, not
refused, and the importers warn about the ones that matter.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from sim.units import parse_duration

__all__ = ["Duration", "LooseModel", "StrictModel"]


class StrictModel(BaseModel):
    """Unknown keys refused, instances frozen, fields by name or alias."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class LooseModel(BaseModel):
    """Unknown keys kept (Kubernetes objects), instances frozen, fields by name or alias."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


#: A Go duration (``15s``, ``1m30s``) or a number of seconds, as a float of seconds.
Duration = Annotated[float, BeforeValidator(parse_duration)]
