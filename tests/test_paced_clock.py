"""``PacedClock``: the demo's fast clock holds for a participant that falls behind (a busy
machine) but not for one that is genuinely stalled.  A hand-driven wall clock makes these
exact; ``tests/test_demo_under_load.py`` runs the real thing on a loaded machine."""

from __future__ import annotations

import pytest

from hydrotherm.clock import PacedClock, RealClock, heartbeat, leave


class Wall:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_without_participants_it_runs_speed_times_faster() -> None:
    wall = Wall()
    clock = PacedClock(60, lead_s=2.5, wall=wall)
    wall.t += 1.0
    assert clock.now() == pytest.approx(60.0)
    assert clock.behind_s == pytest.approx(0.0)


def test_it_holds_for_a_late_participant_then_resumes_without_a_jump() -> None:
    wall = Wall()
    clock = PacedClock(60, lead_s=2.5, patience_s=2.0, wall=wall)
    clock.beat("sim")
    clock.beat("loop")
    wall.t += 0.01
    clock.beat("sim")  # the simulator keeps up, the loop does not
    wall.t += 0.2  # 12 simulated seconds at x60: a false stale-telemetry trip before
    assert clock.now() == pytest.approx(2.5)  # held at the loop's beat + lead
    assert clock.holds == 1
    clock.beat("loop")  # it catches up: time goes on from where it was held
    clock.beat("sim")
    wall.t += 0.01
    assert clock.now() == pytest.approx(2.5 + 0.6)
    assert clock.behind_s == pytest.approx(0.21 * 60 + 0.01 * 60 - 3.1)


def test_a_genuinely_stalled_participant_stops_holding_after_patience() -> None:
    wall = Wall()
    clock = PacedClock(60, lead_s=2.5, patience_s=2.0, wall=wall)
    clock.beat("loop")
    wall.t += 1.9
    assert clock.now() == pytest.approx(2.5)  # still held: it may only be late
    wall.t += 0.2  # 2.1 s of wall time without a beat: stalled, its rules must trip
    t = clock.now()
    wall.t += 1.0
    assert clock.now() - t == pytest.approx(60.0)  # full speed again, no jump at release
    clock.beat("loop")  # back: it holds the clock again
    wall.t += 1.0
    assert clock.now() == pytest.approx(t + 60.0 + 2.5)


def test_time_never_goes_backwards_and_leave_releases() -> None:
    wall = Wall()
    clock = PacedClock(60, lead_s=2.5, wall=wall)
    clock.beat("a")
    wall.t += 1.0
    held = clock.now()
    leave(clock, "a")
    wall.t += 0.5
    assert clock.now() == pytest.approx(held + 30.0)
    clock.beat("late")  # joins now; a new participant never pulls time back
    assert clock.now() >= held + 30.0


def test_heartbeat_is_a_no_op_on_other_clocks() -> None:
    beat = heartbeat(RealClock(), "x")
    beat()
    leave(RealClock(), "x")


@pytest.mark.parametrize("bad", [dict(speed=0, lead_s=1), dict(speed=60, lead_s=0),
                                 dict(speed=60, lead_s=1, patience_s=-1)])
def test_bad_parameters_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        PacedClock(**bad)
