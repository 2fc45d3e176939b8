"""Policies from scenario mappings, policy files and real manifests.

A policy PATH (``--policy PATH``, or ``policy: {manifest: PATH}`` in a scenario;
docs/architecture.md section 6) is

* a pdsim policy file: the ``policy:`` mapping of a scenario as its own YAML document,
  e.g. ``flagger: {analysis: {...}}``, ``experiment: {split: 50, ...}`` (an A/B
  experiment, issue 19) or ``manifest: canary.yaml`` (relative to the file);
* a Kubernetes manifest file (one or more ``---`` documents, each with ``apiVersion`` and
  ``kind``): a Flagger ``Canary`` and/or its ``MetricTemplate`` objects, or an Argo
  ``Rollout`` and/or its ``AnalysisTemplate``/``ClusterAnalysisTemplate`` objects;
* a directory of such files (``*.yaml``, ``*.yml``, ``*.json``, not recursive, as
  ``kubectl apply -f DIR``).

Several paths combine into one policy, as ``kubectl apply -f a -f b`` does: one Canary
or Rollout (or one pdsim policy file) plus templates kept in other files. A policy from
manifests is named after the Canary's or Rollout's ``metadata.name``, one from a policy
file after the file's stem.

Fields a manifest or policy sets that change decisions in the real controller but are not
modelled come back as warnings, one line each (``FILE:LINE: FIELD: not modelled: why``);
``load_policy_with_warnings`` returns them, ``load_policy`` drops them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import InputError
from sim.importers.argo import rollout as argo_importer
from sim.importers.flagger import analysis_warnings, import_flagger, metric_templates
from sim.importers.manifests import is_manifest
from sim.inputs.scenario import PolicySpec, Scenario, load_scenario
from sim.inputs.validation import KINDS, looks_like, misplaced_hint, require_mapping, validation_to_input_error
from sim.policies.base import Policy
from sim.policies.flagger.canary import FlaggerCanary
from sim.yamlio import YamlDoc, load_yaml, load_yaml_all

#: File name endings read from a policy directory (``kubectl apply -f DIR`` reads these).
POLICY_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy read from files, before it becomes a policy object.

    Attributes:
        spec: the validated policy.
        name: the Canary's ``metadata.name``, or the policy file's stem.
        data: the pdsim policy mapping (``{"flagger": {...}}``): what a policy file for
            the same policy holds.
        warnings: fields that change decisions but are not modelled, one line each.
        sources: the files read, in order.
    """

    spec: PolicySpec
    name: str
    data: dict[str, Any]
    warnings: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def build(self) -> Policy:
        """The policy object (``build_policy``)."""
        return build_policy(self.spec, name=self.name)


def build_policy(spec: PolicySpec, name: str) -> Policy:
    """The policy object a validated spec describes."""
    if spec.flagger is not None:
        return FlaggerCanary(spec.flagger, name=name)
    # Each controller is imported when a policy of its kind is built: validating a Flagger
    # scenario loads no Argo reconciler (docs/architecture.md section 2, "Lazy imports").
    if spec.argo is not None:
        from sim.policies.argo.rollout import ArgoRollout

        return ArgoRollout(spec.argo, name=name)
    if spec.experiment is not None:
        from sim.policies.experiment.policy import ExperimentPolicy

        return ExperimentPolicy(spec.experiment, name=name)
    # `manifest:` names files: resolve it with scenario_policy(scenario, source) or read_policy.
    raise ValueError("a manifest policy must be read from its files first (scenario_policy, read_policy)")


def policy_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files a list of policy PATHs stands for: directories expand to their YAML files
    (sorted, not recursive); a file given twice is read once.

    Raises:
        InputError: for a directory without YAML files.
    """
    out: list[Path] = []
    seen: set[str] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in POLICY_SUFFIXES and p.is_file())
            if not files:
                raise InputError(
                    str(path),
                    1,
                    None,
                    f"the directory holds no policy or manifest files ({', '.join('*' + s for s in POLICY_SUFFIXES)})",
                )
        else:
            files = [path]
        for f in files:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def _split(files: Sequence[Path]) -> tuple[list[YamlDoc], list[YamlDoc]]:
    """(manifest documents, pdsim policy documents) of the files, in order."""
    manifests: list[YamlDoc] = []
    policies: list[YamlDoc] = []
    for f in files:
        docs = load_yaml_all(f, what="policy file")
        if any(is_manifest(d.data) for d in docs):
            manifests += docs  # a document that is not an object is reported by the importer
        elif len(docs) > 1:
            hint = misplaced_hint(docs[0].data, "policy")
            raise InputError(
                docs[1].file,
                docs[1].line_of(()),
                None,
                f"a pdsim policy file holds one YAML document; {hint}"
                if hint
                else "a pdsim policy file holds one YAML document; a multi-document manifest "
                "needs apiVersion and kind in each document",
            )
        else:
            policies.append(docs[0])
    return manifests, policies


def read_manifests(paths: Sequence[str | os.PathLike[str]]) -> list[YamlDoc]:
    """Every document of the manifest files at ``paths`` (directories expanded).

    Raises:
        InputError: when a file is a pdsim policy file rather than a manifest.
    """
    manifests, policies = _split(policy_files(paths))
    if policies:
        doc = policies[0]
        kind = looks_like(doc.data)
        raise InputError(
            doc.file,
            doc.line_of(()),
            None,
            f"not a Kubernetes manifest (no apiVersion and kind); this looks like {KINDS[kind or 'policy']}",
        )
    return manifests


def _from_manifests(docs: list[YamlDoc]) -> LoadedPolicy:
    if argo_importer.is_argo_bundle(docs):
        argo = argo_importer.import_argo(docs)
        return LoadedPolicy(
            PolicySpec(argo=argo.spec), argo.name, argo.policy, tuple(argo.warnings), tuple(argo.sources)
        )
    flagger = import_flagger(docs)
    return LoadedPolicy(
        PolicySpec(flagger=flagger.spec), flagger.name, flagger.policy, tuple(flagger.warnings), tuple(flagger.sources)
    )


def _manifest_refs(doc: YamlDoc) -> list[Path] | None:
    """The paths of ``manifest: PATH`` (or a list of paths) in a policy file, relative to
    the file; None when the file is not such a reference."""
    data = doc.data
    if not isinstance(data, Mapping) or set(data) != {"manifest"}:
        return None
    value = data["manifest"]
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise InputError(
            doc.file,
            doc.line_of(("manifest",)),
            "manifest",
            "must be a path (or a list of paths) to Kubernetes manifests",
            got=value,
        )
    base = Path(doc.file).parent
    return [base / v for v in values]


def _from_policy_file(doc: YamlDoc, manifests: list[YamlDoc]) -> LoadedPolicy:
    require_mapping(doc, "a policy file must be a mapping such as `flagger: {analysis: ...}`")
    refs = _manifest_refs(doc)
    if refs is not None:
        if manifests:
            raise InputError(
                manifests[0].file,
                1,
                None,
                f"cannot be combined with {doc.file}, which names its own manifests (manifest:)",
            )
        return _from_manifests(read_manifests(refs))
    data = doc.data
    templates: dict[str, Any] = {}
    if manifests and (isinstance(data.get("argo"), dict) or argo_importer.is_argo_bundle(manifests)):
        # A pdsim argo: policy plus AnalysisTemplates kept in manifests (a Rollout is refused).
        data = argo_importer.combine_policy_file(doc, data, manifests)
    elif manifests:
        # A pdsim policy plus MetricTemplates kept in manifests.
        templates = metric_templates(manifests)
        flagger = data.get("flagger")
        if isinstance(flagger, dict):
            own = flagger.get("metricTemplates")
            own = own if isinstance(own, dict) else {}
            for name in templates:
                if name in own:
                    raise InputError(
                        doc.file,
                        doc.line_of(("flagger", "metricTemplates", name)),
                        f"flagger.metricTemplates.{name}",
                        "also defined by a MetricTemplate manifest; keep one",
                    )
            data = {**data, "flagger": {**flagger, "metricTemplates": {**own, **templates}}}
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as err:
        raise validation_to_input_error(err, doc, hint=misplaced_hint(data, "policy")) from None
    warnings: list[str] = []
    raw = data.get("flagger", {}).get("analysis") if isinstance(data.get("flagger"), dict) else None
    if spec.flagger is not None and spec.flagger.analysis is not None and isinstance(raw, dict):
        warnings = analysis_warnings(doc, ("flagger", "analysis"), raw, spec.flagger.analysis, spec.flagger.provider)
    if spec.argo is not None:
        warnings = argo_importer.policy_file_warnings(doc, data, spec.argo, manifests)
    sources = (doc.file,) + tuple(dict.fromkeys(m.file for m in manifests))
    return LoadedPolicy(spec, Path(doc.file).stem, data, tuple(warnings), sources)


def read_policy(paths: Sequence[str | os.PathLike[str]]) -> LoadedPolicy:
    """Read a policy from PATHs (policy files, manifests, directories; they combine).

    Raises:
        InputError: naming file, line and field of the first problem.
    """
    if not paths:
        raise InputError("(no policy)", 1, None, "give at least one policy path")
    manifests, policies = _split(policy_files(paths))
    if len(policies) > 1:
        first, second = policies[0], policies[1]
        raise InputError(
            second.file,
            1,
            None,
            f"a second pdsim policy file (the first is {first.file}); "
            "only manifests combine, e.g. a Canary with its MetricTemplates",
        )
    if policies:
        return _from_policy_file(policies[0], manifests)
    return _from_manifests(manifests)


def load_policy_with_warnings(paths: Sequence[str | os.PathLike[str]]) -> tuple[Policy, list[str]]:
    """Load a policy (``--policy PATH...``) and the warnings about unmodelled fields.

    Raises:
        InputError: naming file, line and field of the first problem.
    """
    loaded = read_policy(paths)
    return loaded.build(), list(loaded.warnings)


def load_policy(paths: Sequence[str | os.PathLike[str]]) -> Policy:
    """Load a policy from policy files and/or manifests (``--policy PATH...``).

    Use ``load_policy_with_warnings`` to also get the warnings about unmodelled fields.

    Raises:
        InputError: naming file, line and field of the first problem.
    """
    return load_policy_with_warnings(paths)[0]


def _manifest_paths(scenario: Scenario, source: str | os.PathLike[str] | None) -> list[Path] | None:
    manifest = getattr(scenario.policy, "manifest", None) if scenario.policy is not None else None
    if manifest is None:
        return None
    base = Path(source).parent if source is not None else Path.cwd()
    values = manifest if isinstance(manifest, list) else [manifest]
    paths = [base / v for v in values]
    for p in paths:
        if not os.path.exists(p):  # False too for a name the system refuses (too long)
            file, line = str(source) if source is not None else scenario.name, 1
            if source is not None:
                try:
                    line = load_yaml(source).line_of(("policy", "manifest"))
                except InputError:
                    pass
            raise InputError(file, line, "policy.manifest", f"no such file or directory: {p}")
    return paths


def scenario_policy_with_warnings(
    scenario: Scenario, source: str | os.PathLike[str] | None = None
) -> tuple[Policy, list[str]]:
    """The policy a scenario file carries, and the warnings about unmodelled fields.

    ``policy: {manifest: PATH}`` is read relative to the scenario file's directory
    (``source``; the working directory when None) and named after the Canary.

    Raises:
        InputError: when the scenario has no ``policy:`` and none was given, or the
            manifest is bad.
    """
    if scenario.policy is None:
        raise InputError(
            str(source) if source is not None else scenario.name,
            1,
            "policy",
            "the scenario has no policy; pass --policy PATH",
        )
    paths = _manifest_paths(scenario, source)
    if paths is not None:
        loaded = _from_manifests(read_manifests(paths))
        return loaded.build(), list(loaded.warnings)
    policy = scenario.policy
    kind = (
        "flagger-canary"
        if policy.flagger is not None
        else "experiment"
        if policy.experiment is not None
        else "argo-rollout"
    )
    return build_policy(scenario.policy, name=f"{scenario.name}/{kind}"), []


def scenario_policy(scenario: Scenario, source: str | os.PathLike[str] | None = None) -> Policy:
    """The policy a scenario file carries (``source``: the scenario's file, for messages
    and to resolve ``policy: {manifest: PATH}``).

    Raises:
        InputError: when the scenario has no ``policy:`` and none was given.
    """
    return scenario_policy_with_warnings(scenario, source)[0]


def load_scenario_and_policy(
    scenario_path: str | os.PathLike[str], policy_paths: Sequence[str | os.PathLike[str]] = ()
) -> tuple[Scenario, Policy, list[str]]:
    """A scenario file and the policy it runs: the one at ``policy_paths`` when given
    (``--policy PATH...``), else the scenario's own ``policy:``.

    Returns:
        The scenario, the policy and the warnings about the policy's unmodelled fields.

    Raises:
        InputError: for a bad scenario (checked first) or policy, or a scenario without
            a policy when none is given.
    """
    scenario = load_scenario(scenario_path)
    if policy_paths:
        policy, warnings = load_policy_with_warnings(list(policy_paths))
    else:
        policy, warnings = scenario_policy_with_warnings(scenario, scenario_path)
    require_business(scenario, policy, scenario_path, own_policy=not policy_paths)
    return scenario, policy, warnings


def require_business(
    scenario: Scenario, policy: Policy, source: str | os.PathLike[str] | None = None, *, own_policy: bool = True
) -> None:
    """An A/B experiment (a policy that ``reads_business``) needs the scenario's
    ``business:`` block: without it there is nothing to decide on.

    Args:
        scenario: the scenario.
        policy: the policy it runs.
        source: the scenario's file (for the message).
        own_policy: the policy is the scenario's own ``policy:`` (the message then points
            at that line; else at the file's first line).

    Raises:
        InputError: naming the scenario file, a line and ``business``.
    """
    if not policy.tags.reads_business or scenario.business is not None:
        return
    file, line = str(source) if source is not None else scenario.name, 1
    if own_policy and source is not None and scenario.policy is not None:
        try:
            line = load_yaml(source).line_of(("policy",))
        except InputError:
            pass
    raise InputError(
        file,
        line,
        "business",
        f"policy {policy.name!r} is an A/B experiment: the scenario needs a business: block "
        "(e.g. business: {conversion: {rate: 0.03}})",
    )


__all__ = [
    "LoadedPolicy",
    "build_policy",
    "load_policy",
    "load_policy_with_warnings",
    "load_scenario_and_policy",
    "policy_files",
    "read_manifests",
    "read_policy",
    "require_business",
    "scenario_policy",
    "scenario_policy_with_warnings",
]
