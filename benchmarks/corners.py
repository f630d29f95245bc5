"""The corner plants of the plausible range (``shared/reference.md``, "Real tables differ"):
the tables on which the autotune and the ready-in estimate are checked.

Each is a true plant that differs from the controller's configured (nominal) model; the
simulator takes it as its own ``Config`` (both cushions alike — per-cushion differences are
the scenario files' ``[true_plant]``).  The corners are the extremes that matter: a light
cushion on a strong heater rises fastest (``rise_too_fast``, the plate's carry-over), a
heavy cushion on a weak heater with a high loss in a cold room rises slowest (``no_rise``,
a long warm-up, the most curvature in the ready-in).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hydrotherm.config import Config


@dataclass(frozen=True)
class Corner:
    name: str
    water_kg: float
    heater_w: float
    plate_to_water_w_per_k: float
    loss_to_room_w_per_k: float
    room_c: float
    lag_s: float
    initial_c: float = 20.0

    def truth(self, base: Config | None = None) -> Config:
        """The simulated table: ``base`` (default: the nominal configuration) with this
        corner's physics."""
        base = base or Config()
        plant = replace(base.plant, water_kg=self.water_kg, heater_w=self.heater_w,
                        plate_to_water_w_per_k=self.plate_to_water_w_per_k,
                        loss_to_room_w_per_k=self.loss_to_room_w_per_k, room_c=self.room_c,
                        initial_water_c=[self.initial_c, self.initial_c])
        return replace(base, plant=plant, sensor=replace(base.sensor, lag_s=self.lag_s))


CORNERS: tuple[Corner, ...] = (
    Corner("nominal", 25.0, 300.0, 30.0, 3.5, 21.0, 10.0),
    Corner("light/strong, warm room", 15.0, 360.0, 39.0, 2.0, 30.0, 5.0, 24.0),
    Corner("light/strong, cold room", 15.0, 360.0, 21.0, 6.0, 12.0, 20.0, 16.0),
    Corner("heavy/weak, cold room", 35.0, 240.0, 21.0, 6.0, 12.0, 20.0, 16.0),
    Corner("heavy/weak, warm room", 35.0, 240.0, 39.0, 2.0, 30.0, 5.0, 24.0),
)


def corner(name: str) -> Corner:
    for c in CORNERS:
        if c.name == name:
            return c
    raise KeyError(name)
