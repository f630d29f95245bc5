"""The 100-plant grid's "with autotune" and "ready-in" columns (issue 10, part 6).

Why its own module and a results file: ``hydrotherm autotune`` is a 75-minute experiment
per table (simulated at 0.2 s steps, ~25 s of CPU each), so the grid with autotune takes
most of an hour on the shared two-core machine — too long for every ``benchmarks.report``.
It runs behind ``python -m benchmarks.plants --with-autotune`` in two stages, and writes
``benchmarks/results/plants_autotune.json`` with the date and the commit it was computed
on; the report prints that file's figures and says when and where they came from.

* **identify** (the long one): on each grid table (``benchmarks.plants.grid``; per-cushion
  water, the heavier as cushion 0, filled at ``START_C``), the autotune runs with the
  nominal configuration as its belief (``benchmarks.autotune.identify``).  Kept: what it
  identified, whether it refused and why, and the keys it would write.
* **warm**: the control law warms the true table ``START_C`` → 37 °C twice (the
  figures: both cushions; the ready-in: the heavier one),
  with the nominal configuration ("without autotune") and with the tuned one (the kept
  keys applied; "with autotune"), recording the "ready in" estimate
  (``benchmarks.autotune.warm_up``): settle ratio, overshoot and the ready-in error at 10,
  30 and 60 min.  This stage is cheap enough to rerun alone (``--stage warm``) after a
  change of the estimate, reusing the identification.

Progress (done/total, elapsed, estimated remaining) goes to stderr.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.plants import PlantCase, grid

#: Where the run's figures are kept (committed: the report prints them).
RESULTS = Path(__file__).parent / "results" / "plants_autotune.json"
#: The cushions are filled with tap water at this temperature.
START_C = 20.0
SETPOINT_C = 37.0
READY_KEYS = ("ready_error_10min", "ready_error_30min", "ready_error_60min")


def truth_config(case: PlantCase, initial_c: float = START_C) -> Any:
    """The simulated table of ``case`` as the benchmarks' truth: ``[true_plant]`` gives
    each cushion its own water, the heavier (slower) one as cushion 0, and ``[plant]`` is
    cushion 0's physics — ``warm_up`` sizes the run by its physical minimum (so both
    cushions settle within it) and judges the ready-in estimate on it."""
    from hydrotherm.config import from_mapping

    heavy, light = max(case.water_kg), min(case.water_kg)
    return from_mapping({
        "plant": {"water_kg": heavy, "heater_w": case.heater_w,
                  "plate_to_water_w_per_k": case.plate_to_water_w_per_k,
                  "loss_to_room_w_per_k": case.loss_to_room_w_per_k, "room_c": case.room_c,
                  "initial_water_c": initial_c},
        "sensor": {"lag_s": case.lag_s},
        "true_plant": {"water_kg": [heavy, light], "lag_s": case.lag_s},
    })


def believed_config() -> Any:
    """The nominal configuration the controller starts with (heat on)."""
    from hydrotherm.config import Config

    cfg = Config()
    return replace(cfg, control=replace(cfg.control, heat_on=[True, True]))


def tuned_config(believed: Any, ident: dict[str, Any]) -> Any | None:
    """``believed`` with the identification's keys applied (None when it refused)."""
    from dataclasses import asdict

    from hydrotherm.config import ConfigError, from_mapping

    if not ident.get("ok") or ident.get("problems") or not ident.get("proposed"):
        return None
    data = asdict(believed)
    for key, value in ident["proposed"].items():
        sec, name = key.split(".")
        data[sec][name] = value
    try:
        return from_mapping(data)
    except ConfigError:
        return None


def _identify(k: int) -> tuple[int, dict[str, Any]]:
    from benchmarks.autotune import identify

    ident, _ = identify(truth_config(grid()[k]), believed_config())
    return k, ident


def _warm(job: tuple[int, dict[str, Any] | None, tuple[str, ...]]
          ) -> tuple[int, dict[str, Any]]:
    from benchmarks.autotune import targets_met, warm_up

    k, ident, which = job
    truth = truth_config(grid()[k])
    believed = believed_config()
    out: dict[str, Any] = {}
    if "untuned" in which:
        out["untuned"] = warm_up(truth, believed, SETPOINT_C)
    if "tuned" in which:
        tuned = tuned_config(believed, ident) if ident is not None else None
        out["tuned"] = warm_up(truth, tuned, SETPOINT_C) if tuned is not None else None
        out["targets_met"] = targets_met(out["tuned"])
    return k, out


def _pool_map(fn: Any, work: list[Any], jobs: int, label: str) -> list[Any]:
    """``fn`` over ``work`` on ``jobs`` processes, printing progress to stderr."""
    t0 = time.perf_counter()
    done: list[Any] = []

    def tick() -> None:
        el = time.perf_counter() - t0
        left = el / len(done) * (len(work) - len(done)) if done else 0.0
        print(f"[{label}] {len(done)}/{len(work)} done, {el:.0f} s elapsed, "
              f"~{left:.0f} s left", file=sys.stderr, flush=True)

    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for r in pool.imap_unordered(fn, work):
                done.append(r)
                tick()
    else:
        for w in work:
            done.append(fn(w))
            tick()
    return done


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, cwd=Path(__file__).parent, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10,
                               cwd=Path(__file__).parent, check=False)
        return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run(n_plants: int = 100, jobs: int = 2, stage: str = "all",
        path: Path = RESULTS, which: tuple[str, ...] = ("untuned", "tuned")
        ) -> dict[str, Any]:
    """Run the stage(s) on the first ``n_plants`` tables and write ``path``; ``stage``
    ``warm`` reuses the identification already in ``path`` (and, for the warm-ups not
    in ``which``, the figures already there)."""
    cases = grid()[:n_plants]
    old: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    old_plants = {p["case"]["name"]: p for p in old.get("plants", [])}
    stamp = {"computed": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
             "commit": _commit()}
    per = [{"case": {"name": c.name}, "autotune": None, "untuned": None, "tuned": None,
            "targets_met": False} for c in cases]
    if stage in ("all", "identify"):
        for k, ident in _pool_map(_identify, list(range(len(cases))), jobs, "identify"):
            per[k]["autotune"] = ident
        identified = stamp
    else:
        for k, c in enumerate(cases):
            prev = old_plants.get(c.name, {})
            per[k]["autotune"] = prev.get("autotune")
            for key in ("untuned", "tuned", "targets_met"):
                per[k][key] = prev.get(key, per[k][key])
        identified = old.get("identified", old.get("stamp"))
    if stage in ("all", "warm"):
        work = [(k, per[k]["autotune"], which) for k in range(len(cases))]
        for k, out in _pool_map(_warm, work, jobs, "warm"):
            per[k].update(out)
    res = {"identified": identified, "warmed": stamp if stage != "identify" else
           old.get("warmed"), "plants": per, "summary": summarise(per)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=str))
    return res


def _stats(xs: list[float]) -> dict[str, Any]:
    xs = sorted(xs)
    if not xs:
        return {"n": 0, "median": None, "max": None}
    return {"n": len(xs), "median": xs[len(xs) // 2], "max": xs[-1]}


def summarise(per: list[dict[str, Any]]) -> dict[str, Any]:
    ids = [p["autotune"] for p in per if p["autotune"] is not None]
    out: dict[str, Any] = {
        "plants": len(per), "identified": len(ids),
        "aborted": sum(1 for a in ids if a.get("error")),
        "refused": sum(1 for a in ids if not a.get("error") and a.get("problems")),
        "abort_reasons": sorted({a["error"] for a in ids if a.get("error")})[:5],
        "refuse_reasons": sorted({a["problems"][0] for a in ids
                                  if not a.get("error") and a.get("problems")})[:5],
        "targets_met": sum(1 for p in per if p.get("targets_met")),
    }
    for which in ("untuned", "tuned"):
        rows = [p[which] for p in per if p.get(which)]
        s: dict[str, Any] = {
            "runs": len(rows),
            "settle_ratio": _stats([r["settle_ratio"] for r in rows
                                    if r["settle_ratio"] is not None]),
            "overshoot_c": _stats([r["overshoot_c"] for r in rows]),
        }
        for key in READY_KEYS:
            errs = [r[key] for r in rows if r.get(key) is not None]
            s[key] = {**_stats([abs(e) for e in errs]),
                      "within_10pct": sum(1 for e in errs if abs(e) <= 0.10),
                      "worst": [f"{p['case']['name']}: {p[which][key] * 100:+.1f} %"
                                for p in sorted((p for p in per if p.get(which)
                                                 and p[which].get(key) is not None),
                                                key=lambda p: -abs(p[which][key]))
                                if abs(p[which][key]) > 0.10][:5]}
        out[which] = s
    return out


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def table_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows for the report, with the date and commit of the run."""
    s = res["summary"]
    n = s["plants"]
    idt, wrm = res.get("identified") or {}, res.get("warmed") or {}
    src = (f"(autotune {idt.get('computed', '?')} at {idt.get('commit', '?')}; warm-ups "
           f"{wrm.get('computed', '?')} at {wrm.get('commit', '?')})")
    rows = [(f"{n} plants, ours with autotune: ran / aborted / refused / targets met "
             f"{src}", f"{s['identified']} / {s['aborted']} / {s['refused']} / "
                       f"{s['targets_met']}")]
    for which, label in (("untuned", "without"), ("tuned", "with")):
        w = s[which]
        rows.append((f"{n} plants, ours {label} autotune: settle ratio median, max / "
                     "overshoot max", f"{_f(w['settle_ratio']['median'], '.3f')}, "
                                      f"{_f(w['settle_ratio']['max'], '.3f')} / "
                                      f"{_f(w['overshoot_c']['max'], '.3f')} °C"))
        parts = []
        for key in READY_KEYS:
            r = w[key]
            m = key.split("_")[-1]
            parts.append(f"{m}: {r['within_10pct']}/{r['n']} within ±10 %, |err| median "
                         f"{_f(r['median'] and r['median'] * 100, '.1f')} %, max "
                         f"{_f(r['max'] and r['max'] * 100, '.1f')} %")
        rows.append((f"{n} plants, ours {label} autotune: ready-in error", "; ".join(parts)))
    return rows


def saved_rows(path: Path = RESULTS) -> list[tuple[str, str]]:
    """The rows of the saved run, or one row saying there is none."""
    if not path.exists():
        return [("plants with autotune / ready-in", "not computed (python -m "
                 "benchmarks.plants --with-autotune)")]
    return table_rows(json.loads(path.read_text()))


def print_details(res: dict[str, Any]) -> None:
    s = res["summary"]
    for r in s["abort_reasons"]:
        print(f"  autotune aborted: {r}")
    for r in s["refuse_reasons"]:
        print(f"  autotune refused: {r}")
    for which in ("untuned", "tuned"):
        for key in READY_KEYS:
            for line in s[which][key]["worst"]:
                print(f"  ready-in beyond ±10 % ({which}, {key}) {line}")
