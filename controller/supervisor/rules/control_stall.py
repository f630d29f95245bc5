"""``control_stall`` (reference: "no control cycle for 3 s", all heaters off): once armed,
more than ``control_stall_s`` since the control loop's last heartbeat (or ``arm()``).

The board's own dead-man covers a dead host; this covers a live host whose control loop
stopped (a hung thread, a blocked call) while the link still refreshes stale outputs.
"""

from __future__ import annotations

from ..latch import Latch
from .base import Cause, Rule


class ControlStall(Rule):
    reasons = ("control_stall",)
    needs_reading = False

    def on_time(self, now: float) -> None:
        st = self.st
        if st.armed:
            limit = self.cfg.control_stall_s
            age = now - st.last_heartbeat
            if age > limit:
                st.trip("control_stall", None,
                        f"no control cycle for {age:.2f} s (limit {limit:g} s)", now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """A heartbeat within ``control_stall_s``."""
        age = now - self.st.last_heartbeat
        if age <= self.cfg.control_stall_s:
            return None, f"control loop running (last cycle {age:.2f} s ago)"
        return f"still no control cycle for {age:.1f} s", ""
