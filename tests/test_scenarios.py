"""The scenario runner: every shipped scenario passes, malformed files are refused with the
line and key, the CLI entry point's exit codes and JSON, and failing expectations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.supervisor import REACTIONS
from sim import faults as sim_faults
from sim.scenario import (
    SETTLE_BAND_C,
    ScenarioError,
    _Run,
    load_scenario,
    main_scenario,
    parse_scenario,
    run_scenario,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "sim" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.toml"))

SHORT = """\
name = "short"
duration_s = 60
seed = 1

[plant]
initial_water_c = [37.0, 37.0]

[control]
setpoint_c = 37.0

[[events]]
at_s = 20
do = "fault"
fault = "sensor_open"
cushion = 1
sensor = "primary"

[expect]
max_water_c = 41.0
trips = [{cushion = 1, reason = "sensor_open", within_s = 1.0}]
"""


# --- the shipped scenarios ------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_shipped_scenario_passes(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.expect.max_water_c is not None and sc.expect.max_water_c <= 41.0, \
        "every shipped scenario bounds the true water at 41.0 °C or less"
    res = run_scenario(sc)
    assert res.passed, "\n".join(res.summary())
    assert res.max_water_c <= 41.0


def test_shipped_scenarios_cover_every_fault_and_row() -> None:
    scs = [load_scenario(p) for p in FILES]
    faults = {e.fault for sc in scs for e in sc.events if e.do == "fault"}
    wanted = (set(sim_faults.FAULTS) | {"host_stall"})
    assert wanted <= faults, f"no scenario injects {sorted(wanted - faults)}"
    reasons = {t.reason for sc in scs for t in sc.expect.trips}
    assert set(REACTIONS) <= reasons, f"no scenario expects {sorted(set(REACTIONS) - reasons)}"
    assert any(sc.expect.alarms for sc in scs), "the high_temperature alarm"
    assert any(sc.expect.refusals for sc in scs), "the setpoint refusal"
    assert any(r.ok for sc in scs for r in sc.expect.resets), "an accepted reset"
    assert any(not r.ok for sc in scs for r in sc.expect.resets), "a refused reset"
    assert any(sc.expect.no_trips and sc.expect.settled_within_s for sc in scs), \
        "a normal warm-up without trips"


def test_docs_list_every_shipped_scenario() -> None:
    doc = (SCENARIOS.parent.parent / "docs" / "scenarios.md").read_text(encoding="utf-8")
    for p in FILES:
        assert f"`{p.name}`" in doc, f"docs/scenarios.md does not list {p.name}"


# --- malformed files ------------------------------------------------------------------------


def _error(text: str, tmp_path: Path) -> ScenarioError:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


def _line_of(text: str, needle: str) -> int:
    for n, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return n
    raise AssertionError(needle)


@pytest.mark.parametrize("old,new,key,needle", [
    # unknown top-level key
    ('seed = 1\n', 'seed = 1\nspeed = 3\n', "speed", "speed = 3"),
    # unknown key in [plant]
    ('initial_water_c = [37.0, 37.0]\n', 'initial_water_c = [37.0, 37.0]\nroom_temp = 20\n',
     "plant.room_temp", "room_temp"),
    # bad fault name
    ('fault = "sensor_open"', 'fault = "sensor_melt"', "events[0].fault", "sensor_melt"),
    # a fault parameter that fault does not take
    ('sensor = "primary"', 'sensor = "primary"\nkg_per_min = 2.0', "events[0].kg_per_min",
     "kg_per_min"),
    # a bad sensor name, checked by sim.faults
    ('sensor = "primary"', 'sensor = "tertiary"', "events[0].sensor", "tertiary"),
    # setpoint 45 in [control]
    ('setpoint_c = 37.0', 'setpoint_c = 45.0', "control.setpoint_c", "setpoint_c = 45.0"),
    ('setpoint_c = 37.0', 'setpoint_c = [37.0, 45]', "control.setpoint_c", "setpoint_c = [37.0"),
    # a configuration value out of range, routed from [plant] to its section
    ('initial_water_c = [37.0, 37.0]\n', 'initial_water_c = [37.0, 37.0]\nheater_w = -5\n',
     "plant.heater_w", "heater_w"),
    # unknown key inside an inline table of [expect]
    ('within_s = 1.0}', 'within_s = 1.0, whithin = 2}', "expect.trips[0].whithin",
     "whithin"),
    # unknown trip reason
    ('reason = "sensor_open"', 'reason = "too_hot"', "expect.trips[0].reason", "too_hot"),
    # cushion 2
    ('cushion = 1\nsensor', 'cushion = 2\nsensor', "events[0].cushion", "cushion = 2"),
    # an event after the end
    ('at_s = 20', 'at_s = 90', "events[0].at_s", "at_s = 90"),
])
def test_malformed_file_names_line_and_key(tmp_path: Path, old: str, new: str, key: str,
                                           needle: str) -> None:
    assert old in SHORT
    text = SHORT.replace(old, new, 1)
    err = _error(text, tmp_path)
    assert err.key == key, str(err)
    assert err.line == _line_of(text, needle), str(err)
    assert f"line {err.line}" in str(err) and key in str(err)


def test_events_out_of_order(tmp_path: Path) -> None:
    text = SHORT + '\n[[events]]\nat_s = 10\ndo = "client_on"\n'
    # [[events]] after [expect] is still the events array; its at_s goes back in time
    err = _error(text, tmp_path)
    assert err.key == "events[1].at_s"
    assert err.line == len(text.splitlines()) - 1
    assert "time order" in str(err)


def test_bad_toml_syntax(tmp_path: Path) -> None:
    text = SHORT.replace("seed = 1", "seed = = 1")
    err = _error(text, tmp_path)
    assert err.line == _line_of(text, "seed = = 1")
    assert err.key == "seed"
    assert "not valid TOML" in str(err)


def test_missing_required_key(tmp_path: Path) -> None:
    text = SHORT.replace('do = "fault"\n', "")
    err = _error(text, tmp_path)
    assert err.key == "events[0]" and "'do'" in str(err)
    assert err.line == _line_of(text, "[[events]]")


def test_reset_is_not_a_fault_name(tmp_path: Path) -> None:
    err = _error(SHORT.replace('fault = "sensor_open"', 'fault = "reset"'), tmp_path)
    assert err.key == "events[0].fault" and "board_reset" in str(err)


def test_equivalent_fault_spellings() -> None:
    base = "duration_s = 10\n[[events]]\nat_s = 1\n"
    a = parse_scenario(base + 'do = "fault"\nfault = "unplug"\n').events[0]
    b = parse_scenario(base + 'do = "unplug"\n').events[0]
    assert (a.do, a.fault) == (b.do, b.fault) == ("fault", "unplug")
    c = parse_scenario(base + 'do = "clear_fault"\nfault = "unplug"\n').events[0]
    assert (c.do, c.fault) == ("fault", "replug")
    d = parse_scenario(base + 'do = "host_stall"\n').events[0]
    assert d.params == {"duration_s": 10.0}


def test_no_run_for_a_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.scenario.report as mod

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("ran")

    monkeypatch.setattr(mod, "run_scenario", boom)
    path = tmp_path / "bad.toml"
    path.write_text(SHORT.replace("setpoint_c = 37.0", "setpoint_c = 45.0"), encoding="utf-8")
    assert main_scenario(str(path), None, None, None) == 2
    err = capsys.readouterr().err
    assert "line 9" in err and "control.setpoint_c" in err


# --- the CLI entry point --------------------------------------------------------------------


def test_main_scenario_passes_and_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(SHORT, encoding="utf-8")
    out = tmp_path / "out.json"
    lines: list[str] = []
    assert main_scenario(str(path), str(out), None, lines.append) == 0
    assert 9 <= len(lines) <= 11 and lines[-1].startswith("100%")
    data = json.loads(out.read_text(encoding="utf-8"))
    for key in ("name", "passed", "failures", "cushions", "trips", "duration_s", "seed",
                "wall_s"):
        assert key in data
    assert data["passed"] is True and data["failures"] == []
    assert data["name"] == "short" and data["seed"] == 1 and data["duration_s"] == 60
    assert len(data["cushions"]) == 2
    for c in data["cushions"]:
        assert set(c) >= {"max_water_c", "final_water_c", "settle_s", "overshoot_c", "energy_wh"}
    (trip,) = data["trips"]
    assert set(trip) >= {"at_s", "cushion", "reason", "detect_s", "heater_off_s"}
    assert trip["reason"] == "sensor_open" and trip["cushion"] == 1
    assert 0 < trip["detect_s"] <= 1.0 and trip["detect_s"] <= trip["heater_off_s"] <= 1.0


def test_main_scenario_failed_expectation(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fail.toml"
    path.write_text(SHORT.replace('trips = [{cushion = 1, reason = "sensor_open", '
                                  'within_s = 1.0}]', "no_trips = true"), encoding="utf-8")
    assert main_scenario(str(path), "-", None, None) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["passed"] is False
    (failure,) = data["failures"]
    assert failure["expect"] == "no_trips" and "sensor_open" in failure["reason"]
    assert "FAILED no_trips" in captured.err


def test_plot_without_matplotlib(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *a: object, **k: object) -> object:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    path = tmp_path / "ok.toml"
    path.write_text(SHORT, encoding="utf-8")
    png = tmp_path / "out.png"
    assert main_scenario(str(path), None, str(png), None) == 0
    assert "matplotlib" in capsys.readouterr().err
    assert not png.exists()


# --- expectations that must fail -------------------------------------------------------------


def _run(text: str):  # noqa: ANN202 - Result
    return run_scenario(parse_scenario(text))


def test_expecting_no_trips_on_a_fault_fails() -> None:
    res = _run(SHORT.replace('trips = [{cushion = 1, reason = "sensor_open", within_s = 1.0}]',
                             "no_trips = true"))
    assert not res.passed
    assert [f.expect for f in res.failures] == ["no_trips"]
    assert "sensor_open" in res.failures[0].reason


def test_too_tight_a_limit_fails() -> None:
    res = _run(SHORT.replace("within_s = 1.0", "within_s = 0.1"))
    assert not res.passed
    assert res.failures[0].expect == "trips[0]" and "within_s" in res.failures[0].reason


def test_wrong_reason_fails() -> None:
    res = _run(SHORT.replace('reason = "sensor_open"', 'reason = "sensor_short"'))
    assert [f.expect for f in res.failures] == ["trips[0]"]
    assert "sensor_short" in res.failures[0].reason


def test_unexpected_refusal_fails() -> None:
    res = _run(SHORT + '\n[[events]]\nat_s = 30\ndo = "setpoint"\ncushion = 0\n'
                       'setpoint_c = 40.5\n')
    assert [f.expect for f in res.failures] == ["refusals"]
    assert res.refusals[0].logged and res.refusals[0].unchanged


def test_reset_expectation_fails_when_refused() -> None:
    text = SHORT + '\n[[events]]\nat_s = 30\ndo = "reset"\n'
    res = _run(text.replace("[expect]\n", "[expect]\nresets = [{ok = true}]\n"))
    assert [f.expect for f in res.failures] == ["resets[0]"]
    assert "refused" in res.failures[0].reason and "sensor_open" in res.failures[0].reason


def test_max_water_fails() -> None:
    res = _run(SHORT.replace("max_water_c = 41.0", "max_water_c = 36.0"))
    assert [f.expect for f in res.failures] == ["max_water_c"]


# --- the figures ------------------------------------------------------------------------------


def test_settle_and_overshoot_agree_with_the_benchmark_figures() -> None:
    """Same definitions as ``benchmarks.peers.Trace`` (no minimum hold) on the same record."""
    from benchmarks.peers import Trace

    sc = parse_scenario("duration_s = 1800\nseed = 3\n[plant]\ninitial_water_c = [35.5, 36.2]\n"
                        "[control]\nsetpoint_c = [37.0, 36.5]\n")
    run = _Run(sc, None)
    res = run.run()
    for i, sp in enumerate((37.0, 36.5)):
        tr = Trace(setpoint_c=sp, room_c=21.0, initial_c=35.5, client_on_at_s=None,
                   t_s=run.sec_t, water_c=run.sec_w)
        assert res.cushions[i].settle_s == tr.settle_s(i, band=SETTLE_BAND_C, min_hold_s=0.0)
        assert res.cushions[i].overshoot_c == pytest.approx(tr.overshoot_c(i))
    assert res.cushions[0].settle_s is not None and res.cushions[0].settle_s > 0
    assert 0.0 < res.cushions[0].energy_wh
