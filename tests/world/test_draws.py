"""Compiled per-run draws (``sim.world.draws``): the generator is numpy's PCG64 bit for
bit, the streams are independent of each other, and every sampler follows its exact
distribution.

Each sampler is checked at a grid of parameters that crosses every algorithm switch
(Poisson inversion below λ = 10, PTRS above; binomial inversion below n·min(p, 1−p) = 10,
BTRS above, and the p > 1/2 reflection) with ``SAMPLES`` fixed-seed draws: a chi-square
goodness-of-fit test against scipy's pmf (cells pooled to expected counts >= 5) and a
z test of the mean, each at ``ALPHA``. ``test_the_checks_have_power`` shows the same
checks reject a sampler whose mean is off by 1%, so they are not vacuous.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.world import draws

SAMPLES = 40_000
ALPHA = 1e-4  # ~40 checks: family-wise error under 0.5%

POISSON_GRID = [0.001, 0.3, 1.0, 4.0, 9.99, 10.0, 10.5, 25.0, 180.0, 5_000.0, 1e6]
BINOMIAL_GRID = [
    (1, 0.5),
    (5, 0.3),
    (40, 0.2),
    (99, 0.1),
    (100, 0.1),
    (300, 0.04),
    (60, 0.5),
    (1_000, 0.3),
    (1_000, 0.97),
    (200, 0.999),
    (2_000_000, 0.45),
    (10**9, 1e-7),
]


def _draw_poisson(lam: float, seed: int, size: int = SAMPLES) -> np.ndarray:
    states = draws.stream_states([seed], 0)
    mean = np.full((1, size), lam)
    return draws.poisson_rows(states, np.array([0]), mean, np.empty_like(mean))[0]


def _draw_binomial(n: float, p: float, seed: int, size: int = SAMPLES) -> np.ndarray:
    """Binomials through the multinomial kernel: two categories, (p, 1 − p)."""
    states = draws.stream_states([seed], 1)
    nn = np.full((1, size), float(n))
    probs = np.tile([p, 1.0 - p], (size, 1))
    order = np.tile([0, 1], (size, 1))  # p first, whether or not it is the likelier
    return draws.multinomial_rows(states, np.array([0]), nn, probs, order, np.empty((1, size, 2)))[0, :, 0]


def _gof_pvalue(x: np.ndarray, dist: stats.rv_discrete) -> float:
    """Chi-square goodness of fit of integer samples ``x`` to ``dist``, cells pooled from
    the tails inwards until each expects at least 5."""
    lo, hi = int(dist.ppf(1e-9)), int(dist.isf(1e-9)) + 1
    ks = np.arange(lo, hi + 1)
    expected = dist.pmf(ks) * len(x)
    expected[0] += dist.cdf(lo - 1) * len(x)
    expected[-1] += dist.sf(hi) * len(x)
    observed = np.bincount(np.clip(x.astype(np.int64), lo, hi) - lo, minlength=len(ks)).astype(float)
    cells_o, cells_e, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(observed, expected):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 5:
            cells_o.append(acc_o)
            cells_e.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0 and cells_e:
        cells_o[-1] += acc_o
        cells_e[-1] += acc_e
    if len(cells_e) < 2:  # all mass in one cell: only the mean test applies
        return 1.0
    cells_e = np.array(cells_e) * (sum(cells_o) / sum(cells_e))
    return float(stats.chisquare(cells_o, cells_e).pvalue)


def _mean_pvalue(x: np.ndarray, mean: float, var: float) -> float:
    if var == 0:
        return 1.0 if np.all(x == mean) else 0.0
    z = (x.mean() - mean) / np.sqrt(var / len(x))
    return float(2 * stats.norm.sf(abs(z)))


def test_the_generator_is_numpys_pcg64_bit_for_bit():
    row = draws.stream_states([20261130], 0)[0].copy()
    bg = np.random.PCG64()
    state = bg.state
    state["state"] = {"state": (int(row[0]) << 64) | int(row[1]), "inc": (int(row[2]) << 64) | int(row[3])}
    state["has_uint32"], state["uinteger"] = 0, 0
    bg.state = state
    ours = [int(draws.next_uint64(row)) for _ in range(1000)]
    assert ours == [int(v) for v in bg.random_raw(1000)]
    assert draws.uniform(row) == np.random.Generator(bg).random()


def test_streams_are_deterministic_distinct_and_odd_incremented():
    a = draws.stream_states([1, 2, 3], 0)
    assert np.array_equal(a, draws.stream_states([1, 2, 3], 0))
    assert np.array_equal(a[1], draws.stream_states([2], 0)[0])  # a row depends on its seed only
    b = draws.stream_states([1, 2, 3], 3)
    rows = np.concatenate([a, b])
    assert len({tuple(r) for r in rows[:, 2:]}) == 6  # distinct increments
    assert np.all(rows[:, 3] & np.uint64(1) == 1)  # PCG needs an odd increment
    # Neighbouring seeds' uniforms are uncorrelated.
    mean = np.full((2, 20_000), 0.5)
    u = draws.poisson_rows(draws.stream_states([10, 11], 0), np.array([0, 1]), mean * 200, np.empty_like(mean))
    assert abs(np.corrcoef(u)[0, 1]) < 0.03


def test_a_row_draws_from_its_own_stream_only():
    states = draws.stream_states([5, 6, 7], 2)
    mean = np.array([[3.0, 40.0], [0.0, 0.0], [12.0, 0.5]])
    together = draws.poisson_rows(states.copy(), np.array([0, 1, 2]), mean, np.empty_like(mean))
    alone = draws.poisson_rows(draws.stream_states([7], 2), np.array([0]), mean[2:], np.empty((1, 2)))
    assert np.array_equal(together[2], alone[0])
    assert np.array_equal(together[1], [0.0, 0.0])
    # A zero mean draws nothing: the stream is left where it was.
    st = draws.stream_states([9], 0)
    before = st.copy()
    draws.poisson_rows(st, np.array([0]), np.zeros((1, 4)), np.empty((1, 4)))
    assert np.array_equal(st, before)


@pytest.mark.parametrize("lam", POISSON_GRID)
def test_poisson_follows_its_distribution(lam):
    x = _draw_poisson(lam, seed=int(lam * 1000) + 1)
    assert np.all(x == np.round(x)) and x.min() >= 0
    assert _mean_pvalue(x, lam, lam) > ALPHA
    assert _gof_pvalue(x, stats.poisson(lam)) > ALPHA


@pytest.mark.parametrize(("n", "p"), BINOMIAL_GRID)
def test_binomial_follows_its_distribution(n, p):
    x = _draw_binomial(n, p, seed=n + int(p * 1e6))
    assert x.min() >= 0 and x.max() <= n and np.all(x == np.round(x))
    assert _mean_pvalue(x, n * p, n * p * (1 - p)) > ALPHA
    assert _gof_pvalue(x, stats.binom(n, p)) > ALPHA


def test_binomial_edges_draw_nothing():
    st = draws.stream_states([4], 0)[0]
    before = st.copy()
    assert (draws.binomial(st, 0.0, 0.3), draws.binomial(st, 10.0, 0.0), draws.binomial(st, 10.0, 1.0)) == (
        0.0,
        0.0,
        10.0,
    )
    assert np.array_equal(st, before)


def test_multinomial_rows_follow_the_multinomial():
    p = np.array([0.6, 0.25, 0.1, 0.05, 0.0])
    size = 20_000
    n = np.full((1, size), 37.0)
    out = draws.multinomial(draws.stream_states([77], 0), np.array([0]), n, np.tile(p[::-1], (size, 1)))[0]
    out = out[:, ::-1]  # given least likely first: the wrapper reorders the draws
    assert np.all(out.sum(axis=1) == 37) and np.all(out[:, 4] == 0)
    for j in range(4):  # each category's marginal is Binomial(n, p_j)
        assert _gof_pvalue(out[:, j], stats.binom(37, p[j])) > ALPHA
    # Negative dependence between categories, as the multinomial's -n p_i p_j.
    cov = np.cov(out[:, 0], out[:, 1])[0, 1]
    assert abs(cov - (-37 * 0.6 * 0.25)) < 5 * np.sqrt(37 * 0.6 * 0.25 * 2 / size) * 4


def test_the_checks_have_power():
    """A sampler 1% off in its mean fails the same checks (they are not vacuous)."""
    for lam in (25.0, 180.0):
        x = _draw_poisson(lam * 1.01, seed=11)
        assert min(_mean_pvalue(x, lam, lam), _gof_pvalue(x, stats.poisson(lam))) < ALPHA
    x = _draw_binomial(1_000, 0.3 * 1.01, seed=12)
    assert _mean_pvalue(x, 300, 210) < ALPHA


def test_uniform_rows_are_uniform_and_per_row():
    states = draws.stream_states([21, 22], 0)
    u = draws.uniform_rows(states.copy(), np.array([0, 1]), np.empty((2, SAMPLES)))
    assert stats.kstest(u[0], "uniform").pvalue > ALPHA
    assert stats.kstest(u[1], "uniform").pvalue > ALPHA
    alone = draws.uniform_rows(draws.stream_states([22], 0), np.array([0]), np.empty((1, 10)))
    assert np.array_equal(alone[0], u[1, :10])


def test_multinomial_each_follows_each_rows_probabilities():
    size = 20_000
    p = np.array([[0.05, 0.7, 0.25], [0.5, 0.0, 0.5]])
    rows = np.repeat([0, 1], size)
    probs = p[rows]
    n = np.where(rows == 0, 40.0, 9.0)
    # One stream per draw here, so the draws are independent replicates.
    out = draws.multinomial_each(draws.stream_states(np.arange(2 * size) + 1000, 5), np.arange(2 * size), n, probs)
    assert np.all(out.sum(axis=1) == n) and np.all(out[rows == 1, 1] == 0)
    for r, total in ((0, 40), (1, 9)):
        for j in range(3):
            if p[r, j] > 0:
                assert _gof_pvalue(out[rows == r, j], stats.binom(total, p[r, j])) > ALPHA
    zero = draws.stream_states([3], 0)
    before = zero.copy()
    draws.multinomial_each(zero, np.array([0]), np.array([0.0]), p[:1])
    assert np.array_equal(zero, before)  # n = 0 draws nothing


def test_an_order_sorted_once_per_distinct_row_draws_the_same_bits() -> None:
    """Issue 17: the fast path hands ``multinomial`` its categories' order sorted once per
    distinct row of probabilities (rows repeat over pods and segments) or in order for an
    even split; the draws are bit for bit those of the order it sorts itself, ties included."""
    rng = np.random.default_rng(3)
    distinct = rng.dirichlet(np.ones(6), 2)
    distinct[1, 2] = distinct[1, 4]  # a tie: the stable sort keeps their order
    probs = np.repeat(distinct, 3, axis=0)  # (6, 6): each row three times
    order = np.repeat(draws.category_order(distinct), 3, axis=0)
    n = rng.poisson(40.0, (5, 6)).astype(float)
    rows = np.array([4, 0, 2, 1, 3])
    a = draws.multinomial(draws.stream_states(list(range(5)), 1), rows, n, probs)
    b = draws.multinomial(draws.stream_states(list(range(5)), 1), rows, n, probs, order)
    assert np.array_equal(a, b)
    even = np.full((6, 4), 0.25)
    in_order = np.broadcast_to(np.arange(4), (6, 4))
    a = draws.multinomial(draws.stream_states(list(range(5)), 2), rows, n, even)
    b = draws.multinomial(draws.stream_states(list(range(5)), 2), rows, n, even, in_order)
    assert np.array_equal(a, b)
