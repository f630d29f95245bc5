"""``plate_dry`` (issue 14 part 4): the heater plate runs hotter above the water than any
full cushion lets it -- the cushion is emptying or dry -- that cushion off, and the
therapist is told the client should get up.

Why the plate: a leaking cushion's water shows the leak only through its *rate*, which
needs a window, the sensors' lag and the rise itself (``rise_too_fast``: 1-4 min); by then
a burst leak has drained the cushion while the plate still holds its heat.  The plate
sees it directly: a plate gives its heat to the water through the wetted part of its
face, so the plate's excess over the water is ``P / h`` on a full cushion and grows as
the water stops covering the plate (sim/plant.py: the wetted fraction falls with the
water below a fill level; a dry plate keeps only ~1.5 W/K to the empty bag).  A dry plate
at full power warms by ``P / C_p``: 0.12-0.18 K/s.

The rule, per report of a protocol 1.1 board (``CushionReading.plate``), on the plate
sensor and the mean of the cushion's intact water sensors::

    plate − water > plate_dry_ratio × P_max / h_min + plate_dry_margin_c   (1.0 × 17.1 + 2.0)

without a break for ``plate_dry_confirm_s`` (3 s).  ``P_max / h_min`` is the most any full
cushion of the plausible range shows (the strongest heater, 360 W, through the weakest
plate, 21 W/K) at full power, in steady state; the transients only lower it:

* the plate's thermal lag (``C_p / h``, 51-95 s): after a step up the excess approaches
  ``P / h`` from below; after a step down it falls;
* the water rising at rate ``r`` lowers the plate's excess by ``C_p r / h`` (51-95 s × r),
  more than the water sensors' lag (5-20 s × r) lowers their reading;
* the water cooling (a client, a cold room; at most ~0.004 K/s) raises it by at most
  ``C_p |r| / h`` ≈ 0.35 K, and the plate sensor's lag (2 s) by less: inside the 2 K
  margin, with the sensors' noise (0.03 K rms).

No false trip on the 100-plant grid with the plate sensor read (sessions with a client,
a welded relay; ``python -m benchmarks.plate_grid``, docs/safety.md).

Why full power whatever the board reports, not the applied output: a welded SSR heats at
full power while the board reports 0 %, and its plate sits ``P / h`` above the water like
any full cushion at full power.  A bound following the applied output would take every
welded relay for a dry plate (the nominal table welded while holding: 10 K against
2 K), switch that cushion off with the wrong words, and leave the master relay to
``rise_while_off`` anyway.  The same choice as ``rise_too_fast``'s plausible limit.  What
it costs: a leak is seen once the excess passes ~20 K, which on the 360 W / 21 W/K corner
is 3 K above its full-power excess (seconds after the plate starts to dry) and on a 39 W/K
plate ~11 K above it (a minute at 360 W).

A 1.0 board has no plate sensor: the rule is inactive on it and says so (``status``, and
a log line once).  A plate sensor that is not OK (open, shorted), or a cushion without an
intact water sensor, is not judged (those are other rules' trips).

Reset: only once the plate gives its heat to water again, ``plate − water`` at most
``plate_dry_reset_c`` (2 K).  A refilled cushion's plate reaches its water within a few
minutes of the heater going off; a dry plate keeps its excess over the empty bag for an
hour.
"""

from __future__ import annotations

import logging

from firmware_bridge.thermistor import SensorStatus
from hydrotherm.config import CUSHIONS

from ..events import Trip
from ..history import CushionState
from ..latch import Latch
from ..state import SupervisorState
from .base import Cause, Rule

_log = logging.getLogger(__name__)
_OK = SensorStatus.OK

#: ``status`` words
WATCHING = "watching plate − water"
INACTIVE_1_0 = "inactive: a protocol 1.0 board has no plate sensor"
NOT_YET = "no report yet"


class PlateDry(Rule):
    reasons = ("plate_dry",)

    def __init__(self, st: SupervisorState) -> None:
        super().__init__(st)
        env = st.env
        cfg = self.cfg
        #: the most plate − water any full plausible cushion shows (K), and the trip limit
        self.full_excess_c = env.p_max / env.h_min
        self.limit_c = cfg.plate_dry_ratio * self.full_excess_c + cfg.plate_dry_margin_c
        self._since: list[float | None] = [None] * CUSHIONS
        #: the latest plate − water per cushion (None: not known)
        self.excess_c: list[float | None] = [None] * CUSHIONS
        #: per cushion, whether the rule judges it and why not (in words)
        self.status: list[str] = [NOT_YET] * CUSHIONS
        self._said_inactive = False

    @property
    def active(self) -> bool:
        """The board has plate sensors (protocol 1.1)."""
        return any(s != INACTIVE_1_0 and s != NOT_YET for s in self.status)

    def on_report(self, c: int, cu: CushionState, vp: float | None, vr: float | None,
                  water: float | None, applied: float, sp: float, heat_on: bool,
                  now: float) -> None:
        reading = self.st.last_reading
        plate = reading.cushions[c].plate if reading is not None else None
        if plate is None:
            self.status[c] = INACTIVE_1_0
            self._since[c] = None
            self.excess_c[c] = None
            if not self._said_inactive:
                self._said_inactive = True
                _log.info("plate_dry is inactive: the board speaks protocol 1.0 and has no "
                          "plate sensor (a dry or emptying cushion is left to rise_too_fast "
                          "and the board's limits)")
            return
        if plate.status is not _OK or plate.celsius is None or water is None:
            self.status[c] = ("not judged: the plate sensor reads "
                              f"{plate.status.name.lower()}" if plate.status is not _OK
                              else "not judged: no intact water sensor")
            self._since[c] = None
            self.excess_c[c] = None
            return
        self.status[c] = WATCHING
        self._said_inactive = False
        excess = plate.celsius - water
        self.excess_c[c] = excess
        if excess <= self.limit_c or ("plate_dry", c) in self.st.latches:
            self._since[c] = None
            return
        since = self._since[c]
        if since is None:
            since = self._since[c] = now
        if now - since >= self.cfg.plate_dry_confirm_s:
            self.st.trip(
                "plate_dry", c,
                f"cushion {c} heater plate {plate.celsius:.1f} °C, {excess:.1f} K above the "
                f"water ({water:.1f} °C): more than any full cushion allows at full heater "
                f"power ({self.limit_c:.1f} K) for {now - since:.0f} s. The cushion is "
                "emptying or dry (leaking?): the client should get up. The heater of this "
                "cushion is off.", now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """plate − water at most ``plate_dry_reset_c`` on the latest report."""
        c = latch.trip.cushion
        assert c is not None
        lim = self.cfg.plate_dry_reset_c
        excess = self.excess_c[c]
        if excess is None:
            return (f"cushion {c} plate − water not known ({self.status[c]})"), ""
        if excess > lim:
            return (f"cushion {c} heater plate still {excess:.1f} K above the water (at most "
                    f"{lim:g} K once the plate gives its heat to water again): check that "
                    "the cushion is full and does not leak"), ""
        return None, f"plate {excess:.1f} K above the water, at most {lim:g}"

    def after_reset(self, trip: Trip) -> None:
        self._since[trip.cushion] = None  # type: ignore[index]
