"""Reclaim: mirrors ``mm/vmscan.c`` (2.6.36): kswapd, ``balance_pgdat``, ``try_to_free_pages``.

The LRU is kept as counts (:class:`LRU`): runs of clean or dirty page-cache pages, oldest at the
tail. Reclaiming a clean page frees it at once, cold, onto the reclaiming CPU's pcp list.
Reclaiming a dirty page first needs an allocation (PF_MEMALLOC, no watermarks) to start
writeback — the network-filesystem case of Mel Gorman's example — and the page becomes clean
only ``io_latency_ms`` later. Reclaim that needs memory is what lets the machine livelock.

Functions that sleep are generators: they ``yield`` the milliseconds they sleep (or ``None``
to sleep until woken), and the simulation resumes them.
"""

from __future__ import annotations

import math
from collections import deque

from .constants import (
    ALLOC_WMARK_HIGH,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MIN,
    GFP_NOIO,
    HZ,
    SWAP_CLUSTER_MAX,
)
from .page_alloc import __alloc_pages_nodemask, free_hot_cold_page_n
from .vmstat import zone_normal_threshold, zone_pressure_threshold

__all__ = [
    "LRU",
    "KswapdState",
    "wakeup_kswapd",
    "kswapd",
    "balance_pgdat",
    "sleeping_prematurely",
    "try_to_free_pages",
    "shrink_zone",
    "zone_reclaimable",
]


class KswapdState:
    """Where the kswapd thread is (``pgdat->kswapd_wait`` and the loop in ``kswapd()``)."""

    SLEEPING = 0  # on kswapd_wait, in schedule(): woken only by wakeup_kswapd
    NAPPING = 1  # on kswapd_wait, in schedule_timeout(HZ/10) before a full sleep
    RUNNING = 2  # off the wait queue, in balance_pgdat (what "awake" means for the snapshot)
    NAMES = ("sleeping", "napping", "balancing")


class LRU:
    """The zone's file LRU as runs of ``[dirty, count]``; index 0 is the head (newest).

    SIMPLIFICATION: one inactive list, no active list, no anon pages; pages under writeback are
    off the list until their I/O completes, then go to the tail (``rotate_reclaimable_page``).
    """

    __slots__ = ("runs", "clean", "dirty")

    def __init__(self, clean: int = 0, dirty: int = 0):
        self.runs: deque[list] = deque()
        self.clean = 0
        self.dirty = 0
        # Older pages (the tail) are the clean ones: they were written back long ago.
        self.add_head(True, dirty)
        self.add_tail(False, clean)

    def __len__(self) -> int:
        return self.clean + self.dirty

    def _count(self, dirty: bool, n: int) -> None:
        if dirty:
            self.dirty += n
        else:
            self.clean += n

    def add_head(self, dirty: bool, n: int) -> None:
        """New page-cache pages (``lru_cache_add``)."""
        if n <= 0:
            return
        self._count(dirty, n)
        if self.runs and self.runs[0][0] == dirty:
            self.runs[0][1] += n
        else:
            self.runs.appendleft([dirty, n])

    def add_tail(self, dirty: bool, n: int) -> None:
        """Pages whose writeback completed (``rotate_reclaimable_page``)."""
        if n <= 0:
            return
        self._count(dirty, n)
        if self.runs and self.runs[-1][0] == dirty:
            self.runs[-1][1] += n
        else:
            self.runs.append([dirty, n])

    def isolate_dirty_oldest(self, n: int) -> int:
        """Take up to ``n`` of the oldest dirty pages off the list; return how many.

        What the flusher writes back: ``writeback_inodes_wb`` picks inodes by the age of their
        dirtying, which on a streaming writer is LRU order. SIMPLIFICATION: the pages leave the
        list during their I/O and come back clean at the tail, like reclaim's writeback.
        """
        taken = 0
        runs = self.runs
        i = len(runs) - 1
        while taken < n and i >= 0:
            dirty, count = runs[i]
            if dirty:
                k = min(n - taken, count)
                taken += k
                if k == count:
                    del runs[i]
                    # clean runs either side of the removed one now touch: merge them
                    if 0 < i < len(runs) and runs[i - 1][0] == runs[i][0]:
                        runs[i - 1][1] += runs[i][1]
                        del runs[i]
                else:
                    runs[i][1] -= k
            i -= 1
        self.dirty -= taken
        return taken

    def isolate_tail(self, n: int) -> list[tuple[bool, int]]:
        """Take up to ``n`` pages off the tail as ``(dirty, count)`` runs.

        Mirrors ``isolate_lru_pages`` (mm/vmscan.c).
        """
        taken = []
        while n > 0 and self.runs:
            dirty, count = self.runs[-1]
            k = min(n, count)
            if k == count:
                self.runs.pop()
            else:
                self.runs[-1][1] -= k
            self._count(dirty, -k)
            taken.append((dirty, k))
            n -= k
        return taken


# ---------------------------------------------------------------------------------------------
# kswapd
# ---------------------------------------------------------------------------------------------


def wakeup_kswapd(sim, order: int = 0, cpu=None, n=1) -> None:
    """Wake kswapd if the zone is below LOW and kswapd waits (``wakeup_kswapd``, mm/vmscan.c).

    ``cpu`` is the CPU making the call and ``n`` how many allocations the call stands for (the
    cost model charges each one's check to that CPU).
    """
    zone = sim.zone
    ks = sim.kswapd
    low = zone.watermark[ALLOC_WMARK_LOW]
    # 88f5acf tests the wait queue first, so that the (now expensive) check is made only when
    # kswapd could be woken, and makes it zone_watermark_ok_safe: below the drift mark it sums
    # every CPU's delta even while kswapd sleeps, which 2.6.36's zone_nr_free_pages never did.
    # PATCH(watermark_ok_safe): the safe check, after the wait-queue test.
    if zone.patches.watermark_ok_safe:
        ks.max_order = max(ks.max_order, order)
        if not ks.waitqueue_active:  # already running, or already woken
            return
        if sim.watermark_ok(low, 0, safe=True, cpu=cpu, n=n):
            return
        sim.wake_kswapd()
        return
    if sim.watermark_ok(low, 0, cpu=cpu, n=n):
        return
    ks.max_order = max(ks.max_order, order)
    if not ks.waitqueue_active:  # already running, or already woken
        return
    sim.wake_kswapd()


def sleeping_prematurely(sim, order: int, remaining: int) -> bool:
    """Would kswapd sleep too early? (``sleeping_prematurely``, mm/vmscan.c).

    True if something woke it during its nap, or if the zone (when reclaimable) is below HIGH.
    """
    if remaining:
        return True
    zone = sim.zone
    if zone.all_unreclaimable:
        return False
    # PATCH(watermark_ok_safe): 88f5acf: kswapd may sleep only if an accurate count says HIGH.
    safe = zone.patches.watermark_ok_safe
    return not sim.watermark_ok(zone.watermark[ALLOC_WMARK_HIGH], 0, safe=safe, cpu=sim.kswapd_cpu)


def kswapd(sim, asleep: bool = False):
    """The kswapd thread loop (``kswapd``, mm/vmscan.c), as a generator.

    On the wait queue it counts as asleep for ``zone_nr_free_pages``; it naps 100 ms and sleeps
    for good only if the zone is still above HIGH; woken, it leaves the queue and runs
    ``balance_pgdat`` until the zone is above HIGH again. In 2.6.38 (``kswapd_try_to_sleep``)
    the per-CPU thresholds are restored just before the full sleep and lowered again as soon
    as kswapd is woken from it. ``asleep`` starts it past its boot-time nap (a machine that has
    been up for a while): it goes straight to the full sleep if the zone is above HIGH.
    """
    ks = sim.kswapd
    zone = sim.zone
    order = 0
    nap = not asleep
    while True:
        ks.on_waitqueue = True  # prepare_to_wait(&pgdat->kswapd_wait, TASK_INTERRUPTIBLE)
        new_order = ks.max_order
        ks.max_order = 0
        if order < new_order:
            order = new_order  # don't sleep if someone wants a larger 'order' allocation
        else:
            remaining = 0
            if nap and not sleeping_prematurely(sim, order, remaining):
                ks.woken = False
                sim.set_kswapd_state(KswapdState.NAPPING)
                yield HZ // 10  # schedule_timeout(HZ/10)
                remaining = 1 if ks.woken else 0
            nap = True
            if not sleeping_prematurely(sim, order, remaining):
                ks.woken = False
                sim.set_kswapd_state(KswapdState.SLEEPING)
                # PATCH(pressure_threshold): 88f5acf: while kswapd is awake the thresholds are
                # small enough that cpus x threshold <= low - min; put the normal ones back
                # for the sleep, and lower them again the moment kswapd is woken.
                if zone.patches.pressure_threshold:
                    sim.set_pgdat_percpu_threshold(zone_normal_threshold)
                yield None  # schedule(): until wake_up_interruptible
                # PATCH(pressure_threshold): woken: lower the thresholds again.
                if zone.patches.pressure_threshold:
                    sim.set_pgdat_percpu_threshold(zone_pressure_threshold)
            order = ks.max_order
        ks.on_waitqueue = False  # finish_wait
        sim.set_kswapd_state(KswapdState.RUNNING)
        yield from balance_pgdat(sim, order)


def balance_pgdat(sim, order: int):
    """Reclaim until the zone is above HIGH (``balance_pgdat``, mm/vmscan.c), as a generator.

    Works in chunks of SWAP_CLUSTER_MAX reclaimed pages and re-checks HIGH after each. Its own
    allocations (to start writeback) are PF_MEMALLOC.

    SIMPLIFICATION: the priority loop is collapsed: each tick kswapd scans up to
    ``kswapd_scan_per_ms`` pages; if a tick reclaims fewer than SWAP_CLUSTER_MAX pages and the
    zone is not under MIN, it waits ``congestion_wait(HZ/10)`` as it would below priority 10.
    """
    zone = sim.zone
    cpu = sim.kswapd_cpu
    budget = sim.config.kswapd_scan_per_ms
    # PATCH(watermark_ok_safe): 88f5acf: balance_pgdat's HIGH and MIN tests are
    # zone_watermark_ok_safe, so kswapd does not stop early on a drifted counter.
    safe = zone.patches.watermark_ok_safe
    while True:  # loop_again:
        if sim.watermark_ok(zone.watermark[ALLOC_WMARK_HIGH], 0, safe=safe, cpu=cpu):
            return  # every zone is at HIGH: the node is balanced
        nr_reclaimed = 0
        total_scanned = 0
        while total_scanned < budget:
            reclaimed, scanned, _ = shrink_zone(sim, cpu, SWAP_CLUSTER_MAX, budget - total_scanned)
            nr_reclaimed += reclaimed
            total_scanned += scanned
            if scanned == 0:
                break
        has_under_min = not sim.watermark_ok(zone.watermark[ALLOC_WMARK_MIN], 0, safe=safe, cpu=cpu)
        if total_scanned and nr_reclaimed < SWAP_CLUSTER_MAX and not has_under_min:
            yield HZ // 10  # congestion_wait(BLK_RW_ASYNC, HZ/10)
        else:
            yield 1  # the next chunk, one tick later


# ---------------------------------------------------------------------------------------------
# Direct reclaim and the LRU scan
# ---------------------------------------------------------------------------------------------


def zone_reclaimable(zone, lru: LRU) -> bool:
    """Still worth scanning? ``pages_scanned < 6 * zone_reclaimable_pages`` (2.6.36)."""
    return zone.pages_scanned < 6 * len(lru)


def try_to_free_pages(sim, cpu: int, gfp_mask: int):
    """Direct reclaim of SWAP_CLUSTER_MAX pages (``try_to_free_pages``, mm/vmscan.c), generator.

    Returns the pages reclaimed, or 1 ("progress") when nothing was reclaimed but the zone is
    still reclaimable, or 0.

    SIMPLIFICATION: ``do_try_to_free_pages``'s priority loop is collapsed into one scan of up
    to 4 × SWAP_CLUSTER_MAX pages; if it reclaims fewer than SWAP_CLUSTER_MAX the task then
    sleeps ``congestion_wait(HZ/10)``, as the kernel does once the priority drops below 10.
    """
    zone = sim.zone
    reclaimed, scanned, started = shrink_zone(sim, cpu, SWAP_CLUSTER_MAX, 4 * SWAP_CLUSTER_MAX)
    # What the simulator reports of this pass (the kernel keeps no such flag): did it free a
    # page or start writeback (real progress), or only scan (the task is spinning)?
    sim.note_reclaim_pass(cpu, reclaimed + started)
    if scanned and reclaimed < SWAP_CLUSTER_MAX:
        yield HZ // 10  # congestion_wait(BLK_RW_ASYNC, HZ/10)
    if reclaimed:
        return reclaimed
    # All zones are unreclaimable? For global reclaim, report progress while any is not.
    if zone_reclaimable(zone, sim.lru):
        return 1
    return 0


def shrink_zone(sim, cpu: int, nr_to_reclaim: int, nr_to_scan: int) -> tuple[int, int, int]:
    """Scan the LRU tail in chunks of SWAP_CLUSTER_MAX (``shrink_zone`` → ``shrink_page_list``).

    Clean pages are freed cold onto ``cpu``'s pcp list. Dirty pages are written back if the
    PF_MEMALLOC allocations for their requests succeed and the device is not congested;
    otherwise they stay dirty and go back to the head. Returns ``(reclaimed, scanned,
    writeback started)``.
    """
    zone = sim.zone
    lru = sim.lru
    reclaimed = scanned = started_total = 0
    while scanned < nr_to_scan and reclaimed < nr_to_reclaim and len(lru):
        chunk = min(SWAP_CLUSTER_MAX, nr_to_scan - scanned)
        for dirty, n in lru.isolate_tail(chunk):
            scanned += n
            if not dirty:
                free_hot_cold_page_n(zone, cpu, n, cold=True)  # free_page_list: cold pagevecs
                reclaimed += n
                continue
            started = pageout(sim, cpu, n)
            started_total += started
            lru.add_head(True, n - started)  # keep: back on the list, still dirty
    zone.pages_scanned += scanned
    sim.note_reclaimed(reclaimed, scanned)
    return reclaimed, scanned, started_total


def pageout(sim, cpu: int, nr: int, *, pf_memalloc: bool = True) -> int:
    """Start writeback of ``nr`` dirty pages (``pageout``, mm/vmscan.c); return how many started.

    A congested device (``may_write_to_queue`` false) takes none. Sending a page may need memory
    for its request: ``writeback_alloc_ratio`` pages per page, allocated on ``cpu`` —
    PF_MEMALLOC (no watermarks) from reclaim, an ordinary GFP_NOFS allocation from the flusher.

    SIMPLIFICATION: the filesystem's ``writepage`` is reduced to that one allocation. Ratio 1
    stands for a network filesystem (Mel Gorman's example: an skb per page sent); ratio 0 for a
    block device, whose requests come from mempools that always make progress.
    """
    room = sim.config.writeback_limit - sim.writeback_in_flight
    if room <= 0 or nr <= 0:
        return 0
    want = min(nr, room)
    ratio = sim.config.writeback_alloc_ratio
    if ratio == 0:
        sim.start_writeback(cpu, want, 0)
        return want
    need = math.ceil(want * ratio)
    got = __alloc_pages_nodemask(sim, cpu, GFP_NOIO, need, pf_memalloc=pf_memalloc)
    if pf_memalloc:
        sim.note_memalloc(need, got)
    started = want if got == need else min(want, int(got / ratio))
    used = math.ceil(started * ratio)
    if got > used:  # request pages that cannot carry a whole page go straight back
        free_hot_cold_page_n(sim.zone, cpu, got - used)
    if started:
        sim.start_writeback(cpu, started, used)
    return started
