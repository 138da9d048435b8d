"""Clients for the citation services: Semantic Scholar Graph API and OpenAlex.

One client object per service. Both share ``ServiceClient``, which applies
the politeness rules from ``../shared/fixtures/notes.md`` §4-5 through the
shared ``core.http.HttpClient``:

- a minimum interval between the starts of two requests (Semantic Scholar:
  1 request/second, the introductory limit for keyed use and the safe choice
  for the shared pool), and one deadline of ``timeout`` seconds per request;
- HTTP 429 (and 5xx / timeouts / connection resets) retried with exponential
  backoff, ``max_retries`` attempts in all; S2 sends **no** Retry-After, so
  the wait doubles from ``backoff_base`` up to ``backoff_max`` (the reference
  client waits 5-60 s, 10 attempts); a Retry-After header, when present, sets
  the shortest wait;
- every answer (200 and 404) cached in the ``citation_cache`` table with its
  fetch time, so a weekly re-run asks only for what is new or stale.

The base URL is a constructor argument so tests replay recorded responses from
a local server through the real parsing; the API key comes from the
environment (``S2_API_KEY`` / ``SEMANTIC_SCHOLAR_API_KEY``, ``OPENALEX_API_KEY``)
and is never part of a cache key.

Both clients offer ``fetch_references(arxiv_ids)``, the one call
``scoring.graph`` needs: for each arXiv id, the works it cites as
``CitedWork`` dicts ({title, year, arxiv_id, doi, s2_id, openalex_id}), or
``None`` when the service does not know the paper. That call is the
``CitationClient`` protocol; ``VenueClient`` is what ``scoring.venues`` needs.
The graph and venue stages are typed against these protocols, so a test can
pass any object with the same methods (a fake answering from a dict).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol, Self
from urllib.parse import quote, urlencode

import sqlite_utils

from ..core.db import now_iso
from ..core.errors import EvlaError
from ..core.http import HttpClient, Response, Transport, TransportError, retry_after_seconds
from ..core.records import arxiv_id_or_none
from ..core.settings import CitationSettings

MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # a 500-paper batch with references is a few MB


class CitationApiError(EvlaError):
    """A citation service refused a request (bad request, auth) or kept failing after retries."""


class CitationClient(Protocol):
    """What the graph stage needs from a citation service.

    ``service`` names it (``semantic_scholar`` | ``openalex``; the run records it and
    the edges' origin is taken from it). ``fetch_references`` answers, for each arXiv
    id asked about, the works that paper cites as ``CitedWork`` dicts (title, year,
    arxiv_id, doi, s2_id, openalex_id; unknown fields ``None``), or ``None`` when the
    service does not know the paper. Raises ``CitationApiError`` when the service fails.
    """

    service: str

    def fetch_references(self, arxiv_ids: list[str]) -> dict[str, list[dict] | None]: ...


class VenueClient(Protocol):
    """What the venue stage needs from a citation service.

    ``source`` is the name a venue found through it is recorded under (``s2`` |
    ``openalex``); ``venue_id`` is the id the service finds a paper by (from its arXiv
    id, else its DOI; ``None`` when it has neither); ``fetch_venues`` maps each such id
    to a venue record (title, authors, year, venue, kind, doi) or ``None`` for papers
    the service does not know.
    """

    source: str

    def venue_id(self, arxiv_id: str | None, doi: str | None) -> str | None: ...

    def fetch_venues(self, paper_ids: list[str]) -> dict[str, dict | None]: ...


class ResponseCache:
    """``citation_cache`` rows: (service, key) -> status, body, fetched_at.

    ``max_age`` decides freshness; a stale row is refetched and replaced.
    """

    def __init__(self, db: sqlite_utils.Database, max_age: timedelta | None = timedelta(days=30)):
        self.db = db
        self.max_age = max_age

    def get(self, service: str, key: str) -> tuple[int, str] | None:
        rows = list(self.db["citation_cache"].rows_where("service = ? and key = ?", [service, key]))
        if not rows:
            return None
        row = rows[0]
        if self.max_age is not None:
            fetched = datetime.fromisoformat(row["fetched_at"])
            if datetime.now(UTC) - fetched > self.max_age:
                return None
        return row["status"], row["body"]

    def put(self, service: str, key: str, url: str, status: int, body: str) -> None:
        self.db.table("citation_cache").upsert(
            {
                "service": service,
                "key": key,
                "url": url,
                "status": status,
                "body": body,
                "fetched_at": now_iso(),
            },
            pk=("service", "key"),
        )


class ServiceClient:
    """What the two clients share: an ``HttpClient`` (pacing, deadline, retries), cache, JSON."""

    service = "service"
    source = "service"  # the short name a venue found through the service is recorded under
    default_base_url = ""
    default_min_interval = 1.0
    api_key_env: tuple[str, ...] = ()  # environment variables holding the API key, first set wins

    @classmethod
    def key_from_env(cls) -> str | None:
        return next((os.environ[name] for name in cls.api_key_env if os.environ.get(name)), None)

    @classmethod
    def from_env(cls, **kwargs) -> Self:
        return cls(api_key=cls.key_from_env(), **kwargs)

    retry_statuses = (429, 500, 502, 503, 504)

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        db: sqlite_utils.Database | None = None,
        *,
        cache_max_age: timedelta | None = timedelta(days=30),
        min_interval: float | None = None,
        max_retries: int = 10,
        backoff_base: float = 5.0,
        backoff_max: float = 60.0,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: Transport | None = None,
        on_retry: Callable[[str], None] | None = None,
        max_bytes: int | None = MAX_RESPONSE_BYTES,
    ):
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.api_key = api_key
        self.cache = ResponseCache(db, cache_max_age) if db is not None else None
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.sleep = sleep
        interval = self.default_min_interval if min_interval is None else min_interval
        self.http = HttpClient(
            name=self.service,
            min_interval=interval,
            timeout=timeout,
            retries=max(max_retries - 1, 0),
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            retry_statuses=self.retry_statuses,
            max_bytes=max_bytes,
            on_retry=on_retry,
            sleep=sleep,
            clock=clock,
            transport=transport,
        )
        self.cache_hits = 0

    @property
    def requests_made(self) -> int:
        """Network requests (retries included), cache hits excluded."""
        return self.http.requests_made

    # -- hooks for subclasses ---------------------------------------------------
    def _auth(self, headers: dict, params: dict) -> None:
        """Add the API key to a request (header or parameter, per service)."""

    # -- the request loop -------------------------------------------------------
    def backoff(self, attempt: int, response: Response | None) -> float:
        """Seconds before retry ``attempt`` (1-based): exponential, at least Retry-After if sent."""
        headers: Mapping[str, str] = getattr(response, "headers", None) or {}
        return self.http.backoff(attempt, retry_after_seconds(headers.get("Retry-After")))

    def request(self, method: str, path: str, params: dict | None = None, body=None):
        """JSON of a 200 answer, ``None`` for 404; raises ``CitationApiError`` otherwise."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        query = urlencode(params)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        payload = json.dumps(body, separators=(",", ":")) if body is not None else None
        key = hashlib.sha256(f"{method} {path}?{query}\n{payload or ''}".encode()).hexdigest()
        if self.cache is not None:
            cached = self.cache.get(self.service, key)
            if cached is not None:
                self.cache_hits += 1
                status, text = cached
                return None if status == 404 else json.loads(text)
        headers = {"Accept": "application/json"}
        send_params = dict(params)
        self._auth(headers, send_params)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.http.request(
                method, f"{self.base_url}{path}", params=send_params, data=payload, headers=headers
            )
        except TransportError as exc:
            raise CitationApiError(f"{self.service}: {method} {url}: {exc}") from None
        status = response.status
        if status == 200:
            try:
                data = json.loads(response.body)
            except ValueError:
                raise CitationApiError(
                    f"{self.service}: {method} {url} -> HTTP 200 but not JSON: "
                    f"{response.body[:80]!r}"
                ) from None
            if self.cache is not None:
                self.cache.put(self.service, key, url, status, response.text)
            return data
        if status == 404:
            if self.cache is not None:
                self.cache.put(self.service, key, url, status, response.text)
            return None
        raise CitationApiError(
            f"{self.service}: {method} {url} -> HTTP {status}: {_error_message(response)}"
        )


def _error_message(response: Response) -> str:
    try:
        data = json.loads(response.body)
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        return str(data.get("error") or data.get("message") or data)[:200]
    return str(data)[:200]


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _clean_doi(doi: str | None) -> str | None:
    if not doi:
        return None
    doi = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:"):
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix) :]
    return doi.lower() or None


def _arxiv_from_doi(doi: str | None) -> str | None:
    """arXiv DOIs (10.48550/arXiv.2406.04339) carry the arXiv id."""
    if doi and doi.lower().startswith("10.48550/arxiv."):
        return doi[len("10.48550/arxiv.") :]
    return None


# --- Semantic Scholar -------------------------------------------------------------


class SemanticScholarClient(ServiceClient):
    """Semantic Scholar Academic Graph API (``/graph/v1``), key in the ``x-api-key`` header."""

    service = "semantic_scholar"
    source = "s2"
    default_base_url = "https://api.semanticscholar.org/graph/v1"
    default_min_interval = 1.0
    batch_size = 500  # the API's maximum ids per /paper/batch
    reference_fields = ("title", "year", "externalIds")
    api_key_env = ("S2_API_KEY", "SEMANTIC_SCHOLAR_API_KEY")

    def _auth(self, headers: dict, params: dict) -> None:
        if self.api_key:
            headers["x-api-key"] = self.api_key

    @staticmethod
    def _path_id(paper_id: str) -> str:
        # DOIs contain slashes, which the API accepts unescaped in the path.
        return quote(paper_id, safe=":/.")

    def paper(self, paper_id: str, fields: Iterable[str] = ("title",)) -> dict | None:
        """``GET /paper/{id}``; ``None`` when the paper is unknown (404)."""
        return self.request(
            "GET", f"/paper/{self._path_id(paper_id)}", {"fields": ",".join(fields)}
        )

    def papers(self, paper_ids: list[str], fields: Iterable[str] = ("title",)) -> list[dict | None]:
        """``POST /paper/batch`` in chunks of 500; unknown ids give ``None`` at their position."""
        out: list[dict | None] = []
        for chunk in _chunks(list(paper_ids), self.batch_size):
            data = self.request(
                "POST", "/paper/batch", {"fields": ",".join(fields)}, {"ids": chunk}
            )
            if data is None:  # the whole batch unknown
                data = [None] * len(chunk)
            out.extend(data)
        return out

    def _paged(self, path: str, fields: Iterable[str], page_size: int) -> Iterator[dict]:
        offset = 0
        while True:
            data = self.request(
                "GET", path, {"fields": ",".join(fields), "offset": offset, "limit": page_size}
            )
            if data is None:
                return
            yield from data.get("data") or []
            if data.get("next") is None:
                return
            offset = data["next"]

    def references(
        self, paper_id: str, fields: Iterable[str] = reference_fields, page_size: int = 1000
    ) -> Iterator[dict]:
        """The papers ``paper_id`` cites (``citedPaper`` objects), every page; unresolved ones have
        paperId None."""
        for item in self._paged(f"/paper/{self._path_id(paper_id)}/references", fields, page_size):
            yield item.get("citedPaper") or {}

    def citations(
        self, paper_id: str, fields: Iterable[str] = reference_fields, page_size: int = 1000
    ) -> Iterator[dict]:
        """The papers citing ``paper_id`` (``citingPaper`` objects), every page."""
        for item in self._paged(f"/paper/{self._path_id(paper_id)}/citations", fields, page_size):
            yield item.get("citingPaper") or {}

    def search(
        self, query: str, fields: Iterable[str] = ("title",), limit: int = 10, offset: int = 0
    ) -> dict:
        """One page of ``/paper/search`` (``{"total", "offset", "next", "data"}``)."""
        params = {"query": query, "fields": ",".join(fields), "offset": offset, "limit": limit}
        return self.request("GET", "/paper/search", params) or {
            "total": 0,
            "offset": offset,
            "data": [],
        }

    @staticmethod
    def cited_work(paper: dict) -> dict:
        """A Semantic Scholar paper object as a ``CitedWork`` dict."""
        ids = paper.get("externalIds") or {}
        doi = _clean_doi(ids.get("DOI"))
        return {
            "title": paper.get("title"),
            "year": paper.get("year"),
            "arxiv_id": arxiv_id_or_none(ids.get("ArXiv")) or _arxiv_from_doi(doi),
            "doi": doi,
            "s2_id": paper.get("paperId"),
            "openalex_id": None,
        }

    def fetch_references(self, arxiv_ids: list[str]) -> dict[str, list[dict] | None]:
        """What each arXiv paper cites, in one batch call per 500 papers.

        Uses ``references.<field>`` on ``/paper/batch``; references S2 could not
        resolve (no paperId and no title) are dropped.
        """
        fields = ["title", "externalIds"] + [
            f"references.{f}" for f in ("paperId",) + self.reference_fields
        ]
        papers = self.papers([f"ARXIV:{a}" for a in arxiv_ids], fields)
        out: dict[str, list[dict] | None] = {}
        for arxiv_id, paper in zip(arxiv_ids, papers, strict=False):
            if paper is None:
                out[arxiv_id] = None
                continue
            works = [self.cited_work(ref) for ref in paper.get("references") or [] if ref]
            out[arxiv_id] = [w for w in works if w["title"] or w["s2_id"]]
        return out

    # Fields for the publication venue (core.venues), with what the agreement check needs.
    venue_fields = (
        "title",
        "year",
        "authors",
        "venue",
        "publicationVenue",
        "journal",
        "externalIds",
        "publicationTypes",
    )

    @staticmethod
    def venue_record(paper: dict) -> dict:
        """A paper object as the record a venue is taken from: title, author names, year,
        venue name, kind (conference | journal | None) and DOI."""
        journal = paper.get("journal") or {}
        publication_venue = paper.get("publicationVenue") or {}
        types = paper.get("publicationTypes") or []
        kind = publication_venue.get("type")
        if kind not in ("conference", "journal"):
            kind = "conference" if "Conference" in types else "journal" if journal else None
        return {
            "title": paper.get("title"),
            "authors": [a.get("name") for a in paper.get("authors") or [] if a.get("name")],
            "year": paper.get("year"),
            "venue": publication_venue.get("name") or paper.get("venue") or journal.get("name"),
            "kind": kind,
            "doi": _clean_doi((paper.get("externalIds") or {}).get("DOI")),
        }

    @staticmethod
    def venue_id(arxiv_id: str | None, doi: str | None) -> str | None:
        """The S2 id of a paper: ``ARXIV:<id>``, else ``DOI:<doi>``."""
        return f"ARXIV:{arxiv_id}" if arxiv_id else (f"DOI:{doi}" if doi else None)

    def fetch_venues(self, paper_ids: list[str]) -> dict[str, dict | None]:
        """Venue records for S2 ids (``ARXIV:...``, ``DOI:...``), one batch call per 500;
        ``None`` for papers S2 does not know."""
        papers = self.papers(paper_ids, self.venue_fields)
        return {
            paper_id: self.venue_record(paper) if paper else None
            for paper_id, paper in zip(paper_ids, papers, strict=True)
        }


# --- OpenAlex ---------------------------------------------------------------------


class OpenAlexClient(ServiceClient):
    """OpenAlex ``/works``; key as the ``api_key`` parameter (required since 2026-02)."""

    service = "openalex"
    source = "openalex"
    default_base_url = "https://api.openalex.org"
    default_min_interval = 0.1  # the API allows 100/s; stay far below
    filter_batch = 50  # ids OR-ed in one filter
    api_key_env = ("OPENALEX_API_KEY",)

    def _auth(self, headers: dict, params: dict) -> None:
        if self.api_key:
            params["api_key"] = self.api_key

    @staticmethod
    def short_id(work_id: str) -> str:
        return work_id.rsplit("/", 1)[-1]

    def work(self, work_id: str) -> dict | None:
        """``GET /works/{id}`` (W id, or ``doi:...``); ``None`` when unknown."""
        return self.request("GET", f"/works/{quote(work_id, safe=':/.')}")

    def works(self, filter_: str, select: str | None = None, per_page: int = 100) -> Iterator[dict]:
        """Every result of a filtered list, following ``meta.next_cursor``."""
        cursor: str | None = "*"
        while cursor:
            data = self.request(
                "GET",
                "/works",
                {"filter": filter_, "select": select, "per-page": per_page, "cursor": cursor},
            )
            if data is None:
                return
            yield from data.get("results") or []
            cursor = (data.get("meta") or {}).get("next_cursor")

    @classmethod
    def cited_work(cls, work: dict) -> dict:
        ids = work.get("ids") or {}
        doi = _clean_doi(work.get("doi") or ids.get("doi"))
        return {
            "title": work.get("title") or work.get("display_name"),
            "year": work.get("publication_year"),
            "arxiv_id": _arxiv_from_doi(doi),
            "doi": doi,
            "s2_id": None,
            "openalex_id": cls.short_id(work["id"]) if work.get("id") else None,
        }

    def fetch_references(self, arxiv_ids: list[str]) -> dict[str, list[dict] | None]:
        """What each arXiv paper cites: its work by arXiv DOI, then its ``referenced_works``
        resolved in batches."""
        out: dict[str, list[dict] | None] = {}
        referenced: dict[str, list[str]] = {}
        for arxiv_id in arxiv_ids:
            work = self.work(f"doi:10.48550/arXiv.{arxiv_id}")
            if work is None:
                out[arxiv_id] = None
                continue
            referenced[arxiv_id] = [self.short_id(w) for w in work.get("referenced_works") or []]
        wanted = sorted({w for ws in referenced.values() for w in ws})
        resolved: dict[str, dict] = {}
        for chunk in _chunks(wanted, self.filter_batch):
            for work in self.works(
                "openalex_id:" + "|".join(chunk), select="id,doi,title,publication_year,ids"
            ):
                resolved[self.short_id(work["id"])] = self.cited_work(work)
        for arxiv_id, ws in referenced.items():
            out[arxiv_id] = [
                resolved.get(w)
                or {
                    "title": None,
                    "year": None,
                    "arxiv_id": None,
                    "doi": None,
                    "s2_id": None,
                    "openalex_id": w,
                }
                for w in ws
            ]
        return out

    @staticmethod
    def venue_record(work: dict) -> dict:
        """An OpenAlex work as the record a venue is taken from. The venue is the first
        location whose source is a journal or conference (repositories such as arXiv or
        HAL hold the preprint, not the publication)."""
        locations = [work.get("primary_location") or {}] + list(work.get("locations") or [])
        source: dict = next(
            (
                loc["source"]
                for loc in locations
                if (loc.get("source") or {}).get("type") in ("journal", "conference")
            ),
            {},
        )
        names = [(a.get("author") or {}).get("display_name") for a in work.get("authorships") or []]
        return {
            "title": work.get("title") or work.get("display_name"),
            "authors": [name for name in names if name],
            "year": work.get("publication_year"),
            "venue": source.get("display_name"),
            "kind": source.get("type"),
            "doi": _clean_doi(work.get("doi")),
        }

    @staticmethod
    def venue_id(arxiv_id: str | None, doi: str | None) -> str | None:
        """The OpenAlex id of a paper: its arXiv DOI, else ``doi:<doi>``."""
        return f"doi:10.48550/arXiv.{arxiv_id}" if arxiv_id else (f"doi:{doi}" if doi else None)

    def fetch_venues(self, work_ids: list[str]) -> dict[str, dict | None]:
        """Venue records for works (``doi:10.48550/arXiv.<id>``, ``doi:<doi>``, ``W...``);
        ``None`` for works OpenAlex does not know."""
        out: dict[str, dict | None] = {}
        for work_id in work_ids:
            work = self.work(work_id)
            out[work_id] = self.venue_record(work) if work else None
        return out


SERVICES: dict[str, type[SemanticScholarClient] | type[OpenAlexClient]] = {
    "s2": SemanticScholarClient,
    "semantic_scholar": SemanticScholarClient,
    "openalex": OpenAlexClient,
}


def has_api_key(service: str) -> bool:
    """Whether the environment holds an API key for ``service`` (graph and weekly go online
    then)."""
    return service in SERVICES and SERVICES[service].key_from_env() is not None


def client_from_settings(
    settings: CitationSettings,
    db: sqlite_utils.Database | None = None,
    transport: Transport | None = None,
) -> SemanticScholarClient | OpenAlexClient:
    """The client for ``settings.service`` (s2 | openalex), at its configured base URL if set.

    ``transport`` replaces the HTTP engine (tests replay recorded answers through it); the
    deadline stays the settings' ``timeout_seconds`` either way.
    """
    if settings.service not in SERVICES:
        raise EvlaError(f"unknown citation service {settings.service!r}; use s2 or openalex")
    cls = SERVICES[settings.service]
    base = settings.openalex_base_url if cls is OpenAlexClient else settings.s2_base_url
    return cls.from_env(base_url=base, db=db, timeout=settings.timeout_seconds, transport=transport)
