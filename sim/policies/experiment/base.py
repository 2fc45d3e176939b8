"""The contract of A/B decision rules (issue 19): decisions, looks, the ``Test`` protocol, specs.

A rule is pure and vectorised over the runs of a batch (one row per run). At each look the
caller hands it the *cumulative* per-arm aggregates of every run (``Looks``: units n, sum
and sum of squares of the metric per arm; for a proportion the sum is the successes and
the sum of squares equals the sum) and whether this is the last look (max duration):

    state = test.state(n_runs)
    state, out = test.look(state, looks, final=False)   # ... at every look
    state, out = test.look(state, looks, final=True)    # at max duration

``out`` is a ``LookResult``: per run a ``Decision`` code (``CONTINUE``; ``CANDIDATE``: B is
better, promote it; ``PRIMARY``: B is worse, keep A; ``NONE``: inconclusive at the last
look) and the rule's estimate of the relative lift B/A − 1 with its interval at the rule's
own level (a confidence sequence for the anytime-valid rule, repeated confidence intervals
for group-sequential, the fixed-horizon interval for the fixed test, a credible interval for
the Bayesian rule). Decisions are sticky: a run that decided keeps its decision, and its
lift and interval as they were at the decision, whatever later looks hold (the caller stops
the experiment; feeding more data changes nothing). ``state`` is updated in place and
returned. Arm A is the primary (control), arm B the candidate.

The lift interval of every rule is the delta-method interval (Casella & Berger 2002,
Theorem 5.5.24) of r = m_B/m_A − 1, with Var(r̂) ≈ (V_B + (m_B/m_A)²·V_A)/m_A², V the
variance of an arm's mean, at the rule's critical value c: lift ± c·se. Decisions come from
the rule's own statistic on the difference m_B − m_A; under no lift the two agree exactly.

``ExperimentTestSpec`` is the ``test:`` block (``test: {kind: sequential, alpha: 0.05}``), a
union by ``kind``; ``make_test`` (the package) builds the rule it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any, Literal, Protocol

import numpy as np
from pydantic import Field, model_validator

from sim.models import StrictModel


class Decision(IntEnum):
    """Per-run decision codes (``np.int8`` arrays hold them)."""

    CONTINUE = 0
    CANDIDATE = 1  # B is better: promote the candidate
    PRIMARY = 2  # B is worse: keep the primary
    NONE = 3  # inconclusive at the last look


#: Record names of the final decisions (``winner`` field).
WINNER_NAMES = {Decision.CANDIDATE: "candidate", Decision.PRIMARY: "primary", Decision.NONE: "none"}


@dataclass(frozen=True, eq=False)
class Looks:
    """Cumulative per-arm aggregates of n runs at one look: arrays of shape (n,).

    ``binary`` marks a proportion (each unit 0 or 1: ``sum`` = successes, ``sumsq`` = ``sum``).
    Build with ``Looks.proportions`` or ``Looks.means``.
    """

    n_a: np.ndarray
    n_b: np.ndarray
    sum_a: np.ndarray
    sum_b: np.ndarray
    sumsq_a: np.ndarray
    sumsq_b: np.ndarray
    binary: bool

    @classmethod
    def proportions(cls, n_a: Any, x_a: Any, n_b: Any, x_b: Any) -> Looks:
        """Units n and successes x per arm (A the primary, B the candidate)."""
        na, xa, nb, xb = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (n_a, x_a, n_b, x_b))
        return cls(na, nb, xa, xb, xa, xb, True)

    @classmethod
    def means(cls, n_a: Any, sum_a: Any, sumsq_a: Any, n_b: Any, sum_b: Any, sumsq_b: Any) -> Looks:
        """Units n, sum and sum of squares of the metric per arm (order value, revenue per user)."""
        na, nb, sa, sb, qa, qb = (
            np.atleast_1d(np.asarray(v, dtype=float)) for v in (n_a, n_b, sum_a, sum_b, sumsq_a, sumsq_b)
        )
        return cls(na, nb, sa, sb, qa, qb, False)

    def __len__(self) -> int:
        return len(self.n_a)

    def row(self, i: int) -> Looks:
        """Run i alone (a batch of one)."""
        s = slice(i, i + 1)
        return Looks(
            self.n_a[s], self.n_b[s], self.sum_a[s], self.sum_b[s], self.sumsq_a[s], self.sumsq_b[s], self.binary
        )

    def arm(self, b: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, variance of one unit, n) of arm B (``b``) or A; 0 where n is 0.

        Proportion: p̂(1 − p̂). Mean: the unbiased sample variance (0 for n < 2).
        """
        n, s, ss = (self.n_b, self.sum_b, self.sumsq_b) if b else (self.n_a, self.sum_a, self.sumsq_a)
        safe = np.maximum(n, 1.0)
        mean = np.where(n > 0, s / safe, 0.0)
        if self.binary:
            var = mean * (1.0 - mean)
        else:
            var = np.where(n > 1, np.maximum(ss - n * mean * mean, 0.0) / np.maximum(n - 1.0, 1.0), 0.0)
        return mean, var, n


def difference(looks: Looks) -> tuple[np.ndarray, np.ndarray]:
    """(d̂, V): the difference of means m_B − m_A and its plug-in variance
    V = σ̂²_A/n_A + σ̂²_B/n_B (V = 0 where an arm has no unit, or no variance)."""
    ma, va, na = looks.arm(False)
    mb, vb, nb = looks.arm(True)
    ok = (na > 0) & (nb > 0)
    v = np.where(ok, va / np.maximum(na, 1.0) + vb / np.maximum(nb, 1.0), 0.0)
    return np.where(ok, mb - ma, 0.0), v


def lift_interval(looks: Looks, crit: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lift, low, high): r̂ = m_B/m_A − 1 and r̂ ± c·se(r̂) by the delta method (module
    docstring); NaN where m_A is 0 or an arm is empty; an infinite c gives (−inf, inf)."""
    ma, va, na = looks.arm(False)
    mb, vb, nb = looks.arm(True)
    ok = (na > 0) & (nb > 0) & (ma != 0)
    safe_ma = np.where(ok, ma, 1.0)
    ratio = mb / safe_ma
    se = np.sqrt(vb / np.maximum(nb, 1.0) + ratio * ratio * va / np.maximum(na, 1.0)) / np.abs(safe_ma)
    crit = np.broadcast_to(np.asarray(crit, dtype=float), ratio.shape)
    with np.errstate(invalid="ignore"):
        half = np.where(np.isinf(crit), np.inf, crit * se)
    lift = np.where(ok, ratio - 1.0, np.nan)
    return lift, np.where(ok, lift - half, np.nan), np.where(ok, lift + half, np.nan)


@dataclass(frozen=True, eq=False)
class LookResult:
    """What a look decides, per run: ``decision`` (int8 ``Decision`` codes) and the lift
    estimate with its interval (frozen at the decision for runs that decided)."""

    decision: np.ndarray
    lift: np.ndarray
    lift_low: np.ndarray
    lift_high: np.ndarray

    def at(self, i: int) -> tuple[Decision, float, float, float]:
        """Run i's decision, lift, low, high."""
        return Decision(int(self.decision[i])), float(self.lift[i]), float(self.lift_low[i]), float(self.lift_high[i])


@dataclass(eq=False)
class Verdicts:
    """The sticky part of every rule's state: decision and lift (with interval) per run, and
    the number of looks taken. Rules keep their own statistics beside it."""

    decision: np.ndarray
    lift: np.ndarray
    lift_low: np.ndarray
    lift_high: np.ndarray
    looks: int = 0

    @classmethod
    def empty(cls, n: int) -> Verdicts:
        nan = np.full(n, np.nan)
        return cls(np.zeros(n, dtype=np.int8), nan, nan.copy(), nan.copy())

    def settle(
        self,
        better: np.ndarray,
        worse: np.ndarray,
        lift: tuple[np.ndarray, np.ndarray, np.ndarray],
        final: bool | np.ndarray,
    ) -> LookResult:
        """Fold one look in: runs still open take ``CANDIDATE`` where ``better``,
        ``PRIMARY`` where ``worse``, ``NONE`` where ``final`` (a bool, or per run) and
        neither; open runs' lifts are this look's, decided runs keep theirs. Returns the
        look's ``LookResult``."""
        self.looks += 1
        open_ = self.decision == Decision.CONTINUE
        new = np.where(better, Decision.CANDIDATE, np.where(worse, Decision.PRIMARY, Decision.CONTINUE))
        new = np.where(np.asarray(final) & (new == Decision.CONTINUE), Decision.NONE, new)
        self.decision = np.where(open_, new, self.decision).astype(np.int8)
        for name, value in zip(("lift", "lift_low", "lift_high"), lift, strict=True):
            setattr(self, name, np.where(open_, value, getattr(self, name)))
        return LookResult(self.decision.copy(), self.lift.copy(), self.lift_low.copy(), self.lift_high.copy())


class Test(Protocol):
    """A two-arm decision rule, vectorised over runs (module docstring)."""

    kind: str

    def state(self, n_runs: int) -> Any:
        """The state of n runs before any look."""
        ...

    def look(self, state: Any, data: Looks, final: bool = False) -> tuple[Any, LookResult]:
        """Fold in one look of every run (``data`` cumulative); ``final`` at max duration."""
        ...


# ---------------------------------------------------------------------------------------
# specs: the ``test:`` block

Alpha = Annotated[float, Field(gt=0.0, lt=0.5)]
Positive = Annotated[float, Field(gt=0.0)]


class _Spec(StrictModel):
    """What every rule's spec has: its level (two-sided)."""

    alpha: Alpha = 0.05


class SequentialTestSpec(_Spec):
    """``kind: sequential``: the mixture SPRT and its confidence sequence (``sequential.py``).

    ``tau``: the standard deviation of the normal mixture over the difference, relative to
    the pooled mean (0.05: differences of about 5% of the metric are the ones the test is
    tuned to detect fastest). ``min_units``: per arm before the first decision (the
    plug-in variance needs some data).
    """

    kind: Literal["sequential"]
    tau: Positive = 0.05
    min_units: Annotated[int, Field(ge=1)] = 100


class FixedTestSpec(_Spec):
    """``kind: fixed``: the two-sided z test at a planned sample size per arm (``fixed.py``).

    ``peek: true`` repeats the test at every look and stops at the first |z| > z_{1−α/2}:
    its false-winner rate is NOT alpha (here to show why peeking fails).
    """

    kind: Literal["fixed"]
    sample_size: Annotated[int, Field(ge=2)]
    peek: bool = False


class GroupSequentialTestSpec(_Spec):
    """``kind: group-sequential``: ``looks`` planned equally spaced looks (the last at max
    duration) with Lan–DeMets alpha spending (``group_sequential.py``)."""

    kind: Literal["group-sequential"]
    looks: Annotated[int, Field(ge=1, le=1000)] = 14
    spending: Literal["obrien-fleming", "pocock"] = "obrien-fleming"


class BayesTestSpec(_Spec):
    """``kind: bayes``: chance to beat and expected loss (``bayes.py``). No frequentist
    guarantee: ``alpha`` only sets the level of the reported credible interval.

    Stops when the chance that one arm beats the other reaches ``chance_to_beat``, or when
    the expected loss of one choice, relative to the primary's mean, falls below
    ``expected_loss`` (either rule off when null; at least one must be on).
    """

    kind: Literal["bayes"]
    chance_to_beat: Annotated[float, Field(gt=0.5, lt=1.0)] | None = 0.95
    expected_loss: Positive | None = 0.001
    prior_a: Positive = 1.0
    prior_b: Positive = 1.0
    min_units: Annotated[int, Field(ge=1)] = 100

    @model_validator(mode="after")
    def _one_rule(self) -> BayesTestSpec:
        if self.chance_to_beat is None and self.expected_loss is None:
            raise ValueError("set chance_to_beat or expected_loss (or both)")
        return self


ExperimentTestSpec = Annotated[
    SequentialTestSpec | FixedTestSpec | GroupSequentialTestSpec | BayesTestSpec, Field(discriminator="kind")
]


def z_quantile(p: float) -> float:
    """Φ⁻¹(p) (scipy imported lazily: docs/architecture.md section 2)."""
    from scipy.special import ndtri

    return float(ndtri(p))
