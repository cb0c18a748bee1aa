"""The figure host: one matplotlib figure shown live (ipympl canvas) or as a replaced PNG.

Every demo and explorer is a :class:`_FigureHost`; :class:`LiveCheck` is the smallest one, used by
notebook 00 to show whether live plots work here.
"""

from __future__ import annotations

import base64
import io
import itertools
import threading
import traceback
import uuid
import weakref

import numpy as np

from ..plotting import PALETTE
from .environment import (
    _headless,
    _widgets,
    is_live_backend,
    plot_mode,
)

# Lecture fonts: big(True) scales matplotlib's base font size (every figure made from then
# on, and every demo's figure, rebuilt at once) and the demos' controls.
BIG_FONT_SCALE = 1.5
_BIG = {"on": False, "base": None}
_HOSTS: weakref.WeakSet = weakref.WeakSet()  # the figure hosts made in this kernel
_FIGURE_NUMBERS = itertools.count(10_001)  # the hosts' figures are not in pyplot's list

# CSS for the demos' widgets in big mode (shipped inside each live demo, see _hide_static_style)
_BIG_CSS = (
    ".allocsim-big .widget-label, .allocsim-big .widget-html-content, "
    ".allocsim-big .widget-checkbox, .allocsim-big button, .allocsim-big select, "
    ".allocsim-big .widget-readout, .allocsim-big .lm-AccordionPanel-title, "
    ".allocsim-big .jupyter-widget-Collapse-header {font-size: 150% !important} "
    ".allocsim-big .widget-checkbox input {transform: scale(1.4)}"
)


def big(on: bool = True) -> None:
    """Fonts that read from the back of a room (``on=False``: back to normal).

    Scales matplotlib's base font size by :data:`BIG_FONT_SCALE` for every figure made from
    now on, rebuilds the figures of the demos already shown, and enlarges their controls. The
    "big" button on a demo does the same.
    """
    import matplotlib as mpl

    on = bool(on)
    if _BIG["base"] is None:
        _BIG["base"] = float(mpl.rcParams["font.size"])
    mpl.rcParams["font.size"] = _BIG["base"] * (BIG_FONT_SCALE if on else 1.0)
    changed = _BIG["on"] != on
    _BIG["on"] = on
    for host in list(_HOSTS):
        host._apply_big(on, rebuild=changed)


class _FigureHost:
    """Owns one figure and shows it live (ipympl canvas) or as a PNG display that is replaced.

    Live, the canvas has no toolbar, header ("Figure N") or footer, so nothing covers the axes,
    and it starts with its size and first picture already set, so it shows at once even while
    the kernel is busy with later cells. Beside the live canvas the host keeps a still copy of
    the figure in the cell's saved output (hidden while the widget renders; see
    :meth:`_snapshot`), so a saved, shared or reopened notebook still shows the picture.
    """

    static_dpi = 100  # handouts print these: 820 px wide at 100 dpi
    snapshot_delay_s = 0.8  # quiet time before the saved copy follows a slider

    def _init_host(self, live, figsize):
        w = _widgets()
        self.live = is_live_backend() if live is None else bool(live)
        self.readout = w.HTML()
        self.errors = w.Output(layout=w.Layout(max_height="12em", overflow="auto"))
        self.last_error = None
        self._fig_handle = None
        self._readout_handle = None
        self._static_handle = None
        self._snapshot_timer = None
        self._view_ready = True  # set False while a shown canvas waits for its browser view
        self._uid = uuid.uuid4().hex[:12]
        self._box = None
        _HOSTS.add(self)
        # One lock for the artists: the background run updates them under it, and every render
        # of the figure (ours, or the one ipympl does when the browser asks) takes it too.
        self._lock = threading.RLock()
        if self.live:
            import matplotlib.pyplot as plt

            # The backend's canvas, but not pyplot's figure list: pyplot redraws the figures it
            # knows after each message the kernel handles, which would render each frame twice
            # (once on the kernel's main thread, competing with the run); the host draws when a
            # frame is complete.
            with plt.ioff():
                manager = plt.new_figure_manager(
                    next(_FIGURE_NUMBERS), figsize=figsize, layout="constrained"
                )
            self.fig = manager.canvas.figure
            canvas = self.fig.canvas
            for attr, val in (
                ("header_visible", False),  # no "Figure N" title bar
                ("footer_visible", False),
                ("toolbar_visible", False),  # the toolbar would sit over the y-axis labels
                ("resizable", True),  # the learner may drag the corner; the layout follows
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

    def _prime_canvas(self) -> None:
        """Give the live canvas its size before it is shown, and let frames be pushed.

        ipympl sizes the canvas in the browser only when the kernel answers the view's
        "initialized" message; during Run All the kernel is busy with later cells, and the
        figure would stay 0 × 0 px until they finish. With ``_size`` in the widget's state the
        browser lays the canvas out at once, and frames pushed by the run fill it.
        """
        canvas = self.fig.canvas
        if not hasattr(canvas, "_size"):
            return
        dpr = getattr(canvas, "device_pixel_ratio", 1) or 1
        width, height = self.fig.get_size_inches() * self.fig.dpi / dpr
        canvas._size = (float(width), float(height))
        # Until a view says "initialized", ipympl sends each pushed frame as raw pixels meant for
        # its data URL, which the browser cannot show; frames must be real PNGs from the start.
        # (The still copy in the saved output replaces what the data URL was for.)
        canvas.syncing_data_url = False
        self._view_ready = False
        canvas.on_msg(self._on_canvas_msg)

    def _on_canvas_msg(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "initialized":
            self._view_ready = True

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
    def _png_bytes(self, dpi=None) -> bytes:
        buf = io.BytesIO()
        with self._lock:
            self.fig.savefig(buf, format="png", dpi=dpi or self.static_dpi)
        return buf.getvalue()

    def _png(self):
        from IPython.display import Image

        return Image(data=self._png_bytes(), format="png")

    def _redraw(self, final: bool = True, push: bool = False) -> None:
        """Show the artists' state. Live, intermediate frames ask the browser to fetch a picture
        (``draw_idle``, which the browser skips while an earlier picture is still on its way);
        a final frame is rendered and pushed at once (``draw``), so the last state always
        arrives, and the saved still copy follows it. ``push`` renders and sends an intermediate
        frame at once too: the background run does so for a run's first frame, and while no
        browser view has answered yet (the kernel answers a view's requests on its main
        thread, which during Run All is busy with later cells). Static, the PNG display is
        replaced (final frames only)."""
        if self.live:
            canvas = self.fig.canvas
            # ipympl stops syncing its data URL once a browser view has said "initialized";
            # before that there is no view to push a picture to, and draw() would only keep
            # that data URL (the picture a view starts from) up to date.
            # A view's requests are answered on the kernel's main thread; until the first one
            # ("initialized") is, that thread is busy (Run All) and a request would wait.
            if push or final or not getattr(self, "_view_ready", True):
                canvas.draw()
            else:
                canvas.draw_idle()
            if final:
                self._snapshot()
        elif final and self._fig_handle is not None:
            self._fig_handle.update(self._png())

    # -- the still copy kept in the saved notebook ---------------------------------------------
    @property
    def _static_class(self) -> str:
        return f"allocsim-still-{self._uid}"

    def _static_bundle(self) -> dict:
        png = base64.b64encode(self._png_bytes()).decode("ascii")
        html_img = (
            f"<div class='{self._static_class}'><img alt='the last frame of this demo' "
            f"style='max-width:100%' src='data:image/png;base64,{png}'></div>"
        )
        return {
            "text/html": html_img,
            "image/png": png,
            "text/plain": "[the last frame of this figure, kept for the saved notebook]",
        }

    def _hide_static_style(self):
        """An invisible widget whose CSS hides this figure's still copy while the live widget
        renders. Without a kernel (a reopened or shared notebook) there is no widget, so no
        rule, and the still copy shows where the figure was."""
        w = _widgets()
        cls = self._static_class
        css = f".{cls} {{display: none}} .jp-OutputArea-child:has(.{cls}) {{display: none}}"
        return w.HTML(f"<style>{css} {_BIG_CSS}</style>", layout=w.Layout(display="none"))

    def _snapshot(self, now: bool = False) -> None:
        """Refresh the saved still copy, after ``snapshot_delay_s`` of quiet (sliders move
        fast; rendering a PNG per step would slow them down)."""
        if self._static_handle is None:
            return
        if self._snapshot_timer is not None:
            self._snapshot_timer.cancel()
        if now:
            self._write_snapshot()
            return
        self._snapshot_timer = threading.Timer(self.snapshot_delay_s, self._write_snapshot)
        self._snapshot_timer.daemon = True
        self._snapshot_timer.start()

    def _write_snapshot(self) -> None:
        try:
            self._static_handle.update(self._static_bundle(), raw=True)
        except Exception as exc:  # shown, never raised into a timer thread
            self._report_error(exc)

    def _set_readout(self, text: str) -> None:
        self.readout.value = text
        if self._readout_handle is not None:
            from IPython.display import HTML

            self._readout_handle.update(HTML(text))

    def _panel(self):
        raise NotImplementedError

    def _live_children(self) -> list:
        """What the live view shows, top to bottom."""
        return [self._panel(), self.readout, self.fig.canvas, self.errors]

    def _static_children(self) -> list:
        """The widgets a static (but interactive) view shows above its readout and picture."""
        return [self._panel(), self.errors]

    def show(self) -> None:
        """Display the demo: controls, readout, figure and the error area.

        Live: the widgets, then the still copy for the saved notebook. Static and interactive
        (no ipympl): the controls, then a readout and a PNG that are replaced after each run.
        Headless (the tests, the handouts): only the readout and the picture, since nothing
        can be clicked there.
        """
        from IPython.display import HTML, display

        w = _widgets()
        self._before_show()
        if self.live:
            self._prime_canvas()
            box = w.VBox(self._live_children() + [self._hide_static_style()])
            box.add_class("allocsim-demo")
            if _BIG["on"]:
                box.add_class("allocsim-big")
            self._box = box
            display(box)
            self._static_handle = display(self._static_bundle(), raw=True, display_id=True)
            return
        if not _headless():
            display(w.VBox(self._static_children()))
        self._readout_handle = display(HTML(self._static_readout()), display_id=True)
        self._fig_handle = display(self._png(), display_id=True)

    def _static_readout(self) -> str:
        return self.readout.value

    # -- lecture fonts -------------------------------------------------------------------------
    def set_big(self, on: bool = True) -> None:
        """Lecture fonts for every figure and demo in this kernel (see :func:`big`)."""
        big(on)

    def _apply_big(self, on: bool, rebuild: bool = True) -> None:
        switch = getattr(self, "big_switch", None)
        if switch is not None and switch.value != on:
            switch.value = on  # its observer finds big() already applied and returns
        if self._box is not None:
            (self._box.add_class if on else self._box.remove_class)("allocsim-big")
        if rebuild:
            self._rebuild_figure()

    def _rebuild_figure(self) -> None:
        """Redraw with the current font size (subclasses rebuild their artists)."""
        self._redraw()

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
