"""``board_fault`` (reference: "dead-man, board-side limit, cut-out, unexpected reset",
all heaters off), from two sources:

* the telemetry itself: a fault flag that was clear in the previous report and is set
  now.  A FAULT message is not retransmitted and may be lost; the flags repeat in every
  report.  (The flags of the very first report are the board's past, which the controller
  clears at start.)
* the link's ``board_fault`` and ``board_reset`` events.

The host never assumes the board obeyed: it reads the flags back before a reset clears.
"""

from __future__ import annotations

from firmware_bridge import protocol as p
from firmware_bridge.link import LinkEvent

from ..latch import Latch
from .base import Cause, Rule


class BoardFault(Rule):
    reasons = ("board_fault",)

    def on_flags(self, new: int, now: float) -> None:
        """``new``: flags set in this report that were clear in the previous one."""
        names = ", ".join(p.fault_names(new))
        if new & p.Fault.RESET:
            detail = f"unexpected reset (board flags: {names})"
        else:
            detail = f"board fault: {names}"
        self.st.trip("board_fault", None, detail, now)

    def on_link_event(self, ev: LinkEvent, now: float) -> None:
        """A ``board_fault`` or ``board_reset`` event of the link."""
        if ev.kind == "board_reset":
            detail = "unexpected reset" + (f": {ev.detail}" if ev.detail else "")
        else:
            detail = f"board fault: {ev.detail or 'unnamed flags'}"
        self.st.trip("board_fault", None, detail, now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """A report arrived after the fault and shows no fault flags (the controller sends
        CLEAR_FAULTS first)."""
        st = self.st
        if st.reports <= latch.reports_at_trip:
            return "no telemetry report since the fault to judge it on", ""
        assert st.last_reading is not None
        flags = st.last_reading.faults
        if flags:
            return (f"the board still reports {', '.join(p.fault_names(flags))} "
                    "(send CLEAR_FAULTS first)"), ""
        return None, "the board reports no fault flags"
