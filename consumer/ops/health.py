"""`/metrics`, `/healthz` and `/readyz` on METRICS_PORT, for Prometheus and Kubernetes probes.

Liveness means the poll loop is still turning (a wedged loop is what a restart fixes). Readiness
means partitions are assigned and a broker is reachable: the pod is doing its job.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consumer.ops.metrics import Metrics


class Health:
    """Heartbeat of the poll loop, written by the loop and read by the probe handler."""

    def __init__(self, stall_after_s: float) -> None:
        self._stall_after_s = stall_after_s
        self._last_beat = time.monotonic()
        self.assigned = 0

    def beat(self) -> None:
        self._last_beat = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self._last_beat < self._stall_after_s


def serve(
    port: int, metrics: Metrics, health: Health, host: str = "0.0.0.0"
) -> ThreadingHTTPServer:
    """Start the endpoint on a daemon thread; `shutdown()` the returned server to stop it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = health.alive()
                self._answer(200 if ok else 503, b"ok\n" if ok else b"poll loop stalled\n")
            elif self.path == "/readyz":
                why = _not_ready(metrics, health)
                self._answer(503 if why else 200, (why or "ready").encode() + b"\n")
            else:
                self._answer(404, b"not found\n")

        def _answer(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # probes are not news
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def _not_ready(metrics: Metrics, health: Health) -> str:
    if not health.alive():
        return "poll loop stalled"
    if metrics.value("personalize_consumer_kafka_brokers_up") < 1:
        return "no Kafka broker reachable"
    if health.assigned == 0:
        return "no partitions assigned"
    return ""
