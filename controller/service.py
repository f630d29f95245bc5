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
from .eventlog import EventLog
from .supervisor import ResetResult, Supervisor, SupervisorEvent

_LINK_EVENT_KINDS = {"connected": "link_connected", "disconnected": "link_disconnected",
                     "incompatible": "link_disconnected", "handshake_failed": "link_disconnected",
                     "board_fault": "board_fault", "board_reset": "board_fault",
                     "command_refused": "command_refused"}


_PendingReset = tuple[str, "int | None", float, "Callable[[ResetResult], None] | None"]


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
        t0_clock, t0_wall = clock.now(), time.time()
        self.wall = wall or (lambda: t0_wall + (clock.now() - t0_clock))
        self.supervisor = Supervisor(cfg.safety, clock, on_event=self._on_supervisor_event,
                                     plant=cfg.plant, plausible=cfg.plausible)
        self.laws = [CushionController(cfg.control, cfg.plant, cfg.sensor) for _ in range(CUSHIONS)]
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
        self._relay_wanted: bool | None = None
        self.running = False
        link.add_listener(self._on_link_event)

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.running = True
        self.supervisor.arm()
        self.record_event("controller_start",
                          detail={"setpoints": [c.setpoint_c for c in self.cushions],
                                  "heat_on": [c.heat_on for c in self.cushions]})

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
                      done: Callable[[ResetResult], None] | None = None) -> None:
        """A person asks to clear latched trips.  Board faults are cleared on the board
        first (CLEAR_FAULTS), then the supervisor judges each trip on the next reports;
        ``done`` receives the result (accepted or refused with reasons)."""
        _check_actor(actor)
        if cushion is not None:
            _check_cushion(cushion)
        with self.lock:
            if self.link.connected and self._last_reading is not None and self._last_reading.faults:
                self.link.clear_faults()
            settle = 3 * self.cfg.board.telemetry_period_s + self.cfg.link.ack_timeout_s
            self._pending_reset = (actor, cushion, self.clock.now() + settle, done)

    def stall_control(self, duration_s: float) -> None:
        """Test hook (scenario ``host_stall``): the control law stops running for a while,
        as if its thread hung; the supervisor and the link keep running."""
        self._stalled_until = self.clock.now() + duration_s

    # --- the loop --------------------------------------------------------------------------

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

    def _cycle(self, now: float) -> None:
        reading = self.link.latest if self.link.healthy else None
        n = self._applied_n
        applied = [self._applied_sum[i] / n if n else 0.0 for i in range(CUSHIONS)]
        self._applied_sum = [0.0, 0.0]
        self._applied_n = 0
        waters = [water_mean(reading, i) if reading else None for i in range(CUSHIONS)]
        for i, st in enumerate(self.cushions):
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
        if want_relay and not r.relay_closed and not r.faults and self._relay_wanted is not True:
            if self.link.set_relay(True):
                self._relay_wanted = True
        elif not want_relay and (r.relay_closed or self._relay_wanted is not False):
            if self.link.set_relay(False):
                self._relay_wanted = False
        elif want_relay and not r.relay_closed and self._relay_wanted is True and r.faults:
            self._relay_wanted = None  # the board opened it on a fault: ask again after reset

    def _finish_reset(self) -> None:
        actor, cushion, _, done = self._pending_reset  # type: ignore[misc]
        self._pending_reset = None
        result = self.supervisor.reset(actor, cushion)
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
                    "trips": [{"reason": t.reason, "detail": t.detail, "at": self._to_wall(t.at)}
                              for t in self.supervisor.trips if t.cushion in (i, None)],
                    "alarms": [{"name": a.name, "detail": a.detail} for a in self.supervisor.alarms
                               if a.cushion == i],
                })
            ident = link.identity
            return {
                "time": self.wall(),
                "link": {"state": link.state.value, "healthy": link.healthy, "error": link.error,
                         "counters": link.counters.as_dict()},
                "board": {"serial": ident.serial, "firmware": ident.firmware,
                          "protocol": f"{ident.proto_major}.{ident.proto_minor}",
                          "reset_cause": ident.reset_cause.name.lower(),
                          "relay_closed": reading.relay_closed if reading else None,
                          "faults": p.fault_names(reading.faults) if reading else None}
                if ident else None,
                "tripped": bool(self.supervisor.trips),
                "cushions": cushions,
            }

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
        if self.log is not None:
            try:
                entry["id"] = self.log.record(kind, entry["time"], cushion=cushion, actor=actor,
                                              reason=reason, detail=detail)
            except Exception:  # noqa: BLE001 - the log failing must not stop control
                pass
        for fn in self.listeners:
            try:
                fn({"type": "event", **entry})
            except Exception:  # noqa: BLE001
                pass

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
        self.record_event(ev.kind, cushion=ev.cushion, actor=ev.actor, reason=ev.reason,
                     detail={"detail": ev.detail})
        # No actuation here: every trip is raised inside ``poll`` (observe, check, or a
        # link event during ``link.poll``), whose ``_actuate`` follows in the same pass.

    def _sample_history(self) -> None:
        reading = self.link.latest if self.link.healthy else None
        t = self.wall()
        for i, st in enumerate(self.cushions):
            w = water_mean(reading, i) if reading else None
            out = reading.cushions[i].applied if reading else None
            try:
                self.log.record_sample(t, i, w, st.setpoint_c, out)  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001
                pass


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
