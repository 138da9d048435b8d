"""Publication venues from the citation services (Semantic Scholar, OpenAlex).

Online counterpart of ``core.venues``' offline parsing: each paper is looked up by its
arXiv id (or DOI), and the service's venue is recorded with the service as its source
only when the service's record agrees with ours on title and authors
(``core.venues.records_agree``): a DOI typo or an id mix-up must not give a paper
somebody else's venue. The clients' HTTP, caching and politeness stay in
``scoring.citations``; this module only chooses ids and judges the answers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import sqlite_utils

from ..core.progress import Reporter
from ..core.venues import Venue, parse_venue, record_venue, records_agree
from .citations import OpenAlexClient, SemanticScholarClient

BATCH = 500


def lookup_id(paper: dict, client) -> str | None:
    """The id this service finds the paper by: its arXiv id, else its DOI."""
    arxiv = None if paper["id"].startswith("noid:") else paper["id"]
    doi = (paper.get("doi") or "").split()[0] if paper.get("doi") else None
    if isinstance(client, OpenAlexClient):
        return f"doi:10.48550/arXiv.{arxiv}" if arxiv else (f"doi:{doi}" if doi else None)
    if isinstance(client, SemanticScholarClient):
        return f"ARXIV:{arxiv}" if arxiv else (f"DOI:{doi}" if doi else None)
    raise TypeError(f"no venue lookup for {type(client).__name__}")


def source_name(client) -> str:
    return "openalex" if isinstance(client, OpenAlexClient) else "s2"


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
    client,
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
    wanted = [paper for paper in papers if ids[paper["id"]]]
    reporter.start(f"venues from {source}", total=len(wanted))
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        records = client.fetch_venues([ids[paper["id"]] for paper in chunk])
        with db.conn:
            for paper in chunk:
                record = records.get(ids[paper["id"]])
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
