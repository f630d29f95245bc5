"""``ScheduleRunner``: the schedule kept by the controller itself, ticked every control
cycle, so a table is ready on time with no dashboard and no broker.

Each cushion follows its next occurrence (``model.occurrences``) through phases:

``waiting``    before the start; the planned start moves with the water temperature;
``heating``    the runner set the setpoint and switched heat on (actor ``schedule``);
``paused``     ahead of plan (the measured rise is faster than feared): heat off until
               the lead time comes again;
``ready``      ``ready_at`` has passed, heat holds the setpoint until ``until`` (then heat
               off or the standby setpoint) or, without ``until``, until a person
               switches it off;
``overridden`` a person changed this cushion's setpoint or heat after the runner had
               set them: the person wins and the runner leaves this occurrence alone.

The rise of this morning is measured while the heater runs at full power: the time the
water took between two temperatures, against what the base estimate says it should take
between the same two temperatures (so the plate's start-up and any estimator's own
offsets cancel).  That ratio replaces the learned one for the rest of the morning, and
narrows the margin.  When the water first enters the ready band the morning is learned
(``LearnedWarmup.learn``) and saved.  A forecast later than ``ready_at`` is announced at
once (a ``schedule_late`` event with the expected time, ``late_by_s`` in the state).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from hydrotherm.config import CUSHIONS

from ..room import RoomEstimate
from .estimate import (
    RATES_MIN_SAMPLES,
    RATES_MIN_SPAN_C,
    READY_BAND_C,
    LearnedWarmup,
    ModelWarmup,
    WarmupEstimator,
)
from .localtime import LocalTime
from .model import Occurrence, Schedule, ScheduleError, occurrences, parse_schedule
from .planner import LATE_TOLERANCE_S, MARGIN_S, decide, lead_time_s
from .store import LEARNED_FILE, SCHEDULE_FILE, ScheduleStore

log = logging.getLogger(__name__)

ACTOR = "schedule"
#: decisions are taken this often (the water moves ~0.03 °C in that time at full power)
EVAL_S = 10.0
#: full power means at least this applied output
FULL_POWER = 0.95
#: the rise is measured from this long after full power began (the plate has caught up)
SETTLE_IN_S = 360.0
#: ... over at least this long
MEASURE_MIN_S = 600.0
#: the rise is measured over at most this long (a sliding window: the loss grows as the
#: water warms, so the recent rise says more about the rest than the first one)
MEASURE_WINDOW_S = 1200.0
#: the relative miss once the rise of this morning is measured
ONLINE_SPREAD = 0.08
#: ... while the table's own rate law is not learned yet: the rise measured early says
#: nothing of how much more it slows as the water warms (a loss unlike the model's)
ONLINE_SPREAD_UNLEARNED = 0.15
#: after a resume, heat at least this long before pausing again
MIN_HEAT_BEFORE_PAUSE_S = 1200.0
#: a late forecast is announced again when it moves by more than this
LATE_REANNOUNCE_S = 300.0
#: look this far ahead for the next occurrence
HORIZON = timedelta(days=8)


@dataclass
class Track:
    """One occurrence being followed (and, once finished, its record)."""

    occ: Occurrence
    due: float  # controller clock
    until: float | None
    phase: str = "waiting"
    heat_start: float | None = None
    seg_start: float | None = None
    seg_base_s: float | None = None
    full_since: float | None = None
    anchor: tuple[float, float] | None = None
    window: list[tuple[float, float]] = field(default_factory=list)
    learned: bool = False
    full_lo: float | None = None  # the coldest sensed water at full power this morning
    online_ratio: float | None = None
    band_at: float | None = None
    expected_ready: float | None = None
    planned_start: float | None = None
    predicted_s: float | None = None
    late_by_s: float = 0.0
    late_warned: bool = False
    late_worst: float = -math.inf
    set_sp: float | None = None
    set_heat: bool | None = None
    pauses: int = 0
    why: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"cushion": self.occ.cushion, "ready_at": self.occ.ready_at.isoformat(),
                "setpoint_c": self.occ.setpoint_c, "due_s": self.due,
                "heat_start_s": self.heat_start, "band_at_s": self.band_at,
                "phase": self.phase, "pauses": self.pauses}


class ScheduleRunner:
    """Follows ``schedule`` on ``controller`` (a ``controller.service.Controller``: its
    cushions, commands, event recording, configuration and clock)."""

    def __init__(self, controller: Any, local: LocalTime, store: ScheduleStore | None = None,
                 estimator: WarmupEstimator | None = None,
                 schedule: Schedule | None = None) -> None:
        self.c = controller
        self.local = local
        self.store = store or ScheduleStore(None)
        base = estimator or ModelWarmup(controller.cfg.plant)
        plaus = getattr(controller.cfg, "plausible", None)
        #: the slowest table of the plausible range (``_unknown_lead_s``)
        self._slowest = None if plaus is None else ModelWarmup(replace(
            controller.cfg.plant, water_kg=plaus.water_kg[1], heater_w=plaus.heater_w[0],
            loss_to_room_w_per_k=plaus.loss_to_room_w_per_k[1],
            plate_to_water_w_per_k=plaus.plate_to_water_w_per_k[0]))
        self.learned = LearnedWarmup(base)
        self.learned.load(self.store.read(LEARNED_FILE))
        ctl = controller.cfg.control
        self.lo, self.hi = ctl.setpoint_min_c, ctl.setpoint_max_c
        if schedule is None:
            schedule = Schedule()
            raw = self.store.read(SCHEDULE_FILE)
            if raw is not None:
                try:
                    schedule = parse_schedule(raw, self.lo, self.hi)
                except ScheduleError as exc:
                    log.error("the stored schedule is refused (%s): no schedule", exc)
        self.schedule = schedule
        self.tracks: list[Track | None] = [None] * CUSHIONS
        self.history: list[Track] = []
        self._finished: set[str] = set()
        self._next_eval = float("-inf")
        self.save_error = ""

    # --- commands ---------------------------------------------------------------------

    def update(self, data: Any, actor: str) -> Schedule:
        """Replace the schedule (validated; ``ScheduleError`` says why not), store it, log
        it.  Occurrences no longer in it are dropped; heat is left as it is."""
        sched = parse_schedule(data, self.lo, self.hi)
        with self.c.lock:
            try:
                self.store.write(SCHEDULE_FILE, sched.as_dict())
            except OSError as exc:
                raise ScheduleError(f"the schedule could not be saved: {exc}") from None
            self.schedule = sched
            keep = {o.ident() for o in self._upcoming(self.local.now())}
            for i, t in enumerate(self.tracks):
                if t is not None and t.occ.ident() not in keep:
                    self.tracks[i] = None
            self._next_eval = float("-inf")
            self.c.record_event("schedule", actor=actor,
                                detail={"entries": len(sched.entries),
                                        "enabled": sched.enabled})
        return sched

    # --- every control cycle ------------------------------------------------------------

    def tick(self, now: float) -> None:
        if now < self._next_eval:
            return
        self._next_eval = now + EVAL_S
        local_now = self.local.now()
        for i in range(CUSHIONS):
            try:
                self._tick_cushion(i, now, local_now)
            except Exception:  # noqa: BLE001 - the schedule must never stop control
                log.exception("schedule: cushion %d", i)

    def _upcoming(self, local_now: datetime) -> list[Occurrence]:
        occ = occurrences(self.schedule, local_now - timedelta(days=1), local_now + HORIZON)
        return [o for o in occ if o.ready_at > local_now
                or (o.until is not None and o.until > local_now)]

    def _next_for(self, i: int, local_now: datetime) -> Occurrence | None:
        for o in self._upcoming(local_now):
            if o.cushion == i and o.ident() not in self._finished:
                return o
        return None

    def _tick_cushion(self, i: int, now: float, local_now: datetime) -> None:
        t = self.tracks[i]
        if t is not None and t.phase in ("ready", "overridden") and t.until is None \
                and now >= t.due:
            nxt = self._next_for(i, local_now)
            if nxt is not None and nxt.ident() != t.occ.ident():
                self._finish(i, t)
                t = None
        if t is None:
            occ = self._next_for(i, local_now)
            if occ is None:
                return
            t = Track(occ, self.local.clock_at(occ.ready_at),
                      self.local.clock_at(occ.until) if occ.until else None)
            self.tracks[i] = t
        st = self.c.cushions[i]
        if t.phase in ("heating", "paused", "ready") and (
                (t.set_sp is not None and abs(st.setpoint_c - t.set_sp) > 1e-6)
                or (t.set_heat is not None and st.heat_on != t.set_heat)):
            t.phase = "overridden"
            t.why = ("A person changed this cushion's setpoint or heating after the schedule "
                     "had set it: the schedule leaves it alone until the next ready time.")
            self.c.record_event("schedule_overridden", cushion=i, actor=ACTOR,
                                detail={"ready_at": t.occ.ready_at.isoformat()})
        if t.phase == "overridden":
            if t.until is not None and now >= t.until:
                self._finish(i, t)
            return
        if t.until is not None and now >= t.until:
            self._end(i, t)
            return
        water = st.last.water_c if st.last is not None else None
        self._measure(i, t, now, water)
        if now >= t.due and t.band_at is None and not t.learned \
                and t.online_ratio is not None:
            # late: learn from the rise measured, not only once (if ever) it is ready
            self._learn_ratio(i, t)
        if now >= t.due:
            if t.phase in ("waiting", "paused"):
                self._heat(i, t, now, water, resume=t.phase == "paused")
            t.phase = "ready"
            self._forecast(i, t, now, water)
            return
        if water is None:
            t.why = ("No valid water temperature yet: the start time cannot be planned "
                     "(heating starts as soon as the temperature is known).")
            return
        if t.band_at is not None and t.phase == "heating":
            # at temperature: hold it until the ready time (never pause a ready cushion)
            self._forecast(i, t, now, water)
            return
        predicted = self._predict(i, t, water)
        spread = self._spread(i, t)
        time_left = t.due - now
        d = decide(t.phase, time_left, predicted, spread, self._unknown_lead_s(i, t, water))
        t.predicted_s = predicted
        t.planned_start = t.due - d.lead_s if math.isfinite(d.lead_s) else now
        if d.action in ("start", "resume"):
            self._heat(i, t, now, water, resume=d.action == "resume")
        elif d.action == "pause" and (t.pauses == 0 or now - (t.seg_start or now)
                                      >= MIN_HEAT_BEFORE_PAUSE_S):
            # after a resume, heat at least MIN_HEAT_BEFORE_PAUSE_S before pausing again:
            # the plate's start-up makes the forecast swing, and short on/off cycles cost
            # more (and switch the master relay) than the minutes they save
            self._set_heat(i, t, False)
            t.phase = "paused"
            t.pauses += 1
            t.seg_start = t.full_since = t.anchor = None
            t.window = []
        self._forecast(i, t, now, water)

    # --- pieces -----------------------------------------------------------------------

    def _room_estimate(self) -> RoomEstimate:
        """The controller's room (measured by the board, or configured and why)."""
        return self.c.room_estimate()  # type: ignore[no-any-return]

    def _room(self) -> float:
        return self._room_estimate().celsius

    def _unknown_lead_s(self, i: int, t: Track, water: float) -> float:
        """On a table that taught nothing yet (no morning, no rise measured this
        morning): the warm-up of the slowest table of the plausible range (heaviest,
        weakest heater, highest loss, weakest plate) in the room of this morning, plus the
        margin — a 35 kg cushion on a 240 W heater takes twice the model's time in a cold
        room, more than any margin on the model covers.  Heating then starts early, the
        rise is measured within ~20 min and heating pauses until the lead it shows."""
        if t.online_ratio is not None or self.learned.cushions[i].mornings > 0 \
                or self._slowest is None:
            return 0.0
        return self._slowest.predict_warmup_s(i, water, t.occ.setpoint_c, self._room()) \
            + MARGIN_S

    def _predict(self, i: int, t: Track, water: float) -> float:
        if t.online_ratio is not None:
            return t.online_ratio * self.learned.base_warmup_s(i, water, t.occ.setpoint_c,
                                                               self._room())
        return self.learned.predict_warmup_s(i, water, t.occ.setpoint_c, self._room())

    def _heat(self, i: int, t: Track, now: float, water: float | None, resume: bool) -> None:
        st = self.c.cushions[i]
        if abs(st.setpoint_c - t.occ.setpoint_c) > 1e-6:
            t.set_sp = self.c.set_setpoint(i, t.occ.setpoint_c, ACTOR)
        else:
            t.set_sp = st.setpoint_c
        self._set_heat(i, t, True)
        t.phase = "heating"
        if t.heat_start is None:
            t.heat_start = now
        t.seg_start = now
        t.seg_base_s = (self.learned.base_warmup_s(i, water, t.occ.setpoint_c, self._room())
                        if water is not None else None)
        t.full_since = t.anchor = None
        t.window = []

    def _set_heat(self, i: int, t: Track, on: bool) -> None:
        if self.c.cushions[i].heat_on != on:
            self.c.set_heat(i, on, ACTOR)
        t.set_heat = on

    def _sensed(self, i: int) -> float | None:
        """Mean of the valid sensors, without the lag compensation: the rise is measured
        over 10+ minutes, where the lag is a constant offset and its compensation only
        adds noise."""
        link = self.c.link
        r = link.latest if link.healthy else None
        if r is None:
            return None
        c = r.cushions[i]
        vals = [s.celsius for s in (c.primary, c.redundant)
                if s.celsius is not None and getattr(s.status, "value", "") == "ok"]
        return sum(vals) / len(vals) if vals else None

    def _applied(self, i: int) -> float | None:
        link = self.c.link
        r = link.latest if link.healthy else None
        return r.cushions[i].applied if r is not None else None

    def _measure(self, i: int, t: Track, now: float, water: float | None) -> None:
        """This morning's rise against the base estimate, and the first entry into the
        ready band (the morning learned)."""
        if t.phase not in ("heating", "ready") or water is None or t.seg_start is None:
            return
        sp = t.occ.setpoint_c
        if t.band_at is None and abs(water - sp) <= READY_BAND_C:
            t.band_at = now
            self._learn(i, t)
            return
        applied = self._applied(i)
        sensed = self._sensed(i)
        if applied is None or applied < FULL_POWER or sensed is None:
            t.full_since = t.anchor = None
            t.window = []
            return
        water = sensed
        t.full_lo = sensed if t.full_lo is None else min(t.full_lo, sensed)
        if t.full_since is None:
            t.full_since = now
            t.window = []
        if now - t.full_since < SETTLE_IN_S:
            return
        t.window.append((now, water))
        while t.window and now - t.window[0][0] > MEASURE_WINDOW_S:
            t.window.pop(0)
        t.anchor = t.window[0]
        t0, w0 = t.anchor
        if now - t0 < MEASURE_MIN_S:
            return
        room = self._room()
        base0 = self.learned.base_warmup_s(i, w0, sp, room)
        base1 = self.learned.base_warmup_s(i, water, sp, room)
        if math.isfinite(base0) and math.isfinite(base1) and base0 - base1 > 60.0:
            t.online_ratio = min(3.0, max(0.4, (now - t0) / (base0 - base1)))

    def _learn_rates(self, i: int, t: Track) -> dict[str, Any]:
        """The table's full-power rate law, as the controller's warm-up estimator
        (``controller/warmup.py``) learnt it this morning, for the next mornings' base
        estimate (``LearnedWarmup.learn_rates``): only after a warm-up long enough to show
        how the rise slows as the water warms.  Returns what was learnt, for the
        ``schedule_learned`` event (empty: nothing)."""
        laws = getattr(self.c, "laws", None)
        sensed = self._sensed(i)
        if not laws or t.full_lo is None or sensed is None \
                or sensed - t.full_lo < RATES_MIN_SPAN_C:
            return {}
        est = laws[i].warmup
        if est.samples < RATES_MIN_SAMPLES:
            return {}
        # the estimator's rate law is absolute (``α = (P + UA·T_room)/C``): against the
        # room of this morning it is the table's own, whatever the room of the next
        heat_rate = est.alpha - est.beta * self._room()
        if not self.learned.learn_rates(i, heat_rate, est.beta):
            return {}
        c = self.learned.cushions[i]
        return {"heat_rate_k_per_h": round(3600 * (c.heat_rate or 0.0), 3),
                "loss_rate_per_h": round(3600 * (c.loss_rate or 0.0), 5),
                "room": self._room_estimate().text}

    def _learn_ratio(self, i: int, t: Track) -> None:
        t.learned = True
        assert t.online_ratio is not None
        c = self.learned.learn(i, 1000.0, 1000.0 * t.online_ratio,
                               {"ready_at": t.occ.ready_at.isoformat(timespec="minutes"),
                                "from": "the rise measured (not ready by the ready time)"})
        ratio = c.ratio  # against the estimate of this morning (before a new rate law)
        rates = self._learn_rates(i, t)
        self._save_learned()
        self.c.record_event("schedule_learned", cushion=i, actor=ACTOR,
                            detail={"ratio": round(ratio, 3), "spread": round(c.spread, 3),
                                    "measured_ratio": round(t.online_ratio, 3), **rates})

    def _save_learned(self) -> None:
        try:
            self.store.write(LEARNED_FILE, self.learned.as_dict())
            self.save_error = ""
        except OSError as exc:
            self.save_error = str(exc)
            log.error("what the schedule learned could not be saved: %s", exc)

    def _learn(self, i: int, t: Track) -> None:
        if t.seg_start is None or t.band_at is None or t.learned:
            return
        if t.seg_base_s is None or t.seg_base_s < 600.0:
            # the last heating stretch (after a pause) is too short to say much: learn
            # from the rise measured this morning instead, if there is one
            if t.online_ratio is not None:
                self._learn_ratio(i, t)
            return
        t.learned = True
        actual = t.band_at - t.seg_start
        c = self.learned.learn(i, t.seg_base_s, actual,
                               {"ready_at": t.occ.ready_at.isoformat(timespec="minutes"),
                                "early_s": round(t.due - t.band_at)})
        ratio = c.ratio  # against the estimate of this morning (before a new rate law)
        rates = self._learn_rates(i, t)
        self._save_learned()
        self.c.record_event("schedule_learned", cushion=i, actor=ACTOR,
                            detail={"base_s": round(t.seg_base_s), "actual_s": round(actual),
                                    "ratio": round(ratio, 3), "spread": round(c.spread, 3),
                                    "early_s": round(t.due - t.band_at), **rates})

    def _forecast(self, i: int, t: Track, now: float, water: float | None) -> None:
        """Expected ready time, lateness (announced at once), and the words for people."""
        sp = t.occ.setpoint_c
        due_text = _hm(t.occ.ready_at)
        if t.band_at is not None or (water is not None and abs(water - sp) <= READY_BAND_C):
            t.expected_ready = t.band_at if t.band_at is not None else now
            t.late_by_s = max(0.0, t.expected_ready - t.due)
            t.why = (f"At {sp:.1f} °C for {due_text}" if now < t.due else
                     f"Holding {sp:.1f} °C since {due_text}") + self._until_text(t)
            return
        if water is None:
            return
        predicted = t.predicted_s if t.predicted_s is not None and now < t.due \
            else self._predict(i, t, water)
        heating = t.phase in ("heating", "ready")
        start = now if heating else max(now, t.planned_start or now)
        t.expected_ready = start + predicted if math.isfinite(predicted) else None
        late = (math.inf if t.expected_ready is None else t.expected_ready - t.due)
        t.late_by_s = max(0.0, late) if math.isfinite(late) else math.inf
        if late > LATE_TOLERANCE_S and heating:
            self._announce_late(i, t, now)
        lc = self.learned.cushions[i]
        how = (f"this morning's rise ×{t.online_ratio:.2f} of the estimate"
               if t.online_ratio is not None else
               "the model; no morning learned yet" if lc.mornings == 0 else
               f"{lc.mornings} morning{'s' if lc.mornings > 1 else ''} learned: "
               + ("the table's own rise" if lc.heat_rate is not None else "the model")
               + f" ×{lc.ratio:.2f}") + f"; {self._room_estimate().text}"
        warm = _dur(predicted)
        if late > LATE_TOLERANCE_S:
            exp = ("never: the heater cannot reach it in this room" if t.expected_ready is None
                   else self._hm_clock(t.expected_ready))
            t.why = (f"Late: {sp:.1f} °C expected at {exp}, after the {due_text} ready time "
                     f"(warm-up from {water:.1f} °C takes {warm}; {how}).")
        elif t.phase == "waiting":
            lead = lead_time_s(predicted, self._spread(i, t))
            slow = self._unknown_lead_s(i, t, water)
            margin = (f"plus a safety margin of {_dur(lead - predicted)}" if slow <= lead else
                      f"but the slowest plausible table would take {_dur(slow - MARGIN_S)} "
                      "(none of this table's mornings learned yet: it heats for that, "
                      "measures the rise and pauses if ahead)")
            t.why = (f"Heating starts at {self._hm_clock(t.planned_start or now)} to be at "
                     f"{sp:.1f} °C by {due_text}: warm-up from {water:.1f} °C takes about "
                     f"{warm} ({how}), {margin}.")
        elif t.phase == "paused":
            t.why = (f"Paused: the water warms faster than feared; heating resumes at "
                     f"{self._hm_clock(t.planned_start or now)} to be at {sp:.1f} °C by "
                     f"{due_text} ({how}).")
        else:
            since = self._hm_clock(t.heat_start) if t.heat_start is not None else "now"
            t.why = (f"Heating since {since} for {sp:.1f} °C by {due_text}; expected ready at "
                     f"{self._hm_clock(t.expected_ready or now)} ({how}).")

    def _spread(self, i: int, t: Track) -> float:
        if t.online_ratio is None:
            return self.learned.spread(i)
        learned = self.learned.cushions[i].heat_rate is not None
        return ONLINE_SPREAD if learned else ONLINE_SPREAD_UNLEARNED

    def _announce_late(self, i: int, t: Track, now: float) -> None:
        """A late forecast is announced at once; again only when it gets worse by
        ``LATE_REANNOUNCE_S`` (the forecast's noise must not repeat the news)."""
        exp = t.expected_ready
        worst = exp if exp is not None else math.inf
        if t.late_warned and worst < t.late_worst + LATE_REANNOUNCE_S:
            return
        t.late_warned = True
        t.late_worst = worst
        self.c.record_event("schedule_late", cushion=i, actor=ACTOR, detail={
            "ready_at": t.occ.ready_at.isoformat(timespec="minutes"),
            "setpoint_c": t.occ.setpoint_c,
            "expected_at": None if exp is None else
            self.local.local_at(exp).isoformat(timespec="minutes"),
            "late_by_s": None if exp is None else round(exp - t.due)})

    def _until_text(self, t: Track) -> str:
        if t.occ.until is None:
            return ""
        then = ("heating off" if t.occ.standby_c is None
                else f"standby {t.occ.standby_c:.1f} °C")
        return f", until {_hm(t.occ.until)} ({then})."

    def _end(self, i: int, t: Track) -> None:
        if t.occ.standby_c is not None:
            self.c.set_setpoint(i, t.occ.standby_c, ACTOR)
        elif self.c.cushions[i].heat_on:
            self.c.set_heat(i, False, ACTOR)
        self._finish(i, t)

    def _finish(self, i: int, t: Track) -> None:
        self._finished.add(t.occ.ident())
        self.history.append(t)
        if self.tracks[i] is t:
            self.tracks[i] = None

    # --- state --------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every occurrence followed so far (finished ones first), for results and tests."""
        return [t.record() for t in self.history] + \
            [t.record() for t in self.tracks if t is not None]

    def _hm_clock(self, clock_s: float) -> str:
        return _hm(self.local.local_at(clock_s))

    def _iso(self, clock_s: float | None) -> str | None:
        if clock_s is None or not math.isfinite(clock_s):
            return None
        return self.local.local_at(clock_s).isoformat(timespec="minutes")

    def status(self) -> dict[str, Any]:
        """The schedule's part of the controller's snapshot (JSON-ready)."""
        cushions = []
        now = self.c.clock.now()
        for i in range(CUSHIONS):
            t = self.tracks[i]
            if t is None:
                cushions.append({"cushion": i, "phase": "idle", "next_ready_at": None,
                                 "setpoint_c": None, "heat_start_at": None,
                                 "start_planned": False, "expected_ready_at": None,
                                 "late": False, "late_by_s": None,
                                 "why": "No scheduled ready time." if self.schedule.enabled
                                 else "The schedule is switched off."})
                continue
            started = t.heat_start is not None
            start = t.heat_start if started else t.planned_start
            late = t.late_by_s > LATE_TOLERANCE_S and t.band_at is None
            cushions.append({
                "cushion": i, "phase": t.phase,
                "next_ready_at": t.occ.ready_at.isoformat(timespec="minutes"),
                "setpoint_c": t.occ.setpoint_c,
                "until": t.occ.until.isoformat(timespec="minutes") if t.occ.until else None,
                "heat_start_at": self._iso(start), "start_planned": not started,
                "expected_ready_at": self._iso(t.expected_ready),
                "late": late,
                "late_by_s": (None if not late else
                              None if not math.isfinite(t.late_by_s) else round(t.late_by_s)),
                "why": t.why or "Planning…",
                "in_s": round(t.due - now)})
        return {"enabled": self.schedule.enabled, "entries": len(self.schedule.entries),
                "local_time": self.local.now().isoformat(timespec="seconds"),
                "schedule": self.schedule.as_dict(), "learned": self.learned.as_dict(),
                "save_error": self.save_error, "cushions": cushions}


def _hm(t: datetime) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def _dur(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "forever"
    m = max(0, round(seconds / 60))
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"
