"""Interactive triage: a reviewer walks the proposal queue one paper at a time.

The screen shows what a reviewer needs to decide without leaving the
terminal (title, authors, date, link, abstract, the suggested leaf and the
reasons for the proposal); one key press records the decision through
``review.record_decision``, so triage and ``evla review`` write the same log.

Resuming is a property of the data, not of a session file: decided papers
drop out of the queue, and papers this reviewer skipped (``triage_skips``)
go to the back, so the next session starts with the first paper the reviewer
has not seen.

All terminal input/output goes through a ``TriageIO`` so tests drive a
session with a string of key presses.
"""

from __future__ import annotations

import textwrap
import webbrowser
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import click
import sqlite_utils

from ..core.db import now_iso
from ..core.decisions import default_reviewer, effective_decisions, record_decision
from ..core.taxonomy import Taxonomy

KEYS = {
    "a": "accept",
    "r": "reject",
    "c": "change leaf",
    "s": "skip",
    "o": "open in browser",
    "q": "quit",
}
HELP_LINE = "  ".join(f"[{key}] {action}" for key, action in KEYS.items())


@dataclass
class TriageIO:
    """The terminal, as four functions (click's by default)."""

    getchar: Callable[[], str] = click.getchar
    echo: Callable[[str], None] = click.echo
    prompt: Callable[[str], str] = lambda text: click.prompt(text, default="", show_default=False)
    open_url: Callable[[str], object] = lambda url: webbrowser.open(url)


@dataclass
class TriageResult:
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    remaining: int = 0
    quit: bool = False


def queue(db: sqlite_utils.Database, proposals: list[dict], reviewer: str) -> list[dict]:
    """The proposals still to triage: undecided ones, unseen first, this reviewer's skips last
    (oldest skip first), each group in the proposal order."""
    decided = set(effective_decisions(db))
    skipped = {
        row["paper_id"]: row["skipped_at"]
        for row in db["triage_skips"].rows_where("reviewer = ?", [reviewer])
    }
    # cited works outside the db ("missing" stubs) cannot be decided on until harvested
    pending = [p for p in proposals if p["id"] not in decided and p.get("in_corpus", True)]
    unseen = [p for p in pending if p["id"] not in skipped]
    later = sorted((p for p in pending if p["id"] in skipped), key=lambda p: skipped[p["id"]])
    return unseen + later


def render(
    paper: dict,
    proposal: dict,
    leaf: str | None,
    names: dict[str, str],
    position: str,
    leaves: AbstractSet[str] = frozenset(),
) -> str:
    """The text shown for one paper."""
    authors = paper.get("authors") or "(no authors)"
    if len(authors) > 200:
        authors = authors[:197].rstrip() + "..."
    abstract = textwrap.fill(
        paper.get("abstract") or "(no abstract)",
        width=100,
        initial_indent="  ",
        subsequent_indent="  ",
    )
    score = proposal.get("score")
    lines = [
        "",
        f"{position}  {paper['id']}"
        + (f"  score {score:.3f}" if isinstance(score, (int, float)) else ""),
        paper.get("title") or "(untitled)",
        f"  {authors}",
        f"  {paper.get('published') or '?'} | https://arxiv.org/abs/{paper['id']}",
        "",
        abstract,
        "",
        f"Suggested leaf: {names.get(leaf, leaf) + f' ({leaf})' if leaf else '(none)'}",
    ]
    others = [c for c in proposal.get("categories") or [] if c["id"] != leaf and c["id"] in leaves][
        :2
    ]
    for category in others:
        lines.append(
            f"  also: {names.get(category['id'], category['id'])} ({category['id']}) "
            f"{category.get('score', 0):.2f}"
        )
    reasons = proposal.get("reasons") or []
    if reasons:
        lines.append("Why proposed:")
        lines.extend(f"  - {reason}" for reason in reasons)
    lines.append(HELP_LINE)
    return "\n".join(lines)


def _choose_leaf(taxonomy: Taxonomy, io: TriageIO, current: str | None) -> str | None:
    choices = [taxonomy.nodes[leaf] for leaf in taxonomy.leaves]
    for number, node in enumerate(choices, start=1):
        io.echo(f"  {number:2d}. {node['name']} ({node['id']})")
    answer = (io.prompt("Leaf number or id (empty keeps the current one)") or "").strip()
    if not answer:
        return current
    if answer.isdigit() and 1 <= int(answer) <= len(choices):
        return choices[int(answer) - 1]["id"]
    if answer in taxonomy:
        return answer
    io.echo(f"  no leaf {answer!r}; keeping {current}")
    return current


def run_triage(
    db: sqlite_utils.Database,
    proposals: list[dict],
    reviewer: str | None = None,
    io: TriageIO | None = None,
) -> TriageResult:
    """Walk the queue built from ``proposals`` (dicts with ``id``, ``categories``
    [{id, score}] best first, ``reasons``, ``score``), recording one decision per key press."""
    io = io or TriageIO()
    reviewer = reviewer or default_reviewer()
    taxonomy = Taxonomy.from_db(db)
    names = {node_id: node["name"] for node_id, node in taxonomy.nodes.items()}
    leaves = set(taxonomy.leaves)
    todo = queue(db, proposals, reviewer)
    result = TriageResult(remaining=len(todo))
    if not todo:
        io.echo("Nothing to triage: every proposal has a decision.")
        return result
    for index, proposal in enumerate(todo, start=1):
        paper = next(db["papers"].rows_where("id = ?", [proposal["id"]]), None)
        if paper is None:
            io.echo(f"{proposal['id']}: not in the database, skipped")
            continue
        leaf = taxonomy.suggested_leaf(proposal.get("categories") or [])
        io.echo(render(paper, proposal, leaf, names, f"[{index}/{len(todo)}]", leaves))
        while True:
            key = (io.getchar() or "").lower()
            if key == "a":
                if not leaf:
                    io.echo("  choose a leaf first: [c] change leaf")
                    continue
                record_decision(db, paper["id"], "accept", [leaf], reviewer=reviewer)
                result.accepted.append(paper["id"])
                io.echo(f"  accepted as {leaf}")
                break
            if key == "r":
                record_decision(db, paper["id"], "reject", reviewer=reviewer)
                result.rejected.append(paper["id"])
                io.echo("  rejected")
                break
            if key == "c":
                leaf = _choose_leaf(taxonomy, io, leaf)
                leaf_name = names.get(leaf, leaf) if leaf is not None else None
                io.echo(f"Suggested leaf: {leaf_name} ({leaf})  -- [a] accept with it")
                continue
            if key == "s":
                db.table("triage_skips").upsert(
                    {"paper_id": paper["id"], "reviewer": reviewer, "skipped_at": now_iso()},
                    pk=("paper_id", "reviewer"),
                )
                result.skipped.append(paper["id"])
                io.echo("  skipped (comes back after the unseen papers)")
                break
            if key == "o":
                io.open_url(f"https://arxiv.org/abs/{paper['id']}")
                continue
            if key in ("q", "\x03", "\x04", ""):
                result.quit = True
                break
            io.echo(f"  keys: {HELP_LINE}")
        if result.quit:
            break
    result.remaining = (
        len(todo) - len(result.accepted) - len(result.rejected)
    )  # skipped ones stay queued
    return result
