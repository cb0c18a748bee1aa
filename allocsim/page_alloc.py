"""The page allocator: mirrors ``mm/page_alloc.c`` (2.6.35.3 unpatched, 2.6.36 patched).

Three layers, each named after the kernel:

* sizing formulas (``min_free_kbytes``, ``setup_per_zone_wmarks``, ``zone_batchsize``,
  ``setup_pageset``, ``setup_per_zone_lowmem_reserve``): pure functions, public API;
* the watermark test (``zone_watermark_ok``) with ALLOC_HIGH / ALLOC_HARDER / lowmem_reserve and
  the per-order loop;
* moving order-0 pages between the buddy lists and the per-cpu lists (``rmqueue_bulk``,
  ``free_pcppages_bulk``, ``drain_pages``, ``drain_all_pages``, ``buffered_rmqueue``,
  ``free_hot_cold_page``), which work on a ``Zone`` whichever way it stores its buddy pages.
"""

from __future__ import annotations

import math

from .constants import (
    ALLOC_HARDER,
    ALLOC_HIGH,
    LOWMEM_RESERVE_RATIO,
    MAX_ORDER,
    PAGE_SHIFT,
    PAGE_SIZE,
)
from .errors import check_cpu, check_int
from .vmstat import (
    __mod_zone_page_state,
    zone_nr_free_pages,
    zone_page_state,
    zone_page_state_snapshot,
)

__all__ = [
    "int_sqrt",
    "min_free_kbytes",
    "setup_per_zone_wmarks",
    "setup_per_zone_lowmem_reserve",
    "zone_batchsize",
    "setup_pageset",
    "rounddown_pow_of_two",
    "__zone_watermark_ok",
    "zone_watermark_ok",
    "zone_watermark_ok_safe",
    "watermark_free_pages",
    "watermark_free_pages_safe",
    "rmqueue_bulk",
    "free_pcppages_bulk",
    "free_hot_cold_page",
    "buffered_rmqueue",
    "drain_pages",
    "drain_all_pages",
]

_MAX_PAGES = 1 << 40
_MAX_KBYTES = _MAX_PAGES << (PAGE_SHIFT - 10)

# ---------------------------------------------------------------------------------------------
# Sizing formulas
# ---------------------------------------------------------------------------------------------


def int_sqrt(x: int) -> int:
    """Floor of the square root of ``x`` (``int_sqrt``, lib/int_sqrt.c)."""
    x = check_int("x", x, 0)
    return math.isqrt(x)


def min_free_kbytes(lowmem_kbytes: int) -> int:
    """Default ``vm.min_free_kbytes`` (``init_per_zone_wmark_min``, mm/page_alloc.c, 2.6.36).

    ``min_free_kbytes = int_sqrt(lowmem_kbytes * 16)``, i.e. ``floor(4 * sqrt(lowmem_kbytes))``,
    clamped to ``[128, 65536]``.

    Parameters
    ----------
    lowmem_kbytes : int
        KiB in the lowmem zones (DMA + DMA32 + Normal), in ``[1, 2**42]``.
    """
    lowmem_kbytes = check_int("lowmem_kbytes", lowmem_kbytes, 1, _MAX_KBYTES)
    value = int_sqrt(lowmem_kbytes * 16)
    return min(65536, max(128, value))


def setup_per_zone_wmarks(min_free_kbytes: int, present_pages) -> list[tuple[int, int, int]]:
    """WMARK_MIN/LOW/HIGH of each lowmem zone (``setup_per_zone_wmarks``, mm/page_alloc.c).

    ``pages_min = min_free_kbytes >> (PAGE_SHIFT - 10)``; each zone gets its share
    ``tmp = pages_min * present / lowmem_pages`` and ``min = tmp``, ``low = min + tmp/4``,
    ``high = min + tmp/2``.

    Parameters
    ----------
    min_free_kbytes : int
        In ``[0, 2**42]`` (the sysctl accepts 0).
    present_pages : sequence of int
        Sizes of the lowmem zones, in zone order (e.g. DMA, DMA32, Normal); each in ``[1, 2**40]``.
    """
    min_free_kbytes = check_int("min_free_kbytes", min_free_kbytes, 0, _MAX_KBYTES)
    sizes = _check_zone_sizes(present_pages)
    pages_min = min_free_kbytes >> (PAGE_SHIFT - 10)
    lowmem_pages = sum(sizes)
    marks = []
    for present in sizes:
        # tmp = (u64)pages_min * zone->present_pages; do_div(tmp, lowmem_pages);
        tmp = pages_min * present // lowmem_pages
        wmark_min = tmp
        marks.append((wmark_min, wmark_min + (tmp >> 2), wmark_min + (tmp >> 1)))
    return marks


def setup_per_zone_lowmem_reserve(present_pages, ratios=LOWMEM_RESERVE_RATIO) -> list[list[int]]:
    """``lowmem_reserve[j]`` of each zone (``setup_per_zone_lowmem_reserve``, mm/page_alloc.c).

    For zone ``i`` below ``j``: ``(sum of present pages of zones i+1..j) / ratio[i]``; 0 for
    ``j <= i``. ``ratios`` defaults to x86_64's ``sysctl_lowmem_reserve_ratio`` (256, 256, 32).
    """
    sizes = _check_zone_sizes(present_pages)
    n = len(sizes)
    if isinstance(ratios, (str, bytes)) or not hasattr(ratios, "__len__"):
        raise TypeError(
            f"ratios must be a sequence of integers, one per lower zone, got {ratios!r}"
        )
    if len(ratios) < n - 1:
        raise ValueError(f"ratios needs at least {n - 1} entries for {n} zones, got {len(ratios)}")
    reserve = [[0] * n for _ in range(n)]
    for j in range(n):
        pages = sizes[j]
        for idx in range(j - 1, -1, -1):
            # a ratio below 1 is forced to 1
            ratio = max(1, check_int(f"ratios[{idx}]", ratios[idx]))
            reserve[idx][j] = pages // ratio
            pages += sizes[idx]
    return reserve


def rounddown_pow_of_two(n: int) -> int:
    """Largest power of two ``<= n`` (``rounddown_pow_of_two``, include/linux/log2.h)."""
    n = check_int("n", n, 1)
    return 1 << (n.bit_length() - 1)


def zone_batchsize(present_pages: int) -> int:
    """The per-cpu list batch of a zone (``zone_batchsize``, mm/page_alloc.c, CONFIG_MMU).

    About a thousandth of the zone, at most 512 KiB, divided by 4, then clamped to ``2^n - 1``
    (cache-colour aliasing): 31 for zones of 512 MiB and more, 0 below 32 MiB.
    """
    present_pages = check_int("present_pages", present_pages, 1, _MAX_PAGES)
    batch = present_pages // 1024
    if batch * PAGE_SIZE > 512 * 1024:
        batch = (512 * 1024) // PAGE_SIZE
    batch //= 4
    if batch < 1:
        batch = 1
    # batch = rounddown_pow_of_two(batch + batch/2) - 1;
    return rounddown_pow_of_two(batch + batch // 2) - 1


def setup_pageset(batch: int) -> tuple[int, int]:
    """``(high, batch)`` of a per-cpu list (``setup_pageset``, mm/page_alloc.c).

    ``high = 6 * batch`` and ``pcp->batch = max(1, batch)``: a zone with batch 0 (under 32 MiB)
    gets high 0, batch 1, so every free goes straight through to the buddy lists.
    """
    batch = check_int("batch", batch, 0, 1 << 20)
    return 6 * batch, max(1, batch)


def _check_zone_sizes(present_pages) -> list[int]:
    if isinstance(present_pages, (str, bytes)) or not hasattr(present_pages, "__iter__"):
        raise TypeError(f"present_pages must be a sequence of zone sizes, got {present_pages!r}")
    sizes = [
        check_int(f"present_pages[{i}]", p, 1, _MAX_PAGES) for i, p in enumerate(present_pages)
    ]
    if not sizes:
        raise ValueError("present_pages must name at least one zone, got an empty sequence")
    return sizes


# ---------------------------------------------------------------------------------------------
# The watermark test
# ---------------------------------------------------------------------------------------------


def __zone_watermark_ok(
    free_pages: int, order: int, mark: int, lowmem_reserve: int, alloc_flags: int, nr_free=()
) -> bool:
    """The arithmetic of ``zone_watermark_ok`` on an already-read free count.

    ``nr_free[o]`` is ``free_area[o].nr_free`` (blocks, not pages); only read for ``order > 0``.
    """
    # Input checks: a cheap test for the common case; check_int names the parameter otherwise.
    if type(free_pages) is not int:
        free_pages = check_int("free_pages", free_pages)
    if type(order) is not int or not 0 <= order < MAX_ORDER:
        order = check_int("order", order, 0, MAX_ORDER - 1)
    if type(mark) is not int or mark < 0:
        mark = check_int("mark", mark, 0)
    if type(lowmem_reserve) is not int or lowmem_reserve < 0:
        lowmem_reserve = check_int("lowmem_reserve", lowmem_reserve, 0)
    if type(alloc_flags) is not int or alloc_flags < 0:
        alloc_flags = check_int("alloc_flags", alloc_flags, 0)
    if order and len(nr_free) < order:
        raise ValueError(
            f"nr_free must give free_area[o].nr_free for every order o < {order}, "
            f"got {len(nr_free)} entries"
        )
    # long free_pages = zone_nr_free_pages(z) - (1 << order) + 1;
    free = free_pages - (1 << order) + 1
    min_ = mark
    if alloc_flags & ALLOC_HIGH:
        min_ -= min_ // 2
    if alloc_flags & ALLOC_HARDER:
        min_ -= min_ // 4
    if free <= min_ + lowmem_reserve:
        return False
    for o in range(order):
        # At the next order, this order's pages become unavailable
        free -= nr_free[o] << o
        # Require fewer higher order pages to be free
        min_ >>= 1
        if free <= min_:
            return False
    return True


def zone_watermark_ok(
    zone,
    order: int,
    mark: int,
    classzone_idx: int,
    alloc_flags: int,
    *,
    kswapd_awake: bool = False,
    free_pages: int | None = None,
) -> bool:
    """Is ``zone`` above ``mark`` for an allocation of ``2^order`` pages? (mm/page_alloc.c)

    ``free = read - (1 << order) + 1``; ALLOC_HIGH halves the mark, then ALLOC_HARDER takes a
    quarter off; fail if ``free <= min + lowmem_reserve[classzone_idx]``; then, for each lower
    order, discount its blocks and halve the mark.

    The read is :func:`watermark_free_pages`: ``zone_nr_free_pages`` in 2.6.35/36 (the plain
    counter, or the snapshot with the drift-mark patch), the plain counter in 2.6.38.
    ``free_pages`` lets a simulation pass the value a lockless reader saw earlier.
    """
    if free_pages is None:
        free_pages = watermark_free_pages(zone, kswapd_awake)
    reserve = zone.lowmem_reserve[classzone_idx] if classzone_idx < len(zone.lowmem_reserve) else 0
    nr_free = zone.nr_free_by_order() if order else ()
    return __zone_watermark_ok(free_pages, order, mark, reserve, alloc_flags, nr_free)


def zone_watermark_ok_safe(
    zone, order: int, mark: int, classzone_idx: int, alloc_flags: int, *, free_pages=None
) -> bool:
    """``zone_watermark_ok`` on an accurate count when it matters (mm/page_alloc.c, 2.6.38).

    Reads :func:`watermark_free_pages_safe` and passes it to ``__zone_watermark_ok``. 88f5acf
    uses it only where kswapd decides to wake or to sleep (``wakeup_kswapd``,
    ``sleeping_prematurely``, ``balance_pgdat``); it has no kswapd-awake condition.
    """
    if free_pages is None:
        free_pages = watermark_free_pages_safe(zone)
    reserve = zone.lowmem_reserve[classzone_idx] if classzone_idx < len(zone.lowmem_reserve) else 0
    nr_free = zone.nr_free_by_order() if order else ()
    return __zone_watermark_ok(free_pages, order, mark, reserve, alloc_flags, nr_free)


def watermark_free_pages(zone, kswapd_awake: bool = False) -> int:
    """The free count ``zone_watermark_ok`` passes to ``__zone_watermark_ok``.

    2.6.35/36: ``zone_nr_free_pages`` (mm/mmzone.c). 2.6.38: ``zone_page_state``, the plain
    clamped counter: ``zone_watermark_ok`` calls ``__zone_watermark_ok(z, ..., free_pages)``.
    """
    # PATCH(watermark_ok_safe): 88f5acf deletes zone_nr_free_pages; ordinary checks go back to
    # the plain counter, which the lowered thresholds (pressure_threshold) keep close enough.
    if zone.patches.watermark_ok_safe:
        return zone_page_state(zone)
    return zone_nr_free_pages(zone, kswapd_awake)


def watermark_free_pages_safe(zone) -> int:
    """The free count ``zone_watermark_ok_safe`` reads (mm/page_alloc.c, 2.6.38).

    The plain counter; below a (non-zero) ``percpu_drift_mark``, ``zone_page_state_snapshot``
    instead — whether kswapd is awake or not.
    """
    free_pages = zone_page_state(zone)
    if zone.percpu_drift_mark and free_pages < zone.percpu_drift_mark:
        free_pages = zone_page_state_snapshot(zone)
    return free_pages


# ---------------------------------------------------------------------------------------------
# Order-0 traffic between the buddy lists and the per-cpu lists. ``zone`` provides the storage
# primitives ``_buddy_take(cpu, n, cold)`` / ``_buddy_give(cpu, n, on_page)`` / ``_pcp_pop``;
# these functions do the kernel's bookkeeping around them (counters, flags, ordering).
# ---------------------------------------------------------------------------------------------


def rmqueue_bulk(zone, cpu: int, count: int, cold: bool = False) -> int:
    """Move up to ``count`` order-0 pages from the buddy lists to ``cpu``'s pcp list.

    Mirrors ``rmqueue_bulk`` (mm/page_alloc.c): under the zone lock, ``__rmqueue`` up to
    ``count`` times (stopping when the buddy lists are empty), then one
    ``__mod_zone_page_state(zone, NR_FREE_PAGES, -i)`` for what it got. There is no watermark
    re-check here: the caller's check may be stale by now. Returns the pages moved.
    """
    check_cpu(zone, cpu)
    if type(count) is not int or count < 0:  # cheap for the common case, named otherwise
        count = check_int("count", count, 0)
    got = zone._buddy_take(cpu, count, cold)
    if got:
        __mod_zone_page_state(zone, cpu, -got)
    return got


def free_pcppages_bulk(zone, cpu: int, count: int, on_page=None) -> int:
    """Return ``count`` pages from ``cpu``'s pcp list to the buddy lists (mm/page_alloc.c).

    Under the zone lock: clear ``all_unreclaimable`` and ``pages_scanned``, put the coldest pages
    back one by one (``__free_one_page`` merges buddies), and add them to NR_FREE_PAGES.
    Unpatched (2.6.35.3) the counter is raised *before* the pages are on the lists, so a lockless
    reader can see pages counted that are not there yet; patched (72853e2) *after*.

    ``on_page(linked)`` is called after each page is linked, with the number linked so far: the
    hook through which ``allocsim.window`` lets another CPU look in mid-loop. Returns the pages
    freed and lowers ``pcp.count`` by them (the kernel's callers do that right after).
    """
    check_cpu(zone, cpu)
    if type(count) is not int or count < 0:
        count = check_int("count", count, 0)
    count = min(count, int(zone.pcp_count[cpu]))
    if count <= 0:
        return 0
    zone.all_unreclaimable = False
    zone.pages_scanned = 0
    # PATCH(counter_after_free): 2.6.35.3 raises NR_FREE_PAGES before linking the pages;
    # 72853e2 moves the update after the loop, so the counter never runs ahead of the lists.
    counter_first = not zone.patches.counter_after_free
    if counter_first:
        __mod_zone_page_state(zone, cpu, count)
    zone._buddy_give(cpu, count, on_page)
    if not counter_first:
        __mod_zone_page_state(zone, cpu, count)
    return count


def free_hot_cold_page(
    zone, cpu: int, cold: bool = False, pfn: int | None = None, nr_pages: int = 1
) -> int:
    """Free order-0 pages onto ``cpu``'s pcp list (``free_hot_cold_page``, mm/page_alloc.c).

    Hot pages go to the head, cold pages (reclaim's pagevecs) to the tail; each time
    ``pcp.count`` reaches ``pcp.high`` a batch goes back to the buddy lists. ``nr_pages`` frees
    that many pages in a row (the kernel's ``__pagevec_free`` loop); ``pfn`` names the page when
    the zone keeps pages individually. Returns the pages flushed to the buddy lists.
    """
    check_cpu(zone, cpu)
    nr_pages = check_int("nr_pages", nr_pages, 0)
    if zone.page_level and nr_pages > 1:
        raise ValueError(
            f"nr_pages must be 1 when freeing the named page pfn={pfn!r} of a page-level Zone, "
            f"got {nr_pages}"
        )
    flushed = 0
    for _ in range(nr_pages):
        zone._pcp_push(cpu, cold, pfn)
        if zone.pcp_count[cpu] >= zone.pcp_high[cpu]:
            flushed += free_pcppages_bulk(zone, cpu, int(zone.pcp_batch[cpu]))
    return flushed


def buffered_rmqueue(zone, cpu: int, cold: bool = False):
    """Take one order-0 page for ``cpu`` (``buffered_rmqueue``, mm/page_alloc.c, order 0).

    From this CPU's pcp list; if it is empty, refill it with ``rmqueue_bulk(pcp.batch)`` first.
    NR_FREE_PAGES is not touched here: the refill already subtracted the whole batch. Returns the
    page (a pfn, or ``True`` when the zone only counts pages), or ``None`` if none was had.
    """
    check_cpu(zone, cpu)
    if zone.pcp_count[cpu] == 0:
        rmqueue_bulk(zone, cpu, int(zone.pcp_batch[cpu]), cold)
        if zone.pcp_count[cpu] == 0:
            return None
    return zone._pcp_pop(cpu, cold)


def drain_pages(zone, cpu: int) -> int:
    """Free a CPU's whole pcp list to the buddy lists (``drain_pages``, mm/page_alloc.c)."""
    check_cpu(zone, cpu)
    return free_pcppages_bulk(zone, cpu, int(zone.pcp_count[cpu]))


def drain_all_pages(zone) -> int:
    """``drain_pages`` on every online CPU, as the synchronous IPI of ``drain_all_pages`` does.

    Each CPU frees its pages through its own ``vm_stat_diff``, so after a drain the counter
    still lags unless the diffs fold. Returns the pages returned to the buddy lists.
    """
    total = 0
    for cpu in zone.nonempty_pcp_cpus():
        total += drain_pages(zone, int(cpu))
    return total


# ---------------------------------------------------------------------------------------------
# The allocation paths of a running machine. ``sim`` is an ``allocsim.sim.Simulation``: it owns
# the zone, kswapd and the tasks, and it holds ``free_read``, the NR_FREE_PAGES value every
# lockless reader sees during the current tick (see the interleaving rules in sim.py).
#
# Order-0 only. ``nr`` pages asked for in one call stand for ``nr`` allocations made one after
# another by the same CPU in the same tick: every check in a tick reads the same value, so they
# all take the same branch and the batch is exact.
# ---------------------------------------------------------------------------------------------

from .constants import (  # noqa: E402  (grouped with the code that uses them)
    __GFP_HIGH,
    __GFP_NOMEMALLOC,
    __GFP_WAIT,
    ALLOC_CPUSET,
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MASK,
    ALLOC_WMARK_MIN,
    HZ,
)


def gfp_to_alloc_flags(gfp_mask: int, pf_memalloc: bool = False, in_interrupt: bool = False) -> int:
    """The slow path's ``alloc_flags`` for a request (``gfp_to_alloc_flags``, mm/page_alloc.c).

    MIN watermark; ``__GFP_HIGH`` gives ALLOC_HIGH (same bit); an atomic request (no
    ``__GFP_WAIT``) gets ALLOC_HARDER; a PF_MEMALLOC task outside interrupts gets
    ALLOC_NO_WATERMARKS.
    """
    alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET
    # The caller may dip into page reserves a bit more if the caller cannot run direct reclaim,
    # or is the caller has realtime scheduling policy or is asking for __GFP_HIGH memory.
    alloc_flags |= gfp_mask & __GFP_HIGH
    if not gfp_mask & __GFP_WAIT:
        alloc_flags |= ALLOC_HARDER
        alloc_flags &= ~ALLOC_CPUSET
    if not gfp_mask & __GFP_NOMEMALLOC and not in_interrupt and pf_memalloc:
        alloc_flags |= ALLOC_NO_WATERMARKS
    return alloc_flags


def get_page_from_freelist(sim, cpu: int, alloc_flags: int, nr: int = 1) -> int:
    """Check the watermark, then take pages from this CPU's pcp list (``get_page_from_freelist``).

    Returns how many of the ``nr`` pages were had. No re-check happens between the watermark
    test and the refill, so CPUs that passed on the same stale value all refill. Each of the
    ``nr`` allocations makes its own check, and ``cpu`` pays for them.
    """
    zone = sim.zone
    if not alloc_flags & ALLOC_NO_WATERMARKS:
        mark = zone.watermark[alloc_flags & ALLOC_WMARK_MASK]
        if not sim.watermark_ok(mark, alloc_flags, cpu=cpu, n=nr):
            return 0
    return buffered_rmqueue_n(zone, cpu, nr)


def buffered_rmqueue_n(zone, cpu: int, nr: int) -> int:
    """``buffered_rmqueue`` ``nr`` times on one CPU: pop pcp pages, refilling by ``batch``."""
    got = 0
    count = zone.pcp_count
    while got < nr:
        avail = int(count[cpu])
        if avail == 0:
            if rmqueue_bulk(zone, cpu, int(zone.pcp_batch[cpu])) == 0:
                break
            avail = int(count[cpu])
        take = min(nr - got, avail)
        count[cpu] -= take
        got += take
    return got


def wake_all_kswapd(sim, order: int = 0, cpu=None, n=1) -> None:
    """``wakeup_kswapd`` for the zone (``wake_all_kswapd``, mm/page_alloc.c; mm/vmscan.c).

    kswapd is woken only if the zone fails a LOW check (classzone 0, no flag reductions) *and*
    kswapd is waiting on ``kswapd_wait``. In 2.6.35/36 the check reads the same counter as
    everyone: while kswapd sleeps that is the raw, drifting counter, even with the drift-mark
    patch; 2.6.38 makes it ``zone_watermark_ok_safe``. ``cpu`` runs the call and ``n`` is how
    many failed allocations it stands for (each calls it; the cost model charges them).
    """
    vmscan.wakeup_kswapd(sim, order, cpu=cpu, n=n)


def __alloc_pages_nodemask(
    sim, cpu: int, gfp_mask: int, nr: int = 1, pf_memalloc: bool = False, in_interrupt: bool = False
) -> int:
    """Allocate ``nr`` order-0 pages for a caller that never sleeps here (mm/page_alloc.c).

    Used for interrupts (GFP_ATOMIC) and for reclaim's own allocations (PF_MEMALLOC). Fast path
    at LOW; then ``__alloc_pages_slowpath`` up to the point where a sleeping caller would
    reclaim: wake kswapd, try at MIN with the flag reductions, try with ALLOC_NO_WATERMARKS if
    allowed; an atomic or PF_MEMALLOC caller then fails. Returns the pages had.
    """
    # First allocation attempt
    got = get_page_from_freelist(sim, cpu, ALLOC_WMARK_LOW | ALLOC_CPUSET, nr)
    if got == nr:
        return got
    # __alloc_pages_slowpath
    wake_all_kswapd(sim, cpu=cpu, n=nr - got)
    alloc_flags = gfp_to_alloc_flags(gfp_mask, pf_memalloc, in_interrupt)
    got += get_page_from_freelist(sim, cpu, alloc_flags & ~ALLOC_NO_WATERMARKS, nr - got)
    if got < nr and alloc_flags & ALLOC_NO_WATERMARKS:
        got += get_page_from_freelist(sim, cpu, ALLOC_NO_WATERMARKS, nr - got)
    # Atomic allocations cannot reclaim; PF_MEMALLOC must not recurse into reclaim: nopage.
    return got


def __alloc_pages_slowpath(sim, task, gfp_mask: int):
    """The slow path of one sleeping (task-context) order-0 allocation, as a generator.

    Mirrors ``__alloc_pages_slowpath`` (mm/page_alloc.c, 2.6.36): wake kswapd, try at MIN,
    direct reclaim, and for order 0 retry for ever with ``congestion_wait(HZ/50)``. It yields
    the milliseconds it sleeps; its return value is True once it has a page.
    """
    cpu = task.cpu
    while True:  # restart:
        wake_all_kswapd(sim, cpu=cpu)
        alloc_flags = gfp_to_alloc_flags(gfp_mask, task.pf_memalloc)
        # This is the last chance, in general, before the goto nopage.
        if get_page_from_freelist(sim, cpu, alloc_flags & ~ALLOC_NO_WATERMARKS):
            return True
        pages_reclaimed = 0
        while True:  # rebalance:
            if alloc_flags & ALLOC_NO_WATERMARKS:
                if get_page_from_freelist(sim, cpu, ALLOC_NO_WATERMARKS):
                    return True
            if not gfp_mask & __GFP_WAIT:
                return False  # atomic allocations cannot balance
            if task.pf_memalloc:
                return False  # avoid recursion of direct reclaim
            page, did_some_progress = yield from __alloc_pages_direct_reclaim(
                sim, task, gfp_mask, alloc_flags
            )
            if page:
                return True
            if not did_some_progress:
                # SIMPLIFICATION: no OOM killer. __alloc_pages_may_oom's last try at HIGH is
                # made and then the allocation starts again from "restart", as the kernel does
                # when the OOM killer finds nothing to kill.
                if get_page_from_freelist(sim, cpu, 2 | ALLOC_CPUSET):  # ALLOC_WMARK_HIGH
                    return True
                yield 1  # schedule_timeout_uninterruptible(1) while another task "OOM-kills"
                break  # goto restart
            pages_reclaimed += did_some_progress
            if should_alloc_retry(gfp_mask, 0, pages_reclaimed):
                # Wait for some write requests to complete then retry
                yield HZ // 50  # congestion_wait(BLK_RW_ASYNC, HZ/50)
                continue
            return False


def should_alloc_retry(gfp_mask: int, order: int, pages_reclaimed: int) -> bool:
    """Order ≤ 3 (PAGE_ALLOC_COSTLY_ORDER) retries for ever (``should_alloc_retry``)."""
    return order <= 3


def __alloc_pages_direct_reclaim(sim, task, gfp_mask: int, alloc_flags: int):
    """Reclaim, then try to allocate (``__alloc_pages_direct_reclaim``, mm/page_alloc.c).

    Generator; returns ``(page, did_some_progress)``. Pages reclaimed here are freed cold onto
    this CPU's pcp list and reach the buddy lists (and the counter) only when that list overflows
    ``high``, so the allocation right after a successful reclaim can still fail.
    """
    cpu = task.cpu
    sim.note_direct_reclaim(task)
    # We now go into synchronous reclaim
    task.pf_memalloc = True
    did_some_progress = yield from vmscan.try_to_free_pages(sim, cpu, gfp_mask)
    task.pf_memalloc = False

    # PATCH(drain_after_reclaim): 2.6.35.3 drains the pcp lists only for order > 0, before the
    # attempt, and tries once if progress was made. 9ee493c returns at once without progress,
    # and if the attempt fails drains every CPU's pcp list and tries once more.
    if sim.zone.patches.drain_after_reclaim:
        if not did_some_progress:
            return False, 0
        drained = False
        while True:  # retry:
            page = get_page_from_freelist(sim, cpu, alloc_flags & ~ALLOC_NO_WATERMARKS)
            # If an allocation failed after direct reclaim, it could be because pages are
            # pinned on the per-cpu lists. Drain them and try again.
            if not page and not drained:
                sim.drain_all_pages(cpu)
                drained = True
                continue
            return bool(page), did_some_progress
    page = 0
    if did_some_progress:
        page = get_page_from_freelist(sim, cpu, alloc_flags & ~ALLOC_NO_WATERMARKS)
    return bool(page), did_some_progress


def free_hot_cold_page_n(zone, cpu: int, nr: int, cold: bool = False) -> int:
    """``free_hot_cold_page`` ``nr`` times on one CPU of a counting zone, in closed form.

    Each time ``pcp.count`` reaches ``high`` one ``free_pcppages_bulk(batch)`` runs, exactly as
    ``nr`` single frees would do. Returns the pages flushed to the buddy lists.
    """
    if type(nr) is not int:
        nr = check_int("nr", nr)
    if nr <= 0:
        return 0
    if zone.page_level:
        raise TypeError("free_hot_cold_page_n counts pages; a page-level Zone frees named pages")
    high = int(zone.pcp_high[cpu])
    batch = int(zone.pcp_batch[cpu])
    flushed = 0
    count = int(zone.pcp_count[cpu])
    while nr > 0:
        # pages until the list reaches high (at least one: the kernel checks after each add)
        step = max(1, high - count)
        if step > nr:
            zone.pcp_count[cpu] += nr
            break
        zone.pcp_count[cpu] += step
        nr -= step
        flushed += free_pcppages_bulk(zone, cpu, batch)
        count = int(zone.pcp_count[cpu])
    return flushed


# mm/vmscan.c calls into this file and this file into it. Imported once, last, so that either
# module may be imported first (each finds the other's names by the time they are called), and
# so that wake_all_kswapd, called on every failed LOW check, does not run an import each call.
from . import vmscan  # noqa: E402
