"""The workload's random numbers: what each CPU asks for in each tick, and the order in which
CPUs that need the zone lock get it.

Both simulation engines take their workload from these functions, a block of ``BLOCK`` ticks at a
time, from the Simulation's seeded numpy Generators: the same seed gives the same numbers on
either engine, and runs that differ only in their patches see the same workload (the streams are
consumed at a rate that depends only on time, never on what the allocator did).

**Arrivals** (interrupt allocations on every CPU, the writers' page-cache pages) are Poisson
numbers, one per CPU per tick, with the rate of that tick. They are drawn by *Poisson splitting*
(:func:`arrival_block`): for each run of ticks with one rate, each CPU's number of arrivals over the
whole run is one Poisson number (rate x length of the run), and each of those arrivals then falls
on a tick of the run drawn uniformly. Given how many arrivals a Poisson process has in an interval,
their times are independent and uniform over it; so each tick's count is Poisson(rate),
independent of every other tick and CPU: exactly the distribution of one Poisson number per CPU
per tick, for one small random integer per *arrival* instead of a Poisson draw (one or more
uniforms) per CPU per tick. At 0.3 interrupts per CPU per ms that is about a tenth of the cost,
which matters at 1024 and 4096 CPUs (benchmarks/README.md).

Above ``SPLIT_MAX_RATE`` (16 per tick) a run is drawn as one Poisson number per CPU per tick
instead: there the arrivals outnumber the ticks so much that placing each one costs more than a
Poisson draw per tick, and one block would hold tens of millions of them (the same law either
way).

**Lock order** (:func:`lock_keys`): each CPU draws a 16-bit key per tick; whoever needs the zone
lock in that tick takes it in key order. CPUs with equal keys (rare: a few hundred contenders
among 65,536 keys) go in CPU order, and a CPU's own demand goes before a task or kernel thread
that resumes on that CPU with the same key.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BLOCK",
    "SPLIT_MAX_RATE",
    "arrival_block",
    "arrival_draws",
    "full_range_integers",
    "lock_keys",
    "rate_runs",
]

BLOCK = 256  # ticks of workload drawn at once
# Runs whose rate is above this are drawn one Poisson number per tick (module docstring). Every
# preset's rates are below it (the readers' 12 pages/ms is the highest).
SPLIT_MAX_RATE = 16.0
# arrival_block lays out at most this many arrivals at once (its index arrays are 8 bytes each).
_LAYOUT_CHUNK = 1 << 22


def rate_runs(rates: np.ndarray) -> list[tuple[int, int, float]]:
    """The runs of equal rate in a block's per-tick rates: ``[(first, end, rate), ...]``."""
    rates = np.asarray(rates, dtype=np.float64)
    starts = [0, *(np.flatnonzero(rates[1:] != rates[:-1]) + 1).tolist()]
    ends = [*starts[1:], len(rates)]
    return [(a, b, float(rates[a])) for a, b in zip(starts, ends, strict=True)]


def arrival_draws(rng: np.random.Generator, rates: np.ndarray, width: int):
    """The random numbers of one block of arrivals, by Poisson splitting (module docstring).

    Returns ``[(first, end, counts, ticks), ...]`` for each run of equal, positive rate:
    ``counts[c]`` arrivals for CPU (or writer) ``c`` over ticks ``first .. end-1``, and ``ticks``
    the tick (within the block) of each arrival, CPU 0's first, then CPU 1's... For a run above
    ``SPLIT_MAX_RATE``, ``counts`` is the run's ticks x CPUs array of counts and ``ticks`` None.
    """
    draws = []
    for first, end, rate in rate_runs(rates):
        if rate <= 0.0:
            continue  # no draw at all: a quiet run costs nothing and consumes nothing
        if rate > SPLIT_MAX_RATE:
            draws.append((first, end, rng.poisson(rate, (end - first, width)), None))
            continue
        counts = rng.poisson(rate * (end - first), width)
        total = int(np.add.reduce(counts))
        # Ticks fit in 8 bits (BLOCK = 256): numpy then draws four per 32-bit word.
        if (first, end) == (0, 1 << 8):  # the whole range of a uint8 (a run over the block)
            ticks = full_range_integers(rng, total, np.uint8)
        else:
            ticks = rng.integers(first, end, total, dtype=np.uint8)
        draws.append((first, end, counts, ticks))
    return draws


def arrival_block(rng: np.random.Generator, rates: np.ndarray, width: int) -> np.ndarray:
    """Arrivals for ``len(rates)`` ticks x ``width`` CPUs, Poisson(``rates[t]``) in tick ``t``,
    independent across ticks and CPUs (drawn by :func:`arrival_draws`)."""
    out = np.zeros(len(rates) * width, dtype=np.int64)
    for first, end, counts, ticks in arrival_draws(rng, rates, width):
        if ticks is None:
            out[first * width : end * width] += counts.ravel()
            continue
        # CPU by CPU in groups, so that the index arrays stay small whatever the rate.
        ends = np.cumsum(counts)
        lo = 0
        while lo < width:
            start = int(ends[lo - 1]) if lo else 0
            hi = int(np.searchsorted(ends, start + _LAYOUT_CHUNK, side="right"))
            hi = min(width, max(hi, lo + 1))
            stop = int(ends[hi - 1])
            where = ticks[start:stop].astype(np.intp)
            where *= width
            where += np.repeat(np.arange(lo, hi), counts[lo:hi])
            out += np.bincount(where, minlength=len(out))
            lo = hi
    return out.reshape(len(rates), width)


def lock_keys(rng: np.random.Generator, width: int) -> np.ndarray:
    """A block of lock-order keys: ``BLOCK`` ticks x ``width`` CPUs, uniform 16-bit integers.

    16 bits, not a float: four of them come from one 64-bit step of the generator, and among
    the few hundred CPUs that need the lock in one tick two equal keys are rare (ties go in CPU
    order). They are ``rng.integers(0, 2**16, (BLOCK, width), dtype=np.uint16)``, drawn by
    :func:`full_range_integers`.
    """
    return full_range_integers(rng, BLOCK * width, np.uint16).reshape(BLOCK, width)


def full_range_integers(rng: np.random.Generator, count: int, dtype) -> np.ndarray:
    """``rng.integers(0, 2**bits, count, dtype=dtype)`` for ``np.uint8`` or ``np.uint16``: the
    same numbers, and the Generator left in the same state, in about 40 % of the time.

    Over the whole range of its type numpy takes these numbers straight from the bits of
    32-bit words (four bytes or two halves of each, low first: ``buffered_uint8`` /
    ``buffered_uint16`` in numpy's ``distributions.c``), and PCG64 makes its 32-bit words as
    the low and then the high half of each 64-bit output, keeping an unused high half for the
    next call (``has_uint32``). This reads the same 64-bit outputs with ``random_raw`` and
    cuts them the same way, a vector operation instead of a call per number; at 1024 CPUs the
    workload's ticks and lock-order keys drew about 3 ns per CPU-tick of the run's 22.
    ``tests/test_workload.py`` holds it to ``rng.integers`` (numbers and state), and any other
    bit generator goes to ``rng.integers`` itself."""
    dtype = np.dtype(dtype)
    bg = rng.bit_generator
    if type(bg) is not np.random.PCG64 or dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        return rng.integers(0, 1 << (8 * dtype.itemsize), count, dtype=dtype)
    words = -(-count * dtype.itemsize // 4)  # 32-bit words numpy would take
    if not words:
        return np.zeros(0, dtype=dtype)
    state = bg.state
    parts = []
    if state["has_uint32"]:  # the high half the last call left: numpy's first word
        parts.append(np.array([state["uinteger"]], dtype="<u4"))
        words -= 1
    raw = np.asarray(bg.random_raw(-(-words // 2)), dtype="<u8")
    halves = raw.view("<u4")
    parts.append(halves[:words])
    state = bg.state
    # PCG64 keeps the last output's high half (``uinteger``), marked unused if no word took it
    # (and keeps it, marked used, if one did); with no new output, the old one is now used.
    state["has_uint32"] = words % 2
    if len(raw):
        state["uinteger"] = int(halves[-1])
    bg.state = state
    data = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return data.view(dtype.newbyteorder("<"))[:count].astype(dtype, copy=False)
