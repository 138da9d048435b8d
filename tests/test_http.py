"""core.http: pacing, retries and backoff through a fake transport (fake clock, no sockets);
the requests transport's deadline, size cap and truncation checks against 127.0.0.1."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler

import pytest
from local_http import LocalHttpServer, trickling_handler

from evla_miner import __version__
from evla_miner.core.http import (
    PROJECT_URL,
    USER_AGENT,
    BodyTooLarge,
    ConnectionFailed,
    HttpClient,
    InvalidRequest,
    RequestsTransport,
    RequestTimeout,
    Response,
    TruncatedBody,
    backoff_seconds,
    retry_after_seconds,
    user_agent,
)


class FakeTransport:
    """Answers from a script (a Response, or an exception to raise); stamps each attempt with the
    fake clock."""

    def __init__(self, clock, script):
        self.clock = clock
        self.script = list(script)
        self.calls: list[dict] = []

    def send(self, method, url, **kwargs):
        self.calls.append({"at": self.clock(), "method": method, "url": url, **kwargs})
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(status=200, body=b"fine", headers=None):
    return Response(status, headers or {}, body, "http://example.test/x")


@pytest.fixture
def fake_time():
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds):
        sleeps.append(round(seconds, 6))
        now[0] += seconds

    return now, sleeps, sleep


def client_with(fake_time, script, **kwargs):
    now, _, sleep = fake_time
    transport = FakeTransport(lambda: now[0], script)
    return HttpClient(transport=transport, sleep=sleep, clock=lambda: now[0], **kwargs), transport


def test_one_user_agent_for_the_whole_tool(fake_time):
    assert USER_AGENT.startswith(f"evla-miner/{__version__} (+literature survey maintenance;")
    client, transport = client_with(fake_time, [ok()])
    client.request("GET", "http://example.test/x", headers={"Accept": "application/json"})
    assert transport.calls[0]["headers"] == {"Accept": "application/json", "User-Agent": USER_AGENT}


def test_user_agent_names_version_project_and_contact():
    assert (
        user_agent() == f"evla-miner/{__version__} (+literature survey maintenance; {PROJECT_URL})"
    )
    assert user_agent("survey@example.org").endswith(f"{PROJECT_URL}; mailto:survey@example.org)")
    assert HttpClient(user_agent=user_agent("a@b.c")).user_agent.endswith("mailto:a@b.c)")


def test_pacing_spaces_request_starts_retries_included(fake_time):
    now, sleeps, _ = fake_time
    client, transport = client_with(
        fake_time, [ok(503), ok(), ok(), ok()], min_interval=3.0, retries=2, backoff_base=1.0
    )
    assert client.request("GET", "http://example.test/x").attempts == 2
    now[0] += 1.0
    client.request("GET", "http://example.test/x")
    now[0] += 10.0
    client.request("GET", "http://example.test/x")
    starts = [c["at"] for c in transport.calls]
    assert [round(b - a, 6) for a, b in zip(starts, starts[1:], strict=False)] == [3.0, 3.0, 10.0]
    assert sleeps == [1.0, 2.0, 2.0]  # backoff 1 s then pacing tops it up to 3 s; 2 s of pacing
    assert (client.requests_made, client.retries_made) == (4, 1)


def test_backoff_is_exponential_capped_and_honours_retry_after(fake_time):
    _, sleeps, _ = fake_time
    messages = []
    script = [
        ok(503),
        ok(429, headers={"Retry-After": "30"}),
        ok(500),
        RequestTimeout(60),
        ok(502),
        ok(),
    ]
    client, _ = client_with(
        fake_time,
        script,
        name="arXiv",
        retries=5,
        backoff_base=5.0,
        backoff_max=40.0,
        on_retry=messages.append,
    )
    response = client.request("GET", "http://example.test/x")
    assert (response.status, response.attempts) == (200, 6)
    assert sleeps == [5.0, 30.0, 20.0, 40.0, 40.0]
    assert messages[0] == "arXiv: HTTP 503; retrying in 5 s (attempt 2/6)"
    assert messages[3] == "arXiv: no response within 60 s; retrying in 40 s (attempt 5/6)"


def test_retries_used_up(fake_time):
    client, _ = client_with(fake_time, [ok(503), ok(503)], retries=1, backoff_base=0)
    last = client.request("GET", "http://example.test/x")
    assert (last.status, last.attempts) == (503, 2)  # the caller decides what a final 503 means
    client, _ = client_with(
        fake_time, [ConnectionFailed("Connection reset by peer")] * 3, retries=2, backoff_base=0
    )
    with pytest.raises(
        ConnectionFailed, match=r"connection error \(Connection reset by peer\)"
    ) as info:
        client.request("GET", "http://example.test/x")
    assert info.value.attempts == 3


def test_what_is_not_retried(fake_time):
    client, transport = client_with(fake_time, [BodyTooLarge(10)], retries=3)
    with pytest.raises(BodyTooLarge):
        client.request("GET", "http://example.test/x")
    client, transport = client_with(fake_time, [ok(404)], retries=3)
    assert client.request("GET", "http://example.test/x").status == 404
    client, transport = client_with(fake_time, [ok(503)], retries=3)
    assert client.request("GET", "http://example.test/x", retry_statuses=()).status == 503
    assert len(transport.calls) == 1


def test_check_hook_retries_a_body_the_caller_cannot_use(fake_time):
    _, sleeps, _ = fake_time
    messages = []
    client, transport = client_with(
        fake_time,
        [ok(body=b""), ok(body=b"<feed/>")],
        retries=2,
        backoff_base=2.0,
        on_retry=messages.append,
    )
    response = client.request(
        "GET", "http://example.test/x", check=lambda r: None if r.body else "empty body"
    )
    assert (response.body, response.attempts, sleeps) == (b"<feed/>", 2, [2.0])
    assert messages == ["HTTP: empty body; retrying in 2 s (attempt 2/3)"]


def test_retry_after_forms():
    assert retry_after_seconds("7") == 7.0 and retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None and retry_after_seconds("-3") == 0.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 110 <= retry_after_seconds(later) <= 121
    assert backoff_seconds(1, 5, 60, retry_after=7) == 7 and backoff_seconds(5, 5, 60) == 60


# --- the requests transport on 127.0.0.1 ------------------------------------------------


def serve(handler_body):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        seen: list[dict] = []

        def do_GET(self):
            Handler.seen.append(dict(self.headers))
            handler_body(self)

        def log_message(self, *args):
            pass

    return Handler


def send(url, timeout=5.0, max_bytes=None, check_headers=None):
    return RequestsTransport().send(
        "GET",
        url,
        headers={"User-Agent": USER_AGENT},
        timeout=timeout,
        max_bytes=max_bytes,
        check_headers=check_headers,
    )


def test_trickled_body_ends_at_the_deadline():
    with LocalHttpServer(trickling_handler(b"x" * 100, "text/plain")) as http:
        began = time.monotonic()
        with pytest.raises(RequestTimeout, match="no response within 1 s"):
            send(http.base_url + "/", timeout=1.0)
        elapsed = time.monotonic() - began
    assert 0.9 <= elapsed < 2.0


def test_stalled_body_ends_at_the_deadline_not_a_read_later():
    def stall(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b"x" * 10)
        handler.wfile.flush()
        time.sleep(0.6)  # past the deadline's middle: a fresh per-read timeout would run to ~1.6 s
        handler.wfile.write(b"y")
        handler.wfile.flush()
        time.sleep(3)

    with LocalHttpServer(serve(stall)) as http:
        began = time.monotonic()
        with pytest.raises(RequestTimeout):
            send(http.base_url + "/", timeout=1.0)
        elapsed = time.monotonic() - began
    assert elapsed < 1.4


def test_trickled_headers_end_at_the_deadline():
    """urllib3 bounds each read of the status line and headers, not their sum: a watchdog does."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Pad: "
        + b"p" * 40
        + b"\r\nContent-Length: 2\r\n\r\nok"
    )

    def trickle_head(handler):
        try:
            for index in range(len(head)):
                handler.wfile.write(head[index : index + 1])
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the client gave up
        handler.close_connection = True

    with LocalHttpServer(serve(trickle_head)) as http:
        began = time.monotonic()
        with pytest.raises(RequestTimeout, match="no response within 1 s"):
            send(http.base_url + "/", timeout=1.0)
        elapsed = time.monotonic() - began
        # the session is still usable: the watchdog is not left armed on a pooled connection
        with LocalHttpServer(serve(answer(b"fine"))) as other:
            transport = RequestsTransport()
            for _ in range(3):
                assert (
                    transport.send("GET", other.base_url + "/", headers={}, timeout=0.5).body
                    == b"fine"
                )
                time.sleep(0.6)  # past a stale timer's deadline, if one were left running
    assert elapsed < 3.0, f"took {elapsed:.1f} s"


def answer(body, status=200, content_type="text/plain", length=None, close=False):
    def write(handler):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        if length is not False:
            handler.send_header("Content-Length", str(len(body) if length is None else length))
        if close:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()

    return write


def test_complete_response_and_headers():
    handler = serve(answer(b"hello", content_type="text/x-test"))
    with LocalHttpServer(handler) as http:
        response = send(http.base_url + "/a")
    assert (response.status, response.body, response.reason) == (200, b"hello", "OK")
    assert response.headers["content-type"] == "text/x-test" and response.url.endswith("/a")
    assert handler.seen[0]["User-Agent"] == USER_AGENT


def test_size_cap_declared_and_counted():
    with LocalHttpServer(serve(answer(b"x" * 5000))) as http:
        with pytest.raises(BodyTooLarge, match="too large: 5,000 bytes > cap 1,000"):
            send(http.base_url + "/", max_bytes=1000)
    with LocalHttpServer(serve(answer(b"x" * 50_000, length=False, close=True))) as http:
        with pytest.raises(BodyTooLarge, match="too large: over the cap of 1,000 bytes"):
            send(http.base_url + "/", max_bytes=1000)


def test_short_body_is_truncated():
    with LocalHttpServer(serve(answer(b"x" * 10, length=100, close=True))) as http:
        with pytest.raises(TruncatedBody, match="truncated response body"):
            send(http.base_url + "/")


def test_check_headers_refuses_before_the_body():
    class Refused(Exception):
        pass

    def refuse(head):
        assert head.body == b"" and head.status == 404
        raise Refused(head.reason)

    with LocalHttpServer(serve(answer(b"gone", status=404))) as http:
        with pytest.raises(Refused, match="Not Found"):
            send(http.base_url + "/", check_headers=refuse)


def test_unreachable_and_invalid_urls(unused_port):
    with pytest.raises(ConnectionFailed, match="Connection refused"):
        send(f"http://127.0.0.1:{unused_port}/")
    with pytest.raises(InvalidRequest):
        send("not a url")


@pytest.fixture
def unused_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_clients_built_from_settings_keep_the_settings_deadline_and_the_given_transport(
    fake_time,
):
    """The commands build every client through a ``client_from_settings`` function; a transport
    handed in replaces only the HTTP engine: each request still carries the ``timeout_seconds``
    of its settings section."""
    from arxiv_replay import golden

    from evla_miner.core.settings import CitationSettings, HarvestSettings, PdfSettings
    from evla_miner.ingest import harvest, pdfs
    from evla_miner.scoring import citations

    now, _, _ = fake_time
    feed = golden("id_0000.0000")["body"]  # arXiv's recorded empty feed
    arxiv_transport = FakeTransport(lambda: now[0], [ok(body=feed)])
    arxiv_client = harvest.client_from_settings(
        HarvestSettings(timeout_seconds=7.0, delay_seconds=0), transport=arxiv_transport
    )
    assert arxiv_client.fetch_page(id_list=["0000.0000"]).total == 0
    pdf_transport = FakeTransport(lambda: now[0], [ok(body=b"%PDF-1.7\n%%EOF\n")])
    pdf_client = pdfs.client_from_settings(
        PdfSettings(timeout_seconds=8.0, interval=0, max_mb=1), transport=pdf_transport
    )
    assert pdf_client.fetch("http://example.test/2406.04339v1").startswith(b"%PDF-")
    s2_transport = FakeTransport(lambda: now[0], [ok(body=b'{"paperId": "abc"}')])
    s2_client = citations.client_from_settings(
        CitationSettings(service="s2", timeout_seconds=9.0), transport=s2_transport
    )
    assert s2_client.paper("ARXIV:2406.04339", fields=["paperId"]) == {"paperId": "abc"}
    sent = [t.calls[0] for t in (arxiv_transport, pdf_transport, s2_transport)]
    assert [call["timeout"] for call in sent] == [7.0, 8.0, 9.0]
    assert sent[1]["max_bytes"] == 2**20  # the [pdf] size cap travels with the deadline
