"""The walls of the code base, checked from its imports (every one: module level, inside
functions, and under ``if TYPE_CHECKING:``), so a change that breaks one fails here.

* no import cycles between the modules of envy/ and envy_io/;
* nothing under envy/render imports envy.agent (the render loop sees its host as RenderHost);
* envy/render imports no task type's feature (envy.usd, envy.houdini): the builder registers them;
* envy/ never imports envy_io (the shell stands on the agent's side, not the other way), but for
  the demo, an entry point above both.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("envy", "envy_io")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported_names(path: Path, module: str) -> set[str]:
    """Every module named by an import anywhere in the file (ast.walk sees function bodies and
    TYPE_CHECKING blocks alike)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_names(path, name):
            # "from envy.render import plans" names the module envy.render.plans;
            # "from envy.render.plans import Planners" names envy.render.plans.
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def imports_of(prefix: str, graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: t for m, t in graph.items() if m == prefix or m.startswith(prefix + ".")}


def offending(graph: dict[str, set[str]], importer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{m} imports {t}"
        for m, targets in imports_of(importer, graph).items()
        for t in targets
        if any(t == f or t.startswith(f + ".") for f in forbidden)
    )


def test_the_import_graph_is_read_from_every_kind_of_import(tmp_path: Path) -> None:
    # The checks below are only as good as the graph: it must hold the imports
    # made inside functions and under TYPE_CHECKING, not only those at the top.
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from envy.config import Config\n"
        "def f():\n    import envy.share.fs\n    from . import layout\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    tree_names = imported_names(probe, "envy.share.probe")
    assert {"envy.config.Config", "envy.share.fs", "envy.share.layout"} <= tree_names


def test_no_import_cycles_in_envy_or_envy_io() -> None:
    assert cycles(import_graph()) == []


def test_render_does_not_import_the_agent() -> None:
    assert offending(import_graph(), "envy.render", ("envy.agent",)) == []


def test_render_does_not_import_the_task_types_it_runs() -> None:
    assert offending(import_graph(), "envy.render", ("envy.usd", "envy.houdini")) == []


# Entry points standing above both halves may use envy_io; no other module of envy/ may:
# `envy demo` starts agents and shows the shell's live monitor, and the share copy's entry
# point (envy/app/entry.py) runs the agent or, for `envy.pyz io ...`, Envy IO.
ABOVE_BOTH = {"envy.demo", "envy.app.entry"}


def test_envy_does_not_import_the_shell() -> None:
    graph = {m: t for m, t in import_graph().items() if m not in ABOVE_BOTH}
    assert offending(graph, "envy", ("envy_io",)) == []


def test_only_entry_points_import_the_demo() -> None:
    importers = sorted(m for m, targets in import_graph().items() if ABOVE_BOTH & targets)
    assert importers == ["envy.cli"]
