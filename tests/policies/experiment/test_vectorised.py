"""Each rule's batch pass equals the same rule run run by run; decisions are sticky (issue 19)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.policies.experiment import (
    BayesTestSpec,
    Decision,
    FixedTestSpec,
    GroupSequentialTestSpec,
    Looks,
    SequentialTestSpec,
    make_test,
)

SPECS = [
    SequentialTestSpec(kind="sequential", min_units=10),
    GroupSequentialTestSpec(kind="group-sequential", looks=6),
    GroupSequentialTestSpec(kind="group-sequential", looks=6, spending="pocock"),
    FixedTestSpec(kind="fixed", sample_size=2_000),
    FixedTestSpec(kind="fixed", sample_size=2_000, peek=True),
    BayesTestSpec(kind="bayes", min_units=10),
]


def _random_looks(binary: bool, runs: int = 40, looks: int = 6, seed: int = 11) -> list[Looks]:
    """Runs with unequal arms, different rates and lifts, some empty at first."""
    rng = np.random.default_rng(seed)
    n = np.zeros((2, runs))
    s = np.zeros((2, runs))
    q = np.zeros((2, runs))
    p = rng.uniform(0.02, 0.3, runs)
    lift = rng.choice([-0.3, 0.0, 0.0, 0.2], runs)
    out = []
    for k in range(looks):
        for arm in (0, 1):
            m = rng.integers(0, 800, runs) * (k > 0 or rng.random(runs) > 0.3)
            rate = p * (1 + lift * arm)
            if binary:
                x = rng.binomial(m, rate).astype(float)
                s[arm] += x
                q[arm] += x
            else:
                for i in range(runs):
                    y = rng.lognormal(np.log(40 * (1 + lift[i] * arm)), 1.1, m[i])
                    s[arm, i] += y.sum()
                    q[arm, i] += (y * y).sum()
            n[arm] += m
        if binary:
            out.append(Looks.proportions(n[0].copy(), s[0].copy(), n[1].copy(), s[1].copy()))
        else:
            out.append(Looks.means(n[0].copy(), s[0].copy(), q[0].copy(), n[1].copy(), s[1].copy(), q[1].copy()))
    return out


@pytest.mark.parametrize("binary", [True, False], ids=["proportion", "mean"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.kind}{'-peek' if getattr(s, 'peek', False) else ''}")
def test_batch_equals_run_by_run(spec, binary: bool) -> None:
    looks = _random_looks(binary)
    runs = len(looks[0])
    test = make_test(spec)
    batch = test.state(runs)
    singles = [test.state(1) for _ in range(runs)]
    decided_at: dict[int, tuple] = {}
    for k, data in enumerate(looks):
        final = k == len(looks) - 1
        batch, out = test.look(batch, data, final)
        for i in range(runs):
            singles[i], one = test.look(singles[i], data.row(i), final)
            assert one.at(0)[0] == out.at(i)[0]
            np.testing.assert_allclose(
                [one.lift, one.lift_low, one.lift_high],
                [out.lift[i : i + 1], out.lift_low[i : i + 1], out.lift_high[i : i + 1]],
                rtol=1e-12,
            )
            # sticky: a decision and its lift never change after it is taken
            if i in decided_at:
                assert out.at(i) == decided_at[i] or np.isnan(decided_at[i][1])
            elif out.decision[i] != Decision.CONTINUE:
                decided_at[i] = out.at(i)
    assert (out.decision != Decision.CONTINUE).all()  # the final look decides every run


def test_final_look_makes_open_runs_none() -> None:
    test = make_test(SequentialTestSpec(kind="sequential"))
    state = test.state(2)
    data = Looks.proportions([1000, 1000], [100, 100], [1000, 1000], [100, 101])
    state, out = test.look(state, data)
    assert out.decision.tolist() == [Decision.CONTINUE, Decision.CONTINUE]
    state, out = test.look(state, data, final=True)
    assert out.decision.tolist() == [Decision.NONE, Decision.NONE]
    assert out.lift[0] == 0.0 and out.lift_low[0] < 0 < out.lift_high[0]


def test_planned_fixed_test_waits_for_its_sample() -> None:
    test = make_test(FixedTestSpec(kind="fixed", sample_size=10_000))
    state = test.state(1)
    big_early = Looks.proportions([5000], [500], [5000], [650])  # |z| huge, plan not reached
    state, out = test.look(state, big_early)
    assert out.decision[0] == Decision.CONTINUE
    state, out = test.look(state, Looks.proportions([10_000], [1000], [10_000], [1300]))
    assert out.decision[0] == Decision.CANDIDATE
    peek = make_test(FixedTestSpec(kind="fixed", sample_size=10_000, peek=True))
    assert peek.look(peek.state(1), big_early)[1].decision[0] == Decision.CANDIDATE


def test_planned_fixed_test_reached_without_effect_is_none() -> None:
    test = make_test(FixedTestSpec(kind="fixed", sample_size=1000))
    _, out = test.look(test.state(1), Looks.proportions([1000], [100], [1000], [101]))
    assert out.decision[0] == Decision.NONE


def test_worse_candidate_keeps_primary() -> None:
    for spec in SPECS:
        test = make_test(spec)
        _, out = test.look(test.state(1), Looks.proportions([20_000], [2000], [20_000], [1500]), final=True)
        assert out.decision[0] == Decision.PRIMARY, spec.kind
        assert out.lift[0] == pytest.approx(-0.25)
        assert out.lift_high[0] < 0


def test_empty_arms_decide_nothing() -> None:
    for spec in SPECS:
        test = make_test(spec)
        _, out = test.look(test.state(1), Looks.proportions([0], [0], [0], [0]))
        assert out.decision[0] == Decision.CONTINUE and np.isnan(out.lift[0])
