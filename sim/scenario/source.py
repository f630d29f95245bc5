"""Where a key is in the TOML source: line numbers for error messages.

``tomllib`` gives values without positions, and a tester needs "line 9:
``control.setpoint_c``", so this small map is rebuilt from the text.  It is only used
to *report* problems; the values always come from ``tomllib``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# --- where a key is in the source -------------------------------------------------------


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?")
KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*|\"[^\"]*\")\s*=")


def strip_comment(line: str) -> str:
    """The line without its comment (a ``#`` outside a string)."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
        i += 1
    return line


class SourceMap:
    """Line numbers of tables and keys in a TOML text, for error messages.

    Paths are tuples as the parsed data is addressed: ``("plant", "room_c")``,
    ``("events", 2, "fault")``, ``("expect", "trips", 0, "within_s")`` (the last one
    inside an inline table).  Good enough for the files this format has; when a path
    cannot be found, its nearest ancestor's line is given."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.offsets: list[int] = []
        pos = 0
        for ln in text.splitlines(keepends=True):
            self.offsets.append(pos)
            pos += len(ln)
        self.where: dict[tuple[Any, ...], tuple[int, int]] = {}  # path -> (line, value offset)
        counts: dict[tuple[str, ...], int] = {}
        current: tuple[Any, ...] = ()
        in_string = ""  # the delimiter of a multi-line string we are inside
        for n, raw in enumerate(self.lines, start=1):
            if in_string:
                if in_string in raw:
                    in_string = ""
                continue
            line = strip_comment(raw)
            for delim in ('"""', "'''"):
                if line.count(delim) % 2 == 1:
                    in_string = delim
            m = _HEADER_RE.match(line)
            if m and not KEY_RE.match(line):
                parts = tuple(p.strip().strip("\"'") for p in m.group(2).split("."))
                if m.group(1) == "[[":
                    idx = counts.get(parts, 0)
                    counts[parts] = idx + 1
                    self.where.setdefault(parts, (n, self.offsets[n - 1]))
                    current = parts + (idx,)
                else:
                    current = parts
                self.where.setdefault(current, (n, self.offsets[n - 1]))
                continue
            m = KEY_RE.match(line)
            if m:
                key = m.group(1)
                parts = ((key.strip('"'),) if key.startswith('"')
                         else tuple(p.strip() for p in key.split(".")))
                self.where.setdefault(current + parts, (n, self.offsets[n - 1] + m.end()))

    def _line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def line(self, path: Sequence[Any]) -> int:
        path = tuple(path)
        for cut in range(len(path), 0, -1):
            head = path[:cut]
            if head in self.where:
                line, offset = self.where[head]
                rest = path[cut:]
                if rest:
                    found = self._inline(offset, rest)
                    if found is not None:
                        return self._line_of(found)
                return line
        return 1

    def _inline(self, offset: int, rest: tuple[Any, ...]) -> int | None:
        """Follow ``rest`` (indices and keys) into the inline value starting at
        ``offset``; the offset of what it names, or None."""
        text = self.text
        pos = offset
        for part in rest:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos >= len(text):
                return None
            if isinstance(part, int):
                if text[pos] != "[":
                    return None
                pos = self._element(pos, part)
            else:
                if text[pos] != "{":
                    return None
                pos = self._member(pos, part)
            if pos is None:
                return None
        return pos

    def _scan(self, start: int) -> list[tuple[int, int]]:
        """(depth-1 separator offsets) of the bracketed value opening at ``start``:
        the offsets just after the opening bracket and after each top-level comma."""
        text = self.text
        depth = 0
        quote = ""
        marks: list[tuple[int, int]] = []
        i = start
        while i < len(text):
            ch = text[i]
            if quote:
                if ch == "\\" and quote == '"':
                    i += 2
                    continue
                if ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "#":
                nl = text.find("\n", i)
                i = len(text) if nl < 0 else nl
                continue
            elif ch in "[{":
                depth += 1
                if depth == 1:
                    marks.append((i + 1, 0))
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    return marks
            elif ch == "," and depth == 1:
                marks.append((i + 1, 0))
            i += 1
        return marks

    def _element(self, start: int, index: int) -> int | None:
        marks = self._scan(start)
        if index >= len(marks):
            return None
        pos = marks[index][0]
        while pos < len(self.text) and self.text[pos] in " \t\r\n":
            pos += 1
        return pos

    def _member(self, start: int, key: str) -> int | None:
        for pos, _ in self._scan(start):
            m = re.compile(r"\s*" + re.escape(key) + r"\s*=").match(self.text, pos)
            if m:
                return m.end()
        return None


