"""The command gate (controller/mqtt/ratelimit.py) on its own, with a hand-driven clock:
per-account buckets, the heat-off lane, the bounded queue, refusals counted into one
report per interval.  The flood against a real broker is tests/test_mqtt_flood.py."""

from __future__ import annotations

import threading
from typing import Any

from controller.mqtt.ratelimit import QUEUE_FULL, RATE_LIMIT, CommandGate, Offer, TokenBucket
from tests.mqtt_fixtures import wait_for


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    clock = Clock()
    b = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [b.take() for _ in range(4)] == [True, True, True, False]
    clock.t += 0.5  # one token back
    assert b.take() and not b.take()
    clock.t += 100  # never more than the burst
    assert sum(b.take() for _ in range(10)) == 3


def test_gate_limits_each_account_and_lets_heat_off_through() -> None:
    clock = Clock()
    handled: list[Any] = []
    refused: list[tuple[str, str]] = []
    reports: list[dict[tuple[str, str], int]] = []
    release = threading.Event()

    def handle(o: Offer) -> None:
        release.wait(5)  # the command thread is busy until released
        handled.append(o.msg)

    gate = CommandGate(handle, lambda o, why: refused.append((o.account, why)),
                       reports.append, rate_per_s=1.0, burst=3, queue_size=2,
                       report_interval_s=10.0, clock=clock).start()
    try:
        # dashboard: a burst of 3 passes the bucket; the thread holds one, the queue two
        assert gate.offer(Offer("d0", "dashboard", False))
        assert wait_for(lambda: gate.pending() == 0, 2)  # the thread is busy with d0
        results = [gate.offer(Offer(f"d{i}", "dashboard", False)) for i in range(1, 6)]
        assert results[:2] == [True, True] and results[2:] == [False] * 3
        assert refused == [("dashboard", RATE_LIMIT)] * 3
        # another account has a bucket of its own, but the queue is full now
        assert wait_for(lambda: gate.pending() == 2, 2)
        assert gate.offer(Offer("h0", "homeassistant", False)) is False
        assert refused[-1] == ("homeassistant", QUEUE_FULL)
        # a heat-off: its own bucket and lane, ahead of the queued commands
        assert gate.offer(Offer("OFF", "dashboard", True)) is True
        release.set()
        assert wait_for(lambda: len(handled) == 4, 5)
        assert handled[0] == "d0" and handled[1] == "OFF" and handled[2:] == ["d1", "d2"]
        # the first refusals are reported at once, as counts, not one entry each
        assert wait_for(lambda: reports, 3)
        first = reports[0]
        assert first.get(("dashboard", RATE_LIMIT), 0) >= 1
        # more refusals in the same interval wait for the next report
        n = len(reports)
        for i in range(50):
            gate.offer(Offer(f"x{i}", "dashboard", False))
        assert len(reports) == n
        clock.t += 11
        assert wait_for(lambda: len(reports) > n, 3)
        total = sum(c for r in reports for k, c in r.items() if k == ("dashboard", RATE_LIMIT))
        assert total == gate.counters["refused_rate"] == 53  # every one counted, once
        assert sum(c for r in reports for k, c in r.items()
                   if k == ("homeassistant", QUEUE_FULL)) == gate.counters["refused_queue"] == 1
    finally:
        release.set()
        gate.stop()
