"""The one client object for the arXiv query API.

It builds the query URL itself (the parameters arXiv's user manual documents,
the same the ``arxiv`` package sends), sends it through the shared
``core.http.HttpClient`` and reads the Atom feed with ``ingest.atom`` into
public ``arxiv.Result`` objects. From the ``arxiv`` package it uses only the
public ``Result``, ``SortCriterion`` and ``SortOrder``.

It does not use the package's paging/retry loop (``Client.results``), because
that loop differs from what a harvester that must not silently miss papers
needs (see ../shared/fixtures/notes.md §2):

* it retries immediately (no backoff) and only on HTTP errors, connection
  errors and empty non-first pages; it has no request timeout at all, so a
  hung response blocks forever;
* an empty *first* page ends the search silently, indistinguishable from a
  real empty result;
* its parser runs lxml with ``recover=True``, so a truncated body becomes a
  short page of results without any error.

So this client fetches one page per call and does the fault handling itself on
top of ``HttpClient`` (one request at a time, at least ``delay_seconds``
between the starts of two requests, retries included, one deadline of
``timeout_seconds`` per request covering the whole body): exponential backoff
on 429, 5xx, timeouts, connection resets, truncated bodies, bodies that are
not an Atom feed (an HTML error page, garbage: the message says which) and
unexpectedly empty pages, then a one-line ``ArxivUnavailable`` error. An HTTP
4xx error feed (a query arXiv rejects) is not retried: it raises
``ArxivQueryError`` with arXiv's own message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

import arxiv

from ..core.errors import BadInput, EvlaError
from ..core.http import HttpClient, InvalidRequest, Response, Transport, TransportError
from . import atom

DEFAULT_ENDPOINT = "https://export.arxiv.org/api/query"
ENDPOINT_ENV = "EVLA_ARXIV_API_URL"
API_PAGE_LIMIT = 2000  # arXiv user manual §3.1.1.2: slices of at most 2000
RETRY_STATUSES = (429, *range(500, 600))  # rate limited or any server error
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a full 2000-entry page is a few MB; more is not a feed


class ArxivUnavailable(EvlaError):
    """The API kept failing (HTTP 429/5xx, timeouts, resets, truncated or empty pages) after all
    retries."""


class ArxivQueryError(BadInput):
    """arXiv rejected the request (an HTTP 4xx error feed): retrying cannot help."""


@dataclass
class Page:
    """One page of results. ``suspect_empty``: the page came back empty although
    it should not have, even after the retries (the caller flags the window)."""

    total: int
    results: list[arxiv.Result]
    attempts: int = 1
    suspect_empty: bool = False


def endpoint_from_env() -> str:
    return os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT


class ArxivClient:
    """Polite, fault-tolerant page fetcher for ``export.arxiv.org/api/query``.

    ``on_retry(message)`` is called before every backoff wait, so a command can
    tell the user what is going on ("HTTP 503, retrying in 8 s (attempt 2/6)").
    ``sleep``/``clock`` are injectable for tests that want to observe waits;
    ``transport`` replaces the HTTP engine (``core.http.Transport``); a body over
    ``max_bytes`` is refused, not retried.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        delay_seconds: float = 3.0,
        page_size: int = 1000,
        retries: int = 5,
        backoff_seconds: float = 5.0,
        max_backoff_seconds: float = 300.0,
        timeout_seconds: float = 60.0,
        on_retry: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: Transport | None = None,
        max_bytes: int = MAX_PAGE_BYTES,
    ):
        if not 1 <= page_size <= API_PAGE_LIMIT:
            raise BadInput(
                f"page size must be 1..{API_PAGE_LIMIT} (arXiv's limit), got {page_size}"
            )
        if delay_seconds < 0 or retries < 0 or backoff_seconds < 0 or timeout_seconds <= 0:
            raise BadInput("arXiv client settings must be non-negative (timeout > 0)")
        self.endpoint = (endpoint or endpoint_from_env()).strip()
        self.delay_seconds = float(delay_seconds)
        self.page_size = int(page_size)
        self.retries = int(retries)
        self.backoff_seconds = float(backoff_seconds)
        self.max_backoff_seconds = float(max_backoff_seconds)
        self.timeout_seconds = float(timeout_seconds)
        self.on_retry = on_retry or (lambda message: None)
        self.http = HttpClient(
            name="arXiv",
            min_interval=self.delay_seconds,
            timeout=self.timeout_seconds,
            retries=self.retries,
            backoff_base=self.backoff_seconds,
            backoff_max=self.max_backoff_seconds,
            retry_statuses=RETRY_STATUSES,
            max_bytes=max_bytes,
            on_retry=lambda message: self.on_retry(message),
            sleep=sleep,
            clock=clock,
            transport=transport,
        )

    def __repr__(self) -> str:
        return (
            f"ArxivClient({self.endpoint!r}, delay={self.delay_seconds}s, "
            f"page_size={self.page_size}, retries={self.retries})"
        )

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    @property
    def retries_made(self) -> int:
        return self.http.retries_made

    # --- URLs -----------------------------------------------------------------

    def url(
        self,
        query: str = "",
        start: int = 0,
        max_results: int | None = None,
        id_list: Iterable[str] | None = None,
        sort_by: arxiv.SortCriterion = arxiv.SortCriterion.SubmittedDate,
        sort_order: arxiv.SortOrder = arxiv.SortOrder.Ascending,
    ) -> str:
        """The query URL, with the parameters of the user manual §3.1.1
        (search_query, id_list, start, max_results, sortBy, sortOrder)."""
        args = {
            "search_query": query,
            "id_list": ",".join(id_list or []),
            "start": str(int(start)),
            "max_results": str(int(max_results or self.page_size)),
            "sortBy": arxiv.SortCriterion(sort_by).value,
            "sortOrder": arxiv.SortOrder(sort_order).value,
        }
        separator = "&" if "?" in self.endpoint else "?"
        return self.endpoint + separator + urlencode(args)

    # --- fetching -------------------------------------------------------------

    def fetch_page(
        self,
        query: str = "",
        start: int = 0,
        max_results: int | None = None,
        id_list: Iterable[str] | None = None,
        expect_results: bool = False,
        sort_by: arxiv.SortCriterion = arxiv.SortCriterion.SubmittedDate,
        sort_order: arxiv.SortOrder = arxiv.SortOrder.Ascending,
    ) -> Page:
        """Fetch one page (results ``start .. start+max_results``), retrying what is worth retrying.

        An empty page is retried as suspect when it is not the first page (the
        caller only asks for pages below the total it was told), when arXiv
        reports a positive total but no entries, or when ``expect_results`` says
        this query normally has results.
        If it is still empty after all retries the page is returned with
        ``suspect_empty=True`` (the caller flags the window) rather than raising:
        an empty window is not a network failure.
        """
        url = self.url(query, start, max_results, id_list, sort_by, sort_order)
        last: list = [None, (None, None)]  # the response read most recently, and what it gave

        def read(response: Response) -> tuple[atom.Feed | None, str | None]:
            """The page's feed, or why it is worth another try (parsed once per response)."""
            if last[0] is not response:
                last[:] = [response, _read(response, start, expect_results)]
            return last[1]

        try:
            response = self.http.request("GET", url, check=lambda r: read(r)[1])
        except InvalidRequest as exc:  # invalid URL and the like
            raise ArxivUnavailable(
                f"cannot reach the arXiv API at {self.endpoint}: {exc}"
            ) from None
        except TransportError as exc:
            raise self._unavailable(str(exc), exc.attempts) from None
        status = response.status
        if status in RETRY_STATUSES:
            raise self._unavailable(f"HTTP {status}", response.attempts)
        if status != 200:
            detail = atom.error_message(response.body) or response.reason.strip() or "no detail"
            raise ArxivQueryError(f"arXiv rejected the request (HTTP {status}): {detail}")
        feed, problem = read(response)
        if feed is not None and feed.error:
            raise ArxivQueryError(f"arXiv rejected the request: {feed.error}")
        if feed is None:
            raise self._unavailable(problem or "unreadable feed", response.attempts)
        return Page(feed.total, feed.entries, response.attempts, problem is not None)

    def _unavailable(self, reason: str, attempts: int) -> ArxivUnavailable:
        return ArxivUnavailable(
            f"arXiv API unavailable: {reason} after {attempts} attempts ({self.endpoint})"
        )


def _read(
    response: Response, start: int, expect_results: bool
) -> tuple[atom.Feed | None, str | None]:
    """(feed, None) for a usable 200 page; (None, reason) for a body that is not a feed;
    (feed, reason) for a suspect empty page. Other statuses are judged by the caller."""
    if response.status != 200:
        return None, None
    try:
        feed = atom.parse(response.body)
    except atom.NotAFeed as exc:
        if exc.what is None:  # a broken feed: truncated, malformed
            return None, str(exc)
        return None, (
            f"arXiv answered with {exc.what} (HTTP {response.status}) "
            f"instead of an Atom feed ({exc.detail})"
        )
    if feed.error:
        return feed, None  # an error feed: retrying cannot help
    if not feed.entries and (start > 0 or feed.total > 0 or expect_results):
        return feed, f"empty page (arXiv reports {feed.total:,} results)"
    return feed, None
