"""The one HTTP helper the arXiv, PDF and citation clients share.

``HttpClient`` owns what every request of this tool must respect:

* one User-Agent for the whole tool (``USER_AGENT``);
* pacing: at least ``min_interval`` seconds between the starts of two
  requests, retries included (one request at a time, arXiv's rule);
* one deadline per request attempt: connecting, the headers and the whole body
  must arrive within ``timeout`` seconds. A plain ``requests`` timeout applies
  per socket read, so a server trickling one byte at a time could hold a
  request for ever; here the body is read in a streaming loop that checks the
  monotonic clock after every read and tightens the socket timeout to what is
  left, and while the status line and headers are read a watchdog timer shuts
  the socket down at the deadline;
* an optional cap on the body size (declared ``Content-Length`` and counted);
* retries with exponential backoff (``backoff_base * 2**(n-1)``, at most
  ``backoff_max``), at least as long as a ``Retry-After`` header asks, on
  HTTP 429/5xx, timeouts, connection errors and truncated bodies, and on
  whatever a caller's ``check`` says is worth another try; ``on_retry(message)``
  is told before every wait.

Each client keeps its own policy on top (which statuses to retry, how many
times, what a usable body is). One attempt goes through a ``Transport`` (the
seam a test or another HTTP engine can fill); ``RequestsTransport`` is the
default, on one ``requests.Session``.

Deadlines always run on the real ``time.monotonic`` (they bound real socket
time); the injectable ``clock``/``sleep`` drive pacing and backoff, so tests
can observe waits without spending them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Protocol

import requests
import requests.adapters
import urllib3
import urllib3.connection

from .. import __version__
from .errors import BadInput, EvlaError, one_line

PROJECT_URL = "https://github.com/evla-survey"


def user_agent(mailto: str | None = None) -> str:
    """The tool's User-Agent: name/version, what it is, where to read about it, whom to mail.

    Services ask for this (arXiv's and OpenAlex's etiquette: identify the tool
    and a contact) so that a misbehaving run can be traced instead of blocked.
    """
    contact = f"; mailto:{mailto}" if mailto else ""
    return f"evla-miner/{__version__} (+literature survey maintenance; {PROJECT_URL}{contact})"


USER_AGENT = user_agent()
RETRY_STATUSES = (429, 500, 502, 503, 504)
READ_SIZE = 16 * 1024  # at most this much per read: the deadline is checked after every read

CheckHeaders = Callable[["Response"], None]  # sees the status and headers, body still empty
QueryParams = Mapping[str, str | int | float | None]  # what requests turns into a query string


# --- what one attempt gives ----------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """A complete answer: status, headers (case-insensitive), the whole body, the final URL.

    ``attempts`` counts the tries ``HttpClient.request`` made to get it.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    reason: str = ""
    attempts: int = 1

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def retry_after(self) -> float | None:
        """The ``Retry-After`` header in seconds (a number or an HTTP date), if any."""
        return retry_after_seconds(self.headers.get("Retry-After"))


class TransportError(EvlaError):
    """One attempt that gave no complete response. ``retryable`` says whether another try can help;
    ``kind`` names the failure (``Timeout``, ``ConnectionError``...); ``attempts`` is set by
    ``HttpClient.request`` when it gives up."""

    kind = "TransportError"
    retryable = False
    attempts = 1


class RequestTimeout(TransportError):
    kind = "Timeout"
    retryable = True

    def __init__(self, seconds: float):
        super().__init__(f"no response within {seconds:g} s")
        self.seconds = seconds


class ConnectionFailed(TransportError):
    kind = "ConnectionError"
    retryable = True

    def __init__(self, detail: str):
        super().__init__(f"connection error ({detail})")


class TruncatedBody(TransportError):
    kind = "TruncatedBody"
    retryable = True

    def __init__(self) -> None:
        super().__init__("truncated response body")


class BodyTooLarge(TransportError):
    """Over the size cap: ``declared`` is the announced Content-Length, None if counted."""

    kind = "BodyTooLarge"

    def __init__(self, cap: int, declared: int | None = None):
        if declared is not None:
            super().__init__(f"too large: {declared:,} bytes > cap {cap:,}")
        else:
            super().__init__(f"too large: over the cap of {cap:,} bytes")
        self.cap = cap
        self.declared = declared


class InvalidRequest(TransportError):
    """The request could not be sent at all (bad URL, unsupported scheme...)."""

    kind = "InvalidRequest"


# --- the seam -------------------------------------------------------------------------


class Transport(Protocol):
    """What ``HttpClient`` needs from an HTTP engine: one attempt, no retries, no pacing.

    ``send`` returns the complete response or raises a ``TransportError``
    (``RequestTimeout`` once ``timeout`` seconds have passed since the call,
    whatever the server is doing; ``BodyTooLarge`` past ``max_bytes``).
    ``check_headers(response)`` runs once the status and headers are in, with
    an empty body, before the body is read; whatever it raises is passed on
    and the body is not read.
    """

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: QueryParams | None,
        data: bytes | str | None,
        timeout: float,
        max_bytes: int | None,
        check_headers: CheckHeaders | None,
    ) -> Response: ...


class RequestsTransport:
    """``Transport`` on one ``requests.Session``, reading bodies under one deadline."""

    def __init__(self, session: requests.Session | None = None, read_size: int = READ_SIZE):
        self.session = session or requests.Session()
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, _WatchedAdapter())
        self.read_size = read_size

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: QueryParams | None = None,
        data: bytes | str | None = None,
        timeout: float,
        max_bytes: int | None = None,
        check_headers: CheckHeaders | None = None,
    ) -> Response:
        deadline = time.monotonic() + timeout
        _WATCH.deadline = deadline
        try:
            response = self.session.request(
                method,
                url,
                headers=dict(headers),
                params=params,
                data=data,
                stream=True,
                # total: connecting and waiting for the headers share one budget; requests
                # hands a urllib3 Timeout to urllib3 unchanged, its annotations only name floats
                timeout=urllib3.Timeout(  # type: ignore[arg-type]
                    total=timeout, connect=timeout, read=timeout
                ),
            )
        except requests.exceptions.Timeout:
            raise RequestTimeout(timeout) from None
        except requests.exceptions.ChunkedEncodingError:
            raise TruncatedBody() from None
        except requests.exceptions.ConnectionError as exc:
            if time.monotonic() >= deadline:  # the watchdog shut the socket
                raise RequestTimeout(timeout) from None
            raise ConnectionFailed(short_reason(exc)) from None
        except requests.exceptions.RequestException as exc:
            raise InvalidRequest(one_line(exc)) from None
        finally:
            _WATCH.deadline = None
        with response:
            head = Response(
                response.status_code, response.headers, b"", response.url, response.reason or ""
            )
            if check_headers is not None:
                check_headers(head)
            declared = response.headers.get("Content-Length", "")
            if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
                raise BodyTooLarge(max_bytes, int(declared))
            return replace(head, body=self._read_body(response.raw, deadline, timeout, max_bytes))

    def _read_body(
        self, raw: urllib3.BaseHTTPResponse, deadline: float, timeout: float, max_bytes: int | None
    ) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestTimeout(timeout)
            _limit_socket_wait(raw, remaining)
            try:
                chunk = raw.read1(self.read_size, decode_content=True)
            except urllib3.exceptions.ReadTimeoutError:
                raise RequestTimeout(timeout) from None
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError):
                raise TruncatedBody() from None
            except TimeoutError:
                raise RequestTimeout(timeout) from None
            except OSError as exc:
                raise ConnectionFailed(short_reason(exc)) from None
            if not chunk:
                break
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise BodyTooLarge(max_bytes)
            chunks.append(chunk)
        if time.monotonic() > deadline:
            raise RequestTimeout(timeout)
        return b"".join(chunks)


def _limit_socket_wait(raw: urllib3.BaseHTTPResponse, remaining: float) -> None:
    """Let no single socket read wait longer than what is left of the deadline.

    urllib3 sets the socket timeout again at the start of every request, so
    this never leaks into the next request on a pooled connection.
    """
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(remaining, 0.001))
        except OSError:
            pass


# --- the deadline while the headers are read ----------------------------------------------


class _Watch(threading.local):
    """The deadline of the request this thread is sending (None outside ``send``)."""

    deadline: float | None = None


_WATCH = _Watch()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _WatchedConnection:
    """Mixed into urllib3's connections: reading the status line and headers may not outlast the
    request's deadline. urllib3 bounds each socket read, not their sum, so a server sending one
    header byte per second would hold the request for as long as it likes; a timer shuts the
    socket down at the deadline, the read fails and ``send`` reports the timeout."""

    sock: socket.socket | None

    def getresponse(self):  # noqa: ANN201 - urllib3's HTTPResponse
        deadline = _WATCH.deadline
        if deadline is None or self.sock is None:
            return super().getresponse()
        timer = threading.Timer(max(deadline - time.monotonic(), 0.0), _shut, (self.sock,))
        timer.daemon = True
        timer.start()
        try:
            return super().getresponse()
        finally:
            timer.cancel()


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connection pools whose connections have the header watchdog."""

    POOLS = {"http": _HTTPPool, "https": _HTTPSPool}

    def init_poolmanager(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self.POOLS)

    def proxy_manager_for(self, proxy, **proxy_kwargs):  # noqa: ANN001, ANN003, ANN201
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(self.POOLS)
        return manager


# --- pacing and backoff -----------------------------------------------------------------


class Pacer:
    """At least ``min_interval`` seconds between the starts of two requests."""

    def __init__(
        self,
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.min_interval = float(min_interval)
        self.clock = clock
        self.sleep = sleep
        self._last_start: float | None = None

    def wait(self) -> None:
        """Sleep until this request may start, and note that it starts now."""
        if self._last_start is not None:
            remaining = self.min_interval - (self.clock() - self._last_start)
            if remaining > 0:
                self.sleep(remaining)
        self._last_start = self.clock()


def backoff_seconds(
    attempt: int, base: float, maximum: float, retry_after: float | None = None
) -> float:
    """Wait before retry ``attempt`` (1-based): exponential, at least ``retry_after``, capped."""
    wait = base * 2 ** (attempt - 1)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return min(wait, maximum)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` value (seconds or an HTTP date) in seconds from now; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def short_reason(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3/socket error, on one line."""
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
    return " ".join(text.split())[:160] or type(exc).__name__


# --- the client ----------------------------------------------------------------------------


@dataclass
class HttpClient:
    """Paced, deadline-bounded, retrying requests for one service.

    ``retries`` is the number of extra attempts after the first (0 = one try).
    ``name`` prefixes the ``on_retry`` messages ("arXiv: HTTP 503; retrying in
    10 s (attempt 3/6)") unless the reason already starts with it ("arXiv
    answered with an HTML page...").
    """

    name: str = "HTTP"
    min_interval: float = 0.0
    timeout: float = 60.0
    retries: int = 0
    backoff_base: float = 5.0
    backoff_max: float = 60.0
    retry_statuses: tuple[int, ...] = RETRY_STATUSES
    max_bytes: int | None = None
    on_retry: Callable[[str], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    transport: Transport | None = None  # None: a RequestsTransport on a new Session
    user_agent: str = USER_AGENT
    requests_made: int = field(default=0, init=False)
    retries_made: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.min_interval < 0 or self.retries < 0 or self.backoff_base < 0 or self.timeout <= 0:
            raise BadInput(
                "pacing, retries and backoff must be non-negative and the timeout positive"
            )
        self.pacer = Pacer(self.min_interval, clock=self.clock, sleep=self.sleep)
        if self.transport is None:
            self.transport = RequestsTransport()
        self._transport: Transport = self.transport

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        return backoff_seconds(attempt, self.backoff_base, self.backoff_max, retry_after)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | str | None = None,
        retries: int | None = None,
        retry_statuses: tuple[int, ...] | None = None,
        check: Callable[[Response], str | None] | None = None,
        check_headers: CheckHeaders | None = None,
        max_bytes: int | None = None,
    ) -> Response:
        """Send a request, retrying what is worth retrying; returns the last response.

        A response whose status is in ``retry_statuses``, or for which
        ``check(response)`` returns a reason, is retried; once the retries are
        used up that last response is returned (its ``attempts`` says how many
        tries it took) and the caller decides. A retryable ``TransportError``
        is raised, with ``attempts`` set, once the retries are used up; others
        at once. Arguments left ``None`` take the client's settings.
        """
        retries = self.retries if retries is None else retries
        statuses = self.retry_statuses if retry_statuses is None else retry_statuses
        cap = self.max_bytes if max_bytes is None else max_bytes
        send_headers = {**(headers or {}), "User-Agent": self.user_agent}
        attempt = 0
        while True:
            attempt += 1
            self.pacer.wait()
            self.requests_made += 1
            retry_after = None
            reason: str | None
            try:
                response = self._transport.send(
                    method,
                    url,
                    headers=send_headers,
                    params=params,
                    data=data,
                    timeout=self.timeout,
                    max_bytes=cap,
                    check_headers=check_headers,
                )
            except TransportError as failure:
                failure.attempts = attempt
                if not failure.retryable or attempt > retries:
                    raise
                reason = str(failure)
            else:
                response = replace(response, attempts=attempt)
                if response.status in statuses:
                    reason = f"HTTP {response.status}"
                    retry_after = response.retry_after()
                else:
                    reason = check(response) if check is not None else None
                if reason is None or attempt > retries:
                    return response
            wait = self.backoff(attempt, retry_after)
            self.retries_made += 1
            if self.on_retry is not None:
                said = reason if reason.startswith(f"{self.name} ") else f"{self.name}: {reason}"
                self.on_retry(
                    f"{said}; retrying in {wait:g} s (attempt {attempt + 1}/{retries + 1})"
                )
            self.sleep(wait)
