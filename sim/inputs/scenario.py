"""Scenario files: pydantic models and loading with file/line error messages.

The models describe data only; behaviour lives in ``sim.world``. Every model forbids
unknown keys, so a typo is an error that names the file, the line and the field
(docs/architecture.md section 7). An inline ``argo:`` policy is also checked key by key by
the Argo importer's checks (``sim.importers.argo.rollout.policy_file_warnings``), as a
manifest would be; the importers in turn need nothing from this module.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from sim.errors import NOT_GIVEN, InputError
from sim.importers.argo.rollout import policy_file_warnings
from sim.inputs.validation import validate_document
from sim.limits import (
    MAX_BURST_FACTOR,
    MAX_BURSTS,
    MAX_HORIZON_S,
    MAX_RATE_PER_S,
    MAX_REPLICAS,
    MAX_SCRAPES_PER_RUN,
    MAX_USERS,
    MIN_INTERVAL_S,
)
from sim.models import Duration, RunCount, Seed, StrictModel, Text, at_least, at_most, field_error
from sim.policies.argo.spec import ArgoPolicySpec
from sim.policies.experiment.spec import ExperimentPolicySpec
from sim.policies.flagger.spec import FlaggerPolicySpec
from sim.units import format_duration, parse_latency_ms, parse_rate
from sim.yamlio import YamlDoc, load_yaml

#: How messages state the rate limit.
RATE_LIMIT = f"{MAX_RATE_PER_S:g} requests/s"
#: A request rate, requests/s: at most the largest rate the simulator counts exactly.
Rate = Annotated[float, BeforeValidator(parse_rate), at_most(MAX_RATE_PER_S, RATE_LIMIT)]
LatencyMs = Annotated[float, BeforeValidator(parse_latency_ms)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
#: A duration that sets how long a run is simulated (``horizon``, ``after_promotion``).
SimulatedTime = Annotated[Duration, at_most(MAX_HORIZON_S, f"{format_duration(MAX_HORIZON_S)} (366 days)")]
#: The shortest interval of anything that repeats in simulated time (scrapes, flapping).
Interval = Annotated[Duration, at_least(MIN_INTERVAL_S, format_duration(MIN_INTERVAL_S))]

#: Istio's default request-duration histogram buckets (ms); Flagger's builtin
#: ``request-duration`` query runs ``histogram_quantile(0.99, ...)`` over them.
ISTIO_BUCKETS_MS = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)


# --- traffic -------------------------------------------------------------------------


class Diurnal(StrictModel):
    """Sinusoidal day/night profile: ``mean * (1 + amplitude * sin(2π (t + phase) / period))``."""

    mean: Rate
    amplitude: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    period: Annotated[Duration, Field(gt=0)] = 86400.0
    phase: Duration = 0.0

    @property
    def peak(self) -> float:
        """The largest rate of the day: ``mean * (1 + amplitude)``."""
        return self.mean * (1.0 + self.amplitude)

    @model_validator(mode="after")
    def _peak_limit(self) -> Diurnal:
        if self.peak > MAX_RATE_PER_S:
            raise field_error(
                "Diurnal",
                ("mean",),
                f"the peak mean x (1 + amplitude) = {self.peak:.10g} requests/s is above the limit of {RATE_LIMIT}",
                self.mean,
            )
        return self


class Burst(StrictModel):
    """Multiply the rate by ``factor`` during ``[at, at + duration)``."""

    at: Duration
    duration: Annotated[Duration, Field(gt=0)]
    factor: Annotated[float, Field(gt=0), at_most(MAX_BURST_FACTOR, f"{MAX_BURST_FACTOR:g}")]


class RateStep(StrictModel):
    """From ``at`` on, the base rate is ``rate``."""

    at: Duration
    rate: Rate


def _scalar_rate(v: Any) -> Any:
    # `rate: 100/s` is shorthand for `rate: {constant: 100/s}`.
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        return {"constant": v}
    return v


class RateProfile(StrictModel):
    """An arrival-rate profile λ(t): one base shape, optionally with bursts on top."""

    constant: Rate | None = None
    diurnal: Diurnal | None = None
    steps: list[RateStep] | None = None
    bursts: Annotated[list[Burst], Field(max_length=MAX_BURSTS)] = []

    @model_validator(mode="after")
    def _one_base(self) -> RateProfile:
        given = [k for k in ("constant", "diurnal", "steps") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of constant, diurnal or steps")
        if self.steps is not None:
            if not self.steps or self.steps[0].at != 0:
                raise ValueError("steps must start at 0s")
            if any(b.at <= a.at for a, b in zip(self.steps, self.steps[1:])):
                raise ValueError("steps must be in increasing order of `at`")
        peak, burst = self.peak_rate()
        if peak > MAX_RATE_PER_S:
            raise field_error(
                "RateProfile",
                ("bursts", burst, "factor"),
                f"with the bursts overlapping here the rate peaks at {peak:.10g} requests/s "
                f"(the base rate's peak {self.base_peak:.10g} times their factors), above the limit of {RATE_LIMIT}",
                self.bursts[burst].factor,
            )
        return self

    @property
    def base_peak(self) -> float:
        """The largest rate of the base shape (constant, diurnal or steps), before bursts."""
        if self.constant is not None:
            return self.constant
        if self.diurnal is not None:
            return self.diurnal.peak
        return max(s.rate for s in self.steps or ())

    def peak_rate(self) -> tuple[float, int]:
        """The largest rate at any moment (the base's peak times the factors of the bursts
        overlapping then, an upper bound for steps and diurnal profiles) and the burst that
        starts at that moment (-1: none). The search stops at the first moment above
        ``MAX_RATE_PER_S``: a thousand stacked factors would overflow a float product."""
        # Bursts are [at, at + duration): at one instant ends come before starts.
        events = sorted(
            [(b.at, 1, i) for i, b in enumerate(self.bursts)]
            + [(b.at + b.duration, 0, i) for i, b in enumerate(self.bursts)]
        )
        base = self.base_peak
        factor, peak, burst = 1.0, base, -1
        for _, starts, i in events:
            if not starts:
                factor /= self.bursts[i].factor
                continue
            factor *= self.bursts[i].factor
            if base * factor > peak:
                peak, burst = base * factor, i
                if peak > MAX_RATE_PER_S:
                    break
        return peak, burst


class Cohort(StrictModel):
    """A share of users carrying a header or cookie (for A/B matching and cohort faults),
    or sending requests of another method or path (what Argo's ``setMirrorRoute.match``
    selects); the other users' requests are ``GET /``."""

    name: Text
    share: Probability
    header: str | None = None
    cookie: str | None = None
    method: Annotated[str, Field(pattern=r"^[A-Z]{1,20}$")] = "GET"
    path: Annotated[str, Field(pattern=r"^/[^\s]{0,500}$")] = "/"


class Traffic(StrictModel):
    """Arrivals and the user population.

    ``skew`` is the Zipf exponent of per-user activity (0: every user equally active).
    """

    rate: Annotated[RateProfile, BeforeValidator(_scalar_rate)]
    users: Annotated[int, Field(ge=1), at_most(MAX_USERS, f"{MAX_USERS:,} users")] = 10000
    skew: Annotated[float, Field(ge=0.0, le=3.0)] = 1.0
    cohorts: list[Cohort] = []

    @model_validator(mode="after")
    def _cohorts(self) -> Traffic:
        if sum(c.share for c in self.cohorts) > 1.0 + 1e-9:
            raise ValueError("cohort shares add up to more than 1")
        names = [c.name for c in self.cohorts]
        if len(set(names)) != len(names):
            raise ValueError("cohort names must be unique")
        return self


# --- versions and faults ---------------------------------------------------------------


class LatencyComponent(StrictModel):
    """One lognormal component of a latency mixture: its share of requests, median and p99."""

    weight: Annotated[float, Field(gt=0)]
    median: Annotated[LatencyMs, Field(gt=0)]
    p99: Annotated[LatencyMs, Field(gt=0)]

    @model_validator(mode="after")
    def _order(self) -> LatencyComponent:
        if self.p99 < self.median:
            raise ValueError(f"p99 ({self.p99:g}ms) is below the median ({self.median:g}ms)")
        return self


class LatencyHistogram(StrictModel):
    """An empirical latency law: requests per bucket ``(0, le[0]], (le[0], le[1]], ...``
    (counts, not cumulative), uniform within each bucket (as ``histogram_quantile``
    assumes). Nothing lies above the last bound."""

    le: Annotated[list[Annotated[LatencyMs, Field(gt=0)]], Field(min_length=1)]
    counts: Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)]

    @model_validator(mode="after")
    def _shape(self) -> LatencyHistogram:
        if any(b <= a for a, b in zip(self.le, self.le[1:])):
            raise ValueError("le must increase")
        if len(self.counts) != len(self.le):
            raise ValueError(f"counts has {len(self.counts)} entries; le has {len(self.le)}: give one count per bucket")
        if sum(self.counts) <= 0:
            raise ValueError("counts are all 0")
        return self


class Latency(StrictModel):
    """A latency law: lognormal (``median`` and ``p99``), a ``mixture`` of lognormals
    (e.g. a cache hit and a miss), or an empirical ``histogram``; exactly one form."""

    median: Annotated[LatencyMs, Field(gt=0)] | None = None
    p99: Annotated[LatencyMs, Field(gt=0)] | None = None
    mixture: Annotated[list[LatencyComponent], Field(min_length=1)] | None = None
    histogram: LatencyHistogram | None = None

    @model_validator(mode="after")
    def _order(self) -> Latency:
        lognormal = self.median is not None or self.p99 is not None
        if lognormal + (self.mixture is not None) + (self.histogram is not None) != 1:
            raise ValueError("give exactly one of median and p99 (lognormal), mixture or histogram")
        if lognormal:
            if self.median is None or self.p99 is None:
                raise ValueError("a lognormal latency needs both median and p99")
            if self.p99 < self.median:
                raise ValueError(f"p99 ({self.p99:g}ms) is below the median ({self.median:g}ms)")
        return self

    @property
    def lognormal(self) -> bool:
        return self.median is not None


class Baseline(StrictModel):
    """The stable version, served by the primary.

    ``latency`` is every request's law, or that of successful ones when ``error_latency``
    (failed requests' law: a timeout, a fast failure) is given.

    ``replicas`` is the pods each version runs (default: the policy's replicas, else 1):
    exporters publish a series per pod, and a new pod's series miss its first requests
    (``sim.world.series``).
    """

    error_rate: Probability = 0.001
    latency: Latency = Latency(median=40.0, p99=250.0)
    #: Latency of failed requests (timeouts, fast failures); None: the same law as ``latency``.
    error_latency: Latency | None = None
    replicas: Annotated[int, Field(ge=1), at_most(MAX_REPLICAS, f"{MAX_REPLICAS:,} pods")] | None = None


class Intermittent(StrictModel):
    """The fault is active for the first ``duty`` share of every ``period`` after onset."""

    period: Interval
    duty: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5


class FaultBase(StrictModel):
    """Fields every fault shares.

    Attributes:
        onset: seconds after the new revision is applied (delayed onset).
        duration: how long it lasts (None: until the end).
        cohort: only this cohort's requests are affected.
        target: ``canary`` (the release's own bug) or ``both`` (a common-mode
            incident, e.g. a dependency outage, that hits the primary too).
        intermittent: flapping on and off.
    """

    onset: Annotated[Duration, Field(ge=0)] = 0.0
    duration: Annotated[Duration, Field(gt=0)] | None = None
    cohort: str | None = None
    target: Literal["canary", "both"] = "canary"
    intermittent: Intermittent | None = None


class ErrorRateFault(FaultBase):
    """Error-rate step: absolute ``rate`` or ``factor`` times the baseline."""

    kind: Literal["error_rate"]
    rate: Probability | None = None
    factor: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _one(self) -> ErrorRateFault:
        if (self.rate is None) == (self.factor is None):
            raise ValueError("give exactly one of rate or factor")
        return self


class LatencyFault(FaultBase):
    """Latency regression: add ``shift``, multiply by ``factor``, or stretch the tail to ``p99``."""

    kind: Literal["latency"]
    shift: Annotated[LatencyMs, Field(ge=0)] | None = None
    factor: Annotated[float, Field(gt=0)] | None = None
    p99: Annotated[LatencyMs, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one(self) -> LatencyFault:
        if sum(x is not None for x in (self.shift, self.factor, self.p99)) != 1:
            raise ValueError("give exactly one of shift, factor or p99")
        return self


class LeakFault(FaultBase):
    """Gradual degradation: extra error probability grows by ``per_hour`` per hour of
    the canary's uptime (since onset), up to ``max``."""

    kind: Literal["leak"]
    per_hour: Annotated[float, Field(gt=0, le=100)]
    max: Probability = 1.0


class LoadFault(FaultBase):
    """Load-dependent failure: only when the canary's request rate exceeds ``capacity``.

    Above capacity, requests fail with probability ``rate`` or, when unset, with the
    shed share ``1 - capacity / load`` (the part of the load that does not fit).
    """

    kind: Literal["load"]
    capacity: Annotated[Rate, Field(gt=0)]
    rate: Probability | None = None


class NeverReadyFault(FaultBase):
    """Crash loop: the canary never becomes ready."""

    kind: Literal["never_ready"]


Fault = Annotated[
    Annotated[ErrorRateFault, Tag("error_rate")]
    | Annotated[LatencyFault, Tag("latency")]
    | Annotated[LeakFault, Tag("leak")]
    | Annotated[LoadFault, Tag("load")]
    | Annotated[NeverReadyFault, Tag("never_ready")],
    Discriminator("kind"),
]


class Unready(StrictModel):
    """A workload unavailable from ``at`` for ``duration`` (None: for good)."""

    workload: Literal["canary", "primary"]
    at: Annotated[Duration, Field(ge=0)]
    duration: Annotated[Duration, Field(gt=0)] | None = None


# --- business outcomes (issue 19) -------------------------------------------------------


class ConversionLaw(StrictModel):
    """Each session converts (places one order) with probability ``rate``."""

    rate: Annotated[float, Field(gt=0.0, lt=1.0)]


class OrderValueLaw(StrictModel):
    """An order's value: lognormal with this ``median`` (in the shop's currency) and
    ``sigma`` (the standard deviation of its logarithm): heavy-tailed, as order values are."""

    median: Annotated[float, Field(gt=0.0, le=1e9)]
    sigma: Annotated[float, Field(ge=0.0, le=3.0)]


class EngagementLaw(StrictModel):
    """Engagement events per session (clicks, items viewed): Poisson with this ``mean``, or
    gamma-Poisson with variance ``dispersion`` x mean when ``dispersion`` > 1."""

    mean: Annotated[float, Field(ge=0.0, le=1e6)]
    dispersion: Annotated[float, Field(ge=1.0, le=1e6)] = 1.0


class Business(StrictModel):
    """What users do besides sending requests (``sim.world.business``): each live request
    starts a new session with probability 1 / ``requests_per_session``, served by the
    version that served the request (all of a user's requests go to one version under an
    experiment's split); a session converts, an order has a value, a session has an
    engagement count. ``min_effect`` is the smallest relative lift of the decision metric
    that matters to the business: the ground truth of a run's ``correct``."""

    conversion: ConversionLaw = ConversionLaw(rate=0.03)
    order_value: OrderValueLaw = OrderValueLaw(median=40.0, sigma=1.1)
    engagement: EngagementLaw = EngagementLaw(mean=3.0)
    requests_per_session: Annotated[float, Field(ge=1.0, le=1e6)] = 1.0
    min_effect: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


class Novelty(StrictModel):
    """An extra relative lift at the start that fades: ``lift`` x 2^(-t / ``half_life``)."""

    lift: Annotated[float, Field(gt=-1.0, le=100.0)]
    half_life: Annotated[Duration, Field(gt=0)]


class Effect(StrictModel):
    """The candidate's relative change of one business metric: ``lift`` (0.05: +5%,
    -0.02: -2%), plus a ``novelty`` that fades, for everyone or only the users of
    ``cohort`` (a cohort of ``traffic.cohorts``)."""

    lift: Annotated[float, Field(gt=-1.0, le=100.0)] = 0.0
    novelty: Novelty | None = None
    cohort: str | None = None


class Effects(StrictModel):
    """``release.effects``: the candidate's effects on business metrics (none: an A/A test)."""

    conversion: Effect | None = None
    order_value: Effect | None = None
    engagement: Effect | None = None


class Release(StrictModel):
    """The candidate: the baseline plus its faults (none: a good release).

    ``startup`` is the time from the canary's scale-up to ready; ``primary_startup`` the
    primary's rolling update to the promoted spec (default: ``startup``); ``unready``
    scripts later outages of either workload; ``test_rps`` is synthetic test traffic
    sent to the new version from its scale-up on (smoke tests of a blue/green preview):
    it reaches the new version's metrics, never a user. ``bad`` overrides the ground truth derived
    from the faults (a release is bad when a fault targets the canary).
    """

    faults: list[Fault] = []
    startup: Annotated[Duration, Field(ge=0)] = 0.0
    primary_startup: Annotated[Duration, Field(ge=0)] | None = None
    test_rps: Annotated[Rate, Field(ge=0)] = 0.0
    unready: list[Unready] = []
    bad: bool | None = None
    effects: Effects = Effects()


class SeriesPoint(StrictModel):
    """From ``at`` on, the series reads ``value`` (null: no data)."""

    at: Duration
    value: float | None


class MetricBinding(StrictModel):
    """What a custom metric (MetricTemplate or inline query) measures in the simulation.

    ``success-rate``/``error-rate`` are percentages, ``latency-pNN`` milliseconds from
    the histogram (as ``histogram_quantile``), ``request-rate`` requests/s, of the
    ``version``'s live traffic over the query's window; ``constant`` is ``value``;
    ``series`` is piecewise constant. The result is multiplied by ``scale`` (e.g. 0.01
    for a query that returns a ratio rather than a percentage).
    """

    signal: Literal[
        "success-rate",
        "error-rate",
        "latency-p50",
        "latency-p90",
        "latency-p95",
        "latency-p99",
        "request-rate",
        "constant",
        "series",
    ]
    version: Literal["canary", "primary"] = "canary"
    scale: float = 1.0
    value: float | None = None
    series: list[SeriesPoint] = []

    @model_validator(mode="after")
    def _needs(self) -> MetricBinding:
        if self.signal == "constant" and self.value is None:
            raise ValueError("a constant signal needs a value")
        if self.signal == "series" and not self.series:
            raise ValueError("a series signal needs series points")
        return self


# --- production noise (sim.world.noise) ------------------------------------------------


class Dispersion(StrictModel):
    """Gamma–Poisson overdispersion: counts over each ``window`` (aligned to t = 0) have
    variance ``dispersion`` times their mean (1: Poisson)."""

    dispersion: Annotated[float, Field(ge=1.0)]
    window: Interval = 60.0


class ErrorDispersion(Dispersion):
    """Overdispersion of error counts given the request counts; ``shared``: both versions
    see the same shocks (a dependency's), else each its own."""

    shared: bool = False


class RunEffects(StrictModel):
    """Day-to-day variation: per run, a lognormal multiplier of mean 1 on each quantity,
    given by the standard deviation of its logarithm. Shared by both versions."""

    rate: Annotated[float, Field(ge=0.0, le=3.0)] = 0.0
    error_rate: Annotated[float, Field(ge=0.0, le=3.0)] = 0.0
    latency: Annotated[float, Field(ge=0.0, le=3.0)] = 0.0


class PodEffects(StrictModel):
    """Per pod, a lognormal multiplier of mean 1 (standard deviation of its logarithm),
    drawn per run: a one-pod canary is hit harder than a ten-pod primary."""

    error_rate: Annotated[float, Field(ge=0.0, le=3.0)] = 0.0
    latency: Annotated[float, Field(ge=0.0, le=3.0)] = 0.0


class Process(StrictModel):
    """A latent Ornstein–Uhlenbeck process within a run: the logarithm of a multiplier
    of ``of`` (stationary standard deviation ``sigma``, correlation time ``tau``), mean 1
    as a multiplier. ``shared``: both versions follow the same path (the request rate
    always is: it is the same traffic)."""

    of: Literal["rate", "error_rate", "latency"]
    sigma: Annotated[float, Field(gt=0.0, le=3.0)]
    tau: Annotated[Duration, Field(gt=0)]
    shared: bool = True


class ColdStart(StrictModel):
    """New pods (the canary's, from when they are ready) start with errors and latency
    elevated by a factor whose excess decays as ``exp(-age / decay)``."""

    error_factor: Annotated[float, Field(ge=1.0)] = 1.0
    latency_factor: Annotated[float, Field(ge=1.0)] = 1.0
    decay: Annotated[Duration, Field(gt=0)] = 60.0


class LoadLatency(StrictModel):
    """Latency tied to load: a version's latency is multiplied by ``(1 - u0) / (1 - u)``,
    ``u`` its request rate per pod over ``capacity`` (capped at ``max_utilization``),
    ``u0`` that of the whole baseline traffic on the primary's pods."""

    capacity: Annotated[Rate, Field(gt=0)]
    max_utilization: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95


class Noise(StrictModel):
    """Production-like noise on top of Poisson counts (``sim.world.noise`` states each
    law). Every latent quantity is constant over steps of ``step`` (default: the scrape
    interval), the same steps in the fast and per-request modes."""

    step: Interval | None = None
    requests: Dispersion | None = None
    errors: ErrorDispersion | None = None
    run: RunEffects | None = None
    pods: PodEffects | None = None
    processes: list[Process] = []
    cold_start: ColdStart | None = None
    load: LoadLatency | None = None


class Telemetry(StrictModel):
    """The metrics pipeline a Prometheus-backed controller reads.

    ``metrics`` binds custom metrics (by metric name or MetricTemplate name) to
    simulated signals: metrics of providers other than Prometheus, or scripted values.
    Prometheus queries are evaluated over the series of ``provider``'s exporter (default:
    the policy's provider; ``sim.world.exporters``). ``buckets_ms`` overrides the
    exporter's histogram buckets.
    """

    scrape_interval: Interval = 15.0
    lag: Annotated[Duration, Field(ge=0)] = 0.0
    missing_scrapes: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    noise: bool = True
    buckets_ms: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)] = list(ISTIO_BUCKETS_MS)
    metrics: dict[str, MetricBinding] = {}
    provider: str | None = None

    @model_validator(mode="after")
    def _buckets(self) -> Telemetry:
        if any(b <= a for a, b in zip(self.buckets_ms, self.buckets_ms[1:])):
            raise ValueError("buckets_ms must increase")
        return self


class WebhookScript(StrictModel):
    """Scripted outcomes of a webhook (keyed by hook name or type in ``webhooks:``).

    A call fails when ``outcome`` is fail, among the first ``fail_first`` calls, before
    ``fail_until``, from ``fail_from`` on, or with probability ``fail_probability``;
    otherwise it passes (2xx). For a ``rollback`` hook, passing signals a rollback.
    ``latency`` is how long a measurement of an Argo job or web provider takes before its
    outcome is known (the measurement is Running meanwhile).
    """

    outcome: Literal["pass", "fail"] = "pass"
    latency: Annotated[Duration, Field(ge=0)] = 0.0
    fail_first: Annotated[int, Field(ge=0)] = 0
    fail_until: Duration | None = None
    fail_from: Duration | None = None
    fail_probability: Probability = 0.0


def _script(v: Any) -> Any:
    return {"outcome": v} if isinstance(v, str) else v


class PolicySpec(StrictModel):
    """A policy: pdsim's own form (``flagger:`` or ``argo:``) or real manifests
    (``manifest:``, paths relative to the scenario file; resolved by
    ``sim.inputs.policy.scenario_policy``)."""

    flagger: FlaggerPolicySpec | None = None
    argo: ArgoPolicySpec | None = None
    experiment: ExperimentPolicySpec | None = None
    manifest: str | list[str] | None = None

    @model_validator(mode="after")
    def _one(self) -> PolicySpec:
        if sum(x is not None for x in (self.flagger, self.argo, self.experiment, self.manifest)) != 1:
            raise ValueError("give exactly one of flagger, argo, experiment or manifest")
        if self.manifest == [] or self.manifest == "":
            raise ValueError("manifest: give a path (or a list of paths) to Kubernetes manifests")
        return self


class Scenario(StrictModel):
    """One scenario file: the traffic, the release and its faults, telemetry and the policy
    (docs/architecture.md section 7)."""

    name: Text
    description: Text = ""
    horizon: Annotated[SimulatedTime, Field(gt=0)] = 7200.0
    after_promotion: Annotated[SimulatedTime, Field(ge=0)] = 1800.0
    traffic: Traffic
    baseline: Baseline = Baseline()
    release: Release = Release()
    telemetry: Telemetry = Telemetry()
    noise: Noise = Noise()
    business: Business | None = None
    webhooks: dict[str, Annotated[WebhookScript, BeforeValidator(_script)]] = {}
    policy: PolicySpec | None = None
    runs: RunCount = 100
    seed: Seed = 0

    @model_validator(mode="after")
    def _refs(self) -> Scenario:
        names = {c.name for c in self.traffic.cohorts}
        for i, f in enumerate(self.release.faults):
            if f.cohort is not None and f.cohort not in names:
                raise ValueError(f"release.faults[{i}].cohort {f.cohort!r} is not a cohort of traffic.cohorts")
        effects = self.release.effects
        for metric in ("conversion", "order_value", "engagement"):
            e = getattr(effects, metric)
            if e is None:
                continue
            if self.business is None:
                raise field_error(
                    "Scenario", ("release", "effects", metric), "release.effects needs a business: block", e.lift
                )
            if e.cohort is not None and e.cohort not in names:
                raise field_error(
                    "Scenario",
                    ("release", "effects", metric, "cohort"),
                    "is not a cohort of traffic.cohorts",
                    e.cohort,
                )
        if self.business is not None and effects.conversion is not None:
            e, rate = effects.conversion, self.business.conversion.rate
            peak = 1.0 + max(e.lift, e.lift + (e.novelty.lift if e.novelty is not None else 0.0))
            if rate * peak >= 1.0:
                raise field_error(
                    "Scenario",
                    ("release", "effects", "conversion", "lift"),
                    f"the candidate's conversion rate would reach {rate * peak:.4g} (must stay below 1)",
                    e.lift,
                )
        return self

    @model_validator(mode="after")
    def _bounded(self) -> Scenario:
        """What fields bound together: the rate with synthetic test traffic on top, and the
        number of scrapes and fault flaps in one run (each cuts the simulated time into one
        more segment; their count is the work of a run)."""
        peak, _ = self.traffic.rate.peak_rate()
        if self.release.test_rps and peak + self.release.test_rps > MAX_RATE_PER_S:
            raise field_error(
                "Scenario",
                ("release", "test_rps"),
                f"live traffic peaks at {peak:.10g} requests/s; with test_rps on top the new version gets "
                f"{peak + self.release.test_rps:.10g}, above the limit of {RATE_LIMIT}",
                self.release.test_rps,
            )
        scrapes = self.horizon / self.telemetry.scrape_interval
        if scrapes > MAX_SCRAPES_PER_RUN:
            raise field_error(
                "Scenario",
                ("telemetry", "scrape_interval"),
                f"horizon / scrape_interval is {scrapes:.3g} scrapes per run, above the limit of "
                f"{MAX_SCRAPES_PER_RUN:,}: scrape less often or shorten the horizon",
                format_duration(self.telemetry.scrape_interval),
            )
        simulated = self.horizon + self.after_promotion
        for i, f in enumerate(self.release.faults):
            if f.intermittent is not None and simulated / f.intermittent.period > MAX_SCRAPES_PER_RUN:
                raise field_error(
                    "Scenario",
                    ("release", "faults", i, "intermittent", "period"),
                    f"(horizon + after_promotion) / period is {simulated / f.intermittent.period:.3g} "
                    f"flaps per run, above the limit of {MAX_SCRAPES_PER_RUN:,}: flap slower or simulate less",
                    format_duration(f.intermittent.period),
                )
        return self

    @model_validator(mode="after")
    def _noise_grid(self) -> Scenario:
        """Dispersion windows are whole numbers of noise steps (a window's multiplier is
        then constant on each step), and a ``p99`` latency fault stretches a lognormal."""
        step = self.noise_step_s
        for key in ("requests", "errors"):
            d = getattr(self.noise, key)
            if d is not None and abs(d.window / step - round(d.window / step)) > 1e-9:
                raise field_error(
                    "Scenario",
                    ("noise", key, "window"),
                    f"must be a whole number of noise steps ({format_duration(step)})",
                    format_duration(d.window),
                )
        # The faults transform error_latency too (sim.world.faults.ReleaseModel.latency).
        laws = (self.baseline.latency, self.baseline.error_latency)
        if not all(law is None or law.lognormal for law in laws):
            for i, f in enumerate(self.release.faults):
                if isinstance(f, LatencyFault) and f.p99 is not None:
                    raise field_error(
                        "Scenario",
                        ("release", "faults", i, "p99"),
                        "a p99 latency fault stretches a lognormal tail: use shift or factor with a "
                        "mixture or histogram baseline latency or error_latency",
                        f.p99,
                    )
        return self

    @property
    def noise_step_s(self) -> float:
        """Seconds over which every latent noise quantity is constant."""
        return self.noise.step if self.noise.step is not None else self.telemetry.scrape_interval

    @property
    def release_bad(self) -> bool:
        """Ground truth: a fault that targets the candidate's own code makes it bad."""
        if self.release.bad is not None:
            return self.release.bad
        return any(f.target == "canary" and f.onset < self.horizon for f in self.release.faults)


# --- loading with line numbers -----------------------------------------------------------


def parse_scenario(doc: YamlDoc) -> Scenario:
    """Validate a loaded YAML document as a scenario.

    Raises:
        InputError: naming file, line and field of the first problem.
    """
    scenario = validate_document(
        doc, Scenario, "a scenario file must be a mapping of keys (name, traffic, ...)", expected="scenario"
    )
    if scenario.policy is not None and scenario.policy.argo is not None:
        _check_inline_argo(doc, scenario.policy.argo)
    return scenario


def _check_inline_argo(doc: YamlDoc, argo: ArgoPolicySpec) -> None:
    """Check an inline ``argo:`` policy key by key, as the importer checks manifests: the
    spec models accept Kubernetes-side keys, and a typo among them must still be an error
    (unknown keys are errors in scenario files)."""
    policy = doc.data["policy"]
    sub = YamlDoc(policy, doc.file, {k[1:]: v for k, v in doc.lines.items() if k[:1] == ("policy",)})
    try:
        policy_file_warnings(sub, policy, argo)
    except InputError as err:
        raise InputError(
            err.file,
            err.line,
            f"policy.{err.field}" if err.field else "policy",
            err.message,
            **({"got": err.got} if err.got is not NOT_GIVEN else {}),
        ) from None


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario file.

    Raises:
        InputError: one line naming the file, the line and the field.
    """
    return parse_scenario(load_yaml(path, what="scenario file"))
