"""Live frames that keep up: blitting onto a kept background, a fixed y range, no empty frame
on a restart, and at most one frame in flight (counts, not timings)."""

import threading

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import allocsim.widgets as aw  # noqa: E402
from allocsim.config import preset  # noqa: E402
from allocsim.plotting import RunPlot, config_y_top  # noqa: E402
from allocsim.sim import Simulation  # noqa: E402
from allocsim.widgets.host import FramePump  # noqa: E402

SHORT = 600  # simulated ms per run: enough for several chunks, quick on either engine


def _live_demo(**kw):
    """A live, threaded livelock demo on the Agg canvas (which blits like ipympl's)."""
    kw.setdefault("duration_ms", SHORT)
    kw.setdefault("autorun", True)
    return aw.livelock_demo(live=True, threaded=True, **kw)


class _Paints:
    """Counts what reaches the canvas: full draws, blits, and the counter points each shows."""

    def __init__(self, demo):
        self.demo = demo
        self.draws = 0
        self.blits = 0
        self.shown = []  # points of the counter line in each painted frame
        canvas = demo.fig.canvas
        draw, blit = canvas.draw, canvas.blit

        def counted_draw(*a, **k):
            self.draws += 1
            self.shown.append(len(demo.plot.lines["counter"].get_xdata()))
            return draw(*a, **k)

        def counted_blit(*a, **k):
            self.blits += 1
            self.shown.append(len(demo.plot.lines["counter"].get_xdata()))
            return blit(*a, **k)

        canvas.draw = counted_draw
        canvas.blit = counted_blit


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_frame_pump_drops_frames_offered_while_one_is_drawn():
    """Offers made while a frame is drawn return at once; only the newest is drawn next."""
    drawing, release = threading.Event(), threading.Event()
    drawn = []

    def render(item):
        drawn.append(item)
        if item == 1:
            drawing.set()
            assert release.wait(30), "the pump was never released"

    pump = FramePump(render)
    pump.offer(1)
    assert drawing.wait(30)
    for item in (2, 3, 4):
        pump.offer(item)  # would deadlock here if an offer waited for the draw in flight
    assert pump.busy
    release.set()
    assert pump.wait(30)
    assert drawn == [1, 4]
    assert (pump.offered, pump.rendered, pump.dropped) == (4, 2, 2)


def test_live_demo_blits_every_frame_of_a_run_on_one_background():
    """Over a whole run of the same machine, no frame redraws the figure: each is a blit, and
    a new seed redraws only the title on the kept background."""
    demo = _live_demo()
    demo.run()
    demo.wait(60)
    assert demo.blit, "the Agg canvas can blit"
    paints = _Paints(demo)
    before = dict(demo.paints)
    demo.controls["seed"].value = 2  # same machine, same background but for the title
    demo.wait(60)
    assert demo.finished and demo.result.config.seed == 2
    assert paints.draws == 0
    assert paints.blits == demo.stats["frames"] >= 2
    assert demo.paints["background"] == before["background"]
    assert demo.paints["title"] == before["title"] + 1
    assert "seed 2" in demo.plot.ax.get_title()


def test_live_demo_restart_draws_no_empty_frame():
    """After a control change the first frame on the canvas already shows the new run, and a
    new y range costs one new background, not one per frame."""
    demo = _live_demo()
    demo.run()
    demo.wait(60)
    paints = _Paints(demo)
    before = dict(demo.paints)
    demo.controls["cpus"].value = 128  # a new zone size: another y range and title
    demo.wait(60)
    assert demo.result.config.cpus == 128
    assert paints.shown and min(paints.shown) > 0, paints.shown
    new_backgrounds = (
        demo.paints["full"] - before["full"] + demo.paints["background"] - before["background"]
    )
    assert new_backgrounds == 1  # made before the run started, then every frame is a blit
    assert paints.draws == 0
    assert demo.paints["blit"] - before["blit"] == demo.stats["frames"] == paints.blits


def test_live_demo_says_finished_with_its_last_frame():
    """The readout says "finished" (with the verdict) only once the run's last frame has been
    painted: while that frame is still being drawn, the readout does not run ahead of it."""
    demo = _live_demo(autorun=False)
    drawing_last, release = threading.Event(), threading.Event()
    render = demo._pump._render

    def held_last_frame(item):
        if item[2]:  # the run's last frame
            drawing_last.set()
            assert release.wait(30), "the last frame was never released"
        render(item)

    demo._pump._render = held_last_frame
    demo.run()
    assert drawing_last.wait(60), "the run never offered its last frame"
    assert demo.finished
    assert "finished" not in demo.verdict.value and "livelock" not in demo.verdict.value.lower()
    release.set()
    demo.wait(60)
    assert "finished" in demo.verdict.value and "livelock" in demo.verdict.value.lower()


_FULL_FRAMES = """
import matplotlib
matplotlib.use("module://ipympl.backend_nbagg")
import allocsim.widgets as aw

demo = aw.livelock_demo(live=True, threaded=True, duration_ms=400, autorun=False)
canvas = demo.fig.canvas
assert demo.blit, "ipympl's canvas is blitted on"
demo._static_bundle()  # show() renders the saved copy; the live canvas has drawn nothing yet
hows, paint = [], demo._paint
demo._paint = lambda: hows.append(paint()) or hows[-1]
modes, send = [], canvas.get_diff_image

def spied():
    png = send()
    if png is not None:
        modes.append(canvas._current_image_mode)
    return png

canvas.get_diff_image = spied
demo.run()
demo.wait(60)
assert hows and set(hows) == {"blit"}, hows  # the first run's first frame too
canvas.manager.handle_json({"type": "draw"})  # the browser asks for a picture
demo.controls["cpus"].value = 64
demo.wait(60)
canvas.manager.handle_json({"type": "draw"})
assert demo.paints["blit"] >= 2 and len(modes) >= 4, (demo.paints, modes)
assert set(modes) == {"full"}, modes
"""


def test_ipympl_canvas_sends_only_whole_frames_and_blits_the_first_run():
    """Every picture the live canvas sends the browser is a whole frame: the run's blits and
    the full draws the browser asks for alike. (A diff frame is painted over what the browser
    shows; if the frame before it was dropped while it loaded, the pixels it leaves out would
    stay stale for good. A browser draw after blits used to send one.) And the first run of a
    demo just shown blits its first frame on a background made beside its first chunk (it
    used to be a full draw with the layout: 0.6 s, and 2.5 s beside the Python engine)."""
    import subprocess  # ipympl (a dependency) in a process of its own: it swaps backends
    import sys

    subprocess.run([sys.executable, "-c", _FULL_FRAMES], check=True, timeout=300)


def test_live_demo_cpu_slider_needs_no_new_layout():
    """The layout is made once for the CPU slider's widest y range: going to its largest and
    smallest machine redraws only the memory picture's row, the tick labels stay inside the
    figure and clear of the axis labels kept in place, and a resize lays out again."""
    demo = _live_demo(duration_ms=100)
    demo.run()
    demo.wait(60)
    assert demo._frozen is not None and demo._pinned
    before = dict(demo.paints)
    cpus = demo.controls["cpus"]
    renderer = demo.fig.canvas.get_renderer()
    for value in (max(cpus.options), min(cpus.options)):
        cpus.value = value
        demo.wait(60)
        assert demo.result.config.cpus == value
        assert demo.paints["full"] == before["full"], f"a full draw at {value} CPUs"
        fig_box = demo.fig.bbox
        for ax in [demo.plot.ax, *demo.plot.ax.child_axes]:
            label = ax.yaxis.label.get_window_extent(renderer)
            for tick in ax.yaxis.get_ticklabels():
                box = tick.get_window_extent(renderer)
                if not tick.get_text() or not ax.bbox.y0 <= box.y0 <= ax.bbox.y1:
                    continue  # a tick outside the view is not drawn
                assert fig_box.x0 <= box.x0 and box.x1 <= fig_box.x1, (value, tick.get_text())
                assert not box.overlaps(label), (value, tick.get_text())
    assert demo.paints["background"] == before["background"] + 2
    demo.fig.set_size_inches(7.0, 4.0)  # the learner drags the corner
    demo.controls["seed"].value += 1
    demo.wait(60)
    assert demo.paints["full"] == before["full"] + 1
    assert demo._frozen is not None and tuple(demo._frozen[1]) == (7.0, 4.0)
    gap = demo.plot.ax.bbox.x0 - demo.plot.ax.yaxis.label.get_window_extent(renderer).x1
    demo.fig.set_dpi(2 * demo.fig.dpi)  # ipympl on a HiDPI screen: the labels are placed again
    demo.controls["seed"].value += 1
    demo.wait(60)
    assert demo.paints["full"] == before["full"] + 2
    renderer = demo.fig.canvas.get_renderer()
    new_gap = demo.plot.ax.bbox.x0 - demo.plot.ax.yaxis.label.get_window_extent(renderer).x1
    assert new_gap == pytest.approx(2 * gap, rel=0.1)


def test_live_demo_coalesces_frames_while_one_is_drawn():
    """While a frame is held on its way, the run goes on to its end; the chunks that ended
    meanwhile are not drawn one by one, and the last frame shows the whole run."""
    demo = _live_demo(autorun=False)
    held, release = threading.Event(), threading.Event()

    def slow_frame(_t_ms):
        if not held.is_set():
            held.set()
            release.wait(60)

    demo.on_frame(slow_frame)
    demo.run()
    assert held.wait(60), "no first frame"
    demo._thread.join(60)  # the simulation finishes although its first frame is still held
    assert not demo._thread.is_alive() and demo.finished
    assert demo.stats["frames"] == 1  # only the held frame has been drawn so far
    release.set()
    demo.wait(60)
    stats = demo.stats
    assert demo._pump.dropped >= 1
    assert stats["frames"] < stats["chunks"] + 1  # chunks, plus the final frame
    assert len(demo.plotted()["counter"]) == SHORT


def test_live_demo_y_range_is_fixed_from_the_config_before_data():
    """Before the first chunk the y axis already spans the config's range; the run keeps it."""
    demo = _live_demo(autorun=False)
    cfg = demo.config()
    expected = (0.0, config_y_top(cfg) * 1.12)
    assert len(demo.plotted()["counter"]) == 0
    assert demo.plot.ax.get_ylim() == pytest.approx(expected)
    demo.run()
    demo.wait(60)
    assert demo.plot.ax.get_ylim() == pytest.approx(expected)
    assert demo.plotted()["counter"].max() <= expected[1]


def test_run_plot_config_range_grows_only_when_data_leave_it():
    """yrange="config" ignores the data while they fit, and grows once they do not."""
    sim = Simulation(preset("small", duration_ms=200))
    fig, ax = plt.subplots()
    rp = RunPlot(ax, sim.config, yrange="config")
    fixed = ax.get_ylim()
    assert fixed[1] == pytest.approx(config_y_top(sim.config) * 1.12)
    sim.run(until=100)
    rp.update(sim.result())
    assert ax.get_ylim() == fixed
    result = sim.result()
    result.series["counter"] = np.full_like(result.series["counter"], int(2 * fixed[1]))
    rp.update(result)
    assert ax.get_ylim()[1] >= 2 * fixed[1]
