"""Reference lists: split into entries, parse each, and match them to papers in the db.

``parse_references`` takes the reference lines that ``pdf_text`` found (or
plain text) and returns one dict per entry::

    {"position", "raw", "arxiv_id", "doi", "title", "year", "authors"}

Entries are split by the first signal that explains the list: numbers in
sequence (``[1]``, ``1.``, ``1 `` -- the sequence is what keeps "80 144415
(2009)" from opening an entry), bracketed labels (``[Bel+15]``,
``[Smith et al., 2020]``), or the hanging indent of author-year styles. Plain
text without layout falls back to "a line ending a sentence followed by a line
that starts like an author".

``match_references`` links entries to ``papers`` by arXiv id, then DOI, then a
fuzzy title (rapidfuzz), and says which one matched, because the citation
graph weighs an id match above a title guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import sqlite_utils
from rapidfuzz import fuzz, process

from .pdf_text import LIST_MARKERS, Line, numbered_run

# --- identifiers --------------------------------------------------------------------

_OLD_ARCHIVES = (
    r"(?:hep-th|hep-ph|hep-ex|hep-lat|astro-ph|cond-mat|gr-qc|math-ph|nucl-th|nucl-ex|quant-ph|"
    r"physics|math|cs|nlin|q-bio|q-fin|stat|chao-dyn|solv-int|adap-org|patt-sol|cmp-lg|dg-ga|alg-geom|"
    r"funct-an|q-alg|acc-phys|atom-ph|chem-ph|mtrl-th|supr-con|comp-gas|plasm-ph|ao-sci|bayes-an)"
)
OLD_ID = rf"{_OLD_ARCHIVES}(?:\.[A-Z]{{2}})?/\d{{7}}"
NEW_ID = r"\d{4}\.\s?\d{4,5}"
ARXIV_PATTERNS = (
    # arxiv.org/abs/2406.04339v2, arxiv.org/pdf/2406.04339v2.pdf, arxiv.org/abs/hep-th/9901001
    re.compile(rf"arxiv\.org/(?:abs|pdf)/\s?(?P<id>{NEW_ID}|{OLD_ID})(?P<v>v\d+)?", re.I),
    # arXiv:2406.04339v2, arXiv 2406.04339, arXiv preprint arXiv:2406.04339, arXiv:hep-th/9901001
    re.compile(
        rf"arxiv\s*[:.]?\s*(?:e-?prints?\s*,?\s*)?(?P<id>{NEW_ID}|{OLD_ID})(?P<v>v\d+)?", re.I
    ),
    # CoRR, abs/1502.05477
    re.compile(rf"\babs/(?P<id>{NEW_ID})(?P<v>v\d+)?"),
    # the arXiv DOI 10.48550/arXiv.2406.04339
    re.compile(rf"10\.48550/arxiv\.(?P<id>{NEW_ID})(?P<v>v\d+)?", re.I),
    # bare old-style ids: hep-th/9901001 (the archive name makes them unambiguous)
    re.compile(rf"(?<![\w/.-])(?P<id>{OLD_ID})(?P<v>v\d+)?"),
)
DOI_PATTERN = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.I)
YEAR_PATTERN = re.compile(r"(?<![\d.:/-])((?:18|19|20)\d\d)[a-z]?(?![\d.]\d)")


def _valid_new_id(identifier: str) -> bool:
    yymm, number = identifier.split(".")
    year, month = int(yymm[:2]), int(yymm[2:])
    if not 1 <= month <= 12:
        return False
    # 4-digit numbers until 2014-12, 5 digits from 2015-01 (1501.xxxxx).
    return len(number) == (5 if year >= 15 and year < 91 else 4)


def find_arxiv_ids(text: str) -> list[str]:
    """Versionless arXiv ids in a text, in order, each once (all the ways papers write them)."""
    if "/" not in text and "arxiv" not in text.lower():
        return []  # every form has one or the other; most references have neither
    found: list[tuple[int, str]] = []
    for pattern in ARXIV_PATTERNS:
        for match in pattern.finditer(text):
            identifier = _WS.sub("", match.group("id"))
            if "/" not in identifier and not _valid_new_id(identifier):
                continue
            found.append((match.start(), identifier))
    seen: list[str] = []
    for _, identifier in sorted(found):
        if identifier not in seen:
            seen.append(identifier)
    return seen


def find_dois(text: str) -> list[str]:
    dois = []
    for match in DOI_PATTERN.finditer(text):
        doi = match.group(1).rstrip(".,;:)]}'\u2019\u201d")
        if doi.count("(") < doi.count(")"):
            doi = doi[: doi.rfind(")")]
        doi = doi.lower()
        if doi not in dois:
            dois.append(doi)
    return dois


# Patterns used in the hot path, compiled once.
_WS = re.compile(r"\s")
_ENDS_WITH_YEAR = re.compile(r"\b(?:19|20)\d\d[a-z]?[.)]?$")
_ID_BROKEN_AT_END = re.compile(r"(?:arXiv:|abs/|10\.\d{4,9}/\S*)\d*\.?$")
_TRAILING_YEAR = re.compile(r",\s*(?:19|20)\d\d[a-z]?$")
_IN_PREFIX = re.compile(r"^In:\s*")
_ET_AL_END = re.compile(r",?\s*(?:et al\.?|and others)\s*$")
_AUTHOR_SEP = re.compile(r",\s*(?:and\s+|&\s*)?|\s+and\s+|\s+&\s+")
_INITIALS_LOOSE = re.compile(r"^(?:[A-Z][a-z]?\.?\s?-?)+$")
_INITIALS_DOTTED = re.compile(r"^(?:[A-Z][a-z]?\.\s?-?)+$")
_HAS_INITIAL = re.compile(r"\b[A-Z]\.")
_YEAR_LEAD = re.compile(r"^\(?(?:19|20)\d\d[a-z]?\)?[.,:]\s+")
_NOT_YEARS = re.compile(r"https?://\S+|10\.\d{4,9}/\S+|arxiv[:\s]*\S+|abs/\S+", re.I)
_YEAR_LIMIT = date.today().year + 1


# --- splitting a list into entries ---------------------------------------------------

LABEL_MARKER = re.compile(r"^\[(?P<label>[^\]\d][^\]]{0,60}|\d[^\]]*[A-Za-z][^\]]*)\](?:\s*\S|$)")
AUTHOR_START = re.compile(
    # Surname, F. / Surname, First
    r"^(?:[A-Z\u00c0-\u024f][\w'\u2019\u00c0-\u024f-]+,\s+(?:[A-Z]\.|[A-Z][a-z]+)"
    r"|(?:[A-Z]\.\s?)+[A-Z][\w\u00c0-\u024f-]+,"  # F. Surname,
    # First Surname, / First Surname and
    r"|[A-Z][a-z]+\s+(?:[A-Z]\.\s)?[A-Z][\w\u00c0-\u024f-]+(?:,|\s+and\s))"
)
HANGING_INDENT = (
    3.0,
    40.0,
)  # points: continuation lines sit this far right of the entry's first line


def _as_lines(source) -> list[Line]:
    if isinstance(source, str):
        return [Line(0, t.strip(), 0.0, True, 0) for t in source.splitlines() if t.strip()]
    return [line for line in source if line.text.strip()]


def _clean_furniture(lines: list[Line]) -> list[Line]:
    """Drop page numbers and running heads repeated across pages inside the list."""
    counts: dict[str, set[int]] = {}
    for line in lines:
        counts.setdefault(line.text, set()).add(line.page)
    return [
        line
        for line in lines
        if not (line.text.isdigit() and len(line.text) <= 3)
        and not (len(counts[line.text]) >= 2 and len(line.text) > 15 and line.text[0] not in "[(")
    ]


CAPTION = re.compile(r"^(?:Table|Figure|Fig\.)\s+[A-Z]?\d+\s*[:.]")


def _drop_floats(lines: list[Line]) -> list[Line]:
    """Drop tables and figures that float into the list (an appendix table before the
    "Appendix" heading): blocks indented neither like an entry nor like its continuation."""
    indents = [
        round(line.indent)
        for line in lines
        if line.block_start and line.indent >= HANGING_INDENT[0]
    ]
    if len(indents) < 5:
        return lines
    usual = max(set(indents), key=indents.count)
    if indents.count(usual) < 0.6 * len(indents):
        return lines
    kept, dropping = [], False
    for line in lines:
        if line.block_start:
            dropping = line.indent >= HANGING_INDENT[0] and abs(line.indent - usual) > 1.5
            dropping = dropping or bool(CAPTION.match(line.text))
        if not dropping:
            kept.append(line)
    return kept


def split_entries(source) -> list[str]:
    """Reference entries (joined text, marker kept) from lines with layout or plain text."""
    lines = _clean_furniture(_as_lines(source))
    if not lines:
        return []
    starts = _numbered_starts(lines) or _label_starts(lines)
    if not starts:
        lines = _drop_floats(lines)
        starts = _indent_starts(lines) or _author_starts(lines)
    if not starts:
        return []
    entries = []
    bounds = list(starts) + [len(lines)]
    for begin, end in zip(bounds, bounds[1:], strict=False):
        entries.append(join_lines(line.text for line in lines[begin:end]))
    return [e for e in entries if len(e) >= 8 and not CAPTION.match(e)]


def _numbered_starts(lines: list[Line]) -> list[int]:
    best: list[int] = []
    for pattern in LIST_MARKERS:
        first = next(
            (
                i
                for i, line in enumerate(lines)
                if (m := pattern.match(line.text)) and m.group(1) == "1"
            ),
            None,
        )
        if first is None:
            continue
        run = numbered_run(lines, pattern, first)
        if len(run) > len(best):
            best = run
    if len(best) >= 2 or (best and len(lines) <= 6):
        return best
    return []


def _label_starts(lines: list[Line]) -> list[int]:
    starts = [
        i
        for i, line in enumerate(lines)
        if line.block_start or i == 0 or _ends_entry(lines[i - 1].text)
    ]
    starts = [i for i in starts if LABEL_MARKER.match(lines[i].text)]
    if len(starts) >= 3 or (starts and starts[0] == 0 and len(starts) >= 1 and len(lines) <= 6):
        return starts
    return []


def _indent_starts(lines: list[Line]) -> list[int]:
    """Hanging indent: entries open at the column edge, continuations sit a few points right."""
    low, high = HANGING_INDENT
    edges = [line for line in lines if line.block_start and line.indent < low]
    indented = [line for line in lines if line.block_start and low <= line.indent <= high]
    if len(edges) < 2 or len(indented) < max(2, len(edges) // 4):
        return []
    starts = [
        i for i, line in enumerate(lines) if (line.block_start and line.indent < low) or i == 0
    ]
    return starts


def _ends_entry(text: str) -> bool:
    return text.rstrip().endswith((".", ")", "]")) or bool(_ENDS_WITH_YEAR.search(text))


def _author_starts(lines: list[Line]) -> list[int]:
    starts = [0]
    for i in range(1, len(lines)):
        if _ends_entry(lines[i - 1].text) and AUTHOR_START.match(lines[i].text):
            starts.append(i)
    return starts if len(starts) >= 2 or len(lines) <= 6 else []


def join_lines(lines) -> str:
    """Join wrapped lines: "rein-" + "forcement" -> "reinforcement", "arXiv:2107." + "07201" kept
    whole."""
    text = ""
    for line in lines:
        line = line.strip()
        if not text:
            text = line
        elif text.endswith("-") and line[:1].islower() and not text.endswith(" -"):
            text = text[:-1] + line
        elif text.endswith(("/", "-")) or (
            line[:1].isdigit() and _ID_BROKEN_AT_END.search(text[-40:])
        ):
            text += line
        else:
            text += " " + line
    return " ".join(text.split())


# --- parsing one entry -------------------------------------------------------------

MARKER_PREFIX = re.compile(
    r"^(?:\[[^\]]{1,60}\]|\(\d{1,3}\)|\d{1,3}\.(?=\s)|\d{1,3}(?=\s+[A-Z\u00c0-\u024f]))\s*"
)
QUOTED_TITLE = re.compile(r"[\u201c\"](?P<title>[^\u201d\"]{6,300}?)[,.]?[\u201d\"]")
YEAR_AFTER_AUTHORS = re.compile(
    r"^(?P<authors>.{3,600}?)[.,]?\s+\(?(?P<year>(?:19|20)\d\d)[a-z]?\)?[.,:]\s+(?P<rest>.+)$"
)
INITIAL = re.compile(r"^[A-Z]\.(?:-?[A-Z]\.)*[,.]?$|^[A-Z]\.-[a-z]+\.?,?$")
NOT_TITLE = re.compile(
    r"^(?:in\s*:|in\s+proceedings|proceedings|arxiv|corr\b|url\b|https?:|doi\b|"
    r"technical report|preprint|accessed|available|retrieved|vol\.|pp\.|pages?\b|"
    r"journal of|ieee\b|acm\b|phys\.|nature\b|science\b)",
    re.I,
)
ABBREVIATIONS = ("vs.", "e.g.", "i.e.", "no.", "vol.", "pp.", "ed.", "eds.", "proc.", "st.", "dr.")
SENTENCE_END = re.compile(r"(?<=[^\s])([.?!])\s+(?=\S)")


def _author_year_title(body: str) -> tuple[str | None, str | None]:
    """``(authors, rest)`` when the year follows the author list (APA, ACL, natbib)."""
    match = YEAR_AFTER_AUTHORS.match(body)
    if not match:
        return None, None
    authors = match.group("authors")
    if not _looks_like_authors(authors) or _split_sentence(authors)[1]:
        return None, None
    return authors, match.group("rest")


def _looks_like_authors(text: str) -> bool:
    if len(text) > 600 or NOT_TITLE.match(text):
        return False
    if "," in text or " and " in text or " & " in text or "et al" in text:
        return True
    words = text.split()
    return 1 <= len(words) <= 4 and all(w[:1].isupper() for w in words)  # "OpenAI."


_INITIALS_FIRST = re.compile(r"^(?:[A-Z][a-z]?\.[\s-]?)+[A-Z\u00c0-\u024f]")
_NAME_AND_NAME = re.compile(r"^\S+\s+(?:and|&)\s+[A-Z]")
_SURNAME_STOP = re.compile(r"^[A-Z\u00c0-\u024f][^\s,.;:]+\.$")
_SURNAME_COMMA = re.compile(r"^[A-Z\u00c0-\u024f][^\s,.;:]*,$")


def _split_sentence(text: str, names: bool = True) -> tuple[str, str]:
    """First sentence and the rest, where a full stop after an initial or a surname
    followed by a comma does not end a sentence ("Almeida, T. A., Hidalgo, J. M. G.").

    When names are written initials first ("R. Berri and A. G. Silva.") the word
    after an initial is always the surname, never the title.
    """
    initials_first = bool(_INITIALS_FIRST.match(text))
    for match in SENTENCE_END.finditer(text):
        end = match.start() + 1
        before = text[:end]
        after = text[match.end() :]
        last_word = text[text.rfind(" ", 0, end) + 1 : end]
        next_token = after.split(None, 1)[0] if after else ""
        if match.group(1) == ".":
            if not names:
                if last_word.lower() in ABBREVIATIONS:
                    continue
                return before.rstrip(".").strip(), after.strip()
            if _next_is_name_part(next_token, after):
                continue
            if (
                INITIAL.match(last_word)
                and next_token[:1].isupper()
                and _NAME_AND_NAME.match(after)
            ):
                continue  # "Diederik P. Kingma and Jimmy Ba."
            if initials_first and INITIAL.match(last_word) and next_token[:1].isupper():
                continue
            if INITIAL.match(last_word) and _SURNAME_STOP.match(next_token):
                continue  # "Y. Abouelnaga. Action ...": the surname closing the list
            if last_word.lower() in ABBREVIATIONS:
                continue
        return before.rstrip(".").strip(), after.strip()
    return text.strip(), ""


def _next_is_name_part(token: str, after: str) -> bool:
    """After "J." comes "M." or "Smith," or "and": still the author list."""
    if not token:
        return False
    if INITIAL.match(token) or token in ("and", "&"):
        return True
    return len(token) > 2 and token[-1] == "," and bool(_SURNAME_COMMA.match(token))


_NON_LETTERS = re.compile(r"[\W\d_]+")


def _clean_title(title: str | None) -> str | None:
    if not title:
        return None
    title = title.strip(" .,;:")
    title = _TRAILING_YEAR.sub("", title)  # "Action Annotation Tool, 2017"
    title = _IN_PREFIX.sub("", title)
    if len(title) < 6 or len(title.split()) < 2 and len(title) < 12:
        return None
    if (
        NOT_TITLE.match(title)
        or "et al" in title
        or find_arxiv_ids(title)
        or DOI_PATTERN.search(title)
    ):
        return None
    if len(_NON_LETTERS.sub("", title)) < 0.6 * len(title):
        return None
    return title


def _parse_authors(text: str | None) -> list[str]:
    if not text:
        return []
    text = _ET_AL_END.sub("", text.strip().rstrip("."))
    parts = [p.strip() for p in _AUTHOR_SEP.split(text) if p.strip()]
    # "Surname, F. M." / "Surname, First M": pair a name with the initials that follow it.
    if len(parts) >= 2 and all(
        _INITIALS_LOOSE.match(p) or len(p.split()) <= 3 for p in parts[1::2]
    ):
        if _INITIALS_DOTTED.match(parts[1]) or (len(parts[0].split()) == 1 and len(parts) % 2 == 0):
            # the sentence split took the full stop of the last initial: "Yamakami, A"
            return [
                f"{re.sub(r'(?<=[A-Z])$', '.', parts[i + 1])} {parts[i]}"
                for i in range(0, len(parts) - 1, 2)
            ]
    parts = [p for p in parts if len(p) > 1 and not p.lower().startswith("et al")]
    # Physics style runs on with commas into the title and journal ("R. N. Cahn and
    # J. D. Jackson, Spin orbit and tensor forces ..., Phys. Rev."): stop there.
    for index, part in enumerate(parts):
        if not _name_like(part):
            parts = parts[:index]
            break
    initialled = [" " in p and bool(_HAS_INITIAL.search(p)) for p in parts]
    if sum(initialled) >= max(1, len(parts) - 1):
        # "D. C. Johnston, Adv. Phys. 59": a bare word after initialled names is a journal.
        parts = [p for p, flag in zip(parts, initialled, strict=True) if flag or " " in p]
    return parts


NAME_PARTICLES = {
    "de",
    "van",
    "von",
    "der",
    "den",
    "di",
    "da",
    "du",
    "le",
    "la",
    "del",
    "dos",
    "y",
    "bin",
    "al",
}


def _name_like(part: str) -> bool:
    words = part.split()
    return len(words) <= 5 and all(w[:1].isupper() or w.lower() in NAME_PARTICLES for w in words)


def _year(text: str) -> int | None:
    """The publication year: the last plausible year outside ids, DOIs and URLs."""
    cleaned = _NOT_YEARS.sub(" ", text)
    years = [int(m.group(1)) for m in YEAR_PATTERN.finditer(cleaned)]
    limit = _YEAR_LIMIT
    years = [y for y in years if y <= limit]
    return years[-1] if years else None


def parse_entry(raw: str) -> dict:
    """One reference string -> {raw, arxiv_id, doi, title, year, authors}."""
    body = MARKER_PREFIX.sub("", raw, count=1).strip()
    arxiv_ids = find_arxiv_ids(raw)
    dois = [d for d in find_dois(raw) if not d.startswith("10.48550/")]
    authors_text, title = None, None

    quoted = QUOTED_TITLE.search(body)
    if quoted:
        title = quoted.group("title")
        authors_text = body[: quoted.start()].strip(" .,:")
    else:
        authors_text, rest = _author_year_title(body)
        if authors_text is not None and rest is not None:
            title, _ = _split_sentence(rest, names=False)
        else:
            authors_text, rest = _split_sentence(body)
            if not _looks_like_authors(authors_text):
                authors_text, rest = None, body
            year_lead = _YEAR_LEAD.match(rest)
            if year_lead:
                rest = rest[year_lead.end() :]
            title, _ = _split_sentence(rest, names=False) if rest else (None, "")
    return {
        "raw": raw,
        "arxiv_id": arxiv_ids[0] if arxiv_ids else None,
        "doi": dois[0] if dois else None,
        "title": _clean_title(title),
        "year": _year(body),
        "authors": _parse_authors(authors_text),
    }


def parse_references(source) -> list[dict]:
    """Entries of a reference list (``pdf_text.Line`` list or plain text), numbered from 1."""
    return [
        {"position": i, **parse_entry(raw)} for i, raw in enumerate(split_entries(source), start=1)
    ]


def references_from_pdf(source, **limits) -> list[dict]:
    """The parsed reference list of one PDF (bytes or path); raises ``PdfError`` for bad input."""
    from .pdf_text import extract_document

    document = extract_document(source, **limits)
    return parse_references(document.reference_lines)


# --- matching to the db ------------------------------------------------------------

TITLE_CUTOFF = 93.0
MIN_TITLE_CHARS = 15


def normalize_title(title: str | None) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", (title or "").lower()).split())


@dataclass
class PaperIndex:
    """Lookup tables over ``papers`` built once per run (10k titles: well under a second)."""

    arxiv: set[str]
    doi: dict[str, str]
    title_ids: list[str]
    titles: list[str]

    @classmethod
    def build(cls, db: sqlite_utils.Database) -> PaperIndex:
        arxiv, doi, ids, titles = set(), {}, [], []
        for row in db.query("select id, doi, title from papers"):
            arxiv.add(row["id"])
            if row["doi"]:
                doi[row["doi"].lower()] = row["id"]
            normalized = normalize_title(row["title"])
            if len(normalized) >= MIN_TITLE_CHARS:
                ids.append(row["id"])
                titles.append(normalized)
        return cls(arxiv, doi, ids, titles)

    def match(self, ref: dict) -> tuple[str | None, str | None]:
        if ref.get("arxiv_id") and ref["arxiv_id"] in self.arxiv:
            return ref["arxiv_id"], "arxiv_id"
        if ref.get("doi") and ref["doi"].lower() in self.doi:
            return self.doi[ref["doi"].lower()], "doi"
        title = normalize_title(ref.get("title"))
        if len(title) >= MIN_TITLE_CHARS and self.titles:
            best = process.extractOne(
                title, self.titles, scorer=fuzz.ratio, score_cutoff=TITLE_CUTOFF
            )
            if best:
                return self.title_ids[best[2]], "title"
        return None, None


def match_references(
    db: sqlite_utils.Database,
    references: list[dict],
    index: PaperIndex | None = None,
    exclude_id: str | None = None,
) -> list[dict]:
    """Fill ``matched_id`` and ``match_method`` (arxiv_id | doi | title | None) on each reference.

    Pass a prebuilt ``PaperIndex`` when matching many papers' lists in one run;
    a match to ``exclude_id`` (the citing paper itself) counts as no match.
    """
    index = index or PaperIndex.build(db)
    for ref in references:
        ref["matched_id"], ref["match_method"] = index.match(ref)
        if exclude_id is not None and ref["matched_id"] == exclude_id:
            ref["matched_id"], ref["match_method"] = None, None
    return references
