"""The Python side of the compiled engine: it lays a :class:`~allocsim.sim.Simulation`'s state
out as arrays, runs :func:`allocsim.engine.core.run_ticks` a block of ticks at a time, and
writes the results back where the Python engine keeps them.

What stays shared: the zone's per-CPU arrays (``pcp_count``, ``vm_stat_diff``,
``stat_threshold``...), the ring buffers and the cost meter's arrays become rows of the core's
few large arrays (views: the Python objects see every change). Scalars (the counter, the buddy
pages, kswapd's state...) are copied in before each block of ticks and out after it, so between
blocks ``sim.zone``, ``sim.kswapd``, ``sim.meter``, ``sim.events``, ``sim.lru`` and
``sim.check_invariants()`` read as they do with the Python engine. What the Python engine keeps
in generators (a task inside ``__alloc_pages_slowpath``, kswapd, the flusher) lives here as
program counters; the ``sim.tasks`` objects are not updated.

The workload (arrivals and the lock order) is drawn by :mod:`allocsim.workload`, from the same
numpy Generators in the same blocks of 256 ticks, so both engines see the same numbers.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections import namedtuple
from contextlib import contextmanager

import numpy as np

from ..trace import SERIES, EventLog
from ..vmstat import zone_pressure_threshold
from ..workload import arrival_draws, lock_keys
from . import core as C
from .draw import lay_out_arrivals

__all__ = ["CompiledEngine", "RingLRU", "EVENT_NAMES"]

# Names of the tracepoints, by event code (core.EV_*).
EVENT_NAMES = (
    "mm_vmscan_wakeup_kswapd",
    "mm_vmscan_kswapd_wake",
    "mm_vmscan_kswapd_sleep",
    "mm_page_pcpu_drain",
    "mm_vmscan_direct_reclaim_begin",
)
# Series -> row of the core's REC (integers) or RECF (floats); in_flight stays 0 in both
# engines (see trace.SERIES).
REC_ROWS = {
    name: getattr(C, "R_" + name.upper())
    for name in SERIES
    if name not in ("in_flight", "watermark_ns", "cost_ns")
}
RECF_ROWS = {"watermark_ns": C.RF_WATERMARK_NS, "cost_ns": C.RF_COST_NS}
_TICK_COUNT_ROWS = None  # filled lazily from sim._TICK_COUNTS

State = namedtuple("State", "S F I D W WF RING IRQ TASK LOCK LRU EV REC RECF")

_INF = C.INF
_EVENTS_START = 1024
_LRU_START = 1024
_CHUNK = 256  # ticks per call of the core: one workload block
# The arrival counts the core reads: 16 bits hold any count a config allows (rates of at most
# 256 per CPU per ms, Poisson; lay_out_arrivals checks) in a quarter of the memory of numpy's
# int64: a block of them is written once and read once per tick (2 MiB at 4096 CPUs).
_ARRIVALS = np.uint16


_gc_lock = threading.Lock()
_gc_pause = {"depth": 0, "was_enabled": False}


@contextmanager
def _gc_paused():
    """Python's cyclic garbage collector off while compiled runs go on, as it was after.

    Why: a many-CPU run turns tens of thousands of tracepoint hits into :class:`Event` objects;
    every 700 of them the collector runs, and every few hundred runs it walks every object in
    the process (numba alone brings a hundred thousand). That was 15-20 % of a 1024-CPU run's
    time, for nothing: the run itself makes no reference cycles (what a ``progress`` callback
    makes is collected after). Runs in several threads share one pause; the collector is back
    as it was when the last one ends, and then sees the run's new objects once."""
    with _gc_lock:
        if _gc_pause["depth"] == 0:
            _gc_pause["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_pause["depth"] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pause["depth"] -= 1
            if _gc_pause["depth"] == 0 and _gc_pause["was_enabled"]:
                gc.enable()


def _ring_size(n: int) -> int:
    """The smallest power of two >= n (the LRU ring indexes with a mask)."""
    return 1 << max(4, (int(n) - 1).bit_length())


class CompiledEngine:
    """Runs one Simulation's ticks in :mod:`allocsim.engine.core`.

    Built with the Simulation (before its first tick), from its Python state. The zone's,
    the meter's and the rings' arrays are moved into the core's arrays and the Python objects
    are pointed at views of them.
    """

    def __init__(self, sim):
        self.sim = sim
        cfg = sim.config
        zone = sim.zone
        meter = sim.meter
        n = cfg.cpus
        k = cfg.writer_cpus
        interval = cfg.stat_interval_ms
        io_slots = len(sim._wb_data)

        # S: scalars, configuration, tick counts, vmstat_update slots, I/O completion slots.
        wb_data_at = C.FOLD_START + interval + 1
        S = np.zeros(wb_data_at + io_slots, dtype=np.int64)
        S[C.C_CPUS] = n
        S[C.C_WRITERS] = k
        S[C.C_KSWAPD_CPU] = sim.kswapd_cpu
        S[C.C_FLUSHER_CPU] = sim.flusher_cpu
        S[C.C_IO_IRQ_CPUS] = sim.io_irq_cpus
        S[C.C_WMARK_MIN : C.C_WMARK_HIGH + 1] = zone.watermark
        S[C.C_STAT_INTERVAL] = interval
        S[C.C_IO_SLOTS] = io_slots
        S[C.C_ATOMIC_SLOTS] = len(sim._atomic_ring)
        S[C.C_TEMP_SLOTS] = len(sim._temp_ring)
        S[C.C_IO_LATENCY] = cfg.io_latency_ms
        S[C.C_ATOMIC_LIFETIME] = cfg.atomic_lifetime_ms
        S[C.C_TEMP_LIFETIME] = cfg.task_page_lifetime_ms
        S[C.C_WRITEBACK_LIMIT] = cfg.writeback_limit
        S[C.C_KSWAPD_SCAN] = cfg.kswapd_scan_per_ms
        S[C.C_DIRTY_RATIO] = cfg.dirty_ratio
        S[C.C_DIRTY_BACKGROUND_RATIO] = cfg.dirty_background_ratio
        S[C.C_RECORD_EVENTS] = bool(cfg.record_events)
        from ..sim import _MAX_EVENTS

        S[C.C_MAX_EVENTS] = _MAX_EVENTS
        p = zone.patches
        S[C.C_COUNTER_AFTER_FREE] = p.counter_after_free
        S[C.C_DRIFT_MARK_SNAPSHOT] = p.drift_mark_snapshot
        S[C.C_DRAIN_AFTER_RECLAIM] = p.drain_after_reclaim
        S[C.C_PRESSURE_THRESHOLD] = p.pressure_threshold
        S[C.C_WATERMARK_OK_SAFE] = p.watermark_ok_safe
        S[C.C_RING_TEMP] = len(sim._atomic_ring)
        S[C.C_RING_IO] = len(sim._atomic_ring) + len(sim._temp_ring)
        S[C.C_PRESSURE_VALUE] = zone_pressure_threshold(zone)
        S[C.C_WB_DATA] = wb_data_at
        # vmstat_update slots: the CPUs by timer offset, offset by offset (S[FOLD_START + off]
        # is where offset off's CPUs start in fold_order; up to 1000 offsets, so no loop)
        per_offset = np.zeros(interval, dtype=np.int64)
        for off, cpus in sim._fold_slots.items():
            per_offset[off] = len(cpus)
        S[C.FOLD_START] = 0
        np.cumsum(per_offset, out=S[C.FOLD_START + 1 : C.FOLD_START + interval + 1])
        fold_order = np.zeros(n, dtype=np.int64)
        for off, cpus in sim._fold_slots.items():
            fold_order[S[C.FOLD_START + off] : S[C.FOLD_START + off + 1]] = cpus
        S[wb_data_at:] = sim._wb_data
        sim._wb_data = S[wb_data_at:]  # a view: the Python side reads the same slots

        m = meter.model
        F = np.zeros(C.N_FLOAT, dtype=np.float64)
        F[C.CF_TEMP_FRACTION] = cfg.task_temp_fraction
        F[C.CF_DIRTY_FRACTION] = cfg.dirty_fraction
        F[C.CF_WB_RATIO] = cfg.writeback_alloc_ratio
        F[C.CF_SCALE] = meter.scale
        F[C.CF_CHECK_NS] = meter.check_ns
        F[C.CF_IPI_SEND_NS] = m.ipi_send_ns
        F[C.CF_IPI_RECEIVE_NS] = m.ipi_receive_ns
        F[C.CF_DRAIN_PAGE_NS] = m.drain_page_ns

        # I and D: the per-CPU arrays, the Python objects' ones become views of their rows.
        I = np.zeros((C.N_I, n), dtype=np.int64)  # noqa: E741 (the core's name)
        D = np.zeros((C.N_D, n), dtype=np.float64)
        for obj, attr, arr, row in (
            (zone, "pcp_count", I, C.PCP),
            (zone, "pcp_high", I, C.HIGH),
            (zone, "pcp_batch", I, C.BATCH),
            (zone, "vm_stat_diff", I, C.DIFF),
            (zone, "stat_threshold", I, C.THRESHOLD),
            (zone, "stat_folds", I, C.FOLDS),
            (sim, "_folds_seen", I, C.FOLDS_SEEN),
            (meter, "checks", I, C.CHECKS),
            (meter, "safe_checks", I, C.SAFE_CHECKS),
            (meter, "debt", D, C.DEBT),
            (meter, "other_ns", D, C.OTHER_NS),
            (meter, "watermark_ns_by_cpu", D, C.WM_BY_CPU),
        ):
            arr[row] = getattr(obj, attr)
            setattr(obj, attr, arr[row])
        I[C.FOLD_ORDER] = fold_order
        D[C.SNAPSHOT_NS] = meter.snapshot_ns
        D[C.LINE_NS] = meter.line_ns
        D[C.FOLD_LINE_NS] = m.fold_lines * meter.line_ns

        # W and WF: per writer; column k is the flusher's slow path, k + 1 spare.
        W = np.zeros((C.N_W, k + 2), dtype=np.int64)
        WF = np.zeros((C.N_WF, k + 2), dtype=np.float64)
        W[C.WAKE_AT] = _INF
        W[C.RUNNING, :k] = sim._task_running
        W[C.THROTTLED_UNTIL, :k] = sim._throttled_until
        W[C.PAUSE, :k] = sim._pause
        WF[C.LOST_ACC, :k] = sim._lost_acc
        sim._lost_acc = WF[C.LOST_ACC, :k]
        sim._throttled_until = W[C.THROTTLED_UNTIL, :k]
        sim._pause = W[C.PAUSE, :k]
        for t in sim.tasks:
            WF[C.DIRTY_ACC, t.tid] = t.dirty_acc
            WF[C.TEMP_ACC, t.tid] = t.temp_acc

        # RING: interrupt pages, temporary pages, I/O requests (rows of one array).
        RING = np.concatenate([sim._atomic_ring, sim._temp_ring, sim._wb_req])
        a0 = len(sim._atomic_ring)
        t0 = a0 + len(sim._temp_ring)
        sim._atomic_ring = RING[:a0]
        sim._temp_ring = RING[a0:t0]
        sim._wb_req = RING[t0:]

        # The LRU's runs, into a ring (head = newest).
        runs = list(sim.lru.runs)
        cap = _ring_size(max(_LRU_START, 4 * len(runs)))
        LRU = np.zeros((C.N_LRU, cap), dtype=np.int64)  # the runs, and shrink_zone's chunk
        for i, (dirty, count) in enumerate(runs):
            LRU[C.LRU_D, i] = bool(dirty)
            LRU[C.LRU_C, i] = count
        S[C.LRU_LEN] = len(runs)
        S[C.KS_PC] = C.KS_TOP
        S[C.KS_NAP] = 0 if cfg.kswapd_asleep_at_start else 1
        S[C.FL_PC] = C.FL_TOP

        self.S, self.F, self.I, self.D, self.W, self.WF = S, F, I, D, W, WF
        self.RING = RING
        self.LRU = LRU
        self.EV = np.zeros((_EVENTS_START if cfg.record_events else 1, 4), dtype=np.int64)
        sim.events = EventLog(EVENT_NAMES, sim.events)  # the core's rows, made into events on read
        self.IRQ = np.zeros((_CHUNK, n), dtype=_ARRIVALS)
        self.LOCK = np.zeros((_CHUNK, n), dtype=np.uint16)
        self.TASK = np.zeros((_CHUNK, max(1, k)), dtype=_ARRIVALS)
        self.REC = np.zeros((C.N_REC, _CHUNK), dtype=np.int64)
        self.RECF = np.zeros((2, _CHUNK), dtype=np.float64)
        # The scalars stay in the Python objects until run() loads them.

    # -- state in and out ------------------------------------------------------------------
    def _owners(self) -> dict:
        sim = self.sim
        return {"sim": sim, "zone": sim.zone, "kswapd": sim.kswapd, "meter": sim.meter}

    def _load(self) -> None:
        """Copy the Python objects' scalars into S and F."""
        sim = self.sim
        S = self.S
        F = self.F
        owners = self._owners()
        for owner, attr, idx in _INT_SCALARS:
            S[idx] = getattr(owners[owner], attr)
        for owner, attr, idx in _FLOAT_SCALARS:
            F[idx] = getattr(owners[owner], attr)
        for key, idx in _NS_KINDS:
            F[idx] = sim.meter.ns_by_kind[key]
        S[C.T] = sim.t
        S[C.DRAIN_LISTED] = 0  # the next drain looks at every pcp list
        S[C.NORMAL_THRESHOLD] = sim.zone.normal_threshold
        wake_at = sim.kswapd.wake_at
        S[C.KS_WAKE_AT] = _INF if wake_at == math.inf else wake_at
        S[C.LRU_CLEAN] = sim.lru.clean
        S[C.LRU_DIRTY] = sim.lru.dirty
        S[C.EV_TOTAL] = len(sim.events)
        # Folds made outside the core since its last tick (zone functions called between
        # runs): the next tick prices them, as the Python engine's end_tick would.
        I = self.I  # noqa: E741 (the core's name)
        pending = np.flatnonzero(I[C.FOLDS] != I[C.FOLDS_SEEN])
        I[C.FOLDS_TICK] = 0
        I[C.FOLDS_TICK, pending] = I[C.FOLDS, pending] - I[C.FOLDS_SEEN, pending]
        I[C.FOLDED, : len(pending)] = pending
        S[C.N_FOLDED] = len(pending)
        k = sim.config.writer_cpus
        W = self.W
        W[C.RUNNING, :k] = sim._task_running
        W[C.SPINNING, :k] = sim._task_spinning
        W[C.DIRTIED, :k] = sim._dirtied

    def _store(self) -> None:
        """Copy S and F back into the Python objects."""
        from ..sim import _TICK_COUNTS

        sim = self.sim
        s = self.S[: C.FOLD_START].tolist()
        f = self.F.tolist()
        owners = self._owners()
        for owner, attr, idx in _INT_SCALARS:
            old = getattr(owners[owner], attr)
            setattr(owners[owner], attr, bool(s[idx]) if type(old) is bool else s[idx])
        for owner, attr, idx in _FLOAT_SCALARS:
            setattr(owners[owner], attr, f[idx])
        for key, idx in _NS_KINDS:
            sim.meter.ns_by_kind[key] = f[idx]
        sim.t = s[C.T]
        if s[C.HAS_DIFF_LIMIT]:
            sim.zone.diff_limit = self.I[C.DIFF_LIMIT]
        sim.kswapd.wake_at = math.inf if s[C.KS_WAKE_AT] >= _INF else s[C.KS_WAKE_AT]
        # Written by the core only: what the last tick read and counted.
        sim._demand = s[C.DEMAND]
        sim.free_read = s[C.FREE_READ]
        sim.free_read_safe = s[C.FREE_READ_SAFE]
        sim.meter.normal_snapshot = bool(s[C.NORMAL_SNAPSHOT])
        sim.meter.safe_snapshot = bool(s[C.SAFE_SNAPSHOT])
        sim._tick = dict(zip(_TICK_COUNTS, s[C.TK : C.TK + C.N_TICK_COUNTS], strict=True))
        k = sim.config.writer_cpus
        W = self.W
        sim._task_running[:] = W[C.RUNNING, :k] != 0
        sim._task_spinning[:] = W[C.SPINNING, :k] != 0
        sim._dirtied[:] = W[C.DIRTIED, :k] != 0
        sim.lru = RingLRU(s[C.LRU_HEAD], s[C.LRU_LEN], self.LRU, s[C.LRU_CLEAN], s[C.LRU_DIRTY])

    def _flush_events(self) -> None:
        """Move the events the core recorded onto ``sim.events`` (an :class:`EventLog`: they
        become :class:`Event` objects when something reads them)."""
        S = self.S
        nev = int(S[C.EV_N])
        if nev:
            self.sim.events.add_rows(self.EV[:nev])
            S[C.EV_N] = 0

    def _make_room(self) -> None:
        """Grow the event buffer or the LRU ring so that the next tick fits."""
        S = self.S
        self._flush_events()
        row = int(S[C.T] - S[C.BLOCK_START])
        events, runs = C.room_needed(S, self.sim._task_block, row)
        if self.EV.shape[0] < events:
            self.EV = np.zeros((max(2 * self.EV.shape[0], events), 4), dtype=np.int64)
        length = int(S[C.LRU_LEN])
        cap = self.LRU.shape[1]
        if length + runs > cap:
            new = _ring_size(max(2 * cap, 2 * (length + runs)))
            idx = (int(S[C.LRU_HEAD]) + np.arange(length)) & (cap - 1)
            grown = np.zeros((C.N_LRU, new), dtype=np.int64)
            grown[:, :length] = self.LRU[:, idx]
            self.LRU = grown
            S[C.LRU_HEAD] = 0

    def _draw_block(self) -> None:
        """``Simulation._draw_block``: the same numbers from the same Generators
        (:func:`allocsim.workload.arrival_draws`), laid out by numba into kept arrays (a fresh
        array per block costs more in page faults than the draw itself)."""
        from ..sim import _BLOCK

        sim = self.sim
        cfg = sim.config
        t0 = sim.t - sim.t % _BLOCK
        irq_rates, task_rates = sim._block_rates(t0)
        for rng, rates, width, out in (
            (sim._rng_irq, irq_rates, cfg.cpus, self.IRQ),
            (sim._rng_task, task_rates, max(1, cfg.writer_cpus), self.TASK),
        ):
            lay_out_arrivals(out, arrival_draws(rng, rates, width))
        sim._irq_block = self.IRQ
        sim._task_block = self.TASK
        sim._lock_block = self.LOCK = lock_keys(sim._rng_lock, cfg.cpus)
        sim._block_start = t0

    def _state(self) -> State:
        sim = self.sim
        return State(
            self.S,
            self.F,
            self.I,
            self.D,
            self.W,
            self.WF,
            self.RING,
            sim._irq_block,
            sim._task_block,
            sim._lock_block,
            self.LRU,
            self.EV,
            self.REC,
            self.RECF,
        )

    def _save_record(self, first: int, last: int) -> None:
        """Copy the core's record of ticks ``first .. last-1`` into the recorder."""
        cnt = last - first
        if not cnt:
            return
        arrays = self.sim.recorder.arrays
        for name, row in REC_ROWS.items():
            arrays[name][first:last] = self.REC[row, :cnt]
        for name, row in RECF_ROWS.items():
            arrays[name][first:last] = self.RECF[row, :cnt]

    # -- running ---------------------------------------------------------------------------
    def run(self, until: int, progress=None, progress_every: int = 100, wall_budget_s=None):
        """Run to tick ``until`` (or until the wall-clock budget is spent), calling
        ``progress(sim)`` whenever ``sim.t`` is a multiple of ``progress_every``.
        ``sim.recorder`` must already hold ``until`` ticks."""
        from ..sim import _BLOCK

        sim = self.sim
        start = time.perf_counter()
        S = self.S
        self._load()
        try:
            with _gc_paused():
                while sim.t < until:
                    t = sim.t
                    if t - sim._block_start >= _BLOCK or t < sim._block_start:
                        self._draw_block()
                    S[C.BLOCK_START] = sim._block_start
                    S[C.REC_N] = t  # column 0 of REC is this call's first tick
                    stop = min(until, sim._block_start + _BLOCK, t + _CHUNK)
                    if progress is not None:
                        stop = min(stop, (t // progress_every + 1) * progress_every)
                    if wall_budget_s is not None:
                        stop = min(stop, t + 16)  # short calls: the budget is checked often
                    while C.run_ticks(self._state(), stop) == C.RC_ROOM:
                        self._make_room()
                    now = int(S[C.T])
                    self._save_record(t, now)
                    sim.recorder.n = now
                    sim.t = now
                    self._flush_events()
                    if progress is not None and now % progress_every == 0:
                        self._store()
                        progress(sim)
                        self._load()
                    if wall_budget_s is not None and time.perf_counter() - start > wall_budget_s:
                        break
        finally:
            self._store()


# Scalars kept both in a Python object and in S / F: (owner, attribute, index). Booleans go back
# as booleans.
_INT_SCALARS = (
    ("zone", "vm_stat", C.VM_STAT),
    ("zone", "nr_free_pages_buddy", C.BUDDY),
    ("zone", "percpu_drift_mark", C.DRIFT_MARK),
    ("zone", "all_unreclaimable", C.ALL_UNRECLAIMABLE),
    ("zone", "pages_scanned", C.PAGES_SCANNED),
    ("zone", "snapshot_reads", C.ZONE_SNAPSHOT_READS),
    ("sim", "atomic_in_use", C.ATOMIC_IN_USE),
    ("sim", "temp_in_use", C.TEMP_IN_USE),
    ("sim", "writeback_in_flight", C.WB_IN_FLIGHT),
    ("sim", "requests_in_flight", C.REQ_IN_FLIGHT),
    ("sim", "_next_irq_cpu", C.NEXT_IRQ_CPU),
    ("sim", "_in_allocator", C.IN_ALLOCATOR),
    ("sim", "_flusher_wake", C.FL_WAKE),
    ("sim", "events_dropped", C.EV_DROPPED),
    ("kswapd", "on_waitqueue", C.KS_ON_WAITQUEUE),
    ("kswapd", "woken", C.KS_WOKEN),
    ("kswapd", "max_order", C.KS_MAX_ORDER),
    ("kswapd", "state", C.KS_STATE),
    ("meter", "_debt_any", C.DEBT_ANY),
    ("meter", "snapshot_reads", C.M_SNAPSHOT_READS),
    ("meter", "watermark_checks", C.M_WATERMARK_CHECKS),
    ("meter", "drain_ipis", C.M_DRAIN_IPIS),
    ("meter", "threshold_rewrites", C.M_THRESHOLD_REWRITES),
    ("meter", "folds", C.M_FOLDS),
)
_FLOAT_SCALARS = (
    ("meter", "watermark_ns", C.F_WATERMARK_NS),
    ("meter", "total_ns", C.F_TOTAL_NS),
    ("meter", "tick_watermark_ns", C.F_TICK_WATERMARK_NS),
    ("meter", "tick_ns", C.F_TICK_NS),
)
_NS_KINDS = (
    ("watermark", C.F_NS_WATERMARK),
    ("fold", C.F_NS_FOLD),
    ("threshold", C.F_NS_THRESHOLD),
    ("drain", C.F_NS_DRAIN),
)


class RingLRU:
    """``sim.lru`` of a compiled run: the same reads as :class:`allocsim.vmscan.LRU`, from the
    core's ring of runs. It stands for the LRU as it was when the run returned (``sim.lru`` is
    replaced after each ``run``); ``runs`` reads the ring then, so read it before running on."""

    __slots__ = ("clean", "dirty", "_head", "_len", "_ring")

    def __init__(self, head, length, ring, clean, dirty):
        self._head = int(head)
        self._len = int(length)
        self._ring = ring
        self.clean = int(clean)
        self.dirty = int(dirty)

    def __len__(self) -> int:
        return self.clean + self.dirty

    @property
    def runs(self) -> list[list]:
        """The runs ``[dirty, count]`` from the head (newest) to the tail, as ``LRU.runs``."""
        ring = self._ring
        idx = (self._head + np.arange(self._len)) & (ring.shape[1] - 1)
        dirty = ring[C.LRU_D, idx].tolist()
        count = ring[C.LRU_C, idx].tolist()
        return [[bool(d), int(c)] for d, c in zip(dirty, count, strict=True)]
