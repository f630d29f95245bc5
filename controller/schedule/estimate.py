"""How long a cushion takes to warm up: the interface the schedule stands on, the
estimate from the controller's model, and the per-table correction learned from each
morning.

``WarmupEstimator.predict_warmup_s(cushion, start_c, target_c, room_c)`` is all the
planner asks.  Any estimator that answers it can be plugged in (the adaptive estimator of
issue 10 part 5 is meant to: it learns the heat capacity and the loss online and from
autotune); until then ``ModelWarmup`` answers from the controller's own plant model
(``PlantConfig``, the same coefficients as ``controller/control.py``) and
``LearnedWarmup`` scales it by what this table did on earlier mornings.

A scalar ratio cannot hold a table whose loss differs from the model's: the cushion with
6 W/K instead of 3.5 slows down more and more as it warms (×1.15 of the model at 16 °C,
×1.7 at 36 °C in a 12 °C room), so a ratio measured early in the morning makes it late.
So each morning also teaches the table's own full-power rate law, ``dT/dt = a − b·(T −
T_room)`` (``a = P/C``, ``b = UA/C``), as the controller's warm-up estimator
(``controller/warmup.py``) learnt it over the whole warm-up, against the measured room
(``controller/room.py``); the next mornings' base estimate is the model's two-node warm-up
with that heater-to-capacity and loss-to-capacity (``LearnedWarmup.learn_rates``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from hydrotherm.config import CUSHIONS, PlantConfig

#: "ready" is within this of the setpoint (the scenario's and the control figures' band)
READY_BAND_C = 0.2
#: before any morning is learned: the relative error a prediction may have (an unknown
#: table may be 15-35 kg with a 240-360 W heater: up to ~1.7x the model's time).  Wide on
#: purpose: the planner starts that much early, measures the rise within ~20 min and
#: pauses, which costs a few Wh of extra loss instead of a late first morning
PRIOR_SPREAD = 0.6
#: learning rate of the ratio and of the spread (the newest morning counts this much)
LEARN_RATE = 0.5
RATIO_BOUNDS = (0.4, 3.0)
#: what a learnt rate law may be (a: K/s, b: 1/s): far beyond any plausible table
#: (360 W into 15 kg is 0.006 K/s; 6 W/K out of 15 kg is 1e-4 /s)
RATE_BOUNDS = (0.05, 0.01)
#: a morning teaches the rate law only if its full-power warm-up spanned this much and the
#: warm-up estimator had this many observations (30 s each)
RATES_MIN_SPAN_C = 8.0
RATES_MIN_SAMPLES = 40


class WarmupEstimator(Protocol):
    def predict_warmup_s(self, cushion: int, start_c: float, target_c: float,
                         room_c: float) -> float:
        """Seconds at full power from ``start_c`` (water and heater plate at rest) until
        the water is within ``READY_BAND_C`` of ``target_c`` in a room at ``room_c``;
        0 when it is already there; ``math.inf`` when the heater cannot get there."""
        ...


class ModelWarmup:
    """The controller's two-node model (plate and water, loss to the room) at full power,
    integrated in ``step_s`` steps: exact for the plate's exchange, explicit for the rest
    (the water moves under 0.05 °C a step)."""

    def __init__(self, plant: PlantConfig, step_s: float = 30.0) -> None:
        self.plant = plant
        self.c_w = plant.water_kg * plant.water_specific_heat_j_per_kg_k
        self.c_p = plant.plate_heat_capacity_j_per_k
        self.h = plant.plate_to_water_w_per_k
        self.ua = plant.loss_to_room_w_per_k
        self.p = plant.heater_w
        self.step_s = step_s

    def with_rates(self, heat_rate: float, loss_rate: float) -> ModelWarmup:
        """This model with the heater and loss that give ``dT/dt = heat_rate −
        loss_rate·(T − T_room)`` at full power (the capacities and the plate kept)."""
        c = self.c_w + self.c_p
        return ModelWarmup(replace(self.plant, heater_w=heat_rate * c,
                                   loss_to_room_w_per_k=loss_rate * c), self.step_s)

    def full_power_slope(self, water_c: float, room_c: float) -> float:
        """°C/s of the water once the plate runs steadily ahead of it (both warm together)."""
        return (self.p - self.ua * (water_c - room_c)) / (self.c_w + self.c_p)

    def predict_warmup_s(self, cushion: int, start_c: float, target_c: float,
                         room_c: float) -> float:
        goal = target_c - READY_BAND_C
        if start_c >= goal:
            return 0.0
        if self.p <= 0 or (self.ua > 0 and room_c + self.p / self.ua <= goal):
            return math.inf
        dt = self.step_s
        a = math.exp(-dt * self.h / self.c_p)
        w = p = start_c
        t = 0.0
        while w < goal:
            if t > 7 * 86400:
                return math.inf
            target_plate = w + self.p / self.h
            p_next = target_plate + (p - target_plate) * a
            # heat into the water over the step: what the plate gave up and the heater put in
            q_plate = self.p * dt - self.c_p * (p_next - p)
            w_next = w + (q_plate - self.ua * (w - room_c) * dt) / self.c_w
            if w_next >= goal:
                return t + dt * (goal - w) / (w_next - w)
            w, p, t = w_next, p_next, t + dt
        return t


@dataclass
class CushionLearning:
    """What the mornings taught about one cushion."""

    ratio: float = 1.0  # actual warm-up / the base estimate
    spread: float = PRIOR_SPREAD  # typical relative error of a prediction
    mornings: int = 0
    last: dict[str, Any] = field(default_factory=dict)  # the latest morning, for people
    #: the table's full-power rate law learnt on earlier mornings: ``a = P/C`` (K/s) and
    #: ``b = UA/C`` (1/s); None until a whole warm-up taught them
    heat_rate: float | None = None
    loss_rate: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ratio": round(self.ratio, 4), "spread": round(self.spread, 4),
                "mornings": self.mornings, "last": self.last,
                "heat_rate_k_per_s": self.heat_rate, "loss_rate_per_s": self.loss_rate}

    @classmethod
    def from_dict(cls, d: Any) -> CushionLearning:
        if not isinstance(d, dict):
            return cls()
        out = cls()
        r, s, n = d.get("ratio"), d.get("spread"), d.get("mornings")
        if isinstance(r, int | float) and RATIO_BOUNDS[0] <= r <= RATIO_BOUNDS[1]:
            out.ratio = float(r)
        if isinstance(s, int | float) and 0.0 <= s <= 1.0:
            out.spread = float(s)
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            out.mornings = n
        if isinstance(d.get("last"), dict):
            out.last = d["last"]
        a, b = d.get("heat_rate_k_per_s"), d.get("loss_rate_per_s")
        if (isinstance(a, int | float) and isinstance(b, int | float)
                and not isinstance(a, bool) and not isinstance(b, bool)
                and 0.0 < a < RATE_BOUNDS[0] and 0.0 <= b < RATE_BOUNDS[1]):
            out.heat_rate, out.loss_rate = float(a), float(b)
        return out


class LearnedWarmup:
    """``base`` scaled per cushion by the ratio this table showed on earlier mornings.

    After each morning the planner reports the base prediction it heated on and the time
    the water actually took (``learn``); the ratio moves halfway to the observed one and
    ``spread`` (the typical relative miss, which sets the planner's safety margin) to the
    size of this morning's miss.  An unknown table starts with ratio 1 and a wide spread,
    so its first morning starts early and the planner's pause corrects it."""

    def __init__(self, base: WarmupEstimator,
                 learned: list[CushionLearning] | None = None) -> None:
        self.base = base
        self.cushions = learned or [CushionLearning() for _ in range(CUSHIONS)]
        self._tables: dict[tuple[float, float], ModelWarmup] = {}

    def base_warmup_s(self, cushion: int, start_c: float, target_c: float,
                      room_c: float) -> float:
        """The model's warm-up, or, once a morning taught this table's rate law and the
        base is the model, the model's plate and capacities with the learnt heater and
        loss (``learn_rates``)."""
        c = self.cushions[cushion]
        if c.heat_rate is not None and c.loss_rate is not None \
                and isinstance(self.base, ModelWarmup):
            key = (c.heat_rate, c.loss_rate)
            table = self._tables.get(key)
            if table is None:
                table = self.base.with_rates(*key)
                self._tables = {key: table}
            return table.predict_warmup_s(cushion, start_c, target_c, room_c)
        return self.base.predict_warmup_s(cushion, start_c, target_c, room_c)

    def learn_rates(self, cushion: int, heat_rate: float, loss_rate: float) -> bool:
        """One morning's full-power rate law (``a = P/C`` K/s, ``b = UA/C`` 1/s, from
        the controller's warm-up estimator against the measured room).  The base estimate
        changes with it, so the ratio learnt against the old base starts again at 1 (the
        spread, the typical miss, is kept).  False when the values are no table's."""
        if not (0.0 < heat_rate < RATE_BOUNDS[0] and 0.0 <= loss_rate < RATE_BOUNDS[1]):
            return False
        c = self.cushions[cushion]
        if c.heat_rate is None or c.loss_rate is None:
            c.heat_rate, c.loss_rate = heat_rate, loss_rate
        else:
            c.heat_rate += LEARN_RATE * (heat_rate - c.heat_rate)
            c.loss_rate += LEARN_RATE * (loss_rate - c.loss_rate)
        c.ratio = 1.0
        return True

    def predict_warmup_s(self, cushion: int, start_c: float, target_c: float,
                         room_c: float) -> float:
        return self.cushions[cushion].ratio * self.base_warmup_s(cushion, start_c, target_c,
                                                                 room_c)

    def spread(self, cushion: int) -> float:
        return self.cushions[cushion].spread

    def learn(self, cushion: int, base_s: float, actual_s: float,
              detail: dict[str, Any] | None = None) -> CushionLearning:
        """One morning: the base estimate was ``base_s``, the water took ``actual_s``."""
        c = self.cushions[cushion]
        if base_s < 300 or not math.isfinite(base_s) or actual_s <= 0:
            return c  # too short a warm-up to say anything about the table
        observed = min(RATIO_BOUNDS[1], max(RATIO_BOUNDS[0], actual_s / base_s))
        miss = abs(observed / c.ratio - 1.0)
        c.ratio = c.ratio + LEARN_RATE * (observed - c.ratio)
        c.spread = max(0.03, min(1.0, c.spread + LEARN_RATE * (miss - c.spread)))
        c.mornings += 1
        c.last = {"base_s": round(base_s), "actual_s": round(actual_s),
                  "observed_ratio": round(observed, 4), **(detail or {})}
        return c

    def as_dict(self) -> dict[str, Any]:
        return {"cushions": [c.as_dict() for c in self.cushions]}

    def load(self, d: Any) -> None:
        if isinstance(d, dict) and isinstance(d.get("cushions"), list):
            for i, x in enumerate(d["cushions"][:CUSHIONS]):
                self.cushions[i] = CushionLearning.from_dict(x)
