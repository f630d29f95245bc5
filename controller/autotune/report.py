"""The human-readable report: what was found, how well, on what assumptions, what changes.
"""

from __future__ import annotations

from .fmt import fmt_g, hms
from .results import AutotuneResult


def format_report(result: AutotuneResult) -> str:
    """What was found, how well, on what assumptions, and what changes."""
    lines = [f"Autotune: {len(result.fits)} cushion(s) identified in "
             f"{hms(result.duration_s)} of experiment."]
    for f in result.fits:
        lines += [
            f"cushion {f.cushion}: water {f.start_c:.2f} -> {f.peak_c:.2f} °C, heated "
            f"{f.heated_s / 60:.0f} min",
            f"  water           {f.water_kg.value:8.2f} ± {fmt_g(f.water_kg.sigma)} kg "
            f"(C_w {f.water_capacity_j_per_k.value / 1000:.1f} kJ/K)",
            f"  loss to room    {f.loss_to_room_w_per_k.value:8.2f} ± "
            f"{fmt_g(f.loss_to_room_w_per_k.sigma)} W/K",
            f"  plate time const{f.plate_time_constant_s.value:8.1f} ± "
            f"{fmt_g(f.plate_time_constant_s.sigma)} s (plate-to-water "
            f"{f.plate_to_water_w_per_k.value:.1f} W/K)",
            f"  fit             R² {f.r2:.6f}, residual rms {f.residual_rms_c * 1000:.1f} mK, "
            f"max {f.residual_max_c * 1000:.1f} mK, {f.points} points, "
            f"{f.iterations} iterations",
            f"  rates           hold {f.hold_rate_c_per_min:+.4f} °C/min; heating "
            f"{f.heat_rate_c_per_min:+.4f} °C/min at {f.heat_rate_at_c:.2f} °C; cooling "
            f"{f.cool_rate_c_per_min:+.4f} °C/min at {f.cool_rate_at_c:.2f} °C",
        ]
    lines.append(f"Assumed (not identified): heater {result.heater_w:g} W, plate heat capacity "
                 f"{result.plate_heat_capacity_j_per_k:g} J/K, room {result.room_c:g} °C, "
                 f"coupling {result.coupling_w_per_k:g} W/K, specific heat "
                 f"{result.specific_heat_j_per_kg_k:g} J/(kg·K).  A heater power wrong by a "
                 "factor scales the water, loss and plate-to-water values by that factor "
                 "(the tuned law is unaffected); a room wrong by 1 K skews the loss.")
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

