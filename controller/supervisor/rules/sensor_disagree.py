"""``sensor_disagree`` (reference: the two sensors of a cushion differ by more than
``sensor_disagree_c`` for ``sensor_disagree_s``, that cushion off).

Both sensors sit in the same water; a sensor that departs from its partner (drift, a
loose contact) is this rule's business, so the rate rules can demand that *both* agree.
"""

from __future__ import annotations

from ..events import Trip
from ..history import CushionState
from ..latch import Latch
from .base import SENSOR_OK, Cause, Rule


class SensorDisagree(Rule):
    reasons = ("sensor_disagree",)

    def on_report(self, c: int, cu: CushionState, vp: float | None, vr: float | None,
                  water: float | None, applied: float, sp: float, heat_on: bool,
                  now: float) -> None:
        cfg = self.cfg
        if vp is not None and vr is not None and abs(vp - vr) > cfg.sensor_disagree_c:
            if cu.disagree_since is None:
                cu.disagree_since = now
            elif now - cu.disagree_since >= cfg.sensor_disagree_s:
                self.st.trip("sensor_disagree", c,
                             f"primary {vp:.2f} °C and redundant {vr:.2f} °C differ by "
                             f"{abs(vp - vr):.2f} °C, more than {cfg.sensor_disagree_c:g} °C "
                             f"for {now - cu.disagree_since:.1f} s", now)
        else:
            cu.disagree_since = None

    def cause(self, latch: Latch, now: float) -> Cause:
        """Both sensors read OK and within ``sensor_disagree_c``."""
        c = latch.trip.cushion
        assert c is not None
        (_, s0, v0), (_, s1, v1) = self.st.latest_sensors(c)
        if v0 is None or v1 is None or s0 is not SENSOR_OK or s1 is not SENSOR_OK:
            return f"cushion {c}: both sensors must read OK to compare them", ""
        if abs(v0 - v1) > self.cfg.sensor_disagree_c:
            return (f"cushion {c} sensors still {abs(v0 - v1):.2f} °C apart "
                    f"(primary {v0:.2f}, redundant {v1:.2f})"), ""
        return None, f"sensors within {abs(v0 - v1):.2f} °C"

    def after_reset(self, trip: Trip) -> None:
        self.st.cushions[trip.cushion].disagree_since = None  # type: ignore[index]
