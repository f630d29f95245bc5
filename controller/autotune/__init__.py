"""``hydrotherm autotune``: identify the plant on the running table and tune the law.

What is identified, and why only that
-------------------------------------
The model of ``sim/plant.py`` per cushion is::

    C_p dT_p/dt = P − h (T_p − T_w)
    C_w dT_w/dt = h (T_p − T_w) − UA (T_w − T_room) + K (T_o − T_w)

Only the water is measured.  From the heater power to the water temperature the
transfer function is ``h / (C_p C_w s² + (h C_w + h C_p + C_p UA) s + h UA)`` (taking
``K`` into ``UA`` for the moment): three numbers can be seen, four are unknown.  So:

* **The plate's heat capacity ``C_p`` is taken from the configuration** (it is a
  property of the heater plate, not of how the cushion was filled); the fit finds
  ``C_w`` (hence ``water_kg = C_w / c``), ``UA`` and the plate time constant
  ``τ_p = C_p / h`` (hence ``h``).  A wrong ``C_p`` is mostly absorbed by ``C_w``.
* **The heater power is the nameplate** (``plant.heater_w``) unless the caller passes a
  measured ``heater_w`` (``--heater-w``); it is never identified: multiplying the power
  and every capacity and conductance by the same factor leaves the temperatures
  unchanged, so temperatures alone cannot tell them apart.  If the power used is wrong
  by a factor α, the identified ``C_w + C_p``, ``UA`` come out α times their true values
  (``h`` does not: ``τ_p`` is seen directly and ``C_p`` is configured) — the law, whose
  gain is derived the same way (``kp = C_w / τ_cl``), and the ready-in estimate still
  behave as designed, because they use those numbers in ratio with ``heater_w``.  The
  report says which power was used and where it came from.
* **The coupling ``K`` between the cushions is taken from the configuration** and used
  as a known input, with the other cushion's measured temperature; when both cushions
  are driven alike (the default) it hardly matters.
* **The room temperature is identified** with the rest (a sixth parameter of the fit)
  unless the caller passes a measured ``room_c`` (``--room-c``): the curvature of the
  warm-up and the cooling towards the room separate ``UA`` from ``UA·T_room`` (±0.1–0.3 K
  on the corner plants of ``docs/autotune.md``).  The report says which; the room is
  written as ``control.room_estimate_c``.  (Assuming the configured room made a 12 °C
  clinic's table read as a 28 W/K loss: issue 10.)

The experiment
--------------
Driven only through the supervisor's gate (``Supervisor.gate``), on the lag-compensated
mean of each cushion's valid sensors (``T_s + τ·dT_s/dt``, the controller's estimate):

1. ``connect``: wait for the link and a report without fault flags;
2. ``prepare``: refuse latched trips, arm the supervisor, close the master relay, refuse a
   cushion already too warm to heat a few kelvin safely;
3. ``hold``: 0 % for ``hold_s`` (300 s): the drift at rest (and a plate still warm from
   earlier heating shows here);
4. ``heat``: 100 % for ``heat_s`` (40 min), each cushion stopping early if its water
   would otherwise settle above ``setpoint_max_c − ceiling_margin_c`` (39 °C) once the
   plate's stored heat has moved into it; no power is ever asked above that;
5. ``cool``: 0 % for ``cool_s`` (30 min): the plate's heat moves into the water, then the
   water cools towards the room;
6. ``fit``: the whole record (hold, heat, cool) is fitted by the exact discrete 2-state
   model (``scipy.optimize.least_squares`` over ``ln C_w``, ``UA``, ``ln τ_p``, the
   initial water temperature, the initial plate excess and the room), started from the
   closed-form estimates of the late heating slope ``(P − UA ΔT)/(C_w + C_p)`` and the
   cooling rate ``−UA ΔT/(C_w + C_p)``.  The uncertainties are 1σ (and 95 % intervals)
   from the fit's covariance, inflated for the residuals' autocorrelation; R² and the
   residual rms measure the fit.
7. ``judge``: the result is refused (``problems``; nothing may be written) when the fit is
   poor, an interval too wide, a parameter on the fit's bound, or a value no cushion has
   (``AutotuneSettings``' ranges: the plausible range widened for the nameplate's ±20 %).

While it runs the supervisor is in identification mode (``Supervisor.begin_identification``,
``controller/supervisor/identification.py``): wider, still safe bounds for the three rules
that judge against the configured model; never for ``over_temperature``, the sensors, the
link or the board.

Total: about 75 min plus the connection.  On any trip, a lost link, a fault flag, a sensor
at or above ``abort_c`` (39.5 °C), a broken sensor or an open cut-out the experiment
aborts at once: both outputs 0, master relay open, ``error`` says why.

The gains: the law's proportional gain acts on the stored-energy temperature, which
integrates the heater power through ``C_w``; ``kp = C_w / τ_cl`` gives that loop the
closed-loop time constant ``τ_cl`` (130 s, but at least 1.5 × (τ_p + sensor lag) so the
plate and the sensor stay faster than the loop), and ``ti = 7 τ_cl``.

It is clock- and poll-driven like the controller: call ``Autotuner.step()`` every poll
(every few milliseconds in real time, every simulation step in-process); nothing sleeps.
While it runs, nothing else may poll the controller (it must not be started): the tuner
is the control loop, feeding the supervisor and sending its heartbeats.  In real time
there is no host watchdog thread around it; the board's dead-man (3 s) is the layer
below.  A real-time driver (the CLI) looks like::

    tuner = Autotuner(controller)            # Controller built, not started
    try:
        while not tuner.done:
            tuner.step()
            show(tuner.progress)              # throttled by the caller
            clock.sleep(0.005)
    except KeyboardInterrupt:
        tuner.abort("interrupted")
        tuner.step()                          # push the 0 % and the open relay
    finally:
        controller.stop()
    if tuner.error: fail(tuner.error)
    print(format_report(tuner.result)); write_config(path, apply_result(cfg, tuner.result))

``hydrotherm.app.autotune`` wires this to a board: the one at ``--port``, or a simulated table
in-process (``autotune_in_process``, for ``--sim`` and the tests); this package never
imports the simulator.

Layout (one job per module)
---------------------------
* ``results``: the settings, estimates, per-cushion fits and the combined result (data);
* ``experiment``: ``Autotuner``, the state machine that runs the experiment;
* ``fit``: resampling, lag compensation and the ``scipy.optimize.least_squares`` fit;
* ``configuration``: judging the fits, from them to new configuration values, and
  writing the file;
* ``report``: the human-readable report;
"""

from .configuration import (
    apply_result,
    write_config,
)
from .experiment import (
    PHASES,
    Autotuner,
    ControllerLike,
)
from .fit import (
    analyse,
)
from .report import (
    format_report,
)
from .results import (
    AutotuneError,
    AutotuneResult,
    AutotuneSettings,
    CushionFit,
    Estimate,
)

__all__ = [
    "AutotuneError",
    "AutotuneSettings",
    "Estimate",
    "CushionFit",
    "AutotuneResult",
    "PHASES",
    "ControllerLike",
    "Autotuner",
    "analyse",
    "apply_result",
    "write_config",
    "format_report",
]
