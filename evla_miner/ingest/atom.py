"""Read one arXiv API answer (an Atom 1.0 feed) into a ``Feed``: pure, no I/O.

``parse(content)`` gives ``Feed(total, start, entries, error)``. ``entries``
are public ``arxiv.Result`` objects built with the package's public
constructor, not paper dicts: ``harvest.paper_from_result``, the tests and
anyone reading a ``Page`` already speak ``arxiv.Result`` (``get_short_id()``,
``pdf_url``...), so the parser can change without touching them. Only the
package's public classes are used, never its private parser.

Both feed formats arXiv has served are read (see ../shared/fixtures/notes.md
§1): the 2016 one (per-element namespace declarations, ``http://`` links,
``rel="self"``) and the 2026 one (namespaces on ``<feed>``, ``https://``
links, a title that can be ``0``).

Unlike a recovering parser, this one never turns a bad body into a short page
of results. A body that is not a complete Atom feed raises ``NotAFeed`` saying
what it was, because "truncated response body" for a proxy's HTML error page
sends whoever reads the log after the wrong fault: an HTML page (with its
title: a proxy's "503 Service Unavailable" page served with status 200), a
body that is not XML (with its first bytes), XML that is not Atom, an empty
body, or a feed that is truncated or malformed. arXiv's error feeds (one entry
whose id is ``…/api/errors#…``) give ``Feed.error``, arXiv's message, and no
entries.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import arxiv
from lxml import etree

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "arxiv": "http://arxiv.org/schemas/atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
}
FEED_TAG = "{http://www.w3.org/2005/Atom}feed"
ERROR_ID = "/api/errors"
HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.S | re.I)


class NotAFeed(ValueError):
    """The body is not a complete Atom feed; the message says what it is instead.

    For a body that is no feed at all, ``what`` names it ("an HTML page", "a
    body that is not XML"...) and ``detail`` shows it (the page title, the
    first bytes), so a caller that knows the HTTP status can say "arXiv
    answered with an HTML page (HTTP 200) instead of an Atom feed". Both are
    None for a feed that is broken (truncated, malformed, missing a field).
    """

    def __init__(
        self, message: str | None = None, *, what: str | None = None, detail: str | None = None
    ):
        super().__init__(message or f"{what} instead of an Atom feed ({detail})")
        self.what = what
        self.detail = detail


@dataclass(frozen=True)
class Feed:
    """One page: arXiv's total for the query, the page's start index, its entries, an error."""

    total: int
    start: int
    entries: list[arxiv.Result] = field(default_factory=list)
    error: str | None = None


def parse(content: bytes) -> Feed:
    """The feed in ``content``; raises ``NotAFeed`` when it is not a complete Atom feed."""
    if _looks_like_html(content):
        raise NotAFeed(what="an HTML page", detail=f"title: {_html_title(content)}")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, recover=False
    )
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise _unreadable(content, exc) from None
    if root is None or root.tag != FEED_TAG:
        raise NotAFeed(
            what="an XML document that is not Atom", detail=f"starts with {_head(content)}"
        )
    total = _int(root, "opensearch:totalResults")
    start = _int(root, "opensearch:startIndex", default=0)
    entries: list[arxiv.Result] = []
    error = None
    for entry in root.iterfind("atom:entry", NS):
        entry_id = (_text(entry, "atom:id") or "").strip()
        if ERROR_ID in entry_id:
            error = " ".join((_text(entry, "atom:summary") or entry_id).split())
            continue
        entries.append(_result(entry, entry_id))
    return Feed(total, start, entries, error)


def error_message(content: bytes) -> str | None:
    """arXiv's message when ``content`` is an error feed, else None (never raises)."""
    try:
        return parse(content).error
    except NotAFeed:
        return None


# --- entries ---------------------------------------------------------------------


def _result(entry: etree._Element, entry_id: str) -> arxiv.Result:
    if not entry_id:
        raise NotAFeed("Atom feed entry without an <id>")
    authors = [
        arxiv.Result.Author(
            _text(author, "atom:name") or "",
            [a.text for a in author.iterfind("arxiv:affiliation", NS) if a.text is not None],
        )
        for author in entry.iterfind("atom:author", NS)
    ]
    links = [
        arxiv.Result.Link(
            link.get("href"),
            title=link.get("title"),
            rel=link.get("rel") or "",
            content_type=link.get("type"),
        )
        for link in entry.iterfind("atom:link", NS)
        if link.get("href") is not None
    ]
    categories = [
        c.get("term") for c in entry.iterfind("atom:category", NS) if c.get("term") is not None
    ]
    primary = entry.find("arxiv:primary_category", NS)
    return arxiv.Result(
        entry_id=entry_id,
        updated=_datetime(entry, "atom:updated", entry_id),
        published=_datetime(entry, "atom:published", entry_id),
        title=re.sub(r"\s+", " ", _text(entry, "atom:title") or ""),
        authors=authors,
        summary=_text(entry, "atom:summary") or "",
        comment=_text(entry, "arxiv:comment"),
        journal_ref=_text(entry, "arxiv:journal_ref"),
        doi=_text(entry, "arxiv:doi"),
        primary_category=(primary.get("term") if primary is not None else None) or "",
        categories=categories,
        links=links,
    )


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path, NS)
    return None if found is None else found.text


def _int(root: etree._Element, path: str, default: int | None = None) -> int:
    text = _text(root, path)
    try:
        return int((text or "").strip())
    except ValueError:
        if default is not None and text is None:
            return default
        raise NotAFeed(f"Atom feed without a readable <{path}>") from None


def _datetime(entry: etree._Element, path: str, entry_id: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime (2016 feeds use offsets like -04:00)."""
    text = (_text(entry, path) or "").strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NotAFeed(
            f"Atom feed entry {entry_id} without a readable <{path.split(':')[1]}>"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --- saying what a bad body is ----------------------------------------------------


def _looks_like_html(content: bytes) -> bool:
    head = content[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<feed" in head:
        return False
    return head.startswith(b"<!doctype html") or b"<html" in head


def _html_title(content: bytes) -> str:
    match = HTML_TITLE.search(content[:65536])
    if not match:
        return "(no title)"
    title = " ".join(html.unescape(match.group(1).decode("utf-8", errors="replace")).split())
    return title[:120] or "(no title)"


def _unreadable(content: bytes, exc: etree.XMLSyntaxError) -> NotAFeed:
    """What a body lxml cannot read is: empty, a feed cut short or broken, or not XML at all."""
    stripped = content.strip()
    if not stripped:
        return NotAFeed(what="an empty body", detail="0 bytes")
    head = stripped[:2048]
    if head.startswith(b"<?xml") or b"<feed" in head:
        if not stripped.endswith(b"</feed>"):
            return NotAFeed(
                f"truncated response body (the Atom feed stops after {len(content):,} bytes)"
            )
        return NotAFeed(f"malformed Atom feed ({' '.join(str(exc).split())[:160]})")
    return NotAFeed(what="a body that is not XML", detail=f"starts with {_head(content)}")


def _head(content: bytes) -> str:
    return repr(content.lstrip()[:40])
