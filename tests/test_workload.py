"""The workload's draws (allocsim.workload): Poisson arrivals by splitting, lock-order keys."""

import pickle

import numpy as np
import pytest

from allocsim import Simulation, workload
from allocsim.config import preset
from allocsim.trace import Event, EventLog, events_from_rows
from allocsim.workload import BLOCK, arrival_block, arrival_draws, lock_keys, rate_runs


def _blocks(rates, width=512, n=40, seed=5):
    rng = np.random.default_rng(seed)
    return np.stack([arrival_block(rng, rates, width) for _ in range(n)])


@pytest.mark.parametrize("rate", [0.3, 3.0, 12.0, 40.0])
def test_workload_arrivals_per_tick_are_poisson(rate):
    """Each tick's count has the Poisson law of its rate: mean, variance and P(0), P(1) within
    a few standard errors over 40 blocks x 512 CPUs."""
    x = _blocks(np.full(BLOCK, rate)).ravel()
    n = x.size
    assert abs(x.mean() - rate) < 5 * np.sqrt(rate / n)
    assert abs(x.var() / rate - 1) < 0.02
    for k in (0, 1):
        p = np.exp(-rate) * rate**k  # k! = 1
        assert abs(np.mean(x == k) - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-12


def test_workload_arrivals_are_spread_over_the_ticks_independently():
    """No tick of the block is favoured, and neighbouring ticks (and CPUs) are uncorrelated."""
    x = _blocks(np.full(BLOCK, 0.3))  # [block, tick, cpu]
    by_tick = x.mean(axis=(0, 2))
    assert by_tick.min() > 0.25 and by_tick.max() < 0.35
    a = x[:, :-1, :].ravel().astype(float)
    b = x[:, 1:, :].ravel().astype(float)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01
    c = x[:, :, :-1].ravel().astype(float)
    d = x[:, :, 1:].ravel().astype(float)
    assert abs(np.corrcoef(c, d)[0, 1]) < 0.01


def test_workload_rate_runs_keep_each_tick_in_its_own_rate():
    """A block whose rate changes (the burst starts at tick 20, ends at 180) has no arrival
    before the start and the right mean in each run."""
    ticks = np.arange(BLOCK)
    rates = np.where((ticks >= 20) & (ticks < 180), 3.0, 0.0)
    rates[200:] = 0.3
    assert rate_runs(rates) == [(0, 20, 0.0), (20, 180, 3.0), (180, 200, 0.0), (200, 256, 0.3)]
    x = _blocks(rates, width=256, n=20)
    assert x[:, :20].sum() == 0 and x[:, 180:200].sum() == 0
    assert abs(x[:, 20:180].mean() - 3.0) < 0.03
    assert abs(x[:, 200:].mean() - 0.3) < 0.01


def test_workload_quiet_runs_draw_nothing():
    """A run of rate 0 consumes no random numbers: the generator is where it started."""
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    assert not arrival_block(rng, np.zeros(BLOCK), 64).any()
    assert arrival_draws(rng, np.zeros(BLOCK), 64) == []
    assert rng.bit_generator.state == state


def test_workload_lock_keys_are_16_bit_and_uniform():
    """Lock-order keys are uint16, one per tick and CPU, spread over the whole range."""
    keys = lock_keys(np.random.default_rng(2), 300)
    assert keys.shape == (BLOCK, 300) and keys.dtype == np.uint16
    hist = np.bincount(keys.ravel() >> 12, minlength=16)
    assert hist.min() > 0.9 * keys.size / 16 and hist.max() < 1.1 * keys.size / 16


def test_workload_is_the_same_whatever_the_patches():
    """Runs that differ only in their patches draw the same arrivals and lock keys."""
    seen = []
    for patches in ("none", "all", "2.6.38"):
        sim = Simulation(preset("small", patches=patches, seed=4, duration_ms=600), engine="python")
        blocks = []
        orig = sim._draw_block

        def draw(orig=orig, sim=sim, blocks=blocks):
            orig()
            blocks.append((sim._irq_block.copy(), sim._task_block.copy(), sim._lock_block.copy()))

        sim._draw_block = draw
        sim.run()
        seen.append(blocks)
    for other in seen[1:]:
        assert len(other) == len(seen[0]) == 3
        for mine, theirs in zip(seen[0], other, strict=True):
            assert all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))


def test_workload_events_from_rows_are_ordinary_events():
    """The compiled engine's fast event construction gives events equal to Event(...)."""
    rows = [[3, 1, 7, 0], [4, 0, -1, 12]]
    names = ("a", "b")
    got = events_from_rows(rows, names)
    assert got == [Event(3, "b", 7, 0), Event(4, "a", -1, 12)]
    assert hash(got[0]) == hash(Event(3, "b", 7, 0)) and repr(got[1]) == repr(Event(4, "a", -1, 12))
    # the same from an array (the compiled engine's event buffer), with plain ints inside
    from_array = events_from_rows(np.array(rows, dtype=np.int64), names)
    assert from_array == got and type(from_array[1].value) is int
    assert events_from_rows(np.zeros((0, 4), dtype=np.int64), names) == []


def test_workload_high_rates_are_drawn_tick_by_tick():
    """Above SPLIT_MAX_RATE a run is one Poisson number per CPU per tick (no list of arrivals
    tens of millions long); below it, a count per CPU and a tick per arrival."""
    rng = np.random.default_rng(3)
    ticks = np.arange(BLOCK)
    rates = np.where(ticks < 100, 0.3, 2 * workload.SPLIT_MAX_RATE)
    (a, b, counts, where), (c, d, dense, none) = arrival_draws(rng, rates, 8)
    assert (a, b, c, d) == (0, 100, 100, BLOCK)
    assert counts.shape == (8,) and len(where) == counts.sum() and none is None
    assert dense.shape == (BLOCK - 100, 8)


def test_workload_layout_in_groups_of_cpus_is_the_same(monkeypatch):
    """arrival_block lays arrivals out a group of CPUs at a time (bounded memory): any group
    size gives the same block."""
    rates = np.full(BLOCK, 3.0)
    whole = arrival_block(np.random.default_rng(9), rates, 300)
    monkeypatch.setattr(workload, "_LAYOUT_CHUNK", 1000)  # about one CPU's arrivals per group
    assert np.array_equal(arrival_block(np.random.default_rng(9), rates, 300), whole)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("before", [0, 1, 2, 3])
def test_full_range_integers_are_numpys_numbers_and_leave_its_state(dtype, before):
    """``full_range_integers`` gives what ``rng.integers(0, 2**bits, n, dtype)`` gives, and
    leaves the Generator exactly as it would (PCG64's kept half-word included), whatever
    half-word an earlier draw left behind; sizes around every 32- and 64-bit boundary."""
    from allocsim.workload import full_range_integers

    top = 1 << (8 * np.dtype(dtype).itemsize)
    for n in [*range(0, 20), 255, 256, 257, 1023, 79_001, 256 * 4096]:
        ours, theirs = np.random.default_rng(7), np.random.default_rng(7)
        for _ in range(before):  # each takes one 32-bit word: a half-word kept, or used up
            ours.integers(0, 256, 1, dtype=np.uint8)
            theirs.integers(0, 256, 1, dtype=np.uint8)
        got = full_range_integers(ours, n, dtype)
        want = theirs.integers(0, top, n, dtype=dtype)
        assert got.dtype == want.dtype and np.array_equal(got, want), n
        assert ours.bit_generator.state == theirs.bit_generator.state, n
        assert ours.random() == theirs.random()


def test_full_range_integers_with_another_bit_generator_is_numpys_own_call():
    """A Generator on another bit generator (whose words numpy cuts differently) is drawn by
    ``rng.integers`` itself."""
    from allocsim.workload import full_range_integers

    ours = np.random.Generator(np.random.Philox(3))
    theirs = np.random.Generator(np.random.Philox(3))
    assert np.array_equal(
        full_range_integers(ours, 1001, np.uint16), theirs.integers(0, 1 << 16, 1001, np.uint16)
    )
    assert ours.random() == theirs.random()


def test_workload_event_log_reads_as_the_list_of_its_events():
    """EventLog (the compiled engine's sim.events and result.events) keeps the core's rows and
    makes them into events when read: it must read, compare and copy as that list does."""
    names = ("a", "b")
    buffer = np.array([[3, 1, 7, 0], [4, 0, -1, 12], [9, 9, 9, 9]], dtype=np.int64)
    log = EventLog(names, [Event(1, "a", 0, 5)])
    log.add_rows(buffer[:2])
    buffer[:] = 9  # the engine reuses its buffer: the log must have copied the rows
    log.add_rows(buffer[:0])  # an empty block adds nothing
    assert len(log) == 3 and log._rows  # len needs no events made
    want = [Event(1, "a", 0, 5), Event(3, "b", 7, 0), Event(4, "a", -1, 12)]
    assert log == want and want == log and list(log) == want and repr(log) == repr(want)
    assert log[1] == want[1] and log[-1] == want[-1] and log[1:] == want[1:]
    assert Event(3, "b", 7, 0) in log and log.index(want[2]) == 2
    assert log != want[:2] and log != "not a list"
    # a copy goes its own way (as the result of a run that goes on); rows not yet made are
    # shared, and each side makes its own events
    log.add_rows(np.array([[5, 1, 2, 3]]))
    snap = log.copy()
    log.append(Event(6, "a", 1, 1))
    assert len(snap) == 4 and len(log) == 5
    assert snap == want + [Event(5, "b", 2, 3)] and log == snap._list() + [Event(6, "a", 1, 1)]
    assert EventLog(names) == [] and len(EventLog(names)) == 0
    with pytest.raises(TypeError):
        hash(log)
    assert pickle.loads(pickle.dumps(snap)) == snap


def test_workload_compiled_run_events_are_an_event_log_equal_to_the_python_ones():
    """A compiled run hands its events over as an EventLog whose events are the Python
    engine's, made only when read (the equivalence tests compare them too)."""
    pytest.importorskip("numba")
    cfg = preset("large", cpus=64, patches="all", seed=1, duration_ms=120)
    fast = Simulation(cfg, engine="compiled").run()
    ref = Simulation(cfg, engine="python").run()
    assert isinstance(fast.events, EventLog) and fast.events._rows
    assert len(fast.events) == len(ref.events) > 0
    assert fast.events == ref.events
    assert fast.events_named("mm_page_pcpu_drain") == ref.events_named("mm_page_pcpu_drain")
