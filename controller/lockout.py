"""What a controller learns at start from its own event log: the service lockouts still
in force, and how its previous run ended.

Why the event log: it is the one record that survives a kill -9 or a power cut (events
commit with ``synchronous=FULL``).  A trip that needs a service person (``SERVICE_ONLY``)
must survive a restart: a welded relay tripped ``rise_while_off`` with the relay open and
the outputs at 0, so the board's dead-man never fired and the board has no flag to show
for it; without this a restart would lift the lockout.  And the board does not say *when*
a latched flag was raised, so the controller quotes when its previous run left its last
record, which bounds when a dead-man could have fired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from controller.supervisor.rules.board_fault import fmt_duration


@dataclass(frozen=True)
class OpenLockout:
    """A service-only trip whose last record is a ``trip`` with no ``trip_reset`` after."""

    reason: str
    cushion: int | None
    time: float  # wall time of its last trip record
    detail: str
    flags: int


def open_lockouts(log: Any) -> list[OpenLockout]:
    """The service-only trips the log shows latched when the last run ended."""
    open_: dict[tuple[str, int | None], OpenLockout] = {}
    for e in log.events(kinds=("trip", "trip_reset")):
        key = (e.reason or "", e.cushion)
        if e.kind == "trip_reset":
            open_.pop(key, None)
        elif e.detail.get("service"):
            flags = e.detail.get("flags_bits", 0)
            open_[key] = OpenLockout(key[0], e.cushion, e.time, str(e.detail.get("detail", "")),
                                     flags if isinstance(flags, int) else 0)
    return list(open_.values())


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def previous_run_note(log: Any, now: float) -> str:
    """One or two sentences about the previous run, for a person ("" when the log holds
    none): when it left its last record and whether it stopped cleanly."""
    starts = log.events(kinds=("controller_start",), limit=1)
    if not starts:
        return ""
    start = starts[0]
    after = log.events(since=start.time)
    last_event = after[-1] if after else start
    newest = max(t for t in (last_event.time, log.newest_sample_time()) if t is not None)
    ago = fmt_duration(now - newest)
    if last_event.kind == "controller_stop":
        return (f"The previous controller run stopped cleanly at {_clock(last_event.time)} "
                f"({ago} before this start).")
    return (f"The previous controller run (started {_clock(start.time)}) left its last "
            f"record at {_clock(newest)}, {ago} before this start, and ended without a clean "
            "stop (killed, crashed or powered off): a board still heating then switched "
            "itself off a few seconds later (its dead-man).")
