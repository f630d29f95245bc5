"""The service lockout in a real headless Chromium (issue 9, part 3): a welded heater relay
(the simulator's ``heater_stuck_on``) trips ``rise_while_off``; the page says "Call
service", offers no reset and says why; a therapist's reset through the dashboard's API is
refused by the controller; the service person repairs it and resets with
``hydrotherm service reset`` (a real process, through the controller's socket), and the
reset is logged with the name and the reason.

The cushions hold 2 kg of water on a light plate, and ``rise_while_off`` acts at 0.2 °C, so
a welded relay shows within a minute of real time; every timing of the link and the
other safety limits keeps its real-time value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.service_socket import ServiceSocket
from hydrotherm.config import from_mapping
from tests.e2e_support import (
    Served,
    chromium,
    log_in,
    new_page,
    require_browser,
    served_dashboard,
    shot,
)
from tests.test_cli import run


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # a small cushion stands in for a full one (a fault shows in seconds): its plate stays
    # wetted as a full one's (the contact model's 8 kg is for 15-35 kg cushions), or a
    # welded relay would also look like a drying plate (plate_dry) to the supervisor
    cfg = from_mapping({
        "plant": {"water_kg": 2.0, "wetted_below_kg": 1.0, "plate_heat_capacity_j_per_k": 300.0,
                  "initial_water_c": [34.0, 34.0]},
        # the upper cushion holds at its start temperature (little plate heat stored, so
        # the relay opening does not look like a rise with the heater off there)
        "control": {"setpoint_c": [34.0, 37.0]},
        "safety": {"rise_while_off_c": 0.2, "rise_too_fast_c_per_min": 20.0},
        "mqtt": {"state_interval_s": 1.0}})
    with served_dashboard(cfg, tmp_path, heat=(True, False)) as s:
        service = ServiceSocket(s.stack.controller, tmp_path).start()
        try:
            yield s
        finally:
            service.stop()


def _wait(cond: Any, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_welded_relay_offers_no_therapist_reset_and_says_call_service(
        served: Served) -> None:
    require_browser()  # before the fault: skipped (or failed under CI) with nothing done
    stack, url, data = served.stack, served.url, served.directory
    sim = stack.sim
    assert _wait(lambda: sim.status(0)["relay_closed"], 20.0), "the relay never closed"
    assert sim.handle({"fault": "heater_stuck_on", "cushion": 1})["ok"]
    errors: list[str] = []
    with chromium() as browser:
        page = new_page(browser, errors, viewport={"width": 1024, "height": 1366})
        log_in(page, url)

        lower = page.locator("#cushion-1")
        banner = lower.locator('.trip.service[data-reason="rise_while_off"]')
        banner.wait_for(timeout=150000)
        text = banner.text_content()
        assert "Call service" in text and "welded" in text, text
        assert lower.locator('[data-action="reset"]').is_disabled()
        note = lower.locator('[data-role="reset-note"]').text_content()
        assert "Reset is not offered here" in note and "Call service" in note, note
        assert "Cannot heat" in lower.locator('[data-role="action"]').text_content()
        # the page can show the trip a moment before the board's relay reports open
        # (one SET_RELAY round trip, confirmed by the next telemetry)
        assert _wait(lambda: not sim.status(0)["relay_closed"], 5.0), \
            "the master relay stayed closed with a welded relay latched"
        shot(page, "08-welded-relay-call-service")

        # a therapist asking anyway (the API the button would use) is refused
        reply = page.evaluate("""async () => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/api/tables/table0/reset', {method: 'POST',
                credentials: 'same-origin', headers: {'Content-Type': 'application/json',
                'X-CSRFToken': csrf, Accept: 'application/json'},
                body: JSON.stringify({cushion: 1})});
            return {status: r.status, body: await r.json()};
        }""")
        assert reply["status"] != 200, reply
        assert "only a service person may reset this" in reply["body"]["message"], reply
        refused = stack.controller.log.events(kinds=["reset_refused"])
        assert refused and refused[-1].actor == "mqtt:dashboard/therapist"
        assert refused[-1].reason == "rise_while_off"
        assert "welded" in refused[-1].detail["detail"]

        # the service person replaces the relay, then resets at the controller's machine
        assert sim.handle({"fault": "heater_stuck_on", "cushion": 1, "clear": True})["ok"]
        result = None
        for _ in range(20):  # the plate's leftover heat fades within seconds
            result = run("service", "reset", "--name", "Sam Service", "--reason",
                         "replaced the SSR of the lower cushion", "--data-dir", str(data))
            if result.returncode == 0:
                break
            time.sleep(2.0)
        assert result is not None and result.returncode == 0, (result.stdout,
                                                                result.stderr)
        assert "cleared rise_while_off" in result.stdout
        banner.wait_for(state="detached")
        page.wait_for_function(
            "() => document.querySelector('#cushion-1 [data-role=reset-note]')"
            ".textContent === ''")
        shot(page, "09-service-reset")
    log = stack.controller.log.events(kinds=["trip", "trip_reset", "reset_refused"])
    resets = [e for e in log if e.kind == "trip_reset" and e.reason == "rise_while_off"]
    assert len(resets) == 1, "\n".join(str((e.kind, e.reason, e.actor, e.detail)) for e in log)
    ev = resets[0]
    assert ev.actor.startswith("service:Sam Service (account ")
    assert "replaced the SSR of the lower cushion" in ev.detail["detail"]
    assert _wait(lambda: sim.status(0)["relay_closed"], 10.0), "the relay never closed again"
    assert not errors, errors
