"""The compiled engine computes the same machine as the Python model, bit for bit.

Every case runs once on each engine and compares every recorded series (float cost series
included), the event log, the dropped-event count and the JSON of the result; some cases also
compare the state left behind (zone, kswapd, LRU, cost meter) or walk tick by tick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import allocsim.engine as engine
from allocsim import SimConfig, Simulation
from allocsim.config import preset

pytestmark = pytest.mark.skipif(not engine.available(), reason="numba is not installed")

PATCH_SETS = ["none", "2.6.35", "all", "2.6.36", "2.6.38"]


def _grid():
    cases = []
    for name, ms in (("small", 1500), ("large", 1200), ("steady", 500), ("readers", 400)):
        for patches in PATCH_SETS:
            for seed in (1, 2):
                cases.append(
                    (
                        f"{name}-{patches}-{seed}",
                        preset(name, patches=patches, seed=seed, duration_ms=ms),
                    )
                )
    for cpus, ms in ((64, 800), (1024, 500), (4096, 120)):
        for patches in ("none", "all", "2.6.38"):
            cfg = preset(
                "large", patches=patches, seed=3, cpus=cpus, writer_cpus=cpus // 4, duration_ms=ms
            )
            cases.append((f"{cpus}cpus-{patches}", cfg))
    return cases


# Corners of the configuration space: each knob that changes a branch of the core.
CORNERS = {
    "writers-on-every-cpu": dict(writer_cpus=64, cpus=64),  # a writer shares kswapd's CPU
    "kswapd-on-cpu-0": dict(kswapd_cpu=0),
    "one-io-irq-cpu": dict(io_irq_cpus=1),
    "mempool-writeback": dict(writeback_alloc_ratio=0.0),
    "half-page-requests": dict(writeback_alloc_ratio=0.5),
    "default-dirty-limits": dict(dirty_ratio=20, dirty_background_ratio=10),
    "no-interrupts": dict(atomic_rate=0.0, quiet_atomic_rate=0.0),
    "kswapd-asleep": dict(kswapd_asleep_at_start=True, patches="2.6.38"),
    "no-costs": dict(cost_scale=0.0, patches="all"),
    # a drain price that is not a whole number (1.1 x 1500 ns)
    "odd-costs": dict(cost_scale=1.1, patches="all", cpus=256, writer_cpus=64),
    "four-sockets": dict(sockets=4, patches="2.6.36"),
    "threshold-fixed": dict(stat_threshold=1, patches="all"),
    "slow-folds": dict(stat_interval_ms=2000, patches="2.6.38"),
    "no-events": dict(record_events=False),
    "burst": dict(burst_start_ms=200, burst_ms=300, patches="all"),
    "writers-at-rate-12": dict(writer_rate=12.0, patches="all"),  # numpy's rejection method
}


def _compare(cfg, state=False):
    py = Simulation(cfg, engine="python")
    co = Simulation(cfg, engine="compiled")
    a = py.run()
    b = co.run()
    assert py.engine == "python" and co.engine == "compiled"
    differ = [k for k in a.series if not np.array_equal(a.series[k], b.series[k])]
    assert differ == [], f"series differ: {differ}"
    for k in a.series:
        assert a.series[k].dtype == b.series[k].dtype, k
    assert a.events == b.events
    assert a.events_dropped == b.events_dropped
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    if state:
        _same_state(py, co)
    return a, b


def _same_state(py, co):
    assert py.pages_accounted() == co.pages_accounted()
    for attr in ("vm_stat", "nr_free_pages_buddy", "percpu_drift_mark", "pages_scanned"):
        assert getattr(py.zone, attr) == getattr(co.zone, attr), attr
    for attr in ("pcp_count", "vm_stat_diff", "stat_threshold", "stat_folds"):
        assert np.array_equal(getattr(py.zone, attr), getattr(co.zone, attr)), attr
    for attr in ("on_waitqueue", "woken", "state", "wake_at"):
        assert getattr(py.kswapd, attr) == getattr(co.kswapd, attr), attr
    assert py.lru.runs and [list(r) for r in py.lru.runs] == co.lru.runs
    assert np.array_equal(py.meter.debt, co.meter.debt)
    assert py.meter.summary(py.t) == co.meter.summary(co.t)
    co.check_invariants()


@pytest.mark.parametrize("cfg", [c for _, c in _grid()], ids=[i for i, _ in _grid()])
def test_engine_compiled_matches_python_on_presets_cpus_and_patches(cfg):
    """Presets x patch sets (2.6.35, 2.6.36, 2.6.38) x seeds, and 64 to 4096 CPUs: the same
    series, events and JSON."""
    _compare(cfg)


@pytest.mark.parametrize("overrides", list(CORNERS.values()), ids=list(CORNERS))
def test_engine_compiled_matches_python_on_config_corners(overrides):
    """Every knob that changes a branch of the core gives the same run, and the same state."""
    base = dict(seed=5, duration_ms=900, patches="none")
    base.update(overrides)
    _compare(preset("large", **base), state=True)


def test_engine_compiled_matches_python_tick_by_tick_with_invariants():
    """Stepped one tick at a time, the compiled machine keeps every page accounted for and
    equals the Python one after every tick."""
    cfg = preset("large", seed=8, patches="all", duration_ms=300, cpus=32, writer_cpus=8)
    py = Simulation(cfg, engine="python")
    co = Simulation(cfg, engine="compiled")
    for _ in range(cfg.duration_ms):
        py.step()
        co.step()
        co.check_invariants()
        assert py.pages_accounted() == co.pages_accounted()
        assert py.zone.vm_stat == co.zone.vm_stat
        assert np.array_equal(py.zone.pcp_count, co.zone.pcp_count)
    _same_state(py, co)
    assert json.dumps(py.result().to_dict()) == json.dumps(co.result().to_dict())


def test_engine_compiled_drops_events_past_the_cap_like_python(monkeypatch):
    """Past the event cap both engines count the same dropped events."""
    import allocsim.sim as simmod

    monkeypatch.setattr(simmod, "_MAX_EVENTS", 150)
    a, b = _compare(preset("large", seed=1, duration_ms=1200))
    assert len(a.events) == 150 and a.events_dropped > 0


def test_engine_compiled_resumed_run_equals_one_run():
    """run(until=...) in pieces (across workload blocks) equals one run, on the compiled engine."""
    cfg = preset("large", seed=7, patches="2.6.38", duration_ms=900)
    whole = Simulation(cfg, engine="compiled").run()
    sim = Simulation(cfg, engine="compiled")
    for until in (1, 255, 256, 300, 777):
        sim.run(until=until)
    part = sim.run()
    assert json.dumps(part.to_dict()) == json.dumps(whole.to_dict())
    assert part.events == whole.events
    for k in whole.series:
        assert np.array_equal(part.series[k], whole.series[k]), k


def test_engine_compiled_calls_progress_at_the_same_ticks():
    """progress(sim) is called at the same simulated times on both engines, with the state of
    that tick (the counter matches the recorded series)."""
    cfg = preset("small", seed=2, duration_ms=700)
    seen = {}
    for name in engine.ENGINES:
        ticks = []
        sim = Simulation(cfg, engine=name)

        def progress(s, ticks=ticks):
            ticks.append((s.t, s.zone.vm_stat, s.recorder.n))

        sim.run(progress=progress, progress_every=64)
        seen[name] = ticks
    assert seen["compiled"] == seen["python"]
    assert [t for t, _, _ in seen["python"]] == list(range(64, 700, 64))


def test_engine_compiled_wall_budget_stops_early():
    """A tiny wall-clock budget stops the compiled run early, with finished False."""
    sim = Simulation(preset("large", cpus=1024, duration_ms=60_000), engine="compiled")
    result = sim.run(wall_budget_s=1e-6)
    assert not result.finished and 0 < result.simulated_ms < 4000


def test_engine_default_is_compiled_and_env_selects(monkeypatch):
    """engine=None means compiled; ALLOCSIM_ENGINE=python selects the Python engine."""
    monkeypatch.delenv("ALLOCSIM_ENGINE", raising=False)
    assert Simulation(preset("small", duration_ms=5)).engine == "compiled"
    monkeypatch.setenv("ALLOCSIM_ENGINE", "python")
    assert Simulation(preset("small", duration_ms=5)).engine == "python"


def test_engine_bad_names_give_one_clear_error(monkeypatch):
    """An unknown engine, by argument or environment variable, is a ValueError naming it."""
    with pytest.raises(ValueError, match="engine must be one of compiled, python, got 'fast'"):
        Simulation(preset("small"), engine="fast")
    monkeypatch.setenv("ALLOCSIM_ENGINE", "turbo")
    with pytest.raises(ValueError, match="ALLOCSIM_ENGINE must be one of"):
        Simulation(preset("small"))


def test_engine_without_numba_falls_back_with_one_notice(monkeypatch, capsys):
    """Without numba the default runs the Python engine and says so once, on one line; asking
    for the compiled engine by name is an error that says what to install."""
    monkeypatch.delenv("ALLOCSIM_ENGINE", raising=False)
    monkeypatch.setitem(engine._state, "reason", "numba cannot be imported (test)")
    monkeypatch.setitem(engine._state, "noticed", False)
    assert Simulation(preset("small", duration_ms=5)).engine == "python"
    assert Simulation(preset("small", duration_ms=5)).engine == "python"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "numba cannot be imported" in err and "Python engine" in err
    with pytest.raises(RuntimeError, match="pip install numba"):
        Simulation(preset("small"), engine="compiled")


def test_engine_import_allocsim_does_not_import_numba():
    """``import allocsim`` stays light: numba is imported on the first compiled run only."""
    code = "import sys, allocsim; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_engine_cli_flag_selects_engine_and_both_print_the_same_json():
    """``python -m allocsim run --engine`` picks the engine; the JSON is the same either way."""
    outs = {}
    env = {k: v for k, v in os.environ.items() if k != "ALLOCSIM_ENGINE"}
    for name in engine.ENGINES:
        cmd = [sys.executable, "-m", "allocsim", "run", "--preset", "small", "--seconds", "0.3"]
        cmd += ["--json", "--engine", name]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs[name] = json.loads(proc.stdout)
    assert outs["compiled"].pop("engine") == "compiled"
    assert outs["python"].pop("engine") == "python"
    assert outs["compiled"] == outs["python"]


def test_engine_cli_rejects_an_unknown_engine():
    """``--engine fast`` exits 2 with one line naming the choices."""
    cmd = [sys.executable, "-m", "allocsim", "run", "--engine", "fast"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "compiled" in proc.stderr and "python" in proc.stderr


def test_engine_warm_compiles_and_runs():
    """engine.warm() runs a tiny compiled simulation and says how long it took."""
    assert engine.warm() >= 0.0


def test_engine_compiled_matches_python_with_a_short_stat_interval():
    """The smallest vmstat interval (a counterfactual 10 ms) folds alike on both engines."""
    cfg = SimConfig.preset("large", stat_interval_ms=10, counterfactual=True, duration_ms=400)
    _compare(cfg)


def test_engine_compiled_refuses_the_scalar_kernel_path():
    """vector_fast_path=False asks for the Python engine's scalar path: a clear error, not a
    silent run of the vector path."""
    sim = Simulation(preset("small", duration_ms=10), engine="compiled")
    sim.vector_fast_path = False
    with pytest.raises(ValueError, match="engine='python'"):
        sim.run()


@pytest.mark.parametrize("width", [1, 7, 45, 256])
@pytest.mark.parametrize("rate", [0.0, 0.3, 3.0, 12.0, 40.0, "burst", "burst-end", "burst-high"])
def test_engine_arrival_layout_is_the_python_engines_and_leaves_the_generator_alike(rate, width):
    """The compiled engine lays out the workload's arrival draws (numba) exactly as
    ``arrival_block`` does (numpy), and both leave the Generator in the same state."""
    from allocsim.engine.draw import lay_out_arrivals
    from allocsim.workload import arrival_block, arrival_draws

    ticks = np.arange(256)
    if rate == "burst":
        rates = np.where(ticks >= 100, 0.3, 0.0)
    elif rate == "burst-end":
        rates = np.where((ticks >= 20) & (ticks < 180), 3.0, 0.3)
    elif rate == "burst-high":  # a run split into ticks, then one drawn tick by tick
        rates = np.where(ticks >= 60, 40.0, 0.3)
    else:
        rates = np.full(256, rate)
    ours, theirs = np.random.default_rng(11), np.random.default_rng(11)
    # as the driver keeps it (16 bits), with whatever was there
    out = np.full((256, width), 0xFFFB, dtype=np.uint16)
    draws = arrival_draws(ours, rates, width)
    assert lay_out_arrivals(out, draws) == sum(len(d[3]) for d in draws if d[3] is not None)
    assert np.array_equal(out, arrival_block(theirs, rates, width))
    assert ours.bit_generator.state == theirs.bit_generator.state
    assert ours.random() == theirs.random()


def test_engine_arrival_layout_refuses_a_count_its_array_cannot_hold():
    """The compiled engine keeps arrival counts in 16 bits: a count above 65535 (far beyond any
    config's rates) is an error, not a number wrapped round."""
    from allocsim.engine.draw import lay_out_arrivals

    out = np.zeros((256, 4), dtype=np.uint16)
    split = [(0, 256, np.array([3, 70000, 0, 1]), np.zeros(70004, dtype=np.uint8))]
    by_tick = [(0, 256, np.full((256, 4), 65536), None)]
    for draws in (split, by_tick):
        with pytest.raises(OverflowError, match="65535"):
            lay_out_arrivals(out, draws)
    fits = [(0, 256, np.full((256, 4), 65535), None)]
    lay_out_arrivals(out, fits)
    assert (out == 65535).all()


def test_engine_sweep_flag_gives_the_same_rows_on_both_engines(monkeypatch, capsys):
    """``sweep --engine python`` and ``--engine compiled`` print the same rows."""
    from allocsim.sweep import main as sweep_main

    monkeypatch.setenv("ALLOCSIM_ENGINE", "compiled")  # restored after the test
    rows = {}
    for name in engine.ENGINES:
        argv = ["--preset", "small", "--cpus", "4,8", "--seconds", "0.3", "--seeds", "1-2"]
        assert sweep_main(argv + ["--workers", "1", "--json", "--quiet", "--engine", name]) == 0
        rows[name] = json.loads(capsys.readouterr().out)["runs"]
        assert os.environ["ALLOCSIM_ENGINE"] == name
    drop = {"wall_s", "elapsed_s", "run_s"}
    strip = [[{k: v for k, v in r.items() if k not in drop} for r in rows[e]] for e in rows]
    assert strip[0] == strip[1] and len(strip[0]) == 4


def test_engine_cache_ready_tells_a_cold_cache_from_a_warm_one(tmp_path):
    """cache_ready() is True once warm() has run, False with an empty numba cache directory (the
    first run would compile: the command line and make warm say so first)."""
    engine.warm()
    assert engine.cache_ready() is True
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    code = "import allocsim.engine as e; print(e.cache_ready())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "False", out.stderr


# Random machines, workloads and patch subsets (each switch on its own too): both engines agree.
_SWITCHES = (
    "counter_after_free",
    "drift_mark_snapshot",
    "drain_after_reclaim",
    "pressure_threshold",
    "watermark_ok_safe",
)


@st.composite
def _configs(draw):
    from allocsim import Patches

    cpus = draw(st.integers(1, 48))
    over = dict(
        cpus=cpus,
        zone_mib=draw(st.sampled_from([64, 128, 256, 1024])),
        writer_cpus=draw(st.integers(0, cpus)),
        seed=draw(st.integers(0, 2**32 - 1)),
        duration_ms=draw(st.integers(20, 400)),
        patches=Patches(**{s: draw(st.booleans()) for s in _SWITCHES}),
        sockets=draw(st.integers(1, min(4, cpus))),
        cost_scale=draw(st.sampled_from([0.0, 1.0, 7.5])),
        stat_threshold=draw(st.one_of(st.none(), st.integers(0, 125))),
        writer_rate=draw(st.sampled_from([0.0, 0.7, 3.0, 9.5, 11.0])),
        atomic_rate=draw(st.sampled_from([0.0, 0.3, 2.0])),
        quiet_atomic_rate=draw(st.sampled_from([0.0, 0.1])),
        burst_start_ms=draw(st.integers(0, 100)),
        burst_ms=draw(st.one_of(st.none(), st.integers(1, 200))),
        dirty_fraction=draw(st.sampled_from([0.0, 0.5, 1.0])),
        task_temp_fraction=draw(st.sampled_from([0.0, 0.3])),
        lru_fraction=draw(st.sampled_from([0.2, 0.75, 1.0])),
        writeback_alloc_ratio=draw(st.sampled_from([0.0, 0.5, 1.0, 2.5])),
        dirty_ratio=draw(st.sampled_from([5, 20, 100])),
        dirty_background_ratio=draw(st.sampled_from([0, 10, 50])),
        writeback_limit=draw(st.sampled_from([16, 4096])),
        io_latency_ms=draw(st.sampled_from([1, 20])),
        atomic_lifetime_ms=draw(st.sampled_from([1, 5])),
        task_page_lifetime_ms=draw(st.sampled_from([1, 20])),
        kswapd_scan_per_ms=draw(st.sampled_from([32, 512])),
        kswapd_asleep_at_start=draw(st.booleans()),
        record_events=draw(st.booleans()),
    )
    if draw(st.booleans()):
        over["io_irq_cpus"] = draw(st.integers(1, cpus))
    if draw(st.booleans()):
        over["kswapd_cpu"] = draw(st.integers(0, cpus - 1))
    if draw(st.booleans()):
        over["stat_interval_ms"] = draw(st.sampled_from([10, 250, 2000]))
        over["counterfactual"] = True
    if draw(st.booleans()):
        over["pcp_batch"] = draw(st.integers(1, 64))
        over["pcp_high"] = draw(st.integers(0, 400))
    return over


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(_configs())
def test_engine_compiled_matches_python_on_random_configs(overrides):
    """Any machine, workload and subset of the switches: the same run on both engines."""
    try:
        cfg = preset("large", **overrides)
    except (ValueError, TypeError):
        assume(False)
    _compare(cfg, state=True)


def test_engine_compiled_run_pauses_the_cyclic_gc_and_gives_it_back():
    """A compiled run switches Python's cyclic garbage collector off while it runs (its events
    would otherwise set off collections that walk every object in the process) and leaves it
    as it found it: on after a run if it was on, off if the user had switched it off; a run
    that raises gives it back too."""
    import gc

    seen = []
    sim = Simulation(preset("small", duration_ms=20), engine="compiled")
    was = gc.isenabled()
    try:
        gc.enable()
        sim.run(progress=lambda s: seen.append(gc.isenabled()), progress_every=5)
        assert seen and not any(seen)  # off during the run
        assert gc.isenabled()  # on again after it
        gc.disable()
        Simulation(preset("small", duration_ms=5), engine="compiled").run()
        assert not gc.isenabled()  # the user's choice kept
        gc.enable()

        def boom(_sim):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            Simulation(preset("small", duration_ms=20), engine="compiled").run(
                progress=boom, progress_every=5
            )
        assert gc.isenabled()
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


@pytest.mark.parametrize("m", [65, 300, 4096])
@pytest.mark.parametrize("spread", [1 << 16, 7])
def test_engine_radix_sort_of_the_lock_queue_is_the_stable_sort(m, spread):
    """The compiled core sorts the CPUs queued for the zone lock by their 16-bit keys with a
    radix sort: the stable order ``np.argsort(kind="stable")`` gives, ties (many, with a
    narrow spread of keys) in the order they were queued."""
    from allocsim.engine import core

    rng = np.random.default_rng(m + spread)
    n = 4096
    keys = rng.integers(0, spread, n, dtype=np.uint16)
    seg = np.sort(rng.choice(n, m, replace=False)).astype(np.int64)
    want = seg[np.argsort(keys[seg], kind="stable")]
    tmp, counts = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    core.radix_sort_cpus(seg, keys, tmp, counts, m)
    assert np.array_equal(seg, want)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 136, 255, 256, 1000, 1024, 4099])
def test_engine_np_sum_is_numpys_pairwise_sum_bit_for_bit(n):
    """The compiled cost model's sums (core.np_sum: numpy's pairwise tree, walked once into a
    plan, its blocks summed eight lanes to a vector) give np.add.reduce's bits, on numbers
    whose sum depends on the order they are added in; and the plan follows the length."""
    from allocsim.engine import core

    rng = np.random.default_rng(n)
    width = max(n, 1)
    S = np.zeros(core.C_CPUS + 1, dtype=np.int64)
    I = np.zeros((core.N_I, width), dtype=np.int64)  # noqa: E741 (the core's name)
    D = np.zeros((core.N_D, width), dtype=np.float64)
    for a in (
        rng.standard_normal(n) * 10.0 ** rng.integers(-12, 12, n),
        np.full(n, 0.1),
        rng.integers(0, 4, n) * 1.37e-3 + 1e9 * (rng.random(n) < 0.01),
    ):
        D[core.WORK, :n] = a
        got = core.np_sum(D[core.WORK, :n].copy(), S, I, D)
        assert got == float(np.add.reduce(a)) and type(got) is float
        assert S[core.SUM_PLAN_N] == (n if n > 128 else 0)
    if n > 128:  # a plan made for another length is made again
        S[core.SUM_PLAN_N] = n + 8
        assert core.np_sum(a.copy(), S, I, D) == float(np.add.reduce(a))
        assert S[core.SUM_PLAN_N] == n


def test_engine_folds_made_between_runs_are_priced_at_the_next_tick_as_in_python():
    """The compiled cost meter prices only the CPUs noted as folding in a tick. Folds made by
    zone functions between two runs (a notebook poking the zone) must be priced all the same,
    at the next tick, as the Python engine's end_tick does."""
    from allocsim.vmstat import __mod_zone_page_state, refresh_cpu_vm_stats

    cfg = preset("large", cpus=256, patches="all", seed=5, duration_ms=60)
    results = []
    for name in ("python", "compiled"):
        sim = Simulation(cfg, engine=name)
        sim.run(until=30)
        zone = sim.zone
        __mod_zone_page_state(zone, 3, zone.stat_threshold[3] + 1)  # over the threshold: folds
        __mod_zone_page_state(zone, 200, 5)
        refresh_cpu_vm_stats(zone, 200)
        __mod_zone_page_state(zone, 3, zone.stat_threshold[3] + 1)  # CPU 3 twice
        results.append((sim.run(), sim.meter.folds, zone.stat_folds.copy()))
    (a, folds_a, stat_a), (b, folds_b, stat_b) = results
    assert folds_a == folds_b and np.array_equal(stat_a, stat_b)
    assert a.cost == b.cost and json.dumps(a.to_dict()) == json.dumps(b.to_dict())
