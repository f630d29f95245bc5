"""The schedule and what was learned, in the table's data directory, as small JSON files
written atomically (a temporary file in the same directory, flushed and fsync'ed, then
renamed over the old one), so a power cut leaves the old file or the new one, never half.

``schedule.json`` is what people set; ``warmup_learned.json`` what the controller learned
(kept apart: resetting one must not lose the other).  A store without a directory keeps
both in memory (scenarios, tests).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from hydrotherm.files import write_atomically

SCHEDULE_FILE = "schedule.json"
LEARNED_FILE = "warmup_learned.json"

log = logging.getLogger(__name__)


class ScheduleStore:
    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.dir = Path(directory) if directory is not None else None
        self._memory: dict[str, Any] = {}

    def read(self, name: str) -> Any:
        """The file's JSON, or None when it does not exist or cannot be read (logged)."""
        if self.dir is None:
            return self._memory.get(name)
        path = self.dir / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("%s cannot be read (%s): starting without it", path, exc)
            return None

    def write(self, name: str, data: Any) -> None:
        """Atomic replace; raises OSError when the disk refuses (the caller says so)."""
        if self.dir is None:
            self._memory[name] = json.loads(json.dumps(data))
            return
        write_atomically(self.dir / name, json.dumps(data, indent=1) + "\n", private=False,
                         sync_directory=True)
