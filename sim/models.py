"""The bases of every input model and the field types they share.

Every file pdsim reads (scenarios, policy files, sweeps, judges) is validated by pydantic
models built on ``StrictModel``: unknown keys are errors (reported with file and line by
``sim.errors``), models are frozen (a loaded scenario is shared by many runs and memoised
by identity), fields may be given by name or by alias, and numbers must be finite (NaN and
infinities are refused: no field of an input means anything with them). ``LooseModel`` is
for the Kubernetes-side objects whose extra keys do not change decisions: they are kept,
not refused, and the importers warn about the ones that matter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from sim.limits import MAX_RUNS, MAX_SEED, SEED_LIMIT
from sim.units import parse_duration

__all__ = [
    "Duration",
    "LooseModel",
    "RunCount",
    "Seed",
    "StrictModel",
    "Text",
    "at_least",
    "at_most",
    "field_error",
    "parse_run_count",
    "valid_text",
]


class StrictModel(BaseModel):
    """Unknown keys refused, instances frozen, fields by name or alias, numbers finite.

    ``defer_build``: a model's validator is built when it first validates, not when its
    module loads, so a command pays only for the models it uses (a policy's models are
    built as parts of the scenario's; issue 17, start-up).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False, defer_build=True)


class LooseModel(BaseModel):
    """Unknown keys kept (Kubernetes objects), instances frozen, fields by name or alias,
    numbers finite."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True, allow_inf_nan=False, defer_build=True)


#: A Go duration (``15s``, ``1m30s``) or a number of seconds, as a float of seconds.
Duration = Annotated[float, BeforeValidator(parse_duration)]


def valid_text(value: str) -> str:
    """``value`` when it is valid Unicode text, which every output (terminal, JSON, Parquet,
    HTML) can encode.

    YAML's ``"\\uD800"`` escape yields a lone surrogate, a code point that is not a
    character: it cannot be written as UTF-8, so it would fail only when the name is
    finally printed or stored.

    Raises:
        ValueError: naming the first lone surrogate.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = value[err.start]
        raise ValueError(
            f"not valid text: it holds a lone surrogate (\\u{ord(bad):04x}), which is not a character"
        ) from None
    return value


#: A string that is valid Unicode text (``valid_text``): for names and descriptions that
#: end up in outputs.
Text = Annotated[str, AfterValidator(valid_text)]


def field_error(model: str, loc: Sequence[str | int], message: str, value: object) -> ValidationError:
    """A validation error at ``loc`` below the model being validated, for a check that
    spans several fields (a model validator) but is about one of them: raised from the
    validator, pydantic reports it at that field, so the message names it and its line.

    Args:
        model: the model's name (pydantic's error title).
        loc: keys and indexes from the model to the field, e.g. ``("analysis", "startingStep")``.
        message: what is wrong.
        value: the field's value (shown as ``got``).
    """
    return ValidationError.from_exception_data(
        model,
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", "{message}", {"message": message}),
                loc=tuple(loc),
                input=value,
            )
        ],
    )


def at_most(limit: float, shown: str) -> AfterValidator:
    """A field check: the value is at most ``limit``, else ``at most SHOWN``.

    Args:
        limit: the largest legal value (a constant of ``sim.limits``).
        shown: how the message states the limit, with its unit (``"1e+08 requests/s"``).
    """

    def check(value: float) -> float:
        if value > limit:
            raise ValueError(f"at most {shown}")
        return value

    return AfterValidator(check)


def at_least(limit: float, shown: str) -> AfterValidator:
    """A field check: the value is at least ``limit``, else ``at least SHOWN``."""

    def check(value: float) -> float:
        if value < limit:
            raise ValueError(f"at least {shown}")
        return value

    return AfterValidator(check)


#: A root seed (``seed`` of scenario and sweep files): 0 to ``MAX_SEED``.
Seed = Annotated[int, Field(ge=0), at_most(MAX_SEED, SEED_LIMIT)]


# --- run counts (issue 13 item 8) -------------------------------------------


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
