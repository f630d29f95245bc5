"""Issue 9 part 4 end to end: the operating system refuses the event log's writes (a file
size limit of 0, RLIMIT_FSIZE, in a child process: the disk-full error path, without root),
the alarm ``event_log_unwritable`` reaches a real broker (Mosquitto and the embedded
amqtt) on the events topic, in the state and on the per-value ``alarm`` topics, heating
goes on, and once writes are allowed again every event is in the log, in order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.mqtt_fixtures")
from controller.eventlog import EventLog  # noqa: E402
from controller.mqtt.accounts import table_account  # noqa: E402
from controller.mqtt.topics import Topics  # noqa: E402
from controller.service import LOG_ALARM  # noqa: E402
from tests.mqtt_fixtures import Received, as_account, wait_for  # noqa: E402

pytest_plugins = ["tests.mqtt_fixtures"]

ROOT = Path(__file__).resolve().parent.parent


class Child:
    """``tests/eventlog_fsize_child.py`` in its own process, spoken to line by line."""

    def __init__(self, url: str, data_dir: Path, table_id: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.eventlog_fsize_child", url, str(data_dir), table_id],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=ROOT)
        first = self.read()
        assert first.get("ready"), f"child did not come up: {first}"

    def read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise AssertionError(f"child exited {self.proc.returncode}: "
                                 f"{self.proc.stderr.read()}")
        return json.loads(line)

    def ask(self, line: str) -> dict[str, Any]:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _is_log_event(kind: str) -> Any:
    def pred(m: Received) -> bool:
        body = m.json()
        return body.get("kind") == kind and body.get("reason") == LOG_ALARM
    return pred


def heating(status: dict[str, Any]) -> bool:
    """No trip, relay closed, the board driving both heaters."""
    return (status["healthy"] and not status["tripped"] and status["relay_closed"]
            and all(a > 0 for a in status["applied"]))


def _state_alarms(m: Received) -> list[list[str]]:
    return [[a["name"] for a in c["alarms"]] for c in m.json()["cushions"]]


def test_unwritable_log_alarm_on_mqtt_and_nothing_lost(broker, recorder, tmp_path: Path) -> None:
    table_id = "elog"
    topics = Topics("hydrotherm", table_id)
    rec = recorder(broker.url, [f"{topics.base}/#"])
    # the child publishes as its table's own account (the broker's ACL allows nothing else)
    child = Child(as_account(broker.url, table_account(table_id)), tmp_path, table_id)
    try:
        assert rec.wait_topic(topics.state, timeout_s=10), "no state published"
        assert wait_for(lambda: heating(child.ask("status")), 10), "never heated"
        mark = rec.mark()
        assert child.ask("full")["full"]
        values = [(0, 31.0), (1, 32.0), (0, 33.5), (1, 34.0)]
        for c, v in values:
            assert child.ask(f"setpoint {c} {v}")["setpoint"] == v
        raised = rec.wait_topic(topics.events, _is_log_event("alarm"), 10, after=mark)
        assert raised is not None, "no event_log_unwritable alarm on the events topic"
        assert "cannot be written" in raised.json()["detail"]["detail"]
        state = rec.wait_topic(topics.state, lambda m: _state_alarms(m) == [[LOG_ALARM]] * 2,
                               10, after=mark)
        assert state is not None, "the state never carried the alarm"
        assert state.json()["event_log"]["writable"] is False
        for i in (0, 1):
            assert rec.wait_topic(topics.value(i, "alarm"), lambda m: m.text == LOG_ALARM, 10,
                                  after=mark), f"cushion {i}'s alarm value"
        status = child.ask("status")
        assert status["event_log"]["queued"] >= len(values)
        assert "File too large" in status["event_log"]["error"] \
            or "full" in status["event_log"]["error"] or "disk" in status["event_log"]["error"]
        # heating goes on: no trip, relay closed, the board driving both heaters
        assert heating(status), status
        mark = rec.mark()
        child.ask("space")
        cleared = rec.wait_topic(topics.events, _is_log_event("alarm_cleared"), 10, after=mark)
        assert cleared is not None, "the alarm was never cleared"
        assert rec.wait_topic(topics.state, lambda m: _state_alarms(m) == [[], []], 10,
                              after=mark)
        assert child.ask("status")["event_log"]["queued"] == 0
        assert child.ask("stop")["stopped"]
        assert child.proc.wait(15) == 0
    finally:
        child.close()
    with EventLog(tmp_path / "events.sqlite3") as log:
        events = log.events()
    setpoints = [(e.cushion, e.detail["to"]) for e in events if e.kind == "setpoint"]
    assert setpoints == values
    kinds = [e.kind for e in events]
    assert "controller_start" in kinds and kinds[-1] == "controller_stop"
    assert [(e.kind, e.reason) for e in events if e.reason == LOG_ALARM] == [
        ("alarm", LOG_ALARM), ("alarm_cleared", LOG_ALARM)]
    assert [e.time for e in events] == sorted(e.time for e in events)
    assert not [e for e in events if e.kind == "events_dropped"]
