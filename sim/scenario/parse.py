"""Parse and check a scenario file completely before anything runs.

Every problem raises ``ScenarioError`` naming the line and dotted key, so a tester fixes
the file instead of reading a traceback half-way through a simulated day.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydrotherm.config import (
    CUSHIONS,
    Config,
    ConfigError,
    ControlConfig,
    from_mapping,
)
from sim import faults as sim_faults

from .schedule import parse_schedule_section
from .schema import (
    BOARD_KINDS,
    CONFIG_TABLES,
    DEFAULT_ACTOR,
    DEFAULT_HOST_STALL_S,
    EVENT_KINDS,
    EXPECT_KEYS,
    FAULT_NAMES,
    MAX_DURATION_S,
    NOT_CLEARABLE,
    PLANT_KEY_SECTION,
    TOP_KEYS,
    TRACE_PERIOD_S,
    AlarmExpect,
    Event,
    Expectations,
    RefusalExpect,
    ResetExpect,
    Scenario,
    ScenarioError,
    TripExpect,
    field_names,
)
from .source import KEY_RE, SourceMap, strip_comment


class _Checker:
    """Validation helpers that raise ScenarioError at the right line."""

    def __init__(self, path: str, smap: SourceMap) -> None:
        self.path = path
        self.smap = smap

    def fail(self, keypath: Sequence[Any], problem: str) -> ScenarioError:
        return ScenarioError(self.path, self.smap.line(keypath), _dotted(keypath), problem)

    def table(self, value: Any, keypath: Sequence[Any]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(keypath, f"expected a table, got {_show(value)}")
        return value

    def keys(self, d: dict[str, Any], allowed: Sequence[str], keypath: Sequence[Any],
             what: str) -> None:
        for k in d:
            if k not in allowed:
                raise self.fail(tuple(keypath) + (k,),
                                f"unknown key in {what} (allowed: {', '.join(allowed)})")

    def number(self, d: dict[str, Any], key: str, keypath: Sequence[Any], lo: float | None = None,
               hi: float | None = None, lo_open: bool = False, required: bool = False,
               default: float | None = None) -> float | None:
        kp = tuple(keypath) + (key,)
        if key not in d:
            if required:
                raise self.fail(keypath, f"required key {key!r} is missing")
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.fail(kp, f"expected a number, got {_show(v)}")
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise self.fail(kp, f"{v:g} is too small: must be {'above' if lo_open else 'at least'}"
                                f" {lo:g}")
        if hi is not None and v > hi:
            raise self.fail(kp, f"{v:g} is too large: must be at most {hi:g}")
        return float(v)

    def boolean(self, d: dict[str, Any], key: str, keypath: Sequence[Any],
                default: bool | None = None) -> bool | None:
        if key not in d:
            return default
        v = d[key]
        if not isinstance(v, bool):
            raise self.fail(tuple(keypath) + (key,), f"expected true or false, got {_show(v)}")
        return v

    def string(self, d: dict[str, Any], key: str, keypath: Sequence[Any],
               default: str | None = None, choices: Sequence[str] | None = None,
               required: bool = False) -> str | None:
        if key not in d:
            if required:
                raise self.fail(keypath, f"required key {key!r} is missing")
            return default
        v = d[key]
        kp = tuple(keypath) + (key,)
        if not isinstance(v, str) or not v.strip():
            raise self.fail(kp, f"expected a non-empty string, got {_show(v)}")
        if choices is not None and v not in choices:
            raise self.fail(kp, f"{v!r} is not one of {', '.join(choices)}")
        return v

    def cushion(self, d: dict[str, Any], keypath: Sequence[Any],
                required: bool = False) -> int | None:
        if "cushion" not in d:
            if required:
                raise self.fail(keypath, "required key 'cushion' is missing (0 or 1)")
            return None
        v = d["cushion"]
        if isinstance(v, bool) or v not in range(CUSHIONS):
            raise self.fail(tuple(keypath) + ("cushion",), f"must be 0 or 1, got {_show(v)}")
        return int(v)

    def array(self, d: dict[str, Any], key: str, keypath: Sequence[Any]) -> list[Any]:
        if key not in d:
            return []
        v = d[key]
        if not isinstance(v, list):
            raise self.fail(tuple(keypath) + (key,), f"expected an array, got {_show(v)}")
        return v


def _dotted(keypath: Sequence[Any]) -> str:
    out = ""
    for p in keypath:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "(file)"


def _show(v: Any) -> str:
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; raises ``ScenarioError`` (line and key named)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(str(p), None, "(file)", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(p), None, "(file)", f"cannot read it: {exc}") from None
    return parse_scenario(text, str(p))


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """Check a scenario given as TOML text (``path`` is only used in messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"at line (\d+)", msg)
        line = int(m.group(1)) if m else None
        key = "(syntax)"
        if line is not None and 1 <= line <= len(text.splitlines()):
            km = KEY_RE.match(strip_comment(text.splitlines()[line - 1]))
            if km:
                key = km.group(1).strip('"')
        raise ScenarioError(path, line, key, f"not valid TOML: {msg}") from None
    smap = SourceMap(text)
    ck = _Checker(path, smap)
    ck.keys(data, TOP_KEYS, (), "the top level")
    default_name = Path(path).stem if path != "<scenario>" else "scenario"
    name = ck.string(data, "name", (), default=default_name)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ck.fail(("description",), f"expected a string, got {_show(description)}")
    duration = ck.number(data, "duration_s", (), lo=0.0, lo_open=True, hi=MAX_DURATION_S,
                         required=True)
    assert duration is not None
    seed_v = data.get("seed", 0)
    if isinstance(seed_v, bool) or not isinstance(seed_v, int) or not 0 <= seed_v < 2**63:
        raise ck.fail(("seed",), f"expected a whole number >= 0, got {_show(seed_v)}")
    trace_period = ck.number(data, "trace_period_s", (), lo=0.2, hi=3600.0,
                             default=TRACE_PERIOD_S)
    board_kind = _board_kind(data, ck)
    cfg = _build_config(data, ck)
    start_at, schedule = parse_schedule_section(data, ck, cfg)
    events = _parse_events(data, ck, duration)
    expect = _parse_expect(data, ck, events)
    if expect.schedule_met and schedule is None:
        raise ck.fail(("expect", "schedule_met"), "schedule_met needs [[schedule]] entries")
    return Scenario(name=name or default_name, description=description or "",
                    duration_s=duration, seed=seed_v, trace_period_s=trace_period or TRACE_PERIOD_S,
                    config=cfg, events=tuple(events), expect=expect, path=path,
                    board_kind=board_kind, start_at=start_at, schedule=schedule)


def _board_kind(data: dict[str, Any], ck: _Checker) -> str:
    """``[board] kind`` (taken out of the table: the rest of [board] is configuration)."""
    board = data.get("board")
    if not isinstance(board, dict) or "kind" not in board:
        return "python"
    kind = ck.string(board, "kind", ("board",), choices=BOARD_KINDS)
    del board["kind"]
    return kind or "python"


def _build_config(data: dict[str, Any], ck: _Checker) -> Config:
    """Defaults + the file's [plant]/[board]/[sensor]/[safety]/[control]/[link]."""
    sections: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], tuple[str, str]] = {}  # (section, key) -> (table, key)

    def put(section: str, key: str, value: Any, table: str, file_key: str) -> None:
        if key in sections.setdefault(section, {}):
            t, k = origin[(section, key)]
            raise ck.fail((table, file_key), f"{section}.{key} is already set in [{t}] "
                                             f"({t}.{k})")
        sections[section][key] = value
        origin[(section, key)] = (table, file_key)

    for table in ("plant", "true_plant", "board", "sensor", "safety", "control", "link",
                  "plausible"):
        if table not in data:
            continue
        values = ck.table(data[table], (table,))
        if table == "true_plant":
            # checked by the configuration (hydrotherm/true_plant.py); the errors name
            # true_plant.KEY, mapped back to the line below
            for k, v in values.items():
                put("true_plant", k, v, "true_plant", k)
            continue
        if table == "plant":
            allowed = sorted(PLANT_KEY_SECTION)
            for k, v in values.items():
                if k not in PLANT_KEY_SECTION:
                    raise ck.fail(("plant", k), "unknown key in [plant] (any key of the "
                                                "configuration's plant, board and sensor "
                                                f"sections: {', '.join(allowed)})")
                put(PLANT_KEY_SECTION[k], k, v, "plant", k)
            continue
        known = list(field_names(CONFIG_TABLES[table]))
        if table == "control":
            known.append("heat")
        for k, v in values.items():
            if k not in known:
                raise ck.fail((table, k), f"unknown key in [{table}] (known: "
                                          f"{', '.join(sorted(known))})")
            if table == "control" and k in ("heat", "heat_on"):
                if "heat" in values and "heat_on" in values:
                    raise ck.fail((table, k), "give heat or heat_on, not both")
                put("control", "heat_on", v, table, k)
            else:
                put(table, k, v, table, k)
    control = sections.setdefault("control", {})
    # a scenario heats unless told otherwise, or unless a schedule decides when
    control.setdefault("heat_on", [not data.get("schedule")] * CUSHIONS)
    sp = control.get("setpoint_c")
    if sp is not None and origin.get(("control", "setpoint_c")):
        _check_setpoints(sp, ck, origin[("control", "setpoint_c")])
    try:
        return from_mapping(sections)
    except ConfigError as exc:
        msg = str(exc)
        m = re.match(r"(\w+)\.(\w+)", msg)
        if m and (m.group(1), m.group(2)) in origin:
            table, key = origin[(m.group(1), m.group(2))]
            raise ck.fail((table, key), f"refused by the configuration: {msg}") from None
        raise ScenarioError(ck.path, None, "(configuration)", msg) from None


def _check_setpoints(value: Any, ck: _Checker, where: tuple[str, str]) -> None:
    """[control] setpoint_c: a number or a list of two, each within 30.0-40.0 °C (the
    configured range is checked again by the configuration)."""
    kp = where
    vals = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) != CUSHIONS:
        raise ck.fail(kp, f"expected one number or a list of {CUSHIONS}, got {len(value)} "
                          "values")
    lo = ControlConfig().setpoint_min_c
    hi = ControlConfig().setpoint_max_c
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ck.fail(kp, f"expected a number, got {_show(v)}")
        if not lo <= v <= hi:
            raise ck.fail(kp, f"setpoint {v:g} °C is outside {lo:g}-{hi:g} °C")


def _fault_event(e: dict[str, Any], kp: tuple[Any, ...], ck: _Checker, name: str,
                 clear: bool) -> tuple[dict[str, Any], int | None]:
    """Check a fault's parameters; returns (params, cushion)."""
    if name == "reset":
        raise ck.fail(kp + ("fault",), "'reset' is not a fault: use do = \"reset\" for a "
                                       "person's reset of the trips, or fault = "
                                       "\"board_reset\" for the board rebooting")
    if name not in FAULT_NAMES:
        raise ck.fail(kp + ("fault",), f"unknown fault {name!r} (known: "
                                       f"{', '.join(FAULT_NAMES)})")
    if clear and name in NOT_CLEARABLE:
        raise ck.fail(kp + ("fault",), f"{name} cannot be cleared: {NOT_CLEARABLE[name]}")
    common = ("at_s", "do", "fault", "note")
    if name == "host_stall":
        ck.keys(e, common + ("duration_s",), kp, "a host_stall event")
        d = ck.number(e, "duration_s", kp, lo=0.0, lo_open=True, hi=MAX_DURATION_S,
                      default=DEFAULT_HOST_STALL_S)
        return {"duration_s": d}, None
    spec = sim_faults.FAULTS[name]
    ck.keys(e, common + spec.params, kp, f"a {name} event (its parameters: "
                                         f"{', '.join(spec.params) or 'none'})")
    params = {k: e[k] for k in spec.params if k in e}
    try:
        checked = sim_faults.check(name, params)
    except sim_faults.FaultError as exc:
        msg = str(exc)
        bad = next((k for k in spec.params if re.search(rf"\b{k}\b", msg)), "fault")
        raise ck.fail(kp + ((bad,) if bad in e else ()), msg) from None
    return checked, checked.get("cushion")


def _parse_events(data: dict[str, Any], ck: _Checker, duration: float) -> list[Event]:
    raw = ck.array(data, "events", ())
    events: list[Event] = []
    prev = 0.0
    for i, e in enumerate(raw):
        kp: tuple[Any, ...] = ("events", i)
        e = ck.table(e, kp)
        line = ck.smap.line(kp)
        at = ck.number(e, "at_s", kp, lo=0.0, hi=duration, required=True)
        assert at is not None
        if at < prev:
            raise ck.fail(kp + ("at_s",), f"{at:g} s is earlier than the event before it "
                                          f"({prev:g} s): events must be in time order")
        prev = at
        do = ck.string(e, "do", kp, required=True, choices=EVENT_KINDS)
        note = ck.string(e, "note", kp, default="") or ""
        common = ("at_s", "do", "note")
        if do in ("unplug", "replug", "board_reset", "host_stall"):
            if "fault" in e:
                raise ck.fail(kp + ("fault",), f"do = {do!r} names the fault itself; "
                                               "write do = \"fault\" to name it in fault")
            params, cushion = _fault_event(e, kp, ck, do, clear=False)
            events.append(Event(i, at, "fault", line, fault=do, params=params, note=note))
        elif do in ("fault", "clear_fault"):
            name = ck.string(e, "fault", kp, required=True)
            assert name is not None
            params, cushion = _fault_event(e, kp, ck, name, clear=do == "clear_fault")
            if do == "clear_fault" and name == "unplug":
                events.append(Event(i, at, "fault", line, fault="replug", note=note))
            else:
                events.append(Event(i, at, do, line, fault=name, params=params,
                                    cushion=cushion, note=note))
        elif do == "setpoint":
            ck.keys(e, common + ("cushion", "setpoint_c", "actor"), kp, "a setpoint event")
            # Not range-checked: an out-of-range setpoint is how a file tests the refusal.
            value = ck.number(e, "setpoint_c", kp, required=True)
            events.append(Event(i, at, do, line, cushion=ck.cushion(e, kp), value=value,
                                actor=ck.string(e, "actor", kp, default=DEFAULT_ACTOR) or "",
                                note=note))
        elif do == "heat":
            ck.keys(e, common + ("cushion", "heat", "actor"), kp, "a heat event")
            if "heat" not in e:
                raise ck.fail(kp, "required key 'heat' is missing (true or false)")
            value = ck.boolean(e, "heat", kp)
            events.append(Event(i, at, do, line, cushion=ck.cushion(e, kp), value=value,
                                actor=ck.string(e, "actor", kp, default=DEFAULT_ACTOR) or "",
                                note=note))
        elif do in ("client_on", "client_off"):
            ck.keys(e, common + ("cushion",), kp, f"a {do} event")
            events.append(Event(i, at, do, line, cushion=ck.cushion(e, kp), note=note))
        else:  # reset
            ck.keys(e, common + ("cushion", "actor", "service_reason"), kp, "a reset event")
            service = ck.string(e, "service_reason", kp, default=None)
            events.append(Event(i, at, do, line, cushion=ck.cushion(e, kp),
                                actor=ck.string(e, "actor", kp, default=DEFAULT_ACTOR) or "",
                                note=note, service_reason=service))
    return events


def _reasons() -> dict[str, Any]:
    from controller.supervisor import NO_CUSHION, REACTIONS

    return {"all": tuple(REACTIONS), "no_cushion": NO_CUSHION}


def _parse_expect(data: dict[str, Any], ck: _Checker, events: list[Event]) -> Expectations:
    if "expect" not in data:
        return Expectations()
    kp0: tuple[Any, ...] = ("expect",)
    ex = ck.table(data["expect"], kp0)
    ck.keys(ex, EXPECT_KEYS, kp0, "[expect]")
    reasons = _reasons()
    trips = []
    for i, t in enumerate(ck.array(ex, "trips", kp0)):
        kp = kp0 + ("trips", i)
        t = ck.table(t, kp)
        ck.keys(t, ("reason", "cushion", "within_s", "since_s", "heater_off_within_s",
                    "cleared"), kp, "a trip expectation")
        reason = ck.string(t, "reason", kp, required=True, choices=reasons["all"])
        assert reason is not None
        cushion = ck.cushion(t, kp)
        if cushion is not None and reason in reasons["no_cushion"]:
            raise ck.fail(kp + ("cushion",), f"{reason} is not about one cushion: leave "
                                             "cushion out")
        trips.append(TripExpect(
            reason, cushion,
            ck.number(t, "within_s", kp, lo=0.0, lo_open=True),
            ck.number(t, "since_s", kp, lo=0.0),
            ck.number(t, "heater_off_within_s", kp, lo=0.0, lo_open=True),
            ck.boolean(t, "cleared", kp), ck.smap.line(kp)))
    alarms = []
    for i, a in enumerate(ck.array(ex, "alarms", kp0)):
        kp = kp0 + ("alarms", i)
        a = ck.table(a, kp)
        ck.keys(a, ("name", "cushion", "within_s", "since_s"), kp, "an alarm expectation")
        alarms.append(AlarmExpect(
            ck.string(a, "name", kp, default="high_temperature",
                      choices=("high_temperature",)) or "high_temperature",
            ck.cushion(a, kp, required=True) or 0,
            ck.number(a, "within_s", kp, lo=0.0, lo_open=True),
            ck.number(a, "since_s", kp, lo=0.0), ck.smap.line(kp)))
    reset_times = {e.at_s for e in events if e.do == "reset"}
    resets = []
    for i, r in enumerate(ck.array(ex, "resets", kp0)):
        kp = kp0 + ("resets", i)
        r = ck.table(r, kp)
        ck.keys(r, ("ok", "at_s", "cleared", "refused"), kp, "a reset expectation")
        if "ok" not in r:
            raise ck.fail(kp, "required key 'ok' is missing (true: accepted, false: refused)")
        at = ck.number(r, "at_s", kp, lo=0.0)
        if at is not None and at not in reset_times:
            raise ck.fail(kp + ("at_s",), f"no reset event at {at:g} s")
        lists = []
        for key in ("cleared", "refused"):
            if key in r:
                v = r[key]
                if not isinstance(v, list) or not all(x in reasons["all"] for x in v):
                    raise ck.fail(kp + (key,), "expected an array of trip reasons "
                                               f"({', '.join(reasons['all'])})")
                lists.append(tuple(v))
            else:
                lists.append(None)
        resets.append(ResetExpect(bool(ck.boolean(r, "ok", kp)), at, lists[0], lists[1],
                                  ck.smap.line(kp)))
    if len(resets) > sum(e.do == "reset" for e in events):
        raise ck.fail(kp0 + ("resets",), "more reset expectations than reset events")
    refusals = []
    commands = {e.at_s: e for e in events if e.do in ("setpoint", "heat")}
    for i, r in enumerate(ck.array(ex, "refusals", kp0)):
        kp = kp0 + ("refusals", i)
        r = ck.table(r, kp)
        ck.keys(r, ("at_s", "do"), kp, "a refusal expectation")
        at = ck.number(r, "at_s", kp, lo=0.0, required=True)
        assert at is not None
        if at not in commands:
            raise ck.fail(kp + ("at_s",), f"no setpoint or heat event at {at:g} s")
        refusals.append(RefusalExpect(at, ck.string(r, "do", kp, choices=("setpoint", "heat")),
                                      ck.smap.line(kp)))
    no_trips = bool(ck.boolean(ex, "no_trips", kp0, default=False))
    if no_trips and trips:
        raise ck.fail(kp0 + ("no_trips",), "no_trips = true contradicts the trips listed")
    no_alarms = bool(ck.boolean(ex, "no_alarms", kp0, default=False))
    if no_alarms and alarms:
        raise ck.fail(kp0 + ("no_alarms",), "no_alarms = true contradicts the alarms listed")
    return Expectations(
        max_water_c=ck.number(ex, "max_water_c", kp0, lo=0.0, hi=100.0),
        trips=tuple(trips), no_trips=no_trips,
        no_other_trips=bool(ck.boolean(ex, "no_other_trips", kp0, default=False)),
        settled_within_s=ck.number(ex, "settled_within_s", kp0, lo=0.0, lo_open=True),
        final_within_c=ck.number(ex, "final_within_c", kp0, lo=0.0, lo_open=True),
        alarms=tuple(alarms), no_alarms=no_alarms, resets=tuple(resets),
        refusals=tuple(refusals),
        heater_off_when_tripped=bool(ck.boolean(ex, "heater_off_when_tripped", kp0,
                                                default=True)),
        schedule_met=bool(ck.boolean(ex, "schedule_met", kp0, default=False)))


