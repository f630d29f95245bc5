"""``hydrotherm scenario run --plot`` labels what happened: faults, client events, commands
and trips, in the dashboard's words (cushion names, trip titles with the code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim.scenario.plot_labels import client_spans, event_kind, event_label, trip_label

SCENARIOS = Path(__file__).resolve().parent.parent / "sim" / "scenarios"


def test_labels_in_words() -> None:
    assert event_label({"do": "fault", "fault": "sensor_open", "cushion": 1}) == \
        "fault: sensor_open (lower body)"
    assert event_label({"do": "client_on"}) == "client lies down"
    assert event_label({"do": "setpoint", "value": 38.5, "cushion": 0}) == \
        "setpoint 38.5 °C (upper body)"
    assert trip_label("over_temperature", 0) == \
        "trip: Water too hot [over_temperature] (upper body)"
    assert [event_kind({"do": d}) for d in ("unplug", "client_off", "reset")] == \
        ["fault", "client", "command"]
    events = [{"do": "client_on", "at_s": 10}, {"do": "client_off", "at_s": 40},
              {"do": "client_on", "at_s": 90}]
    assert client_spans(events, 100.0) == [(10.0, 40.0), (90.0, 100.0)]


def test_the_plot_carries_the_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    matplotlib = pytest.importorskip("matplotlib", reason="the plot needs the optional "
                                     "matplotlib (pip install -e '.[bench]')")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from sim.scenario.parse import load_scenario
    from sim.scenario.report import plot_result
    from sim.scenario.run import run_scenario

    seen: list[str] = []
    real = Figure.savefig

    def record(self: Any, *a: Any, **k: Any) -> Any:
        seen.extend(t.get_text() for ax in self.axes for t in ax.texts)
        seen.extend(t.get_text() for ax in self.axes if ax.get_legend()
                    for t in ax.get_legend().get_texts())
        return real(self, *a, **k)
    monkeypatch.setattr(Figure, "savefig", record)
    res = run_scenario(load_scenario(str(SCENARIOS / "over_temperature.toml")), None)
    out = tmp_path / "plot.png"
    assert plot_result(res, str(out))
    assert out.stat().st_size > 10_000
    assert "fault: sensor_drift (upper body)" in seen, seen
    assert any(s.startswith("trip: Water too hot [over_temperature]") for s in seen), seen
    assert "upper body water (true)" in seen and "lower body setpoint" in seen, seen


def test_schedule_labels_say_early_on_time_late_or_never() -> None:
    from sim.scenario.plot_labels import ready_label, schedule_label

    rec = {"cushion": 1, "ready_at": "2026-12-07T09:00", "setpoint_c": 36.0,
           "ready_at_s": 12600.0, "ready_s": 12295.0, "late_s": 0.0}
    assert schedule_label(rec) == "ready by 09:00, 36.0 °C (lower body)"
    assert ready_label(rec) == "ready (lower body), 5 min early"
    assert ready_label({**rec, "ready_s": 12630.0}) == "ready (lower body), on time"
    assert ready_label({**rec, "ready_s": 12600.0 + 4000, "cushion": 0}) == \
        "ready (upper body), 1 h 07 min LATE"
    assert ready_label({**rec, "ready_s": None}) == "NOT ready (lower body)"


def test_the_plot_marks_the_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    matplotlib = pytest.importorskip("matplotlib", reason="the plot needs the optional "
                                     "matplotlib (pip install -e '.[bench]')")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from sim.scenario.parse import load_scenario
    from sim.scenario.plot_labels import ready_label
    from sim.scenario.report import plot_result
    from sim.scenario.run import run_scenario

    seen: list[str] = []
    vlines: list[float] = []
    stars: list[tuple[float, float]] = []
    real = Figure.savefig

    def record(self: Any, *a: Any, **k: Any) -> Any:
        ax = self.axes[0]
        seen.extend(t.get_text() for t in ax.texts)
        seen.extend(t.get_text() for t in ax.get_legend().get_texts())
        for line in ax.get_lines():
            xs = list(line.get_xdata())
            if line.get_linestyle() == "--" and len(xs) == 2 and xs[0] == xs[1]:
                vlines.append(float(xs[0]))
            if line.get_marker() == "*":
                stars.append((float(xs[0]), float(line.get_ydata()[0])))
        return real(self, *a, **k)
    monkeypatch.setattr(Figure, "savefig", record)
    res = run_scenario(load_scenario(str(SCENARIOS / "schedule_uneven.toml")), None)
    recs = [r.as_dict() for r in res.schedule]
    assert len(recs) == 2 and all(r["ready_s"] is not None for r in recs), recs
    assert plot_result(res, str(tmp_path / "plot.png"))
    assert "ready by 08:30, 38.0 °C (upper body)" in seen, seen
    assert "ready by 09:00, 36.0 °C (lower body)" in seen, seen
    assert "scheduled ready time" in seen, seen
    for r in recs:
        assert r["ready_at_s"] / 60.0 in vlines, (r, vlines)
        assert (r["ready_s"] / 60.0, r["setpoint_c"]) in stars, (r, stars)
        assert seen.count(ready_label(r)) == 2, (ready_label(r), seen)  # label and legend
