"""The ready-by schedule: a weekly plan per table, and the early start that makes each
cushion ready *at* the planned time rather than when someone remembered to switch it on.

* ``model``: what a schedule is (entries, days, times) and its validation, shared by the
  controller, MQTT, the dashboard and the scenario files;
* ``store``: the schedule and what was learned, as small JSON files written atomically in
  the table's data directory;
* ``localtime``: the controller's seconds mapped to local wall-clock time (real, or a
  simulation's ``start_at``), and how daylight-saving changes are read;
* ``estimate``: the warm-up estimator interface, the model-based one and the per-table
  learned correction;
* ``planner``: the pure decision: start, pause, resume, and whether it will be late;
* ``runner``: ``ScheduleRunner``, ticked by the controller every control cycle.
"""

from .estimate import LearnedWarmup, ModelWarmup, WarmupEstimator
from .localtime import LocalTime, SimulatedLocalTime, SystemLocalTime
from .model import DAYS, Entry, Occurrence, Schedule, ScheduleError, occurrences, parse_schedule
from .runner import ScheduleRunner
from .store import ScheduleStore

__all__ = ["DAYS", "Entry", "Occurrence", "Schedule", "ScheduleError", "occurrences",
           "parse_schedule", "LocalTime", "SimulatedLocalTime", "SystemLocalTime",
           "WarmupEstimator", "ModelWarmup", "LearnedWarmup", "ScheduleRunner",
           "ScheduleStore"]
