"""Numbers from a :class:`~allocsim.trace.RunResult`: livelock episodes, gaps, sweeps."""

from __future__ import annotations

import numpy as np

__all__ = ["find_livelocks", "LIVELOCK_THROUGHPUT", "LIVELOCK_STUCK_SHARE"]

# A livelock: for a whole window the tasks get under 1 % of the pages they ask for, while on
# average more than half of them sit in the allocator (reclaiming or in congestion_wait).
LIVELOCK_THROUGHPUT = 0.01
LIVELOCK_STUCK_SHARE = 0.5


def find_livelocks(result) -> list:
    """Detect livelock episodes in a run (the operational definition above).

    Every window of ``config.livelock_window_ms`` that meets the definition marks its ticks;
    an episode is a maximal run of marked ticks. Its onset is the first tick, and the state
    recorded there is what a reader should look at: counter, snapshot, buddy pages, pcp pages,
    kswapd's state and the min watermark.
    """
    from .trace import Episode
    from .vmscan import KswapdState

    cfg = result.config
    s = result.series
    n = len(result.t_ms)
    w = cfg.livelock_window_ms
    ntasks = cfg.writer_cpus
    if n < w or ntasks == 0:
        return []
    ok = np.concatenate(([0], np.cumsum(s["task_ok"])))
    demand = np.concatenate(([0], np.cumsum(s["task_demand"])))
    stuck = np.concatenate(([0], np.cumsum(s["tasks_in_allocator"])))
    ok_w = ok[w:] - ok[:-w]
    demand_w = demand[w:] - demand[:-w]
    stuck_w = (stuck[w:] - stuck[:-w]) / w
    bad = (
        (demand_w > 0)
        & (ok_w < LIVELOCK_THROUGHPUT * demand_w)
        & (stuck_w > LIVELOCK_STUCK_SHARE * ntasks)
    )
    if not bad.any():
        return []
    # Mark the ticks covered by bad windows: window i covers [i, i + w).
    cover = np.zeros(n + 1, dtype=np.int64)
    starts = np.flatnonzero(bad)
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + w, -1)
    covered = np.cumsum(cover[:n]) > 0
    edges = np.diff(np.concatenate(([0], covered.astype(np.int8), [0])))
    begins = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    episodes = []
    in_alloc = s["tasks_in_allocator"]
    for b, e in zip(begins, ends, strict=True):
        # The onset is the first tick of the episode at which most tasks sit in the allocator:
        # the state in which the machine got stuck (the window itself may open a little earlier).
        stuck_ticks = np.flatnonzero(in_alloc[b:e] > LIVELOCK_STUCK_SHARE * ntasks)
        o = b + int(stuck_ticks[0]) if len(stuck_ticks) else b
        onset = {
            "t_ms": int(result.t_ms[o]),
            "counter": int(s["counter"][o]),
            "snapshot": int(s["snapshot"][o]),
            "buddy": int(s["buddy"][o]),
            "pcp": int(s["pcp"][o]),
            "pcp_stranded": int(s["pcp_stranded"][o]),
            "kswapd": KswapdState.NAMES[int(s["kswapd_state"][o])],
            "wmark_min": int(result.derived["wmark_min"]),
        }
        episodes.append(Episode(int(result.t_ms[b]), int(e - b), onset))
    return episodes


# ---------------------------------------------------------------------------------------------
# Sweeps: many runs, one row each
# ---------------------------------------------------------------------------------------------

PATCH_SUBSETS = (
    "none",
    "counter_after_free",
    "drift_mark_snapshot",
    "drain_after_reclaim",
    "counter_after_free,drift_mark_snapshot",
    "counter_after_free,drain_after_reclaim",
    "drift_mark_snapshot,drain_after_reclaim",
    "all",
)


def row(result) -> dict:
    """The numbers a table or a sweep plot needs from one run."""
    d = result.to_dict()
    s = result.series
    first = result.episodes[0] if result.episodes else None
    awake_at_onset = None
    if first is not None:
        awake_at_onset = first.onset["kswapd"] == "balancing"
    # Did patch 2 ever get to act? It can only while kswapd is in balance_pgdat and the counter
    # is below the drift mark.
    snapshot_ticks = int(
        ((s["kswapd_state"] == 2) & (s["counter"] < result.derived["percpu_drift_mark"])).sum()
    )
    return {
        "cpus": d["cpus"],
        "zone_mib": d["zone_mib"],
        "seed": d["seed"],
        "patches": result.config.patches.label(),
        "stat_interval_ms": d["stat_interval_ms"],
        "stat_threshold": d["stat_threshold"],
        "livelocked": d["livelocked"],
        "livelock_ms": d["livelock_ms"],
        "first_episode_ms": first.length_ms if first else 0,
        "kswapd_awake_at_onset": awake_at_onset,
        "snapshot_ticks": snapshot_ticks,
        "drain_all_pages_calls": d["drain_all_pages_calls"],
        "max_counter_minus_buddy": d["max_counter_minus_buddy"],
        "mean_counter_minus_buddy": d["mean_counter_minus_buddy"],
        "max_pcp_stranded": int(s["pcp_stranded"].max()) if len(s["pcp_stranded"]) else 0,
        "task_throughput": d["task_throughput"],
        "atomic_failed": d["atomic_failed"],
        "max_drift": d["max_drift"],
    }


def sweep(configs, *, progress=None) -> list[dict]:
    """Run every config and return one :func:`row` per run (``progress(i, n, cfg)`` optional)."""
    from .sim import Simulation

    configs = list(configs)
    rows = []
    for i, cfg in enumerate(configs):
        if progress is not None:
            progress(i, len(configs), cfg)
        rows.append(row(Simulation(cfg).run()))
    return rows
