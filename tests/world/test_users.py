"""Distinct users behind request counts (``sim.world.users``) against exact sampling.

``occupancy(states, k, n)`` stands in for "throw k balls uniformly into n boxes, count
the boxes hit". Here that experiment is simulated literally (numpy: k uniform integers
per replicate, distinct values counted) and compared with the approximation over a grid
of (k, n) covering its three regimes (k << n, k ~ n, k >> n) and the small numbers that
the top activity tiers of a Zipf population produce all the time (k = 1..5, n = 1..10):

* the approximation's sample mean must be within 4 standard errors of the exact
  expectation n(1 - (1 - 1/n)^k);
* two two-sample tests (chi-square on the values, with rare values pooled, and
  Cramér-von Mises) must not reject at ``ALPHA`` (Bonferroni over the grid).

With 4000 samples per side these tests reject the earlier approximation (Poisson
collisions or empties whenever fewer than 30 were expected) at 35 grid points, e.g.
k = n = 30: sd 3.3 against the exact 1.7 (p < 1e-8); and k = 2, n = 2: mean 1.61
against 1.5.

The pieces its draws are made of are checked exactly: the small-count law it inverts
against the Markov chain of the count, and its binomial draws against scipy's quantiles.

``count_users`` is checked for its invariants (affected <= exposed <= users, no
requests -> no users, determinism, independence from batch-mates) and, in distribution,
against the per-request mode's way of knowing users: every request drawn from a user
by activity, excess failures a uniform subset of the requests.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.inputs.scenario import Traffic
from sim.world.draws import stream_states
from sim.world.traffic import build_population
from sim.world.users import _EXACT, _binomial_inverse, _occupancy_cdf, _occupancy_given, count_users, occupancy

SAMPLES = 4000
#: Per-test level. 86 grid points and 6 user cases, 2 tests each: family-wise under 2%.
ALPHA = 1e-4

SMALL = [(k, n) for k in range(1, 6) for n in range(1, 11)]
SPARSE = [(10, 1000), (30, 1000), (100, 1000), (300, 1000), (50, 10000)]  # k << n
BALANCED = [
    (10, 10),
    (20, 20),
    (30, 30),
    (50, 50),
    (100, 100),
    (100, 200),
    (200, 100),
    (1000, 1000),
    (3000, 3000),
]  # k ~ n
SATURATED = [(10, 3), (60, 30), (100, 30), (500, 100), (1000, 100), (3000, 1000), (5000, 1000)]  # k >> n
# Just past exact sampling of small counts (64), where few misses (collisions or empty
# boxes) are expected and where they become many (about 30).
EDGES = [
    (65, 65),
    (65, 66),
    (65, 2000),
    (65, 100000),
    (80, 100),
    (120, 90),
    (150, 100),
    (200, 65),
    (300, 80),
    (2000, 400),
    (400, 2000),
    # deep in the exact tables of small n (a few empty boxes left), and few draws into
    # few boxes past saturation (k <= 64 is drawn exactly all the same)
    (300, 64),
    (200, 40),
    (64, 2),
    (64, 64),
]
GRID = SMALL + SPARSE + BALANCED + SATURATED + EDGES


def exact_distinct(rng: np.random.Generator, k: int, n: int, size: int) -> np.ndarray:
    """Distinct boxes hit by k uniform draws into n boxes, ``size`` replicates."""
    if k == 0:
        return np.zeros(size)
    out = np.empty(size)
    chunk = max(1, 2_000_000 // k)
    for a in range(0, size, chunk):
        x = np.sort(rng.integers(0, n, size=(min(chunk, size - a), k)), axis=1)
        out[a : a + len(x)] = 1 + (np.diff(x, axis=1) != 0).sum(axis=1)
    return out


def approx_distinct(seed: int, k: int, n: int, size: int) -> np.ndarray:
    states = stream_states(np.arange(size) + seed * size, 3)
    return occupancy(states, np.full((size, 1), float(k)), np.full((size, 1), float(n)))[:, 0]


def expected_distinct(k: float, n: float) -> float:
    return n * (1.0 - (1.0 - 1.0 / n) ** k)


def chi2_two_sample(a: np.ndarray, b: np.ndarray, min_expected: float = 5.0) -> float:
    """Chi-square test of homogeneity on the values of two discrete samples; values with
    an expected count under ``min_expected`` are pooled with their neighbour."""
    values = np.union1d(a, b)
    table = np.array([[np.sum(s == v) for v in values] for s in (a, b)], dtype=float)
    while table.shape[1] > 1:
        expected = table.sum(1, keepdims=True) * table.sum(0) / table.sum()
        j = int(np.argmin(expected.min(axis=0)))
        if expected[:, j].min() >= min_expected:
            break
        into = j - 1 if j > 0 else j + 1
        table[:, into] += table[:, j]
        table = np.delete(table, j, axis=1)
    if table.shape[1] < 2:
        return 1.0  # a single value in both samples: nothing to tell apart
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def two_sample_pvalues(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    if np.ptp(a) == 0 and np.ptp(b) == 0 and a[0] == b[0]:
        return {"chi2": 1.0, "cvm": 1.0}
    return {"chi2": chi2_two_sample(a, b), "cvm": float(stats.cramervonmises_2samp(a, b).pvalue)}


def occupancy_law(k: int, n: int) -> np.ndarray:
    """P(D = j), j = 0 .. n, after k draws into n boxes, by the count's Markov chain."""
    law = np.zeros(n + 1)
    law[0] = 1.0
    j = np.arange(n + 1)
    for _ in range(k):
        nxt = law * j / n
        nxt[1:] += law[:-1] * (n - j[:-1]) / n
        law = nxt
    return law


def chi2_against_law(x: np.ndarray, law: np.ndarray, min_expected: float = 5.0) -> float:
    """Chi-square goodness of fit of integer samples to a pmf over 0 .. len(law) - 1,
    neighbouring values pooled until each cell expects ``min_expected``."""
    observed = np.bincount(x.astype(np.int64), minlength=len(law)).astype(float)
    expected = law * len(x)
    cells_o, cells_e, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(observed, expected):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= min_expected:
            cells_o.append(acc_o)
            cells_e.append(acc_e)
            acc_o = acc_e = 0.0
    if cells_e:
        cells_o[-1] += acc_o
        cells_e[-1] += acc_e
    if len(cells_e) < 2:
        return 1.0 if acc_o == 0 or not cells_e else 0.0
    cells_e = np.array(cells_e) * (sum(cells_o) / sum(cells_e))
    return float(stats.chisquare(cells_o, cells_e).pvalue)


# --- occupancy -------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), GRID, ids=[f"k{k}-n{n}" for k, n in GRID])
def test_occupancy_matches_exact_sampling(k, n):
    approx = approx_distinct(1000 * k + n, k, n, SAMPLES)
    exact = exact_distinct(np.random.default_rng([k, n]), k, n, SAMPLES)
    mean = expected_distinct(k, n)
    se = max(exact.std(), 1e-12) / np.sqrt(SAMPLES)
    # Against the exact sampler (Cramér-von Mises, two samples) and, where the draw is
    # exact, against the exact law itself (chi-square, no reference noise); the
    # approximated regime's distance from the exact law is bounded in the test below.
    p = {"cvm": two_sample_pvalues(approx, exact)["cvm"]}
    if drawn_exactly(k, n):
        p["chi2_exact_law"] = chi2_against_law(approx, occupancy_law(k, n))
    summary = (
        f"k={k} n={n}: exact mean {mean:.4f}, approx mean {approx.mean():.4f} (se {se:.4f}); "
        f"sd approx {approx.std():.3f} vs exact {exact.std():.3f}; p {p}"
    )
    assert abs(exact.mean() - mean) <= 4 * se + 1e-9, "the exact sampler itself is off: " + summary
    assert abs(approx.mean() - mean) <= 4 * se + 1e-9, summary
    assert min(p.values()) > ALPHA, summary


def drawn_exactly(k: int, n: int) -> bool:
    """Whether ``occupancy`` draws (k, n) from the exact law (small counts, or past the
    coupon-collector point), not from the moment-matched approximation."""
    return k <= _EXACT or n <= _EXACT or k > n * (np.log(n) + 12.0)


#: Largest total variation distance between the approximation (k and n both over 64,
#: before saturation) and the exact law, over GRID: 0.027 at k = n = 65, just past the
#: exact draws, and about 0.01 elsewhere. What the approximation costs, stated.
APPROX_TV = 0.03


@pytest.mark.parametrize(("k", "n"), GRID, ids=[f"k{k}-n{n}" for k, n in GRID])
def test_occupancy_law_is_exact_or_within_the_stated_distance(k, n):
    """The law ``occupancy`` draws from, by quadrature of its inverse CDF (one uniform
    per draw, so the law is the image of a fine uniform grid), against the exact law
    from the count's Markov chain: equal to the grid's resolution where the draw is
    exact, within ``APPROX_TV`` in total variation where it is approximated."""
    m = 200_000
    u = (np.arange(m) + 0.5) / m
    d = _occupancy_given(u, np.full(m, float(k)), np.full(m, float(n)))
    law = np.bincount(d.astype(np.int64), minlength=n + 1)[: n + 1] / m
    tv = 0.5 * np.abs(law - occupancy_law(k, n)).sum()
    assert tv <= (1e-4 if drawn_exactly(k, n) else APPROX_TV), (k, n, tv)  # grid resolution: ~2e-5


def test_occupancy_bounds_and_integer_values():
    rng = np.random.default_rng(7)
    k = np.concatenate([np.arange(0, 12), rng.integers(0, 50, 200), rng.integers(0, 100000, 200)]).astype(float)
    n = np.concatenate([np.arange(1, 13), rng.integers(1, 50, 200), rng.integers(1, 100000, 200)]).astype(float)
    K, N = np.tile(k, (50, 1)), np.tile(n, (50, 1))
    d = occupancy(stream_states(range(50), 3), K, N)
    assert d.shape == K.shape
    assert np.all(d >= np.minimum(K, 1.0))
    assert np.all(d <= np.minimum(K, N))
    assert np.all(d == np.round(d))
    assert np.all(d[K == 0] == 0)
    assert np.all(d[N == 1] == np.minimum(K[N == 1], 1.0))
    assert np.all(d[K == 1] == 1)


def test_occupancy_without_generators_is_the_exact_expectation():
    k = np.array([[0.0, 1.0, 2.0, 5.0, 30.0, 1000.0, 3.5, 1e6]])
    n = np.array([[7.0, 1.0, 2.0, 10.0, 30.0, 100.0, 4.0, 1e5]])
    got = occupancy(None, k, n)
    want = np.where(k > 0, n * (1.0 - (1.0 - 1.0 / n) ** k), 0.0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert got[0, 1] == 1.0  # one user: exposed once any request comes


def test_occupancy_is_deterministic_per_generator():
    k = np.array([[3.0, 40.0, 900.0], [0.0, 12.0, 5000.0]])
    n = np.array([[10.0, 30.0, 1000.0], [5.0, 12.0, 100.0]])
    a = occupancy(stream_states([1, 2], 3), k, n)
    b = occupancy(stream_states([1, 2], 3), k, n)
    np.testing.assert_array_equal(a, b)
    # Row i uses only stream i: row 1 alone gives the same numbers.
    c = occupancy(stream_states([2], 3), k[1:], n[1:])
    np.testing.assert_array_equal(a[1], c[0])


def markov_occupancy_law(n: int, rows: int) -> np.ndarray:
    """P(D = j) after k = 0 .. rows - 1 draws into n boxes, by the Markov chain of the
    count itself (each draw hits a new box with probability (n - D)/n): shape (rows, n + 1)."""
    law = np.zeros((rows, n + 1))
    law[0, 0] = 1.0
    j = np.arange(n + 1)
    for k in range(1, rows):
        law[k] = law[k - 1] * j / n
        law[k, 1:] += law[k - 1, :-1] * (n - j[:-1]) / n
    return law


@pytest.mark.parametrize("n", [2, 3, 17, 64, 65, 1000, 10**6])
def test_exact_occupancy_law_matches_the_markov_chain(n):
    # The inverse-CDF draws of small counts use P(D = j) = C(n, j) (j/n)^k T(k, j); the
    # chain computes the same law another way. Up to saturation for small n, up to
    # _EXACT draws for large n (where the tables stop).
    rows = int(n * (np.log(n) + 12.0)) + 2 if n <= _EXACT else _EXACT + 1
    cdf = _occupancy_cdf(np.arange(rows), np.full(rows, n), min(n, _EXACT) + 1)
    law = markov_occupancy_law(n, rows)[:, : cdf.shape[1]]
    np.testing.assert_allclose(np.diff(cdf, axis=1, prepend=0.0), law, rtol=0, atol=1e-12)
    assert np.all(cdf[:, -1] == 1.0)


@pytest.mark.parametrize(
    ("trials", "p"),
    [(3, 0.5), (50, 0.3), (40, 0.9), (60, 0.49), (2, 1.0), (1e6, 1e-5), (1e5, 2.9e-4), (100, 0.25), (7, 1e-9)],
)
def test_binomial_draws_are_the_binomial_quantiles(trials, p):
    # The misses of large counts are drawn as binomial quantiles of uniforms: the same
    # values as scipy's quantile function, so the same law as a binomial sampler. (For
    # p > 1/2 the failures are counted: trials minus the quantile of Binomial(trials, 1 - p).)
    u = np.random.default_rng(int(trials) + 7).random(20000)
    got = _binomial_inverse(u, np.full(u.shape, float(trials)), np.full(u.shape, p))
    want = stats.binom.ppf(u, trials, p) if p <= 0.5 else trials - stats.binom.ppf(u, trials, 1.0 - p)
    assert np.count_nonzero(got != want) <= 2  # a u within rounding of a CDF step may differ


# --- count_users -------------------------------------------------------------------------


def population(users: int = 3000, skew: float = 1.0, cohorts: tuple[float, ...] = (0.3,)):
    traffic = Traffic.model_validate(
        {
            "rate": 10,
            "users": users,
            "skew": skew,
            "cohorts": [{"name": f"c{i}", "share": s} for i, s in enumerate(cohorts)],
        }
    )
    return build_population(traffic)


POPULATIONS = {
    "zipf1-cohort30": dict(users=3000, skew=1.0, cohorts=(0.3,)),
    "uniform": dict(users=500, skew=0.0, cohorts=()),
    "zipf2-two-cohorts": dict(users=20000, skew=2.0, cohorts=(0.1, 0.25)),
    "tiny": dict(users=3, skew=1.0, cohorts=(0.5,)),
    "error-spike": dict(users=20000, skew=1.0, cohorts=()),
}


def random_counts(rng: np.random.Generator, runs: int, pop) -> tuple[np.ndarray, np.ndarray]:
    """Random request and excess counts; only cohorts that have users get requests (the
    world routes a cohort's share of traffic, zero for a cohort without users)."""
    cohorts = pop.n_cohorts
    scale = 10.0 ** rng.uniform(0, 5, size=(runs, 1))
    requests = np.floor(scale * rng.random((runs, cohorts)))
    requests[rng.random((runs, cohorts)) < 0.2] = 0
    requests[:, pop.cohort_share == 0] = 0
    excess = rng.binomial(requests.astype(np.int64), rng.uniform(0, 0.3, size=(runs, 1))).astype(float)
    return requests, excess


@pytest.mark.parametrize("name", POPULATIONS)
def test_count_users_bounds(name):
    pop = population(**POPULATIONS[name])
    rng = np.random.default_rng(3)
    requests, excess = random_counts(rng, 300, pop)
    for rngs in (stream_states(np.arange(300) + 5000, 3), None):
        exposed, affected = count_users(pop, requests, excess, rngs)
        assert exposed.shape == affected.shape == (300,)
        assert np.all(affected >= 0)
        assert np.all(affected <= exposed + 1e-9)
        assert np.all(exposed <= pop.total_users + 1e-9)
        assert np.all((exposed > 0) == (requests.sum(axis=1) > 0))
        assert np.all((affected > 0) == (excess.sum(axis=1) > 0))
        if rngs is not None:
            # Drawn counts: whole users, no more than the requests that reached them. (The
            # expectations of ``rngs=None`` split requests fractionally over groups, so
            # they may exceed a tiny request count slightly.)
            assert np.all(exposed == np.round(exposed)) and np.all(affected == np.round(affected))
            assert np.all(exposed <= requests.sum(axis=1))
            assert np.all(affected <= excess.sum(axis=1))


def test_count_users_zero_requests_zero_users():
    pop = population()
    zero = np.zeros((4, pop.n_cohorts))
    for rngs in (stream_states(range(4), 3), None):
        exposed, affected = count_users(pop, zero, zero, rngs)
        assert np.all(exposed == 0) and np.all(affected == 0)
    # A run without requests among runs with requests.
    requests = np.array([[100.0, 40.0], [0.0, 0.0], [5.0, 0.0]])
    excess = np.array([[3.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    exposed, affected = count_users(pop, requests, excess, stream_states(range(3), 3))
    assert exposed[1] == 0 and affected[1] == 0
    assert exposed[0] > 0 and affected[0] > 0
    assert exposed[2] > 0 and affected[2] == 0


def test_count_users_is_deterministic_and_independent_of_batch_mates():
    pop = population(**POPULATIONS["zipf2-two-cohorts"])
    requests, excess = random_counts(np.random.default_rng(11), 40, pop)
    gens = lambda rows: stream_states([9000 + i for i in rows], 3)  # noqa: E731
    a = count_users(pop, requests, excess, gens(range(40)))
    b = count_users(pop, requests, excess, gens(range(40)))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for i in (0, 7, 39):
        alone = count_users(pop, requests[i : i + 1], excess[i : i + 1], gens([i]))
        assert alone[0][0] == a[0][i] and alone[1][0] == a[1][i]


def test_count_users_without_generators_is_the_expectation_given_the_split():
    pop = population()
    requests = np.array([[700.0, 300.0]])
    exposed, affected = count_users(pop, requests, np.zeros_like(requests), None)
    want = 0.0
    for c in range(pop.n_cohorts):
        sizes, p = pop.groups_of(c)
        want += expected_distinct(requests[0, c] * p, sizes).sum()
    assert exposed[0] == pytest.approx(want, rel=1e-12)
    assert affected[0] == 0


def exact_users(
    pop, requests: np.ndarray, excess: np.ndarray, rng: np.random.Generator, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The per-request mode's users: each request of cohort c from a user of c drawn by
    activity (a group by its traffic share, a user uniformly in it); the excess failures
    are a uniform subset of the requests (here: the first X of the i.i.d. draws)."""
    offset = np.concatenate([[0], np.cumsum(pop.users)])
    exposed, affected = np.zeros(size), np.zeros(size)
    for c in range(pop.n_cohorts):
        K, X = int(requests[c]), int(excess[c])
        if K == 0:
            continue
        groups = np.flatnonzero(pop.cohort == c)
        _, p = pop.groups_of(c)
        cdf = np.cumsum(p)
        chunk = max(1, 2_000_000 // K)
        for a in range(0, size, chunk):
            m = min(chunk, size - a)
            g = groups[np.minimum(np.searchsorted(cdf, rng.random((m, K)), side="right"), len(groups) - 1)]
            uid = offset[g] + np.minimum((rng.random((m, K)) * pop.users[g]).astype(np.int64), pop.users[g] - 1)
            s = np.sort(uid, axis=1)
            exposed[a : a + m] += 1 + (np.diff(s, axis=1) != 0).sum(axis=1)
            if X:
                s = np.sort(uid[:, :X], axis=1)
                affected[a : a + m] += 1 + (np.diff(s, axis=1) != 0).sum(axis=1)
    return exposed, affected


# (population, requests per cohort, excess per cohort): what a rollout of the agreement
# scenario produces (~1000 canary requests, ~15 excess), a low-traffic one and a heavy one.
USER_CASES = {
    "typical": ("zipf1-cohort30", (650, 300), (8, 7)),
    "low": ("zipf1-cohort30", (40, 15), (3, 2)),
    "heavy": ("zipf1-cohort30", (8000, 3500), (60, 120)),
    "uniform-saturated": ("uniform", (3000,), (400,)),
    "zipf2": ("zipf2-two-cohorts", (5000, 700, 1500), (60, 20, 30)),
    # scenarios/error-spike.yaml's counts (benchmarks/bench_users.py): every regime at once
    "error-spike": ("error-spike", (3600,), (176,)),
}


@pytest.mark.parametrize("case", USER_CASES)
def test_count_users_matches_per_request_users(case):
    pop_name, req, exc = USER_CASES[case]
    pop = population(**POPULATIONS[pop_name])
    size = 3000
    requests = np.tile(np.array(req, dtype=float), (size, 1))
    excess = np.tile(np.array(exc, dtype=float), (size, 1))
    gens = stream_states(np.arange(size) + 21000, 3)
    exposed, affected = count_users(pop, requests, excess, gens)
    ex_exposed, ex_affected = exact_users(pop, requests[0], excess[0], np.random.default_rng(22), size)
    lines = []
    ok = True
    for what, a, b in (("users_exposed", exposed, ex_exposed), ("users_affected", affected, ex_affected)):
        p = two_sample_pvalues(a, b)
        se = np.sqrt(a.var() / size + b.var() / size)
        close = abs(a.mean() - b.mean()) <= 4 * se + 1e-9
        ok &= close and min(p.values()) > ALPHA
        lines.append(
            f"{what}: count_users mean {a.mean():.3f} sd {a.std():.3f}, per-request mean "
            f"{b.mean():.3f} sd {b.std():.3f}, p {p}"
        )
    assert ok, f"{case}: " + "; ".join(lines)
