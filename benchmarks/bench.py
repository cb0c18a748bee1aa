#!/usr/bin/env python
"""Benchmarks for allocsim: is the kit fast enough to teach with? (issues 6 and 13)

    python benchmarks/bench.py                 # everything, as tables (about 5-10 min on 2 cores)
    python benchmarks/bench.py --json          # one JSON object on stdout
    python benchmarks/bench.py --quick         # smoke mode: short runs, no notebooks
    python benchmarks/bench.py --only rtf,startup

Each figure is given for both engines, "python" (the readable reference) and "compiled" (numba),
where this allocsim has them; an engine it lacks is reported as "not available", with the reason.

Sections (names for --only):

  rtf        real-time factor = simulated s / process CPU s (median of 3 runs, construction
             included) for small, large, steady, 1024 and 4096 CPUs (zone scaled), patches off
             and on; also µs per simulated ms and ns per CPU-tick. Before each timed run, the
             speed probe (a fixed integer loop) says how fast the shared machine is just then.
  widget     the livelock demo (allocsim.widgets), live and threaded, in one process per engine
             started with ALLOCSIM_ENGINE: CPU slider 256 -> 1024 -> 256 and a seed change, each
             starting a 4 s run, after one unmeasured run; from the change to the first frame
             of the new run (median, and the first move to 1024 CPUs alone) and to its last
             frame, with an emulated ipympl front end that renders and PNG-encodes each picture.
  startup    fresh processes: `python -c pass`, `import allocsim`, the compiled engine's cold
             compile (allocsim.engine.warm() with an empty NUMBA_CACHE_DIR) and the warm start
             `python -m allocsim run --seconds 0.001 --engine E` with that cache populated.
  notebooks  headless execution of every notebooks/*.ipynb (nbclient, kernel python3), on the
             default engine.
  memory     tracemalloc peak, peak-RSS delta and whole-process peak RSS (fresh subprocess per
             case) for a page-level Zone and a Simulation at 1024 CPUs with 1, 4 and 16 GiB, and
             at 4096 CPUs.
  sweep      allocsim.sweep's 24-run grid (tests/test_sweep.py's, 200 ms runs) and a 24-run grid
             of 1 s runs at 64-256 CPUs: serially, on 2 local processes and on a Dask
             LocalCluster of 2 workers (start-up included), as wall time and ratio to serial.

The report ends with issue 13's targets, each judged from this run's figures on the compiled
engine (met / not met / not measured), the Python engine's figure beside it.

Progress goes to stderr. The exit status is 1 if a measurement raised an error (it is reported
in its row); a section that is "not available" or "skipped" is not an error.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout even without `pip install -e .`

SECTIONS = ("rtf", "widget", "startup", "notebooks", "memory", "sweep")
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


# --- the machine's speed, now ---------------------------------------------------------------
#
# A shared virtual machine does not run at one speed: its host switches it between speeds for
# seconds or minutes at a time (on the development machine, by up to 2.3x). A figure taken in a
# slow spell says as much about the host as about the code. So the benchmark times a fixed
# piece of work, the *speed probe*, before each timed run and at the start and end of each
# section, and reports it beside the figures: a reader can see which figures came from a slow
# spell. The probe is 200,000 steps of a 32-bit linear congruential generator in the
# interpreter, best of 3 (about 25 ms); it needs neither allocsim nor numba. On the development
# machine it followed the compiled core's speed (24-27 ms with 1024 CPUs at 39-47x real time,
# 30-34 ms at 32-38x), where a numpy sort of 2 MiB hardly moved.

_PROBE_STEPS = 200_000


def speed_probe() -> float:
    """Milliseconds for the fixed piece of work (best of 3): lower is a faster machine."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        x = 0
        for i in range(_PROBE_STEPS):
            x = (x * 1103515245 + i) & 0xFFFFFFFF
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def probe_summary(report: dict) -> dict | None:
    """The run's probes: the fastest (the machine at its best in this run), the slowest, and
    how many of the timed real-time runs were taken more than 1.25x slower than the best."""
    probes = [p["ms"] for p in report.get("probes", [])]
    rows = report.get("sections", {}).get("rtf", {}).get("rows", [])
    per_run = [ms for r in rows for ms in r.get("probe_ms_all", [])]
    probes += per_run
    if not probes:
        return None
    best = min(probes)
    return {
        "best_ms": best,
        "worst_ms": max(probes),
        "slow_runs": sum(ms > 1.25 * best for ms in per_run),
        "runs": len(per_run),
    }


# --- engines ----------------------------------------------------------------------------------
#
# allocsim may have two engines: the readable kernel-named Python ("python") and a numba core
# ("compiled"), chosen by Simulation(config, engine=...), `--engine` on the command line and
# ALLOCSIM_ENGINE for the process. Older code has only the Python one and no engine= parameter;
# the benchmark then reports the compiled engine as "not available" and times the Python one.

ENGINES = ("python", "compiled")
_SUPPORT: dict | None = None


def engine_parameter() -> bool:
    """Does this allocsim's Simulation take ``engine=``?"""
    from allocsim.sim import Simulation

    try:
        return "engine" in inspect.signature(Simulation).parameters
    except (TypeError, ValueError):
        return False


def engine_support() -> dict:
    """{engine: None if it can be timed, else one line saying why not} (computed once).

    An engine counts only if a Simulation built with it says it runs on it (``sim.engine``):
    without numba, a compiled request may fall back to Python, and that must not be timed as
    the compiled engine.
    """
    global _SUPPORT
    if _SUPPORT is not None:
        return _SUPPORT
    if not engine_parameter():
        _SUPPORT = {
            "python": None,
            "compiled": "this allocsim has one engine (Simulation takes no engine= argument)",
        }
        return _SUPPORT
    from allocsim.config import preset
    from allocsim.sim import Simulation

    _SUPPORT = {}
    for engine in ENGINES:
        try:
            sim = Simulation(preset("small", duration_ms=1), engine=engine)
            used = getattr(sim, "engine", engine)
            _SUPPORT[engine] = (
                None if used == engine else f"Simulation(engine={engine!r}) runs the {used} engine"
            )
        except Exception as exc:  # numba missing, a broken engine, ...
            _SUPPORT[engine] = f"Simulation(engine={engine!r}): {error_text(exc)}"
    return _SUPPORT


def new_simulation(cfg, engine: str):
    """A Simulation of ``cfg`` on ``engine`` (code without engines: the one it has)."""
    from allocsim.sim import Simulation

    return Simulation(cfg, engine=engine) if engine_parameter() else Simulation(cfg)


def default_engine() -> str:
    """The engine a plain Simulation() picks here (ALLOCSIM_ENGINE and numba decide)."""
    from allocsim.config import preset
    from allocsim.sim import Simulation

    return getattr(Simulation(preset("small", duration_ms=1)), "engine", "python")


def warm_compiled() -> float:
    """allocsim.engine.warm(): compile, or load from numba's cache; its wall time in s."""
    import allocsim.engine

    start = time.perf_counter()
    allocsim.engine.warm()
    return time.perf_counter() - start


# --- 1. real-time factor ----------------------------------------------------------------------

RTF_CASES = [  # (label, preset name, overrides); "large" scales the zone with the CPUs
    ("small", "small", {}),
    ("large", "large", {}),
    ("steady", "steady", {}),
    ("1024 CPUs", "large", {"cpus": 1024}),
    ("4096 CPUs", "large", {"cpus": 4096}),
]


def time_run(cfg, engine: str) -> tuple[float, float, int]:
    """Build and run one Simulation: (process CPU s, wall s, simulated ms).

    Construction is included (a user waits for both). CPU time of the whole process is what
    the real-time factor divides by: on a shared machine it does not count the time this
    process waited for a core, which wall time does.
    """
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = new_simulation(cfg, engine).run()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu, wall, int(result.simulated_ms)


def bench_rtf(quick: bool) -> dict:
    from allocsim.config import preset

    duration_ms = 1000 if quick else 10_000
    reps = 1 if quick else 3
    engines = {}
    for engine, reason in engine_support().items():
        if reason:
            engines[engine] = {"status": "not available", "reason": reason}
            log(f"  rtf engine {engine}: not available: {reason}")
            continue
        info = {"status": "ok"}
        try:
            if engine == "compiled":  # compile (or load the cache) before anything is timed
                info["warm_s"] = warm_compiled()
            # warm up imports and numpy's first calls so the first case is not charged for them
            time_run(preset("large", cpus=64, duration_ms=50), engine)
        except Exception as exc:
            info = {"status": "error", "error": error_text(exc)}
            log(f"  rtf engine {engine}: warm-up: {info['error']}")
        engines[engine] = info
    timed = [e for e in ENGINES if engines[e]["status"] == "ok"]
    rows = []
    for label, name, overrides in RTF_CASES:
        for patches in ("none", "all"):
            for engine in timed:
                row = {
                    "case": label,
                    "patches": patches,
                    "engine": engine,
                    "duration_ms": duration_ms,
                }
                try:
                    cfg = preset(
                        name, patches=patches, seed=1, duration_ms=duration_ms, **overrides
                    )
                    row.update(cpus=cfg.cpus, zone_mib=cfg.zone_mib)
                    runs, probes = [], []
                    for _ in range(reps):
                        probes.append(speed_probe())
                        runs.append(time_run(cfg, engine))
                    ticks = runs[0][2]
                    cpu = statistics.median(r[0] for r in runs)
                    wall = statistics.median(r[1] for r in runs)
                    row.update(
                        reps=reps,
                        cpu_s=cpu,
                        cpu_s_all=[r[0] for r in runs],
                        probe_ms_all=probes,  # the speed probe just before each run
                        wall_s=wall,
                        simulated_ms=ticks,
                        rtf=ticks / 1000 / cpu,
                        rtf_wall=ticks / 1000 / wall,
                        us_per_tick=cpu * 1e6 / ticks,
                        ns_per_cpu_tick=cpu * 1e9 / (ticks * cfg.cpus),
                    )
                except Exception as exc:  # report it in the row and go on
                    row["error"] = error_text(exc)
                log(
                    f"  rtf {label:>9} patches={patches:<4} {engine:<8} "
                    + (f"{row['rtf']:.1f}x real time" if "rtf" in row else row["error"])
                )
                rows.append(row)
    return {
        "status": "ok",
        "duration_ms": duration_ms,
        "reps": reps,
        "engines": engines,
        "rows": rows,
    }


# --- 2. widget latency ------------------------------------------------------------------------
#
# What this needs from allocsim.widgets (checked in this order):
#   * a factory for the livelock demo: a callable whose name contains "livelock"
#     (LivelockDemo, livelock_demo, ...), returning the demo object;
#   * the live-plot figure: demo.fig or demo.figure (a matplotlib Figure);
#   * the controls demo.controls["cpus"] and demo.controls["seed"] (widgets with .value);
#   * a synchronous helper that blocks until the current run has finished: demo.wait(),
#     demo.wait_idle() or demo.join() (a `timeout` keyword is passed if accepted).
#
# Each engine is timed in its own process with ALLOCSIM_ENGINE set before allocsim is imported:
# the demo builds its Simulations with the default engine, as in a notebook whose kernel was
# started with that variable. The process checks which engine the demo's Simulation reports.

FACTORY_NAMES = ("LivelockDemo", "livelock_demo", "LiveLockDemo")
WAIT_NAMES = ("wait", "wait_idle", "wait_for_run", "join")
LIVE_RUN_MS = 4000  # the "4 s live run"
# One repetition: the CPU slider up to 1024 and back to 256, then a new seed at 256 CPUs.
WIDGET_CHANGES = (("cpus", 1024), ("cpus", 256), ("seed", None))


def _find_factory(mod):
    for name in FACTORY_NAMES:
        if callable(getattr(mod, name, None)):
            return name, getattr(mod, name)
    for name in sorted(dir(mod)):
        obj = getattr(mod, name)
        if "livelock" in name.lower() and callable(obj) and not name.startswith("_"):
            return name, obj
    return None, None


def _find_control(demo, name):
    controls = getattr(demo, "controls", None)
    widget = None
    if controls is not None:
        try:
            widget = controls[name]
        except (KeyError, TypeError, IndexError):
            widget = getattr(controls, name, None)
    if widget is None:
        widget = getattr(demo, name, None)
    return widget if widget is not None and hasattr(widget, "value") else None


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


class PngEncoder:
    """The picture ipympl sends: matplotlib's webagg ``get_diff_image``, done here.

    A PNG of the whole Agg buffer the first time (and when the size changes or a pixel is
    transparent), else a PNG of the pixels that changed since the last picture (the rest 0).
    """

    def __init__(self):
        self.last = None

    def encode(self, canvas) -> int:
        import numpy as np
        from PIL import Image

        pixels = np.asarray(canvas.get_renderer().buffer_rgba())
        buff = pixels.view(np.uint32).squeeze(2)
        if self.last is None or buff.shape != self.last.shape or (pixels[:, :, 3] != 255).any():
            output = buff
        else:
            output = np.where(buff != self.last, buff, 0)
        self.last = buff.copy()
        data = output.view(dtype=np.uint8).reshape((*output.shape, 4))
        with io.BytesIO() as png:
            Image.fromarray(data).save(png, format="png")
            return len(png.getvalue())


class FrontEnd:
    """Plays ipympl's part on an Agg canvas, PNG encoding included, and records the frames.

    As matplotlib's webagg canvas (which ipympl's is) does: ``draw()`` renders and sends a
    picture at once, in the calling thread; ``blit()`` sends the current buffer at once;
    ``draw_idle()`` only tells the browser, which asks the kernel to render one picture when the
    previous one has arrived (requests in between are dropped). The browser's request is served
    here by a thread. A frame is (time the PNG was ready, fingerprint of the lines it shows).
    """

    def __init__(self, fig, lock):
        self.fig = fig
        self.lock = lock
        self.canvas = canvas = fig.canvas
        self.render = canvas.draw  # the demo's own (it may take the demo's lock)
        self.png = PngEncoder()
        self.frames: list[tuple[float, tuple]] = []
        self.frames_lock = threading.Lock()
        self.requested = threading.Event()
        self.closing = threading.Event()
        canvas.draw = self.draw
        canvas.draw_idle = self.draw_idle
        canvas.blit = self.blit
        self.thread = threading.Thread(target=self._browser, daemon=True, name="front-end")
        self.thread.start()

    def _send(self) -> None:
        with self.lock:
            self.png.encode(self.canvas)
            key = _plotted(self.fig)
        with self.frames_lock:
            self.frames.append((time.perf_counter(), key))

    def draw(self, *_a, **_kw) -> None:
        with self.lock:
            self.render()
            self._send()

    def blit(self, *_a, **_kw) -> None:
        self._send()

    def draw_idle(self, *_a, **_kw) -> None:
        self.requested.set()

    def _browser(self) -> None:
        while not self.closing.is_set():
            if self.requested.wait(0.05):
                self.requested.clear()
                self.draw()

    def take(self) -> list:
        with self.frames_lock:
            out, self.frames = self.frames, []
        return out

    def close(self) -> None:
        self.closing.set()
        self.thread.join(timeout=5)


def widget_case(engine: str, quick: bool) -> dict:
    """Time the livelock demo in this process (started with ALLOCSIM_ENGINE=engine)."""
    reps = 1 if quick else 3
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    try:
        import allocsim.widgets as widgets
    except ModuleNotFoundError as exc:
        if exc.name not in ("allocsim.widgets", "allocsim"):
            return {
                "status": "not available",
                "reason": f"import allocsim.widgets: {error_text(exc)}",
            }
        return {"status": "not available", "reason": "allocsim.widgets does not exist"}
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
        kw = {}
        if "live" in params or any(p.kind == p.VAR_KEYWORD for p in params.values()):
            kw = {"live": True, "threaded": True, "duration_ms": LIVE_RUN_MS}
        demo = factory(**kw)
    except Exception as exc:
        return {"status": "not available", "reason": f"{factory_name}(): {error_text(exc)}"}

    fig = getattr(demo, "fig", None) or getattr(demo, "figure", None)
    if not isinstance(fig, Figure):
        fig = (
            next((v for v in vars(demo).values() if isinstance(v, Figure)), None)
            if hasattr(demo, "__dict__")
            else None
        )
    controls = {name: _find_control(demo, name) for name in ("cpus", "seed", "duration_ms")}
    wait = next((getattr(demo, n) for n in WAIT_NAMES if callable(getattr(demo, n, None))), None)
    missing = [
        what
        for what, ok in (
            ("a matplotlib Figure at demo.fig", fig is not None),
            ("a cpus control", controls["cpus"] is not None),
            ("a seed control", controls["seed"] is not None),
            ("a wait()/wait_idle()/join() helper", wait is not None),
        )
        if not ok
    ]
    if missing:
        return {
            "status": "not available",
            "reason": f"{factory_name}() has no " + "; no ".join(missing),
        }

    front = FrontEnd(fig, getattr(demo, "_lock", None) or threading.RLock())
    runs = []
    try:
        _call_wait(wait, 120)  # a run the demo may have started on creation
        # Unmeasured: bring the demo to 256 CPUs and a 4 s run (each a run of its own).
        for name, value in (("duration_ms", LIVE_RUN_MS), ("cpus", 256)):
            if controls[name] is not None and controls[name].value != value:
                controls[name].value = value
                _call_wait(wait, 120)
        # and have it run once, as a shown demo does by itself (autorun): a demo made but not
        # shown has not run, and its first measured change would pay the compiled engine's
        # load in this process, which a lecturer pays when the demo first appears.
        start_run = getattr(demo, "run", None)
        if getattr(demo, "result", True) is None and callable(start_run):
            start_run()
            _call_wait(wait, 120)
        time.sleep(0.3)
        front.take()
        for rep in range(reps):
            for name, value in WIDGET_CHANGES:
                control = controls[name]
                new = control.value + 1 if value is None else value
                before = _plotted(fig)
                front.take()
                start = time.perf_counter()
                control.value = new
                _call_wait(wait, 120)
                end = time.perf_counter()
                time.sleep(0.3)  # let the front end fetch the last picture
                frames = front.take()
                with front.lock:
                    final = _plotted(fig)
                result = getattr(demo, "result", None)
                sims = getattr(demo, "sims", None) or []
                shown = [t for t, key in frames if key != before and any(n for n, _ in key)]
                last = [t for t, key in frames if key == final]
                if not shown:
                    return {
                        "status": "not available",
                        "reason": f"changing {name} produced no new frame",
                    }
                run = {
                    "control": name,
                    "value": new,
                    "cpus": controls["cpus"].value,
                    "simulated_ms": getattr(result, "simulated_ms", None),
                    "engine": getattr(sims[0], "engine", "python") if sims else None,
                    "first_frame_ms": 1000 * (shown[0] - start),
                    # the finished run's picture, encoded: the run is on screen
                    "on_screen_s": (last[0] if last else end) - start,
                    "final_frame_seen": bool(last),
                    "wait_s": end - start,
                    "frames": len(frames),
                }
                runs.append(run)
                log(
                    f"  widget {engine} rep {rep + 1}/{reps} {name}={new}: first frame "
                    f"{run['first_frame_ms']:.0f} ms, on screen {run['on_screen_s']:.2f} s, "
                    f"{run['frames']} frames"
                )
    except Exception as exc:
        return {"status": "error", "error": error_text(exc)}
    finally:
        front.close()
        stop = getattr(demo, "pause", None)
        if callable(stop):
            stop()

    used = {r["engine"] for r in runs}
    if used != {engine}:
        return {
            "status": "not available",
            "reason": f"with ALLOCSIM_ENGINE={engine} the demo ran on {', '.join(sorted(used))}",
        }

    def median(key, pick):
        vals = [r[key] for r in runs if pick(r)]
        return statistics.median(vals) if vals else None

    return {
        "status": "ok",
        "engine": engine,
        "factory": factory_name,
        "backend": matplotlib.get_backend(),
        "reps": reps,
        "first_frame_cpus_ms": median("first_frame_ms", lambda r: r["control"] == "cpus"),
        # the first change to 1024 CPUs: the first time this demo shows that machine (the
        # median's later repetitions find matplotlib's text caches warm)
        "first_frame_cpus_cold_ms": runs[0]["first_frame_ms"] if runs else None,
        "first_frame_seed_ms": median("first_frame_ms", lambda r: r["control"] == "seed"),
        "on_screen_256_s": median("on_screen_s", lambda r: r["cpus"] == 256),
        "on_screen_1024_s": median("on_screen_s", lambda r: r["cpus"] == 1024),
        "runs": runs,
    }


def bench_widget(quick: bool) -> dict:
    out = {"status": "ok", "live_run_ms": LIVE_RUN_MS, "engines": {}}
    for engine, reason in engine_support().items():
        if reason:
            out["engines"][engine] = {"status": "not available", "reason": reason}
            log(f"  widget {engine}: not available: {reason}")
            continue
        env = subprocess_env(ALLOCSIM_ENGINE=engine, MPLBACKEND="Agg")
        cmd = [sys.executable, __file__, "--widget-case", engine] + (["--quick"] if quick else [])
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=900)
        lines = proc.stdout.strip().splitlines()
        try:
            res = json.loads(lines[-1])
        except (IndexError, ValueError):
            res = {"status": "error", "error": f"exit status {proc.returncode}, no result"}
        out["engines"][engine] = res
    return out


# --- 3. start-up ------------------------------------------------------------------------------


def subprocess_env(**extra) -> dict:
    """The environment for a child python: this checkout first on the path, no inherited
    ALLOCSIM_ENGINE (each measurement names its engine), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "ALLOCSIM_ENGINE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def timed_child(args: list[str], env: dict, timeout: float = 600) -> tuple[float, str]:
    """Wall time of ``python args...`` in a fresh process, and its stdout; raises on failure."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(lines[-1][:300] if lines else f"exit status {proc.returncode}")
    return wall, proc.stdout


def median_child(args: list[str], env: dict, reps: int) -> dict:
    walls = [timed_child(args, env)[0] for _ in range(reps)]
    return {"s": statistics.median(walls), "all": walls}


WARM_CODE = (
    "import time; t = time.perf_counter(); import allocsim.engine as e; e.warm(); "
    "print(time.perf_counter() - t)"
)
RUN_ARGS = ["-m", "allocsim", "run", "--seconds", "0.001"]


def bench_startup(quick: bool) -> dict:
    """Interpreter, ``import allocsim``, cold compile and warm start, each in fresh processes."""
    reps = 3 if quick else 5
    env = subprocess_env()
    out: dict = {"status": "ok", "reps": reps, "engines": {}}
    out["python"] = median_child(["-c", "pass"], env, reps)
    out["import"] = median_child(["-c", "import allocsim"], env, reps)
    _, loaded = timed_child(
        ["-c", "import sys, allocsim; print(sorted({'numba', 'matplotlib'} & set(sys.modules)))"],
        env,
    )
    out["import_loads"] = json.loads(loaded.strip().replace("'", '"'))
    log(
        f"  start-up: python {out['python']['s']:.2f} s, import allocsim {out['import']['s']:.2f} s"
        f" (loads {', '.join(out['import_loads']) or 'neither numba nor matplotlib'})"
    )
    _, run_help = timed_child(["-m", "allocsim", "run", "--help"], env)
    has_flag = "--engine" in run_help
    support = engine_support()
    with tempfile.TemporaryDirectory(prefix="allocsim-numba-cache-") as cache:
        for engine in ENGINES:
            if support[engine]:
                out["engines"][engine] = {"status": "not available", "reason": support[engine]}
                continue
            row: dict = {"status": "ok"}
            try:
                child_env = dict(env)
                if engine == "compiled":
                    # Cold: an empty cache, so warm() compiles every function. Then warm() again
                    # (loading what the first one cached), and the warm starts use that cache.
                    child_env["NUMBA_CACHE_DIR"] = cache
                    wall, inner = timed_child(["-c", WARM_CODE], child_env, timeout=900)
                    row["cold_compile_s"] = float(inner.strip().splitlines()[-1])
                    row["cold_process_s"] = wall
                    row["cache_files"] = sum(len(f) for _, _, f in os.walk(cache))
                    wall, inner = timed_child(["-c", WARM_CODE], child_env)
                    row["cached_warm_s"] = float(inner.strip().splitlines()[-1])
                    log(
                        f"  start-up compiled: cold compile {row['cold_compile_s']:.1f} s "
                        f"({row['cache_files']} cache files), warm() from the cache "
                        f"{row['cached_warm_s']:.2f} s"
                    )
                args = RUN_ARGS + (["--engine", engine] if has_flag else [])
                row["command"] = "python " + " ".join(args)
                row["warm_start"] = median_child(args, child_env, reps)
                log(f"  start-up {engine}: {row['command']}: {row['warm_start']['s']:.2f} s")
            except Exception as exc:
                row = {"status": "error", "error": error_text(exc)}
                log(f"  start-up {engine}: {row['error']}")
            out["engines"][engine] = row
    return out


# --- 4. notebooks -----------------------------------------------------------------------------


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
    return {
        "status": "ok",
        "total_s": total,
        "rows": rows,
        # the kernels inherit this environment, so they run on this process's default engine
        "engine": default_engine(),
        "allocsim_engine_env": os.environ.get("ALLOCSIM_ENGINE"),
    }


# --- 5. memory --------------------------------------------------------------------------------

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
        "rss_peak": _maxrss_bytes(),  # the whole process: interpreter, numpy, numba if loaded
        "engine": default_engine() if kind == "Simulation" else None,
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


# --- 6. sweep ---------------------------------------------------------------------------------


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


def _fmt(value, spec: str, missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


def _by_engine(rows: list, key) -> dict:
    """{(case, patches): {engine: row}}, in the order the rows came."""
    out: dict = {}
    for row in rows:
        out.setdefault(key(row), {})[row.get("engine", "python")] = row
    return out


def print_rtf(r: dict) -> None:
    print(
        f"1. Real-time factor ({r['duration_ms'] / 1000:g} simulated s per case, construction "
        f"included; simulated s / process CPU s, median of {r['reps']})"
    )
    for engine, info in r["engines"].items():
        if info["status"] != "ok":
            why = info.get("reason") or info.get("error")
            print(f"   {engine} engine: {info['status']}: {why}")
        elif "warm_s" in info:
            print(f"   {engine} engine: warm-up (allocsim.engine.warm()) {info['warm_s']:.2f} s")
    rows = []
    for (case, patches), by in _by_engine(r["rows"], lambda x: (x["case"], x["patches"])).items():
        any_row = next(iter(by.values()))
        cells = [case, patches, str(any_row.get("cpus", "?")), str(any_row.get("zone_mib", "?"))]
        for key, spec in (("rtf", ".1f"), ("ns_per_cpu_tick", ".0f"), ("us_per_tick", ".0f")):
            for engine in ENGINES:
                row = by.get(engine)
                if row is None:
                    cells.append("-")
                elif "error" in row:
                    cells.append("ERROR")
                else:
                    cells.append(_fmt(row[key], spec) + ("x" if key == "rtf" else ""))
        py, co = by.get("python", {}), by.get("compiled", {})
        cells.append(f"{co['rtf'] / py['rtf']:.0f}x" if "rtf" in py and "rtf" in co else "-")
        probes = co.get("probe_ms_all") or py.get("probe_ms_all")
        cells.append(" ".join(f"{ms:.1f}" for ms in probes) if probes else "-")
        rows.append(cells)
    print(
        table(
            [
                "case",
                "patches",
                "CPUs",
                "zone MiB",
                "RT py",
                "RT compiled",
                "ns/CPU-tick py",
                "compiled",
                "µs/tick py",
                "compiled",
                "speed-up",
                "probe ms (compiled)",
            ],
            rows,
        )
    )
    for row in r["rows"]:
        if "error" in row:
            print(f"   ERROR {row['case']} {row['patches']} {row['engine']}: {row['error']}")


def print_widget(w: dict) -> None:
    print(
        f"2. Widget latency (livelock demo, {w['live_run_ms'] / 1000:g} s runs, one process per "
        "engine started with ALLOCSIM_ENGINE; PNG encode included)"
    )
    rows = []
    labels = (
        ("first_frame_cpus_ms", "CPU slider -> first frame, ms", ".0f"),
        ("first_frame_cpus_cold_ms", "  first move to 1024 CPUs (cold), ms", ".0f"),
        ("first_frame_seed_ms", "seed change -> first frame, ms", ".0f"),
        ("on_screen_256_s", "256-CPU run, change -> last frame, s", ".2f"),
        ("on_screen_1024_s", "1024-CPU run, change -> last frame, s", ".2f"),
    )
    engines = w["engines"]
    for key, label, spec in labels:
        cells = [label]
        for engine in ENGINES:
            e = engines.get(engine, {})
            cells.append(_fmt(e.get(key), spec) if e.get("status") == "ok" else "-")
        rows.append(cells)
    print(table(["", "python", "compiled"], rows))
    for engine in ENGINES:
        e = engines.get(engine, {})
        if e.get("status") == "ok":
            print(
                f"   {engine}: {e['factory']}(), backend {e['backend']}, median of {e['reps']} "
                "per change; all first frames: "
                + ", ".join(f"{x['first_frame_ms']:.0f}" for x in e["runs"])
                + " ms"
            )
            if not all(x["final_frame_seen"] for x in e["runs"]):
                print(f"   {engine}: a run's final picture was never sent (end of wait() used)")
        else:
            print(f"   {engine}: {e.get('status')}: {e.get('reason') or e.get('error')}")


def print_startup(s: dict) -> None:
    print(f"3. Start-up (fresh processes, wall time, median of {s['reps']})")
    print(f"   python -c pass:             {s['python']['s']:.2f} s")
    loads = ", ".join(s["import_loads"]) or "neither numba nor matplotlib"
    print(f"   python -c 'import allocsim': {s['import']['s']:.2f} s (loads {loads})")
    for engine in ENGINES:
        e = s["engines"].get(engine, {})
        if e.get("status") != "ok":
            print(f"   {engine}: {e.get('status')}: {e.get('reason') or e.get('error')}")
            continue
        if "cold_compile_s" in e:
            print(
                f"   {engine}: cold compile (empty NUMBA_CACHE_DIR, allocsim.engine.warm()) "
                f"{e['cold_compile_s']:.1f} s, {e['cache_files']} cache files; warm() from the "
                f"cache {e['cached_warm_s']:.2f} s"
            )
        print(f"   {engine}: {e['command']}: {e['warm_start']['s']:.2f} s")


def print_notebooks(n: dict) -> None:
    print(
        "4. Notebooks, headless (nbclient, kernel python3, 120 s per cell, inline backend, "
        f"{n.get('engine', 'python')} engine)"
    )
    rows = [
        [r["notebook"], f"{r['wall_s']:.1f}", ("ERROR: " + r["error"]) if "error" in r else "ok"]
        for r in n["rows"]
    ]
    rows.append(["total", f"{n['total_s']:.1f}", ""])
    print(table(["notebook", "wall s", "result"], rows))


def print_memory(mem: dict) -> None:
    print(
        "5. Peak memory (tracemalloc peak; peak RSS delta and whole-process peak RSS, one fresh "
        "process per case)"
    )
    rows = []
    for row in mem["rows"]:
        head = [row["kind"], str(row["gib"]), str(row["cpus"])]
        if "error" in row:
            rows.append(head + ["ERROR: " + row["error"], "", "", ""])
        else:
            peak_rss = row.get("rss_peak")
            rows.append(
                head
                + [
                    f"{row['tracemalloc_peak'] / MIB:.1f}",
                    f"{row['rss_delta'] / MIB:.1f}",
                    _fmt(None if peak_rss is None else peak_rss / MIB, ".0f"),
                    row.get("engine") or "",
                ]
            )
    print(
        table(
            ["object", "GiB", "CPUs", "tracemalloc MiB", "RSS delta MiB", "peak RSS MiB", "engine"],
            rows,
        )
    )
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
    print("6. Sweeps (allocsim.sweep, exact baseline; wall time includes pool/cluster start-up)")
    rows = [
        [r["grid"], r["way"], f"{r['wall_s']:.1f}", f"{r['vs_serial']:.2f}", str(r["same_frame"])]
        for r in sw["rows"]
    ]
    print(table(["grid", "run on", "wall s", "× serial", "same DataFrame"], rows))


# --- targets (issue 13) -------------------------------------------------------------------------
#
# Each target is judged from this run's measurements on the compiled engine (the default one);
# the Python engine's figure is shown beside it for comparison. A target whose measurement is
# missing (section not run, engine not available) is "not measured", never "met".


def _engine_sec(report: dict, section: str, engine: str):
    """(the engine's part of a section, None) or (None, why there is none)."""
    sec = report["sections"].get(section)
    if sec is None:
        return None, f"{section} section not run"
    if sec.get("status") != "ok":
        return None, f"{section}: {sec.get('status')}: {sec.get('reason') or sec.get('error')}"
    part = sec.get("engines", {}).get(engine)
    if part is None:
        return None, f"{section}: no {engine} engine"
    if part.get("status") != "ok":
        return None, f"{engine}: {part.get('status')}: {part.get('reason') or part.get('error')}"
    return (sec, part), None


def _rtf(case: str):
    def get(report, engine):
        got, why = _engine_sec(report, "rtf", engine)
        if got is None:
            return None, why
        sec, _ = got
        rows = [
            r
            for r in sec["rows"]
            if r["case"] == case and r.get("engine", "python") == engine and "rtf" in r
        ]
        if not rows:
            return None, f"no {case} row on the {engine} engine"
        slower = min(rows, key=lambda r: r["rtf"])
        note = f"the slower of patches none / all ({slower['patches']})"
        speed = probe_summary(report)
        if speed and slower.get("probe_ms_all"):
            probes = ", ".join(f"{ms:.1f}" for ms in slower["probe_ms_all"])
            note += f"; speed probe {probes} ms (best of the run {speed['best_ms']:.1f})"
        return slower["rtf"], note

    return get


def _widget(*keys):
    def get(report, engine):
        got, why = _engine_sec(report, "widget", engine)
        if got is None:
            return None, why
        vals = [got[1].get(k) for k in keys]
        if any(v is None for v in vals):
            return None, "no such run measured"
        return max(vals), ""

    return get


def _warm_start(report, engine):
    got, why = _engine_sec(report, "startup", engine)
    return (got[1]["warm_start"]["s"], got[1]["command"]) if got else (None, why)


def _cold_compile(report, engine):
    got, why = _engine_sec(report, "startup", engine)
    if got is None:
        return None, why
    if "cold_compile_s" not in got[1]:
        return None, "nothing to compile"
    return got[1]["cold_compile_s"], "empty NUMBA_CACHE_DIR"


def _notebooks(report, engine):
    sec = report["sections"].get("notebooks")
    if sec is None or sec.get("status") != "ok":
        why = "notebooks section not run" if sec is None else sec.get("reason") or sec.get("error")
        return None, why
    if sec.get("engine", "python") != engine:
        return None, f"ran on the {sec.get('engine')} engine"
    if any("error" in r for r in sec["rows"]):
        return None, "a notebook failed"
    return sec["total_s"], ""


# (target, getter(report, engine) -> (value, note), ">=" / "<=" / None (stated), limit, unit)
TARGETS = [
    ("1024 CPUs >= 30x real time (aim 50x)", _rtf("1024 CPUs"), ">=", 30, "x"),
    ("large >= 50x real time", _rtf("large"), ">=", 50, "x"),
    ("4096 CPUs >= 10x real time", _rtf("4096 CPUs"), ">=", 10, "x"),
    (
        "first frame <= 100 ms after a control change (CPU slider, first move, seed)",
        _widget("first_frame_cpus_ms", "first_frame_cpus_cold_ms", "first_frame_seed_ms"),
        "<=",
        100,
        "ms",
    ),
    ("4 s 256-CPU live run on screen <= 1 s", _widget("on_screen_256_s"), "<=", 1, "s"),
    ("warm start <= 1 s (python -m allocsim run --seconds 0.001)", _warm_start, "<=", 1, "s"),
    ("cold compile (stated)", _cold_compile, None, None, "s"),
    ("all notebooks headless <= 60 s (default engine)", _notebooks, "<=", 60, "s"),
]


def judge_targets(report: dict) -> list[dict]:
    """The issue's targets against this run's figures: compiled judged, python beside it."""
    out = []
    for text, get, op, limit, unit in TARGETS:
        value, note = get(report, "compiled")
        python, _ = get(report, "python")
        if value is None:
            verdict = "not measured"
        elif op is None:
            verdict = "stated"
        else:
            ok = value >= limit if op == ">=" else value <= limit
            verdict = "met" if ok else "not met"
        out.append(
            {
                "target": text,
                "limit": limit,
                "unit": unit,
                "compiled": value,
                "python": python,
                "verdict": verdict,
                "note": note or "",
            }
        )
    return out


def print_targets(targets: list[dict], quick: bool) -> None:
    print(
        "Issue 13 targets (judged on the compiled engine; python beside it)"
        + (" -- quick mode: short runs, not the figures to quote" if quick else "")
    )

    def fmt(v, unit):
        if v is None:
            return "-"
        return f"{v:.1f}x" if unit == "x" else f"{v:.0f} ms" if unit == "ms" else f"{v:.2f} s"

    rows = [
        [t["target"], fmt(t["compiled"], t["unit"]), fmt(t["python"], t["unit"]), t["verdict"]]
        + [t["note"]]
        for t in targets
    ]
    print(table(["target", "compiled", "python", "verdict", "note"], rows))


PRINTERS = {
    "rtf": print_rtf,
    "widget": print_widget,
    "startup": print_startup,
    "notebooks": print_notebooks,
    "memory": print_memory,
    "sweep": print_sweep,
}
TITLES = {
    "rtf": "1. Real-time factor",
    "widget": "2. Widget latency (livelock demo)",
    "startup": "3. Start-up",
    "notebooks": "4. Notebooks, headless",
    "memory": "5. Peak memory",
    "sweep": "6. Sweeps",
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
    print()
    print_targets(report["targets"], report["quick"])
    speed = report.get("speed")
    if speed:
        print(
            "\nspeed probe (a fixed integer loop, lower is faster): "
            f"{speed['best_ms']:.1f} ms at best, "
            f"{speed['worst_ms']:.1f} ms at worst; {speed['slow_runs']} of {speed['runs']} timed "
            "runs came more than 1.25x slower than the best (a slow spell of the machine)"
        )
    print(f"\nwall time of this benchmark: {report['wall_s']:.1f} s")


def has_errors(report: dict) -> bool:
    for sec in report["sections"].values():
        parts = [sec, *sec.get("engines", {}).values()]
        if any(p.get("status") == "error" for p in parts):
            return True
        if any("error" in r for p in parts for r in p.get("rows", [])):
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
        help="smoke mode: 1 simulated s per case, 1 run per widget change, no notebooks",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})",
    )
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)  # KIND:GIB:CPUS, internal
    parser.add_argument("--widget-case", help=argparse.SUPPRESS)  # ENGINE, internal
    args = parser.parse_args(argv)

    if args.memory_case:
        kind, gib, cpus = args.memory_case.split(":")
        print(json.dumps(memory_case(kind, int(gib), int(cpus))))
        return 0
    if args.widget_case:
        print(json.dumps(widget_case(args.widget_case, args.quick)))
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
        "startup": bench_startup,
        "notebooks": bench_notebooks,
        "memory": bench_memory,
        "sweep": bench_sweep,
    }
    report["probes"] = []
    for name in SECTIONS:
        if name in only:
            log(f"{name} ...")
            report["probes"].append({"at": f"{name} start", "ms": speed_probe()})
            try:
                report["sections"][name] = runners[name](args.quick)
            except Exception as exc:  # one broken section must not hide the others
                report["sections"][name] = {"status": "error", "error": error_text(exc)}
                log(f"  {name}: {error_text(exc)}")
            report["probes"].append({"at": f"{name} end", "ms": speed_probe()})
            before, after = report["probes"][-2]["ms"], report["probes"][-1]["ms"]
            log(f"  speed probe: {before:.1f} ms before, {after:.1f} ms after")
    report["wall_s"] = time.perf_counter() - start
    report["speed"] = probe_summary(report)
    report["targets"] = judge_targets(report)

    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 1 if has_errors(report) else 0


if __name__ == "__main__":
    sys.exit(main())
