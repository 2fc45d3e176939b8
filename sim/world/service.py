"""A service version's latency law.

Three laws implement ``LatencyLaw``, all frozen and hashable (their bucket tables are
cached per law and bounds):

* ``LatencyDist``: ``shift + LogNormal(mu, sigma)``, given by a median and a p99
  (σ = ln(p99/median) / z₀.₉₉);
* ``MixtureLatency``: a weighted mixture of ``LatencyDist`` components (a cache hit and a
  miss, a fast path and a slow one);
* ``HistogramLatency``: an empirical law, the shares of requests in buckets
  ``(low, le[0]], (le[0], le[1]], ...``, uniform within each bucket (as Prometheus's
  ``histogram_quantile`` assumes) and nothing above the last bound.

The fast path needs, per histogram bucket of the exporter, the probability of the bucket
and the mean and variance of a latency given that it fell there (for ``_sum`` series);
all three are exact closed forms here (partial moments of the lognormal, piecewise
uniform integrals of the histogram, the law of total variance for a mixture). The
per-request mode draws from the same law with ``sample``.

Every law is closed under the two transforms latency faults and noise apply: ``scaled``
(every request ``f`` times slower: the law of ``f·Y``) and ``shifted`` (``Y + ms``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from scipy.special import ndtr, ndtri

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from sim.inputs.scenario import Latency

Z99 = 2.3263478740408408  # Φ⁻¹(0.99)

#: Moments of a latency in each bucket: probability, mean (ms) and variance (ms²).
Moments = tuple[np.ndarray, np.ndarray, np.ndarray]


class LatencyLaw(Protocol):
    """What the world needs of a latency law (ms). Implemented by ``LatencyDist``,
    ``MixtureLatency`` and ``HistogramLatency``."""

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        """P(latency <= x), elementwise, same shape as ``x_ms``."""
        ...

    def quantile(self, q: float) -> float:
        """The smallest x with ``cdf(x) >= q`` (q in [0, 1])."""
        ...

    def mean_ms(self) -> float:
        """The mean latency."""
        ...

    def sample(self, rng: np.random.Generator, size: int | None = None) -> float | np.ndarray:
        """Latencies drawn from the law: a float (``size`` None) or ``size`` of them."""
        ...

    def scaled(self, factor: float) -> LatencyLaw:
        """The law of ``factor · Y``: every request ``factor`` (> 0) times slower."""
        ...

    def shifted(self, ms: float) -> LatencyLaw:
        """The law of ``Y + ms``: every request ``ms`` slower."""
        ...

    def interval_moments(self, lo: ArrayLike, hi: ArrayLike) -> Moments:
        """Elementwise over ``lo``, ``hi`` (broadcast): P(lo < Y <= hi), and the mean and
        variance of ``Y`` given ``lo < Y <= hi`` (an interval the law never reaches: its
        lower end and 0)."""
        ...

    def bucket_probs(self, bounds_ms: tuple[float, ...]) -> np.ndarray:
        """P(latency in each bucket ``(0, b0], (b0, b1], ..., (b_last, +Inf)``), (B+1,)."""
        ...

    def bucket_moments(self, bounds_ms: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of a latency given its bucket, each (B+1,)."""
        ...

    def bucket_table(self, bounds_ms: tuple[float, ...], factors: ArrayLike) -> Moments:
        """``(probs, mean, var)``, each (F, B+1): row i is ``scaled(factors[i])``'s."""
        ...

    def interval_probs(self, lo: ArrayLike, hi: ArrayLike) -> np.ndarray:
        """P(lo < Y <= hi), elementwise."""
        ...

    def bucket_probs_table(self, bounds_ms: tuple[float, ...], factors: ArrayLike) -> np.ndarray:
        """The probabilities of ``bucket_table`` alone, (F, B+1)."""
        ...


class _Buckets:
    """The bucket views every law derives from its ``interval_moments``."""

    def interval_moments(self, lo: ArrayLike, hi: ArrayLike) -> Moments:
        raise NotImplementedError

    def bucket_probs(self, bounds_ms: tuple[float, ...]) -> np.ndarray:
        """P(latency in each bucket): ``(0, b0], (b0, b1], ..., (b_last, +Inf)``; read-only."""
        return _bucket_stats(self, bounds_ms)[0]

    def bucket_moments(self, bounds_ms: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (ms, ms²) of a latency given the bucket it fell in, per bucket
        of ``bucket_probs`` (a bucket the law never reaches gets its lower edge and 0);
        read-only."""
        _, mean, var = _bucket_stats(self, bounds_ms)
        return mean, var

    def bucket_table(self, bounds_ms: tuple[float, ...], factors: ArrayLike) -> Moments:
        """Probabilities, means and variances per bucket of the law scaled by each factor.

        ``f·Y`` falls in ``(a, b]`` when ``Y`` falls in ``(a/f, b/f]``, with mean ``f``
        times and variance ``f²`` times ``Y``'s there: one vectorised evaluation at the
        bounds divided by every distinct factor, for any law.

        Args:
            bounds_ms: the histogram's finite upper bounds (B,).
            factors: latency multipliers (F,), each > 0.

        Returns:
            ``(probs, mean, var)``, each (F, B+1), as ``scaled(f).bucket_probs`` and
            ``scaled(f).bucket_moments`` for each factor.
        """
        f = np.asarray(factors, dtype=float).reshape(-1)
        if f.size and not np.all(f > 0):
            raise ValueError("latency factors must be > 0")
        # Noise often gives many cells the same factor (1 without noise): compute each once.
        uniq, inverse = np.unique(f, return_inverse=True)
        edges = _bucket_edges(bounds_ms)
        p, mean, var = self.interval_moments(edges[None, :-1] / uniq[:, None], edges[None, 1:] / uniq[:, None])
        col = uniq[:, None]
        return p[inverse], (mean * col)[inverse], (var * col * col)[inverse]

    def interval_probs(self, lo: ArrayLike, hi: ArrayLike) -> np.ndarray:
        """P(lo < Y <= hi), elementwise (the first of ``interval_moments``; laws with a
        cheaper closed form override it)."""
        return self.interval_moments(lo, hi)[0]

    def bucket_probs_table(self, bounds_ms: tuple[float, ...], factors: ArrayLike) -> np.ndarray:
        """The probabilities of ``bucket_table`` alone (F, B+1): what a histogram's draw
        needs at every tick when no latency sum is read, at a third of the cost (no
        partial moments)."""
        f = np.asarray(factors, dtype=float).reshape(-1)
        if f.size and not np.all(f > 0):
            raise ValueError("latency factors must be > 0")
        uniq, inverse = np.unique(f, return_inverse=True)
        edges = _bucket_edges(bounds_ms)
        p = self.interval_probs(edges[None, :-1] / uniq[:, None], edges[None, 1:] / uniq[:, None])
        return np.maximum(p, 0.0)[inverse]


def _bucket_edges(bounds_ms: tuple[float, ...]) -> np.ndarray:
    return np.concatenate([[0.0], np.asarray(bounds_ms, dtype=float), [np.inf]])


@lru_cache(maxsize=4096)
def _bucket_stats(law: _Buckets, bounds_ms: tuple[float, ...]) -> Moments:
    # Cached: a run asks for the same few laws at every tick; shared, hence read-only.
    edges = _bucket_edges(bounds_ms)
    out = law.interval_moments(edges[:-1], edges[1:])
    for a in out:
        a.setflags(write=False)
    return out


def _tidy(p: np.ndarray, mean: np.ndarray, var: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Moments:
    """Rounding kept inside what is possible: 0 <= p, a mean inside ``[lo, hi]``, a
    variance at most ``(hi - lo)² / 4``; an interval never reached: ``lo`` and 0."""
    p = np.maximum(p, 0.0)
    reached = p > 0
    with np.errstate(invalid="ignore"):
        mean = np.where(reached, np.clip(mean, lo, hi), lo)
        var = np.where(reached, np.clip(var, 0.0, (hi - lo) ** 2 / 4.0), 0.0)
    return p, mean, var


def _phi_between(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """Φ(zb) − Φ(za) for za <= zb, from the side of the distribution where it does not
    cancel (upper tail: Φ(−za) − Φ(−zb))."""
    # Φ(zb) − Φ(za) = Φ(−za) − Φ(−zb): flip the sign on the upper side, one Φ per end.
    flip = np.where(za > 0, -1.0, 1.0)
    return flip * (ndtr(flip * zb) - ndtr(flip * za))


# --- the lognormal -----------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyDist(_Buckets):
    """Latency in ms: ``shift + LogNormal(mu, sigma)`` (σ = 0: a point mass)."""

    mu: float
    sigma: float
    shift: float = 0.0

    @classmethod
    def from_quantiles(cls, median_ms: float, p99_ms: float) -> LatencyDist:
        """The lognormal with this median and p99."""
        return cls(math.log(median_ms), math.log(p99_ms / median_ms) / Z99)

    def scaled(self, factor: float) -> LatencyDist:
        """Every request ``factor`` times slower (the shift too)."""
        return LatencyDist(self.mu + math.log(factor), self.sigma, self.shift * factor)

    def shifted(self, ms: float) -> LatencyDist:
        """Every request ``ms`` slower."""
        return LatencyDist(self.mu, self.sigma, self.shift + ms)

    def with_p99(self, p99_ms: float) -> LatencyDist:
        """Same median, tail stretched (or shrunk) so the p99 is ``p99_ms``."""
        median = math.exp(self.mu)
        target = max(p99_ms - self.shift, median)
        return LatencyDist(self.mu, math.log(target / median) / Z99, self.shift)

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        """P(latency <= x)."""
        x = np.asarray(x_ms, dtype=float) - self.shift
        out = np.zeros_like(x)
        pos = x > 0
        if self.sigma == 0:
            out[pos] = (np.log(x[pos]) >= self.mu).astype(float)
        else:
            out[pos] = ndtr((np.log(x[pos]) - self.mu) / self.sigma)
        return out

    def quantile(self, q: float) -> float:
        """The q-quantile."""
        return self.shift + math.exp(self.mu + self.sigma * float(ndtri(q)))

    def mean_ms(self) -> float:
        """``shift + exp(mu + sigma²/2)``."""
        return self.shift + math.exp(self.mu + 0.5 * self.sigma * self.sigma)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> float | np.ndarray:
        """``shift + exp(mu + sigma·Z)``, one standard normal per latency."""
        if size is None:
            return self.shift + float(np.exp(self.mu + self.sigma * rng.standard_normal()))
        return self.shift + np.exp(self.mu + self.sigma * rng.standard_normal(size))

    def interval_probs(self, lo: ArrayLike, hi: ArrayLike) -> np.ndarray:
        """Φ at both ends (from the side where the difference does not cancel)."""
        lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))
        a = np.maximum(lo - self.shift, 0.0)
        b = np.maximum(hi - self.shift, 0.0)
        if self.sigma == 0:
            y = math.exp(self.mu)
            return ((a < y) & (y <= b)).astype(float)
        with np.errstate(divide="ignore"):
            return _phi_between((np.log(a) - self.mu) / self.sigma, (np.log(b) - self.mu) / self.sigma)

    def interval_moments(self, lo: ArrayLike, hi: ArrayLike) -> Moments:
        """Closed forms: partial moments of the lognormal,
        ``E[L^k 1{L <= x}] = exp(k mu + k² s²/2) Φ((ln x − mu − k s²) / s)``."""
        lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))
        a = np.maximum(lo - self.shift, 0.0)
        b = np.maximum(hi - self.shift, 0.0)
        mu, s = self.mu, self.sigma
        if s == 0:
            y = math.exp(mu)
            p = ((a < y) & (y <= b)).astype(float)
            mean_l, var = np.full(p.shape, y), np.zeros(p.shape)
        else:
            with np.errstate(divide="ignore"):
                la, lb = np.log(a), np.log(b)

            def partial(k: int) -> np.ndarray:
                shift = mu + k * s * s
                return math.exp(k * mu + 0.5 * k * k * s * s) * _phi_between((la - shift) / s, (lb - shift) / s)

            p, m1, m2 = partial(0), partial(1), partial(2)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_l = m1 / p
                var = m2 / p - mean_l * mean_l
        return _tidy(p, mean_l + self.shift, var, lo, hi)


# --- a mixture of lognormals -------------------------------------------------------------


def _normalised(weights: Sequence[float], what: str) -> tuple[float, ...]:
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or not len(w) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"{what} must be finite, >= 0 and not all 0")
    total = float(w.sum())
    # Normalise once: a law built from normalised weights keeps them bit for bit.
    return tuple(float(x) for x in (w if abs(total - 1.0) <= 1e-12 else w / total))


@dataclass(frozen=True)
class MixtureLatency(_Buckets):
    """A request's latency is component i's with probability ``weights[i]`` (normalised
    to sum to 1 on construction)."""

    weights: tuple[float, ...]
    components: tuple[LatencyDist, ...]

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.components):
            raise ValueError("a mixture needs one weight per component")
        object.__setattr__(self, "weights", _normalised(self.weights, "mixture weights"))
        object.__setattr__(self, "components", tuple(self.components))

    def scaled(self, factor: float) -> MixtureLatency:
        """Every component ``factor`` times slower."""
        return MixtureLatency(self.weights, tuple(c.scaled(factor) for c in self.components))

    def shifted(self, ms: float) -> MixtureLatency:
        """Every component ``ms`` slower."""
        return MixtureLatency(self.weights, tuple(c.shifted(ms) for c in self.components))

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        """Σ wᵢ Fᵢ(x)."""
        x = np.asarray(x_ms, dtype=float)
        return sum((w * c.cdf(x) for w, c in zip(self.weights, self.components)), np.zeros_like(x))

    def quantile(self, q: float) -> float:
        """Solved from the cdf: it lies between the components' own q-quantiles."""
        from scipy.optimize import brentq

        qs = [c.quantile(q) for c in self.components]
        lo, hi = min(qs), max(qs)
        if not 0.0 < q < 1.0 or hi - lo <= 1e-12 * max(abs(hi), 1.0):
            return lo

        def excess(x: float) -> float:
            return float(self.cdf(np.array(x))) - q

        # The bracket's ends can miss by a rounding error: then that end is the answer.
        if excess(lo) >= 0:
            return lo
        if excess(hi) <= 0:
            return hi
        return float(brentq(excess, lo, hi, xtol=1e-12, rtol=1e-14))

    def mean_ms(self) -> float:
        """Σ wᵢ meanᵢ."""
        return float(sum(w * c.mean_ms() for w, c in zip(self.weights, self.components)))

    def sample(self, rng: np.random.Generator, size: int | None = None) -> float | np.ndarray:
        """A component drawn by weight (one uniform), then its latency."""
        cum = np.cumsum(self.weights)
        last = len(self.components) - 1
        if size is None:
            k = min(int(np.searchsorted(cum, rng.random(), side="right")), last)
            return float(self.components[k].sample(rng))
        ks = np.minimum(np.searchsorted(cum, rng.random(size), side="right"), last)
        out = np.empty(size)
        for k, c in enumerate(self.components):
            mine = ks == k
            out[mine] = c.sample(rng, int(mine.sum()))
        return out

    def interval_probs(self, lo: ArrayLike, hi: ArrayLike) -> np.ndarray:
        """Σ wᵢ Pᵢ(lo < Y <= hi)."""
        lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))
        return sum((w * c.interval_probs(lo, hi) for w, c in zip(self.weights, self.components)), np.zeros(lo.shape))

    def interval_moments(self, lo: ArrayLike, hi: ArrayLike) -> Moments:
        """The components' by the law of total variance."""
        lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))
        parts = [c.interval_moments(lo, hi) for c in self.components]
        mass = [w * p for w, (p, _, _) in zip(self.weights, parts)]
        p = sum(mass, np.zeros(lo.shape))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sum((m * mu for m, (_, mu, _) in zip(mass, parts)), np.zeros(lo.shape)) / p
            var = sum((m * (v + (mu - mean) ** 2) for m, (_, mu, v) in zip(mass, parts)), np.zeros(lo.shape)) / p
        return _tidy(p, mean, var, lo, hi)


# --- an empirical histogram --------------------------------------------------------------


@dataclass(frozen=True)
class HistogramLatency(_Buckets):
    """Latency uniform within buckets ``(low, le[0]], (le[0], le[1]], ...``, bucket i
    holding a share ``probs[i]`` of requests (normalised on construction); nothing lies
    above ``le[-1]``."""

    le: tuple[float, ...]
    probs: tuple[float, ...]
    low: float = 0.0

    def __post_init__(self) -> None:
        le = tuple(float(b) for b in self.le)
        if not le or len(le) != len(self.probs):
            raise ValueError("a histogram needs one share per bound")
        if not all(b > a for a, b in zip((self.low, *le), le)):
            raise ValueError("histogram bounds must increase from its lower end")
        object.__setattr__(self, "le", le)
        object.__setattr__(self, "probs", _normalised(self.probs, "histogram shares"))

    @classmethod
    def from_counts(cls, le: Sequence[float], counts: Sequence[float]) -> HistogramLatency:
        """The empirical law of requests counted per bucket (not cumulative)."""
        return cls(tuple(le), tuple(counts))

    # Piecewise-polynomial cumulative moments, derived once per law (not part of equality).
    @cached_property
    def _edges(self) -> np.ndarray:
        return np.array((self.low, *self.le))

    @cached_property
    def _w(self) -> np.ndarray:
        return np.array(self.probs)

    @cached_property
    def _density(self) -> np.ndarray:
        return self._w / np.diff(self._edges)

    @cached_property
    def _cum(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``E[Y^k 1{Y <= e_j}]`` at every edge, k = 0, 1, 2 (the last M0 is exactly 1)."""
        e0, e1, w = self._edges[:-1], self._edges[1:], self._w
        pieces = (w, w * (e0 + e1) / 2.0, w * (e0 * e0 + e0 * e1 + e1 * e1) / 3.0)
        cum = tuple(np.concatenate([[0.0], np.cumsum(x)]) for x in pieces)
        cum[0][-1] = 1.0
        return cum[0], cum[1], cum[2]

    def _partial(self, x: np.ndarray, j: np.ndarray, k: int) -> np.ndarray:
        """``E[Y^k 1{Y <= x}]`` for x in bucket j (x inside the support)."""
        e = self._edges[j]
        return self._cum[k][j] + self._density[j] * (x ** (k + 1) - e ** (k + 1)) / (k + 1)

    def _bucket_of(self, x: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
        j = np.searchsorted(self._edges, x, side=side) - 1
        return np.clip(j, 0, len(self.le) - 1)

    def scaled(self, factor: float) -> HistogramLatency:
        """Every bound ``factor`` times larger."""
        if not factor > 0:
            raise ValueError("a latency factor must be > 0")
        return HistogramLatency(tuple(b * factor for b in self.le), self.probs, self.low * factor)

    def shifted(self, ms: float) -> HistogramLatency:
        """Every bound (the lower end too) ``ms`` later."""
        return HistogramLatency(tuple(b + ms for b in self.le), self.probs, self.low + ms)

    def cdf(self, x_ms: ArrayLike) -> np.ndarray:
        """Piecewise linear from 0 at ``low`` to 1 at ``le[-1]``."""
        x = np.clip(np.asarray(x_ms, dtype=float), self._edges[0], self._edges[-1])
        return np.clip(self._partial(x, self._bucket_of(x, "right"), 0), 0.0, 1.0)

    def _inverse(self, q: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
        """Where the cdf reaches q in (0, 1]: ``left``, the smallest such x (the bucket
        where the cdf first reaches q); ``right``, the bucket where it first exceeds q,
        never an empty one (for sampling, q in [0, 1))."""
        cum = self._cum[0]
        positive = np.flatnonzero(self._w > 0)
        j = np.clip(np.searchsorted(cum[1:], q, side=side), positive[0], positive[-1])
        x = self._edges[j] + (q - cum[j]) / self._density[j]
        # Exactly the bucket's end where the cdf reaches q there (no rounding past it).
        return np.where(q >= cum[j + 1], self._edges[j + 1], np.clip(x, self._edges[j], self._edges[j + 1]))

    def quantile(self, q: float) -> float:
        """Linear interpolation within the bucket where the cdf reaches q, as
        ``histogram_quantile`` (Prometheus promql/quantile.go bucketQuantile)."""
        return float(self._inverse(np.array(float(q)), "left"))

    def mean_ms(self) -> float:
        """Σ pᵢ (midpoint of bucket i)."""
        return float(self._cum[1][-1])

    def sample(self, rng: np.random.Generator, size: int | None = None) -> float | np.ndarray:
        """By inversion: one uniform per latency."""
        if size is None:
            return float(self._inverse(np.array(rng.random()), "right"))
        return self._inverse(rng.random(size), "right")

    def interval_moments(self, lo: ArrayLike, hi: ArrayLike) -> Moments:
        """Piecewise-uniform integrals; an interval inside one bucket is uniform there
        (computed as such, without cancellation)."""
        lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))
        e = self._edges
        a = np.clip(lo, e[0], e[-1])
        b = np.maximum(np.clip(hi, e[0], e[-1]), a)
        ja, jb = self._bucket_of(a, "right"), self._bucket_of(b, "left")
        p, m1, m2 = (self._partial(b, jb, k) - self._partial(a, ja, k) for k in range(3))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = m1 / p
            var = m2 / p - mean * mean
        same = ja == jb
        p = np.where(b > a, np.where(same, self._density[ja] * (b - a), p), 0.0)
        mean = np.where(same, (a + b) / 2.0, mean)
        var = np.where(same, (b - a) ** 2 / 12.0, var)
        return _tidy(p, mean, var, lo, hi)


def latency_law(spec: Latency) -> LatencyLaw:
    """The law a scenario's ``latency`` block describes (``sim.inputs.scenario.Latency``).

    Args:
        spec: a validated latency block (exactly one form set).
    """
    if spec.mixture is not None:
        return MixtureLatency(
            tuple(c.weight for c in spec.mixture),
            tuple(LatencyDist.from_quantiles(c.median, c.p99) for c in spec.mixture),
        )
    if spec.histogram is not None:
        return HistogramLatency.from_counts(spec.histogram.le, spec.histogram.counts)
    assert spec.median is not None and spec.p99 is not None  # Latency validates its forms
    return LatencyDist.from_quantiles(spec.median, spec.p99)
