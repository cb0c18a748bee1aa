"""Sweeps: one tidy row per run, the same whatever runs them, resumable, and a CLI with
one-line errors. Runs are tiny (4-16 CPUs, 200 ms) so the file stays fast on 2 cores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import allocsim.sweep as sw
from allocsim.config import preset
from allocsim.sim import Simulation
from allocsim.sweep import Grid, SweepInterrupted, exact_config, sweep
from allocsim.trace import RunResult

ROOT = Path(__file__).resolve().parents[1]

# 3 machine sizes × 2 patch sets × 4 seeds = 24 runs, plus 12 exact-counter runs.
AXES = {"cpus": [4, 8, 16], "patches": ["none", "all"], "seed": [1, 2, 3, 4]}


def grid24() -> Grid:
    return Grid(AXES, preset="large", duration_ms=200)


@pytest.fixture(scope="module")
def serial():
    """The 24-run grid with the exact baseline, run in this process."""
    return sweep(grid24(), baseline="exact", workers=1, progress=False)


class Counting:
    """Stands in for sweep._run_one: counts runs, and raises Ctrl-C at run ``stop_at``."""

    def __init__(self, stop_at=None):
        self.calls = 0
        self.stop_at = stop_at
        self.real = sw._run_one

    def __call__(self, cfg):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.real(cfg)


def test_sweep_serial_frame_has_one_row_per_point_in_grid_order(serial):
    """24 rows ordered by grid index, inputs as given, outputs from the runs, seeds differ."""
    assert len(serial) == 24
    assert list(serial["run"]) == list(range(24))
    assert list(serial.columns[:4]) == ["run", "cpus", "patches", "seed"]
    assert list(serial["seed"][:4]) == [1, 2, 3, 4]  # the last axis varies fastest
    assert set(serial["patches"]) == {"none", "all"}
    assert serial["run_key"].is_unique
    assert serial["task_demand"].nunique() > 1  # the seeds are different workloads
    assert serial["progress_vs_exact"].nunique() > 1
    assert (serial["duration_ms"] == 200).all() and (serial["simulated_ms"] == 200).all()


def test_sweep_rows_match_a_direct_run(serial):
    """A row's outputs are those of Simulation(config).run() for its grid point."""
    r = serial.iloc[13]
    cfg = grid24().configs[13]
    direct = Simulation(cfg).run().to_dict()
    assert (r["cpus"], r["patches"], r["seed"]) == (cfg.cpus, cfg.patches.label(), cfg.seed)
    for key in ("delivered_pages", "task_demand", "max_counter_minus_buddy", "stalled_ms"):
        assert r[key] == direct[key], key
    assert r["stat_threshold"] == direct["stat_threshold"]  # the formula's value, not None


def test_sweep_progress_vs_exact_is_delivered_over_the_exact_run(serial):
    """progress_vs_exact divides a row's delivered pages by those of its exact-counter run."""
    for i in (0, 5, 23):
        cfg = grid24().configs[i]
        exact = Simulation(exact_config(cfg)).run().to_dict()
        assert exact_config(cfg).stat_threshold == 0 and exact_config(cfg).patches.label() == "none"
        got = serial.iloc[i]
        assert got["progress_vs_exact"] == pytest.approx(got[sw.DELIVERED] / exact[sw.DELIVERED])


def test_sweep_runs_each_exact_baseline_once(monkeypatch):
    """Patch sets share their exact run: 24 grid runs need 12 exact ones, 36 runs in all."""
    counting = Counting()
    monkeypatch.setattr(sw, "_run_one", counting)
    sweep(grid24(), baseline="exact", workers=1, progress=False)
    assert counting.calls == 36


def test_sweep_is_identical_with_two_local_workers(serial):
    """Two worker processes give exactly the serial DataFrame."""
    parallel = sweep(grid24(), baseline="exact", workers=2, progress=False)
    pd.testing.assert_frame_equal(parallel, serial)


def test_sweep_is_identical_on_any_executor(serial):
    """A concurrent.futures executor passed in (threads here) gives the serial DataFrame."""
    with ThreadPoolExecutor(2) as ex:
        threaded = sweep(grid24(), baseline="exact", executor=ex, progress=False)
    pd.testing.assert_frame_equal(threaded, serial)


def test_sweep_is_identical_on_a_dask_local_cluster(serial):
    """A Dask LocalCluster, by address and by Client, gives exactly the serial DataFrame."""
    distributed = pytest.importorskip("distributed")  # the test extra installs it
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, processes=True
    ) as cluster:
        by_address = sweep(
            grid24(), baseline="exact", scheduler=cluster.scheduler_address, progress=False
        )
        with distributed.Client(cluster) as client:
            two = sweep(Grid({"seed": [1, 2]}, preset="small", duration_ms=200), scheduler=client)
            assert client.status == "running"  # a client we were given stays open
    pd.testing.assert_frame_equal(by_address, serial)
    assert list(two["seed"]) == [1, 2]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_sweep_interrupted_then_rerun_completes_only_the_missing_runs(
    serial, tmp_path, monkeypatch, suffix
):
    """Ctrl-C at run 10 keeps 9 runs in out; the rerun makes only the other 27 and matches."""
    out = tmp_path / f"sweep{suffix}"
    monkeypatch.setattr(sw, "_run_one", Counting(stop_at=10))
    with pytest.raises(SweepInterrupted) as info:
        sweep(grid24(), baseline="exact", workers=1, out=out, progress=False)
    assert "9 of 36 runs done" in str(info.value)
    assert len(info.value.frame) <= 9
    assert len(sw.ResultFile(out).load()) == 9

    counting = Counting()
    monkeypatch.setattr(sw, "_run_one", counting)
    said = []
    again = sweep(grid24(), baseline="exact", workers=1, out=out, progress=False, log=said.append)
    assert counting.calls == 27
    assert said == [f"skipped 9 of 36 runs: already in {out}"]
    assert again.attrs["skipped"] == 9
    pd.testing.assert_frame_equal(again, serial)  # values and dtypes as a fresh sweep

    monkeypatch.setattr(sw, "_run_one", Counting(stop_at=1))  # nothing left to run
    assert sweep(grid24(), baseline="exact", out=out, progress=False).attrs["skipped"] == 36


def test_sweep_new_json_keys_become_columns(monkeypatch):
    """A key added to RunResult.to_dict is a column; nested dicts are prefixed, lists dropped."""
    real = RunResult.to_dict

    def more(self):
        return {**real(self), "new_measure": 7, "cost": {"drain_ipis": 3}, "per_bin": [1, 2]}

    monkeypatch.setattr(RunResult, "to_dict", more)
    df = sweep(Grid({"seed": [1]}, preset="small", duration_ms=50), workers=1, progress=False)
    assert df.loc[0, "new_measure"] == 7 and df.loc[0, "cost_drain_ipis"] == 3
    assert "per_bin" not in df.columns and "episodes" not in df.columns


def test_sweep_row_keeps_the_old_metrics_row_keys():
    """row() still gives every key docs/make_docs.py reads from the former metrics.row."""
    r = sw.row(Simulation(preset("small", duration_ms=100)).run())
    for key in (
        "cpus",
        "zone_mib",
        "seed",
        "patches",
        "stat_interval_ms",
        "stat_threshold",
        "livelocked",
        "livelock_ms",
        "first_episode_ms",
        "kswapd_awake_at_onset",
        "snapshot_ticks",
        "drain_all_pages_calls",
        "max_counter_minus_buddy",
        "mean_counter_minus_buddy",
        "max_pcp_stranded",
        "task_throughput",
        "atomic_failed",
        "max_drift",
    ):
        assert key in r, key
    assert r["patches"] == "none"


@pytest.mark.parametrize(
    "axes, fixed, words",
    [
        ({"cpuz": [4]}, {}, "unknown SimConfig field 'cpuz'"),
        ({"cpus": []}, {}, "cpus: no values"),
        ({"cpus": [-16]}, {}, "cpus must be in [1, 4096], got -16"),
        ({"patches": ["bogus"]}, {}, "unknown patch name"),
        ({"seed": [1]}, {"seed": 2}, "both as an axis and as a fixed value"),
    ],
)
def test_grid_rejects_bad_grids_naming_the_parameter(axes, fixed, words):
    """A bad grid raises ValueError at once, naming the field."""
    with pytest.raises(ValueError, match=None) as info:
        Grid(axes, preset="small", **fixed)
    assert words in str(info.value)


def test_sweep_rejects_a_foreign_out_file(tmp_path):
    """An existing file that is not a sweep's is refused, not overwritten."""
    out = tmp_path / "mine.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not an allocsim sweep file"):
        sweep(Grid({"seed": [1]}, preset="small", duration_ms=50), out=out, progress=False)
    assert out.read_text() == "a,b\n1,2\n"
    with pytest.raises(ValueError, match=r"out must end in \.parquet or \.csv"):
        sweep([preset("small", duration_ms=50)], out=tmp_path / "x.txt", progress=False)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

CLI = ["sweep", "--preset", "large", "--cpus", "4,8", "--patches", "none,all", "--seeds", "1-2"]


def test_cli_sweep_help_exits_zero():
    """`python -m allocsim sweep --help` prints the options and exits 0."""
    p = subprocess.run(
        [sys.executable, "-m", "allocsim", "sweep", "--help"], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    for opt in ("--cpus", "--zone-mib", "--patches", "--seeds", "--scheduler", "--baseline"):
        assert opt in p.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["--set", "cpuz=4"], "unknown SimConfig field 'cpuz'"),
        (["--seeds", "5-1"], "seeds: empty range 5-1"),
        (["--cpus", "-16"], "cpus must be in [1, 4096], got -16"),
        (["--cpus", ""], "cpus: no values"),
        (["--seconds", "0"], "seconds must be > 0"),
        (["--workers", "0"], "workers must be >= 1"),
        (["--out", "x.txt"], "out must end in .parquet or .csv"),
    ],
)
def test_cli_sweep_bad_grid_is_one_line_exit_2(capsys, args, words, tmp_path, monkeypatch):
    """A bad grid or option exits 2 with one line on stderr that names it."""
    from allocsim.__main__ import main

    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--preset", "small", "--seconds", "0.05", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_cli_sweep_prints_a_summary_and_json(capsys):
    """The summary has one row per point without the seed; --json has one object per run."""
    from allocsim.__main__ import main

    assert main([*CLI, "--seconds", "0.2", "--workers", "1", "--quiet", "--baseline", "exact"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["cpus", "patches", "duration_ms", "runs"]
    assert len(out) == 1 + 4 and "progress_vs_exact" in out[0]
    assert main([*CLI, "--seconds", "0.2", "--workers", "1", "--quiet", "--json"]) == 0
    text = capsys.readouterr().out

    def no_nan(name):
        raise ValueError(f"{name} is not JSON")

    runs = json.loads(text, parse_constant=no_nan)["runs"]
    assert len(runs) == 8 and [r["run"] for r in runs] == list(range(8))
    assert runs[0]["patches"] == "none" and {"delivered_pages", "run_key"} <= set(runs[0])


def test_cli_sweep_interrupted_keeps_results_and_rerun_skips_them(capsys, tmp_path, monkeypatch):
    """Ctrl-C exits 130 saying what was kept; the same command again skips it and finishes."""
    from allocsim.__main__ import main

    out = tmp_path / "s.csv"
    args = [*CLI, "--seconds", "0.2", "--workers", "1", "--out", str(out)]
    monkeypatch.setattr(sw, "_run_one", Counting(stop_at=4))
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "3 of 8 runs done" in err and "Traceback" not in err
    counting = Counting()
    monkeypatch.setattr(sw, "_run_one", counting)
    assert main(args) == 0
    assert counting.calls == 5
    assert f"skipped 3 of 8 runs: already in {out}" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")
def test_cli_sweep_ctrl_c_with_worker_processes_stops_cleanly(tmp_path):
    """A real SIGINT to the CLI's process group (as a terminal sends it) with 2 worker
    processes: exit 130, one line, no traceback, finished runs kept for the rerun."""
    out = tmp_path / "s.csv"
    args = [sys.executable, "-m", "allocsim", *CLI, "--seeds", "1-4", "--seconds", "0.5"]
    args += ["--workers", "2", "--out", str(out), "--quiet"]
    p = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        if out.exists() and len(out.read_text().splitlines()) >= 3:  # header + 2 runs
            break
        time.sleep(0.05)
    assert p.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and err.count("\n") == 1 and "runs done" in err
    kept = len(sw.ResultFile(out).load())
    assert 2 <= kept < 16
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert len(sw.ResultFile(out).load()) == 16


# ---------------------------------------------------------------------------------------------
# The phase diagram: the kernel's boundary, the plots, the shipped grid
# ---------------------------------------------------------------------------------------------


def test_kernel_boundary_follows_the_kernel_formulas():
    """max_drift is cpus × calculate_threshold, the gap low − min; the mark is set past it."""
    from allocsim.page_alloc import min_free_kbytes, setup_per_zone_wmarks
    from allocsim.vmstat import calculate_threshold

    cpus, zones = [4, 16, 64, 1024], [512, 4096]
    on = sw.kernel_boundary(cpus, zones, patches="all")
    off = sw.kernel_boundary(cpus, zones, patches="none")
    for i, z in enumerate(zones):
        present = z << 8
        wmin, wlow, _ = setup_per_zone_wmarks(min_free_kbytes(present * 4), [present])[0]
        for j, n in enumerate(cpus):
            assert on["max_drift"][i, j] == n * calculate_threshold(present, n)
            assert on["tolerate_drift"][i, j] == wlow - wmin
    past = on["max_drift"] > on["tolerate_drift"]
    assert past.any() and not past.all()  # the grid straddles the boundary
    assert ((on["percpu_drift_mark"] > 0) == past).all()
    assert (off["percpu_drift_mark"] == 0).all()  # 2.6.35 has no drift mark


def test_plot_phase_panels_draw_the_seed_means(serial):
    """One panel per patch set and measure; each cell is the mean over seeds of its runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from allocsim import plotting as ap

    df = serial.assign(zone_mib=serial["cpus"] * 64)  # a second axis for the plane
    axes = ap.plot_phase_panels(df, ("progress_vs_exact", "task_throughput"))
    assert axes.shape == (2, 2)
    mesh = axes[1, 0].collections[0]
    sel = df[df["patches"] == "none"]
    want = sel.groupby("cpus")["task_throughput"].mean().to_numpy()
    drawn = np.asarray(mesh.get_array()).reshape(-1, len(want))
    np.testing.assert_allclose(np.diag(drawn), want)
    plt.close("all")


def test_precomputed_phase_grid_is_what_the_model_gives_today():
    """The shipped grid covers phase_grid() in order, and two of its rows rerun identically
    (regenerate it with `python docs/make_docs.py phase` after a model change)."""
    shipped = sw.load_precomputed()
    grid = sw.phase_grid()
    assert len(shipped) == len(grid)
    for axis in grid.axes:
        assert list(shipped[axis]) == [p[axis] for p in grid.points], axis
    for i in shipped.index[(shipped.cpus == 32) & (shipped.seed == 1)][:2]:
        again = sweep([grid.configs[i]], baseline="exact", workers=1, progress=False).iloc[0]
        for key in ("delivered_pages", "stalled_ms", "progress_vs_exact"):
            assert again[key] == pytest.approx(shipped.loc[i, key]), (i, key)


def test_onset_finds_the_smallest_cpu_count_per_zone_size():
    """onset() gives, per zone size, the first CPU count whose seed mean (or max) passes."""
    df = pd.DataFrame(
        {
            "zone_mib": [512] * 6 + [4096] * 6,
            "cpus": [8, 8, 64, 64, 256, 256] * 2,
            "seed": [1, 2] * 6,
            "stalled_ms": [0, 0, 0, 300, 500, 700, 0, 0, 0, 0, 0, 0],
        }
    )
    assert sw.onset(df, "stalled_ms", above=0, how="max") == {512: 64, 4096: None}
    assert sw.onset(df, "stalled_ms", above=200) == {512: 256, 4096: None}  # mean 150 at 64
    assert sw.onset(df, "stalled_ms", below=1) == {512: 8, 4096: 8}
    with pytest.raises(ValueError, match="exactly one of below= and above="):
        sw.onset(df, "stalled_ms")
    assert "512 MiB: 64" in sw.describe_phase(df.assign(progress_vs_exact=1.0, patches="none"))
