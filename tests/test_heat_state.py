"""The derived heat state of each cushion, from real states: the real controller over the
real link to the simulated board (in-process, on a SimClock), with faults injected the way
a tester would, and a restart against a board whose dead-man fired."""

from __future__ import annotations

import re
from typing import Any

from controller.heat_state import derive, reset_allowed
from controller.service import Controller
from controller.supervisor.events import service_why
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.config import from_mapping
from tests.test_controller import Rig


def cushion(snap: dict[str, Any], i: int) -> dict[str, Any]:
    return snap["cushions"][i]


def reasons(c: dict[str, Any]) -> list[str]:
    return [b["reason"] for b in c["heat_state"]["blocked_by"]]


def assert_cannot_heat(c: dict[str, Any]) -> None:
    hs = c["heat_state"]
    assert hs["state"] == "blocked", hs
    assert hs["hvac_action"] == "off"
    assert c["ready_in_s"] is None, "no warm-up estimate for a cushion that cannot heat"
    assert hs["text"].startswith("Cannot heat: ")


def test_warming_up_then_at_temperature() -> None:
    rig = Rig(from_mapping({"plant": {"initial_water_c": 34.0}}))
    rig.run(30.0)
    snap = rig.c.snapshot()
    for i in range(2):
        c = cushion(snap, i)
        assert c["heat_state"]["state"] == "heating", c["heat_state"]
        assert c["heat_state"]["hvac_action"] == "heating"
        assert c["ready_in_s"] is not None and c["ready_in_s"] > 60
        assert c["heat_state"]["blocked_by"] == []
    assert rig.run(4 * 3600.0, until=lambda: cushion(rig.c.snapshot(), 0)["heat_state"]
                   ["state"] == "ready"), "never reached the setpoint"
    c = cushion(rig.c.snapshot(), 0)
    assert abs(c["water_c"]["estimate"] - c["setpoint_c"]) <= 0.3
    assert c["ready_in_s"] is None, "no countdown once at temperature"
    # a lowered setpoint: warmer than wanted, the heater waits
    rig.c.set_setpoint(0, 33.0, "test")
    rig.run(5.0)
    c = cushion(rig.c.snapshot(), 0)
    assert c["heat_state"]["state"] == "holding"
    assert c["heat_state"]["hvac_action"] == "idle"


def test_a_sensor_trip_blocks_its_cushion_only() -> None:
    rig = Rig(from_mapping({"plant": {"initial_water_c": 30.0}}))
    rig.run(30.0)
    rig.h.table.inject("sensor_open", cushion=0, sensor="primary")
    rig.run(2.0)
    snap = rig.c.snapshot()
    c0, c1 = cushion(snap, 0), cushion(snap, 1)
    assert_cannot_heat(c0)
    assert reasons(c0) == ["tripped: sensor_open"]
    assert "Sensor disconnected" in c0["heat_state"]["text"]
    assert c0["reset_allowed"] is True and c0["trips"][0]["reset_allowed"] is True
    assert c1["heat_state"]["state"] == "heating" and c1["ready_in_s"] is not None
    assert c1["reset_allowed"] is False


def test_over_temperature_opens_the_relay_and_the_other_cushion_says_why() -> None:
    rig = Rig(from_mapping({"plant": {"initial_water_c": 36.0}}))
    rig.run(30.0)
    rig.h.table.inject("sensor_drift", cushion=0, sensor="primary", offset_c=6.0)
    assert rig.run(10.0, until=lambda: rig.c.snapshot()["board"]["relay_closed"] is False)
    rig.run(1.0)
    snap = rig.c.snapshot()
    c0, c1 = cushion(snap, 0), cushion(snap, 1)
    assert_cannot_heat(c0)
    assert_cannot_heat(c1)
    assert "tripped: over_temperature" in reasons(c1)
    assert "master relay open" in reasons(c1)
    relay = next(b for b in c1["heat_state"]["blocked_by"] if b["reason"] == "master relay open")
    assert "upper body" in relay["text"] and "Water too hot" in relay["text"]
    assert "At temperature" not in c1["heat_state"]["text"]


def test_heat_off_is_off_not_blocked_and_both_off_opens_the_relay_quietly() -> None:
    rig = Rig(from_mapping({"plant": {"initial_water_c": 36.0}}))
    rig.run(20.0)
    rig.c.set_heat(1, False, "test")
    rig.run(2.0)
    c1 = cushion(rig.c.snapshot(), 1)
    assert c1["heat_state"]["state"] == "off" and c1["heat_state"]["hvac_action"] == "off"
    assert reasons(c1) == ["heat off"] and c1["ready_in_s"] is None
    rig.c.set_heat(0, False, "test")
    assert rig.run(5.0, until=lambda: rig.c.snapshot()["board"]["relay_closed"] is False)
    snap = rig.c.snapshot()
    assert [c["heat_state"]["state"] for c in snap["cushions"]] == ["off", "off"]
    # switching one on again: the relay closes, no "relay open" blocker in between
    rig.c.set_heat(0, True, "test")
    seen: list[str] = []
    rig.run(3.0, each=lambda: seen.append(cushion(rig.c.snapshot(), 0)["heat_state"]["state"]))
    assert "blocked" not in seen, seen
    assert seen[-1] in ("heating", "ready")


def test_link_down_blocks_both_and_drops_the_countdown() -> None:
    rig = Rig(from_mapping({"plant": {"initial_water_c": 34.0}}))
    rig.run(30.0)
    rig.h.table.inject("unplug")
    rig.run(3.0)
    snap = rig.c.snapshot()
    for i in range(2):
        c = cushion(snap, i)
        assert_cannot_heat(c)
        assert reasons(c)[0] == "link down"


def test_restart_against_a_board_whose_dead_man_fired() -> None:
    """The issue-9 scenario: the controller stops refreshing (killed), the board's
    dead-man opens the relay and latches DEADMAN; a new controller connects.  Whether or
    not the supervisor makes the latched flags a trip, the heat state must say that the
    cushions cannot heat, and why."""
    cfg = from_mapping({"plant": {"initial_water_c": 34.0}})
    rig = Rig(cfg)
    rig.run(30.0)
    assert cushion(rig.c.snapshot(), 0)["heat_state"]["state"] == "heating"
    # the controller is killed: its link is never polled or closed again
    for _ in range(int(5.0 / 0.2)):
        rig.h.clock.advance(0.2)
        rig.h.table.poll()
    assert rig.board.applied(0) == 0, "the dead-man switched the heater off"
    link = BoardLink(cfg.link, Thermistor(cfg.sensor), rig.h.clock, url="inprocess://table",
                     opener=rig.h.table.pipe.open)
    c = Controller(cfg, link, rig.h.clock)
    c.set_heat(0, True, "test")
    c.set_heat(1, True, "test")
    c.start()
    for _ in range(int(5.0 / 0.2)):
        rig.h.clock.advance(0.2)
        rig.h.table.poll()
        c.poll()
    snap = c.snapshot()
    assert snap["link"]["healthy"]
    assert snap["board"]["relay_closed"] is False
    for i in range(2):
        ci = cushion(snap, i)
        assert_cannot_heat(ci)
        assert "board fault" in reasons(ci) or "tripped: board_fault" in reasons(ci)
        assert "master relay open" in reasons(ci)
        assert "stopped refreshing" in ci["heat_state"]["text"] or \
            "board_fault" in ci["heat_state"]["text"]


def test_reset_policy_is_one_set_of_reasons() -> None:
    """The supervisor's SERVICE_ONLY decides; the snapshot's ``service_only`` carries it."""
    assert service_why("rise_while_off") is not None
    assert service_why("sensor_open") is None
    welded = {"reason": "rise_while_off", "service_only": True}
    sensor = {"reason": "sensor_open", "service_only": False}
    assert reset_allowed([welded, sensor]), "sensor_open may still be reset"
    assert not reset_allowed([welded])
    assert not reset_allowed([])


def test_derive_from_a_payload_without_heat_state() -> None:
    """A consumer of an older payload derives the same states itself."""
    rig = Rig(from_mapping({"plant": {"initial_water_c": 30.0}}))
    rig.run(20.0)
    rig.h.table.inject("sensor_short", cushion=1, sensor="redundant")
    rig.run(2.0)
    snap = rig.c.snapshot()
    for c in snap["cushions"]:
        theirs = c.pop("heat_state")
        c.pop("reset_allowed")
        assert theirs == derive(snap)[c["cushion"]].as_dict()


def test_status_line_of_hydrotherm_run() -> None:
    """The terminal says what the dashboard says: a countdown only while warming up, the
    reasons when a cushion cannot heat."""
    from controller.status_line import status_line

    rig = Rig(from_mapping({"plant": {"initial_water_c": 30.0}}))
    rig.run(30.0)
    line = status_line(rig.c.snapshot())
    assert line.count("heating, out") == 2 and line.count("ready in") == 2, line
    # the board's room sensor (the simulated room is 21 °C)
    assert re.search(r"  \(room: measured (20\.9|21\.0|21\.1) °C\)$", line), line
    rig.h.table.inject("sensor_open", cushion=1, sensor="primary")
    rig.run(2.0)
    left, right = status_line(rig.c.snapshot()).split(" | ")
    assert "ready in" in left
    assert left.startswith("upper body: ") and right.startswith("lower body: "), (left, right)
    assert "cannot heat (Sensor disconnected)" in right and "ready in" not in right, right
    assert "sensor_open" not in right and "cushion 1" not in right, right
    rig.h.table.inject("unplug")
    rig.run(3.0)
    line = status_line(rig.c.snapshot())
    assert line.startswith("link ") and "ready in" not in line
    assert line.count("cannot heat (link down") == 2, line


def test_the_dashboard_shows_the_same_state_and_unknown_when_not_heard() -> None:
    """present.py shows the payload's heat state; a table not heard from is unknown, with
    no countdown, even though its last payload said it was warming up."""
    from dashboard.present import present_table

    cfg = from_mapping({"plant": {"initial_water_c": 30.0}})
    rig = Rig(cfg)
    rig.run(30.0)
    rig.h.table.inject("sensor_open", cushion=1, sensor="primary")
    rig.run(2.0)
    snap = rig.c.snapshot()
    view = {"table_id": "table0", "status": "online", "readings": "online", "state": snap,
            "state_received_at": 0.0, "state_updates": 1}
    c0, c1 = present_table(cfg, view, broker=True)["cushions"]
    assert (c0["heat_state"], c0["action_text"]) == ("heating", "Heating")
    assert c0["ready_text"].startswith("Ready in ")
    assert (c1["heat_state"], c1["action_text"], c1["ready_text"]) == \
        ("blocked", "Cannot heat", "")
    assert [b["reason"] for b in c1["blocked"]] == ["tripped: sensor_open"]
    assert c1["can_reset"] and not c0["can_reset"]
    for status, broker in (("offline", True), ("online", False)):
        shown = present_table(cfg, {**view, "status": status}, broker=broker)["cushions"]
        for c in shown:
            assert (c["heat_state"], c["action_text"], c["ready_text"]) == \
                ("unknown", "State unknown", ""), (status, broker, c)


def test_the_ready_band_has_hysteresis() -> None:
    """Once at temperature, noise at the band's edge does not flip it back and forth."""
    from controller.heat_state import READY_BAND_C, READY_HYSTERESIS_C, cushion_state

    rig = Rig(from_mapping({"plant": {"initial_water_c": 36.0}}))
    rig.run(20.0)
    snap = rig.c.snapshot()
    c = snap["cushions"][0]
    edge = c["setpoint_c"] - READY_BAND_C - READY_HYSTERESIS_C / 2
    c["water_c"]["estimate"] = edge
    assert cushion_state(c, snap).state == "heating"
    assert cushion_state(c, snap, previous="ready").state == "ready"
    c["water_c"]["estimate"] = edge - READY_HYSTERESIS_C
    assert cushion_state(c, snap, previous="ready").state == "heating"
