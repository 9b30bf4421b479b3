"""Health, readiness and Prometheus metrics over HTTP, from a thread of the controller.

The standard library's server is enough for three read-only endpoints, and it binds exactly the
address given (default 127.0.0.1: the metrics name files and commits, which are not for
everyone). The metrics live in their own CollectorRegistry, so /metrics carries exactly the
sealer_* families below and no process or platform collectors.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import UsageError
from .log import EventLog
from .state import State

METRIC_NAMES = (
    "sealer_syncs_total",
    "sealer_sync_errors_total",
    "sealer_values_unsealed_total",
    "sealer_last_success_timestamp_seconds",
    "sealer_applied_commit_info",
    "sealer_oldest_secret_age_seconds",
    "sealer_key_age_seconds",
    "sealer_audit_entries",
    "sealer_audit_head_info",
    "sealer_values_expiring",
    "sealer_values_expired",
    "sealer_seconds_to_next_expiry",
)
DEFAULT_LISTEN = "127.0.0.1:9808"
MAX_FILE_SERIES = 50  # (reason, file) series of sealer_sync_errors_total kept: the most recent


class Metrics:
    """The controller's metrics. Ages are computed when scraped, so they grow between syncs."""

    def __init__(self) -> None:
        import prometheus_client
        from prometheus_client import CollectorRegistry, Counter, Gauge

        # Counters would otherwise also expose *_created series: names the contract does not have.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        self.syncs = Counter("sealer_syncs_total", "Sync cycles run, changed or not.", registry=r)
        self.errors = Counter(
            "sealer_sync_errors_total",
            "Failed syncs by reason; file names the repository file at fault, when there is one.",
            ["reason", "file"],
            registry=r,
        )
        self.values = Counter("sealer_values_unsealed_total", "Values unsealed and rendered.", registry=r)
        self.last_success = Gauge(
            "sealer_last_success_timestamp_seconds", "Unix time of the last successful sync.", registry=r
        )
        self.commit = Gauge("sealer_applied_commit_info", "The applied commit (value 1).", ["commit"], registry=r)
        self.oldest = Gauge(
            "sealer_oldest_secret_age_seconds",
            "Age of the oldest sealed value applied, by environment.",
            ["env"],
            registry=r,
        )
        self.key_age = Gauge(
            "sealer_key_age_seconds",
            "Age of each key the controller accepts (active, retiring).",
            ["env", "kid"],
            registry=r,
        )
        # The audit log's head, anchored outside the log: a count without labels, and the hash as
        # the one label of one series (replaced when the head moves, like the applied commit).
        self.audit_entries = Gauge(
            "sealer_audit_entries", "Entries in the audit log, after the controller's last write.", registry=r
        )
        self.audit_head = Gauge(
            "sealer_audit_head_info", "The audit log's head hash (value 1; one series).", ["hash"], registry=r
        )
        # Expiry, per environment (values sealed with an expiry bound in their context). Declared
        # here, with the other families, so /metrics always names them; the sync sets them.
        self.expiring = Gauge(
            "sealer_values_expiring",
            "Applied values that expire soon (not yet expired), by environment.",
            ["env"],
            registry=r,
        )
        self.expired = Gauge(
            "sealer_values_expired", "Applied values past their expiry, by environment.", ["env"], registry=r
        )
        self.next_expiry = Gauge(
            "sealer_seconds_to_next_expiry",
            "Seconds until the nearest expiry of an applied value, by environment.",
            ["env"],
            registry=r,
        )
        self._audit_hash: str | None = None
        self._commit: str | None = None
        self._envs: set[str] = set()
        self._keys: set[tuple[str, str]] = set()
        self._files: OrderedDict[tuple[str, str], None] = OrderedDict()  # (reason, file), oldest first

    def prime(self, reasons: Iterable[str]) -> None:
        """Zero series for every reason, so a dashboard sees 0 rather than nothing."""
        for reason in reasons:
            self.errors.labels(reason, "")

    def failed(self, reason: str, file: str | None) -> None:
        """Count a failure. Series naming a file are bounded: the MAX_FILE_SERIES most recently
        failing (reason, file) pairs are kept, and the oldest is dropped for a new one (if it
        fails again, its counter starts over). The log and the audit log name every file."""
        key = (reason, file or "")
        if file:
            self._files[key] = None
            self._files.move_to_end(key)
            while len(self._files) > MAX_FILE_SERIES:
                self.errors.remove(*self._files.popitem(last=False)[0])
        self.errors.labels(*key).inc()

    def audit_appended(self, entries: int, digest: str) -> None:
        """Point the audit metrics at the log's new head."""
        self.audit_entries.set(entries)
        if digest != self._audit_hash:
            if self._audit_hash is not None:
                self.audit_head.remove(self._audit_hash)
            self.audit_head.labels(digest).set(1)
            self._audit_hash = digest

    def succeeded(self, when: float | None = None) -> None:
        self.last_success.set(time.time() if when is None else when)

    def applied(self, state: State) -> None:
        """Point the commit, age and key metrics at what `state` says is applied."""
        if state.commit != self._commit:
            if self._commit is not None:
                self.commit.remove(self._commit)
            if state.commit is not None:
                self.commit.labels(state.commit).set(1)
            self._commit = state.commit
        for env in self._envs - set(state.oldest):
            self.oldest.remove(env)
        for env, sealed_at in state.oldest.items():
            self.oldest.labels(env).set_function(_age(float(sealed_at)))
        self._envs = set(state.oldest)
        keys = {(env, k.kid): k.created for env, ks in state.keys.items() for k in ks}
        for gone in self._keys - set(keys):
            self.key_age.remove(*gone)
        for (env, kid), created in keys.items():
            self.key_age.labels(env, kid).set_function(_age(created))
        self._keys = set(keys)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _age(since: float) -> Callable[[], float]:
    return lambda: max(0.0, time.time() - since)


def parse_listen(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` or `[V6]:PORT` (port 0: any free port); `none`/`off`: no server."""
    if text.strip().lower() in ("none", "off", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise UsageError(f"bad --listen address {text!r}", hint="use HOST:PORT, e.g. 127.0.0.1:9808, or none")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class HealthServer:
    """/healthz: the process serves. /readyz: `ready()` says yes. /metrics: Prometheus text."""

    def __init__(
        self,
        address: tuple[str, int],
        ready: Callable[[], tuple[bool, str]],
        metrics: Metrics,
        log: EventLog | None = None,
    ) -> None:
        self._ready = ready
        self._metrics = metrics
        handler = _handler(ready, metrics)
        event_log = log or EventLog()
        import socket

        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                """One log line, never a traceback: a client that resets its connection (or any
                other failure of one request) is an event like the others."""
                e = sys.exc_info()[1]
                detail = e.strerror if isinstance(e, OSError) else None
                client = client_address[0] if isinstance(client_address, tuple) and client_address else None
                event_log("http-error", level="warn", client=client, error=type(e).__name__, detail=detail)

        try:
            self._server = Server(address, handler)
        except OSError as e:
            raise UsageError(f"cannot listen on {address[0]}:{address[1]}: {e.strerror}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="sealer-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(ready: Callable[[], tuple[bool, str]], metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def version_string(self) -> str:
            return "sealer"

        timeout = 10  # a slow client cannot hold a thread for long

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b"ok\n")
            elif path == "/readyz":
                ok, why = ready()
                self._send(200 if ok else 503, (why + "\n").encode())
            elif path == "/metrics":
                body, ctype = metrics.render()
                self._send(200, body, ctype)
            else:
                self._send(404, b"not found\n")

        do_HEAD = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no access log: one line per sync event is the controller's log

    return Handler
