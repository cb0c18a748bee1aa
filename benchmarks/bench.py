#!/usr/bin/env python
"""Benchmarks for allocsim: is the kit fast enough to teach with? (issue 6)

    python benchmarks/bench.py                 # everything, as a table (about 2-4 min on 2 cores)
    python benchmarks/bench.py --json          # one JSON object on stdout
    python benchmarks/bench.py --quick         # smoke mode: short runs, no notebooks (< 30 s)
    python benchmarks/bench.py --only rtf,memory

Sections (names for --only):

  rtf        simulated seconds per wall second for small, large, 1024 and 4096 CPUs (zone
             scaled), patches off and on; also µs per simulated ms and ns per CPU-tick.
  widget     the livelock demo in allocsim/widgets.py: control change -> first live-plot frame
             of the new run, and -> end of that run (median of several), on the Agg backend.
  notebooks  headless execution of every notebooks/*.ipynb (nbclient, kernel python3).
  memory     tracemalloc peak and ru_maxrss delta (fresh subprocess per case) for a page-level
             Zone and a Simulation at 1024 CPUs with 1, 4 and 16 GiB, and a Zone at 4096 CPUs.
  sweep      allocsim.sweep's 24-run grid (tests/test_sweep.py's, 200 ms runs) and a 24-run grid
             of 1 s runs at 64-256 CPUs: serially, on 2 local processes and on a Dask
             LocalCluster of 2 workers (start-up included), as wall time and ratio to serial.

Progress goes to stderr. The exit status is 1 if a measurement raised an error (it is reported
in its row); a section that is "not available" or "skipped" is not an error.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout even without `pip install -e .`

SECTIONS = ("rtf", "widget", "notebooks", "memory", "sweep")
PAGES_PER_GIB = 262144  # 4 KiB pages
MIB = 1 << 20


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def error_text(exc: BaseException) -> str:
    """One line: the exception (for a notebook cell, the error the cell raised)."""
    if getattr(exc, "ename", None):  # nbclient's CellExecutionError
        return f"{exc.ename}: {exc.evalue}".splitlines()[0][:300]
    return (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0][:300]


# --- the machine ----------------------------------------------------------------------------


def machine() -> dict:
    """What the numbers were measured on."""
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    import matplotlib
    import numpy

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "allocsim_commit": commit or "unknown",
    }


# --- 1. real-time factor ----------------------------------------------------------------------

RTF_CASES = [  # (label, preset name, overrides); "large" scales the zone with the CPUs
    ("small", "small", {}),
    ("large", "large", {}),
    ("steady", "steady", {}),
    ("1024 CPUs", "large", {"cpus": 1024}),
    ("4096 CPUs", "large", {"cpus": 4096}),
]


def bench_rtf(quick: bool) -> dict:
    from allocsim.config import preset
    from allocsim.sim import Simulation

    duration_ms = 1000 if quick else 10_000
    try:  # warm up imports and numpy's first calls so the first case is not charged for them
        Simulation(preset("large", cpus=64, duration_ms=50)).run()
    except Exception:  # a broken preset shows up in its own row below
        pass
    rows = []
    for label, name, overrides in RTF_CASES:
        for patches in ("none", "all"):
            row = {"case": label, "patches": patches, "duration_ms": duration_ms}
            try:
                cfg = preset(name, patches=patches, seed=1, duration_ms=duration_ms, **overrides)
                row.update(cpus=cfg.cpus, zone_mib=cfg.zone_mib)
                start = time.perf_counter()
                result = Simulation(cfg).run()  # construction included: a user waits for both
                wall = time.perf_counter() - start
                ticks = int(result.simulated_ms)
                row.update(
                    wall_s=wall,
                    simulated_ms=ticks,
                    rtf=ticks / 1000 / wall,
                    us_per_tick=wall * 1e6 / ticks,
                    ns_per_cpu_tick=wall * 1e9 / (ticks * cfg.cpus),
                )
            except Exception as exc:  # report it in the row and go on
                row["error"] = error_text(exc)
            log(
                f"  rtf {label:>9} patches={patches:<4} "
                + (f"{row['wall_s']:.2f} s wall" if "wall_s" in row else row["error"])
            )
            rows.append(row)
    return {"status": "ok", "duration_ms": duration_ms, "rows": rows}


# --- 2. widget latency ------------------------------------------------------------------------
#
# What this needs from allocsim/widgets.py (checked in this order):
#   * a factory for the livelock demo: a callable whose name contains "livelock"
#     (LivelockDemo, livelock_demo, ...), callable with no arguments, returning the demo object;
#   * the live-plot figure: demo.fig or demo.figure (a matplotlib Figure);
#   * a control to change: demo.controls["seed"] (or a `seed` attribute holding a widget with
#     .value); "cpus" is used if there is no seed control;
#   * a synchronous helper that blocks until the current run has finished: demo.wait(),
#     demo.wait_idle() or demo.join() (a `timeout` keyword is passed if accepted);
#   * the first frame: demo.on_frame(callback) if it exists, called after each live-plot update
#     (first argument, if any: the simulated ms shown); otherwise every call of
#     fig.canvas.draw_idle / fig.canvas.draw after the change counts as a frame.

FACTORY_NAMES = ("LivelockDemo", "livelock_demo", "LiveLockDemo")
WAIT_NAMES = ("wait", "wait_idle", "wait_for_run", "join")


def _find_factory(mod):
    for name in FACTORY_NAMES:
        if callable(getattr(mod, name, None)):
            return name, getattr(mod, name)
    for name in sorted(dir(mod)):
        obj = getattr(mod, name)
        if "livelock" in name.lower() and callable(obj) and not name.startswith("_"):
            return name, obj
    return None, None


def _find_control(demo):
    controls = getattr(demo, "controls", None)
    for name in ("seed", "cpus"):
        widget = None
        if controls is not None:
            try:
                widget = controls[name]
            except (KeyError, TypeError, IndexError):
                widget = getattr(controls, name, None)
        if widget is None:
            widget = getattr(demo, name, None)
        if widget is not None and hasattr(widget, "value"):
            return name, widget
    return None, None


def _plotted(fig) -> tuple:
    """A fingerprint of the lines a figure shows: (points, last values) per line."""
    out = []
    for ax in fig.axes:
        for line in ax.get_lines():
            y = line.get_ydata()
            n = len(y)
            out.append((n, repr(list(y[-4:])) if n else ""))
    return tuple(out)


def _call_wait(fn, timeout: float):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    return fn(timeout=timeout) if "timeout" in params else fn()


def bench_widget(quick: bool) -> dict:
    reps = 2 if quick else 5
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    try:
        import allocsim.widgets as widgets
    except ModuleNotFoundError as exc:
        if exc.name != "allocsim.widgets":
            return {
                "status": "not available",
                "reason": f"import allocsim.widgets: {error_text(exc)}",
            }
        return {"status": "not available", "reason": "allocsim/widgets.py does not exist"}
    except Exception as exc:
        return {"status": "not available", "reason": f"import allocsim.widgets: {error_text(exc)}"}

    factory_name, factory = _find_factory(widgets)
    if factory is None:
        return {
            "status": "not available",
            "reason": "no livelock demo factory in allocsim.widgets (looked for "
            f"{', '.join(FACTORY_NAMES)} or a name containing 'livelock')",
        }
    try:
        # Live and threaded, as in a notebook with ipympl: frames come from a background run.
        params = inspect.signature(factory).parameters
        accepts = "live" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
        demo = factory(live=True, threaded=True) if accepts else factory()
    except Exception as exc:
        return {"status": "not available", "reason": f"{factory_name}(): {error_text(exc)}"}

    fig = getattr(demo, "fig", None) or getattr(demo, "figure", None)
    if not isinstance(fig, Figure):
        fig = (
            next((v for v in vars(demo).values() if isinstance(v, Figure)), None)
            if hasattr(demo, "__dict__")
            else None
        )
    control_name, control = _find_control(demo)
    wait = next((getattr(demo, n) for n in WAIT_NAMES if callable(getattr(demo, n, None))), None)
    missing = [
        what
        for what, ok in (
            ("a matplotlib Figure at demo.fig", fig is not None),
            ("a seed or cpus control", control is not None),
            ("a wait()/wait_idle()/join() helper", wait is not None),
        )
        if not ok
    ]
    if missing:
        return {
            "status": "not available",
            "reason": f"{factory_name}() has no " + "; no ".join(missing),
        }

    # Frame hook: the module's own callback if it has one, else watch the canvas draws. A frame
    # of the new run is a callback whose first argument (simulated ms) is > 0, or a draw that
    # shows plotted lines that are not empty and differ from those before the change (so a draw
    # that only clears the axes, or repaints the old run, does not count).
    frames: list[tuple[float, object]] = []
    lock = threading.Lock()

    closing = threading.Event()  # ends the emulated front end below
    if callable(getattr(demo, "on_frame", None)):
        hook = "demo.on_frame callback"

        def on_frame(*args, **_kw):
            with lock:
                frames.append((time.perf_counter(), args[0] if args else None))

        demo.on_frame(on_frame)

        def is_new(key, _before) -> bool:
            return not isinstance(key, (int, float)) or key > 0
    else:
        # Behave like ipympl: draw_idle only asks the front end for a picture, and the front end
        # (here a "browser" thread) has the kernel render one when it is ready for it, skipping
        # requests that arrive while a picture is on its way. A frame is counted when a picture
        # of the new run has been rendered: plotted lines not empty and not those of before.
        hook = "ipympl-like front end: draw_idle requests, a browser thread renders"
        canvas = fig.canvas
        render = canvas.draw
        requested = threading.Event()
        demo_lock = getattr(demo, "_lock", None) or threading.Lock()

        def draw_idle(*_a, **_kw):
            requested.set()

        def browser():
            while not closing.is_set():
                if not requested.wait(0.05):
                    continue
                requested.clear()
                with demo_lock:
                    render()
                    key = _plotted(fig)
                with lock:
                    frames.append((time.perf_counter(), key))

        canvas.draw_idle = draw_idle
        canvas.draw = draw_idle  # a final draw() is a push of the same picture
        front_end = threading.Thread(target=browser, daemon=True)
        front_end.start()

        def is_new(key, before) -> bool:
            return key != before and any(n for n, _ in key)

    try:
        _call_wait(wait, 60)  # a run the demo may have started on creation
        first, whole, per_run = [], [], []
        value = control.value
        for rep in range(reps):
            # seed: a new run of the same size; cpus: alternate between two sizes
            if control_name == "seed":
                value = value + 1
            else:
                value = value // 2 if rep % 2 == 0 else value * 2
            before = _plotted(fig)
            with lock:
                frames.clear()
            start = time.perf_counter()
            control.value = value
            _call_wait(wait, 60)
            end = time.perf_counter()
            time.sleep(0.3)  # let the front end fetch the last picture
            with lock:
                shown = [t for t, key in frames if is_new(key, before)]
                per_run.append(len(frames))
            if not shown:
                return {
                    "status": "not available",
                    "hook": hook,
                    "reason": f"changing {control_name} produced no new frame ({hook})",
                }
            first.append(shown[0] - start)
            whole.append(end - start)
            log(
                f"  widget rep {rep + 1}/{reps}: first frame {1000 * first[-1]:.0f} ms, "
                f"run {whole[-1]:.2f} s, {per_run[-1]} frames"
            )
    except Exception as exc:
        return {"status": "error", "error": error_text(exc), "hook": hook}
    finally:
        closing.set()
    return {
        "status": "ok",
        "factory": factory_name,
        "control": control_name,
        "hook": hook,
        "backend": matplotlib.get_backend(),
        "reps": reps,
        "first_frame_ms": 1000 * statistics.median(first),
        "run_s": statistics.median(whole),
        "first_frame_ms_all": [1000 * x for x in first],
        "run_s_all": whole,
        "frames_per_run": per_run,
    }


# --- 3. notebooks -----------------------------------------------------------------------------


def bench_notebooks(quick: bool) -> dict:
    if quick:
        return {"status": "skipped", "reason": "--quick"}
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        return {"status": "skipped", "reason": "no notebooks in notebooks/"}
    import nbformat
    from nbclient import NotebookClient

    # The kernel inherits this: static inline figures, as in the handouts.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    rows, total = [], 0.0
    for path in paths:
        row = {"notebook": path.name}
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        start = time.perf_counter()
        try:
            client.execute()
        except Exception as exc:  # CellExecutionError, CellTimeoutError, ...
            row["error"] = error_text(exc)
        row["wall_s"] = time.perf_counter() - start
        total += row["wall_s"]
        log(f"  notebook {path.name}: {row['wall_s']:.1f} s" + (" ERROR" if "error" in row else ""))
        rows.append(row)
    return {"status": "ok", "total_s": total, "rows": rows}


# --- 4. memory --------------------------------------------------------------------------------

MEMORY_CASES = [  # (kind, GiB, CPUs)
    ("Zone", 1, 1024),
    ("Zone", 4, 1024),
    ("Zone", 16, 1024),
    ("Zone", 16, 4096),
    ("Simulation", 1, 1024),
    ("Simulation", 4, 1024),
    ("Simulation", 16, 1024),
    ("Simulation", 16, 4096),  # not asked for, but shows that a Simulation grows with CPUs too
]


def _maxrss_bytes() -> int:
    """This process's peak resident set size.

    Linux keeps ru_maxrss across fork and execve, so a child of this (large) benchmark process
    would start at the parent's peak and report a delta of 0. VmHWM in /proc/self/status is the
    same high-water mark for the child's own address space, so it is read where it exists.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def memory_case(kind: str, gib: int, cpus: int) -> dict:
    """Run in a fresh subprocess: ru_maxrss delta of one build, then its tracemalloc peak."""
    from allocsim.config import preset
    from allocsim.mmzone import Zone
    from allocsim.sim import Simulation

    def build():
        if kind == "Zone":
            return Zone(gib * PAGES_PER_GIB, cpus)
        sim = Simulation(preset("large", cpus=cpus, zone_mib=gib * 1024, duration_ms=100))
        sim.run()
        return sim

    # Warm up with a tiny build so lazily created module state is not charged to the case.
    if kind == "Zone":
        Zone(1024, 1)
    else:
        Simulation(preset("large", cpus=4, zone_mib=1024, duration_ms=5)).run()
    gc.collect()
    before = _maxrss_bytes()
    obj = build()
    rss_delta = _maxrss_bytes() - before
    del obj
    gc.collect()
    tracemalloc.start()  # after the RSS measurement: tracing costs memory of its own
    build()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "kind": kind,
        "gib": gib,
        "cpus": cpus,
        "present_pages": gib * PAGES_PER_GIB,
        "tracemalloc_peak": peak,
        "rss_delta": rss_delta,
    }


def bench_memory(quick: bool) -> dict:
    rows = []
    for kind, gib, cpus in MEMORY_CASES:
        row = {"kind": kind, "gib": gib, "cpus": cpus}
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-case", f"{kind}:{gib}:{cpus}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode == 0:
            row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            log(
                f"  memory {kind} {gib} GiB x {cpus} CPUs: peak "
                f"{row['tracemalloc_peak'] / MIB:.1f} MiB, rss +{row['rss_delta'] / MIB:.1f} MiB"
            )
        else:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            row["error"] = lines[-1][:300] if lines else f"exit status {proc.returncode}"
            log(f"  memory {kind} {gib} GiB x {cpus} CPUs: {row['error']}")
        rows.append(row)

    # The claims, in numbers: growth with zone size (1 -> 16 GiB) against the page map the
    # page-level Zone needs (one int8 per page), and growth with CPUs (1024 -> 4096).
    def peak(kind, gib, cpus):
        r = next((r for r in rows if (r["kind"], r["gib"], r["cpus"]) == (kind, gib, cpus)), {})
        return r.get("tracemalloc_peak")

    checks = {}
    z1, z16, z16x4096 = peak("Zone", 1, 1024), peak("Zone", 16, 1024), peak("Zone", 16, 4096)
    if z1 is not None and z16 is not None:
        checks["zone_growth_1_to_16_gib"] = z16 - z1
        checks["page_map_growth_1_to_16_gib"] = 15 * PAGES_PER_GIB  # one byte per page
    if z16 is not None and z16x4096 is not None:
        checks["zone_growth_per_cpu_1024_to_4096"] = (z16x4096 - z16) / 3072
    s1, s16 = peak("Simulation", 1, 1024), peak("Simulation", 16, 1024)
    if s1 is not None and s16 is not None:
        checks["simulation_growth_1_to_16_gib"] = s16 - s1
    s16x4096 = peak("Simulation", 16, 4096)
    if s16 is not None and s16x4096 is not None:
        checks["simulation_growth_per_cpu_1024_to_4096"] = (s16x4096 - s16) / 3072
    return {"status": "ok", "rows": rows, "checks": checks}


# --- report -----------------------------------------------------------------------------------


# --- 5. sweep ---------------------------------------------------------------------------------


def bench_sweep(quick: bool) -> dict:
    from allocsim.sweep import Grid, sweep

    grids = {
        "24 × 200 ms, 4-16 CPUs (+12 exact)": Grid(
            {"cpus": [4, 8, 16], "patches": ["none", "all"], "seed": [1, 2, 3, 4]},
            preset="large",
            duration_ms=200,
        ),
        "24 × 1 s, 64-256 CPUs (+12 exact)": Grid(
            {"cpus": [64, 256], "patches": ["none", "all"], "seed": [1, 2, 3, 4, 5, 6]},
            preset="large",
            duration_ms=1000,
        ),
    }
    if quick:
        grids = dict(list(grids.items())[:1])
    try:
        import distributed
    except ImportError:
        distributed = None
    rows = []
    for name, grid in grids.items():
        ways = {"serial": dict(workers=1), "local processes (2)": dict(workers=2)}
        frames = {}
        for way, kw in ways.items():
            start = time.perf_counter()
            frames[way] = sweep(grid, baseline="exact", progress=False, **kw)
            rows.append({"grid": name, "way": way, "wall_s": time.perf_counter() - start})
        if distributed is not None and not quick:
            start = time.perf_counter()
            with distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, dashboard_address=None
            ) as cluster:
                frames["dask"] = sweep(
                    grid, baseline="exact", progress=False, scheduler=cluster.scheduler_address
                )
            rows.append(
                {
                    "grid": name,
                    "way": "Dask LocalCluster (2)",
                    "wall_s": time.perf_counter() - start,
                }
            )
        same = all(f.equals(frames["serial"]) for f in frames.values())
        serial = next(r["wall_s"] for r in rows if r["grid"] == name and r["way"] == "serial")
        for r in rows:
            if r["grid"] == name:
                r["vs_serial"] = r["wall_s"] / serial
                r["same_frame"] = same
        log(
            f"  sweep {name}: "
            + ", ".join(f"{r['way']} {r['wall_s']:.1f} s" for r in rows if r["grid"] == name)
        )
    return {"status": "ok", "rows": rows}


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells):  # the first column and text to the left, numbers to the right
        return "  ".join(
            c.rjust(w) if i and c[:1].isdigit() else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def print_rtf(r: dict) -> None:
    print(
        f"1. Real-time factor ({r['duration_ms'] / 1000:g} simulated s per case, "
        "construction included)"
    )
    rows = []
    for row in r["rows"]:
        head = [
            row["case"],
            row["patches"],
            str(row.get("cpus", "?")),
            str(row.get("zone_mib", "?")),
        ]
        if "error" in row:
            rows.append(head + ["ERROR: " + row["error"], "", "", ""])
        else:
            rows.append(
                head
                + [
                    f"{row['wall_s']:.2f}",
                    f"{row['rtf']:.1f}x",
                    f"{row['us_per_tick']:.0f}",
                    f"{row['ns_per_cpu_tick']:.0f}",
                ]
            )
    print(
        table(
            [
                "case",
                "patches",
                "CPUs",
                "zone MiB",
                "wall s",
                "sim s / wall s",
                "µs / sim ms",
                "ns / CPU-tick",
            ],
            rows,
        )
    )


def print_widget(w: dict) -> None:
    print("2. Widget latency (livelock demo)")
    print(
        f"   {w['factory']}(), change {w['control']}, frames by {w['hook']}, "
        f"backend {w['backend']}, median of {w['reps']}"
    )
    print(
        f"   control change -> first frame of the new run: {w['first_frame_ms']:.0f} ms "
        f"(all: {', '.join(f'{x:.0f}' for x in w['first_frame_ms_all'])})"
    )
    print(
        f"   control change -> end of the run:             {w['run_s']:.2f} s "
        f"(all: {', '.join(f'{x:.2f}' for x in w['run_s_all'])})"
    )


def print_notebooks(n: dict) -> None:
    print("3. Notebooks, headless (nbclient, kernel python3, 120 s per cell, inline backend)")
    rows = [
        [r["notebook"], f"{r['wall_s']:.1f}", ("ERROR: " + r["error"]) if "error" in r else "ok"]
        for r in n["rows"]
    ]
    rows.append(["total", f"{n['total_s']:.1f}", ""])
    print(table(["notebook", "wall s", "result"], rows))


def print_memory(mem: dict) -> None:
    print("4. Peak memory (tracemalloc peak; peak RSS delta, one fresh process per case)")
    rows = []
    for row in mem["rows"]:
        head = [row["kind"], str(row["gib"]), str(row["cpus"])]
        if "error" in row:
            rows.append(head + ["ERROR: " + row["error"], ""])
        else:
            rows.append(
                head + [f"{row['tracemalloc_peak'] / MIB:.1f}", f"{row['rss_delta'] / MIB:.1f}"]
            )
    print(table(["object", "GiB", "CPUs", "tracemalloc MiB", "RSS delta MiB"], rows))
    c = mem["checks"]
    if "zone_growth_1_to_16_gib" in c:
        print(
            f"   Zone 1 -> 16 GiB at 1024 CPUs: +{c['zone_growth_1_to_16_gib'] / MIB:.1f} MiB "
            f"(the page map alone, 1 byte per page: "
            f"+{c['page_map_growth_1_to_16_gib'] / MIB:.1f} MiB)"
        )
    if "zone_growth_per_cpu_1024_to_4096" in c:
        print(
            f"   Zone 16 GiB, 1024 -> 4096 CPUs: "
            f"+{c['zone_growth_per_cpu_1024_to_4096'] / 1024:.2f} KiB per added CPU"
        )
    if "simulation_growth_1_to_16_gib" in c:
        print(
            f"   Simulation 1 -> 16 GiB at 1024 CPUs: "
            f"{c['simulation_growth_1_to_16_gib'] / MIB:+.1f} MiB (counts only, no page map)"
        )
    if "simulation_growth_per_cpu_1024_to_4096" in c:
        print(
            f"   Simulation 16 GiB, 1024 -> 4096 CPUs: "
            f"+{c['simulation_growth_per_cpu_1024_to_4096'] / 1024:.2f} KiB per added CPU"
        )


def print_sweep(sw: dict) -> None:
    print("5. Sweeps (allocsim.sweep, exact baseline; wall time includes pool/cluster start-up)")
    rows = [
        [r["grid"], r["way"], f"{r['wall_s']:.1f}", f"{r['vs_serial']:.2f}", str(r["same_frame"])]
        for r in sw["rows"]
    ]
    print(table(["grid", "run on", "wall s", "× serial", "same DataFrame"], rows))


PRINTERS = {
    "rtf": print_rtf,
    "widget": print_widget,
    "notebooks": print_notebooks,
    "memory": print_memory,
    "sweep": print_sweep,
}
TITLES = {
    "rtf": "1. Real-time factor",
    "widget": "2. Widget latency (livelock demo)",
    "notebooks": "3. Notebooks, headless",
    "memory": "4. Peak memory",
    "sweep": "5. Sweeps",
}


def print_report(report: dict) -> None:
    m = report["machine"]
    print(
        f"allocsim benchmarks ({'quick' if report['quick'] else 'full'} mode), "
        f"commit {m['allocsim_commit']}"
    )
    print(
        f"machine: {m['cpu_model']}, {m['cores']} cores ({m['cores_usable']} usable), "
        f"{m['memory_gib']} GiB RAM; {m['os']}"
    )
    print(f"python {m['python']}, numpy {m['numpy']}, matplotlib {m['matplotlib']}")
    for name in SECTIONS:
        sec = report["sections"].get(name)
        if sec is None:
            continue
        print()
        if sec["status"] == "ok":
            PRINTERS[name](sec)
        else:  # skipped, not available, error: one line saying why
            print(f"{TITLES[name]}\n   {sec['status']}: {sec.get('reason') or sec.get('error')}")
    print(f"\nwall time of this benchmark: {report['wall_s']:.1f} s")


def has_errors(report: dict) -> bool:
    for sec in report["sections"].values():
        if sec.get("status") == "error" or any("error" in r for r in sec.get("rows", [])):
            return True
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke mode: 1 simulated s per case, 2 widget runs, no notebooks",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})",
    )
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)  # KIND:GIB:CPUS, internal
    args = parser.parse_args(argv)

    if args.memory_case:
        kind, gib, cpus = args.memory_case.split(":")
        print(json.dumps(memory_case(kind, int(gib), int(cpus))))
        return 0

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    start = time.perf_counter()
    report = {"machine": machine(), "quick": args.quick, "sections": {}}
    runners = {
        "rtf": bench_rtf,
        "widget": bench_widget,
        "notebooks": bench_notebooks,
        "memory": bench_memory,
        "sweep": bench_sweep,
    }
    for name in SECTIONS:
        if name in only:
            log(f"{name} ...")
            try:
                report["sections"][name] = runners[name](args.quick)
            except Exception as exc:  # one broken section must not hide the others
                report["sections"][name] = {"status": "error", "error": error_text(exc)}
                log(f"  {name}: {error_text(exc)}")
    report["wall_s"] = time.perf_counter() - start

    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 1 if has_errors(report) else 0


if __name__ == "__main__":
    sys.exit(main())
