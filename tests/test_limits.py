"""Issue 15: every input gets a one-line error or the right answer, never a deep traceback.

Settings (cross-field limits, numpy values), ``Simulation.run``'s arguments and the size of its
record, the command line's ``run`` path, and the low-level page functions (a double free is the
kernel's ``bad_page()``).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import allocsim.page_alloc as page_alloc
from allocsim import __main__ as cli
from allocsim.budget import (
    COMPILED_CPU_TICK_NS,
    COMPILED_TICK_US,
    CPU_TICK_NS,
    MAX_SERIES_BYTES,
    SERIES_BYTES_PER_TICK,
    TICK_US,
    check_series_memory,
    estimate_seconds,
    max_recorded_ms,
)
from allocsim.config import SimConfig, preset
from allocsim.errors import BadPageError, max_min_free_kbytes
from allocsim.mmzone import CountingZone, Zone
from allocsim.page_alloc import setup_per_zone_wmarks
from allocsim.patches import Patches
from allocsim.sim import Simulation


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "allocsim", *args], capture_output=True, text=True, timeout=120
    )


# ---------------------------------------------------------------------------------------------
# SimConfig: numpy values and cross-field limits
# ---------------------------------------------------------------------------------------------


def test_simconfig_converts_numpy_integers_to_int():
    """numpy integers (int64 CPUs, a uint64 seed) are stored as int, so to_dict() is JSON."""
    cfg = SimConfig.preset("large", cpus=np.int64(64), seed=np.uint64(7))
    assert type(cfg.cpus) is int and type(cfg.seed) is int
    assert json.loads(json.dumps(cfg.to_dict()))["cpus"] == 64


def test_simconfig_converts_numpy_floats_to_float():
    """A numpy float rate is stored as a plain float."""
    cfg = SimConfig.preset("small", writer_rate=np.float32(2.0))
    assert type(cfg.writer_rate) is float


def test_simconfig_names_min_free_kbytes_too_large_for_the_zone():
    """A min_free_kbytes whose high watermark exceeds zone_mib names both fields and the limit."""
    with pytest.raises(ValueError, match=r"min_free_kbytes must be at most 43695 for zone_mib 64"):
        SimConfig(zone_mib=64, min_free_kbytes=65536)


def test_max_min_free_kbytes_is_the_largest_value_that_fits():
    """max_min_free_kbytes(n) fits a zone of n pages and one KiB more does not."""
    for present in (16384, 16385, 16386, 262144, 1 << 26):
        mfk = max_min_free_kbytes(present)
        assert setup_per_zone_wmarks(mfk, [present])[0][2] <= present
        assert setup_per_zone_wmarks(mfk + 1, [present])[0][2] > present


def test_simconfig_accepts_pcp_high_zero_as_the_message_says():
    """pcp_high 0 with pcp_batch 1 (the kernel's DMA zone) is accepted and runs."""
    cfg = SimConfig.preset("small", pcp_high=0, pcp_batch=1, duration_ms=50)
    result = Simulation(cfg).run()
    assert result.simulated_ms == 50


def test_simconfig_rejects_pcp_high_below_the_batch_in_effect():
    """pcp_high below the zone's own batch (pcp_batch not set) is named with that batch."""
    with pytest.raises(ValueError, match=r"pcp_high must be 0 or >= the zone's pcp batch \(31\)"):
        SimConfig.preset("small", pcp_high=5)
    with pytest.raises(ValueError, match=r"pcp_high must be 0 or >= pcp_batch \(8\), got 4"):
        SimConfig.preset("small", pcp_high=4, pcp_batch=8)


def test_preset_rejects_a_name_that_is_not_a_string():
    """preset(['large']) is a TypeError naming preset, not 'unhashable type'."""
    with pytest.raises(TypeError, match=r"preset must be a preset name .*\['large'\] \(list\)"):
        SimConfig.preset(["large"])


def _field_strategy(f):
    lo, hi = f.metadata["range"]
    if f.metadata["integer"]:
        s = st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi]))
    else:
        s = st.one_of(st.floats(lo, hi), st.sampled_from([float(lo), float(hi)]))
    return st.one_of(st.none(), s) if f.metadata["optional"] else s


_FIELDS = {f.name: _field_strategy(f) for f in fields(SimConfig) if "range" in f.metadata}
_FIELDS["duration_ms"] = st.integers(1, 30)  # every range, but short runs (see below)
_FIELDS["patches"] = st.sampled_from([Patches.parse("none"), Patches.parse("all")])
if "counterfactual" in {f.name for f in fields(SimConfig)}:
    # stat_interval_ms is whole seconds unless counterfactual: draw both kinds of machine
    _FIELDS["counterfactual"] = st.booleans()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(st.fixed_dictionaries(_FIELDS))
def test_simulation_runs_everything_simconfig_accepts(values):
    """Any settings SimConfig accepts (each field anywhere in its range) build and run."""
    # At most about 16k CPU-ticks per example (4 ms at 4096 CPUs): short, whatever the machine.
    values["duration_ms"] = max(1, min(values["duration_ms"], 16384 // values["cpus"]))
    try:
        cfg = SimConfig(**values)
    except ValueError as exc:
        assert "\n" not in str(exc)  # a rejection is one line naming the field
        assume(False)
    sim = Simulation(cfg)
    result = sim.run()
    assert result.simulated_ms == cfg.duration_ms
    sim.check_invariants()


# ---------------------------------------------------------------------------------------------
# Simulation.run: arguments and the size of the record
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sim():
    return Simulation(SimConfig.preset("small", duration_ms=20))


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        (dict(progress=print, progress_every=0), ValueError, r"progress_every must be in \[1"),
        (dict(progress_every=2.5), TypeError, "progress_every must be an integer"),
        (dict(wall_budget_s="x"), TypeError, "wall_budget_s must be a number"),
        (dict(wall_budget_s=0), ValueError, "wall_budget_s must be > 0"),
        (dict(wall_budget_s=float("nan")), ValueError, "wall_budget_s must be a number"),
        (dict(progress=5), TypeError, "progress must be callable"),
    ],
)
def test_run_rejects_bad_arguments_naming_them(tiny_sim, kwargs, exc, pattern):
    """run()'s optional arguments are checked and named (no ZeroDivisionError, no '>' error)."""
    with pytest.raises(exc, match=pattern):
        tiny_sim.run(**kwargs)


def test_run_refuses_a_record_that_cannot_fit(tiny_sim):
    """run(until=10**12) is one line with the longest run that fits, before allocating."""
    with pytest.raises(ValueError) as info:
        tiny_sim.run(until=10**12)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"until must be at most {max_recorded_ms():,} ms")
    assert "TiB" in message
    assert tiny_sim.t == 0 and len(tiny_sim.recorder.arrays["counter"]) == 20


def test_series_memory_limit_covers_the_longest_duration():
    """The longest duration_ms SimConfig accepts fits the record limit; one tick more than the
    limit does not."""
    hi = next(f for f in fields(SimConfig) if f.name == "duration_ms").metadata["range"][1]
    assert hi * SERIES_BYTES_PER_TICK <= MAX_SERIES_BYTES
    with pytest.raises(ValueError, match="ticks must be at most"):
        check_series_memory("ticks", max_recorded_ms() + 1)


def test_estimate_seconds_uses_the_benchmark_figures():
    """The estimate is ticks * (TICK_US + cpus * CPU_TICK_NS / 1000) µs, with each engine's
    figures."""
    assert estimate_seconds(4, 1000, engine="python") == pytest.approx(
        1000 * (TICK_US + 4 * CPU_TICK_NS / 1e3) / 1e6
    )
    assert estimate_seconds(4, 1000, engine="compiled") == pytest.approx(
        1000 * (COMPILED_TICK_US + 4 * COMPILED_CPU_TICK_NS / 1e3) / 1e6
    )
    # the cases: an hour on the small preset (warned: over a minute; about 7 min at the
    # benchmark's 122 µs a tick); an hour at 4096 CPUs is about 2.9 h of wall time at its
    # 682 ns per CPU-tick
    assert 60 < estimate_seconds(4, 3_600_000, engine="python") < 900
    assert 2 * 3600 < estimate_seconds(4096, 3_600_000, engine="python") < 4 * 3600
    # the compiled engine is the faster one, and the default when numba is there
    assert estimate_seconds(4096, 3_600_000, engine="compiled") < estimate_seconds(
        4096, 3_600_000, engine="python"
    )


def test_estimate_seconds_follows_the_default_engine(monkeypatch):
    """Without an engine named, the estimate is for the engine a new Simulation would use."""
    monkeypatch.setenv("ALLOCSIM_ENGINE", "python")
    assert estimate_seconds(64, 1000) == estimate_seconds(64, 1000, engine="python")
    monkeypatch.setenv("ALLOCSIM_ENGINE", "compiled")
    pytest.importorskip("numba")
    assert estimate_seconds(64, 1000) == estimate_seconds(64, 1000, engine="compiled")


# ---------------------------------------------------------------------------------------------
# The command line's run path
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--seconds", "inf"], r"seconds must be in \[0\.001, 3600\.0\], got inf"),
        (["--seconds", "nan"], r"seconds must be a number in \[0\.001, 3600\.0\], got NaN"),
        (["--seconds", "-1"], r"seconds must be in \[0\.001, 3600\.0\], got -1\.0"),
        (["--zone-mib", "64", "--min-free-kbytes", "65536"], r"min_free_kbytes must be at most"),
        (["--preset", "small", "--pcp-high", "5"], r"pcp_high must be 0 or >= the zone's"),
    ],
)
def test_cli_run_reports_bad_settings_in_one_line(args, pattern, capsys):
    """Bad run settings exit 2 with one line on stderr that names the option."""
    assert cli.main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("python -m allocsim run: error: ")
    assert __import__("re").search(pattern, err)


def test_cli_run_accepts_pcp_high_zero(capsys):
    """--pcp-high 0 --pcp-batch 1 runs (0 is allowed, as the message always said)."""
    assert cli.main(["run", "--preset", "small", "--seconds", "0.05", "--pcp-high", "0",
                     "--pcp-batch", "1", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["simulated_ms"] == 50


def test_cli_warns_about_a_long_run(monkeypatch):
    """A run estimated above a minute is announced on stderr with the estimate (for the engine
    that will run it: here the Python one)."""
    monkeypatch.setenv("ALLOCSIM_ENGINE", "python")
    err = io.StringIO()
    cli._announce_cost(preset("small", duration_ms=3_600_000), err)
    assert "warning: 3,600,000 simulated ms on 4 CPUs should take about 7 min" in err.getvalue()
    quiet = io.StringIO()
    cli._announce_cost(preset("small", duration_ms=4000), quiet)
    assert quiet.getvalue() == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_cli_progress_goes_to_a_terminal_only():
    """Progress is a rewritten status line on a terminal stderr, nothing on a pipe."""
    cfg = preset("small", duration_ms=1000)
    assert cli._progress_printer(cfg, io.StringIO()) is None
    term = _Terminal()
    progress = cli._progress_printer(cfg, term)
    progress(type("S", (), {"t": 500})())
    assert "\r  simulated 500 / 1,000 ms (50%" in term.getvalue()


def test_cli_json_run_shows_progress_on_a_terminal(monkeypatch, capsys):
    """--json with a terminal stderr still shows progress there; stdout stays one JSON line."""
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert cli.main(["run", "--preset", "small", "--seconds", "0.5", "--json"]) == 0
    assert "simulated 250 / 500 ms" in term.getvalue()
    assert json.loads(capsys.readouterr().out)["simulated_ms"] == 500


def test_cli_seconds_inf_exits_2_as_a_subprocess():
    """`python -m allocsim run --seconds inf` exits 2 with one line and no traceback."""
    proc = _cli("run", "--seconds", "inf")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# Low-level page functions
# ---------------------------------------------------------------------------------------------


def test_free_one_block_double_free_is_bad_page():
    """Freeing a page of a free block raises BadPageError naming the pfn; the zone is unchanged."""
    zone = Zone(1024, 1)
    before = zone.nr_free_by_order()
    with pytest.raises(BadPageError, match=r"bad_page: pfn 0: it is free already"):
        zone.free_one_block(0)
    with pytest.raises(BadPageError, match=r"bad_page: pfn 5: .*order-10 block at pfn 0"):
        zone.free_one_block(5)
    assert zone.nr_free_by_order() == before and zone.buddy_pages() == 1024


def test_free_one_block_double_free_of_a_higher_order_block_is_bad_page():
    """Freeing an order-2 block twice raises on the second free."""
    zone = Zone(1024, 1, free_pages=0)
    zone.free_one_block(8, 2)
    with pytest.raises(BadPageError, match=r"pfn 8"):
        zone.free_one_block(8, 2)
    assert zone.buddy_pages() == 4


def test_freeing_a_page_that_is_on_a_pcp_list_is_bad_page():
    """A page on a per-cpu list cannot be freed again, to the pcp list or the buddy lists."""
    zone = Zone(1024, 2, free_pages=0, pcp_high=100, pcp_batch=10)
    page_alloc.free_hot_cold_page(zone, 0, pfn=3)
    with pytest.raises(BadPageError, match=r"pfn 3: it is on a per-cpu list"):
        page_alloc.free_hot_cold_page(zone, 1, pfn=3)
    with pytest.raises(BadPageError, match=r"pfn 3"):
        zone.free_one_block(3)
    assert zone.pcp_pages() == 1 and zone.buddy_pages() == 0


def test_a_page_taken_from_a_pcp_list_can_be_freed_again():
    """Allocate from the pcp list, free the page again: no bad_page, counts add up."""
    zone = Zone(64, 1, pcp_high=6, pcp_batch=2)
    pfn = page_alloc.buffered_rmqueue(zone, 0)
    page_alloc.free_hot_cold_page(zone, 0, pfn=pfn)
    assert zone.buddy_pages() + zone.pcp_pages() == 64


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda z: z.free_one_block(-1), ValueError, r"pfn must be in \[0, 1023\], got -1"),
        (lambda z: z.free_one_block(1024), ValueError, r"pfn must be in \[0, 1023\]"),
        (lambda z: z.free_one_block(2.0), TypeError, "pfn must be an integer"),
        (lambda z: z.free_one_block(3, 2), ValueError, "does not start an order-2 block"),
        (lambda z: z.free_one_block(0, 11), ValueError, r"order must be in \[0, 10\]"),
        (
            lambda z: page_alloc.free_hot_cold_page(z, 0, pfn=3, nr_pages=2.5),
            TypeError,
            "nr_pages must be an integer",
        ),
        (
            lambda z: page_alloc.free_hot_cold_page(z, 0, pfn=3, nr_pages=2),
            ValueError,
            "nr_pages must be 1 when freeing the named page",
        ),
        (lambda z: page_alloc.free_hot_cold_page(z, 0, pfn=-3), ValueError, "pfn must be in"),
    ],
)
def test_page_level_zone_rejects_bad_pfns_and_counts(call, exc, pattern):
    """Negative, out-of-range, misaligned or non-integer pfns and counts are named."""
    zone = Zone(1024, 1, free_pages=0)
    with pytest.raises(exc, match=pattern):
        call(zone)
    assert zone.buddy_pages() == 0 and zone.pcp_pages() == 0


def test_rmqueue_bulk_rejects_a_negative_count():
    """rmqueue_bulk(z, 0, -5) raises naming count; pcp_count stays 0."""
    zone = CountingZone(1024, 1)
    with pytest.raises(ValueError, match=r"count must be in \[0, ∞\), got -5"):
        page_alloc.rmqueue_bulk(zone, 0, -5)
    with pytest.raises(ValueError, match="count must be in"):
        page_alloc.free_pcppages_bulk(zone, 0, -5)
    assert int(zone.pcp_count[0]) == 0 and zone.buddy_pages() == 1024


# ---------------------------------------------------------------------------------------------
# Files written by default
# ---------------------------------------------------------------------------------------------


def test_figure_livelock_off_on_writes_to_the_current_directory_by_default(tmp_path, monkeypatch):
    """Without a path the README figure goes to ./livelock.png, not next to the package."""
    from pathlib import Path

    import allocsim
    from allocsim import plotting

    monkeypatch.chdir(tmp_path)
    package_docs = Path(allocsim.__file__).resolve().parents[1] / "docs" / "figures"

    def snapshot():
        files = sorted(package_docs.glob("*")) if package_docs.exists() else []
        return [(p, p.stat().st_mtime_ns) for p in files]

    before = snapshot()
    path = plotting.figure_livelock_off_on(config=preset("large", duration_ms=200))
    assert Path(path).resolve() == tmp_path / "livelock.png"
    assert (tmp_path / "livelock.png").exists()
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# Static (non-threaded) widget mode: the cell blocks, so it says how long and shows progress
# ---------------------------------------------------------------------------------------------


def test_static_demo_announces_its_run_time_and_shows_progress(monkeypatch):
    """A static RunDemo shows the benchmark estimate before it runs, refreshes the readout
    during the run (every 0.5 s of wall time), and ends with the wall time."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from allocsim import widgets as aw
    from allocsim.widgets import demos

    demo = aw.RunDemo("small", threaded=False, autorun=False, duration_ms=400)
    monkeypatch.setattr(demos, "estimate_seconds", lambda cpus, ticks: 40.0)
    clock = iter(range(0, 10**6, 1))  # each reading of the clock is a second later
    monkeypatch.setattr(demos.time, "perf_counter", lambda: float(next(clock)))
    seen = []
    original = demo._set_readout
    monkeypatch.setattr(demo, "_set_readout", lambda text: (seen.append(text), original(text)))
    demo.run_sync()
    running = [t for t in seen if "— running" in t]
    assert running and "this run should take about 40 s; the cell waits for it" in running[0]
    assert len(running) >= 4  # 400 ms in steps of 50: progress shown several times
    assert "t = 400 / 400 ms simulated — finished" in seen[-1]
