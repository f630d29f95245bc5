"""The fleet's payload checks keep a real tripped table's state (issue 12, found by the
200-table fleet benchmark): a trip whose detail grew past 500 characters ("...; then ...",
one part per board flag that joined it) made the FleetClient ignore every state of that
table, so a fleet page went on showing it as it was before the trip."""

from __future__ import annotations

import json

import pytest

from controller.mqtt.fleet_payloads import DETAIL_MAX, PayloadError, check_state


def tripped_state(detail: object) -> bytes:
    trip = {"reason": "board_fault", "detail": detail, "at": 1.0}
    cushion = {"cushion": 0, "water_c": {"primary": 36.0, "redundant": 36.1,
                                         "estimate": 36.05},
               "sensor_status": {"primary": "ok", "redundant": "ok"}, "setpoint_c": 37.0,
               "output": 0.0, "requested": 0.0, "ready_in_s": None, "heat_on": True,
               "trips": [trip], "alarms": [{"name": "event_log_unwritable",
                                            "detail": detail}]}
    return json.dumps({"time": 1.0, "tripped": True, "link": {"healthy": True},
                       "cushions": [cushion]}).encode()


def test_a_long_trip_detail_is_cut_not_the_state_refused() -> None:
    detail = "; then ".join(f"board raised DEADMAN_{i} LIMIT_HOT_{i} CUTOUT_{i}"
                            for i in range(40))
    assert len(detail) > DETAIL_MAX
    state = check_state(tripped_state(detail))
    assert state is not None and state["tripped"] is True
    cut = state["cushions"][0]["trips"][0]["detail"]
    assert len(cut) == DETAIL_MAX and cut.endswith("…") and detail.startswith(cut[:-1])
    assert len(state["cushions"][0]["alarms"][0]["detail"]) == DETAIL_MAX


def test_a_short_detail_is_kept_whole_and_a_non_string_is_refused() -> None:
    state = check_state(tripped_state("plate too hot"))
    assert state is not None
    assert state["cushions"][0]["trips"][0]["detail"] == "plate too hot"
    with pytest.raises(PayloadError, match="detail must be a string"):
        check_state(tripped_state({"nested": "object"}))
