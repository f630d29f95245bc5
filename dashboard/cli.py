"""``hydrotherm dashboard serve`` and ``hydrotherm dashboard set-password``.

``register(subparsers)`` adds the ``dashboard`` command to the main parser; each
subcommand's ``func`` returns an exit status.  Errors a user can fix print one line on
stderr and return 2, like the rest of the CLI.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from hydrotherm import config as config_mod


class DashboardUsageError(Exception):
    """A problem the user can fix; printed without a traceback, exit status 2."""


def _fail(message: str) -> int:
    print(f"hydrotherm: {message}", file=sys.stderr)
    return 2


def _config(args: argparse.Namespace) -> config_mod.Config:
    try:
        return config_mod.load(getattr(args, "config", None))
    except config_mod.ConfigError as exc:
        raise DashboardUsageError(f"configuration refused: {exc}") from None


def _guarded(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args) or 0)
        except DashboardUsageError as exc:
            return _fail(str(exc))
    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def cmd_serve(args: argparse.Namespace) -> int:
    from controller.mqtt.client import BrokerUrlError, parse_broker_url

    from .auth import UserStoreError
    from .server import default_broker_url, serve

    cfg = _config(args)
    url = args.broker or default_broker_url(cfg)
    try:
        parse_broker_url(url)
    except BrokerUrlError as exc:
        raise DashboardUsageError(str(exc)) from None
    if args.port is not None and not 0 <= args.port <= 65535:
        raise DashboardUsageError(f"--port {args.port}: must be 0–65535")
    try:
        return serve(cfg, broker_url=url, host=args.host, port=args.port,
                     data_dir=args.data_dir, secure_cookies=args.secure_cookies)
    except UserStoreError as exc:
        raise DashboardUsageError(str(exc)) from None
    except OSError as exc:
        raise DashboardUsageError(f"cannot serve the dashboard: {exc}") from None


def read_new_password(password_stdin: bool, stdin: Any = None) -> str:
    """The new password from stdin (first line) or typed twice at a prompt."""
    if password_stdin:
        line = (stdin or sys.stdin).readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("New password: ")
    second = getpass.getpass("Repeat it: ")
    if first != second:
        raise DashboardUsageError("the two passwords differ: nothing changed")
    return first


def cmd_set_password(args: argparse.Namespace) -> int:
    from .auth import UserStore, UserStoreError, check_password, check_user_name

    cfg = _config(args)
    store = UserStore.for_config(cfg, Path(args.data_dir).expanduser() if args.data_dir
                                 else None)
    try:
        check_user_name(args.user)
        password = read_new_password(args.password_stdin)
        check_password(password)
        store.set_password(args.user, password)
    except UserStoreError as exc:
        raise DashboardUsageError(str(exc)) from None
    except (EOFError, KeyboardInterrupt):
        raise DashboardUsageError("no password given: nothing changed") from None
    except OSError as exc:
        raise DashboardUsageError(f"cannot write {store.path}: {exc}") from None
    print(f"password set for {args.user} in {store.path}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``dashboard serve`` and ``dashboard set-password`` to the main parser."""
    p = subparsers.add_parser("dashboard", help="the therapist's web page")
    dsub = p.add_subparsers(dest="dashboard_command", required=True)

    s = dsub.add_parser("serve", help="serve the dashboard (waitress)")
    s.add_argument("--host", help="address to listen on (default: dashboard.host, "
                                  "127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default: dashboard.port)")
    s.add_argument("--broker", help="mqtt://[user:pass@]host[:port] or mqtts://...; default: "
                                    "mqtt.broker, else the embedded broker's address")
    s.add_argument("--data-dir", help="where users.toml and the session secret live "
                                      "(default: data.dir)")
    s.add_argument("--secure-cookies", action="store_true",
                   help="always mark the session cookie Secure (it is marked Secure "
                        "automatically for requests that came over HTTPS, directly or via "
                        "a proxy in dashboard.trusted_proxies)")
    s.set_defaults(func=_guarded(cmd_serve))

    w = dsub.add_parser("set-password", help="set (or create) a dashboard login")
    w.add_argument("user", metavar="USER")
    w.add_argument("--data-dir", help="where users.toml lives (default: data.dir)")
    w.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin")
    w.set_defaults(func=_guarded(cmd_set_password))
    return p
