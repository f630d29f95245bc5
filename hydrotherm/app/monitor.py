"""``hydrotherm monitor``: the link alone, printing what the board reports (no control,
no heating: a first check of wiring and sensors)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from controller.heat_state import cushion_words
from firmware_bridge.link import BoardLink
from hydrotherm.clock import RealClock
from hydrotherm.config import Config

from .parts import install_stop, make_link


def format_reading(link: BoardLink) -> str:
    r = link.latest
    if r is None or not link.healthy:
        return f"link {link.state.value}: readings unavailable {link.error}".rstrip()
    def fmt(s: Any) -> str:
        return f"{s.celsius:6.2f}" if s.celsius is not None else f"{s.status.value:>6}"

    parts = []
    for i, c in enumerate(r.cushions):
        # a 1.0 board has no plate sensor: say so rather than show nothing
        plate = "n/a" if c.plate is None else fmt(c.plate).strip()
        parts.append(f"{cushion_words(i)}: {fmt(c.primary)} / {fmt(c.redundant)} °C "
                     f"plate {plate} °C out {c.applied * 100:5.1f} %")
    room = "n/a" if r.room is None else fmt(r.room).strip()
    faults = ",".join(r.fault_names) or "none"
    return (" | ".join(parts) + f" | room {room} °C"
            f" | relay {'closed' if r.relay_closed else 'open'}"
            f" | faults {faults} | crc {link.counters.crc_errors}")


def monitor_loop(link: BoardLink, stop: threading.Event, interval_s: float,
                 duration_s: float | None, on_tick: Callable[[], None] | None = None) -> None:
    next_print = 0.0
    t_end = time.monotonic() + duration_s if duration_s else None
    while not stop.is_set():
        link.poll()
        if on_tick:
            on_tick()
        if time.monotonic() >= next_print:
            print(format_reading(link), flush=True)
            next_print = time.monotonic() + interval_s
        if t_end and time.monotonic() >= t_end:
            break
        stop.wait(0.005)


def run_monitor(cfg: Config, url: str, interval_s: float, duration_s: float | None) -> int:
    link = make_link(cfg, url, RealClock())
    stop = install_stop()
    try:
        monitor_loop(link, stop, interval_s, duration_s)
    finally:
        link.close()
    return 0
