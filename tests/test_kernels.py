"""2.6.38's fix (pressure thresholds, zone_watermark_ok_safe), kernel presets and the cost model.

The golden digests below were computed from the model as it was before the cost model and the
2.6.38 switches (commit fb360ea) with the helper ``_digest``; with every cost at zero the model
must reproduce them bit for bit. If a later change alters the dynamics on purpose, recompute them
from the commit before it with ``cost_scale=0`` (older code: without that field).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from allocsim.__main__ import main
from allocsim.config import SimConfig, preset
from allocsim.cost import COSTS, CostMeter
from allocsim.mmzone import Zone
from allocsim.page_alloc import (
    watermark_free_pages,
    watermark_free_pages_safe,
    zone_watermark_ok,
    zone_watermark_ok_safe,
)
from allocsim.patches import KERNELS, Patches
from allocsim.sim import Simulation
from allocsim.vmscan import KswapdState
from allocsim.vmstat import (
    __mod_zone_page_state,
    diff_limit,
    set_pgdat_percpu_threshold,
    zone_normal_threshold,
    zone_pressure_threshold,
)

# The series that existed before issue 11, in their order then.
OLD_SERIES = (
    "counter snapshot read buddy pcp in_flight pcp_stranded kswapd_state atomic_attempted "
    "atomic_ok atomic_failed task_demand task_attempted task_ok task_failed memalloc_attempted "
    "memalloc_ok tasks_in_allocator tasks_spinning tasks_throttled direct_reclaim drain_all_pages "
    "reclaimed scanned writeback lru_dirty lru_clean folds flushed"
).split()

# Digests of those series and the events with cost_scale 0. They were taken from the model before
# issue 11 (the cost model), and retaken when the workload's draw changed to Poisson splitting
# (allocsim/workload.py): the test held on the old draw's digests up to that change.
GOLDEN = [
    ("large", dict(seed=1, patches="none", duration_ms=1500), "e608fffa31f85c10"),
    ("large", dict(seed=2, patches="all", duration_ms=1500), "3767c48f279b7c17"),
    ("large", dict(seed=3, patches="all", atomic_rate=0.0, duration_ms=1500), "b5f3733a3e1758f4"),
    ("steady", dict(seed=1, patches="drain_after_reclaim", duration_ms=500), "7b52ae7f063aa901"),
    ("small", dict(seed=4, patches="all", duration_ms=500), "e5aa8acffd3d2b12"),
]


def _digest(result) -> str:
    h = hashlib.sha256()
    for name in OLD_SERIES:
        h.update(np.ascontiguousarray(result[name], dtype=np.int64).tobytes())
    h.update(repr([(e.t_ms, e.name, e.cpu, e.value) for e in result.events]).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Kernel versions as presets of switches
# ---------------------------------------------------------------------------------------------


def test_patches_parse_kernel_versions_to_their_switches():
    """2.6.35 is no switch, 2.6.36 the three 2010 patches, 2.6.38 patches 1 and 3 plus 88f5acf."""
    assert Patches.parse("2.6.35") == Patches.none()
    assert Patches.parse("2.6.36") == Patches.all()
    p = Patches.parse(" 2.6.38 ")
    assert p.enabled() == (
        "counter_after_free",
        "drain_after_reclaim",
        "pressure_threshold",
        "watermark_ok_safe",
    )
    assert not p.drift_mark_snapshot


def test_patches_kernel_names_the_version_only_when_the_switches_match():
    """kernel() gives the version for an exact match and None for a mixture."""
    for version in KERNELS:
        assert Patches.parse(version).kernel() == version
    assert Patches(pressure_threshold=True).kernel() is None
    assert Patches.parse("counter_after_free").kernel() is None
    assert Patches.all().label() == "all"
    assert Patches.parse("2.6.38").label() == "2.6.38"
    assert Patches(watermark_ok_safe=True).label() == "watermark_ok_safe"


def test_patches_names_stay_the_three_2010_patches():
    """names() is the 2010 series; switches() adds 2.6.38's two behaviours."""
    assert Patches.names() == ("counter_after_free", "drift_mark_snapshot", "drain_after_reclaim")
    assert Patches.switches()[-2:] == ("pressure_threshold", "watermark_ok_safe")


def test_run_json_reports_kernel_and_cost(capsys):
    """run --patches 2.6.38 --json has the kernel label and the four cost keys."""
    argv = ["run", "--preset", "small", "--patches", "2.6.38", "--seconds", "0.2", "--json"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kernel"] == "2.6.38"
    for key in ("snapshot_reads", "drain_ipis", "threshold_rewrites", "watermark_cpu_share"):
        assert key in d["cost"], key
    assert 0 < d["cost"]["watermark_cpu_share"] < 1


def test_run_json_kernel_is_null_for_a_mixture(capsys):
    """A mixture of switches has no kernel label."""
    main(
        [
            "run",
            "--preset",
            "small",
            "--patches",
            "pressure_threshold",
            "--seconds",
            "0.1",
            "--json",
        ]
    )
    assert json.loads(capsys.readouterr().out)["kernel"] is None


def test_run_help_exits_zero_and_names_the_kernels(capsys):
    """run --help prints every option (a literal % in a help text must not break it)."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "2.6.38" in out and "--sockets" in out and "--cost-scale" in out


@pytest.mark.parametrize(
    "argv,word",
    [
        (["--sockets", "0"], "sockets"),
        (["--cpus", "4", "--sockets", "8"], "sockets"),
        (["--cost-scale", "-1"], "cost_scale"),
    ],
)
def test_cli_rejects_bad_sockets_and_cost_scale_in_one_line(argv, word, capsys):
    """Bad sockets or cost_scale: exit 2 with one line naming the parameter."""
    assert main(["run", "--preset", "small", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]


# ---------------------------------------------------------------------------------------------
# The mechanism, function by function
# ---------------------------------------------------------------------------------------------


def _zone_with_drift(patches, cpus=64):
    """A 1 GiB zone on 64 CPUs (mark set) whose CPUs hold unfolded negative deltas."""
    zone = Zone(262144, cpus, patches=patches)
    zone.vm_stat_diff[:] = -zone.stat_threshold  # every CPU owes the counter a full threshold
    return zone


def test_drift_mark_exists_with_either_2638_switch_and_not_without():
    """refresh_zone_stat_thresholds sets percpu_drift_mark for 2.6.36 and for 2.6.38's switches."""
    for p in (Patches.all(), Patches(pressure_threshold=True), Patches(watermark_ok_safe=True)):
        assert SimConfig(cpus=64, patches=p).derived().percpu_drift_mark > 0
    assert SimConfig(cpus=64).derived().percpu_drift_mark == 0


def test_zone_watermark_ok_2638_reads_plain_counter_even_with_kswapd_awake():
    """88f5acf: ordinary checks read zone_page_state; 2.6.36 read the snapshot while awake."""
    old = _zone_with_drift(Patches.all())
    new = _zone_with_drift(Patches.parse("2.6.38"))
    for z in (old, new):
        z.vm_stat = z.percpu_drift_mark - 1  # below the mark
    snapshot = old.vm_stat + int(old.vm_stat_diff.sum())
    assert watermark_free_pages(old, kswapd_awake=True) == max(0, snapshot)
    assert watermark_free_pages(old, kswapd_awake=False) == old.vm_stat
    assert watermark_free_pages(new, kswapd_awake=True) == new.vm_stat


def test_zone_watermark_ok_safe_takes_the_snapshot_below_the_mark_while_kswapd_sleeps():
    """The safe check has no kswapd condition: below the mark it sums every CPU's delta."""
    zone = _zone_with_drift(Patches.parse("2.6.38"))
    low = zone.low_wmark
    zone.vm_stat = low + 100  # the counter says above LOW ...
    assert zone.vm_stat + int(zone.vm_stat_diff.sum()) < low  # ... the truth is below it
    assert zone_watermark_ok(zone, 0, low, 0, 0)
    assert not zone_watermark_ok_safe(zone, 0, low, 0, 0)
    zone.vm_stat = zone.percpu_drift_mark + 10  # above the mark: the cheap read is trusted
    assert watermark_free_pages_safe(zone) == zone.vm_stat


def test_pressure_threshold_bounds_all_cpus_drift_by_low_minus_min():
    """Shaohua Li's node: min/low 1441/1801 on 64 CPUs gives 360 / 64 = 5 pages per CPU."""
    zone = Zone(1 << 21, 64, watermark=(1441, 1801, 2161), patches=Patches.parse("2.6.38"))
    assert zone_pressure_threshold(zone) == 5
    assert 64 * zone_pressure_threshold(zone) <= 1801 - 1441


def test_set_pgdat_percpu_threshold_leaves_old_diffs_until_their_next_update():
    """A lowered threshold does not touch stored diffs; the CPU's next update folds them."""
    zone = Zone(262144, 64, patches=Patches.parse("2.6.38"))
    normal = zone_normal_threshold(zone)
    zone.vm_stat_diff[1] = 60
    zone.vm_stat_diff[2] = 60
    start = zone.vm_stat
    assert set_pgdat_percpu_threshold(zone, zone_pressure_threshold)
    t = int(zone.stat_threshold[1])
    assert t < 60 <= normal
    assert (zone.vm_stat_diff[1], zone.vm_stat) == (60, start)  # still there, still allowed
    assert (np.abs(zone.vm_stat_diff) <= diff_limit(zone)).all()
    __mod_zone_page_state(zone, 1, -1)  # x = 59 > t: folded at once
    assert (zone.vm_stat_diff[1], zone.vm_stat) == (0, start + 59)
    __mod_zone_page_state(zone, 2, -60 + t)  # x = t: within the threshold, kept
    assert (zone.vm_stat_diff[2], zone.vm_stat) == (t, start + 59)
    assert set_pgdat_percpu_threshold(zone, zone_normal_threshold)
    assert (zone.stat_threshold == normal).all()


def test_set_pgdat_percpu_threshold_skips_a_zone_without_drift_mark():
    """Zones whose drift is harmless (no mark) keep their thresholds."""
    zone = Zone(262144, 4, patches=Patches.parse("2.6.38"))
    assert zone.percpu_drift_mark == 0
    before = zone.stat_threshold.copy()
    assert not set_pgdat_percpu_threshold(zone, zone_pressure_threshold)
    assert (zone.stat_threshold == before).all()


# ---------------------------------------------------------------------------------------------
# The running machine
# ---------------------------------------------------------------------------------------------


def test_kswapd_lowers_thresholds_while_awake_and_restores_them_to_sleep():
    """2.6.38: balancing ticks run on the pressure threshold, full-sleep ticks on the normal one."""
    r = Simulation(preset("readers", patches="2.6.38", seed=1, duration_ms=600)).run()
    th = r["stat_threshold"]
    state = r["kswapd_state"]
    d = r.derived
    assert (th[state == KswapdState.RUNNING] == d["pressure_threshold"]).all()
    assert (th[state == KswapdState.SLEEPING] == d["stat_threshold"]).all()
    assert (state == KswapdState.RUNNING).any() and (state == KswapdState.SLEEPING).any()
    assert r.cost["threshold_rewrites"] >= 2


def test_2636_never_rewrites_thresholds():
    """Only the pressure_threshold switch changes stat_threshold at run time."""
    r = Simulation(preset("readers", patches="2.6.36", seed=1, duration_ms=400)).run()
    assert (r["stat_threshold"] == r.derived["stat_threshold"]).all()
    assert r.cost["threshold_rewrites"] == 0


@pytest.mark.parametrize(
    "name,overrides",
    [
        ("large", dict(patches="2.6.38")),
        ("large", dict(patches="2.6.38", atomic_rate=0.0, kswapd_asleep_at_start=True)),
        ("readers", dict(patches="2.6.38", sockets=4)),
    ],
)
@pytest.mark.parametrize("engine", ["python", "compiled"])
def test_invariants_hold_at_every_step_on_2638(name, overrides, engine):
    """Page conservation and diffs within the threshold in force when written, every tick."""
    if engine == "compiled":
        pytest.importorskip("numba")
    sim = Simulation(preset(name, seed=2, duration_ms=500, **overrides), engine=engine)
    sim.check_invariants()
    for _ in range(500):
        sim.step()
        sim.check_invariants()


@pytest.mark.parametrize("name,patches", [("large", "2.6.38"), ("readers", "2.6.36")])
def test_vector_fast_path_matches_scalar_path_with_costs_on(name, patches):
    """The numpy shortcut charges the same checks as the CPU-by-CPU kernel path."""
    cfg = preset(name, seed=5, duration_ms=400, patches=patches)
    # The scalar kernel path exists in the Python engine (the compiled one runs the vector path).
    fast, slow = Simulation(cfg, engine="python"), Simulation(cfg, engine="python")
    slow.vector_fast_path = False
    a, b = fast.run(), slow.run()
    for s in a.series:
        np.testing.assert_array_equal(a[s], b[s], err_msg=s)
    assert a.cost == b.cost


# ---------------------------------------------------------------------------------------------
# The cost model
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,overrides,digest", GOLDEN, ids=[f"{n}-{o['seed']}" for n, o, _ in GOLDEN]
)
def test_zero_costs_reproduce_the_model_before_costs_bit_for_bit(name, overrides, digest):
    """With cost_scale 0 every pre-existing series and event equals the model before issue 11."""
    r = Simulation(preset(name, cost_scale=0.0, **overrides)).run()
    assert _digest(r) == digest
    assert r.cost["watermark_cpu_share"] == 0.0


def test_costs_do_not_change_the_workload():
    """Kernels and cost scales see exactly the same requests for the same seed."""
    base = preset("readers", seed=3, duration_ms=500, sockets=2)
    runs = [
        Simulation(base.replace(patches=p, cost_scale=k)).run()
        for p, k in (("2.6.36", 1.0), ("2.6.38", 1.0), ("2.6.36", 0.0), ("2.6.36", 20.0))
    ]
    for r in runs[1:]:
        np.testing.assert_array_equal(r["task_demand"], runs[0]["task_demand"])
        np.testing.assert_array_equal(r["atomic_attempted"], runs[0]["atomic_attempted"])


def test_a_cpu_busy_with_snapshots_serves_fewer_allocations():
    """Scaling the costs up leaves the demand alone and lowers the pages the readers get."""
    cfg = preset("readers", seed=1, duration_ms=500, sockets=14, patches="2.6.36")
    free = Simulation(cfg.replace(cost_scale=0.0)).run()
    dear = Simulation(cfg.replace(cost_scale=20.0)).run()
    assert dear["task_demand"].sum() == free["task_demand"].sum()
    assert dear["task_ok"].sum() < 0.9 * free["task_ok"].sum()
    assert dear.cost["watermark_cpu_share"] > 0.01


def test_snapshot_cost_is_one_line_per_other_cpu_by_socket():
    """8 CPUs on 1 socket: 7 same-socket lines; 112 on 14: 7 same-socket and 104 remote."""
    one = CostMeter(8, 1)
    many = CostMeter(112, 14)
    assert one.snapshot_ns[0] == pytest.approx(7 * COSTS.line_same_socket_ns)
    assert many.snapshot_ns[0] == pytest.approx(
        7 * COSTS.line_same_socket_ns + 104 * COSTS.line_cross_socket_ns
    )
    assert list(many.socket[:9]) == [0] * 8 + [1]
    assert CostMeter(1, 1).snapshot_ns[0] == 0.0


def test_cost_meter_charges_checks_snapshots_and_counter_misses():
    """A tick's price: checks, a snapshot per check when the read took one, and line misses."""
    m = CostMeter(4, 2)
    m.begin_tick(True, False)
    m.check(0, 3)
    m.check(1, 2, safe=True)
    folds = np.array([0, 0, 1, 1])  # CPUs 2 and 3 wrote the counter line once each
    m.end_tick(folds)
    line = m.line_ns
    wm0 = 3 * COSTS.check_ns + 2 * line[0] + 3 * m.snapshot_ns[0]  # misses = min(3, 2)
    wm1 = 2 * COSTS.check_ns + 2 * line[1]  # safe reads were not snapshots this tick
    assert m.watermark_ns == pytest.approx(wm0 + wm1)
    assert m.snapshot_reads == 3
    assert m.debt[2] == pytest.approx(COSTS.fold_lines * line[2])
    busy = m.begin_tick(False, False)
    assert busy[0] == pytest.approx(wm0)


def test_drain_all_pages_costs_an_ipi_to_every_other_cpu():
    """The sender pays one IPI per target, its own drain and the wait; each target its drain."""
    m = CostMeter(4, 1)
    m.drain_all_pages(1, np.array([10, 0, 0, 31]))
    assert m.drain_ipis == 3
    recv3 = COSTS.ipi_receive_ns + 31 * COSTS.drain_page_ns
    assert m.other_ns[3] == pytest.approx(recv3)
    assert m.other_ns[1] == pytest.approx(3 * COSTS.ipi_send_ns + recv3)


# ---------------------------------------------------------------------------------------------
# compare --kernels and the sockets sweep
# ---------------------------------------------------------------------------------------------


def test_compare_kernels_prints_one_row_per_kernel(capsys):
    """compare --kernels 2.6.35,2.6.36,2.6.38 prints a row for each and the exact yardstick."""
    argv = ["compare", "--preset", "small", "--seconds", "0.2", "--quiet"]
    assert main([*argv, "--kernels", "2.6.35,2.6.36,2.6.38"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:6]]
    assert rows == ["2.6.35", "2.6.36", "2.6.38", "exact"]


def test_compare_kernels_json_has_the_kernel_and_cost_of_each_run(capsys):
    """compare --kernels --json: each run names its kernel and carries its cost."""
    argv = ["compare", "--preset", "small", "--seconds", "0.2", "--json", "--kernels", "2.6.38"]
    assert main(argv) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["kernel"] for r in runs] == ["2.6.38", "2.6.35"]  # exact has no patch: 2.6.35
    assert all("watermark_cpu_share" in r["cost"] for r in runs)


def test_compare_rejects_an_unknown_kernel_in_one_line(capsys):
    """compare --kernels 2.6.37: exit 2, one line naming kernels and the valid versions."""
    assert main(["compare", "--preset", "small", "--kernels", "2.6.35,2.6.37"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "kernels" in err[0] and "2.6.38" in err[0]


def test_sockets_sweep_2638_is_far_cheaper_than_2636_on_many_sockets():
    """On 14 sockets the snapshot in every check makes 2.6.36 cost several times 2.6.38."""
    from allocsim.accuracy import sockets_sweep, summarise

    s = summarise(sockets_sweep(sockets=(1, 14), seeds=(1,), duration_ms=400))
    assert s[(14, "2.6.36")]["share"] > 5 * s[(14, "2.6.38")]["share"]
    assert s[(14, "2.6.36")]["share"] > 2 * s[(1, "2.6.36")]["share"]
    assert s[(14, "2.6.38")]["share"] < 1.0


def test_cli_kswapd_asleep_flag_reaches_the_config():
    """--kswapd-asleep-at-start sets the field; without it the preset's value stays."""
    from allocsim.__main__ import _config_from, build_parser

    parser = build_parser()
    on = _config_from(parser.parse_args(["run", "--preset", "large", "--kswapd-asleep-at-start"]))
    off = _config_from(parser.parse_args(["compare", "--preset", "large"]))
    assert on.kswapd_asleep_at_start and not off.kswapd_asleep_at_start
    assert _config_from(parser.parse_args(["run", "--preset", "readers"])).kswapd_asleep_at_start
