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
    #: the plate's carry-over is judged this many times the configured model's: a heater
    #: 20 % strong, a plate coupling 30 % weak and 15 kg of water instead of 25 (the
    #: plausible range's worst corner) carry about 2.9 times the nominal 0.18 K
    plausible_carry_factor: float = 3.0
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
    #: what a cushion can be (reference.md, "Real tables differ": water 15–35 kg, heater
    #: 240–360 W, plate 21–39 W/K, loss 2–6 W/K, room 12–30 °C), widened because the
    #: nameplate heater power may be off by ±20 % and every identified capacity and
    #: conductance scales with it.  An identified value outside is not a cushion: refused.
    water_kg_range: tuple[float, float] = (10.0, 45.0)
    loss_w_per_k_range: tuple[float, float] = (1.0, 8.0)
    plate_to_water_w_per_k_range: tuple[float, float] = (15.0, 50.0)
    room_c_range: tuple[float, float] = (5.0, 40.0)
    #: the fit must be this good to be written (R², residual rms)
    min_r2: float = 0.999
    max_rms_c: float = 0.05
    #: and its 95 % confidence intervals this narrow (half-width / value)
    max_ci95_water: float = 0.10
    max_ci95_loss: float = 0.40
    max_ci95_plate: float = 0.50
    #: an identified room's 95 % half-width, K
    max_ci95_room_c: float = 2.0


@dataclass(frozen=True)
class Estimate:
    """An identified value and its 1σ uncertainty (same unit)."""

    value: float
    sigma: float

    @property
    def relative(self) -> float:
        return self.sigma / abs(self.value) if self.value else math.inf

    @property
    def ci95(self) -> tuple[float, float]:
        """The 95 % confidence interval (±1.96σ, the fit's normal approximation)."""
        return (self.value - 1.96 * self.sigma, self.value + 1.96 * self.sigma)

    @property
    def relative95(self) -> float:
        """Half-width of the 95 % interval over the value."""
        return 1.96 * self.relative

    def __str__(self) -> str:
        lo, hi = self.ci95
        return f"{fmt_g(self.value)} ± {fmt_g(self.sigma)} (95 %: {fmt_g(lo)}–{fmt_g(hi)})"


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
    #: the room temperature the fit found (None: it was given, not identified)
    room_c: Estimate | None = None
    #: the parameters that ended on the fit's bounds (a sign the model is wrong)
    at_bound: tuple[str, ...] = ()


@dataclass(frozen=True)
class AutotuneResult:
    """The experiment's outcome: per-cushion fits, what would change in the configuration
    (``proposed``, dotted keys, next to ``previous``), and the assumptions it rests on."""

    fits: tuple[CushionFit, ...]
    proposed: dict[str, float]
    previous: dict[str, float]
    room_c: float
    heater_w: float
    #: where the room temperature came from: "given" (``--room-c``, measured by a person),
    #: "measured" (the board's room sensor, protocol 1.1, the mean over the experiment)
    #: or "identified" (fitted with the rest; its interval is ``room``)
    room_source: str
    #: where the heater power came from: "nameplate" (``plant.heater_w``, assumed) or
    #: "measured" (``--heater-w``)
    heater_source: str
    plate_heat_capacity_j_per_k: float
    specific_heat_j_per_kg_k: float
    coupling_w_per_k: float
    closed_loop_tau_s: float
    duration_s: float
    warnings: tuple[str, ...] = ()
    #: reasons not to apply the result (empty: usable)
    problems: tuple[str, ...] = ()
    room: Estimate | None = None
    #: how the room was measured, or why the board could not (for the report)
    room_note: str = ""

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
