"""Scenario runner: a tester's script of a session, run on the whole stack, with a verdict.

A scenario is a TOML file (the format is specified in ``docs/scenarios.md``): the plant and
the configuration it starts from, the setpoints, a time-ordered list of events (faults, a
client lying down, setpoint changes, a person's reset, ...) and what must hold
(``[expect]``).  ``load_scenario`` checks the file completely before anything runs and
raises ``ScenarioError`` naming the line and the key of the first problem.
``run_scenario`` runs the real controller, supervisor, event log and link against the
simulated board and plant, in one process on one simulated clock, faster than real time,
and returns a ``Result`` whose ``to_json()`` is what ``hydrotherm scenario run --json``
writes.

How time advances
-----------------
One step is one telemetry period (``board.telemetry_period_s``, 0.2 s by default).  Each
step: the clock advances; the board samples, reports and answers what it received; the
controller polls (reads the report, the supervisor judges it, the control law runs once
per control period, the gated outputs and the relay go to the link); the link then
transmits at once and the board takes the command in the same instant.  That is what the
real-time loop does (it polls every few milliseconds), quantised to the telemetry period.

What is measured
----------------
* the true water temperature of each cushion (the plant, not a sensor): its maximum, its
  final value, ``settle_s`` and ``overshoot_c`` (below), and the heater energy;
* every trip (from the supervisor's events), with ``detect_s`` from the fault that
  caused it and ``heater_off_s`` from that fault to the moment the board applies 0 % *and*
  the plant receives no power on every cushion the trip switches off (for a welded relay
  that is when the master relay opens);
* alarms, resets (with the supervisor's verdict), refused commands (and whether the
  event log recorded the refusal), and a sampled trace for plots.

``settle_s`` of a cushion is the first time from which its true water stays within
``SETTLE_BAND_C`` of its setpoint until the end of its *settling window*: the run up to
the first accepted setpoint or heat change or client event on that cushion (the end of the
run if there is none).  ``overshoot_c`` is the highest water above the setpoint in that
window (0 if never above).  These are the figures of ``benchmarks/peers.py``
(``Trace.settle_s`` with no minimum hold, ``Trace.overshoot_c``), computed here on the
scenario's own record because a scenario's setpoints and events vary.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydrotherm.config import (
    CUSHIONS,
    BoardConfig,
    Config,
    ConfigError,
    ControlConfig,
    LinkConfig,
    PlantConfig,
    SafetyConfig,
    SensorConfig,
    from_mapping,
)

from . import faults as sim_faults

#: The band of "settled" (± °C around the setpoint), as in the control figures.
SETTLE_BAND_C = 0.2
#: Default period of the sampled trace (s).
TRACE_PERIOD_S = 10.0
#: Longest run a file may ask for (one week of simulated time).
MAX_DURATION_S = 7 * 86400.0
#: The actor of scenario commands unless an event names one.
DEFAULT_ACTOR = "scenario"
#: A host stall without ``duration_s`` lasts this long (more than the 3 s limit).
DEFAULT_HOST_STALL_S = 10.0

_EPS = 1e-6

#: ``do`` values.  ``unplug``, ``replug``, ``board_reset`` and ``host_stall`` are also
#: accepted as ``do = "fault", fault = "<name>"`` (the same event).
EVENT_KINDS = ("fault", "clear_fault", "setpoint", "heat", "client_on", "client_off", "reset",
               "host_stall", "unplug", "replug", "board_reset")
#: Faults the runner handles itself (not on the simulated table).
RUNNER_FAULTS = ("host_stall",)
#: Every name ``fault =`` accepts.
FAULT_NAMES = tuple(sim_faults.FAULTS) + RUNNER_FAULTS
#: Faults that cannot be "cleared" (they are instantaneous, or a clear itself).
_NOT_CLEARABLE = {"board_reset": "a reboot is instantaneous; nothing to clear",
                  "replug": "replug is itself the end of an unplug"}

#: Config sections a [plant] table may address (each key belongs to exactly one).
_PLANT_SECTIONS: dict[str, type] = {"plant": PlantConfig, "board": BoardConfig,
                                    "sensor": SensorConfig}
#: Config sections that may appear as their own tables.
_CONFIG_TABLES: dict[str, type] = {"plant": PlantConfig, "board": BoardConfig,
                                   "sensor": SensorConfig, "safety": SafetyConfig,
                                   "control": ControlConfig, "link": LinkConfig}

_TOP_KEYS = ("name", "description", "duration_s", "seed", "trace_period_s", "plant", "board",
             "sensor", "safety", "control", "link", "events", "expect")

_EXPECT_KEYS = ("max_water_c", "trips", "no_trips", "no_other_trips", "settled_within_s",
                "final_within_c", "alarms", "no_alarms", "resets", "refusals",
                "heater_off_when_tripped")


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


#: [plant] key -> config section.
_PLANT_KEY_SECTION: dict[str, str] = {}
for _sec, _cls in _PLANT_SECTIONS.items():
    for _k in _field_names(_cls):
        assert _k not in _PLANT_KEY_SECTION, f"{_k} is in two config sections"
        _PLANT_KEY_SECTION[_k] = _sec


class ScenarioError(ValueError):
    """A malformed scenario file.  ``line`` (1-based) and ``key`` (a dotted path such as
    ``events[2].fault``) say where; ``str()`` is ``FILE, line N: KEY: problem``."""

    def __init__(self, path: str, line: int | None, key: str, problem: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.problem = problem
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {key}: {problem}")


# --- where a key is in the source -------------------------------------------------------


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*|\"[^\"]*\")\s*=")


def _strip_comment(line: str) -> str:
    """The line without its comment (a ``#`` outside a string)."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
        i += 1
    return line


class _SourceMap:
    """Line numbers of tables and keys in a TOML text, for error messages.

    Paths are tuples as the parsed data is addressed: ``("plant", "room_c")``,
    ``("events", 2, "fault")``, ``("expect", "trips", 0, "within_s")`` (the last one
    inside an inline table).  Good enough for the files this format has; when a path
    cannot be found, its nearest ancestor's line is given."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.offsets: list[int] = []
        pos = 0
        for ln in text.splitlines(keepends=True):
            self.offsets.append(pos)
            pos += len(ln)
        self.where: dict[tuple[Any, ...], tuple[int, int]] = {}  # path -> (line, value offset)
        counts: dict[tuple[str, ...], int] = {}
        current: tuple[Any, ...] = ()
        in_string = ""  # the delimiter of a multi-line string we are inside
        for n, raw in enumerate(self.lines, start=1):
            if in_string:
                if in_string in raw:
                    in_string = ""
                continue
            line = _strip_comment(raw)
            for delim in ('"""', "'''"):
                if line.count(delim) % 2 == 1:
                    in_string = delim
            m = _HEADER_RE.match(line)
            if m and not _KEY_RE.match(line):
                parts = tuple(p.strip().strip("\"'") for p in m.group(2).split("."))
                if m.group(1) == "[[":
                    idx = counts.get(parts, 0)
                    counts[parts] = idx + 1
                    self.where.setdefault(parts, (n, self.offsets[n - 1]))
                    current = parts + (idx,)
                else:
                    current = parts
                self.where.setdefault(current, (n, self.offsets[n - 1]))
                continue
            m = _KEY_RE.match(line)
            if m:
                key = m.group(1)
                parts = ((key.strip('"'),) if key.startswith('"')
                         else tuple(p.strip() for p in key.split(".")))
                self.where.setdefault(current + parts, (n, self.offsets[n - 1] + m.end()))

    def _line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def line(self, path: Sequence[Any]) -> int:
        path = tuple(path)
        for cut in range(len(path), 0, -1):
            head = path[:cut]
            if head in self.where:
                line, offset = self.where[head]
                rest = path[cut:]
                if rest:
                    found = self._inline(offset, rest)
                    if found is not None:
                        return self._line_of(found)
                return line
        return 1

    def _inline(self, offset: int, rest: tuple[Any, ...]) -> int | None:
        """Follow ``rest`` (indices and keys) into the inline value starting at
        ``offset``; the offset of what it names, or None."""
        text = self.text
        pos = offset
        for part in rest:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos >= len(text):
                return None
            if isinstance(part, int):
                if text[pos] != "[":
                    return None
                pos = self._element(pos, part)
            else:
                if text[pos] != "{":
                    return None
                pos = self._member(pos, part)
            if pos is None:
                return None
        return pos

    def _scan(self, start: int) -> list[tuple[int, int]]:
        """(depth-1 separator offsets) of the bracketed value opening at ``start``:
        the offsets just after the opening bracket and after each top-level comma."""
        text = self.text
        depth = 0
        quote = ""
        marks: list[tuple[int, int]] = []
        i = start
        while i < len(text):
            ch = text[i]
            if quote:
                if ch == "\\" and quote == '"':
                    i += 2
                    continue
                if ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "#":
                nl = text.find("\n", i)
                i = len(text) if nl < 0 else nl
                continue
            elif ch in "[{":
                depth += 1
                if depth == 1:
                    marks.append((i + 1, 0))
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    return marks
            elif ch == "," and depth == 1:
                marks.append((i + 1, 0))
            i += 1
        return marks

    def _element(self, start: int, index: int) -> int | None:
        marks = self._scan(start)
        if index >= len(marks):
            return None
        pos = marks[index][0]
        while pos < len(self.text) and self.text[pos] in " \t\r\n":
            pos += 1
        return pos

    def _member(self, start: int, key: str) -> int | None:
        for pos, _ in self._scan(start):
            m = re.compile(r"\s*" + re.escape(key) + r"\s*=").match(self.text, pos)
            if m:
                return m.end()
        return None


# --- the scenario -----------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One event of the file, normalised.  ``do`` is one of ``fault``, ``clear_fault``,
    ``setpoint``, ``heat``, ``client_on``, ``client_off``, ``reset`` (``unplug`` & co.
    become ``do="fault"`` with that ``fault``)."""

    index: int
    at_s: float
    do: str
    line: int
    fault: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # fault parameters, checked
    cushion: int | None = None  # None: both cushions / not about a cushion
    value: Any = None  # setpoint_c (float) or heat (bool)
    actor: str = DEFAULT_ACTOR
    note: str = ""

    @property
    def is_disturbance(self) -> bool:
        """A fault being injected (what ``detect_s`` and ``within_s`` count from);
        ``replug`` ends a fault rather than starting one."""
        return self.do == "fault" and self.fault != "replug"

    def label(self) -> str:
        what = self.fault if self.do in ("fault", "clear_fault") else self.do
        if self.do == "clear_fault":
            what = f"clear_fault {self.fault}"
        c = "" if self.cushion is None else f" cushion {self.cushion}"
        return f"{what}{c} at {self.at_s:g} s"


@dataclass(frozen=True)
class TripExpect:
    reason: str
    cushion: int | None
    within_s: float | None
    since_s: float | None
    heater_off_within_s: float | None
    cleared: bool | None
    line: int

    def describe(self) -> str:
        c = "" if self.cushion is None else f" on cushion {self.cushion}"
        return f"{self.reason}{c}"


@dataclass(frozen=True)
class AlarmExpect:
    name: str
    cushion: int
    within_s: float | None
    since_s: float | None
    line: int


@dataclass(frozen=True)
class ResetExpect:
    ok: bool
    at_s: float | None
    cleared: tuple[str, ...] | None
    refused: tuple[str, ...] | None
    line: int


@dataclass(frozen=True)
class RefusalExpect:
    at_s: float
    do: str | None
    line: int


@dataclass(frozen=True)
class Expectations:
    max_water_c: float | None = None
    trips: tuple[TripExpect, ...] = ()
    no_trips: bool = False
    no_other_trips: bool = False
    settled_within_s: float | None = None
    final_within_c: float | None = None
    alarms: tuple[AlarmExpect, ...] = ()
    no_alarms: bool = False
    resets: tuple[ResetExpect, ...] = ()
    refusals: tuple[RefusalExpect, ...] = ()
    heater_off_when_tripped: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    seed: int
    trace_period_s: float
    config: Config
    events: tuple[Event, ...]
    expect: Expectations
    path: str = "<scenario>"


class _Checker:
    """Validation helpers that raise ScenarioError at the right line."""

    def __init__(self, path: str, smap: _SourceMap) -> None:
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
            km = _KEY_RE.match(_strip_comment(text.splitlines()[line - 1]))
            if km:
                key = km.group(1).strip('"')
        raise ScenarioError(path, line, key, f"not valid TOML: {msg}") from None
    smap = _SourceMap(text)
    ck = _Checker(path, smap)
    ck.keys(data, _TOP_KEYS, (), "the top level")
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
    cfg = _build_config(data, ck)
    events = _parse_events(data, ck, duration)
    expect = _parse_expect(data, ck, events)
    return Scenario(name=name or default_name, description=description or "",
                    duration_s=duration, seed=seed_v, trace_period_s=trace_period or TRACE_PERIOD_S,
                    config=cfg, events=tuple(events), expect=expect, path=path)


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

    for table in ("plant", "board", "sensor", "safety", "control", "link"):
        if table not in data:
            continue
        values = ck.table(data[table], (table,))
        if table == "plant":
            allowed = sorted(_PLANT_KEY_SECTION)
            for k, v in values.items():
                if k not in _PLANT_KEY_SECTION:
                    raise ck.fail(("plant", k), "unknown key in [plant] (any key of the "
                                                "configuration's plant, board and sensor "
                                                f"sections: {', '.join(allowed)})")
                put(_PLANT_KEY_SECTION[k], k, v, "plant", k)
            continue
        known = list(_field_names(_CONFIG_TABLES[table]))
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
    control.setdefault("heat_on", [True, True])  # a scenario heats unless told otherwise
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
    if clear and name in _NOT_CLEARABLE:
        raise ck.fail(kp + ("fault",), f"{name} cannot be cleared: {_NOT_CLEARABLE[name]}")
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
            ck.keys(e, common + ("cushion", "actor"), kp, "a reset event")
            events.append(Event(i, at, do, line, cushion=ck.cushion(e, kp),
                                actor=ck.string(e, "actor", kp, default=DEFAULT_ACTOR) or "",
                                note=note))
    return events


def _reasons() -> dict[str, Any]:
    from controller.supervisor import NO_CUSHION, REACTIONS

    return {"all": tuple(REACTIONS), "no_cushion": NO_CUSHION}


def _parse_expect(data: dict[str, Any], ck: _Checker, events: list[Event]) -> Expectations:
    if "expect" not in data:
        return Expectations()
    kp0: tuple[Any, ...] = ("expect",)
    ex = ck.table(data["expect"], kp0)
    ck.keys(ex, _EXPECT_KEYS, kp0, "[expect]")
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
                                                default=True)))


# --- the result -------------------------------------------------------------------------


@dataclass
class TripRecord:
    at_s: float
    cushion: int | None
    reason: str
    detail: str
    affects: tuple[int, ...]  # the cushions whose heater the trip switches off
    fault: Event | None  # the fault it is attributed to (see ``_attribute``)
    heater_off_at_s: float | None = None  # since when off (and off ever since, if latched)
    cleared_at_s: float | None = None
    on_while_tripped_s: float = 0.0  # time with power after the grace period
    first_on_while_tripped_s: float | None = None

    @property
    def detect_s(self) -> float | None:
        return None if self.fault is None else self.at_s - self.fault.at_s

    @property
    def heater_off_s(self) -> float | None:
        if self.fault is None or self.heater_off_at_s is None:
            return None
        return self.heater_off_at_s - self.fault.at_s

    def as_dict(self) -> dict[str, Any]:
        return {"at_s": _r(self.at_s), "cushion": self.cushion, "reason": self.reason,
                "detail": self.detail,
                "fault": None if self.fault is None else self.fault.label(),
                "detect_s": _r(self.detect_s), "heater_off_s": _r(self.heater_off_s),
                "off_after_trip_s": _r(None if self.heater_off_at_s is None
                                       else max(0.0, self.heater_off_at_s - self.at_s)),
                "affects": list(self.affects), "cleared_at_s": _r(self.cleared_at_s),
                "on_while_tripped_s": _r(self.on_while_tripped_s)}


@dataclass
class AlarmRecord:
    at_s: float
    cushion: int
    name: str
    detail: str
    cleared_at_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"at_s": _r(self.at_s), "cushion": self.cushion, "name": self.name,
                "detail": self.detail, "cleared_at_s": _r(self.cleared_at_s)}


@dataclass
class ResetRecord:
    at_s: float  # the event's time
    cushion: int | None
    actor: str
    done_at_s: float | None = None
    ok: bool | None = None  # None: no verdict before the end of the run
    cleared: list[str] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"at_s": _r(self.at_s), "cushion": self.cushion, "actor": self.actor,
                "done_at_s": _r(self.done_at_s), "ok": self.ok, "cleared": self.cleared,
                "refused": self.refused}


@dataclass
class RefusalRecord:
    at_s: float
    do: str
    cushion: int | None
    value: Any
    reason: str
    logged: bool = False  # the event log holds a command_refused for it
    unchanged: bool = True  # the setting was left as it was

    def as_dict(self) -> dict[str, Any]:
        return {"at_s": _r(self.at_s), "do": self.do, "cushion": self.cushion,
                "value": self.value, "reason": self.reason, "logged": self.logged,
                "unchanged": self.unchanged}


@dataclass
class CushionFigures:
    max_water_c: float
    final_water_c: float
    settle_s: float | None
    overshoot_c: float | None
    energy_wh: float
    setpoint_c: float  # at the end
    heat_on: bool  # at the end

    def as_dict(self) -> dict[str, Any]:
        return {"max_water_c": _r(self.max_water_c, 3), "final_water_c": _r(self.final_water_c, 3),
                "settle_s": _r(self.settle_s), "overshoot_c": _r(self.overshoot_c, 3),
                "energy_wh": _r(self.energy_wh, 2), "setpoint_c": self.setpoint_c,
                "heat_on": self.heat_on}


@dataclass
class Trace:
    """Sampled every ``trace_period_s``: columns, ``[cushion][k]`` for per-cushion ones."""

    t_s: list[float] = field(default_factory=list)
    water_c: list[list[float]] = field(default_factory=lambda: [[], []])
    measured_c: list[list[float | None]] = field(default_factory=lambda: [[], []])
    setpoint_c: list[list[float]] = field(default_factory=lambda: [[], []])
    applied: list[list[float]] = field(default_factory=lambda: [[], []])
    power_w: list[list[float]] = field(default_factory=lambda: [[], []])
    relay_closed: list[bool] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"t_s": [_r(t) for t in self.t_s],
                "water_c": [[_r(v, 3) for v in c] for c in self.water_c],
                "measured_c": [[_r(v, 3) for v in c] for c in self.measured_c],
                "setpoint_c": self.setpoint_c,
                "applied": [[_r(v, 3) for v in c] for c in self.applied],
                "power_w": [[_r(v, 1) for v in c] for c in self.power_w],
                "relay_closed": self.relay_closed}


@dataclass
class Failure:
    expect: str  # which expectation, as in the file: "trips[0]", "max_water_c"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"expect": self.expect, "reason": self.reason}


@dataclass
class Result:
    name: str
    path: str
    duration_s: float
    seed: int
    step_s: float
    grace_s: float
    cushions: list[CushionFigures]
    trips: list[TripRecord]
    alarms: list[AlarmRecord]
    resets: list[ResetRecord]
    refusals: list[RefusalRecord]
    events: list[dict[str, Any]]
    log_kinds: dict[str, int]
    trace: Trace
    wall_s: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def max_water_c(self) -> float:
        return max(c.max_water_c for c in self.cushions)

    def to_json(self, trace: bool = True) -> dict[str, Any]:
        out = {
            "name": self.name, "file": self.path, "passed": self.passed,
            "failures": [f.as_dict() for f in self.failures],
            "duration_s": self.duration_s, "seed": self.seed, "wall_s": _r(self.wall_s, 3),
            "step_s": self.step_s, "grace_s": _r(self.grace_s, 3),
            "max_water_c": _r(self.max_water_c, 3),
            "cushions": [c.as_dict() for c in self.cushions],
            "trips": [t.as_dict() for t in self.trips],
            "alarms": [a.as_dict() for a in self.alarms],
            "resets": [r.as_dict() for r in self.resets],
            "refusals": [r.as_dict() for r in self.refusals],
            "events": self.events,
            "log": self.log_kinds,
        }
        if trace:
            out["trace"] = self.trace.as_dict()
        return out

    def summary(self) -> list[str]:
        """Human-readable lines for the terminal."""
        lines = [f"scenario {self.name!r}: {'PASSED' if self.passed else 'FAILED'} "
                 f"({self.duration_s:g} s simulated in {self.wall_s:.1f} s, seed {self.seed})"]
        for i, c in enumerate(self.cushions):
            settle = "-" if c.settle_s is None else f"{c.settle_s:.0f} s"
            over = "-" if c.overshoot_c is None else f"{c.overshoot_c:.2f} °C"
            lines.append(f"  cushion {i}: max {c.max_water_c:.2f} °C, final "
                         f"{c.final_water_c:.2f} °C, settle {settle}, overshoot {over}, "
                         f"{c.energy_wh:.1f} Wh")
        for t in self.trips:
            where = "table" if t.cushion is None else f"cushion {t.cushion}"
            det = ("" if t.fault is None or t.detect_s is None
                   else f", detected {t.detect_s:.1f} s after {t.fault.label()}")
            off = "" if t.heater_off_s is None else f", heater off after {t.heater_off_s:.1f} s"
            lines.append(f"  trip {t.reason} ({where}) at {t.at_s:.1f} s{det}{off}")
        for a in self.alarms:
            lines.append(f"  alarm {a.name} (cushion {a.cushion}) at {a.at_s:.1f} s")
        for r in self.resets:
            verdict = {True: "accepted", False: "refused", None: "no verdict"}[r.ok]
            lines.append(f"  reset at {r.at_s:g} s by {r.actor}: {verdict}")
        for r in self.refusals:
            lines.append(f"  refused {r.do} {r.value!r} at {r.at_s:g} s: {r.reason}")
        for f in self.failures:
            lines.append(f"  FAILED {f.expect}: {f.reason}")
        return lines


def _r(v: float | None, nd: int = 2) -> float | None:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return round(v, nd)


# --- the run ----------------------------------------------------------------------------


def gate_grace_s(cfg: Config) -> float:
    """How long a heater may still deliver power after its cushion trips.

    The trip is judged on a telemetry report and the gate zeroes the output in the same
    poll; the link sends SET_OUTPUTS (or SET_RELAY) at once, unless another command is
    awaiting its ACK, which arrives with the board's next answer: within one telemetry
    period in the stepped simulation (the link retransmits after ``ack_timeout_s`` if it
    does not).  Hence one telemetry period + the ACK timeout (0.3 s by default).  The
    plant's ``power_w`` is the mean over an integration step (one telemetry period), so
    the grace is compared with the *start* of the step: a step that began before
    trip + grace may still show power, one that began later must not."""
    return cfg.board.telemetry_period_s + cfg.link.ack_timeout_s


def heater_allowed_after_trip(cfg: Config, trip_at_s: float, interval_start_s: float,
                              last_setting_s: float, step_s: float) -> bool:
    """The rule the runner (and the safety property test) holds every trip to.

    A heater whose cushion a latched trip switches off may still show power (the plant's
    ``power_w``, the mean over an integration step starting at ``interval_start_s``) only

    * within ``gate_grace_s`` of the trip: the gate reaching the board; or
    * on the board's own authority, when the host could not reach it: the board has
      accepted no SET_OUTPUTS since the trip (``last_setting_s``, the latest it had
      accepted when that step began, is not after the trip) and that last setting is
      still within the board's dead-man period (``board.deadman_s``; the board drops it
      at its first sample after that, hence one more step).  This is what a lost link
      (``stale_telemetry``: unplugged, silent, or too noisy a line) looks like: only the
      dead-man can stop a heater the host cannot reach.

    Anything else is a heater on while tripped: a failure of the gate or the link."""
    if interval_start_s < trip_at_s + gate_grace_s(cfg) - _EPS:
        return True
    return (last_setting_s <= trip_at_s + _EPS
            and interval_start_s < last_setting_s + cfg.board.deadman_s + step_s - _EPS)


class _Run:
    def __init__(self, sc: Scenario, progress: Callable[[str], None] | None,
                 on_step: Callable[[Any], None] | None = None) -> None:
        from controller.eventlog import EventLog
        from controller.service import Controller
        from sim.harness import InProcessHarness

        self.sc = sc
        self.cfg = cfg = sc.config
        self.progress = progress
        self.on_step = on_step
        self.now = 0.0
        self.step = cfg.board.telemetry_period_s
        self.grace = gate_grace_s(cfg)
        self.h = InProcessHarness(cfg, seed=sc.seed, step_s=self.step)
        self.clock = self.h.clock
        self.table = self.h.table
        self.plant = self.table.plant
        self.board = self.table.board
        self.log = EventLog(None)
        self.c = Controller(cfg, self.h.link, self.clock, log=self.log, wall=self.clock.now)
        self.controller = self.c
        self.link = self.h.link
        self.c.listeners.append(self._on_controller_event)
        self.trips: list[TripRecord] = []
        self.open_trips: dict[tuple[str, int | None], TripRecord] = {}
        self.alarms: list[AlarmRecord] = []
        self.open_alarms: dict[int, AlarmRecord] = {}
        self.resets: list[ResetRecord] = []
        self.refusals: list[RefusalRecord] = []
        self.applied_events: list[dict[str, Any]] = []
        self.faults_so_far: list[Event] = []
        self.trace = Trace()
        self.max_water = list(self.plant.water_c)
        self.off_since: list[float | None] = [None, None]
        self.last_setting = list(self.board.output_set_at)  # as the next step begins
        self.step_start_setting = self.last_setting  # as the step just done began
        self.energy_wh = [0.0, 0.0]
        self._heater_in = self.plant.energy().heater_in
        # 1 s record of the true water for the settling figures
        self.sec_t: list[float] = []
        self.sec_w: list[list[float]] = [[], []]
        self.window_end: list[float | None] = [None, None]
        self.initial_setpoint = list(self.c.cushions[i].setpoint_c for i in range(CUSHIONS))
        self.initial_heat = list(self.c.cushions[i].heat_on for i in range(CUSHIONS))

    # -- controller events --

    def _on_controller_event(self, msg: dict[str, Any]) -> None:
        if msg.get("type") != "event":
            return
        kind = msg.get("kind")
        now = self.clock.now()
        cushion = msg.get("cushion")
        reason = msg.get("reason") or ""
        detail = (msg.get("detail") or {}).get("detail", "")
        if kind == "trip":
            from controller.supervisor import REACTIONS, Reaction

            affects = ((cushion,) if REACTIONS[reason] is Reaction.CUSHION_OFF
                       and cushion is not None else tuple(range(CUSHIONS)))
            rec = TripRecord(now, cushion, reason, str(detail), affects,
                             self._attribute(cushion))
            self.trips.append(rec)
            self.open_trips[(reason, cushion)] = rec
        elif kind == "trip_reset":
            rec = self.open_trips.pop((reason, cushion), None)
            if rec is not None:
                rec.cleared_at_s = now
        elif kind == "alarm" and cushion is not None:
            a = AlarmRecord(now, cushion, reason, str(detail))
            self.alarms.append(a)
            self.open_alarms[cushion] = a
        elif kind == "alarm_cleared" and cushion is not None:
            a = self.open_alarms.pop(cushion, None)
            if a is not None:
                a.cleared_at_s = now

    def _attribute(self, cushion: int | None) -> Event | None:
        """The fault a trip is attributed to: the latest injected fault (``replug`` and
        ``clear_fault`` excluded) concerning the trip's cushion -- a fault without a
        cushion concerns both, and a trip without a cushion is concerned by any fault."""
        for ev in reversed(self.faults_so_far):
            if cushion is None or ev.cushion is None or ev.cushion == cushion:
                return ev
        return None

    # -- events --

    def _apply(self, ev: Event) -> None:
        now = self.clock.now()
        c = self.c
        rec: dict[str, Any] = {"at_s": _r(now), "do": ev.do, "line": ev.line}
        if ev.fault is not None:
            rec["fault"] = ev.fault
        if ev.cushion is not None:
            rec["cushion"] = ev.cushion
        if ev.params:
            rec["params"] = {k: v for k, v in ev.params.items() if k != "cushion"}
        if ev.value is not None:
            rec["value"] = ev.value
        self.applied_events.append(rec)
        cushions = range(CUSHIONS) if ev.cushion is None else (ev.cushion,)
        if ev.do in ("fault", "clear_fault"):
            clear = ev.do == "clear_fault"
            if ev.fault == "host_stall":
                c.stall_control(0.0 if clear else ev.params["duration_s"])
            else:
                self.table.inject(ev.fault, clear=clear, **ev.params)  # type: ignore[arg-type]
            if ev.is_disturbance:
                self.faults_so_far.append(dataclasses.replace(ev, at_s=now))
        elif ev.do in ("setpoint", "heat"):
            from controller.service import CommandError

            for i in cushions:
                st = c.cushions[i]
                before = (st.setpoint_c, st.heat_on)
                try:
                    if ev.do == "setpoint":
                        c.set_setpoint(i, ev.value, ev.actor)
                    else:
                        c.set_heat(i, ev.value, ev.actor)
                except CommandError as exc:
                    self.refusals.append(RefusalRecord(
                        now, ev.do, i, ev.value, str(exc),
                        unchanged=(st.setpoint_c, st.heat_on) == before))
                    rec["refused"] = str(exc)
                    continue
                if (st.setpoint_c, st.heat_on) != before:
                    self._end_window(i, now)
        elif ev.do in ("client_on", "client_off"):
            for i in cushions:
                self.table.set_client(i, ev.do == "client_on")
                self._end_window(i, now)
        elif ev.do == "reset":
            rr = ResetRecord(now, ev.cushion, ev.actor)
            self.resets.append(rr)

            def done(result: Any, rr: ResetRecord = rr) -> None:
                rr.done_at_s = self.clock.now()
                rr.ok = bool(result.ok)
                rr.cleared = [t.reason for t in result.cleared]
                rr.refused = [{"reason": t.reason, "cushion": t.cushion, "why": why}
                              for t, why in result.refused]

            c.request_reset(ev.actor, ev.cushion, done)

    def _end_window(self, cushion: int, now: float) -> None:
        if self.window_end[cushion] is None:
            self.window_end[cushion] = now

    # -- every step --

    def _observe(self, now: float) -> None:
        plant = self.plant
        water = plant.water_c
        power = plant.power_w
        mx = self.max_water
        self.step_start_setting = self.last_setting
        for i in (0, 1):
            if water[i] > mx[i]:
                mx[i] = water[i]
        heater_in = plant.energy().heater_in if (power[0] or power[1]) else self._heater_in
        d = heater_in - self._heater_in
        if d > 0.0:
            tot = power[0] + power[1]
            for i in (0, 1):
                self.energy_wh[i] += d * (power[i] / tot if tot > 0 else 0.5) / 3600.0
            self._heater_in = heater_in
        # Heater off: the board applies 0 % and the plant got no power over the step
        # that just ended (so it has been off since that step began).
        board = self.board
        off_since = self.off_since
        for i in (0, 1):
            if board.applied(i) == 0 and power[i] == 0.0:
                if off_since[i] is None:
                    off_since[i] = max(0.0, now - self.step)
            else:
                off_since[i] = None
        if self.open_trips:
            for rec in self.open_trips.values():
                since = [off_since[i] for i in rec.affects]
                if all(x is not None for x in since):
                    if rec.heater_off_at_s is None:
                        # off already before the trip: counts from the fault (or the trip)
                        floor = rec.fault.at_s if rec.fault is not None else rec.at_s
                        rec.heater_off_at_s = max(floor, *since)  # type: ignore[type-var]
                else:
                    rec.heater_off_at_s = None
                    if not self._allowed(rec, now):
                        rec.on_while_tripped_s += self.step
                        if rec.first_on_while_tripped_s is None:
                            rec.first_on_while_tripped_s = now
        # what the board had accepted when the next step begins
        self.last_setting = list(board.output_set_at)
        if now >= len(self.sec_t) - _EPS:
            self.sec_t.append(now)
            self.sec_w[0].append(water[0])
            self.sec_w[1].append(water[1])

    def _allowed(self, rec: TripRecord, now: float) -> bool:
        """May the affected heaters still deliver power at the step that ended ``now``
        although ``rec`` is latched?  See ``heater_allowed_after_trip``."""
        return heater_allowed_after_trip(
            self.cfg, rec.at_s, now - self.step,
            max(self.step_start_setting[i] for i in rec.affects), self.step)

    def _sample_trace(self, now: float) -> None:
        from controller.service import water_mean

        tr = self.trace
        link = self.h.link
        reading = link.latest if link.healthy else None
        tr.t_s.append(now)
        for i in (0, 1):
            tr.water_c[i].append(self.plant.water_c[i])
            tr.measured_c[i].append(water_mean(reading, i) if reading else None)
            tr.setpoint_c[i].append(self.c.cushions[i].setpoint_c)
            tr.applied[i].append(self.board.applied(i) / 1000.0)
            tr.power_w[i].append(self.plant.power_w[i])
        tr.relay_closed.append(bool(self.board.relay_closed))

    def run(self) -> Result:
        wall0 = time.perf_counter()
        sc = self.sc
        c, table, link, clock = self.c, self.table, self.h.link, self.clock
        for i in range(CUSHIONS):
            self.c.set_heat(i, self.initial_heat[i], DEFAULT_ACTOR)
        c.start()
        events = list(sc.events)
        k = 0
        next_trace = 0.0
        next_progress = 0.1
        duration = sc.duration_s
        step = self.step
        n_steps = max(1, math.ceil(duration / step - 1e-9))
        while k < len(events) and events[k].at_s <= _EPS:
            self._apply(events[k])
            k += 1
        self._observe(0.0)
        self._sample_trace(0.0)
        next_trace = sc.trace_period_s
        for n in range(1, n_steps + 1):
            clock.advance(step)
            table.poll()
            c.poll()
            link.poll()
            table.poll()
            now = self.now = clock.now()
            self._observe(now)
            if self.on_step is not None:
                self.on_step(self)
            if now >= next_trace - _EPS:
                self._sample_trace(now)
                next_trace += sc.trace_period_s
            while k < len(events) and events[k].at_s <= now + _EPS:
                self._apply(events[k])
                k += 1
            if self.progress is not None and n / n_steps >= next_progress - 1e-9:
                next_progress += 0.1
                self._report(now, n / n_steps)
        end = clock.now()
        if self.trace.t_s and self.trace.t_s[-1] < end - _EPS:
            self._sample_trace(end)
        result = self._result(end)
        result.wall_s = time.perf_counter() - wall0
        self.log.close()
        return result

    def _report(self, now: float, frac: float) -> None:
        w = self.plant.water_c
        trips = ", ".join(sorted({t.reason for t in self.open_trips.values()})) or "none"
        self.progress(f"{frac * 100:3.0f}%  t = {now:7.0f} s  water {w[0]:.2f} / {w[1]:.2f} °C"  # type: ignore[misc]
                      f"  latched trips: {trips}")

    def _result(self, end: float) -> Result:
        from controller.eventlog import EventLog

        assert isinstance(self.log, EventLog)
        kinds: dict[str, int] = {}
        logged = self.log.events(kinds=["command_refused"])
        for ev in self.log.events():
            kinds[ev.kind] = kinds.get(ev.kind, 0) + 1
        for r in self.refusals:
            r.logged = any(abs(e.time - r.at_s) < _EPS and e.cushion == r.cushion
                           and (e.detail or {}).get("command") == r.do for e in logged)
        figures = []
        for i in range(CUSHIONS):
            st = self.c.cushions[i]
            settle, over = self._settling(i)
            figures.append(CushionFigures(
                max_water_c=self.max_water[i], final_water_c=self.plant.water_c[i],
                settle_s=settle, overshoot_c=over, energy_wh=self.energy_wh[i],
                setpoint_c=st.setpoint_c, heat_on=st.heat_on))
        res = Result(name=self.sc.name, path=self.sc.path, duration_s=self.sc.duration_s,
                     seed=self.sc.seed, step_s=self.step, grace_s=self.grace,
                     cushions=figures, trips=self.trips, alarms=self.alarms,
                     resets=self.resets, refusals=self.refusals, events=self.applied_events,
                     log_kinds=kinds, trace=self.trace)
        res.failures = check_expectations(self.sc, res)
        return res

    def _settling(self, i: int) -> tuple[float | None, float | None]:
        """(settle_s, overshoot_c) of cushion i in its settling window (module doc);
        (None, None) when its heat was off at the start."""
        if not self.initial_heat[i]:
            return None, None
        sp = self.initial_setpoint[i]
        end = self.window_end[i]
        ts = self.sec_t
        ws = self.sec_w[i]
        n = len(ts) if end is None else sum(1 for t in ts if t < end - _EPS)
        if n == 0:
            return None, None
        settle: float | None = 0.0
        for k in range(n - 1, -1, -1):
            if abs(ws[k] - sp) > SETTLE_BAND_C:
                settle = ts[k + 1] if k + 1 < n else None
                break
        over = max(0.0, max(ws[:n]) - sp)
        return settle, over


def run_scenario(scenario: Scenario, progress: Callable[[str], None] | None = None, *,
                 on_step: Callable[[Any], None] | None = None) -> Result:
    """Run a checked scenario on the whole stack in-process; see the module docstring.

    ``on_step(run)``, if given, is called after every step with the running ``_Run``
    (``now``, ``plant``, ``board``, ``controller``, ``link``, ``trips``): what property
    tests use to watch things the result does not keep."""
    return _Run(scenario, progress, on_step).run()


# --- the verdict ------------------------------------------------------------------------


def _anchor(trip: TripRecord, since_s: float | None) -> float:
    if since_s is not None:
        return since_s
    return trip.fault.at_s if trip.fault is not None else 0.0


def check_expectations(sc: Scenario, res: Result) -> list[Failure]:
    """Compare a run with the file's [expect]; one ``Failure`` per broken expectation."""
    ex = sc.expect
    out: list[Failure] = []
    if ex.max_water_c is not None and res.max_water_c > ex.max_water_c:
        i = max(range(CUSHIONS), key=lambda j: res.cushions[j].max_water_c)
        out.append(Failure("max_water_c", f"cushion {i} water reached {res.max_water_c:.3f} °C, "
                                          f"above {ex.max_water_c:g} °C"))
    used: set[int] = set()
    for n, te in enumerate(ex.trips):
        key = f"trips[{n}]"
        cands = [t for t in res.trips if t.reason == te.reason
                 and (te.cushion is None or t.cushion == te.cushion)]
        if not cands:
            seen = ", ".join(f"{t.reason}@{t.at_s:.1f}s" for t in res.trips) or "no trips"
            out.append(Failure(key, f"expected a {te.describe()} trip; there was none "
                                    f"(trips: {seen})"))
            continue
        ok = [t for t in cands
              if te.within_s is None or 0.0 <= t.at_s - _anchor(t, te.since_s) <= te.within_s
              + _EPS]
        if not ok:
            t = cands[0]
            since = _anchor(t, te.since_s)
            src = (f"{te.since_s:g} s" if te.since_s is not None else
                   t.fault.label() if t.fault is not None else "the start")
            out.append(Failure(key, f"{te.describe()} tripped {t.at_s - since:.2f} s after "
                                    f"{src}, later than within_s = {te.within_s:g} s"))
            continue
        t = ok[0]
        used.update(id(x) for x in cands)
        if te.heater_off_within_s is not None:
            since = _anchor(t, te.since_s)
            if t.heater_off_at_s is None:
                out.append(Failure(key, f"after the {te.describe()} trip the heater(s) of "
                                        f"cushion(s) {list(t.affects)} never stayed off"))
            elif t.heater_off_at_s - since > te.heater_off_within_s + _EPS:
                out.append(Failure(key, f"heater off {t.heater_off_at_s - since:.2f} s after "
                                        f"the fault, later than heater_off_within_s = "
                                        f"{te.heater_off_within_s:g} s"))
        if te.cleared is not None and (t.cleared_at_s is not None) != te.cleared:
            state = (f"was cleared at {t.cleared_at_s:.1f} s" if t.cleared_at_s is not None
                     else "was still latched at the end")
            out.append(Failure(key, f"expected the {te.describe()} trip "
                                    f"{'cleared' if te.cleared else 'still latched'}: it {state}"))
    if ex.no_trips and res.trips:
        out.append(Failure("no_trips", "expected no trips; got " + ", ".join(
            f"{t.reason} ({'table' if t.cushion is None else f'cushion {t.cushion}'}) at "
            f"{t.at_s:.1f} s" for t in res.trips)))
    if ex.no_other_trips:
        others = [t for t in res.trips if id(t) not in used]
        if others:
            out.append(Failure("no_other_trips", "trips not listed in expect.trips: " + ", ".join(
                f"{t.reason} ({'table' if t.cushion is None else f'cushion {t.cushion}'}) at "
                f"{t.at_s:.1f} s" for t in others)))
    if ex.heater_off_when_tripped:
        for t in res.trips:
            if t.first_on_while_tripped_s is not None:
                out.append(Failure("heater_off_when_tripped", (
                    f"heater power on cushion(s) {list(t.affects)} at "
                    f"{t.first_on_while_tripped_s:.1f} s while {t.reason} (tripped at "
                    f"{t.at_s:.1f} s) was latched, beyond the {res.grace_s:.2f} s grace; "
                    f"{t.on_while_tripped_s:.1f} s in all")))
    if ex.settled_within_s is not None:
        for i, cf in enumerate(res.cushions):
            if not sc.config.control.heat_on[i]:
                continue
            if cf.settle_s is None or cf.settle_s > ex.settled_within_s:
                got = "never settled" if cf.settle_s is None else f"settled at {cf.settle_s:.0f} s"
                out.append(Failure("settled_within_s", f"cushion {i} {got} (within "
                                                       f"±{SETTLE_BAND_C} °C of its setpoint), "
                                                       f"not within {ex.settled_within_s:g} s"))
    if ex.final_within_c is not None:
        for i, cf in enumerate(res.cushions):
            if cf.heat_on and abs(cf.final_water_c - cf.setpoint_c) > ex.final_within_c:
                out.append(Failure("final_within_c", (
                    f"cushion {i} ends at {cf.final_water_c:.2f} °C, "
                    f"{cf.final_water_c - cf.setpoint_c:+.2f} °C from its setpoint "
                    f"{cf.setpoint_c:g} °C (allowed ±{ex.final_within_c:g})")))
    for n, ae in enumerate(ex.alarms):
        key = f"alarms[{n}]"
        cands = [a for a in res.alarms if a.name == ae.name and a.cushion == ae.cushion]
        if not cands:
            out.append(Failure(key, f"expected a {ae.name} alarm on cushion {ae.cushion}; "
                                    "there was none"))
            continue
        if ae.within_s is not None:
            since = ae.since_s if ae.since_s is not None else _alarm_anchor(sc, cands[0].at_s)
            if not any(0.0 <= a.at_s - since <= ae.within_s + _EPS for a in cands):
                out.append(Failure(key, f"the {ae.name} alarm on cushion {ae.cushion} came "
                                        f"{cands[0].at_s - since:.1f} s after {since:g} s, "
                                        f"later than within_s = {ae.within_s:g} s"))
    if ex.no_alarms and res.alarms:
        out.append(Failure("no_alarms", "expected no alarms; got " + ", ".join(
            f"{a.name} (cushion {a.cushion}) at {a.at_s:.1f} s" for a in res.alarms)))
    pending = list(res.resets)
    for n, re_ in enumerate(ex.resets):
        key = f"resets[{n}]"
        if re_.at_s is not None:
            match = next((r for r in pending if abs(r.at_s - re_.at_s) < step_tolerance(res)),
                         None)
        else:
            match = pending[0] if pending else None
        if match is None:
            out.append(Failure(key, "no reset happened to match this expectation"))
            continue
        pending.remove(match)
        if match.ok is None:
            out.append(Failure(key, f"the reset at {match.at_s:g} s got no verdict before "
                                    "the run ended"))
            continue
        if match.ok != re_.ok:
            why = "; ".join(f"{x['reason']}: {x['why']}" for x in match.refused)
            got = "refused (" + why + ")" if not match.ok else \
                f"accepted (cleared {', '.join(match.cleared) or 'nothing'})"
            out.append(Failure(key, f"expected the reset at {match.at_s:g} s to be "
                                    f"{'accepted' if re_.ok else 'refused'}; it was {got}"))
        if re_.cleared is not None and sorted(re_.cleared) != sorted(match.cleared):
            out.append(Failure(key, f"reset cleared {match.cleared}, expected "
                                    f"{list(re_.cleared)}"))
        got_refused = sorted(x["reason"] for x in match.refused)
        if re_.refused is not None and sorted(re_.refused) != got_refused:
            out.append(Failure(key, f"reset refused {got_refused}, expected {list(re_.refused)}"))
    expected_refusals = []
    for n, rf in enumerate(ex.refusals):
        key = f"refusals[{n}]"
        match = [r for r in res.refusals if abs(r.at_s - rf.at_s) < step_tolerance(res)
                 and (rf.do is None or r.do == rf.do)]
        if not match:
            out.append(Failure(key, f"expected the command at {rf.at_s:g} s to be refused; "
                                    "it was carried out"))
            continue
        expected_refusals.extend(match)
        for r in match:
            if not r.logged:
                out.append(Failure(key, f"the refused {r.do} at {r.at_s:g} s is not in the "
                                        "event log (no command_refused event)"))
            if not r.unchanged:
                out.append(Failure(key, f"the refused {r.do} at {r.at_s:g} s changed the "
                                        "setting anyway"))
    for r in res.refusals:
        if r not in expected_refusals:
            out.append(Failure("refusals", f"the {r.do} event at {r.at_s:g} s (cushion "
                                           f"{r.cushion}, {r.value!r}) was refused: {r.reason}"))
    return out


def step_tolerance(res: Result) -> float:
    """Events happen on the step grid: an event time matches within one step."""
    return res.step_s + _EPS


def _alarm_anchor(sc: Scenario, at_s: float) -> float:
    """Alarms count from the latest event of any kind before them (or the start)."""
    best = 0.0
    for ev in sc.events:
        if ev.at_s <= at_s + _EPS:
            best = ev.at_s
    return best


# --- plot and CLI -----------------------------------------------------------------------


def plot_result(res: Result, out_path: str) -> bool:
    """Write a PNG of the trace (water, measured, setpoints, trips; heater power).
    Returns False, after saying why on stderr, when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: it needs matplotlib, which is not installed "
              "(pip install matplotlib); the run itself is unaffected", file=sys.stderr)
        return False
    tr = res.trace
    fig, (ax, axp) = plt.subplots(2, 1, sharex=True, figsize=(10, 6),
                                  gridspec_kw={"height_ratios": [3, 1]})
    t_min = [t / 60.0 for t in tr.t_s]
    for i, colour in ((0, "tab:blue"), (1, "tab:orange")):
        ax.plot(t_min, tr.water_c[i], color=colour, label=f"cushion {i} water (true)")
        ax.plot(t_min, [math.nan if v is None else v for v in tr.measured_c[i]], color=colour,
                linestyle=":", label=f"cushion {i} measured")
        ax.plot(t_min, tr.setpoint_c[i], color=colour, linestyle="--", linewidth=0.8)
        axp.plot(t_min, tr.power_w[i], color=colour, label=f"cushion {i}")
    for t in res.trips:
        ax.axvline(t.at_s / 60.0, color="red", linewidth=0.8)
        ax.annotate(t.reason, (t.at_s / 60.0, ax.get_ylim()[1]), rotation=90, fontsize=7,
                    va="top", color="red")
    for ev in res.events:
        axp.axvline(ev["at_s"] / 60.0, color="grey", linewidth=0.5)
    ax.set_ylabel("°C")
    ax.set_title(f"{res.name} ({'passed' if res.passed else 'FAILED'})")
    ax.legend(fontsize=7, loc="lower right")
    axp.set_ylabel("heater W")
    axp.set_xlabel("minutes")
    axp.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return True


def main_scenario(argv_path: str, json_out: str | None, plot_out: str | None,
                  progress: Callable[[str], None] | None) -> int:
    """``hydrotherm scenario run FILE.toml [--json OUT] [--plot OUT.png]``.

    Exit code 0: every expectation held; 1: one failed; 2: the file is malformed (the
    error, naming the line and key, goes to stderr, and nothing runs).  ``json_out`` of
    ``-`` writes the JSON to stdout (the summary then goes to stderr)."""
    try:
        sc = load_scenario(argv_path)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res = run_scenario(sc, progress)
    summary_to = sys.stderr if json_out == "-" else sys.stdout
    for line in res.summary():
        print(line, file=summary_to)
    if json_out is not None:
        text = json.dumps(res.to_json(), indent=2, ensure_ascii=False)
        if json_out == "-":
            print(text)
        else:
            try:
                Path(json_out).write_text(text + "\n", encoding="utf-8")
            except OSError as exc:
                print(f"error: cannot write {json_out}: {exc}", file=sys.stderr)
                return 2
    if plot_out is not None:
        plot_result(res, plot_out)
    return 0 if res.passed else 1
