"""Trip alerts for every open page, and who acknowledged them.

A trip must not depend on someone looking at the right table: every page asks
``/api/alerts`` for the latched trips of *all* tables and shows a page-level banner,
beeps, blinks the tab title and (if allowed) raises a browser notification until a
person acknowledges it.  Acknowledging silences the alarm only; the trip stays latched
and shown until it is reset at the table.

The controller has no MQTT command to write a note into its event log yet, so the
acknowledgements go to the dashboard's own log: ``<data dir>/dashboard_acks.jsonl``,
one JSON object a line (time, user, table, cushion, reason, the trip's time).  It is read
back at start, so a restart does not make old trips ring again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from controller.heat_state import trip_title

from .present import cushion_name

log = logging.getLogger(__name__)

ACKS_FILE = "dashboard_acks.jsonl"
#: acknowledgements kept in memory (the file keeps them all)
MAX_REMEMBERED = 5000


def trip_key(table_id: str, cushion: Any, reason: str, at: Any) -> str:
    """One latched trip, the same on every page: table, cushion, reason, latch time."""
    at_text = f"{at:.3f}" if isinstance(at, int | float) and not isinstance(at, bool) else "?"
    return f"{table_id}|{cushion}|{reason}|{at_text}"


class AckLog:
    """The acknowledgements: in memory by trip key, appended to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._acks: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()[-MAX_REMEMBERED:]
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc)
            return
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("key"), str):
                self._acks[row["key"]] = row

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._acks.get(key)

    def acknowledge(self, key: str, user: str, alert: dict[str, Any]) -> dict[str, Any]:
        """Record that ``user`` acknowledged the trip ``key``; returns the log row."""
        row = {"time": time.time(), "user": user, "key": key,
               "table_id": alert["table_id"], "cushion": alert["cushion"],
               "reason": alert["reason"], "trip_at": alert["at"]}
        with self._lock:
            if key in self._acks:
                return self._acks[key]
            self._acks[key] = row
            if len(self._acks) > MAX_REMEMBERED:
                self._acks.pop(next(iter(self._acks)))
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row, separators=(",", ":")) + "\n")
            except OSError as exc:  # the alarm is silenced anyway; say so in the log
                log.error("cannot write the acknowledgement to %s: %s", self.path, exc)
        return row

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._acks.values())


def current_alerts(snapshot: dict[str, Any], acks: AckLog) -> list[dict[str, Any]]:
    """Every latched trip of every table (``FleetClient.snapshot()``), with its plain
    title and whether a person acknowledged it.  A table whose status says offline
    still shows its last known trips: silence does not clear a trip."""
    out = []
    for table_id in sorted(snapshot):
        view = snapshot[table_id] or {}
        state = view.get("state") or {}
        for c in state.get("cushions") or []:
            if not isinstance(c, dict):
                continue
            for t in c.get("trips") or []:
                if not isinstance(t, dict):
                    continue
                reason = str(t.get("reason", "?"))
                cushion = t.get("cushion", c.get("cushion"))
                key = trip_key(table_id, cushion, reason, t.get("at"))
                ack = acks.get(key)
                at = t.get("at") if isinstance(t.get("at"), int | float) else None
                out.append({
                    "key": key, "table_id": table_id, "cushion": cushion,
                    "reason": reason, "at": at,
                    "text": f"{cushion_name(cushion)}: {trip_title(reason)}",
                    "acknowledged": ack is not None,
                    "acknowledged_by": (ack or {}).get("user", ""),
                    "acknowledged_at": (ack or {}).get("time"),
                })
    # one trip shown once even when both cushions carry a table-wide trip
    seen: set[str] = set()
    unique = []
    for a in out:
        if a["key"] not in seen:
            seen.add(a["key"])
            unique.append(a)
    return unique
