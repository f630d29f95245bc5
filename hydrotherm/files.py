"""Writing a small file so that a reader never sees half of it, and only its owner can.

Why one helper: the dashboard's logins, its sessions, its cookie secret and the
controller's schedule are each rewritten while something else may read them (another
dashboard worker, a restarted controller), and a power cut may land mid-write.  Writing a
temporary file in the same directory, syncing it and renaming it over the old one gives a
reader either the old file or the new one, never a mix; ``0600`` is set on the descriptor
before a byte is written, so a secret is never readable by others even for a moment.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str, private: bool = True,
                     sync_directory: bool = False) -> os.stat_result:
    """Replace ``path`` with ``text`` (UTF-8) in one rename; its stat afterwards.

    ``private``: mode 0600.  ``sync_directory``: also sync the directory, so the rename
    itself survives a power cut (worth it for state a restart must find).  Raises
    ``OSError`` when the disk refuses; the temporary file is then removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        if private:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_directory:
        try:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass  # some file systems cannot sync a directory; the rename is still atomic
    return path.stat()
