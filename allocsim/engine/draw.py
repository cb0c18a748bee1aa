"""The compiled half of the workload draw: numba code that lays out the numbers
:func:`allocsim.workload.arrival_draws` drew, as :func:`allocsim.workload.arrival_block` does
with numpy (kept apart from :mod:`allocsim.engine.core`, which is the tick)."""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def add_arrivals(out, counts, ticks):
    """``out[ticks[j], c] += 1`` for each arrival ``j`` of CPU ``c``, CPU 0's first: the sum
    ``arrival_block`` forms with ``np.bincount``, without its index arrays."""
    j = 0
    for c in range(len(counts)):
        for _ in range(counts[c]):
            out[ticks[j], c] += 1
            j += 1
    return j


def lay_out_arrivals(out, draws) -> int:
    """Add one block's :func:`allocsim.workload.arrival_draws` into ``out`` (ticks x CPUs,
    zeroed by the caller): runs drawn tick by tick as they are, split runs by
    :func:`add_arrivals`. The same block as ``arrival_block`` lays out with numpy. Returns how
    many arrivals of split runs it placed."""
    placed = 0
    for first, end, counts, ticks in draws:
        if ticks is None:  # a run above SPLIT_MAX_RATE, drawn tick by tick
            out[first:end, : counts.shape[1]] += counts
        else:
            placed += add_arrivals(out, counts, ticks)
    return placed
