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
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import io
import os
import sys
import threading
import time
import traceback

import numpy as np

from .config import SimConfig, scaled_zone_mib
from .patches import PATCH_INFO, Patches
from .plotting import PALETTE, RunPlot, TaskPlot, plot_window_compare
from .teaching import fitted_preset

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
    "CompareDemo",
    "WindowStepper",
    "BuddyDemo",
    "ThresholdExplorer",
    "ask",
    "Question",
]

# Set (to anything non-empty) to force static figures: the handouts and the notebook tests do.
STATIC_ENV = "ALLOCSIM_STATIC"

# Presentation hints: narrower slider ranges than the fields accept (values stay validated by
# SimConfig; the metadata stays the only declaration of the parameters).
SLIDER_HINTS = {
    "writer_rate": (0.0, 16.0),
    "atomic_rate": (0.0, 4.0),
    "duration_ms": (100, 20_000),
}

# Optional fields whose "kernel formula" value the controls display, from SimConfig.derived().
_FORMULA_OF = {
    "stat_threshold": "stat_threshold",
    "min_free_kbytes": "min_free_kbytes",
    "pcp_high": "pcp_high",
    "pcp_batch": "pcp_batch",
    "initial_free_pages": "initial_free_pages",
}


def _widgets():
    import ipywidgets

    return ipywidgets


# ---------------------------------------------------------------------------------------------
# Backend: live (ipympl) or static (inline PNG)
# ---------------------------------------------------------------------------------------------

_MODE = {"mode": None, "reason": ""}


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None
    return get_ipython()


def _headless() -> bool:
    """True under the notebook tests, the handouts, or pytest (kernels inherit its env)."""
    return bool(os.environ.get(STATIC_ENV)) or "PYTEST_CURRENT_TEST" in os.environ


def _current_backend() -> str:
    import matplotlib

    try:
        name = matplotlib.get_backend(auto_select=False)  # matplotlib >= 3.9: never resolves
    except TypeError:  # pragma: no cover - older matplotlib
        name = matplotlib.rcParams.get("backend")
    return str(name or "")


def is_live_backend() -> bool:
    """Is matplotlib's backend ipympl's (``%matplotlib widget``)?"""
    name = _current_backend().lower()
    return "ipympl" in name or name in ("widget", "ipympl")


def use_live_plots(live: bool | None = None) -> str:
    """Choose the figure backend for this notebook and say which one it is.

    ``live=None`` (the default) asks for ipympl's live canvas, unless the kernel runs headless
    (the tests, the handouts: ``ALLOCSIM_STATIC`` set, or under pytest) or ipympl is missing;
    then inline PNG figures. ``live=False`` forces static figures. Outside IPython nothing is
    changed. Returns ``"live"``, ``"static"`` or ``"script"``.
    """
    ip = _ipython()
    if ip is None:
        _MODE.update(mode="script", reason="not running inside IPython")
        return "script"
    have_ipympl = importlib.util.find_spec("ipympl") is not None
    if live is False:
        reason = "static figures requested"
    elif _headless():
        reason = "running headless for tests or handouts"
    elif not have_ipympl:
        reason = "ipympl is not installed (pip install ipympl)"
    else:
        reason = ""
    mode = "static"
    if not reason:
        try:
            ip.run_line_magic("matplotlib", "widget")
            mode = "live"
        except Exception as exc:  # the widget backend could not start
            reason = f"%matplotlib widget failed: {exc}"
    if mode == "static":
        ip.run_line_magic("matplotlib", "inline")
    _MODE.update(mode=mode, reason=reason)
    if mode == "live":
        print("allocsim: live plots on (ipympl). If figures stay blank, see notebook 00.")
    else:
        print(f"allocsim: static figures, {reason}; demos redraw a picture after each run.")
    return mode


def plot_mode() -> str:
    """A sentence for readouts: live or static, and why."""
    if is_live_backend():
        return "Live plot (ipympl): the figure follows the run as simulated time advances."
    reason = _MODE["reason"] or f"matplotlib backend is {_current_backend() or 'not chosen'}"
    return (
        f"Static figure ({html.escape(reason)}): the picture is redrawn after each run. "
        "For live plots run <code>allocsim.widgets.use_live_plots()</code> in JupyterLab "
        "with ipympl (see notebook 00)."
    )


def _labextension(name: str) -> bool:
    return any(
        os.path.isdir(os.path.join(p, "share", "jupyter", "labextensions", name))
        for p in {sys.prefix, sys.base_prefix}
    )


def environment_report() -> list[dict]:
    """Checks of what the notebooks need, each ``{"check", "ok", "detail"}``."""
    rows = []

    def add(check, ok, detail):
        rows.append({"check": check, "ok": ok, "detail": detail})

    import matplotlib

    import allocsim

    add("Python", sys.version_info >= (3, 10), sys.version.split()[0])
    add("allocsim", True, f"{allocsim.__version__} from {os.path.dirname(allocsim.__file__)}")
    backend = _current_backend() or "(not chosen yet)"
    add("matplotlib", True, f"{matplotlib.__version__}, backend {backend}")
    for mod, ext in (
        ("ipywidgets", "@jupyter-widgets/jupyterlab-manager"),
        ("ipympl", "jupyter-matplotlib"),
    ):
        # Never import ipympl here: importing it switches matplotlib to its backend.
        if importlib.util.find_spec(mod) is None:
            add(mod, False, "not installed in this kernel's environment")
        else:
            add(mod, True, f"{importlib.metadata.version(mod)} installed")
        found = _labextension(ext)
        add(
            f"JupyterLab extension {ext}",
            found,
            "installed in this environment"
            if found
            else "not found next to this kernel (fine if your Jupyter runs elsewhere)",
        )
    ip = _ipython()
    kernel = type(ip).__name__ if ip is not None else "none (plain Python)"
    add("running in a Jupyter kernel", kernel == "ZMQInteractiveShell", kernel)
    why = _MODE["reason"] or f"backend is {backend}"
    add("live plots", is_live_backend(), "on (ipympl)" if is_live_backend() else f"off: {why}")
    return rows


ADVICE = [
    (
        "The sliders show as text such as <code>IntSlider(value=4, ...)</code> or "
        "“Loading widget...”",
        "Your front end has no widget manager. Start the kit with <code>make lab</code> "
        "(JupyterLab "
        "with everything installed). In VS Code install the Jupyter extension; in Colab run "
        "<code>from google.colab import output; output.enable_custom_widget_manager()</code>. "
        "Then restart the kernel and run all cells.",
    ),
    (
        "The figures are still pictures that change only after a run ends",
        "ipympl is not active: the demos fall back to static pictures (they still work). Run "
        "<code>allocsim.widgets.use_live_plots()</code> again, or <code>%matplotlib widget</code>, "
        "then re-run the demo cell. If that fails, <code>pip install ipympl</code> "
        "into the kernel's "
        "environment and restart JupyterLab (not only the kernel).",
    ),
    (
        "A figure area stays blank or says “Error displaying widget: model not found”",
        "The kernel was restarted under an old page: reload the browser tab, then Run All.",
    ),
    (
        "Running headless (the tests, <code>make handouts</code>)",
        "Static figures are chosen on purpose there, so nothing waits for a browser.",
    ),
]


def show_environment() -> None:
    """Display the environment checks and what to do if widgets or live plots do not render."""
    from IPython.display import HTML, display

    rows = "".join(
        f"<tr><td>{'✅' if r['ok'] else '⚠️'}</td><td>{html.escape(r['check'])}</td>"
        f"<td>{html.escape(str(r['detail']))}</td></tr>"
        for r in environment_report()
    )
    advice = "".join(f"<li><b>{a}</b>: {b}</li>" for a, b in ADVICE)
    display(
        HTML(f"<table>{rows}</table><p><b>If something does not render</b></p><ul>{advice}</ul>")
    )


# ---------------------------------------------------------------------------------------------
# Controls from SimConfig metadata
# ---------------------------------------------------------------------------------------------


def _log_grid(lo: int, hi: int, value: int) -> list[int]:
    """Slider stops between lo and hi: powers of two if ``value`` is one, else 1-2-5 steps."""
    vals = set()
    if value > 0 and value & (value - 1) == 0:
        k = 1
        while k <= hi:
            if k >= lo:
                vals.add(k)
            k *= 2
    else:
        base = 1
        while base <= hi:
            for m in (1, 2, 5):
                if lo <= m * base <= hi:
                    vals.add(m * base)
            base *= 10
    vals.update(v for v in (lo, hi, value) if lo <= v <= hi)
    return sorted(vals)


class OptionalInt:
    """A value that is either the kernel's formula (None) or a number the user fixes.

    Shown as a number control and a "kernel formula" checkbox. ``.value`` is None or an int;
    ``observe(handler, names="value")`` works as on any widget. While the checkbox is ticked the
    number control is disabled and shows the formula's value (set by :meth:`show_formula`).
    """

    def __init__(self, *, value, lo: int, hi: int, description: str, tooltip: str = ""):
        import traitlets

        w = _widgets()

        class _Value(traitlets.HasTraits):
            value = traitlets.Any(None, allow_none=True)

        self._trait = _Value(value=value)
        self.lo, self.hi = lo, hi
        style = {"description_width": "initial"}
        start = lo if value is None else value
        if hi - lo <= 1000:
            self.number = w.IntSlider(
                value=start,
                min=lo,
                max=hi,
                description=description,
                continuous_update=False,
                style=style,
                tooltip=tooltip,
            )
        else:
            self.number = w.BoundedIntText(
                value=start,
                min=lo,
                max=hi,
                description=description,
                style=style,
                tooltip=tooltip,
                layout=w.Layout(width="260px"),
            )
        self.auto = w.Checkbox(
            value=value is None,
            description="kernel formula",
            indent=False,
            tooltip=tooltip,
            layout=w.Layout(width="130px"),
        )
        self.number.disabled = value is None
        self.widget = w.HBox([self.number, self.auto])
        self._syncing = False
        self.auto.observe(self._from_children, names="value")
        self.number.observe(self._from_children, names="value")

    # the trait-like surface
    @property
    def value(self):
        return self._trait.value

    @value.setter
    def value(self, v):
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"value must be None or an integer, got {v!r}")
            if not self.lo <= v <= self.hi:
                raise ValueError(f"value must be in [{self.lo}, {self.hi}], got {v}")
        self._syncing = True
        try:
            self.auto.value = v is None
            self.number.disabled = v is None
            if v is not None:
                self.number.value = int(v)
        finally:
            self._syncing = False
        self._trait.value = None if v is None else int(v)

    def observe(self, handler, names="value"):
        self._trait.observe(handler, names=names)

    def unobserve(self, handler, names="value"):
        self._trait.unobserve(handler, names=names)

    def show_formula(self, v) -> None:
        """Display the formula's value in the disabled number box (no change event)."""
        if self._trait.value is None and v is not None:
            self._syncing = True
            try:
                self.number.value = int(min(max(v, self.lo), self.hi))
            finally:
                self._syncing = False

    def _from_children(self, _change):
        if self._syncing:
            return
        self.number.disabled = self.auto.value
        self._trait.value = None if self.auto.value else int(self.number.value)

    @property
    def description(self):
        return self.number.description

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _view(control):
    """The widget to put in a layout for a control (OptionalInt wraps two widgets)."""
    return control.widget if isinstance(control, OptionalInt) else control


def _control_for(f, value, hint):
    w = _widgets()
    m = f.metadata
    desc = m["label"] + (f" ({m['unit']})" if m.get("unit") else "")
    tip = m.get("help", "")
    style = {"description_width": "initial"}
    if "range" not in m:
        if isinstance(value, bool):
            return w.Checkbox(value=value, description=desc, tooltip=tip, indent=False)
        raise ValueError(f"{f.name}: no range in its metadata, cannot make a control")
    lo, hi = m["range"]
    if m.get("optional"):
        if not m.get("integer", True):
            raise ValueError(f"{f.name}: optional float parameters have no control yet")
        return OptionalInt(value=value, lo=lo, hi=hi, description=desc, tooltip=tip)
    if hint is not None:
        lo, hi = max(lo, hint[0]), min(hi, hint[1])
        lo, hi = min(lo, value), max(hi, value)
    if not m.get("integer", True):
        step = max((hi - lo) / 200, 0.01)
        return w.FloatSlider(
            value=value,
            min=lo,
            max=hi,
            step=step,
            description=desc,
            continuous_update=False,
            readout_format=".2f",
            style=style,
            tooltip=tip,
        )
    if hi - lo <= 1000:
        return w.IntSlider(
            value=value,
            min=lo,
            max=hi,
            description=desc,
            continuous_update=False,
            style=style,
            tooltip=tip,
        )
    if lo >= 1 and hi <= 10**6:
        return w.SelectionSlider(
            options=_log_grid(lo, hi, value),
            value=value,
            description=desc,
            continuous_update=False,
            style=style,
            tooltip=tip,
        )
    return w.BoundedIntText(
        value=value,
        min=lo,
        max=hi,
        description=desc,
        style=style,
        tooltip=tip,
        layout=w.Layout(width="260px"),
    )


def controls_for(field_names, config: SimConfig | None = None, *, hints=None) -> dict:
    """One control per SimConfig field, built from the field's metadata (label, unit, range,
    help, optional, integer) and set to ``config``'s value.

    Integers get a slider (a log-spaced selection slider for wide ranges, a number box for huge
    ones), floats a float slider, optional fields an :class:`OptionalInt` ("kernel formula" +
    value). ``"patches"`` expands to one checkbox per patch (see :func:`patch_controls`).
    ``hints`` narrows slider ranges for presentation (default :data:`SLIDER_HINTS`).
    """
    config = SimConfig() if config is None else config
    hints = SLIDER_HINTS if hints is None else hints
    meta = {f.name: f for f in SimConfig.parameters()}
    out = {}
    for name in field_names:
        if name == "patches":
            out.update(patch_controls(config.patches))
            continue
        if name not in meta:
            raise ValueError(f"unknown SimConfig parameter {name!r}")
        out[name] = _control_for(meta[name], getattr(config, name), hints.get(name))
    return out


def patch_controls(patches: Patches | None = None) -> dict:
    """One checkbox per patch, labelled with its commit (tooltip: the commit subject)."""
    w = _widgets()
    patches = Patches() if patches is None else patches
    out = {}
    for name in Patches.names():
        commit, _function, subject = PATCH_INFO[name]
        out[name] = w.Checkbox(
            value=getattr(patches, name),
            description=f"{commit} {name}",
            tooltip=subject,
            indent=False,
            layout=w.Layout(width="auto"),
        )
    return out


# ---------------------------------------------------------------------------------------------
# Figure hosting: live canvas or static PNG
# ---------------------------------------------------------------------------------------------


class _FigureHost:
    """Owns one figure and shows it live (ipympl canvas) or as a PNG display that is replaced."""

    static_dpi = 80

    def _init_host(self, live, figsize):
        w = _widgets()
        self.live = is_live_backend() if live is None else bool(live)
        self.readout = w.HTML()
        self.errors = w.Output(layout=w.Layout(max_height="12em", overflow="auto"))
        self.last_error = None
        self._fig_handle = None
        self._readout_handle = None
        # One lock for the artists: the background run updates them under it, and every render
        # of the figure (ours, or the one ipympl does when the browser asks) takes it too.
        self._lock = threading.RLock()
        if self.live:
            import matplotlib.pyplot as plt

            with plt.ioff():
                self.fig = plt.figure(figsize=figsize, layout="constrained")
            canvas = self.fig.canvas
            for attr, val in (
                ("header_visible", False),
                ("footer_visible", False),
                ("toolbar_position", "right"),
            ):
                if hasattr(canvas, attr):
                    setattr(canvas, attr, val)
            render = canvas.draw

            def locked_draw(*args, **kwargs):
                with self._lock:
                    return render(*args, **kwargs)

            canvas.draw = locked_draw
        else:
            from matplotlib.figure import Figure

            self.fig = Figure(figsize=figsize, layout="constrained")

    # -- errors --------------------------------------------------------------------------------
    def _report_error(self, exc: BaseException) -> None:
        self.last_error = exc
        if isinstance(exc, (ValueError, TypeError)):
            text = f"{type(exc).__name__}: {exc}\n"
        else:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.errors.append_stderr(text)

    def _guard(self, fn):
        """Wrap a callback so an exception lands in ``self.errors`` instead of vanishing."""

        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # shown to the learner, not swallowed
                self._report_error(exc)
                self._on_error(exc)
                return None

        wrapped.__name__ = getattr(fn, "__name__", "callback")
        return wrapped

    def _on_error(self, exc) -> None:
        pass

    # -- drawing -------------------------------------------------------------------------------
    def _png(self):
        from IPython.display import Image

        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=self.static_dpi)
        return Image(data=buf.getvalue(), format="png")

    def _redraw(self, final: bool = True) -> None:
        """Show the artists' state. Live, intermediate frames ask the browser to fetch a picture
        (``draw_idle``, which the browser skips while an earlier picture is still on its way);
        a final frame is rendered and pushed at once (``draw``), so the last state always
        arrives. Static, the PNG display is replaced (final frames only)."""
        if self.live:
            canvas = self.fig.canvas
            # ipympl stops syncing its data URL once a browser view has said "initialized";
            # before that there is no view to push a picture to.
            if final and not getattr(canvas, "syncing_data_url", True):
                canvas.draw()
            else:
                canvas.draw_idle()
        elif final and self._fig_handle is not None:
            self._fig_handle.update(self._png())

    def _set_readout(self, text: str) -> None:
        self.readout.value = text
        if self._readout_handle is not None:
            from IPython.display import HTML

            self._readout_handle.update(HTML(text))

    def _panel(self):
        raise NotImplementedError

    def show(self) -> None:
        """Display the demo: controls, readout, figure and the error area."""
        from IPython.display import HTML, display

        w = _widgets()
        self._before_show()
        if self.live:
            display(w.VBox([self._panel(), self.readout, self.fig.canvas, self.errors]))
        else:
            display(w.VBox([self._panel(), self.errors]))
            self._readout_handle = display(HTML(self.readout.value), display_id=True)
            self._fig_handle = display(self._png(), display_id=True)

    def _before_show(self) -> None:
        pass

    def _ipython_display_(self):
        self.show()


class LiveCheck(_FigureHost):
    """The smallest live figure: move the slider and the curve should change at once."""

    def __init__(self, *, live=None):
        w = _widgets()
        self._init_host(live, (5, 2.2))
        ax = self.fig.subplots()
        self.x = np.linspace(0, 2 * np.pi, 200)
        self.controls = {
            "k": w.IntSlider(value=1, min=1, max=8, description="periods", continuous_update=True)
        }
        (self.line,) = ax.plot(self.x, np.sin(self.x), color=PALETTE["counter"])
        ax.set_title("move the slider: the curve should follow", fontsize="medium")
        self.controls["k"].observe(self._guard(self._update), names="value")
        self._set_readout(plot_mode())

    def _update(self, change):
        self.line.set_ydata(np.sin(change["new"] * self.x))
        self._redraw()

    def _panel(self):
        return self.controls["k"]

    def plotted(self) -> dict:
        return {"y": np.asarray(self.line.get_ydata())}


# ---------------------------------------------------------------------------------------------
# Simulation demos
# ---------------------------------------------------------------------------------------------


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


class _SimDemo(_FigureHost):
    """Shared machinery of the simulation demos: controls → configs → Simulations → frames."""

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
    figsize = (9.2, 6)  # fits a JupyterLab output area (about 9.7 in at 100 dpi)

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
        self.autorun = autorun
        self.first_chunk_ms = int(first_chunk_ms)
        self.frame_s = float(frame_s)
        self.max_chunk_ms = int(max_chunk_ms)
        self._init_host(live, self.figsize)
        self.threaded = self.live if threaded is None else bool(threaded)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gen = 0
        self._suspend = False
        self._state = "ready"
        self.sims = []
        self.results = []
        self.stats: dict = {}
        self._build_plots()
        for ctrl in self.controls.values():
            ctrl.observe(self._guard(self._on_control), names="value")
        self.scale_zone.observe(self._guard(self._on_control), names="value")
        self.zoom.observe(self._guard(self._on_zoom), names="value")
        self.buttons["run"].on_click(self._guard(lambda _b: self.run()))
        self.buttons["pause"].on_click(self._guard(lambda _b: self.pause()))
        self.buttons["reset"].on_click(self._guard(lambda _b: self.reset()))
        self._sync_zone()
        self.reset()

    # -- subclass hooks -------------------------------------------------------------------------
    def _initial_patches(self, base: SimConfig) -> Patches:
        return base.patches

    def _build_plots(self) -> None:
        raise NotImplementedError

    def configs(self) -> list[SimConfig]:
        raise NotImplementedError

    def _show_results(self, results) -> None:
        raise NotImplementedError

    def _clear_plots(self, configs) -> None:
        raise NotImplementedError

    # -- configs from controls ------------------------------------------------------------------
    def patches(self) -> Patches:
        """The patches the checkboxes select."""
        return Patches(**{n: bool(self.controls[n].value) for n in Patches.names()})

    def config(self) -> SimConfig:
        """The SimConfig the controls describe (validated; raises with a clear message)."""
        values = {
            name: ctrl.value for name, ctrl in self.controls.items() if name not in Patches.names()
        }
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
        for p in self._run_plots():
            p.zoom = change["new"]
        if self.results:
            self._show_results(self.results)
        self._redraw()

    def _on_error(self, exc) -> None:
        self._set_readout(self._readout_html(error=exc))

    # -- running --------------------------------------------------------------------------------
    def restart(self) -> None:
        """Rebuild the machine from the controls and, with ``autorun``, run it."""
        self.reset()
        if self.autorun:
            self.run()

    def reset(self) -> None:
        """Stop any run, rebuild the Simulation(s) from the current controls, clear the plot."""
        from .sim import Simulation

        self.pause()
        cfgs = self.configs()  # validation errors surface here, before anything changes
        with self._lock:
            self._gen += 1
            self.sims = [Simulation(c) for c in cfgs]
            self.results = []
            self._state = "ready"
            self._clear_plots(cfgs)
        self._show_formulas(cfgs[-1])
        self._set_readout(self._readout_html())
        self._redraw()

    @property
    def finished(self) -> bool:
        return bool(self.sims) and all(s.t >= s.config.duration_ms for s in self.sims)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Start the run (or go on after a pause). Live: in a background thread; static: now."""
        if not self.sims:
            self.reset()
        if self.finished:
            self.reset()
        if not self.threaded:
            self.run_sync()
            return
        if self.running:
            return
        self._stop.clear()
        gen = self._gen
        self._state = "running"
        self._thread = threading.Thread(
            target=self._worker, args=(gen,), daemon=True, name="allocsim-demo"
        )
        self._thread.start()

    def pause(self) -> None:
        """Stop the background run after its current chunk (a few hundredths of a second)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._stop.set()
            if thread is not threading.current_thread():
                thread.join(timeout=30)
            if not self.finished:
                self._state = "paused"
                self._set_readout(self._readout_html())
        self._thread = None

    def wait(self, timeout: float | None = 60):
        """Block until the background run ends (or ``timeout`` s); return the result."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.result

    def run_sync(self):
        """Run the whole simulation in this thread (tests, scripts, static mode); return the
        result. Stops a background run first and carries on from where it was."""
        self.pause()
        if not self.sims or self.finished:
            self.reset()
        t0 = time.perf_counter()
        self._state = "running"
        for s in self.sims:
            s.run()
        results = [s.result() for s in self.sims]
        with self._lock:
            self._show_results(results)
        wall = time.perf_counter() - t0
        self.stats = {"run_s": wall, "first_frame_s": wall, "frames": 1}
        self._finish()
        return self.result

    def _worker(self, gen: int) -> None:
        """The background run: simulate a chunk, show it, repeat until done or paused.

        The simulation never waits for the picture: if the figure is being rendered (the lock
        is taken) when a chunk ends, that frame is skipped and the next one shows the newer
        state. The last frame is always shown.
        """
        t0 = time.perf_counter()
        stats = {"started": t0, "frames": 0}
        self.stats = stats
        chunk = self.first_chunk_ms
        sims = self.sims
        end = max(s.config.duration_ms for s in sims)
        latest = None
        try:
            while not self._stop.is_set():
                now = min(s.t for s in sims)
                if now >= end:
                    break
                until = min(end, now + chunk)
                c0 = time.perf_counter()
                for s in sims:
                    s.run(until=min(until, s.config.duration_ms))
                latest = [s.result() for s in sims]
                if gen != self._gen:
                    return
                if self._lock.acquire(blocking=False):
                    try:
                        self._show_results(latest)
                    finally:
                        self._lock.release()
                    self._redraw(final=False)
                    stats["frames"] += 1
                    if stats["frames"] == 1:
                        stats["first_frame_s"] = time.perf_counter() - t0
                self._set_readout(self._readout_html())
                spent = max(time.perf_counter() - c0, 1e-3)
                # Next chunk: as much simulated time as fits in one frame of wall time, at most
                # max_chunk_ms so that the picture moves; rest out the frame (this also lets the
                # kernel's main thread render the canvas).
                chunk = int(min(self.max_chunk_ms, max(20, (until - now) / spent * self.frame_s)))
                if spent < self.frame_s:
                    self._stop.wait(self.frame_s - spent)
            if gen == self._gen and self.finished:
                with self._lock:
                    if latest is not None:
                        self._show_results(latest)
                stats["run_s"] = time.perf_counter() - t0
                self._finish()
        except Exception as exc:  # shown in the error area; the thread ends
            self._report_error(exc)
            self._on_error(exc)

    def _finish(self) -> None:
        self._state = "finished"
        self._set_readout(self._readout_html())
        self._redraw(final=True)

    # -- readout --------------------------------------------------------------------------------
    def _status_html(self) -> str:
        if not self.sims:
            return ""
        cfg = self.sims[0].config
        t = min(s.t for s in self.sims)
        state = {
            "ready": "ready: press Run",
            "running": "running",
            "paused": "paused",
            "finished": "finished",
        }[self._state]
        wall = self.stats.get("run_s")
        extra = f", {wall:.2f} s wall" if wall is not None and self._state == "finished" else ""
        return f"<p><b>Run</b>: t = {t:,} / {cfg.duration_ms:,} ms simulated — {state}{extra}</p>"

    def _readout_html(self, error=None) -> str:
        raise NotImplementedError

    def _error_html(self, error) -> str:
        if error is None:
            return ""
        return (
            f"<p style='color:{PALETTE['wmark_min']}'><b>Not applied:</b> "
            f"{html.escape(str(error))} (the last valid run is still shown)</p>"
        )

    # -- layout ---------------------------------------------------------------------------------
    def _panel(self):
        w = _widgets()
        plain = [_view(c) for n, c in self.controls.items() if n not in Patches.names()]
        grid = w.GridBox(
            plain,
            layout=w.Layout(
                grid_template_columns="repeat(2, minmax(300px, 1fr))", grid_gap="2px 16px"
            ),
        )
        patches = w.HBox(
            [w.HTML(f"<b>{self._patch_caption}</b>&nbsp;")]
            + [self.controls[n] for n in Patches.names()]
        )
        buttons = w.HBox(list(self.buttons.values()) + [self.zoom])
        return w.VBox([grid, self.scale_zone, patches, buttons])

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
        Simulated ms of the first frame; wall seconds per later frame (at least); the most
        simulated ms one frame may cover.
    patches : Patches or str, optional
        Initial patch checkboxes.
    **overrides
        Fixed SimConfig fields (e.g. ``duration_ms=2000``); a field with a control starts at
        this value.
    """

    def _build_plots(self) -> None:
        ax, ax2 = self.fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
        cfg = fitted_preset(self.preset, **self.overrides)
        self.plot = RunPlot(ax, cfg, legend=None, zoom=self.zoom.value)
        ax.set_xlabel("")
        self.tasks = TaskPlot(ax2, cfg, legend=False)
        self.fig.legend(
            handles=self.plot.legend_handles() + self.tasks.legend_handles(),
            loc="outside lower center",
            ncols=5,
            fontsize="x-small",
            frameon=False,
        )

    def _run_plots(self) -> list:
        return [self.plot]

    def configs(self) -> list[SimConfig]:
        return [self.config()]

    def _clear_plots(self, configs) -> None:
        self.plot.clear(configs[0])
        self.tasks.clear(configs[0])

    def _show_results(self, results) -> None:
        self.results = results
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
        try:
            cfg = self.config() if error is None else (self.sims[0].config if self.sims else None)
        except (ValueError, TypeError) as exc:
            cfg, error = (self.sims[0].config if self.sims else None), exc
        parts = [self._error_html(error)]
        if cfg is not None:
            parts.append(_rows_html(_derived_rows(cfg)))
        parts.append(self._status_html())
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
        parts.append(f"<p style='font-size:85%;color:#555'>{plot_mode()}</p>")
        return "".join(parts)


def livelock_demo(**kwargs) -> RunDemo:
    """The livelock notebook's main demo: the ``large`` machine, live, patches as given.

    The same object notebook 05 builds; the benchmark script uses it to time a control change
    to the first frame of the new run.
    """
    return RunDemo("large", **kwargs)


class CompareDemo(_SimDemo):
    """The same machine and seed twice, side by side: no patch (left) and the patches the
    checkboxes select (right, all three by default)."""

    figsize = (9.2, 6)  # two panels, still inside the output area
    _patch_caption = "right-hand side runs with:"

    def _initial_patches(self, base: SimConfig) -> Patches:
        return base.patches if base.patches.enabled() else Patches.all()

    def _build_plots(self) -> None:
        axes = self.fig.subplots(
            2, 2, sharex=True, sharey="row", gridspec_kw={"height_ratios": (3, 1)}
        )
        cfg = fitted_preset(self.preset, **self.overrides)
        self.plots = [
            RunPlot(axes[0, i], cfg, legend=None, zoom=self.zoom.value, mib_axis=i == 1)
            for i in range(2)
        ]
        self.tasks = [TaskPlot(axes[1, i], cfg, legend=False) for i in range(2)]
        for ax in axes[0]:
            ax.set_xlabel("")
        self.fig.legend(
            handles=self.plots[0].legend_handles() + self.tasks[0].legend_handles(),
            loc="outside lower center",
            ncols=5,
            fontsize="x-small",
            frameon=False,
        )

    def _run_plots(self) -> list:
        return self.plots

    def configs(self) -> list[SimConfig]:
        on = self.config()
        return [on.replace(patches=Patches.none()), on]

    def _clear_plots(self, configs) -> None:
        for p, t, c in zip(self.plots, self.tasks, configs, strict=True):
            p.clear(c)
            t.clear(c)

    def _show_results(self, results) -> None:
        self.results = results
        top = 1
        for p, t, r in zip(self.plots, self.tasks, results, strict=True):
            p.update(r)
            t.update(r)
            top = max(top, p.ax.get_ylim()[1])
        for p in self.plots:
            p.ax.set_ylim(0, top)

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
        try:
            cfg = self.config() if error is None else (self.sims[1].config if self.sims else None)
        except (ValueError, TypeError) as exc:
            cfg, error = (self.sims[1].config if self.sims else None), exc
        parts = [self._error_html(error)]
        if cfg is not None:
            parts.append(_rows_html(_derived_rows(cfg)))
        parts.append(self._status_html())
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
        parts.append(f"<p style='font-size:85%;color:#555'>{plot_mode()}</p>")
        return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Demos without a simulation
# ---------------------------------------------------------------------------------------------


class WindowStepper(_FigureHost):
    """Patch 1's window, page by page: a slider walks through one ``free_pcppages_bulk`` and the
    readout says what a lockless reader on another CPU saw at that step, without and with
    72853e2. The steps come from :func:`allocsim.window.free_pcppages_bulk_window`."""

    def __init__(self, *, live=None, **window_kwargs):
        from .window import free_pcppages_bulk_window

        w = _widgets()
        self._init_host(live, (11, 3.8))
        self.steps = {
            "off": free_pcppages_bulk_window(Patches.none(), **window_kwargs),
            "on": free_pcppages_bulk_window(Patches(counter_after_free=True), **window_kwargs),
        }
        n = len(self.steps["off"])
        self.controls = {
            "step": w.IntSlider(
                value=0, min=0, max=n - 1, description="step", continuous_update=self.live
            )
        }
        axes = self.fig.subplots(1, 2, sharey=True)
        plot_window_compare(self.steps["off"], self.steps["on"], axes=axes)
        self.cursors = [ax.axvline(0.5, color="grey", lw=1.5) for ax in axes]
        self.controls["step"].observe(self._guard(self._update), names="value")
        self._update({"new": 0})

    def _update(self, change) -> None:
        i = int(change["new"])
        for c in self.cursors:
            c.set_xdata([i + 0.5, i + 0.5])
        rows = []
        for side, label in (("off", "2.6.35.3 (unpatched)"), ("on", "with 72853e2")):
            s = self.steps[side][i]
            verdict = "passes" if s.watermark_ok else "fails"
            truth = "passes" if s.truth_ok else "fails"
            lie = (
                " <b style='color:#d62728'>← passes on pages that are not there</b>"
                if s.watermark_ok and not s.truth_ok
                else ""
            )
            rows.append(
                (
                    label,
                    f"{s.linked} linked; counter {s.counter}, buddy lists {s.buddy}, "
                    f"in flight {s.in_flight}; the reader's GFP_ATOMIC check "
                    f"{verdict} (on the truth it {truth}){lie}",
                )
            )
        mode = f"<p style='font-size:85%;color:#555'>{plot_mode()}</p>"
        self._set_readout(_rows_html(rows) + mode)
        self._redraw()

    def _panel(self):
        return self.controls["step"]

    def plotted(self) -> dict:
        return {"cursor": float(self.cursors[0].get_xdata()[0])}


class BuddyDemo(_FigureHost):
    """A small page-level zone: allocate blocks of a chosen order and free them, and watch
    ``free_area`` split (``expand``) and merge (``__free_one_page``)."""

    def __init__(self, present_pages: int = 1024, *, live=None):
        from .constants import MAX_ORDER
        from .mmzone import Zone

        w = _widgets()
        self._init_host(live, (7, 3.2))
        self.zone = Zone(present_pages, 1)
        self.allocated: list[tuple[int, int]] = []
        self.controls = {
            "order": w.IntSlider(
                value=0, min=0, max=MAX_ORDER - 1, description="order", continuous_update=False
            )
        }
        self.buttons = {
            "alloc": w.Button(description="allocate", icon="minus"),
            "free": w.Button(description="free the last block", icon="plus"),
            "free_all": w.Button(description="free all", icon="refresh"),
        }
        self.buttons["alloc"].on_click(self._guard(lambda _b: self.allocate()))
        self.buttons["free"].on_click(self._guard(lambda _b: self.free()))
        self.buttons["free_all"].on_click(self._guard(lambda _b: self.free_all()))
        ax = self.fig.subplots()
        orders = np.arange(MAX_ORDER)
        self.bars = ax.bar(orders, np.zeros(MAX_ORDER), color=PALETTE["buddy"], alpha=0.75)
        self.labels = [
            ax.text(o, 0, "", ha="center", va="bottom", fontsize="x-small") for o in orders
        ]
        ax.set_xticks(orders)
        ax.set_xlabel("order (block of 2^order pages)")
        ax.set_ylabel("free blocks (nr_free)")
        self.ax = ax
        self.message = "all pages free"
        self._update()

    def allocate(self, order: int | None = None):
        """``rmqueue(order)``: take a block (split a bigger one if needed). Returns its pfn."""
        order = self.controls["order"].value if order is None else order
        before = self.zone.nr_free_by_order()
        pfn = self.zone.rmqueue(order)
        if pfn is None:
            self.message = f"no free block of order ≥ {order}: the allocation fails"
        else:
            self.allocated.append((pfn, order))
            after = self.zone.nr_free_by_order()
            took = next((o for o in range(order, len(before)) if after[o] < before[o]), order)
            split = (
                f"; split an order-{took} block, halves went to orders {order}–{took - 1}"
                if took > order
                else ""
            )
            self.message = f"allocated order {order} at pfn {pfn}{split}"
        self._update()
        return pfn

    def free(self):
        """``__free_one_page`` on the most recently allocated block (merging with its buddy)."""
        if not self.allocated:
            self.message = "nothing allocated"
        else:
            pfn, order = self.allocated.pop()
            before = self.zone.nr_free_by_order()
            self.zone.free_one_block(pfn, order)
            after = self.zone.nr_free_by_order()
            grew = [o for o in range(len(after)) if after[o] > before[o]]
            merged = (
                f"; merged with free buddies into an order-{grew[0]} block"
                if grew and grew[0] > order
                else ""
            )
            self.message = f"freed order {order} at pfn {pfn}{merged}"
        self._update()

    def free_all(self):
        while self.allocated:
            pfn, order = self.allocated.pop()
            self.zone.free_one_block(pfn, order)
        self.message = "freed everything: the blocks merged back"
        self._update()

    def _update(self) -> None:
        from .teaching import buddyinfo

        counts = self.zone.nr_free_by_order()
        for o, (bar, label, n) in enumerate(zip(self.bars, self.labels, counts, strict=True)):
            bar.set_height(n)
            label.set_position((o, n))
            label.set_text(f"{n}×{1 << o}" if n else "")
        self.ax.set_ylim(0, max(2, max(counts)) * 1.3)
        self.ax.set_title(
            f"free_area: {self.zone.buddy_pages()} of {self.zone.present_pages} pages free",
            fontsize="medium",
        )
        self._set_readout(
            f"<p>{html.escape(self.message)}</p><pre>/proc/buddyinfo:\n"
            f"{html.escape(buddyinfo(self.zone))}</pre>"
        )
        self._redraw()

    def _panel(self):
        w = _widgets()
        return w.HBox([self.controls["order"]] + list(self.buttons.values()))

    def plotted(self) -> dict:
        return {"nr_free": [int(b.get_height()) for b in self.bars]}


class ThresholdExplorer(_FigureHost):
    """The vmstat formulas for one machine: where it sits on the threshold curve, and its worst
    drift against the watermark gap. No simulation: moves are instant."""

    FIELDS = ("cpus", "zone_mib", "stat_threshold", "min_free_kbytes")

    def __init__(self, *, live=None, **overrides):
        from .plotting import _CPU_GRID

        self._init_host(live, (10, 3.4))
        base = fitted_preset("large", **overrides)
        self.overrides = overrides
        self.controls = controls_for(self.FIELDS, base)
        ax1, ax2 = self.fig.subplots(1, 2)
        self.cpu_grid = _CPU_GRID
        (self.curve,) = ax1.step([], [], where="post", color=PALETTE["counter"])
        (self.dot,) = ax1.plot([], [], "o", color="black", ms=7)
        ax1.axhline(125, color="grey", ls=":", lw=1)
        ax1.set_xscale("log", base=2)
        ax1.set_xlim(1, 4096)
        ax1.set_ylim(0, 135)
        ax1.set_xlabel("online CPUs")
        ax1.set_ylabel("stat_threshold")
        self.ax1 = ax1
        self.bars = ax2.bar(
            ["low − min\n(tolerated)", "CPUs × threshold\n(max drift)"],
            [1, 1],
            color=[PALETTE["wmark_low"], PALETTE["envelope"]],
        )
        ax2.set_yscale("log")
        ax2.set_ylabel("pages")
        self.ax2 = ax2
        for ctrl in self.controls.values():
            ctrl.observe(self._guard(self._update), names="value")
        self._update(None)

    def config(self) -> SimConfig:
        values = {n: c.value for n, c in self.controls.items()}
        return fitted_preset("large", **{**self.overrides, **values})

    def _update(self, _change) -> None:
        from .vmstat import calculate_threshold

        cfg = self.config()
        d = cfg.derived()
        th = [calculate_threshold(d.present_pages, int(n)) for n in self.cpu_grid]
        self.curve.set_data(self.cpu_grid, th)
        self.dot.set_data([cfg.cpus], [d.stat_threshold])
        self.ax1.set_title(f"threshold for a {cfg.zone_mib:,} MiB zone", fontsize="medium")
        for bar, v in zip(self.bars, (d.tolerate_drift, d.max_drift), strict=True):
            bar.set_height(max(v, 1))
        self.ax2.set_ylim(1, max(d.tolerate_drift, d.max_drift, 10) * 3)
        self.ax2.set_title(
            f"{cfg.cpus} CPUs: max drift {d.max_drift:,} vs gap {d.tolerate_drift:,}",
            fontsize="medium",
        )
        for name, key in _FORMULA_OF.items():
            ctrl = self.controls.get(name)
            if isinstance(ctrl, OptionalInt):
                ctrl.show_formula(d.as_dict().get(key))
        self._set_readout(_rows_html(_derived_rows(cfg)[:5]))
        self._redraw()

    def _on_error(self, exc) -> None:
        self._set_readout(
            f"<p style='color:{PALETTE['wmark_min']}'><b>Not applied:</b> "
            f"{html.escape(str(exc))}</p>"
        )

    def _panel(self):
        w = _widgets()
        return w.VBox([_view(c) for c in self.controls.values()])

    def plotted(self) -> dict:
        return {
            "cpus": float(self.dot.get_xdata()[0]),
            "threshold": float(self.dot.get_ydata()[0]),
            "tolerate_drift": self.bars[0].get_height(),
            "max_drift": self.bars[1].get_height(),
        }


# ---------------------------------------------------------------------------------------------
# Learner checks
# ---------------------------------------------------------------------------------------------


class Question:
    """A question whose answer is revealed on demand (predict, then reveal).

    With widgets: a box for the learner's answer, a Check button and a Reveal button. Headless
    (handouts, tests): a collapsed ``<details>`` block. ``answer`` is computed by the notebook
    with the formulas it taught; ``check(text)`` compares a typed answer with it.
    """

    def __init__(self, question: str, answer, explain: str = "", tolerance: float = 0.0):
        self.question = question
        self.answer = answer
        self.explain = explain
        self.tolerance = tolerance
        self.feedback = None

    def check(self, text) -> bool:
        """Is ``text`` the answer (numbers within ``tolerance``, text case-insensitively)?"""
        if isinstance(self.answer, (int, float, np.integer, np.floating)) and not isinstance(
            self.answer, bool
        ):
            try:
                value = float(str(text).replace(",", "").replace("_", "").strip())
            except ValueError:
                return False
            return abs(value - float(self.answer)) <= self.tolerance
        return str(text).strip().lower() == str(self.answer).strip().lower()

    def _answer_html(self) -> str:
        a = self.answer
        shown = f"{a:,}" if isinstance(a, (int, np.integer)) and not isinstance(a, bool) else a
        return f"<b>{html.escape(str(shown))}</b>" + (f" — {self.explain}" if self.explain else "")

    def _ipython_display_(self):
        from IPython.display import HTML, display

        if _headless():
            display(
                HTML(
                    f"<p><b>Question.</b> {self.question}</p><details><summary>Answer"
                    f"</summary><p>{self._answer_html()}</p></details>"
                )
            )
            return
        w = _widgets()
        box = w.Text(placeholder="your answer", layout=w.Layout(width="14em"))
        check = w.Button(description="Check")
        reveal = w.Button(description="Reveal the answer")
        shown = w.HTML()

        def on_check(_b):
            ok = self.check(box.value)
            self.feedback = ok
            shown.value = "✅ right" if ok else "❌ not quite: try again, or reveal"

        def on_reveal(_b):
            shown.value = self._answer_html()

        check.on_click(on_check)
        reveal.on_click(on_reveal)
        display(
            w.VBox(
                [
                    w.HTML(f"<p><b>Question.</b> {self.question}</p>"),
                    w.HBox([box, check, reveal]),
                    shown,
                ]
            )
        )


def ask(question: str, answer, explain: str = "", tolerance: float = 0.0) -> Question:
    """A learner check: shows the question; the answer stays hidden until revealed."""
    return Question(question, answer, explain, tolerance)
