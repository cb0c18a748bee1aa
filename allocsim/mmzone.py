"""Zone state: mirrors ``struct zone`` and ``struct per_cpu_pageset`` (include/linux/mmzone.h).

Two ways to hold the free pages, one interface:

* :class:`Zone` keeps every free block: ``free_area[order]`` with real free lists, buddy
  splitting (``expand``) and merging (``__free_one_page``), and per-cpu lists of page frame
  numbers. It is the reference, and the buddy-lists notebook draws it.
* :class:`CountingZone` keeps only counts (pages on the buddy lists, pages on each pcp list).
  The dynamic simulations use it for speed; a test runs the same operation sequence on both and
  checks that every count agrees.

Per-CPU fields live in numpy arrays indexed by CPU and keep the kernel's field names
(``pcp_count``, ``pcp_high``, ``pcp_batch``, ``vm_stat_diff``, ``stat_threshold``).

Cost, measured on the 2-core development machine (``benchmarks/bench.py``): a page-level
``Zone`` of 16 GiB (4 Mi pages) with 4096 CPUs builds in about 2.4 ms and holds about 7.6 MiB —
one int8 per page (``page_order``, 4 MiB), an empty deque per CPU (about 0.75 KiB each), five
int64 per CPU and one entry per free block. A ``CountingZone`` of the same size builds in 0.03 ms
and holds 0.16 MiB: it grows with CPUs only.
"""

from __future__ import annotations

from collections import OrderedDict, deque

import numpy as np

from .constants import MAX_ORDER, NR_CPUS, PAGE_SHIFT, WMARK_HIGH, WMARK_LOW, WMARK_MIN, ZONE_NAMES
from .errors import bad_page, check_int
from .page_alloc import min_free_kbytes as default_min_free_kbytes
from .page_alloc import rmqueue_bulk, setup_pageset, setup_per_zone_wmarks, zone_batchsize
from .patches import Patches
from .vmstat import (
    STAT_THRESHOLD_MAX,
    calculate_threshold,
    mod_zone_page_state_vector,
    refresh_zone_stat_thresholds,
)

__all__ = ["FreeArea", "Zone", "CountingZone", "MAX_ZONE_PAGES"]

# Page-level zones keep one byte per page; 2^26 pages = 256 GiB is the supported ceiling.
MAX_ZONE_PAGES = 1 << 26
# CountingZone.refill_counted refills runs of up to this many CPUs one by one with plain ints.
SHORT_RUN = 4


class FreeArea:
    """One order of the buddy allocator (``struct free_area``).

    ``free_list`` holds the first pfn of each free block, head first (migrate types collapsed).
    ``nr_free`` counts blocks, not pages.
    """

    __slots__ = ("free_list", "nr_free")

    def __init__(self):
        self.free_list: OrderedDict[int, None] = OrderedDict()
        self.nr_free = 0

    def list_add(self, pfn: int) -> None:
        """Insert at the head (``list_add``)."""
        self.free_list[pfn] = None
        self.free_list.move_to_end(pfn, last=False)

    def list_add_tail(self, pfn: int) -> None:
        """Insert at the tail (``list_add_tail``)."""
        self.free_list[pfn] = None

    def __repr__(self):
        return f"FreeArea(nr_free={self.nr_free})"


class Zone:
    """A zone with a page-level buddy allocator, per-cpu pagesets and vmstat counters.

    Parameters
    ----------
    present_pages : int
        Pages in the zone, in ``[1, 2**26]``.
    num_online_cpus : int
        CPUs, in ``[1, 4096]``.
    name : str
        Zone name: ``"DMA"``, ``"DMA32"``, ``"Normal"`` or ``"Movable"``.
    min_free_kbytes : int, optional
        Defaults to the kernel's ``int_sqrt(lowmem_kbytes * 16)`` for this zone alone.
    watermark : (int, int, int), optional
        Explicit WMARK_MIN/LOW/HIGH; otherwise ``setup_per_zone_wmarks``.
    stat_threshold : int, optional
        Fixed per-CPU threshold in ``[0, 125]``; otherwise ``calculate_threshold``.
    pcp_batch, pcp_high : int, optional
        Override ``zone_batchsize``/``setup_pageset``; batch in ``[1, 2**20]``, high ``>= 0``.
    free_pages : int, optional
        Pages on the buddy lists at the start (the rest count as allocated); default all.
    lowmem_reserve : sequence of int, optional
        ``lowmem_reserve[classzone_idx]``; default all zero.
    patches : Patches, optional
        Which 2.6.36 fixes apply (default none: 2.6.36-rc3).
    """

    page_level = True

    def __init__(
        self,
        present_pages: int,
        num_online_cpus: int,
        *,
        name: str = "Normal",
        min_free_kbytes: int | None = None,
        watermark=None,
        stat_threshold: int | None = None,
        pcp_batch: int | None = None,
        pcp_high: int | None = None,
        free_pages: int | None = None,
        lowmem_reserve=None,
        patches: Patches | None = None,
    ):
        self.present_pages = check_int("present_pages", present_pages, 1, self._max_pages())
        self.num_online_cpus = check_int("num_online_cpus", num_online_cpus, 1, NR_CPUS)
        if not isinstance(name, str) or name not in ZONE_NAMES:
            raise ValueError(f"name must be one of {', '.join(ZONE_NAMES)}, got {name!r}")
        self.name = name
        if patches is None:
            patches = Patches()
        if not isinstance(patches, Patches):
            raise TypeError(f"patches must be an allocsim.Patches, got {patches!r}")
        self.patches = patches

        # Watermarks (setup_per_zone_wmarks with this zone as the only lowmem zone).
        if watermark is None:
            if min_free_kbytes is None:
                min_free_kbytes = default_min_free_kbytes(self.present_pages << (PAGE_SHIFT - 10))
            self.min_free_kbytes = check_int("min_free_kbytes", min_free_kbytes, 0, 1 << 42)
            watermark = setup_per_zone_wmarks(self.min_free_kbytes, [self.present_pages])[0]
        else:
            if isinstance(watermark, (str, bytes)) or not hasattr(watermark, "__len__"):
                raise TypeError(f"watermark must be a (min, low, high) sequence, got {watermark!r}")
            if len(watermark) != 3:
                raise ValueError(f"watermark must be (min, low, high), got {watermark!r}")
            wmin = check_int("watermark[WMARK_MIN]", watermark[0], 0, self.present_pages)
            wlow = check_int("watermark[WMARK_LOW]", watermark[1], wmin, self.present_pages)
            check_int("watermark[WMARK_HIGH]", watermark[2], wlow, self.present_pages)
            self.min_free_kbytes = wmin << (PAGE_SHIFT - 10)
        self.watermark = [int(w) for w in watermark]
        if lowmem_reserve is None:
            lowmem_reserve = [0] * len(ZONE_NAMES)
        if isinstance(lowmem_reserve, (str, bytes)) or not hasattr(lowmem_reserve, "__iter__"):
            raise TypeError(
                f"lowmem_reserve must be a sequence of page counts >= 0, got {lowmem_reserve!r}"
            )
        self.lowmem_reserve = [
            check_int(f"lowmem_reserve[{i}]", r, 0) for i, r in enumerate(lowmem_reserve)
        ]

        # Per-cpu pagesets (setup_zone_pageset -> setup_pageset(zone_batchsize)).
        high, batch = setup_pageset(zone_batchsize(self.present_pages))
        if pcp_batch is not None:
            batch = check_int("pcp_batch", pcp_batch, 1, 1 << 20)
        if pcp_high is not None:
            high = check_int("pcp_high", pcp_high, 0, 1 << 30)
        n = self.num_online_cpus
        self.pcp_count = np.zeros(n, dtype=np.int64)
        self.pcp_high = np.full(n, high, dtype=np.int64)
        self.pcp_batch = np.full(n, batch, dtype=np.int64)

        # vmstat: zone-wide counter and per-CPU deltas (setup_pageset zeroes them).
        self.vm_stat = 0  # vm_stat[NR_FREE_PAGES]; may go negative, readers clamp
        self.vm_stat_diff = np.zeros(n, dtype=np.int64)
        self.stat_threshold = np.zeros(n, dtype=np.int64)
        self.percpu_drift_mark = 0
        self.all_unreclaimable = False
        self.pages_scanned = 0
        # Meters for the cost model (not kernel state): folds of each CPU's diff into vm_stat,
        # calls of zone_page_state_snapshot, and the diff bound after a threshold rewrite.
        self.stat_folds = np.zeros(n, dtype=np.int64)
        self.snapshot_reads = 0
        self.diff_limit = None
        if stat_threshold is None:
            stat_threshold = calculate_threshold(self.present_pages, n)
        stat_threshold = check_int("stat_threshold", stat_threshold, 0, STAT_THRESHOLD_MAX)
        refresh_zone_stat_thresholds(self, n, stat_threshold)

        if free_pages is None:
            free_pages = self.present_pages
        free_pages = check_int("free_pages", free_pages, 0, self.present_pages)
        self._init_storage(free_pages)
        # The counter starts exact and folded: the free pages were counted at boot.
        self.vm_stat = free_pages

    # -- constructors' helpers ---------------------------------------------------------------
    @staticmethod
    def _max_pages() -> int:
        return MAX_ZONE_PAGES

    def _init_storage(self, free_pages: int) -> None:
        """Lay the first ``free_pages`` pages out as maximal aligned free blocks.

        Mirrors what ``__free_pages_bootmem`` leaves: the largest aligned blocks that fit.
        """
        self.free_area = [FreeArea() for _ in range(MAX_ORDER)]
        self.page_order = np.full(self.present_pages, -1, dtype=np.int8)  # PageBuddy + order
        self.pcp_lists = [deque() for _ in range(self.num_online_cpus)]
        pfn = 0
        while pfn < free_pages:
            order = MAX_ORDER - 1
            while order > 0 and (pfn & ((1 << order) - 1) or pfn + (1 << order) > free_pages):
                order -= 1
            self.free_area[order].list_add_tail(pfn)
            self.free_area[order].nr_free += 1
            self.page_order[pfn] = order
            pfn += 1 << order

    # -- reads -------------------------------------------------------------------------------
    @property
    def min_wmark(self) -> int:
        """``min_wmark_pages(z)``."""
        return self.watermark[WMARK_MIN]

    @property
    def low_wmark(self) -> int:
        """``low_wmark_pages(z)``."""
        return self.watermark[WMARK_LOW]

    @property
    def high_wmark(self) -> int:
        """``high_wmark_pages(z)``."""
        return self.watermark[WMARK_HIGH]

    def nr_free_by_order(self) -> list[int]:
        """``free_area[o].nr_free`` for every order."""
        return [area.nr_free for area in self.free_area]

    def buddy_pages(self) -> int:
        """Pages on the buddy free lists (the truth the counter is meant to track)."""
        return sum(area.nr_free << o for o, area in enumerate(self.free_area))

    def pcp_pages(self) -> int:
        """Pages on all per-cpu lists: free, but not counted in NR_FREE_PAGES."""
        return int(self.pcp_count.sum())

    def nonempty_pcp_cpus(self) -> np.ndarray:
        """CPUs whose pcp list holds pages."""
        return np.flatnonzero(self.pcp_count)

    # -- buddy allocator (zone->lock held) ----------------------------------------------------
    def _valid(self, idx: int) -> bool:
        return 0 <= idx < self.present_pages

    def __rmqueue_smallest(self, order: int):
        """Take the smallest free block of at least ``order`` and split it.

        Mirrors ``__rmqueue_smallest`` (mm/page_alloc.c).
        """
        for current_order in range(order, MAX_ORDER):
            area = self.free_area[current_order]
            if not area.free_list:
                continue
            pfn, _ = area.free_list.popitem(last=False)  # the head
            area.nr_free -= 1
            self.page_order[pfn] = -1
            self._expand(pfn, order, current_order)
            return pfn
        return None

    def _expand(self, pfn: int, low: int, high: int) -> None:
        """Return the upper halves of a split block to the lower orders (``expand``)."""
        size = 1 << high
        while high > low:
            high -= 1
            size >>= 1
            self.free_area[high].list_add(pfn + size)
            self.free_area[high].nr_free += 1
            self.page_order[pfn + size] = high

    def rmqueue(self, order: int = 0):
        """``__rmqueue``: one block of ``2^order`` pages off the buddy lists, or ``None``.

        SIMPLIFICATION: migrate types are collapsed into one list per order, so there is no
        ``__rmqueue_fallback`` and no MIGRATE_RESERVE.
        """
        order = check_int("order", order, 0, MAX_ORDER - 1)
        return self.__rmqueue_smallest(order)

    # A page's state in ``page_order``: >= 0 the head of a free buddy block of that order, -1
    # allocated (or inside a free block), -2 on a per-cpu list. Allocated pages are the only
    # ones that may be freed.
    _ON_PCP = -2

    def _check_pfn(self, pfn, order: int = 0) -> int:
        """``pfn`` as an int, if ``[pfn, pfn + 2^order)`` is an aligned block of this zone."""
        if type(pfn) is not int or not 0 <= pfn < self.present_pages:
            pfn = check_int("pfn", pfn, 0, self.present_pages - 1)
        if order and (pfn & ((1 << order) - 1) or pfn + (1 << order) > self.present_pages):
            raise ValueError(
                f"pfn {pfn} does not start an order-{order} block of this zone "
                f"(it must be a multiple of {1 << order} and the block must end by "
                f"pfn {self.present_pages})"
            )
        return pfn

    def free_pages_check(self, pfn: int, order: int = 0) -> None:
        """Raise the kernel's ``bad_page()`` if a page of the block is free already.

        Mirrors ``free_pages_check`` (mm/page_alloc.c), which catches a page freed while it
        is still a free buddy (``PageBuddy``); here also a page still on a per-cpu list.
        """
        po = self.page_order
        if order == 0:
            state = int(po[pfn])
            if state == self._ON_PCP:
                bad_page(pfn, "it is on a per-cpu list (freed already)")
            # A free block of order k containing pfn starts at pfn rounded down to 2^k.
            for k in range(MAX_ORDER):
                head = pfn & ~((1 << k) - 1)
                if po[head] >= k:
                    bad_page(
                        pfn,
                        f"it is free already (in the order-{int(po[head])} block at pfn {head})",
                    )
            return
        block = po[pfn : pfn + (1 << order)]
        if (block != -1).any():
            first = pfn + int(np.flatnonzero(block != -1)[0])
            bad_page(first, f"it is free already (freeing the order-{order} block at pfn {pfn})")
        for k in range(order + 1, MAX_ORDER):
            head = pfn & ~((1 << k) - 1)
            if po[head] >= k:
                bad_page(
                    pfn, f"it is free already (in the order-{int(po[head])} block at pfn {head})"
                )

    def free_one_block(self, pfn: int, order: int = 0) -> None:
        """``__free_one_page``: put a block back, merging with free buddies as far as possible.

        A block that is not allocated (freed twice, or still on a per-cpu list) raises
        :class:`~allocsim.errors.BadPageError`, naming the pfn, as the kernel's ``bad_page()``
        reports it; the zone is left unchanged.
        """
        if type(order) is not int or not 0 <= order < MAX_ORDER:
            order = check_int("order", order, 0, MAX_ORDER - 1)
        pfn = self._check_pfn(pfn, order)
        self.free_pages_check(pfn, order)
        page_idx = pfn
        while order < MAX_ORDER - 1:
            buddy_idx = page_idx ^ (1 << order)
            if not self._valid(buddy_idx) or self.page_order[buddy_idx] != order:
                break
            area = self.free_area[order]
            del area.free_list[buddy_idx]
            area.nr_free -= 1
            self.page_order[buddy_idx] = -1
            page_idx &= ~(1 << order)  # the combined block starts at the lower buddy
            order += 1
        self.page_order[page_idx] = order
        # If the buddy of the next-higher order is free, pages are likely being freed that will
        # coalesce soon: put this block at the tail so it is less likely to be used before then.
        to_tail = False
        if order < MAX_ORDER - 2 and self._valid(page_idx ^ (1 << order)):
            combined_idx = page_idx & ~(1 << order)
            higher_buddy = combined_idx ^ (1 << (order + 1))
            to_tail = self._valid(higher_buddy) and self.page_order[higher_buddy] == order + 1
        area = self.free_area[order]
        if to_tail:
            area.list_add_tail(page_idx)
        else:
            area.list_add(page_idx)
        area.nr_free += 1

    # -- storage primitives used by allocsim.page_alloc --------------------------------------
    def _buddy_take(self, cpu: int, count: int, cold: bool) -> int:
        pages = []
        for _ in range(count):
            pfn = self.__rmqueue_smallest(0)
            if pfn is None:
                break
            pages.append(pfn)
        if pages:
            self.page_order[pages] = self._ON_PCP
        lst = self.pcp_lists[cpu]
        if cold:
            # list_add_tail(&page->lru, list); list = &page->lru: each page goes just before the
            # previous one, so the tail reads p0, p1, ... (cold allocations take the tail)
            lst.extend(reversed(pages))
        else:
            lst.extendleft(reversed(pages))  # in physical order from the head
        self.pcp_count[cpu] += len(pages)
        return len(pages)

    def _buddy_give(self, cpu: int, count: int, on_page) -> None:
        lst = self.pcp_lists[cpu]
        for i in range(count):
            pfn = lst.pop()  # the tail: the coldest page
            self.pcp_count[cpu] -= 1
            self.page_order[pfn] = -1  # off the pcp list, about to be freed to the buddy lists
            self.free_one_block(pfn, 0)
            if on_page is not None:
                on_page(i + 1)

    def _pcp_push(self, cpu: int, cold: bool, pfn) -> None:
        if pfn is None:
            raise ValueError("a page-level Zone frees named pages: pass pfn")
        pfn = self._check_pfn(pfn)
        self.free_pages_check(pfn)
        self.page_order[pfn] = self._ON_PCP
        if cold:
            self.pcp_lists[cpu].append(pfn)
        else:
            self.pcp_lists[cpu].appendleft(pfn)
        self.pcp_count[cpu] += 1

    def _pcp_pop(self, cpu: int, cold: bool):
        lst = self.pcp_lists[cpu]
        self.pcp_count[cpu] -= 1
        pfn = lst.pop() if cold else lst.popleft()
        self.page_order[pfn] = -1  # allocated
        return pfn

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.name}, present_pages={self.present_pages}, "
            f"cpus={self.num_online_cpus}, wmark={tuple(self.watermark)}, "
            f"buddy={self.buddy_pages()}, pcp={self.pcp_pages()}, vm_stat={self.vm_stat})"
        )


class CountingZone(Zone):
    """A zone that keeps order-0 traffic as counts only (for the dynamic simulations).

    SIMPLIFICATION: no block structure: ``nr_free_pages_buddy`` pages on the buddy lists, all
    reported as order 0, and ``pcp_count[cpu]`` pages on each pcp list. Every count matches what
    :class:`Zone` holds after the same order-0 operations (``tests/test_mmzone.py``).
    """

    page_level = False

    @staticmethod
    def _max_pages() -> int:
        return 1 << 40

    def _init_storage(self, free_pages: int) -> None:
        self.nr_free_pages_buddy = free_pages
        self.free_area = None
        self.pcp_lists = None

    def nr_free_by_order(self) -> list[int]:
        return [self.nr_free_pages_buddy] + [0] * (MAX_ORDER - 1)

    def buddy_pages(self) -> int:
        return self.nr_free_pages_buddy

    def rmqueue(self, order: int = 0):
        raise NotImplementedError("CountingZone models order-0 traffic only; use Zone")

    def free_one_block(self, pfn: int, order: int = 0) -> None:
        raise NotImplementedError("CountingZone models order-0 traffic only; use Zone")

    def _buddy_take(self, cpu: int, count: int, cold: bool) -> int:
        got = min(count, self.nr_free_pages_buddy)
        self.nr_free_pages_buddy -= got
        self.pcp_count[cpu] += got
        return got

    def _buddy_give(self, cpu: int, count: int, on_page) -> None:
        if on_page is None:
            self.nr_free_pages_buddy += count
            self.pcp_count[cpu] -= count
            return
        for i in range(count):
            self.nr_free_pages_buddy += 1
            self.pcp_count[cpu] -= 1
            on_page(i + 1)

    def _pcp_push(self, cpu: int, cold: bool, pfn) -> None:
        self.pcp_count[cpu] += 1

    def _pcp_pop(self, cpu: int, cold: bool):
        self.pcp_count[cpu] -= 1
        return True

    def drain_all_counted(self) -> int:
        """``drain_all_pages`` with numpy: every CPU flushes its whole pcp list at once.

        At count level a bulk free is atomic under the zone lock, so each CPU's flush is one
        ``__mod_zone_page_state(+count)`` on its own diff; the result equals
        ``page_alloc.drain_all_pages`` CPU by CPU (tested). Returns the pages drained.
        """
        cpus = np.flatnonzero(self.pcp_count)
        if not len(cpus):
            return 0
        counts = self.pcp_count[cpus]
        total = int(np.add.reduce(counts))
        self.all_unreclaimable = False
        self.pages_scanned = 0
        self.nr_free_pages_buddy += total
        self.pcp_count[cpus] = 0
        mod_zone_page_state_vector(self, cpus, counts)
        return total

    def refill_counted(self, cpus: np.ndarray) -> np.ndarray:
        """One ``rmqueue_bulk(pcp.batch)`` for each CPU in ``cpus``, in that (lock) order.

        Each takes ``min(batch, what is left)``; a CPU that gets pages updates its own diff.
        Equals ``page_alloc.rmqueue_bulk`` called CPU by CPU (tested). Returns pages per CPU.
        """
        if len(cpus) <= SHORT_RUN:
            # A few CPUs: rmqueue_bulk on plain ints costs about 1.5 us a CPU, the numpy
            # version about 10 us whatever the length (benchmarks: issue 13).
            got = np.zeros(len(cpus), dtype=np.int64)
            for i, cpu in enumerate(cpus.tolist()):
                got[i] = rmqueue_bulk(self, cpu, int(self.pcp_batch[cpu]))
            return got
        batch = self.pcp_batch[cpus]
        before = np.cumsum(batch) - batch  # pages the CPUs ahead in the lock order take
        got = np.minimum(np.maximum(self.nr_free_pages_buddy - before, 0), batch)
        total = int(np.add.reduce(got))
        if total:
            self.nr_free_pages_buddy -= total
            self.pcp_count[cpus] += got
            has = got > 0
            mod_zone_page_state_vector(self, cpus[has], -got[has])
        return got
