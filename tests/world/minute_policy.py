"""A scaffold for the routing tests' scripted policies: a policy that ticks every 60 s,
reads no metric and ends in the phase ``Done`` (subclasses write ``step``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.policies.base import MetricQuery, Policy


@dataclass(frozen=True)
class MinuteState:
    """A scripted policy's state: the ticks so far and its phase."""

    tick: int = 0
    phase: str = "Progressing"


class MinutePolicy(Policy):
    """Ticks every 60 s until its phase is ``Done``; no queries."""

    terminal_phases = frozenset({"Done"})

    def initial_state(self) -> Any:
        return MinuteState()

    def next_tick(self, state: Any, t: float) -> float | None:
        return None if state.phase == "Done" else t + 60.0

    def queries(self) -> list[MetricQuery]:
        return []

    def status(self, state: Any) -> dict[str, Any]:
        return {"phase": state.phase, "canary_weight": 0}
