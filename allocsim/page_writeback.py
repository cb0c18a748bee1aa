"""Dirty limits and background writeback: mirrors ``mm/page-writeback.c`` and the flusher of
``fs/fs-writeback.c`` (2.6.36), reduced to what decides whether writers run and reclaim finds
clean pages.

* ``global_dirty_limits``: the background and dirty thresholds from ``vm.dirty_background_ratio``
  and ``vm.dirty_ratio``, as shares of ``determine_dirtyable_memory`` (free + reclaimable pages —
  and "free" is the same drifting NR_FREE_PAGES counter every watermark check reads).
* ``balance_dirty_pages``: a writer that dirtied pages while dirty + writeback pages exceed the
  dirty threshold sleeps (``io_schedule_timeout``), its pause doubling up to HZ/10 while the
  machine stays over the limit.
* ``bdi_writeback_thread``: the flusher, a kernel thread that writes back the oldest dirty pages
  while there are more than the background threshold, ``MAX_WRITEBACK_PAGES`` at a time.

SIMPLIFICATION: one backing device; a throttled writer does not write back pages itself
(``writeback_inodes_wb`` from ``balance_dirty_pages``): the flusher does all background work;
no per-bdi or per-task dirty shares; no ``dirty_expire`` ageing (the oldest pages go first).
"""

from __future__ import annotations

from .constants import GFP_NOFS, HZ
from .vmstat import zone_page_state

__all__ = [
    "MAX_WRITEBACK_PAGES",
    "determine_dirtyable_memory",
    "global_dirty_limits",
    "over_dirty_limit",
    "balance_dirty_pages_pause",
    "bdi_writeback_thread",
]

MAX_WRITEBACK_PAGES = 1024  # fs/fs-writeback.c: pages per writeback_inodes_wb pass
# SIMPLIFICATION: the flusher sends at most this many pages per tick. Every check in a tick reads
# the tick-start counter, so one 1024-page pass would take all its requests on one stale read;
# in the kernel each request page has its own watermark check, a few microseconds apart.
FLUSH_PAGES_PER_TICK = 256
MAX_PAUSE = HZ // 10  # balance_dirty_pages: the pause doubles up to HZ/10


def determine_dirtyable_memory(sim) -> int:
    """Free plus reclaimable pages (``determine_dirtyable_memory``, mm/page-writeback.c).

    2.6.36 reads ``global_page_state(NR_FREE_PAGES)``: the plain counter, drift and all.
    """
    return zone_page_state(sim.zone) + len(sim.lru) + 1


def global_dirty_limits(sim) -> tuple[int, int]:
    """``(background_thresh, dirty_thresh)`` in pages (``global_dirty_limits``, 2.6.36).

    ``dirty = dirty_ratio * available / 100``; ``background = dirty_background_ratio *
    available / 100``, halved to ``dirty / 2`` when it is not below ``dirty``.
    """
    cfg = sim.config
    available = determine_dirtyable_memory(sim)
    dirty = cfg.dirty_ratio * available // 100
    background = cfg.dirty_background_ratio * available // 100
    if background >= dirty:
        background = dirty // 2
    return background, dirty


def over_dirty_limit(sim) -> bool:
    """``nr_reclaimable + nr_writeback > dirty_thresh``: writers must wait."""
    _, dirty = global_dirty_limits(sim)
    return sim.lru.dirty + sim.writeback_in_flight > dirty


def balance_dirty_pages_pause(previous_pause: int) -> int:
    """The next ``io_schedule_timeout`` of a throttled writer: 1 jiffy, doubling to HZ/10."""
    return 1 if previous_pause <= 0 else min(MAX_PAUSE, 2 * previous_pause)


def bdi_writeback_thread(sim, flusher):
    """The flusher thread (``bdi_writeback_thread`` → ``wb_do_writeback``), as a generator.

    Each tick (it is kicked by ``balance_dirty_pages`` or its periodic wake-up) it checks
    ``over_bground_thresh``; while over, it sends the oldest dirty pages to the device, as much
    as the device queue takes. The requests' memory is an ordinary GFP_NOFS allocation: the
    flusher is not PF_MEMALLOC and may not dip into the reserve. When the fast path and the MIN
    check fail it goes down the same slow path as any sleeping allocation
    (``__alloc_pages_slowpath``: wake kswapd, direct reclaim, patch 3's drain, retries) for
    one request page, and sends what that page carries. A full queue waits for it to drain.
    ``flusher`` is the thread's task (its CPU and PF_MEMALLOC flag).
    """
    from .page_alloc import __alloc_pages_slowpath
    from .vmscan import pageout

    cpu = flusher.cpu
    while True:
        background, _ = global_dirty_limits(sim)
        over = sim.lru.dirty - background
        room = sim.config.writeback_limit - sim.writeback_in_flight
        if over <= 0 or room <= 0:
            # Under the background threshold, or the queue is congested: congestion_wait()
            # returns as soon as it drains.
            yield 1
            continue
        want = min(over, FLUSH_PAGES_PER_TICK, sim.lru.dirty, room)
        started = pageout(sim, cpu, want, pf_memalloc=False)
        if not started:
            # No page for a request on the fast path or at MIN: the sleeping slow path.
            if (yield from __alloc_pages_slowpath(sim, flusher, GFP_NOFS)):
                started = sim.start_writeback_with(cpu, 1)
        if started:
            taken = sim.lru.isolate_dirty_oldest(started)
            assert taken == started, (taken, started)
            sim.note_flushed(started)
        yield 1
