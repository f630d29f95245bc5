"""``hydrotherm broker mosquitto-config DIR``: a Mosquitto configuration, hashed password
file and ACL file implementing this project's MQTT accounts (``controller/mqtt/accounts.py``),
for a clinic that runs Mosquitto instead of the embedded broker.

Its own small module beside the CLI, like ``service_cmd``: the parser and the one-line
messages live here; the files are written by ``controller.mqtt.mosquitto``.
"""

from __future__ import annotations

import argparse

from controller.mqtt.mosquitto import MosquittoConfigError, write_config
from hydrotherm.app.errors import UsageError


def cmd_mosquitto_config(args: argparse.Namespace) -> int:
    if args.tables:
        ids = list(args.tables)
    else:
        raise UsageError("name the tables: --tables t1 t2 ... (one account each)")
    try:
        paths = write_config(args.dir, ids, host=args.host, port=args.port,
                             prefix=args.prefix, certfile=args.certfile or "",
                             keyfile=args.keyfile or "")
    except MosquittoConfigError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {paths['conf']}, {paths['passwd']} (hashed), {paths['acl']}\n"
          f"client passwords: {paths['credentials']} (mode 0600; set mqtt.credentials_file "
          f"to it)\nrun: mosquitto -c {paths['conf']}", flush=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("broker", help="broker set-up")
    bsub = p.add_subparsers(dest="broker_command", required=True)
    q = bsub.add_parser("mosquitto-config",
                        help="write a Mosquitto configuration, password and ACL file "
                             "for this project's accounts")
    q.add_argument("dir", help="directory to write into (created)")
    q.add_argument("--tables", nargs="+", metavar="ID", help="table ids, one account each")
    q.add_argument("--host", default="127.0.0.1", help="listener address (beyond loopback: "
                                                      "TLS needed)")
    q.add_argument("--port", type=int, default=1883)
    q.add_argument("--prefix", default="hydrotherm", help="topic prefix (mqtt.prefix)")
    q.add_argument("--certfile", help="TLS certificate for the listener")
    q.add_argument("--keyfile", help="TLS key for the listener")
    q.set_defaults(func=cmd_mosquitto_config)
