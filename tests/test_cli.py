"""The command line: parameters first, a summary, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from allocsim.__main__ import main


def test_main_run_prints_parameters_then_summary(capsys):
    """`run` prints every parameter (ARG lines) before the readable summary."""
    assert main(["run", "--preset", "small", "--seconds", "0.3", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.index("ARG cpus") < out.index("allocsim run:")
    assert "ARG seed                   2" in out
    assert "livelock" in out.lower()


def test_main_run_json_has_required_keys(capsys):
    """--json prints one object with the keys scripts rely on."""
    assert main(["run", "--preset", "large", "--patches", "none", "--seed", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in (
        "livelocked",
        "livelock_ms",
        "episodes",
        "simulated_ms",
        "cpus",
        "seed",
        "patches",
        "stat_threshold",
        "drift_mark",
        "max_counter_minus_buddy",
        "drain_all_pages_calls",
    ):
        assert key in d
    assert d["livelocked"] is True and d["stalled_ms"] >= 1000
    assert d["counterfactual"] == []
    assert set(d["episodes"][0]) == {"start_ms", "length_ms", "onset"}


def test_main_run_overrides_and_patch_list(capsys):
    """Overrides and a comma list of patches reach the config."""
    assert (
        main(
            [
                "run",
                "--preset",
                "large",
                "--cpus",
                "64",
                "--zone-mib",
                "1024",
                "--stat-threshold",
                "1",
                "--stat-interval-ms",
                "2000",
                "--seconds",
                "0.2",
                "--patches",
                "counter_after_free,drain_after_reclaim",
                "--json",
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["cpus"] == 64 and d["stat_threshold"] == 1 and d["simulated_ms"] == 200
    assert d["patches"] == ["counter_after_free", "drain_after_reclaim"]


@pytest.mark.parametrize(
    "argv,word",
    [
        (["run", "--cpus", "0"], "cpus"),
        (["run", "--cpus", "many"], "cpus"),
        (["run", "--patches", "bogus"], "patches"),
        (["run", "--preset", "huge"], "preset"),
        (["run", "--seconds", "-1"], "seconds"),
        (["run", "--stat-threshold", "x"], "stat_threshold"),
        (["run", "--nope"], "unrecognized"),
    ],
)
def test_cli_bad_options_exit_nonzero_with_one_line(argv, word):
    """A bad option exits with status 2 and a one-line reason on stderr."""
    p = subprocess.run([sys.executable, "-m", "allocsim", *argv], capture_output=True, text=True)
    assert p.returncode == 2
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    assert word in lines[0]
