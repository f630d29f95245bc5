"""Prometheus metrics of one dashboard process (its own registry per app).

Every label value comes from a fixed set: a request's route is a rule of the app (or
``<unmatched>``), its method one of ``METHODS`` (or ``OTHER``) and its status a standard
HTTP status (or ``other``), so no request, however odd, can add a time series.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from controller.mqtt.fleet import FleetClient

PREFIX = "hydrotherm_dashboard"
#: the methods a label may name; anything else is counted as ``OTHER``
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUSES = frozenset(str(int(s)) for s in HTTPStatus)


def method_label(method: str) -> str:
    return method if method in METHODS else "OTHER"


def status_label(status: int) -> str:
    text = str(status)
    return text if text in _STATUSES else "other"


class Metrics:
    def __init__(self, fleet: FleetClient) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._guard: Any = None
        r = self.registry
        self.requests = Counter(f"{PREFIX}_http_requests", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram(f"{PREFIX}_http_request_seconds",
                                 "Time to the response headers, by route", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                          10), registry=r)
        self.sse_clients = Gauge(f"{PREFIX}_sse_clients", "Live browsers (open event streams)",
                                 registry=r)
        self.sse_dropped = Counter(f"{PREFIX}_sse_dropped_messages",
                                   "Live messages dropped for slow browsers", registry=r)
        self.commands = Counter(f"{PREFIX}_commands",
                                "Commands by outcome: ok, refused (by the controller), "
                                "invalid (by the dashboard), unreachable, timeout, offline",
                                ["command", "outcome"], registry=r)
        self.logins = Counter(f"{PREFIX}_logins", "Login attempts by outcome", ["outcome"],
                              registry=r)
        broker = Gauge(f"{PREFIX}_broker_connected", "1 while the MQTT broker is connected",
                       registry=r)
        broker.set_function(lambda: 1.0 if fleet.broker_connected else 0.0)
        online = Gauge(f"{PREFIX}_tables_online", "Tables whose status is online", registry=r)
        online.set_function(lambda: float(sum(
            1 for v in fleet.snapshot().values() if v["status"] == "online")))
        known = Gauge(f"{PREFIX}_tables_known", "Tables ever heard on the broker", registry=r)
        known.set_function(lambda: float(len(fleet.snapshot())))

    def watch_connections(self, guard: Any) -> None:
        """Expose a server's ``limits.ConnectionGuard`` (called by ``DashboardServer``;
        the latest server's guard is the one shown)."""
        first = self._guard is None
        self._guard = guard
        if not first:
            return
        r = self.registry
        for name, doc, attr in (
                ("http_connections_open", "Open HTTP connections", "open"),
                ("http_connections_refused", "Connections turned away over the per-address "
                 "cap since start", "refused"),
                ("http_request_timeouts", "Connections closed for sending a request too "
                 "slowly since start", "timed_out")):
            Gauge(f"{PREFIX}_{name}", doc, registry=r).set_function(
                lambda attr=attr: self._guard_value(attr))

    def _guard_value(self, attr: str) -> float:
        value = getattr(self._guard, attr)
        return float(sum(value.values()) if isinstance(value, dict) else value)

    def count_request(self, route: str, method: str, status: int) -> None:
        self.requests.labels(route, method_label(method), status_label(status)).inc()

    def on_live_change(self, what: str, amount: int) -> None:
        if what == "clients":
            self.sse_clients.inc(amount)
        elif what == "dropped":
            self.sse_dropped.inc(amount)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
