"""``hydrotherm schedule``: read and edit a table's ready-by schedule from a shell.

The schedule lives in the table's data directory (``schedule.json``, written atomically by
``controller/schedule/store.py``).  Two ways to change it, so a change is never lost and
never goes behind a running controller's back:

* **a controller is running** on that directory (its ``service.sock`` answers): the whole
  new schedule goes through the service socket to ``ScheduleRunner.update``, the same call
  an MQTT ``cmd/schedule`` (and so the dashboard's editor) ends in; the controller
  validates, stores, logs the change with the operating-system account and re-plans at once;
* **no controller is running**: the file is written here, after the same validation
  (``controller.schedule.model.parse_schedule``), and the change is logged in the table's
  event log when there is one; the controller reads the file when it starts.

Every edit reads the current schedule, changes it and sends the whole of it back.
Bad input (a time such as ``8:45``, a setpoint out of range, an entry number not shown by
``show``) ends with a one-line message and exit status 2; a refusal by the running
controller (it could not save the file) with status 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from controller.heat_state import cushion_words
from controller.schedule.model import DAYS, ScheduleError, parse_schedule
from controller.schedule.store import SCHEDULE_FILE, ScheduleStore
from hydrotherm.app.errors import UsageError

_CUSHIONS = {"upper": 0, "lower": 1, "both": None, "0": 0, "1": 1}
_ENTRY_REF = re.compile(r"entries\[(\d+)\](\.?)")
_DAY_GROUPS = {"weekdays": DAYS[:5], "weekend": DAYS[5:], "every": DAYS}


def register(sub: Any) -> None:
    """Add ``schedule`` and its subcommands to the CLI's subparsers."""
    p = sub.add_parser("schedule", help="the table's ready-by schedule: show or edit it "
                                        "(reaches a running controller)")
    ssub = p.add_subparsers(dest="schedule_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--data-dir", help="the table's data directory (default: data.dir)")
        q.add_argument("--table", help="a demo table (table0, table1, ...): its folder "
                                       "in --data-dir, else in the newest demo run")
        q.add_argument("--json", action="store_true", help="print the result as JSON")

    q = ssub.add_parser("show", help="the entries, numbered, and (if the controller "
                                     "runs) the next ready time and heating start")
    common(q)
    q.set_defaults(func=_refusals_exit_1(cmd_show))

    q = ssub.add_parser("add", help="add a ready time", aliases=["set"])
    q.add_argument("--ready-at", required=True, metavar="HH:MM",
                   help="when the water must be at the setpoint (local time, e.g. 08:45)")
    q.add_argument("--setpoint", required=True, type=float, metavar="C",
                   help="the water temperature by then, °C")
    q.add_argument("--cushion", choices=sorted(_CUSHIONS), default="both",
                   help="upper (0), lower (1) or both (default)")
    q.add_argument("--days", metavar="DAYS",
                   help="comma-separated: mon,tue,... or weekdays, weekend (default: every "
                        "day)")
    q.add_argument("--until", metavar="HH:MM",
                   help="then switch heat off (or go to --standby); earlier than "
                        "--ready-at means the next day")
    q.add_argument("--standby", type=float, metavar="C",
                   help="at --until, hold this lower setpoint instead of switching off")
    common(q)
    q.set_defaults(func=_refusals_exit_1(cmd_add))

    q = ssub.add_parser("remove", help="remove entry N (as `schedule show` numbers them)")
    q.add_argument("number", type=int, metavar="N", help="the entry's number, from 1")
    common(q)
    q.set_defaults(func=_refusals_exit_1(cmd_remove))

    q = ssub.add_parser("clear", help="remove every entry")
    common(q)
    q.set_defaults(func=_refusals_exit_1(cmd_clear))

    for name, on in (("on", True), ("off", False)):
        q = ssub.add_parser(name, help=f"switch the schedule {name} (entries are kept)")
        common(q)
        q.set_defaults(func=_refusals_exit_1(cmd_switch), on=on)


class _Refused(Exception):
    """The running controller refused a valid schedule (it could not save it): exit 1."""


def _refusals_exit_1(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except _Refused as exc:
            print(f"hydrotherm: {exc}", file=sys.stderr)
            return 1
    return run


# --- where the schedule is ---------------------------------------------------------------

class _Target:
    """The table's data directory, and its running controller's socket if one answers."""

    def __init__(self, args: argparse.Namespace) -> None:
        from controller.service_socket import SOCKET_NAME
        from hydrotherm.app.errors import load_config
        from hydrotherm.app.events import log_directory

        self.cfg = load_config(args.config)
        self.dir = log_directory(self.cfg, args.data_dir, args.table)
        if not self.dir.is_dir():
            raise UsageError(f"no data directory {self.dir}: pass the table's --data-dir "
                             "(where `hydrotherm run` keeps its event log)")
        self.socket: Path | None = self.dir / SOCKET_NAME
        self.running_status: dict[str, Any] | None = None
        if self.socket.exists():
            answer = self._ask({"cmd": "schedule"}, missing_ok=True)
            if answer is None:
                self.socket = None  # left by a controller that has stopped
            elif not answer.get("ok"):
                raise UsageError(f"the running controller: {answer.get('error')}")
            else:
                self.running_status = answer.get("status") or {}
        else:
            self.socket = None

    @property
    def running(self) -> bool:
        return self.socket is not None

    def _ask(self, body: dict[str, Any], missing_ok: bool = False) -> dict[str, Any] | None:
        from controller.service_socket import request

        assert self.socket is not None
        try:
            return request(self.socket, body)
        except PermissionError:
            raise UsageError(f"{self.socket}: permission denied; run this as the account "
                             "the controller runs as") from None
        except (ConnectionRefusedError, FileNotFoundError):
            if missing_ok:
                return None
            raise UsageError(f"the controller at {self.dir} stopped answering") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"the controller at {self.dir} did not answer: {exc}") from None

    def current(self) -> dict[str, Any]:
        """The schedule as stored (the running controller's, else the file's)."""
        if self.running_status is not None:
            sched = self.running_status.get("schedule")
            return sched if isinstance(sched, dict) else {"enabled": True, "entries": []}
        raw = ScheduleStore(self.dir).read(SCHEDULE_FILE)
        return raw if raw is not None else {"enabled": True, "entries": []}

    def parsed_current(self) -> dict[str, Any]:
        """``current()`` validated, for an edit: a stored file the controller would refuse
        is named, not silently dropped (``schedule clear`` starts afresh)."""
        ctl = self.cfg.control
        try:
            return parse_schedule(self.current(), ctl.setpoint_min_c,
                                  ctl.setpoint_max_c).as_dict()
        except ScheduleError as exc:
            raise UsageError(f"the stored {self.dir / SCHEDULE_FILE} is refused ({exc}); "
                             "`hydrotherm schedule clear` starts afresh") from None

    def replace(self, data: dict[str, Any], new: int | None = None) -> dict[str, Any]:
        """Validate and apply ``data``; the schedule as stored afterwards.  ``new``: the
        index of the entry being added, named "the new entry" in a refusal."""
        ctl = self.cfg.control
        try:
            sched = parse_schedule(data, ctl.setpoint_min_c, ctl.setpoint_max_c)
        except ScheduleError as exc:
            raise UsageError(f"schedule refused: {_numbered(str(exc), new)}") from None
        if self.running:
            answer = self._ask({"cmd": "schedule", "schedule": sched.as_dict()})
            assert answer is not None
            if not answer.get("ok"):
                raise _Refused(f"the controller refused: {answer.get('error')}")
            status = answer.get("status") or {}
            return status.get("schedule") or sched.as_dict()
        try:
            ScheduleStore(self.dir).write(SCHEDULE_FILE, sched.as_dict())
        except OSError as exc:
            raise UsageError(f"cannot write {self.dir / SCHEDULE_FILE}: {exc}") from None
        self._log(len(sched.entries), sched.enabled)
        return sched.as_dict()

    def _log(self, entries: int, enabled: bool) -> None:
        """With no controller running, the change goes in the table's event log here (the
        controller logs it itself otherwise)."""
        from controller.eventlog import EventLog

        path = self.dir / "events.sqlite3"
        if not path.exists():
            return
        log = EventLog(path)
        try:
            log.record("schedule", time.time(), actor=f"cli:{getpass.getuser()}",
                       detail={"entries": entries, "enabled": enabled})
        finally:
            log.close()


def _numbered(why: str, new: int | None) -> str:
    """The model's ``entries[2].ready_at`` as ``show`` numbers entries (``entry 3's
    ready_at``), and the one being added as "the new entry"."""
    def name(m: re.Match[str]) -> str:
        k = int(m.group(1))
        who = "the new entry" if k == new else f"entry {k + 1}"
        return who + ("'s " if m.group(2) else "")
    return _ENTRY_REF.sub(name, why)


# --- words ---------------------------------------------------------------------------------

def _days_text(days: list[str]) -> str:
    for name, group in _DAY_GROUPS.items():
        if tuple(days) == group:
            return "every day" if name == "every" else name
    return ",".join(days)


def entry_text(e: dict[str, Any]) -> str:
    """``mon,tue 08:45 upper body 37.0 °C, until 18:00 then heat off``."""
    c = e.get("cushion")
    who = "both cushions" if c is None else cushion_words(c)
    text = f"{_days_text(list(e.get('days') or DAYS))} {e['ready_at']} {who} " \
           f"{float(e['setpoint_c']):.1f} °C"
    if e.get("until"):
        then = (f"standby {float(e['standby_c']):.1f} °C" if e.get("standby_c") is not None
                else "heat off")
        text += f", until {e['until']} then {then}"
    return text


def _print_schedule(sched: dict[str, Any], where: str) -> None:
    entries = sched.get("entries") or []
    state = "on" if sched.get("enabled", True) else "off"
    print(f"Schedule ({state}), {where}:")
    if not entries:
        print("  no ready times")
    for n, e in enumerate(entries, 1):
        print(f"  {n}. {entry_text(e)}")


def _plan_lines(status: dict[str, Any]) -> list[str]:
    out = []
    for c in status.get("cushions") or []:
        name = cushion_words(c.get("cushion")).capitalize()
        nxt = c.get("next_ready_at")
        if not nxt:
            out.append(f"{name}: {c.get('why') or 'no scheduled ready time'}")
            continue
        ready = str(nxt).replace("T", " ")
        late = " — WILL BE LATE" if c.get("late") else ""
        why = c.get("why")  # the controller's sentence: when heating starts, and why
        if not why:
            start = str(c.get("heat_start_at") or "not planned yet").replace("T", " ")
            why = ("Heating starts " if c.get("start_planned") else "Heating since ") + start
        out.append(f"{name}: ready at {ready}{late}. {why}")
    return out


def _where(t: _Target) -> str:
    return (f"controller running at {t.dir}" if t.running
            else f"{t.dir / SCHEDULE_FILE} (no controller running there)")


def _done(args: argparse.Namespace, t: _Target, sched: dict[str, Any], message: str) -> int:
    if args.json:
        print(json.dumps({"ok": True, "data_dir": str(t.dir), "controller_running": t.running,
                          "schedule": sched}))
        return 0
    print(message + ("" if t.running else " (the controller reads it when it starts)"))
    _print_schedule(sched, _where(t))
    return 0


# --- commands ------------------------------------------------------------------------------

def cmd_show(args: argparse.Namespace) -> int:
    t = _Target(args)
    sched = t.current()
    if args.json:
        print(json.dumps({"data_dir": str(t.dir), "controller_running": t.running,
                          "schedule": sched,
                          "plan": (t.running_status or {}).get("cushions")}))
        return 0
    _print_schedule(sched, _where(t))
    if t.running_status is not None:
        for line in _plan_lines(t.running_status):
            print(line)
    return 0


def _days(text: str | None) -> list[str] | None:
    if text is None:
        return None
    out: list[str] = []
    for part in text.split(","):
        p = part.strip().lower()
        out.extend(_DAY_GROUPS.get(p, (p,)))
    return out


def cmd_add(args: argparse.Namespace) -> int:
    t = _Target(args)
    entry: dict[str, Any] = {"ready_at": args.ready_at, "setpoint_c": args.setpoint,
                             "cushion": _CUSHIONS[args.cushion]}
    days = _days(args.days)
    if days is not None:
        entry["days"] = days
    if args.until is not None:
        entry["until"] = args.until
    if args.standby is not None:
        entry["standby_c"] = args.standby
    current = t.parsed_current()
    new = {**current, "entries": [*current["entries"], entry]}
    sched = t.replace(new, len(current["entries"]))
    n = len(sched.get("entries") or [])
    return _done(args, t, sched, f"Added: {entry_text(sched['entries'][-1])} "
                                 f"({n} entr{'y' if n == 1 else 'ies'})")


def cmd_remove(args: argparse.Namespace) -> int:
    t = _Target(args)
    current = t.parsed_current()
    entries = list(current["entries"])
    if not 1 <= args.number <= len(entries):
        raise UsageError(f"no entry {args.number}: the schedule has "
                         f"{len(entries)} (see `hydrotherm schedule show`)")
    gone = entries.pop(args.number - 1)
    sched = t.replace({**current, "entries": entries})
    return _done(args, t, sched, f"Removed: {entry_text(gone)}")


def cmd_clear(args: argparse.Namespace) -> int:
    t = _Target(args)
    raw = t.current()
    enabled = raw.get("enabled", True) if isinstance(raw, dict) else True
    sched = t.replace({"enabled": enabled if isinstance(enabled, bool) else True,
                       "entries": []})
    return _done(args, t, sched, "Cleared: no ready times")


def cmd_switch(args: argparse.Namespace) -> int:
    t = _Target(args)
    current = t.parsed_current()
    sched = t.replace({**current, "enabled": args.on})
    return _done(args, t, sched, f"Schedule switched {'on' if args.on else 'off'}")
