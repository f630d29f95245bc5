"""The human-readable report: what was found, how well, on what assumptions, what changes.
"""

from __future__ import annotations

from .fmt import fmt_g, hms
from .results import AutotuneResult, Estimate


def _ci(e: Estimate, digits: int = 2) -> str:
    lo, hi = e.ci95
    return f"{e.value:8.{digits}f} ± {fmt_g(e.sigma)} (95 %: {lo:.{digits}f}–{hi:.{digits}f})"


def format_report(result: AutotuneResult) -> str:
    """What was found, how well (1σ and the 95 % interval of every identified number), on
    what assumptions (the room and the heater power: where each came from), and what
    changes — or why nothing may be written."""
    lines = [f"Autotune: {len(result.fits)} cushion(s) identified in "
             f"{hms(result.duration_s)} of experiment."]
    for f in result.fits:
        lines += [
            f"cushion {f.cushion}: water {f.start_c:.2f} -> {f.peak_c:.2f} °C, heated "
            f"{f.heated_s / 60:.0f} min",
            f"  water           {_ci(f.water_kg)} kg "
            f"(C_w {f.water_capacity_j_per_k.value / 1000:.1f} kJ/K)",
            f"  loss to room    {_ci(f.loss_to_room_w_per_k)} W/K",
            f"  plate time const{_ci(f.plate_time_constant_s, 1)} s (plate-to-water "
            f"{f.plate_to_water_w_per_k.value:.1f} W/K)",
        ]
        if f.room_c is not None:
            lines.append(f"  room            {_ci(f.room_c)} °C (identified)")
        lines += [
            f"  fit             R² {f.r2:.6f}, residual rms {f.residual_rms_c * 1000:.1f} mK, "
            f"max {f.residual_max_c * 1000:.1f} mK, {f.points} points, "
            f"{f.iterations} evaluations",
            f"  rates           hold {f.hold_rate_c_per_min:+.4f} °C/min; heating "
            f"{f.heat_rate_c_per_min:+.4f} °C/min at {f.heat_rate_at_c:.2f} °C; cooling "
            f"{f.cool_rate_c_per_min:+.4f} °C/min at {f.cool_rate_at_c:.2f} °C",
        ]
    note = f"; {result.room_note}" if result.room_note else ""
    if result.room_source == "identified" and result.room is not None:
        room = (f"room {result.room_c:.1f} °C identified from the record "
                f"(95 %: {result.room.ci95[0]:.1f}–{result.room.ci95[1]:.1f} °C{note})")
    elif result.room_source == "measured":
        room = (f"room {result.room_c:.1f} °C measured by the board's room sensor "
                f"({result.room_note or 'over the experiment'}), not identified")
    else:
        room = f"room {result.room_c:g} °C given (--room-c), not identified"
    if result.heater_source == "measured":
        heater = f"heater {result.heater_w:g} W measured (--heater-w)"
    else:
        heater = (f"heater {result.heater_w:g} W from the nameplate (assumed, not identified: "
                  "temperatures alone cannot tell a stronger heater from less water; a "
                  "power wrong by a factor scales the water, loss and plate-to-water values "
                  "by that factor — the tuned law, which uses them only in ratio to the "
                  "power, is unaffected; pass --heater-w with a measured power to fix it)")
    lines.append(f"Room: {room}.")
    lines.append(f"Heater: {heater}.")
    lines.append(f"Assumed (not identified): plate heat capacity "
                 f"{result.plate_heat_capacity_j_per_k:g} J/K, coupling "
                 f"{result.coupling_w_per_k:g} W/K, specific heat "
                 f"{result.specific_heat_j_per_kg_k:g} J/(kg·K).")
    lines.append(f"Tuning: closed-loop time constant {result.closed_loop_tau_s:.0f} s.")
    lines.append("Configuration:")
    for key, new in result.proposed.items():
        old = result.previous.get(key)
        lines.append(f"  {key:32s} {fmt_g(old) if old is not None else '?':>9} -> {fmt_g(new)}")
    for w in result.warnings:
        lines.append(f"warning: {w}")
    for pr in result.problems:
        lines.append(f"NOT USABLE: {pr}")
    return "\n".join(lines)
