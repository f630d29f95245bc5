"""The demo's tester panel in a real headless Chromium: it offers every fault of the
simulator (and the control loop hanging), injects one into the simulated board on its
pty, lists the faults active now, and clears them — with the demo's own wiring
(``hydrotherm.app.demo.demo_actions``) over a real broker, board emulator and
controller.  Screenshot: ``artifacts/screenshots/tester-panel.png``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dashboard.app import DEMO_FAULTS
from hydrotherm.app.demo import demo_actions
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import from_mapping
from sim.faults import FAULTS
from tests.e2e_support import Served, chromium, log_in, new_page, served_dashboard, shot


def test_the_panel_offers_every_simulator_fault() -> None:
    offered = [name for name, *_ in DEMO_FAULTS]
    assert len(offered) == len(set(offered))
    assert set(offered) == set(FAULTS) | {"host_stall"}
    for name, _label, params, _default in DEMO_FAULTS:
        if name in FAULTS:
            assert set(params) == set(FAULTS[name].params), name


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cfg = from_mapping({"mqtt": {"state_interval_s": 1.0}})

    def demo(stack: LocalStack) -> dict:
        return {"demo": True,
                "demo_actions": demo_actions(stack.sim, [cfg.mqtt.table_id],
                                             {cfg.mqtt.table_id: stack.runner})}
    with served_dashboard(cfg, tmp_path_factory.mktemp("tester"), heat=(False, False),
                          app_options=demo) as s:
        yield s


def sim_faults(stack: LocalStack) -> list[dict]:
    return stack.sim.handle({"cmd": "status", "table": "table0"})["tables"][0]["active_faults"]


def test_inject_list_and_clear_from_the_panel(served: Served) -> None:
    stack, url = served.stack, served.url
    errors: list[str] = []
    with chromium() as browser:
        page = new_page(browser, errors, viewport={"width": 1280, "height": 1600})
        log_in(page, url)
        panel = page.locator(".tester")
        active = panel.locator("#tester-active")
        page.wait_for_function(
            "() => document.querySelector('#tester-active').textContent === 'none'")

        values = panel.locator("select[name=fault] option").evaluate_all(
            "os => os.map(o => o.value)")
        assert set(values) == set(FAULTS) | {"host_stall"}

        # a weld on the LOWER cushion: only the cushion field is offered
        panel.get_by_label("Fault", exact=True).select_option("heater_stuck_on")
        assert panel.get_by_label("Cushion", exact=True).is_visible()
        assert not panel.get_by_label("Share of bytes corrupted (0–1)").is_visible()
        panel.get_by_label("Cushion", exact=True).select_option("1")
        panel.get_by_role("button", name="Inject").click()
        page.wait_for_function(
            "() => document.querySelector('#tester-active').textContent"
            ".includes('lower body')")
        assert "relay welds" in active.text_content()
        assert sim_faults(stack) == [{"fault": "heater_stuck_on", "cushion": 1}]

        # noise on the line, with its own value field
        panel.get_by_label("Fault", exact=True).select_option("serial_noise")
        rate = panel.get_by_label("Share of bytes corrupted (0–1)")
        assert rate.is_visible() and not panel.get_by_label("Cushion", exact=True).is_visible()
        rate.fill("0.002")
        panel.get_by_role("button", name="Inject").click()
        page.wait_for_function(
            "() => document.querySelector('#tester-active').textContent"
            ".includes('0.2 % of bytes')")
        shot(page, "tester-panel")

        # cleared: the list says so
        panel.get_by_role("button", name="Clear").click()
        panel.get_by_label("Fault", exact=True).select_option("heater_stuck_on")
        panel.get_by_label("Cushion", exact=True).select_option("1")
        panel.get_by_role("button", name="Clear").click()
        page.wait_for_function(
            "() => document.querySelector('#tester-active').textContent === 'none'")
        assert sim_faults(stack) == []

        # the control loop hangs: listed too, with the time left
        panel.get_by_label("Fault", exact=True).select_option("host_stall")
        assert float(panel.get_by_label("For (simulated seconds)").input_value()) == 60
        panel.get_by_role("button", name="Inject").click()
        page.wait_for_function(
            "() => document.querySelector('#tester-active').textContent"
            ".includes('control loop hangs')")
        assert "simulated s left" in active.text_content()
        panel.get_by_role("button", name="Clear").click()
        page.wait_for_function(
            "() => document.querySelector('#tester-active').textContent === 'none'")

        # a refused request says why
        panel.get_by_label("For (simulated seconds)").fill("0")
        panel.get_by_role("button", name="Inject").click()
        page.wait_for_function(
            "() => document.querySelector('#tester-reply').textContent"
            ".includes('duration_s')")
    assert not errors, errors
