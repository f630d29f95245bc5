"""``hydrotherm autotune``: the identification experiment on a simulated table in-process
(``--sim``, and the tests) or on the board at ``--port``, then the report and the file.

The experiment itself (``controller.autotune``) knows only a controller; which board that
controller drives — a simulated one here, a real one over the link — is decided here, so
the controller package never imports the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from controller.autotune import (
    AutotuneError,
    Autotuner,
    AutotuneResult,
    AutotuneSettings,
    apply_result,
    format_report,
    write_config,
)
from controller.service import Controller
from hydrotherm.clock import RealClock
from hydrotherm.config import Config, ConfigError
from sim.harness import InProcessHarness

from .errors import UsageError
from .parts import build_controller, install_stop, open_log


def autotune_in_process(cfg: Config, seed: int = 0,
                        progress: Callable[[str], None] | None = None, *,
                        sim_cfg: Config | None = None, cushions: Sequence[int] = (0, 1),
                        room_c: float | None = None, settings: AutotuneSettings | None = None,
                        step_s: float = 0.05, heater_w: float | None = None) -> AutotuneResult:
    """Run the whole experiment on a simulated table in-process (``InProcessHarness`` +
    ``Controller`` on a ``SimClock``), as fast as the CPU allows.

    ``cfg`` is the configuration being tuned (what the controller and the tuner believe);
    ``sim_cfg`` is the simulated table's truth (default: ``cfg``).  ``progress`` receives
    the progress line whenever its phase or whole percent changes.  Raises
    ``AutotuneError`` if the experiment aborts."""
    harness = InProcessHarness(sim_cfg or cfg, seed=seed, step_s=step_s)
    controller = Controller(cfg, harness.link, harness.clock)
    tuner = Autotuner(controller, cushions, room_c, settings, heater_w)
    shown: tuple[str, int] | None = None
    while not tuner.done:
        harness.step()
        tuner.step()
        if progress is not None:
            key = (tuner.phase, int(tuner.percent))
            if key != shown:
                shown = key
                progress(tuner.progress)
    # let the board apply the 0 % and the open relay before leaving
    harness.run(1.0, each_step=tuner.step)
    if tuner.error is not None:
        raise AutotuneError(tuner.error)
    assert tuner.result is not None
    return tuner.result


def autotune_board(cfg: Config, url: str, data_dir: str | None,
                   show: Callable[[str], None], room_c: float | None = None,
                   heater_w: float | None = None) -> AutotuneResult:
    """The experiment on the board at ``url`` in real time; Ctrl-C aborts it (outputs 0,
    relay open).  Raises ``AutotuneError`` if it aborts."""
    log = open_log(cfg, data_dir)
    clock = RealClock()
    controller = build_controller(cfg, url, clock, log)
    tuner = Autotuner(controller, room_c=room_c, heater_w=heater_w)
    stop = install_stop()
    try:
        while not tuner.done:
            if stop.is_set():
                tuner.abort("interrupted by the user")
            tuner.step()
            show(tuner.progress)
            clock.sleep(0.005)
        tuner.step()  # push the 0 % and the open relay
    finally:
        controller.stop()
    if tuner.error:
        raise AutotuneError(tuner.error)
    assert tuner.result is not None
    return tuner.result


def run_autotune(cfg: Config, *, sim: bool, seed: int, url: str | None,
                 data_dir: str | None, target: str | None, dry_run: bool,
                 show: Callable[[str], None], room_c: float | None = None,
                 heater_w: float | None = None, sim_cfg: Config | None = None) -> int:
    """Identify, print the report, and (unless ``dry_run``) write the tuned configuration
    to ``target``.  Exit status: 0, or 1 for a dry run whose result is not usable; a
    result that is not usable is never written (``UsageError``, exit 2, with the reasons).
    ``room_c``/``heater_w``: measured values (None: identify the room, assume the
    nameplate power).  ``sim_cfg``: the simulated table's truth for ``--sim`` (default:
    ``cfg``)."""
    for name, v in (("--room-c", room_c), ("--heater-w", heater_w)):
        if v is not None and not math.isfinite(v):
            raise UsageError(f"{name} must be a number, got {v}")
    if room_c is not None and not -10.0 <= room_c <= 45.0:
        raise UsageError(f"--room-c {room_c:g} °C is not a room temperature (-10 to 45 °C)")
    if heater_w is not None and not 0.0 < heater_w <= 2000.0:
        raise UsageError(f"--heater-w {heater_w:g} W is not a heater power (0 to 2000 W)")
    try:
        if sim:
            result = autotune_in_process(cfg, seed=seed, progress=show, room_c=room_c,
                                         heater_w=heater_w, sim_cfg=sim_cfg)
        else:
            if not url:
                raise UsageError("no board given: pass --port URL, or --sim")
            result = autotune_board(cfg, url, data_dir, show, room_c, heater_w)
    except AutotuneError as exc:
        raise UsageError(f"autotune aborted: {exc}") from None
    print(format_report(result), flush=True)
    if dry_run:
        return 0 if result.ok else 1
    assert target is not None
    try:
        tuned = apply_result(cfg, result)
    except (AutotuneError, ConfigError) as exc:
        raise UsageError(f"autotune refused to write the model: {exc}") from None
    backup = write_config(Path(target), tuned)
    print(f"written to {target}" + (f" (previous file kept as {backup})" if backup else ""))
    return 0
