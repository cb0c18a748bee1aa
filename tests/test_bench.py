"""The benchmark script runs (smoke test only: performance is measured by it, not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_json_runs_and_reports_real_time_factor():
    """bench.py --quick --json finishes and reports a positive real-time factor per case."""
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench.py"),
            "--quick",
            "--json",
            "--only",
            "rtf",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    rows = json.loads(p.stdout)["sections"]["rtf"]["rows"]
    assert {r["case"] for r in rows} >= {"small", "large"}
    assert all(r["wall_s"] > 0 and r["duration_ms"] == 1000 for r in rows)
