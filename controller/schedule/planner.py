"""The decision, pure: given how long is left until a cushion must be ready and how long
its warm-up is predicted to take, start, pause, resume, or wait; and whether it will be
late.

The rule is "as late as possible, but not later": heat starts when the time left is no
more than the lead time, ``predicted × (1 + spread) + MARGIN_S``, where ``spread`` is the
typical relative miss of this table's predictions (learned from earlier mornings; wide for
an unknown table, narrow once the rise of this morning has been measured) and
``MARGIN_S`` a fixed cushion of a few minutes.  If the measured rise then shows the
cushion ahead of plan by more than ``PAUSE_HYSTERESIS_S``, heat pauses and resumes when
the rule says so again (once a morning: ``runner``): an unknown table starts early,
learns within 20 minutes, and waits, instead of arriving 40 minutes early.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: aim to be in the ready band at least this long before ``ready_at`` (the verdict accepts
#: up to 20 min early, 1 min late)
MARGIN_S = 300.0
#: pause only when this far ahead of the lead time (no chattering on and off)
PAUSE_HYSTERESIS_S = 300.0
#: a forecast later than ``ready_at`` by more than this is announced as late
LATE_TOLERANCE_S = 60.0


@dataclass(frozen=True)
class Decision:
    action: str | None  # "start", "pause", "resume" or None (keep as is)
    lead_s: float  # heat should be running from ready_at - lead_s
    late_by_s: float  # > 0: even heating from now on, ready this much after ready_at


def lead_time_s(predicted_s: float, spread: float) -> float:
    return predicted_s * (1.0 + spread) + MARGIN_S


def decide(phase: str, time_left_s: float, predicted_s: float, spread: float,
           min_lead_s: float = 0.0) -> Decision:
    """``phase``: ``waiting`` (not started), ``heating`` or ``paused``; ``predicted_s``: the
    warm-up from now at full power (inf: the heater cannot get there); ``min_lead_s``: heat
    at least this long before (an unknown table: the slowest plausible one's warm-up)."""
    lead = max(lead_time_s(predicted_s, spread), min_lead_s)
    late = predicted_s - time_left_s if math.isfinite(predicted_s) else math.inf
    if phase in ("waiting", "paused") and time_left_s <= lead:
        return Decision("start" if phase == "waiting" else "resume", lead, late)
    if phase == "heating" and time_left_s > lead + PAUSE_HYSTERESIS_S:
        return Decision("pause", lead, late)
    return Decision(None, lead, late)
