"""Issue 9 part 4 on the dashboard, in a real headless Chromium: while the event log cannot
be written (SQLite's read-only refusal, switched on for the controller's log connection),
both cushions show the ``event_log_unwritable`` alarm in words; once it can be written
again the alarm goes and the event made meanwhile is in the log.  The time from the
failing write to the alarm on the page is printed (``-s``), not asserted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.service import LOG_ALARM
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import from_mapping
from tests.e2e_support import Served, chromium, log_in, new_page, served_dashboard, shot


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cfg = from_mapping({"plant": {"initial_water_c": 33.0}, "mqtt": {"state_interval_s": 1.0}})
    with served_dashboard(cfg, tmp_path_factory.mktemp("elog-e2e"), heat=(True, True)) as s:
        yield s


def read_only(stack: LocalStack, on: bool) -> None:
    log = stack.controller.log
    with stack.controller.lock:
        log._conn().execute(f"PRAGMA query_only = {int(on)}")


def test_the_alarm_on_the_page_while_the_log_cannot_be_written(
        served: Served) -> None:
    stack, url = served.stack, served.url
    errors: list[str] = []
    alarm = f'.alarm[data-name="{LOG_ALARM}"]'
    with chromium() as browser:
        try:
            page = new_page(browser, errors, viewport={"width": 1024, "height": 1366})
            log_in(page, url)
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
    assert not errors, errors
    setpoints = stack.controller.log.events(kinds=["setpoint"])
    assert [(e.cushion, e.detail["to"]) for e in setpoints][-1:] == [(1, 36.5)]
    kinds: list[Any] = [(e.kind, e.reason) for e in stack.controller.log.events(
        kinds=["alarm", "alarm_cleared"])]
    assert kinds == [("alarm", LOG_ALARM), ("alarm_cleared", LOG_ALARM)]
    assert Path(stack.directory / "events.sqlite3").exists()
