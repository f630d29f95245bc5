"""``stale_telemetry`` (reference: "no valid report for 1.0 s", all heaters off): more
than ``stale_telemetry_s`` since the last report arrived (``reading.time``).

Only a link that has delivered a report can go stale: before the first report nothing can
heat (the controller zeroes every output while the link is unhealthy and the relay has
never been closed), and a latched trip would only make a person reset a table whose board
was plugged in a second after the controller started.
"""

from __future__ import annotations

from ..latch import Latch
from .base import Cause, Rule


class StaleTelemetry(Rule):
    reasons = ("stale_telemetry",)
    needs_reading = False

    def on_time(self, now: float) -> None:
        st = self.st
        limit = self.cfg.stale_telemetry_s
        age = now - st.last_report_at
        if st.last_reading is not None and age > limit:
            st.trip("stale_telemetry", None,
                    f"no telemetry report for {age:.2f} s (limit {limit:g} s)", now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """A report arrived within ``stale_telemetry_s``."""
        age = now - self.st.last_report_at
        if age <= self.cfg.stale_telemetry_s:
            return None, f"telemetry flowing (last report {age:.2f} s ago)"
        return f"still no telemetry report for {age:.1f} s", ""
