"""The demo report's overview figures: the bundled scenarios side by side, and three small
sweeps of the bundled Flagger canary (each a few thousand rollouts: seconds, not minutes).

* false rollbacks of ``good-release`` against ``threshold``, one curve per success-rate bound;
* the power curve: ``error-spike`` at several error rates, for two success-rate bounds;
* the trade-off frontier over interval × threshold × stepWeight on a release portfolio
  (``good-release``, ``error-spike``, ``latency-regression``);
* A/B experiments (issue 19): the bundled experiment of ``ab-conversion-aa`` and
  ``ab-conversion-lift`` under four decision rules, at no lift, +2% and +5%: the power curve
  (its height at 0 is the false-winner rate) and regret against time to decide.

A sweep whose scenario files are missing from the scenario directory is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from sim.report.html import FigureBlock, figure_block
from sim.report.plots import (
    blast_radius_figure,
    detection_cdf_figure,
    false_rollback_figure,
    frontier_figure,
    power_curve_figure,
)
from sim.report.tradeoffs import bool_column

__all__ = ["overview_blocks", "sweep_blocks"]


def overview_blocks(frame: pd.DataFrame) -> list[FigureBlock]:
    """Detection-time CDFs and blast radius of every bundled bad release, by scenario."""
    if frame.empty or not bool_column(frame, "release_bad").any():
        return []
    return [
        figure_block(
            detection_cdf_figure(frame, by="scenario", title="Time to detect, per bundled scenario"),
            title="How fast each scenario's bad release is rolled back",
            alt="Cumulative share of bad-release runs rolled back against minutes since fault onset, one "
            "curve per bundled scenario",
            caption="Each curve levels off at the scenario's detection rate (legend, with its 95% Wilson "
            "interval); a curve that stays low is a fault the policy misses. Shaded (up to four "
            "curves): the 95% DKW band around each.",
        ),
        figure_block(
            blast_radius_figure(frame, by="scenario", title="Blast radius per bad release, per scenario"),
            title="What each bad release costs before the decision",
            alt="Excess errors per bad-release run, box plots and means per bundled scenario",
            caption="Excess errors: failures beyond what the stable version would have served, including "
            "the after_promotion damage of a promoted bad release. Diamonds: means with 95% "
            "intervals; the axis turns logarithmic when the scenarios differ by orders of "
            "magnitude.",
        ),
    ]


def _load(directory: Path, name: str):  # -> Scenario | None
    from sim.inputs.scenario import load_scenario

    path = directory / f"{name}.yaml"
    return load_scenario(path) if path.is_file() else None


def sweep_blocks(directory: Path, runs: int, *, log: Callable[[str], None] | None = None) -> list[FigureBlock]:
    """Figures of three small sweeps of the bundled Flagger canary (see the module docstring).

    Args:
        directory: the scenario directory.
        runs: rollouts per (setting, scenario); the frontier uses half as many.
        log: called with one line per sweep (its size and time).
    """
    import time

    from sim.runs.variants import fault_variant, run_grid

    good, spike, latency = (_load(directory, n) for n in ("good-release", "error-spike", "latency-regression"))
    blocks = []
    if good is not None and good.policy is not None and good.policy.flagger is not None:
        start = time.perf_counter()
        frame = run_grid(
            [good], good.policy, {"success_rate_min": [99.0, 99.5, 99.8], "threshold": [1, 2, 3, 5]}, runs=runs
        )
        frame["success-rate bound (%)"] = frame["success_rate_min"]
        blocks.append(
            figure_block(
                false_rollback_figure(
                    frame,
                    x="threshold",
                    by="success-rate bound (%)",
                    x_label="threshold: failed checks before rollback (count)",
                    title="False rollbacks of a good release (good-release)",
                ),
                title="Noise alone: how often a good release is rolled back",
                alt="False-rollback rate of good-release against the failed-check threshold, one curve per "
                "success-rate bound",
                caption="A bound close to the baseline's own success rate (99.9%) fails checks on noise; a higher "
                "threshold forgives it. Error bars: 95% Wilson intervals.",
            )
        )
        if log is not None:
            log(f"sweep good-release: {len(frame)} runs ({time.perf_counter() - start:.1f}s)")
    fault = spike.release.faults[0] if spike is not None and spike.release.faults else None
    if (
        spike is not None
        and spike.policy is not None
        and spike.policy.flagger is not None
        and getattr(fault, "rate", None) is not None
    ):
        start = time.perf_counter()
        frames = []
        for rate in (0.002, 0.005, 0.01, 0.02, 0.05):
            frame = run_grid(
                [fault_variant(spike, rate=rate)], spike.policy, {"success_rate_min": [99.0, 99.5]}, runs=runs
            )
            frame["severity"] = rate * 100
            frames.append(frame)
        frame = pd.concat(frames, ignore_index=True)
        blocks.append(
            figure_block(
                power_curve_figure(
                    frame,
                    severity="severity",
                    severity_label="error rate of the release (%)",
                    title="Detection probability by error rate (error-spike)",
                ),
                title="Power: which faults the canary catches",
                alt="Share of error-spike runs rolled back against the release's error rate, for success-rate bounds "
                "of 99% and 99.5%",
                caption="The baseline fails 0.1% of requests. Error bars: 95% Wilson intervals.",
            )
        )
        if log is not None:
            log(f"sweep error-spike severities: {len(frame)} runs ({time.perf_counter() - start:.1f}s)")
    portfolio = [s for s in (good, spike, latency) if s is not None]
    if good is not None and len(portfolio) > 1 and good.policy is not None and good.policy.flagger is not None:
        start = time.perf_counter()
        frame = run_grid(
            portfolio,
            good.policy,
            {"interval": [30, 60], "threshold": [1, 3, 5], "stepWeight": [10, 20, 50]},
            runs=max(1, runs // 2),
        )
        blocks.append(
            figure_block(
                frontier_figure(
                    frame,
                    ["interval", "threshold", "stepWeight"],
                    title="Time to promote vs blast radius (interval s × threshold × stepWeight %)",
                ),
                title="Speed against harm: the settings worth choosing from",
                alt="Mean time to promote good-release against the mean blast radius of error-spike and "
                "latency-regression, one point per setting, the Pareto frontier highlighted",
                caption=f"Portfolio: {', '.join(s.name for s in portfolio)}. Each point is a setting of the bundled "
                "canary (interval in seconds, threshold in failed checks, stepWeight in percent); bars are 95% "
                "intervals. Frontier settings are the only ones worth choosing; which one depends on what a "
                "minute of delay costs against a failed request.",
            )
        )
        if log is not None:
            log(f"sweep frontier: {len(frame)} runs ({time.perf_counter() - start:.1f}s)")
    blocks += _experiment_blocks(directory, runs, log)
    return blocks


#: The decision rules the demo compares, each at alpha 0.05 (the fixed test planned for
#: 200,000 sessions per arm, reached on day 3 of the bundled experiment's traffic).
_RULES = {
    "sequential (mSPRT)": {"kind": "sequential", "alpha": 0.05},
    "group-sequential": {"kind": "group-sequential", "alpha": 0.05, "looks": 14},
    "fixed, planned": {"kind": "fixed", "alpha": 0.05, "sample_size": 200_000},
    "fixed, peeked daily": {"kind": "fixed", "alpha": 0.05, "sample_size": 200_000, "peek": True},
}


def _experiment_blocks(directory: Path, runs: int, log: Callable[[str], None] | None) -> list[FigureBlock]:
    """The A/B figures: each rule of ``_RULES`` on the bundled A/A experiment and on its
    +5% scenario at +2% and +5% (``runs`` each)."""
    import time

    from sim.policies.experiment import ExperimentPolicy
    from sim.policies.experiment.spec import ExperimentPolicySpec
    from sim.report.experiments import experiment_figures
    from sim.runs.runner import records_frame, run_batch

    aa, lift = _load(directory, "ab-conversion-aa"), _load(directory, "ab-conversion-lift")
    if aa is None or lift is None or lift.release.effects.conversion is None:
        return []
    if aa.policy is None or aa.policy.experiment is None:
        return []
    start = time.perf_counter()
    effects = lift.release.effects
    worlds = [aa] + [
        lift.model_copy(
            update={
                "release": lift.release.model_copy(
                    update={
                        "effects": effects.model_copy(
                            update={"conversion": effects.conversion.model_copy(update={"lift": x})}
                        )
                    }
                )
            }
        )
        for x in (0.02, 0.05)
    ]
    frames = []
    for label, test in _RULES.items():
        spec = aa.policy.experiment.model_copy(
            update={"test": ExperimentPolicySpec.model_validate({"test": test}).test}
        )
        policy = ExperimentPolicy(spec, name=label)
        for world in worlds:
            frames.append(records_frame(run_batch(world, policy, runs, world.seed)))
    frame = pd.concat(frames, ignore_index=True)
    if log is not None:
        log(f"sweep A/B rules: {len(frame)} runs ({time.perf_counter() - start:.1f}s)")
    return experiment_figures(frame, by="policy")
