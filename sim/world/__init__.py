"""The simulated environment: traffic, versions, faults, router, telemetry.

Parts:

* ``controller``: ``World``, a batch of rollouts of one policy ticked in lockstep, and
  ``run_rollouts``; it drives the policy by the rules of ``sim.policies.driver``;
* ``serving``: the ``Traffic`` protocol and its ``Ledger``, implemented by ``fast``
  (segments of requests drawn in bulk) and ``exact`` (every request a simpy event, the
  reference mode; the only module that imports simpy);
* ``traffic``: the arrival rate and the user population; ``users``: distinct users
  counted from request counts;
* ``faults``: the release's fault models; ``router``: where each request goes;
  ``telemetry``: scraped counters and the queries on them; ``promql``: the simulated
  signal behind a well-known PromQL query; ``exporters``: which series each provider's
  exporter publishes, with which labels;
* ``service``: a version's error probability and latency distribution; ``draws``:
  per-run random streams, drawn for a whole batch in compiled calls.

The modules are listed, not imported: importing one must not pull in the others.
"""

__all__ = [
    "controller",
    "draws",
    "exact",
    "exporters",
    "fast",
    "faults",
    "promql",
    "router",
    "service",
    "serving",
    "telemetry",
    "traffic",
    "users",
]
