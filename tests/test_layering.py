"""The import graph of evla_miner: no cycles, and no import from a lower layer up.

Every module is parsed with ``ast`` (not imported) and every import of an evla_miner
module counts: top level, inside functions (the lazy imports that keep start-up fast)
and under ``if TYPE_CHECKING``.

The layers, lowest first; a module may import its own subpackage and any lower layer,
never a higher one, and never a peer on the same layer:

0. ``evla_miner`` (the package ``__init__``: ``__version__`` only; imports nothing)
1. ``core``: what every stage shares (db, migrations, settings, records, runs, HTTP, ...)
2. ``ingest`` and ``scoring`` (peers): how papers get in; how they are scored
3. ``review``: proposals, triage, digest, exports
4. ``pipeline``: the weekly job and ``evla status``
5. ``web``: the triage page
6. ``commands``: the click commands
7. ``cli``: the click group
8. ``__main__``: ``python -m evla_miner``

A failure names the importing file and line, the module imported and both layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import evla_miner

PACKAGE = "evla_miner"
LAYERS: list[set[str]] = [
    {PACKAGE},
    {"core"},
    {"ingest", "scoring"},
    {"review"},
    {"pipeline"},
    {"web"},
    {"commands"},
    {"cli"},
    {"__main__"},
]
RANK = {room: rank for rank, rooms in enumerate(LAYERS) for room in rooms}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def room(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def import_edges(root: Path) -> list[tuple[str, str, str]]:
    """(importer, imported module, "file:line") for every import of a module of the
    package at ``root`` by another one (file names relative to the package's parent)."""
    modules = package_modules(root)
    edges = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # `from . import x` imports the module x; `from .db import f` the module db
                candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            where = f"{path.relative_to(root.parent)}:{node.lineno}"
            for candidate in candidates:
                if candidate in modules and candidate != name:
                    edges.append((name, candidate, where))
    return edges


def layering_violations(edges: list[tuple[str, str, str]]) -> list[str]:
    out = []
    for importer, imported, where in edges:
        a, b = room(importer), room(imported)
        if a == b:
            continue
        if a not in RANK or b not in RANK:
            out.append(f"{where}: {importer} imports {imported}: {a!r} or {b!r} has no layer")
        elif RANK[b] >= RANK[a]:
            kind = "a peer" if RANK[b] == RANK[a] else "a higher layer"
            out.append(
                f"{where}: {importer} imports {imported} "
                f"({a}, layer {RANK[a]}, imports {kind}: {b}, layer {RANK[b]})"
            )
    return out


def import_cycles(edges: list[tuple[str, str, str]]) -> list[str]:
    graph = nx.DiGraph()
    for importer, imported, where in edges:
        graph.add_edge(importer, imported, where=where)
    if nx.is_directed_acyclic_graph(graph):
        return []
    return [
        " -> ".join(
            f"{a} ({graph.edges[a, b]['where']})"
            for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True)
        )
        + f" -> {cycle[0]}"
        for cycle in nx.simple_cycles(graph)
    ]


ROOT = Path(evla_miner.__file__).parent
EDGES = import_edges(ROOT)


def test_every_room_has_a_layer():
    rooms = {room(name) for name in package_modules(ROOT)}
    assert rooms <= RANK.keys(), f"add to LAYERS in tests/test_layering.py: {rooms - RANK.keys()}"


def test_no_import_cycles():
    cycles = import_cycles(EDGES)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_upward_imports():
    violations = layering_violations(EDGES)
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_the_checks_find_what_they_look_for(tmp_path):
    """An upward import (at function level) and a cycle in a throwaway package are reported
    with the file, line and modules involved."""
    root = tmp_path / PACKAGE
    for sub in ("core", "scoring", "review"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "core" / "db.py").write_text("def f():\n    from ..review import queue\n")
    (root / "review" / "queue.py").write_text("from ..core import db\n")
    (root / "scoring" / "a.py").write_text("from . import b\n")
    (root / "scoring" / "b.py").write_text("import evla_miner.scoring.a\n")
    edges = import_edges(root)
    violations = layering_violations(edges)
    assert violations  # the package evla_miner.review and its module queue
    assert all(v.startswith("evla_miner/core/db.py:2: ") for v in violations)
    assert any("evla_miner.core.db imports evla_miner.review.queue" in v for v in violations)
    assert all("imports a higher layer: review, layer 3" in v for v in violations)
    cycles = import_cycles(edges)
    assert any("evla_miner.scoring.a" in c and "evla_miner.scoring.b" in c for c in cycles)
    assert any("evla_miner.core.db" in c and "evla_miner.review.queue" in c for c in cycles)
