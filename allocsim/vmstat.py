"""Per-CPU vmstat counters: mirrors ``mm/vmstat.c`` and ``include/linux/vmstat.h`` (2.6.36/38).

``NR_FREE_PAGES`` lives in two places: the zone-wide ``vm_stat`` and a small signed delta per
CPU (``vm_stat_diff``). A CPU folds its delta into ``vm_stat`` only when the delta would leave
``[-stat_threshold, +stat_threshold]`` or when its ``vmstat_update`` timer fires. Until then the
zone-wide value is wrong by up to ``num_online_cpus * stat_threshold`` pages: the *drift*.

The pure formulas here (``calculate_threshold``, ``drift_mark``, ``calculate_pressure_threshold``)
are public API: a lecturer can call them from a notebook cell.
"""

from __future__ import annotations

import numpy as np

from .constants import NR_CPUS, PAGE_SHIFT
from .errors import check_cpu, check_int

__all__ = [
    "fls",
    "calculate_threshold",
    "drift_mark",
    "calculate_pressure_threshold",
    "__mod_zone_page_state",
    "mod_zone_page_state_vector",
    "zone_page_state",
    "zone_page_state_snapshot",
    "zone_nr_free_pages",
    "refresh_cpu_vm_stats",
    "refresh_zone_stat_thresholds",
    "calculate_normal_threshold",
    "zone_pressure_threshold",
    "zone_normal_threshold",
    "set_pgdat_percpu_threshold",
]

# The stored diff is an s8 in the kernel, hence the cap of 125 on the threshold.
STAT_THRESHOLD_MAX = 125
_MAX_PAGES = 1 << 40  # 4 PiB of 4 KiB pages: far beyond any zone, small enough to stay exact


def fls(x: int) -> int:
    """Find last set bit, 1-based; ``fls(0) == 0`` (``include/asm-generic/bitops/fls.h``)."""
    x = check_int("x", x, 0)
    return x.bit_length()


def calculate_threshold(present_pages: int, num_online_cpus: int) -> int:
    """The per-CPU ``stat_threshold`` of a zone (``calculate_threshold``, mm/vmstat.c, 2.6.36).

    ``mem = present_pages >> (27 - PAGE_SHIFT)`` is the zone size in 128 MiB units, and
    ``threshold = min(125, 2 * fls(num_online_cpus) * (1 + fls(mem)))``. The table in the
    kernel's comment above this function is wrong in several rows; the formula rules.

    Parameters
    ----------
    present_pages : int
        Pages in the zone, in ``[1, 2**40]``.
    num_online_cpus : int
        Online CPUs, in ``[1, 4096]``.
    """
    present_pages = check_int("present_pages", present_pages, 1, _MAX_PAGES)
    num_online_cpus = check_int("num_online_cpus", num_online_cpus, 1, NR_CPUS)
    mem = present_pages >> (27 - PAGE_SHIFT)
    # threshold = 2 * fls(num_online_cpus()) * (1 + fls(mem));
    threshold = 2 * fls(num_online_cpus) * (1 + fls(mem))
    return min(STAT_THRESHOLD_MAX, threshold)


# 2.6.38 renamed calculate_threshold to calculate_normal_threshold (same formula).
calculate_normal_threshold = calculate_threshold


def drift_mark(
    min_wmark: int, low_wmark: int, high_wmark: int, threshold: int, num_online_cpus: int
) -> int:
    """The ``percpu_drift_mark`` that ``refresh_zone_stat_thresholds`` sets (2.6.36, aa45484).

    ``tolerate_drift = low - min`` and ``max_drift = num_online_cpus * threshold``; if the
    counter could drift further than the gap between LOW and MIN, the mark is
    ``high + max_drift``. Otherwise the kernel leaves it untouched, which for a fresh zone means
    0 ("never take the snapshot"); this function returns 0 then.
    """
    min_wmark = check_int("min_wmark", min_wmark, 0, _MAX_PAGES)
    low_wmark = check_int("low_wmark", low_wmark, min_wmark, _MAX_PAGES)
    high_wmark = check_int("high_wmark", high_wmark, low_wmark, _MAX_PAGES)
    threshold = check_int("threshold", threshold, 0, STAT_THRESHOLD_MAX)
    num_online_cpus = check_int("num_online_cpus", num_online_cpus, 1, NR_CPUS)
    tolerate_drift = low_wmark - min_wmark
    max_drift = num_online_cpus * threshold
    if max_drift > tolerate_drift:
        return high_wmark + max_drift
    return 0


def calculate_pressure_threshold(min_wmark: int, low_wmark: int, num_online_cpus: int) -> int:
    """The lowered threshold 2.6.38 uses while kswapd is awake (commit 88f5acf88ae6).

    ``min(125, max(1, (low - min) / num_online_cpus))``: small enough that the worst-case drift
    of all CPUs together fits in the gap between LOW and MIN.
    """
    min_wmark = check_int("min_wmark", min_wmark, 0, _MAX_PAGES)
    low_wmark = check_int("low_wmark", low_wmark, min_wmark, _MAX_PAGES)
    num_online_cpus = check_int("num_online_cpus", num_online_cpus, 1, NR_CPUS)
    tolerate_drift = low_wmark - min_wmark
    threshold = max(1, tolerate_drift // num_online_cpus)
    return min(STAT_THRESHOLD_MAX, threshold)


# ---------------------------------------------------------------------------------------------
# Counter operations on a zone. ``zone`` is an ``allocsim.mmzone.Zone``: it keeps ``vm_stat``
# (the zone-wide NR_FREE_PAGES, may go negative) and per-CPU numpy arrays ``vm_stat_diff`` and
# ``stat_threshold``. These are module-level functions (not methods) because Python would mangle
# the kernel's double-underscore names inside a class body.
# ---------------------------------------------------------------------------------------------


def __mod_zone_page_state(zone, cpu: int, delta: int) -> None:
    """Add ``delta`` to NR_FREE_PAGES on ``cpu`` (``__mod_zone_page_state``, mm/vmstat.c).

    The delta goes into this CPU's diff; only when the diff would leave
    ``[-stat_threshold, +stat_threshold]`` is it folded into the zone-wide ``vm_stat``.
    2.6.36 updates NR_FREE_PAGES only through this primitive (no "overstep" variant).
    """
    # x = delta + __this_cpu_read(*p);
    x = int(zone.vm_stat_diff[cpu]) + delta
    t = int(zone.stat_threshold[cpu])
    # if (unlikely(x > t || x < -t)) { zone_page_state_add(x, zone, item); x = 0; }
    if x > t or x < -t:
        zone.vm_stat += x
        zone.stat_folds[cpu] += 1  # not kernel state: the cost model charges each fold
        x = 0
    zone.vm_stat_diff[cpu] = x


def mod_zone_page_state_vector(zone, cpus: np.ndarray, deltas: np.ndarray) -> None:
    """``__mod_zone_page_state`` once on each of several distinct CPUs, with numpy.

    Each CPU folds only its own diff, and ``vm_stat`` is a sum, so the order does not matter:
    the result equals one scalar call per ``(cpu, delta)`` pair (tested).
    """
    x = zone.vm_stat_diff[cpus] + deltas
    t = zone.stat_threshold[cpus]
    fold = (x > t) | (x < -t)
    if fold.any():
        zone.vm_stat += int(x[fold].sum())
        zone.stat_folds[cpus[fold]] += 1  # the CPUs are distinct
        x[fold] = 0
    zone.vm_stat_diff[cpus] = x


def zone_page_state(zone) -> int:
    """The plain, lockless read of NR_FREE_PAGES, clamped at 0 (``zone_page_state``, vmstat.h)."""
    x = zone.vm_stat
    return x if x > 0 else 0


def zone_page_state_snapshot(zone) -> int:
    """``vm_stat`` plus every online CPU's unfolded diff, clamped at 0 (vmstat.h, 2.6.36).

    It reads one cache line per online CPU (each CPU's pageset); ``zone.snapshot_reads`` counts
    the calls so that the simulation can tell when a read took this path.
    """
    zone.snapshot_reads += 1
    x = zone.vm_stat + int(zone.vm_stat_diff.sum())
    return x if x > 0 else 0


def zone_nr_free_pages(zone, kswapd_awake: bool) -> int:
    """The free-page count every watermark check reads (``zone_nr_free_pages``, mm/mmzone.c).

    Unpatched (2.6.35.3) the checks read ``zone_page_state``. With the drift-mark patch
    (aa45484) the expensive snapshot is taken when the plain read is below
    ``percpu_drift_mark`` *and* kswapd is awake, i.e. not waiting on ``kswapd_wait``.
    2.6.36 and 2.6.37 only: 88f5acf (2.6.38) deletes it (see ``page_alloc.watermark_free_pages``).
    """
    nr_free_pages = zone_page_state(zone)
    # PATCH(drift_mark_snapshot): below percpu_drift_mark while kswapd is awake, add the per-CPU
    # deltas. Unpatched 2.6.35 has no percpu_drift_mark; refresh_zone_stat_thresholds then
    # never sets it (it stays 0), so this branch can only be taken with the patch on.
    if zone.patches.drift_mark_snapshot:
        if nr_free_pages < zone.percpu_drift_mark and kswapd_awake:
            return zone_page_state_snapshot(zone)
    return nr_free_pages


def refresh_cpu_vm_stats(zone, cpu: int) -> int:
    """Fold one CPU's diff into ``vm_stat`` (``refresh_cpu_vm_stats``, mm/vmstat.c).

    Runs from that CPU's ``vmstat_update`` work every ``stat_interval``. It never drains the
    CPU's own pcp lists (only remote NUMA zones are trimmed, which a one-node model lacks).
    Returns the number of pages folded.
    """
    check_cpu(zone, cpu)
    v = int(zone.vm_stat_diff[cpu])
    if v:
        zone.vm_stat_diff[cpu] = 0
        zone.vm_stat += v
        zone.stat_folds[cpu] += 1
    return v


def refresh_zone_stat_thresholds(
    zone, num_online_cpus: int | None = None, threshold: int | None = None
) -> None:
    """Give every online CPU the zone's threshold and set the drift mark (mm/vmstat.c).

    ``threshold`` overrides ``calculate_threshold`` (a teaching knob: "what if the threshold
    were 1?"); it is also what ``calculate_normal_threshold`` gives back when 2.6.38's kswapd
    restores the normal threshold (``zone.normal_threshold``). With the drift-mark patch, or
    with 2.6.38's behaviour, the zone's ``percpu_drift_mark`` becomes ``high + max_drift`` when
    ``max_drift > low - min``.
    """
    if num_online_cpus is None:
        num_online_cpus = zone.num_online_cpus
    if threshold is None:
        threshold = calculate_threshold(zone.present_pages, num_online_cpus)
    zone.stat_threshold[:num_online_cpus] = threshold
    zone.normal_threshold = threshold
    p = zone.patches
    # PATCH(drift_mark_snapshot): 2.6.36 computes percpu_drift_mark here; 2.6.35.3 has no mark.
    # PATCH(pressure_threshold) PATCH(watermark_ok_safe): 2.6.38 keeps computing it: the mark
    # picks the zones whose thresholds kswapd lowers and below which the safe check takes the
    # snapshot.
    if p.drift_mark_snapshot or p.pressure_threshold or p.watermark_ok_safe:
        mark = drift_mark(*zone.watermark, threshold, num_online_cpus)
        if mark:
            zone.percpu_drift_mark = mark


def zone_pressure_threshold(zone) -> int:
    """``calculate_pressure_threshold(zone)`` as ``set_pgdat_percpu_threshold`` calls it."""
    return calculate_pressure_threshold(zone.watermark[0], zone.watermark[1], zone.num_online_cpus)


def zone_normal_threshold(zone) -> int:
    """``calculate_normal_threshold(zone)`` as ``set_pgdat_percpu_threshold`` calls it.

    The threshold ``refresh_zone_stat_thresholds`` installed: the kernel formula, or the value
    you fixed (``SimConfig.stat_threshold``), which stands in for the formula throughout.
    """
    return zone.normal_threshold


def set_pgdat_percpu_threshold(zone, calculate) -> bool:
    """Write ``calculate(zone)`` into every online CPU's ``stat_threshold`` (mm/vmstat.c, 2.6.38).

    The kernel walks the node's zones and skips those without a ``percpu_drift_mark`` (on them
    drift is harmless); the model has one zone. It writes every CPU's threshold
    (``for_each_possible_cpu`` in 2.6.38; all CPUs are online here) and leaves the diffs alone:
    a diff larger than a new, lower threshold stays until that CPU's next
    ``__mod_zone_page_state`` (which then folds it) or its ``vmstat_update``. Returns True if
    it wrote the thresholds (the zone has a mark).
    """
    if not zone.percpu_drift_mark:
        return False
    threshold = calculate(zone)
    n = zone.num_online_cpus
    # Not kernel state: the bound every stored diff obeys (what the invariant checks assert).
    # A stored diff is within the threshold in force when it was written; after a rewrite the
    # old diffs keep their old size until their CPU writes again.
    zone.diff_limit = np.maximum(np.abs(zone.vm_stat_diff[:n]), threshold)
    zone.stat_threshold[:n] = threshold
    return True


def diff_limit(zone) -> np.ndarray:
    """The largest ``|vm_stat_diff|`` each CPU may hold now (``stat_threshold`` until a rewrite)."""
    limit = getattr(zone, "diff_limit", None)
    if limit is None:
        return zone.stat_threshold
    return np.maximum(limit, zone.stat_threshold)


def stat_threshold_array(num_cpus: int, threshold: int) -> np.ndarray:
    """A per-CPU threshold array (all CPUs online share the zone's threshold)."""
    return np.full(num_cpus, threshold, dtype=np.int64)
