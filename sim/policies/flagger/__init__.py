"""Flagger's Canary analysis, tick for tick (fluxcd/flagger ``pkg/controller/scheduler*.go``).

Parts:

* ``spec``: the ``analysis:`` block, exactly Flagger's ``spec.analysis`` (``FlaggerPolicySpec``);
* ``queries``: every provider's builtin queries and ``RenderQuery`` (the PromQL Flagger runs);
* ``plan``: what a spec implies before the first tick (strategy, metric queries, hooks);
* ``canary``: the state machine (``FlaggerCanary``, ``FlaggerState``).
"""

from sim.policies.flagger.canary import FlaggerCanary, FlaggerState
from sim.policies.flagger.spec import FlaggerPolicySpec

__all__ = ["FlaggerCanary", "FlaggerPolicySpec", "FlaggerState"]
