"""The controller: link, control law, supervisor and event log, on one clock.

``Controller.poll()`` is the whole host: it polls the link, feeds every telemetry report
to the supervisor, runs the control law once per ``control.period_s``, and pushes the
outputs to the board *through the supervisor's gate* — the only path from the control
law to the link, so a tripped cushion can never be commanded power, by construction.
The gate is re-applied on every poll, so a trip cuts the heater at once rather than at
the next control cycle, and the master relay follows the supervisor too.

It is poll-driven like the link: in real time ``run_forever`` calls it every few
milliseconds (with a separate watchdog thread); in a simulation the scenario runner calls
it after every clock step.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from firmware_bridge import protocol as p
from firmware_bridge.link import BoardLink, BoardReading, LinkEvent
from firmware_bridge.thermistor import SensorStatus
from hydrotherm.clock import Clock
from hydrotherm.config import CUSHIONS, Config

from .control import ControlOutput, CushionController
from .eventbuffer import EventBuffer
from .eventlog import EventLog
from .heat_state import cushion_state
from .lockout import OpenLockout, open_lockouts, previous_run_note
from .room import RoomEstimate, RoomTracker
from .supervisor import (
    REACTIONS,
    SERVICE_ONLY_FLAGS,
    TABLE_WIDE,
    Reaction,
    ResetResult,
    Supervisor,
    SupervisorEvent,
)

_LINK_EVENT_KINDS = {"connected": "link_connected", "disconnected": "link_disconnected",
                     "incompatible": "link_disconnected", "handshake_failed": "link_disconnected",
                     "board_fault": "board_fault", "board_reset": "board_fault",
                     "command_refused": "command_refused"}


#: The alarm raised while the event log cannot be written (table-wide: both cushions show it).
LOG_ALARM = "event_log_unwritable"

_log = logging.getLogger(__name__)

#: after asking the board to close the master relay, how long "closing" is believed
#: before an open relay counts as a blocker (the answer shows in the next report, 0.2 s)
RELAY_CLOSE_GRACE_S = 2.0

_PendingReset = tuple[str, "int | None", float, "Callable[[ResetResult], None] | None",
                      "str | None"]


class CommandError(ValueError):
    """A setpoint/heat/reset request refused; the message is the reason for the user."""


def water_mean(reading: BoardReading, cushion: int) -> float | None:
    """Mean of the valid sensors of a cushion (None if neither is valid)."""
    c = reading.cushions[cushion]
    vals = [s.celsius for s in (c.primary, c.redundant)
            if s.status is SensorStatus.OK and s.celsius is not None]
    if not vals:
        return None
    return sum(vals) / len(vals)


@dataclass
class CushionState:
    setpoint_c: float
    heat_on: bool
    last: ControlOutput | None = None
    requested: float = 0.0


class Controller:
    """One table's host side."""

    def __init__(self, cfg: Config, link: BoardLink, clock: Clock, log: EventLog | None = None,
                 wall: Callable[[], float] | None = None) -> None:
        self.cfg = cfg
        self.link = link
        self.clock = clock
        self.log = log
        #: every event goes through this: written now, or kept in order until the disk
        #: takes writes again (``controller/eventbuffer.py``)
        self.events = EventBuffer(log) if log is not None else None
        self._log_alarm: str | None = None  # the alarm's detail while it is raised
        t0_clock, t0_wall = clock.now(), time.time()
        self.wall = wall or (lambda: t0_wall + (clock.now() - t0_clock))
        self.supervisor = Supervisor(cfg.safety, clock, on_event=self._on_supervisor_event,
                                     plant=cfg.plant, plausible=cfg.plausible)
        self.laws = [CushionController(cfg.control, cfg.plant, cfg.sensor) for _ in range(CUSHIONS)]
        #: the room the laws and the schedule use: the board's room sensor, filtered, or
        #: the configured estimate with the reason (``controller/room.py``)
        self.room = RoomTracker(cfg.control.room_estimate_c)
        self.cushions = [CushionState(cfg.control.setpoint_c[i], cfg.control.heat_on[i])
                         for i in range(CUSHIONS)]
        self.lock = threading.RLock()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._last_reading: BoardReading | None = None
        self._next_cycle = clock.now()
        self._next_sample = clock.now()
        self._applied_sum = [0.0, 0.0]
        self._applied_n = 0
        self._stalled_until = float("-inf")  # scenario hook: the control law does not run
        self._pending_reset: _PendingReset | None = None
        self._relay_wanted: bool | None = None  # the last SET_RELAY sent (None: none yet)
        self._relay_answered_at: int | None = None  # telemetry count when it was answered
        self.relay_commands = 0  # SET_RELAY commands queued, in all
        self._relay_close_sent = float("-inf")  # when the last SET_RELAY close was sent
        self._heat_states: list[str | None] = [None] * CUSHIONS  # for the ready band's hysteresis
        self.running = False
        # read before this run records anything: the lockouts still in force and how the
        # previous run ended (``lockout.py``)
        self._lockouts: list[OpenLockout] = []
        if log is not None:
            self._lockouts = open_lockouts(log)
            self.supervisor.note_previous_run(previous_run_note(log, self.wall()))
        #: the ready-by schedule (``controller.schedule.ScheduleRunner``), attached by
        #: whoever composes the controller; None: no schedule
        self.schedule: Any = None
        link.add_listener(self._on_link_event)

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.running = True
        self.supervisor.arm()
        self.record_event("controller_start",
                          detail={"setpoints": [c.setpoint_c for c in self.cushions],
                                  "heat_on": [c.heat_on for c in self.cushions]})
        for lk in self._lockouts:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lk.time))
            self.supervisor.restore(lk.reason, lk.cushion,
                                    f"still awaiting a service reset from before the controller "
                                    f"restarted (tripped {when}): {lk.detail}", lk.flags)
        self._lockouts = []

    def stop(self) -> None:
        """Heaters off, relay open, link closed, log closed: what Ctrl-C and SIGTERM do."""
        with self.lock:
            self.running = False
            try:
                self.link.set_outputs(0.0, 0.0)
                self.link.poll()
            finally:
                self.link.close()
                self.record_event("controller_stop")
                if self.events is not None:
                    for row in self.events.close():
                        # The disk never came back: say what is missing where a person
                        # (journal, terminal) will see it.
                        _log.error("event not written to the event log: %s", row)
                if self.log is not None:
                    self.log.close()

    # --- commands (from the CLI, MQTT, the dashboard) --------------------------------------

    def set_setpoint(self, cushion: int, value: float, actor: str) -> float:
        """Change a setpoint; refuses (and logs) out-of-range values with the reason."""
        with self._refusals_logged("setpoint", cushion, actor, value):
            c = self.cfg.control
            _check_cushion(cushion)
            _check_actor(actor)
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise CommandError(f"setpoint must be a number, got {value!r}")
            if not c.setpoint_min_c <= value <= c.setpoint_max_c:
                raise CommandError(f"setpoint {value} °C is outside {c.setpoint_min_c}–"
                                   f"{c.setpoint_max_c} °C")
        # half-up to the step (36.55 -> 36.6), robust to binary fractions
        value = round(math.floor(value / c.setpoint_step_c + 0.5 + 1e-9) * c.setpoint_step_c, 6)
        with self.lock:
            old = self.cushions[cushion].setpoint_c
            self.cushions[cushion].setpoint_c = value
            self.record_event("setpoint", cushion=cushion, actor=actor,
                         detail={"from": old, "to": value})
        return value

    def set_heat(self, cushion: int, on: bool, actor: str) -> None:
        with self._refusals_logged("heat", cushion, actor, on):
            _check_cushion(cushion)
            _check_actor(actor)
            if not isinstance(on, bool):
                raise CommandError(f"heat must be true or false, got {on!r}")
        with self.lock:
            old = self.cushions[cushion].heat_on
            self.cushions[cushion].heat_on = on
            self.record_event("heat", cushion=cushion, actor=actor, detail={"from": old, "to": on})

    @contextlib.contextmanager
    def _refusals_logged(self, command: str, cushion: Any, actor: Any,
                         value: Any) -> Iterator[None]:
        """Every refused command is logged with who asked, what and why."""
        try:
            yield
        except CommandError as exc:
            self.record_event("command_refused",
                         cushion=cushion if isinstance(cushion, int) and cushion in (0, 1)
                         else None,
                         actor=actor if isinstance(actor, str) and actor.strip() else None,
                         reason=str(exc), detail={"command": command, "value": repr(value)})
            raise

    def request_reset(self, actor: str, cushion: int | None = None,
                      done: Callable[[ResetResult], None] | None = None, *,
                      service_reason: str | None = None) -> None:
        """A person asks to clear latched trips.  Board faults are cleared on the board
        first (CLEAR_FAULTS), then the supervisor judges each trip on the next reports;
        ``done`` receives the result (accepted or refused with reasons).

        ``service_reason``: a service person's reset (``hydrotherm service reset``), the
        only one that may clear a trip that needs service (``SERVICE_ONLY``).  Without it
        the board's service-only flags (hot-water limit, cut-out) are not even asked to
        clear: they stay latched on the board, whose relay then stays open too."""
        _check_actor(actor)
        if cushion is not None:
            _check_cushion(cushion)
        if service_reason is not None and (not isinstance(service_reason, str)
                                           or not service_reason.strip()):
            raise CommandError("a service reset needs a reason: what was found and done")
        with self.lock:
            mask = p.ALL_FAULTS if service_reason is not None else \
                p.ALL_FAULTS & ~SERVICE_ONLY_FLAGS
            r = self._last_reading
            if self.link.connected and r is not None and r.faults & mask:
                self.link.clear_faults(mask)
            settle = 3 * self.cfg.board.telemetry_period_s + self.cfg.link.ack_timeout_s
            self._pending_reset = (actor, cushion, self.clock.now() + settle, done,
                                   service_reason)

    def stall_control(self, duration_s: float) -> None:
        """Test hook (scenario ``host_stall``): the control law stops running for a while,
        as if its thread hung; the supervisor and the link keep running."""
        self._stalled_until = self.clock.now() + duration_s

    def control_stall_left_s(self) -> float:
        """Simulated seconds the ``stall_control`` hook still holds the control law."""
        return max(0.0, self._stalled_until - self.clock.now())

    # --- the loop --------------------------------------------------------------------------

    def room_estimate(self) -> RoomEstimate:
        """The room in use now: measured by the board, or configured (and why)."""
        return self.room.estimate(self.clock.now())

    def next_due(self) -> float:
        """Clock time of the next thing ``poll`` does by time alone (a control cycle, a
        history sample, a reset's settling, the link's own timers, the supervisor's
        stale-telemetry and control-stall limits): a runner that sleeps between polls
        wakes by then."""
        sup, safety, now = self.supervisor, self.cfg.safety, self.clock.now()
        pending = self._pending_reset
        # the supervisor's limits once passed were judged at the last poll: not due again
        limits = [t for t in (sup.last_report_at + safety.stale_telemetry_s,
                              sup.last_heartbeat + safety.control_stall_s) if t > now]
        return min(self._next_cycle,
                   self._next_sample if self.log is not None else float("inf"),
                   pending[2] if pending is not None else float("inf"),
                   self.link.next_due(), *limits)

    def poll(self) -> None:
        with self.lock:
            link = self.link
            link.poll()
            reading = link.latest
            now = self.clock.now()
            if reading is not None and reading is not self._last_reading:
                self._last_reading = reading
                self._applied_sum[0] += reading.cushions[0].applied
                self._applied_sum[1] += reading.cushions[1].applied
                self._applied_n += 1
                self.room.observe(now, reading.room)
                self.supervisor.observe(reading, [c.requested for c in self.cushions],
                                        [c.setpoint_c for c in self.cushions],
                                        [c.heat_on for c in self.cushions])
            self.supervisor.check()
            if self.running and now >= self._next_cycle and now >= self._stalled_until:
                self._next_cycle = max(self._next_cycle + self.cfg.control.period_s, now)
                self._cycle(now)
            self._actuate()
            if self._pending_reset is not None and now >= self._pending_reset[2]:
                self._finish_reset()
            if self.log is not None and now >= self._next_sample:
                self._next_sample = max(self._next_sample + self.cfg.control.history_period_s, now)
                self._sample_history()
            if self.events is not None:
                self.events.retry(now)
                self._check_log()

    def _cycle(self, now: float) -> None:
        if self.schedule is not None:
            self.schedule.tick(now)  # may set a setpoint or heat for this very cycle
        reading = self.link.latest if self.link.healthy else None
        n = self._applied_n
        applied = [self._applied_sum[i] / n if n else 0.0 for i in range(CUSHIONS)]
        self._applied_sum = [0.0, 0.0]
        self._applied_n = 0
        waters = [water_mean(reading, i) if reading else None for i in range(CUSHIONS)]
        room = self.room_estimate()
        for i, st in enumerate(self.cushions):
            self.laws[i].set_room(room.celsius)
            enabled = st.heat_on and self.supervisor.permitted(i) and reading is not None
            out = self.laws[i].step(now, waters[i], applied[i], st.setpoint_c, enabled,
                                    waters[1 - i])
            st.last = out
            st.requested = out.output if enabled else 0.0
        self.supervisor.control_heartbeat()
        self._notify()

    def _actuate(self) -> None:
        """Push the gated outputs and the wanted relay state to the link."""
        gated = self.supervisor.gate([c.requested for c in self.cushions])
        if not self.link.healthy:
            gated = (0.0, 0.0)
        self.link.set_outputs(*gated)
        want_relay = (self.running and self.supervisor.relay_allowed
                      and any(c.heat_on for c in self.cushions))
        r = self.link.latest
        if r is None or not self.link.connected:
            self._relay_wanted = None
            return
        self._drive_relay(want_relay, r)

    def _drive_relay(self, want: bool, r: BoardReading) -> None:
        """SET_RELAY once, confirmed from telemetry; again only when telemetry disagrees.

        The TELEMETRY that shows a SET_RELAY's effect comes up to a telemetry period after
        its ACK, and the poll loop runs every few milliseconds: sending whenever the last
        report disagrees would repeat the command dozens of times (26 in 170 ms on one
        trip).  So: nothing while telemetry agrees; nothing while a SET_RELAY is queued or
        unanswered (the link retransmits it itself); after it is answered, one more only
        if a report that arrived after the answer still disagrees (the command was lost
        beyond the link's retries, or the board changed its mind)."""
        if r.relay_closed == want:
            return
        if want and r.faults:
            # The board refuses to close while a flag is latched: ask again once a reset
            # has cleared it (``_relay_wanted`` None makes the next request immediate).
            self._relay_wanted = None
            return
        link = self.link
        if link.command_pending(p.SetRelay):
            return
        telemetry = link.counters.telemetry
        if self._relay_wanted is want:
            if self._relay_answered_at is None:
                self._relay_answered_at = telemetry  # answered: wait for the next report
                return
            if telemetry <= self._relay_answered_at:
                return
        if link.set_relay(want):
            self._relay_wanted = want
            if want:
                self._relay_close_sent = self.clock.now()
            self._relay_answered_at = None
            self.relay_commands += 1

    def _finish_reset(self) -> None:
        actor, cushion, _, done, service_reason = self._pending_reset  # type: ignore[misc]
        self._pending_reset = None
        result = self.supervisor.reset(actor, cushion, service_reason=service_reason)
        if result.cleared:
            self._relay_wanted = None
        if done is not None:
            done(result)
        self._notify()

    # --- state for publishing --------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything a consumer (MQTT, the dashboard, the CLI) shows, JSON-ready."""
        with self.lock:
            link = self.link
            reading = link.latest if link.healthy else None
            cushions = []
            for i, st in enumerate(self.cushions):
                c = reading.cushions[i] if reading else None
                last = st.last
                cushions.append({
                    "cushion": i,
                    "water_c": {"primary": _celsius(c.primary) if c else None,
                                "redundant": _celsius(c.redundant) if c else None,
                                "estimate": round(last.water_c, 3)
                                if (last and last.water_c is not None and reading) else None},
                    "sensor_status": {
                        "primary": c.primary.status.value if c else "unavailable",
                        "redundant": c.redundant.status.value if c else "unavailable"},
                    "setpoint_c": st.setpoint_c,
                    "heat_on": st.heat_on,
                    "output": round(c.applied, 3) if c else None,
                    "requested": round(st.requested, 3),
                    "ready_in_s": _ready(last) if reading else None,
                    "trips": [_trip_json(t, self._to_wall(t.at))
                              for t in self.supervisor.trips
                              if t.cushion in (i, None) or t.reason in TABLE_WIDE],
                    "alarms": [{"name": a.name, "detail": a.detail} for a in self.supervisor.alarms
                               if a.cushion == i] + self._table_alarms(),
                })
            ident = link.identity
            snap = {
                "time": self.wall(),
                "link": {"state": link.state.value, "healthy": link.healthy, "error": link.error,
                         "counters": link.counters.as_dict()},
                "board": {"serial": ident.serial, "firmware": ident.firmware,
                          "protocol": f"{ident.proto_major}.{ident.proto_minor}",
                          "reset_cause": ident.reset_cause.name.lower(),
                          "relay_closed": reading.relay_closed if reading else None,
                          "relay_closing": bool(
                              reading and not reading.relay_closed
                              and self._relay_wanted is True
                              and self.clock.now() - self._relay_close_sent
                              < RELAY_CLOSE_GRACE_S),
                          "faults": p.fault_names(reading.faults) if reading else None}
                if ident else None,
                "tripped": bool(self.supervisor.trips),
                "event_log": self.events.status() if self.events is not None else None,
                "service_needed": self.supervisor.service_needed,
                "room": self.room_estimate().as_dict(),
                "cushions": cushions,
                "schedule": self.schedule.status() if self.schedule is not None else None,
            }
            self._heat_states = _add_heat_states(snap, self._heat_states)
        return snap

    def _table_alarms(self) -> list[dict[str, Any]]:
        """Alarms of the whole table, listed with each cushion's own."""
        if self._log_alarm is None:
            return []
        return [{"name": LOG_ALARM, "detail": self._log_alarm}]

    def _to_wall(self, t: float) -> float:
        return self.wall() - (self.clock.now() - t)

    def _notify(self) -> None:
        for fn in self.listeners:
            try:
                fn({"type": "state"})
            except Exception:  # noqa: BLE001 - a consumer must not stop control
                pass

    # --- events ----------------------------------------------------------------------------

    def record_event(self, kind: str, cushion: int | None = None, actor: str | None = None,
                reason: str | None = None, detail: dict[str, Any] | None = None) -> None:
        entry = {"kind": kind, "time": self.wall(), "cushion": cushion, "actor": actor,
                 "reason": reason, "detail": detail or {}}
        if self.events is not None:
            try:
                row_id = self.events.record(kind, entry["time"], cushion=cushion, actor=actor,
                                            reason=reason, detail=detail)
                if row_id is not None:
                    entry["id"] = row_id
            except Exception as exc:  # noqa: BLE001 - the log failing must not stop control
                _log.warning("event %s not recorded: %s", kind, exc)
        for fn in self.listeners:
            try:
                fn({"type": "event", **entry})
            except Exception:  # noqa: BLE001
                pass
        self._check_log()

    def _check_log(self) -> None:
        """Raise ``event_log_unwritable`` when a write has failed, clear it once every
        waiting event is written.  Heating goes on either way: the log is a record, not a
        safety function, and the rows wait in memory (``EventBuffer``)."""
        events = self.events
        if events is None:
            return
        with self.lock:
            writable = events.writable
            if not writable and self._log_alarm is None:
                self._log_alarm = events.describe()
                self.record_event("alarm", reason=LOG_ALARM,
                                  detail={"detail": self._log_alarm, **events.status()})
                self._notify()
            elif not writable and self._log_alarm is not None:
                self._log_alarm = events.describe()  # the count waiting, kept current
            elif writable and self._log_alarm is not None:
                self._log_alarm = None
                self.record_event("alarm_cleared", reason=LOG_ALARM,
                                  detail={"detail": "every waiting event is written",
                                          **events.status(),
                                          "written_late": events.written_late})
                self._notify()

    def _on_link_event(self, ev: LinkEvent) -> None:
        self.supervisor.link_event(ev)
        kind = _LINK_EVENT_KINDS.get(ev.kind)
        if kind is not None:
            self.record_event(kind, reason=ev.kind, detail={"detail": ev.detail, **ev.data})
        if ev.kind in ("disconnected", "connected"):
            for law in self.laws:
                law.reset_estimates()
            self._relay_wanted = None
        if ev.kind == "connected":
            # A board met at connect time has just booted or been re-plugged: its RESET
            # flag is expected.  Only RESET is cleared; any other flag stays for the
            # supervisor and a person.
            self.link.clear_faults(int(p.Fault.RESET))

    def _on_supervisor_event(self, ev: SupervisorEvent) -> None:
        detail: dict[str, Any] = {"detail": ev.detail}
        if ev.flags:
            detail["flags"] = p.fault_names(ev.flags)
            detail["flags_bits"] = ev.flags
        if ev.service:
            detail["service"] = ev.service  # open_lockouts() reads this after a restart
        self.record_event(ev.kind, cushion=ev.cushion, actor=ev.actor, reason=ev.reason,
                          detail=detail)
        # No actuation here: every trip is raised inside ``poll`` (observe, check, or a
        # link event during ``link.poll``), whose ``_actuate`` follows in the same pass.

    def _sample_history(self) -> None:
        reading = self.link.latest if self.link.healthy else None
        t = self.wall()
        for i, st in enumerate(self.cushions):
            w = water_mean(reading, i) if reading else None
            out = reading.cushions[i].applied if reading else None
            try:
                self.events.record_sample(t, i, w, st.setpoint_c, out)  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - a bad sample must not stop control
                _log.warning("history sample not recorded: %s", exc)


def _add_heat_states(snap: dict[str, Any], previous: list[str | None]) -> list[str | None]:
    """Each cushion's derived heat state (``heat_state``), whether a therapist may reset
    it (``reset_allowed``), and no warm-up estimate unless it is actually warming up.
    Returns the states, to be passed back as ``previous`` next time."""
    states: list[str | None] = []
    for c in snap["cushions"]:
        hs = cushion_state(c, snap, previous[c["cushion"]])
        c["heat_state"] = hs.as_dict()
        c["reset_allowed"] = any(t["reset_allowed"] for t in c["trips"])
        if hs.state != "heating":
            c["ready_in_s"] = None
        states.append(hs.state)
    return states


def _trip_json(t: Any, at: float) -> dict[str, Any]:
    """One latched trip for consumers.  ``service_only``: a therapist may not reset it
    (``SERVICE_ONLY``); ``service_why`` says why, in words; ``reset_allowed`` is its
    negation, for the screens that offer a reset; ``opens_relay``: this trip keeps the
    shared master relay open (its reaction, or a service lockout)."""
    return {"reason": t.reason, "cushion": t.cushion, "detail": t.detail, "at": at,
            "flags": p.fault_names(t.flags), "service_only": t.service is not None,
            "service_why": t.service, "reset_allowed": t.service is None,
            "opens_relay": REACTIONS[t.reason] is Reaction.RELAY_OPEN or t.service is not None}


def _celsius(s: Any) -> float | None:
    return round(s.celsius, 3) if s.celsius is not None else None


def _ready(last: ControlOutput | None) -> float | None:
    if last is None or last.ready_in_s is None or last.ready_in_s == float("inf"):
        return None
    return round(last.ready_in_s, 1)


def _check_cushion(cushion: Any) -> None:
    if type(cushion) is not int or not 0 <= cushion < CUSHIONS:  # not bool, not 0.0
        raise CommandError(f"cushion must be 0 or 1, got {cushion!r}")


def _check_actor(actor: Any) -> None:
    if not isinstance(actor, str) or not actor.strip():
        raise CommandError("an actor (who asks) is required")
