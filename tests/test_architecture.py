"""The package's architecture, checked from the source.

The import graph of ``sim/`` is built with ``ast`` from every ``import`` and
``from ... import`` statement, wherever it stands: at module level, inside a function
(a lazy import is still a dependency) or under ``if TYPE_CHECKING:`` (a type-only cycle
is still a tangle). Relative imports are resolved against the importing module's
package, and ``from pkg import name`` is an edge to the module ``pkg.name`` when there
is one, else to ``pkg``. Nothing is imported or executed.

Each rule is one test, and each failure names the offenders:

* no import cycle between modules of ``sim/``;
* no private name (``_x``, not a dunder) imported from another module of ``sim/``:
  what siblings share is public inside their package;
* every subpackage's ``__init__.py`` has a docstring and an explicit ``__all__``;
* the top level of ``sim/`` holds at most 12 modules besides ``__init__`` and ``__main__``;
* policies are pure (nothing under ``sim/policies/`` imports simpy or ``sim.world``),
  and only ``sim/world/`` imports simpy;
* no comment or docstring points at DESIGN.md (the architecture is docs/architecture.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "sim"

#: How many modules sim/'s top level may hold besides __init__ and __main__: the public
#: face and the basics everything uses; every other concern has its folder.
MAX_TOP_LEVEL_MODULES = 12


@dataclass(frozen=True)
class Import:
    """One imported module or name, as a statement in ``importer`` writes it."""

    importer: str  # dotted name of the importing module
    line: int
    module: str  # absolute dotted name of the module the statement names
    name: str | None  # the name taken from it (``from module import name``); None for ``import module``


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _sources() -> dict[str, Path]:
    """Dotted module name -> its file, for every module of sim/."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports_of(module: str, path: Path) -> Iterator[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, node.lineno, alias.name, None)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                if node.level > 1:
                    anchor = anchor[: -(node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                yield Import(module, node.lineno, base, alias.name)


@cache
def _imports() -> tuple[Import, ...]:
    """Every import statement's names in sim/, in file and line order."""
    return tuple(imp for module, path in _sources().items() for imp in _imports_of(module, path))


def _target(imp: Import) -> str:
    """The module an import depends on: ``pkg.name`` when that is a module, else ``pkg``."""
    if imp.name is not None and f"{imp.module}.{imp.name}" in _sources():
        return f"{imp.module}.{imp.name}"
    return imp.module


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _where(imp: Import) -> str:
    return f"{_sources()[imp.importer].relative_to(REPO)}:{imp.line}"


@cache
def _graph() -> dict[str, dict[str, Import]]:
    """module -> {module it imports: the first statement that does}, within sim/."""
    graph: dict[str, dict[str, Import]] = {module: {} for module in _sources()}
    for imp in _imports():
        target = _target(imp)
        if target in graph and target != imp.importer:
            graph[imp.importer].setdefault(target, imp)
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(graph[succ])))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _one_cycle(graph: dict[str, dict[str, Import]], component: list[str]) -> list[Import]:
    """A shortest cycle through the component's first module, as the imports that close it."""
    start, members = component[0], set(component)
    previous: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ, imp in graph[node].items():
                if succ not in members or succ in previous:
                    continue
                previous[succ] = imp
                if succ == start:
                    path = [imp]
                    while path[0].importer != start:
                        path.insert(0, previous[path[0].importer])
                    return path
                following.append(succ)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles = []
    for component in _strongly_connected(graph):
        steps = " -> ".join(f"{imp.importer} ({_where(imp)})" for imp in _one_cycle(graph, component))
        cycles.append(f"  modules {', '.join(component)}\n    e.g. {steps} -> {component[0]}")
    assert not cycles, "import cycles between modules of sim/ (lazy imports count):\n" + "\n".join(cycles)


def test_no_private_names_imported_across_modules() -> None:
    offenders = [
        f"  {_where(imp)}: {imp.name} from {imp.module}"
        for imp in _imports()
        if _in(imp.module, "sim") and imp.name is not None and _is_private(imp.name)
    ]
    offenders += [
        f"  {_where(imp)}: import {imp.module}"
        for imp in _imports()
        if _in(imp.module, "sim") and any(_is_private(part) for part in imp.module.split("."))
    ]
    assert not offenders, (
        f"{len(offenders)} private names imported from another module of sim/ "
        "(what siblings share is public inside their package):\n" + "\n".join(offenders)
    )


def _bound_names(tree: ast.Module) -> set[str]:
    """Names the module binds (assignments, defs, classes, imports), anywhere: a loose check,
    enough to catch a name ``__all__`` promises and nothing defines."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _declared_all(tree: ast.Module) -> list[str] | None:
    """The literal list or tuple of strings assigned to ``__all__``, or None."""
    for node in tree.body:
        value = None
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "__all__":
            value = node.value
        if isinstance(value, ast.List | ast.Tuple):
            names = [e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(names) == len(value.elts):
                return names
    return None


def test_every_subpackage_has_a_docstring_and_an_explicit_all() -> None:
    problems = []
    for init in sorted(PACKAGE.rglob("*/__init__.py")):
        where = init.relative_to(REPO)
        tree = ast.parse(init.read_text(), filename=str(init))
        if not ast.get_docstring(tree):
            problems.append(f"  {where}: no docstring naming the subpackage's key parts")
        declared = _declared_all(tree)
        if declared is None:
            problems.append(f"  {where}: no explicit __all__ (a literal list or tuple of names)")
            continue
        lazy = any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
        submodules = {p.stem for p in init.parent.glob("*.py")}
        submodules |= {p.parent.name for p in init.parent.glob("*/__init__.py")}
        missing = set(declared) - _bound_names(tree) - submodules
        if missing and not lazy:
            problems.append(f"  {where}: __all__ names what the module does not define: {', '.join(sorted(missing))}")
    assert not problems, "subpackage __init__.py files:\n" + "\n".join(problems)


def test_top_level_holds_only_the_public_face_and_the_basics() -> None:
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, (
        f"sim/ holds {len(modules)} modules at its top level (at most {MAX_TOP_LEVEL_MODULES}; "
        f"concerns get folders): {', '.join(modules)}"
    )


def test_policies_are_pure_and_only_the_world_imports_simpy() -> None:
    offenders = [
        f"  {_where(imp)}: sim.policies imports {_target(imp)}"
        for imp in _imports()
        if _in(imp.importer, "sim.policies") and (_in(imp.module, "simpy") or _in(_target(imp), "sim.world"))
    ]
    offenders += [
        f"  {_where(imp)}: {imp.importer} imports simpy (only sim.world may)"
        for imp in _imports()
        if _in(imp.module, "simpy") and not _in(imp.importer, "sim.world") and not _in(imp.importer, "sim.policies")
    ]
    assert not offenders, "policies must stay pure and simpy stays in sim/world/:\n" + "\n".join(offenders)


def test_no_comment_points_at_design_md() -> None:
    mentions = [
        f"  {path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted(p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in (".py", ".j2", ".md"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "DESIGN.md" in line
    ]
    assert not mentions, (
        f"{len(mentions)} lines in sim/ point at DESIGN.md, which is not in the repository "
        "(the architecture is docs/architecture.md):\n" + "\n".join(mentions)
    )


def test_the_graph_sees_relative_lazy_and_type_only_imports(tmp_path: Path) -> None:
    source = tmp_path / "spec.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import plan\n"
        "from ..base import _private\n"
        "import sim.world.router as router\n"
        "if TYPE_CHECKING:\n"
        "    from .rollout import ArgoRollout\n"
        "def f():\n"
        "    from sim.world import controller\n"
    )
    found = {(imp.line, imp.module, imp.name) for imp in _imports_of("sim.policies.argo.spec", source)}
    assert found == {
        (1, "typing", "TYPE_CHECKING"),
        (2, "sim.policies.argo", "plan"),
        (3, "sim.policies.base", "_private"),
        (4, "sim.world.router", None),
        (6, "sim.policies.argo.rollout", "ArgoRollout"),
        (8, "sim.world", "controller"),
    }
    assert _target(Import("sim.policies.argo.spec", 8, "sim.world", "controller")) == "sim.world.controller"
    assert _target(Import("sim.policies.argo.spec", 2, "sim.policies.base", "Routes")) == "sim.policies.base"
