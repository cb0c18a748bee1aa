"""Figures of a run and of the kernel formulas: pure matplotlib, one function per picture.

Every public ``plot_*`` function takes what it draws (a :class:`~allocsim.trace.RunResult`, a
page-level :class:`~allocsim.mmzone.Zone`, a list of ``WindowStep``) and an optional ``ax``, and
returns the Axes it drew on. Nothing here changes rcParams or the backend, and nothing runs a
simulation except :func:`figure_livelock_off_on` (which builds the README figure).

The same colours are used everywhere (:data:`PALETTE`): MIN red, LOW orange, HIGH green; the
counter blue, the snapshot purple, the buddy lists (the truth) black.

The live widgets reuse the artist-level classes :class:`RunPlot` and :class:`TaskPlot`: they
create their artists once, empty, and :meth:`RunPlot.update` sets their data from a (partial)
result, so a figure can follow a running simulation without being rebuilt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D

from .constants import PAGE_SHIFT
from .page_alloc import min_free_kbytes as kernel_min_free_kbytes
from .page_alloc import setup_per_zone_wmarks
from .vmstat import STAT_THRESHOLD_MAX, calculate_threshold

__all__ = [
    "PALETTE",
    "LABELS",
    "RunPlot",
    "TaskPlot",
    "config_y_top",
    "run_title",
    "machine_title",
    "figure_legend",
    "pages_to_mib",
    "mib_to_pages",
    "plot_run",
    "plot_tasks",
    "plot_compare",
    "compare_off_on",
    "plot_buddy_lists",
    "plot_pcp_lists",
    "plot_threshold_vs_cpus",
    "plot_threshold_vs_zone",
    "plot_drift_vs_gap",
    "plot_gfp_levels",
    "plot_zone_exposure",
    "plot_window",
    "plot_window_compare",
    "figure_livelock_off_on",
    "PHASE_LABELS",
    "phase_table",
    "plot_phase",
    "plot_kernel_boundary",
    "plot_phase_panels",
    "plot_seed_spread",
]

# One colour per quantity, used by every figure and widget of the kit.
PALETTE = {
    "wmark_min": "#d62728",  # red
    "wmark_low": "#ff7f0e",  # orange
    "wmark_high": "#2ca02c",  # green
    "counter": "#1f77b4",  # blue: what zone_page_state says
    "snapshot": "#9467bd",  # purple: counter + every CPU's delta
    "read": "#17becf",  # cyan: what the watermark checks read
    "buddy": "#111111",  # black: the truth on the buddy lists
    "pcp": "#8c564b",  # brown: free pages hiding on per-cpu lists
    "envelope": "#1f77b4",  # the drift band (drawn translucent)
    "drift_mark": "#e377c2",  # pink
    "kswapd": "#bcbd22",  # olive strip: kswapd in balance_pgdat
    "direct_reclaim": "#7f7f7f",  # grey ticks
    "drain": "#17becf",  # cyan ticks: drain_all_pages (patch 3)
    "livelock": "#d62728",  # red shading
    "task_ok": "#2ca02c",
    "tasks_stuck": "#d62728",
    "atomic_failed": "#ff7f0e",
}

LABELS = {
    "wmark_min": "WMARK_MIN",
    "wmark_low": "WMARK_LOW",
    "wmark_high": "WMARK_HIGH",
    "counter": "counter (zone_page_state)",
    "snapshot": "snapshot (counter + CPU deltas)",
    "read": "what the checks read",
    "buddy": "buddy lists (the truth)",
    "pcp": "pages on pcp lists",
    "envelope": "drift envelope: counter − CPUs × threshold … counter",
    "drift_mark": "percpu_drift_mark (patch 2)",
    "kswapd": "kswapd in balance_pgdat",
    "direct_reclaim": "direct reclaim",
    "drain": "drain_all_pages (patch 3)",
    "livelock": "livelock episode",
    "task_ok": "task pages had / wanted",
    "tasks_stuck": "writer tasks inside the allocator (share)",
    "atomic_failed": "GFP_ATOMIC failed / asked",
}

_MIB_PER_PAGE = (1 << PAGE_SHIFT) / (1 << 20)
_STRIP = 0.035  # height (axes fraction) of the kswapd strip at the bottom of a run plot


def pages_to_mib(pages):
    """Pages of 4 KiB to MiB (for secondary axes)."""
    return np.asarray(pages, dtype=float) * _MIB_PER_PAGE


def mib_to_pages(mib):
    """MiB to pages of 4 KiB."""
    return np.asarray(mib, dtype=float) / _MIB_PER_PAGE


def _new_ax(ax, figsize=(9, 4.5)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def run_title(config, *, t_ms: int | None = None) -> str:
    """What produced a figure: CPUs, zone size, patches, seed (and the clock while running)."""
    if config.stat_threshold == 0:
        machine = "exact counters"
    else:
        machine = f"patches: {config.patches.label()}"
    text = f"{config.cpus} CPUs · {config.zone_mib} MiB zone · {machine} · seed {config.seed}"
    if t_ms is not None and t_ms < config.duration_ms:
        text += f" · t = {t_ms} / {config.duration_ms} ms"
    if config.counterfactual_reasons():
        # a machine no 2.6.36 kernel can be: say so wherever its picture goes
        text += " · COUNTERFACTUAL"
    return text


def _renderer(fig):
    get = getattr(fig.canvas, "get_renderer", None)
    if get is not None:
        return get()
    return fig._get_renderer()  # a Figure without a pyplot canvas (matplotlib >= 3.6)


def figure_legend(fig, handles, *, where: str = "right", fontsize="x-small"):
    """A legend for the whole figure that stays inside it, never cut at the edges.

    ``where="right"``: one column beside the axes (constrained layout makes room for it).
    ``where="below"``: under the axes, in as many columns as fit the figure's width.
    """
    if where == "right":
        return fig.legend(
            handles=handles, loc="outside right upper", ncols=1, fontsize=fontsize, frameon=False
        )
    if where != "below":
        raise ValueError(f"where must be 'right' or 'below', got {where!r}")
    renderer = _renderer(fig)
    for ncols in range(min(len(handles), 6), 0, -1):
        leg = fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=ncols,
            fontsize=fontsize,
            frameon=False,
        )
        if ncols == 1 or leg.get_window_extent(renderer).width <= 0.98 * fig.bbox.width:
            return leg
        leg.remove()
    return leg  # pragma: no cover - the loop always returns


def _spans(mask: np.ndarray, t: np.ndarray) -> list[tuple[float, float]]:
    """Maximal runs of True in ``mask`` as (start, end) times; a tick covers [t, t + 1)."""
    if not len(mask) or not mask.any():
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(float(t[s]), float(t[e - 1]) + 1.0) for s, e in zip(starts, ends, strict=True)]


def _rects(spans, y0: float, y1: float) -> list[np.ndarray]:
    return [np.array([(a, y0), (b, y0), (b, y1), (a, y1)]) for a, b in spans]


def _binned_times(values: np.ndarray, t: np.ndarray, bin_ms: int = 10) -> np.ndarray:
    """Start times of the ``bin_ms`` bins in which ``values`` is non-zero (thins the markers)."""
    hit = np.flatnonzero(values)
    if not len(hit):
        return np.zeros(0)
    return np.unique((t[hit] // bin_ms) * bin_ms).astype(float)


def config_y_top(config, zoom: str = "all") -> int:
    """The top of a live run plot's y range (before the 12 % headroom), from the config alone.

    ``zoom="watermarks"``: 3 × WMARK_HIGH. Otherwise the free pages at the start or, if more,
    WMARK_HIGH + ``writeback_limit``: free memory rises above its start only through reclaim,
    kswapd stops reclaiming at WMARK_HIGH, and up to ``writeback_limit`` pages still under
    writeback come back after it stops (small machines measured up to 3.9 × WMARK_HIGH). The
    drift mark counts when it lies within 1.6 × that top, as in the finished picture.
    """
    d = config.derived()
    if zoom == "watermarks":
        return 3 * d.wmark_high
    top = max(d.initial_free_pages, d.wmark_high + config.writeback_limit, 1)
    if 0 < d.percpu_drift_mark <= 1.6 * top:
        top = max(top, d.percpu_drift_mark)
    return int(top)


class RunPlot:
    """The memory picture of one run, as updatable artists on one Axes.

    Lines: the counter, the snapshot, the buddy lists (truth) and the pcp pages; dashed
    horizontals: WMARK_MIN/LOW/HIGH and the drift mark (when set); a translucent band, the drift
    envelope ``counter − max_drift … counter`` (where the truth may lie when the counter
    over-reports, the dangerous side); an olive strip at the bottom while kswapd is in
    ``balance_pgdat``; grey ticks at the top where tasks entered direct reclaim and cyan ticks
    where patch 3 called ``drain_all_pages``; red shading over livelock episodes.

    Parameters
    ----------
    ax : matplotlib Axes
    config : SimConfig, optional
        Fixes the time axis (``duration_ms``) before any data arrives.
    envelope, pcp, snapshot, read, events : bool
        Which layers to draw.
    mib_axis : bool
        Add a secondary y axis in MiB on the right.
    legend : {"inside", "outside", None}
    zoom : {"all", "watermarks"}
        ``"watermarks"`` limits the y axis to 0 … 3 × WMARK_HIGH.
    yrange : {"data", "config"}
        ``"data"``: the y axis fits each result's data (a finished run's picture).
        ``"config"``: it is fixed from the config before any data (:func:`config_y_top`), so a
        live figure's axes, ticks and watermarks never move during a run; it grows only if the
        data ever leave it.
    clock : bool
        Show the clock (``t = … / … ms``) in the title while a run is partial. A live figure
        leaves it out: its title then changes only with the config and stays in the background
        it blits onto (drawing text costs more than all the data artists together).
    title : {"run", "patches", "none"}
        The Axes title: the whole run (CPUs, zone, patches, seed, clock), only the patches and
        the clock (for panels side by side under a figure title that names the machine), or
        none.
    """

    def __init__(
        self,
        ax,
        config=None,
        *,
        envelope: bool = True,
        pcp: bool = True,
        snapshot: bool = True,
        read: bool = False,
        events: bool = True,
        mib_axis: bool = True,
        legend: str | None = "inside",
        zoom: str = "all",
        title: str = "run",
        yrange: str = "data",
        clock: bool = True,
    ):
        if zoom not in ("all", "watermarks"):
            raise ValueError(f"zoom must be 'all' or 'watermarks', got {zoom!r}")
        if yrange not in ("data", "config"):
            raise ValueError(f"yrange must be 'data' or 'config', got {yrange!r}")
        if title not in ("run", "patches", "none"):
            raise ValueError(f"title must be 'run', 'patches' or 'none', got {title!r}")
        self.ax = ax
        self.zoom = zoom
        self.title = title
        self.yrange = yrange
        self.clock = clock
        self.config = config
        c = PALETTE
        self.envelope = None
        if envelope:
            self.envelope = PolyCollection(
                [], facecolor=c["envelope"], alpha=0.16, edgecolor="none", label=LABELS["envelope"]
            )
            ax.add_collection(self.envelope)
        xaxis = ax.get_xaxis_transform()  # x in data, y in axes fraction
        self.livelock = PolyCollection(
            [],
            transform=xaxis,
            facecolor=c["livelock"],
            alpha=0.12,
            edgecolor="none",
            label=LABELS["livelock"],
        )
        ax.add_collection(self.livelock)
        self.kswapd = PolyCollection(
            [],
            transform=xaxis,
            facecolor=c["kswapd"],
            alpha=0.8,
            edgecolor="none",
            label=LABELS["kswapd"],
        )
        ax.add_collection(self.kswapd)

        self.lines: dict[str, Line2D] = {}
        styles = [("buddy", dict(lw=1.8)), ("counter", dict(lw=1.4))]
        if snapshot:
            styles.append(("snapshot", dict(lw=1.1, ls=(0, (4, 2)))))
        if read:
            styles.append(("read", dict(lw=1.0, ls=":")))
        if pcp:
            styles.append(("pcp", dict(lw=1.0, alpha=0.8)))
        for name, style in styles:
            (self.lines[name],) = ax.plot([], [], color=c[name], label=LABELS[name], **style)

        self.marks: dict[str, Line2D] = {}
        for name in ("wmark_high", "wmark_low", "wmark_min", "drift_mark"):
            self.marks[name] = ax.axhline(
                0, color=c[name], lw=1.0, ls="--", label=LABELS[name], visible=False
            )
        self.mark_note = ax.text(
            0.995,
            _STRIP + 0.01,
            "",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize="x-small",
            color=c["drift_mark"],
            bbox=dict(facecolor="white", alpha=0.85, edgecolor="none", pad=1.5),
        )

        self.ticks: dict[str, Line2D] = {}
        if events:
            (self.ticks["direct_reclaim"],) = ax.plot(
                [],
                [],
                ls="none",
                marker="|",
                ms=7,
                color=c["direct_reclaim"],
                transform=xaxis,
                label=LABELS["direct_reclaim"],
            )
            (self.ticks["drain"],) = ax.plot(
                [],
                [],
                ls="none",
                marker="|",
                ms=7,
                color=c["drain"],
                transform=xaxis,
                label=LABELS["drain"],
            )

        ax.set_xlabel("simulated time (ms)")
        ax.set_ylabel("pages")
        ax.set_ylim(0, 1)
        if mib_axis:
            sec = ax.secondary_yaxis("right", functions=(pages_to_mib, mib_to_pages))
            sec.set_ylabel("MiB")
        if config is not None:
            ax.set_xlim(0, config.duration_ms)
            self._set_title(config, None)
            if yrange == "config":
                self._set_config_view(config)
        self.legend = None
        if legend == "inside":
            self.legend = ax.legend(
                handles=self.legend_handles(),
                loc="upper right",
                fontsize="x-small",
                ncols=2,
                framealpha=0.85,
            )
        elif legend == "outside":
            self.legend = ax.legend(
                handles=self.legend_handles(),
                loc="upper left",
                bbox_to_anchor=(1.08, 1.0),
                fontsize="x-small",
                framealpha=0.85,
            )
        self.data: dict = {}

    def legend_handles(self) -> list:
        """Proxy artists for a legend of the layers this plot draws (also for a figure legend)."""
        from matplotlib.patches import Patch

        c = PALETTE
        handles = [
            Line2D(
                [],
                [],
                color=line.get_color(),
                ls=line.get_linestyle(),
                lw=line.get_linewidth(),
                label=line.get_label(),
            )
            for line in self.lines.values()
        ]
        handles += [
            Line2D([], [], color=c[n], ls="--", lw=1.0, label=LABELS[n])
            for n in ("wmark_high", "wmark_low", "wmark_min", "drift_mark")
        ]
        if self.envelope is not None:
            handles.append(Patch(facecolor=c["envelope"], alpha=0.25, label=LABELS["envelope"]))
        handles.append(Patch(facecolor=c["kswapd"], alpha=0.8, label=LABELS["kswapd"]))
        handles.append(Patch(facecolor=c["livelock"], alpha=0.2, label=LABELS["livelock"]))
        handles += [
            Line2D(
                [], [], ls="none", marker="|", ms=7, color=line.get_color(), label=line.get_label()
            )
            for line in self.ticks.values()
        ]
        return handles

    def clear(self, config=None) -> None:
        """Empty every artist (a new run is about to start)."""
        for line in list(self.lines.values()) + list(self.ticks.values()):
            line.set_data([], [])
        for coll in (self.envelope, self.livelock, self.kswapd):
            if coll is not None:
                coll.set_verts([])
        for mark in self.marks.values():
            mark.set_visible(False)
        self.mark_note.set_text("")
        self.data = {}
        if config is not None:
            self.config = config
            self.ax.set_xlim(0, config.duration_ms)
            self._set_title(config, 0)
            if self.yrange == "config":
                self._set_config_view(config)

    def set_zoom(self, zoom: str) -> None:
        """Switch between the whole range and the zoom on the watermarks."""
        if zoom not in ("all", "watermarks"):
            raise ValueError(f"zoom must be 'all' or 'watermarks', got {zoom!r}")
        self.zoom = zoom
        if self.yrange == "config" and self.config is not None:
            self._set_config_view(self.config)

    def _set_marks(self, d) -> int:
        """The watermark lines (and the drift mark, when set) from derived numbers ``d``."""
        for name in ("wmark_min", "wmark_low", "wmark_high"):
            self.marks[name].set_ydata([d[name], d[name]])
            self.marks[name].set_visible(True)
        mark = int(d["percpu_drift_mark"])
        self.marks["drift_mark"].set_ydata([mark, mark])
        self.marks["drift_mark"].set_visible(mark > 0)
        return mark

    def _set_top(self, top: float, mark: int) -> None:
        """The y range 0 … ``top`` × 1.12, and the note when the drift mark lies above it."""
        self.ax.set_ylim(0, top * 1.12)
        note = ""
        if mark > top * 1.12:
            note = f"drift mark {mark:,} pages: above this view ↑"
        self.mark_note.set_text(note)

    def _set_config_view(self, config) -> None:
        """Everything but the data, from the config alone: watermarks, y range, note."""
        mark = self._set_marks(config.derived().as_dict())
        self._set_top(config_y_top(config, self.zoom), mark)

    def data_artists(self) -> list:
        """The artists a live figure redraws per frame: those a new result changes (the
        lines, the band, the strips, the ticks, the shading) and the watermark lines drawn
        among them. Everything else (with ``clock=False``, the title too) depends on the
        config alone."""
        wanted = [*self.lines.values(), self.kswapd, self.livelock, *self.ticks.values()]
        if self.envelope is not None:
            wanted.append(self.envelope)
        # The watermark lines are cheap and cross the data: redrawn with it, they stay in the
        # same stacking order as in a full draw. In the Axes' own order, for the same reason.
        wanted += list(self.marks.values())
        ids = set(map(id, wanted))
        return [a for a in self.ax.get_children() if id(a) in ids]

    def background_key(self) -> tuple:
        """What the rest of the picture, but the title, depends on (equal keys: the same
        background)."""
        marks = tuple((tuple(m.get_ydata()), m.get_visible()) for m in self.marks.values())
        return (
            self.ax.get_xlim(),
            self.ax.get_ylim(),
            marks,
            self.mark_note.get_text(),
            self.ax.get_position().bounds,
        )

    def _set_title(self, config, t_ms) -> None:
        if not self.clock:
            t_ms = None
        if self.title == "run":
            self.ax.set_title(run_title(config, t_ms=t_ms), fontsize="medium")
        elif self.title == "patches":
            text = f"patches: {config.patches.label()}"
            if t_ms is not None and t_ms < config.duration_ms:
                text += f" · t = {t_ms} ms"
            self.ax.set_title(text, fontsize="medium")

    def update(self, result) -> None:
        """Set every artist from ``result`` (complete or partial)."""
        ax = self.ax
        cfg = result.config
        t = result.t_ms
        s = result.series
        d = result.derived
        tx = t.astype(float)
        for name, line in self.lines.items():
            line.set_data(tx, s[name])
        max_drift = int(d["max_drift"])
        counter = s["counter"]
        lo = np.maximum(counter - max_drift, 0)
        hi = counter
        if self.envelope is not None:
            if len(t):
                verts = np.concatenate(
                    [np.column_stack([tx, hi]), np.column_stack([tx[::-1], lo[::-1]])]
                )
                self.envelope.set_verts([verts])
            else:
                self.envelope.set_verts([])
        mark = self._set_marks(d)

        self.kswapd.set_verts(_rects(_spans(s["kswapd_state"] == 2, t), 0.0, _STRIP))
        episodes = [(float(e.start_ms), float(e.start_ms + e.length_ms)) for e in result.episodes]
        self.livelock.set_verts(_rects(episodes, 0.0, 1.0))
        if self.ticks:
            dr = _binned_times(s["direct_reclaim"], t)
            self.ticks["direct_reclaim"].set_data(dr, np.full(len(dr), 0.975))
            dr2 = _binned_times(s["drain_all_pages"], t)
            self.ticks["drain"].set_data(dr2, np.full(len(dr2), 0.94))

        data_top = 0
        for name in ("counter", "buddy", "snapshot", "pcp"):
            if name in self.lines and len(t):
                data_top = max(data_top, int(s[name].max()))
        if self.yrange == "config":
            # Fixed before the data; the data leave it only in a run the config's estimate
            # missed: then it grows, with room to spare, rather than hide the data.
            top = config_y_top(cfg, self.zoom)
            shown = ax.get_ylim()[1]
            if self.zoom == "all" and data_top > top * 1.12:
                top = shown / 1.12 if data_top <= shown else 1.25 * data_top
            if not np.isclose(top * 1.12, shown):
                self._set_top(top, mark)
        else:
            # y range: the data and the watermarks; the drift mark only if it is near them.
            top = max(int(d["wmark_high"]), 1, data_top)
            if self.zoom == "watermarks":
                top = 3 * int(d["wmark_high"])
            elif 0 < mark <= 1.6 * top:
                top = max(top, mark)
            self._set_top(top, mark)
        ax.set_xlim(0, max(cfg.duration_ms, len(t)))
        self._set_title(cfg, len(t))
        self.data = {"t": tx, "envelope_lo": lo, "envelope_hi": hi}

    def plotted(self) -> dict:
        """The arrays currently on the artists (what a viewer sees), by name."""
        out = {}
        for name, line in self.lines.items():
            out["t"] = np.asarray(line.get_xdata(), dtype=float)
            out[name] = np.asarray(line.get_ydata())
        if self.envelope is not None:
            paths = self.envelope.get_paths()
            if paths:
                v = paths[0].vertices
                n = len(out.get("t", ()))
                out["envelope_hi"] = v[:n, 1]
                out["envelope_lo"] = v[n : 2 * n, 1][::-1]
            else:
                out["envelope_hi"] = out["envelope_lo"] = np.zeros(0)
        for name, mark in self.marks.items():
            out[name] = float(mark.get_ydata()[0]) if mark.get_visible() else None
        out["kswapd_spans"] = [
            (p.vertices[0, 0], p.vertices[1, 0]) for p in self.kswapd.get_paths()
        ]
        out["livelock_spans"] = [
            (p.vertices[0, 0], p.vertices[1, 0]) for p in self.livelock.get_paths()
        ]
        for name, line in self.ticks.items():
            out[f"{name}_t"] = np.asarray(line.get_xdata(), dtype=float)
        out["title"] = self.ax.get_title()
        return out


def _bin_sum(values: np.ndarray, bin_ms: int) -> np.ndarray:
    n = len(values)
    if n == 0:
        return np.zeros(0)
    idx = np.arange(0, n, bin_ms)
    return np.add.reduceat(values.astype(float), idx)


class TaskPlot:
    """Who gets pages: the tasks' share of what they asked for, how many of them sit in the
    allocator, and the share of GFP_ATOMIC requests that failed; livelocks shaded.

    Values are per ``bin_ms`` bin, as shares in [0, 1].
    """

    def __init__(self, ax, config=None, *, bin_ms: int = 20, legend: bool = True):
        self.ax = ax
        self.bin_ms = bin_ms
        c = PALETTE
        xaxis = ax.get_xaxis_transform()
        self.livelock = PolyCollection(
            [],
            transform=xaxis,
            facecolor=c["livelock"],
            alpha=0.12,
            edgecolor="none",
            label=LABELS["livelock"],
        )
        ax.add_collection(self.livelock)
        self.lines = {}
        for name, style in (
            ("task_ok", dict(lw=1.4)),
            ("tasks_stuck", dict(lw=1.2)),
            ("atomic_failed", dict(lw=1.0, alpha=0.8)),
        ):
            (self.lines[name],) = ax.plot([], [], color=c[name], label=LABELS[name], **style)
        ax.set_ylim(-0.03, 1.05)
        ax.set_ylabel("share")
        ax.set_xlabel("simulated time (ms)")
        if config is not None:
            ax.set_xlim(0, config.duration_ms)
        if legend:
            ax.legend(loc="upper right", fontsize="x-small", ncols=2, framealpha=0.85)

    def legend_handles(self) -> list:
        """Proxy artists for a legend of this panel's lines."""
        return [
            Line2D([], [], color=line.get_color(), lw=line.get_linewidth(), label=line.get_label())
            for line in self.lines.values()
        ]

    def clear(self, config=None) -> None:
        for line in self.lines.values():
            line.set_data([], [])
        self.livelock.set_verts([])
        if config is not None:
            self.ax.set_xlim(0, config.duration_ms)

    def update(self, result) -> None:
        s = result.series
        cfg = result.config
        b = self.bin_ms
        n = len(result.t_ms)
        x = np.arange(0, n, b, dtype=float) + min(b, max(n, 1)) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            demand = _bin_sum(s["task_demand"], b)
            ok = np.where(demand > 0, _bin_sum(s["task_ok"], b) / demand, np.nan)
            asked = _bin_sum(s["atomic_attempted"], b)
            failed = np.where(asked > 0, _bin_sum(s["atomic_failed"], b) / asked, np.nan)
            stuck = _bin_sum(s["tasks_in_allocator"], b) / b / max(1, cfg.writer_cpus)
        self.lines["task_ok"].set_data(x, ok)
        self.lines["tasks_stuck"].set_data(x, stuck)
        self.lines["atomic_failed"].set_data(x, failed)
        episodes = [(float(e.start_ms), float(e.start_ms + e.length_ms)) for e in result.episodes]
        self.livelock.set_verts(_rects(episodes, 0.0, 1.0))
        self.ax.set_xlim(0, max(cfg.duration_ms, n))

    def data_artists(self) -> list:
        """The artists a new result changes (see :meth:`RunPlot.data_artists`)."""
        return [*self.lines.values(), self.livelock]

    def background_key(self) -> tuple:
        """What the rest of this panel depends on."""
        return (self.ax.get_xlim(), self.ax.get_ylim(), self.ax.get_position().bounds)

    def plotted(self) -> dict:
        out = {name: np.asarray(line.get_ydata(), dtype=float) for name, line in self.lines.items()}
        out["t"] = np.asarray(self.lines["task_ok"].get_xdata(), dtype=float)
        out["livelock_spans"] = [
            (p.vertices[0, 0], p.vertices[1, 0]) for p in self.livelock.get_paths()
        ]
        return out


def plot_run(
    result,
    *,
    ax=None,
    envelope: bool = True,
    pcp: bool = True,
    snapshot: bool = True,
    read: bool = False,
    events: bool = True,
    mib_axis: bool = True,
    legend: str | None = "auto",
    zoom: str = "all",
    xlim=None,
):
    """The memory picture of a run: counter, snapshot and buddy truth against MIN/LOW/HIGH.

    See :class:`RunPlot` for the layers. ``xlim=(t0, t1)`` zooms in on a time window (e.g.
    a livelock onset). ``legend="auto"`` puts the legend under the figure when this function
    makes the figure, inside the Axes otherwise. Returns the Axes.
    """
    own = ax is None
    ax = _new_ax(ax, figsize=(9, 5.2))
    if legend == "auto":
        legend = "figure" if own else "inside"
    rp = RunPlot(
        ax,
        result.config,
        envelope=envelope,
        pcp=pcp,
        snapshot=snapshot,
        read=read,
        events=events,
        mib_axis=mib_axis,
        legend=None if legend == "figure" else legend,
        zoom=zoom,
    )
    if legend == "figure":
        figure_legend(ax.figure, rp.legend_handles(), where="right")
    rp.update(result)
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax._allocsim_plot = rp  # lets callers reach the artists
    return ax


def plot_tasks(result, *, ax=None, bin_ms: int = 20, legend: bool = True):
    """The allocation outcome of a run over time (see :class:`TaskPlot`). Returns the Axes."""
    ax = _new_ax(ax, figsize=(9, 2.5))
    tp = TaskPlot(ax, result.config, bin_ms=bin_ms, legend=legend)
    tp.update(result)
    ax._allocsim_plot = tp
    return ax


def _verdict(result) -> str:
    if not result.finished:
        return "(running)"
    pages = f"{result.verdict['delivered_pages']:,} pages had"
    if result.livelocked:
        return f"LIVELOCK: stalled {result.livelock_ms} ms · {pages}"
    if result.livelock_ms:
        return f"stalled {result.livelock_ms} ms · {pages}"
    return f"no stall · {pages}"


def plot_compare(
    results, *, axes=None, tasks: bool = True, zoom: str = "all", titles=None, same_y: bool = True
):
    """Runs side by side, one column each, with the same y range (e.g. patches off vs on).

    ``axes`` is a 2-D array (rows: memory, then tasks if ``tasks``; one column per result)
    or None for a new figure. ``same_y=False`` gives each panel its own y range (for
    machines of different sizes, where a shared range would flatten the small one). Returns
    the array of Axes.
    """
    results = list(results)
    nrows = 2 if tasks else 1
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(
            nrows,
            len(results),
            figsize=(min(9.2, 4.6 * len(results)), 5.5 if tasks else 4),
            sharex="col",
            squeeze=False,
            layout="constrained",
            gridspec_kw={"height_ratios": (3, 1)} if tasks else None,
        )
    axes = np.asarray(axes).reshape(nrows, len(results))
    fig = axes[0, 0].figure
    engine = fig.get_layout_engine()
    fig_legend = engine is not None and type(engine).__name__ == "ConstrainedLayoutEngine"
    plots = []
    for i, res in enumerate(results):
        last = i == len(results) - 1
        rp = RunPlot(
            axes[0, i], res.config, legend="inside" if last and not fig_legend else None, zoom=zoom
        )
        rp.update(res)
        title = titles[i] if titles is not None else f"patches: {res.config.patches.label()}"
        axes[0, i].set_title(f"{title}\n{_verdict(res)}", fontsize="medium")
        plots.append(rp)
        if tasks:
            tp = TaskPlot(axes[1, i], res.config, legend=last and not fig_legend)
            tp.update(res)
            axes[0, i].set_xlabel("")
    if fig_legend:
        handles = plots[0].legend_handles()
        if tasks:
            handles += tp.legend_handles()
        figure_legend(fig, handles, where="right")
    if same_y:
        top = max(ax.get_ylim()[1] for ax in axes[0])
        for ax in axes[0]:
            ax.set_ylim(0, top)
    if titles is None:
        # What produced the figure, once for all panels (the panels differ only in patches);
        # long per-panel titles collide side by side.
        fig.suptitle(machine_title(results), fontsize="medium")
    return axes


def machine_title(results) -> str:
    """The machine the runs share: CPUs, zone size, seed (and what differs, if anything)."""
    cfgs = [r.config for r in results]
    parts = []
    for attr, fmt in (("cpus", "{} CPUs"), ("zone_mib", "{} MiB zone"), ("seed", "seed {}")):
        values = sorted({getattr(c, attr) for c in cfgs})
        parts.append(fmt.format(" / ".join(str(v) for v in values)))
    return " · ".join(parts)


def compare_off_on(config, *, patches=None, axes=None, tasks: bool = True, zoom: str = "all"):
    """Run ``config`` with no patch and with ``patches`` (default all three), same seed, and
    plot them side by side. Returns ``(axes, (result_off, result_on))``."""
    from .patches import Patches
    from .sim import Simulation

    if patches is None:
        patches = Patches.all()
    off = Simulation(config.replace(patches=Patches.none())).run()
    on = Simulation(config.replace(patches=patches)).run()
    axes = plot_compare([off, on], axes=axes, tasks=tasks, zoom=zoom)
    return axes, (off, on)


# ---------------------------------------------------------------------------------------------
# Page-level pictures: buddy lists and pcp lists of an allocsim.mmzone.Zone
# ---------------------------------------------------------------------------------------------


def plot_buddy_lists(zone, *, ax=None, title: str | None = None):
    """``free_area[order].nr_free`` for every order as bars, labelled with the pages they hold.

    ``zone`` is a page-level :class:`~allocsim.mmzone.Zone`. This is what ``/proc/buddyinfo``
    prints, one number per order. Returns the Axes (its bars are ``ax.containers[0]``).
    """
    ax = _new_ax(ax, figsize=(7, 3.2))
    counts = np.array(zone.nr_free_by_order())
    orders = np.arange(len(counts))
    bars = ax.bar(orders, counts, color=PALETTE["buddy"], alpha=0.75, label="nr_free (blocks)")
    for o, (bar, n) in enumerate(zip(bars, counts, strict=True)):
        if n:
            ax.annotate(
                f"{n}×{1 << o}",
                (bar.get_x() + bar.get_width() / 2, n),
                ha="center",
                va="bottom",
                fontsize="x-small",
            )
    ax.set_xticks(orders)
    ax.set_xlabel("order (block of 2^order pages)")
    ax.set_ylabel("free blocks (nr_free)")
    ax.set_ylim(0, max(1, counts.max()) * 1.25)
    pages = int(sum(int(n) << o for o, n in enumerate(counts)))
    ax.set_title(
        title or f"free_area of zone {zone.name}: {pages} pages free on the buddy lists",
        fontsize="medium",
    )
    return ax


def plot_pcp_lists(zone, *, ax=None, title: str | None = None):
    """Pages on each CPU's per-cpu list against ``high`` and ``batch``; the title compares the
    counter, the buddy lists and the pcp total. Returns the Axes."""
    from .vmstat import zone_page_state, zone_page_state_snapshot

    ax = _new_ax(ax, figsize=(7, 3.2))
    counts = np.asarray(zone.pcp_count)
    cpus = np.arange(len(counts))
    ax.bar(cpus, counts, color=PALETTE["pcp"], alpha=0.8, label="pcp.count")
    high = int(zone.pcp_high[0])
    batch = int(zone.pcp_batch[0])
    ax.axhline(high, color=PALETTE["wmark_high"], ls="--", lw=1, label=f"pcp.high = {high}")
    ax.axhline(batch, color=PALETTE["wmark_low"], ls=":", lw=1, label=f"pcp.batch = {batch}")
    ax.set_xlabel("CPU")
    ax.set_ylabel("pages on the pcp list")
    ax.set_ylim(0, max(high, int(counts.max()) if len(counts) else 0, 1) * 1.2)
    if len(cpus) <= 32:
        ax.set_xticks(cpus)
    ax.legend(fontsize="x-small", loc="upper right")
    ax.set_title(
        title
        or (
            f"counter {zone_page_state(zone)} · snapshot {zone_page_state_snapshot(zone)} · "
            f"buddy {zone.buddy_pages()} · on pcp lists {zone.pcp_pages()}"
        ),
        fontsize="medium",
    )
    return ax


# ---------------------------------------------------------------------------------------------
# The formulas
# ---------------------------------------------------------------------------------------------

_CPU_GRID = np.array([1 << k for k in range(13)])  # 1 .. 4096


def _present(zone_mib: int) -> int:
    return int(zone_mib) << (20 - PAGE_SHIFT)


def plot_threshold_vs_cpus(
    *, ax=None, zone_mibs=(256, 1024, 4096, 16384, 65536), cpus=None, mark=None
):
    """``calculate_threshold`` against the number of CPUs, one step line per zone size.

    ``mark=(cpus, zone_mib)`` puts a dot on the curves. Returns the Axes.
    """
    ax = _new_ax(ax, figsize=(6, 3.5))
    cpus = _CPU_GRID if cpus is None else np.asarray(cpus)
    for zm in zone_mibs:
        th = [calculate_threshold(_present(zm), int(n)) for n in cpus]
        ax.step(cpus, th, where="post", label=f"{zm} MiB zone")
    ax.axhline(STAT_THRESHOLD_MAX, color="grey", ls=":", lw=1, label="cap 125 (s8 delta)")
    if mark is not None:
        n, zm = mark
        ax.plot(
            [n],
            [calculate_threshold(_present(zm), n)],
            "o",
            color="black",
            ms=7,
            label=f"{n} CPUs, {zm} MiB",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("online CPUs")
    ax.set_ylabel("stat_threshold (pages per CPU)")
    ax.set_title("threshold = min(125, 2·fls(cpus)·(1 + fls(MiB/128)))", fontsize="medium")
    ax.legend(fontsize="x-small")
    return ax


def plot_threshold_vs_zone(*, ax=None, cpus_list=(4, 16, 64, 256, 1024), zone_mibs=None, mark=None):
    """``calculate_threshold`` against the zone size, one step line per CPU count."""
    ax = _new_ax(ax, figsize=(6, 3.5))
    if zone_mibs is None:
        zone_mibs = np.array([1 << k for k in range(6, 19)])  # 64 MiB .. 256 GiB
    zone_mibs = np.asarray(zone_mibs)
    for n in cpus_list:
        th = [calculate_threshold(_present(int(zm)), n) for zm in zone_mibs]
        ax.step(zone_mibs, th, where="post", label=f"{n} CPUs")
    ax.axhline(STAT_THRESHOLD_MAX, color="grey", ls=":", lw=1, label="cap 125")
    if mark is not None:
        n, zm = mark
        ax.plot(
            [zm],
            [calculate_threshold(_present(zm), n)],
            "o",
            color="black",
            ms=7,
            label=f"{n} CPUs, {zm} MiB",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("zone size (MiB)")
    ax.set_ylabel("stat_threshold (pages per CPU)")
    ax.set_title("the threshold grows with log(CPUs) × log(memory)", fontsize="medium")
    ax.legend(fontsize="x-small")
    return ax


def plot_drift_vs_gap(*, ax=None, zone_mib: int | None = None, cpus=None, mark: int | None = None):
    """Worst-case drift ``cpus × threshold`` against the watermark gap ``low − min``.

    ``zone_mib=None`` lets the zone grow with the machine (``scaled_zone_mib``, 16 MiB per
    CPU, at least 1 GiB); a number fixes it. Where the drift line is above the gap, the drift
    can hide a breach of MIN from a LOW check, and 2.6.36 (patch 2) sets ``percpu_drift_mark``.
    ``mark=cpus`` highlights one machine. Returns the Axes.
    """
    from .config import scaled_zone_mib

    ax = _new_ax(ax, figsize=(6, 3.5))
    cpus = _CPU_GRID if cpus is None else np.asarray(cpus)
    drift, gap = [], []
    for n in cpus:
        zm = scaled_zone_mib(int(n)) if zone_mib is None else zone_mib
        present = _present(zm)
        wmin, wlow, _ = setup_per_zone_wmarks(kernel_min_free_kbytes(present * 4), [present])[0]
        drift.append(int(n) * calculate_threshold(present, int(n)))
        gap.append(wlow - wmin)
    drift, gap = np.array(drift), np.array(gap)
    ax.plot(cpus, drift, "o-", color=PALETTE["envelope"], label="max drift = CPUs × threshold")
    ax.plot(cpus, gap, "s-", color=PALETTE["wmark_low"], label="tolerated drift = low − min")
    ax.fill_between(
        cpus,
        gap,
        drift,
        where=drift > gap,
        color=PALETTE["livelock"],
        alpha=0.12,
        label="drift > low − min: drift mark set",
    )
    if mark is not None:
        i = int(np.argmin(np.abs(cpus - mark)))
        ax.annotate(
            f"{int(cpus[i])} CPUs: drift {drift[i]:,} vs gap {gap[i]:,}",
            (cpus[i], drift[i]),
            xytext=(8, -14),
            textcoords="offset points",
            fontsize="x-small",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("online CPUs")
    ax.set_ylabel("pages")
    where = "zone grows with CPUs" if zone_mib is None else f"{zone_mib} MiB zone"
    ax.set_title(f"drift envelope vs watermark gap ({where})", fontsize="medium")
    ax.legend(fontsize="x-small")
    return ax


def plot_gfp_levels(rows, *, ax=None, wmarks=None, title: str | None = None):
    """How deep each allocation context may go: one bar per context over the free counts (as
    read) at which its attempt may still allocate, from its floor up; the longer the bar, the
    deeper it goes (``rows`` from :func:`allocsim.teaching.gfp_contexts`).

    ``wmarks=(min, low, high)`` draws the watermarks. Returns the Axes.
    """
    ax = _new_ax(ax, figsize=(7, 3.2))
    names = [r["who"] for r in rows]
    floors = [r["fails_at_or_below"] for r in rows]
    top = max([*floors, *(wmarks or ())]) * 1.15 or 1
    y = np.arange(len(rows))
    ax.barh(y, [top - f for f in floors], left=floors, color=PALETTE["counter"], alpha=0.35)
    for i, f in enumerate(floors):
        text = f"fails at ≤ {f:,}  " if f else "any free page  "
        ax.text(f, i, text, va="center", ha="right" if f else "left", fontsize="x-small")
    ax.set_yticks(y, names, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlim(0, top)
    if wmarks is not None:
        for name, v in zip(("wmark_min", "wmark_low", "wmark_high"), wmarks, strict=True):
            ax.axvline(v, color=PALETTE[name], ls="--", lw=1, label=f"{LABELS[name]} {v}")
        ax.legend(fontsize="x-small", loc="lower right", framealpha=0.9)
    ax.set_xlabel("free pages (as read): each bar spans the counts at which the attempt succeeds")
    ax.set_title(title or "who may go how deep: the longer the bar, the deeper", fontsize="medium")
    return ax


def plot_zone_exposure(report, *, ax=None, title: str | None = None):
    """Each populated zone of a zoneinfo report: worst-case drift ``cpus × threshold`` against
    the watermark gap ``low − min`` (log scale). ``report`` comes from
    ``allocsim.zoneinfo.build_report``. Returns the Axes."""
    ax = _new_ax(ax, figsize=(7, 3.2))
    zones = [z for z in report.zones if z.populated]
    x = np.arange(len(zones))
    gap = [max(1, z.tolerate_drift) for z in zones]
    drift = [max(1, z.max_drift or 0) for z in zones]
    ax.bar(x - 0.2, gap, 0.4, color=PALETTE["wmark_low"], label="low − min (tolerated drift)")
    ax.bar(x + 0.2, drift, 0.4, color=PALETTE["envelope"], label="CPUs × threshold (max drift)")
    for i, z in enumerate(zones):
        if z.exposed:
            ax.annotate(
                "exposed",
                (i + 0.2, drift[i]),
                ha="center",
                va="bottom",
                fontsize="x-small",
                color=PALETTE["wmark_min"],
            )
    ax.set_xticks(x, [f"node {z.node}\n{z.zone}" for z in zones], fontsize="small")
    ax.set_yscale("log")
    ax.set_ylabel("pages")
    ax.set_ylim(top=max(gap + drift) * 4)
    ax.legend(fontsize="x-small", loc="upper left")
    ax.set_title(title or "drift exposure of each zone", fontsize="medium")
    return ax


# ---------------------------------------------------------------------------------------------
# Patch 1's window
# ---------------------------------------------------------------------------------------------


def plot_window(steps, *, ax=None, title: str | None = None, mark_step: int | None = None):
    """One ``free_pcppages_bulk`` stepped page by page (from ``allocsim.window``).

    The counter a lockless reader on another CPU sees, and the pages really on the buddy lists;
    the gap between them is shaded (pages counted but not yet linked: patch 1's window). Red
    ticks at the bottom mark steps at which the reader's GFP_ATOMIC check passed while the same
    check on the truth failed. ``mark_step`` draws a cursor. Returns the Axes.
    """
    ax = _new_ax(ax, figsize=(6, 3.5))
    x = np.arange(len(steps))
    counter = np.array([s.counter for s in steps])
    buddy = np.array([s.buddy for s in steps])
    ax.fill_between(
        x,
        buddy,
        np.maximum(counter, buddy),
        step="post",
        color=PALETTE["envelope"],
        alpha=0.2,
        label="counted, not on the lists (in flight)",
    )
    ax.step(x, counter, where="post", color=PALETTE["counter"], lw=1.6, label=LABELS["counter"])
    ax.step(x, buddy, where="post", color=PALETTE["buddy"], lw=1.6, label=LABELS["buddy"])
    lie = np.array([s.watermark_ok and not s.truth_ok for s in steps])
    if lie.any():
        ax.plot(
            x[lie] + 0.5,
            np.full(lie.sum(), 0.03),
            ls="none",
            marker="|",
            ms=10,
            color=PALETTE["livelock"],
            transform=ax.get_xaxis_transform(),
            label="reader passes a check the truth fails",
        )
    if mark_step is not None:
        ax.axvline(mark_step + 0.5, color="grey", lw=1)
    n = len(steps)
    ticks = [0, n // 2, n - 1] if n > 2 else list(range(n))
    labels = {0: "lock taken", n - 1: f"{steps[-1].linked} linked,\nlock dropped"}
    ax.set_xticks(
        ticks, [labels.get(i, f"{steps[i].linked}\nlinked") for i in ticks], fontsize="x-small"
    )
    ax.set_xlabel("step of free_pcppages_bulk (one page linked per step)")
    ax.set_ylabel("pages")
    ax.set_title(title or "patch 1's window, as another CPU sees it", fontsize="medium")
    ax.legend(fontsize="x-small", loc="lower right")
    return ax


def plot_window_compare(steps_off, steps_on, *, axes=None):
    """The window without and with patch 1, side by side with the same y range."""
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True, layout="constrained")
    plot_window(steps_off, ax=axes[0], title="2.6.36-rc3 (no patch): counter raised before linking")
    plot_window(steps_on, ax=axes[1], title="72853e2 (patch 1): counter raised after linking")
    return axes


# ---------------------------------------------------------------------------------------------
# Sweeps: phase diagrams
# ---------------------------------------------------------------------------------------------

PHASE_LABELS = {
    "progress_vs_exact": "pages delivered / exact counters",
    "livelock_ms": "livelock (ms)",
    "stalled_ms": "stalled (ms)",
    "counter_lies_ms": "counter lies (ms)",
    "task_throughput": "task pages had / wanted",
}


def _log2_edges(values) -> np.ndarray:
    """Cell edges for values on a log2 axis: halfway (in log) between neighbours."""
    v = np.log2(np.asarray(values, dtype=float))
    if len(v) == 1:
        return 2.0 ** np.array([v[0] - 0.5, v[0] + 0.5])
    mids = (v[1:] + v[:-1]) / 2
    return 2.0 ** np.concatenate(([v[0] - (mids[0] - v[0])], mids, [v[-1] + (v[-1] - mids[-1])]))


def phase_table(df, value: str, *, where=None, x: str = "cpus", y: str = "zone_mib"):
    """Mean of ``value`` over the seeds on the ``x`` × ``y`` grid of a sweep's DataFrame.

    ``where`` selects rows (``{"patches": "none"}``). Returns a DataFrame, ``y`` down, ``x``
    across, both ascending; cells without runs are NaN.
    """
    sel = df
    for k, v in (where or {}).items():
        sel = sel[sel[k] == v]
    vals = sel[value].astype(float)  # booleans average to shares, None to NaN
    table = vals.groupby([sel[y], sel[x]]).mean().unstack(x)
    return table.sort_index().sort_index(axis=1)


def plot_phase(
    df,
    value: str,
    *,
    ax=None,
    where=None,
    x: str = "cpus",
    y: str = "zone_mib",
    cmap: str = "viridis",
    vmin=None,
    vmax=None,
    colorbar: bool = True,
    annotate: bool | None = None,
    fmt: str = "{:.2f}",
    title: str | None = None,
):
    """A phase diagram: the mean over seeds of ``value`` on the CPUs × zone-size grid.

    ``df`` is a sweep's DataFrame (:func:`allocsim.sweep.sweep`), ``where`` picks one kernel or
    patch set. Cells sit on log2 axes, so :func:`plot_kernel_boundary` can be drawn on top.
    ``annotate`` writes each cell's value in it (default: when there are at most 24 cells).
    Returns the Axes.
    """
    ax = _new_ax(ax, figsize=(5, 4))
    table = phase_table(df, value, where=where, x=x, y=y)
    xs, ys = table.columns.to_numpy(), table.index.to_numpy()
    z = table.to_numpy(dtype=float)
    if annotate is None:
        annotate = z.size <= 24
    mesh = ax.pcolormesh(
        _log2_edges(xs), _log2_edges(ys), np.ma.masked_invalid(z), cmap=cmap, vmin=vmin, vmax=vmax
    )
    if annotate:
        lo, hi = mesh.get_clim()
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                if np.isfinite(z[i, j]):
                    dark = (z[i, j] - lo) < 0.5 * (hi - lo) if hi > lo else True
                    ax.text(
                        xv,
                        yv,
                        fmt.format(z[i, j]),
                        ha="center",
                        va="center",
                        fontsize="x-small",
                        color="white" if dark and cmap == "viridis" else "black",
                    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xticks(xs, [str(int(v)) for v in xs])
    ax.set_yticks(ys, [str(int(v)) for v in ys])
    ax.minorticks_off()
    ax.set_xlabel("online CPUs" if x == "cpus" else x)
    ax.set_ylabel("zone size (MiB)" if y == "zone_mib" else y)
    if title is None:
        title = ", ".join(f"{k} {v}" for k, v in (where or {}).items()) or value
    ax.set_title(title, fontsize="medium")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=PHASE_LABELS.get(value, value))
    return ax


def plot_kernel_boundary(
    *, ax=None, patches="all", cpus=None, zone_mibs=None, n: int = 24, legend=True, **fixed
):
    """The kernel's own boundary on a CPUs × zone-size plane (see
    :func:`allocsim.sweep.kernel_boundary`): a solid line where ``cpus × stat_threshold``
    starts to exceed ``low − min``, a dashed one where ``percpu_drift_mark`` starts to be set
    (only where ``patches`` includes patch 2). The upper-left side of a line is the side past it.

    ``cpus``/``zone_mibs`` default to ``n`` log-spaced values spanning the Axes' current
    limits (draw the phase diagram first). Returns the Axes.
    """
    from .sweep import kernel_boundary

    ax = _new_ax(ax, figsize=(5, 4))
    if cpus is None:
        lo, hi = ax.get_xlim()
        cpus = np.unique(np.geomspace(max(1, lo), max(2, hi), n).round().astype(int))
    if zone_mibs is None:
        lo, hi = ax.get_ylim()
        zone_mibs = np.unique(np.geomspace(max(64, lo), max(65, hi), n).round().astype(int))
    b = kernel_boundary(cpus, zone_mibs, patches=patches, **fixed)
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    past = (b["max_drift"] > b["tolerate_drift"]).astype(float)
    marked = (b["percpu_drift_mark"] > 0).astype(float)
    handles = []
    if 0 < past.mean() < 1:
        outline = [patheffects.withStroke(linewidth=4, foreground="black")]
        cs = ax.contour(b["cpus"], b["zone_mib"], past, levels=[0.5], colors="white", linewidths=2)
        cs.set_path_effects(outline)
        handles.append(
            Line2D(
                [],
                [],
                color="white",
                lw=2,
                path_effects=outline,
                label="CPUs × threshold > low − min",
            )
        )
    if 0 < marked.mean() < 1:
        ax.contour(
            b["cpus"],
            b["zone_mib"],
            marked,
            levels=[0.5],
            colors=PALETTE["drift_mark"],
            linewidths=1.5,
            linestyles="--",
        )
        handles.append(
            Line2D([], [], color=PALETTE["drift_mark"], lw=1.5, ls="--", label="drift mark set")
        )
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    if legend and handles:
        ax.legend(handles=handles, fontsize="x-small", loc="lower right", framealpha=0.8)
    return ax


def plot_seed_spread(
    df, value: str, *, ax=None, x: str = "cpus", by: str = "patches", where=None, title=None
):
    """``value`` against ``x``, one line per value of ``by``: the mean over seeds, with a bar
    from the lowest to the highest seed (how much of a difference is the workload's luck).

    ``where`` selects rows (``{"zone_mib": 4096}``). Returns the Axes.
    """
    ax = _new_ax(ax, figsize=(6, 3.6))
    sel = df
    for k, v in (where or {}).items():
        sel = sel[sel[k] == v]
    for label in dict.fromkeys(sel[by]):
        part = sel[sel[by] == label]
        g = part[value].astype(float).groupby(part[x])
        mean, lo, hi = g.mean(), g.min(), g.max()
        xs = mean.index.to_numpy(dtype=float)
        ax.errorbar(
            xs,
            mean.to_numpy(),
            yerr=[mean.to_numpy() - lo.to_numpy(), hi.to_numpy() - mean.to_numpy()],
            marker="o",
            capsize=3,
            label=f"{by} {label}",
        )
    if x in ("cpus", "zone_mib"):
        ax.set_xscale("log", base=2)
        xs = np.sort(sel[x].unique())
        ax.set_xticks(xs, [str(int(v)) for v in xs])
        ax.minorticks_off()
    ax.set_xlabel({"cpus": "online CPUs", "zone_mib": "zone size (MiB)"}.get(x, x))
    ax.set_ylabel(PHASE_LABELS.get(value, value))
    if title is None:
        title = ", ".join(f"{k} {v}" for k, v in (where or {}).items())
        title = (title + ": " if title else "") + "mean over seeds, bars from lowest to highest"
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="x-small")
    return ax


def plot_phase_panels(
    df,
    values=("progress_vs_exact", "stalled_ms", "livelock_ms"),
    *,
    by: str = "patches",
    axes=None,
    boundary: bool = True,
):
    """One row per measure in ``values`` (those the DataFrame has; ``livelock_ms`` only where
    there is no ``stalled_ms``), one column per value of ``by`` (each kernel or patch set), the
    same colour scale along a row, the kernel's boundary on every panel.

    ``axes`` is a 2-D array of Axes or None for a new figure. Returns the array of Axes.
    """
    panels = list(dict.fromkeys(df[by]))
    values = [v for v in values if v in df.columns]
    if "stalled_ms" in values and "livelock_ms" in values:
        values.remove("livelock_ms")  # the stall measure, where runs report it, supersedes it
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(
            len(values),
            len(panels),
            figsize=(4.6 * len(panels) + 0.8, 3.6 * len(values)),
            squeeze=False,
            layout="constrained",
        )
    axes = np.asarray(axes).reshape(len(values), len(panels))
    for i, value in enumerate(values):
        col = df[value].astype(float)
        vmin, vmax = float(np.nanmin(col)), float(np.nanmax(col))
        if value == "progress_vs_exact":
            vmin, vmax = 0.0, max(1.0, vmax)
        fmt = "{:.2f}" if vmax <= 10 else "{:.0f}"
        for j, panel in enumerate(panels):
            ax = axes[i, j]
            plot_phase(
                df,
                value,
                ax=ax,
                where={by: panel},
                vmin=vmin,
                vmax=vmax,
                colorbar=j == len(panels) - 1,
                fmt=fmt,
                title=f"{by} {panel}: {PHASE_LABELS.get(value, value)}",
            )
            if boundary and by == "patches":
                plot_kernel_boundary(ax=ax, patches=panel, legend=i == 0)
    return axes


# ---------------------------------------------------------------------------------------------
# The README figure
# ---------------------------------------------------------------------------------------------

# Relative: the current directory, never the package's own (installed, it is site-packages).
# docs/make_docs.py passes docs/figures/livelock.png explicitly.
DEFAULT_FIGURE = Path("livelock.png")


def figure_livelock_off_on(seed: int = 1, path=None, *, config=None, dpi: int = 110):
    """Run the ``large`` preset with no patch and with all three (same ``seed``), draw them
    side by side and save the picture (default ``livelock.png`` in the current directory;
    ``docs/make_docs.py`` writes ``docs/figures/livelock.png``).

    Uses a bare ``Figure`` (no pyplot), so it works in scripts and never pops up a window.
    Returns the path written.
    """
    from matplotlib.figure import Figure

    from .config import preset

    if config is None:
        config = preset("large", seed=seed)
    path = Path(DEFAULT_FIGURE if path is None else path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(13, 6.2), layout="constrained")
    axes = fig.subplots(2, 2, sharex="col", gridspec_kw={"height_ratios": (3, 1)})
    compare_off_on(config, axes=axes)
    fig.suptitle(
        "The 2010 per-cpu counter drift livelock in allocsim: "
        "2.6.36-rc3 (left) and with Mel Gorman's three patches (right), same seed",
        fontsize="large",
    )
    fig.savefig(path, dpi=dpi)
    return path


def main(argv=None) -> int:
    """``python -m allocsim.plotting [--seed N] [--out PATH]``: write the README figure."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m allocsim.plotting",
        description="Write the README figure of the livelock, patches off and on.",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--out", default=str(DEFAULT_FIGURE), help="where to write (default: ./livelock.png)"
    )
    args = p.parse_args(argv)
    print(figure_livelock_off_on(args.seed, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
