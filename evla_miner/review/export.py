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

import re
import unicodedata
from dataclasses import dataclass

import bibtexparser
import sqlite_utils
from bibtexparser.bibdatabase import BibDatabase, BibDataString, BibDataStringExpression, as_text
from bibtexparser.bparser import BibTexParser
from bibtexparser.bwriter import BibTexWriter
from bibtexparser.latexenc import latex_to_unicode

from ..core.db import loads, now_iso, papers_by_id
from ..core.decisions import effective_decisions
from ..core.errors import BadInput, EvlaError
from ..core.safe_output import md_text, md_url
from ..core.taxonomy import Taxonomy

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
CONFERENCE = re.compile(
    r"\b(conference|proceedings|proc\.|workshop|symposium|CVPR|ICCV|ECCV|NeurIPS|NIPS|ICML|ICLR|CoRL|RSS|"
    r"ICRA|IROS|AAAI|IJCAI|ACL|EMNLP|NAACL|WACV|BMVC|Humanoids|CASE|ACM MM|KDD|SIGGRAPH)\b",
    re.I,
)
VENUES = [
    "CVPR",
    "ICCV",
    "ECCV",
    "NeurIPS",
    "ICML",
    "ICLR",
    "CoRL",
    "RSS",
    "ICRA",
    "IROS",
    "AAAI",
    "IJCAI",
    "ACL",
    "EMNLP",
    "NAACL",
    "WACV",
    "BMVC",
    "RA-L",
    "T-RO",
    "TPAMI",
    "IJRR",
    "Science Robotics",
    "TMLR",
]
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
    """'', a, b, ..., z, aa, ab, ...: Better BibTeX's disambiguation."""
    yield ""
    letters = "abcdefghijklmnopqrstuvwxyz"
    for first in letters:
        yield first
    for first in letters:
        for second in letters:
            yield first + second


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


def bibtex_entry(paper: dict, key: str, strings_db: BibDatabase) -> dict:
    """One paper as a bibtexparser entry dict."""
    journal_ref = paper.get("journal_ref")
    entry = {"ID": key}
    if journal_ref and CONFERENCE.search(journal_ref):
        entry["ENTRYTYPE"] = "inproceedings"
        entry["booktitle"] = tex_escape(journal_ref)
    elif journal_ref:
        entry["ENTRYTYPE"] = "article"
        entry["journal"] = tex_escape(journal_ref)
    else:
        entry["ENTRYTYPE"] = "misc"
    authors = bibtex_authors(paper)
    if authors:
        entry["author"] = authors
    entry["title"] = "{" + tex_escape(paper.get("title") or "") + "}"
    published = paper.get("published") or ""
    if published[:4].isdigit():
        entry["year"] = published[:4]
        if len(published) >= 7 and published[5:7].isdigit():
            month = MONTH_MACROS[int(published[5:7]) - 1]
            entry["month"] = BibDataStringExpression([BibDataString(strings_db, month)])
    if is_arxiv(paper):
        entry["eprint"] = paper["id"]
        entry["archivePrefix"] = "arXiv"
        if paper.get("primary_category"):
            entry["primaryClass"] = paper["primary_category"]
        entry["url"] = f"https://arxiv.org/abs/{paper['id']}"
    if paper.get("doi"):
        entry["doi"] = paper["doi"].split()[0]
    return entry


def _field_text(value) -> str:
    return as_text(value) if isinstance(value, BibDataStringExpression) else value


def validate_bibtex(text: str, entries: list[dict]) -> None:
    """Parse ``text`` back with bibtexparser and check every entry and field survived."""
    parser = BibTexParser(
        common_strings=True, interpolate_strings=False, ignore_nonstandard_types=False
    )
    try:
        parsed = bibtexparser.loads(text, parser=parser)
    except Exception as exc:  # pyparsing errors and friends
        raise EvlaError(f"BibTeX export does not parse back: {exc}") from exc
    by_key = {entry["ID"]: entry for entry in parsed.entries}
    if len(by_key) != len(entries) or len(parsed.entries) != len(entries):
        raise EvlaError(
            f"BibTeX export parses back to {len(parsed.entries)} entries, expected {len(entries)}"
        )
    for entry in entries:
        back = by_key.get(entry["ID"])
        if back is None:
            raise EvlaError(f"BibTeX export lost entry {entry['ID']}")
        for field, value in entry.items():
            if field in ("ID",):
                continue
            got = back.get(field.lower() if field != "ENTRYTYPE" else field)
            want = _field_text(value)
            if field == "month":
                got = _field_text(got)
            if got != want:
                raise EvlaError(
                    f"BibTeX export: {entry['ID']}.{field} parses back as {got!r}, expected "
                    f"{want!r}"
                )


@dataclass
class BibtexExport:
    text: str
    count: int
    new_keys: int


def export_bibtex(
    db: sqlite_utils.Database, status: str = "survey", category: str | None = None
) -> BibtexExport:
    """The BibTeX for the selected papers, validated by parsing it back. Keys are
    assigned (and stored) for papers exported for the first time."""
    papers = select_papers(db, status, category)
    before = db["bibtex_keys"].count
    keys = assign_keys(db, papers)
    bib = BibDatabase()
    bib.load_common_strings()  # month macros (jan, feb, ...); the writer does not emit them
    entries = [bibtex_entry(paper, keys[paper["id"]], bib) for paper in papers]
    entries.sort(key=lambda e: e["ID"])
    bib.entries = entries
    writer = BibTexWriter()
    writer.indent = "  "
    writer.order_entries_by = None
    writer.display_order = FIELD_ORDER
    writer.add_trailing_comma = True
    text = bibtexparser.dumps(bib, writer) if entries else ""
    validate_bibtex(text, entries)
    return BibtexExport(text, len(entries), db["bibtex_keys"].count - before)


# --- Markdown -----------------------------------------------------------------------------


def venue(paper: dict) -> str:
    """A short venue from the journal reference (``CoRL 2024``), else ``arXiv``."""
    ref = paper.get("journal_ref") or ""
    if not ref:
        return "arXiv"
    for name in VENUES:
        if re.search(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", ref, re.I):
            year = re.search(r"\b(19|20)\d{2}\b", ref)
            return f"{name} {year.group(0)}" if year else name
    return ref if len(ref) <= 40 else ref[:37].rstrip() + "..."


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
