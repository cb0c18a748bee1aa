"""Demos without a simulation: patch 1's window step by step, the buddy lists, the threshold.

:class:`WindowStepper` walks through one ``free_pcppages_bulk`` (:mod:`allocsim.window`),
:class:`BuddyDemo` splits and merges blocks in ``free_area`` and :class:`ThresholdExplorer` plots
``calculate_threshold`` as CPUs and memory grow.
"""

from __future__ import annotations

import html

import numpy as np

from ..config import SimConfig
from ..patches import Patches
from ..plotting import PALETTE, plot_window_compare
from ..teaching import fitted_preset
from .controls import (
    _FORMULA_OF,
    OptionalInt,
    _view,
    controls_for,
)
from .demos import _derived_rows, _rows_html
from .environment import (
    _widgets,
    plot_mode,
)
from .host import (
    _FigureHost,
)


class WindowStepper(_FigureHost):
    """Patch 1's window, page by page: a slider walks through one ``free_pcppages_bulk`` and the
    readout says what a lockless reader on another CPU saw at that step, without and with
    72853e2. The steps come from :func:`allocsim.window.free_pcppages_bulk_window`."""

    def __init__(self, *, live=None, **window_kwargs):
        from ..window import free_pcppages_bulk_window

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
        from ..constants import MAX_ORDER
        from ..mmzone import Zone

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
        from ..teaching import buddyinfo

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
        from ..plotting import _CPU_GRID

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
        from ..vmstat import calculate_threshold

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
