"""allocsim.plotting: every figure function returns an Axes with the expected artists."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from allocsim import plotting  # noqa: E402
from allocsim.config import preset  # noqa: E402
from allocsim.mmzone import Zone  # noqa: E402
from allocsim.page_alloc import buffered_rmqueue  # noqa: E402
from allocsim.patches import Patches  # noqa: E402
from allocsim.sim import Simulation  # noqa: E402
from allocsim.vmstat import calculate_threshold  # noqa: E402
from allocsim.window import free_pcppages_bulk_window  # noqa: E402

SHORT = dict(duration_ms=1500)


@pytest.fixture(scope="module")
def off():
    return Simulation(preset("large", **SHORT)).run()


@pytest.fixture(scope="module")
def on():
    return Simulation(preset("large", patches=Patches.all(), **SHORT)).run()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labels(ax):
    return {line.get_label() for line in ax.get_lines()}


def test_plot_run_returns_axes_with_every_layer(off):
    """plot_run draws counter, snapshot, buddy and pcp lines, the watermarks and the title."""
    ax = plotting.plot_run(off)
    assert isinstance(ax, matplotlib.axes.Axes)
    labels = _labels(ax)
    for name in (
        "counter",
        "snapshot",
        "buddy",
        "pcp",
        "wmark_min",
        "wmark_low",
        "wmark_high",
        "direct_reclaim",
        "drain",
    ):
        assert plotting.LABELS[name] in labels
    p = ax._allocsim_plot.plotted()
    assert np.array_equal(p["counter"], off["counter"])
    assert np.array_equal(p["buddy"], off["buddy"])
    assert p["wmark_min"] == off.derived["wmark_min"]
    assert p["wmark_high"] == off.derived["wmark_high"]
    title = ax.get_title()
    assert "256 CPUs" in title and "4096 MiB" in title and "patches: none" in title
    assert "seed 1" in title
    assert ax.child_axes, "the MiB secondary axis is missing"
    assert ax.child_axes[0].get_ylabel() == "MiB"


def test_plot_run_uses_the_palette(off):
    """The watermark and series colours are the palette's, so every figure matches."""
    ax = plotting.plot_run(off)
    by_label = {line.get_label(): line for line in ax.get_lines()}
    for name in ("wmark_min", "wmark_low", "wmark_high", "counter", "buddy", "snapshot"):
        got = matplotlib.colors.to_hex(by_label[plotting.LABELS[name]].get_color())
        assert got == matplotlib.colors.to_hex(plotting.PALETTE[name])


def test_plot_run_envelope_spans_max_drift_below_the_counter(off):
    """The drift band runs from counter − CPUs × threshold (clipped at 0) up to the counter."""
    p = plotting.plot_run(off)._allocsim_plot.plotted()
    width = p["envelope_hi"] - p["envelope_lo"]
    assert np.array_equal(p["envelope_hi"], off["counter"])
    assert np.array_equal(width, np.minimum(off["counter"], off.derived["max_drift"]))


def test_plot_run_shades_livelock_and_kswapd_spans(off, on):
    """Livelock episodes and kswapd's balance_pgdat time appear as spans."""
    p_off = plotting.plot_run(off)._allocsim_plot.plotted()
    p_on = plotting.plot_run(on)._allocsim_plot.plotted()
    assert [(a, b) for a, b in p_off["livelock_spans"]] == [
        (e.start_ms, e.start_ms + e.length_ms) for e in off.episodes
    ]
    assert len(p_on["livelock_spans"]) == len(on.episodes)
    awake = int((off["kswapd_state"] == 2).sum())
    assert sum(b - a for a, b in p_off["kswapd_spans"]) == awake


def test_plot_run_drift_mark_only_when_set(off, on):
    """The drift-mark line shows only when patch 2 set percpu_drift_mark."""
    assert plotting.plot_run(off)._allocsim_plot.plotted()["drift_mark"] is None
    assert (
        plotting.plot_run(on)._allocsim_plot.plotted()["drift_mark"]
        == on.derived["percpu_drift_mark"]
    )


def test_plot_run_zoom_watermarks_limits_the_y_axis(off):
    """zoom="watermarks" shows 0 … about 3 × WMARK_HIGH."""
    ax = plotting.plot_run(off, zoom="watermarks", xlim=(0, 500))
    assert ax.get_ylim()[1] == pytest.approx(3 * off.derived["wmark_high"] * 1.12)
    assert ax.get_xlim() == (0, 500)


def test_run_plot_update_follows_a_partial_run():
    """RunPlot.update can follow a resumable Simulation chunk by chunk, and clear() empties it."""
    sim = Simulation(preset("small", duration_ms=400))
    fig, ax = plt.subplots()
    rp = plotting.RunPlot(ax, sim.config)
    sim.run(until=100)
    rp.update(sim.result())
    assert len(rp.plotted()["counter"]) == 100
    assert "t = 100 / 400 ms" in ax.get_title()
    sim.run()
    rp.update(sim.result())
    assert len(rp.plotted()["counter"]) == 400
    rp.clear(sim.config)
    assert len(rp.plotted()["counter"]) == 0


def test_plot_tasks_gives_shares_between_0_and_1(off):
    """plot_tasks draws the task, stuck and atomic-failure shares within [0, 1]."""
    ax = plotting.plot_tasks(off)
    p = ax._allocsim_plot.plotted()
    for name in ("task_ok", "tasks_stuck", "atomic_failed"):
        vals = p[name][~np.isnan(p[name])]
        assert len(vals) and vals.min() >= 0 and vals.max() <= 1.0 + 1e-9


def test_plot_compare_shares_the_y_range(off, on):
    """Side by side: one column per run, the same y range, the verdict in each title."""
    axes = plotting.plot_compare([off, on])
    assert axes.shape == (2, 2)
    assert axes[0, 0].get_ylim() == axes[0, 1].get_ylim()
    title = axes[0, 0].get_title()
    assert "LIVELOCK" in title or "stalled" in title or "no stall" in title
    assert "patches: all" in axes[0, 1].get_title()


def test_compare_off_on_runs_the_same_seed():
    """compare_off_on runs no patch and all patches on the same config and seed."""
    axes, (a, b) = plotting.compare_off_on(preset("small", duration_ms=300, seed=7), tasks=False)
    assert axes.shape == (1, 2)
    assert a.config.seed == b.config.seed == 7
    assert a.config.patches == Patches.none() and b.config.patches == Patches.all()


def test_plot_buddy_lists_bars_match_nr_free():
    """One bar per order, as tall as free_area[order].nr_free."""
    zone = Zone(1024, 1)
    zone.rmqueue(0)
    ax = plotting.plot_buddy_lists(zone)
    heights = [bar.get_height() for bar in ax.containers[0]]
    assert heights == zone.nr_free_by_order()
    assert "1023 pages free" in ax.get_title()


def test_plot_pcp_lists_bars_match_pcp_count():
    """One bar per CPU, as tall as its pcp count; the title compares counter, buddy and pcp."""
    zone = Zone(262144, 4, free_pages=4096)
    for cpu in range(4):
        buffered_rmqueue(zone, cpu)
    ax = plotting.plot_pcp_lists(zone)
    assert [bar.get_height() for bar in ax.containers[0]] == list(zone.pcp_count)
    assert f"on pcp lists {zone.pcp_pages()}" in ax.get_title()


def test_plot_threshold_vs_cpus_follows_the_formula():
    """Each step line is calculate_threshold over the CPU grid."""
    ax = plotting.plot_threshold_vs_cpus(zone_mibs=(1024,), mark=(64, 1024))
    line = ax.get_lines()[0]
    cpus = line.get_xdata()
    assert list(line.get_ydata()) == [calculate_threshold(1024 * 256, int(n)) for n in cpus]
    assert "1024 MiB zone" in _labels(ax)


def test_plot_threshold_vs_zone_follows_the_formula():
    """Each step line is calculate_threshold over zone sizes for one CPU count."""
    ax = plotting.plot_threshold_vs_zone(cpus_list=(64,))
    line = ax.get_lines()[0]
    assert list(line.get_ydata()) == [
        calculate_threshold(int(m) * 256, 64) for m in line.get_xdata()
    ]


def test_plot_drift_vs_gap_compares_drift_with_low_minus_min():
    """The drift line is CPUs × threshold; the gap line is low − min; 64 CPUs, 1 GiB is exposed."""
    ax = plotting.plot_drift_vs_gap(zone_mib=1024, cpus=[4, 64], mark=64)
    drift, gap = ax.get_lines()[:2]
    assert list(drift.get_ydata()) == [4 * 30, 64 * 70]
    assert list(gap.get_ydata()) == [256, 256]


def test_plot_gfp_levels_one_bar_per_context():
    """plot_gfp_levels draws one bar per GFP context from its failure level up: the deeper a
    context may go, the longer its bar."""
    from allocsim.teaching import gfp_contexts

    rows = gfp_contexts(preset("large"))
    ax = plotting.plot_gfp_levels(rows, wmarks=(2048, 2560, 3072))
    bars = list(ax.containers[0])
    assert [bar.get_x() for bar in bars] == [r["fails_at_or_below"] for r in rows]
    assert bars[0].get_x() == 2560 and bars[-1].get_x() == 0
    ends = {round(bar.get_x() + bar.get_width(), 6) for bar in bars}
    assert len(ends) == 1 and ends.pop() >= 3072  # every bar reaches the right edge
    widths = [bar.get_width() for bar in bars]
    assert widths[-1] == max(widths) and widths[0] == min(widths)


def test_plot_window_marks_the_lie_only_without_patch_1():
    """The window plot marks steps where the reader passes a check the truth fails, unpatched."""
    off = free_pcppages_bulk_window(Patches.none())
    on = free_pcppages_bulk_window(Patches(counter_after_free=True))
    axes = plotting.plot_window_compare(off, on)
    assert len(axes) == 2
    assert "reader passes a check the truth fails" in _labels(axes[0])
    assert "reader passes a check the truth fails" not in _labels(axes[1])
    counter_line = next(
        ln for ln in axes[0].get_lines() if ln.get_label() == plotting.LABELS["counter"]
    )
    assert list(counter_line.get_ydata()) == [s.counter for s in off]


def test_plot_zone_exposure_two_bars_per_zone():
    """plot_zone_exposure draws low − min and max drift for each populated zone."""
    from allocsim import zoneinfo
    from allocsim.teaching import BUNDLED_ZONEINFO, load_zoneinfo

    parsed, _ = load_zoneinfo(BUNDLED_ZONEINFO / "2.6.36-64cpu-thread.txt")
    report = zoneinfo.build_report(parsed)
    ax = plotting.plot_zone_exposure(report)
    populated = [z for z in report.zones if z.populated]
    assert len(ax.patches) == 2 * len(populated)


def test_figure_livelock_off_on_writes_a_png(tmp_path):
    """figure_livelock_off_on runs the large preset off and on and writes a PNG."""
    path = plotting.figure_livelock_off_on(
        seed=1, path=tmp_path / "f" / "livelock.png", config=preset("large", duration_ms=800)
    )
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plotting_import_leaves_matplotlib_settings_alone():
    """Importing allocsim.plotting changes neither rcParams nor the backend."""
    code = (
        "import sys, matplotlib\n"
        "raw = lambda: {k: repr(v) for k, v in dict.items(matplotlib.rcParams)}\n"
        "before = raw()\n"
        "import allocsim.plotting, allocsim.widgets, allocsim.teaching\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert raw() == before, 'rcParams changed'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
