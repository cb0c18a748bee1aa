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


def _can_blit(canvas) -> bool:
    """Can the host blit on this canvas: keep pixels (``copy_from_bbox``), put them back
    (``restore_region``) and show the result (``blit``)?

    Agg says so (``supports_blit``). ipympl's canvas (matplotlib's WebAgg core) has the methods
    but says no, because of bugs in partial updates: a blit of one Axes into a buffer that holds
    an older frame, and diff frames the browser drops. The host avoids both: it always restores
    the whole figure and draws every data artist, and sends whole frames (see :meth:`_paint`).
    """
    if getattr(canvas, "supports_blit", False):
        return True
    kind = type(canvas)
    return all(hasattr(kind, m) for m in ("copy_from_bbox", "restore_region", "get_diff_image"))


class FramePump:
    """At most one frame in flight: ``offer(item)`` never waits; ``render(item)`` runs in a
    helper thread, one item at a time, and an item offered while another is being rendered
    waits as the one pending item (a newer offer replaces it: that frame is dropped, the picture
    shows the newer state). So a simulation that offers a frame after each chunk never waits
    for a picture, and the picture catches up with the latest state as fast as it can be drawn.
    """

    def __init__(self, render, on_error=None):
        self._render = render
        self._on_error = on_error
        self._mutex = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = None
        self._busy = False
        self.offered = 0
        self.rendered = 0
        self.dropped = 0  # offered, then replaced by a newer offer before it was rendered

    def offer(self, item) -> None:
        """Ask for ``item`` to be rendered; returns at once."""
        with self._mutex:
            self.offered += 1
            if self._pending is not None:
                self.dropped += 1
            self._pending = (item,)
            if self._busy:
                return
            self._busy = True
            self._idle.clear()
        threading.Thread(target=self._drain, daemon=True, name="allocsim-frame").start()

    def _drain(self) -> None:
        while True:
            with self._mutex:
                if self._pending is None:
                    self._busy = False
                    self._idle.set()
                    return
                (item,), self._pending = self._pending, None
            try:
                self._render(item)
                self.rendered += 1
            except Exception as exc:  # shown by the host; the pump goes on
                if self._on_error is not None:
                    self._on_error(exc)

    @property
    def busy(self) -> bool:
        """Is a frame being rendered (or waiting to be)?"""
        return not self._idle.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every offered item has been rendered or dropped; False on timeout."""
        return self._idle.wait(timeout)


class _FigureHost:
    """Owns one figure and shows it live (ipympl canvas) or as a PNG display that is replaced.

    Live, the canvas has no toolbar, header ("Figure N") or footer, so nothing covers the axes,
    and it starts with its size and first picture already set, so it shows at once even while
    the kernel is busy with later cells. Beside the live canvas the host keeps a still copy of
    the figure in the cell's saved output (hidden while the widget renders; see
    :meth:`_snapshot`), so a saved, shared or reopened notebook still shows the picture.
    """

    static_dpi = 100  # handouts print these: 820 px wide at 100 dpi
    blits = False  # hosts whose frames change only some artists blit them (see _paint)
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
                    self._before_full_draw()
                    if hasattr(canvas, "_force_full"):
                        # Whole frames only, as _paint sends them: a diff frame is applied to
                        # whatever the browser shows, and if the frame before it was dropped
                        # (replaced while it loaded) or the image mode changed under a frame
                        # still loading, the pixels it leaves out stay stale for good.
                        canvas._force_full = True
                    return render(*args, **kwargs)

            canvas.draw = locked_draw
        else:
            from matplotlib.figure import Figure

            self.fig = Figure(figsize=figsize, layout="constrained")
        # Blitting (live, on a canvas that can: ipympl, Agg): a full draw renders the background
        # (axes, grid, watermarks, labels, legend) without the data artists, which are marked
        # animated; it is kept, and each frame restores it and draws only the data on top.
        self.blit = self.blits and self.live and _can_blit(self.fig.canvas)
        self._background = None  # the pixels of the last full draw, without the data
        self._background_at = None  # the _background_key() they were drawn for
        self._titles_at = ()  # and the titles' texts
        self._title_boxes = []  # and where the titles lie
        self._axes_at = {}  # and each Axes' key
        self._overlays = []  # and the pixels of what lies over the data (see _overlay_artists)
        self._legend_boxes = []  # where the figure legends lie (display pixels)
        self._frozen = None  # (engine, figure size) while the layout is frozen
        self._pinned = []  # (axis or Axes, attribute): labels and titles placed once (see below)
        self._laying_out = False  # drawing without pixels, for the layout only
        self._pinned_dpi = None  # the figure's dpi when they were placed
        self._laid_out_for = ()  # the tick label lengths the frozen layout made room for
        self._legend_pixels = None  # (figure size, regions): the legends of the last full draw
        # live frames: full draws, new backgrounds without the legends' cost, blits on the kept one
        self.paints = {"full": 0, "background": 0, "title": 0, "blit": 0}
        self._frame_callbacks = []
        if self.blit:
            self.fig.canvas.mpl_connect("draw_event", self._on_draw_event)

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
    def _animated_artists(self) -> list:
        """The artists a frame changes (subclasses that blit list them)."""
        return []

    def _overlay_artists(self) -> list:
        """Artists of the background that a full draw puts over the data (a note in a white
        box): a frame puts their kept pixels back on top of the data it drew."""
        return []

    def _background_key(self) -> tuple:
        """What everything but the data artists depends on (subclasses add their plots')."""
        return (tuple(self.fig.bbox.bounds), self.fig.dpi)

    def on_frame(self, callback) -> None:
        """Call ``callback(t_ms)`` after each live frame has been drawn and handed to the canvas
        (with ipympl: encoded as PNG and sent), ``t_ms`` the simulated ms it shows. For
        measurements (benchmarks/bench.py times a control change to the first frame)."""
        self._frame_callbacks.append(callback)

    def _frame_done(self, t_ms) -> None:
        for cb in list(self._frame_callbacks):
            cb(t_ms)

    def _set_animated(self) -> bool:
        """Mark the data artists animated (a full draw leaves them out of the background);
        True if one was not yet."""
        changed = False
        for artist in self._animated_artists():
            if not artist.get_animated():
                artist.set_animated(True)
                changed = True
        return changed

    def _before_full_draw(self) -> None:
        """A full draw is coming: the data artists must be out of it, and the layout is made
        again if the figure changed size since it was frozen (the learner dragged its corner).
        """
        if self.blit:
            self._set_animated()
        frozen = self._frozen
        if frozen is not None and (
            tuple(self.fig.get_size_inches()) != tuple(frozen[1])
            # the kept labels lie at pixel offsets: ipympl changes the dpi on a HiDPI screen
            or (self._pinned and self.fig.dpi != self._pinned_dpi)
        ):
            self._thaw_layout()
        if self.blit and self._frozen is None:
            self._lay_out_for_widest()

    def _layout_limits(self) -> list:
        """``(Axes, (y0, y1))`` pairs: the widest y ranges the controls can give those Axes
        (subclasses say), so that the layout makes room for their tick labels once."""
        return []

    def _lay_out_for_widest(self) -> None:
        """Lay the figure out with each Axes of :meth:`_layout_limits` at its widest y range,
        then freeze that layout and put the ranges back. A frozen layout made for the current
        range only would cut the longer tick labels of a bigger machine, and the next full
        draw would lay out again (several times the cost of a frame) the first time the CPU
        slider goes up; this way the margins are a digit or two wider on small machines."""
        engine = self.fig.get_layout_engine()
        if type(engine).__name__ != "ConstrainedLayoutEngine":
            return
        limits = self._layout_limits()
        if not limits:
            return
        kept = [(ax, ax.get_ylim()) for ax, _ in limits]
        try:
            for ax, lim in limits:
                ax.set_ylim(*lim)
            # The layout, and every label and title placed by it, as a draw would (no pixels;
            # its draw event is not a background, see _on_draw_event)
            self._laying_out = True
            self.fig.draw_without_rendering()
            self._freeze_layout()  # remembers the widest ranges' tick label lengths
            self._pin_labels()
        finally:
            self._laying_out = False
            for ax, lim in kept:
                ax.set_ylim(*lim)

    # matplotlib places each axis label beside its tick labels, and each Axes title above its
    # top decorations, again at every draw of the Axes (with the tick labels measured twice
    # more): half the cost of redrawing a row of Axes for a new config. With the layout frozen
    # for the widest tick labels the label and title places are fixed too; matplotlib keeps
    # them where they are when these (long-standing, private) flags are off: the same as
    # set_label_coords() and set_title(y=...) do, without a public way back.
    _PIN_FLAGS = (("xaxis", "_autolabelpos"), ("yaxis", "_autolabelpos"), (None, "_autotitlepos"))

    def _pin_labels(self) -> None:
        """Keep the axis labels and titles where the last layout put them (see above)."""
        for each in [a for ax in self.fig.axes for a in (ax, *ax.child_axes)]:
            for part, flag in self._PIN_FLAGS:
                owner = each if part is None else getattr(each, part)
                if getattr(owner, flag, None) is True:
                    setattr(owner, flag, False)
                    self._pinned.append((owner, flag))
        self._pinned_dpi = self.fig.dpi

    def _unpin_labels(self) -> None:
        for owner, flag in self._pinned:
            setattr(owner, flag, True)
        self._pinned = []

    def _freeze_layout(self) -> None:
        """Keep the axes where the first full draw's layout put them: the constrained layout
        costs as much as the rest of a full draw, and a new config (another y range, another
        title) would only move the axes by a few pixels. A resize or new fonts lay out again."""
        engine = self.fig.get_layout_engine()
        if self._frozen is None and type(engine).__name__ == "ConstrainedLayoutEngine":
            self._frozen = (engine, tuple(self.fig.get_size_inches()))
            self._laid_out_for = self._tick_label_lengths()
            self.fig.set_layout_engine("none")

    def _thaw_layout(self) -> None:
        self._unpin_labels()
        if self._frozen is not None:
            self.fig.set_layout_engine(self._frozen[0])
            self._frozen = None

    def _on_draw_event(self, event) -> None:
        """After each full draw of the live canvas (ours, or one the browser asked for): keep
        its pixels as the background, then draw the data artists on top."""
        if event.canvas is not self.fig.canvas or event.canvas.is_saving() or self._laying_out:
            return  # savefig draws everything itself, at its own dpi; a layout draws nothing
        canvas = self.fig.canvas
        self._keep_background(event.renderer)
        # The figure legends never change with the config: a new background can reuse them.
        self._legend_boxes = [leg.get_window_extent(event.renderer) for leg in self.fig.legends]
        self._legend_pixels = (
            tuple(self.fig.bbox.bounds),
            [
                canvas.copy_from_bbox(leg.get_window_extent(event.renderer))
                for leg in self.fig.legends
            ],
        )
        self._draw_animated()
        self.paints["full"] += 1
        if self._frozen is not None and self._labels_cut(event.renderer):
            self._thaw_layout()  # the next full draw lays out again
            self._background = None
            return
        self._freeze_layout()

    def _prepare_background(self) -> None:
        """Render the background for the current config off screen, if it is not the kept one
        (a full render only when the kept legends cannot serve). Call with the lock held."""
        if self._set_animated():
            self._background = None
        how = self._ensure_background()
        if how is not None:
            if how != "blit":
                self.paints[how] += 1
            return
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = self.fig.canvas
        if isinstance(canvas, FigureCanvasAgg):
            self._before_full_draw()
            FigureCanvasAgg.draw(canvas)  # Agg's render only: ipympl's draw would also send it
            if self._background is None:  # labels were cut: once more, laid out
                FigureCanvasAgg.draw(canvas)

    def _repaint_background(self) -> bool:
        """A new background without a full draw: with the layout frozen, draw the figure's
        patch and its Axes (their data artists, animated, are left out) and put back the
        legends' pixels of the last full draw (the legend costs as much as both Axes). False
        when that cannot be done (no frozen layout, a new size, a canvas without Agg's
        renderer) or the new tick labels no longer fit the layout."""
        canvas = self.fig.canvas
        kept = self._legend_pixels
        renderer = canvas.get_renderer() if hasattr(canvas, "get_renderer") else None
        if (
            self._frozen is None
            or kept is None
            or kept[0] != tuple(self.fig.bbox.bounds)
            or not hasattr(renderer, "clear")
        ):
            return False
        if self._repaint_rows(renderer):
            return True
        if self._frozen is None:
            return False  # the rows' new tick labels did not fit: only a new layout can do
        renderer.clear()
        self.fig.patch.draw(renderer)
        for region in kept[1]:
            canvas.restore_region(region)
        legends = set(map(id, self.fig.legends))
        for artist in sorted(self.fig.get_children(), key=lambda a: a.get_zorder()):
            if artist is self.fig.patch or id(artist) in legends:
                continue
            if artist.get_visible() and not artist.get_animated():
                artist.draw(renderer)  # an Axes leaves out its animated (data) artists
        if self._labels_cut(renderer):
            self._thaw_layout()
            return False
        self._keep_background(renderer)
        return True

    def _axes_keys(self) -> dict:
        """What each Axes' part of the background depends on, by ``id`` (subclasses add the
        watermarks and notes of their plots)."""
        return {
            id(ax): (ax.get_xlim(), ax.get_ylim(), ax.get_position().bounds) for ax in self.fig.axes
        }

    def _paint_blank(self, box, renderer) -> None:
        """Paint ``box`` (display pixels) in the figure's face colour: what is under it goes."""
        from matplotlib.patches import Rectangle
        from matplotlib.transforms import IdentityTransform

        blank = Rectangle(
            (box.x0, box.y0),
            box.width,
            box.height,
            transform=IdentityTransform(),
            facecolor=self.fig.get_facecolor(),
            edgecolor="none",
        )
        blank.set_figure(self.fig)
        blank.draw(renderer)

    def _repaint_rows(self, renderer) -> bool:
        """Redraw only the rows of Axes whose part of the background changed (a new machine
        changes the memory picture's range, not the task panel's) on the kept background:
        each such row's band, the figure's width from halfway to the row above to halfway to
        the row below, is cleared to the figure's colour and its Axes drawn again. False when
        a band would touch a legend or the kept background has no record of the Axes."""
        from matplotlib.transforms import Bbox

        keys, kept = self._axes_keys(), self._axes_at
        if set(keys) != set(kept):
            return False
        rows: dict = {}
        for ax in self.fig.axes:
            pos = ax.get_position()
            rows.setdefault((round(pos.y0, 4), round(pos.y1, 4)), []).append(ax)
        spans = sorted(rows, key=lambda r: -r[1])  # top to bottom, in figure fractions
        legend_top = max((b.y1 for b in self._legend_boxes), default=self.fig.bbox.y0)
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        fig_box = self.fig.bbox
        for i, span in enumerate(spans):
            if all(keys[id(ax)] == kept[id(ax)] for ax in rows[span]):
                continue
            top = 1.0 if i == 0 else (spans[i - 1][0] + span[1]) / 2
            bottom = (span[0] + spans[i + 1][1]) / 2 if i + 1 < len(spans) else None
            y1 = fig_box.y0 + top * fig_box.height
            y0 = legend_top if bottom is None else fig_box.y0 + bottom * fig_box.height
            band = Bbox([[fig_box.x0, y0], [fig_box.x1, y1]])
            if any(band.overlaps(b) for b in self._legend_boxes):
                canvas.restore_region(self._background)
                return False
            self._paint_blank(band, renderer)
            for ax in rows[span]:
                ax.draw(renderer)  # leaves out its animated (data) artists
            sup = getattr(self.fig, "_suptitle", None)
            if i == 0 and sup is not None and sup.get_visible() and not sup.get_animated():
                sup.draw(renderer)
        if self._labels_cut(renderer):
            self._thaw_layout()
            return False
        self._keep_background(renderer)
        return True

    def _tick_label_lengths(self) -> tuple:
        """The longest y tick label of each y axis (left and right), in characters: what the
        width of the margins depends on."""
        axes = [a for ax in self.fig.axes for a in (ax, *ax.child_axes)]
        return tuple(
            max((len(t.get_text()) for t in a.yaxis.get_ticklabels()), default=0) for a in axes
        )

    def _labels_cut(self, renderer) -> bool:
        """Does a frozen layout cut labels at the figure's edge (wider tick labels of a new y
        range)? Narrower ones only leave a little space, so those keep the layout."""
        if all(
            n <= m for n, m in zip(self._tick_label_lengths(), self._laid_out_for, strict=False)
        ):
            return False  # no tick label longer than those the layout made room for
        if self._pinned:
            return True  # longer tick labels would run into the axis labels kept in place
        box = self.fig.bbox
        for ax in self.fig.axes:
            tight = ax.get_tightbbox(renderer)
            if tight is not None and (
                tight.x0 < box.x0 - 1 or tight.x1 > box.x1 + 1 or tight.y0 < box.y0 - 1
            ):
                return True
        return False

    def _draw_animated(self) -> None:
        # in zorder, as a full draw stacks them (sorted() keeps the given order within a level)
        for artist in sorted(self._animated_artists(), key=lambda a: a.get_zorder()):
            if artist.get_visible() and artist.figure is self.fig:
                self.fig.draw_artist(artist)
        for region in self._overlays:
            self.fig.canvas.restore_region(region)

    def _paint(self) -> str:
        """Show the artists' state on the live canvas now: restore the background and draw the
        data artists on it (a blit), or a full draw when there is no background for the current
        config (the first frame, a new y range or size) or the canvas cannot blit. Returns
        ``"blit"`` or ``"full"``. Call with the lock held."""
        canvas = self.fig.canvas
        if not self.blit:
            canvas.draw()
            return "full"
        fresh = self._set_animated()  # new artists (a rebuilt figure): not in a background yet
        if hasattr(canvas, "_force_full"):
            # ipympl: send whole frames. A diff frame that the browser drops (a newer one
            # arrives before it has loaded) would leave its pixels stale for good.
            canvas._force_full = True
        how = None if fresh else self._ensure_background()
        if how is not None:
            canvas.restore_region(self._background)
            self._draw_animated()
            canvas.blit(self.fig.bbox)
            self.paints[how] += 1
            return how
        canvas.draw()  # the background, then (in _on_draw_event) the data on it
        if self._background is None:  # the frozen layout cut labels: lay out once more
            canvas.draw()
        return "full"

    def _ensure_background(self) -> str | None:
        """Make the kept background fit the current config without a full draw, if it can:
        ``"blit"`` (it does already), ``"title"`` (only titles changed: they were redrawn on
        it), ``"background"`` (the Axes were redrawn on the kept legends); None if only a full
        draw can make it. Call with the lock held."""
        if self._background is None:
            return None
        if self._background_at == self._background_key():
            if self._titles_at == self._title_texts():
                return "blit"
            if self._patch_titles():
                return "title"
        return "background" if self._repaint_background() else None

    def _title_artists(self) -> list:
        """The figure's titles (the Axes' and the figure's own): text that names the run."""
        titles = [ax.title for ax in self.fig.axes]
        sup = getattr(self.fig, "_suptitle", None)
        return titles + ([sup] if sup is not None else [])

    def _title_texts(self) -> tuple:
        return tuple(t.get_text() for t in self._title_artists())

    def _keep_background(self, renderer) -> None:
        """The renderer holds a new background: keep its pixels, what it was drawn for, and
        where its titles lie (a new title is drawn over the old one's place)."""
        canvas = self.fig.canvas
        self._background = canvas.copy_from_bbox(self.fig.bbox)
        self._background_at = self._background_key()
        self._titles_at = self._title_texts()
        self._axes_at = self._axes_keys()
        self._overlays = [
            canvas.copy_from_bbox(a.get_window_extent(renderer).padded(1))
            for a in self._overlay_artists()
            if a.get_visible() and a.get_text()
        ]
        self._title_boxes = [
            t.get_window_extent(renderer) if t.get_text() else None for t in self._title_artists()
        ]

    def _patch_titles(self) -> bool:
        """Redraw only the titles that changed (a new seed or patch set) on the kept
        background: clear the old and the new title's box to the figure's colour, draw the new
        one. One line of text instead of the Axes and their tick labels."""
        from matplotlib.transforms import Bbox

        canvas = self.fig.canvas
        renderer = canvas.get_renderer() if hasattr(canvas, "get_renderer") else None
        titles = self._title_artists()
        if renderer is None or len(titles) != len(self._title_boxes):
            return False
        canvas.restore_region(self._background)
        for text, old_text, old_box in zip(titles, self._titles_at, self._title_boxes, strict=True):
            if text.get_text() == old_text:
                continue
            boxes = [b for b in (old_box, text.get_window_extent(renderer)) if b is not None]
            if text.get_text() and old_box is None:
                return False  # a title where there was none: the layout must make room
            if not boxes:
                continue
            box = Bbox.union(boxes).padded(2)
            self._paint_blank(box, renderer)
            text.draw(renderer)
        self._keep_background(renderer)
        return True

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
