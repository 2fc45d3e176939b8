"""The frozen-state copy device (``sim.policies.frozen``) over every class it copies.

The device builds instances without their ``__init__``; that is the same object only
for a frozen dataclass with no ``__post_init__``, no ``init=False`` field and no
``__slots__``. This test checks those preconditions, and that the device's copies are
what ``dataclasses.replace`` makes, for every class in ``STATE_CLASSES``; a second test
keeps that list complete.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path
from typing import Any

import pytest

from sim.policies import frozen
from sim.policies.argo import analysis_run as ar
from sim.policies.argo import experiment as argo_experiment
from sim.policies.argo.rollout import ArgoState, Run
from sim.policies.base import BusinessData, Observation, Readiness, Routes
from sim.policies.experiment.policy import ExperimentState
from sim.policies.flagger.canary import FlaggerState

_RESULT = ar.MetricResult("sr", phase=ar.RUNNING, count=2, successful=1, failed=1, measurements=())
_RUN = ar.AnalysisRunState("background", ar.RUNNING, 15.0, (_RESULT,))

#: Every class the device copies or builds, with an instance and a change of each field.
STATE_CLASSES: dict[type, tuple[Any, dict[str, Any]]] = {
    FlaggerState: (
        FlaggerState("Progressing", 20, 1, 2, "x", judge=(1, 2), judge_detail=(("p", 0.1),), next_at=243.0),
        {
            "phase": "Failed",
            "canary_weight": 0,
            "failed_checks": 2,
            "iterations": 0,
            "event": "y",
            "judge": None,
            "judge_detail": (),
            "next_at": None,
        },
    ),
    ArgoState: (
        ArgoState(step_index=2, weight=40, conditions=(("CanaryPauseStep", 10.0),), runs=(Run("background", _RUN),)),
        {
            "phase": "Paused",
            "step_index": 3,
            "weight": 60,
            "routed": 40,
            "started": True,
            "conditions": (),
            "controller_pause": True,
            "canary_pods": (1, 4),
            "runs": (),
            "switched": True,
            "full_scale": True,
            "event": "e",
            "judge": 1,
            "judge_detail": (("s", 1),),
            "experiment": argo_experiment.ExperimentState(1, 0.0),
            "progress_at": 30.0,
            "progress_key": (3, (1, 4)),
            "progress_available": 1,
            "header_route": "h",
            "mirror_route": "m",
            "mirror_percent": 50.0,
        },
    ),
    argo_experiment.ExperimentState: (
        argo_experiment.ExperimentState(1, 0.0, templates=("Progressing",), since=(0.0,)),
        {
            "step_index": 2,
            "created_at": 5.0,
            "phase": ar.RUNNING,
            "available_at": 5.0,
            "terminate": True,
            "templates": ("Running",),
            "since": (5.0,),
            "ready": True,
            "analyses": (ar.PENDING,),
            "created": (True,),
            "message": "m",
        },
    ),
    Run: (Run("background", _RUN), {"kind": "step:1", "state": ar.start_run("step:1", (), 0.0)}),
    ar.AnalysisRunState: (
        _RUN,
        {
            "name": "pre",
            "phase": ar.FAILED,
            "started_at": 1.0,
            "metrics": (),
            "terminate": True,
            "message": "m",
            "completed_at": 30.0,
        },
    ),
    ar.MetricResult: (
        _RESULT,
        {
            "name": "x",
            "phase": ar.FAILED,
            "count": 3,
            "successful": 2,
            "failed": 2,
            "inconclusive": 1,
            "error": 1,
            "consecutive_error": 1,
            "consecutive_success": 1,
            "measurements": (ar.Measurement(ar.SUCCESSFUL, 1.0, 0.0, 1.0),),
            "dry_run": True,
            "message": "m",
        },
    ),
    ar.Measurement: (
        ar.Measurement(ar.RUNNING, None, 10.0, None, resume_at=25.0),
        {
            "phase": ar.SUCCESSFUL,
            "value": 0.5,
            "started_at": 11.0,
            "finished_at": 12.0,
            "message": "m",
            "resume_at": None,
        },
    ),
    # Observation writes its instance dict in its own __init__ (the device, inlined).
    Observation: (
        Observation(60.0, 1),
        {
            "t": 120.0,
            "tick": 2,
            "metrics": {"sr": 1.0},
            "routes": Routes(10),
            "canary": Readiness(False, 5.0),
            "primary": Readiness(False, 1.0),
            "webhooks": {"gate": True},
            "webhook_latency": {"gate": 1.0},
            "versions": None,
            "webhook_attempt": lambda key, k, at: True,
            "business": BusinessData(sessions=(1.0, 2.0)),
        },
    ),
    ExperimentState: (
        ExperimentState(),
        {
            "phase": "Progressing",
            "canary_weight": 50,
            "looks": 3,
            "lift": 0.1,
            "lift_low": 0.05,
            "lift_high": 0.15,
            "winner": "candidate",
            "event": "look 3",
        },
    ),
}
#: Frozen dataclasses of the modules that use the device which it never copies nor builds.
NOT_COPIED = {ar.MetricSpec, ar.ProviderError, ar.ProviderPhase}


@pytest.mark.parametrize("cls", list(STATE_CLASSES), ids=lambda c: c.__name__)
def test_the_device_copies_as_dataclasses_replace_does(cls):
    obj, changes = STATE_CLASSES[cls]
    before = frozen.field_values(obj)
    fields = dataclasses.fields(cls)
    # The preconditions.
    assert cls.__dataclass_params__.frozen
    assert not hasattr(cls, "__post_init__")
    assert all(f.init for f in fields)
    assert "__slots__" not in cls.__dict__
    assert changes.keys() == {f.name for f in fields}, "change every field"
    assert list(frozen.field_values(obj)) == [f.name for f in fields], "the instance dict is in field order"
    for name, value in [*changes.items(), (None, None)]:
        change = {} if name is None else {name: value}
        copy, twin = frozen.replace(obj, **change), dataclasses.replace(obj, **change)
        assert type(copy) is cls and copy == twin and repr(copy) == repr(twin)
        assert frozen.field_values(copy) == frozen.field_values(twin)
        if cls.__hash__ is not None and cls is not Observation:  # Observation holds dicts
            assert hash(copy) == hash(twin)
        with pytest.raises(dataclasses.FrozenInstanceError):
            copy.__setattr__(fields[0].name, None)
    built = frozen.build(cls, dict(changes))
    assert built == cls(**changes) and frozen.field_values(built) == changes
    assert frozen.replace(obj, **changes) == built
    assert frozen.field_values(obj) == before, "the original is unchanged"


def test_the_list_holds_every_frozen_dataclass_of_the_modules_that_use_the_device():
    root = Path(frozen.__file__).resolve().parents[2]
    users = []
    for path in (root / "sim").rglob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.ImportFrom) and n.module == "sim.policies.frozen" for n in ast.walk(tree)):
            users.append(".".join(path.relative_to(root).with_suffix("").parts))
    assert users, "no module uses the device"
    found = set()
    for name in users + ["sim.policies.base"]:  # base: Observation inlines it
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == name
                and dataclasses.is_dataclass(value)
                and value.__dataclass_params__.frozen  # type: ignore[attr-defined]
            ):
                found.add(value)
    assert set(STATE_CLASSES) <= found
    assert found - set(STATE_CLASSES) <= NOT_COPIED | _BASE_VALUES, sorted(c.__name__ for c in found)


#: base.py's frozen value classes (actions, routes, readiness): built by their __init__.
_BASE_VALUES = {
    v
    for v in vars(importlib.import_module("sim.policies.base")).values()
    if isinstance(v, type) and dataclasses.is_dataclass(v) and v is not Observation
}
