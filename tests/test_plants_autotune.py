"""``benchmarks.plants_autotune``: the grid's "with autotune" and "ready-in" columns.

The long run itself is a benchmark (``python -m benchmarks.plants --with-autotune``); these
check the pieces it stands on: each grid table becomes the simulated truth it names, an
identification is applied only when the autotune accepted it, and the saved figures are
summarised and printed with where they came from.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from benchmarks.plants import grid
from benchmarks.plants_autotune import (
    believed_config,
    saved_rows,
    summarise,
    table_rows,
    truth_config,
    tuned_config,
)
from sim.plant import Plant


def test_a_grid_table_becomes_its_truth() -> None:
    case = next(c for c in grid() if c.water_kg[0] != c.water_kg[1])  # an inner table
    cfg = truth_config(case)
    assert cfg.plant.water_kg == max(case.water_kg)  # the slower cushion is cushion 0
    assert cfg.plant.room_c == case.room_c and cfg.sensor.lag_s == case.lag_s
    plant = Plant(cfg.plant, cfg.sensor, random.Random(1), cfg.true_plant)
    assert [p.water_kg for p in plant.cushions] == sorted(case.water_kg, reverse=True)
    assert {p.heater_w for p in plant.cushions} == {case.heater_w}
    assert {p.loss_to_room_w_per_k for p in plant.cushions} == {case.loss_to_room_w_per_k}


def test_an_identification_is_applied_only_when_accepted() -> None:
    believed = believed_config()
    proposed = {"plant.water_kg": 18.8, "plant.loss_to_room_w_per_k": 5.0,
                "plant.plate_to_water_w_per_k": 25.0, "plant.heater_w": 300.0,
                "control.room_estimate_c": 12.0, "control.kp_w_per_k": 460.0,
                "control.ti_s": 1210.0}
    tuned = tuned_config(believed, {"ok": True, "problems": [], "proposed": proposed})
    assert tuned is not None
    assert tuned.plant.water_kg == 18.8 and tuned.control.room_estimate_c == 12.0
    assert tuned.control.heat_on == believed.control.heat_on
    assert tuned_config(believed, {"ok": False, "problems": ["R² 0.98 < 0.999"],
                                   "proposed": proposed}) is None
    assert tuned_config(believed, {"ok": False, "error": "aborted", "problems": ["x"]}) is None
    # a value no configuration accepts is refused, not written
    bad = {**proposed, "plant.water_kg": -1.0}
    assert tuned_config(believed, {"ok": True, "problems": [], "proposed": bad}) is None


def _figures(e10: float, settle: float = 1.0) -> dict[str, float | None]:
    return {"settle_ratio": settle, "overshoot_c": 0.05, "ready_error_10min": e10,
            "ready_error_30min": e10 / 2, "ready_error_60min": None}


def test_summary_counts_and_rows_name_their_source(tmp_path: Path) -> None:
    per = [
        {"case": {"name": "a"}, "autotune": {"ok": True, "problems": []},
         "untuned": _figures(0.12), "tuned": _figures(0.02), "targets_met": True},
        {"case": {"name": "b"}, "autotune": {"ok": False, "problems": ["R² too low"]},
         "untuned": _figures(-0.05, 1.2), "tuned": None, "targets_met": False},
        {"case": {"name": "c"}, "autotune": {"ok": False, "error": "over_temperature",
                                             "problems": ["over_temperature"]},
         "untuned": _figures(0.08), "tuned": None, "targets_met": False},
    ]
    s = summarise(per)
    assert (s["identified"], s["aborted"], s["refused"], s["targets_met"]) == (3, 1, 1, 1)
    u = s["untuned"]["ready_error_10min"]
    assert (u["n"], u["within_10pct"]) == (3, 2)
    assert u["max"] == 0.12 and u["worst"] == ["a: +12.0 %"]
    assert s["untuned"]["settle_ratio"]["max"] == 1.2
    assert s["tuned"]["runs"] == 1 and s["untuned"]["ready_error_60min"]["n"] == 0
    res = {"identified": {"computed": "2026-11-30 06:00 UTC", "commit": "abc1234"},
           "warmed": {"computed": "2026-11-30 07:00 UTC", "commit": "def5678"},
           "plants": per, "summary": s}
    rows = dict(table_rows(res))
    head = next(k for k in rows if "ran / aborted / refused" in k)
    assert "abc1234" in head and "def5678" in head and rows[head] == "3 / 1 / 1 / 1"
    path = tmp_path / "r.json"
    assert "not computed" in saved_rows(path)[0][1]
    path.write_text(json.dumps(res))
    assert saved_rows(path) == table_rows(res)
