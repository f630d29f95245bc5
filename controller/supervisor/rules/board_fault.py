"""``board_fault`` (reference: "dead-man, board-side limit, cut-out, unexpected reset",
all heaters off): **a latched board flag is a trip whenever it is seen**.

Sources:

* the flags the board finds latched **when the controller connects** (the first report
  of each connection, and the first report this supervisor ever sees): every flag but
  RESET is a trip at once.  A board whose dead-man fired while the controller was killed,
  or while its cable was out, has its master relay open and cannot heat; a controller
  that ignored those flags would show "heating" for a table that is cold.  The detail
  says what each flag means and what is known about *when*: the protocol carries no time
  of a flag, only the board's uptime (it happened since the board booted), so the
  controller adds what it knows itself (how long the link was down, when the previous
  controller run left its last record and whether it stopped cleanly).  RESET at the
  first connection is the board's boot, expected and cleared by the controller (protocol
  §10 step 5); RESET appearing at a later connection or later in a connection is an
  unexpected reset.
* later reports: a flag that was clear in the previous report and is set now.  A FAULT
  message is not retransmitted and may be lost; the flags repeat in every report.
* the link's ``board_fault`` and ``board_reset`` events.

The flags a trip has seen accumulate on it (``Trip.flags``): a cut-out or the board's
hot-water limit makes it a trip that only a service person may reset (``SERVICE_ONLY``).

Reset: the controller sends CLEAR_FAULTS first (a therapist's reset leaves the
service-only flags latched on the board); the trip clears only when a report after the
fault shows no flags at all.  The host never assumes the board obeyed.
"""

from __future__ import annotations

from firmware_bridge import protocol as p
from firmware_bridge.link import BoardReading, LinkEvent

from ..latch import Latch
from ..state import SupervisorState
from .base import Cause, Rule

RESET_BIT = int(p.Fault.RESET)
_CHANNELS = (0, 1)


def fmt_duration(seconds: float) -> str:
    """``45 s``, ``2.5 min``, ``3.2 h``, ``2.0 days``: for a person."""
    s = max(0.0, seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.1f} min"
    if s < 36 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def describe_flags(flags: int, reading: BoardReading | None = None) -> list[str]:
    """Each set flag family in words, the flags' names first (as the board's documentation
    names them), both channels of a family in one sentence; ``reading`` adds whether a
    cut-out is still open."""

    def channels(family: str) -> list[int]:
        return [n for n in _CHANNELS if flags & int(p.Fault.for_channel(family, n))]

    def names(family: str, chs: list[int]) -> str:
        return ", ".join(f"{family}_{n}" for n in chs)

    def which(noun: str, chs: list[int]) -> str:
        return f"{noun} {chs[0]}" if len(chs) == 1 else f"{noun}s {' and '.join(map(str, chs))}"

    out = []
    chs = channels("DEADMAN")
    if chs:
        out.append(f"{names('DEADMAN', chs)}: the board switched {which('heater', chs)} off "
                   f"because {'its setting was' if len(chs) == 1 else 'their settings were'} "
                   "not refreshed in time (the board's dead-man), which "
                   "happens when the controller stops (killed, crashed) or loses the cable "
                   "while heating")
    chs = channels("LIMIT_HOT")
    if chs:
        out.append(f"{names('LIMIT_HOT', chs)}: the board's own limit switched "
                   f"{which('heater', chs)} off because a sensor of {which('cushion', chs)} "
                   "read above the board's hot-water limit for several samples in a row")
    chs = channels("LIMIT_SENSOR")
    if chs:
        out.append(f"{names('LIMIT_SENSOR', chs)}: the board switched {which('heater', chs)} "
                   f"off because a sensor of {which('cushion', chs)} read open or shorted for "
                   "several samples while the heater was on")
    chs = channels("CUTOUT")
    if chs:
        still = [n for n in chs if reading is not None and reading.cushions[n].cutout_open]
        tail = ""
        if still:
            tail = (", and it is still open" if len(chs) == 1 else
                    f", and {which('plate', still)} {'is' if len(still) == 1 else 'are'} "
                    "still open")
        out.append(f"{names('CUTOUT', chs)}: the bimetal cut-out of heater "
                   f"{which('plate', chs)} opened (the plate overheated){tail}")
    if flags & RESET_BIT:
        out.append("RESET: the board restarted")
    return out


class BoardFault(Rule):
    reasons = ("board_fault",)

    def __init__(self, st: SupervisorState) -> None:
        super().__init__(st)
        #: what the controller knows about the run before this one (said at connect)
        self.previous_run = ""
        #: when the link went down (clock time), until the next connection
        self.down_since: float | None = None
        self._down_for: float | None = None

    def on_flags(self, new: int, now: float) -> None:
        """``new``: flags set in this report that were clear in the previous one."""
        names = ", ".join(p.fault_names(new))
        if new & RESET_BIT:
            detail = f"unexpected reset (board flags: {names})"
        else:
            words = "; ".join(describe_flags(new, self.st.last_reading))
            detail = f"board fault: {names} ({words})"
        self.st.trip("board_fault", None, detail, now, flags=new & ~RESET_BIT)

    def on_connect_event(self, ev: LinkEvent, now: float) -> None:
        """The link's ``connected`` / ``disconnected``: what the connect detail says about
        how long the board was on its own."""
        if ev.kind == "disconnected":
            if self.down_since is None:
                self.down_since = now
        elif ev.kind == "connected":
            self._down_for = None if self.down_since is None else now - self.down_since
            self.down_since = None

    def at_connect(self, found: int, reading: BoardReading, now: float, first: bool) -> None:
        """``found``: flags (RESET excluded) already latched in the first report of a
        connection.  ``first``: the first connection this supervisor sees."""
        what = "; ".join(describe_flags(found, reading))
        when = (f"The board has been running for {fmt_duration(reading.uptime_ms / 1000)}, so "
                "this happened since it started; the board does not say when.")
        if not first and self._down_for is not None:
            when += (f" The link to the board had been down for {fmt_duration(self._down_for)} "
                     "before this connection.")
        elif first and self.previous_run:
            when += " " + self.previous_run
        detail = (f"found latched on the heater board when the controller connected: {what}. "
                  "The board switched the heaters off and opened the master relay then, so "
                  f"the table cannot heat until a person resets it. {when}")
        self.st.trip("board_fault", None, detail, now, flags=found)

    def on_link_event(self, ev: LinkEvent, now: float) -> None:
        """A ``board_fault`` or ``board_reset`` event of the link."""
        if ev.kind == "board_reset":
            detail = "unexpected reset" + (f": {ev.detail}" if ev.detail else "")
            flags = 0
        else:
            detail = f"board fault: {ev.detail or 'unnamed flags'}"
            raised = ev.data.get("raised", 0)
            flags = raised if isinstance(raised, int) else 0
        self.st.trip("board_fault", None, detail, now, flags=flags)

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
