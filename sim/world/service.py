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


@lru_cache(maxsize=4096)
def _bucket_probs(dist: LatencyDist, bounds_ms: tuple[float, ...]) -> np.ndarray:
    # Cached: a run asks for the same few distributions at every tick.
    c = np.concatenate([[0.0], dist.cdf(np.array(bounds_ms)), [1.0]])
    p = np.diff(c)
    p[p < 0] = 0.0
    p.setflags(write=False)
    return p
