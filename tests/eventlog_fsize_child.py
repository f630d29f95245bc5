"""A controller whose file writes the operating system refuses on request (RLIMIT_FSIZE).

Run by ``test_eventlog_failure_mqtt.py`` and ``benchmarks/eventlog.py`` as
``python -m tests.eventlog_fsize_child BROKER_URL DATA_DIR TABLE_ID``: a simulated board on a
real pty (``SimServer``), the real link, controller, event log file and MQTT bridge.  It
reads one command a line on stdin and answers one JSON line on stdout:

* ``full``: no file of this process may grow any more (the soft RLIMIT_FSIZE set to 0, with
  SIGXFSZ ignored, so a write past the end fails with EFBIG as on a full disk).  The log's
  write-ahead file is emptied first, so its next write must grow it.  The answer carries
  ``at``, the monotonic time (system-wide on Linux) just before the limit took effect.
* ``space``: the limit lifted again (``at``: just after).
* ``setpoint CUSHION VALUE``: a person's setpoint change (an event to be logged); ``at``
  is the monotonic time just before the change.
* ``status``: the snapshot's ``event_log`` part, trips, relay and applied outputs.
* ``stop``: a clean stop (heaters off, the log closed); the process exits 0.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

from controller.eventlog import EventLog
from controller.mqtt.bridge import MqttBridge
from controller.mqtt.client import parse_broker_url
from controller.runner import ControllerRunner
from controller.service import Controller
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock
from hydrotherm.config import from_mapping
from sim.server import SimServer


def reply(**body: object) -> None:
    sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()


def main(url: str, data_dir: str, table_id: str) -> int:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    cfg = from_mapping({"plant": {"initial_water_c": 30.0},
                        "mqtt": {"table_id": table_id, "min_interval_s": 0.1,
                                 "state_interval_s": 2.0}})
    pty_dir = Path(tempfile.mkdtemp(prefix="htel"))
    clock = RealClock()
    server = SimServer(cfg, clock, pty_dir).start()
    link = BoardLink(cfg.link, Thermistor(cfg.sensor), clock, url=server.ports[0].path)
    log = EventLog(Path(data_dir) / "events.sqlite3")
    controller = Controller(cfg, link, clock, log=log)
    for c in (0, 1):
        controller.set_heat(c, True, "test")
    runner = ControllerRunner(controller).start()
    bridge = MqttBridge(controller, cfg, parse_broker_url(url, env={})).start()
    end = time.monotonic() + 15
    while time.monotonic() < end and not (link.healthy and bridge.connected.is_set()):
        time.sleep(0.02)
    reply(ready=link.healthy and bridge.connected.is_set(), error=link.error or bridge.last_error)
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd = words[0]
        if cmd == "full":
            with controller.lock:  # no write between emptying the WAL and the limit
                log._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
                at = time.monotonic()
                resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
            reply(full=True, at=at)
        elif cmd == "space":
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
            reply(space=True, at=time.monotonic())
        elif cmd == "setpoint":
            at = time.monotonic()
            value = controller.set_setpoint(int(words[1]), float(words[2]), "therapist")
            reply(setpoint=value, at=at)
        elif cmd == "status":
            snap = controller.snapshot()
            reply(event_log=snap["event_log"], tripped=snap["tripped"],
                  relay_closed=snap["board"]["relay_closed"] if snap["board"] else None,
                  applied=[server.tables[0].board.applied(c) for c in (0, 1)],
                  healthy=snap["link"]["healthy"])
        elif cmd == "stop":
            break
    bridge.stop()
    runner.stop()
    server.stop()
    reply(stopped=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
