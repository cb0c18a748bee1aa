"""The simulation demos: controls → :class:`~allocsim.config.SimConfig` → runs → frames.

:class:`RunDemo` runs one machine with every control; :class:`CompareDemo` runs the same machine
and seed twice, side by side, without and with the patches the checkboxes select. With a live
backend a run goes on in a background thread and a frame is drawn after every chunk of simulated
time; otherwise a demo runs synchronously and shows a PNG. No simulation logic lives here: runs
are :class:`~allocsim.sim.Simulation` objects and figures come from :mod:`allocsim.plotting`.
"""

from __future__ import annotations

import base64
import html
import io
import threading
import time
import weakref

import numpy as np

from ..budget import describe_seconds, estimate_seconds
from ..config import SimConfig, scaled_zone_mib
from ..patches import Patches
from ..plotting import PALETTE, RunPlot, TaskPlot, config_y_top, figure_legend
from ..teaching import fitted_preset
from .controls import (
    _FORMULA_OF,
    OptionalInt,
    _view,
    controls_for,
    patch_controls,
)
from .environment import (
    _headless,
    _widgets,
    plot_mode,
)
from .host import (
    _BIG,
    FramePump,
    _FigureHost,
)


def _fmt(n) -> str:
    return f"{n:,}"


def _mib(pages: int) -> str:
    return f"{pages * 4 / 1024:,.1f} MiB"


def _derived_rows(cfg: SimConfig, *, show_mark_for_off: bool = True) -> list[tuple[str, str]]:
    d = cfg.derived()
    th_src = "kernel formula" if cfg.stat_threshold is None else "fixed by you"
    ratio = d.max_drift / d.tolerate_drift if d.tolerate_drift else float("inf")
    verdict = (
        f"<b style='color:{PALETTE['wmark_min']}'>drift can exceed the gap {ratio:,.0f}×</b>"
        if d.max_drift > d.tolerate_drift
        else "drift fits in the gap"
    )
    if d.percpu_drift_mark:
        mark = f"{_fmt(d.percpu_drift_mark)} pages = high + max drift (patch 2 on)"
    elif d.drift_mark_if_patched:
        mark = (
            f"not set: patch 2 is off (2.6.36 would set {_fmt(d.drift_mark_if_patched)})"
            if show_mark_for_off
            else "not set"
        )
    else:
        mark = "0: max drift ≤ low − min, never needed"
    mfk_src = "kernel formula" if cfg.min_free_kbytes is None else "fixed by you"
    return [
        (
            "zone",
            f"{cfg.zone_mib:,} MiB = {_fmt(d.present_pages)} pages; {cfg.cpus} CPUs; "
            f"writers on {cfg.writer_cpus} CPUs",
        ),
        ("stat_threshold", f"{d.stat_threshold} pages per CPU ({th_src})"),
        (
            "max drift vs low − min",
            f"{cfg.cpus} × {d.stat_threshold} = {_fmt(d.max_drift)} pages "
            f"vs {_fmt(d.tolerate_drift)}: {verdict}",
        ),
        ("percpu_drift_mark", mark),
        (
            "watermarks min / low / high",
            f"{_fmt(d.wmark_min)} / {_fmt(d.wmark_low)} / "
            f"{_fmt(d.wmark_high)} pages ({_mib(d.wmark_min)} / "
            f"{_mib(d.wmark_low)} / {_mib(d.wmark_high)}); "
            f"min_free_kbytes {_fmt(d.min_free_kbytes)} ({mfk_src})",
        ),
        (
            "pcp high / batch",
            f"{d.pcp_high} / {d.pcp_batch} per CPU: up to "
            f"{_fmt(cfg.cpus * d.pcp_high)} pages may hide on pcp lists",
        ),
        ("stat_interval", f"{cfg.stat_interval_ms} ms between each CPU's vmstat_update"),
    ]


def _rows_html(rows) -> str:
    body = "".join(
        f"<tr><td style='padding-right:1em;white-space:nowrap'><b>{k}</b></td><td>{v}</td></tr>"
        for k, v in rows
    )
    return f"<table style='font-size:90%'>{body}</table>"


def _bundle(obj) -> dict:
    """A display bundle for what a follower or a background job returns."""
    from matplotlib.figure import Figure

    if obj is None:
        return {"text/plain": ""}
    if hasattr(obj, "figure") and not isinstance(obj, Figure):  # an Axes, or an array of them
        obj = obj.figure
    if isinstance(obj, (list, tuple)) and obj and hasattr(obj[0], "figure"):
        obj = obj[0].figure
    if isinstance(obj, np.ndarray) and obj.size and hasattr(obj.flat[0], "figure"):
        obj = obj.flat[0].figure
    if isinstance(obj, Figure):
        buf = io.BytesIO()
        obj.savefig(buf, format="png", dpi=80)
        return {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"), "text/plain": ""}
    if isinstance(obj, str):
        return {"text/plain": obj, "text/html": f"<pre>{html.escape(obj)}</pre>"}
    from IPython.core.formatters import format_display_data

    data, _meta = format_display_data(obj)
    return data


class _Pending:
    """An output that is filled in later (from a background thread), without holding the
    kernel. What is shown stays in the saved notebook, like any output."""

    def __init__(self, note: str):
        self.note = note
        self.handle = None
        self.error = None

    def _placeholder(self) -> dict:
        text = self.note or "(appears when the demo's run has finished)"
        return {"text/plain": text, "text/html": f"<p style='color:#777'><i>{text}</i></p>"}

    def _show(self, obj) -> None:
        if self.handle is not None:  # shown: replace the output (not shown yet: nothing to do)
            self.handle.update(_bundle(obj), raw=True)

    def _fail(self, exc) -> None:
        self.error = exc
        text = f"{type(exc).__name__}: {exc}"
        data = {"text/plain": text, "text/html": f"<pre style='color:#b00'>{html.escape(text)}"}
        if self.handle is not None:
            self.handle.update(data, raw=True)


class Follower(_Pending):
    """Shows ``fn(result)`` for each finished run of a demo (see :meth:`_SimDemo.follow`)."""

    def __init__(self, demo, fn, *, note: str = ""):
        super().__init__(note)
        self.demo = demo
        self.fn = fn
        self.shown = None  # what fn returned for the run shown now
        demo._followers.append(self)

    def refresh(self, demo) -> None:
        result = demo.result
        try:
            self.shown = self.fn(result)
            self._show(self.shown)
        except Exception as exc:  # shown in place of the output; the demo goes on
            self._fail(exc)

    def _ipython_display_(self):
        from IPython.display import display

        self.handle = display(self._placeholder(), raw=True, display_id=True)
        if self.demo.finished and self.demo.results:
            self.refresh(self.demo)


class Later(_Pending):
    """Computes ``fn()`` in a background thread once the given demos' runs (and earlier
    :class:`Later` jobs) have finished, and shows what it returns, or ``show(value)``
    (see :func:`later`)."""

    def __init__(self, fn, after=(), note: str = "", show=None):
        super().__init__(note or "(computing in the background…)")
        self.fn = fn
        self.show = show
        self.after = [after] if isinstance(after, (_SimDemo, Later)) else list(after)
        self.value = None
        self.thread = None
        self.done = threading.Event()
        _JOBS.add(self)

    def _wait_for_after(self) -> None:
        for dep in self.after:
            if isinstance(dep, Later):
                dep.wait(None)
                continue
            while dep.running or not dep.results:
                time.sleep(0.05)

    def _compute(self) -> None:
        try:
            self.value = self.fn()
        finally:
            self.done.set()

    def _work(self) -> None:
        try:
            self._wait_for_after()
            self._compute()
            self._show(self.show(self.value) if self.show else self.value)
        except Exception as exc:  # shown in place of the output
            self._fail(exc)
            self.done.set()

    def wait(self, timeout: float | None = 300):
        """The value, once computed (blocks; the next job of a chain calls this, notebooks
        need not)."""
        if self.thread is None and not self.done.is_set():
            self._wait_for_after()
            self._compute()
        self.done.wait(timeout)
        return self.value

    def _live(self) -> bool:
        demos = [d for d in self.after if isinstance(d, _SimDemo)]
        jobs = [j for j in self.after if isinstance(j, Later)]
        return not _headless() and (
            any(d.threaded for d in demos) or any(j.thread is not None for j in jobs)
        )

    def _ipython_display_(self):
        from IPython.display import display

        if not self._live():
            value = self.wait()
            display(_bundle(self.show(value) if self.show else value), raw=True)
            return
        self.handle = display(self._placeholder(), raw=True, display_id=True)
        self.thread = threading.Thread(target=self._work, daemon=True, name="allocsim-later")
        self.thread.start()


_JOBS: weakref.WeakSet = weakref.WeakSet()  # every Later made in this kernel


def busy() -> bool:
    """Is a background job of :func:`later` still computing? (A test, or a lecturer about to
    tick a box, may wait for the machine to be quiet.)"""
    return any(j.thread is not None and not j.done.is_set() for j in list(_JOBS))


def later(fn, *, after=(), note: str = "", show=None) -> Later:
    """Compute ``fn()`` without holding the kernel: in a background thread, once the demos
    (or earlier ``later`` jobs) in ``after`` have finished, so they do not compete for the CPU,
    and show what it returns (or ``show(value)``) in this cell's output. ``job.wait()`` gives
    the value to a later job. Headless (tests, handouts) it is computed at once.
    """
    return Later(fn, after, note, show)


# One-click settings for a lecture: each scene sets every control (those it does not name go
# back to the demo's starting values), then the run restarts. Names say what the room will see.
SCENES = {
    "small machine: 4 CPUs, no patches": {"cpus": 4, "patches": "none"},
    "256 CPUs, no patches (the livelock)": {"cpus": 256, "patches": "none"},
    "1024 CPUs, no patches": {"cpus": 1024, "patches": "none"},
    "256 CPUs, patch 3 only": {"cpus": 256, "patches": "drain_after_reclaim"},
    "256 CPUs, all three patches": {"cpus": 256, "patches": "all"},
    # The yardstick: the same machine and seed with every __mod_zone_page_state folding at once.
    "256 CPUs, exact counters (the yardstick)": {
        "cpus": 256,
        "patches": "none",
        "stat_threshold": 0,
    },
}
_NO_SCENE = "choose a scene…"


class _SimDemo(_FigureHost):
    """Shared machinery of the simulation demos: controls → configs → Simulations → frames."""

    blits = True  # live frames redraw only the data artists (RunPlot/TaskPlot.data_artists)

    def _readout_head(self, error, shown: int) -> list[str]:
        """The readout's first parts: an error if any, the derived numbers, the run status.

        The numbers are those of the controls' config; when the controls hold a bad value, of
        the run ``shown`` (the one the readout describes) instead.
        """
        fallback = self.sims[shown].config if self.sims else None
        try:
            cfg = self.config() if error is None else fallback
        except (ValueError, TypeError) as exc:
            cfg, error = fallback, exc
        parts = [self._error_html(error)]
        if cfg is not None:
            parts.append(_rows_html(_derived_rows(cfg)))
        parts.append(self._status_html())
        return parts

    FIELDS = (
        "cpus",
        "zone_mib",
        "stat_threshold",
        "stat_interval_ms",
        "min_free_kbytes",
        "pcp_high",
        "pcp_batch",
        "writer_rate",
        "atomic_rate",
        "seed",
        "duration_ms",
    )
    # 820 × 440 px: with the switches above it, the figure fits a 1280 × 720 projector in
    # JupyterLab with the file browser open (output area about 840 px wide, 600 px high).
    figsize = (8.2, 4.4)

    def __init__(
        self,
        preset: str = "large",
        *,
        fields=None,
        live=None,
        threaded=None,
        autorun: bool = True,
        first_chunk_ms: int = 50,
        frame_s: float = 0.1,
        max_chunk_ms: int = 250,
        patches=None,
        zoom: str = "all",
        scenes: dict | None = None,
        **overrides,
    ):
        w = _widgets()
        self.preset = preset
        self.overrides = dict(overrides)  # fixed settings that have no control
        self.fields = tuple(self.FIELDS if fields is None else fields)
        base = fitted_preset(preset, **overrides)
        if patches is not None:
            base = base.replace(
                patches=Patches.parse(patches) if isinstance(patches, str) else patches
            )
        self.controls = controls_for(self.fields, base)
        self.controls.update(patch_controls(self._initial_patches(base)))
        self.scale_zone = w.Checkbox(
            value=preset == "large" and "zone_mib" not in overrides and "zone_mib" in self.controls,
            description="zone grows with CPUs (16 MiB per CPU, at least 1 GiB)",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.zoom = w.ToggleButtons(
            options=[("whole range", "all"), ("zoom on watermarks", "watermarks")],
            value=zoom,
            style={"button_width": "auto"},
        )
        self.buttons = {
            "run": w.Button(
                description="Run",
                icon="play",
                button_style="success",
                tooltip="start, or go on after a pause",
            ),
            "pause": w.Button(description="Pause", icon="pause", tooltip="stop after this frame"),
            "reset": w.Button(
                description="Reset",
                icon="refresh",
                tooltip="rebuild the machine from the controls, back to t = 0",
            ),
        }
        self.scenes = dict(scenes or {})
        self.scene_picker = w.Dropdown(
            options=[_NO_SCENE, *self.scenes],
            value=_NO_SCENE,
            description="scene",
            style={"description_width": "initial"},
            layout=w.Layout(width="auto"),
        )
        self.big_switch = w.ToggleButton(
            value=False, description="big", icon="search-plus", tooltip="large fonts for a room"
        )
        self.verdict = w.HTML()
        self._defaults = {name: ctrl.value for name, ctrl in self.controls.items()}
        self._followers = []  # displays that show something of each finished run
        self.autorun = autorun
        self.first_chunk_ms = int(first_chunk_ms)
        self.frame_s = float(frame_s)
        self.max_chunk_ms = int(max_chunk_ms)
        self._init_host(live, self.figsize)
        self.threaded = self.live if threaded is None else bool(threaded)
        self._stop = threading.Event()
        # Clear while a restart renders the new background: the run's first chunk is simulated
        # meanwhile; the next waits for it (see reset).
        self._background_ready = threading.Event()
        self._background_ready.set()
        # Frames of a background run: drawn in a helper thread, one at a time, the newest
        # state first (the run never waits for a picture; see FramePump).
        self._pump = FramePump(self._render_frame, on_error=self._report_error)
        self._thread: threading.Thread | None = None
        self._gen = 0
        self._suspend = False
        self._state = "ready"
        self.sims = []
        self.results = []
        self.stats: dict = {}
        self._build_plots()
        if self.blit:
            self._set_animated()
        for ctrl in self.controls.values():
            ctrl.observe(self._guard(self._on_control), names="value")
        self.scale_zone.observe(self._guard(self._on_control), names="value")
        self.zoom.observe(self._guard(self._on_zoom), names="value")
        self.buttons["run"].on_click(self._guard(lambda _b: self.run()))
        self.buttons["pause"].on_click(self._guard(lambda _b: self.pause()))
        self.buttons["reset"].on_click(self._guard(lambda _b: self.reset()))
        self.scene_picker.observe(self._guard(self._on_scene), names="value")
        self.big_switch.observe(self._guard(self._on_big), names="value")
        self._sync_zone()
        self.reset()

    # -- subclass hooks -------------------------------------------------------------------------
    def _initial_patches(self, base: SimConfig) -> Patches:
        return base.patches

    def _build_plots(self) -> None:
        raise NotImplementedError

    def configs(self) -> list[SimConfig]:
        raise NotImplementedError

    def _plot_results(self, results) -> None:
        """Set the artists from ``results`` (one per run shown)."""
        raise NotImplementedError

    def _clear_plots(self, configs) -> None:
        """Empty the artists and set everything else (ranges, watermarks) from ``configs``."""
        raise NotImplementedError

    def _panels(self) -> list:
        """Every RunPlot and TaskPlot of the figure."""
        raise NotImplementedError

    def _show_results(self, results) -> None:
        self.results = results
        self._plot_results(results)

    def _animated_artists(self) -> list:
        return [a for p in self._panels() for a in p.data_artists()]

    def _background_key(self) -> tuple:
        panels = tuple(p.background_key() for p in self._panels())
        return (*super()._background_key(), *panels)

    def _axes_keys(self) -> dict:
        return {id(p.ax): p.background_key() for p in self._panels()}

    def _overlay_artists(self) -> list:
        return [p.mark_note for p in self._run_plots()]  # "drift mark … above this view"

    def _layout_limits(self) -> list:
        """The memory pictures' widest y range over the CPU slider's values (the zone grows
        with them), in either zoom: the layout makes room for those tick labels."""
        cpus = self.controls.get("cpus")
        plots = self._run_plots()
        if cpus is None or not plots:
            return []
        try:
            configs = [
                self._config(cpus=n) for n in {cpus.value, *(getattr(cpus, "options", ()) or ())}
            ]
        except (ValueError, TypeError):  # a control holds a bad value: lay out as it is
            return []
        top = max(config_y_top(c, zoom) for c in configs for zoom in ("all", "watermarks"))
        return [(p.ax, (0, top * 1.12)) for p in plots]

    # -- configs from controls ------------------------------------------------------------------
    def patches(self) -> Patches:
        """The patches the checkboxes select."""
        return Patches(**{n: bool(self.controls[n].value) for n in Patches.names()})

    def config(self) -> SimConfig:
        """The SimConfig the controls describe (validated; raises with a clear message)."""
        return self._config()

    def _config(self, **changes) -> SimConfig:
        """The controls' SimConfig, with some controls' values replaced by ``changes``."""
        values = {
            name: ctrl.value for name, ctrl in self.controls.items() if name not in Patches.names()
        }
        values.update(changes)
        if self.scale_zone.value:
            cpus = values.get("cpus", self.overrides.get("cpus", 256))
            values["zone_mib"] = scaled_zone_mib(cpus)
        merged = {**self.overrides, **values, "patches": self.patches()}
        return fitted_preset(self.preset, **merged)

    def set(self, **values) -> None:
        """Set several controls at once (``patches="all"`` ticks all three), then one restart."""
        patches = values.pop("patches", None)
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(
                f"no control named {', '.join(sorted(unknown))}; controls: "
                f"{', '.join(self.controls)}"
            )
        self._suspend = True
        try:
            if patches is not None:
                p = Patches.parse(patches) if isinstance(patches, str) else patches
                for n in Patches.names():
                    self.controls[n].value = getattr(p, n)
            for name, v in values.items():
                ctrl = self.controls[name]
                if hasattr(ctrl, "options") and v not in ctrl.options:
                    ctrl.options = sorted(set(ctrl.options) | {v})
                ctrl.value = v
            self._sync_zone()
        finally:
            self._suspend = False
        self.restart()

    def scene(self, name: str) -> None:
        """Set every control as the scene says (see :data:`SCENES`) and restart the run."""
        if name not in self.scenes:
            raise ValueError(f"scene must be one of {', '.join(self.scenes)}; got {name!r}")
        values = {k: v for k, v in self._defaults.items() if k not in Patches.names()}
        values.update(self.scenes[name])
        values.setdefault("patches", "none")
        self._suspend = True
        try:
            if "zone_mib" in self.controls and "zone_mib" not in self.scenes[name]:
                self.scale_zone.value = self.preset == "large" and "zone_mib" not in self.overrides
        finally:
            self._suspend = False
        self.set(**values)

    def _on_big(self, change) -> None:
        if _BIG["on"] != change["new"]:
            self.set_big(change["new"])

    def _rebuild_figure(self) -> None:
        """New artists at the current font size, showing the same run."""
        with self._lock:
            self._thaw_layout()  # new fonts: lay out again
            self._background = None
            self.fig.clear()
            self._build_plots()
            if self.blit:
                self._set_animated()
            if self.results:
                self._show_results(self.results)
            elif self.sims:
                self._clear_plots([s.config for s in self.sims])
        self._redraw()

    def _on_scene(self, change) -> None:
        if change["new"] == _NO_SCENE:
            return
        try:
            self.scene(change["new"])
        finally:
            self.scene_picker.value = _NO_SCENE  # the same scene can be chosen again

    def _sync_zone(self) -> None:
        zone = self.controls.get("zone_mib")
        if zone is None:
            return
        zone.disabled = bool(self.scale_zone.value)
        if self.scale_zone.value:
            cpus = (
                self.controls["cpus"].value
                if "cpus" in self.controls
                else self.overrides.get("cpus", 256)
            )
            target = scaled_zone_mib(cpus)
            was, self._suspend = self._suspend, True
            try:
                if hasattr(zone, "options") and target not in zone.options:
                    zone.options = sorted(set(zone.options) | {target})
                zone.value = target
            finally:
                self._suspend = was

    def _show_formulas(self, cfg: SimConfig) -> None:
        d = cfg.derived().as_dict()
        for name, key in _FORMULA_OF.items():
            ctrl = self.controls.get(name)
            if isinstance(ctrl, OptionalInt):
                ctrl.show_formula(d.get(key))

    # -- callbacks ------------------------------------------------------------------------------
    def _on_control(self, _change) -> None:
        if self._suspend:
            return
        self._sync_zone()
        self.restart()

    def _on_zoom(self, change) -> None:
        with self._lock:
            for p in self._run_plots():
                p.set_zoom(change["new"])
            if self.results:
                self._plot_results(self.results)
            elif self.sims:
                self._clear_plots([s.config for s in self.sims])
        self._redraw()

    def _on_error(self, exc) -> None:
        self._show_state(error=exc)

    def _show_state(self, error=None) -> None:
        """Refresh the one-line verdict and the detailed readout."""
        self.verdict.value = self._verdict_html(error)
        self._set_readout(self._readout_html(error=error))

    # -- running --------------------------------------------------------------------------------
    def restart(self) -> None:
        """Rebuild the machine from the controls and, with ``autorun``, run it."""
        # With autorun the next picture is the new run's first frame, not an empty plot.
        if not self.autorun:
            self.reset()
            return
        self.reset(redraw=False, start=True)
        if not self.threaded:
            self.run()

    def reset(self, redraw: bool = True, *, start: bool = False) -> None:
        """Stop any run, rebuild the Simulation(s) from the current controls, clear the plot.

        ``start``: a threaded demo starts the new run at once, before the new background is
        rendered: its first chunk is simulated (in numba, which releases the GIL) while this
        thread draws the Axes, instead of after it; its first frame waits for the lock held
        here, so it is blitted on the new background. Its later chunks wait until the
        background is done: simulated beside it, they would only slow it down on two cores.
        """
        from ..sim import Simulation

        self.pause(redraw=False)  # the old run's last state need not be drawn
        cfgs = self.configs()  # validation errors surface here, before anything changes
        with self._lock:
            self._gen += 1
            self.sims = [Simulation(c) for c in cfgs]
            self.results = []
            self._state = "ready"
            if start and self.threaded:
                self._background_ready.clear()
                self._start_worker()
            try:
                self._clear_plots(cfgs)
                if self.blit and not redraw:
                    # The new config's background, made now, before the run goes on beyond its
                    # first chunk (text is slow to draw beside a running simulation); it is not
                    # shown: the first frame on screen is the first chunk, blitted on it.
                    self._prepare_background()
            finally:
                self._background_ready.set()
        self._show_formulas(cfgs[-1])
        self._show_state()
        if redraw:
            self._redraw(final=False)

    @property
    def finished(self) -> bool:
        return bool(self.sims) and all(s.t >= s.config.duration_ms for s in self.sims)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Start the run (or go on after a pause). Live: in a background thread; static: now."""
        if not self.sims or self.finished:
            self.reset(redraw=False, start=True)  # the next picture is the new run's first frame
            if self.threaded:
                return
        if not self.threaded:
            self.run_sync()
            return
        if self.running:
            return
        self._start_worker(prepare=self.blit)

    def _start_worker(self, prepare: bool = False) -> None:
        """Start the background run of the current Simulation(s).

        ``prepare``: make the background for the current config beside the run's first chunk,
        if there is none yet (the first run of a demo just shown: its first frame would
        otherwise be a full draw with the layout, 0.5 s, or seconds beside the Python engine);
        later chunks wait for it, as after a restart (see :meth:`reset`).
        """
        self._stop.clear()
        gen = self._gen
        self._state = "running"
        self._thread = threading.Thread(
            target=self._worker, args=(gen,), daemon=True, name="allocsim-demo"
        )
        if not prepare:
            self._thread.start()
            return
        self._background_ready.clear()
        try:
            self._thread.start()
            with self._lock:
                self._prepare_background()
        finally:
            self._background_ready.set()

    def pause(self, redraw: bool = True) -> None:
        """Stop the background run after its current chunk (a few hundredths of a second).

        ``redraw=False``: do not draw the state it stopped at (a restart follows)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._stop.set()
            if thread is not threading.current_thread():
                thread.join(timeout=30)
            if not self.finished:
                self._state = "paused"
                self._show_state()
                if redraw and self.results:
                    # the last frame, after any in flight; the saved still copy follows it
                    self._pump.offer((self._gen, self.results, True, self.stats))
        self._thread = None

    def wait(self, timeout: float | None = 60):
        """Block until the background run ends and its last frame is drawn (or ``timeout``
        s); return the result."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._pump.wait(None if deadline is None else max(0.0, deadline - time.perf_counter()))
        return self.result

    def run_sync(self):
        """Run the whole simulation in this thread (tests, scripts, static mode); return the
        result. Stops a background run first and carries on from where it was."""
        self.pause(redraw=False)
        self._pump.wait(30)  # no frame of the background run may land after this run's
        if not self.sims or self.finished:
            self.reset()
        t0 = time.perf_counter()
        self._state = "running"
        # Static mode holds the cell until the run ends (40 s at 4096 CPUs): say up front how
        # long it should take, and refresh the readout as it goes (widget updates reach the
        # page while the cell runs).
        eta = sum(estimate_seconds(s.config.cpus, s.config.duration_ms - s.t) for s in self.sims)
        self._eta_text = f"should take {describe_seconds(eta)}" if eta > 2 else ""
        self._show_state()
        shown = [time.perf_counter()]

        def progress(_sim) -> None:
            if time.perf_counter() - shown[0] > 0.5:
                shown[0] = time.perf_counter()
                self._show_state()

        for s in self.sims:
            s.run(progress=progress, progress_every=50)
        self._eta_text = ""
        results = [s.result() for s in self.sims]
        with self._lock:
            self._show_results(results)
        wall = time.perf_counter() - t0
        self.stats = {"run_s": wall, "first_frame_s": wall, "frames": 1}
        self._finish()
        return self.result

    def _worker(self, gen: int) -> None:
        """The background run: simulate a chunk, offer it as a frame, repeat until done or
        paused.

        The simulation never waits for the picture: frames are drawn by the frame pump in
        another thread, one at a time; a chunk that ends while a frame is being drawn replaces
        any frame still waiting, so the picture skips to the newest state. The last frame is
        always drawn.
        """
        t0 = time.perf_counter()
        stats = {"started": t0, "frames": 0, "chunks": 0}
        self.stats = stats
        chunk = self.first_chunk_ms
        sims = self.sims
        end = max(s.config.duration_ms for s in sims)
        try:
            while not self._stop.is_set():
                now = min(s.t for s in sims)
                if now >= end:
                    break
                until = min(end, now + chunk)
                c0 = time.perf_counter()
                for s in sims:
                    s.run(until=min(until, s.config.duration_ms))
                simulated = max(time.perf_counter() - c0, 1e-3)
                latest = [s.result() for s in sims]
                if gen != self._gen:
                    return
                self.results = latest
                stats["chunks"] += 1
                self._pump.offer((gen, latest, False, stats))
                self._show_state()
                self._background_ready.wait()  # a restart's new background (see reset)
                # Next chunk: as much simulated time as the simulation gets through in frame_s
                # of wall time, at most max_chunk_ms so that the picture moves smoothly.
                rate = (until - now) / simulated
                chunk = int(min(self.max_chunk_ms, max(20, rate * self.frame_s)))
            if gen == self._gen and self.finished:
                stats["run_s"] = time.perf_counter() - t0
                self._finish(pumped=True)
        except Exception as exc:  # shown in the error area; the thread ends
            self._report_error(exc)
            self._on_error(exc)

    def _render_frame(self, item) -> None:
        """Draw one frame of a background run (in the frame pump's thread): set the artists
        from its results and paint them; the last frame also refreshes the saved copy."""
        gen, results, final, stats = item
        with self._lock:
            if gen != self._gen:
                return  # a frame of a run that has been replaced: never shown
            self._plot_results(results)
            if self.live:
                self._paint()
        stats["frames"] = stats.get("frames", 0) + 1
        if stats["frames"] == 1 and "started" in stats:
            stats["first_frame_s"] = time.perf_counter() - stats["started"]
        if final:
            if "started" in stats:
                stats["on_screen_s"] = time.perf_counter() - stats["started"]
            if self.live:
                self._snapshot()
            else:
                self._redraw(final=True)
            # The readout's verdict comes with the picture it describes, not a frame ahead of
            # it (a learner, or a test, reading "finished" sees the last frame on its way).
            self._show_state()
        self._frame_done(min(len(r.t_ms) for r in results))

    def _finish(self, pumped: bool = False) -> None:
        self._state = "finished"
        if pumped:  # the last frame, after any in flight; its render shows the readout
            self._pump.offer((self._gen, self.results, True, self.stats))
        else:
            self._redraw(final=True)
            self._show_state()
        gen = self._gen
        for follower in list(self._followers):
            if gen != self._gen:  # a new run started: its own finish will update them
                break
            follower.refresh(self)

    def follow(self, fn, *, note: str = "") -> Follower:
        """A display that shows ``fn(result)`` for each finished run of this demo.

        The cell that shows it returns at once (it never waits for the run, so Run All does not
        hold the live figure); the output appears when the run finishes and follows every new
        run (a ticked patch, a scene). ``fn`` returns what to show: text, a matplotlib Figure,
        or anything IPython can display. Headless, the run has finished already, so the output
        is there at once.
        """
        return Follower(self, fn, note=note)

    # -- readout --------------------------------------------------------------------------------
    _STATE_TEXT = {
        "ready": "ready: press Run",
        "running": "running",
        "paused": "paused",
        "finished": "finished",
    }

    def _status_html(self) -> str:
        if not self.sims:
            return ""
        cfg = self.sims[0].config
        t = min(s.t for s in self.sims)
        state = self._STATE_TEXT[self._state]
        wall = self.stats.get("run_s")
        extra = f", {wall:.2f} s wall" if wall is not None and self._state == "finished" else ""
        if self._state == "running" and getattr(self, "_eta_text", ""):
            extra = f" (this run {self._eta_text}; the cell waits for it)"
        return f"<p><b>Run</b>: t = {t:,} / {cfg.duration_ms:,} ms simulated — {state}{extra}</p>"

    def _readout_html(self, error=None) -> str:
        raise NotImplementedError

    def _verdict_html(self, error=None) -> str:
        """One line: the run's clock and state, and the verdict once it has finished."""
        if error is not None:
            return self._error_html(error)
        if not self.sims:
            return ""
        t = min(s.t for s in self.sims)
        end = max(s.config.duration_ms for s in self.sims)
        state = self._STATE_TEXT[self._state]
        verdicts = []
        if self._state == "finished":
            for r in self.results:
                color = PALETTE["wmark_min"] if r.livelocked else PALETTE["wmark_high"]
                if r.livelocked:
                    head = f"LIVELOCK: {len(r.episodes)} episode(s), {r.livelock_ms} ms"
                elif r.livelock_ms:
                    head = f"no livelock (short stalls, {r.livelock_ms} ms)"
                else:
                    head = "no livelock"
                who = f"patches {html.escape(r.config.patches.label())}: "
                verdicts.append(f"{who}<b style='color:{color}'>{head}</b>")
        cfg = self.sims[-1].config
        line = f"<b>{cfg.cpus} CPUs</b> · t = {t:,} / {end:,} ms — {state}"
        if self._state == "running" and getattr(self, "_eta_text", ""):
            line += f" (this run {self._eta_text}; the cell waits for it)"
        if verdicts:
            line += " — " + " · ".join(verdicts)
        return f"<div class='allocsim-verdict' style='font-size:110%'>{line}</div>"

    def _mode_html(self) -> str:
        if _headless():
            return ""  # nothing to act on in a handout or a test
        return f"<p style='font-size:85%;color:#555'>{plot_mode()}</p>"

    def _static_readout(self) -> str:
        return self.verdict.value + self.readout.value

    def _error_html(self, error) -> str:
        if error is None:
            return ""
        return (
            f"<p style='color:{PALETTE['wmark_min']};margin:0'><b>Not applied:</b> "
            f"{html.escape(str(error))} (the last valid run is still shown)</p>"
        )

    # -- layout ---------------------------------------------------------------------------------
    def _machine_controls(self):
        """The controls of the machine and the workload (folded away under the figure)."""
        w = _widgets()
        plain = [_view(c) for n, c in self.controls.items() if n not in Patches.names()]
        grid = w.GridBox(
            plain,
            layout=w.Layout(
                grid_template_columns="repeat(auto-fill, minmax(340px, 1fr))",
                grid_gap="2px 16px",
            ),
        )
        return w.VBox([grid, self.scale_zone, self.zoom])

    def _top_bar(self):
        """What a lecture needs at hand, above the figure: patches, run buttons, scenes, big."""
        w = _widgets()
        wrap = w.Layout(flex_flow="row wrap", align_items="center", grid_gap="0 12px")
        patches = w.HBox(
            [w.HTML(f"<b>{self._patch_caption}</b>")] + [self.controls[n] for n in Patches.names()],
            layout=wrap,
        )
        extra = [self.scene_picker] if self.scenes else []
        for b in [*self.buttons.values(), self.big_switch]:
            b.layout.width = "auto"  # ipywidgets' default 148 px would wrap the row
        buttons = w.HBox(list(self.buttons.values()) + extra + [self.big_switch], layout=wrap)
        return w.VBox([patches, buttons])

    def _panel(self):
        w = _widgets()
        return w.VBox([self._top_bar(), self._machine_controls()])

    def _live_children(self) -> list:
        w = _widgets()
        # Two accordions, so each opens on its own; folded, the figure stays next to the switches
        folds = [
            w.Accordion(children=[child], titles=(title,), selected_index=None)
            for child, title in (
                (
                    self._machine_controls(),
                    "Machine and workload: CPUs, zone, thresholds, rates, seed",
                ),
                (
                    self.readout,
                    "Details: the kernel's numbers for this machine, and the run's summary",
                ),
            )
        ]
        return [self._top_bar(), self.verdict, self.fig.canvas, w.VBox(folds), self.errors]

    def _static_children(self) -> list:
        return [self._panel(), self.errors]

    _patch_caption = "patches:"

    def _before_show(self) -> None:
        if not self.threaded and self.autorun and not self.results:
            self.run_sync()

    def show(self) -> None:
        super().show()
        if self.threaded and self.autorun and not self.results and not self.running:
            self.run()

    def _run_plots(self) -> list:
        return []


class RunDemo(_SimDemo):
    """One machine, live: the memory picture and who gets pages, with every control.

    Parameters
    ----------
    preset : str
        ``"large"`` (the livelock scenario), ``"small"`` or ``"steady"``.
    fields : sequence of str, optional
        Which SimConfig fields get a control (default :attr:`FIELDS`).
    live : bool, optional
        Live ipympl canvas (default: whether the ipympl backend is active).
    threaded : bool, optional
        Run in a background thread (default: same as ``live``).
    autorun : bool
        Start a run when shown and whenever a control changes.
    first_chunk_ms, frame_s, max_chunk_ms
        Simulated ms of the first frame; the wall seconds of simulation a later chunk aims at;
        the most simulated ms one chunk may cover. Each chunk is offered as a frame; frames are
        drawn one at a time beside the run (it never waits for them), so one offered while
        another is drawn is skipped for the newer state.
    patches : Patches or str, optional
        Initial patch checkboxes.
    **overrides
        Fixed SimConfig fields (e.g. ``duration_ms=2000``); a field with a control starts at
        this value.
    """

    def _build_plots(self) -> None:
        ax, ax2 = self.fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
        cfg = fitted_preset(self.preset, **self.overrides)
        self.plot = RunPlot(
            ax, cfg, legend=None, zoom=self.zoom.value, yrange="config", clock=False
        )
        ax.set_xlabel("")
        self.tasks = TaskPlot(ax2, cfg, legend=False)
        figure_legend(
            self.fig,
            self.plot.legend_handles() + self.tasks.legend_handles(),
            where="below",
            fontsize="xx-small",
        )

    def _run_plots(self) -> list:
        return [self.plot]

    def _panels(self) -> list:
        return [self.plot, self.tasks]

    def configs(self) -> list[SimConfig]:
        return [self.config()]

    def _clear_plots(self, configs) -> None:
        self.plot.clear(configs[0])
        self.tasks.clear(configs[0])

    def _plot_results(self, results) -> None:
        self.plot.update(results[0])
        self.tasks.update(results[0])

    @property
    def result(self):
        """The RunResult shown now (partial while running), or None before the first frame."""
        return self.results[0] if self.results else None

    def plotted(self) -> dict:
        """The arrays on the artists now: the memory picture, plus ``"tasks"``."""
        out = self.plot.plotted()
        out["tasks"] = self.tasks.plotted()
        return out

    def _readout_html(self, error=None) -> str:
        parts = self._readout_head(error, 0)
        res = self.result
        if res is not None and self._state == "finished":
            color = PALETTE["wmark_min"] if res.livelocked else PALETTE["wmark_high"]
            head = (
                f"LIVELOCK: {len(res.episodes)} episode(s), {res.livelock_ms} ms"
                if res.livelocked
                else "no livelock"
            )
            parts.append(
                f"<p style='color:{color}'><b>{head}</b></p>"
                f"<pre style='font-size:85%;font-family:monospace'>"
                f"{html.escape(res.summary())}</pre>"
            )
        parts.append(self._mode_html())
        return "".join(parts)


def livelock_demo(**kwargs) -> RunDemo:
    """The livelock notebook's main demo: the ``large`` machine, live, patches as given, with
    the lecture scenes of :data:`SCENES`.

    The same object notebook 05 builds; the benchmark script uses it to time a control change
    to the first frame of the new run.
    """
    kwargs.setdefault("scenes", SCENES)
    return RunDemo("large", **kwargs)


class CompareDemo(_SimDemo):
    """The same machine and seed twice, side by side: no patch (left) and the patches the
    checkboxes select (right, all three by default)."""

    _patch_caption = "right-hand side runs with:"

    def _initial_patches(self, base: SimConfig) -> Patches:
        return base.patches if base.patches.enabled() else Patches.all()

    def _build_plots(self) -> None:
        axes = self.fig.subplots(
            2, 2, sharex=True, sharey="row", gridspec_kw={"height_ratios": (3, 1)}
        )
        cfg = fitted_preset(self.preset, **self.overrides)
        self.plots = [
            RunPlot(
                axes[0, i],
                cfg,
                legend=None,
                zoom=self.zoom.value,
                mib_axis=i == 1,
                title="patches",  # the machine is named once, in the figure's title
                yrange="config",
                clock=False,  # the verdict line above the figure has the clock
            )
            for i in range(2)
        ]
        self.tasks = [TaskPlot(axes[1, i], cfg, legend=False) for i in range(2)]
        for ax in axes[0]:
            ax.set_xlabel("")
        figure_legend(
            self.fig,
            self.plots[0].legend_handles() + self.tasks[0].legend_handles(),
            where="below",
            fontsize="xx-small",
        )

    def _run_plots(self) -> list:
        return self.plots

    def _panels(self) -> list:
        return [*self.plots, *self.tasks]

    def _share_y(self) -> None:
        top = max(1, *(p.ax.get_ylim()[1] for p in self.plots))
        for p in self.plots:
            p.ax.set_ylim(0, top)

    def configs(self) -> list[SimConfig]:
        on = self.config()
        return [on.replace(patches=Patches.none()), on]

    def _clear_plots(self, configs) -> None:
        for p, t, c in zip(self.plots, self.tasks, configs, strict=True):
            p.clear(c)
            t.clear(c)
        c = configs[-1]
        self.fig.suptitle(
            f"{c.cpus} CPUs · {c.zone_mib} MiB zone · seed {c.seed}: no patch (left) and "
            "the patches you tick (right)",
            fontsize="medium",
        )
        self._share_y()

    def _plot_results(self, results) -> None:
        for p, t, r in zip(self.plots, self.tasks, results, strict=True):
            p.update(r)
            t.update(r)
        self._share_y()

    @property
    def result(self):
        """``(result_off, result_on)`` shown now, or None."""
        return tuple(self.results) if self.results else None

    def plotted(self) -> dict:
        return {
            side: {**p.plotted(), "tasks": t.plotted()}
            for side, p, t in zip(("off", "on"), self.plots, self.tasks, strict=True)
        }

    def _readout_html(self, error=None) -> str:
        parts = self._readout_head(error, 1)
        if self.results and self._state == "finished":
            cells = []
            for r in self.results:
                color = PALETTE["wmark_min"] if r.livelocked else PALETTE["wmark_high"]
                head = f"LIVELOCK {r.livelock_ms} ms" if r.livelocked else "no livelock"
                cells.append(
                    f"<td style='vertical-align:top'><b style='color:{color}'>"
                    f"patches {html.escape(r.config.patches.label())}: {head}</b>"
                    f"<pre style='font-size:80%;font-family:monospace'>"
                    f"{html.escape(r.summary())}</pre></td>"
                )
            parts.append(f"<table><tr>{''.join(cells)}</tr></table>")
        parts.append(self._mode_html())
        return "".join(parts)
