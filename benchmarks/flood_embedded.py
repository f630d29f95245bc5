"""The command flood of ``benchmarks.mqtt`` (issue 12 part 3) on the embedded broker.

Prints figures; asserts nothing about speed.  Run: ``python -m benchmarks.flood_embedded
[--flood 10000] [--flood-seconds 10] [--json OUT]`` (about half a minute).

The embedded broker (amqtt, ``controller/mqtt/broker.py``) runs as ``hydrotherm run``
hosts it: in the controller's own process, with passwords and the account ACL.  The table
(simulated board on a pty, controller, bridge), the flooder (the ``dashboard`` account,
10,000 QoS 1 setpoint commands evenly over 10 s), the observer and the dashboard's
FleetClient sending a heat-off halfway are in that process too, as in the Mosquitto
flood, so they share one interpreter with the broker: the hard case for a pure-Python
broker.  Besides the Mosquitto flood's figures: how many of the commands the broker
delivered to the table at all (the gate's accepted + refused).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.mqtt import _line, flood
from controller.mqtt.accounts import DASHBOARD, CredentialStore
from controller.mqtt.broker import EmbeddedBroker


class Embedded:
    """The embedded broker with the face ``benchmarks.mqtt.flood`` expects."""

    def __init__(self, directory: Path, table_ids: list[str]) -> None:
        self.store = CredentialStore(directory)
        self.store.ensure(table_ids)
        self.broker = EmbeddedBroker("127.0.0.1", 0,
                                     passwd_file=self.store.passwd_path).start()
        self.port = self.broker.port
        self.url = self.url_as(DASHBOARD)

    def url_as(self, user: str) -> str:
        return f"mqtt://{user}:{self.store.password(user)}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flood", type=int, default=10000, help="commands in the flood")
    ap.add_argument("--flood-seconds", type=float, default=10.0)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="htfe"))
    broker = Embedded(work, ["flood"])
    t0 = time.monotonic()
    try:
        fl: dict[str, Any] = flood(broker, args.flood, args.flood_seconds)  # type: ignore[arg-type]
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    gate = fl["gate"]
    delivered = gate["accepted"] + gate["refused_rate"] + gate["refused_queue"]
    fl["delivered"] = delivered
    print(f"command flood on the embedded broker (amqtt, in the table's process): "
          f"{fl['sent']} setpoint commands in {fl['flood_s']:.1f} s from the dashboard "
          "account, default settings:")
    print(f"  delivered to the table {delivered} of {fl['sent']}")
    print(_line("  state age on arrival during the flood", fl["state_age"]))
    print(f"  longest gap between states {fl['max_state_gap_s'] * 1000:.0f} ms; "
          f"status offline seen: {'YES' if fl['offline_seen'] else 'no'}; "
          f"bridge disconnects {fl['disconnects']}")
    print(f"  heat-off in the middle: applied after {fl['heat_off_applied_ms']:.0f} ms, "
          f"reply after {fl['heat_off_reply_ms']:.0f} ms (ok: {fl['heat_off_ok']})")
    print(f"  gate: accepted {gate['accepted']}, refused (rate) {gate['refused_rate']}, "
          f"refused (queue) {gate['refused_queue']}; event log command_refused entries "
          f"{fl['refused_events']}; CPU of this process (broker, table, flooder, observer) "
          f"{fl['process_cpu_pct']:.0f} % of a core")
    print(f"(total {time.monotonic() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(fl, indent=2))


if __name__ == "__main__":
    main()
