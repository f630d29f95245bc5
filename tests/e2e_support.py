"""What every browser test shares: the real stack behind a served dashboard, a real
headless Chromium (Debian's ``chromium`` driven by Playwright for Python), the login, and
screenshots.

* ``served_dashboard(cfg, directory, heat=...)``: the embedded broker, a simulated board
  on a pty, the real controller (``LocalStack``), the user ``therapist`` and the dashboard
  served by waitress on a free loopback port;
* ``chromium()``: a launched browser (skipped locally, failed under ``CI=true``, naming
  what to install when Playwright or Chromium is missing);
* ``new_page(browser, errors)``: a page whose script errors land in ``errors`` (each test
  asserts there are none);
* ``log_in(page, url)``: the login form as a person fills it, ending on the table page.

Screenshots go to ``artifacts/screenshots/`` (gitignored).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from dashboard.app import create_app
from dashboard.auth import UserStore
from dashboard.server import DashboardServer
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import Config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
PASSWORD = "warm water 37"
USER = "therapist"
#: how long a page step may wait (a loaded machine, a controller's next state)
STEP_TIMEOUT_MS = 20000


def require_browser() -> Any:
    """Playwright's sync API, or skip (fail under CI) naming what to install."""
    problems = []
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
        problems.append("the PyPI package 'playwright' (pip install -e '.[test]')")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        problems.append("Debian's 'chromium' package (apt-get install chromium)")
    if problems:
        message = "end-to-end browser test needs " + " and ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return sync_api


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@dataclass
class Served:
    stack: LocalStack
    url: str
    directory: Path
    app: Flask


@contextmanager
def served_dashboard(cfg: Config, directory: Path, *, heat: tuple[bool, bool],
                     broker_acl: bool = True, threads: int = 16,
                     app_options: Callable[[LocalStack], dict[str, Any]] | None = None,
                     ) -> Iterator[Served]:
    """The whole system on loopback, the dashboard's data (users, acknowledgements) in
    ``directory``; ``app_options(stack)``: more ``create_app`` arguments (the demo's
    tester panel needs the stack's simulator)."""
    with LocalStack(cfg, directory, heat=heat, broker_acl=broker_acl) as stack:
        users = UserStore(directory / "users.toml")
        users.set_password(USER, PASSWORD)
        extra = app_options(stack) if app_options is not None else {}
        app = create_app(cfg, stack.fleet, users, secret_key=os.urandom(32), **extra)
        server = DashboardServer(app, "127.0.0.1", 0, threads=threads).start()
        try:
            yield Served(stack, server.url, directory, app)
        finally:
            server.stop()


@contextmanager
def chromium(args: list[str] | None = None) -> Iterator[Any]:
    """A headless Chromium, closed afterwards; ``args`` replace ``CHROMIUM_ARGS``."""
    sync_api = require_browser()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=CHROMIUM_ARGS if args is None else args)
        try:
            yield browser
        finally:
            browser.close()


def watch_errors(page: Any, errors: list[str]) -> Any:
    """``page`` with its uncaught script errors collected in ``errors`` and the step
    timeout set."""
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(STEP_TIMEOUT_MS)
    return page


def new_page(browser: Any, errors: list[str], **options: Any) -> Any:
    """A fresh page (``options``: viewport, storage_state, ...), errors collected."""
    return watch_errors(browser.new_page(**options), errors)


def log_in(page: Any, url: str, start: str = "/", live: bool = True,
           password: str = PASSWORD) -> None:
    """Open ``start`` (redirected to the login form), log in as the therapist and land
    on the first table's page; ``live``: wait until its live updates are connected."""
    page.goto(url + start)
    assert "/login" in page.url, page.url
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/tables/table0$"))
    if live:
        page.wait_for_selector("#live-status.ok")
