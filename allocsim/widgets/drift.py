"""Notebook 07's live panel: this kernel's free-page counter against its buddy lists, as it moves.

:class:`DriftPanel` plots, per zone, the gap ``counter − buddy`` over time (from
:mod:`allocsim.live`), the envelope ± Σ per-CPU stat thresholds as a band, and ``low − min`` as
a line, with Start / Stop and a churn slider (a child process that allocates and frees that many
MiB in a loop). The y axis is linear inside the envelope and logarithmic beyond it, so a gap of a
few dozen pages and a ``low − min`` of thousands fit on one picture.

**Live or replay.** With ipympl and a readable ``/proc`` the panel samples this machine in a
background thread and redraws four times a second. With static figures (nbclient, handouts, a
front end without ipympl), or where ``/proc/zoneinfo`` / ``/proc/buddyinfo`` cannot be read
(macOS, Windows, some containers), it shows a trace recorded on Linux with churn on, and says
why; there, Start takes one short live reading when ``/proc`` is readable.

No sampling logic lives here: the numbers come from :mod:`allocsim.live`.
"""

from __future__ import annotations

import dataclasses
import html
import threading

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from .. import live as lv
from ..plotting import PALETTE
from .environment import _widgets, is_live_backend, plot_mode
from .host import _FigureHost

__all__ = ["DriftPanel"]


class DriftPanel(_FigureHost):
    """Gap vs time per zone, envelope band, ``low − min`` line; Start / Stop and churn.

    Parameters
    ----------
    root : str
        The ``/proc`` directory to sample (default ``/proc``).
    trace : str or path, optional
        The trace replayed when live sampling is not possible (default: the shipped one).
    hz : float
        Samples per second while running, in [0.5, 100] (default 20).
    window_s : float
        Seconds of history shown (default 30).
    churn_mib : int
        The churn slider's starting value (default 0: none).
    static_seconds : float
        How long Start samples when figures are static (default 5).
    live : bool, optional
        Force the live canvas (True) or static PNGs (False); default: the notebook's backend.
    replay : bool, optional
        Force the recorded trace (True) or the live files (False); default: replay exactly when
        figures are static or the live files cannot be read.
    """

    refresh_s = 0.25  # seconds between two frames while running (the sampling goes on at hz)
    churn_step = 16

    def __init__(
        self,
        *,
        root: str = lv.DEFAULT_ROOT,
        trace=None,
        hz: float = 20.0,
        window_s: float = 30.0,
        churn_mib: int = 0,
        static_seconds: float = 5.0,
        live=None,
        replay=None,
    ):
        w = _widgets()
        live_canvas = is_live_backend() if live is None else bool(live)
        self.root = root
        self.trace = trace
        self.static_seconds = static_seconds
        if replay is None and not live_canvas:
            self.source = lv.ReplaySource(
                trace,
                reason="figures are static here (no ipympl canvas), so the panel shows a trace "
                "recorded on Linux; Start takes a short reading of this machine if it can",
            )
        else:
            self.source = lv.open_source(root, trace, replay=bool(replay))
        self.recorder = lv.DriftRecorder(self.source, hz, keep_seconds=window_s)
        self.window_s = self.recorder.keep_seconds
        self._init_host(live_canvas, (8.0, 0.6 + 1.7 * len(self.source.zones)))
        self._samples: list[lv.Sample] = []
        self._frame_stop = threading.Event()
        self._frame_thread: threading.Thread | None = None

        limit = 0
        if self.source.mode == "live" or not self.live:
            try:
                limit = lv.churn_limit_mib(root=root)
            except (lv.LiveError, ValueError):
                limit = 0
        self.churn_limit = limit
        churn_max = max(0, min(limit, 1024)) // self.churn_step * self.churn_step
        self.controls = {
            "start": w.Button(description="Start", icon="play", button_style="success"),
            "stop": w.Button(description="Stop", icon="stop", disabled=True),
            "churn": w.IntSlider(
                value=min(churn_mib, churn_max),
                min=0,
                max=max(churn_max, self.churn_step),
                step=self.churn_step,
                description="churn MiB",
                disabled=churn_max == 0,
                continuous_update=False,
                tooltip=f"at most 5 % of MemAvailable ({limit} MiB now)",
            ),
        }
        self.controls["start"].on_click(self._guard(lambda _: self.start()))
        self.controls["stop"].on_click(self._guard(lambda _: self.stop()))
        self.controls["churn"].observe(self._guard(self._churn_changed), names="value")
        self._use(self.source)
        if self.source.mode == "replay":
            t0 = self.source.samples[0].t
            self._samples = [dataclasses.replace(s, t=s.t - t0) for s in self.source.samples]
        self._draw()
        self._set_readout(self._readout_html())

    # -- figure ----------------------------------------------------------------------------------
    def _use(self, source) -> None:
        """Sample ``source`` from now on: one axes per zone it has (a new figure layout)."""
        self.source = source
        self.recorder.source = source
        self.zones = list(source.zones)
        self._samples = []
        with self._lock:
            self.fig.clear()
            self._build_axes()

    def _build_axes(self) -> None:
        axes = self.fig.subplots(len(self.zones), 1, sharex=True, squeeze=False)[:, 0]
        self.axes = dict(zip(self.zones, axes, strict=True))
        self.lines, self.bands, self.low_lines = {}, {}, {}
        for label, ax in self.axes.items():
            (self.lines[label],) = ax.plot(
                [], [], color=PALETTE["counter"], lw=1.2, label="gap = counter − buddy"
            )
            self.low_lines[label] = ax.axhline(
                0, color=PALETTE["wmark_low"], ls="--", lw=1.0, label="low − min"
            )
            ax.axhline(0, color="#999999", lw=0.6)
            self.bands[label] = None
            ax.set_ylabel("gap, pages")
            ax.set_title(label, fontsize="small", loc="left")
        ax = axes[-1]
        ax.set_xlabel("seconds")

    def plotted(self) -> dict:
        """Per zone label: ``t``, ``gap``, ``envelope`` (arrays), ``low_min`` and ``last`` (the
        latest ZoneSample)."""
        out = {}
        for i, label in enumerate(self.zones):
            rows = [(s.t, s.zones[i]) for s in self._samples if i < len(s.zones)]
            out[label] = {
                "t": np.array([t for t, _ in rows], dtype=float),
                "gap": np.array([z.gap for _, z in rows], dtype=np.int64),
                "envelope": np.array([z.envelope for _, z in rows], dtype=np.int64),
                "low_min": rows[-1][1].low_min if rows else None,
                "last": rows[-1][1] if rows else None,
            }
        return out

    def _draw(self) -> None:
        data = self.plotted()
        with self._lock:
            for label, ax in self.axes.items():
                d = data[label]
                t, gap, env = d["t"], d["gap"], d["envelope"]
                self.lines[label].set_data(t, gap)
                if self.bands[label] is not None:
                    self.bands[label].remove()
                    self.bands[label] = None
                if len(t):
                    self.bands[label] = ax.fill_between(
                        t,
                        -env,
                        env,
                        step="post",
                        color=PALETTE["envelope"],
                        alpha=0.15,
                        lw=0,
                        label="envelope ±CPUs × threshold",
                    )
                    low_min, last = d["low_min"], d["last"]
                    self.low_lines[label].set_ydata([low_min, low_min])
                    span = max(1, int(env.max()))
                    top = max(low_min, span, int(np.abs(gap).max()), 1) * 1.4
                    # Linear inside the envelope, logarithmic beyond: a few dozen pages of drift
                    # and thousands of pages of low - min on one picture.
                    ax.set_yscale("symlog", linthresh=span, linscale=1.5)
                    ax.set_ylim(-top, top)
                    ticks = sorted({0, span, -span, low_min, -low_min})
                    ax.yaxis.set_major_locator(FixedLocator(ticks))
                    ax.yaxis.set_major_formatter(
                        FuncFormatter(lambda v, _: f"{v:+,.0f}" if v else "0")
                    )
                    ax.yaxis.set_minor_locator(NullLocator())
                    ax.set_title(
                        f"{label}: envelope ±{last.envelope} ({last.cpus} CPUs × "
                        f"{last.threshold}), low − min {low_min}",
                        fontsize="small",
                        loc="left",
                    )
                    right = max(float(t[-1]), 1.0)
                    ax.set_xlim(max(0.0, right - self.window_s), right)
            first = self.axes[self.zones[0]]
            handles = [self.lines[self.zones[0]], self.low_lines[self.zones[0]]]
            if self.bands[self.zones[0]] is not None:
                handles.append(self.bands[self.zones[0]])
            first.legend(handles=handles, loc="upper right", fontsize="x-small", ncols=3)

    # -- readout ---------------------------------------------------------------------------------
    def summary(self) -> list[lv.ZoneSummary]:
        """:func:`allocsim.live.summarize` over the samples shown."""
        return lv.summarize(self._samples)

    def _readout_html(self) -> str:
        src = self.source
        parts = [f"<b>{html.escape(src.description)}</b>"]
        if src.reason:
            parts.append(f"why replay: {html.escape(src.reason)}")
        if src.stat_interval:
            parts.append(f"vm.stat_interval {src.stat_interval} s")
        rows = []
        for z in self.summary():
            env = "∞" if z.share_of_envelope == float("inf") else f"{z.share_of_envelope:.0%}"
            lm = "∞" if z.share_of_low_min == float("inf") else f"{z.share_of_low_min:.1%}"
            rows.append(
                f"{html.escape(z.label)}: largest gap <b>{z.largest_gap:+d}</b> pages = {env} of "
                f"the envelope ±{z.envelope}, {lm} of low − min {z.low_min}"
            )
        churn = self.recorder.churn
        if self.recorder.running:
            state = "running"
        else:
            state = "replayed" if self.source.mode == "replay" else "stopped"
        if churn is not None and churn.running:
            state += f", churning {churn.mib} MiB (pid {churn.pid})"
        if self.recorder.error:
            state += f", error: {html.escape(self.recorder.error)}"
        parts.append(f"{state}; {len(self._samples)} samples; {plot_mode()}")
        return "<br>".join(parts + rows)

    # -- controls --------------------------------------------------------------------------------
    def _panel(self):
        w = _widgets()
        c = self.controls
        return w.HBox([c["start"], c["stop"], c["churn"]])

    def start(self) -> None:
        """Start sampling (live canvas) or take one static reading of ``static_seconds``."""
        if not self.live:
            self._static_reading()
            return
        if self.source.mode == "replay":
            self.source.restart()
        self.recorder.start()
        self.recorder.set_churn(self.controls["churn"].value)
        self.controls["start"].disabled, self.controls["stop"].disabled = True, False
        self._frame_stop.clear()
        self._frame_thread = threading.Thread(target=self._frames, daemon=True)
        self._frame_thread.start()

    def _frames(self) -> None:
        while not self._frame_stop.wait(self.refresh_s):
            self._samples = self.recorder.samples()
            self._draw()
            self._redraw(final=False)
            self._set_readout(self._readout_html())
            if not self.recorder.running:
                break

    def stop(self) -> None:
        """Stop sampling and churn; draw the last frame and the summary."""
        self._frame_stop.set()
        if self._frame_thread is not None:
            self._frame_thread.join(2.0)
            self._frame_thread = None
        self.recorder.stop()
        self.recorder.set_churn(0)
        if self.live:
            self._samples = self.recorder.samples() or self._samples
        self.controls["start"].disabled, self.controls["stop"].disabled = False, True
        self._draw()
        self._redraw(final=True)
        self._set_readout(self._readout_html())

    def _static_reading(self) -> None:
        source = lv.open_source(self.root, self.trace)
        if source.mode != "live":
            self._set_readout(self._readout_html() + "<br>" + html.escape(source.reason))
            return
        churn_mib = self.controls["churn"].value
        if source.zones != tuple(self.zones):
            self._use(source)
        self.source = self.recorder.source = source
        churn = lv.Churn(churn_mib, root=self.root) if churn_mib else None
        try:
            if churn is not None:
                churn.start()
            self._samples = lv.collect(source, self.static_seconds, self.recorder.hz)
        finally:
            if churn is not None:
                churn.stop()
        self._draw()
        self._redraw(final=True)
        self._set_readout(self._readout_html())

    def _churn_changed(self, change) -> None:
        if self.live and self.recorder.running:
            self.recorder.set_churn(change["new"])
            self._set_readout(self._readout_html())

    def close(self) -> None:
        """Stop everything (sampling thread, frame thread, churn process)."""
        self.stop()

    def _on_error(self, exc) -> None:
        self.recorder.set_churn(0)
