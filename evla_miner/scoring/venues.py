"""Publication venues from the citation services (Semantic Scholar, OpenAlex).

Online counterpart of ``core.venues``' offline parsing: each paper is looked up by its
arXiv id (or DOI), and the service's venue is recorded with the service as its source
only when the service's record agrees with ours on title and authors
(``core.venues.records_agree``): a DOI typo or an id mix-up must not give a paper
somebody else's venue. The clients' HTTP, caching, politeness and id syntax stay in
``scoring.citations``; this module only asks (any ``VenueClient``) and judges the answers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import sqlite_utils

from ..core.progress import Reporter
from ..core.venues import Venue, parse_venue, record_venue, records_agree
from .citations import VenueClient

BATCH = 500


def lookup_id(paper: dict, client: VenueClient) -> str | None:
    """The id this service finds the paper by: its arXiv id, else its DOI."""
    arxiv = None if paper["id"].startswith("noid:") else paper["id"]
    doi = (paper.get("doi") or "").split()[0] if paper.get("doi") else None
    return client.venue_id(arxiv, doi)


def source_name(client: VenueClient) -> str:
    return client.source


def judge(paper: dict, record: dict | None) -> tuple[str, Venue | None, str]:
    """(outcome, venue, reason): 'recorded' with the venue, or 'unknown' | 'no_venue' |
    'disagree' with the reason."""
    if record is None:
        return "unknown", None, "the service does not know this paper"
    venue = parse_venue(record.get("venue"), record.get("year"))
    if venue is None:
        return "no_venue", None, "no publication venue (preprint only)"
    agree, reason = records_agree(paper, record)
    if not agree:
        return "disagree", None, reason
    if record.get("kind") in ("conference", "journal"):
        venue = replace(venue, kind=record["kind"])
    return "recorded", venue, ""


def fetch_venues(
    db: sqlite_utils.Database,
    client: VenueClient,
    papers: list[dict],
    reporter: Reporter | None = None,
) -> dict:
    """Ask ``client`` for the venue of each paper and record those that agree with our
    record. Returns counts (recorded, unchanged, unknown, no_venue, disagree, no_id) and
    ``rejected``: [(paper id, reason)] for the ones whose record disagreed."""
    reporter = reporter or Reporter()
    source = source_name(client)
    ids = {paper["id"]: lookup_id(paper, client) for paper in papers}
    counts: Counter = Counter(no_id=sum(1 for v in ids.values() if v is None))
    rejected: list[tuple[str, str]] = []
    found = {paper_id: lookup for paper_id, lookup in ids.items() if lookup}
    wanted = [paper for paper in papers if paper["id"] in found]
    reporter.start(f"venues from {source}", total=len(wanted))
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        records = client.fetch_venues([found[paper["id"]] for paper in chunk])
        with db.conn:
            for paper in chunk:
                record = records.get(found[paper["id"]])
                outcome, venue, reason = judge(paper, record)
                if venue is not None and record is not None:
                    changed = record_venue(
                        db, paper["id"], source, venue, evidence=record["venue"], doi=record["doi"]
                    )
                    outcome = "recorded" if changed else "unchanged"
                elif outcome == "disagree":
                    rejected.append((paper["id"], reason))
                counts[outcome] += 1
        reporter.advance(len(chunk))
    reporter.finish()
    return {**{k: counts.get(k, 0) for k in COUNT_KEYS}, "rejected": rejected}


COUNT_KEYS = ("recorded", "unchanged", "unknown", "no_venue", "disagree", "no_id")
