"""Benchmark for issue 9 part 4: how soon the ``event_log_unwritable`` alarm reaches MQTT.

Prints figures; asserts nothing about speed.  Run: ``python -m benchmarks.eventlog
[--rounds 10] [--json OUT]`` (about a minute).  Needs Debian's ``mosquitto``.

Method: ``tests/eventlog_fsize_child.py`` in a child process (a simulated board on a pty,
the real link, controller, event log file and MQTT bridge) and a paho subscriber here, on
one Mosquitto; both processes read the same system-wide monotonic clock.  The failure is
real: the child's file size limit (RLIMIT_FSIZE) is set to 0, so SQLite's next write fails
with EFBIG as on a full disk.  Each round:

* *event*: the limit is set, then a person changes a setpoint; from just before the change
  to the subscriber receiving the alarm on the ``events`` topic and in the ``state``;
* *silent*: the limit is set and nobody does anything; from the limit to the alarm (found
  by the next write: the once-a-second history sample or the queue's retry);
* *cleared*: the limit is lifted; from then to ``alarm_cleared`` on ``events`` and a
  ``state`` without the alarm (the waiting rows are written by the next retry or sample).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.mqtt import Mosquitto
from benchmarks.stats import percentile
from controller.mqtt.topics import Topics
from controller.service import LOG_ALARM

ROOT = Path(__file__).resolve().parent.parent


class Subscriber:
    """Notes the monotonic arrival time of every alarm-related message."""

    def __init__(self, port: int, topics: Topics) -> None:
        self.topics = topics
        self.cond = threading.Condition()
        self.seen: list[tuple[str, float]] = []  # (what, when)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(topics.events, 1), (topics.state, 1)])
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        at = time.monotonic()
        body = json.loads(msg.payload)
        what = None
        if msg.topic == self.topics.events and body.get("reason") == LOG_ALARM:
            what = f"event:{body['kind']}"
        elif msg.topic == self.topics.state:
            alarms = {a["name"] for c in body["cushions"] for a in c["alarms"]}
            what = "state:alarm" if LOG_ALARM in alarms else "state:clear"
        if what:
            with self.cond:
                self.seen.append((what, at))
                self.cond.notify_all()

    def first(self, what: str, after: float, timeout_s: float = 10.0) -> float:
        end = time.monotonic() + timeout_s
        with self.cond:
            while True:
                for w, at in self.seen:
                    if w == what and at >= after:
                        return at
                if time.monotonic() >= end:
                    raise RuntimeError(f"no {what} within {timeout_s} s")
                self.cond.wait(0.05)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hteb"))
    broker = Mosquitto(work)
    topics = Topics("hydrotherm", "bench")
    sub = Subscriber(broker.port, topics)
    child = subprocess.Popen([sys.executable, "-m", "tests.eventlog_fsize_child", broker.url,
                              str(work), "bench"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def ask(line: str) -> dict[str, Any]:
        child.stdin.write(line + "\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    figures: dict[str, list[float]] = {k: [] for k in (
        "event->events", "event->state", "silent->events", "silent->state",
        "cleared->events", "cleared->state")}
    try:
        if not json.loads(child.stdout.readline()).get("ready"):
            raise SystemExit("the child controller did not come up")
        time.sleep(2.0)  # heating, the state published
        for r in range(args.rounds):
            for case in ("event", "silent"):
                at = ask("full")["at"]
                if case == "event":
                    at = ask(f"setpoint {r % 2} {31 + r % 5}")["at"]
                figures[f"{case}->events"].append(sub.first("event:alarm", at) - at)
                figures[f"{case}->state"].append(sub.first("state:alarm", at) - at)
                at = ask("space")["at"]
                figures["cleared->events"].append(sub.first("event:alarm_cleared", at) - at)
                figures["cleared->state"].append(sub.first("state:clear", at) - at)
        status = ask("status")
        ask("stop")
        child.wait(15)
    finally:
        if child.poll() is None:
            child.kill()
        sub.client.loop_stop()
        broker.stop()
    print(f"event_log_unwritable over Mosquitto, {args.rounds} rounds "
          f"(seconds: median / p95 / max)")
    out: dict[str, Any] = {"rounds": args.rounds, "final_status": status["event_log"]}
    for name, values in figures.items():
        med, p95, mx = statistics.median(values), percentile(values, 95), max(values)
        out[name] = {"median_s": med, "p95_s": p95, "max_s": mx}
        print(f"  {name:16s} {med:7.3f} {p95:7.3f} {mx:7.3f}")
    print(f"  after the last round: {status['event_log']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
