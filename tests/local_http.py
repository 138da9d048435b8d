"""One way to run a test's HTTP stand-in: a ThreadingHTTPServer on a free
127.0.0.1 port, served from a daemon thread (no network leaves the machine)."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


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
