"""The experiment on a simulated table in-process (tests, ``hydrotherm autotune --sim``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hydrotherm.config import Config

from .experiment import Autotuner
from .results import AutotuneError, AutotuneResult, AutotuneSettings

# --- in-process (tests, ``hydrotherm autotune --sim``) ---------------------------------------


def autotune_in_process(cfg: Config, seed: int = 0,
                        progress: Callable[[str], None] | None = None, *,
                        sim_cfg: Config | None = None, cushions: Sequence[int] = (0, 1),
                        room_c: float | None = None, settings: AutotuneSettings | None = None,
                        step_s: float = 0.05) -> AutotuneResult:
    """Run the whole experiment on a simulated table in-process (``InProcessHarness`` +
    ``Controller`` on a ``SimClock``), as fast as the CPU allows.

    ``cfg`` is the configuration being tuned (what the controller and the tuner believe);
    ``sim_cfg`` is the simulated table's truth (default: ``cfg``).  ``progress`` receives
    the progress line whenever its phase or whole percent changes.  Raises
    ``AutotuneError`` if the experiment aborts."""
    from controller.service import Controller
    from sim.harness import InProcessHarness

    harness = InProcessHarness(sim_cfg or cfg, seed=seed, step_s=step_s)
    controller = Controller(cfg, harness.link, harness.clock)
    tuner = Autotuner(controller, cushions, room_c, settings)
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


