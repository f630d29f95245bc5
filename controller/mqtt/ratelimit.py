"""Back-pressure for MQTT commands: per-account rate limits, a bounded queue, a command
thread, and refusals counted rather than logged one by one.

Why: 10,000 commands in 10 s once took a table offline.  Every command was judged on paho's
network thread, and every refusal was fsynced to the event log and answered on ``result``.
The network thread then sent nothing for 53 s, the broker dropped the controller for a
missed keep-alive, and the dashboard refused even a heat-off because the table looked
offline.  Here paho's thread only sorts messages: it takes a token from the sender's
bucket and puts the message in a bounded queue, and a thread of its own judges the
command.  A message over the limit is refused at once.  Its reply is QoS 0 and itself
rate-limited, and its refusal goes to a tally that becomes one event per interval
("N commands refused (rate limit)").

A heat-off never waits behind a flood.  It has a bucket of its own and the front of the
queue, because switching a heater off is always safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

RATE_LIMIT = "rate limit"
QUEUE_FULL = "queue full"


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.at = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class RefusalTally:
    """Refusals counted per (account, why) and reported as one event per ``interval_s``.

    The first refusal after a quiet interval is reported at once (so the log shows an
    attack when it starts); the rest of the interval is summed up in the next report."""

    interval_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    total: int = 0
    _last_flush: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, account: str, why: str) -> None:
        with self._lock:
            key = (account, why)
            self.counts[key] = self.counts.get(key, 0) + 1
            self.total += 1

    def due(self) -> bool:
        with self._lock:
            return bool(self.counts) and self.clock() - self._last_flush >= self.interval_s

    def take(self) -> dict[tuple[str, str], int]:
        """The counts since the last report (and start a new interval)."""
        with self._lock:
            out, self.counts = self.counts, {}
            self._last_flush = self.clock()
            return out


@dataclass
class Offer:
    """One message for the command thread, with who sent it (from the topic and the ACL)."""

    msg: Any
    account: str
    safe: bool


class CommandGate:
    """Rate limits and a bounded two-lane queue in front of a command thread.

    ``offer`` runs on paho's network thread and never blocks.  ``handle(offer)`` runs on
    the gate's thread, as does ``report(counts)`` (the aggregated refusals, at most once
    per interval).  ``refuse(offer, why)`` runs on the network thread and must be cheap.
    """

    def __init__(self, handle: Callable[[Offer], None],
                 refuse: Callable[[Offer, str], None],
                 report: Callable[[dict[tuple[str, str], int]], None], *,
                 rate_per_s: float = 5.0, burst: int = 20, queue_size: int = 64,
                 report_interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.handle = handle
        self.refuse = refuse
        self.report = report
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.queue_size = queue_size
        self.clock = clock
        self.tally = RefusalTally(report_interval_s, clock)
        self._buckets: dict[tuple[str, bool], TokenBucket] = {}
        self._urgent: deque[Offer] = deque()
        self._normal: deque[Offer] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.counters = {"accepted": 0, "refused_rate": 0, "refused_queue": 0, "handled": 0}

    def start(self) -> CommandGate:
        self._thread = threading.Thread(target=self._run, name="mqtt-commands", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 3.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def offer(self, item: Offer) -> bool:
        """Queue a message or refuse it (rate limit, queue full); True if queued."""
        key = (item.account, item.safe)
        bucket = self._buckets.get(key)
        if bucket is None:
            # heat-off has its own, larger allowance: it is never what a flood is made of
            rate, burst = ((2 * self.rate_per_s, 2 * self.burst) if item.safe
                           else (self.rate_per_s, self.burst))
            bucket = self._buckets[key] = TokenBucket(rate, burst, self.clock)
        if not bucket.take():
            self.counters["refused_rate"] += 1
            self._refused(item, RATE_LIMIT)
            return False
        with self._cond:
            lane = self._urgent if item.safe else self._normal
            if len(lane) >= self.queue_size:
                full = True
            else:
                full = False
                lane.append(item)
                self.counters["accepted"] += 1
                self._cond.notify()
        if full:
            self.counters["refused_queue"] += 1
            self._refused(item, QUEUE_FULL)
            return False
        return True

    def _refused(self, item: Offer, why: str) -> None:
        self.tally.add(item.account, why)
        try:
            self.refuse(item, why)
        except Exception:  # noqa: BLE001 - the network thread must live
            log.exception("refusing a command failed")
        with self._cond:
            self._cond.notify()  # the thread reports the first refusal at once

    def pending(self) -> int:
        with self._cond:
            return len(self._urgent) + len(self._normal)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._stop or self._urgent or self._normal or self.tally.due()):
                    self._cond.wait(1.0)
                if self._stop:
                    return
                item = self._urgent.popleft() if self._urgent else \
                    (self._normal.popleft() if self._normal else None)
            if item is not None:
                try:
                    self.handle(item)
                except Exception:  # noqa: BLE001
                    log.exception("command handling failed")
                self.counters["handled"] += 1
            if self.tally.due():
                counts = self.tally.take()
                if counts:
                    try:
                        self.report(counts)
                    except Exception:  # noqa: BLE001
                        log.exception("reporting refusals failed")
