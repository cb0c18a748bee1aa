"""The benchmark script runs (smoke test only: performance is measured by it, not asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("allocsim_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_quick_json_runs_and_reports_real_time_factor():
    """bench.py --quick --json finishes and reports a positive real-time factor per case and
    engine it could time, and a verdict for every issue-13 target."""
    p = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", "--only", "rtf"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads(p.stdout)
    rtf = report["sections"]["rtf"]
    assert rtf["engines"]["python"]["status"] == "ok"
    timed = {e for e, info in rtf["engines"].items() if info["status"] == "ok"}
    rows = rtf["rows"]
    assert {(r["case"], r["engine"]) for r in rows} >= {
        (case, e) for case in ("small", "large") for e in timed
    }
    assert all(r["cpu_s"] > 0 and r["rtf"] > 0 and r["duration_ms"] == 1000 for r in rows)
    # the machine's speed beside each timed run, and at the section's start and end
    assert all(len(r["probe_ms_all"]) == r["reps"] and min(r["probe_ms_all"]) > 0 for r in rows)
    assert [p["at"] for p in report["probes"]] == ["rtf start", "rtf end"]
    assert report["speed"]["runs"] == sum(r["reps"] for r in rows)
    verdicts = {t["target"]: t["verdict"] for t in report["targets"]}
    assert set(verdicts.values()) <= {"met", "not met", "not measured", "stated"}
    assert verdicts["all notebooks headless <= 60 s (default engine)"] == "not measured"


FIRST_FRAME = "first frame <= 100 ms after a control change (CPU slider, first move, seed)"


def _report(rtf_1024: float | None, first_frame_ms: float, cold_ms: float | None = None) -> dict:
    engines = {"python": {"status": "ok"}, "compiled": {"status": "ok"}}
    rows = []
    if rtf_1024 is not None:
        for engine, factor in (("python", 2.0), ("compiled", rtf_1024)):
            for patches, scale in (("none", 1.0), ("all", 1.5)):
                rows.append(
                    {
                        "case": "1024 CPUs",
                        "patches": patches,
                        "engine": engine,
                        "rtf": factor * scale,
                    }
                )
    widget = {
        "status": "ok",
        "engines": {
            "python": {"status": "not available", "reason": "no demo"},
            "compiled": {
                "status": "ok",
                "first_frame_cpus_ms": first_frame_ms,
                "first_frame_cpus_cold_ms": first_frame_ms if cold_ms is None else cold_ms,
                "first_frame_seed_ms": first_frame_ms / 2,
                "on_screen_256_s": 0.5,
            },
        },
    }
    return {
        "quick": False,
        "sections": {"rtf": {"status": "ok", "engines": engines, "rows": rows}, "widget": widget},
    }


def test_judge_targets_verdicts_follow_the_measurements(bench):
    """A target is met or not by the compiled engine's slower case, and unmeasured without data."""
    by = {t["target"]: t for t in bench.judge_targets(_report(31.0, 150.0))}
    t1024 = by["1024 CPUs >= 30x real time (aim 50x)"]
    assert (t1024["compiled"], t1024["python"], t1024["verdict"]) == (31.0, 2.0, "met")
    first = by[FIRST_FRAME]
    assert (first["compiled"], first["verdict"]) == (150.0, "not met")
    assert first["python"] is None
    assert by["4 s 256-CPU live run on screen <= 1 s"]["verdict"] == "met"
    assert by["large >= 50x real time"]["verdict"] == "not measured"
    assert by["warm start <= 1 s (python -m allocsim run --seconds 0.001)"]["verdict"] == (
        "not measured"
    )

    by = {t["target"]: t for t in bench.judge_targets(_report(29.0, 80.0))}
    assert by["1024 CPUs >= 30x real time (aim 50x)"]["verdict"] == "not met"
    assert by[FIRST_FRAME]["verdict"] == "met"
    # the first move to a bigger machine counts too, not only the medians
    by = {t["target"]: t for t in bench.judge_targets(_report(29.0, 80.0, cold_ms=130.0))}
    assert (by[FIRST_FRAME]["compiled"], by[FIRST_FRAME]["verdict"]) == (130.0, "not met")


def test_judge_targets_compiled_engine_missing_is_not_measured(bench):
    """Without the compiled engine every target is unmeasured, with the reason as its note."""
    report = _report(31.0, 50.0)
    report["sections"]["rtf"]["engines"]["compiled"] = {
        "status": "not available",
        "reason": "no numba",
    }
    report["sections"]["widget"]["engines"]["compiled"] = {
        "status": "not available",
        "reason": "no numba",
    }
    targets = bench.judge_targets(report)
    assert {t["verdict"] for t in targets} == {"not measured"}
    assert "no numba" in targets[0]["note"]


def test_engine_support_gives_python_and_a_reason_for_a_missing_engine(bench):
    """The Python engine is always timeable; an engine that is not says why in one line."""
    support = bench.engine_support()
    assert set(support) == set(bench.ENGINES)
    assert support["python"] is None
    for reason in support.values():
        assert reason is None or (reason and "\n" not in reason)
    if not bench.engine_parameter():
        assert support["compiled"]


def test_png_encoder_sends_the_whole_picture_then_only_changes(bench):
    """The emulated ipympl front end encodes a full PNG first and a smaller diff after it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    canvas = FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1, 2], [1, 3, 2])
    canvas.draw()
    encoder = bench.PngEncoder()
    full = encoder.encode(canvas)
    same = encoder.encode(canvas)
    assert full > 0 and 0 < same < full


def test_speed_probe_summary_names_the_slow_spells(bench):
    """The speed probe's summary: the run's best and worst probe, and which timed runs came in
    a slow spell (more than 1.25x the best); a real-time target's note names its case's."""
    report = _report(31.0, 50.0)
    probes = iter([10.0, 10.4, 13.0, 30.0, 10.1, 12.4, 11.0, 10.2, 12.6, 10.0, 10.0, 10.0])
    for row in report["sections"]["rtf"]["rows"]:
        row["probe_ms_all"] = [next(probes) for _ in range(3)]
    report["probes"] = [{"at": "rtf start", "ms": 9.5}, {"at": "rtf end", "ms": 10.0}]
    speed = bench.probe_summary(report)
    assert speed == {"best_ms": 9.5, "worst_ms": 30.0, "slow_runs": 4, "runs": 12}
    t1024 = {t["target"]: t for t in bench.judge_targets(report)}[
        "1024 CPUs >= 30x real time (aim 50x)"
    ]
    assert t1024["compiled"] == 31.0  # the slower case (patches none), with its probes
    assert (
        "(none)" in t1024["note"]
        and "probe 11.0, 10.2, 12.6 ms (best of the run 9.5)" in (t1024["note"])
    )
    assert bench.probe_summary({"sections": {}}) is None
    assert 0 < bench.speed_probe() < 10_000
