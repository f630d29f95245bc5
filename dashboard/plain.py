"""Plain words for what the controller says in codes.

The JSON API keeps the codes (``sensor_open``, ``mqtt:therapist``) for scripts; what a
therapist reads on the page goes through here: trip reasons become their titles, cushion
numbers their names, and the transport prefix of an actor is dropped.
"""

from __future__ import annotations

import re
from typing import Any

from controller.heat_state import TRIP_TITLES, cushion_words, trip_title

_CUSHION_N = re.compile(r"\b(?:the )?cushion (\d)\b")
_SENSOR = {"primary": "the main sensor", "redundant": "the second sensor"}


def actor_text(actor: Any) -> str:
    """``mqtt:dashboard/therapist`` -> ``therapist`` (the person logged in to the dashboard,
    as the broker-authenticated dashboard account carried it); ``mqtt:homeassistant`` ->
    ``Home Assistant``; ``None`` (the controller itself) -> ``""``."""
    if not isinstance(actor, str) or not actor:
        return ""
    if actor == "mqtt:homeassistant":
        return "Home Assistant"
    for prefix in ("mqtt:dashboard/", "mqtt:", "ha:", "cli:"):
        if actor.startswith(prefix):
            return actor[len(prefix):]
    return actor


def _cushions(text: str) -> str:
    return _CUSHION_N.sub(lambda m: f"the {cushion_words(int(m.group(1)))} cushion", text)


def why_text(why: str) -> str:
    """``cushion 0: primary open`` -> ``the upper body cushion: the main sensor reads open``."""
    text = _cushions(why)
    text = re.sub(r"\b(primary|redundant) sensor\b",
                  lambda m: "main sensor" if m.group(1) == "primary" else "second sensor", text)
    for code, words in _SENSOR.items():
        text = re.sub(rf"\b{code} (open|short|shorted)\b", rf"{words} reads \1", text)
        text = re.sub(rf"\b{code}\b", words, text)
    return text


def refusal_text(error: Any) -> str:
    """A controller's refusal in plain words; the codes of a refused reset
    (``sensor_open: cushion 0: primary open; ...``) become the trips' titles."""
    if not isinstance(error, str) or not error:
        return "no reason given"
    parts = []
    for piece in error.split("; "):
        code, sep, rest = piece.partition(": ")
        if sep and code in TRIP_TITLES:
            parts.append(f"{trip_title(code)} ({why_text(rest)}): the cause is still there")
        else:
            parts.append(_cushions(piece))
    text = "; ".join(parts)
    m = re.match(r"these trips need a service person: (.*)", text)
    if m:
        names = [trip_title(n.strip()) for n in m.group(1).split(",")]
        text = "these trips need a service person: " + ", ".join(names)
    return text
