"""Benchmarks for issue 2: parser throughput, simulation speed, pty round trip.

Prints figures; asserts nothing about speed (the machines are shared and noisy).
Run: ``python -m benchmarks.link_and_sim [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from firmware_bridge import protocol as p
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock, SimClock
from hydrotherm.config import Config
from sim.harness import InProcessHarness
from sim.server import SimServer
from sim.table import SimulatedTable


def frames_parsed_per_second(n: int = 200_000) -> dict[str, float]:
    tel = p.Telemetry(123456, (1534, 1530, 1600, 1602), (500, 0), 1, 0)
    stream = b"".join(p.encode(i & 0xFF, tel) for i in range(n))
    parser = p.FrameParser()
    t0 = time.perf_counter()
    count = 0
    for i in range(0, len(stream), 4096):
        count += len(parser.feed(stream[i:i + 4096]))
    dt = time.perf_counter() - t0
    t0 = time.perf_counter()
    for f in parser.feed(stream[: 26 * 20000]):
        f.decode()
    dt_dec = time.perf_counter() - t0
    return {"frames": count, "parse_frames_per_s": count / dt,
            "parse_and_decode_frames_per_s": 20000 / (dt_dec + dt * 20000 / count)}


def board_and_plant_speed(sim_seconds: float = 4 * 3600.0) -> dict[str, float]:
    """The in-process board and plant alone, a minimal host refreshing the outputs."""
    cfg = Config()
    clock = SimClock()
    table = SimulatedTable(cfg, clock, seed=1)
    pipe = table.pipe
    refresh = p.encode(0, p.SetOutputs(600, 600))
    period = cfg.board.telemetry_period_s
    t0 = time.perf_counter()
    steps = int(sim_seconds / period)
    next_refresh = 0.0
    for _ in range(steps):
        clock.advance(period)
        if clock.now() >= next_refresh:
            pipe.to_board += refresh
            next_refresh += cfg.link.refresh_s
        table.poll()
        pipe.to_host.clear()
    wall = time.perf_counter() - t0
    return {"sim_s": sim_seconds, "wall_s": wall, "sim_s_per_wall_s": sim_seconds / wall}


def with_link_speed(sim_seconds: float = 3600.0) -> dict[str, float]:
    """Board, plant and the host link in-process (what scenarios will run)."""
    h = InProcessHarness(Config(), seed=1, step_s=0.1)
    h.connect()
    h.link.set_outputs(0.6, 0.6)
    t0 = time.perf_counter()
    h.run(sim_seconds)
    wall = time.perf_counter() - t0
    return {"sim_s": sim_seconds, "wall_s": wall, "sim_s_per_wall_s": sim_seconds / wall}


def pty_round_trip(samples: int = 300) -> dict[str, float]:
    cfg = Config()
    with tempfile.TemporaryDirectory() as d, SimServer(cfg, RealClock(), Path(d)) as srv:
        link = BoardLink(cfg.link, Thermistor(cfg.sensor), RealClock(), url=srv.ports[0].path)
        link.wait_connected(5.0, step_s=0.0005)
        rng = random.Random(0)
        link.rtt_s.clear()
        while len(link.rtt_s) < samples:
            link.set_outputs(rng.random(), rng.random())
            link.poll()
            time.sleep(0.0005)
        link.close()
        rtts = sorted(link.rtt_s)
    q = statistics.quantiles(rtts, n=100)
    return {"samples": len(rtts), "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


def run_all() -> dict[str, Any]:
    return {"parser": frames_parsed_per_second(), "board_and_plant": board_and_plant_speed(),
            "board_plant_link": with_link_speed(), "pty_round_trip": pty_round_trip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    res = run_all()
    pa, bp, bl, rt = (res["parser"], res["board_and_plant"], res["board_plant_link"],
                      res["pty_round_trip"])
    print(f"frames parsed per second            {pa['parse_frames_per_s']:12,.0f}")
    print(f"frames parsed+decoded per second    {pa['parse_and_decode_frames_per_s']:12,.0f}")
    print(f"board+plant: 4 h simulated in       {bp['wall_s']:12.2f} s wall "
          f"({bp['sim_s_per_wall_s']:,.0f} sim s / wall s; target 4 h < 2 s)")
    print(f"board+plant+link: 1 h simulated in  {bl['wall_s']:12.2f} s wall "
          f"({bl['sim_s_per_wall_s']:,.0f} sim s / wall s)")
    print(f"pty round trip (command to ACK)     p50 {rt['p50_ms']:.2f} ms, "
          f"p99 {rt['p99_ms']:.2f} ms over {rt['samples']} commands")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
