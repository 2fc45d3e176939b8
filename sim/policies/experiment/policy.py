"""pdsim's own A/B experiment policy (issue 19): ``policy: {experiment: ...}``.

A ``Policy`` like the Flagger and Argo ones, pure and never importing the world. Its ticks:

* tick 1, at t = 0: split the *users* (``SetWeights(by_user=True)``): ``split`` percent of
  them on the candidate, sticky. ``SetWeights.canary_weight`` is a whole percent, so a
  fractional split is rounded to the nearest whole percent (kept within 1-99); the
  sample-ratio-mismatch check then tests the counts against the weight the router was
  given, not the unrounded spec (``ExperimentPolicy.weight``).
* a look every ``interval`` after that, the last exactly at ``max_duration`` (``final``).
  At a look, from ``Observation.business`` (cumulative per version, ``BusinessData``), in
  this order of precedence:

  1. the sample-ratio-mismatch check (``srm.srm_check``) of the users each version saw
     against the split (Kohavi, Tang & Xu 2020, ch. 21), at ``srm_alpha`` divided by the
     number of looks (Bonferroni): the check runs at every look on counts that only
     grow, and at ``srm_alpha`` each time a correct split was flagged 4.5 times as often
     as ``srm_alpha`` over 14 looks (9 of 2,000 A/A runs of ``ab-conversion-aa`` at 0.001);
     divided, the chance a correct split is ever flagged stays at most ``srm_alpha``. A flagged
     split ends the experiment with no winner and no estimate (the data are not
     trusted): ``ExperimentEnded("none", srm=True)`` + ``Rollback``;
  2. the guardrails (``guardrail_failure``): a failing one ends it with the primary kept;
  3. the decision rule of ``test`` on ``metric`` (``make_test``): ``CANDIDATE`` promotes,
     ``PRIMARY`` rolls back, ``NONE`` (only at the last look) rolls back as
     "inconclusive at max_duration".

  Every end also sets the canary's weight to 0 and finishes (``Succeeded`` after a
  promotion, ``Failed`` otherwise, as Flagger names its phases; ``Initialized`` before
  tick 1, ``Progressing`` during the experiment).

The primary metric's ``Looks`` (``metric_looks``): ``conversion`` a proportion of sessions;
``order_value`` a mean over conversions (sum and sum of squares of order values);
``revenue`` a mean over sessions with the same sums (a session places one order at most,
so its revenue is 0 or that order's value); ``engagement`` a mean over sessions.

Guardrails (an honest, simple rule, documented here): a guardrail fails at a look when
(a) the candidate's point estimate is worse than the primary's by more than ``max_drop``
(percentage points of the request success rate; relative for a business metric, against
the primary's mean) and (b) the difference is significant at the experiment's ``alpha``
by the anytime-valid machinery of ``kind: sequential``: the upper end of the mixture
SPRT's confidence sequence for candidate − primary (Johari et al. 2022; ``sequential``,
mixture scale ``GUARDRAIL_TAU`` of the pooled mean) is below 0, with at least
``GUARDRAIL_MIN_UNITS`` units per version. Being anytime-valid, (b) may be checked at
every look without inflating false stops beyond alpha per guardrail.

Without business data (``Observation.business`` None: a scenario without ``business:``, a
replay without business columns) the experiment cannot run: it ends at once with no
winner and the reason ``no business data``.

The rules are vectorised over runs and keep their state in place (``base.Verdicts``); a
policy state must be immutable. The experiment stops at its first decision, so while it
runs its rule state is an *open* ``Verdicts`` of one run, which is fully determined by
the number of looks taken: each look rebuilds it from ``ExperimentState.looks``
(``ExperimentPolicy`` refuses a rule whose state is anything else).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sim.policies.base import (
    Action,
    BusinessData,
    ExperimentEnded,
    Finish,
    MetricQuery,
    Observation,
    Policy,
    PolicyTags,
    Promote,
    Rollback,
    SetWeights,
)
from sim.policies.driver import metric_json
from sim.policies.experiment.base import Decision, Looks, Verdicts, difference
from sim.policies.experiment.rules import make_test
from sim.policies.experiment.sequential import critical_value, mixture_tau
from sim.policies.experiment.spec import ExperimentPolicySpec, Guardrail, look_count, look_problem
from sim.policies.frozen import replace
from sim.units import format_duration

INITIALIZED, PROGRESSING, SUCCEEDED, FAILED = "Initialized", "Progressing", "Succeeded", "Failed"
TERMINAL = frozenset({SUCCEEDED, FAILED})

#: Mixture scale of the guardrails' confidence sequence, relative to the pooled mean
#: (the default ``tau`` of ``kind: sequential``).
GUARDRAIL_TAU = 0.05
#: Units per version before a guardrail may fail (the default ``min_units`` of ``kind: sequential``).
GUARDRAIL_MIN_UNITS = 100
#: The reason of an experiment that ran out of time.
INCONCLUSIVE = "inconclusive at max_duration"
#: The reason of an experiment without business data.
NO_BUSINESS = "no business data (a scenario without business:, or a replay without business columns)"


def _num(x: float) -> float:
    """``x`` as a Python float, NaN as the one ``math.nan`` object: states and actions that
    hold no estimate then compare equal (a fresh NaN is not equal to itself)."""
    x = float(x)
    return math.nan if x != x else x


def user_weight(split: float) -> int:
    """The router's whole-percent weight for a split of ``split`` percent of the users:
    rounded to the nearest percent (halves to even), kept within 1-99 so both versions
    get users."""
    return min(99, max(1, round(split)))


def metric_looks(metric: str, b: BusinessData) -> Looks:
    """The ``Looks`` (a batch of one run) of a business metric from cumulative data
    (module docstring). Index 0 of every pair is the primary, 1 the candidate."""
    if metric == "conversion":
        return Looks.proportions(b.sessions[0], b.conversions[0], b.sessions[1], b.conversions[1])
    if metric == "order_value":
        n, s, q = b.conversions, b.order_value_sum, b.order_value_sumsq
    elif metric == "revenue":
        n, s, q = b.sessions, b.order_value_sum, b.order_value_sumsq
    elif metric == "engagement":
        n, s, q = b.sessions, b.engagement_sum, b.engagement_sumsq
    else:
        raise ValueError(f"unknown business metric {metric!r}")
    return Looks.means(n[0], s[0], q[0], n[1], s[1], q[1])


def guardrail_looks(metric: str, b: BusinessData) -> Looks:
    """The ``Looks`` a guardrail compares: the request success proportion (successes out
    of live requests) for ``request-success-rate``, else ``metric_looks``."""
    if metric == "request-success-rate":
        (na, nb), (ea, eb) = b.requests, b.errors
        return Looks.proportions(na, na - ea, nb, nb - eb)
    return metric_looks(metric, b)


def guardrail_failure(g: Guardrail, b: BusinessData, alpha: float) -> str | None:
    """Why guardrail ``g`` fails on ``b`` at level ``alpha`` (module docstring), or None.

    Returns:
        A one-line reason naming the metric, the drop and the limit, or None when the
        guardrail holds (or there is too little data to tell).
    """
    looks = guardrail_looks(g.metric, b)
    d_arr, v_arr = difference(looks)
    d, v = float(d_arr[0]), float(v_arr[0])
    if min(float(looks.n_a[0]), float(looks.n_b[0])) < GUARDRAIL_MIN_UNITS or v <= 0.0:
        return None
    mean_a = float(looks.arm(False)[0][0])
    if g.metric == "request-success-rate":
        drop, shown = -d * 100.0, f"{-d * 100.0:.3g} points"  # percentage points
    else:
        if mean_a <= 0.0:
            return None
        drop, shown = -d / mean_a, f"{-d / mean_a:.3g} relative"
    if drop <= g.max_drop:
        return None
    crit = float(critical_value(v_arr, mixture_tau(looks, GUARDRAIL_TAU), alpha)[0])
    if not d + crit * math.sqrt(v) < 0.0:
        return None
    return f"guardrail {g.metric} failed: the candidate is worse by {shown} (max_drop {g.max_drop:g}), significant"


@dataclass(frozen=True)
class ExperimentState:
    """The experiment's state (frozen; copied with ``sim.policies.frozen.replace``).

    Attributes:
        phase: ``Initialized``, ``Progressing``, ``Succeeded`` or ``Failed``.
        canary_weight: percent of the users on the candidate (0 before the split and
            after the end).
        looks: looks taken.
        lift, lift_low, lift_high: the rule's lift estimate and interval at the last
            look (NaN before the first, or where it has none).
        winner: ``candidate``, ``primary`` or ``none`` once ended, else "".
        event: what the last step did, for the trace.
    """

    phase: str = INITIALIZED
    canary_weight: int = 0
    looks: int = 0
    lift: float = math.nan
    lift_low: float = math.nan
    lift_high: float = math.nan
    winner: str = ""
    event: str = ""


class ExperimentPolicy(Policy):
    """An A/B experiment: a sticky user split, looks every ``interval``, a decision by a
    rule on a business metric, guardrails and a sample-ratio check (module docstring).

    Args:
        spec: the ``experiment:`` block.
        name: label of the policy in results.

    Raises:
        ValueError: a group-sequential test whose planned looks do not line up with the
            experiment's (``look_problem``), or a rule whose state is not ``Verdicts``.
    """

    terminal_phases = TERMINAL

    def __init__(self, spec: ExperimentPolicySpec, name: str = "experiment") -> None:
        problem = look_problem(spec)
        if problem is not None:
            raise ValueError(f"test.looks: {problem}")
        self.spec = spec
        self.name = name
        self.test = make_test(spec.test)
        if type(self.test.state(1)) is not Verdicts:
            raise ValueError(f"rule {spec.test.kind!r} keeps a state the policy cannot rebuild")
        #: The router's whole-percent weight for the split (``user_weight``).
        self.weight = user_weight(spec.split)
        #: How many looks the experiment takes at most (the last at max_duration).
        self.n_looks = look_count(spec.max_duration, spec.interval)

    # -- the Policy protocol ---------------------------------------------------------

    @property
    def tags(self) -> PolicyTags:
        """It reads ``Observation.business`` and nothing else (no metric queries)."""
        return PolicyTags(reads_business=True)

    def business_metric(self) -> str:
        """The experiment's primary metric."""
        return self.spec.metric

    def queries(self) -> list[MetricQuery]:
        """None: an experiment reads business data, not Prometheus."""
        return []

    def initial_state(self) -> ExperimentState:
        return ExperimentState()

    def look_time(self, k: int) -> float:
        """The time of look ``k`` (1-based): k·interval, the last exactly at max_duration."""
        return self.spec.max_duration if k >= self.n_looks else k * self.spec.interval

    def next_tick(self, state: ExperimentState, t: float) -> float | None:
        if state.phase in TERMINAL:
            return None
        if state.phase == INITIALIZED:
            return 0.0
        return self.look_time(state.looks + 1)

    def status(self, state: ExperimentState) -> dict[str, Any]:
        """Phase, the users' split, looks taken and the current lift estimate (JSON-safe:
        NaN as ``"NaN"``)."""
        return {
            "phase": state.phase,
            "canary_weight": state.canary_weight,
            "looks": state.looks,
            "lift": metric_json(state.lift),
        }

    def event(self, state: ExperimentState) -> str:
        return state.event

    def describe(self) -> list[str]:
        """One line: split, metric, rule, looks, guardrails, SRM check."""
        s = self.spec
        split = f"{s.split:g}% of users" + (f" (routed as {self.weight}%)" if self.weight != s.split else "")
        guards = ", ".join(f"{g.metric} max_drop {g.max_drop:g}" for g in s.guardrails) or "none"
        srm = (
            f"SRM check at p < {s.srm_alpha:g} over all looks (Bonferroni)"
            if s.srm_alpha is not None
            else "no SRM check"
        )
        return [
            f"A/B experiment: {split} on the candidate, {s.metric} decided by {s.test.kind} "
            f"(alpha {s.test.alpha:g}), a look every {format_duration(s.interval)} up to "
            f"{format_duration(s.max_duration)}; guardrails: {guards}; {srm}"
        ]

    def step(self, state: ExperimentState, obs: Observation) -> tuple[ExperimentState, tuple[Action, ...]]:
        if state.phase in TERMINAL:
            return state, ()
        business = obs.business
        if business is None:
            return self._end(state, ExperimentEnded("none", reason=NO_BUSINESS))
        if state.phase == INITIALIZED:
            split = SetWeights(self.weight, by_user=True)
            return replace(state, phase=PROGRESSING, canary_weight=self.weight, event=f"split {self.weight}%"), (split,)
        return self._look(state, business)

    # -- a look ----------------------------------------------------------------------

    def _look(self, state: ExperimentState, business: BusinessData) -> tuple[ExperimentState, tuple[Action, ...]]:
        from sim.policies.experiment.srm import srm_check

        spec = self.spec
        looks = state.looks + 1
        final = looks >= self.n_looks
        rule_state = Verdicts.empty(1)
        rule_state.looks = state.looks
        _, result = self.test.look(rule_state, metric_looks(spec.metric, business), final=final)
        decision, lift, low, high = result.at(0)
        lift, low, high = _num(lift), _num(low), _num(high)
        state = replace(state, looks=looks, lift=lift, lift_low=low, lift_high=high)
        if spec.srm_alpha is not None:
            (users_a, users_b) = business.users
            level = spec.srm_alpha / self.n_looks  # Bonferroni over the looks (module docstring)
            p, flagged = srm_check(users_a, users_b, self.weight / 100.0, level)
            if bool(flagged[0]):
                reason = (
                    f"sample ratio mismatch: {users_a:g} and {users_b:g} users against a {self.weight}% split "
                    f"(p = {float(p[0]):.3g} < {level:.3g}, srm_alpha {spec.srm_alpha:g} over {self.n_looks} looks)"
                )
                return self._end(state, ExperimentEnded("none", srm=True, reason=reason))
        for g in spec.guardrails:
            why = guardrail_failure(g, business, spec.test.alpha)
            if why is not None:
                return self._end(state, ExperimentEnded("primary", lift, low, high, reason=why))
        if decision == Decision.CANDIDATE:
            reason = f"the candidate is better on {spec.metric} (lift {lift:.3g})"
            return self._end(state, ExperimentEnded("candidate", lift, low, high, reason=reason))
        if decision == Decision.PRIMARY:
            reason = f"the candidate is worse on {spec.metric} (lift {lift:.3g})"
            return self._end(state, ExperimentEnded("primary", lift, low, high, reason=reason))
        if decision == Decision.NONE:
            return self._end(state, ExperimentEnded("none", lift, low, high, reason=INCONCLUSIVE))
        return replace(state, event=f"look {looks}: lift {lift:.3g}"), ()

    def _end(self, state: ExperimentState, ended: ExperimentEnded) -> tuple[ExperimentState, tuple[Action, ...]]:
        """The end of the experiment: ``ended``, the canary's weight to 0 (as Flagger sets
        it with a promotion or a rollback), then ``Promote`` or ``Rollback`` and ``Finish``."""
        acts: tuple[Action, ...]
        if ended.winner == "candidate":
            phase, acts = SUCCEEDED, (ended, SetWeights(0), Promote(), Finish(SUCCEEDED))
        else:
            phase, acts = FAILED, (ended, SetWeights(0), Rollback(ended.reason), Finish(FAILED))
        new = replace(state, phase=phase, canary_weight=0, winner=ended.winner, event=f"{ended.winner}: {ended.reason}")
        return new, acts


__all__ = [
    "FAILED",
    "GUARDRAIL_MIN_UNITS",
    "GUARDRAIL_TAU",
    "INCONCLUSIVE",
    "INITIALIZED",
    "NO_BUSINESS",
    "PROGRESSING",
    "SUCCEEDED",
    "TERMINAL",
    "ExperimentPolicy",
    "ExperimentState",
    "guardrail_failure",
    "guardrail_looks",
    "metric_looks",
    "user_weight",
]
