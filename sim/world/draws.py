"""Compiled random draws for whole batches of runs, each run on its own stream.

A numpy ``Generator`` call costs 1–10 µs before it draws anything (argument checks,
broadcasting), and the fast path needs a few hundred draws per run and tick, from the
run's own stream, so that a run's result depends on its seed only. Calling numpy once
per run and tick made those overheads most of a rollout's cost. Here every run's stream
is a row of a state array, and one compiled call (numba) draws for all runs of a batch:
row ``r`` advances only stream ``r``, in an order fixed by run ``r``'s own draws.

The generator is PCG64 (XSL-RR 128/64), numpy's default bit generator, stepped here on
state rows ``[state_hi, state_lo, inc_hi, inc_lo]``; a test checks it bit for bit
against ``numpy.random.PCG64``. A stream's state and increment come from the run seed
and the stream's number through SplitMix64 (distinct increments: independent streams).
The samplers are the classical exact algorithms:

* Poisson: inversion by sequential search for λ < 10; for λ >= 10 Hörmann's
  transformed rejection with squeeze, PTRS (W. Hörmann, "The transformed rejection
  method for generating Poisson random variables", Insurance: Mathematics and
  Economics 12, 1993);
* binomial: inversion for n·min(p, 1−p) < 10; Hörmann's BTRS otherwise (W. Hörmann,
  "The generation of binomial random variates", J. Statist. Comput. Simul. 46, 1993);

tests/world/test_draws.py checks each against its exact distribution (chi-square and a
mean test for the discrete ones, Kolmogorov–Smirnov for the uniforms) over a grid of
parameters that crosses every algorithm switch.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# No kernel here has an explicit signature: one would make numba load (or compile) it when
# this module is imported, whether or not the command draws anything. Each is typed by its
# first call (from another kernel: uint64 state rows, float64 parameters) and loaded from
# numba's cache then (docs/architecture.md section 2, "Lazy imports").
_U = nb.uint64
_MASK32 = np.uint64(0xFFFFFFFF)
_MULT_HI = np.uint64(0x2360ED051FC65DA4)  # PCG's default 128-bit multiplier
_MULT_LO = np.uint64(0x4385DF649FCCF645)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64
_SM1 = np.uint64(0xBF58476D1CE4E5B9)
_SM2 = np.uint64(0x94D049BB133111EB)
_TO_DOUBLE = 1.0 / 9007199254740992.0  # 2**-53


@nb.njit(cache=True)
def _mulhi(a, b):
    """High 64 bits of the 128-bit product a·b."""
    a_lo, a_hi = a & _MASK32, a >> _U(32)
    b_lo, b_hi = b & _MASK32, b >> _U(32)
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    cross = (lo_lo >> _U(32)) + (hi_lo & _MASK32) + lo_hi
    return a_hi * b_hi + (hi_lo >> _U(32)) + (cross >> _U(32))


@nb.njit(cache=True)
def next_uint64(st):
    """Step one PCG64 stream (state row ``st``) and return its output."""
    s_hi, s_lo = st[0], st[1]
    # state = state · MULT + inc  (mod 2**128)
    lo = s_lo * _MULT_LO
    hi = _mulhi(s_lo, _MULT_LO) + s_lo * _MULT_HI + s_hi * _MULT_LO
    new_lo = lo + st[3]
    carry = _U(1) if new_lo < lo else _U(0)
    new_hi = hi + st[2] + carry
    st[0], st[1] = new_hi, new_lo
    # XSL-RR output of the new state.
    x = new_hi ^ new_lo
    rot = new_hi >> _U(58)
    return (x >> rot) | (x << ((_U(64) - rot) & _U(63)))


@nb.njit(cache=True)
def uniform(st):
    """A uniform double in [0, 1) (53 random bits, as numpy's ``random``)."""
    return float(next_uint64(st) >> _U(11)) * _TO_DOUBLE


@nb.njit(cache=True)
def _splitmix(x):
    z = x * _SM1
    z = (z ^ (z >> _U(30))) * _SM1
    z = (z ^ (z >> _U(27))) * _SM2
    return z ^ (z >> _U(31))


@nb.njit(cache=True)
def _seed_rows(seeds, stream, out):
    w = np.empty(4, dtype=np.uint64)
    for r in range(seeds.shape[0]):
        base = seeds[r] + (_U(stream) * _U(4) + _U(1)) * _GOLDEN
        for j in range(4):
            w[j] = _splitmix(base + _U(j) * _GOLDEN)
        # PCG's seeding: inc = (initseq << 1) | 1; state = 0; step; state += initstate; step.
        st = out[r]
        st[2] = (w[2] << _U(1)) | (w[3] >> _U(63))
        st[3] = (w[3] << _U(1)) | _U(1)
        st[0], st[1] = _U(0), _U(0)
        next_uint64(st)
        lo = st[1] + w[1]
        st[0] = st[0] + w[0] + (_U(1) if lo < st[1] else _U(0))
        st[1] = lo
        next_uint64(st)


def stream_states(seeds: np.ndarray | list[int], stream: int) -> np.ndarray:
    """The state rows (R, 4) of stream number ``stream`` of each run seed."""
    seeds = np.asarray(seeds, dtype=np.int64).astype(np.uint64)
    out = np.empty((len(seeds), 4), dtype=np.uint64)
    _seed_rows(seeds, np.uint64(stream), out)
    return out


# -- samplers ------------------------------------------------------------------------------


@nb.njit(cache=True)
def poisson(st, lam):
    """One Poisson(λ) variate from stream ``st``; 0 without drawing when λ <= 0."""
    if lam <= 0.0:
        return 0.0
    if lam < 10.0:
        # Inversion: the smallest k with F(k) >= U.
        u = uniform(st)
        p = math.exp(-lam)
        f = p
        k = 0
        while u > f and k < 200:
            k += 1
            p *= lam / k
            f += p
        return float(k)
    # PTRS.
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = uniform(st) - 0.5
        v = uniform(st)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b) <= -lam + k * loglam - math.lgamma(k + 1.0):
            return k


@nb.njit(cache=True)
def binomial(st, n, p):
    """One Binomial(n, p) variate from stream ``st``; 0 without drawing when n·p is 0."""
    if n <= 0.0 or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return n
    flip = p > 0.5
    q = 1.0 - p if flip else p
    if n * q < 10.0:
        # Inversion, P(X = k+1) = P(X = k) · (n−k)/(k+1) · q/(1−q).
        u = uniform(st)
        r = q / (1.0 - q)
        pk = math.exp(n * math.log1p(-q))
        k = 0.0
        while u > pk and k < n:
            u -= pk
            pk *= (n - k) / (k + 1.0) * r
            k += 1.0
        return n - k if flip else k
    # BTRS.
    spq = math.sqrt(n * q * (1.0 - q))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * q
    c = n * q + 0.5
    alpha = (2.83 + 5.1 / b) * spq
    vr = 0.92 - 4.2 / b
    m = math.floor((n + 1.0) * q)
    h = -1.0  # the log-pmf constant, computed only if the squeeze fails (rarely)
    while True:
        u = uniform(st) - 0.5
        v = uniform(st)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0.0 or k > n:
            continue
        if us >= 0.07 and v <= vr:
            break
        if h < 0.0:
            lpq = math.log(q / (1.0 - q))
            h = math.lgamma(m + 1.0) + math.lgamma(n - m + 1.0)
        v = math.log(v * alpha / (a / (us * us) + b))
        if v <= h - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0) + (k - m) * lpq:
            break
    return n - k if flip else k


# -- batch kernels ---------------------------------------------------------------------------


@nb.njit(cache=True)
def poisson_rows(states, rows, mean, out):
    """``out[i, j] = Poisson(mean[i, j])`` drawn from stream ``states[rows[i]]``, row by
    row and left to right (a zero mean draws nothing)."""
    for i in range(mean.shape[0]):
        st = states[rows[i]]
        for j in range(mean.shape[1]):
            out[i, j] = poisson(st, mean[i, j])
    return out


@nb.njit(cache=True)
def _split(st, n, pr, order, out):
    """``out`` = Multinomial(n, pr) from stream ``st``, as conditional binomials over the
    categories in the order ``order`` (most likely first: the draws stop once nothing
    remains, so the unlikely tail costs nothing)."""
    left = n
    rest = 1.0
    for j in range(pr.shape[0] - 1):
        b = order[j]
        if left <= 0.0:
            out[b] = 0.0
            continue
        x = binomial(st, left, min(pr[b] / rest, 1.0)) if rest > 0.0 else 0.0
        out[b] = x
        left -= x
        rest -= pr[b]
    out[order[pr.shape[0] - 1]] = left


@nb.njit(cache=True)
def multinomial_rows(states, rows, n, probs, order, out):
    """``out[i, k] = Multinomial(n[i, k], probs[k])`` from stream ``states[rows[i]]``,
    categories drawn in the order ``order[k]``."""
    for i in range(n.shape[0]):
        st = states[rows[i]]
        for k in range(n.shape[1]):
            _split(st, n[i, k], probs[k], order[k], out[i, k])
    return out


def multinomial(
    states: np.ndarray, rows: np.ndarray, n: np.ndarray, probs: np.ndarray, order: np.ndarray | None = None
) -> np.ndarray:
    """Multinomial splits of ``n`` (R, K) over the categories of ``probs`` (K, B), row i
    from stream ``states[rows[i]]``: an array (R, K, B). ``order``: the categories of
    each row most likely first (K, B), ``category_order(probs)``, when the caller has it
    from fewer distinct rows (sorted once per distinct row, not per copy)."""
    probs = np.ascontiguousarray(probs, dtype=float)
    order = category_order(probs) if order is None else np.ascontiguousarray(order, dtype=np.intp)
    out = np.empty(n.shape + (probs.shape[1],))
    return multinomial_rows(states, rows, np.ascontiguousarray(n, dtype=float), probs, order, out)


def category_order(probs: np.ndarray) -> np.ndarray:
    """The order ``multinomial`` draws the categories of each row of ``probs`` (..., B)
    in: most likely first, ties in their order (a stable sort, so equal rows get equal
    orders)."""
    return np.argsort(-np.asarray(probs, dtype=float), axis=-1, kind="stable")


@nb.njit(cache=True)
def uniform_rows(states, rows, out):
    """``out[i, j]`` uniform on [0, 1), row i from stream ``states[rows[i]]``."""
    for i in range(out.shape[0]):
        st = states[rows[i]]
        for j in range(out.shape[1]):
            out[i, j] = uniform(st)
    return out


@nb.njit(cache=True)
def _multinomial_each(states, rows, n, probs, order, out):
    for i in range(n.shape[0]):
        _split(states[rows[i]], n[i], probs[i], order[i], out[i])
    return out


def multinomial_each(states: np.ndarray, rows: np.ndarray, n: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """One multinomial split of ``n[i]`` over the categories of ``probs[i]`` (R, B) per
    row, row i from stream ``states[rows[i]]``: an array (R, B). Rows with n = 0 draw
    nothing."""
    probs = np.ascontiguousarray(probs, dtype=float)
    order = np.argsort(-probs, axis=1, kind="stable")
    out = np.empty(probs.shape)
    return _multinomial_each(
        states, np.asarray(rows, dtype=np.int64), np.ascontiguousarray(n, dtype=float), probs, order, out
    )


@nb.njit(cache=True)
def _normal_sd_rows(states, rows, sd, out):
    for i in range(sd.shape[0]):
        st = states[rows[i]]
        for j in range(sd.shape[1]):
            if sd[i, j] > 0.0:
                # Box–Muller with 1 − U in the logarithm (U may be 0, never 1).
                r = math.sqrt(-2.0 * math.log(1.0 - uniform(st)))
                out[i, j] = sd[i, j] * r * math.cos(2.0 * math.pi * uniform(st))
            else:
                out[i, j] = 0.0
    return out


def normal_sd(states: np.ndarray, rows: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``out[i, j] = Normal(0, sd[i, j]²)`` from stream ``states[rows[i]]``; a cell with
    sd 0 draws nothing (so a run's stream never depends on cells it does not have)."""
    sd = np.ascontiguousarray(sd, dtype=float)
    return _normal_sd_rows(states, np.asarray(rows, dtype=np.int64), sd, np.empty_like(sd))


@nb.njit(cache=True)
def _multinomial_runs(states, rows, n, probs, order, out):
    for i in range(n.shape[0]):
        st = states[rows[i]]
        for k in range(n.shape[1]):
            _split(st, n[i, k], probs[i, k], order[i, k], out[i, k])
    return out


def multinomial_runs(states: np.ndarray, rows: np.ndarray, n: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Multinomial splits of ``n`` (R, K) over the categories of ``probs`` (R, K, B): as
    ``multinomial``, with each run's own probabilities (per-run noise: pods, latent
    processes). Row i from stream ``states[rows[i]]``."""
    probs = np.ascontiguousarray(probs, dtype=float)
    order = np.argsort(-probs, axis=2, kind="stable")
    out = np.empty(probs.shape)
    return _multinomial_runs(
        states, np.asarray(rows, dtype=np.int64), np.ascontiguousarray(n, dtype=float), probs, order, out
    )


@nb.njit(cache=True)
def _normal(st):
    # Box–Muller's cosine half, with 1 − U in the logarithm (U may be 0, never 1).
    r = math.sqrt(-2.0 * math.log(1.0 - uniform(st)))
    return r * math.cos(2.0 * math.pi * uniform(st))


@nb.njit(cache=True)
def _gamma(st, shape):
    """Gamma(shape, 1) by Marsaglia and Tsang ("A simple method for generating gamma
    variables", ACM TOMS 26, 2000); shape < 1 through Gamma(shape + 1) · U^(1/shape)."""
    boost = 1.0
    if shape < 1.0:
        boost = (1.0 - uniform(st)) ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = _normal(st)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = 1.0 - uniform(st)
        if u < 1.0 - 0.0331 * x * x * x * x or math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
            return d * v * boost


@nb.njit(cache=True)
def _normal_rows(states, rows, out):
    for i in range(out.shape[0]):
        st = states[rows[i]]
        for j in range(out.shape[1]):
            out[i, j] = _normal(st)
    return out


def normal_rows(states: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """``n`` standard normal draws per row (R, n), row i from stream ``states[rows[i]]``."""
    return _normal_rows(states, np.asarray(rows, dtype=np.int64), np.empty((len(rows), n)))


@nb.njit(cache=True)
def _gamma_rows(states, rows, shape, out):
    for i in range(out.shape[0]):
        st = states[rows[i]]
        for j in range(out.shape[1]):
            out[i, j] = _gamma(st, shape)
    return out


def gamma_rows(states: np.ndarray, rows: np.ndarray, shape: float, n: int) -> np.ndarray:
    """``n`` Gamma(shape, 1) draws per row (R, n), row i from stream ``states[rows[i]]``."""
    return _gamma_rows(states, np.asarray(rows, dtype=np.int64), float(shape), np.empty((len(rows), n)))
