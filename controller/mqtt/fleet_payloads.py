"""What a consumer accepts from the broker: every payload checked before it is believed.

Anybody who can publish under the prefix can send anything (the ACLs of issue 12 narrow
who that is; this module is the second line).  A ``FleetClient`` therefore parses each
payload here: a malformed one is logged and dropped, so it never reaches the pages, the
live streams or a command decision.  The checks are about *shape* (types, bounded sizes,
bounded nesting), enough for ``dashboard.present`` to never meet a surprise; the values
themselves are shown as received (the controller is the authority on them).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .topics import OFFLINE, ONLINE

#: deeper JSON is refused before parsing (Python's parser would recurse ~1000 levels
#: deep and raise RecursionError; nothing we publish nests deeper than 5)
MAX_DEPTH = 32
#: a table's state is ~2 kB; events and results (history) are larger but bounded
MAX_PAYLOAD = 1024 * 1024
MAX_LIST = 64
#: a trip or alarm detail longer than this is cut (not refused: see ``_detail``)
DETAIL_MAX = 500
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")


class PayloadError(ValueError):
    """A payload that is not what the topic promises; the message says why."""


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (strings skipped), without parsing."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        if m.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(payload: bytes | str, max_depth: int = MAX_DEPTH,
               max_size: int = MAX_PAYLOAD) -> Any:
    """``json.loads`` with a size and nesting limit; PayloadError says what is wrong."""
    if len(payload) > max_size:
        raise PayloadError(f"payload of {len(payload)} bytes is over {max_size}")
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8") from None
    # Fewer opening brackets than the limit cannot nest deeper (and costs a count, not a
    # scan: a state message has about a dozen).
    opening = text.count("[") + text.count("{")
    depth = json_depth(text) if opening > max_depth else 0
    if depth > max_depth:
        raise PayloadError(f"JSON nested {depth} levels deep (at most {max_depth})")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"not JSON: {exc}") from None


def _number_or_none(value: Any, where: str, key: str = "") -> None:
    # ``where`` and ``key`` are joined only for the message: the common path builds no
    # strings (a fleet of 200 tables checks ~400 states a second).
    if value is None or (value.__class__ in (int, float) and math.isfinite(value)):
        return
    raise PayloadError(f"{where}{'.' if key else ''}{key} must be a finite number or "
                       f"null, got {value!r:.40}")


def _str_or_none(value: Any, where: str, key: str = "", limit: int = 500) -> None:
    if value is not None and (value.__class__ is not str or len(value) > limit):
        raise PayloadError(f"{where}{'.' if key else ''}{key} must be a string of at most "
                           f"{limit} characters")


def _detail(item: dict[str, Any], where: str, key: str) -> None:
    """A trip's or alarm's ``detail``: a string (or null), cut to ``DETAIL_MAX``
    characters.  A real trip's detail grows with each board flag that joins it ("...;
    then ..."): refusing the whole state for that would leave a fleet page showing the
    table as it was before the trip."""
    detail = item.get("detail")
    if detail is None:
        return
    if detail.__class__ is not str:
        raise PayloadError(f"{where}.{key} must be a string")
    if len(detail) > DETAIL_MAX:
        item["detail"] = detail[:DETAIL_MAX - 1] + "…"


def _bool(value: Any, where: str, key: str = "") -> None:
    if value.__class__ is not bool:
        raise PayloadError(f"{where}{'.' if key else ''}{key} must be true or false")


def _dict(value: Any, where: str, key: str = "") -> dict[str, Any]:
    if value.__class__ is not dict:
        raise PayloadError(f"{where}{'.' if key else ''}{key} must be an object")
    return value


def _list(value: Any, where: str, key: str = "") -> list[Any]:
    if value is None:
        return []
    if value.__class__ is not list or len(value) > MAX_LIST:
        raise PayloadError(f"{where}{'.' if key else ''}{key} must be a list of at most "
                           f"{MAX_LIST} items")
    return value


def check_status(payload: bytes) -> str:
    """``status`` and ``readings``: ``online`` or ``offline`` (empty: deleted, unknown)."""
    text = payload.decode("utf-8", "replace")
    if text == "":
        return "unknown"
    if text not in (ONLINE, OFFLINE):
        raise PayloadError(f"expected 'online' or 'offline', got {text[:40]!r}")
    return text


def check_state(payload: bytes) -> dict[str, Any] | None:
    """A controller's ``state`` snapshot (``Controller.snapshot``), or None when deleted."""
    if not payload:
        return None
    state = _dict(parse_json(payload), "state")
    _number_or_none(state.get("time"), "time")
    _bool(state.get("tripped", False), "tripped")
    link = _dict(state.get("link", {}), "link")
    _bool(link.get("healthy", False), "link", "healthy")
    _str_or_none(link.get("error"), "link", "error")
    _str_or_none(link.get("state"), "link", "state", 64)
    if state.get("board") is not None:
        _dict(state["board"], "board")
    cushions = _list(state.get("cushions"), "cushions")
    if len(cushions) > 2:
        raise PayloadError(f"a table has 2 cushions, got {len(cushions)}")
    for i, c in enumerate(cushions):
        where = "cushions[0]" if i == 0 else "cushions[1]"
        c = _dict(c, where)
        if c.get("cushion", i) != i or c.get("cushion").__class__ is bool:
            raise PayloadError(f"{where}.cushion must be {i}")
        water = _dict(c.get("water_c", {}), where, "water_c")
        _number_or_none(water.get("primary"), where, "water_c.primary")
        _number_or_none(water.get("redundant"), where, "water_c.redundant")
        _number_or_none(water.get("estimate"), where, "water_c.estimate")
        status = _dict(c.get("sensor_status", {}), where, "sensor_status")
        _str_or_none(status.get("primary"), where, "sensor_status.primary", 32)
        _str_or_none(status.get("redundant"), where, "sensor_status.redundant", 32)
        _number_or_none(c.get("setpoint_c"), where, "setpoint_c")
        _number_or_none(c.get("output"), where, "output")
        _number_or_none(c.get("requested"), where, "requested")
        _number_or_none(c.get("ready_in_s"), where, "ready_in_s")
        _bool(c.get("heat_on", False), where, "heat_on")
        for t in _list(c.get("trips"), where, "trips"):
            t = _dict(t, where, "trips[]")
            reason = t.get("reason")
            if reason.__class__ is not str or len(reason) > 64:
                raise PayloadError(f"{where}.trips[].reason must be a short string")
            _detail(t, where, "trips[].detail")
            _number_or_none(t.get("at"), where, "trips[].at")
        for a in _list(c.get("alarms"), where, "alarms"):
            a = _dict(a, where, "alarms[]")
            name = a.get("name")
            if name.__class__ is not str or len(name) > 64:
                raise PayloadError(f"{where}.alarms[].name must be a short string")
            _detail(a, where, "alarms[].detail")
    return state


def check_event(payload: bytes) -> dict[str, Any]:
    """One event-log entry as the controller publishes it on ``events``."""
    event = _dict(parse_json(payload), "event")
    if not isinstance(event.get("kind"), str) or len(event["kind"]) > 64:
        raise PayloadError("event.kind must be a short string")
    _number_or_none(event.get("time"), "event.time")
    _str_or_none(event.get("actor"), "event", "actor", 128)
    _str_or_none(event.get("reason"), "event", "reason", 200)
    cushion = event.get("cushion")
    if cushion is not None and (isinstance(cushion, bool) or cushion not in (0, 1)):
        raise PayloadError("event.cushion must be 0, 1 or null")
    if event.get("detail") is not None:
        _dict(event["detail"], "event.detail")
    return event


def check_result(payload: bytes) -> dict[str, Any]:
    """A reply on ``result``: an object with a string ``request_id`` and boolean ``ok``."""
    result = _dict(parse_json(payload), "result")
    if not isinstance(result.get("request_id"), str):
        raise PayloadError("result.request_id must be a string")
    if not isinstance(result.get("ok"), bool):
        raise PayloadError("result.ok must be true or false")
    return result
