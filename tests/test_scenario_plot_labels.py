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
