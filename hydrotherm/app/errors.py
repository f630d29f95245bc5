"""The one error the composition root and the CLI share."""

from __future__ import annotations


class UsageError(Exception):
    """A problem the user can fix; the CLI prints it on one line, without a traceback, and
    exits with status 2."""
