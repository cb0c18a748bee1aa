"""allocsim.widgets: each demo driven in plain Python, asserting on plotted data and readouts."""

import subprocess
import sys
import time

import matplotlib

matplotlib.use("Agg", force=True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from allocsim import widgets as aw  # noqa: E402
from allocsim.config import SimConfig, preset  # noqa: E402
from allocsim.patches import Patches  # noqa: E402


def _gap_and_envelope(plotted):
    gap = plotted["counter"] - plotted["buddy"]
    width = plotted["envelope_hi"] - plotted["envelope_lo"]
    return int(gap.max()), int(width.max())


# ---------------------------------------------------------------------------------------------
# controls from metadata
# ---------------------------------------------------------------------------------------------


def test_controls_for_builds_each_control_from_field_metadata():
    """Labels, units, ranges and values come from SimConfig.parameters() metadata."""
    cfg = preset("large")
    meta = {f.name: f.metadata for f in SimConfig.parameters()}
    controls = aw.controls_for(
        [
            "cpus",
            "zone_mib",
            "stat_interval_ms",
            "writer_rate",
            "seed",
            "stat_threshold",
            "min_free_kbytes",
            "patches",
        ],
        cfg,
    )
    assert controls["cpus"].value == 256 and 1024 in controls["cpus"].options
    assert controls["cpus"].description == meta["cpus"]["label"]
    assert controls["zone_mib"].description == "zone size (MiB)"
    assert controls["stat_interval_ms"].value == cfg.stat_interval_ms
    assert controls["writer_rate"].value == cfg.writer_rate
    assert controls["seed"].max == meta["seed"]["range"][1]
    assert isinstance(controls["stat_threshold"], aw.OptionalInt)
    assert controls["stat_threshold"].value is None
    assert controls["stat_threshold"].auto.description == "kernel formula"
    for name in Patches.names():
        assert controls[name].value is False
    for name in ("cpus", "zone_mib", "stat_interval_ms", "writer_rate"):
        assert not controls[name].continuous_update


def test_controls_for_rejects_an_unknown_field():
    """An unknown parameter name is refused with its name in the message."""
    with pytest.raises(ValueError, match="no_such_field"):
        aw.controls_for(["no_such_field"])


def test_optional_int_switches_between_formula_and_value():
    """OptionalInt is None while 'kernel formula' is ticked and the number once unticked."""
    opt = aw.controls_for(["stat_threshold"])["stat_threshold"]
    seen = []
    opt.observe(lambda ch: seen.append(ch["new"]), names="value")
    opt.show_formula(98)
    assert opt.value is None and opt.number.value == 98 and opt.number.disabled
    opt.auto.value = False
    assert opt.value == 98 and not opt.number.disabled
    opt.number.value = 12
    opt.value = None
    assert seen == [98, 12, None]
    with pytest.raises(ValueError):
        opt.value = 1000


# ---------------------------------------------------------------------------------------------
# RunDemo
# ---------------------------------------------------------------------------------------------


def test_run_demo_cpu_slider_widens_envelope_and_counter_buddy_gap():
    """Moving CPUs from 4 to 1024 widens the drift envelope and the counter–buddy gap."""
    demo = aw.RunDemo("large", cpus=4, duration_ms=1200)
    demo.run_sync()
    gap4, env4 = _gap_and_envelope(demo.plotted())
    demo.controls["cpus"].value = 1024  # starts a new run (synchronously with Agg)
    assert demo.result.config.cpus == 1024
    gap1024, env1024 = _gap_and_envelope(demo.plotted())
    assert env4 <= 4 * 30 < env1024
    assert env1024 > 100 * env4
    assert gap1024 > gap4 + 1000
    assert demo.controls["zone_mib"].value == 16384  # the zone grows with the machine


def test_run_demo_patch_checkboxes_remove_the_livelock():
    """The large machine livelocks with the patches off and not with all three ticked: its
    stalled spans shrink to well under a second."""
    demo = aw.RunDemo("large")
    demo.run_sync()
    off = sum(b - a for a, b in demo.plotted()["livelock_spans"])
    assert off >= 1000, "no livelock with the patches off"
    assert "LIVELOCK" in demo.readout.value and "LIVELOCK" in demo.verdict.value
    demo.set(patches="all")
    assert demo.result.config.patches == Patches.all()
    assert not demo.result.livelocked
    assert sum(b - a for a, b in demo.plotted()["livelock_spans"]) <= off / 2
    assert "no livelock" in demo.readout.value and "no livelock" in demo.verdict.value


def test_run_demo_toggling_one_patch_reruns_with_it():
    """Ticking one patch checkbox re-runs with exactly that patch; drains appear with patch 3."""
    demo = aw.RunDemo("large", duration_ms=1500)
    demo.run_sync()
    assert len(demo.plotted()["drain_t"]) == 0
    demo.controls["drain_after_reclaim"].value = True
    assert demo.result.config.patches == Patches(drain_after_reclaim=True)
    assert len(demo.plotted()["drain_t"]) > 0


def test_run_demo_readout_says_static_mode_only_where_a_learner_sees_it(monkeypatch):
    """Interactive without ipympl the readout says the figure is static; headless it does not."""
    demo = aw.RunDemo("large", autorun=False)
    assert "Static figure" not in demo.readout.value
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.delenv(aw.STATIC_ENV, raising=False)
    demo.reset()
    assert "Static figure" in demo.readout.value


def test_run_demo_readout_shows_the_derived_numbers():
    """The readout always shows threshold, max drift vs low − min, drift mark, watermarks, pcp."""
    demo = aw.RunDemo("large", autorun=False)
    d = demo.config().derived()
    text = demo.readout.value
    assert f"{d.stat_threshold} pages per CPU (kernel formula)" in text
    assert f"{d.max_drift:,} pages vs {d.tolerate_drift:,}" in text
    assert f"2.6.36 would set {d.drift_mark_if_patched:,}" in text
    assert f"{d.wmark_min:,} / {d.wmark_low:,} / {d.wmark_high:,} pages" in text
    assert f"{d.pcp_high} / {d.pcp_batch} per CPU" in text
    assert "ready" in text
    assert "Static figure" not in text  # headless (pytest): nothing to act on, so not said
    assert "ready: press Run" in demo.verdict.value
    demo.controls["drift_mark_snapshot"].value = True
    assert (
        f"{d.drift_mark_if_patched:,} pages = high + max drift (patch 2 on)" in demo.readout.value
    )


def test_run_demo_fixed_threshold_narrows_the_envelope():
    """Unticking 'kernel formula' and fixing stat_threshold to 1 shrinks the envelope to CPUs."""
    demo = aw.RunDemo("large", duration_ms=600)
    demo.controls["stat_threshold"].value = 1
    assert demo.result.config.stat_threshold == 1
    assert "1 pages per CPU (fixed by you)" in demo.readout.value
    assert _gap_and_envelope(demo.plotted())[1] <= 256


def test_run_demo_invalid_settings_land_in_the_error_output():
    """A rejected config shows its message in the errors Output and keeps the last run."""
    demo = aw.RunDemo("large", duration_ms=300)
    demo.run_sync()
    before = demo.result
    demo.controls["pcp_batch"].value = 31
    demo.controls["pcp_high"].value = 5
    assert isinstance(demo.last_error, ValueError)
    text = "".join(o["text"] for o in demo.errors.outputs)
    assert "pcp_high" in text
    assert "Not applied" in demo.readout.value
    assert demo.result.config.pcp_high != 5 and demo.result is not before


def test_run_demo_callback_exceptions_land_in_the_error_output(monkeypatch):
    """An unexpected exception in a callback is shown with its traceback, not swallowed."""
    demo = aw.RunDemo("large", duration_ms=300, autorun=False)

    def boom():
        raise RuntimeError("kaboom")

    monkeypatch.setattr(demo, "configs", boom)
    demo.controls["seed"].value = 2
    text = "".join(o["text"] for o in demo.errors.outputs)
    assert "RuntimeError: kaboom" in text and "Traceback" in text


def test_run_demo_threaded_run_pause_reset(monkeypatch):
    """In a background thread: a first frame comes, Pause stops, Run resumes, Reset rebuilds."""
    # The Python engine: the run must last long enough to pause it (the compiled engine
    # finishes these 3 s in well under the 0.3 s the test waits before Pause).
    monkeypatch.setenv("ALLOCSIM_ENGINE", "python")
    demo = aw.RunDemo("large", threaded=True, autorun=False, duration_ms=3000)
    t0 = time.perf_counter()
    demo.buttons["run"].click()
    while demo.stats.get("frames", 0) < 1:
        assert time.perf_counter() - t0 < 10, "no first frame"
        time.sleep(0.002)
    assert len(demo.plotted()["counter"]) == demo.first_chunk_ms
    time.sleep(0.3)
    demo.buttons["pause"].click()
    assert not demo.running
    t_paused = demo.sims[0].t
    assert 0 < t_paused < 3000
    time.sleep(0.2)
    assert demo.sims[0].t == t_paused
    assert "paused" in demo.readout.value
    demo.buttons["run"].click()
    time.sleep(0.15)
    demo.buttons["reset"].click()
    assert not demo.running and demo.sims[0].t == 0
    assert len(demo.plotted()["counter"]) == 0
    demo.buttons["run"].click()
    result = demo.wait(30)
    assert demo.finished and result.simulated_ms == 3000
    assert len(demo.plotted()["counter"]) == 3000
    assert "finished" in demo.readout.value


def test_run_demo_threaded_control_change_starts_a_new_run():
    """Changing a control while a run goes on stops it and starts over with the new setting."""
    demo = aw.RunDemo("large", threaded=True, duration_ms=2000)
    demo.run()
    time.sleep(0.1)
    demo.controls["seed"].value = 5
    result = demo.wait(30)
    assert result.config.seed == 5 and result.simulated_ms == 2000


def test_run_demo_default_live_run_shows_frames_and_finishes():
    """The default livelock demo (large preset) runs in the background, frame by frame, to its
    end (its speed is measured by benchmarks/bench.py, not asserted here)."""
    demo = aw.RunDemo("large", threaded=True)
    demo.run()
    demo.wait(60)
    assert demo.finished
    assert demo.stats["frames"] >= 2
    assert demo.result.simulated_ms == demo.result.config.duration_ms


# ---------------------------------------------------------------------------------------------
# CompareDemo and the demos without simulation
# ---------------------------------------------------------------------------------------------


def test_compare_demo_runs_off_and_on_with_the_same_seed():
    """Left without patches, right with the ticked ones; same seed; shared y range."""
    demo = aw.CompareDemo("large", duration_ms=1500)
    demo.run_sync()
    off, on = demo.result
    assert off.config.seed == on.config.seed
    assert off.config.patches == Patches.none() and on.config.patches == Patches.all()
    p = demo.plotted()
    assert set(p) == {"off", "on"}
    assert np.array_equal(p["off"]["counter"], off["counter"])
    assert demo.plots[0].ax.get_ylim() == demo.plots[1].ax.get_ylim()
    demo.controls["drift_mark_snapshot"].value = False
    assert demo.result[1].config.patches == Patches(
        counter_after_free=True, drain_after_reclaim=True
    )
    assert demo.result[0].config.patches == Patches.none()


def test_window_stepper_moves_the_cursor_and_explains_the_step():
    """The step slider moves the cursor and the readout says what the reader saw."""
    demo = aw.WindowStepper()
    demo.controls["step"].value = 3
    assert demo.plotted()["cursor"] == 3.5
    assert "passes on pages that are not there" in demo.readout.value
    step = demo.steps["off"][3]
    assert f"counter {step.counter}, buddy lists {step.buddy}" in demo.readout.value


def test_buddy_demo_splits_and_merges():
    """Allocating order 0 from a whole zone splits one block per order; freeing merges back."""
    demo = aw.BuddyDemo(1024)
    demo.controls["order"].value = 0
    demo.buttons["alloc"].click()
    assert demo.plotted()["nr_free"] == [1] * 10 + [0]
    assert "split an order-10 block" in demo.readout.value
    demo.buttons["free"].click()
    assert demo.plotted()["nr_free"] == [0] * 10 + [1]
    assert "merged" in demo.readout.value


def test_threshold_explorer_follows_its_controls():
    """The dot and the bars follow the CPU and zone controls."""
    demo = aw.ThresholdExplorer()
    demo.controls["zone_mib"].value = 16384
    demo.controls["cpus"].value = 64
    p = demo.plotted()
    assert p["cpus"] == 64 and p["threshold"] == 125
    assert p["max_drift"] == 64 * 125
    demo.controls["stat_threshold"].value = 10
    assert demo.plotted()["max_drift"] == 640


def test_live_check_updates_its_line():
    """LiveCheck's slider changes the plotted curve."""
    demo = aw.LiveCheck()
    demo.controls["k"].value = 3
    assert np.allclose(demo.plotted()["y"], np.sin(3 * demo.x))


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def test_ask_checks_numbers_and_text():
    """Question.check accepts the answer (numbers with commas, text in any case)."""
    q = aw.ask("drift mark?", 8433)
    assert q.check("8,433") and q.check(" 8433 ") and not q.check("8432")
    assert not q.check("lots")
    assert aw.ask("yes or no?", "yes").check("YES")
    assert aw.ask("ratio?", 0.5, tolerance=0.01).check("0.505")


def test_use_live_plots_outside_ipython_changes_nothing():
    """Outside IPython use_live_plots leaves matplotlib alone and says so."""
    before = matplotlib.get_backend()
    assert aw.use_live_plots() == "script"
    assert matplotlib.get_backend() == before


def test_environment_report_never_imports_ipympl():
    """The environment check does not import ipympl (which would switch the backend)."""
    code = (
        "import sys; import allocsim.widgets as aw; rows = aw.environment_report(); "
        "assert 'ipympl' not in sys.modules; "
        "assert any(r['check'] == 'ipympl' for r in rows)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# learner checks from the package
# ---------------------------------------------------------------------------------------------


def test_ask_accepts_numbers_with_units_and_separators():
    """'1000 ms', '1,000', '1 000', '1 s' are all 1000 ms; another unit is refused with a note."""
    from allocsim.sim import Simulation

    result = Simulation(preset("small", duration_ms=1000)).run()
    q = aw.ask("00-simulated-ms", result=result)
    for typed in ("1000 ms", "1,000", "1 000", "1000ms", "1_000", "1 s", " 1000. "):
        assert q.check(typed), typed
    assert not q.check("1000 pages") and "ms" in q.note
    assert not q.check("999 ms")


def test_ask_accepts_lists_with_any_spacing():
    """min/low/high is read whatever separates the numbers, and needs all three."""
    q = aw.ask("04-wmarks-5765")
    for typed in ("1441/1801/2161", "1441 / 1801 / 2161", "1,441, 1,801, 2,161", "1441 1801 2161"):
        assert q.check(typed), typed
    assert not q.check("1441 / 1801") and "3 numbers" in q.note
    assert not q.check("1441 / 1801 / 2160")


def test_ask_takes_commit_ids_and_patch_numbers_as_synonyms():
    """A patch may be named by switch name, commit id (short or long) or 'patch N'."""
    q = aw.Question("which patch?", frozenset({"drain_after_reclaim"}))
    for typed in ("patch 3", "9ee493c", "9EE493C", "drain_after_reclaim", "3", "p3", "9ee493c5b"):
        assert q.check(typed), typed
    assert not q.check("patch 1") and not q.check("none")
    assert aw.Question("which?", frozenset()).check("none")
    both = aw.Question("which?", frozenset({"counter_after_free", "drain_after_reclaim"}))
    assert both.check("patches 1 and 3") and both.check("72853e2, 9ee493c")


def test_ask_enter_submits_and_marks_need_no_emoji_font():
    """Pressing Enter (the box's value arriving) checks the answer; marks are text glyphs."""
    q = aw.ask("02-batch-64m")
    q.widget()
    q.controls["answer"].value = "4"  # what the browser sends when Enter is pressed
    assert q.feedback is False and "Not quite" in q._shown_answer.value
    q.controls["answer"].value = "3 pages"
    assert q.feedback is True and "Right" in q._shown_answer.value
    for text in (q._feedback_html(True), q._feedback_html(False)):
        assert all(ord(ch) < 0x2700 or ch in "✓✗" for ch in text), text  # no emoji block


def test_ask_names_a_missing_value_or_an_unknown_check():
    """A check asked without the value it needs, or an unknown key, fails in one line."""
    with pytest.raises(ValueError, match="result="):
        aw.ask("00-simulated-ms")
    with pytest.raises(ValueError, match="no learner check named"):
        aw.ask("99-nothing")


def test_ask_with_a_demo_waits_for_its_first_run():
    """A check on the demo's run appears when the run has finished, pinned to that first run."""
    demo = aw.RunDemo("large", autorun=False, duration_ms=1500)
    q = aw.ask("05-min-check-at-onset", demo=demo)
    assert not q.ready and not q.check("yes") and "wait" in q.note
    demo._followers.append(q)  # what showing the question does
    demo.run_sync()
    assert q.ready and q not in demo._followers
    onset = demo.result.episodes[0].onset if demo.result.episodes else None
    assert onset is not None and q.check("yes") == (
        onset["counter"] > demo.result.derived["wmark_min"]
    )
    assert str(onset["counter"]) in q.question.replace(",", "")


def test_answer_key_comes_from_the_same_checks():
    """The facilitators' key lists every asked check with its answer and the reason."""
    from allocsim.widgets import questions

    keys = ["01-buddyinfo-pages", "03-drift-mark-64", "07-drift-mark-set"]
    rows = questions.answer_key(keys)
    assert [r["key"] for r in rows] == keys
    assert rows[0]["answer"] == "26 pages" and rows[1]["answer"] == "8,433 pages"
    assert rows[2]["answer"] == "yes" and "2010" in rows[2]["depends on"]
    page = questions.answer_key_html(rows)
    assert "<title>" in page and "8,433 pages" in page and "Notebook 07" in page


# ---------------------------------------------------------------------------------------------
# the demo's lecture face: scenes, big fonts, follow, later, saved pictures
# ---------------------------------------------------------------------------------------------


def test_scene_sets_every_control_in_one_step():
    """A scene sets CPUs and patches, puts other controls back, and restarts once."""
    demo = aw.livelock_demo(duration_ms=600)
    demo.controls["seed"].value = 7
    starts = []
    demo.restart = lambda: starts.append(demo.config())
    demo.scene("256 CPUs, patch 3 only")
    assert len(starts) == 1
    cfg = starts[0]
    assert cfg.cpus == 256 and cfg.patches == Patches(drain_after_reclaim=True)
    assert cfg.seed == 1  # back to the demo's starting value
    demo.scene_picker.value = "small machine: 4 CPUs, no patches"
    assert demo.controls["cpus"].value == 4 and demo.patches() == Patches.none()
    assert demo.scene_picker.value == "choose a scene…"  # ready to pick again
    with pytest.raises(ValueError, match="scene must be one of"):
        demo.scene("no such scene")


def test_exact_counter_scene_runs_the_yardstick_machine():
    """The exact-counter scene sets stat_threshold 0 on the same machine and seed, and the next
    scene puts the kernel's threshold back."""
    demo = aw.livelock_demo(duration_ms=600)
    starts = []
    demo.restart = lambda: starts.append(demo.config())
    demo.scene("256 CPUs, exact counters (the yardstick)")
    cfg = starts[-1]
    assert cfg.stat_threshold == 0 and cfg.cpus == 256 and cfg.patches == Patches.none()
    assert "exact counters" in " ".join(cfg.counterfactual_reasons())
    demo.scene("256 CPUs, all three patches")
    assert starts[-1].stat_threshold is None and starts[-1].patches == Patches.all()


def test_big_scales_the_fonts_and_rebuilds_the_demo_figure():
    """aw.big() enlarges matplotlib's fonts, the demo's figure keeps its run; off restores."""
    demo = aw.RunDemo("large", duration_ms=600)
    base = matplotlib.rcParams["font.size"]
    before = demo.plotted()["counter"].copy()
    try:
        demo.big_switch.value = True
        assert matplotlib.rcParams["font.size"] == pytest.approx(base * aw.host.BIG_FONT_SCALE)
        title = demo.plot.ax.title.get_fontsize()
        assert np.array_equal(demo.plotted()["counter"], before)
    finally:
        aw.big(False)
    assert matplotlib.rcParams["font.size"] == pytest.approx(base)
    assert demo.plot.ax.title.get_fontsize() < title and demo.big_switch.value is False


def test_follow_shows_a_view_of_each_finished_run():
    """demo.follow(fn) calls fn with each finished run's result, including re-runs."""
    demo = aw.RunDemo("large", duration_ms=600, autorun=False)
    seen = []
    follower = demo.follow(lambda r: seen.append(r.config.patches.label()) or "text")
    demo.run_sync()
    demo.set(patches="all")  # autorun is off: the new run starts with run_sync
    demo.run_sync()
    assert seen == ["none", "all"] and follower.shown == "text"


def test_later_computes_after_the_demo_without_holding_the_caller():
    """aw.later runs its function once the demo's run is over, in the background when live."""
    demo = aw.RunDemo("large", threaded=True, autorun=False, duration_ms=1500)
    job = aw.later(lambda: demo.result.config.cpus if demo.finished else None, after=demo)
    job.after[0].run()
    job.handle = None
    import threading

    job.thread = threading.Thread(target=job._work, daemon=True)
    job.thread.start()
    assert job.wait(60) == demo.config().cpus


def test_live_layout_puts_switches_verdict_and_figure_together():
    """Live, the view is: switches and buttons, the one-line verdict, the figure; the
    machine controls and the detailed readout fold away under it."""
    demo = aw.livelock_demo(autorun=False)
    top, verdict, canvas, more, _errors = demo._live_children()
    names = {
        c.description for row in top.children for c in row.children if hasattr(c, "description")
    }
    assert {"Run", "Pause", "Reset", "big", "scene"} <= names
    assert any("drain_after_reclaim" in n for n in names)
    assert verdict is demo.verdict and "ready: press Run" in verdict.value
    assert canvas is demo.fig.canvas
    machine, details = more.children
    assert machine.selected_index is None and details.selected_index is None  # folded
    assert details.children == (demo.readout,)
    assert demo.controls["cpus"] in machine.children[0].children[0].children
    assert demo.fig.get_size_inches()[1] * demo.fig.dpi <= 500  # leaves room on 1280 × 720


def test_still_copy_of_the_figure_is_a_png_hidden_while_live():
    """The saved-output copy holds the figure as PNG, and the live view's CSS hides it."""
    demo = aw.RunDemo("large", duration_ms=300)
    bundle = demo._static_bundle()
    assert bundle["image/png"] and demo._static_class in bundle["text/html"]
    import base64

    assert base64.b64decode(bundle["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert f".{demo._static_class} {{display: none}}" in demo._hide_static_style().value


def test_figure_legends_stay_inside_the_figure():
    """Every legend of the demo figures lies within the figure's bounds (none cut off)."""
    for demo in (aw.RunDemo("large", duration_ms=300), aw.CompareDemo("large", duration_ms=300)):
        fig = demo.fig
        renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
        renderer = renderer or fig._get_renderer()
        fig.draw_without_rendering()
        for leg in fig.legends:
            box = leg.get_window_extent(renderer)
            assert box.x0 >= -1 and box.x1 <= fig.bbox.width + 1, (type(demo).__name__, box)
