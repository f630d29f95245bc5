"""The therapist's screens in a real Chromium: states at a glance, alerts, phone, tablet,
desktop, light and dark (issue 13 parts 2, 4 and 5).

Served like the other end-to-end tests (waitress, the embedded broker, the real
controller, a simulated board on a pty).  The upper cushion starts at its setpoint, so it
is READY; the lower one warms up.  Screenshots of every size and theme, before and
during a trip, go to ``artifacts/screenshots/`` (gitignored), and each is checked:
READY is green, a blocked cushion says why in words, the page-level alert banner is
shown, the dark theme is dark, both cushions fit a 10-inch tablet in landscape, every
control is at least 44 px, and a button's label stays readable after a click or a tap
(the computed contrast of its text on its background).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard.alerts import ACKS_FILE
from hydrotherm.config import from_mapping
from tests.e2e_support import (
    CHROMIUM_ARGS,
    Served,
    chromium,
    log_in,
    served_dashboard,
    shot,
    watch_errors,
)

pytestmark = pytest.mark.timeout(300)

SIZES = {"phone": {"width": 390, "height": 844}, "tablet": {"width": 1280, "height": 800},
         "desktop": {"width": 1440, "height": 900}}
#: sound without a click first (a person would have touched the page; a test cannot)
ARGS = CHROMIUM_ARGS + ["--autoplay-policy=no-user-gesture-required"]
MIN_TARGET_PX = 44
#: WCAG AA for normal text
MIN_CONTRAST = 4.5

CONTRAST_JS = """(sel) => {
  const node = document.querySelector(sel);
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bgNode = node, bg = null;
  while (bgNode) {
    const c = rgb(getComputedStyle(bgNode).backgroundColor);
    if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) { bg = c; break; }
    bgNode = bgNode.parentElement;
  }
  const fg = rgb(getComputedStyle(node).color);
  const a = lum(fg), b = lum(bg || [255, 255, 255]);
  return { ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), fg: fg, bg: bg };
}"""

TARGETS_JS = """(minPx) => {
  const small = [];
  const sel = "header button, header nav a, main button, main input, main select, " +
              ".alert-banner button, .ranges a, .pager a";
  document.querySelectorAll(sel).forEach((n) => {
    const r = n.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return;  // not shown
    if (getComputedStyle(n).visibility === "hidden") return;
    const field = n.tagName === "INPUT" || n.tagName === "SELECT";
    const tall = field ? r.height : Math.min(r.width, r.height);
    const name = n.id || n.textContent.trim().slice(0, 30) || n.tagName;
    const size = Math.round(r.width) + "x" + Math.round(r.height);
    if (tall < minPx - 0.5) small.push(name + " " + size);
  });
  return small;
}"""


def luminance(rgb: list[float]) -> float:
    def f(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = rgb[:3]
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)


def css_rgb(page: Any, selector: str, prop: str) -> list[float]:
    text = page.eval_on_selector(selector, f"n => getComputedStyle(n).{prop}")
    return [float(x) for x in re.findall(r"[\d.]+", text)]


def is_green(rgb: list[float]) -> bool:
    r, g, b = rgb[:3]
    return g > r + 40 and g > b + 20


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cfg = from_mapping({"plant": {"water_kg": 5.0, "wetted_below_kg": 1.0,
                                 "initial_water_c": [36.95, 33.0]},
                        "safety": {"rise_too_fast_c_per_min": 3.0},
                        "mqtt": {"state_interval_s": 1.0}})
    with served_dashboard(cfg, tmp_path_factory.mktemp("e2e-screens"), heat=(True, True),
                          threads=24) as s:
        yield s


def logged_in(browser: Any, url: str) -> dict[str, Any]:
    page = browser.new_page()
    log_in(page, url, "/login", live=False)
    state = page.context.storage_state()
    page.close()
    return state


def open_page(browser: Any, url: str, state: dict[str, Any], size: str, theme: str,
              path: str = "/tables/table0", errors: list[str] | None = None) -> Any:
    touch = size == "phone"
    ctx = browser.new_context(viewport=SIZES[size], color_scheme=theme, storage_state=state,
                              has_touch=touch, is_mobile=touch)
    page = watch_errors(ctx.new_page(), errors if errors is not None else [])
    page.goto(url + path)
    page.wait_for_selector("#live-status.ok")
    return page


def check_screen(page: Any, size: str, theme: str, name: str) -> None:
    """What every screen must do, whatever its state."""
    shot(page, f"screens-{name}-{size}-{theme}")
    bg = luminance(css_rgb(page, "body", "backgroundColor"))
    ink = luminance(css_rgb(page, "body", "color"))
    if theme == "dark":
        assert bg < 0.05 and ink > 0.5, (name, size, bg, ink)
    else:
        assert bg > 0.8 and ink < 0.1, (name, size, bg, ink)
    wide = page.evaluate("""(w) => Array.from(document.querySelectorAll("body *"))
      .filter((n) => n.getBoundingClientRect().right > w + 0.5 && n.getClientRects().length)
      .map((n) => n.tagName + "#" + n.id + "." + n.className + " " +
                  Math.round(n.getBoundingClientRect().right)).slice(0, 8)""",
                         SIZES[size]["width"])
    assert not wide, (name, size, theme, "wider than the screen:", wide)
    small = page.evaluate(TARGETS_JS, MIN_TARGET_PX)
    assert not small, (name, size, theme, small)
    header = page.locator("header.top").bounding_box()
    smallest = page.evaluate("""() => Math.min(...Array.from(document.querySelectorAll(
      "main button, header button")).map((n) => n.getBoundingClientRect())
      .filter((r) => r.width > 0).map((r) => Math.min(r.width, r.height)))""")
    print(f"[screens] {name} {size} {theme}: header {header['height']:.0f} px, "
          f"smallest button side {smallest:.0f} px")
    if size == "phone":
        assert header["height"] <= 100, header
    if size == "tablet" and page.url.endswith("/tables/table0"):
        page.evaluate("() => window.scrollTo(0, 0)")
        for i in (0, 1):
            box = page.locator(f"#cushion-{i}").bounding_box()
            print(f"[screens] {name} tablet {theme}: cushion {i} bottom at "
                  f"{box['y'] + box['height']:.0f} of {SIZES['tablet']['height']} px")
            assert box["y"] >= 0 and box["y"] + box["height"] <= SIZES["tablet"]["height"], \
                (name, theme, i, box)


def contrast(page: Any, selector: str) -> float:
    ratio = float(page.evaluate(CONTRAST_JS, selector)["ratio"])
    print(f"[screens] contrast of {selector}: {ratio:.1f}:1")
    return ratio


def test_states_alerts_and_screens(served: Served) -> None:
    stack, url, directory = served.stack, served.url, served.directory
    errors: list[str] = []
    with chromium(ARGS) as browser:
        state = logged_in(browser, url)
        page = open_page(browser, url, state, "desktop", "light", errors=errors)
        # READY: its own green state, on the table and on the fleet card
        page.wait_for_selector('#cushion-0[data-state="ready"]')
        page.wait_for_selector('#cushion-1[data-state="heating"]')
        assert is_green(css_rgb(page, "#cushion-0 .state-pill", "backgroundColor"))
        assert not is_green(css_rgb(page, "#cushion-1 .state-pill", "backgroundColor"))
        assert page.locator("#cushion-0 [data-role=action]").text_content() == "Ready"
        fleet = open_page(browser, url, state, "desktop", "light", "/fleet", errors)
        pill = '[data-table="table0"] dd[data-state="ready"] .state-pill'
        fleet.wait_for_selector(pill)
        assert is_green(css_rgb(fleet, pill, "backgroundColor"))
        shot(fleet, "screens-fleet-ready-desktop-light")
        fleet.context.close()

        # labels stay readable after a click (the mouse stays on the button: hover)
        set_btn = "#cushion-0 .sp-form .set"
        page.locator(set_btn).click()
        page.wait_for_function("() => /setpoint set/.test(document.querySelector("
                               "'#cushion-0 [data-role=reply]').textContent)")
        assert contrast(page, set_btn) >= MIN_CONTRAST
        heat = '#cushion-1 [data-action="heat"]'
        for want in ("false", "true"):  # off, then on again: filled and hovered
            page.locator(heat).click()
            page.wait_for_selector(f'{heat}[aria-pressed="{want}"]')
            assert contrast(page, heat) >= MIN_CONTRAST, (want, contrast(page, heat))

        # a refused value does not stay on screen, and the reason is in words
        page.locator("#sp-input-1").fill("45")
        page.locator("#cushion-1 .sp-form .set").click()
        reply = page.locator("#cushion-1 [data-role=reply]")
        assert "45 °C is not possible" in reply.text_content()
        sp = page.locator("#cushion-1 [data-role=setpoint]").text_content()
        assert page.locator("#sp-input-1").input_value() == sp

        # the tools: a session timer shows its time on the table and its fleet card;
        # a preset saved from the current setpoints appears in the list
        page.locator("#timer-minutes").fill("30")
        page.locator("#timer-action").select_option("standby")
        page.locator("#timer-start").click()
        page.wait_for_function("() => /Session: (29|30) min .* left/.test("
                               "document.querySelector('#timer-chip').textContent)")
        fleet = open_page(browser, url, state, "desktop", "light", "/fleet", errors)
        fleet.wait_for_function("() => /Session: .* left/.test(document.querySelector("
                                "'[data-table=\"table0\"] .timer-chip').textContent)")
        fleet.context.close()
        page.locator("#preset-name").fill("Mrs Meier")
        page.locator("#preset-save").click()
        page.wait_for_function("() => Array.from(document.querySelectorAll("
                               "'#preset-select option')).some((o) => o.value === "
                               "'Mrs Meier')")
        assert "Preset Mrs Meier saved" in page.locator("#tools-reply").text_content()
        shot(page, "screens-tools-desktop-light")
        page.locator("#timer-stop").click()
        page.wait_for_selector("#timer-chip", state="hidden")

        # every size and theme, before a trip
        for size in SIZES:
            for theme in ("light", "dark"):
                p = open_page(browser, url, state, size, theme, errors=errors)
                p.wait_for_selector('#cushion-0[data-state="ready"]')
                check_screen(p, size, theme, "ready")
                if size == "phone":  # a tap, not a click: no hover to blame
                    p.locator("#cushion-0 .sp-form .set").tap()
                    p.wait_for_function("() => /setpoint set/.test(document.querySelector("
                                        "'#cushion-0 [data-role=reply]').textContent)")
                    assert contrast(p, "#cushion-0 .sp-form .set") >= MIN_CONTRAST
                p.context.close()

        # the event log with its filters, on a phone and a desktop
        for size in ("phone", "desktop"):
            p = open_page(browser, url, state, size, "dark",
                          "/tables/table0/events?range=1h&kind=settings", errors)
            p.wait_for_selector("#event-filters")
            assert p.locator("#filter-kind").input_value() == "settings"
            kinds = set(p.eval_on_selector_all(
                "#events tbody tr[data-kind]", "rows => rows.map((r) => r.dataset.kind)"))
            assert kinds and kinds <= {"setpoint", "heat"}, kinds
            assert "mqtt:" not in (p.locator("#events").text_content() or "")
            check_screen(p, size, "dark", "events")
            p.context.close()

        # the theme toggle is remembered
        page.locator("#theme-toggle").click()
        assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        page.reload()
        page.wait_for_selector("#live-status.ok")
        assert luminance(css_rgb(page, "body", "backgroundColor")) < 0.05
        page.locator("#theme-toggle").click()
        assert luminance(css_rgb(page, "body", "backgroundColor")) > 0.8

        # a trip on the lower cushion: blocked in words, the alert on every page
        assert stack.sim.handle({"fault": "sensor_open", "cushion": 1,
                                 "sensor": "primary"})["ok"]
        page.wait_for_selector('#cushion-1[data-state="blocked"]')
        blocked = page.locator('#cushion-1 [data-role="blocked"]').text_content()
        assert "Sensor disconnected" in blocked, blocked
        page.wait_for_selector("#alert-banner:not([hidden])")
        banner = page.locator("#alert-banner").text_content()
        assert "Lower body: Sensor disconnected" in banner, banner
        page.wait_for_function("() => window.__hydrothermAlarm.ringing && "
                               "window.__hydrothermAlarm.beeps >= 1")
        assert page.evaluate("() => window.__hydrothermAlarm.audio") == "running"
        page.wait_for_function("() => document.title.includes('SAFETY TRIP')")
        shot(page, "screens-alert-ringing-desktop-light")
        for size in SIZES:
            for theme in ("light", "dark"):
                p = open_page(browser, url, state, size, theme, errors=errors)
                p.wait_for_selector("#alert-banner:not([hidden])")
                p.wait_for_selector('#cushion-1[data-state="blocked"]')
                check_screen(p, size, theme, "blocked-alert")
                p.context.close()
            for theme in ("light", "dark"):
                p = open_page(browser, url, state, size, theme, "/fleet", errors)
                p.wait_for_selector("#alert-banner:not([hidden])")
                p.wait_for_selector('[data-table="table0"] dd[data-state="blocked"]')
                check_screen(p, size, theme, "fleet-alert")
                p.context.close()

        # a refused reset says why in words, without codes
        page.on("dialog", lambda d: d.accept())
        page.locator('#cushion-1 [data-action="reset"]').click()
        page.wait_for_function("() => !document.querySelector('#cushion-1 "
                               "[data-role=reply]').classList.contains('busy')")
        said = reply.text_content()
        assert "Sensor disconnected" in said and "sensor_open" not in said, said
        assert "cushion 1" not in said, said

        # a person acknowledges: the sound and the blinking stop, the banner stays
        page.locator("#alert-ack").click()
        page.wait_for_function("() => !window.__hydrothermAlarm.ringing")
        page.wait_for_function("() => !document.title.includes('SAFETY TRIP')")
        page.wait_for_selector("#alert-banner.acknowledged:not([hidden])")
        assert "acknowledged by therapist" in page.locator("#alert-banner").text_content()
        rows = [json.loads(line) for line in
                (directory / ACKS_FILE).read_text().splitlines()]
        assert rows[-1]["user"] == "therapist" and rows[-1]["cushion"] == 1
        shot(page, "screens-alert-acknowledged-desktop-light")

        # cleared and reset: the banner goes
        assert stack.sim.handle({"fault": "sensor_open", "cushion": 1,
                                 "sensor": "primary", "clear": True})["ok"]
        for _ in range(10):
            page.locator('#cushion-1 [data-action="reset"]').click()
            page.wait_for_function("() => !document.querySelector('#cushion-1 "
                                   "[data-role=reply]').classList.contains('busy')")
            if "reset accepted" in reply.text_content():
                break
            time.sleep(1.0)
        page.wait_for_selector("#alert-banner[hidden]", state="attached", timeout=30000)
    assert not errors, errors
