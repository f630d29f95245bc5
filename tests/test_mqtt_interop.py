"""Interop with real MQTT clients: Debian's ``mosquitto_sub`` / ``mosquitto_pub`` read and
drive a table exactly as ``docs/mqtt.md`` documents, including the documentation's own
command-line examples, run as a person would paste them (only the port is added).

Every client run is bounded (``-C`` / ``-W`` and a subprocess timeout) and on loopback.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path

import pytest

from controller.mqtt.topics import VALUES

pytest.register_assert_rewrite("tests.mqtt_fixtures")
from tests.mqtt_fixtures import Recorder, Table, find_program, password  # noqa: E402

pytest_plugins = ["tests.mqtt_fixtures"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt.md"


@pytest.fixture
def clients() -> dict[str, str]:
    return {"sub": find_program("mosquitto_sub", "mosquitto-clients"),
            "pub": find_program("mosquitto_pub", "mosquitto-clients")}


def _doc_examples(section: str) -> list[tuple[str, str]]:
    """(preceding comment, command) for every mosquitto_* line in the ```sh blocks of a
    section of docs/mqtt.md."""
    text = DOC.read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else None]
    out: list[tuple[str, str]] = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        comment = ""
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("#"):
                comment = line
            elif line.startswith("mosquitto_"):
                out.append((comment, line))
                comment = ""
    return out


def _adapt(command: str, port: int, clients: dict[str, str], extra: str = "") -> str:
    """Point a documented command at the test broker (127.0.0.1:port) and the found
    client binaries; for mosquitto_sub, add a bound (-W) and any extra options."""
    cmd = command.replace("-h localhost", f"-h 127.0.0.1 -p {port}")
    # the documentation's shell variables: this test broker's passwords
    for var, user in (("$OBS", "observer"), ("$DASH", "dashboard"), ("$HA", "homeassistant")):
        cmd = cmd.replace(f'"{var}"', password(port, user))
    if cmd.startswith("mosquitto_sub"):
        cmd = f"{clients['sub']} -W 5 {extra}" + cmd[len("mosquitto_sub"):]
    else:
        cmd = clients["pub"] + cmd[len("mosquitto_pub"):]
    return cmd


def _bash(cmd: str, timeout_s: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True,
                          text=True, timeout=timeout_s)


class Watch:
    """A mosquitto_sub in the background (with -d, line-buffered through stdbuf, since it
    block-buffers a pipe); started once its subscription is acknowledged."""

    def __init__(self, cmd: str) -> None:
        self.proc = subprocess.Popen(["bash", "-c", f"exec stdbuf -oL {cmd} -d"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)
        self.out = ""
        self.eof = False
        assert self.read_until("SUBACK", 5), f"mosquitto_sub did not subscribe: {self.out}"

    def read_until(self, text: str, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while text not in self.out:
            left = end - time.monotonic()
            if left <= 0 or self.eof:
                return False
            if self.sel.select(left):
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                self.out += chunk.decode(errors="replace")
        return True

    def stop(self) -> str:
        # after its DISCONNECT (-C reached) it exits by itself; a SIGTERM in that moment
        # can leave it hanging, hence the grace before the signal and the kill after
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(2 if sig is None and "DISCONNECT" in self.out else 1)
                break
            except subprocess.TimeoutExpired:
                continue
        self.read_until("\0", 0.5)  # whatever is left, up to EOF
        self.sel.close()
        self.proc.stdout.close()  # type: ignore[union-attr]
        return self.out


def _wait_estimate(table: Table) -> None:
    end = time.monotonic() + 10
    while table.controller.snapshot()["cushions"][0]["water_c"]["estimate"] is None:
        assert time.monotonic() < end, "no water estimate"
        time.sleep(0.05)
    time.sleep(0.3)  # published


def test_documented_reads(table: Table, broker, clients) -> None:
    _wait_estimate(table)
    examples = [c for _, c in _doc_examples("Command-line examples")
                if c.startswith("mosquitto_sub") and " -C " in c]
    assert len(examples) >= 6
    for cmd in examples:
        res = _bash(_adapt(cmd, broker.port, clients))
        assert res.returncode == 0, (cmd, res.returncode, res.stderr)
        out = res.stdout.strip()
        if cmd.endswith("/status -C 1") or cmd.endswith("/readings -C 1"):
            assert out == "online", (cmd, out)
        elif "json.tool" in cmd:
            state = json.loads(out)
            assert state["table_id"] == "table0" and len(state["cushions"]) == 2
        elif "cushion/0/water_c" in cmd:
            assert 30 < float(out) < 40
        elif "cushion/+/+" in cmd:
            lines = out.splitlines()
            assert len(lines) == 2 * len(VALUES)
            topics = {ln.split(" ", 1)[0] for ln in lines}
            assert topics == {f"hydrotherm/table0/cushion/{i}/{v}"
                              for i in (0, 1) for v in VALUES}
        elif "+/status" in cmd:
            assert out == "hydrotherm/table0/status online"
        else:
            pytest.fail(f"an example the test does not know: {cmd}")


def test_documented_commands_drive_the_table(table: Table, broker, clients, recorder) -> None:
    t = table.topics
    rec: Recorder = recorder(broker.url, [t.result])
    examples = _doc_examples("Command-line examples")
    watch_cmd = next(c for _, c in examples if c.startswith("mosquitto_sub") and "/result" in c)
    watcher = Watch(_adapt(watch_cmd, broker.port, clients))
    pubs = [(comment, c) for comment, c in examples if c.startswith("mosquitto_pub")]
    assert len(pubs) >= 8
    replies = []
    try:
        for comment, cmd in pubs:
            mark = rec.mark()
            res = _bash(_adapt(cmd, broker.port, clients))
            assert res.returncode == 0, (cmd, res.stderr)
            reply = rec.wait_topic(t.result, timeout_s=5, after=mark)
            assert reply is not None, f"no reply to: {cmd}"
            body = reply.json()
            replies.append(body)
            expect_ok = not comment.startswith("# refused")
            assert body["ok"] is expect_ok, (cmd, body)
            if not expect_ok:
                assert "outside" in body["error"]
        # the documented watcher sees every reply and the events
        for body in replies:
            if body.get("request_id"):
                assert watcher.read_until(f'"request_id": "{body["request_id"]}"', 5), \
                    watcher.out[-3000:]
    finally:
        watched = watcher.stop()
    # the actor is the account the broker authenticated, then the person it vouches for
    assert "hydrotherm/table0/events" in watched and "mqtt:dashboard/reception" in watched
    # and the table did what the examples said: 38.5 then 38 (Home Assistant style) on
    # cushion 0; cushion 1 heat on, 37.5, then mode off
    c = table.controller.cushions
    assert c[0].setpoint_c == 38.0 and c[1].setpoint_c == 37.5
    assert c[0].heat_on is True and c[1].heat_on is False
    assert _retained_becomes(clients, broker.port, "hydrotherm/table0/cushion/0/setpoint_c",
                             "38.0")
    assert _retained_becomes(clients, broker.port, "hydrotherm/table0/cushion/1/heat", "OFF")


def _retained_becomes(clients: dict[str, str], port: int, topic: str, want: str,
                      timeout_s: float = 5.0) -> bool:
    """Read a retained topic with mosquitto_sub until it shows ``want`` (the controller
    republishes within min_interval_s of a change)."""
    end = time.monotonic() + timeout_s
    while True:
        res = _bash(f"{clients['sub']} -h 127.0.0.1 -p {port} -u observer "
                    f"-P {password(port, 'observer')} -W 5 -C 1 -t {topic}")
        if res.returncode == 0 and res.stdout.strip() == want:
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.1)


def test_mosquitto_pub_setpoint_seen_on_result_and_state(table: Table, broker,
                                                         clients) -> None:
    sub, pub = clients["sub"], clients["pub"]
    where = f"-h 127.0.0.1 -p {broker.port} -u dashboard -P {password(broker.port, 'dashboard')}"
    watcher = Watch(f"{sub} {where} -W 10 -C 1 -t hydrotherm/table0/result")
    try:
        res = _bash(f"{pub} {where} -q 1 -t hydrotherm/table0/cmd/setpoint -m "
                    "'{\"cushion\": 1, \"value\": 39.5, \"actor\": \"cli\", "
                    "\"request_id\": \"pub-1\"}'")
        assert res.returncode == 0, res.stderr
        watcher.read_until("DISCONNECT", 10)
    finally:
        out = watcher.stop()
    reply = json.loads(next(ln for ln in out.splitlines() if ln.startswith("{")))
    assert reply == {"request_id": "pub-1", "command": "setpoint", "ok": True, "cushion": 1,
                     "setpoint_c": 39.5}
    end = time.monotonic() + 5
    while True:
        res = _bash(f"{sub} {where} -W 5 -C 1 -t hydrotherm/table0/state")
        state = json.loads(res.stdout)
        if state["cushions"][1]["setpoint_c"] == 39.5:
            break
        assert time.monotonic() < end, "state never showed the new setpoint"
        time.sleep(0.1)
    assert _retained_becomes(clients, broker.port, "hydrotherm/table0/cushion/1/setpoint_c",
                             "39.5")
    assert ("setpoint", "mqtt:dashboard/cli") in [(e.kind, e.actor) for e in table.events()]


def test_documented_mqtt5_request_response(mosquitto, table_factory, clients) -> None:
    table_factory(mosquitto.url, mqtt={"protocol": "5"})
    examples = _doc_examples("MQTT 5 request/response")
    (_, sub_cmd), (_, pub_cmd) = examples
    watcher = Watch(_adapt(sub_cmd, mosquitto.port, clients))
    try:
        res = _bash(_adapt(pub_cmd, mosquitto.port, clients))
        assert res.returncode == 0, res.stderr
        watcher.read_until("DISCONNECT", 10)
    finally:
        out = watcher.stop()
    line = next(ln for ln in out.splitlines() if ln.startswith("7f3a "))
    reply = json.loads(line[len("7f3a "):])
    assert reply["ok"] is True and reply["setpoint_c"] == 38.0
