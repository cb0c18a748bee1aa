"""Interactive demos for the notebooks: ipywidgets controls, live ipympl figures, readouts.

Each demo is one object: its controls (``demo.controls[name]``), buttons, readout, error
``Output`` and figure are attributes, so two demos never share state and tests can drive them in
plain Python::

    demo = RunDemo("large")
    demo.controls["cpus"].value = 1024     # a changed control starts a new run
    demo.controls["drain_after_reclaim"].value = True
    demo.run_sync()                        # or demo.wait() while a live run is going
    demo.plotted()["envelope_lo"]          # the arrays on the artists right now

No simulation logic lives here: a demo builds :class:`~allocsim.config.SimConfig` objects from
its controls and runs :class:`~allocsim.sim.Simulation` (in chunks, for a live picture); the
figures come from :mod:`allocsim.plotting`.

**Live or static.** With the ipympl backend (``%matplotlib widget``) the figure is a live canvas:
a run goes on in a background thread, a frame is drawn after every chunk of simulated time, and
Run / Pause / Reset work while it runs. Anywhere else (VS Code or Colab without ipympl, static
HTML, nbclient, pytest) a demo runs synchronously and shows its figure as a PNG that is replaced
after each run; the readout says which mode is on. :func:`use_live_plots` picks the backend and
chooses the static one by itself when running headless (tests, handouts), so nothing waits on a
front end that is not there.

The package's rooms: :mod:`.environment` (backend and environment check), :mod:`.controls`
(controls from ``SimConfig`` metadata), :mod:`.host` (the figure host), :mod:`.demos` (the
simulation demos), :mod:`.explorers` (demos without a simulation), :mod:`.drift` (notebook 07's
live panel on the running kernel) and :mod:`.questions` (learner checks). Notebooks use the names
re-exported here: ``import allocsim.widgets as aw``.
"""

from .controls import OptionalInt, controls_for, patch_controls
from .demos import SCENES, CompareDemo, RunDemo, busy, later, livelock_demo
from .drift import DriftPanel
from .environment import (
    STATIC_ENV,
    environment_report,
    is_live_backend,
    plot_mode,
    show_environment,
    use_live_plots,
)
from .explorers import BuddyDemo, ThresholdExplorer, WindowStepper
from .host import LiveCheck, big
from .questions import Question, ask

__all__ = [
    "STATIC_ENV",
    "use_live_plots",
    "is_live_backend",
    "plot_mode",
    "environment_report",
    "show_environment",
    "controls_for",
    "patch_controls",
    "OptionalInt",
    "LiveCheck",
    "RunDemo",
    "livelock_demo",
    "SCENES",
    "later",
    "busy",
    "big",
    "CompareDemo",
    "WindowStepper",
    "BuddyDemo",
    "ThresholdExplorer",
    "DriftPanel",
    "ask",
    "Question",
]
