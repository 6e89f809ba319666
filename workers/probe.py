"""The worker's liveness and readiness probe: a tiny HTTP server a Deployment's probes call.

`GET /healthz`: 200 while the worker's consumer sends heartbeats (its event loop runs), 503
once it went silent; `GET /readyz`: 200 once the worker consumes its queues, 503 while it
starts or shuts down; `GET /metrics`: Prometheus metrics of every process of the worker.
Served by a thread of the worker's main process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def serve(port: int, alive: Callable[[], bool], ready: Callable[[], bool],
          host: str = "0.0.0.0", metrics: Callable[[], bytes] | None = None
          ) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics" and metrics is not None:
                body = metrics()
                self.send_response(200)
                self.send_header("Content-Type", METRICS_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            checks = {"/healthz": alive, "/livez": alive, "/readyz": ready}
            check = checks.get(path)
            if check is None:
                self._answer(404, "not found\n")
            elif check():
                self._answer(200, "ok\n")
            else:
                self._answer(503, "not ok\n")

        def _answer(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return None  # probes every few seconds would drown the logs

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="probe", daemon=True).start()
    return server
