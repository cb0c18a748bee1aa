"""Numbers from a run's recorded series: the verdict measures, stall episodes, sweeps.

Every measure here is a pure function of what :class:`~allocsim.trace.RunResult` recorded, so
the same run can be judged with other bin sizes or thresholds without simulating again (that is
how ``docs/results.md`` publishes the sensitivity of every verdict).

The measures (all in simulated ms):

* ``delivered_pages``: pages the writer tasks got.
* ``stalled_ms``: time in *stalled bins*: bins of ``bin_ms`` in which the tasks asked for pages,
  got fewer than ``threshold`` of what they asked for, and most of them (``spin_share``) were
  *stuck*: spinning in the allocator (retrying after reclaim passes that freed no page and
  started no writeback), or throttled by the dirty limit while no page was under writeback (in
  the kernel such a writer writes back pages itself and would be spinning in the allocator too;
  see ``allocsim.page_writeback``). Tasks waiting for I/O that is under way are slow, not
  stalled.
* ``counter_lies_ms``: ticks in which the count the watermark checks read was at or above
  WMARK_MIN while the buddy lists held fewer than WMARK_MIN pages.
* ``buddy_below_min_ms``: ticks with fewer than WMARK_MIN pages on the buddy lists.
* ``progress_vs_exact``: delivered pages relative to the exact-counter machine on the same seed
  (:func:`exact_config`), computed by :mod:`allocsim.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .patches import Patches

__all__ = [
    "Episode",
    "STALL_BIN_MS",
    "STALL_THRESHOLD",
    "STALL_SPIN_SHARE",
    "LIVELOCK_MIN_MS",
    "exact_config",
    "bin_sums",
    "stalled_bins",
    "stalled_ms",
    "find_stalls",
    "counter_lies_ms",
    "buddy_below_min_ms",
    "verdict",
]

STALL_BIN_MS = 100  # the bin of every per-bin measure
STALL_THRESHOLD = 0.01  # a stalled bin delivers under 1 % of what the tasks asked for ...
STALL_SPIN_SHARE = 0.5  # ... while more than half of the writers spin in the allocator
LIVELOCK_MIN_MS = 1000  # the one-line summary: "livelocked" = stalled bins adding up to 1 s


@dataclass(frozen=True)
class Episode:
    """A stall: when it started, how long it lasted, and the state at its onset."""

    start_ms: int
    length_ms: int
    onset: dict

    def to_dict(self) -> dict:
        return {"start_ms": self.start_ms, "length_ms": self.length_ms, "onset": dict(self.onset)}


def exact_config(config):
    """The exact-counter machine for ``config``: the counterfactual the patches approximate.

    ``stat_threshold`` 0 makes every ``__mod_zone_page_state`` fold at once, so NR_FREE_PAGES
    is always exact; no patch is applied (with exact counters there is no drift to correct).
    Same seed, same workload.
    """
    return config.replace(stat_threshold=0, patches=Patches())


def bin_sums(series: np.ndarray, bin_ms: int) -> np.ndarray:
    """Sum a per-tick series over consecutive bins of ``bin_ms`` (the last one may be short)."""
    n = len(series)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    starts = np.arange(0, n, bin_ms)
    return np.add.reduceat(np.asarray(series, dtype=np.float64), starts)


def _check_stall_args(bin_ms, threshold, spin_share):
    from .errors import check_float, check_int

    check_int("bin_ms", bin_ms, 1, 3_600_000)
    check_float("threshold", threshold, 0.0, 1.0)
    check_float("spin_share", spin_share, 0.0, 1.0)


def stuck_tasks(result) -> np.ndarray:
    """Per tick: writers spinning in the allocator, plus throttled ones if no I/O is under way."""
    s = result.series
    return s["tasks_spinning"] + np.where(s["writeback"] == 0, s["tasks_throttled"], 0)


def stalled_bins(
    result,
    bin_ms: int = STALL_BIN_MS,
    threshold: float = STALL_THRESHOLD,
    spin_share: float = STALL_SPIN_SHARE,
) -> np.ndarray:
    """One bool per bin: the tasks asked, got < ``threshold`` of it, and most were stuck."""
    _check_stall_args(bin_ms, threshold, spin_share)
    s = result.series
    ntasks = result.config.writer_cpus
    if ntasks == 0 or len(result.t_ms) == 0:
        return np.zeros(0, dtype=bool)
    demand = bin_sums(s["task_demand"], bin_ms)
    got = bin_sums(s["task_ok"], bin_ms)
    stuck = bin_sums(stuck_tasks(result), bin_ms) / _bin_lengths(len(result.t_ms), bin_ms)
    return (demand > 0) & (got < threshold * demand) & (stuck > spin_share * ntasks)


def _bin_lengths(n: int, bin_ms: int) -> np.ndarray:
    lengths = np.full((n + bin_ms - 1) // bin_ms, bin_ms, dtype=np.int64)
    if n % bin_ms:
        lengths[-1] = n % bin_ms
    return lengths


def stalled_ms(
    result,
    bin_ms: int = STALL_BIN_MS,
    threshold: float = STALL_THRESHOLD,
    spin_share: float = STALL_SPIN_SHARE,
) -> int:
    """Milliseconds in stalled bins (see :func:`stalled_bins`)."""
    bad = stalled_bins(result, bin_ms, threshold, spin_share)
    return int(_bin_lengths(len(result.t_ms), bin_ms)[bad].sum()) if len(bad) else 0


def find_stalls(
    result,
    bin_ms: int = STALL_BIN_MS,
    threshold: float = STALL_THRESHOLD,
    spin_share: float = STALL_SPIN_SHARE,
) -> list[Episode]:
    """Stall episodes: maximal runs of stalled bins, with the machine's state at the onset.

    The onset is the first tick of the episode at which most writers are stuck; its state is what a
    reader should look at: counter, snapshot, buddy pages, pcp pages, kswapd, the min watermark.
    """
    from .vmscan import KswapdState

    bad = stalled_bins(result, bin_ms, threshold, spin_share)
    if not bad.any():
        return []
    s = result.series
    n = len(result.t_ms)
    ntasks = result.config.writer_cpus
    stuck = stuck_tasks(result)
    edges = np.diff(np.concatenate(([0], bad.astype(np.int8), [0])))
    episodes = []
    for b, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        t0, t1 = int(b) * bin_ms, min(n, int(e) * bin_ms)
        spin = np.flatnonzero(stuck[t0:t1] > spin_share * ntasks)
        o = t0 + int(spin[0]) if len(spin) else t0
        onset = {
            "t_ms": int(result.t_ms[o]),
            "counter": int(s["counter"][o]),
            "snapshot": int(s["snapshot"][o]),
            "buddy": int(s["buddy"][o]),
            "pcp": int(s["pcp"][o]),
            "pcp_stranded": int(s["pcp_stranded"][o]),
            "writeback": int(s["writeback"][o]),
            "kswapd": KswapdState.NAMES[int(s["kswapd_state"][o])],
            "wmark_min": int(result.derived["wmark_min"]),
        }
        episodes.append(Episode(int(result.t_ms[t0]), t1 - t0, onset))
    return episodes


def counter_lies_ms(result) -> int:
    """Ticks when the checks read >= WMARK_MIN while the buddy lists held < WMARK_MIN pages."""
    s = result.series
    wmin = result.derived["wmark_min"]
    return int(np.count_nonzero((s["read"] >= wmin) & (s["buddy"] < wmin)))


def buddy_below_min_ms(result) -> int:
    """Ticks with fewer than WMARK_MIN pages on the buddy lists."""
    return int(np.count_nonzero(result.series["buddy"] < result.derived["wmark_min"]))


def verdict(result, bin_ms: int = STALL_BIN_MS, threshold: float = STALL_THRESHOLD) -> dict:
    """The verdict measures of one run as plain numbers (what ``run --json`` reports)."""
    s = result.series
    episodes = find_stalls(result, bin_ms, threshold)
    stalled = sum(e.length_ms for e in episodes)
    longest = max((e.length_ms for e in episodes), default=0)
    n = len(result.t_ms)
    k = result.config.writer_cpus
    return {
        "delivered_pages": int(s["task_ok"].sum()),
        "stalled_ms": int(stalled),
        "longest_stall_ms": int(longest),
        "counter_lies_ms": counter_lies_ms(result),
        "buddy_below_min_ms": buddy_below_min_ms(result),
        "stuck_share": float(stuck_tasks(result).sum() / (n * k)) if n and k else 0.0,
        "spinning_share": float(s["tasks_spinning"].sum() / (n * k)) if n and k else 0.0,
        "throttled_share": float(s["tasks_throttled"].sum() / (n * k)) if n and k else 0.0,
        "in_allocator_share": float(s["tasks_in_allocator"].sum() / (n * k)) if n and k else 0.0,
        "episodes": episodes,
    }
