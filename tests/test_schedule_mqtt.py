"""``cmd/schedule`` against a real broker (Mosquitto): a simulated table in real time, its
controller keeping a schedule in a data directory, replies and refusals as for the other
commands (docs/mqtt.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.schedule import ScheduleRunner, ScheduleStore, SystemLocalTime
from controller.schedule.store import SCHEDULE_FILE

pytest.register_assert_rewrite("tests.mqtt_fixtures")
from tests.mqtt_fixtures import wait_for  # noqa: E402
from tests.test_mqtt import cmd, send  # noqa: E402

pytest_plugins = ["tests.mqtt_fixtures"]

WEEK = {"enabled": True, "entries": [
    {"days": ["mon", "tue", "wed", "thu", "fri"], "ready_at": "08:45", "setpoint_c": 37.0,
     "until": "18:00", "standby_c": 34.0},
    {"days": ["sat"], "ready_at": "10:00", "setpoint_c": 38.5, "cushion": 0},
]}


def _attach(table: Any, directory: Path) -> ScheduleRunner:
    runner = ScheduleRunner(table.controller, SystemLocalTime(table.controller.clock),
                            ScheduleStore(directory))
    table.controller.schedule = runner
    return runner


def test_schedule_command_accepted_stored_published_and_refused_with_reasons(
        mosquitto: Any, table_factory: Any, recorder: Any, tmp_path: Path) -> None:
    table = table_factory(mosquitto.url, heat=False)
    runner = _attach(table, tmp_path)
    t = table.topics
    rec = recorder(mosquitto.url, [t.result, t.state, t.events])

    reply = send(rec, table, "schedule", cmd(actor="reception", **WEEK))
    assert reply["ok"] is True, reply
    assert reply["schedule"]["entries"][0]["ready_at"] == "08:45"
    assert reply["schedule"]["entries"][1]["cushion"] == 0
    stored = json.loads((tmp_path / SCHEDULE_FILE).read_text())
    assert stored == reply["schedule"]
    assert runner.schedule.entries[0].standby_c == 34.0
    # the state carries the plan: a next ready time for both cushions
    got = rec.wait_topic(t.state, lambda m: (m.json().get("schedule") or {}).get("entries")
                         == 2 and all(c["next_ready_at"] for c in
                                      m.json()["schedule"]["cushions"]), 10)
    assert got is not None, "the state never showed the schedule"
    plan = got.json()["schedule"]["cushions"][0]
    assert plan["setpoint_c"] in (37.0, 38.5) and plan["why"]
    ev = [e for e in table.events("schedule")]
    assert ev and ev[-1].actor == "mqtt:dashboard/reception"

    bad = [
        ({"entries": [{"ready_at": "8:45", "setpoint_c": 37.0}]}, "HH:MM"),
        ({"entries": [{"ready_at": "08:45", "setpoint_c": 45.0}]}, "outside"),
        ({"entries": [{"ready_at": "08:45", "setpoint_c": 37.0, "days": ["funday"]}]},
         "not a day"),
        ({"entries": [{"ready_at": "08:45", "setpoint_c": 37.0, "colour": "red"}]},
         "unknown key"),
        ({"entries": [{"ready_at": "08:45", "setpoint_c": 37.0, "standby_c": 33.0}]},
         "needs until"),
        ({"entries": "every day"}, "must be a list"),
        ({"enabled": True}, "needs entries"),
    ]
    for body, words in bad:
        r = send(rec, table, "schedule", cmd(**body))
        assert r["ok"] is False and words in r["error"], (body, r)
    # nothing refused changed anything
    assert json.loads((tmp_path / SCHEDULE_FILE).read_text()) == reply["schedule"]
    refused = table.events("command_refused")
    assert len([e for e in refused if (e.detail or {}).get("command") == "schedule"]) \
        == len(bad)

    # a week of entries is larger than a setpoint's 1024 bytes: still taken
    many = {"entries": [{"days": [d], "ready_at": f"{h:02d}:30", "setpoint_c": 37.0,
                         "cushion": c} for d in ("mon", "tue", "wed", "thu")
                        for h in (8, 14) for c in (0, 1)]}
    body = cmd(**many)
    assert len(json.dumps(body)) > table.cfg.mqtt.command_max_bytes
    r = send(rec, table, "schedule", body)
    assert r["ok"] is True and len(r["schedule"]["entries"]) == 16
    # clearing it
    r = send(rec, table, "schedule", cmd(entries=[]))
    assert r["ok"] is True and r["schedule"]["entries"] == []
    assert wait_for(lambda: table.controller.snapshot()["schedule"]["cushions"][0]["phase"]
                    == "idle", 5)


def test_schedule_refused_without_a_schedule_or_an_actor(
        mosquitto: Any, table_factory: Any, recorder: Any) -> None:
    table = table_factory(mosquitto.url, heat=False)
    rec = recorder(mosquitto.url, [table.topics.result])
    r = send(rec, table, "schedule", cmd(entries=[]))
    assert r["ok"] is False and "keeps no schedule" in r["error"]
    body = cmd(entries=[])
    del body["actor"]
    r = send(rec, table, "schedule", body)
    assert r["ok"] is False and "actor" in r["error"]
