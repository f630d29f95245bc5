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
         "control.kp_w_per_k", "control.ti_s")


def _get(cfg: Config, key: str) -> Any:
    sec, name = key.split(".")
    return getattr(getattr(cfg, sec), name)


def combine_fits(fits: list[CushionFit], cfg: Config, room_c: float,
                 settings: AutotuneSettings, duration_s: float) -> AutotuneResult:
    """Combine the cushions (the configuration has one plant for both) and tune."""
    warnings = [w for f in fits for w in f.warnings]
    problems: list[str] = []

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
        if f.r2 < 0.99:
            problems.append(f"cushion {f.cushion}: the fit is unusable (R² {f.r2:.4f})")
        if f.water_kg.relative > 0.2:
            problems.append(f"cushion {f.cushion}: the water capacity is undetermined "
                            f"({f.water_kg})")
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
        "control.kp_w_per_k": float(round(kp)),
        "control.ti_s": float(round(ti / 10.0) * 10.0),
    }
    previous = {k: float(_get(cfg, k)) for k in _KEYS}
    try:
        _checked(cfg, proposed)
    except ConfigError as exc:
        problems.append(f"the identified values are outside the configuration's ranges: {exc}")
    return AutotuneResult(
        fits=tuple(fits), proposed=proposed, previous=previous, room_c=room_c,
        heater_w=plant.heater_w, plate_heat_capacity_j_per_k=plant.plate_heat_capacity_j_per_k,
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


