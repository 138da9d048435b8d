"""A stand-in for arxiv.org/pdf on 127.0.0.1, shared by the PDF and weekly tests:
routes map a path to (status, content type, body); every request is recorded."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler

from local_http import LocalHttpServer
from pdf_factory import paper_pdf

DEFAULT_PDF = paper_pdf()


class PdfServer:
    """Routes: path -> (status, content type, body). Records (time, path) of every request."""

    def __init__(self, default_body: bytes = DEFAULT_PDF):
        self.default_body = default_body
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[tuple[float, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((time.monotonic(), self.path))
                status, content_type, body = server.routes.get(
                    self.path, (404, "text/html", b"<html>not found</html>")
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = LocalHttpServer(Handler)
        self.url = f"{self.http.base_url}/pdf/"

    def pdf(
        self,
        paper_id: str,
        version: int,
        body: bytes | None = None,
        status: int = 200,
        content_type: str = "application/pdf",
    ):
        self.routes[f"/pdf/{paper_id}v{version}"] = (
            status,
            content_type,
            self.default_body if body is None else body,
        )

    def close(self):
        self.http.close()
