"""The Python engine's speed-ups change no result: every series, event and JSON field is the same.

The digests below were first computed with :func:`_full_digest` on ``main`` at c7abb60, before
the speed-ups of issue 13 item 2 (import once, scalar Poisson rates, fewer per-tick allocations),
and both engines held to them. They were retaken, on both engines alike, when the workload's draw
changed on purpose to Poisson splitting (allocsim/workload.py), before the compiled core's second
round of speed-ups, which they guard.
They cover every recorded series (float cost series included, bit for bit), the event log and
``to_json()``, with the cost model on. If a later change alters the dynamics on purpose,
recompute them from the commit before it.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from allocsim.config import preset
from allocsim.sim import Simulation
from allocsim.trace import SERIES

CASES = [
    ("large", dict(seed=1, patches="none", duration_ms=1500), "4cf240f6432fd631"),
    ("large", dict(seed=2, patches="2.6.38", duration_ms=1500), "619c4f1128f8f6c9"),
    ("large", dict(seed=3, patches="all", atomic_rate=0.0, duration_ms=1500), "62cc1f51f9fcf06e"),
    (
        "large",
        dict(
            seed=4, patches="2.6.38", atomic_rate=0.0, kswapd_asleep_at_start=True, duration_ms=800
        ),
        "3a1a6ad02790ffdb",
    ),
    ("steady", dict(seed=1, patches="2.6.36", duration_ms=600), "dcf90d636b755035"),
    ("small", dict(seed=4, patches="all", duration_ms=600), "36c54ea84a3e4c7e"),
    ("readers", dict(seed=5, patches="2.6.36", sockets=4, duration_ms=400), "581996b3e96d6eee"),
    ("large", dict(seed=6, patches="none", cpus=1024, duration_ms=300), "e172b98ede427f1e"),
]


def _full_digest(result) -> str:
    """SHA-256 over every series (with its dtype), every event and the JSON summary."""
    h = hashlib.sha256()
    for name, (dtype, _) in SERIES.items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(result[name], dtype=dtype).tobytes())
    h.update(repr([(e.t_ms, e.name, e.cpu, e.value) for e in result.events]).encode())
    h.update(result.to_json().encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("engine", ["python", "compiled"])
@pytest.mark.parametrize(
    "name,overrides,digest", CASES, ids=[f"{n}-{o['seed']}-{o['patches']}" for n, o, _ in CASES]
)
def test_speedups_keep_every_series_event_and_json_bit_identical(name, overrides, digest, engine):
    """A run's series, events and JSON hash to what the Python engine gave before the
    speed-ups, on either engine (the compiled one too: allocsim.engine)."""
    if engine == "compiled":
        pytest.importorskip("numba")
    result = Simulation(preset(name, **overrides), engine=engine).run()
    assert _full_digest(result) == digest


def test_speedups_keep_a_resumed_run_identical_to_one_run():
    """Running in two parts (across a random-block boundary) equals running at once."""
    cfg = preset("large", seed=7, patches="2.6.38", duration_ms=700)
    whole = Simulation(cfg).run()
    sim = Simulation(cfg)
    sim.run(until=300)
    assert _full_digest(sim.run()) == _full_digest(whole)


@pytest.mark.parametrize("free", [0, 20, 45, 3000])
def test_refill_counted_short_runs_match_the_vector_path(free, monkeypatch):
    """Runs of up to SHORT_RUN CPUs, refilled with plain ints, leave the zone as numpy does."""
    from allocsim import mmzone

    rng = np.random.default_rng(free)
    for length in range(1, mmzone.SHORT_RUN + 1):
        cpus = rng.permutation(16)[:length]
        short = mmzone.CountingZone(262144, 16, stat_threshold=20, free_pages=free)
        vector = mmzone.CountingZone(262144, 16, stat_threshold=20, free_pages=free)
        short.vm_stat_diff[:] = vector.vm_stat_diff[:] = rng.integers(-20, 21, 16)
        got_short = short.refill_counted(cpus)
        monkeypatch.setattr(mmzone, "SHORT_RUN", 0)
        got_vector = vector.refill_counted(cpus)
        monkeypatch.undo()
        np.testing.assert_array_equal(got_short, got_vector)
        assert short.nr_free_pages_buddy == vector.nr_free_pages_buddy
        assert short.vm_stat == vector.vm_stat
        for name in ("vm_stat_diff", "pcp_count", "stat_folds"):
            np.testing.assert_array_equal(getattr(short, name), getattr(vector, name), name)
