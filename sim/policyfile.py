"""Policies from scenario mappings and policy files.

A policy file is the ``policy:`` mapping of a scenario as its own YAML document, e.g.
``flagger: {analysis: {...}}``. Several ``--policy`` paths combine into one policy, as
``kubectl apply -f a -f b`` does; for now a policy is a single pdsim policy file.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from sim.errors import InputError
from sim.policies.base import Policy
from sim.policies.flagger import FlaggerCanary
from sim.scenario import PolicySpec, Scenario, validation_to_input_error
from sim.yamlio import load_yaml


def build_policy(spec: PolicySpec, name: str) -> Policy:
    """The policy object a validated spec describes."""
    if spec.flagger is not None:
        return FlaggerCanary(spec.flagger, name=name)
    raise ValueError("unsupported policy spec")  # PolicySpec validation prevents this


def load_policy(paths: list[str | os.PathLike[str]]) -> Policy:
    """Load a policy from policy files (``--policy PATH``).

    Raises:
        InputError: naming file, line and field of the first problem.
    """
    if len(paths) != 1:
        raise InputError(str(paths[1]), 1, None, "combining several policy files is not supported yet")
    path = Path(paths[0])
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        if len(files) != 1:
            raise InputError(str(path), 1, None, "a policy directory must hold exactly one .yaml file for now")
        path = files[0]
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InputError(doc.file, 1, None, "a policy file must be a mapping such as `flagger: {analysis: ...}`",
                         got=type(doc.data).__name__)
    try:
        spec = PolicySpec.model_validate(doc.data)
    except ValidationError as err:
        raise validation_to_input_error(err, doc) from None
    return build_policy(spec, name=path.stem)


def scenario_policy(scenario: Scenario, source: str | os.PathLike[str] | None = None) -> Policy:
    """The policy a scenario file carries.

    Args:
        scenario: the scenario.
        source: the scenario's file, for the error message.

    Raises:
        InputError: when the scenario has no ``policy:`` and none was given.
    """
    if scenario.policy is None:
        raise InputError(str(source) if source is not None else scenario.name, 1, "policy",
                         "the scenario has no policy; pass --policy PATH")
    return build_policy(scenario.policy, name=f"{scenario.name}/flagger-canary")
