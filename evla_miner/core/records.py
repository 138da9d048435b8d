"""Paper records: turning arXiv metadata into ``papers`` rows, and the upsert rules.

Every source (the bulk snapshot, the live API, seed papers, references) ends up
here, so a paper is stored the same way whoever found it. The rules:

* the key is the versionless arXiv id; a record that names a version keeps it
  as ``version``;
* a record for a newer version replaces the metadata and the version history is
  the union of all versions seen; an older or equal version never overwrites
  newer metadata (it can only add missing versions to the history);
* ``first_seen`` never changes after the first insert.

``PAPER_SCHEMA`` is the one shape every source's paper dict must have before it is
stored; ``check_paper`` enforces it (``paper_from_snapshot`` calls it, the API
harvest too), so a field of the wrong type (a title that is a list, authors that are
a number) is a ``RecordError`` naming the field, never a Python repr in the table.
Snapshot fields are checked for their JSON type before they are cleaned, because
cleaning would turn any value into text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import sqlite_utils

from .db import dumps, loads, now_iso

NEW_STYLE_ID = re.compile(r"^(?P<id>\d{4}\.\d{4,5})(?:v(?P<version>[1-9]\d*))?$")
OLD_STYLE_ID = re.compile(
    r"^(?P<id>[a-z]+(?:-[a-z]{2,})?(?:\.[A-Za-z-]{2,})?/\d{7})(?:v(?P<version>[1-9]\d*))?$"
)


class RecordError(ValueError):
    """A record that cannot become a paper row; the message says why, in a few words."""


TEXT = (str, type(None))
# Every paper dict, whichever source built it: field -> the Python types it may hold.
PAPER_SCHEMA: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "version": (int,),
    "versions": (list,),
    "title": TEXT,
    "authors": TEXT,
    "authors_parsed": (list, type(None)),
    "abstract": TEXT,
    "categories": TEXT,
    "primary_category": TEXT,
    "cross_list": (int,),
    "published": TEXT,
    "updated": TEXT,
    "doi": TEXT,
    "journal_ref": TEXT,
    "comments": TEXT,
    "report_no": TEXT,
    "license": TEXT,
    "pdf_url": TEXT,
    "source": (str,),
}
# Snapshot fields that are text in arXiv's format (checked before cleaning).
SNAPSHOT_TEXT_FIELDS = (
    "id",
    "title",
    "authors",
    "abstract",
    "categories",
    "update_date",
    "doi",
    "journal-ref",
    "comments",
    "report-no",
    "license",
    "submitter",
    "pdf_url",
)
TYPE_NAMES = {
    str: "text",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _type_name(value) -> str:
    return TYPE_NAMES.get(type(value), type(value).__name__)


def check_paper(paper: dict) -> dict:
    """``paper`` unchanged when it fits ``PAPER_SCHEMA``; else ``RecordError`` naming the field."""
    for name, types in PAPER_SCHEMA.items():
        value = paper.get(name)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(TYPE_NAMES[t] for t in types)
            raise RecordError(f"{name}: expected {expected}, got {_type_name(value)}")
    for entry in paper["versions"]:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("version"), int)
            and isinstance(entry.get("created"), TEXT)
        ):
            raise RecordError("versions: expected a list of {version, created}")
    for name in paper["authors_parsed"] or []:
        if not (isinstance(name, list) and all(isinstance(part, str) for part in name)):
            raise RecordError("authors_parsed: expected a list of [last, first, suffix] texts")
    return paper


def _check_snapshot_types(record: dict) -> None:
    """The snapshot's own field types, before cleaning can hide them."""
    for name in SNAPSHOT_TEXT_FIELDS:
        value = record.get(name)
        if not isinstance(value, TEXT):
            raise RecordError(f"{name}: expected text, got {_type_name(value)}")
    versions = record.get("versions")
    if not isinstance(versions, (list, type(None))):
        raise RecordError(f"versions: expected a list, got {_type_name(versions)}")
    for entry in versions or []:
        if not isinstance(entry, dict):
            raise RecordError(f"versions: expected objects, got {_type_name(entry)}")
        for key in ("version", "created"):
            if not isinstance(entry.get(key), TEXT):
                raise RecordError(
                    f"versions.{key}: expected text, got {_type_name(entry.get(key))}"
                )
    parsed = record.get("authors_parsed")
    if not isinstance(parsed, (list, type(None))):
        raise RecordError(f"authors_parsed: expected a list, got {_type_name(parsed)}")


def split_arxiv_id(raw: str) -> tuple[str, int | None]:
    """``'2406.04339v2'`` -> ``('2406.04339', 2)``; accepts old-style ids and ``arXiv:``
    prefixes."""
    text = (raw or "").strip()
    text = re.sub(r"^(?:arxiv:|https?://arxiv\.org/(?:abs|pdf)/)", "", text, flags=re.I)
    text = re.sub(r"\.pdf$", "", text)
    for pattern in (NEW_STYLE_ID, OLD_STYLE_ID):
        match = pattern.match(text)
        if match:
            version = match.group("version")
            return match.group("id"), int(version) if version else None
    raise RecordError(f"not an arXiv id: {raw!r}")


def arxiv_id_or_none(value: str | None) -> str | None:
    """The versionless arXiv id in ``value``, or None when it is empty or not an arXiv id."""
    try:
        return split_arxiv_id(value)[0] if value else None
    except RecordError:
        return None


def synthetic_id(title: str | None) -> str:
    """A stable key for a survey paper with no arXiv id (``noid:<slug of title>``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", (title or "").lower()).strip("-")
    return f"noid:{slug[:80] or 'untitled'}"


def parse_date(value) -> date | None:
    """Dates as arXiv writes them: RFC 2822 in ``versions``, ISO in ``update_date`` and the API."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).date()
    except (TypeError, ValueError) as exc:
        raise RecordError(f"unreadable date {text!r}") from exc


def clean_text(value) -> str | None:
    """Collapse the hard line breaks and runs of spaces arXiv metadata is full of."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _version_number(label) -> int:
    match = re.match(r"v?(\d+)$", str(label or "").strip())
    if not match:
        raise RecordError(f"bad version label {label!r}")
    return int(match.group(1))


def paper_from_snapshot(record: object, source: str) -> dict:
    """One arXiv-snapshot-format object -> a ``papers`` row (without the seen timestamps).

    Raises ``RecordError`` for records that cannot be keyed or dated.
    """
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    raw_id = record.get("id")
    if not raw_id:
        raise RecordError("no id")
    _check_snapshot_types(record)
    paper_id, id_version = split_arxiv_id(raw_id)

    versions: list[dict[str, Any]] = []
    for entry in record.get("versions") or []:
        created = parse_date(entry.get("created"))
        versions.append(
            {
                "version": _version_number(entry.get("version")),
                "created": created.isoformat() if created else None,
            }
        )
    versions.sort(key=lambda v: v["version"])
    if not versions:
        fallback = parse_date(record.get("update_date"))
        versions = [
            {"version": id_version or 1, "created": fallback.isoformat() if fallback else None}
        ]

    categories = clean_text(record.get("categories"))
    authors_parsed = record.get("authors_parsed")
    paper = {
        "id": paper_id,
        "version": max(v["version"] for v in versions),
        "versions": versions,
        "title": clean_text(record.get("title")),
        "authors": clean_text(record.get("authors")),
        "authors_parsed": authors_parsed if authors_parsed else None,
        "abstract": clean_text(record.get("abstract")),
        "categories": categories,
        "primary_category": categories.split()[0] if categories else None,
        "cross_list": 0,
        "published": versions[0]["created"],
        "updated": versions[-1]["created"] or clean_text(record.get("update_date")),
        "doi": clean_text(record.get("doi")),
        "journal_ref": clean_text(record.get("journal-ref")),
        "comments": clean_text(record.get("comments")),
        "report_no": clean_text(record.get("report-no")),
        "license": clean_text(record.get("license")),
        "pdf_url": record.get("pdf_url"),
        "source": source,
    }
    return check_paper(paper)


def merge_paper(existing: dict | None, incoming: dict, seen_at: str) -> tuple[dict, str]:
    """Apply the upsert rules; returns (row to store, outcome) with outcome in
    ``inserted | updated | unchanged``. Rows are in storage form (JSON columns as text)."""
    incoming = dict(incoming)
    incoming["versions"] = list(incoming.get("versions") or [])
    if existing is None:
        row = _to_storage({**incoming, "first_seen": seen_at, "last_seen": seen_at})
        return row, "inserted"

    old_versions = loads(existing.get("versions"), [])
    by_number = {v["version"]: v for v in old_versions}
    for v in incoming["versions"]:
        if v["version"] not in by_number or not by_number[v["version"]].get("created"):
            by_number[v["version"]] = v
    versions = [by_number[n] for n in sorted(by_number)]

    if (incoming.get("version") or 0) > (existing.get("version") or 0):
        row = _to_storage({**incoming, "versions": versions})
        row["first_seen"] = existing.get("first_seen") or seen_at
        row["last_seen"] = seen_at
        return row, "updated"

    row = dict(existing)
    changed = versions != old_versions
    row["versions"] = dumps(versions)
    row["published"] = versions[0]["created"] or existing.get("published")
    # Fill gaps (a seed without an abstract later seen in full) but never overwrite.
    for key, value in _to_storage(incoming).items():
        if key in ("versions", "first_seen", "last_seen", "source", "version"):
            continue
        if row.get(key) in (None, "") and value not in (None, ""):
            row[key] = value
            changed = True
    row["last_seen"] = seen_at
    return row, "updated" if changed else "unchanged"


def _to_storage(paper: dict) -> dict:
    row = dict(paper)
    row["versions"] = dumps(paper.get("versions") or [])
    row["authors_parsed"] = dumps(paper["authors_parsed"]) if paper.get("authors_parsed") else None
    return row


def upsert_papers(db: sqlite_utils.Database, papers: Iterable[dict]) -> dict:
    """Upsert a batch of paper dicts (from ``paper_from_snapshot`` or the API) in one transaction.

    Returns counts ``{"inserted", "updated", "unchanged"}``. Two records for the
    same id inside one batch are merged in order, so a batch never duplicates.
    """
    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
    papers = list(papers)
    if not papers:
        return counts
    seen_at = now_iso()
    ids = sorted({p["id"] for p in papers})
    placeholders = ",".join("?" * len(ids))
    current = {
        row["id"]: row
        for row in db.query(f"select * from papers where id in ({placeholders})", ids)
    }
    outcome_by_id: dict[str, str] = {}
    for paper in papers:
        row, outcome = merge_paper(current.get(paper["id"]), paper, seen_at)
        current[paper["id"]] = row
        previous = outcome_by_id.get(paper["id"])
        outcome_by_id[paper["id"]] = (
            "inserted"
            if previous == "inserted"
            else ("updated" if "updated" in (previous, outcome) else outcome)
        )
    with db.conn:
        db.table("papers").upsert_all([current[i] for i in outcome_by_id], pk="id", alter=False)
    for outcome in outcome_by_id.values():
        counts[outcome] += 1
    return counts
