"""A local stand-in for export.arxiv.org/api/query, serving REAL recorded arXiv responses.

Runs an ``http.server`` on 127.0.0.1 (ephemeral port) in a thread, so the
``arxiv`` package does real HTTP and real parsing. Two ways to answer:

* ``recorded``: exact replay. A request whose (search_query, id_list, start,
  max_results) matches a recorded response gets that response's status and
  bytes, untouched.
* ``corpus``: a tiny arXiv. The real ``<entry>`` elements of the recorded
  feeds (copied byte for byte) are filtered by the query's
  ``submittedDate:[A TO B]`` range (on each entry's <published>) and ``cat:``
  terms, sorted by submission date and paged by start/max_results inside the
  real recorded feed envelope of the same format (2016 or 2026), with only the
  opensearch numbers rewritten. Other query terms are ignored.

``faults`` is a queue consumed one per request before answering: ``503``,
``429``, ``429-retry-after`` (with ``Retry-After: 12``), ``slow`` (answers after
``slow_seconds``), ``truncate`` (Content-Length announced, half the body sent,
connection closed), ``truncate-noclen`` (no Content-Length, half the body,
closed), ``reset`` (TCP RST), ``empty`` (the recorded empty feed of
id_list=0000.0000, totalResults 0), ``html`` (a proxy's "503 Service Unavailable"
HTML page with status 200), ``garbage`` (random-looking bytes with status 200),
``stale`` (the previous page's entries again, under this
request's opensearch numbers: what arXiv does under load), ``short`` (the page
without its first half of entries, totalResults unchanged). The last two need the
corpus. ``None`` = no fault.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from local_http import LocalHttpServer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "arxiv_api"
GOLDEN = FIXTURES / "golden_2026"
LEGACY = FIXTURES / "legacy_2016"
HTML_503 = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
    b"<body><h1>Service Unavailable</h1><p>Back soon.</p></body></html>\n"
)
GARBAGE = bytes(range(0x80, 0xA0)) * 8
ENTRY = re.compile(rb"<entry>.*?</entry>", re.S)
PUBLISHED = re.compile(rb"<published>([^<]+)</published>")
CATEGORY = re.compile(rb'<category term="([^"]+)"')
WINDOW = re.compile(r"submittedDate:\[(\d{12}) TO (\d{12})\]")
CAT_TERM = re.compile(r"\bcat:([A-Za-z-]+(?:\.[A-Za-z-]+)?)")


def golden(name_prefix: str) -> dict:
    """A recorded 2026 response: ``{"url", "status_code", "body"}``, body as the exact bytes."""
    (path,) = GOLDEN.glob(name_prefix + "_*.json")
    record = json.loads(path.read_text())
    record["body"] = record["body"].encode("latin-1")
    return record


def recorded_key(url: str) -> tuple:
    args = parse_qs(urlparse(url).query, keep_blank_values=True)
    first = lambda k, d="": args.get(k, [d])[0]  # noqa: E731
    return (
        first("search_query"),
        first("id_list"),
        int(first("start", "0")),
        int(first("max_results", "10")),
    )


class Corpus:
    """Real entries plus a real envelope of the same feed format."""

    def __init__(self, bodies: list[bytes]):
        self.envelope_head = bodies[0][: bodies[0].index(b"<entry>")]
        self.entries: dict[str, tuple[datetime, set[str], bytes]] = {}
        for body in bodies:
            for raw in ENTRY.findall(body):
                entry_id = re.search(rb"<id>([^<]+)</id>", raw).group(1).decode()
                published = datetime.fromisoformat(
                    PUBLISHED.search(raw).group(1).decode().replace("Z", "+00:00")
                )
                categories = {c.decode() for c in CATEGORY.findall(raw)}
                self.entries[entry_id] = (published, categories, raw)

    @classmethod
    def golden_2026(cls) -> Corpus:
        return cls([golden(f"q_testing_s{s}_m10")["body"] for s in (0, 10, 20, 30, 40, 50)])

    @classmethod
    def legacy_2016(cls) -> Corpus:
        return cls(
            [
                (LEGACY / n).read_bytes()
                for n in (
                    "search_au_del_maestro.xml",
                    "search_au_del_maestro_ANDNOT_ti_checkerboard_OR_ti_Pyrochlore.xml",
                    "search_au_del_maestro_AND_ti_quantum_criticality.xml",
                    "id_list_1111.2011v2.xml",
                )
            ]
        )

    def select(self, query: str) -> list[tuple[datetime, set[str], bytes]]:
        rows = list(self.entries.values())
        window = WINDOW.search(query)
        if window:
            low, high = (datetime.strptime(v, "%Y%m%d%H%M") for v in window.groups())
            rows = [r for r in rows if low <= r[0].replace(tzinfo=None, second=0) <= high]
        cats = set(CAT_TERM.findall(query))
        if cats:
            rows = [r for r in rows if r[1] & cats]
        return sorted(rows, key=lambda r: r[0])

    def feed(self, query: str, start: int, max_results: int, fault: str | None = None) -> bytes:
        rows = self.select(query)
        page = rows[start : start + max_results]
        if fault == "stale":
            page = rows[max(start - max_results, 0) : max(start, max_results)]
        elif fault == "short":
            page = page[len(page) // 2 :]
        head = self.envelope_head
        for tag, value in (
            (b"totalResults", len(rows)),
            (b"startIndex", start),
            (b"itemsPerPage", max_results),
        ):
            head = re.sub(
                rb"(<opensearch:" + tag + rb"[^>]*>)\d+(</opensearch:" + tag + rb">)",
                rb"\g<1>" + str(value).encode() + rb"\g<2>",
                head,
            )
        return head + b"".join(b"  " + raw + b"\n" for _, _, raw in page) + b"</feed>\n"


class ReplayServer:
    def __init__(
        self,
        corpus: Corpus | None = None,
        recorded: list[tuple[tuple, int, bytes]] | None = None,
        slow_seconds: float = 1.0,
        response_delay: float = 0.0,
    ):
        self.corpus = corpus
        self.recorded = {key: (status, body) for key, status, body in (recorded or [])}
        self.faults: list[str | None] = []
        self.requests: list[dict] = []
        self.slow_seconds = slow_seconds
        self.response_delay = response_delay
        self.error_feed = golden("id_abc")
        self.empty_feed = golden("id_0000.0000")
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server._handle(self)

        self.handler_class = Handler
        self.http: LocalHttpServer | None = None

    @property
    def url(self) -> str:
        return f"{self.http.base_url}/api/query"

    def __enter__(self):
        self.http = LocalHttpServer(self.handler_class)
        return self

    def __exit__(self, *exc):
        self.http.close()

    # --- answering ------------------------------------------------------------

    def _answer(self, args: dict, fault: str | None = None) -> tuple[int, bytes]:
        key = (args["search_query"], args["id_list"], args["start"], args["max_results"])
        if key in self.recorded:
            return self.recorded[key]
        if "BAD_QUERY" in args["search_query"]:
            return self.error_feed["status_code"], self.error_feed["body"]
        if self.corpus is None:
            return 404, b"no recording for this request"
        return 200, self.corpus.feed(
            args["search_query"], args["start"], args["max_results"], fault
        )

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlparse(handler.path).query, keep_blank_values=True)
        args = {
            "search_query": query.get("search_query", [""])[0],
            "id_list": query.get("id_list", [""])[0],
            "start": int(query.get("start", ["0"])[0]),
            "max_results": int(query.get("max_results", ["10"])[0]),
        }
        fault = self.faults.pop(0) if self.faults else None
        self.requests.append(
            {
                **args,
                "fault": fault,
                "at": time.monotonic(),
                "user_agent": handler.headers.get("user-agent"),
            }
        )
        if self.response_delay:
            time.sleep(self.response_delay)
        try:
            if fault in ("503", "429"):
                body = b"Service Unavailable" if fault == "503" else b"Rate exceeded."
                return self._send(handler, int(fault), body)
            if fault == "429-retry-after":
                return self._send(handler, 429, b"Rate exceeded.", {"Retry-After": "12"})
            if fault == "empty":
                return self._send(handler, 200, self.empty_feed["body"])
            if fault in ("html", "garbage"):
                return self._send(handler, 200, HTML_503 if fault == "html" else GARBAGE)
            status, body = self._answer(args, fault)
            if fault == "slow":
                time.sleep(self.slow_seconds)
            if fault in ("truncate", "truncate-noclen"):
                # half the body, announced in full (a short read) or not at all (read until close)
                handler.send_response(status)
                handler.send_header("Content-Type", "application/atom+xml")
                if fault == "truncate":
                    handler.send_header("Content-Length", str(len(body)))
                else:
                    handler.send_header("Connection", "close")
                handler.end_headers()
                handler.wfile.write(body[: len(body) // 2])
                handler.wfile.flush()
                handler.close_connection = True
                return
            if fault == "reset":
                handler.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                handler.close_connection = True
                handler.connection.close()
                return
            self._send(handler, status, body)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client gave up on a slow answer

    @staticmethod
    def _send(handler, status: int, body: bytes, headers: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/atom+xml; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)


def recorded_2026() -> list[tuple[tuple, int, bytes]]:
    """Every copied 2026 recording, keyed by the request it answered."""
    out = []
    for path in sorted(GOLDEN.glob("*.json")):
        record = json.loads(path.read_text())
        out.append(
            (recorded_key(record["url"]), record["status_code"], record["body"].encode("latin-1"))
        )
    return out


def recorded_2016() -> list[tuple[tuple, int, bytes]]:
    """The 2016 recordings (no URL stored; keys rebuilt from arxiv.py's original file names)."""
    names = {
        ("au:del_maestro", ""): "search_au_del_maestro.xml",
        ("au:del_maestro AND ti:checkerboard", ""): "search_au_del_maestro_AND_ti_checkerboard.xml",
        (
            'au:del_maestro AND ti:"quantum criticality"',
            "",
        ): "search_au_del_maestro_AND_ti_quantum_criticality.xml",
        (
            "au:del_maestro ANDNOT (ti:checkerboard OR ti:Pyrochlore)",
            "",
        ): "search_au_del_maestro_ANDNOT_ti_checkerboard_OR_ti_Pyrochlore.xml",
        ("", "1111.2011v2"): "id_list_1111.2011v2.xml",
    }
    return [
        ((q, ids, 0, 10), 200, (LEGACY / name).read_bytes()) for (q, ids), name in names.items()
    ]
