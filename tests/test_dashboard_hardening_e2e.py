"""Issue 12's dashboard findings where a person sees them, in a real headless Chromium
(Debian's ``chromium`` through Playwright) against waitress, the embedded broker, a
simulated board and the real controller:

* a spoofed retained ``offline`` status: the page says the table is offline, and the
  heating button still switches the heat off (the controller really turns it off);
* a malformed retained state for a fake table, published while the fleet page is open:
  the page keeps its live connection and keeps updating the real table;
* a copied cookie (another browser with the same storage) stops working once its owner
  logs out.

Screenshots go to ``artifacts/screenshots/hardening-*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.mqtt.client import parse_broker_url
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import from_mapping
from tests import e2e_support
from tests.e2e_support import Served, chromium, log_in, served_dashboard, watch_errors


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cfg = from_mapping({"plant": {"initial_water_c": 35.0},
                        "mqtt": {"state_interval_s": 1.0},
                        "dashboard": {"command_timeout_s": 2.0}})
    with served_dashboard(cfg, tmp_path_factory.mktemp("e2e-hardening"), heat=(True, False),
                          broker_acl=False) as s:
        yield s


def shot(page: Any, name: str) -> None:
    e2e_support.shot(page, f"hardening-{name}")


def attacker(stack: LocalStack) -> mqtt.Client:
    """Someone with an account's password (here the dashboard's) on a broker whose operator
    set up no topic ACLs: what the dashboard shows must still be true."""
    a = parse_broker_url(stack.broker_url, env={})
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-attacker")
    c.username_pw_set(a.username, a.password)
    c.connect(a.host, a.port)
    c.loop_start()
    return c


def test_what_a_person_sees_under_the_attacks(served: Served) -> None:
    stack, url = served.stack, served.url
    errors: list[str] = []
    with chromium() as browser:
        spoof = attacker(stack)
        try:
            ctx = browser.new_context(viewport={"width": 1024, "height": 1100})
            page = watch_errors(ctx.new_page(), errors)
            log_in(page, url, "/login")

            # 1. a retained "offline" for a running table: shown, and heat-off still works
            assert stack.controller.cushions[0].heat_on
            spoof.publish("hydrotherm/table0/status", "offline", qos=1,
                          retain=True).wait_for_publish(5)
            page.wait_for_selector('#problems [data-code="offline"]')
            page.locator('#cushion-0 [data-action="heat"]').click()
            reply = page.locator('#cushion-0 [data-role="reply"]')
            page.wait_for_function(
                "() => !document.querySelector('#cushion-0 [data-role=reply]')"
                ".classList.contains('busy')")
            assert "heating switched off" in reply.text_content(), reply.text_content()
            assert not stack.controller.cushions[0].heat_on
            shot(page, "01-heat-off-while-status-says-offline")
            spoof.publish("hydrotherm/table0/status", "online", qos=1,
                          retain=True).wait_for_publish(5)
            page.wait_for_selector('#problems [data-code="offline"]', state="detached")

            # 2. malformed retained states for fake tables while the fleet page is open
            page.goto(url + "/fleet")
            page.wait_for_selector("#live-status.ok")
            for i, payload in enumerate((b"{oops", b'{"cushions": "x"}', b"[" * 2000)):
                spoof.publish(f"hydrotherm/evil{i}/state", payload, qos=1,
                              retain=True).wait_for_publish(5)
            first = page.locator("body").inner_text()
            page.wait_for_function("t => document.body.innerText !== t", arg=first,
                                   timeout=15000)  # the real table keeps updating live
            assert page.locator("#live-status.ok").count() == 1
            assert "evil" not in page.locator("body").inner_text()
            page.reload()
            page.wait_for_selector("#live-status.ok")
            assert "table0" in page.locator("body").inner_text()
            shot(page, "02-fleet-after-malformed-states")

            # 3. a copied cookie stops working at logout
            other = browser.new_context(storage_state=ctx.storage_state())
            thief = other.new_page()
            thief.goto(url + "/fleet")
            assert thief.url.endswith("/fleet")  # the copy works while logged in
            page.get_by_role("button", name="Log out").click()
            page.wait_for_url("**/login**")
            thief.goto(url + "/fleet")
            assert "/login" in thief.url
            shot(thief, "03-copied-cookie-after-logout")
            other.close()
        finally:
            for i in range(3):
                spoof.publish(f"hydrotherm/evil{i}/state", b"", qos=1, retain=True)
            spoof.publish("hydrotherm/table0/status", "online", qos=1,
                          retain=True).wait_for_publish(5)
            spoof.loop_stop()
            spoof.disconnect()
    assert not errors, errors
