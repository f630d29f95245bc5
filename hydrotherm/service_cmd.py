"""``hydrotherm service``: what a service person does at the controller's machine.

``service reset --name NAME --reason TEXT`` clears trips that need a service person
(a welded relay, the board's hot-water limit, a cut-out; see ``SERVICE_ONLY`` in the
supervisor) on the running controller, through its local socket
(``controller/service_socket.py``).  The controller still judges each trip on its data
(the board's flags must clear, the water must not be rising); the reset and the refusals
are logged with the name, the operating-system account and the reason.
``service status`` lists the latched trips and which need service.

Exit status: 0 everything asked for was cleared (or nothing was latched), 1 the controller
refused some trip (the reasons are printed), 2 a usage problem (no controller running on
that data directory, an empty reason).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add ``service`` and its subcommands to the CLI's subparsers."""
    p = sub.add_parser("service", help="for a service person at the controller's machine: "
                                       "reset trips a therapist may not (welded relay, "
                                       "board limit, cut-out)")
    ssub = p.add_subparsers(dest="service_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--data-dir", help="the running controller's data directory "
                                          "(default: data.dir)")
        q.add_argument("--json", action="store_true", help="print the answer as JSON")

    q = ssub.add_parser("reset", help="reset the latched trips, service-only ones included")
    q.add_argument("--name", required=True, help="your name (logged)")
    q.add_argument("--reason", required=True,
                   help="what you found and did, e.g. \"replaced SSR of cushion 1\" (logged)")
    q.add_argument("--cushion", type=int, choices=(0, 1),
                   help="only the trips affecting this cushion (default: all)")
    common(q)
    q.set_defaults(func=cmd_service_reset)

    q = ssub.add_parser("status", help="the latched trips and which need a service person")
    common(q)
    q.set_defaults(func=cmd_service_status)


class _Usage(Exception):
    pass


def _socket_path(args: argparse.Namespace) -> Path:
    from controller.service_socket import SOCKET_NAME
    from hydrotherm.app.errors import UsageError, load_config

    if args.data_dir:
        directory = Path(args.data_dir).expanduser()
    else:
        try:
            directory = load_config(args.config).data_dir
        except UsageError as exc:
            raise _Usage(str(exc)) from None
    path = directory / SOCKET_NAME
    if not path.exists():
        raise _Usage(f"no controller is running with data directory {directory} (no "
                     f"{SOCKET_NAME} there): start `hydrotherm run`, or pass --data-dir")
    return path


def _ask(args: argparse.Namespace, body: dict[str, Any]) -> dict[str, Any]:
    from controller.service_socket import request

    path = _socket_path(args)
    try:
        return request(path, body)
    except PermissionError:
        raise _Usage(f"{path}: permission denied; run this as the account the controller "
                     "runs as (or root)") from None
    except OSError as exc:
        raise _Usage(f"{path}: {exc.strerror or exc} (is the controller still running?)"
                     ) from None
    except ValueError:
        raise _Usage(f"{path}: the controller sent a malformed answer") from None


def _fail(message: str) -> int:
    print(f"hydrotherm: {message}", file=sys.stderr)
    return 2


def cmd_service_reset(args: argparse.Namespace) -> int:
    if not args.name.strip():
        return _fail("--name must not be empty: a service reset is logged with who did it")
    if not args.reason.strip():
        return _fail("--reason must not be empty: say what was found and done")
    try:
        ans = _ask(args, {"cmd": "reset", "name": args.name, "reason": args.reason,
                          "cushion": args.cushion})
    except _Usage as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(ans))
    if "error" in ans and "refused" not in ans:
        return _fail(f"service reset refused: {ans['error']}")
    if not args.json:
        cleared = ans.get("cleared") or []
        print(f"reset by {ans.get('actor')}: "
              + (f"cleared {', '.join(cleared)}" if cleared else "nothing cleared"))
        for r in ans.get("refused") or []:
            print(f"refused {r['reason']}: {r['why']}")
    return 0 if ans.get("ok") else 1


def cmd_service_status(args: argparse.Namespace) -> int:
    try:
        ans = _ask(args, {"cmd": "status"})
    except _Usage as exc:
        return _fail(str(exc))
    if not ans.get("ok"):
        return _fail(str(ans.get("error", "refused")))
    if args.json:
        print(json.dumps(ans))
        return 0
    trips = ans.get("trips") or []
    if not trips:
        print("no trip latched")
    for t in trips:
        who = "SERVICE ONLY" if t.get("service_only") else "therapist may reset"
        print(f"{t['reason']} [{who}]: {t['detail']}")
        if t.get("service_why"):
            print(f"  why service: {t['service_why']}")
    return 0
