"""The decision log: reviewers' accept / reject decisions about papers, and the one
rule for which decision is in force.

Decisions are an append-only log (the ``decisions`` table): every accept,
reject and undo is a new row with the reviewer and the time, so the history
of who decided what is never lost. The *effective* decision of a paper is
found by replaying its log: accept and reject push a decision, undo pops the
latest one; whatever is on top wins.

The survey table follows the effective decision. An accepted paper joins the
survey with its leaves (source ``review:<reviewer>``); when an undo or a reject
leaves a paper without an effective accept, its review-added survey row is
removed (a paper the seeds put in the survey gets its seed row back). The
classifier reads decisions as labels: accepts are positives with their
categories, rejects are negatives.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

import sqlite_utils

from .db import dumps, loads, now_iso
from .errors import BadInput
from .records import RecordError, split_arxiv_id
from .taxonomy import Taxonomy

DECISIONS = ("accept", "reject")
MAX_NOTE_CHARS = 20_000  # a reviewer's comment, not a document; longer notes are refused
REVIEW_SOURCE_PREFIX = "review:"


@dataclass
class Decision:
    """One row of the decision log, parsed."""

    id: int
    paper_id: str
    decision: str
    categories: list[str]
    note: str | None
    reviewer: str | None
    decided_at: str

    @classmethod
    def from_row(cls, row: dict) -> Decision:
        return cls(
            row["id"],
            row["paper_id"],
            row["decision"],
            loads(row["categories"], []),
            row["note"],
            row["reviewer"],
            row["decided_at"],
        )


def default_reviewer() -> str:
    """``$EVLA_REVIEWER``, else the login name: a decision always says who made it."""
    if os.environ.get("EVLA_REVIEWER"):
        return os.environ["EVLA_REVIEWER"]
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "reviewer"


def resolve_paper_id(db: sqlite_utils.Database, raw: str) -> str:
    """The stored id for what a reviewer typed (``2406.04339``, ``2406.04339v2``,
    ``arXiv:2406.04339``, an abs URL, or a ``noid:`` key). Unknown ids are a one-line error."""
    text = (raw or "").strip()
    if not text:
        raise BadInput("empty paper id")
    if db["papers"].count_where("id = ?", [text]):
        return text
    try:
        paper_id, _ = split_arxiv_id(text)
    except RecordError:
        paper_id = None
    if paper_id and db["papers"].count_where("id = ?", [paper_id]):
        return paper_id
    raise BadInput(f"unknown paper id: {text} (not in the database; harvest it first)")


def validate_categories(db: sqlite_utils.Database, categories) -> list[str]:
    """Taxonomy ids, de-duplicated in the order given; unknown ids are an error naming them."""
    wanted: list[str] = []
    for category in categories or []:
        category = category.strip()
        if category and category not in wanted:
            wanted.append(category)
    known = {row["id"] for row in db.query("select id from taxonomy")}
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise BadInput(
            f"unknown taxonomy node{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            f"(the ids are in seeds/taxonomy.toml)"
        )
    return wanted


def suggested_categories(db: sqlite_utils.Database, paper_id: str) -> list[str]:
    """The classifier's suggested leaf for a paper, when it has scored it."""
    if not db["scores"].exists():
        return []
    row = db.execute("select categories from scores where paper_id = ?", [paper_id]).fetchone()
    leaf = Taxonomy.from_db(db).suggested_leaf(loads(row[0], []) if row else [])
    return [leaf] if leaf else []


def decision_history(db: sqlite_utils.Database, paper_id: str) -> list[Decision]:
    """Every decision about a paper, oldest first."""
    return [
        Decision.from_row(row)
        for row in db["decisions"].rows_where("paper_id = ?", [paper_id], order_by="id")
    ]


def _replay(history: list[Decision]) -> list[Decision]:
    """The stack of decisions still in force after applying the undos."""
    stack: list[Decision] = []
    for decision in history:
        if decision.decision == "undo":
            if stack:
                stack.pop()
        else:
            stack.append(decision)
    return stack


def effective_decision(db: sqlite_utils.Database, paper_id: str) -> Decision | None:
    """The decision that currently holds for a paper (latest wins, undos removed)."""
    stack = _replay(decision_history(db, paper_id))
    return stack[-1] if stack else None


def effective_decisions(db: sqlite_utils.Database) -> dict[str, Decision]:
    """Effective decision per paper for every paper with a history (for export, triage,
    training)."""
    by_paper: dict[str, list[Decision]] = {}
    for row in db["decisions"].rows_where(order_by="id"):
        by_paper.setdefault(row["paper_id"], []).append(Decision.from_row(row))
    result = {}
    for paper_id, history in by_paper.items():
        stack = _replay(history)
        if stack:
            result[paper_id] = stack[-1]
    return result


def _seed_labels(db: sqlite_utils.Database, paper_id: str) -> tuple[list[str], str] | None:
    """The labels the seeds this database loaded give a paper, if they list it (to restore a seed
    row)."""
    row = db.execute(
        "select labels, label_source from seed_labels where paper_id = ?", [paper_id]
    ).fetchone()
    return (loads(row[0], []), row[1]) if row else None


def _sync_survey(db: sqlite_utils.Database, paper_id: str) -> str:
    """Make the survey row agree with the effective decision; returns what changed
    (``added``, ``updated``, ``removed``, ``restored`` or ``unchanged``)."""
    current = db.execute(
        "select labels, source from survey where paper_id = ?", [paper_id]
    ).fetchone()
    decision = effective_decision(db, paper_id)
    if decision and decision.decision == "accept":
        row = {
            "paper_id": paper_id,
            "labels": dumps(decision.categories),
            "source": f"{REVIEW_SOURCE_PREFIX}{decision.reviewer}",
            "added_at": decision.decided_at,
        }
        if current and (current[0], current[1]) == (row["labels"], row["source"]):
            return "unchanged"
        db.table("survey").upsert(row, pk="paper_id")
        return "updated" if current else "added"
    if current and current[1].startswith(REVIEW_SOURCE_PREFIX):
        db.table("survey").delete(paper_id)
        seed = _seed_labels(db, paper_id)
        if seed:
            labels, label_source = seed
            db.table("survey").insert(
                {
                    "paper_id": paper_id,
                    "labels": dumps(labels),
                    "source": f"seed:{label_source}",
                    "added_at": now_iso(),
                }
            )
            return "restored"
        return "removed"
    return "unchanged"


def clean_note(note: str | None) -> str | None:
    """A note as stored: NUL characters removed (SQLite tools and C strings stop at them, so
    the rest of the note would vanish from view), blank = None, at most ``MAX_NOTE_CHARS``."""
    note = (note or "").replace("\x00", "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise BadInput(f"note is {len(note):,} characters; the limit is {MAX_NOTE_CHARS:,}")
    return note or None


def record_decision(
    db: sqlite_utils.Database,
    paper_id: str,
    decision: str,
    categories=None,
    note: str | None = None,
    reviewer: str | None = None,
    unless_in_force: bool = False,
) -> dict:
    """Append an accept or reject and bring the survey in line.

    An accept without categories takes the classifier's best category; with
    neither it is an error (a survey paper needs a place in the taxonomy). A
    reject is stored without categories.
    ``unless_in_force``: when the decision in force already has the same decision,
    categories, note and reviewer, append nothing (a re-imported file changes nothing).
    Returns ``{"paper_id", "decision", "categories", "survey", "recorded"}`` where
    ``survey`` says what happened to the survey row and ``recorded`` is False when
    nothing was appended.
    """
    decision = (decision or "").strip().lower()
    if decision not in DECISIONS:
        raise BadInput(f"decision must be accept or reject, not {decision!r}")
    paper_id = resolve_paper_id(db, paper_id)
    categories = validate_categories(db, categories)
    if decision == "reject":
        categories = []  # a rejected paper has no place in the taxonomy, whoever sent one
    elif not categories:
        categories = suggested_categories(db, paper_id)
        if not categories:
            raise BadInput(
                f"{paper_id}: give at least one category to accept (no classifier suggestion yet)"
            )
    reviewer = reviewer or default_reviewer()
    note = clean_note(note)
    if unless_in_force:
        current = effective_decision(db, paper_id)
        if current and (current.decision, current.categories, current.note, current.reviewer) == (
            decision,
            categories,
            note,
            reviewer,
        ):
            return {
                "paper_id": paper_id,
                "decision": decision,
                "categories": categories,
                "survey": "unchanged",
                "recorded": False,
            }
    with db.conn:
        db.table("decisions").insert(
            {
                "paper_id": paper_id,
                "decision": decision,
                "categories": dumps(categories),
                "note": note,
                "reviewer": reviewer,
                "decided_at": now_iso(),
            }
        )
        survey = _sync_survey(db, paper_id)
    return {
        "paper_id": paper_id,
        "decision": decision,
        "categories": categories,
        "survey": survey,
        "recorded": True,
    }


def undo_decision(db: sqlite_utils.Database, paper_id: str, reviewer: str | None = None) -> dict:
    """Cancel the decision currently in force for a paper (the log keeps both rows).

    Returns ``{"paper_id", "undone", "now", "survey"}``: the decision undone,
    the one in force afterwards (or None) and what happened to the survey row.
    """
    paper_id = resolve_paper_id(db, paper_id)
    current = effective_decision(db, paper_id)
    if current is None:
        raise BadInput(f"{paper_id}: no decision to undo")
    with db.conn:
        db.table("decisions").insert(
            {
                "paper_id": paper_id,
                "decision": "undo",
                "categories": dumps([]),
                "note": f"undo of decision {current.id} ({current.decision})",
                "reviewer": reviewer or default_reviewer(),
                "decided_at": now_iso(),
            }
        )
        survey = _sync_survey(db, paper_id)
    after = effective_decision(db, paper_id)
    return {
        "paper_id": paper_id,
        "undone": current.decision,
        "now": after.decision if after else None,
        "survey": survey,
    }
