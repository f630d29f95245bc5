"""Session timers: one per table, run by the dashboard server, not by the browser.

A therapist starts a timer for a treatment (say 60 min).  The page shows the time left
on the table and on its fleet card.  When it runs out, the optional end-of-session
action is carried out *here*, by a thread of the dashboard server, so a closed tab or a
tablet gone to sleep still acts: ``standby`` sets both cushions to the standby setpoint,
``heat_off`` switches both cushions' heating off.  The commands are ordinary commands
with the actor ``session timer (<user>)``, so the controller checks them and logs them.
Timers are kept in ``<data dir>/dashboard_timers.json``, so a dashboard restart keeps
them (a timer that ran out while the server was down acts at start, once the broker is
connected; it is retried for 5 min, then given up and said so).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TIMERS_FILE = "dashboard_timers.json"
ACTIONS = ("none", "standby", "heat_off")
ACTION_TEXTS = {"none": "nothing (the timer only shows the time)",
                "standby": "both cushions to the standby setpoint",
                "heat_off": "heating off on both cushions"}
MAX_MINUTES = 480

#: (table_id, action, user) -> a sentence saying what was done (or why not), or None when
#: it cannot be tried yet (the broker is not connected, e.g. just after a restart)
Runner = Callable[[str, str, str], str | None]
#: a due timer is retried this long while the runner cannot try yet, then given up
RETRY_FOR_S = 300.0


class SessionTimers:
    """The running timers and the thread that ends them."""

    def __init__(self, path: Path, runner: Runner, *, poll_s: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.runner = runner
        self.poll_s = poll_s
        self.clock = clock
        self._lock = threading.Lock()
        self._timers: dict[str, dict[str, Any]] = {}
        #: table -> what the last timer's end did (shown on the page)
        self.last_result: dict[str, dict[str, Any]] = {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            raw = {}
        if isinstance(raw, dict):
            for tid, t in raw.items():
                if isinstance(t, dict) and isinstance(t.get("ends_at"), int | float) \
                        and t.get("action") in ACTIONS:
                    self._timers[str(tid)] = t
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-timers", daemon=True)
        self._thread.start()

    def start(self, table_id: str, minutes: float, action: str, user: str) -> dict[str, Any]:
        now = self.clock()
        timer = {"table_id": table_id, "started_at": now, "ends_at": now + minutes * 60,
                 "minutes": minutes, "action": action, "action_text": ACTION_TEXTS[action],
                 "user": user}
        with self._lock:
            self._timers[table_id] = timer
            self.last_result.pop(table_id, None)
            self._save()
        return dict(timer)

    def cancel(self, table_id: str) -> bool:
        with self._lock:
            found = self._timers.pop(table_id, None) is not None
            if found:
                self._save()
        return found

    def all(self) -> dict[str, dict[str, Any]]:
        now = self.clock()
        with self._lock:
            out = {tid: {**t, "remaining_s": max(0.0, t["ends_at"] - now)}
                   for tid, t in self._timers.items()}
            for tid, r in self.last_result.items():
                out.setdefault(tid, {"table_id": tid, "finished": r})
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._timers, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot save the session timers to %s: %s", self.path, exc)

    def tick(self) -> None:
        """End every timer that is due (the thread calls this every ``poll_s``)."""
        now = self.clock()
        with self._lock:
            due = [t for t in self._timers.values() if t["ends_at"] <= now]
            for t in due:
                del self._timers[t["table_id"]]
            if due:
                self._save()
        for t in due:
            try:
                text = self.runner(t["table_id"], t["action"], t["user"])
            except Exception as exc:  # noqa: BLE001 - one table must not stop the others
                log.exception("session timer of %s", t["table_id"])
                text = f"the end-of-session action failed: {exc}"
            if text is None:
                if now - t["ends_at"] < RETRY_FOR_S:
                    with self._lock:  # not yet possible: try again at the next tick
                        self._timers.setdefault(t["table_id"], t)
                        self._save()
                    continue
                text = ("Session over, but the end-of-session action could not be sent: "
                        "the broker was not reachable")
            log.info("session timer of %s ended: %s", t["table_id"], text)
            with self._lock:
                self.last_result[t["table_id"]] = {"at": now, "action": t["action"],
                                                   "text": text}

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the thread must keep running
                log.exception("session timers")
