"""The one client object for the arXiv query API.

It wraps ``arxiv.Client`` (the ``arxiv`` 4.x package): the library builds the
request URLs, owns the ``requests`` session (one connection at a time) and
parses the Atom feed with its lxml parser, so both the 2016 and the 2026 feed
formats are read by the same code the rest of the Python world uses.

It does NOT use the library's paging/retry loop (``Client.results``), because
that loop differs from what a harvester that must not silently miss papers
needs (see ../shared/fixtures/notes.md §2):

* it retries immediately (no backoff) and only on HTTP errors, connection
  errors and empty non-first pages; it has no request timeout at all, so a
  hung response blocks forever;
* an empty *first* page ends the search silently, indistinguishable from a
  real empty result;
* its parser runs lxml with ``recover=True``, so a truncated body becomes a
  short page of results without any error.

So this client fetches one page per call and does the politeness and fault
handling itself: one request at a time, at least ``delay_seconds`` between the
start of two requests (retries included), exponential backoff on 429, 5xx,
timeouts, connection resets, truncated bodies and unexpectedly empty pages,
then a one-line ``ArxivUnavailable`` error. An HTTP 4xx error feed (a query
arXiv rejects) is not retried: it raises ``ArxivQueryError`` with arXiv's own
message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import arxiv
import requests
from arxiv import _feed  # the library's own Atom parser (lxml); no public name for it in 4.x
from lxml import etree

from ..core.errors import BadInput, EvlaError

DEFAULT_ENDPOINT = "https://export.arxiv.org/api/query"
ENDPOINT_ENV = "EVLA_ARXIV_API_URL"
USER_AGENT = f"evla-miner (arxiv.py/{arxiv.__version__})"
API_PAGE_LIMIT = 2000  # arXiv user manual §3.1.1.2: slices of at most 2000
ATOM = "{http://www.w3.org/2005/Atom}"


class ArxivUnavailable(EvlaError):
    """The API kept failing (HTTP 429/5xx, timeouts, resets, truncated or empty pages) after all
    retries."""


class ArxivQueryError(BadInput):
    """arXiv rejected the request (an HTTP 4xx error feed): retrying cannot help."""


class _Retryable(Exception):
    """One failed attempt that is worth another try; ``retry_after`` comes from the server."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


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
    ``sleep``/``clock`` are injectable for tests that want to observe waits.
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
        self._sleep = sleep
        self._clock = clock
        self._last_request: float | None = None
        self.requests_made = 0
        self.retries_made = 0
        # The library client supplies URL building and the HTTP session. Its own
        # retry loop is switched off (num_retries=0) and never used.
        self._client = arxiv.Client(
            page_size=self.page_size, delay_seconds=self.delay_seconds, num_retries=0
        )
        separator = "&" if "?" in self.endpoint else "?"
        self._client.query_url_format = self.endpoint + separator + "{}"

    def __repr__(self) -> str:
        return (
            f"ArxivClient({self.endpoint!r}, delay={self.delay_seconds}s, "
            f"page_size={self.page_size}, retries={self.retries})"
        )

    # --- URLs -----------------------------------------------------------------

    def url(
        self,
        query: str = "",
        start: int = 0,
        max_results: int | None = None,
        id_list=None,
        sort_by=arxiv.SortCriterion.SubmittedDate,
        sort_order=arxiv.SortOrder.Ascending,
    ) -> str:
        search = arxiv.Search(
            query=query, id_list=list(id_list or []), sort_by=sort_by, sort_order=sort_order
        )
        return self._client._format_url(search, start, max_results or self.page_size)

    # --- fetching -------------------------------------------------------------

    def fetch_page(
        self,
        query: str = "",
        start: int = 0,
        max_results: int | None = None,
        id_list=None,
        expect_results: bool = False,
        sort_by=arxiv.SortCriterion.SubmittedDate,
        sort_order=arxiv.SortOrder.Ascending,
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
        attempt = 0
        while True:
            attempt += 1
            try:
                total, results = self._fetch_once(url)
                empty_suspect = not results and (start > 0 or total > 0 or expect_results)
                if not empty_suspect:
                    return Page(total, results, attempt, False)
                if attempt > self.retries:
                    return Page(total, results, attempt, True)
                raise _Retryable(f"empty page (arXiv reports {total:,} results)")
            except _Retryable as failure:
                if attempt > self.retries:
                    raise ArxivUnavailable(
                        f"arXiv API unavailable: {failure.reason} after {attempt} attempts "
                        f"({self.endpoint})"
                    ) from None
                wait = min(self.backoff_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)
                if failure.retry_after is not None:
                    wait = max(wait, min(failure.retry_after, self.max_backoff_seconds))
                message = (
                    f"arXiv: {failure.reason}; retrying in {wait:g} s (attempt "
                    f"{attempt + 1}/{self.retries + 1})"
                )
                self.retries_made += 1
                self.on_retry(message)
                self._sleep(wait)

    def _pace(self) -> None:
        """Sleep until ``delay_seconds`` have passed since the previous request started."""
        if self._last_request is not None:
            remaining = self.delay_seconds - (self._clock() - self._last_request)
            if remaining > 0:
                self._sleep(remaining)

    def _fetch_once(self, url: str) -> tuple[int, list[arxiv.Result]]:
        self._pace()
        self._last_request = self._clock()
        self.requests_made += 1
        try:
            response = self._client._session.get(
                url, headers={"user-agent": USER_AGENT}, timeout=self.timeout_seconds
            )
            content = response.content  # reading the body can fail too (reset, short read)
        except requests.exceptions.Timeout:
            raise _Retryable(f"no response within {self.timeout_seconds:g} s") from None
        except requests.exceptions.ChunkedEncodingError:
            raise _Retryable("truncated response body") from None
        except requests.exceptions.ConnectionError as exc:
            raise _Retryable(f"connection error ({_short(exc)})") from None
        except requests.exceptions.RequestException as exc:  # invalid URL and the like
            raise ArxivUnavailable(
                f"cannot reach the arXiv API at {self.endpoint}: {_short(exc)}"
            ) from None

        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", _retry_after(response))
        if status != 200:
            detail = _error_message(content) or (response.reason or "").strip() or "no detail"
            raise ArxivQueryError(f"arXiv rejected the request (HTTP {status}): {detail}")

        if not content.rstrip().endswith(b"</feed>"):
            raise _Retryable("truncated response body")
        detail = _error_message(content)
        if detail:
            raise ArxivQueryError(f"arXiv rejected the request: {detail}")
        feed = _feed.parse(content)
        if feed.malformed:
            raise _Retryable(f"unreadable feed ({feed.error})")
        return feed.header.total_results, feed.results


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _error_message(content: bytes) -> str | None:
    """arXiv's error feeds hold one entry whose id is ``…/api/errors#…``; the message
    is its summary.

    The library's parser skips such entries (they have no <published>), so
    this looks for them directly.
    """
    if b"/api/errors" not in content:
        return None
    try:
        root = etree.fromstring(
            content, parser=etree.XMLParser(resolve_entities=False, no_network=True, recover=True)
        )
    except etree.XMLSyntaxError:
        return None
    if root is None:
        return None
    for entry in root.iter(f"{ATOM}entry"):
        entry_id = entry.findtext(f"{ATOM}id") or ""
        if "/api/errors" in entry_id:
            return " ".join((entry.findtext(f"{ATOM}summary") or entry_id).split())
    return None


def _short(exc: Exception) -> str:
    """The innermost reason of a requests/urllib3 error, on one line."""
    text = str(exc)
    for marker in (
        "Connection reset by peer",
        "Connection refused",
        "Connection aborted",
        "Name or service not known",
        "Remote end closed connection",
        "IncompleteRead",
        "timed out",
    ):
        if marker in text:
            return marker
    return " ".join(text.split())[:160]
