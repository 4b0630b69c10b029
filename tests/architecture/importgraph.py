"""The project's module import graph, read from the source with `ast` (nothing is imported).

Every `import` statement counts: at module level, inside a function (a local import still
runs, it only runs later, so a local import that closes a loop is a cycle all the same) and
under `if TYPE_CHECKING:` (kept apart: it never runs, so it makes no cycle, but it is still a
dependency and the layer rules apply to it). Importing `a.b.c` runs `a/__init__.py` and
`a/b/__init__.py` first: those are edges of the graph too (`implicit`), used for cycles
only, since no one chose to depend on a package's `__init__`.

Dotted paths in strings (`events.REACTIONS`, `include("leads.urls")`, `INSTALLED_APPS`) are
not imports: naming a task by its path is how an app reacts to another without importing it.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TOP = "top"  # module level
LOCAL = "local"  # inside a function or method body
TYPING = "typing"  # under `if TYPE_CHECKING:`


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. "leads.services"
    target: str  # imported project module, e.g. "scoring.services"
    kind: str  # TOP, LOCAL or TYPING
    path: str  # source file, relative to the root
    line: int
    implicit: bool = False  # a parent package's __init__, run by importing its submodule

    def where(self) -> str:
        how = "" if self.kind == TOP else f" {self.kind}"
        return f"{self.path}:{self.line}{how}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(root: Path, packages: Iterable[str], exclude: Iterable[str] = ()) -> dict[str, Path]:
    """module name -> file, for every .py file under the given top-level packages, leaving
    out any path with a part in `exclude` (e.g. "migrations")."""
    skip = set(exclude)
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if skip.intersection(path.relative_to(root).parts):
                continue
            modules[module_name(path, root)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.Module):
    """(import node, kind) for every import statement of a module."""

    def walk(node: ast.AST, kind: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, kind
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk_one(stmt, TYPING)
                for stmt in child.orelse:
                    yield from walk_one(stmt, kind)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, TYPING if kind == TYPING else LOCAL)
            else:
                yield from walk(child, kind)

    def walk_one(stmt: ast.AST, kind: str):
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            yield stmt, kind
        else:
            yield from walk(stmt, kind)

    yield from walk(tree, TOP)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_of(module: str, path: Path, modules: dict[str, Path], root: Path) -> list[Import]:
    """The project modules one module imports (third-party and stdlib ones are left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = str(path.relative_to(root))
    found: list[Import] = []

    def add(target: str, node: ast.stmt, kind: str) -> None:
        if target not in modules or target == module:
            return
        found.append(Import(module, target, kind, rel, node.lineno))
        for parent in _ancestors(target):
            if parent in modules and parent != module and not module.startswith(parent + "."):
                found.append(Import(module, parent, kind, rel, node.lineno, implicit=True))

    for node, kind in _statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, kind)
            continue
        if node.level:
            base = _package_of(module, path).split(".")
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        for alias in node.names:
            sub = f"{prefix}.{alias.name}"
            # `from a import b` imports the module a.b when there is one, else a name of a.
            add(sub if sub in modules else prefix, node, kind)
    return found


def build(root: Path, packages: Iterable[str], exclude: Iterable[str] = ()) -> list[Import]:
    modules = discover(root, packages, exclude)
    edges: list[Import] = []
    for module, path in modules.items():
        edges += imports_of(module, path, modules, root)
    return edges


# --- cycles ---------------------------------------------------------------------------


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        result.append(component)
    return result


def _shortest_path(graph: dict[str, set[str]], start: str, goal: str, within: set[str]) -> list[str]:
    previous = {start: start}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [node]
            while path[-1] != start:
                path.append(previous[path[-1]])
            return path[::-1]
        for child in sorted(graph.get(node, ())):
            if child in within and child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"no path {start} -> {goal}")


def cycles(edges: Iterable[Import]) -> list[list[Import]]:
    """Import cycles among runtime imports (TYPE_CHECKING ones left out): for every edge
    inside a loop, the shortest loop through it, each loop once, as its chain of imports."""
    by_pair: dict[tuple[str, str], Import] = {}
    for edge in edges:
        if edge.kind == TYPING:
            continue
        known = by_pair.get((edge.source, edge.target))
        # Name a loop by its most telling import: explicit before implicit, top before local.
        if known is None or (known.implicit, known.kind != TOP) > (edge.implicit, edge.kind != TOP):
            by_pair[(edge.source, edge.target)] = edge
    graph: dict[str, set[str]] = {}
    for source, target in by_pair:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    loops: dict[tuple[str, ...], list[Import]] = {}
    for component in _components(graph):
        for source, target in sorted(by_pair):
            if source in component and target in component:
                nodes = [source, *_shortest_path(graph, target, source, component)]
                ring = nodes[:-1]
                first = ring.index(min(ring))
                key = tuple(ring[first:] + ring[:first])
                if key not in loops:
                    ordered = [*key, key[0]]
                    loops[key] = [by_pair[(a, b)] for a, b in zip(ordered, ordered[1:], strict=False)]
    return [loops[key] for key in sorted(loops)]


def describe_cycle(chain: list[Import]) -> str:
    """`a (a.py:3) -> b (b.py:9 local) -> a`: each hop names the line that imports."""
    hops = [f"{edge.source} ({edge.where()}{', implicit' if edge.implicit else ''})" for edge in chain]
    return " -> ".join([*hops, chain[-1].target])


# --- layers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layers:
    """Who may import whom. `kernel` is the project package; `apps` the domain apps.

    - the kernel imports no app, except the modules in `kernel_may_import`; a module of
      `composition` (the URL configuration that composes the apps) may import the named
      modules of any app (e.g. its "api");
    - an app imports another app only through the modules named in `public` (a module
      `<app>.<public>` or anything below it, when it is a package) or the kernel.
    """

    kernel: str
    apps: frozenset[str]
    public: tuple[str, ...]
    kernel_may_import: frozenset[str] = frozenset()
    composition: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def top(self, module: str) -> str:
        return module.partition(".")[0]

    def is_public(self, module: str) -> bool:
        rest = module.partition(".")[2]
        return any(rest == name or rest.startswith(name + ".") for name in self.public)

    def violation(self, edge: Import) -> str | None:
        if edge.implicit:
            return None
        source, target = self.top(edge.source), self.top(edge.target)
        if source == target or target not in self.apps:
            return None
        if source == self.kernel:
            composes = self.composition.get(edge.source, ())
            if edge.target in self.kernel_may_import or edge.target.partition(".")[2] in composes:
                return None
            return f"the kernel imports the app module {edge.target}"
        if source in self.apps and not self.is_public(edge.target):
            return f"{source} imports {edge.target}, not {target}'s {' / '.join(self.public)}"
        return None


def violations(edges: Iterable[Import], layers: Layers) -> list[str]:
    found = []
    for edge in edges:
        problem = layers.violation(edge)
        if problem:
            found.append(f"{edge.where()}: {problem}")
    return sorted(set(found))
