"""What a scenario file may say: its keys, event kinds and fault names, and the parsed
scenario's types.

Kept apart from the parser so the run and the verdict can name these types without
knowing how TOML is read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hydrotherm.config import (
    BoardConfig,
    Config,
    ControlConfig,
    LinkConfig,
    PlantConfig,
    PlausibleConfig,
    SafetyConfig,
    SensorConfig,
)
from sim import faults as sim_faults

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
#: ``[board] kind``: the Python board emulator (``sim.board``) or the compiled firmware
#: run in simavr (``sim.firmware``).  Not a configuration key: which board runs the
#: scenario, not how a board behaves.
BOARD_KINDS = ("python", "firmware")

EPS = 1e-6

#: ``do`` values.  ``unplug``, ``replug``, ``board_reset`` and ``host_stall`` are also
#: accepted as ``do = "fault", fault = "<name>"`` (the same event).
EVENT_KINDS = ("fault", "clear_fault", "setpoint", "heat", "client_on", "client_off", "reset",
               "host_stall", "unplug", "replug", "board_reset")
#: Faults the runner handles itself (not on the simulated table).
RUNNER_FAULTS = ("host_stall",)
#: Every name ``fault =`` accepts.
FAULT_NAMES = tuple(sim_faults.FAULTS) + RUNNER_FAULTS
#: Faults that cannot be "cleared" (they are instantaneous, or a clear itself).
NOT_CLEARABLE = {"board_reset": "a reboot is instantaneous; nothing to clear",
                  "replug": "replug is itself the end of an unplug"}

#: Config sections a [plant] table may address (each key belongs to exactly one).
_PLANT_SECTIONS: dict[str, type] = {"plant": PlantConfig, "board": BoardConfig,
                                    "sensor": SensorConfig}
#: Config sections that may appear as their own tables.
CONFIG_TABLES: dict[str, type] = {"plant": PlantConfig, "board": BoardConfig,
                                   "sensor": SensorConfig, "safety": SafetyConfig,
                                   "control": ControlConfig, "link": LinkConfig,
                                   "plausible": PlausibleConfig}

TOP_KEYS = ("name", "description", "duration_s", "seed", "trace_period_s", "plant",
            "true_plant", "board", "sensor", "safety", "control", "link", "plausible",
            "events", "expect", "start_at", "schedule")

EXPECT_KEYS = ("max_water_c", "trips", "no_trips", "no_other_trips", "settled_within_s",
                "final_within_c", "alarms", "no_alarms", "resets", "refusals",
                "heater_off_when_tripped", "schedule_met")


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


#: [plant] key -> config section.
PLANT_KEY_SECTION: dict[str, str] = {}
for _sec, _cls in _PLANT_SECTIONS.items():
    for _k in field_names(_cls):
        assert _k not in PLANT_KEY_SECTION, f"{_k} is in two config sections"
        PLANT_KEY_SECTION[_k] = _sec


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
    service_reason: str | None = None  # a reset by a service person (``reset`` only)

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
    schedule_met: bool = False


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
    board_kind: str = "python"  # [board] kind, see BOARD_KINDS
    start_at: Any = None  # datetime: the local wall-clock time at t = 0
    schedule: Any = None  # controller.schedule.Schedule ([[schedule]] entries)


