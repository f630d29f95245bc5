"""The controller on MQTT: state out, validated commands in (topic tree: docs/mqtt.md).

Control never depends on MQTT.  The bridge only reads ``Controller.snapshot()`` and calls
the controller's command methods, which validate again; paho runs in its own network
thread, publishing runs in a thread of its own, commands are judged in a third
(``controller.mqtt.ratelimit``: paho's thread only rate-limits and queues them, so a
command flood cannot stop the keep-alive), and every callback catches its own errors (an
exception inside a paho callback would kill the network thread).

Who sent a command is known from its topic, because the broker's ACL lets only one account
publish there (``controller.mqtt.accounts``): ``cmd/…`` is the dashboard's (the person in
``actor`` is trusted from it and logged as ``mqtt:dashboard/<person>``), the plain
``…/set`` topics are Home Assistant's (``mqtt:homeassistant``).  With the
broker down the controller keeps controlling and logging; paho reconnects with back-off
and ``on_connect`` republishes the whole retained state.

Commands are refused, with the reason on the result topic and in the event log, when
they are retained (a broker must never replay a setpoint after a restart; the retained
copy is also cleared), oversized, not a JSON object, unknown, missing an actor, carry
unknown fields, are older than ``command_max_age_s`` by their ``sent_at``, or hold an
out-of-range value.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.service import CommandError, Controller
from hydrotherm.config import CUSHIONS, Config

from .accounts import DASHBOARD, HOMEASSISTANT
from .client import BrokerAddress, connect_kwargs, make_client
from .cushion_values import cushion_values
from .ha_discovery import discovery_messages
from .ratelimit import RATE_LIMIT, CommandGate, Offer, TokenBucket
from .refusals import refusal_payload
from .topics import COMMANDS, OFFLINE, ONLINE, QUERIES, Topics

log = logging.getLogger(__name__)

MAX_ID_LEN = 64
FIELDS = {"setpoint": {"cushion", "value"}, "heat": {"cushion", "on"}, "reset": {"cushion"},
          "history": {"cushion", "since", "until", "max_points"},
          "events": {"since", "until", "limit", "kinds"},
          "schedule": {"enabled", "entries"}}
MAX_POINTS = 2000
#: a whole week's schedule is larger than a setpoint: its own size limit
SCHEDULE_MAX_BYTES = 8192
MAX_EVENTS = 1000
COMMON = {"actor", "request_id", "sent_at"}
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")

#: paho's queue of unacknowledged QoS 1 messages; events queued while the broker is away
#: stop at EVENT_BACKLOG, so the burst after a reconnect (status, discovery, state,
#: values: about 40 messages) always fits and ``online`` is never refused for a full queue
PAHO_QUEUE = 1200
EVENT_BACKLOG = 1000
#: between the last ``offline`` being acknowledged and the disconnect (see ``stop``)
STOP_GRACE_S = 0.3
#: replies to commands refused by the rate limit: QoS 0, at most this many per second
REFUSAL_REPLIES_PER_S = 5.0


class CommandRefused(ValueError):
    """A command refused before it reached the controller."""


class MqttBridge:
    """Publishes one controller's state and takes its commands."""

    def __init__(self, controller: Controller, cfg: Config, address: BrokerAddress,
                 wall: Callable[[], float] = time.time) -> None:
        self.controller = controller
        self.cfg = cfg.mqtt
        self.control_cfg = cfg.control
        self.address = address
        self.wall = wall
        self.topics = Topics(self.cfg.prefix, self.cfg.table_id)
        self.client = make_client(self.cfg, address, f"hydrotherm-{self.cfg.table_id}")
        self.client.max_queued_messages_set(PAHO_QUEUE)
        self.client.will_set(self.topics.status, OFFLINE, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.counters = {"connects": 0, "disconnects": 0, "state_published": 0,
                         "events_published": 0, "events_dropped": 0, "commands_ok": 0,
                         "commands_refused": 0, "publish_failures": 0, "online_retries": 0}
        self.last_error = ""
        self._lock = threading.Lock()
        self._last_sig: Any = None
        self._last_state_at = 0.0
        self._values: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._force = threading.Event()
        self._held = False  # a change waits for min_interval_s (``publish_state``)
        self._last_quick: Any = None  # ``_quick_key`` at the last full look
        self._discovered_fw: str | None = None
        self._online_pending = False
        self._offline_events = 0
        self._reply_bucket = TokenBucket(REFUSAL_REPLIES_PER_S, REFUSAL_REPLIES_PER_S,
                                         time.monotonic)
        self.gate = CommandGate(self._handle_offer, self._refuse_fast, self._report_refusals,
                                rate_per_s=self.cfg.command_rate_per_s,
                                burst=self.cfg.command_burst,
                                queue_size=self.cfg.command_queue)
        controller.listeners.append(self._on_controller_event)

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> MqttBridge:
        self.gate.start()
        self.client.connect_async(self.address.host, self.address.port,
                                  keepalive=self.cfg.keepalive_s, **connect_kwargs(self.cfg))
        self.client.loop_start()
        self._thread = threading.Thread(target=self._publish_loop, name="mqtt-publish",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 3.0) -> None:
        """Say ``offline`` (retained) and disconnect: a stopped controller is offline."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout_s)
        self.gate.stop(timeout_s)
        if self.connected.is_set():
            try:
                self._publish_all(self.controller.snapshot())
                info = self.client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
                info.wait_for_publish(timeout_s)
                # amqtt 0.12 acknowledges a publish before its per-client loop has handed
                # it on, and drops what is still queued there when the client disconnects:
                # give it a moment (Mosquitto needs none)
                time.sleep(STOP_GRACE_S)
            except Exception as exc:  # noqa: BLE001 - stopping anyway
                log.warning("could not publish offline: %s", exc)
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    # --- paho callbacks (each catches its own errors) --------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        try:
            if reason_code.is_failure:
                self.last_error = f"broker refused the connection: {reason_code}"
                log.warning(self.last_error)
                return
            self.counters["connects"] += 1
            self.last_error = ""
            t = self.topics
            client.subscribe([(t.command_filter, 1), (t.value_set_filter, 1),
                              (f"{self.cfg.discovery_prefix}/status", 1)])
            self._offline_events = 0
            self._publish_online()
            with self._lock:
                self._values.clear()  # republish every retained value
                self._last_sig = None
            self._publish_discovery()
            self.connected.set()
            self._force.set()
        except Exception:  # noqa: BLE001
            log.exception("on_connect failed")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self.connected.clear()
        self.counters["disconnects"] += 1

    def _publish_online(self) -> None:
        """``online``, checked: if paho cannot take it now, the publish loop retries."""
        info = self.client.publish(self.topics.status, ONLINE, qos=1, retain=True)
        self._online_pending = info.rc != mqtt.MQTT_ERR_SUCCESS
        if self._online_pending:
            self.counters["online_retries"] += 1
            log.warning("could not publish online (%s): retrying",
                        mqtt.error_string(info.rc))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """On paho's network thread: only sort, rate-limit and queue (ratelimit)."""
        try:
            topic = msg.topic
            if topic == f"{self.cfg.discovery_prefix}/status":
                if msg.payload == b"online":  # Home Assistant restarted: send discovery again
                    self.gate.offer(Offer(msg, HOMEASSISTANT, False))
                return
            if not msg.payload:
                return  # the deletion of a retained message (ours, after a refusal)
            if topic.startswith(self._cmd_prefix):
                self.gate.offer(Offer(msg, DASHBOARD, topic.endswith("/cmd/heat")
                                      and _is_heat_off(msg.payload)))
            elif topic.endswith("/set"):
                self.gate.offer(Offer(msg, HOMEASSISTANT,
                                      topic.endswith("/mode/set") and msg.payload == b"off"))
        except Exception:  # noqa: BLE001
            log.exception("command triage failed")

    @property
    def _cmd_prefix(self) -> str:
        return f"{self.topics.base}/cmd/"

    # --- commands (on the gate's thread) ---------------------------------------------------

    def _handle_offer(self, offer: Offer) -> None:
        if offer.msg.topic == f"{self.cfg.discovery_prefix}/status":
            self._publish_discovery()
            return
        self._handle_command(offer.msg)

    def _refuse_fast(self, offer: Offer, why: str) -> None:
        """On the network thread: a QoS 0 reply (itself rate-limited) and nothing else; the
        event log hears of it in the gate's next report."""
        self.counters["commands_refused"] += 1
        if not self._reply_bucket.take():
            return
        msg = offer.msg
        name = msg.topic[len(self._cmd_prefix):] if msg.topic.startswith(self._cmd_prefix) \
            else "ha"
        limit = (f"more than {self.cfg.command_rate_per_s:g} commands/s from account "
                 f"{offer.account}" if why == RATE_LIMIT
                 else "the controller's command queue is full")
        payload = json.dumps({"request_id": _request_id(msg.payload), "command": name,
                              "ok": False, "error": f"refused ({why}): {limit}"})
        self.client.publish(self.topics.result, payload, qos=0)

    def _report_refusals(self, counts: dict[tuple[str, str], int]) -> None:
        """One event per account and reason for every refusal the gate counted."""
        for (account, why), n in sorted(counts.items()):
            self.controller.record_event(
                "command_refused", actor=f"mqtt:{account}",
                reason=f"{n} command{'s' if n != 1 else ''} refused ({why})",
                detail={"via": "mqtt", "count": n, "why": why,
                        "interval_s": self.gate.tally.interval_s})

    def _handle_command(self, msg: mqtt.MQTTMessage) -> None:
        t = self.topics
        reply_to, correlation = _response_properties(msg)
        request_id: Any = None
        name = "?"
        try:
            if not msg.payload:
                # An empty payload is how a retained message is deleted (ours, after
                # refusing a retained command, comes back here): not a command.
                return
            if msg.topic.startswith(f"{t.base}/cmd/"):
                name = msg.topic[len(f"{t.base}/cmd/"):]
                self._refuse_transport(msg)
                body = _parse_json(msg.payload)
                request_id = body.get("request_id")
                result = self._dispatch(name, body, request_id, reply_to, correlation)
            elif msg.topic.startswith(f"{t.base}/cushion/") and msg.topic.endswith("/set"):
                name = "ha"
                self._refuse_transport(msg)
                result = self._dispatch_plain(msg.topic, msg.payload.decode("utf-8", "replace"))
            else:
                return
        except CommandRefused as exc:
            self._refused(name, request_id, str(exc), reply_to, correlation)
            return
        except CommandError as exc:  # the controller refused (and logged) it
            self.counters["commands_refused"] += 1
            self._reply(name, request_id, False, {"error": str(exc)}, reply_to, correlation)
            return
        if result is not None:
            self.counters["commands_ok"] += 1
            self._reply(name, request_id, True, result, reply_to, correlation)

    def _refuse_transport(self, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            # Clear the retained copy so no broker can replay it later.
            self.client.publish(msg.topic, b"", qos=1, retain=True)
            raise CommandRefused("retained command ignored: commands must not be retained")
        limit = self.cfg.command_max_bytes
        if msg.topic == self.topics.command("schedule"):
            limit = max(limit, SCHEDULE_MAX_BYTES)
        if len(msg.payload) > limit:
            raise CommandRefused(f"payload of {len(msg.payload)} bytes is over the "
                                 f"{limit}-byte limit")

    def _dispatch(self, name: str, body: dict[str, Any], request_id: Any,
                  reply_to: str | None, correlation: bytes | None) -> dict[str, Any] | None:
        if request_id is not None and (not isinstance(request_id, str)
                                       or not 0 < len(request_id) <= MAX_ID_LEN):
            raise CommandRefused(f"request_id must be a string of 1–{MAX_ID_LEN} characters")
        if name not in COMMANDS and name not in QUERIES:
            raise CommandRefused(f"unknown command {name!r} "
                                 f"(known: {', '.join(COMMANDS + QUERIES)})")
        unknown = set(body) - FIELDS[name] - COMMON
        if unknown:
            raise CommandRefused(f"unknown field(s) {', '.join(sorted(unknown))} for {name}")
        if name in QUERIES:
            self._check_age(body.get("sent_at"))
            return self._query(name, body)
        actor = body.get("actor")
        if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ID_LEN:
            raise CommandRefused(f"actor (who asks) is required: a string of 1–{MAX_ID_LEN} "
                                 "characters")
        self._check_age(body.get("sent_at"))
        actor = f"mqtt:{DASHBOARD}/{actor.strip()}"  # only the dashboard may publish cmd/
        c = self.controller
        if name == "setpoint":
            if "cushion" not in body or "value" not in body:
                raise CommandRefused("setpoint needs cushion and value")
            _check_cushion(body["cushion"])
            value = c.set_setpoint(body["cushion"], body["value"], actor)
            return {"cushion": body["cushion"], "setpoint_c": value}
        if name == "heat":
            if "cushion" not in body or "on" not in body:
                raise CommandRefused("heat needs cushion and on")
            _check_cushion(body["cushion"])
            c.set_heat(body["cushion"], body["on"], actor)
            return {"cushion": body["cushion"], "heat_on": body["on"]}
        if name == "schedule":
            return self._schedule(body, actor)
        # reset: judged after the board has cleared its faults; reply then
        cushion = body.get("cushion")
        if cushion is not None:
            _check_cushion(cushion)
        c.request_reset(actor, cushion, done=self._reset_done("reset", request_id, cushion,
                                                              reply_to, correlation))
        return None

    def _schedule(self, body: dict[str, Any], actor: str) -> dict[str, Any]:
        """Replace the table's weekly schedule (validated by the controller's schedule)."""
        runner = self.controller.schedule
        if runner is None:
            raise CommandRefused("this controller keeps no schedule")
        if "entries" not in body:
            raise CommandRefused("schedule needs entries (a list; [] clears the schedule)")
        try:
            sched = runner.update({k: body[k] for k in ("enabled", "entries") if k in body},
                                  actor)
        except ValueError as exc:  # ScheduleError: the reason, for a person
            raise CommandRefused(f"schedule refused: {exc}") from None
        return {"schedule": sched.as_dict()}

    def _reset_done(self, name: str, request_id: Any, cushion: int | None,
                    reply_to: str | None = None, correlation: bytes | None = None
                    ) -> Callable[[Any], None]:
        """The reply to a reset, sent once the supervisor has judged it."""
        def done(res: Any) -> None:
            payload = {"cushion": cushion, "cleared": [t.reason for t in res.cleared],
                       "refused": [{"reason": t.reason, "why": why,
                                    "service_only": t.service is not None}
                                   for t, why in res.refused]}
            if res.ok:
                self.counters["commands_ok"] += 1
                self._reply(name, request_id, True, payload, reply_to, correlation)
            else:
                self.counters["commands_refused"] += 1
                payload["error"] = "; ".join(f"{t.reason}: {why}" for t, why in res.refused)
                self._reply(name, request_id, False, payload, reply_to, correlation)
        return done

    def _query(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Read-only answers from the event log (the dashboard's longer chart ranges and
        its event page); no actor needed, nothing changes."""
        log_ = self.controller.log
        if log_ is None:
            raise CommandRefused("this controller keeps no event log")
        now = self.wall()
        since = _number(body.get("since", now - 3600), "since")
        until = body.get("until")
        until = None if until is None else _number(until, "until")
        if name == "history":
            cushion = body.get("cushion")
            if isinstance(cushion, bool) or cushion not in (0, 1):
                raise CommandRefused("history needs cushion 0 or 1")
            points = body.get("max_points", 720)
            if isinstance(points, bool) or not isinstance(points, int) \
                    or not 2 <= points <= MAX_POINTS:
                raise CommandRefused(f"max_points must be a whole number 2–{MAX_POINTS}")
            samples = log_.history(cushion, since, until)
            step = max(1, math.ceil(len(samples) / points))
            rows = [[round(s.time, 1), s.water_c, s.setpoint_c, s.output]
                    for s in samples[::step]]
            return {"cushion": cushion, "since": since, "until": until, "step": step,
                    "columns": ["time", "water_c", "setpoint_c", "output"], "samples": rows}
        limit = body.get("limit", 200)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_EVENTS:
            raise CommandRefused(f"limit must be a whole number 1–{MAX_EVENTS}")
        kinds = body.get("kinds")
        if kinds is not None and (not isinstance(kinds, list)
                                  or not all(isinstance(k, str) for k in kinds)):
            raise CommandRefused("kinds must be a list of event kinds")
        try:
            events = log_.events(since=since, until=until, kinds=kinds, limit=limit)
        except ValueError as exc:
            raise CommandRefused(str(exc)) from None
        return {"events": [e.as_dict() for e in events]}

    def _dispatch_plain(self, topic: str, text: str) -> dict[str, Any] | None:
        """Home Assistant's plain payloads: ``.../cushion/<i>/setpoint_c/set`` and
        ``.../cushion/<i>/mode/set`` (heat|off).  Only the homeassistant account may
        publish there, so that is the actor."""
        parts = topic.split("/")
        if parts[-3] not in [str(i) for i in range(CUSHIONS)]:
            raise CommandRefused(f"bad cushion in {topic!r}")
        cushion = int(parts[-3])
        what = parts[-2]
        actor = f"mqtt:{HOMEASSISTANT}"
        if what == "setpoint_c":
            if not _PLAIN_NUMBER.fullmatch(text.strip()):  # float() would take "1_0" as 10
                raise CommandRefused(f"setpoint {text!r} is not a number")
            value = float(text)
            return {"cushion": cushion, "setpoint_c":
                    self.controller.set_setpoint(cushion, value, actor)}
        if what == "reset":
            if text != "PRESS":
                raise CommandRefused(f"reset {text!r}: send PRESS")
            self.controller.request_reset(actor, cushion, done=self._reset_done("ha", None,
                                                                               cushion))
            return None
        if what == "mode":
            if text not in ("heat", "off"):
                raise CommandRefused(f"mode {text!r}: must be heat or off")
            self.controller.set_heat(cushion, text == "heat", actor)
            return {"cushion": cushion, "heat_on": text == "heat"}
        raise CommandRefused(f"{what!r} cannot be set")

    def _check_age(self, sent_at: Any) -> None:
        if sent_at is None:
            return
        if isinstance(sent_at, bool) or not isinstance(sent_at, int | float) \
                or not math.isfinite(sent_at):
            raise CommandRefused("sent_at must be a unix time in seconds")
        age = self.wall() - sent_at
        if age > self.cfg.command_max_age_s:
            raise CommandRefused(f"stale command: sent {age:.0f} s ago, the limit is "
                                 f"{self.cfg.command_max_age_s:.0f} s")
        if age < -self.cfg.command_max_age_s:
            raise CommandRefused(f"sent_at is {-age:.0f} s in the future: check the clocks")

    def _refused(self, name: str, request_id: Any, reason: str, reply_to: str | None,
                 correlation: bytes | None) -> None:
        self.counters["commands_refused"] += 1
        rid = request_id if isinstance(request_id, str) and len(request_id) <= MAX_ID_LEN \
            else None
        self.controller.record_event("command_refused", reason=reason,
                                     detail={"command": name, "via": "mqtt",
                                             "request_id": rid})
        self._reply(name, rid, False, {"error": reason}, reply_to, correlation)

    def _reply(self, name: str, request_id: Any, ok: bool, body: dict[str, Any],
               reply_to: str | None, correlation: bytes | None) -> None:
        payload = json.dumps({"request_id": request_id, "command": name, "ok": ok, **body})
        props = None
        if self.cfg.protocol == "5":
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = 300
            if correlation is not None:
                props.CorrelationData = correlation
        self.client.publish(reply_to or self.topics.result, payload, qos=1, properties=props)

    # --- publishing ------------------------------------------------------------------------

    def _on_controller_event(self, ev: dict[str, Any]) -> None:
        if ev.get("type") == "event":
            if not self.connected.is_set():
                if self._offline_events >= EVENT_BACKLOG:
                    self.counters["events_dropped"] += 1  # still in the event log
                    return
                self._offline_events += 1
            body = {k: v for k, v in ev.items() if k != "type"}
            body["table_id"] = self.cfg.table_id
            self._publish(self.topics.events, json.dumps(body, default=str))
            self.counters["events_published"] += 1
            refusal = refusal_payload(body)
            if refusal is not None:
                self.client.publish(self.topics.refusal, json.dumps(refusal), qos=1,
                                    retain=True)
        self._force.set()

    def _publish(self, topic: str, payload: str, retain: bool = False) -> bool:
        """QoS 1, the return code checked (a full queue is counted, never silent)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.counters["publish_failures"] += 1
            return False
        return True

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            woken = self._force.wait(min(0.25, self.cfg.min_interval_s))
            self._force.clear()
            if not self.connected.is_set():
                continue
            try:
                if self._online_pending:
                    self._publish_online()
                # between control cycles and events only the board's report moves; its
                # significant part is a few fields, far cheaper than a snapshot (200
                # tables: 1,000 snapshots a second, most of them unchanged)
                quick = self._quick_key()
                if woken or self._held or quick != self._last_quick or \
                        time.monotonic() - self._last_state_at >= self.cfg.state_interval_s:
                    self._last_quick = quick
                    self.publish_state()
            except Exception:  # noqa: BLE001
                log.exception("publishing failed")

    def _quick_key(self) -> Any:
        """What of ``_significant`` can change with a board report alone (the rest
        changes with a control cycle or an event, and both wake the loop)."""
        link = self.controller.link
        r = link.latest
        return (link.state, link.healthy, None if r is None else (
            r.relay_closed, r.faults, round(r.cushions[0].applied, 2),
            round(r.cushions[1].applied, 2)))

    def publish_state(self, force: bool = False) -> bool:
        """Publish the state if it changed (at most every min_interval_s) or is due.

        A change in trips, alarms or link health is published at once, not at the next
        rate-limited slot: a therapist (and Home Assistant) must see a trip immediately."""
        snap = self.controller.snapshot()
        now = time.monotonic()
        sig = _significant(snap)
        with self._lock:
            due = now - self._last_state_at >= self.cfg.state_interval_s
            changed = sig != self._last_sig
            urgent = self._last_sig is None or _safety_part(sig) != _safety_part(self._last_sig)
            if not (force or due or urgent or (
                    changed and now - self._last_state_at >= self.cfg.min_interval_s)):
                self._held = changed  # changed, held by min_interval_s: look again
                return False
            self._held = False
            self._last_sig = sig
            self._last_state_at = now
        self._publish_all(snap)
        board = snap["board"]
        if board and board["firmware"] != self._discovered_fw:
            self._publish_discovery()  # the board's firmware is known now (hw_version)
        return True

    def _publish_all(self, snap: dict[str, Any]) -> None:
        t = self.topics
        snap = {**snap, "table_id": self.cfg.table_id}
        if self._publish(t.state, json.dumps(snap), retain=True):
            self.counters["state_published"] += 1
        self._publish_value(t.readings, ONLINE if snap["link"]["healthy"] else OFFLINE)
        for c in snap["cushions"]:
            i = c["cushion"]
            for name, value in cushion_values(c, snap).items():
                self._publish_value(t.value(i, name), value)

    def _publish_value(self, topic: str, value: str) -> None:
        with self._lock:
            if self._values.get(topic) == value:
                return
            self._values[topic] = value
        self._publish(topic, value, retain=True)

    def _publish_discovery(self) -> None:
        if not self.cfg.discovery:
            return
        ident = self.controller.link.identity
        self._discovered_fw = ident.firmware if ident else None
        for topic, payload in discovery_messages(self.cfg, self.control_cfg,
                                                 self._discovered_fw):
            self.client.publish(topic, json.dumps(payload), qos=1, retain=True)


def _significant(snap: dict[str, Any]) -> Any:
    """What must change for an early state publication (not the noise in the last digit)."""
    cushions = tuple(
        (round(c["water_c"]["estimate"], 1) if c["water_c"]["estimate"] is not None else None,
         c["setpoint_c"], c["heat_on"],
         round(c["output"], 2) if c["output"] is not None else None,
         tuple(t["reason"] for t in c["trips"]), tuple(a["name"] for a in c["alarms"]),
         round(c["ready_in_s"] / 60) if c["ready_in_s"] is not None else None,
         c.get("heat_state", {}).get("state"), c.get("reset_allowed"))
        for c in snap["cushions"])
    board = snap["board"]
    sched = snap.get("schedule") or {}
    plan = tuple((c.get("phase"), c.get("late"), c.get("heat_start_at"),
                  c.get("next_ready_at"), c.get("expected_ready_at"))
                 for c in sched.get("cushions") or ())
    return (snap["link"]["state"], snap["link"]["healthy"], cushions,
            (board["relay_closed"], tuple(board["faults"] or ())) if board else None,
            (sched.get("enabled"), sched.get("entries"), plan))


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CommandRefused(f"{key} must be a unix time in seconds")
    return float(value)


def _check_cushion(cushion: Any) -> None:
    """A cushion number must be a JSON integer: 0.0 or true would pass ``in range()``
    and then fail deep inside the controller."""
    if isinstance(cushion, bool) or not isinstance(cushion, int) or cushion not in \
            range(CUSHIONS):
        raise CommandRefused(f"cushion must be an integer 0–{CUSHIONS - 1}, got {cushion!r}")


def _safety_part(sig: Any) -> Any:
    """From ``_significant``: link state and health, and each cushion's trips, alarms and
    whether it is blocked (a cushion that cannot heat must say so at once; heating, ready
    and holding may flicker at the band's edge and wait for the rate limit)."""
    link_state, healthy, cushions, _board, plan = sig
    return (link_state, healthy, tuple((c[4], c[5], c[7] == "blocked") for c in cushions),
            tuple(p[1] for p in plan[2]))  # a late forecast is news at once too


def _is_heat_off(payload: bytes) -> bool:
    """A ``cmd/heat`` asking for heat off: the one command a flood must never delay."""
    if b'"on"' not in payload or b"false" not in payload:
        return False
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and body.get("on") is False


def _request_id(payload: bytes) -> str | None:
    """The request id of a refused command, if cheaply found (for its QoS 0 reply)."""
    if b"request_id" not in payload or len(payload) > 1024:
        return None
    try:
        rid = json.loads(payload).get("request_id")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    return rid if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_LEN else None


def _parse_json(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandRefused(f"malformed command: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise CommandRefused("malformed command: the payload must be a JSON object")
    return body


def _response_properties(msg: mqtt.MQTTMessage) -> tuple[str | None, bytes | None]:
    props = getattr(msg, "properties", None)
    if props is None:
        return None, None
    return getattr(props, "ResponseTopic", None), getattr(props, "CorrelationData", None)
