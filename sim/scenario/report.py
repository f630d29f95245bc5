"""The plot and the ``hydrotherm scenario run`` entry point (summary, JSON, exit code).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from controller.heat_state import cushion_words

from .parse import load_scenario
from .plot_labels import (
    client_spans,
    event_kind,
    event_label,
    ready_label,
    schedule_label,
    trip_label,
)
from .result import Result
from .run import run_scenario
from .schema import ScenarioError

# --- plot and CLI -----------------------------------------------------------------------


def plot_result(res: Result, out_path: str) -> bool:
    """Write a PNG of the trace (water, measured, setpoints, trips, the schedule's due and
    ready times; heater power).
    Returns False, after saying why on stderr, when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: it needs matplotlib, which is not installed "
              "(pip install matplotlib); the run itself is unaffected", file=sys.stderr)
        return False
    tr = res.trace
    fig, (ax, axp) = plt.subplots(2, 1, sharex=True, figsize=(11, 6.5),
                                  gridspec_kw={"height_ratios": [3, 1]})
    t_min = [t / 60.0 for t in tr.t_s]
    for i, colour in ((0, "tab:blue"), (1, "tab:orange")):
        name = cushion_words(i)
        ax.plot(t_min, tr.water_c[i], color=colour, label=f"{name} water (true)")
        ax.plot(t_min, [math.nan if v is None else v for v in tr.measured_c[i]], color=colour,
                linestyle=":", label=f"{name} measured")
        ax.plot(t_min, tr.setpoint_c[i], color=colour, linestyle="--", linewidth=0.8,
                label=f"{name} setpoint")
        axp.plot(t_min, tr.power_w[i], color=colour, label=name)
    end_s = tr.t_s[-1] if tr.t_s else res.duration_s
    for k, (a, b) in enumerate(client_spans(res.events, end_s)):
        ax.axvspan(a / 60.0, b / 60.0, color="tab:green", alpha=0.12,
                   label="client on the table" if k == 0 else None)
    top = ax.get_ylim()[1]
    colours = {"fault": "tab:purple", "client": "tab:green", "command": "grey",
               "trip": "red", "schedule": "darkgreen", "late": "red"}
    marks: list[tuple[float, str, str]] = []  # (minutes, label, kind)
    for ev in res.events:
        kind = event_kind(ev)
        x = ev["at_s"] / 60.0
        axp.axvline(x, color=colours[kind], linewidth=0.6)
        if kind != "command":
            ax.axvline(x, color=colours[kind], linewidth=0.8, linestyle="-.")
        marks.append((x, event_label(ev), kind))
    for t in res.trips:
        ax.axvline(t.at_s / 60.0, color="red", linewidth=1.0)
        marks.append((t.at_s / 60.0, trip_label(t.reason, t.cushion), "trip"))
    # the schedule: each due time (a dashed line) and when the water was ready (a star on
    # the setpoint, in the cushion's colour), so earliness and lateness show at a glance
    cushion_colour = ("tab:blue", "tab:orange")
    for k, rec in enumerate(r.as_dict() for r in res.schedule):
        due = rec["ready_at_s"] / 60.0
        ax.axvline(due, color=colours["schedule"], linewidth=0.9, linestyle="--",
                   label="scheduled ready time" if k == 0 else None)
        marks.append((due, schedule_label(rec), "schedule"))
        text = ready_label(rec)
        late = rec["ready_s"] is None or (rec["late_s"] or 0.0) > 60.0
        if rec["ready_s"] is not None:
            c = rec["cushion"] if rec["cushion"] in (0, 1) else 0
            ax.plot([rec["ready_s"] / 60.0], [rec["setpoint_c"]], marker="*", markersize=11,
                    color=cushion_colour[c], markeredgecolor="black", linestyle="none",
                    label=text)
        marks.append(((rec["ready_s"] if rec["ready_s"] is not None else rec["ready_at_s"])
                      / 60.0, text, "late" if late else "schedule"))
    # labels of marks close in time are set side by side rather than on top of each other
    span = max(t_min[-1] if t_min else 1.0, 1e-9)
    prev_x, offset = -math.inf, 0.0
    for x, label, kind in sorted(marks, key=lambda m: m[0]):
        offset = offset + 9.0 if x - prev_x < 0.02 * span else 0.0
        prev_x = x
        ax.annotate(label, (x, top), xytext=(offset + 2, -2), textcoords="offset points",
                    rotation=90, fontsize=7, va="top", ha="left", color=colours[kind],
                    fontweight="bold" if kind in ("trip", "late") else "normal",
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                          "alpha": 0.8})
    ax.set_ylabel("°C")
    ax.set_title(f"{res.name} ({'passed' if res.passed else 'FAILED'})")
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    axp.set_ylabel("heater W")
    axp.set_xlabel("minutes")
    axp.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return True


def main_scenario(argv_path: str, json_out: str | None, plot_out: str | None,
                  progress: Callable[[str], None] | None, board: str | None = None,
                  firmware: str | None = None) -> int:
    """``hydrotherm scenario run FILE.toml [--json OUT] [--plot OUT.png] [--board KIND]
    [--firmware ELF]``.

    Exit code 0: every expectation held; 1: one failed; 2: the file is malformed, or the
    firmware board cannot be built or found (the error, naming the line and key or what
    is missing, goes to stderr, and nothing runs).  ``json_out`` of ``-`` writes the JSON
    to stdout (the summary then goes to stderr).  ``board`` overrides the file's
    ``[board] kind``; ``firmware`` (an ELF) implies the firmware board."""
    try:
        sc = load_scenario(argv_path)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if firmware is not None:
        board = board or "firmware"
        if board != "firmware":
            print("error: --firmware runs the firmware board; it cannot go with --board "
                  f"{board}", file=sys.stderr)
            return 2
    from sim.firmware.build import FirmwareUnavailable

    try:
        res = run_scenario(sc, progress, board=board, firmware=firmware)
    except FirmwareUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary_to = sys.stderr if json_out == "-" else sys.stdout
    for line in res.summary():
        print(line, file=summary_to)
    if json_out is not None:
        text = json.dumps(res.to_json(), indent=2, ensure_ascii=False)
        if json_out == "-":
            print(text)
        else:
            try:
                Path(json_out).write_text(text + "\n", encoding="utf-8")
            except OSError as exc:
                print(f"error: cannot write {json_out}: {exc}", file=sys.stderr)
                return 2
    if plot_out is not None:
        plot_result(res, plot_out)
    return 0 if res.passed else 1
