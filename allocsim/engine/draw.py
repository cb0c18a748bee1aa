"""The compiled half of the workload draw: numba code that lays out the numbers
:func:`allocsim.workload.arrival_draws` drew, as :func:`allocsim.workload.arrival_block` does
with numpy (kept apart from :mod:`allocsim.engine.core`, which is the tick)."""

from __future__ import annotations

import numpy as np
from numba import njit

# CPUs laid out together (add_arrivals): their table, ticks x 32 counts of 32 bits, stays in
# the L1 cache, and each tick's counts fill a cache line or two of ``out``.
_GROUP = 32


@njit(cache=True, nogil=True)
def add_arrivals(out, counts, ticks, first, end, assign=False):
    """``out[ticks[j], c] += 1`` for each arrival ``j`` of CPU ``c``, CPU 0's first: the sum
    ``arrival_block`` forms with ``np.bincount``, without its index arrays.

    Why in groups of CPUs: one CPU's arrivals go down a column of ``out`` (ticks x CPUs), one
    row apart each, and at 1024 CPUs a row is 8 KiB: every arrival would be a cache miss, and
    the rows, a power of two apart, compete for the same few cache sets. So each group's
    counts are summed in a small tick-major table first (it stays in the L1 cache), then added
    to ``out`` a cache line per tick. With ``assign`` they are written, not added: for a run
    that covers all of ``out`` (the usual block), which then needs no zeroing first."""
    n = len(counts)
    span = end - first
    hist = np.zeros((span, _GROUP), dtype=np.int32)
    j = 0
    for c0 in range(0, n, _GROUP):
        g_end = min(_GROUP, n - c0)
        for g in range(g_end):
            for _ in range(counts[c0 + g]):
                hist[ticks[j] - first, g] += 1
                j += 1
        for t in range(span):
            row = out[first + t]
            if assign:
                for g in range(g_end):
                    row[c0 + g] = hist[t, g]
                    hist[t, g] = 0
            else:
                for g in range(g_end):
                    row[c0 + g] += hist[t, g]
                    hist[t, g] = 0
    return j


def lay_out_arrivals(out, draws) -> int:
    """Lay one block's :func:`allocsim.workload.arrival_draws` out into ``out`` (ticks x CPUs):
    runs drawn tick by tick as they are, split runs by :func:`add_arrivals`. The same block as
    ``arrival_block`` lays out with numpy. Returns how many arrivals of split runs it placed.

    ``out`` may be narrower than numpy's int64 (the driver's is 16 bits): a count it cannot
    hold is an error, never a wrapped number. (A tick's count is at most its run's total.)"""
    limit = np.iinfo(out.dtype).max
    for first, end, counts, _ticks in draws:
        most = int(counts.max()) if counts.size else 0
        if most > limit:
            raise OverflowError(
                f"{most} arrivals for one CPU in ticks {first}..{end - 1} of a workload block: "
                f"more than the compiled engine's {out.dtype} arrival counts hold ({limit})"
            )
    if (
        len(draws) == 1
        and draws[0][3] is not None
        and (draws[0][0], draws[0][1]) == (0, out.shape[0])
        and len(draws[0][2]) == out.shape[1]
    ):  # one split run over the whole block: written once, no zeroing
        first, end, counts, ticks = draws[0]
        return add_arrivals(out, counts, ticks, first, end, True)
    out.fill(0)
    placed = 0
    for first, end, counts, ticks in draws:
        if ticks is None:  # a run above SPLIT_MAX_RATE, drawn tick by tick
            block = out[first:end, : counts.shape[1]]
            np.add(block, counts, out=block, casting="unsafe")  # counts fit: checked above
        else:
            placed += add_arrivals(out, counts, ticks, first, end)
    return placed
