"""The thermal plant: two water cushions, their heater plates, sensors and heater path.

Model (every number comes from ``PlantConfig`` / ``SensorConfig``), per cushion *i*::

    C_p  dT_p/dt = P_i − h (T_p − T_w)
    C_w  dT_w/dt = h (T_p − T_w) − UA (T_w − T_room) + G_c (T_n − T_w) + K (T_w,other − T_w)
    dm/dt        = −leak                      (C_w = m · c, the leaking water keeps T_w)

``C_p`` plate heat capacity, ``h`` plate-to-water conductance, ``UA`` water-to-room loss,
``G_c`` the client's conductance while a client lies on the cushion (else 0), ``T_n`` the
water temperature a client neither warms nor cools, ``K`` the coupling between the two
cushions.

Modelling choices, stated once:

* **The plate has no direct loss**: all its heat goes into the water.  It sits under the
  cushion, insulated by the table; its own small loss is folded into ``UA``.
* **The 2 s SSR window is averaged**: ``drive`` is the fraction of the window the SSR
  conducts and the plate receives ``drive · heater_w`` continuously.  The plate's own time
  constant ``C_p / h`` (≈ 67 s with the defaults) is far longer than the window, so the
  on/off ripple inside a window (≈ 0.15 K on the plate, ≈ 0 on the water) is irrelevant.
* **The plate's contact with the water depends on how full the cushion is**
  (``wetted_below_kg``, ``dry_plate_w_per_k``).  A full cushion's water covers the whole
  plate and ``h`` is the full ``plate_to_water_w_per_k``.  Below ``wetted_below_kg``
  (8 kg by default: a mean depth of some 7 mm over a 1.2 m² cushion) the water no
  longer floats the bag's bottom over the whole plate -- the client's weight presses the
  top membrane onto the bottom one and dry patches open over the plate -- and the wetted
  fraction is taken as ``m / wetted_below_kg``.  The conductance is then
  ``h_dry + (h − h_dry) · m / wetted_below_kg``; a dry plate (no water) keeps only
  ``h_dry`` (1.5 W/K: through the bag's two membranes and a thin air layer to the bag and
  the client).  This is an assumption, not a measurement; it is the least physics that
  lets an emptying cushion show on a plate sensor (the plate runs hotter above the water
  than any full cushion lets it), and it leaves every cushion of the plausible range
  (15 kg and more) exactly as before.  The water sensors see the remaining water, which
  is taken as well mixed (they sit at the bag's bottom, in the last water).
  ``wetted_below_kg = 0`` is the former model: the plate wetted to the last drop and the
  empty bag on the plate through the full ``h``.  That is the pessimistic bound for the
  water (all the plate's stored heat reaches the last water) and the tests of the
  water-rate rules use it; it can never show an emptying cushion on a plate sensor.
* **An empty cushion** (``water_kg`` reached 0) has no heat capacity: its "water"
  temperature (what its sensors read) is then the quasi-static temperature of the bag
  between plate (through ``h_dry``), room and client, and it exchanges no heat with the
  other cushion.
* **The cut-out is sampled at step boundaries**: it opens at the end of a step whose
  plate reached ``cutout_open_c`` and recloses at the end of one that fell to
  ``cutout_close_c``.  The plate can overshoot the opening point by at most
  ``heater_w · dt / C_p`` (0.3 K at dt = 2 s).

Integration.  Instead of an explicit Runge–Kutta scheme with substeps, each step is
integrated *exactly* for inputs held over the step (an exponential integrator): per
cushion, the 2-state linear system ``x' = A x + u`` is advanced with ``e^{A dt}`` and the
φ-functions of ``A dt``, computed in closed form from the two eigenvalues of ``A``
(Sylvester's formula; they are always real, distinct and ≤ 0).  That is exact for any dt,
unconditionally stable even for an almost empty (very stiff) cushion, and cheap: the
coefficients are cached and a step is a handful of multiply-adds.  What is approximated:

* the coupling between the cushions is a separate exact exchange, half of it before
  and half after the cushions' own step (Strang splitting, second order in dt; its rate
  ``K (1/C_0 + 1/C_1)`` ≈ 2e-5 /s makes the splitting error negligible);
* while leaking, the water capacity is held at its mid-step value (second order in dt).

The energy ledger is evaluated from the same closed forms (heater energy ``P dt``, the
time integral of the water temperature for the room and client flows, the trapezoid of
the water temperature for the leaked enthalpy), so the balance closes to rounding error.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from firmware_bridge.thermistor import Thermistor
from hydrotherm.config import CUSHIONS, PlantConfig, SensorConfig
from hydrotherm.true_plant import TruePlantConfig, cushion_plant, cushion_sensor

#: Below this |z| the φ-functions use their Taylor series (numerical, not physical).
_SERIES_BELOW = 1e-3
#: dt is matched to cached coefficients after rounding to this many seconds; the rounded
#: dt is then used for the whole step, so the energy ledger stays exact.
_DT_QUANTUM_S = 1e-9
#: Cached coefficient sets before the cache is emptied (a leak makes every step new).
_CACHE_LIMIT = 256
_SECONDS_PER_MINUTE = 60.0
#: A leaking cushion with less water than this is empty: the subtraction's rounding residue
#: (~1e-15 kg) would otherwise get the other cushion's temperature in one coupling step.
_EMPTY_BELOW_KG = 1e-6


class SensorFault(enum.Enum):
    NONE = "none"
    OPEN = "open"
    SHORT = "short"


@dataclass
class CushionFaults:
    """Injected faults of one cushion (mutated by ``sim.faults``)."""

    sensor: list[SensorFault] = field(default_factory=lambda: [SensorFault.NONE] * 2)
    sensor_offset_c: list[float] = field(default_factory=lambda: [0.0, 0.0])
    # the plate sensor of a protocol 1.1 board (``sensor = "plate"`` in the fault vocabulary)
    plate_sensor: SensorFault = SensorFault.NONE
    plate_offset_c: float = 0.0
    heater_stuck_on: bool = False  # welded SSR: full power while relay and cut-out are closed
    heater_dead: bool = False  # open element: never any power
    leak_kg_per_min: float = 0.0  # water lost; the mass stops at 0


@dataclass(frozen=True)
class EnergyLedger:
    """Cumulative energies in joules since the plant was made (both cushions together).

    ``coupling`` is the sum of what the two cushions gained from each other: it nets to
    zero (rounding aside); ``coupling_0_to_1`` is the heat moved from cushion 0 to 1.
    Heat contents (``stored``, ``leak_out``) are relative to 0 °C.
    """

    heater_in: float
    room_loss: float
    client_in: float
    coupling: float
    coupling_0_to_1: float
    leak_out: float
    stored: float
    stored_initial: float

    def residual_fraction(self) -> float:
        """How far the books fail to balance, as a fraction of the heater energy."""
        flows = self.heater_in - self.room_loss + self.client_in - self.leak_out
        return abs(self.stored - self.stored_initial - flows) / max(self.heater_in, 1.0)


def _phi(z: float) -> tuple[float, float, float]:
    """``e^z``, ``φ1(z) = (e^z − 1)/z`` and ``φ2(z) = (e^z − 1 − z)/z²``, accurate at 0."""
    if abs(z) < _SERIES_BELOW:
        return (math.exp(z),
                1.0 + z * (1 / 2 + z * (1 / 6 + z * (1 / 24 + z / 120))),
                1 / 2 + z * (1 / 6 + z * (1 / 24 + z * (1 / 120 + z / 720))))
    em1 = math.expm1(z)
    return em1 + 1.0, em1 / z, (em1 - z) / z / z


def _coefficients(cp: float, cw: float, h: float, g: float, dt: float) -> tuple[float, ...]:
    """Closed-form step coefficients of one cushion with water (``cw > 0``).

    State ``x = (T_p, T_w)``, ``x' = A x + u`` with ``A = [[−a, a], [b, −(b+γ)]]``,
    ``a = h/C_p``, ``b = h/C_w``, ``γ = g/C_w`` (``g`` = room loss + client conductance) and
    ``u = (P/C_p, (UA·T_room + G_c·T_n)/C_w)``.  Exactly, for ``u`` constant::

        x(dt)    = e^{A dt} x0 + dt φ1(A dt) u
        ∫0^dt x  = dt φ1(A dt) x0 + dt² φ2(A dt) u

    Returns ``(E00, E01, E10, E11, M00, M01, M10, M11, N10, N11)``: ``E = e^{A dt}``,
    ``M = dt φ1(A dt)`` and the water row of ``N = dt² φ2(A dt)``.

    The eigenvalues solve ``λ² + (a+b+γ) λ + aγ = 0``; the discriminant is
    ``(b+γ−a)² + 4ab > 0``, so they are real and distinct.  With ``λ1`` the fast and ``λ2``
    the slow one, Sylvester's formula gives, for each function ``f``,
    ``f(A) = (f(λ1)(A − λ2 I) − f(λ2)(A − λ1 I)) / (λ1 − λ2)``.  The diagonal terms
    ``A_jj − λ_k`` are written without cancellation (so an almost empty, very stiff
    cushion loses no accuracy).
    """
    a = h / cp
    b = h / cw
    gam = g / cw
    e = b + gam - a
    r = math.sqrt(e * e + 4.0 * a * b)
    big = 0.5 * (r + abs(e))
    small = a * b / big
    if e >= 0.0:
        p1, w1, p2, w2 = big, small, -small, -big  # A00−λ1, A11−λ1, A00−λ2, A11−λ2
    else:
        p1, w1, p2, w2 = small, big, -big, -small
    lam1 = -0.5 * (a + b + gam + r)
    lam2 = a * gam / lam1
    d = lam1 - lam2  # = −r
    e1, f1, g1 = _phi(lam1 * dt)
    e2, f2, g2 = _phi(lam2 * dt)
    # e^{A dt}
    E00 = (e1 * p2 - e2 * p1) / d
    E01 = a * (e1 - e2) / d
    E10 = b * (e1 - e2) / d
    E11 = (e1 * w2 - e2 * w1) / d
    # dt φ1(A dt)
    M00 = dt * (f1 * p2 - f2 * p1) / d
    M01 = dt * a * (f1 - f2) / d
    M10 = dt * b * (f1 - f2) / d
    M11 = dt * (f1 * w2 - f2 * w1) / d
    # dt² φ2(A dt), water row only
    dt2 = dt * dt
    N10 = dt2 * b * (g1 - g2) / d
    N11 = dt2 * (g1 * w2 - g2 * w1) / d
    return E00, E01, E10, E11, M00, M01, M10, M11, N10, N11


class Plant:
    """The two cushions: true temperatures, water, sensors, heater path and energy books.

    All state is public and may be read at any time; fault injection mutates ``faults``
    and ``set_client`` switches the client.  Writing temperatures or masses directly
    (tests do) bypasses the energy ledger.

    ``truth`` (the configuration's ``[true_plant]``) makes each cushion's physics differ
    from ``plant``: every parameter is per cushion (``cushions[i]``, ``sensors[i]``), the
    coupling between the cushions is one value for the table.  The thermistor's
    calibration is shared (the link converts with the same one).
    """

    def __init__(self, plant: PlantConfig, sensor: SensorConfig, rng: random.Random,
                 truth: TruePlantConfig | None = None) -> None:
        truth = truth if truth is not None else TruePlantConfig()
        self.cfg = plant
        self.sensor_cfg = sensor
        #: the effective physics of each cushion (``plant`` unless ``truth`` says otherwise)
        self.cushions: tuple[PlantConfig, ...] = tuple(
            cushion_plant(plant, truth, i) for i in range(CUSHIONS))
        self.sensors: tuple[SensorConfig, ...] = tuple(
            cushion_sensor(sensor, truth, i) for i in range(CUSHIONS))
        cus = self.cushions
        self.rng = rng
        n = CUSHIONS
        self.water_c: list[float] = [float(t) for t in plant.initial_water_c[:n]]
        self.plate_c: list[float] = list(self.water_c)  # at rest: plate = water
        self.water_kg: list[float] = [p.water_kg for p in cus]
        self.sensed_c: list[list[float]] = [[t, t] for t in self.water_c]
        #: the plate sensors (one per cushion, clamped to the heater plate) and the room
        #: sensor of a protocol 1.1 board: first-order lags of the plate and the room
        self.sensed_plate_c: list[float] = list(self.plate_c)
        self.sensed_room_c: float = float(plant.room_c)
        self.client_on: list[bool] = [False] * n
        self.faults: list[CushionFaults] = [CushionFaults() for _ in range(n)]
        self.cutout_open: list[bool] = [t >= p.cutout_open_c
                                        for t, p in zip(self.plate_c, cus, strict=True)]
        self.power_w: list[float] = [0.0] * n
        self.time_s = 0.0

        self._cs = [p.water_specific_heat_j_per_kg_k for p in cus]
        self._cps = [p.plate_heat_capacity_j_per_k for p in cus]
        self._hs = [p.plate_to_water_w_per_k for p in cus]
        self._wet_kgs = [p.wetted_below_kg for p in cus]
        self._h_drys = [min(p.dry_plate_w_per_k, p.plate_to_water_w_per_k) for p in cus]
        self._uas = [p.loss_to_room_w_per_k for p in cus]
        self._k = cus[0].coupling_w_per_k
        self._gcs = [p.client_w_per_k for p in cus]
        self._tns = [p.client_neutral_c for p in cus]
        self._rooms = [p.room_c for p in cus]
        self._heaters_w = [p.heater_w for p in cus]
        self._open_cs = [p.cutout_open_c for p in cus]
        self._close_cs = [p.cutout_close_c for p in cus]
        self._lags_s = [s.lag_s for s in self.sensors]
        self._lag_cache: list[tuple[float, float]] = [(-1.0, 0.0)] * n  # (dt, e^{-dt/lag})
        self._coef_cache: dict[tuple[float, ...], tuple[float, ...]] = {}
        self._room = cus[0].room_c  # the room sensor's room (one room per table)
        self._plate_lag_s = sensor.plate_lag_s
        self._room_lag_s = sensor.room_lag_s

        therm = Thermistor(sensor)
        self._counts_at = therm.counts_at
        self._full_scale = therm.full
        self._noises_c = [s.noise_c for s in self.sensors]
        self._gauss = rng.gauss
        # The plate and room sensors' noise has its own generator, seeded from the main
        # one's state without drawing from it: the water sensors' noise, and so every
        # seeded run from before protocol 1.1, stays exactly as it was.
        self._aux_gauss = random.Random(f"plate-room:{rng.getstate()[1][:4]}").gauss

        self._heater_in = 0.0
        self._room_loss = 0.0
        self._client_in = 0.0
        self._coupling = 0.0
        self._coupling_0_to_1 = 0.0
        self._leak_out = 0.0
        self._stored_initial = self.stored_j()

    # --- inputs ----------------------------------------------------------------------

    def set_client(self, cushion: int, on: bool) -> None:
        self.client_on[cushion] = bool(on)

    # --- integration -----------------------------------------------------------------

    def step(self, dt: float, drive: Sequence[float], relay_closed: bool) -> None:
        """Advance ``dt`` seconds with SSR drive fractions ``drive`` (0..1 per cushion,
        the time-proportioned output averaged over its window) held constant."""
        if dt < 0.0:
            raise ValueError(f"dt must not be negative, got {dt!r}")
        dt_key = round(dt / _DT_QUANTUM_S)
        if dt_key <= 0:
            return  # nothing measurable passed
        self.time_s += dt
        dt = dt_key * _DT_QUANTUM_S

        water_c = self.water_c
        plate_c = self.plate_c
        water_kg = self.water_kg
        faults = self.faults
        tw_start = (water_c[0], water_c[1])
        cutout_open = self.cutout_open
        power_w = self.power_w
        client_on = self.client_on

        half = 0.5 * dt
        k = self._k
        if k > 0.0:
            self._exchange(k, half)  # Strang splitting: half the coupling before...

        heater_in = room_loss = client_in = leak_out = 0.0
        cache = self._coef_cache
        for i in (0, 1):
            c = self._cs[i]
            cp = self._cps[i]
            h = self._hs[i]
            ua = self._uas[i]
            room = self._rooms[i]
            tn = self._tns[i]
            heater_w = self._heaters_w[i]
            f = faults[i]
            if f.heater_dead or not relay_closed or cutout_open[i]:
                p = 0.0
            elif f.heater_stuck_on:
                p = heater_w
            else:
                frac = drive[i]
                p = heater_w * (1.0 if frac >= 1.0 else frac if frac > 0.0 else 0.0)
            power_w[i] = p
            gc = self._gcs[i] if client_on[i] else 0.0
            g = ua + gc
            ga = ua * room + gc * tn  # g × (the temperature the water loses heat towards)
            tp = plate_c[i]
            tw = water_c[i]
            m_a = water_kg[i]
            leak = f.leak_kg_per_min
            if leak > 0.0 and m_a > 0.0:
                m_b = m_a - leak / _SECONDS_PER_MINUTE * dt
                if m_b < _EMPTY_BELOW_KG:  # rounding residue is an empty cushion
                    m_b = 0.0
                water_kg[i] = m_b
                cw = c * 0.5 * (m_a + m_b)
            else:
                m_b = m_a
                cw = c * m_a
            wet_kg = self._wet_kgs[i]
            if cw < c * wet_kg:  # a partly wetted plate (the mid-step water)
                h = wet_contact_w_per_k(h, self._h_drys[i], cw / c, wet_kg)
            if cw > 0.0:
                key = (cw, g, dt_key, cp, h)
                co = cache.get(key)
                if co is None:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    co = cache[key] = _coefficients(cp, cw, h, g, dt)
                E00, E01, E10, E11, M00, M01, M10, M11, N10, N11 = co
                u0 = p / cp
                u1 = ga / cw
                tp1 = E00 * tp + E01 * tw + M00 * u0 + M01 * u1
                tw1 = E10 * tp + E11 * tw + M10 * u0 + M11 * u1
                iw = M10 * tp + M11 * tw + N10 * u0 + N11 * u1  # ∫ T_w dt over the step
            else:
                # Empty: the bag is quasi-static between the dry plate and (room, client).
                if self._wet_kgs[i] > 0.0:
                    h = self._h_drys[i]
                hg = h + g
                kk = h * g / hg  # plate-to-surroundings through the bag
                ez, f1, f2 = _phi(-kk / cp * dt)
                u = (p + h * ga / hg) / cp
                tp1 = ez * tp + dt * f1 * u
                ip = dt * f1 * tp + dt * dt * f2 * u
                tw1 = (h * tp1 + ga) / hg
                iw = (h * ip + ga * dt) / hg
            heater_in += p * dt
            room_loss += ua * (iw - room * dt)
            client_in += gc * (tn * dt - iw)
            if m_b != m_a:
                leak_out += c * (m_a - m_b) * 0.5 * (tw + tw1)
            plate_c[i] = tp1
            water_c[i] = tw1
            # Bimetal cut-out on the plate, with its hysteresis.
            if cutout_open[i]:
                if tp1 <= self._close_cs[i]:
                    cutout_open[i] = False
            elif tp1 >= self._open_cs[i]:
                cutout_open[i] = True

        self._heater_in += heater_in
        self._room_loss += room_loss
        self._client_in += client_in
        self._leak_out += leak_out
        if k > 0.0:
            self._exchange(k, half)  # ...and half after the cushions' own step
        self._lag(dt, tw_start)
        self._lag_plate_room(dt)

    def _exchange(self, k: float, dt: float) -> None:
        """Exact heat exchange between the two waters over ``dt`` through ``k``: their
        difference decays with rate ``k (1/C_0 + 1/C_1)``, their heat content is kept.
        An empty cushion takes no part."""
        m0, m1 = self.water_kg
        if m0 > 0.0 and m1 > 0.0:
            water_c = self.water_c
            w0, w1 = water_c
            c0 = self._cs[0] * m0
            c1 = self._cs[1] * m1
            inv = 1.0 / c0 + 1.0 / c1
            q = (w0 - w1) * -math.expm1(-k * inv * dt) / inv  # heat from 0 to 1
            t0 = w0 - q / c0
            t1 = w1 + q / c1
            self._coupling += c0 * (t0 - w0) + c1 * (t1 - w1)
            self._coupling_0_to_1 += q
            water_c[0] = t0
            water_c[1] = t1

    def _lag(self, dt: float, tw_start: tuple[float, float]) -> None:
        """Sensors: first-order lag, exact for the water temperature moving linearly from
        its start to its end value over the step: with ``τ`` the lag, ``E = e^{−dt/τ}``
        and ``q = τ ΔT_w / dt``, ``S1 = T_w1 − q + (S0 − T_w0 + q) E``."""
        sensed = self.sensed_c
        water_c = self.water_c
        for i in (0, 1):
            tau = self._lags_s[i]
            if tau <= 0.0:
                sensed[i][0] = sensed[i][1] = water_c[i]
                continue
            cached_dt, ex = self._lag_cache[i]
            if cached_dt != dt:
                ex = math.exp(-dt / tau)
                self._lag_cache[i] = (dt, ex)
            w0 = tw_start[i]
            w1 = water_c[i]
            q = tau * (w1 - w0) / dt
            s = sensed[i]
            s[0] = w1 - q + (s[0] - w0 + q) * ex
            s[1] = w1 - q + (s[1] - w0 + q) * ex

    def _lag_plate_room(self, dt: float) -> None:
        """Plate and room sensors: first-order lags towards the values at the step's end
        (the plate moves slowly against the step: its own time constant is ~67 s)."""
        for i in (0, 1):
            tau = self._plate_lag_s
            a = 1.0 if tau <= 0.0 else -math.expm1(-dt / tau)
            self.sensed_plate_c[i] += (self.plate_c[i] - self.sensed_plate_c[i]) * a
        tau = self._room_lag_s
        a = 1.0 if tau <= 0.0 else -math.expm1(-dt / tau)
        self.sensed_room_c += (self._room - self.sensed_room_c) * a

    # --- sensors ---------------------------------------------------------------------

    def _counts_noisy(self, t: float) -> int:
        """Plate and room sensors: the configured sensor noise (``[sensor] noise_c``)."""
        noise = self.sensor_cfg.noise_c
        if noise > 0.0:
            t += self._aux_gauss(0.0, noise)
        return self._counts_at(t)

    def plate_counts(self, cushion: int) -> int:
        """The ADC counts of a cushion's plate sensor (protocol 1.1): lagged plate
        temperature + drift + noise, converted and quantised; open or shorted, a rail."""
        f = self.faults[cushion]
        if f.plate_sensor is SensorFault.OPEN:
            return self._full_scale
        if f.plate_sensor is SensorFault.SHORT:
            return 0
        return self._counts_noisy(self.sensed_plate_c[cushion] + f.plate_offset_c)

    def room_counts(self) -> int:
        """The ADC counts of the room sensor (protocol 1.1)."""
        return self._counts_noisy(self.sensed_room_c)

    def sensor_counts(self, cushion: int, sensor: int) -> int:
        """The ADC counts of one sensor now: lagged temperature + drift + noise, converted
        and quantised; an open sensor reads full scale, a shorted one 0."""
        f = self.faults[cushion]
        state = f.sensor[sensor]
        if state is SensorFault.NONE:
            t = self.sensed_c[cushion][sensor] + f.sensor_offset_c[sensor]
            noise = self._noises_c[cushion]
            if noise > 0.0:
                t += self._gauss(0.0, noise)
            return self._counts_at(t)
        if state is SensorFault.OPEN:
            return self._full_scale
        return 0

    # --- energy ----------------------------------------------------------------------

    def stored_j(self) -> float:
        """Heat content of plates and water now, relative to 0 °C."""
        return sum(cp * tp + c * m * tw
                   for cp, c, tp, tw, m in zip(self._cps, self._cs, self.plate_c, self.water_c,
                                               self.water_kg, strict=True))

    def energy(self) -> EnergyLedger:
        return EnergyLedger(
            heater_in=self._heater_in,
            room_loss=self._room_loss,
            client_in=self._client_in,
            coupling=self._coupling,
            coupling_0_to_1=self._coupling_0_to_1,
            leak_out=self._leak_out,
            stored=self.stored_j(),
            stored_initial=self._stored_initial,
        )


def wet_contact_w_per_k(h: float, h_dry: float, water_kg: float, wetted_below_kg: float
                        ) -> float:
    """The plate-to-water conductance of a cushion holding ``water_kg``: the full ``h`` at
    or above ``wetted_below_kg``, falling in proportion to the water below it, down to a
    dry plate's ``h_dry`` (see the module doc: an assumption, stated there)."""
    if water_kg >= wetted_below_kg:
        return h
    if water_kg <= 0.0:
        return h_dry
    return h_dry + (h - h_dry) * water_kg / wetted_below_kg


def water_c_at(plant: PlantConfig, t: float, plate0_c: float, water0_c: float,
               power_w: float, room_c: float) -> tuple[float, float]:
    """Closed-form (plate, water) temperatures of one full cushion after ``t`` seconds at
    constant ``power_w``: no client, coupling ignored.  Uses the eigen-decomposition of
    the 2×2 system (``_coefficients``)."""
    if t <= 0.0:
        return plate0_c, water0_c
    cp = plant.plate_heat_capacity_j_per_k
    cw = plant.water_kg * plant.water_specific_heat_j_per_kg_k
    ua = plant.loss_to_room_w_per_k
    E00, E01, E10, E11, M00, M01, M10, M11, _, _ = _coefficients(
        cp, cw, plant.plate_to_water_w_per_k, ua, t)
    u0 = power_w / cp
    u1 = ua * room_c / cw
    return (E00 * plate0_c + E01 * water0_c + M00 * u0 + M01 * u1,
            E10 * plate0_c + E11 * water0_c + M10 * u0 + M11 * u1)


def physical_minimum_warmup_s(plant: PlantConfig, start_c: float, setpoint_c: float,
                              room_c: float) -> float:
    """Shortest possible warm-up: full heater power from ``start_c`` (plate and water at
    rest at ``start_c``) until the water reaches ``setpoint_c``, on this model, for one
    cushion without a client (both cushions heat alike, so their coupling is ignored).

    Computed analytically: the water temperature is the closed-form solution of the
    2-state linear system (``water_c_at``); it is a constant plus two decaying
    exponentials, so it crosses the setpoint exactly once when ``start_c < setpoint_c``
    and the final temperature is above the setpoint.  The crossing is bracketed by
    doubling and then bisected to well below a millisecond.  Returns ``math.inf`` if the
    heater can never get there, 0 if the water is already at or above the setpoint.
    """
    if start_c >= setpoint_c:
        return 0.0
    ua = plant.loss_to_room_w_per_k
    p = plant.heater_w
    if p <= 0.0 or (ua > 0.0 and room_c + p / ua <= setpoint_c):
        return math.inf

    def water(t: float) -> float:
        return water_c_at(plant, t, start_c, start_c, p, room_c)[1]

    lo = 0.0
    hi = plant.plate_heat_capacity_j_per_k / plant.plate_to_water_w_per_k
    while water(hi) < setpoint_c:
        lo = hi
        hi *= 2.0
    while hi - lo > 1e-6 * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        if water(mid) < setpoint_c:
            lo = mid
        else:
            hi = mid
    return hi
