"""The one error the composition root and the CLI share, and the configuration as a
command loads it."""

from __future__ import annotations

import os
import sys
import warnings

from hydrotherm import config as config_mod


class UsageError(Exception):
    """A problem the user can fix; the CLI prints it on one line, without a traceback, and
    exits with status 2."""


def load_config(path: str | os.PathLike[str] | None) -> config_mod.Config:
    """The configuration for a command: a refused file is a ``UsageError``; a retired key
    is said on stderr in one line (not a Python warning with a file and line number), so
    every subcommand (``run``, ``service``, ``schedule``, ...) tells a person the same."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", config_mod.RetiredKeyWarning)
        try:
            cfg = config_mod.load(path)
        except config_mod.ConfigError as exc:
            raise UsageError(f"configuration refused: {exc}") from None
    for w in caught:
        if issubclass(w.category, config_mod.RetiredKeyWarning):
            print(f"hydrotherm: configuration: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return cfg
