"""From the fits to a configuration: combine the cushions, derive the law's gains, range-
check the changes with the configuration's own validation, and write the file safely
(a backup, then an atomic replace).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydrotherm.config import Config, ConfigError, from_mapping, to_toml

from .fmt import fmt_g
from .results import AutotuneError, AutotuneResult, AutotuneSettings, CushionFit, Estimate

_KEYS = ("plant.water_kg", "plant.loss_to_room_w_per_k", "plant.plate_to_water_w_per_k",
         "plant.heater_w", "control.room_estimate_c", "control.kp_w_per_k", "control.ti_s")


def _get(cfg: Config, key: str) -> Any:
    sec, name = key.split(".")
    return getattr(getattr(cfg, sec), name)


def _combined_room(fits: list[CushionFit]) -> Estimate | None:
    """The identified room of the cushions (one room for both): the mean, with the larger
    of each cushion's uncertainty and half their difference — not the inverse-variance
    shrinkage, because the two records share their systematic errors (the sensor lag,
    the coupling, the plate capacity are assumed alike for both)."""
    rooms = [f.room_c for f in fits if f.room_c is not None]
    if not rooms:
        return None
    vals = [r.value for r in rooms]
    sigma = max(max(r.sigma for r in rooms), (max(vals) - min(vals)) / 2.0)
    return Estimate(sum(vals) / len(vals), sigma)


def _judge(f: CushionFit, s: AutotuneSettings) -> list[str]:
    """Why one cushion's fit must not be written: a poor fit, an interval too wide, a
    value no cushion has (``AutotuneSettings``' ranges), a parameter on the fit's bound."""
    out = []
    c = f.cushion
    if f.r2 < s.min_r2 or f.residual_rms_c > s.max_rms_c:
        out.append(f"cushion {c}: the model does not fit the record (R² {f.r2:.5f}, "
                   f"residual rms {f.residual_rms_c:.3f} °C; needed R² >= {s.min_r2:g} and "
                   f"rms <= {s.max_rms_c:g} °C)")
    for label, est, rng, unit in (
            ("water", f.water_kg, s.water_kg_range, "kg"),
            ("loss to the room", f.loss_to_room_w_per_k, s.loss_w_per_k_range, "W/K"),
            ("plate-to-water conductance", f.plate_to_water_w_per_k,
             s.plate_to_water_w_per_k_range, "W/K")):
        if not rng[0] <= est.value <= rng[1]:
            out.append(f"cushion {c}: the {label} came out {fmt_g(est.value)} {unit}, outside "
                       f"what a cushion can be ({fmt_g(rng[0])}–{fmt_g(rng[1])} {unit})")
    for label, est, lim in (("water", f.water_kg, s.max_ci95_water),
                            ("loss to the room", f.loss_to_room_w_per_k, s.max_ci95_loss),
                            ("plate time constant", f.plate_time_constant_s, s.max_ci95_plate)):
        if not est.relative95 <= lim:
            out.append(f"cushion {c}: the {label} is undetermined ({est}; the 95 % interval "
                       f"must be within ±{lim * 100:.0f} %)")
    if f.room_c is not None:
        r = f.room_c
        if not s.room_c_range[0] <= r.value <= s.room_c_range[1]:
            out.append(f"cushion {c}: the room came out {r.value:.1f} °C, outside "
                       f"{s.room_c_range[0]:g}–{s.room_c_range[1]:g} °C")
    for name in f.at_bound:
        out.append(f"cushion {c}: the {name} ended on the fit's bound (the model does not "
                   "describe this record)")
    return out


def combine_fits(fits: list[CushionFit], cfg: Config, room_c: float | None,
            settings: AutotuneSettings, duration_s: float, heater_w: float | None = None,
            heater_source: str = "nameplate", *, room_source: str | None = None,
            room_note: str = "") -> AutotuneResult:
    """Combine the cushions (the configuration has one plant for both), judge, and tune.
    ``room_source`` of a known ``room_c``: "given" (default) or "measured" (the board)."""
    warnings = [w for f in fits for w in f.warnings]
    problems: list[str] = []
    heater = cfg.plant.heater_w if heater_w is None else heater_w
    room_est = _combined_room(fits) if room_c is None else None
    if room_est is not None:
        room_used = room_est.value
        if not 1.96 * room_est.sigma <= settings.max_ci95_room_c:
            problems.append(f"the room temperature is undetermined ({room_est} °C): measure "
                            "it and pass it with --room-c")
    else:
        assert room_c is not None
        room_used = room_c

    def mean(get: Callable[[CushionFit], Estimate]) -> float:
        return sum(get(f).value for f in fits) / len(fits)

    kg = mean(lambda f: f.water_kg)
    ua = mean(lambda f: f.loss_to_room_w_per_k)
    h = mean(lambda f: f.plate_to_water_w_per_k)
    if len(fits) == 2:
        for label, get in (("water", lambda f: f.water_kg),
                           ("loss to the room", lambda f: f.loss_to_room_w_per_k),
                           ("plate time constant", lambda f: f.plate_time_constant_s)):
            a, b = get(fits[0]).value, get(fits[1]).value
            if abs(a - b) > 0.15 * max(abs(a), abs(b), 1e-9):
                warnings.append(f"the cushions differ in {label} ({fmt_g(a)} vs {fmt_g(b)}); the "
                                "configuration holds one value for both: the mean is used")
    for f in fits:
        problems += _judge(f, settings)
    plant = cfg.plant
    cw = kg * plant.water_specific_heat_j_per_kg_k
    tau_p = plant.plate_heat_capacity_j_per_k / h if h > 0 else math.inf
    tau_cl = max(settings.closed_loop_tau_s,
                 settings.min_tau_factor * (tau_p + cfg.sensor.lag_s))
    kp = min(settings.kp_max_w_per_k, max(settings.kp_min_w_per_k, cw / tau_cl))
    ti = settings.ti_per_tau * tau_cl
    proposed = {
        "plant.water_kg": round(kg, 2),
        "plant.loss_to_room_w_per_k": round(ua, 2),
        "plant.plate_to_water_w_per_k": round(h, 1),
        "plant.heater_w": round(heater, 1),
        "control.room_estimate_c": round(room_used, 1),
        "control.kp_w_per_k": float(round(kp)),
        "control.ti_s": float(round(ti / 10.0) * 10.0),
    }
    previous = {k: float(_get(cfg, k)) for k in _KEYS}
    try:
        _checked(cfg, proposed)
    except ConfigError as exc:
        problems.append(f"the identified values are outside the configuration's ranges: {exc}")
    return AutotuneResult(
        fits=tuple(fits), proposed=proposed, previous=previous, room_c=room_used,
        heater_w=heater,
        room_source="identified" if room_c is None else (room_source or "given"),
        room_note=room_note,
        heater_source=heater_source, room=room_est,
        plate_heat_capacity_j_per_k=plant.plate_heat_capacity_j_per_k,
        specific_heat_j_per_kg_k=plant.water_specific_heat_j_per_kg_k,
        coupling_w_per_k=plant.coupling_w_per_k, closed_loop_tau_s=tau_cl,
        duration_s=duration_s, warnings=tuple(warnings), problems=tuple(problems))


# --- applying and reporting ------------------------------------------------------------------


def _checked(cfg: Config, changes: dict[str, float]) -> Config:
    """``cfg`` with ``changes`` (dotted keys), checked as a loaded file would be."""
    data = dataclasses.asdict(cfg)
    for key, value in changes.items():
        sec, name = key.split(".")
        if sec not in data or name not in data[sec]:
            raise ConfigError(f"{key}: unknown key")
        data[sec][name] = value
    return from_mapping(data)


def apply_result(cfg: Config, result: AutotuneResult) -> Config:
    """A new configuration: ``cfg`` with the identified plant and the tuned gains
    (``result.proposed``); everything else unchanged.  Raises ``AutotuneError`` when the
    result has problems, ``ConfigError`` if a value is out of range."""
    if result.problems:
        raise AutotuneError("the result is not usable: " + "; ".join(result.problems))
    return _checked(cfg, result.proposed)


def write_config(path: str | os.PathLike[str], cfg: Config) -> Path | None:
    """Write ``cfg`` as TOML (``hydrotherm.config.to_toml``) to ``path``; an existing file
    is first copied to ``path.bak`` (replacing an older backup), and the new file is
    written to a temporary name and renamed, so a crash leaves either the old or the new
    file.  Returns the backup's path (None if there was no file).  Comments of the old
    file survive only in the backup."""
    p = Path(path)
    text = to_toml(cfg)
    from_mapping(tomllib.loads(text))  # never write what could not be loaded back
    backup = None
    if p.exists():
        backup = p.with_name(p.name + ".bak")
        backup.write_bytes(p.read_bytes())
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return backup


