"""What the tuner is asked and what it finds: the settings, the estimates with their
uncertainty, one fit per cushion and the combined result.

Plain data, so the experiment, the fit and the report can share it without importing
each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hydrotherm.config import CUSHIONS

from .fmt import fmt_g


class AutotuneError(RuntimeError):
    """The experiment was aborted or its result cannot be used; the message says why."""



@dataclass(frozen=True)
class AutotuneSettings:
    """The experiment and the tuning rule (defaults: the module docstring)."""

    hold_s: float = 300.0
    heat_s: float = 2400.0
    cool_s: float = 1800.0
    #: no power is asked when the water would settle above setpoint_max_c minus this
    ceiling_margin_c: float = 1.0
    #: any sensor at or above this aborts the experiment
    abort_c: float = 39.5
    #: a cushion must be able to rise at least this much below the ceiling to start
    min_rise_c: float = 3.0
    connect_timeout_s: float = 15.0
    relay_timeout_s: float = 5.0
    #: resolution of the fitted record
    fit_bin_s: float = 5.0
    #: the law: closed-loop time constant of the energy loop, and its floor in units of
    #: (plate time constant + sensor lag)
    closed_loop_tau_s: float = 130.0
    min_tau_factor: float = 1.5
    ti_per_tau: float = 7.0
    kp_min_w_per_k: float = 50.0
    kp_max_w_per_k: float = 20000.0


@dataclass(frozen=True)
class Estimate:
    """An identified value and its 1σ uncertainty (same unit)."""

    value: float
    sigma: float

    @property
    def relative(self) -> float:
        return self.sigma / abs(self.value) if self.value else math.inf

    def __str__(self) -> str:
        return f"{fmt_g(self.value)} ± {fmt_g(self.sigma)}"


@dataclass(frozen=True)
class CushionFit:
    """What one cushion's record says."""

    cushion: int
    water_capacity_j_per_k: Estimate  # C_w
    water_kg: Estimate  # C_w / c
    loss_to_room_w_per_k: Estimate  # UA
    plate_time_constant_s: Estimate  # C_p / h
    plate_to_water_w_per_k: Estimate  # h, with C_p from the configuration
    r2: float  # of the water record
    residual_rms_c: float
    residual_max_c: float
    points: int
    iterations: int
    start_c: float
    peak_c: float
    heated_s: float
    #: the closed-form look at the record (°C/min; at the mean water temperature given)
    hold_rate_c_per_min: float
    heat_rate_c_per_min: float
    heat_rate_at_c: float
    cool_rate_c_per_min: float
    cool_rate_at_c: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class AutotuneResult:
    """The experiment's outcome: per-cushion fits, what would change in the configuration
    (``proposed``, dotted keys, next to ``previous``), and the assumptions it rests on."""

    fits: tuple[CushionFit, ...]
    proposed: dict[str, float]
    previous: dict[str, float]
    room_c: float
    heater_w: float
    plate_heat_capacity_j_per_k: float
    specific_heat_j_per_kg_k: float
    coupling_w_per_k: float
    closed_loop_tau_s: float
    duration_s: float
    warnings: tuple[str, ...] = ()
    #: reasons not to apply the result (empty: usable)
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def fit(self, cushion: int) -> CushionFit:
        for f in self.fits:
            if f.cushion == cushion:
                return f
        raise KeyError(f"cushion {cushion} was not identified")


@dataclass
class Record:
    """Every report from the start of ``hold``: time, each cushion's sensor mean (None: no
    valid sensor) and applied fraction."""

    t: list[float] = field(default_factory=list)
    water: list[list[float | None]] = field(default_factory=lambda: [[] for _ in range(CUSHIONS)])
    applied: list[list[float]] = field(default_factory=lambda: [[] for _ in range(CUSHIONS)])
