"""Prometheus metrics of one dashboard process (its own registry per app)."""

from __future__ import annotations

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


class Metrics:
    def __init__(self, fleet: FleetClient) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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

    def on_live_change(self, what: str, amount: int) -> None:
        if what == "clients":
            self.sse_clients.inc(amount)
        elif what == "dropped":
            self.sse_dropped.inc(amount)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
