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

Layout (one job per module)
---------------------------
* ``schema``: the keys a file may use and the parsed ``Scenario`` types;
* ``source``: where a key sits in the TOML text, for error messages;
* ``parse``: ``load_scenario`` / ``parse_scenario``, checking everything before a run;
* ``result``: what a run records and its JSON;
* ``run``: ``run_scenario`` (the controller in-process on the simulated table);
* ``verdict``: ``check_expectations``;
* ``report``: the plot and the ``hydrotherm scenario run`` entry point.
"""

from .parse import (
    load_scenario,
    parse_scenario,
)
from .report import (
    main_scenario,
    plot_result,
)
from .result import (
    AlarmRecord,
    CushionFigures,
    Failure,
    RefusalRecord,
    ResetRecord,
    Result,
    Trace,
    TripRecord,
)
from .run import (
    _Run,
    gate_grace_s,
    heater_allowed_after_trip,
    run_scenario,
)
from .schema import (
    DEFAULT_ACTOR,
    DEFAULT_HOST_STALL_S,
    EVENT_KINDS,
    FAULT_NAMES,
    MAX_DURATION_S,
    RUNNER_FAULTS,
    SETTLE_BAND_C,
    TRACE_PERIOD_S,
    AlarmExpect,
    Event,
    Expectations,
    RefusalExpect,
    ResetExpect,
    Scenario,
    ScenarioError,
    TripExpect,
)
from .verdict import (
    check_expectations,
    step_tolerance,
)

__all__ = [
    "SETTLE_BAND_C",
    "TRACE_PERIOD_S",
    "MAX_DURATION_S",
    "DEFAULT_ACTOR",
    "DEFAULT_HOST_STALL_S",
    "EVENT_KINDS",
    "RUNNER_FAULTS",
    "FAULT_NAMES",
    "ScenarioError",
    "Event",
    "TripExpect",
    "AlarmExpect",
    "ResetExpect",
    "RefusalExpect",
    "Expectations",
    "Scenario",
    "load_scenario",
    "parse_scenario",
    "TripRecord",
    "AlarmRecord",
    "ResetRecord",
    "RefusalRecord",
    "CushionFigures",
    "Trace",
    "Failure",
    "Result",
    "gate_grace_s",
    "heater_allowed_after_trip",
    "run_scenario",
    "_Run",
    "check_expectations",
    "step_tolerance",
    "plot_result",
    "main_scenario",
]
