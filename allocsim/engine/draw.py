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
