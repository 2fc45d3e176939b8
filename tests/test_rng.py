"""Seeds and random streams: a run's randomness is a function of its run seed only.

``run_seed(root, scenario_index, replicate)`` names a run; ``Streams(seed)`` gives it
independent generators by name. Nothing touches numpy's or Python's global RNG.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from sim.inputs.policy import scenario_policy
from sim.inputs.scenario import Scenario
from sim.runs.runner import run_batch
from sim.seeds import STREAMS, Streams, run_seed, streams

INT64_MAX = 2**63 - 1


def test_run_seed_is_deterministic():
    assert run_seed(42, 0, 7) == run_seed(42, 0, 7)
    assert isinstance(run_seed(42, 0, 7), int)


def test_run_seed_differs_across_replicates_scenarios_and_roots():
    seeds = {run_seed(root, s, k) for root in (0, 1, 42) for s in range(4) for k in range(50)}
    assert len(seeds) == 3 * 4 * 50
    # (scenario, replicate) is not a flat index: (0, 1) and (1, 0) differ.
    assert run_seed(42, 0, 1) != run_seed(42, 1, 0)


@pytest.mark.parametrize("root", [0, 1, 2**32 + 5, 2**62])
def test_run_seed_fits_in_int64(root):
    for k in range(200):
        s = run_seed(root, 3, k)
        assert 0 <= s <= INT64_MAX
    assert np.array([run_seed(root, 0, k) for k in range(10)], dtype=np.int64).dtype == np.int64


def test_run_seed_is_a_valid_streams_seed():
    s = run_seed(7, 0, 0)
    assert Streams(s)["traffic"].random() == Streams(s)["traffic"].random()


def test_same_seed_gives_identical_streams():
    a, b = streams(123), streams(123)
    for name in STREAMS:
        np.testing.assert_array_equal(a[name].random(5), b[name].random(5))


def test_streams_of_different_names_are_different():
    s = Streams(123)
    draws = {name: tuple(s[name].random(4)) for name in STREAMS}
    assert len(set(draws.values())) == len(STREAMS)


def test_different_seeds_give_different_streams():
    assert Streams(1)["traffic"].random() != Streams(2)["traffic"].random()


def test_a_stream_does_not_depend_on_which_others_were_used():
    a = Streams(99)
    a["telemetry"].random(1000)
    a["users"].poisson(3.0, 50)
    b = Streams(99)
    np.testing.assert_array_equal(a["traffic"].random(10), b["traffic"].random(10))


def test_a_stream_is_made_once_and_continues():
    s = Streams(5)
    first = s["faults"].random(3)
    second = s["faults"].random(3)
    np.testing.assert_array_equal(np.concatenate([first, second]), Streams(5)["faults"].random(6))


def test_unknown_stream_name_is_an_error():
    with pytest.raises(KeyError):
        Streams(5)["nope"]


def test_stream_indexes_are_fixed():
    """Adding a stream must not shift the others: the indexes are part of reproducibility."""
    assert STREAMS == {
        "traffic": 0,
        "faults": 1,
        "telemetry": 2,
        "users": 3,
        "exact": 4,
        "hooks": 5,
        "noise": 6,
        "business": 7,
    }


def test_no_global_rng_is_touched():
    sc = Scenario.model_validate(
        {
            "name": "global-rng",
            "horizon": "30m",
            "traffic": {"rate": 20, "users": 500, "cohorts": [{"name": "beta", "share": 0.2}]},
            "release": {"faults": [{"kind": "error_rate", "rate": 0.05, "cohort": "beta"}]},
            "telemetry": {"missing_scrapes": 0.1, "noise": True},
            "policy": {
                "flagger": {
                    "analysis": {
                        "interval": "1m",
                        "threshold": 2,
                        "maxWeight": 30,
                        "stepWeight": 10,
                        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}],
                    }
                }
            },
        }
    )
    np.random.seed(1234)
    random.seed(1234)
    np_before = np.random.get_state()
    py_before = random.getstate()
    records = run_batch(sc, scenario_policy(sc), 5, seed=3)
    assert len(records) == 5
    np_after = np.random.get_state()
    assert np_after[0] == np_before[0]
    np.testing.assert_array_equal(np_after[1], np_before[1])
    assert np_after[2:] == np_before[2:]
    assert random.getstate() == py_before


@pytest.mark.parametrize("root", [0, 1, 42, 2**32 - 1, 2**32, 2**40 + 7, 2**63 + 5, 2**100 + 3])
def test_run_seeds_are_numpys_seed_sequence_vectorised(root):
    """``sim.runs.seedseq.run_seeds`` (compiled, for whole batches) gives exactly
    ``run_seed``, i.e. numpy's ``SeedSequence(root, spawn_key=(world, k))``, across word
    boundaries of the root, the world and the replicate."""
    from sim.runs.seedseq import run_seeds

    reps = [0, 1, 2, 999, 2**31, 2**32 - 1, 2**32, 2**35 + 3, 10**12]
    for world in (0, 1, 7, 2**32 + 1):
        assert run_seeds(root, world, reps).tolist() == [run_seed(root, world, k) for k in reps]


def test_run_seeds_refuses_negative_keys():
    from sim.runs.seedseq import run_seeds

    with pytest.raises(ValueError):
        run_seeds(-1, 0, [0])
    with pytest.raises(ValueError):
        run_seeds(1, 0, [-3])
