"""Running the controller in real time: the poll loop, the host watchdog, clean stops.

``ControllerRunner`` owns one thread that polls the controller every few milliseconds and
a second, independent watchdog thread.  If the poll thread stops completing control
cycles (a hang, a deadlock, a long GC pause), the watchdog cuts the heaters itself: it
writes SET_OUTPUTS 0 and SET_RELAY open straight to the board, without the link's lock
that the hung thread may hold.  The board's own dead-man (3 s) is the layer below that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from firmware_bridge import protocol as p
from hydrotherm.clock import heartbeat, leave

from .service import Controller


class ControllerRunner:
    """Poll thread + watchdog thread around one ``Controller``."""

    def __init__(self, controller: Controller, poll_s: float = 0.005,
                 on_watchdog: Callable[[str], None] | None = None) -> None:
        self.controller = controller
        self.poll_s = poll_s
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
            self._stop.wait(self.poll_s)

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
