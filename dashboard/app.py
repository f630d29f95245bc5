"""The Flask application: pages, login, the JSON API, live updates, health and metrics.

``create_app`` wires one FleetClient (the dashboard's only source: it never talks to a
controller directly) to a set of server-rendered pages, the ``/api/`` JSON API the pages
use (``dashboard.api``), Server-Sent Events for live updates (``dashboard.live``) and the
login (``dashboard.auth``).  Every state-changing request needs a logged-in session and a
CSRF token; every command is validated here and again by the controller, and carries the
logged-in user as its actor, so the controller's event log says who did it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    abort,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from controller.mqtt.fleet import FleetClient
from hydrotherm.config import Config, parse_networks

from .alerts import ACKS_FILE, AckLog
from .api import EVENT_RANGES, query_events, register_api
from .auth import LoginThrottle, UserStore
from .context import HEARTBEAT_S, Dashboard, DemoActions
from .event_filters import EVENT_GROUPS, EVENTS_PER_PAGE, event_filters
from .live import Broadcaster
from .metrics import Metrics
from .present import CUSHION_NAMES
from .presets import PRESETS_FILE, PresetStore
from .proxy import TrustedProxyFix
from .schedule_api import register_schedule_api
from .sessions import SESSIONS_FILE, SessionStore
from .timers import TIMERS_FILE, SessionTimers
from .tools_api import register_tools, timer_runner

log = logging.getLogger(__name__)


def reserved_threads(threads: int) -> int:
    """Server threads kept free for ordinary requests whatever the number of live streams."""
    return max(2, threads // 8)


#: The tester panel's faults (demo mode only): name, what a tester reads, the parameters
#: it takes, and a default for its value field.  Every fault of the simulator
#: (``sim.faults.FAULTS``, checked by a test: the dashboard does not import the simulator)
#: and ``host_stall`` (the control loop hangs, injected into the demo's controller).
DEMO_FAULTS = (
    ("sensor_open", "A sensor wire breaks (reads open)", ("cushion", "sensor"), None),
    ("sensor_short", "A sensor shorts", ("cushion", "sensor"), None),
    ("sensor_drift", "A sensor drifts", ("cushion", "sensor", "offset_c"), 2.0),
    ("heater_stuck_on", "The heater relay welds (full power)", ("cushion",), None),
    ("heater_dead", "The heater element fails (no power)", ("cushion",), None),
    ("cushion_leak", "The cushion leaks", ("cushion", "kg_per_min"), 2.0),
    ("serial_noise", "Noise on the serial line", ("error_rate",), 0.01),
    ("serial_silence", "The serial line goes silent", ("duration_s",), 30.0),
    ("board_reset", "The board resets", (), None),
    ("unplug", "The serial cable is pulled out", (), None),
    ("replug", "The serial cable is plugged back in", (), None),
    ("host_stall", "The control loop hangs", ("duration_s",), 60.0),
)

#: The tester panel's client buttons: label, action.
DEMO_BUTTONS = (
    ("Client lies down", "client_on", {}),
    ("Client gets up", "client_off", {}),
)


class User(UserMixin):
    """A logged-in person.  The id carries the password stamp (a password change ends the
    login) and the server-side session id (a logout ends it: ``sessions.SessionStore``)."""

    def __init__(self, name: str, stamp: str, sid: str) -> None:
        self.name = name
        self.sid = sid
        self.id = f"{name}:{stamp}:{sid}"


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure when configured so, and always when the request came
    over HTTPS (directly, or through a trusted proxy that says so: ``proxy.py``)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        return has_request_context() and request.is_secure




def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (no scheme, no host, no //evil.example)."""
    if not target or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _is_api() -> bool:
    return request.path.startswith("/api/")


def create_app(cfg: Config, fleet: FleetClient, users: UserStore, *, secret_key: bytes,
               demo: bool = False, testing: bool = False,
               demo_actions: DemoActions | None = None, secure_cookies: bool = False,
               heartbeat_s: float = HEARTBEAT_S, sessions: SessionStore | None = None
               ) -> Flask:
    """The dashboard for the tables ``fleet`` sees.  ``secret_key`` signs the sessions
    (``auth.load_secret_key``); ``demo`` adds the tester panel, whose buttons call
    ``demo_actions(name, params)``.  ``sessions`` records the valid logins (default: a
    file next to the users file).  ``secure_cookies`` forces the Secure flag; without it
    the flag is set whenever the request came over HTTPS."""
    if not isinstance(secret_key, bytes | bytearray) or len(secret_key) < 16:
        raise ValueError("secret_key must be at least 16 random bytes")
    app = Flask(__name__)
    app.session_interface = _SessionInterface()
    app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, parse_networks(cfg.dashboard.trusted_proxies))
    app.config.update(
        SECRET_KEY=bytes(secret_key),
        TESTING=testing,
        SESSION_COOKIE_NAME="hydrotherm_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=cfg.dashboard.session_hours),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=secure_cookies,
        REMEMBER_COOKIE_SAMESITE="Strict",
        # the token lives as long as the session: a tablet left open keeps working
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_ENABLED=True,
        MAX_CONTENT_LENGTH=16 * 1024,
        JSON_SORT_KEYS=False,
    )
    metrics = Metrics(fleet)
    threads = cfg.dashboard.threads
    broadcaster = Broadcaster(cfg, fleet, max_clients=max(1, threads - reserved_threads(threads)),
                              on_change=metrics.on_live_change)
    if sessions is None:
        sessions = SessionStore(users.path.with_name(SESSIONS_FILE))
    dash = Dashboard(cfg, fleet, users, broadcaster, metrics, LoginThrottle(), sessions,
                     demo, demo_actions, heartbeat_s)
    data_dir = users.path.parent
    dash.acks = AckLog(data_dir / ACKS_FILE)
    dash.presets = PresetStore(data_dir / PRESETS_FILE)
    dash.timers = SessionTimers(data_dir / TIMERS_FILE, timer_runner(dash))
    app.extensions["hydrotherm"] = dash

    CSRFProtect(app)
    lm = LoginManager(app)
    lm.session_protection = "basic"
    lm.login_view = "login"

    @lm.user_loader
    def load_user(user_id: str) -> User | None:
        name, stamp, sid = (user_id.split(":") + ["", ""])[:3]
        current = users.stamp(name)
        if current is None or current != stamp:
            return None  # deleted, or the password changed since this login
        if not sessions.valid(sid, name):
            return None  # logged out (here or everywhere), expired, or never issued
        return User(name, stamp, sid)

    @lm.unauthorized_handler
    def unauthorized() -> Any:
        if _is_api():
            return jsonify(error="not logged in: log in at /login first"), 401
        return redirect(url_for("login", next=request.full_path.rstrip("?")))

    # --- request bookkeeping, security headers ---------------------------------------------

    @app.before_request
    def _start_timer() -> Any:
        g.t0 = time.perf_counter()
        dash.forget_gone()
        login_at = session.get("login_at")
        if login_at is not None and time.time() - login_at > cfg.dashboard.session_hours * 3600:
            logout_user()
            session.clear()
        return None

    @app.after_request
    def _after(resp: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        metrics.count_request(route, request.method, resp.status_code)
        if "t0" in g:
            metrics.latency.labels(route).observe(time.perf_counter() - g.t0)
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if _is_api() or request.path in ("/healthz", "/metrics"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    # --- errors: JSON under /api/, pages elsewhere -----------------------------------------

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> Any:
        reason = f"CSRF check failed: {exc.description}"
        if _is_api():
            return jsonify(error=reason), 403
        if request.endpoint == "login":
            return render_template("login.html", error="The login form had expired: please "
                                   "try again.", next=None), 403
        return render_template("error.html", title="Form expired",
                               message=reason + " Reload the page and try again."), 403

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if _is_api() or request.path == "/healthz":
            resp = exc.get_response()
            resp.set_data(json.dumps({"error": exc.description or exc.name}))
            resp.mimetype = "application/json"
            return resp
        if exc.code == 404:
            return render_template("error.html", title="Not found",
                                   message=exc.description), 404
        return exc

    # --- login ----------------------------------------------------------------------------

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        nxt = _safe_next(request.values.get("next"))
        if request.method == "GET":
            if current_user.is_authenticated:
                return redirect(nxt or url_for("index"))
            return render_template("login.html", error=None, next=nxt)
        key = request.remote_addr or "?"
        name = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        wait = dash.limiter.wait_s(name, key)
        if wait > 0:
            metrics.logins.labels("throttled").inc()
            resp = Response(render_template(
                "login.html", next=nxt,
                error=f"Too many failed attempts: wait {math.ceil(wait)} s and try again."), 429)
            resp.headers["Retry-After"] = str(math.ceil(wait))
            return resp
        if not users.verify(name, password):
            dash.limiter.failed(name, key)
            metrics.logins.labels("failed").inc()
            return render_template("login.html", next=nxt,
                                   error="Wrong user name or password."), 401
        dash.limiter.succeeded(name, key)
        metrics.logins.labels("ok").inc()
        session.clear()  # no session fixation: a fresh session for the logged-in user
        session.permanent = True
        session["login_at"] = time.time()
        sid = sessions.create(name, cfg.dashboard.session_hours * 3600)
        login_user(User(name, users.stamp(name) or "", sid))
        return redirect(nxt or url_for("index"))

    @app.post("/logout")
    def logout() -> Any:
        """End this login on the server too (a copy of the cookie stops working); with
        ``everywhere`` set, every login of this user."""
        if current_user.is_authenticated:
            if request.form.get("everywhere"):
                sessions.revoke_user(current_user.name)
            else:
                sessions.revoke(current_user.sid)
        logout_user()
        session.clear()
        return redirect(url_for("login", bye=1))

    # --- pages ----------------------------------------------------------------------------

    def page_data(**extra: Any) -> dict[str, Any]:
        c = cfg.control
        return {"setpoint_min": c.setpoint_min_c, "setpoint_max": c.setpoint_max_c,
                "setpoint_step": c.setpoint_step_c, "button_step": 0.5,
                "stale_after_s": 3 * cfg.mqtt.state_interval_s + 2,
                "cushion_names": list(CUSHION_NAMES), **extra}

    @app.get("/")
    @login_required
    def index() -> Any:
        return redirect(url_for("table_page", table_id=dash.default_table()))

    @app.get("/tables/<table_id>")
    @login_required
    def table_page(table_id: str) -> Any:
        if fleet.table(table_id) is None and table_id != dash.default_table():
            abort(404, description=f"No table {table_id!r} on the broker.")
        view = dash.presented(table_id)
        return render_template("table.html", view=view, table_id=table_id,
                               demo=demo, demo_buttons=DEMO_BUTTONS if demo else (),
                               demo_faults=DEMO_FAULTS if demo else (),
                               standby_c=cfg.dashboard.standby_setpoint_c,
                               data=page_data(page="table", table_id=table_id, view=view,
                                              demo=demo))

    @app.get("/fleet")
    @login_required
    def fleet_page() -> Any:
        views = [dash.presented(tid) for tid in sorted(fleet.snapshot())]
        return render_template("fleet.html", views=views,
                               data=page_data(page="fleet"))

    @app.get("/events")
    @login_required
    def events_default() -> Any:
        return redirect(url_for("events_page", table_id=dash.default_table()))

    @app.get("/tables/<table_id>/events")
    @login_required
    def events_page(table_id: str) -> Any:
        if fleet.table(table_id) is None and table_id != dash.default_table():
            abort(404, description=f"No table {table_id!r} on the broker.")
        f = event_filters(request.args)
        events, error = query_events(dash, table_id, time.time() - EVENT_RANGES[f.range],
                                     EVENTS_PER_PAGE, until=f.before,
                                     kinds=EVENT_GROUPS[f.kind][1] or None)
        events = events or []
        older = None
        if len(events) >= EVENTS_PER_PAGE and events[-1].get("time"):
            older = events[-1]["time"]
        if f.cushion is not None:
            events = [e for e in events if e.get("cushion_index") in (f.cushion, None)]
        return render_template("events.html", table_id=table_id, events=events,
                               error=error, range=f.range, ranges=list(EVENT_RANGES),
                               f=f, groups=EVENT_GROUPS, older=older,
                               view=dash.presented(table_id),
                               data=page_data(page="events", table_id=table_id,
                                              filters=f.as_dict(),
                                              filter_kinds=EVENT_GROUPS[f.kind][1]))

    # --- health and metrics (no login) ----------------------------------------------------

    @app.get("/healthz")
    def healthz() -> Any:
        ok = fleet.broker_connected
        body = {"status": "ok" if ok else "broker unreachable", "broker": ok,
                "tables": len(fleet.snapshot())}
        return jsonify(body), 200 if ok else 503

    @app.get("/metrics")
    def metrics_page() -> Any:
        data, ctype = metrics.render()
        return Response(data, 200, {"Content-Type": ctype})

    register_api(app, dash)
    register_schedule_api(app, dash)
    register_tools(app, dash)
    return app
