"""A new trip reaches a person who is not looking, in a real Chromium (issue 13 part 2):
a browser notification (the page's ``Notification`` construction observed through an
init script, with the permission granted to the context, and none without it), the tab
title blinking, and the acknowledgement logged with who made it; a second, new trip
alerts again.  And the chart follows the theme live: the toggle and a change of the
system's light/dark redraw it with that theme's colours, without a reload.

Served like the other end-to-end tests (``tests/e2e_support.py``: waitress, the embedded
broker, the real controller, a simulated board on a pty), both cushions heating.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard.alerts import ACKS_FILE
from hydrotherm.config import from_mapping
from tests.e2e_support import Served, chromium, log_in, served_dashboard, shot, watch_errors

pytestmark = pytest.mark.timeout(240)

#: records every notification the page makes, before the real constructor runs (which a
#: headless browser may refuse: the page must have tried all the same), and every title
SPY = """(() => {
  window.__notes = [];
  window.__titles = [];
  const Real = window.Notification;
  if (!Real) return;
  class Spy extends Real {
    constructor(title, options) {
      window.__notes.push({ title: title, body: (options || {}).body, tag: (options || {}).tag,
                            permission: Real.permission });
      super(title, options);
    }
  }
  window.Notification = Spy;
  document.addEventListener("DOMContentLoaded", () => {
    const seen = () => {
      const t = document.title;
      if (window.__titles[window.__titles.length - 1] !== t) window.__titles.push(t);
    };
    new MutationObserver(seen).observe(document.head,
      { subtree: true, childList: true, characterData: true });
    seen();
  });
})();"""

TRIP_TITLE = "⚠ SAFETY TRIP ⚠"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cfg = from_mapping({"plant": {"water_kg": 5.0, "wetted_below_kg": 1.0,
                                 "initial_water_c": [33.0, 33.0]},
                        "safety": {"rise_too_fast_c_per_min": 3.0},
                        "mqtt": {"state_interval_s": 1.0}})
    with served_dashboard(cfg, tmp_path_factory.mktemp("e2e-alerts"), heat=(True, True)) as s:
        yield s


def _fault(served: Served, cushion: int, clear: bool = False) -> None:
    assert served.stack.sim.handle({"fault": "sensor_open", "cushion": cushion,
                                    "sensor": "primary", "clear": clear})["ok"]


def _page(browser: Any, served: Served, errors: list[str], granted: bool,
          state: dict[str, Any] | None = None) -> Any:
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, storage_state=state)
    if granted:
        ctx.grant_permissions(["notifications"], origin=served.url)
    ctx.add_init_script(SPY)
    return watch_errors(ctx.new_page(), errors)


def _for(notes: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The one notification of the trip whose key starts with ``key``; no trip is
    notified twice."""
    tags = [n["tag"] for n in notes]
    assert len(tags) == len(set(tags)), notes
    mine = [n for n in notes if n["tag"].startswith(key)]
    assert len(mine) == 1, (key, notes)
    return mine[0]


def _acks(served: Served) -> list[dict[str, Any]]:
    path = served.directory / ACKS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_new_trip_notifies_blinks_and_the_acknowledgement_is_logged(served: Served) -> None:
    errors: list[str] = []
    with chromium() as browser:
        page = _page(browser, served, errors, granted=True)
        log_in(page, served.url)
        state = page.context.storage_state()
        quiet = _page(browser, served, errors, granted=False, state=state)
        quiet.goto(served.url + "/fleet")
        quiet.wait_for_selector("#live-status.ok")
        assert page.evaluate("() => Notification.permission") == "granted"
        assert quiet.evaluate("() => Notification.permission") != "granted"
        base = page.title()
        assert page.evaluate("() => window.__notes") == []

        # 1. a trip on the lower cushion: one notification, in words, with the trip's key
        _fault(served, 1)
        page.wait_for_selector("#alert-banner:not([hidden])")
        page.wait_for_function("() => window.__notes.length >= 1")
        notes = page.evaluate("() => window.__notes")
        lower = _for(notes, "table0|1|sensor_open|")
        assert lower["title"] == "Safety trip: table0", notes
        assert lower["body"] == "Lower body: Sensor disconnected", notes
        assert lower["permission"] == "granted"
        # ... the tab title blinks: the alarm title and the page's own, in turn
        page.wait_for_function(
            "(t) => window.__titles.filter((x) => x === t).length >= 2", arg=TRIP_TITLE)
        page.wait_for_function(
            "([t, b]) => { const s = window.__titles; const i = s.indexOf(t);"
            " return i >= 0 && s.slice(i).includes(b) && s.lastIndexOf(t) > s.indexOf(b, i); }",
            arg=[TRIP_TITLE, base])
        shot(page, "alerts-01-trip-notified")
        # without the permission the page shows the alert but makes no notification
        quiet.wait_for_selector("#alert-banner:not([hidden])")
        quiet.wait_for_timeout(3500)  # more than one poll of /api/alerts
        assert quiet.evaluate("() => window.__notes") == []
        # the same trip, seen by later polls, is not notified again
        page.wait_for_timeout(3500)
        notes = page.evaluate("() => window.__notes")
        _for(notes, "table0|1|sensor_open|")

        # 2. acknowledged: the blinking stops, the acknowledgement is logged with the user
        assert _acks(served) == []
        page.locator("#alert-ack").click()
        page.wait_for_selector("#alert-banner.acknowledged:not([hidden])")
        page.wait_for_function("(b) => document.title === b", arg=base)
        rows = _acks(served)
        # every trip notified is acknowledged, once, by the person logged in
        assert sorted(r["key"] for r in rows) == sorted(n["tag"] for n in notes), (rows, notes)
        row = next(r for r in rows if r["key"] == lower["tag"])
        assert row["user"] == "therapist" and row["table_id"] == "table0"
        assert (row["cushion"], row["reason"]) == (1, "sensor_open")
        assert "acknowledged by therapist" in page.locator("#alert-banner").text_content()
        page.evaluate("() => { window.__titles = [document.title]; }")
        page.wait_for_timeout(2500)  # longer than a blink
        assert page.evaluate("() => window.__titles") == [base]

        # 3. a NEW trip (the upper cushion) alerts again: a second notification, blinking
        _fault(served, 0)
        page.wait_for_function("() => window.__notes.some((n) => "
                               "n.tag.startsWith('table0|0|sensor_open|'))")
        notes = page.evaluate("() => window.__notes")
        assert _for(notes, "table0|0|sensor_open|")["body"] == "Upper body: Sensor disconnected"
        page.wait_for_function("(t) => window.__titles.includes(t)", arg=TRIP_TITLE)
        shot(page, "alerts-02-second-trip")
        page.locator("#alert-ack").click()
        page.wait_for_function("(b) => document.title === b", arg=base)
        # the acknowledgements are sent, then the banner is drawn again from the server
        page.wait_for_selector("#alert-banner.acknowledged:not([hidden])")
        rows = _acks(served)
        assert sorted(r["key"] for r in rows) == sorted(n["tag"] for n in notes), (rows, notes)
        assert {(r["cushion"], r["reason"]) for r in rows} >= {(1, "sensor_open"),
                                                               (0, "sensor_open")}
        assert {r["user"] for r in rows} == {"therapist"}
    for c in (0, 1):
        _fault(served, c, clear=True)
    assert not errors, errors


CHART_COLOURS = """() => {
  const c = document.getElementById("chart");
  return { ink: c.dataset.ink, roots: c.querySelectorAll(".uplot").length,
           series: c.querySelectorAll(".u-legend .u-series").length,
           markers: Array.from(c.querySelectorAll(".u-legend .u-series .u-marker"))
             .map((m) => m.style.borderColor).filter((x) => x) };
}"""
LIGHT_INK, DARK_INK = "#15202b", "#e6ecf1"
LIGHT_UPPER, DARK_UPPER = "rgb(31, 95, 191)", "rgb(121, 170, 255)"


def _chart(page: Any, ink: str) -> dict[str, Any]:
    page.wait_for_function("(ink) => document.getElementById('chart').dataset.ink === ink",
                           arg=ink)
    got = page.evaluate(CHART_COLOURS)
    assert got["roots"] == 1 and got["series"] == 5, got  # redrawn, not added
    return got


def test_the_chart_follows_the_theme_live(served: Served) -> None:
    errors: list[str] = []
    with chromium() as browser:
        ctx = browser.new_context(viewport={"width": 1280, "height": 1000},
                                  color_scheme="light")
        page = watch_errors(ctx.new_page(), errors)
        log_in(page, served.url)
        page.evaluate("() => { window.__sameDocument = true; }")
        assert LIGHT_UPPER in _chart(page, LIGHT_INK)["markers"]
        # the toggle: dark at once
        page.locator("#theme-toggle").click()
        got = _chart(page, DARK_INK)
        assert DARK_UPPER in got["markers"] and LIGHT_UPPER not in got["markers"], got
        shot(page, "alerts-03-chart-dark-toggle")
        page.locator("#theme-toggle").click()
        assert LIGHT_UPPER in _chart(page, LIGHT_INK)["markers"]
        # the system's theme, with no choice stored: followed live too
        page.evaluate("() => localStorage.removeItem('hydrotherm-theme')")
        page.evaluate("() => document.documentElement.removeAttribute('data-theme')")
        page.emulate_media(color_scheme="dark")
        assert DARK_UPPER in _chart(page, DARK_INK)["markers"]
        assert page.locator("#theme-toggle").get_attribute("aria-pressed") == "true"
        shot(page, "alerts-04-chart-dark-system")
        page.emulate_media(color_scheme="light")
        assert LIGHT_UPPER in _chart(page, LIGHT_INK)["markers"]
        # a stored choice wins over the system's change
        page.locator("#theme-toggle").click()
        _chart(page, DARK_INK)
        page.emulate_media(color_scheme="light")
        page.wait_for_timeout(500)
        assert page.evaluate("() => document.getElementById('chart').dataset.ink") == DARK_INK
        # the chart still draws live data after the redraws, in the same document
        # (what it draws changes as the states arrive: the canvas is redrawn)
        first = page.evaluate("() => document.querySelector('#chart canvas').toDataURL()")
        page.wait_for_function("(a) => document.querySelector('#chart canvas').toDataURL() "
                               "!== a", arg=first, timeout=30000)
        assert page.evaluate("() => window.__sameDocument === true")
    assert not errors, errors
