"""The survey's taxonomy as a tree: the one module that knows how its nodes relate.

The nodes come from ``seeds/taxonomy.toml`` (``load_taxonomy``) and live in the
database's ``taxonomy`` table once ``evla init`` loaded them. Every stage asks a
``Taxonomy`` instead of walking parent links itself, so these rules hold everywhere:

* the **pillar** of a node is the root of its path: one of the three pillars, or an
  auxiliary root such as ``foundation`` (``is_pillar`` tells the two apart);
* the **labels** the classifier scores are the leaves, auxiliary leaves included;
  a paper labelled with an inner node counts for every leaf under it;
* the **suggested leaf** of a scored category list is its best-scored leaf, so the
  terminal, the web page and the digest always suggest the same one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

import sqlite_utils

from .errors import BadInput

TAXONOMY_FILE = "taxonomy.toml"
LEVELS = ("pillar", "category", "subcategory")


def load_taxonomy(path: Path) -> list[dict]:
    """Read and validate ``taxonomy.toml`` into ``taxonomy`` rows (in file order).

    ``level`` is derived from depth (pillar, category, subcategory) or the
    ``auxiliary`` flag; ``is_leaf`` marks nodes without children.
    """
    try:
        with open(path, "rb") as handle:
            nodes = tomllib.load(handle).get("node", [])
    except FileNotFoundError as exc:
        raise BadInput(f"taxonomy file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: invalid TOML: {exc}") from exc
    by_id: dict[str, dict] = {}
    for position, node in enumerate(nodes):
        node_id = node.get("id")
        if not node_id or not node.get("name"):
            raise BadInput(f"{path}: node {position + 1} needs an id and a name")
        if node_id in by_id:
            raise BadInput(f"{path}: duplicate node id {node_id!r}")
        by_id[node_id] = {
            "id": node_id,
            "name": node["name"],
            "description": node.get("description", ""),
            "parent": node.get("parent") or None,
            "auxiliary": bool(node.get("auxiliary")),
            "position": position,
        }
    rows = []
    for node in by_id.values():
        depth, parent = 0, node["parent"]
        while parent:
            if parent not in by_id:
                raise BadInput(f"{path}: {node['id']!r} has unknown parent {parent!r}")
            depth += 1
            if depth > len(by_id):
                raise BadInput(f"{path}: parent cycle at {node['id']!r}")
            parent = by_id[parent]["parent"]
        level = "auxiliary" if node["auxiliary"] else LEVELS[min(depth, len(LEVELS) - 1)]
        has_children = any(other["parent"] == node["id"] for other in by_id.values())
        rows.append(
            {
                "id": node["id"],
                "name": node["name"],
                "description": node["description"],
                "parent": node["parent"],
                "level": level,
                "is_leaf": int(not has_children),
                "position": node["position"],
            }
        )
    return rows


class Taxonomy:
    """Taxonomy rows (``id, name, parent, level, is_leaf``, optionally ``description``)
    arranged as a tree, in the survey's order."""

    def __init__(self, rows: Iterable[dict]):
        ordered = sorted(rows, key=lambda row: row.get("position", 0))
        self.nodes: dict[str, dict] = {row["id"]: row for row in ordered}
        self._children: dict[str | None, list[str]] = {}
        for row in ordered:
            self._children.setdefault(row["parent"], []).append(row["id"])

    @classmethod
    def from_db(cls, db: sqlite_utils.Database) -> Taxonomy:
        return cls(
            db["taxonomy"].rows_where(order_by="position") if db["taxonomy"].exists() else []
        )

    @classmethod
    def from_file(cls, path: Path) -> Taxonomy:
        return cls(load_taxonomy(path))

    @classmethod
    def of(cls, db: sqlite_utils.Database | None, seeds: Path) -> Taxonomy:
        """The database's taxonomy when it has one (what ``evla init`` loaded), else the seeds'
        file."""
        if db is not None and db["taxonomy"].exists() and db["taxonomy"].count:
            return cls.from_db(db)
        return cls.from_file(Path(seeds) / TAXONOMY_FILE)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def rows(self) -> list[dict]:
        return list(self.nodes.values())

    def name(self, node_id: str) -> str:
        """The node's name; an unknown id is shown as itself."""
        return self.nodes[node_id]["name"] if node_id in self.nodes else node_id

    def path(self, node_id: str | None) -> list[dict]:
        """Root-first ancestors of a node, the node included (empty for unknown ids)."""
        chain: list[dict] = []
        while node_id in self.nodes and all(node["id"] != node_id for node in chain):
            chain.append(self.nodes[node_id])
            node_id = self.nodes[node_id]["parent"]
        return list(reversed(chain))

    def label(self, node_id: str | None) -> str:
        """``Pillar › Category › Leaf``, for menus and breadcrumbs."""
        path = self.path(node_id)
        return " › ".join(node["name"] for node in path) if path else str(node_id)

    def depth(self, node_id: str) -> int:
        return max(len(self.path(node_id)) - 1, 0)

    def ancestors(self, node_id: str) -> set[str]:
        """The node and every node above it."""
        return {node["id"] for node in self.path(node_id)}

    def pillar(self, node_id: str | None) -> str | None:
        """The root of a node's path (a pillar or an auxiliary root); None for unknown ids."""
        path = self.path(node_id)
        return path[0]["id"] if path else None

    def is_pillar(self, node_id: str | None) -> bool:
        return node_id in self.nodes and self.nodes[node_id]["level"] == "pillar"

    @property
    def pillars(self) -> list[dict]:
        return [node for node in self.nodes.values() if node["level"] == "pillar"]

    @property
    def roots(self) -> list[dict]:
        """Top-level nodes: the pillars first, then auxiliary roots, each in taxonomy order."""
        roots = [self.nodes[i] for i in self._children.get(None, [])]
        return [n for n in roots if n["level"] != "auxiliary"] + [
            n for n in roots if n["level"] == "auxiliary"
        ]

    def children(self, node_id: str | None) -> list[dict]:
        return [self.nodes[i] for i in self._children.get(node_id, [])]

    def subtree(self, node_id: str) -> set[str]:
        """A node and all its descendants; an unknown node is an error."""
        if node_id not in self.nodes:
            raise BadInput(f"unknown taxonomy node: {node_id}")
        found, todo = set(), [node_id]
        while todo:
            current = todo.pop()
            found.add(current)
            todo.extend(self._children.get(current, []))
        return found

    @property
    def leaves(self) -> list[str]:
        """The labels the classifier scores: every leaf, auxiliary leaves included, in order."""
        return [node_id for node_id, node in self.nodes.items() if node["is_leaf"]]

    def leaves_under(self, node_id: str) -> list[str]:
        """The leaves a label stands for: itself when it is a leaf, else every leaf below it."""
        if node_id not in self.nodes:
            return []
        below = self.subtree(node_id)
        return [leaf for leaf in self.leaves if leaf in below]

    def leaf_groups(self) -> list[tuple[str, list[dict]]]:
        """Leaves grouped under their parent's path, in taxonomy order (for grouped menus)."""
        groups: dict[str, list[dict]] = {}
        for node_id in self.leaves:
            parent = self.nodes[node_id]["parent"]
            groups.setdefault(self.label(parent) if parent else "Other", []).append(
                self.nodes[node_id]
            )
        return list(groups.items())

    def suggested_leaf(self, categories: Iterable[dict]) -> str | None:
        """The best-scored leaf of a best-first ``[{"id", "score"}, ...]`` list, or None."""
        for category in categories or []:
            node_id = category.get("id")
            node = self.nodes.get(node_id) if node_id is not None else None
            if node and node["is_leaf"]:
                return node["id"]
        return None
