"""The simulated machine: :class:`Simulation` owns all state, the clock and the random streams.

One tick is one millisecond. How CPUs interleave inside a tick is fixed, and documented here
because it decides what concurrency the model can show:

1. **Lockless reads see the tick's start.** Every watermark check during tick ``t`` (every
   ``zone_watermark_ok``, ``wakeup_kswapd``'s LOW test, kswapd's HIGH test) reads the value
   ``zone_nr_free_pages`` had at the start of ``t`` (``Simulation.free_read``; 2.6.38's
   ``zone_watermark_ok_safe`` reads ``Simulation.free_read_safe``). CPUs run at once
   and read ``vm_stat`` without a lock, so none of them sees what the others do during the
   tick: checks can pass on a stale counter, and many CPUs can pass on the same value and
   then all refill — the N × batch overshoot.
2. **The zone lock serialises buddy-list work.** Refills (``rmqueue_bulk``) and flushes
   (``free_pcppages_bulk``) change the buddy lists one CPU at a time, in a fresh random order
   each tick (the lock stream of the seed); there is no fixed CPU order.
3. **Within a tick**: I/O completions and the workload's frees come first, then each CPU's
   ``vmstat_update`` if its staggered timer fires. Then allocations: first every CPU takes what
   it can from its own pcp list (interrupts before the CPU's task, since an interrupt preempts
   it) — no lock, nothing shared, so all CPUs do this at once; then whoever needs the zone lock
   (refills), tasks resuming in the allocator and kswapd run in the tick's lock order.
4. **Same tick, same branch.** ``nr`` allocations by one CPU in one tick all read the same
   counter, so they are made as one batch (``nr`` pcp pops with refills as needed).

A task or kswapd that sleeps (``congestion_wait``, kswapd's nap) is a generator that yields the
milliseconds it sleeps; the simulation resumes it when its time comes or when it is woken.

SIMPLIFICATION: one node with one Normal zone (no lowmem_reserve in play), order-0 traffic only,
no compaction, no OOM killer, no flusher threads and no dirty throttling; kswapd stays on one
CPU; reads are phased per tick as described above. docs/MODEL.md lists every simplification.
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import page_alloc
from .budget import check_series_memory
from .config import SimConfig
from .constants import ALLOC_CPUSET, ALLOC_WMARK_LOW, ALLOC_WMARK_MASK, GFP_ATOMIC, GFP_KERNEL
from .cost import ALL_CPUS, TICK_NS, CostMeter
from .engine import resolve as resolve_engine
from .errors import check_run_arguments
from .mmzone import CountingZone
from .page_alloc import (
    drain_all_pages,
    free_hot_cold_page_n,
    get_page_from_freelist,
    gfp_to_alloc_flags,
    wake_all_kswapd,
    watermark_free_pages,
    watermark_free_pages_safe,
)
from .page_writeback import balance_dirty_pages_pause, bdi_writeback_thread, over_dirty_limit
from .trace import Event, Recorder, RunResult
from .vmscan import LRU, KswapdState, kswapd
from .vmstat import (
    diff_limit,
    refresh_cpu_vm_stats,
    set_pgdat_percpu_threshold,
    zone_page_state,
)
from .workload import BLOCK, arrival_block, lock_keys

__all__ = ["Simulation", "Task", "PgData", "run"]

# Python mangles ``__name`` inside a class body, so the kernel's double-underscore functions are
# reached through these module-level names.
alloc_pages_nodemask = getattr(page_alloc, "__alloc_pages_nodemask")
alloc_pages_slowpath = getattr(page_alloc, "__alloc_pages_slowpath")
zone_watermark_ok_arith = getattr(page_alloc, "__zone_watermark_ok")

_BLOCK = BLOCK  # ticks of workload drawn at once (allocsim.workload)
_MAX_EVENTS = 200_000
# What each tick counts (recorded under these names by Simulation._record).
_TICK_COUNTS = (
    "atomic_attempted",
    "atomic_ok",
    "atomic_failed",
    "task_attempted",
    "task_ok",
    "task_failed",
    "memalloc_attempted",
    "memalloc_ok",
    "direct_reclaim",
    "drain_all_pages",
    "reclaimed",
    "scanned",
    "folds",
    "flushed",
)


class Task:
    """A writer task pinned to one CPU: it fills the page cache, ``writer_rate`` pages per ms."""

    __slots__ = ("tid", "cpu", "pf_memalloc", "gen", "wake_at", "dirty_acc", "temp_acc")

    def __init__(self, tid: int, cpu: int):
        self.tid = tid
        self.cpu = cpu
        self.pf_memalloc = False
        self.gen = None  # the running __alloc_pages_slowpath, if the task is in the allocator
        self.wake_at = math.inf
        self.dirty_acc = 0.0  # error diffusion: which written pages are dirty, without an RNG
        self.temp_acc = 0.0

    @property
    def in_allocator(self) -> bool:
        return self.gen is not None


class PgData:
    """The node (``pg_data_t``): kswapd and its wait queue."""

    __slots__ = ("on_waitqueue", "woken", "max_order", "state", "gen", "wake_at")

    def __init__(self):
        self.on_waitqueue = True
        self.woken = False
        self.max_order = 0
        self.state = KswapdState.SLEEPING
        self.gen = None
        self.wake_at = 0  # kswapd starts by running its loop once, as at boot

    @property
    def awake(self) -> bool:
        """Not waiting on ``kswapd_wait``: what ``zone_nr_free_pages`` asks.

        SIMPLIFICATION: it turns True when kswapd runs (the tick after its wake-up), not at
        the wake-up itself; see :attr:`waitqueue_active`.
        """
        return not self.on_waitqueue

    @property
    def waitqueue_active(self) -> bool:
        """``waitqueue_active(&pgdat->kswapd_wait)``: kswapd is queued and not woken yet.

        kswapd waits with ``DEFINE_WAIT`` (``autoremove_wake_function``): the wake-up takes it
        off the queue at once, so later callers in the same tick see an empty queue.
        """
        return self.on_waitqueue and not self.woken


class Simulation:
    """A running machine: one zone, ``cpus`` CPUs, writer tasks, interrupts and kswapd.

    Parameters
    ----------
    config : SimConfig, optional
        The run's settings; keyword ``overrides`` replace fields of it (or of the default).
    engine : {"compiled", "python"}, optional
        Who runs the ticks: the compiled core (``allocsim.engine``, numba) or this module's
        Python, the reference. Both give the same run bit for bit. Default: "compiled" when
        numba imports (``ALLOCSIM_ENGINE`` overrides), else "python" with a one-line notice.
        With "compiled", state kept in generators here (a task in the slow path, kswapd, the
        flusher) lives in the core's arrays: ``sim.tasks`` is not updated during the run.

    Examples
    --------
    >>> sim = Simulation(SimConfig.preset("small", duration_ms=200))
    >>> result = sim.run()
    >>> result.simulated_ms
    200
    """

    def __init__(self, config: SimConfig | None = None, *, engine: str | None = None, **overrides):
        if config is None:
            config = SimConfig(**overrides) if overrides else SimConfig()
        elif not isinstance(config, SimConfig):
            raise TypeError(f"config must be an allocsim.SimConfig, got {config!r}")
        elif overrides:
            config = config.replace(**overrides)
        self.config = cfg = config
        d = cfg.derived()
        self.derived = d.as_dict()
        n = cfg.cpus
        self.zone = zone = CountingZone(
            d.present_pages,
            n,
            watermark=(d.wmark_min, d.wmark_low, d.wmark_high),
            stat_threshold=d.stat_threshold,
            pcp_batch=d.pcp_batch,
            pcp_high=d.pcp_high,
            free_pages=d.initial_free_pages,
            patches=cfg.patches,
        )
        zone.min_free_kbytes = d.min_free_kbytes
        self.derived["percpu_drift_mark"] = zone.percpu_drift_mark

        # Memory that is not free: page cache on the LRU, the rest kernel memory.
        used = d.present_pages - d.initial_free_pages
        lru_pages = int(used * cfg.lru_fraction)
        start_dirty = (
            cfg.dirty_fraction if cfg.start_dirty_fraction is None else cfg.start_dirty_fraction
        )
        dirty = int(round(lru_pages * start_dirty))
        self.lru = LRU(clean=lru_pages - dirty, dirty=dirty)
        self.kernel_pages = used - lru_pages
        self.atomic_in_use = 0
        self.temp_in_use = 0
        self.writeback_in_flight = 0  # data pages under writeback
        self._next_irq_cpu = 0  # round robin over the I/O interrupt CPUs
        self.requests_in_flight = 0  # pages allocated to carry the writeback

        # Writers pinned to CPUs 0 .. writer_cpus-1; kswapd on kswapd_cpu (default the last).
        # SIMPLIFICATION: kswapd never migrates; the real thread may run on any CPU of its node.
        self.tasks = [Task(i, i) for i in range(cfg.writer_cpus)]
        self.task_on_cpu: dict[int, Task] = {t.cpu: t for t in self.tasks}
        self.kswapd_cpu = n - 1 if cfg.kswapd_cpu is None else cfg.kswapd_cpu
        self.io_irq_cpus = min(8, n) if cfg.io_irq_cpus is None else cfg.io_irq_cpus
        self.kswapd = PgData()
        self.kswapd.gen = kswapd(self, asleep=cfg.kswapd_asleep_at_start)
        # SIMPLIFICATION: the flusher thread shares kswapd's CPU (both are kernel threads that
        # the model keeps on one CPU).
        self.flusher_cpu = self.kswapd_cpu
        self.flusher = Task(-1, self.flusher_cpu)
        self._flusher = bdi_writeback_thread(self, self.flusher)
        self._flusher_wake = 0

        # Random streams: one seed -> independent streams. The workload streams are consumed at
        # a rate that depends only on time, never on what the allocator did.
        ss = np.random.SeedSequence(cfg.seed)
        irq_ss, task_ss, lock_ss = ss.spawn(3)
        self._rng_irq = np.random.default_rng(irq_ss)
        self._rng_task = np.random.default_rng(task_ss)
        self._rng_lock = np.random.default_rng(lock_ss)
        self._block_start = -(10**9)

        # Delayed frees: ring buffers indexed by tick modulo their length.
        self._atomic_ring = np.zeros((cfg.atomic_lifetime_ms + 1, n), dtype=np.int64)
        self._temp_ring = np.zeros((cfg.task_page_lifetime_ms + 1, n), dtype=np.int64)
        self._wb_req = np.zeros((cfg.io_latency_ms + 1, n), dtype=np.int64)
        self._wb_data = np.zeros(cfg.io_latency_ms + 1, dtype=np.int64)

        # vmstat_update timers: CPU c fires when t % interval == (-3 c) % interval, the 3-jiffy
        # per-CPU skew of __round_jiffies_relative. SIMPLIFICATION: no rounding to whole seconds
        # and no deferral of idle CPUs' timers.
        interval = cfg.stat_interval_ms
        offsets = (-3 * np.arange(n)) % interval
        order = np.argsort(offsets, kind="stable")
        # The CPUs of each offset, in CPU order: runs of the stably sorted order (slices of it
        # instead of one pass over all CPUs per offset; 1000 offsets at 1024 CPUs).
        ordered = offsets[order]
        bounds = [0, *(np.flatnonzero(np.diff(ordered)) + 1).tolist(), n]
        self._fold_slots: dict[int, np.ndarray] = {
            int(ordered[a]): order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        }

        self.vector_fast_path = True
        k = cfg.writer_cpus
        self._task_running = np.ones(k, dtype=bool)  # not in the allocator
        # In the allocator with no real progress in the last reclaim pass: spinning.
        self._task_spinning = np.zeros(k, dtype=bool)
        # balance_dirty_pages: a throttled writer sleeps until this tick, its pause doubling.
        self._throttled_until = np.zeros(k, dtype=np.int64)
        self._pause = np.zeros(k, dtype=np.int64)
        self._dirtied = np.zeros(k, dtype=bool)  # wrote page-cache pages this tick
        self._in_allocator = 0
        self._wakeups: dict[int, list[Task]] = {}  # tick -> tasks whose sleep ends then
        self.t = 0
        self.free_read = zone_page_state(zone)
        self.free_read_safe = self.free_read
        self._wm_cache: dict[tuple[int, int, bool], bool] = {}
        # What accuracy costs: checks, snapshots, folds, rewrites and drains, in CPU time.
        self.meter = CostMeter(cfg.cpus, cfg.sockets, cfg.cost_scale)
        self._folds_seen = zone.stat_folds.copy()
        self._busy = None  # this tick's time spent on debt, per CPU (None: no debt anywhere)
        self._lost_acc = np.zeros(cfg.writer_cpus, dtype=np.float64)
        self.recorder = Recorder(cfg.duration_ms)
        self.events: list[Event] = []
        self.events_dropped = 0
        self._tick = {}

        # Which engine runs the ticks: this module's Python (the reference) or the compiled
        # core (allocsim.engine), which works on the same arrays and gives the same run.
        self.engine = resolve_engine(engine)
        self._compiled = None
        if self.engine == "compiled":
            from .engine.driver import CompiledEngine

            self._compiled = CompiledEngine(self)

    # -- services the kernel-named functions call ----------------------------------------------
    def watermark_ok(self, mark: int, alloc_flags: int, safe: bool = False, cpu=None, n=1) -> bool:
        """``zone_watermark_ok(zone, 0, mark, 0, alloc_flags)`` on this tick's lockless read.

        ``safe`` makes it ``zone_watermark_ok_safe`` (2.6.38). ``cpu`` makes the check and
        pays for it, ``n`` times (the allocations it stands for); with ``cpu=ALL_CPUS``, ``n``
        is an array of counts, one per CPU; with ``cpu`` an array of distinct CPUs, one count
        for each of them. Without ``cpu`` nothing is charged: the caller charges for the
        allocations the decision stands for.
        """
        key = (mark, alloc_flags, safe)
        ok = self._wm_cache.get(key)
        if ok is None:
            free = self.free_read_safe if safe else self.free_read
            ok = self._wm_cache[key] = zone_watermark_ok_arith(free, 0, mark, 0, alloc_flags)
        if cpu is not None:
            self.meter.check(cpu, n, safe)
        return ok

    def set_pgdat_percpu_threshold(self, calculate) -> None:
        """2.6.38's ``set_pgdat_percpu_threshold`` from kswapd, which pays for the rewrite."""
        if set_pgdat_percpu_threshold(self.zone, calculate):
            self.meter.threshold_rewrite(self.kswapd_cpu)

    def wake_kswapd(self) -> None:
        """``wake_up_interruptible(&pgdat->kswapd_wait)``: kswapd runs from the next tick."""
        ks = self.kswapd
        if not ks.woken:
            self.event("mm_vmscan_wakeup_kswapd", -1, 0)
        ks.woken = True
        ks.wake_at = min(ks.wake_at, self.t + 1)

    def set_kswapd_state(self, state: int) -> None:
        if state != self.kswapd.state:
            if state == KswapdState.RUNNING:
                self.event("mm_vmscan_kswapd_wake", self.kswapd_cpu, 0)
            elif state == KswapdState.SLEEPING:
                self.event("mm_vmscan_kswapd_sleep", self.kswapd_cpu, 0)
        self.kswapd.state = state

    def drain_all_pages(self, cpu: int) -> int:
        """Patch 3's ``drain_all_pages()``: an IPI to every CPU to flush its pcp lists."""
        self.meter.drain_all_pages(cpu, self.zone.pcp_count.copy())
        if self.vector_fast_path:
            pages = self.zone.drain_all_counted()
        else:
            pages = drain_all_pages(self.zone)
        self._tick["drain_all_pages"] += 1
        self.event("mm_page_pcpu_drain", cpu, pages)
        return pages

    def note_direct_reclaim(self, task: Task) -> None:
        self._tick["direct_reclaim"] += 1
        self.event("mm_vmscan_direct_reclaim_begin", task.cpu, 0)

    def note_reclaimed(self, reclaimed: int, scanned: int) -> None:
        self._tick["reclaimed"] += reclaimed
        self._tick["scanned"] += scanned

    def note_reclaim_pass(self, cpu: int, real_progress: int) -> None:
        """A direct-reclaim pass on ``cpu`` ended: did it free or send a page, or only scan?"""
        task = self.task_on_cpu.get(cpu)
        if task is not None:
            self._task_spinning[task.tid] = real_progress == 0

    def note_flushed(self, pages: int) -> None:
        self._tick["flushed"] += pages

    def note_memalloc(self, wanted: int, got: int) -> None:
        self._tick["memalloc_attempted"] += wanted
        self._tick["memalloc_ok"] += got

    def start_writeback(self, cpu: int, nr: int, requests: int) -> None:
        """``nr`` dirty pages go to the device with ``requests`` pages allocated on ``cpu``.

        When the I/O completes (``io_latency_ms`` later) the device's completion interrupt
        frees the request pages (hot) on the CPU that takes it — the last ``io_irq_cpus`` CPUs
        in turn, one request after another — and the data pages, now clean, go to the LRU
        tail.
        """
        cfg = self.config
        slot = (self.t + cfg.io_latency_ms) % len(self._wb_data)
        k = self.io_irq_cpus
        base = cfg.cpus - k
        first = self._next_irq_cpu
        per, extra = divmod(requests, k)
        row = self._wb_req[slot]
        if per:
            row[base:] += per
        for i in range(extra):
            row[base + (first + i) % k] += 1
        self._next_irq_cpu = (first + extra) % k
        self._wb_data[slot] += nr
        self.writeback_in_flight += nr
        self.requests_in_flight += requests

    def start_writeback_with(self, cpu: int, requests: int) -> int:
        """Send what ``requests`` request pages, already allocated, carry; return data pages."""
        ratio = self.config.writeback_alloc_ratio
        carry = int(requests / ratio) if ratio else requests
        room = self.config.writeback_limit - self.writeback_in_flight
        nr = max(0, min(carry, room, self.lru.dirty))
        if nr == 0:  # nothing to carry after all: the pages go back
            free_hot_cold_page_n(self.zone, cpu, requests)
            return 0
        self.start_writeback(cpu, nr, requests)
        return nr

    def event(self, name: str, cpu: int, value: int) -> None:
        if not self.config.record_events:
            return
        if len(self.events) < _MAX_EVENTS:
            self.events.append(Event(self.t, name, int(cpu), int(value)))
        else:
            self.events_dropped += 1

    # -- the tick ---------------------------------------------------------------------------
    def _draw_block(self) -> None:
        """Draw the workload of the next ``_BLOCK`` ticks (arrivals and lock order), as
        :mod:`allocsim.workload` describes."""
        cfg = self.config
        t0 = self.t - self.t % _BLOCK
        irq_rates, task_rates = self._block_rates(t0)
        self._irq_block = arrival_block(self._rng_irq, irq_rates, cfg.cpus)
        self._task_block = arrival_block(self._rng_task, task_rates, max(1, cfg.writer_cpus))
        self._lock_block = lock_keys(self._rng_lock, cfg.cpus)
        self._block_start = t0

    def _block_rates(self, t0: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-tick rates of the block from ``t0``: interrupts, and each writer's pages."""
        cfg = self.config
        burst = self._burst_mask(np.arange(t0, t0 + _BLOCK))
        irq = np.where(burst, float(cfg.atomic_rate), float(cfg.quiet_atomic_rate))
        task = np.where(burst, float(cfg.writer_rate), 0.0)
        return irq, task

    def _burst_mask(self, ticks: np.ndarray) -> np.ndarray:
        cfg = self.config
        end = math.inf if cfg.burst_ms is None else cfg.burst_start_ms + cfg.burst_ms
        return (ticks >= cfg.burst_start_ms) & (ticks < end)

    def step(self) -> None:
        """Advance the machine by one tick (1 ms)."""
        if self._compiled is not None:
            self._check_compiled_path()
            self.recorder.ensure(self.t + 1)
            self._compiled.run(self.t + 1)
            return
        cfg = self.config
        zone = self.zone
        t = self.t
        if t - self._block_start >= _BLOCK or t < self._block_start:
            self._draw_block()
        row = t - self._block_start
        tick = self._tick = dict.fromkeys(_TICK_COUNTS, 0)

        # 0. What every lockless reader sees this tick, and whether reading it sums every
        # CPU's delta (a snapshot, which the cost model charges per check).
        seen = zone.snapshot_reads
        self.free_read = watermark_free_pages(zone, self.kswapd.awake)
        normal_snapshot = zone.snapshot_reads != seen
        # What zone_watermark_ok_safe would read (only 2.6.38's call sites use it).
        seen = zone.snapshot_reads
        self.free_read_safe = watermark_free_pages_safe(zone)
        safe_snapshot = zone.snapshot_reads != seen
        self._wm_cache.clear()
        self._busy = self.meter.begin_tick(normal_snapshot, safe_snapshot)

        # 1. I/O completions: request pages freed where the interrupt runs, data pages clean.
        slot = t % len(self._wb_data)
        if self._wb_data[slot]:
            data = int(self._wb_data[slot])
            self._wb_data[slot] = 0
            self.writeback_in_flight -= data
            self.lru.add_tail(False, data)
            self.requests_in_flight -= self._free_due(self._wb_req, slot)

        # 2. The workload's frees: interrupt pages and temporary task pages, each on its CPU.
        self.atomic_in_use -= self._free_due(self._atomic_ring, t % len(self._atomic_ring))
        self.temp_in_use -= self._free_due(self._temp_ring, t % len(self._temp_ring))

        # 3. vmstat_update on the CPUs whose timer fires now.
        cpus = self._fold_slots.get(t % cfg.stat_interval_ms)
        if cpus is not None:
            for cpu in cpus:
                if refresh_cpu_vm_stats(zone, int(cpu)):
                    tick["folds"] += 1

        # 4. Allocations.
        self._allocate(row)

        # 5. Price what the tick's kernel paths did (charged to the CPUs' debts).
        folds = zone.stat_folds - self._folds_seen
        self._folds_seen += folds  # now equal to zone.stat_folds, without a copy
        self.meter.end_tick(folds)

        # 6. Record.
        self._record()
        self.t = t + 1

    def _check_compiled_path(self) -> None:
        if not self.vector_fast_path:
            raise ValueError(
                "vector_fast_path=False sends every CPU through the scalar kernel functions, "
                "which only the Python engine has: build the Simulation with engine='python'"
            )

    def _free_due(self, ring: np.ndarray, slot: int) -> int:
        """Free (hot) the pages a ring buffer holds for this tick on each CPU; return how many."""
        due = ring[slot]
        total = int(np.add.reduce(due))
        if total:
            self._free_vector(due.copy())
            due[:] = 0
        return total

    def _free_vector(self, counts: np.ndarray) -> None:
        """``free_hot_cold_page`` (hot) ``counts[cpu]`` times on every CPU at once."""
        zone = self.zone
        pcp = zone.pcp_count
        over = (counts > 0) & (pcp + counts >= zone.pcp_high)
        if np.count_nonzero(over):
            pcp += np.where(over, 0, counts)
            for cpu in np.flatnonzero(over):
                free_hot_cold_page_n(zone, int(cpu), int(counts[cpu]))
        else:
            pcp += counts

    def _allocate(self, row: int) -> None:
        cfg = self.config
        zone = self.zone
        tick = self._tick
        t = self.t
        n = cfg.cpus
        k = cfg.writer_cpus

        need_irq = self._irq_block[row]
        tick["atomic_attempted"] = int(np.add.reduce(need_irq))
        demand = self._task_block[row][:k]
        self._demand = int(np.add.reduce(demand))
        need_task = np.zeros(n, dtype=np.int64)
        # Task i runs on CPU i unless it sits in the allocator or in balance_dirty_pages.
        self._dirtied[:] = False
        runnable = self._task_running & (self._throttled_until <= t)
        need_task[:k] = np.where(runnable, demand, 0)
        busy = self._busy
        if busy is not None and k:
            # A CPU that spends part of the tick working off its debt (reads, folds, IPIs)
            # serves that much less of its task's demand; the demand itself was drawn as
            # always. Fractions of a page carry over (error diffusion, no random numbers).
            acc = self._lost_acc
            acc += need_task[:k] * (busy[:k] / TICK_NS)
            lost = np.minimum(np.floor(acc).astype(np.int64), need_task[:k])
            acc -= lost
            need_task[:k] -= lost

        # First what needs no lock. Every check this tick reads the same value, so whether a
        # context may take pages is one decision per tick: tasks at LOW (the fast path);
        # interrupts at LOW, or else — after waking kswapd — at MIN with ALLOC_HIGH|ALLOC_HARDER.
        # Each CPU then takes what it can from its own pcp list, interrupts first. Done for all
        # CPUs at once with numpy; ``vector_fast_path = False`` does the same CPU by CPU
        # through the scalar kernel functions, and a test checks that both agree.
        low_flags = ALLOC_WMARK_LOW | ALLOC_CPUSET
        low_ok = self.watermark_ok(zone.watermark[ALLOC_WMARK_LOW], low_flags)
        irq_flags = low_flags
        irq_slow = not low_ok and np.count_nonzero(need_irq) > 0
        if irq_slow:
            irq_flags = gfp_to_alloc_flags(GFP_ATOMIC, in_interrupt=True)
        irq_ok = self.watermark_ok(zone.watermark[irq_flags & ALLOC_WMARK_MASK], irq_flags)
        pcp = zone.pcp_count
        take_i = np.zeros(n, dtype=np.int64)
        take_t = np.zeros(n, dtype=np.int64)
        if self.vector_fast_path:
            if irq_ok:
                np.minimum(need_irq, pcp, out=take_i)
                pcp -= take_i
            if low_ok:
                np.minimum(need_task, pcp, out=take_t)
                pcp -= take_t
        else:
            for cpu in np.flatnonzero(need_irq | need_task):
                if irq_ok:
                    take_i[cpu] = get_page_from_freelist(
                        self, cpu, irq_flags, int(min(need_irq[cpu], pcp[cpu]))
                    )
                if low_ok:
                    take_t[cpu] = get_page_from_freelist(
                        self, cpu, low_flags, int(min(need_task[cpu], pcp[cpu]))
                    )
        # The checks these fast-path decisions stand for, one per allocation, on its CPU: the
        # final check of each page taken here (or of each interrupt allocation failed here);
        # and, if LOW failed, the failed LOW check and wakeup_kswapd before the MIN retry.
        meter = self.meter
        fast_irq = take_i if irq_ok else need_irq
        if self.vector_fast_path:
            meter.check(ALL_CPUS, take_t)
            meter.check(ALL_CPUS, fast_irq)
        elif not irq_ok:
            meter.check(ALL_CPUS, need_irq)  # get_page_from_freelist was not called
        if irq_slow:
            meter.check(ALL_CPUS, fast_irq)
            wake_all_kswapd(self, cpu=ALL_CPUS, n=fast_irq)
        got_irq = take_i
        left_i = need_irq - take_i
        left_t = need_task - take_t
        ok_t = int(np.add.reduce(take_t))
        if ok_t:
            self._task_pages(take_t)
        tick["task_attempted"] = int(np.add.reduce(need_task))
        atomic_failed = 0
        if not irq_ok:
            # Every interrupt's check fails the same way: the allocations fail (nopage).
            atomic_failed = int(np.add.reduce(left_i))
            left_i = np.zeros(n, dtype=np.int64)

        # Whoever needs the zone lock or sleeps in the allocator, in this tick's lock order:
        # CPUs with demand left, tasks whose sleep ends now, kswapd if its time has come. Ties
        # (a task resuming on a CPU that also has demand left) go to the CPU's demand first.
        keys = self._lock_block[row]
        cpus = np.flatnonzero(left_i | left_t)
        cpus = cpus[np.argsort(keys[cpus], kind="stable")]
        cpu_keys = keys[cpus]
        others = [(keys[task.cpu], 1, task.tid) for task in self._wakeups.pop(t, ())]
        ks = self.kswapd
        if ks.wake_at <= t:
            others.append((keys[self.kswapd_cpu], 2, -1))
        if self._flusher_wake <= t:
            others.append((keys[self.flusher_cpu], 3, -1))
        others.sort()

        batch = int(zone.pcp_batch[0])
        pcp = zone.pcp_count
        failed = [atomic_failed]
        had = [ok_t]

        def cpu_turn(cpu: int) -> None:
            """One CPU's demand that its own pcp list could not meet, through the kernel path."""
            li = int(left_i[cpu])
            if li:
                # An interrupt: GFP_ATOMIC, never sleeps.
                got = alloc_pages_nodemask(self, cpu, GFP_ATOMIC, li, in_interrupt=True)
                got_irq[cpu] += got
                failed[0] += li - got
            lt = int(left_t[cpu])
            if lt:
                had[0] += self._task_alloc(self.task_on_cpu[cpu], lt)

        def refill_run(run: np.ndarray) -> None:
            """Interrupt-only CPUs with empty pcp lists whose need one batch covers, in lock
            order, all at once: each refill takes min(batch, what is left) of the buddy pages.
            The checks are those __alloc_pages_nodemask makes for them (see cpu_turn)."""
            need = left_i[run]
            meter.check(run, need)  # the check that let the refill happen
            if not low_ok:
                meter.check(run, need)  # LOW failed first
                wake_all_kswapd(self, cpu=run, n=need)
            got = zone.refill_counted(run)
            take = np.minimum(need, got)
            pcp[run] -= take
            got_irq[run] += take
            short = need - take
            failed[0] += int(np.add.reduce(short))
            if low_ok and np.count_nonzero(short):
                # Passed LOW but the buddy lists ran dry: the slow path wakes kswapd and
                # retries at MIN, in vain.
                wake_all_kswapd(self, cpu=run, n=short)
                meter.check(run, short)

        def cpu_segment(seg: np.ndarray) -> None:
            """Consecutive CPU turns with no task or kswapd between them. Nothing in a turn
            touches another CPU's pcp list except a drain, which only empties lists, so which
            turns are simple refills can be decided at the start of the segment."""
            if not self.vector_fast_path:
                for cpu in seg:
                    cpu_turn(int(cpu))
                return
            simple = (left_t[seg] == 0) & (left_i[seg] <= batch) & (pcp[seg] == 0)
            prev = 0
            for j in np.flatnonzero(~simple):
                if j > prev:
                    refill_run(seg[prev:j])
                cpu_turn(int(seg[j]))
                prev = j + 1
            if prev < len(seg):
                refill_run(seg[prev:])

        first = 0
        for key, kind, ident in others:
            stop = int(np.searchsorted(cpu_keys, key, side="right"))
            if stop > first:
                cpu_segment(cpus[first:stop])
                first = stop
            if kind == 1:
                task = self.tasks[ident]
                if task.wake_at == t and self._advance(task):
                    had[0] += 1
            elif kind == 2:
                self._advance_kswapd()
            else:
                self._flusher_wake = t + next(self._flusher)
        if first < len(cpus):
            cpu_segment(cpus[first:])
        atomic_failed, ok_t = failed[0], had[0]

        tick["atomic_ok"] = int(np.add.reduce(got_irq))
        tick["atomic_failed"] = atomic_failed
        # Interrupt pages are freed on their CPU atomic_lifetime_ms later.
        if tick["atomic_ok"]:
            slot = (t + cfg.atomic_lifetime_ms) % len(self._atomic_ring)
            self._atomic_ring[slot] += got_irq
            self.atomic_in_use += tick["atomic_ok"]
        tick["task_ok"] = ok_t
        if k:
            self._balance_dirty_pages()

    def _balance_dirty_pages(self) -> None:
        """``balance_dirty_pages`` for every writer, after the tick's allocations.

        A writer that dirtied pages while dirty + writeback pages exceed the dirty threshold
        sleeps a pause (1 ms); one whose pause ends while still over sleeps again with the pause
        doubled (up to 100 ms); once under the limit it runs again.
        """
        t = self.t
        until = self._throttled_until
        waking = until == t + 1  # would run next tick
        check = (self._dirtied & (until <= t)) | waking
        if not np.count_nonzero(check):
            return
        if over_dirty_limit(self):
            for tid in np.flatnonzero(check):
                pause = balance_dirty_pages_pause(int(self._pause[tid]) if waking[tid] else 0)
                self._pause[tid] = pause
                until[tid] = t + 1 + pause
        else:
            self._pause[check] = 0

    def _task_alloc(self, task: Task, nr: int) -> int:
        """``nr`` GFP_KERNEL allocations by a running task; returns the pages it got."""
        got = 0
        cpu = task.cpu
        while got < nr:
            g = get_page_from_freelist(self, cpu, ALLOC_WMARK_LOW | ALLOC_CPUSET, nr - got)
            if g:
                self._task_page(task, g)
                got += g
            if got == nr:
                break
            task.gen = alloc_pages_slowpath(self, task, GFP_KERNEL)
            self._tick["task_failed"] += 1
            if self._advance(task):
                got += 1
                continue
            # SIMPLIFICATION: a task asleep in the allocator does not queue up later demand; what
            # it would have asked for meanwhile counts as demand not served.
            break
        return got

    def _advance(self, task: Task) -> bool:
        """Run a task's slow path until it sleeps or ends; True if it ended with a page."""
        if self._task_running[task.tid]:
            self._task_running[task.tid] = False
            self._in_allocator += 1
        try:
            ms = task.gen.send(None)
        except StopIteration as stop:
            task.gen = None
            task.wake_at = math.inf
            self._task_running[task.tid] = True
            self._task_spinning[task.tid] = False
            self._in_allocator -= 1
            if stop.value:
                self._task_page(task, 1)
                return True
            return False
        # A task in the allocator sleeps for a fixed time (congestion_wait, a jiffy's nap).
        task.wake_at = self.t + ms
        self._wakeups.setdefault(task.wake_at, []).append(task)
        return False

    def _advance_kswapd(self) -> None:
        ks = self.kswapd
        ms = ks.gen.send(None)
        ks.wake_at = math.inf if ms is None else self.t + ms

    def _task_pages(self, take_t: np.ndarray) -> None:
        cpus = np.flatnonzero(take_t)
        # Plain ints (tolist) rather than numpy scalars: up to one call per writer each tick.
        for cpu, nr in zip(cpus.tolist(), take_t[cpus].tolist(), strict=True):
            self._task_page(self.task_on_cpu[cpu], nr)  # writer i runs on CPU i

    def _task_page(self, task: Task, nr: int) -> None:
        """Where a task's new pages go: temporary (freed later) or page cache (LRU head)."""
        cfg = self.config
        temp = 0
        if cfg.task_temp_fraction:
            task.temp_acc += nr * cfg.task_temp_fraction
            temp = int(task.temp_acc)
            task.temp_acc -= temp
        if temp:
            slot = (self.t + cfg.task_page_lifetime_ms) % len(self._temp_ring)
            self._temp_ring[slot, task.cpu] += temp
            self.temp_in_use += temp
        cache = nr - temp
        if cache:
            self._dirtied[task.tid] = True
            task.dirty_acc += cache * cfg.dirty_fraction
            dirty = min(cache, int(task.dirty_acc))
            task.dirty_acc -= dirty
            self.lru.add_head(True, dirty)
            self.lru.add_head(False, cache - dirty)

    def _record(self) -> None:
        rec = self.recorder
        i = rec.n
        if i >= len(rec.arrays["counter"]):
            rec.ensure(i + 1)
        a = rec.arrays
        zone = self.zone
        tick = self._tick
        a["counter"][i] = zone_page_state(zone)
        snap = zone.vm_stat + int(np.add.reduce(zone.vm_stat_diff))
        a["snapshot"][i] = snap if snap > 0 else 0
        a["read"][i] = self.free_read
        a["buddy"][i] = zone.nr_free_pages_buddy
        pcp = zone.pcp_count
        a["pcp"][i] = int(np.add.reduce(pcp))
        # Writers run on CPUs 0 .. writer_cpus-1: the CPUs after them run no task.
        a["pcp_stranded"][i] = int(np.add.reduce(pcp[self.config.writer_cpus :]))
        a["kswapd_state"][i] = self.kswapd.state
        for name, value in tick.items():
            a[name][i] = value
        a["task_demand"][i] = self._demand
        a["tasks_in_allocator"][i] = self._in_allocator
        if self._in_allocator:
            a["tasks_spinning"][i] = np.count_nonzero(self._task_spinning & ~self._task_running)
        a["tasks_throttled"][i] = np.count_nonzero(self._throttled_until > self.t + 1)
        a["writeback"][i] = self.writeback_in_flight
        a["lru_dirty"][i] = self.lru.dirty
        a["lru_clean"][i] = self.lru.clean
        a["stat_threshold"][i] = zone.stat_threshold[0]
        a["watermark_ns"][i] = self.meter.tick_watermark_ns
        a["cost_ns"][i] = self.meter.tick_ns
        rec.n = i + 1

    # -- running --------------------------------------------------------------------------------
    def run(
        self,
        until: int | None = None,
        *,
        progress=None,
        progress_every: int = 100,
        wall_budget_s: float | None = None,
    ) -> RunResult:
        """Run to ``until`` ms (default: the config's ``duration_ms``) and return the result.

        Resumable: ``run(until=500)`` then ``run(until=1000)`` is the same as ``run(1000)``.
        ``progress(sim)`` is called every ``progress_every`` ticks (for progress bars and live
        plots). ``wall_budget_s`` stops early, with ``result.finished`` False, if the wall-clock
        time runs out.
        """
        if until is None:
            until = self.config.duration_ms
        if isinstance(until, bool) or not isinstance(until, (int, np.integer)) or until < 0:
            raise ValueError(f"until must be a whole number of ms >= 0, got {until!r}")
        until = int(until)
        check_run_arguments(progress, progress_every, wall_budget_s)
        check_series_memory("until", until)  # refuse a record that cannot fit, before allocating
        self.recorder.ensure(until)
        if self._compiled is not None:
            self._check_compiled_path()
            self._compiled.run(until, progress, progress_every, wall_budget_s)
            return self.result()
        start = time.perf_counter()
        while self.t < until:
            self.step()
            if progress is not None and self.t % progress_every == 0:
                progress(self)
            if wall_budget_s is not None and time.perf_counter() - start > wall_budget_s:
                break
        return self.result()

    def result(self) -> RunResult:
        """A :class:`RunResult` of everything recorded so far."""
        view = {k: v.copy() for k, v in self.recorder.view().items()}
        return RunResult(
            self.config,
            np.arange(self.recorder.n),
            view,
            self.events.copy(),  # a list, or the compiled engine's EventLog
            dict(self.derived),
            self.events_dropped,
            finished=self.t >= self.config.duration_ms,
            cost=self.meter.summary(self.recorder.n),
        )

    # -- invariants (used by the tests after every step) ---------------------------------------
    def pages_accounted(self) -> dict[str, int]:
        """Where every page is: the parts add up to ``present_pages``."""
        zone = self.zone
        return {
            "buddy": zone.nr_free_pages_buddy,
            "pcp": zone.pcp_pages(),
            "lru": len(self.lru),
            "writeback": self.writeback_in_flight,
            "requests": self.requests_in_flight,
            "atomic": self.atomic_in_use,
            "temporary": self.temp_in_use,
            "kernel": self.kernel_pages,
        }

    def check_invariants(self) -> None:
        """Raise AssertionError if a page was lost or a counter left its bounds."""
        zone = self.zone
        parts = self.pages_accounted()
        total = sum(parts.values())
        assert total == zone.present_pages, (
            f"pages lost or duplicated: {parts} != {zone.present_pages}"
        )
        assert min(parts.values()) >= 0, f"negative page count: {parts}"
        assert (zone.pcp_count >= 0).all(), "negative pcp count"
        # Each diff is within the threshold in force when it was written (2.6.38 lowers the
        # thresholds under existing diffs: see vmstat.set_pgdat_percpu_threshold).
        assert (np.abs(zone.vm_stat_diff) <= diff_limit(zone)).all(), "diff beyond threshold"
        exact = zone.vm_stat + int(zone.vm_stat_diff.sum())
        assert exact == zone.nr_free_pages_buddy, (
            f"exact counter {exact} != buddy pages {zone.nr_free_pages_buddy}"
        )
        assert self.lru.clean + self.lru.dirty == sum(r[1] for r in self.lru.runs)


def run(config: SimConfig | None = None, *, engine: str | None = None, **overrides) -> RunResult:
    """Build a :class:`Simulation` (on ``engine``) and run it to its ``duration_ms``."""
    return Simulation(config, engine=engine, **overrides).run()
