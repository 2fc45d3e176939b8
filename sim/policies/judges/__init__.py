"""Statistical judges: compare the canary with the baseline (issue 5). See ``base``.

``JudgeSpec`` is the ``judge:`` block of a policy (a union by ``kind``); ``make_judge``
builds the judge it describes. A strategy passes the builtin metrics it checks
(``signals``); the judge replaces the threshold checks of those it can judge, listed in
its ``signals`` attribute.

Kinds: ``sequential`` (Lindon–Malek count e-processes), ``msprt`` (Johari et al.),
``group-sequential`` (Lan–DeMets spending), ``sprt`` (Wald), ``naive`` (a peeking
fixed-horizon test, for comparison), ``bayes`` (Beta-Binomial, no error guarantee),
``kayenta`` (a replica of Kayenta's NetflixACAJudge).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated, Any

from pydantic import Field

from sim.policies.judges.base import Judge, JudgeData, Judgement, Verdict, VersionSeries
from sim.policies.judges.bayes import BayesJudge
from sim.policies.judges.classical import GroupSequentialJudge, NaiveJudge, SprtJudge
from sim.policies.judges.kayenta import KayentaJudge, KayentaSpec
from sim.policies.judges.msprt import MsprtJudge
from sim.policies.judges.sequential import SequentialJudge
from sim.policies.judges.spec import (
    ERRORS,
    LATENCY,
    BayesSpec,
    GroupSequentialSpec,
    MsprtSpec,
    NaiveSpec,
    SequentialSpec,
    SprtSpec,
)

JudgeSpec = Annotated[
    SequentialSpec | MsprtSpec | GroupSequentialSpec | SprtSpec | NaiveSpec | BayesSpec | KayentaSpec,
    Field(discriminator="kind"),
]

_BUILDERS: dict[str, Callable[[Any, frozenset[str]], Judge]] = {
    "sequential": SequentialJudge,
    "msprt": MsprtJudge,
    "group-sequential": GroupSequentialJudge,
    "sprt": SprtJudge,
    "naive": NaiveJudge,
    "bayes": BayesJudge,
    # Kayenta judges the metrics of its own canary config (a judge without ``signals``).
    "kayenta": lambda spec, signals: KayentaJudge(spec),
}


def make_judge(spec: Any, signals: Collection[str] = (ERRORS, LATENCY)) -> Judge:
    """The judge a ``judge:`` block describes.

    Args:
        spec: a validated judge spec (one of ``JudgeSpec``).
        signals: the builtin metrics the strategy checks; the judge takes over those it
            can judge (e.g. a policy without ``request-duration`` keeps the judge from
            reading latency histograms at all).
    """
    return _BUILDERS[spec.kind](spec, frozenset(signals))


def judged_signals(judge: Judge) -> frozenset[str]:
    """The builtin metrics whose threshold checks ``judge`` replaces."""
    return frozenset(judge.signals)


__all__ = ["Judge", "JudgeData", "JudgeSpec", "Judgement", "Verdict", "VersionSeries", "judged_signals", "make_judge"]
