"""One way to run a test's HTTP stand-in: a ThreadingHTTPServer on a free
127.0.0.1 port, served from a daemon thread (no network leaves the machine),
and a handler that trickles its answer one byte at a time."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalHttpServer:
    """Serves ``handler_class`` until ``close()`` (or the end of a ``with`` block)."""

    def __init__(self, handler_class):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> LocalHttpServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def trickling_handler(
    body: bytes, content_type: str, interval: float = 0.2, slow_seconds: float = 6.0
):
    """A handler class answering every GET and POST with ``body``: status and headers (with the full
    Content-Length) at once, then one byte every ``interval`` seconds for ``slow_seconds``, then the
    rest. A client whose timeout applies per read waits the whole ``slow_seconds``. The start time
    of every request is appended to the class's ``requests`` list."""

    class Trickle(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        requests: list[float] = []

        def _serve(self) -> None:
            Trickle.requests.append(time.monotonic())
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            slow = min(len(body), int(slow_seconds / interval))
            try:
                for index in range(slow):
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
                    time.sleep(interval)
                self.wfile.write(body[slow:])
            except OSError:
                pass  # the client gave up
            self.close_connection = True

        do_GET = do_POST = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Trickle
