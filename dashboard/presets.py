"""Named presets: a client's preferred setpoints, one per cushion.

Stored server-side per dashboard in ``<data dir>/dashboard_presets.json`` (0600 is not
needed: no secrets), so every tablet of the clinic sees the same list.  The store only
keeps and checks them; applying one sends ordinary setpoint commands (``tools_api``), so
the controller validates again and its event log says who applied it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

PRESETS_FILE = "dashboard_presets.json"
MAX_PRESETS = 100
MAX_NAME = 40


class PresetError(ValueError):
    """Bad input, with the reason a person can read (HTTP 400)."""


def check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise PresetError(f"name must be text, got {name!r}")
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise PresetError(f"name must be 1–{MAX_NAME} characters")
    if not name.isprintable():
        raise PresetError("name must not contain control characters")
    return name


class PresetStore:
    """name -> [upper body °C, lower body °C]; written atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._presets: dict[str, list[float]] = {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            raw = {}
        if isinstance(raw, dict):
            for k, v in raw.items():
                if isinstance(k, str) and isinstance(v, list) and len(v) == 2 \
                        and all(isinstance(x, int | float) for x in v):
                    self._presets[k] = [float(x) for x in v]

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"name": k, "setpoints": list(v)}
                    for k, v in sorted(self._presets.items(), key=lambda kv: kv[0].lower())]

    def get(self, name: str) -> list[float] | None:
        with self._lock:
            v = self._presets.get(name)
            return list(v) if v is not None else None

    def put(self, name: str, setpoints: list[float], *, create: bool) -> None:
        """Create (``create``: the name must be new) or replace (it must exist)."""
        with self._lock:
            exists = name in self._presets
            if create and exists:
                raise PresetError(f"a preset named {name!r} exists already")
            if not create and not exists:
                raise KeyError(name)
            if create and len(self._presets) >= MAX_PRESETS:
                raise PresetError(f"at most {MAX_PRESETS} presets")
            self._presets[name] = list(setpoints)
            self._save()

    def delete(self, name: str) -> None:
        with self._lock:
            del self._presets[name]  # KeyError: 404
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._presets, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)
