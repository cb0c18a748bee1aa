"""The figure host: one matplotlib figure shown live (ipympl canvas) or as a replaced PNG.

Every demo and explorer is a :class:`_FigureHost`; :class:`LiveCheck` is the smallest one, used by
notebook 00 to show whether live plots work here.
"""

from __future__ import annotations

import io
import threading
import traceback

import numpy as np

from ..plotting import PALETTE
from .environment import (
    _widgets,
    is_live_backend,
    plot_mode,
)


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
