"""A service version's behaviour: error probability and latency distribution.

Latency is lognormal, given by median and p99 (σ = ln(p99/median) / z₀.₉₉), optionally
shifted by a constant. The fast path needs only the probability of each histogram
bucket; the per-request mode samples the same distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import ndtr, ndtri

Z99 = 2.3263478740408408  # Φ⁻¹(0.99)


@dataclass(frozen=True)
class LatencyDist:
    """Latency in ms: ``shift + LogNormal(mu, sigma)``."""

    mu: float
    sigma: float
    shift: float = 0.0

    @classmethod
    def from_quantiles(cls, median_ms: float, p99_ms: float) -> LatencyDist:
        return cls(math.log(median_ms), math.log(p99_ms / median_ms) / Z99)

    def scaled(self, factor: float) -> LatencyDist:
        """Every request ``factor`` times slower."""
        return LatencyDist(self.mu + math.log(factor), self.sigma, self.shift * factor)

    def shifted(self, ms: float) -> LatencyDist:
        """Every request ``ms`` slower."""
        return LatencyDist(self.mu, self.sigma, self.shift + ms)

    def with_p99(self, p99_ms: float) -> LatencyDist:
        """Same median, tail stretched (or shrunk) so the p99 is ``p99_ms``."""
        median = math.exp(self.mu)
        target = max(p99_ms - self.shift, median)
        return LatencyDist(self.mu, math.log(target / median) / Z99, self.shift)

    def cdf(self, x_ms: np.ndarray) -> np.ndarray:
        x = np.asarray(x_ms, dtype=float) - self.shift
        out = np.zeros_like(x)
        pos = x > 0
        if self.sigma == 0:
            out[pos] = (np.log(x[pos]) >= self.mu).astype(float)
        else:
            out[pos] = ndtr((np.log(x[pos]) - self.mu) / self.sigma)
        return out

    def quantile(self, q: float) -> float:
        return self.shift + math.exp(self.mu + self.sigma * float(ndtri(q)))

    def bucket_probs(self, bounds_ms: tuple[float, ...]) -> np.ndarray:
        """P(latency in each bucket): ``(0, b0], (b0, b1], ..., (b_last, +Inf)``."""
        return _bucket_probs(self, bounds_ms)

    def bucket_moments(self, bounds_ms: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (ms, ms²) of a latency given the bucket it fell in, per bucket
        of ``bucket_probs`` (a bucket the law never reaches gets its lower edge and 0)."""
        return _bucket_moments(self, bounds_ms)


@lru_cache(maxsize=4096)
def _bucket_probs(dist: LatencyDist, bounds_ms: tuple[float, ...]) -> np.ndarray:
    # Cached: a run asks for the same few distributions at every tick.
    c = np.concatenate([[0.0], dist.cdf(np.array(bounds_ms)), [1.0]])
    p = np.diff(c)
    p[p < 0] = 0.0
    p.setflags(write=False)
    return p


@lru_cache(maxsize=4096)
def _bucket_moments(dist: LatencyDist, bounds_ms: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    # Partial moments of a lognormal: E[Y^k 1{Y <= x}] = exp(k mu + k^2 s^2 / 2) Phi((ln x - mu - k s^2) / s).
    edges = np.concatenate([[0.0], np.asarray(bounds_ms, dtype=float), [np.inf]]) - dist.shift
    edges = np.maximum(edges, 0.0)
    mu, s = dist.mu, dist.sigma
    if s == 0:
        y = math.exp(mu)
        inside = (edges[:-1] < y) & (y <= edges[1:])
        mean = np.where(inside, y, edges[:-1]) + dist.shift
        mean[~np.isfinite(mean)] = edges[-2] + dist.shift
        out = (mean, np.zeros(len(mean)))
    else:
        with np.errstate(divide="ignore"):
            logs = np.log(edges)

        def partial(k: int) -> np.ndarray:
            c = ndtr((logs - mu - k * s * s) / s)
            return math.exp(k * mu + 0.5 * k * k * s * s) * np.diff(c)

        p, m1, m2 = partial(0), partial(1), partial(2)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_y = np.where(p > 0, m1 / p, edges[:-1])
            var = np.where(p > 0, np.maximum(m2 / p - mean_y**2, 0.0), 0.0)
        out = (mean_y + dist.shift, var)
    for a in out:
        a.setflags(write=False)
    return out
