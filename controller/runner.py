"""Running the controller in real time: the poll loop, the host watchdog, clean stops.

``ControllerRunner`` owns one thread that polls the controller and a second, independent
watchdog thread.  Between polls the thread sleeps in ``poll(2)`` on the board's port: it
wakes the moment bytes arrive (a reading is handled as fast as with a 5 ms poll) and
otherwise at the next control cycle or history sample, and at least every ``idle_s``
(10 × ``poll_s``: 50 ms, against a 100 ms retransmission timeout, 0.5 s output refresh
and 1 s staleness limit; 50 ms of simulated time under ``demo --speed``) for what else
is due by time.  Polling every 5 ms whether or
not anything had arrived was most of the controller's CPU.

If the poll thread stops completing control
cycles (a hang, a deadlock, a long GC pause), the watchdog cuts the heaters itself: it
writes SET_OUTPUTS 0 and SET_RELAY open straight to the board, without the link's lock
that the hung thread may hold.  The board's own dead-man (3 s) is the layer below that.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable

from firmware_bridge import protocol as p
from hydrotherm.clock import heartbeat, leave

from .service import Controller

#: the longest the poll thread sleeps without bytes from the board, in the controller's
#: clock time: against a 100 ms retransmission timeout, 0.5 s refresh, 1 s staleness
IDLE_CLOCK_S = 0.05


class ControllerRunner:
    """Poll thread + watchdog thread around one ``Controller``."""

    def __init__(self, controller: Controller, poll_s: float = 0.005,
                 on_watchdog: Callable[[str], None] | None = None,
                 idle_s: float | None = None) -> None:
        self.controller = controller
        self.poll_s = poll_s
        # a ScaledClock (``demo --speed``) runs ``speed`` times faster: what is due every
        # 50 ms of its time is due every 50 ms / speed of ours
        self._speed = float(getattr(controller.clock, "speed", 1.0)) or 1.0
        if idle_s is None:
            idle_s = min(10 * poll_s, IDLE_CLOCK_S / self._speed)
        self.idle_s = max(poll_s, idle_s)
        self.on_watchdog = on_watchdog
        self._stop = threading.Event()
        self._last_progress = time.monotonic()
        self._poll_thread: threading.Thread | None = None
        self._watchdog_thread: threading.Thread | None = None
        self.watchdog_fired = 0
        #: How long the loop had been stalled when the watchdog last cut (its own
        #: monotonic timestamps), e.g. to check it acted before the board's dead-man.
        self.cut_after_s: float | None = None
        self.error: BaseException | None = None

    def start(self) -> ControllerRunner:
        self.controller.start()
        self._poll_thread = threading.Thread(target=self._poll_loop, name="controller",
                                             daemon=True)
        self._watchdog_thread = threading.Thread(target=self._watchdog_loop,
                                                 name="controller-watchdog", daemon=True)
        self._poll_thread.start()
        self._watchdog_thread.start()
        return self

    def stop(self) -> None:
        """Heaters off, relay open, log closed (the controller's own ``stop``)."""
        self._stop.set()
        if self._poll_thread:
            self._poll_thread.join(timeout=5)
        if self._watchdog_thread:
            self._watchdog_thread.join(timeout=5)
        self.controller.stop()

    def _poll_loop(self) -> None:
        c = self.controller
        # A paced demo clock (``hydrotherm.clock.PacedClock``) waits for this loop.
        name = f"controller-{id(self):x}"
        beat = heartbeat(c.clock, name)
        try:
            self._poll_until_stopped(c, beat)
        finally:
            leave(c.clock, name)

    def _poll_until_stopped(self, c: Controller, beat: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                c.poll()
            except Exception as exc:  # noqa: BLE001 - keep the heaters safe, report
                self.error = exc
                self._cut("controller poll raised " + type(exc).__name__ + f": {exc}")
                self._stop.wait(0.5)
                continue
            self._last_progress = time.monotonic()
            beat()
            self._wait(self._last_progress)

    def _wait(self, polled_at: float) -> None:
        """Until the board sends something, at most ``idle_s``, and never sooner than
        ``poll_s`` after the last poll (so a port that stays readable, a hung-up pty,
        costs no more than the old fixed poll).  A plain ``poll_s`` sleep if the port has
        no file descriptor (or there is no port: reconnecting)."""
        c = self.controller
        fd = _fileno(c.link._port)  # noqa: SLF001 - only to wait on it
        if fd is not None:
            # no later than the next control cycle or history sample
            due_in = (c.next_due() - c.clock.now()) / self._speed
            timeout = max(0.0, min(self.idle_s, due_in))
            try:
                # poll(), not select(): select cannot wait on descriptors above 1023
                waiter = select.poll()
                waiter.register(fd, select.POLLIN)
                waiter.poll(timeout * 1000)
            except (OSError, ValueError):  # closed under us: the next poll reports it
                pass
        rest = self.poll_s - (time.monotonic() - polled_at)
        if rest > 0:
            self._stop.wait(rest)

    def _watchdog_loop(self) -> None:
        # Shorter than the board's dead-man, so this layer acts before the one below it.
        limit = self.controller.cfg.control.watchdog_s
        while not self._stop.wait(min(0.25, limit / 4)):
            stalled_for = time.monotonic() - self._last_progress
            if stalled_for > limit:
                self.cut_after_s = stalled_for
                self._cut(f"control loop stalled for {stalled_for:.1f} s")
                self._last_progress = time.monotonic()  # repeat while it stays hung

    def _cut(self, why: str) -> None:
        """Write 0 % and relay-open frames directly to the port (no link lock)."""
        self.watchdog_fired += 1
        link = self.controller.link
        port = link._port  # noqa: SLF001 - deliberately bypasses the lock
        if port is not None:
            try:
                # Two sequence numbers: the board treats a repeat of its last (seq, type)
                # as a retransmission, so at least one of these is applied for certain.
                port.write(p.encode(0xEE, p.SetOutputs(0, 0)))
                port.write(p.encode(0xEF, p.SetOutputs(0, 0)))
                port.write(p.encode(0xF0, p.SetRelay(False)))
            except Exception:  # noqa: BLE001 - the board's dead-man is the next layer
                pass
        if self.on_watchdog is not None:
            self.on_watchdog(why)


def _fileno(port: object) -> int | None:
    if port is None:
        return None
    try:
        fd = port.fileno()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not every pyserial URL handler has one
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None
