"""Publication venues: where a paper appeared, and which source says so.

arXiv only knows the preprint; the survey's tables list where a paper was published
(CoRL, RSS, ICRA, NeurIPS...). Several sources know that, with different certainty:

- ``bib:<file>``: the survey authors' own bibliography (``evla survey import``);
- ``arxiv:journal-ref``: the reference the authors added on arXiv;
- ``s2`` / ``openalex``: the citation services, kept only when their record agrees
  with ours on title and authors (``records_agree``);
- ``arxiv:comments``: "Accepted to CoRL 2025" in the comments, the weakest hint.

Each source is one row of ``venues`` (so a better source later wins without the others
being lost) and ``best_venues`` picks by that order. Papers with no stored row still get
their arXiv journal-ref / comments venue, parsed on the fly: exports need no extra step.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

import sqlite_utils
from rapidfuzz import fuzz

from .db import now_iso, papers_by_id

# source -> rank (lower wins)
SOURCE_RANK = {"bib": 0, "arxiv:journal-ref": 1, "s2": 2, "openalex": 3, "arxiv:comments": 4}

# short name, full name, kind, extra spellings that name the same venue
KNOWN_VENUES = [
    ("CoRL", "Conference on Robot Learning", "conference", ["robot learning"]),
    ("RSS", "Robotics: Science and Systems", "conference", ["robotics: science and systems"]),
    (
        "ICRA",
        "IEEE International Conference on Robotics and Automation",
        "conference",
        ["international conference on robotics and automation"],
    ),
    (
        "IROS",
        "IEEE/RSJ International Conference on Intelligent Robots and Systems",
        "conference",
        ["intelligent robots and systems"],
    ),
    (
        "NeurIPS",
        "Advances in Neural Information Processing Systems",
        "conference",
        ["NIPS", "neural information processing systems"],
    ),
    ("ICML", "International Conference on Machine Learning", "conference", []),
    ("ICLR", "International Conference on Learning Representations", "conference", []),
    (
        "CVPR",
        "IEEE/CVF Conference on Computer Vision and Pattern Recognition",
        "conference",
        ["computer vision and pattern recognition"],
    ),
    ("ICCV", "IEEE/CVF International Conference on Computer Vision", "conference", []),
    ("ECCV", "European Conference on Computer Vision", "conference", []),
    ("AAAI", "AAAI Conference on Artificial Intelligence", "conference", []),
    ("IJCAI", "International Joint Conference on Artificial Intelligence", "conference", []),
    ("ACL", "Annual Meeting of the Association for Computational Linguistics", "conference", []),
    ("EMNLP", "Conference on Empirical Methods in Natural Language Processing", "conference", []),
    (
        "NAACL",
        "North American Chapter of the Association for Computational Linguistics",
        "conference",
        [],
    ),
    ("WACV", "IEEE/CVF Winter Conference on Applications of Computer Vision", "conference", []),
    ("BMVC", "British Machine Vision Conference", "conference", []),
    ("Humanoids", "IEEE-RAS International Conference on Humanoid Robots", "conference", []),
    (
        "RA-L",
        "IEEE Robotics and Automation Letters",
        "journal",
        ["RAL", "robotics and automation letters"],
    ),
    ("T-RO", "IEEE Transactions on Robotics", "journal", ["TRO", "transactions on robotics"]),
    (
        "TPAMI",
        "IEEE Transactions on Pattern Analysis and Machine Intelligence",
        "journal",
        ["PAMI", "pattern analysis and machine intelligence"],
    ),
    (
        "IJRR",
        "The International Journal of Robotics Research",
        "journal",
        ["international journal of robotics research"],
    ),
    ("Science Robotics", "Science Robotics", "journal", []),
    ("TMLR", "Transactions on Machine Learning Research", "journal", []),
]
CONFERENCE_WORDS = re.compile(
    r"\b(conference|proceedings|proc\.|workshop|symposium|meeting)\b", re.I
)
PREPRINT_SERVERS = re.compile(
    r"arxiv|biorxiv|medrxiv|ssrn electronic|\bhal\b|zenodo|openreview", re.I
)
# "Accepted to CoRL 2025", "To appear in RA-L", "Published at ICRA 2024", "ICLR 2025 (oral)"
ACCEPTANCE = re.compile(
    r"\b(accepted|to appear|published|presented|appear(?:s|ed)?|camera[- ]ready)\b"
    r"(?:\s+(?:as\s+\w+(?:\s+\w+)?\s+)?(?:at|to|in|by|for|on))?\s+(?:the\s+)?(?P<venue>[^.;()\n]{2,80})",
    re.I,
)
YEAR = re.compile(r"\b(19[89]\d|20\d\d)\b")


@dataclass(frozen=True)
class Venue:
    """Where a paper appeared: ``name`` as the source writes it, ``short`` when it is a known
    venue (``CoRL``), ``kind`` conference | journal, and the venue's year when known."""

    name: str
    kind: str
    short: str | None = None
    year: int | None = None

    def label(self) -> str:
        """What the survey's Venue column shows: ``CoRL 2024``, else the name (shortened)."""
        text = self.short or self.name
        if self.short and self.year:
            text = f"{self.short} {self.year}"
        return text if len(text) <= 40 else text[:37].rstrip() + "..."


def fold(text: str | None) -> str:
    """Lowercase ASCII words of ``text``: braces, accents, LaTeX commands and punctuation gone."""
    text = re.sub(r"\\[A-Za-z]+\s*|[{}\\]", " ", text or "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def known_venue(text: str | None) -> tuple[str, str, str] | None:
    """(short, full name, kind) of the known venue named in ``text``, if any."""
    if not text:
        return None
    folded = f" {fold(text)} "
    for short, full, kind, spellings in KNOWN_VENUES:
        names = [short, *[s for s in spellings if s.isupper() or "-" in s]]
        if any(re.search(rf"(?<![A-Za-z]){re.escape(n)}(?![A-Za-z])", text) for n in names):
            return short, full, kind
        long_names = [full, *[s for s in spellings if not s.isupper()]]
        if any(f" {fold(n)} " in folded for n in long_names if len(fold(n)) > 8):
            return short, full, kind
    return None


def parse_venue(text: str | None, year: int | None = None) -> Venue | None:
    """A venue from free text (a journal-ref, a bib ``booktitle``, a service's venue name).

    ``None`` for preprint servers and empty text: "arXiv" is not a publication venue.
    """
    text = " ".join((text or "").split())
    if not text or PREPRINT_SERVERS.search(text) and not known_venue(text):
        return None
    found_year = YEAR.search(text)
    year = year or (int(found_year.group(0)) if found_year else None)
    known = known_venue(text)
    if known:
        short, _full, kind = known
        if CONFERENCE_WORDS.search(text) and kind == "journal" and "letters" not in text.lower():
            kind = "conference"
        return Venue(name=text, kind=kind, short=short, year=year)
    kind = "conference" if CONFERENCE_WORDS.search(text) else "journal"
    return Venue(name=text, kind=kind, year=year)


def venue_from_comments(comments: str | None) -> Venue | None:
    """A known venue announced in arXiv comments ("Accepted to CoRL 2025"). Unknown names in
    comments are too noisy ("accepted ... in principle") to be trusted, so only known ones count."""
    for match in ACCEPTANCE.finditer(comments or ""):
        phrase = match.group("venue")
        known = known_venue(phrase)
        if known:
            short, full, kind = known
            # the year may follow a parenthesis: "... Automation (ICRA) 2026"
            clause = re.split(r"[;\n]|\.\s", (comments or "")[match.start() :])[0]
            year = YEAR.search(clause)
            return Venue(
                name=full, kind=kind, short=short, year=int(year.group(0)) if year else None
            )
    return None


def offline_venue(paper: dict) -> tuple[str, Venue] | None:
    """The venue arXiv's own record gives: journal-ref first, then the comments."""
    venue = parse_venue(paper.get("journal_ref"))
    if venue:
        return "arxiv:journal-ref", venue
    venue = venue_from_comments(paper.get("comments"))
    return ("arxiv:comments", venue) if venue else None


# --- agreement between two records of the same paper --------------------------------------


def last_names(authors) -> set[str]:
    """Folded last names from ``[[last, first, suffix], ...]``, ``["First Last", ...]`` or
    a BibTeX ``Last, First and ...`` / arXiv ``A, B and C`` string."""
    if isinstance(authors, str):
        if " and " in authors and "," in authors.split(" and ")[0]:
            names = [part.split(",")[0] for part in authors.split(" and ")]
        else:
            names = [n.split()[-1] for n in re.split(r",\s*|\s+and\s+", authors) if n.split()]
    else:
        names = []
        for author in authors or []:
            if isinstance(author, (list, tuple)):
                names.append(author[0] if author else "")
            elif isinstance(author, str) and author.split():
                names.append(author.split()[-1])
    return {fold(name).replace(" ", "") for name in names if fold(name)}


def title_score(a: str | None, b: str | None) -> float:
    """0-100 similarity of two titles after folding case, braces and LaTeX."""
    return float(fuzz.ratio(fold(a), fold(b))) if a and b else 0.0


def records_agree(ours: dict, theirs: dict, min_title: float = 90.0) -> tuple[bool, str]:
    """Whether another source's record describes our paper: similar titles and, when both
    list authors, at least one shared last name. Returns (agree, reason when not)."""
    score = title_score(ours.get("title"), theirs.get("title"))
    if score < min_title:
        return False, f"title differs ({score:.0f}/100: {theirs.get('title')!r})"
    ours_names = last_names(ours.get("authors_parsed") or ours.get("authors"))
    theirs_names = last_names(theirs.get("authors"))
    if ours_names and theirs_names and not ours_names & theirs_names:
        return False, "no author in common"
    return True, ""


# --- storage ---------------------------------------------------------------------------------


def record_venue(
    db: sqlite_utils.Database,
    paper_id: str,
    source: str,
    venue: Venue,
    evidence: str | None = None,
    doi: str | None = None,
) -> bool:
    """Store (or replace) ``source``'s venue for a paper; True when the row changed."""
    row = {
        "paper_id": paper_id,
        "source": source,
        **asdict(venue),
        "evidence": evidence,
        "doi": doi,
    }
    existing = list(db["venues"].rows_where("paper_id = ? and source = ?", [paper_id, source]))
    if existing and all(existing[0].get(k) == v for k, v in row.items()):
        return False
    db.table("venues").upsert({**row, "recorded_at": now_iso()}, pk=("paper_id", "source"))
    return True


def _source_rank(source: str) -> int:
    return SOURCE_RANK.get(source.split(":")[0] if source.startswith("bib:") else source, 9)


def best_venues(db: sqlite_utils.Database, papers: list[dict]) -> dict[str, tuple[str, Venue]]:
    """Per paper id, (source, venue) from the most certain source, stored or parsed offline."""
    ids = [p["id"] for p in papers]
    stored: dict[str, list[dict]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(f"select * from venues where paper_id in ({marks})", chunk):
            stored.setdefault(row["paper_id"], []).append(row)
    out: dict[str, tuple[str, Venue]] = {}
    for paper in papers:
        candidates = [
            (row["source"], Venue(row["name"], row["kind"], row["short"], row["year"]))
            for row in stored.get(paper["id"], [])
        ]
        offline = offline_venue(paper)
        if offline:
            candidates.append(offline)
        if candidates:
            out[paper["id"]] = min(candidates, key=lambda c: _source_rank(c[0]))
    return out


def record_offline_venues(db: sqlite_utils.Database, ids: list[str] | None = None) -> int:
    """Store the journal-ref / comments venue of these papers (all when None); rows changed."""
    rows = papers_by_id(db, ids) if ids is not None else {r["id"]: r for r in db["papers"].rows}
    changed = 0
    with db.conn:
        for paper in rows.values():
            found = offline_venue(paper)
            if found:
                source, venue = found
                evidence = (
                    paper["journal_ref"] if source == "arxiv:journal-ref" else paper["comments"]
                )
                changed += record_venue(db, paper["id"], source, venue, evidence=evidence)
    return changed
