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
* **The heater power is taken from the configuration** (``plant.heater_w``, the
  nameplate), never identified: multiplying the power and every capacity and conductance
  by the same factor leaves the temperatures unchanged, so temperatures alone cannot tell
  them apart.  If the configured power is wrong by a factor α, the identified ``C_w``,
  ``UA`` and ``h`` all come out α times their true values — the law, whose gain is
  derived the same way (``kp = C_w / τ_cl``), then still behaves as designed, because it
  only ever uses those numbers in ratios with ``heater_w``.  The report says so.
* **The coupling ``K`` between the cushions is taken from the configuration** and used
  as a known input, with the other cushion's measured temperature; when both cushions
  are driven alike (the default) it hardly matters.
* **The room temperature is not identified**: it is ``control.room_estimate_c`` unless
  the caller passes ``room_c``.  The loss is judged from how fast the warmed water cools
  towards it, so an error of δ K in the room temperature makes ``UA`` wrong by about
  δ / (T_water − T_room) — some 20 % per kelvin after the default experiment from a cold
  start.  Measure the room if ``UA`` matters to you.

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
   model (Levenberg–Marquardt over ``ln C_w``, ``UA``, ``ln τ_p``, the initial water
   temperature and the initial plate excess), started from the closed-form estimates of
   the late heating slope ``(P − UA ΔT)/(C_w + C_p)`` and the cooling rate
   ``−UA ΔT/(C_w + C_p)``.  The uncertainties are 1σ from the fit's covariance, inflated
   for the residuals' autocorrelation; R² and the residual rms measure the fit.

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
* ``fit``: resampling, lag compensation and the Levenberg-Marquardt fit;
* ``configuration``: from the fits to new configuration values, and writing the file;
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
