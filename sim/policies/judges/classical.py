"""Classical sequential baselines on error counts: group-sequential, Wald's SPRT, peeking.

* **Group-sequential** with Lan–DeMets alpha spending (Lan & DeMets, Biometrika 1983;
  Jennison & Turnbull, *Group Sequential Methods*, 2000, ch. 7 and 19): a look at every
  tick at information fraction t = canary requests / ``max_canary_requests``; the look
  spends alpha(t_k) − alpha(t_{k−1}) with O'Brien–Fleming-type
  alpha(t) = 2 − 2Φ(z_{1−α/2}/√t) or Pocock-type alpha(t) = α·log(1 + (e − 1)t). The
  boundary is solved on the B-value W(t) = Z·√t, a Brownian motion in t, by the
  Armitage–McPherson–Rowe recursion on a grid. At t = 1 the remaining alpha is spent and
  a canary not rejected is accepted. The statistic is the conditional z of the canary's
  share of failures, Z = (C − Σfπ) / sqrt(Σfπ(1 − π)) (see ``counts``). Its error rate
  holds when looks follow the plan; the plan's information is requests, the statistic's
  is failures: with a ramp the two differ slightly (measured in the test suite).
* **Wald's SPRT** (Wald 1945) of relative risk 1 against ``relative_risk`` on the failure
  labels: roll back when the log-likelihood ratio >= log((1 − β)/α), accept when
  <= log(β/(1 − α)). exp(LLR) is a test martingale under the null, so the rollback rate
  is at most α/(1 − β) (Ville).
* **Naive repeated test**: a one-sided two-proportion pooled z test on all data so far,
  at level α, repeated every tick. Each look alone has size α; repeated, it does not
  (Armitage, McPherson & Rowe 1969): here to show what peeking costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.policies.judges.base import (
    FAIL_CODE,
    INCONCLUSIVE_CODE,
    NO_DATA_CODE,
    PASS_CODE,
    Detail,
    JudgeBatch,
    JudgeData,
    Judgement,
    Judgements,
    RowByRow,
    Verdict,
)
from sim.policies.judges.counts import Slots, error_slots, slot_count, totals
from sim.policies.judges.sequential import log_likelihood_ratios
from sim.policies.judges.spec import ERRORS, GroupSequentialSpec, NaiveSpec, SprtSpec, signals_to_judge

#: B-value grid of the group-sequential recursion (W(t) for t <= 1 stays within ±8).
W_GRID = np.linspace(-8.0, 8.0, 241)
_H = W_GRID[1] - W_GRID[0]
_DIFF2 = (W_GRID[:, None] - W_GRID[None, :]) ** 2


def spent_alpha(t: float, alpha: float, spending: str) -> float:
    """Lan–DeMets spending function alpha(t), t in [0, 1]."""
    from scipy.stats import norm  # lazy: scipy.stats costs a run's start-up (docs/architecture.md section 2)

    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    if spending == "pocock":
        return alpha * math.log1p((math.e - 1.0) * t)
    return float(2.0 - 2.0 * norm.cdf(norm.ppf(1.0 - alpha / 2.0) / math.sqrt(t)))


def label_z_parts(slots: Slots) -> tuple[float, float, float]:
    """(canary events, expected canary events, variance) under the null, summed over slots."""
    pi = slots.share()
    f = slots.e_canary + slots.e_primary
    use = (f > 0) & (pi > 0) & (pi < 1)
    return (float(slots.e_canary[use].sum()), float((f * pi)[use].sum()), float((f * pi * (1 - pi))[use].sum()))


@dataclass(frozen=True)
class GroupSequentialState:
    """Looks so far: slots folded in, the label z sums, last information fraction and
    boundary, alpha spent, the continuation density of W on ``W_GRID`` (bytes)."""

    seen: int = 0
    events: float = 0.0
    expected: float = 0.0
    variance: float = 0.0
    t: float = 0.0
    spent: float = 0.0
    density: bytes = b""
    boundary: float = math.inf
    decided: str = ""  # "", "reject" or "accept"


class _ErrorsOnly:
    """Judges of error counts only: request-duration stays a threshold check."""

    needs_latency = False

    def __init__(self, spec, signals: frozenset[str] = frozenset({ERRORS})) -> None:
        self.spec = spec
        self.signals = signals_to_judge(spec.metrics, signals, frozenset({ERRORS}))


class GroupSequentialJudge(RowByRow, _ErrorsOnly):
    """``kind: group-sequential``: Lan–DeMets O'Brien–Fleming or Pocock spending."""

    kind = "group-sequential"

    def __init__(self, spec: GroupSequentialSpec, signals: frozenset[str] = frozenset({ERRORS})) -> None:
        super().__init__(spec, signals)

    def initial_state(self) -> GroupSequentialState:
        return GroupSequentialState()

    def judge(self, state: GroupSequentialState, data: JudgeData) -> tuple[GroupSequentialState, Judgement]:
        spec = self.spec
        k = slot_count(data)
        nc = totals(data)[0]
        s = state
        if not s.decided and k > s.seen:
            c, mu, v = label_z_parts(error_slots(data, s.seen))
            s = GroupSequentialState(
                k, s.events + c, s.expected + mu, s.variance + v, s.t, s.spent, s.density, s.boundary
            )
            t = min(nc / spec.max_canary_requests, 1.0)
            if s.variance > 0 and t > s.t + 1e-9:
                s = self._look(s, t)
        detail: dict[str, float | str | None] = {"information": round(s.t, 4), "alpha_spent": s.spent}
        if s.variance > 0:
            detail["z"] = round((s.events - s.expected) / math.sqrt(s.variance), 4)
        if s.decided == "reject":
            detail["statistic"] = f"z {detail.get('z')} crossed the {spec.spending} boundary at t={s.t:.3f}"
            return s, Judgement(Verdict.FAIL, reject=True, detail=detail)
        if s.decided == "accept":
            return s, Judgement(Verdict.PASS, accept=True, detail=detail)
        return s, Judgement(Verdict.NO_DATA if nc <= 0 else Verdict.INCONCLUSIVE, detail=detail)

    def _look(self, s: GroupSequentialState, t: float) -> GroupSequentialState:
        """One interim analysis at information fraction t (the AMR recursion)."""
        from scipy.optimize import brentq
        from scipy.special import ndtr  # lazy: validate imports no scipy (docs/architecture.md section 2)
        from scipy.stats import norm

        alpha = self.spec.alpha
        target = spent_alpha(t, alpha, self.spec.spending)
        step = max(target - s.spent, 0.0)
        # Continuity correction (Yates): the canary's failures are a sum of Bernoullis of
        # small share, right-skewed; without it the upper tail is too heavy at early looks.
        w = (s.events - s.expected - 0.5) / math.sqrt(s.variance) * math.sqrt(t)
        if not s.density:  # first look: W(t) ~ N(0, t)
            b = norm.ppf(1.0 - step) * math.sqrt(t) if step > 0 else math.inf
            dens = norm.pdf(W_GRID, scale=math.sqrt(t))
        else:
            prev = np.frombuffer(s.density)
            sd = math.sqrt(t - s.t)
            # Each grid point carries its cell's mass; the cell cut by the last boundary
            # only the part below it (midpoint rule with a partial last cell).
            mass = prev * _H * np.clip((s.boundary - (W_GRID - _H / 2)) / _H, 0.0, 1.0)
            if step > 0:
                cross = lambda x: float(mass @ ndtr((W_GRID - x) / sd)) - step  # noqa: E731
                b = brentq(cross, -20.0, 40.0, xtol=1e-6) if cross(-20.0) > 0 else -20.0
            else:
                b = math.inf
            dens = np.exp(_DIFF2 * (-0.5 / (sd * sd))) @ mass / (sd * math.sqrt(2.0 * math.pi))
        dens = np.where(W_GRID - _H / 2 < b, dens, 0.0)
        decided = "reject" if w >= b else ("accept" if t >= 1.0 else "")
        return GroupSequentialState(s.seen, s.events, s.expected, s.variance, t, target, dens.tobytes(), b, decided)


@dataclass(frozen=True)
class LlrState:
    """Wald's SPRT: slots folded in, the log-likelihood ratio, the decision so far."""

    seen: int = 0
    llr: float = 0.0
    decided: str = ""


_DECISIONS = ("", "reject", "accept")


@dataclass(eq=False)
class LlrBatch:
    """``LlrState`` of n runs: ``seen``, ``llr`` and ``decided`` (index into ("", "reject",
    "accept")), (n,) each."""

    seen: np.ndarray
    llr: np.ndarray
    decided: np.ndarray


class SprtJudge(_ErrorsOnly):
    """``kind: sprt``: Wald's SPRT on the failure labels (the scalar ``judge`` is the batch
    pass on a batch of one)."""

    kind = "sprt"

    def __init__(self, spec: SprtSpec, signals: frozenset[str] = frozenset({ERRORS})) -> None:
        super().__init__(spec, signals)

    def initial_state(self) -> LlrState:
        return LlrState()

    def batch_state(self, n: int) -> LlrBatch:
        """n runs not judged yet."""
        return LlrBatch(np.zeros(n, dtype=np.int64), np.zeros(n), np.zeros(n, dtype=np.int8))

    def state_row(self, state: LlrBatch, i: int) -> LlrState:
        """Run i's ``LlrState``."""
        return LlrState(int(state.seen[i]), float(state.llr[i]), _DECISIONS[int(state.decided[i])])

    def judge(self, state: LlrState, data: JudgeData) -> tuple[LlrState, Judgement]:
        one = self.batch_state(1)
        one.seen[0], one.llr[0], one.decided[0] = state.seen, state.llr, _DECISIONS.index(state.decided)
        out = self.judge_batch(one, np.zeros(1, dtype=np.int64), JudgeBatch.of(data))
        return self.state_row(one, 0), out.at(0)

    def judge_batch(self, state: LlrBatch, rows: np.ndarray, data: JudgeBatch) -> Judgements:
        """Every run of ``rows`` judged in one pass: the new slots' log LRs of the undecided."""
        spec = self.spec
        rows = np.asarray(rows, dtype=np.int64)
        n_slots = data.canary_requests.shape[1]
        upper = math.log((1.0 - spec.beta) / spec.alpha)
        lower = math.log(spec.beta / (1.0 - spec.alpha))
        step = np.flatnonzero((state.decided[rows] == 0) & (state.seen[rows] < n_slots))
        if len(step):
            runs = rows[step]
            new = np.arange(n_slots)[None, :] >= state.seen[runs][:, None]  # slots not folded in yet
            slots = Slots(
                data.canary_requests[step],
                data.primary_requests[step],
                np.where(new, data.canary_errors[step], 0.0),
                np.where(new, data.primary_errors[step], 0.0),
            )
            log_rr = np.full((len(step), 1), math.log(spec.relative_risk))
            llr = state.llr[runs] + log_likelihood_ratios(slots.e_canary, slots.e_primary, slots.share(), log_rr)[:, 0]
            state.llr[runs] = llr
            state.seen[runs] = n_slots
            state.decided[runs] = np.where(llr >= upper, 1, np.where(llr <= lower, 2, 0))
        decided, llr = state.decided[rows], state.llr[rows]
        no_data = data.canary_requests.sum(axis=1) <= 0
        verdict = np.select(
            [decided == 1, decided == 2, no_data], [FAIL_CODE, PASS_CODE, NO_DATA_CODE], INCONCLUSIVE_CODE
        ).astype(np.int8)

        def detail(i: int) -> Detail:
            out: Detail = {"llr": round(float(llr[i]), 4), "upper": round(upper, 4), "lower": round(lower, 4)}
            if decided[i] == 1:
                out["statistic"] = f"log-likelihood ratio {float(llr[i]):.3f} >= {upper:.3f}"
            return out

        return Judgements(verdict, decided == 1, decided == 2, detail)


def two_proportion_z(nc: float, ec: float, np_: float, ep: float) -> float | None:
    """Pooled two-proportion z statistic of canary minus primary (None: undefined)."""
    z = float(two_proportion_zs(np.array([nc]), np.array([ec]), np.array([np_]), np.array([ep]))[0])
    return None if math.isnan(z) else z


def two_proportion_zs(nc: np.ndarray, ec: np.ndarray, np_: np.ndarray, ep: np.ndarray) -> np.ndarray:
    """``two_proportion_z`` of many runs; NaN where it is undefined (a version without
    requests, or no failure or only failures)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (ec + ep) / (nc + np_)
        ok = (nc > 0) & (np_ > 0) & (p > 0) & (p < 1)
        z = (ec / nc - ep / np_) / np.sqrt(p * (1 - p) * (1 / nc + 1 / np_))
    return np.where(ok, z, np.nan)


class NaiveJudge(_ErrorsOnly):
    """``kind: naive``: the fixed-horizon z test repeated at every tick (peeking)."""

    kind = "naive"

    def __init__(self, spec: NaiveSpec, signals: frozenset[str] = frozenset({ERRORS})) -> None:
        super().__init__(spec, signals)

    def initial_state(self) -> bool:
        return False  # rejected at a past tick

    def batch_state(self, n: int) -> np.ndarray:
        """Whether each run was rejected at a past tick."""
        return np.zeros(n, dtype=bool)

    def state_row(self, state: np.ndarray, i: int) -> bool:
        return bool(state[i])

    def judge(self, state: bool, data: JudgeData) -> tuple[bool, Judgement]:
        one = np.array([state])
        out = self.judge_batch(one, np.zeros(1, dtype=np.int64), JudgeBatch.of(data))
        return bool(one[0]), out.at(0)

    def judge_batch(self, state: np.ndarray, rows: np.ndarray, data: JudgeBatch) -> Judgements:
        """Every run of ``rows`` judged in one pass."""
        from scipy.stats import norm

        nc, ec = data.canary_requests.sum(axis=1), data.canary_errors.sum(axis=1)
        np_, ep = data.primary_requests.sum(axis=1), data.primary_errors.sum(axis=1)
        z = two_proportion_zs(nc, ec, np_, ep)
        crit = float(norm.ppf(1.0 - self.spec.alpha))
        rejected = state[rows] | (z >= crit)  # NaN compares False
        state[rows] = rejected
        verdict = np.where(rejected, FAIL_CODE, np.where(nc <= 0, NO_DATA_CODE, PASS_CODE)).astype(np.int8)

        def detail(i: int) -> Detail:
            zi = None if math.isnan(z[i]) else float(z[i])
            out: Detail = {"z": None if zi is None else round(zi, 4), "critical": round(crit, 4)}
            if rejected[i]:
                out["statistic"] = f"z {zi if zi is None else round(zi, 3)} >= {crit:.3f} (fixed-horizon test, peeked)"
            return out

        return Judgements(verdict, rejected, np.zeros(len(rows), dtype=bool), detail)
