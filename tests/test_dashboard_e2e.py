"""End to end in a real headless Chromium (Debian's ``chromium`` driven by Playwright for
Python): the dashboard served by waitress, the embedded broker, a simulated board on a
pty and the real controller.  A therapist logs in, watches the water warm up live,
raises the setpoint with +, sees a sensor fault as a trip banner in plain words, and
resets it once the fault is cleared.  Screenshots of each step go to
``artifacts/screenshots/``.

The cushions here hold 5 kg of water instead of 25 (and the rise-too-fast trip is set
to match), so the water warms about 0.9 °C a minute in real time and the one-decimal
display changes within seconds, with every timing of the link and the safety limits
left at its real-time value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from hydrotherm.config import from_mapping
from tests.e2e_support import Served, chromium, log_in, new_page, served_dashboard, shot


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cfg = from_mapping({"plant": {"water_kg": 5.0, "wetted_below_kg": 1.0,
                                 "initial_water_c": [33.0, 34.0]},
                        "safety": {"rise_too_fast_c_per_min": 3.0},
                        "mqtt": {"state_interval_s": 1.0}})
    with served_dashboard(cfg, tmp_path_factory.mktemp("e2e"), heat=(True, False)) as s:
        yield s


def test_therapist_session_in_a_real_browser(served: Served) -> None:
    stack, url = served.stack, served.url
    errors: list[str] = []
    with chromium() as browser:
        page = new_page(browser, errors, viewport={"width": 1024, "height": 1366})

        # 1. log in
        page.goto(url + "/")
        assert "/login" in page.url
        shot(page, "01-login")
        log_in(page, url)
        upper = page.locator("#cushion-0")
        water = upper.locator('[data-role="water"]')
        page.wait_for_function(
            "() => document.querySelector('#cushion-0 [data-role=water]').textContent"
            " !== '—'")
        shot(page, "02-table")

        # 2. the temperature changes live, without a reload
        page.evaluate("() => { window.__sameDocument = true; }")
        first = water.text_content()
        page.wait_for_function(
            "t => document.querySelector('#cushion-0 [data-role=water]').textContent !== t",
            arg=first, timeout=60000)
        assert page.evaluate("() => window.__sameDocument === true"), "page was reloaded"
        assert water.text_content() != first
        shot(page, "03-live-temperature")

        # 3. raise the setpoint with +: the controller applies it, the state shows it
        setpoint = upper.locator('[data-role="setpoint"]')
        before = float(setpoint.text_content())
        upper.get_by_role("button", name="Raise the upper body setpoint by 0.5 °C").click()
        want = f"{before + 0.5:.1f}"
        page.wait_for_function(
            "t => document.querySelector('#cushion-0 [data-role=setpoint]').textContent"
            " === t", arg=want)
        reply = upper.locator('[data-role="reply"]')
        assert f"setpoint set to {want} °C" in reply.text_content()
        assert stack.controller.cushions[0].setpoint_c == float(want)
        assert stack.controller.log.events(kinds=["setpoint"])[-1].actor == \
            "mqtt:dashboard/therapist"
        shot(page, "04-setpoint-raised")

        # 4. a sensor wire breaks: the trip banner in plain words, reset enabled
        assert upper.locator('[data-action="reset"]').is_disabled()
        assert stack.sim.handle({"fault": "sensor_open", "cushion": 0,
                                 "sensor": "primary"})["ok"]
        banner = upper.locator('.trip[data-reason="sensor_open"]')
        banner.wait_for()
        assert "A temperature sensor is disconnected (open circuit). Heating stopped. " \
               "Check the sensor cable, then reset." in banner.text_content()
        assert upper.locator('[data-action="reset"]').is_enabled()
        shot(page, "05-trip-banner")

        # 5. clear the fault, reset (confirming the dialog): banner gone, reply shown
        assert stack.sim.handle({"fault": "sensor_open", "cushion": 0,
                                 "sensor": "primary", "clear": True})["ok"]
        dialogs: list[str] = []

        def accept(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.accept()
        page.on("dialog", accept)
        accepted = False
        for _ in range(5):  # a person presses again if the cause is still settling
            upper.locator('[data-action="reset"]').click()
            page.wait_for_function(
                "() => !document.querySelector('#cushion-0 [data-role=reply]')"
                ".classList.contains('busy')")
            if "reset accepted" in reply.text_content():
                accepted = True
                break
            shot(page, "05b-reset-refused")
            time.sleep(1.0)
        assert accepted, reply.text_content()
        assert dialogs and "Reset the safety trip on the upper body cushion?" in dialogs[0]
        page.locator("#cushion-0 .trip").first.wait_for(state="detached")
        said = reply.text_content()
        assert "cleared" in said and "Sensor disconnected" in said, said
        assert "sensor_open" not in said  # words, not codes
        page.wait_for_function(
            "() => document.querySelector('#cushion-0 [data-action=reset]').disabled")
        shot(page, "06-reset-accepted")

        # the same page on a phone
        phone = browser.new_page(viewport={"width": 390, "height": 844},
                                 storage_state=page.context.storage_state())
        phone.goto(url + "/tables/table0")
        phone.wait_for_selector("#live-status.ok")
        shot(phone, "07-phone")
    assert not errors, errors
