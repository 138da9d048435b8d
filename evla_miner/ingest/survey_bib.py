"""The survey's own bibliography: its ``.bib`` file says what the survey contains.

The authors add papers by hand in LaTeX; importing their ``.bib`` makes those papers survey
members (source ``bib:<file name>``), so the tool stops proposing them and learns from
them. This is an ingest stage, next to ``seeds``: it reads an outside file into the
survey's membership; writing the bibliography back is the export's job
(``review.export.export_survey_bib``).

Each entry is matched to a paper in the database, most certain method first:

1. ``arxiv``: an arXiv id in any field (``eprint``, ``journal = {arXiv preprint
   arXiv:...}``, ``url``, ``note``);
2. ``doi``: the DOI against the papers' DOIs, the published DOIs the venue sources
   recorded, and arXiv's own DOIs (``10.48550/arXiv.<id>``);
3. ``title``: title similarity (rapidfuzz on folded text, so Google Scholar's sentence
   case and BibTeX's protective braces do not matter), guarded by author overlap and
   year, so two papers with the same title are not confused.

Every entry is stored (``survey_bib``), matched or not: an unmatched one is retried by
``match_pending`` after each harvest, and exported back verbatim so no ``\\cite`` breaks.
The authors' keys are pinned in ``bibtex_keys``. Re-importing the same file changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import bibtexparser
import sqlite_utils
from bibtexparser.bparser import BibTexParser
from rapidfuzz import fuzz, process

from ..core.db import dumps, loads, now_iso
from ..core.errors import BadInput
from ..core.records import arxiv_id_or_none
from ..core.taxonomy import Taxonomy
from ..core.venues import fold, last_names, parse_venue, record_venue

TITLE_MIN = 90.0  # rapidfuzz ratio on folded titles; sentence case and braces fold away
YEAR_SLACK = 1  # arXiv v1 year vs. the venue year the bib gives
ENTRY_START = re.compile(r"^\s*@\s*([A-Za-z]+)\s*[{(]", re.M)
LABEL_COMMENT = re.compile(r"^\s*%+\s*evla:\s*(?P<labels>.*)$", re.I)
ARXIV_IN_TEXT = re.compile(
    r"(?:arxiv(?:\s*preprint)?\s*(?:arxiv)?\s*[:/.\s]\s*|arxiv\.org/(?:abs|pdf)/|10\.48550/arxiv\.)"
    r"(?P<id>\d{4}\.\d{4,5}(?:v\d+)?|[a-z-]+(?:\.[A-Z]{2})?/\d{7})",
    re.I,
)
DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/[^\s{}\"',]+)", re.I)
# where an arXiv id can be written (an arXiv DOI, 10.48550/arXiv.*, counts as a DOI match)
ID_FIELDS = ("eprint", "arxivid", "journal", "url", "note", "howpublished", "booktitle")
ARXIV_DOI = "10.48550/arxiv."
SKIPPED_TYPES = {"comment", "string", "preamble"}


@dataclass
class BibEntry:
    key: str
    entry_type: str
    fields: dict  # lower-case field names, values as written (braces kept)
    line: int
    labels: list[str] = field(default_factory=list)


@dataclass
class Match:
    key: str
    title: str | None
    matched_id: str | None
    method: str | None
    score: float | None
    reason: str | None = None

    def as_json(self) -> dict:
        return {
            "key": self.key,
            "title": self.title,
            "matched_id": self.matched_id,
            "method": self.method,
            "score": self.score,
        }


@dataclass
class ImportResult:
    file: str
    matches: list[Match]
    errors: list[dict]  # {"line", "key", "reason"}: broken entries, skipped
    notes: list[str]  # unknown labels, moved keys, duplicates
    counts: dict


# --- reading the file ------------------------------------------------------------------------


def _chunks(text: str) -> list[tuple[int, str, str, list[str]]]:
    """(first line, entry type, text, labels) per ``@...`` block; ``% evla:`` lines label
    the next entry."""
    lines = text.splitlines()
    chunks: list[tuple[int, str, list[str], list[str]]] = []
    pending: list[str] = []
    for number, line in enumerate(lines, start=1):
        comment = LABEL_COMMENT.match(line)
        if comment:
            pending = [p for p in re.split(r"[,;\s]+", comment.group("labels")) if p]
            continue
        start = ENTRY_START.match(line)
        if start:
            chunks.append((number, start.group(1).lower(), [line], pending))
            pending = []
        elif chunks and not line.lstrip().startswith("%"):
            chunks[-1][2].append(line)
    return [(number, kind, "\n".join(body), labels) for number, kind, body, labels in chunks]


def _parser() -> BibTexParser:
    return BibTexParser(
        common_strings=True, interpolate_strings=True, ignore_nonstandard_types=False
    )


def parse_bib(text: str) -> tuple[list[BibEntry], list[dict]]:
    """Entries of a .bib text, each parsed on its own so that a broken one is reported
    (line and reason) and skipped while the rest land."""
    chunks = _chunks(text)
    strings = "\n".join(body for _, kind, body, _ in chunks if kind == "string")
    entries: list[BibEntry] = []
    errors: list[dict] = []
    seen: set[str] = set()
    for line, entry_type, body, labels in chunks:
        if entry_type in SKIPPED_TYPES:
            continue
        key_match = re.match(r"\s*@\s*\w+\s*[{(]\s*([^,\s]*)", body)
        key = key_match.group(1) if key_match else ""
        try:
            parsed = bibtexparser.loads(strings + "\n" + body, parser=_parser()).entries
        except Exception as exc:  # pyparsing errors and friends
            errors.append({"line": line, "key": key, "reason": f"does not parse ({exc})"})
            continue
        if len(parsed) != 1 or not _balanced(body):
            errors.append(
                {"line": line, "key": key, "reason": "does not parse (unbalanced braces?)"}
            )
            continue
        raw = parsed[0]
        if not raw.get("ID"):
            errors.append({"line": line, "key": key, "reason": "entry has no key"})
            continue
        if raw["ID"] in seen:
            errors.append({"line": line, "key": raw["ID"], "reason": "duplicate key"})
            continue
        seen.add(raw["ID"])
        fields = {k.lower(): v for k, v in raw.items() if k not in ("ID", "ENTRYTYPE")}
        entries.append(BibEntry(raw["ID"], raw["ENTRYTYPE"].lower(), fields, line, labels))
    return entries, errors


def _balanced(body: str) -> bool:
    depth = 0
    for char in re.sub(r"\\[{}]", "", body):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


# --- identifiers and candidates --------------------------------------------------------------


def entry_arxiv_id(fields: dict) -> str | None:
    """The arXiv id written anywhere in an entry."""
    eprint = fields.get("eprint") or fields.get("arxivid")
    if eprint and arxiv_id_or_none(eprint.strip("{} ")):
        return arxiv_id_or_none(eprint.strip("{} "))
    for name in ID_FIELDS:
        match = ARXIV_IN_TEXT.search(fields.get(name) or "")
        if match:
            return arxiv_id_or_none(match.group("id"))
    return None


def entry_doi(fields: dict) -> str | None:
    """The entry's DOI (lower case), from ``doi`` or a doi.org URL."""
    for name in ("doi", "url"):
        match = DOI_IN_TEXT.search(fields.get(name) or "")
        if match:
            return match.group(1).rstrip(".").lower()
    return None


def entry_year(fields: dict) -> int | None:
    match = re.search(r"\d{4}", fields.get("year") or "")
    return int(match.group(0)) if match else None


class PaperIndex:
    """Every paper's id, DOI and folded title, loaded once per import (about 10,000 rows)."""

    def __init__(self, db: sqlite_utils.Database):
        self.papers: dict[str, dict] = {}
        self.by_doi: dict[str, str] = {}
        for row in db.query(
            "select id, title, authors, authors_parsed, published, doi from papers"
        ):
            row["authors_parsed"] = loads(row["authors_parsed"], None)
            self.papers[row["id"]] = row
            if row["doi"]:
                self.by_doi.setdefault(row["doi"].split()[0].lower(), row["id"])
        if db["venues"].exists():
            for paper_id, doi in db.execute(
                "select paper_id, doi from venues where doi is not null"
            ):
                self.by_doi.setdefault(doi.lower(), paper_id)
        self.ids = list(self.papers)
        self.titles = [fold(self.papers[pid]["title"]) for pid in self.ids]


def _title_candidates(index: PaperIndex, entry: BibEntry) -> tuple[Match | None, str]:
    """The one paper whose title, authors and year agree with the entry, or why none does."""
    title = entry.fields.get("title")
    if not title:
        return None, "no arXiv id, DOI or title"
    found = process.extract(
        fold(title), index.titles, scorer=fuzz.ratio, score_cutoff=TITLE_MIN, limit=10
    )
    if not found:
        return None, "no paper in the database with this title"
    bib_names = last_names(entry.fields.get("author") or "")
    year = entry_year(entry.fields)
    kept, reasons = [], []
    for _, score, position in found:
        paper = index.papers[index.ids[position]]
        names = last_names(paper["authors_parsed"] or paper["authors"])
        if bib_names and names and not bib_names & names:
            reasons.append(f"{paper['id']}: same title, no author in common")
            continue
        paper_year = (
            int(paper["published"][:4]) if (paper["published"] or "")[:4].isdigit() else None
        )
        if year and paper_year and abs(year - paper_year) > YEAR_SLACK:
            reasons.append(f"{paper['id']}: same title, year {paper_year} vs {year}")
            continue
        kept.append((score, len(bib_names & names), paper["id"]))
    if not kept:
        return None, "; ".join(reasons)
    kept.sort(reverse=True)
    if len(kept) > 1 and kept[0][:2] == kept[1][:2]:
        return None, f"ambiguous: {kept[0][2]} and {kept[1][2]} match equally well"
    score, _, paper_id = kept[0]
    return Match(entry.key, title, paper_id, "title", round(score, 1)), ""


def match_entry(index: PaperIndex, entry: BibEntry) -> Match:
    """Where this entry is in the database: by arXiv id, then DOI, then guarded title."""
    title = entry.fields.get("title")
    arxiv_id = entry_arxiv_id(entry.fields)
    if arxiv_id and arxiv_id in index.papers:
        return Match(entry.key, title, arxiv_id, "arxiv", 100.0)
    doi = entry_doi(entry.fields)
    if doi and doi in index.by_doi:
        return Match(entry.key, title, index.by_doi[doi], "doi", 100.0)
    if doi and doi.startswith(ARXIV_DOI):
        doi_arxiv = arxiv_id_or_none(doi[len(ARXIV_DOI) :])
        if doi_arxiv in index.papers:
            return Match(entry.key, title, doi_arxiv, "doi", 100.0)
        arxiv_id = arxiv_id or doi_arxiv
    found, reason = _title_candidates(index, entry)
    if found:
        return found
    if arxiv_id:
        reason = f"arXiv {arxiv_id} is not in the database yet"
    elif doi:
        reason = f"DOI {doi} is not in the database; {reason}"
    return Match(entry.key, title, None, None, None, reason)


# --- applying a match ------------------------------------------------------------------------


def _labels(entry: BibEntry, labels_from: str | None) -> list[str]:
    labels = list(entry.labels)
    if labels_from and entry.fields.get(labels_from.lower()):
        labels += [p for p in re.split(r"[,;\s]+", entry.fields[labels_from.lower()]) if p]
    return list(dict.fromkeys(label.strip("{}") for label in labels if label.strip("{}")))


def _pin_key(db: sqlite_utils.Database, paper_id: str, key: str, source: str, notes: list) -> bool:
    """Make ``key`` the paper's BibTeX key for good; True when something changed."""
    current = db.execute(
        "select key, pinned_by from bibtex_keys where paper_id = ?", [paper_id]
    ).fetchone()
    if current == (key, source) or (current and current[0] == key and current[1]):
        return False
    holder = db.execute(
        "select paper_id, pinned_by from bibtex_keys where key = ? and paper_id != ?",
        [key, paper_id],
    ).fetchone()
    if current and current[1] and current[0] != key:
        notes.append(f"{paper_id}: pinned as {current[0]} already; {key} exported verbatim")
        return False
    if holder and holder[1]:
        notes.append(f"{key}: already the pinned key of {holder[0]} ({holder[1]}); not pinned")
        return False
    if holder:
        db.execute("delete from bibtex_keys where paper_id = ?", [holder[0]])
        notes.append(f"{key}: was generated for {holder[0]}, which gets a new key")
    if current:
        notes.append(
            f"{paper_id}: exported before as {current[0]}; now {key}, the survey .bib's key"
        )
    db.table("bibtex_keys").upsert(
        {"paper_id": paper_id, "key": key, "assigned_at": now_iso(), "pinned_by": source},
        pk="paper_id",
    )
    return True


def _free_generated_key(db: sqlite_utils.Database, key: str, notes: list[str]) -> None:
    """An unmatched entry's key belongs to the authors' entry, written back verbatim: a key
    the tool generated for some other paper moves off it (that paper gets a new one)."""
    holder = db.execute(
        "select paper_id from bibtex_keys where key = ? and pinned_by is null", [key]
    ).fetchone()
    if holder:
        db.execute("delete from bibtex_keys where paper_id = ?", [holder[0]])
        notes.append(f"{key}: was generated for {holder[0]}, which gets a new key")


def _apply(db, entry: BibEntry, paper_id: str, source: str, labels: list[str], notes) -> dict:
    """Survey membership, pinned key and bib venue for a matched entry; what changed."""
    changed = {"survey": 0, "keys": 0, "venues": 0}
    if not db["survey"].count_where("paper_id = ?", [paper_id]):
        db.table("survey").insert(
            {
                "paper_id": paper_id,
                "labels": dumps(labels),
                "source": source,
                "added_at": now_iso(),
            }
        )
        changed["survey"] = 1
    changed["keys"] = int(_pin_key(db, paper_id, entry.key, source, notes))
    place = entry.fields.get("booktitle") or entry.fields.get("journal")
    venue = parse_venue(place, entry_year(entry.fields))
    if venue:
        changed["venues"] = int(
            record_venue(db, paper_id, source, venue, evidence=place, doi=entry_doi(entry.fields))
        )
    return changed


def _store_entry(db, file_name: str, entry: BibEntry, match: Match, labels: list[str]) -> bool:
    """The entry's row in ``survey_bib``; True when it is new or differs."""
    row = {
        "file": file_name,
        "key": entry.key,
        "entry_type": entry.entry_type,
        "fields": dumps(entry.fields),
        "labels": dumps(labels),
        "matched_id": match.matched_id,
        "method": match.method,
        "score": match.score,
        "reason": match.reason,
        "position": entry.line,
    }
    existing = list(db["survey_bib"].rows_where("file = ? and key = ?", [file_name, entry.key]))
    if existing and all(existing[0][k] == v for k, v in row.items()):
        return False
    stamp = now_iso()
    db.table("survey_bib").upsert(
        {**row, "imported_at": stamp, "matched_at": stamp if match.matched_id else None},
        pk=("file", "key"),
    )
    return True


def import_survey_bib(
    db: sqlite_utils.Database,
    path: Path,
    labels_from: str | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Match every entry of the survey's .bib and (unless ``dry_run``) store the entries,
    add the matched papers to the survey with their labels, pin the authors' keys and
    record the venues their entries give."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BadInput(f"bib file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text ({exc.reason})") from exc
    file_name = Path(path).name
    source = f"bib:{file_name}"
    entries, errors = parse_bib(text)
    known = set(Taxonomy.from_db(db).nodes)
    index = PaperIndex(db)
    matches, notes = [], []
    counts = {"entries": len(entries), "broken": len(errors), "arxiv": 0, "doi": 0, "title": 0}
    counts.update({"unmatched": 0, "entries_changed": 0, "survey_added": 0, "keys_pinned": 0})
    counts["venues_recorded"] = 0
    claimed: dict[str, str] = {}
    for entry in entries:
        match = match_entry(index, entry)
        if match.matched_id and match.matched_id in claimed:
            notes.append(
                f"{entry.key}: the same paper as {claimed[match.matched_id]} ({match.matched_id})"
            )
        claimed.setdefault(match.matched_id or "", entry.key)
        matches.append(match)
        counts[match.method or "unmatched"] += 1
        labels = _labels(entry, labels_from)
        unknown = [label for label in labels if label not in known]
        if unknown:
            notes.append(f"{entry.key}: unknown taxonomy labels ignored: {', '.join(unknown)}")
        labels = [label for label in labels if label in known]
        if dry_run:
            continue
        with db.conn:
            counts["entries_changed"] += _store_entry(db, file_name, entry, match, labels)
            if not match.matched_id:
                _free_generated_key(db, entry.key, notes)
            else:
                changed = _apply(db, entry, match.matched_id, source, labels, notes)
                counts["survey_added"] += changed["survey"]
                counts["keys_pinned"] += changed["keys"]
                counts["venues_recorded"] += changed["venues"]
    return ImportResult(file_name, matches, errors, notes, counts)


def match_pending(db: sqlite_utils.Database) -> list[Match]:
    """Retry the unmatched entries of every imported .bib (run after each harvest): the
    papers a harvest just brought become survey members under the authors' keys."""
    if not db["survey_bib"].exists():
        return []
    rows = list(db["survey_bib"].rows_where("matched_id is null", order_by="file, position"))
    if not rows:
        return []
    index = PaperIndex(db)
    found: list[Match] = []
    notes: list[str] = []
    for row in rows:
        entry = BibEntry(row["key"], row["entry_type"], loads(row["fields"], {}), row["position"])
        match = match_entry(index, entry)
        if not match.matched_id:
            continue
        labels = loads(row["labels"], [])
        with db.conn:
            db.table("survey_bib").update(
                (row["file"], row["key"]),
                {
                    "matched_id": match.matched_id,
                    "method": match.method,
                    "score": match.score,
                    "reason": None,
                    "matched_at": now_iso(),
                },
            )
            _apply(db, entry, match.matched_id, f"bib:{row['file']}", labels, notes)
        found.append(match)
    return found
