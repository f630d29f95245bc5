"""Issue 9 part 5: on a trip the host sends SET_RELAY-open once, confirms it from telemetry,
and repeats it only when telemetry still disagrees after the answer (it once sent 26 in
170 ms).  Counted on the wire: every frame the in-process board receives is decoded."""

from __future__ import annotations

from controller.eventlog import EventLog
from controller.service import Controller
from firmware_bridge import protocol as p
from hydrotherm.config import from_mapping
from sim.harness import InProcessHarness

STEP = 0.01  # 10 ms steps: the real-time poll loop is faster still, but 20 polls a period


class Rig:
    def __init__(self) -> None:
        cfg = from_mapping({"plant": {"initial_water_c": 36.0}})
        self.h = InProcessHarness(cfg, seed=4, step_s=STEP)
        self.c = Controller(cfg, self.h.link, self.h.clock, log=EventLog(None))
        self.relay_frames: list[tuple[float, int, bool]] = []  # (time, seq, closed)
        board = self.h.table.board
        handle = board._handle_frame

        self.lose_first_open = False
        self.lost: list[int] = []  # SEQs of SET_RELAY frames lost on the wire

        def counting(frame: p.Frame, now: float) -> None:
            if frame.type == p.MsgType.SET_RELAY:
                msg = frame.decode()
                assert isinstance(msg, p.SetRelay)
                if self.lose_first_open and not msg.closed and (
                        not self.lost or self.lost[0] == frame.seq):
                    self.lost.append(frame.seq)
                    return
                self.relay_frames.append((now, frame.seq, msg.closed))
            handle(frame, now)

        board._handle_frame = counting  # type: ignore[method-assign]
        for i in range(2):
            self.c.set_heat(i, True, "test")
        self.c.start()

    def run(self, seconds: float) -> None:
        end = self.h.clock.now() + seconds
        while self.h.clock.now() < end - 1e-9:
            self.h.clock.advance(STEP)
            self.h.table.poll()
            self.c.poll()
            self.h.table.poll()

    def opens(self, since: float) -> list[tuple[float, int, bool]]:
        return [f for f in self.relay_frames if f[0] >= since and not f[2]]


def heating(rig: Rig) -> None:
    rig.run(5.0)
    assert rig.h.table.board.relay_closed and rig.h.table.plant.power_w == [300.0, 300.0]
    assert [f[2] for f in rig.relay_frames] == [True]  # closed once, at start


def test_one_set_relay_open_on_a_trip() -> None:
    rig = Rig()
    heating(rig)
    t0 = rig.h.clock.now()
    sent0 = rig.c.relay_commands
    # the primary sensor of cushion 0 reads 41.5 °C: over_temperature opens the relay
    rig.h.table.inject("sensor_drift", cushion=0, sensor="primary", offset_c=5.5)
    rig.run(3.0)
    assert "over_temperature" in [t.reason for t in rig.c.supervisor.trips]
    assert not rig.h.table.board.relay_closed
    assert len(rig.opens(t0)) == 1, rig.opens(t0)
    assert rig.c.relay_commands - sent0 == 1
    rig.run(10.0)  # telemetry agrees from now on: nothing more is sent
    assert len(rig.opens(t0)) == 1 and rig.c.relay_commands - sent0 == 1


def test_set_relay_repeated_only_when_telemetry_still_disagrees() -> None:
    """The first open command is lost on the wire, with its retransmissions (the board
    never sees them, as with damaged frames): the link gives up, the board still reports
    the relay closed, and then, once, the host asks again."""
    rig = Rig()
    heating(rig)
    t0 = rig.h.clock.now()
    sent0 = rig.c.relay_commands
    rig.lose_first_open = True
    rig.h.table.inject("sensor_drift", cushion=0, sensor="primary", offset_c=5.5)
    rig.run(3.0)
    assert "over_temperature" in [t.reason for t in rig.c.supervisor.trips]
    assert not rig.h.table.board.relay_closed
    assert len(rig.lost) == 1 + rig.h.link.cfg.max_retries  # one command, all its copies
    assert rig.c.relay_commands - sent0 == 2
    assert len(rig.opens(t0)) == 1  # the second one arrived, and nothing more was sent
    rig.run(10.0)
    assert rig.c.relay_commands - sent0 == 2 and len(rig.opens(t0)) == 1
