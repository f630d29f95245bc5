"""Issue 9 part 4 on the dashboard, in a real headless Chromium: while the event log cannot
be written (SQLite's read-only refusal, switched on for the controller's log connection),
both cushions show the ``event_log_unwritable`` alarm in words; once it can be written
again the alarm goes and the event made meanwhile is in the log.  The time from the
failing write to the alarm on the page is printed (``-s``), not asserted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.service import LOG_ALARM
from dashboard.app import create_app
from dashboard.auth import UserStore
from dashboard.server import DashboardServer
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import from_mapping
from tests.test_dashboard_e2e import CHROMIUM, CHROMIUM_ARGS, _require_browser, shot

PASSWORD = "warm water 37"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, str]]:
    directory = tmp_path_factory.mktemp("elog-e2e")
    cfg = from_mapping({"plant": {"initial_water_c": 33.0}, "mqtt": {"state_interval_s": 1.0}})
    with LocalStack(cfg, directory, heat=(True, True)) as stack:
        users = UserStore(directory / "users.toml")
        users.set_password("therapist", PASSWORD)
        app = create_app(cfg, stack.fleet, users, secret_key=os.urandom(32))
        server = DashboardServer(app, "127.0.0.1", 0, threads=16).start()
        try:
            yield stack, server.url
        finally:
            server.stop()


def read_only(stack: LocalStack, on: bool) -> None:
    log = stack.controller.log
    with stack.controller.lock:
        log._conn().execute(f"PRAGMA query_only = {int(on)}")


def test_the_alarm_on_the_page_while_the_log_cannot_be_written(
        served: tuple[LocalStack, str]) -> None:
    sync_api = _require_browser()
    stack, url = served
    errors: list[str] = []
    alarm = f'.alarm[data-name="{LOG_ALARM}"]'
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 1366})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_default_timeout(20000)
            page.goto(url + "/")
            page.get_by_label("User name").fill("therapist")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_selector("#live-status.ok")
            assert page.locator(alarm).count() == 0

            read_only(stack, True)
            t0 = time.monotonic()
            stack.controller.set_setpoint(1, 36.5, "therapist")  # the write that fails
            for i in (0, 1):
                page.locator(f"#cushion-{i} {alarm}").wait_for()
            print(f"\nevent_log_unwritable on the page {time.monotonic() - t0:.3f} s after "
                  "the failing write")
            text = page.locator(f"#cushion-0 {alarm}").text_content()
            assert "event log cannot be written" in text and "Heating goes on" in text
            shot(page, "elog-01-alarm")
            assert not stack.controller.supervisor.trips

            read_only(stack, False)
            for i in (0, 1):
                page.locator(f"#cushion-{i} {alarm}").wait_for(state="detached")
            shot(page, "elog-02-cleared")
        finally:
            read_only(stack, False)
            browser.close()
    assert not errors, errors
    setpoints = stack.controller.log.events(kinds=["setpoint"])
    assert [(e.cushion, e.detail["to"]) for e in setpoints][-1:] == [(1, 36.5)]
    kinds: list[Any] = [(e.kind, e.reason) for e in stack.controller.log.events(
        kinds=["alarm", "alarm_cleared"])]
    assert kinds == [("alarm", LOG_ALARM), ("alarm_cleared", LOG_ALARM)]
    assert Path(stack.directory / "events.sqlite3").exists()
