"""Production noise: latent multipliers of the request rate, error probability and latency.

Real request and error counts are overdispersed, days differ, pods differ, new pods start
cold, bursts come and go. Each noise model of a scenario's ``noise:`` block
(``sim.inputs.scenario.Noise``) is a random multiplier of one quantity, with mean 1 so
that the scenario's baseline stays the average:

* ``requests`` (gamma–Poisson): the request rate times G, one G ~ Gamma(k, 1/k) per
  ``window`` (aligned to t = 0). A window's count is then negative binomial with
  variance/mean = 1 + μ_w/k, μ_w the expected count of a window at the scenario's mean
  rate: k is set so that this is ``dispersion``.
* ``errors``: the error probability times its own gamma multiplier per window, set the
  same way from the expected error count of a window (the dispersion of error counts
  given the request counts); ``shared``: one multiplier for both versions, else one each.
* ``run``: per run, a lognormal multiplier exp(σZ − σ²/2) of the rate, the error
  probability and the latency (a day's level), shared by both versions.
* ``pods``: per run and pod, lognormal multipliers of the error probability and latency.
  Requests spread evenly over a version's pods, so the version's error probability is
  the mean over its pods: a one-pod canary carries its pod's draw alone.
* ``processes``: an Ornstein–Uhlenbeck log multiplier X (stationary N(0, σ²),
  correlation exp(−Δt/τ)), as exp(X − σ²/2); ``shared`` or one path per version.
* ``cold_start``: the canary's pods, from when they are ready, have errors and latency
  times 1 + (factor − 1)·exp(−age/decay).
* ``load``: latency times (1 − u₀)/(1 − u), u the version's requests/s per pod over
  ``capacity`` (at most ``max_utilization``), u₀ the baseline's on the primary's pods.

Every multiplier is constant over steps of ``noise.step`` (default: the scrape interval),
evaluated at the step's middle; a dispersion window is a whole number of steps. Given
the multipliers, requests are Poisson as in the plain world, so the fast path's bulk draws
and the per-request mode agree in distribution. Both modes draw the multipliers of a run
from the same stream (``STREAMS["noise"]``), in the same order: for one seed, they follow
the same latent path. Error probabilities are capped at 1 after every multiplier.

``telemetry.noise: false`` gives expectations: the random multipliers are left out
(each has mean 1); cold start and load, which are not random, stay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.inputs.scenario import Scenario
from sim.seeds import STREAMS
from sim.world.draws import gamma_rows, normal_rows, stream_states


def _lognormal_mean_one(z: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(sigma * z - 0.5 * sigma * sigma)


def _ou_paths(z: np.ndarray, sigma: float, rho: float, last: np.ndarray | None) -> np.ndarray:
    """Stationary OU values on a grid from standard normals ``z`` (R, K), continuing from
    ``last`` (R,) (None: a path's start, x₀ = σ z₀): x_{k+1} = ρ x_k + σ √(1 − ρ²) z_{k+1},
    the exact transition over one step."""
    x = np.empty_like(z)
    innovation = sigma * math.sqrt(max(1.0 - rho * rho, 0.0))
    x[:, 0] = sigma * z[:, 0] if last is None else rho * last + innovation * z[:, 0]
    for k in range(1, z.shape[1]):
        x[:, k] = rho * x[:, k - 1] + innovation * z[:, k]
    return x


def _grown(a: np.ndarray, steps: int, most: int) -> np.ndarray:
    """``a`` with room for at least ``steps`` steps on its last axis (doubled, at most ``most``)."""
    if a.shape[-1] >= steps:
        return a
    out = np.empty(a.shape[:-1] + (min(max(steps, 2 * a.shape[-1]), most),))
    out[..., : a.shape[-1]] = a
    return out


class NoiseModel:
    """A scenario's noise models: what is drawn, and the laws' constants.

    Args:
        scenario: the scenario (``noise``, the mean rate, the baseline error rate).
        pods: pods of (primary, canary).
        mean_rate: the scenario's mean request rate (requests/s) over the simulated time.
    """

    def __init__(self, scenario: Scenario, pods: tuple[int, int], mean_rate: float) -> None:
        n = scenario.noise
        self.step_s = scenario.noise_step_s
        self.pods = pods
        simulated = scenario.horizon + scenario.after_promotion
        #: Grid steps covering all simulated time (and a spare one at its end).
        self.n_steps = int(math.ceil(simulated / self.step_s)) + 1
        p = scenario.baseline.error_rate
        self._requests = self._gamma_shape(n.requests, mean_rate)
        self._errors = self._gamma_shape(n.errors, mean_rate * p)
        self._errors_shared = n.errors is not None and n.errors.shared
        run = n.run
        self._run = (run.rate, run.error_rate, run.latency) if run is not None else (0.0, 0.0, 0.0)
        self._pods = (n.pods.error_rate, n.pods.latency) if n.pods is not None else (0.0, 0.0)
        self._processes = [
            (q.of, q.sigma, math.exp(-self.step_s / q.tau), q.shared or q.of == "rate") for q in n.processes
        ]
        self.cold_start = n.cold_start
        self.load = n.load
        if n.load is not None:
            self._u0 = min(mean_rate / pods[0] / n.load.capacity, n.load.max_utilization)
        has_random = (
            self._requests is not None
            or self._errors is not None
            or any(self._run)
            or any(self._pods)
            or bool(self._processes)
        )
        #: Something random is drawn per run.
        self.draws = scenario.telemetry.noise and has_random
        cold = self.cold_start is not None and (
            self.cold_start.error_factor > 1.0 or self.cold_start.latency_factor > 1.0
        )
        #: Any multiplier at all (else the world is the plain Poisson one).
        self.active = self.draws or cold or self.load is not None
        #: Which quantities some multiplier touches.
        self.rate_varies = self.draws and (self._requests is not None or self._run[0] > 0 or self._has("rate"))
        self.latency_varies = (
            (self.draws and (self._run[2] > 0 or self._pods[1] > 0 or self._has("latency")))
            or (self.cold_start is not None and self.cold_start.latency_factor > 1.0)
            or self.load is not None
        )
        self._windows = {
            "requests": int(round(n.requests.window / self.step_s)) if n.requests is not None else 1,
            "errors": int(round(n.errors.window / self.step_s)) if n.errors is not None else 1,
        }

    def _has(self, of: str) -> bool:
        return any(q[0] == of for q in self._processes)

    @staticmethod
    def _gamma_shape(d: object, rate: float) -> float | None:
        """Gamma shape k with 1 + μ_w/k = dispersion (None: no overdispersion)."""
        if d is None or rate <= 0:
            return None
        index, window = d.dispersion, d.window  # type: ignore[attr-defined]
        if index <= 1.0:
            return None
        return rate * window / (index - 1.0)

    def draw(self, seeds: Sequence[int]) -> Latent:
        """The latent multipliers of a batch of runs (from each run's noise stream), drawn
        as the runs reach them (``Latent.ensure``)."""
        return Latent(self, seeds)

    def cold(self, factor: float, age_s: np.ndarray) -> np.ndarray:
        """A cold-start multiplier at pod ages ``age_s`` (inf: never started)."""
        assert self.cold_start is not None
        with np.errstate(over="ignore", invalid="ignore"):
            out = 1.0 + (factor - 1.0) * np.exp(-np.maximum(age_s, 0.0) / self.cold_start.decay)
        return np.where(np.isfinite(age_s), out, 1.0)

    def load_factor(self, rate_per_pod: np.ndarray) -> np.ndarray:
        """The latency multiplier of a version serving ``rate_per_pod`` requests/s per pod."""
        assert self.load is not None
        u = np.minimum(np.asarray(rate_per_pod) / self.load.capacity, self.load.max_utilization)
        return (1.0 - self._u0) / (1.0 - u)


@dataclass
class Factors:
    """The multipliers of a batch of runs over some segments.

    Attributes:
        rate: of the request rate (R, S), or None.
        error: of each version's error probability (R, S, 2), or None.
        latency: of each version's latency (R, S, 2), load excluded, or None.
    """

    rate: np.ndarray | None
    error: np.ndarray | None
    latency: np.ndarray | None


class Latent:
    """The latent multipliers of a batch of runs, and when each run's canary became ready.

    The paths are drawn chunk by chunk as the runs reach them (most rollouts end long
    before the horizon). A run's draws come from its own stream in a fixed order: its run
    effects and pods, then chunk after chunk of whole ``chunk_steps`` steps, each chunk's
    gamma blocks and process steps in the order of the scenario. So a run's path does not
    depend on its batch, nor on how far its batch-mates got.

    Attributes:
        rate: (R, K) per noise step, or None.
        error, latency: (R, 2, K) per version and step (primary, canary), or None.
        pod_error, pod_latency: (R, 2, P) per version and pod, or None.
        ready: when each run's canary pods became ready (inf: not yet), for cold start.
    """

    #: Steps drawn at a time (rounded up to a whole number of every dispersion window).
    CHUNK_STEPS = 64

    def __init__(self, model: NoiseModel, seeds: Sequence[int]) -> None:
        self.model = model
        R, K, P = len(seeds), model.n_steps, max(model.pods)
        self.rate: np.ndarray | None = None
        self.error: np.ndarray | None = None
        self.latency: np.ndarray | None = None
        self.pod_error: np.ndarray | None = None
        self.pod_latency: np.ndarray | None = None
        self.ready = np.full(R, np.inf)
        #: Steps drawn so far (every path is filled on [0, drawn)).
        self.drawn = K
        if not model.draws:
            return
        self._states = stream_states(list(seeds), STREAMS["noise"])
        self._rows = np.arange(R)
        z = normal_rows(self._states, self._rows, 3)
        self._run = [_lognormal_mean_one(z[:, i], s) for i, s in enumerate(model._run)]
        if any(model._pods):
            zp = normal_rows(self._states, self._rows, 4 * P).reshape(R, 2, 2, P)
            self.pod_error = _lognormal_mean_one(zp[:, 0], model._pods[0]) if model._pods[0] > 0 else None
            self.pod_latency = _lognormal_mean_one(zp[:, 1], model._pods[1]) if model._pods[1] > 0 else None
        # Grown as chunks are drawn (doubling): a long horizon costs only what runs reach.
        self.rate = np.empty((R, 0)) if model.rate_varies else None
        self.error = np.empty((R, 2, 0))
        self.latency = np.empty((R, 2, 0))
        windows = [model._windows["requests"], model._windows["errors"]]
        self.chunk = int(np.lcm.reduce(windows)) * -(-self.CHUNK_STEPS // int(np.lcm.reduce(windows)))
        #: Each process's last value (R, versions): where its next chunk starts from.
        self._ou: list[np.ndarray | None] = [None] * len(model._processes)
        self.drawn = 0

    def ensure(self, k: int) -> None:
        """Draw every path up to step ``k`` (included)."""
        while self.drawn <= min(k, self.model.n_steps - 1):
            self._draw_chunk()

    def _draw_chunk(self) -> None:
        model, st, rows = self.model, self._states, self._rows
        R = len(rows)
        a, b = self.drawn, min(self.drawn + self.chunk, model.n_steps)
        n = b - a
        rate = np.broadcast_to(self._run[0][:, None], (R, n)).copy()
        error = np.broadcast_to(self._run[1][:, None, None], (R, 2, n)).copy()
        latency = np.broadcast_to(self._run[2][:, None, None], (R, 2, n)).copy()
        full = self.chunk  # a whole chunk is drawn even where the horizon cuts it: same stream order
        if model._requests is not None:
            w = model._windows["requests"]
            g = gamma_rows(st, rows, model._requests, full // w) / model._requests
            rate *= np.repeat(g, w, axis=1)[:, :n]
        if model._errors is not None:
            w = model._windows["errors"]
            versions = 1 if model._errors_shared else 2
            g = gamma_rows(st, rows, model._errors, versions * (full // w)).reshape(R, versions, -1) / model._errors
            error *= np.repeat(g, w, axis=2)[:, :, :n]
        for i, (of, sigma, rho, shared) in enumerate(model._processes):
            versions = 1 if shared else 2
            z = normal_rows(st, rows, versions * full).reshape(R * versions, full)
            x = _ou_paths(z, sigma, rho, self._ou[i])
            self._ou[i] = x[:, -1]
            m = np.exp(x[:, :n] - 0.5 * sigma * sigma).reshape(R, versions, n)
            if of == "rate":
                rate *= m[:, 0]
            elif of == "error_rate":
                error *= m
            else:
                latency *= m
        self.rate = None if self.rate is None else _grown(self.rate, b, model.n_steps)
        assert self.error is not None and self.latency is not None
        self.error, self.latency = _grown(self.error, b, model.n_steps), _grown(self.latency, b, model.n_steps)
        if self.rate is not None:
            self.rate[:, a:b] = rate
        self.error[:, :, a:b] = error
        self.latency[:, :, a:b] = latency
        self.drawn = b

    def rate_at(self, run: int, k: int) -> float:
        """The rate multiplier of ``run`` at noise step ``k``."""
        assert self.rate is not None
        self.ensure(k)
        return float(self.rate[run, k])

    def canary_ready(self, run: int, t: float) -> None:
        """The canary's new pods of ``run`` serve from ``t`` (their age counts from it)."""
        self.ready[run] = t

    def steps(self, t: np.ndarray) -> np.ndarray:
        """Index of the noise step holding each time of ``t``."""
        k = np.floor(np.asarray(t, dtype=float) / self.model.step_s).astype(np.int64)
        return np.minimum(k, self.model.n_steps - 1)

    def at(self, runs: np.ndarray, mid: np.ndarray) -> Factors:
        """The multipliers of ``runs`` over segments with midpoints ``mid`` (S,): each
        segment lies within one noise step, evaluated at that step's middle."""
        model = self.model
        k = self.steps(mid)
        if len(k):
            self.ensure(int(k.max()))
        # Gathered at (run, step) pairs: (R, S) and (R, S, version), never a copy of whole paths.
        r, kk = runs[:, None], k[None, :]
        rate = self.rate[r, kk] if self.rate is not None else None
        error = self.error[r, :, kk] if self.error is not None else None
        latency = self.latency[r, :, kk] if self.latency is not None else None
        cold = model.cold_start
        if cold is not None and (cold.error_factor > 1.0 or cold.latency_factor > 1.0):
            age = (k[None, :] + 0.5) * model.step_s - self.ready[runs][:, None]  # (R, S)
            age = np.where(age >= 0, age, np.inf)  # not started yet: no traffic to be cold for
            ones = np.ones((len(runs), len(k), 2))
            if cold.error_factor > 1.0:
                error = ones.copy() if error is None else error.copy()
                error[..., 1] *= model.cold(cold.error_factor, age)
            if cold.latency_factor > 1.0:
                latency = ones.copy() if latency is None else latency.copy()
                latency[..., 1] *= model.cold(cold.latency_factor, age)
        return Factors(rate, error, latency)
