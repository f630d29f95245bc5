"""The verdict: each ``[expect]`` entry checked against the recorded ``Result``.

Separate from the run so the rules of judgement (anchors, tolerances) read on one screen.
"""

from __future__ import annotations

from hydrotherm.config import (
    CUSHIONS,
)

from .result import Failure, Result, TripRecord
from .schema import EPS, SETTLE_BAND_C, Scenario

# --- the verdict ------------------------------------------------------------------------


def _anchor(trip: TripRecord, since_s: float | None) -> float:
    if since_s is not None:
        return since_s
    return trip.fault.at_s if trip.fault is not None else 0.0


def check_expectations(sc: Scenario, res: Result) -> list[Failure]:
    """Compare a run with the file's [expect]; one ``Failure`` per broken expectation."""
    ex = sc.expect
    out: list[Failure] = []
    if ex.max_water_c is not None and res.max_water_c > ex.max_water_c:
        i = max(range(CUSHIONS), key=lambda j: res.cushions[j].max_water_c)
        out.append(Failure("max_water_c", f"cushion {i} water reached {res.max_water_c:.3f} °C, "
                                          f"above {ex.max_water_c:g} °C"))
    used: set[int] = set()
    for n, te in enumerate(ex.trips):
        key = f"trips[{n}]"
        cands = [t for t in res.trips if t.reason == te.reason
                 and (te.cushion is None or t.cushion == te.cushion)]
        if not cands:
            seen = ", ".join(f"{t.reason}@{t.at_s:.1f}s" for t in res.trips) or "no trips"
            out.append(Failure(key, f"expected a {te.describe()} trip; there was none "
                                    f"(trips: {seen})"))
            continue
        ok = [t for t in cands
              if te.within_s is None or 0.0 <= t.at_s - _anchor(t, te.since_s) <= te.within_s
              + EPS]
        if not ok:
            t = cands[0]
            since = _anchor(t, te.since_s)
            src = (f"{te.since_s:g} s" if te.since_s is not None else
                   t.fault.label() if t.fault is not None else "the start")
            out.append(Failure(key, f"{te.describe()} tripped {t.at_s - since:.2f} s after "
                                    f"{src}, later than within_s = {te.within_s:g} s"))
            continue
        t = ok[0]
        used.update(id(x) for x in cands)
        if te.heater_off_within_s is not None:
            since = _anchor(t, te.since_s)
            if t.heater_off_at_s is None:
                out.append(Failure(key, f"after the {te.describe()} trip the heater(s) of "
                                        f"cushion(s) {list(t.affects)} never stayed off"))
            elif t.heater_off_at_s - since > te.heater_off_within_s + EPS:
                out.append(Failure(key, f"heater off {t.heater_off_at_s - since:.2f} s after "
                                        f"the fault, later than heater_off_within_s = "
                                        f"{te.heater_off_within_s:g} s"))
        if te.cleared is not None and (t.cleared_at_s is not None) != te.cleared:
            state = (f"was cleared at {t.cleared_at_s:.1f} s" if t.cleared_at_s is not None
                     else "was still latched at the end")
            out.append(Failure(key, f"expected the {te.describe()} trip "
                                    f"{'cleared' if te.cleared else 'still latched'}: it {state}"))
    if ex.no_trips and res.trips:
        out.append(Failure("no_trips", "expected no trips; got " + ", ".join(
            f"{t.reason} ({'table' if t.cushion is None else f'cushion {t.cushion}'}) at "
            f"{t.at_s:.1f} s" for t in res.trips)))
    if ex.no_other_trips:
        others = [t for t in res.trips if id(t) not in used]
        if others:
            out.append(Failure("no_other_trips", "trips not listed in expect.trips: " + ", ".join(
                f"{t.reason} ({'table' if t.cushion is None else f'cushion {t.cushion}'}) at "
                f"{t.at_s:.1f} s" for t in others)))
    if ex.heater_off_when_tripped:
        for t in res.trips:
            if t.first_on_while_tripped_s is not None:
                out.append(Failure("heater_off_when_tripped", (
                    f"heater power on cushion(s) {list(t.affects)} at "
                    f"{t.first_on_while_tripped_s:.1f} s while {t.reason} (tripped at "
                    f"{t.at_s:.1f} s) was latched, beyond the {res.grace_s:.2f} s grace; "
                    f"{t.on_while_tripped_s:.1f} s in all")))
    if ex.settled_within_s is not None:
        for i, cf in enumerate(res.cushions):
            if not sc.config.control.heat_on[i]:
                continue
            if cf.settle_s is None or cf.settle_s > ex.settled_within_s:
                got = "never settled" if cf.settle_s is None else f"settled at {cf.settle_s:.0f} s"
                out.append(Failure("settled_within_s", f"cushion {i} {got} (within "
                                                       f"±{SETTLE_BAND_C} °C of its setpoint), "
                                                       f"not within {ex.settled_within_s:g} s"))
    if ex.final_within_c is not None:
        for i, cf in enumerate(res.cushions):
            if cf.heat_on and abs(cf.final_water_c - cf.setpoint_c) > ex.final_within_c:
                out.append(Failure("final_within_c", (
                    f"cushion {i} ends at {cf.final_water_c:.2f} °C, "
                    f"{cf.final_water_c - cf.setpoint_c:+.2f} °C from its setpoint "
                    f"{cf.setpoint_c:g} °C (allowed ±{ex.final_within_c:g})")))
    for n, ae in enumerate(ex.alarms):
        key = f"alarms[{n}]"
        cands = [a for a in res.alarms if a.name == ae.name and a.cushion == ae.cushion]
        if not cands:
            out.append(Failure(key, f"expected a {ae.name} alarm on cushion {ae.cushion}; "
                                    "there was none"))
            continue
        if ae.within_s is not None:
            since = ae.since_s if ae.since_s is not None else _alarm_anchor(sc, cands[0].at_s)
            if not any(0.0 <= a.at_s - since <= ae.within_s + EPS for a in cands):
                out.append(Failure(key, f"the {ae.name} alarm on cushion {ae.cushion} came "
                                        f"{cands[0].at_s - since:.1f} s after {since:g} s, "
                                        f"later than within_s = {ae.within_s:g} s"))
    if ex.no_alarms and res.alarms:
        out.append(Failure("no_alarms", "expected no alarms; got " + ", ".join(
            f"{a.name} (cushion {a.cushion}) at {a.at_s:.1f} s" for a in res.alarms)))
    pending = list(res.resets)
    for n, re_ in enumerate(ex.resets):
        key = f"resets[{n}]"
        if re_.at_s is not None:
            match = next((r for r in pending if abs(r.at_s - re_.at_s) < step_tolerance(res)),
                         None)
        else:
            match = pending[0] if pending else None
        if match is None:
            out.append(Failure(key, "no reset happened to match this expectation"))
            continue
        pending.remove(match)
        if match.ok is None:
            out.append(Failure(key, f"the reset at {match.at_s:g} s got no verdict before "
                                    "the run ended"))
            continue
        if match.ok != re_.ok:
            why = "; ".join(f"{x['reason']}: {x['why']}" for x in match.refused)
            got = "refused (" + why + ")" if not match.ok else \
                f"accepted (cleared {', '.join(match.cleared) or 'nothing'})"
            out.append(Failure(key, f"expected the reset at {match.at_s:g} s to be "
                                    f"{'accepted' if re_.ok else 'refused'}; it was {got}"))
        if re_.cleared is not None and sorted(re_.cleared) != sorted(match.cleared):
            out.append(Failure(key, f"reset cleared {match.cleared}, expected "
                                    f"{list(re_.cleared)}"))
        got_refused = sorted(x["reason"] for x in match.refused)
        if re_.refused is not None and sorted(re_.refused) != got_refused:
            out.append(Failure(key, f"reset refused {got_refused}, expected {list(re_.refused)}"))
    expected_refusals = []
    for n, rf in enumerate(ex.refusals):
        key = f"refusals[{n}]"
        match = [r for r in res.refusals if abs(r.at_s - rf.at_s) < step_tolerance(res)
                 and (rf.do is None or r.do == rf.do)]
        if not match:
            out.append(Failure(key, f"expected the command at {rf.at_s:g} s to be refused; "
                                    "it was carried out"))
            continue
        expected_refusals.extend(match)
        for r in match:
            if not r.logged:
                out.append(Failure(key, f"the refused {r.do} at {r.at_s:g} s is not in the "
                                        "event log (no command_refused event)"))
            if not r.unchanged:
                out.append(Failure(key, f"the refused {r.do} at {r.at_s:g} s changed the "
                                        "setting anyway"))
    for r in res.refusals:
        if r not in expected_refusals:
            out.append(Failure("refusals", f"the {r.do} event at {r.at_s:g} s (cushion "
                                           f"{r.cushion}, {r.value!r}) was refused: {r.reason}"))
    if ex.schedule_met:
        from .schedule import check

        out.extend(Failure("schedule_met", why) for why in check(res.schedule))
    return out


def step_tolerance(res: Result) -> float:
    """Events happen on the step grid: an event time matches within one step."""
    return res.step_s + EPS


def _alarm_anchor(sc: Scenario, at_s: float) -> float:
    """Alarms count from the latest event of any kind before them (or the start)."""
    best = 0.0
    for ev in sc.events:
        if ev.at_s <= at_s + EPS:
            best = ev.at_s
    return best


