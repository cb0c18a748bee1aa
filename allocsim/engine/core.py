"""The compiled core: one tick of :class:`allocsim.sim.Simulation` as numba functions.

This module is the fast twin of the readable model. It does what ``sim.py``, ``page_alloc.py``,
``vmscan.py``, ``vmstat.py``, ``page_writeback.py`` and ``cost.py`` do, in the same order, on
arrays, so that a run gives the same series, events and JSON bit for bit
(``tests/test_engine.py`` proves it on a grid of presets, CPU counts, patch sets and seeds).
The Python modules stay the reference: read them to learn the kernel; read this file only to
see how the same steps run without the interpreter.

How the Python model's sleeping code becomes array state:

* A task in ``__alloc_pages_slowpath`` is a generator there. Here it is a *program counter*
  (``W[SP_PC, w]``) with the one local that outlives a sleep (``W[SP_RECLAIMED, w]``, what
  ``try_to_free_pages`` reclaimed before its ``congestion_wait``). ``w`` is the writer's id;
  ``w == writer_cpus`` is the flusher thread's own slow path.
* ``kswapd()`` and ``balance_pgdat()`` are one state machine (``S[KS_PC]``), the flusher
  (``bdi_writeback_thread``) another (``S[FL_PC]``).
* The LRU's runs of clean and dirty pages are a ring buffer (head = newest).
* Floating-point sums use numpy's pairwise summation (:func:`np_sum`), so the cost model adds
  up in the same order as ``np.add.reduce``.
* The workload comes in as arrays (``st.IRQ``, ``st.TASK``, ``st.LOCK``), drawn by
  :mod:`allocsim.workload` from the same Generators as the Python engine's.
* The state is a handful of arrays (:class:`allocsim.engine.driver.State`): ``S`` the integer
  scalars, the configuration and the per-tick counts; ``F`` the floating-point ones; ``I`` and
  ``D`` one row per per-CPU integer / float array (``I[PCP]`` is ``zone.pcp_count``...); ``W``
  and ``WF`` one row per per-writer array; ``RING`` the delayed frees. Few, large arrays keep
  numba's compile time (each function's argument types) small; the names of the rows are the
  constants below.
* A tick costs a few passes over the CPUs, so those passes are kept cheap without changing a
  number: per-CPU work the model does in one vector expression is written as short loops over
  few rows without branches (the compiler vectorises them; slices indexed from 0 spare it the
  checks for negative indices); nothing is allocated per tick (scratch rows instead); empty
  rings and idle CPUs are skipped where their turn would change nothing; integer counts that
  only the cost meter reads are added in whatever pass is at hand.
* The core allocates nothing, so it is compiled without numba's reference counting
  (``_nrt=False``, an option of numba's own jit): with it, every array passed to a function or
  sliced paid an atomic increment and decrement, a third of a 1024-CPU run. Where the work
  depends on random data (which CPUs queue for the lock, which lists hold pages), loops count
  instead of branching; the lock queue is sorted by a radix sort on its 16-bit keys.
* numpy's pairwise sums are walked once per length into a plan (:func:`sum_plan`), and each
  block of up to 128 numbers is added as one vector of eight lanes (:func:`_lanes8_sum`, LLVM
  IR: each lane is one of numpy's eight accumulators, the same IEEE additions in the same
  order). The cost meter prices the few CPUs that folded in a tick apart from the rest
  (:func:`fold_noted`), rather than reading every CPU's fold count.

Only order-0 GFP_KERNEL / GFP_NOFS / GFP_NOIO / GFP_ATOMIC requests reach this code (as in the
model); branches of the kernel functions that such requests can never take are left out and
named where they would be.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# ---------------------------------------------------------------------------------------------
# Constants (the same values as allocsim.constants; numba folds module-level ints)
# ---------------------------------------------------------------------------------------------
ALLOC_WMARK_MIN = 0
ALLOC_WMARK_LOW = 1
ALLOC_WMARK_HIGH = 2
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = 0x03
ALLOC_HARDER = 0x10
ALLOC_HIGH = 0x20
ALLOC_CPUSET = 0x40
# gfp_to_alloc_flags of the requests the model makes
FLAGS_ATOMIC_IRQ = ALLOC_WMARK_MIN | ALLOC_HIGH | ALLOC_HARDER  # GFP_ATOMIC in an interrupt
FLAGS_NOIO_MEMALLOC = ALLOC_WMARK_MIN | ALLOC_CPUSET | ALLOC_NO_WATERMARKS  # reclaim's pageout
FLAGS_WAIT = ALLOC_WMARK_MIN | ALLOC_CPUSET  # GFP_KERNEL / GFP_NOFS / GFP_NOIO, no PF_MEMALLOC
FLAGS_LOW = ALLOC_WMARK_LOW | ALLOC_CPUSET  # the fast path
SWAP_CLUSTER_MAX = 32
STAT_THRESHOLD_MAX = 125
MAX_PAUSE = 100  # balance_dirty_pages: HZ / 10
FLUSH_PAGES_PER_TICK = 256
TICK_NS = 1_000_000.0
INF = 1 << 62  # "never" for wake-up times

KSWAPD_SLEEPING = 0
KSWAPD_NAPPING = 1
KSWAPD_RUNNING = 2

# Events (tracepoints), in the order of EVENT_NAMES in allocsim.engine.driver.
EV_WAKEUP_KSWAPD = 0
EV_KSWAPD_WAKE = 1
EV_KSWAPD_SLEEP = 2
EV_PCPU_DRAIN = 3
EV_DIRECT_RECLAIM = 4

# --- S: integer scalars of the machine ---
T = 0
VM_STAT = 1
BUDDY = 2
DRIFT_MARK = 3
ALL_UNRECLAIMABLE = 4
PAGES_SCANNED = 5
ZONE_SNAPSHOT_READS = 6
NORMAL_THRESHOLD = 7
ATOMIC_IN_USE = 8
TEMP_IN_USE = 9
WB_IN_FLIGHT = 10
REQ_IN_FLIGHT = 11
NEXT_IRQ_CPU = 12
IN_ALLOCATOR = 13
DEMAND = 14
FREE_READ = 15
FREE_READ_SAFE = 16
KS_ON_WAITQUEUE = 17
KS_WOKEN = 18
KS_MAX_ORDER = 19
KS_STATE = 20
KS_WAKE_AT = 21
KS_PC = 22
KS_NAP = 23
FL_WAKE = 24
FL_PC = 25
LRU_HEAD = 26
LRU_LEN = 27
LRU_CLEAN = 28
LRU_DIRTY = 29
EV_N = 30
EV_TOTAL = 31
EV_DROPPED = 32
DEBT_ANY = 33
NORMAL_SNAPSHOT = 34
SAFE_SNAPSHOT = 35
M_SNAPSHOT_READS = 36
M_WATERMARK_CHECKS = 37
M_DRAIN_IPIS = 38
M_THRESHOLD_REWRITES = 39
M_FOLDS = 40
HAS_DIFF_LIMIT = 41
BLOCK_START = 42
REC_N = 43
HAS_BUSY = 44
DRAIN_LISTED = 45  # 1: I[DRAIN_LIST, :S[DRAIN_NLIST]] holds every CPU whose list may have pages
DRAIN_NLIST = 46
IDLE_LEAF_OK = 47  # D[IDLE_LEAF] belongs to the current idle drain price
SUM_PLAN = 48  # np_sum's plan: how many steps I[PLAN_LO] / I[PLAN_M] hold (0: not made yet)
SUM_PLAN_N = 49  # the length of the arrays that plan sums
# --- S: the configuration ---
C_CPUS = 50
C_WRITERS = 51
C_KSWAPD_CPU = 52
C_FLUSHER_CPU = 53
C_IO_IRQ_CPUS = 54
C_WMARK_MIN = 55  # C_WMARK_MIN + ALLOC_WMARK_* is that watermark
C_WMARK_LOW = 56
C_WMARK_HIGH = 57
C_STAT_INTERVAL = 58
C_IO_SLOTS = 59
C_ATOMIC_SLOTS = 60
C_TEMP_SLOTS = 61
C_IO_LATENCY = 62
C_ATOMIC_LIFETIME = 63
C_TEMP_LIFETIME = 64
C_WRITEBACK_LIMIT = 65
C_KSWAPD_SCAN = 66
C_DIRTY_RATIO = 67
C_DIRTY_BACKGROUND_RATIO = 68
C_RECORD_EVENTS = 69
C_MAX_EVENTS = 70
C_COUNTER_AFTER_FREE = 71  # kept for the record: at count level patch 1 changes no number
C_DRIFT_MARK_SNAPSHOT = 72
C_DRAIN_AFTER_RECLAIM = 73
C_PRESSURE_THRESHOLD = 74
C_WATERMARK_OK_SAFE = 75
C_RING_TEMP = 76  # first row of the temporary pages' ring in RING
C_RING_IO = 77  # first row of the I/O completions' ring in RING
C_PRESSURE_VALUE = 78  # calculate_pressure_threshold(zone)
# --- S: this tick's counts (sim._TICK_COUNTS order) ---
TK = 80
TK_ATOMIC_ATTEMPTED = 80
TK_ATOMIC_OK = 81
TK_ATOMIC_FAILED = 82
TK_TASK_ATTEMPTED = 83
TK_TASK_OK = 84
TK_TASK_FAILED = 85
TK_MEMALLOC_ATTEMPTED = 86
TK_MEMALLOC_OK = 87
TK_DIRECT_RECLAIM = 88
TK_DRAIN_ALL_PAGES = 89
TK_RECLAIMED = 90
TK_SCANNED = 91
TK_FOLDS = 92
TK_FLUSHED = 93
N_TICK_COUNTS = 14
# --- S: vectors at the end: where each vmstat_update slot starts in I[FOLD_ORDER], then the
# data pages of each I/O-completion slot ---
FOLD_START = 100  # S[FOLD_START + off], off in [0, stat_interval]; then S[C_WB_DATA + slot]
C_WB_DATA = 99  # S[C_WB_DATA] holds the index where the wb_data slots start
N_FOLDED = 94  # how many CPUs I[FOLDED] holds

# --- F: floating-point scalars and configuration ---
F_TICK_WATERMARK_NS = 0
F_TICK_NS = 1
F_WATERMARK_NS = 2
F_TOTAL_NS = 3
F_NS_WATERMARK = 4
F_NS_FOLD = 5
F_NS_THRESHOLD = 6
F_NS_DRAIN = 7
CF_TEMP_FRACTION = 10
CF_DIRTY_FRACTION = 11
CF_WB_RATIO = 12
CF_SCALE = 13
CF_CHECK_NS = 14
CF_IPI_SEND_NS = 15
CF_IPI_RECEIVE_NS = 16
CF_DRAIN_PAGE_NS = 17
F_DRAIN_IDLE_NS = 18  # what every entry of D[DRAIN_WORK] holds between drains
N_FLOAT = 19

# --- I: per-CPU integer rows ---
PCP = 0  # zone.pcp_count
HIGH = 1  # zone.pcp_high
BATCH = 2  # zone.pcp_batch
DIFF = 3  # zone.vm_stat_diff
THRESHOLD = 4  # zone.stat_threshold
FOLDS = 5  # zone.stat_folds
DIFF_LIMIT = 6
FOLDS_SEEN = 7
FOLDS_TICK = 8  # this tick's folds by CPU (0 but for the CPUs in I[FOLDED, :S[N_FOLDED]])
CHECKS = 9  # meter.checks
SAFE_CHECKS = 10  # meter.safe_checks
NEED_TASK = 11
GOT_IRQ = 12
TAKE_T = 13
LEFT_I = 14
LEFT_T = 15
SHORT = 16
SIMPLE = 17
SEG = 18
FOLD_ORDER = 19
DRAIN_CPUS = 20  # drain_all_pages: the CPUs whose lists hold pages
SUM_LO = 21  # np_sum's stack
SUM_N = 22
SUM_STATE = 23
DRAIN_LIST = 24  # the CPUs whose lists grew since the last drain (see S[DRAIN_LISTED])
DRAIN_MARK = 25  # 1 for the CPUs in that list
DIRTY64 = 26  # drain_all_pages: 1 for each group of 64 CPUs where a price is not the idle one
PLAN_LO = 27  # np_sum's plan, step by step: a block from PLAN_LO of PLAN_M elements, or (PLAN_M
PLAN_M = 28  # 0) adding the last two sums
FOLDED = 29  # the CPUs that folded their diff into the counter this tick (S[N_FOLDED] of them)
N_I = 30
# --- D: per-CPU float rows ---
DEBT = 0  # meter.debt
BUSY = 1
OTHER_NS = 2  # meter.other_ns
WM_BY_CPU = 3  # meter.watermark_ns_by_cpu
SNAPSHOT_NS = 4  # meter.snapshot_ns
LINE_NS = 5  # meter.line_ns
FOLD_LINE_NS = 6  # fold_lines * line_ns
WM = 7
TICK_COST = 8
WORK = 9  # the fold prices, 0.0 but for this tick's folded CPUs
KEYS = 10
DRAIN_WORK = 11  # drain_all_pages' prices: all F[F_DRAIN_IDLE_NS] between calls
KEYS_TMP = 12  # scratch of sort_by_key
SUM_PARTIAL = 13  # np_sum's stack of partial sums
IDLE_LEAF = 14  # IDLE_LEAF[m]: _block_sum of m idle prices (-1.0: not known yet)
N_D = 15
# --- W / WF: per-writer rows (k + 2 columns: column k is the flusher's slow path) ---
RUNNING = 0
SPINNING = 1
THROTTLED_UNTIL = 2
PAUSE = 3
DIRTIED = 4
SP_PC = 5
SP_RECLAIMED = 6
WAKE_AT = 7
OTHER_KIND = 8
OTHER_ID = 9
OTHER_ORDER = 10  # the others' order: sort_by_key of OTHER_SORTED_KEY
OTHER_ORDER_TMP = 11
OTHER_COUNT = 12
N_W = 13
LOST_ACC = 0
DIRTY_ACC = 1
TEMP_ACC = 2
OTHER_KEY = 3
OTHER_SORTED_KEY = 4
OTHER_KEY_TMP = 5
N_WF = 6
# --- the LRU ring, LRU[LRU_D, j] and LRU[LRU_C, j]; two more rows are shrink_zone's chunk ---
LRU_D = 0
LRU_C = 1
ISO_D = 2
ISO_C = 3
N_LRU = 4

# Program counters
SP_RESTART = 0  # __alloc_pages_slowpath from the top ("restart:")
SP_AFTER_RECLAIM = 1  # try_to_free_pages returns (after its congestion_wait, if any)
SP_REBALANCE = 2  # "rebalance:" after congestion_wait(HZ/50)
KS_TOP = 0  # kswapd(): the top of its loop
KS_AFTER_NAP = 1  # back from schedule_timeout(HZ/10)
KS_AFTER_SLEEP = 2  # back from schedule()
KS_RUN = 3  # off the wait queue, into balance_pgdat
KS_BALANCE = 4  # in balance_pgdat's loop
FL_TOP = 0  # bdi_writeback_thread: the top of its loop
FL_SLOWPATH = 1  # asleep in __alloc_pages_slowpath for a request page

# run_ticks return codes
RC_DONE = 0
RC_ROOM = 1  # the event or LRU buffer needs room before the next tick

_jit = njit(cache=True, nogil=True, _nrt=False)


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------
@intrinsic
def _lanes8_sum(typingctx, a, lo, count):
    """numpy's pairwise_sum of ``a[lo : lo + 8 * count]`` (``count >= 1``): its eight
    accumulators, ``r[j] = ((a[lo + j] + a[lo + j + 8]) + a[lo + j + 16]) + ...``, then
    ``((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))``.

    The eight accumulators are the eight lanes of one vector of doubles, so one vector add does
    eight of numpy's additions: each lane sees the same IEEE additions in the same order, so
    the sum is numpy's bit for bit. (Written as LLVM IR because the compiler may not do this by
    itself: to it, eight scalar sums are eight dependency chains, and it keeps them scalar; a
    third of the time.) ``a`` must be a contiguous float64 array."""
    if not (
        isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" and a.dtype == types.float64
    ):
        return None
    sig = types.float64(a, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        arr, lo_v, cnt = args
        data = context.make_array(signature.args[0])(context, builder, value=arr).data
        lanes = ir.VectorType(ir.DoubleType(), 8)
        vec = builder.bitcast(builder.gep(data, [lo_v]), lanes.as_pointer())
        acc = cgutils.alloca_once_value(builder, builder.load(vec, align=8))
        one = ir.Constant(cnt.type, 1)
        with cgutils.for_range_slice(builder, one, cnt, one) as (i, _):
            row = builder.load(builder.gep(vec, [i]), align=8)
            builder.store(builder.fadd(builder.load(acc), row), acc)  # no fast-math: IEEE adds
        r = builder.load(acc)
        e = [builder.extract_element(r, ir.Constant(ir.IntType(32), j)) for j in range(8)]
        left = builder.fadd(builder.fadd(e[0], e[1]), builder.fadd(e[2], e[3]))
        right = builder.fadd(builder.fadd(e[4], e[5]), builder.fadd(e[6], e[7]))
        return builder.fadd(left, right)

    return sig, codegen


@njit(cache=True, nogil=True, inline="always", _nrt=False)
def _block_sum(a, lo, n):
    """numpy's pairwise_sum on a block of at most 128 elements of a contiguous array."""
    if n < 8:
        res = -0.0
        for i in range(n):
            res += a[lo + i]
        return res
    m = n - n % 8
    res = _lanes8_sum(a, lo, m // 8)
    for j in range(lo + m, lo + n):
        res += a[j]
    return res


@_jit
def np_sum(a, S, I, D):
    """``float(np.add.reduce(a))`` for a 1-D float64 array, in numpy's pairwise order.

    numpy sums blocks of up to 128 elements with eight accumulators and splits longer runs in
    halves (rounded down to a multiple of 8), adding the two halves' sums (``pairwise_sum``,
    numpy's ``loops_utils.h``). Floating-point addition is not associative, so the compiled
    cost model adds in the same order to give the same bits. Which blocks and which additions
    depends only on the length, so that tree is walked once (:func:`sum_plan`) and each sum
    follows its steps.
    """
    return _np_sum_walk(a, S, I, D, LEAVES_SUMMED)


@_jit
def sum_plan(S, I, n):
    """np_sum's plan for arrays of ``n`` (> 128) elements, into ``I[PLAN_LO]`` and
    ``I[PLAN_M]``: numpy's pairwise_sum tree in post-order, a step per block (start, length)
    and per addition of two sums (length 0). A tree of ``n`` elements has fewer than ``n / 32``
    blocks, so the plan fits in a row. The walk keeps its stack in rows of I (numba caches
    recursive functions badly)."""
    los = I[SUM_LO]
    ns = I[SUM_N]
    states = I[SUM_STATE]
    plan_lo = I[PLAN_LO]
    plan_m = I[PLAN_M]
    steps = 0
    top = 0
    los[0] = 0
    ns[0] = n
    states[0] = 0
    while top >= 0:
        lo = los[top]
        m = ns[top]
        if m <= 128:
            plan_lo[steps] = lo
            plan_m[steps] = m
            steps += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if states[top] == 0:  # push the left half
            states[top] = 1
            top += 1
            los[top] = lo
            ns[top] = half
            states[top] = 0
        elif states[top] == 1:  # then the right half
            states[top] = 2
            top += 1
            los[top] = lo + half
            ns[top] = m - half
            states[top] = 0
        else:  # both done: left + right
            plan_lo[steps] = 0
            plan_m[steps] = 0
            steps += 1
            top -= 1
    S[SUM_PLAN] = steps
    S[SUM_PLAN_N] = n
    return steps


LEAVES_SUMMED = 0  # _np_sum_walk: every block is added up
LEAVES_IDLE = 1  # a block I[DIRTY64] does not mark holds the idle drain price everywhere
LEAVES_ZERO = 2  # a block I[DIRTY64] does not mark holds +0.0 everywhere


@njit(cache=True, nogil=True, inline="always", _nrt=False)
def _np_sum_walk(a, S, I, D, leaves):
    """:func:`np_sum`. With ``LEAVES_IDLE``, a block in which ``I[DIRTY64]`` marks no group of
    64 elements holds the idle drain price in every element, and its sum is looked up in
    ``D[IDLE_LEAF]`` (by length) rather than added again: the same bits, since it is the same
    sum of the same numbers. With ``LEAVES_ZERO`` such a block holds +0.0 everywhere, and its
    sum is +0.0 (eight lanes of +0.0 added up)."""
    n = len(a)
    if n <= 128:
        return 0.0 + _block_sum(a, 0, n)
    steps = S[SUM_PLAN]
    if steps == 0 or S[SUM_PLAN_N] != n:
        steps = sum_plan(S, I, n)
    dirty64 = I[DIRTY64]
    leaf = D[IDLE_LEAF]
    plan_lo = I[PLAN_LO]
    plan_m = I[PLAN_M]
    sums = D[SUM_PARTIAL]
    top = 0
    for x in range(steps):
        m = plan_m[x]
        if m == 0:  # the two sums on top: left + right
            top -= 1
            sums[top - 1] = sums[top - 1] + sums[top]
            continue
        lo = plan_lo[x]
        clean = leaves != LEAVES_SUMMED
        if clean:
            for g in range(lo // 64, (lo + m + 63) // 64):
                if dirty64[g]:
                    clean = False
                    break
        if clean and leaves == LEAVES_ZERO:
            sums[top] = 0.0
        elif clean:
            v = leaf[m]
            if v < 0.0:
                v = _block_sum(a, lo, m)
                leaf[m] = v
            sums[top] = v
        else:
            sums[top] = _block_sum(a, lo, m)
        top += 1
    return 0.0 + sums[0]


@_jit
def clamp0(x):
    return x if x > 0 else 0


@_jit
def wmark_ok(free, mark, alloc_flags):
    """``__zone_watermark_ok`` (order 0, no lowmem_reserve) on an already-read count."""
    m = mark
    if alloc_flags & ALLOC_HIGH:
        m -= m // 2
    if alloc_flags & ALLOC_HARDER:
        m -= m // 4
    return free > m


# ---------------------------------------------------------------------------------------------
# Events and meters
# ---------------------------------------------------------------------------------------------
@_jit
def event(S, EV, code, cpu, value):
    """``Simulation.event``: a tracepoint hit, kept while fewer than MAX_EVENTS are stored."""
    if not S[C_RECORD_EVENTS]:
        return
    if S[EV_TOTAL] < S[C_MAX_EVENTS]:
        i = S[EV_N]
        EV[i, 0] = S[T]
        EV[i, 1] = code
        EV[i, 2] = cpu
        EV[i, 3] = value
        S[EV_N] = i + 1
        S[EV_TOTAL] += 1
    else:
        S[EV_DROPPED] += 1


@_jit
def charge(I, safe, cpu, n):
    """``CostMeter.check(cpu, n, safe)`` for one CPU."""
    if n:
        I[SAFE_CHECKS if safe else CHECKS, cpu] += n


# ---------------------------------------------------------------------------------------------
# vmstat and the pcp / buddy lists (mm/vmstat.c, mm/page_alloc.c; counting zone)
# ---------------------------------------------------------------------------------------------
@_jit
def mod_zone_page_state(S, I, cpu, delta):
    """``__mod_zone_page_state(zone, NR_FREE_PAGES, delta)`` on ``cpu``."""
    x = I[DIFF, cpu] + delta
    t = I[THRESHOLD, cpu]
    if x > t or x < -t:
        S[VM_STAT] += x
        fold_noted(S, I, cpu)
        x = 0
    I[DIFF, cpu] = x


@_jit
def fold_noted(S, I, cpu):
    """``cpu`` wrote its diff into the counter: ``zone.stat_folds[cpu] += 1``, and the
    tick's fold count by CPU (the cost meter prices the few CPUs that folded, end_tick)."""
    I[FOLDS, cpu] += 1
    if I[FOLDS_TICK, cpu] == 0:
        I[FOLDED, S[N_FOLDED]] = cpu
        S[N_FOLDED] += 1
    I[FOLDS_TICK, cpu] += 1


@_jit
def snapshot(S, I):
    """``zone_page_state_snapshot``: the counter plus every CPU's diff, clamped."""
    S[ZONE_SNAPSHOT_READS] += 1
    x = S[VM_STAT]
    diff = I[DIFF]
    for i in range(S[C_CPUS]):
        x += diff[i]
    return clamp0(x)


@_jit
def pcp_grew(S, I, cpu):
    """Note that ``cpu``'s pcp list grew, so that the next drain_all_pages looks at it (when
    it looks only at the CPUs noted since the last one)."""
    if S[DRAIN_LISTED] and not I[DRAIN_MARK, cpu]:
        I[DRAIN_MARK, cpu] = 1
        I[DRAIN_LIST, S[DRAIN_NLIST]] = cpu
        S[DRAIN_NLIST] += 1


@_jit
def rmqueue_bulk(S, I, cpu, count):
    """Move up to ``count`` pages from the buddy lists to ``cpu``'s pcp list."""
    got = count if count < S[BUDDY] else S[BUDDY]
    if got:
        S[BUDDY] -= got
        I[PCP, cpu] += got
        pcp_grew(S, I, cpu)
        mod_zone_page_state(S, I, cpu, -got)
    return got


@_jit
def free_pcppages_bulk(S, I, cpu, count):
    """Return ``count`` pages of ``cpu``'s pcp list to the buddy lists. At count level the
    counter update before or after the linking (patch 1) ends in the same state."""
    have = I[PCP, cpu]
    if count > have:
        count = have
    if count <= 0:
        return 0
    S[ALL_UNRECLAIMABLE] = 0
    S[PAGES_SCANNED] = 0
    # PATCH(counter_after_free): not read here. Whether NR_FREE_PAGES rises before or after the
    # pages are linked (72853e2) shows only to a reader inside the loop (allocsim.window); the
    # tick's readers see its start, so both orders end in this state.
    S[BUDDY] += count
    I[PCP, cpu] -= count
    mod_zone_page_state(S, I, cpu, count)
    return count


@_jit
def free_hot_cold_page_n(S, I, cpu, nr):
    """``free_hot_cold_page`` ``nr`` times on ``cpu``, flushing a batch at ``high``."""
    if nr <= 0:
        return 0
    pcp_grew(S, I, cpu)
    high = I[HIGH, cpu]
    batch = I[BATCH, cpu]
    flushed = 0
    count = I[PCP, cpu]
    while nr > 0:
        step = high - count
        if step < 1:
            step = 1
        if step > nr:
            I[PCP, cpu] += nr
            break
        I[PCP, cpu] += step
        nr -= step
        flushed += free_pcppages_bulk(S, I, cpu, batch)
        count = I[PCP, cpu]
    return flushed


@_jit
def get_page_from_freelist(S, I, cpu, alloc_flags, nr):
    """Check the watermark (``cpu`` pays, ``nr`` times), then take ``nr`` pages from the pcp
    list, refilling it by ``batch`` (``buffered_rmqueue`` ``nr`` times). Returns pages had."""
    if not alloc_flags & ALLOC_NO_WATERMARKS:
        charge(I, False, cpu, nr)
        mark = S[C_WMARK_MIN + (alloc_flags & ALLOC_WMARK_MASK)]
        if not wmark_ok(S[FREE_READ], mark, alloc_flags):
            return 0
    got = 0
    while got < nr:
        avail = I[PCP, cpu]
        if avail == 0:
            if rmqueue_bulk(S, I, cpu, I[BATCH, cpu]) == 0:
                break
            avail = I[PCP, cpu]
        take = nr - got
        if avail < take:
            take = avail
        I[PCP, cpu] -= take
        got += take
    return got


@_jit
def wakeup_kswapd(S, EV):
    """``wakeup_kswapd``'s decision (mm/vmscan.c), waking kswapd if it must. Returns which check
    the callers pay for, once per allocation: 0 the ordinary one, 1 the safe one (2.6.38),
    -1 none."""
    active = S[KS_ON_WAITQUEUE] and not S[KS_WOKEN]
    # PATCH(watermark_ok_safe): the wait queue first, then the safe check.
    if S[C_WATERMARK_OK_SAFE]:
        if not active:
            return -1
        kind = 1
        ok = wmark_ok(S[FREE_READ_SAFE], S[C_WMARK_LOW], 0)
    else:
        kind = 0
        ok = wmark_ok(S[FREE_READ], S[C_WMARK_LOW], 0)
    if not ok and active:
        # wake_up_interruptible(&pgdat->kswapd_wait): kswapd runs from the next tick.
        if not S[KS_WOKEN]:
            event(S, EV, EV_WAKEUP_KSWAPD, -1, 0)
        S[KS_WOKEN] = 1
        if S[T] + 1 < S[KS_WAKE_AT]:
            S[KS_WAKE_AT] = S[T] + 1
    return kind


@_jit
def alloc_pages_nodemask(S, I, EV, cpu, slow_flags, nr):
    """``__alloc_pages_nodemask`` for a caller that never sleeps (interrupts, reclaim's own
    allocations): LOW, then wake kswapd and try with ``slow_flags`` (gfp_to_alloc_flags)."""
    got = get_page_from_freelist(S, I, cpu, FLAGS_LOW, nr)
    if got == nr:
        return got
    kind = wakeup_kswapd(S, EV)
    if kind >= 0:
        charge(I, kind == 1, cpu, nr - got)
    got += get_page_from_freelist(S, I, cpu, slow_flags & ~ALLOC_NO_WATERMARKS, nr - got)
    if got < nr and slow_flags & ALLOC_NO_WATERMARKS:
        got += get_page_from_freelist(S, I, cpu, ALLOC_NO_WATERMARKS, nr - got)
    return got


@_jit
def drain_all_pages(S, F, I, D, EV, cpu):
    """Patch 3's ``drain_all_pages`` from ``cpu``: price the IPIs, flush every pcp list."""
    n = S[C_CPUS]
    k = F[CF_SCALE]
    # CostMeter.drain_all_pages(cpu, pcp_count.copy()), priced from each list before it is
    # drained (CountingZone.drain_all_counted). Every CPU but the sender pays
    # k * (ipi_receive_ns + pages * drain_page_ns); a CPU with an empty list (most of them,
    # when drains come one after another) pays the same "idle" price. D[DRAIN_WORK] holds that
    # price everywhere between calls, so only the sender and the CPUs with pages are written,
    # and put back afterwards.
    S[M_DRAIN_IPIS] += n - 1
    recv = F[CF_IPI_RECEIVE_NS]
    per_page = F[CF_DRAIN_PAGE_NS]
    idle = k * (recv + 0 * per_page)
    work = D[DRAIN_WORK]
    if idle != F[F_DRAIN_IDLE_NS]:  # first call (or another price): refill the row
        for i in range(n):
            work[i] = idle
        F[F_DRAIN_IDLE_NS] = idle
        S[IDLE_LEAF_OK] = 0
    pcp = I[PCP]
    busy = I[DRAIN_CPUS]
    nb = 0
    # The lists that may have pages: those that grew since the last drain, when that is known
    # (drains come in bursts, and little is freed between them); otherwise all of them. The
    # order of the flushes below does not matter: each touches its own CPU's list and diff,
    # and the shared counts are sums.
    listed = I[DRAIN_LIST]
    mark = I[DRAIN_MARK]
    if S[DRAIN_LISTED]:
        for x in range(S[DRAIN_NLIST]):
            i = listed[x]
            mark[i] = 0
            if pcp[i]:
                busy[nb] = i
                nb += 1
    else:
        for x in range(S[DRAIN_NLIST]):
            mark[listed[x]] = 0
        for i in range(n):  # without a branch: which lists hold pages is anyone's guess
            busy[nb] = i
            nb += pcp[i] != 0
    S[DRAIN_NLIST] = 0
    S[DRAIN_LISTED] = 1  # every list is empty below: from here on, the growing ones are noted
    own = pcp[cpu]
    # others.max(): the largest price among the CPUs but the sender (0.0 if there are none)
    biggest = 0.0
    if n - 1 - nb + (1 if own else 0) > 0 and idle > biggest:
        biggest = idle
    total = 0
    for x in range(nb):
        i = busy[x]
        c = pcp[i]
        w = k * (recv + c * per_page)
        work[i] = w
        if i != cpu and w > biggest:
            biggest = w
        total += c
        pcp[i] = 0
        S[BUDDY] += c
        mod_zone_page_state(S, I, i, c)
    work[cpu] = k * ((n - 1) * F[CF_IPI_SEND_NS] + own * per_page) + biggest
    # meter.other_ns += work (a pass the compiler vectorises)
    other = D[OTHER_NS]
    for i in range(n):
        other[i] += work[i]
    # np.add.reduce(work), the idle leaves of its pairwise sum looked up: the CPUs whose price
    # is not the idle one are marked by groups of 64
    dirty64 = I[DIRTY64]
    for x in range(nb):
        dirty64[busy[x] // 64] = 1
    dirty64[cpu // 64] = 1
    if not S[IDLE_LEAF_OK]:
        leaf = D[IDLE_LEAF]
        for m in range(129 if n > 128 else 0):
            leaf[m] = -1.0
        S[IDLE_LEAF_OK] = 1
    F[F_NS_DRAIN] += _np_sum_walk(work, S, I, D, LEAVES_IDLE)
    for x in range(nb):
        dirty64[busy[x] // 64] = 0
        work[busy[x]] = idle
    dirty64[cpu // 64] = 0
    work[cpu] = idle
    if total:
        S[ALL_UNRECLAIMABLE] = 0
        S[PAGES_SCANNED] = 0
    S[TK_DRAIN_ALL_PAGES] += 1
    event(S, EV, EV_PCPU_DRAIN, cpu, total)
    return total


# ---------------------------------------------------------------------------------------------
# The LRU (vmscan.LRU): runs of [dirty, count] in a ring; logical index 0 is the head (newest)
# ---------------------------------------------------------------------------------------------
@_jit
def lru_add_head(S, LRU, dirty, n):
    """New page-cache pages (``lru_cache_add``)."""
    if n <= 0:
        return
    S[LRU_DIRTY if dirty else LRU_CLEAN] += n
    mask = LRU.shape[1] - 1
    if S[LRU_LEN]:
        j = S[LRU_HEAD] & mask
        if LRU[LRU_D, j] == dirty:
            LRU[LRU_C, j] += n
            return
    j = (S[LRU_HEAD] - 1) & mask
    S[LRU_HEAD] = j
    S[LRU_LEN] += 1
    LRU[LRU_D, j] = dirty
    LRU[LRU_C, j] = n


@_jit
def lru_add_tail(S, LRU, dirty, n):
    """Pages whose writeback completed (``rotate_reclaimable_page``)."""
    if n <= 0:
        return
    S[LRU_DIRTY if dirty else LRU_CLEAN] += n
    mask = LRU.shape[1] - 1
    if S[LRU_LEN]:
        j = (S[LRU_HEAD] + S[LRU_LEN] - 1) & mask
        if LRU[LRU_D, j] == dirty:
            LRU[LRU_C, j] += n
            return
    j = (S[LRU_HEAD] + S[LRU_LEN]) & mask
    S[LRU_LEN] += 1
    LRU[LRU_D, j] = dirty
    LRU[LRU_C, j] = n


@_jit
def lru_delete(S, LRU, i):
    """Remove logical run ``i``; the runs behind it (towards the tail) move up one."""
    mask = LRU.shape[1] - 1
    head = S[LRU_HEAD]
    last = S[LRU_LEN] - 1
    for x in range(i, last):
        a = (head + x) & mask
        b = (head + x + 1) & mask
        LRU[LRU_D, a] = LRU[LRU_D, b]
        LRU[LRU_C, a] = LRU[LRU_C, b]
    S[LRU_LEN] = last


@_jit
def lru_isolate_dirty_oldest(S, LRU, n):
    """``LRU.isolate_dirty_oldest``: the flusher takes the oldest dirty pages off the list."""
    mask = LRU.shape[1] - 1
    taken = 0
    i = S[LRU_LEN] - 1
    while taken < n and i >= 0:
        j = (S[LRU_HEAD] + i) & mask
        if LRU[LRU_D, j]:
            count = LRU[LRU_C, j]
            k = n - taken
            if count < k:
                k = count
            taken += k
            if k == count:
                lru_delete(S, LRU, i)
                # clean runs either side of the removed one now touch: merge them
                if 0 < i < S[LRU_LEN]:
                    a = (S[LRU_HEAD] + i - 1) & mask
                    b = (S[LRU_HEAD] + i) & mask
                    if LRU[LRU_D, a] == LRU[LRU_D, b]:
                        LRU[LRU_C, a] += LRU[LRU_C, b]
                        lru_delete(S, LRU, i)
            else:
                LRU[LRU_C, j] -= k
        i -= 1
    S[LRU_DIRTY] -= taken
    return taken


# ---------------------------------------------------------------------------------------------
# Writeback (sim.start_writeback*, vmscan.pageout, page_writeback)
# ---------------------------------------------------------------------------------------------
@_jit
def start_writeback(S, RING, nr, requests):
    """``Simulation.start_writeback``: the I/O completes ``io_latency_ms`` later; its request
    pages are freed by the completion interrupts of the last ``io_irq_cpus`` CPUs in turn."""
    slot = (S[T] + S[C_IO_LATENCY]) % S[C_IO_SLOTS]
    row = S[C_RING_IO] + slot
    k = S[C_IO_IRQ_CPUS]
    base = S[C_CPUS] - k
    first = S[NEXT_IRQ_CPU]
    per = requests // k
    extra = requests % k
    if per:
        for i in range(base, S[C_CPUS]):
            RING[row, i] += per
    for i in range(extra):
        RING[row, base + (first + i) % k] += 1
    S[NEXT_IRQ_CPU] = (first + extra) % k
    S[S[C_WB_DATA] + slot] += nr
    S[WB_IN_FLIGHT] += nr
    S[REQ_IN_FLIGHT] += requests


@_jit
def start_writeback_with(S, F, I, RING, cpu, requests):
    """``Simulation.start_writeback_with``: send what request pages already had carry."""
    ratio = F[CF_WB_RATIO]
    carry = int(requests / ratio) if ratio else requests
    nr = carry
    room = S[C_WRITEBACK_LIMIT] - S[WB_IN_FLIGHT]
    if room < nr:
        nr = room
    if S[LRU_DIRTY] < nr:
        nr = S[LRU_DIRTY]
    if nr <= 0:  # nothing to carry after all: the pages go back
        free_hot_cold_page_n(S, I, cpu, requests)
        return 0
    start_writeback(S, RING, nr, requests)
    return nr


@_jit
def pageout(S, F, I, EV, RING, cpu, nr, pf_memalloc):
    """``vmscan.pageout``: start writeback of ``nr`` dirty pages; return how many started."""
    room = S[C_WRITEBACK_LIMIT] - S[WB_IN_FLIGHT]
    if room <= 0 or nr <= 0:
        return 0
    want = nr if nr < room else room
    ratio = F[CF_WB_RATIO]
    if ratio == 0:
        start_writeback(S, RING, want, 0)
        return want
    need = int(np.ceil(want * ratio))
    flags = FLAGS_NOIO_MEMALLOC if pf_memalloc else FLAGS_WAIT
    got = alloc_pages_nodemask(S, I, EV, cpu, flags, need)
    if pf_memalloc:
        S[TK_MEMALLOC_ATTEMPTED] += need
        S[TK_MEMALLOC_OK] += got
    if got == need:
        started = want
    else:
        started = int(got / ratio)
        if want < started:
            started = want
    used = int(np.ceil(started * ratio))
    if got > used:  # request pages that cannot carry a whole page go straight back
        free_hot_cold_page_n(S, I, cpu, got - used)
    if started:
        start_writeback(S, RING, started, used)
    return started


@_jit
def dirty_limits(S):
    """``global_dirty_limits``: (background, dirty) thresholds, on the drifting counter."""
    available = clamp0(S[VM_STAT]) + S[LRU_CLEAN] + S[LRU_DIRTY] + 1
    dirty = S[C_DIRTY_RATIO] * available // 100
    background = S[C_DIRTY_BACKGROUND_RATIO] * available // 100
    if background >= dirty:
        background = dirty // 2
    return background, dirty


# ---------------------------------------------------------------------------------------------
# Reclaim (mm/vmscan.c)
# ---------------------------------------------------------------------------------------------
@_jit
def shrink_zone(S, F, I, EV, RING, LRU, cpu, nr_to_reclaim, nr_to_scan):
    """``vmscan.shrink_zone``: scan the LRU tail in chunks; returns (reclaimed, scanned,
    writeback started). Each chunk is taken off the list first (isolate_lru_pages), then its
    runs are freed (clean) or sent to pageout (dirty; what is not sent goes back to the head)."""
    reclaimed = 0
    scanned = 0
    started_total = 0
    mask = LRU.shape[1] - 1
    # isolate_tail's chunk: at most SWAP_CLUSTER_MAX runs of at least one page each (kept in
    # two spare rows of the ring: an allocation per call cost more than the scan)
    iso_d = LRU[ISO_D]
    iso_c = LRU[ISO_C]
    while scanned < nr_to_scan and reclaimed < nr_to_reclaim and S[LRU_CLEAN] + S[LRU_DIRTY]:
        chunk = nr_to_scan - scanned
        if chunk > SWAP_CLUSTER_MAX:
            chunk = SWAP_CLUSTER_MAX
        runs = 0
        left = chunk
        while left > 0 and S[LRU_LEN]:
            j = (S[LRU_HEAD] + S[LRU_LEN] - 1) & mask
            dirty = LRU[LRU_D, j]
            count = LRU[LRU_C, j]
            k = left if left < count else count
            if k == count:
                S[LRU_LEN] -= 1
            else:
                LRU[LRU_C, j] -= k
            S[LRU_DIRTY if dirty else LRU_CLEAN] -= k
            iso_d[runs] = dirty
            iso_c[runs] = k
            runs += 1
            left -= k
        for r in range(runs):
            n = iso_c[r]
            scanned += n
            if not iso_d[r]:
                free_hot_cold_page_n(S, I, cpu, n)  # free_page_list: cold pagevecs
                reclaimed += n
                continue
            started = pageout(S, F, I, EV, RING, cpu, n, True)
            started_total += started
            lru_add_head(S, LRU, 1, n - started)  # keep: back on the list, still dirty
    S[PAGES_SCANNED] += scanned
    S[TK_RECLAIMED] += reclaimed
    S[TK_SCANNED] += scanned
    return reclaimed, scanned, started_total


@_jit
def slowpath(st, w, cpu, pc):
    """``__alloc_pages_slowpath`` (order 0, GFP_KERNEL or GFP_NOFS) for thread ``w`` from
    program counter ``pc``. Returns 0 when it has a page, else the milliseconds it sleeps;
    ``W[SP_PC, w]`` then says where it resumes.

    Never taken for these requests, so not here: ALLOC_NO_WATERMARKS (the caller is not
    PF_MEMALLOC when it enters), the atomic and PF_MEMALLOC exits, and should_alloc_retry
    failing (order 0 retries for ever).
    """
    S = st.S
    I = st.I
    W = st.W
    EV = st.EV
    while True:
        if pc == SP_RESTART:
            kind = wakeup_kswapd(S, EV)
            if kind >= 0:
                charge(I, kind == 1, cpu, 1)
            if get_page_from_freelist(S, I, cpu, FLAGS_WAIT, 1):
                return 0
            pc = SP_REBALANCE
        if pc == SP_REBALANCE:
            # __alloc_pages_direct_reclaim -> try_to_free_pages
            S[TK_DIRECT_RECLAIM] += 1
            event(S, EV, EV_DIRECT_RECLAIM, cpu, 0)
            reclaimed, scanned, started = shrink_zone(
                S, st.F, I, EV, st.RING, st.LRU, cpu, SWAP_CLUSTER_MAX, 4 * SWAP_CLUSTER_MAX
            )
            # Simulation.note_reclaim_pass: the writer on this CPU (if any) spins or not
            if cpu < S[C_WRITERS]:
                W[SPINNING, cpu] = reclaimed + started == 0
            W[SP_RECLAIMED, w] = reclaimed
            if scanned and reclaimed < SWAP_CLUSTER_MAX:
                W[SP_PC, w] = SP_AFTER_RECLAIM
                return 100  # congestion_wait(BLK_RW_ASYNC, HZ/10)
        # try_to_free_pages returns
        reclaimed = W[SP_RECLAIMED, w]
        if reclaimed:
            progress = reclaimed
        elif S[PAGES_SCANNED] < 6 * (S[LRU_CLEAN] + S[LRU_DIRTY]):  # zone_reclaimable
            progress = 1
        else:
            progress = 0
        page = 0
        # PATCH(drain_after_reclaim): 9ee493c: no progress returns at once; a failed attempt
        # drains every pcp list and tries once more.
        if S[C_DRAIN_AFTER_RECLAIM]:
            if progress:
                page = get_page_from_freelist(S, I, cpu, FLAGS_WAIT, 1)
                if not page:
                    drain_all_pages(S, st.F, I, st.D, EV, cpu)
                    page = get_page_from_freelist(S, I, cpu, FLAGS_WAIT, 1)
        elif progress:
            page = get_page_from_freelist(S, I, cpu, FLAGS_WAIT, 1)
        if page:
            return 0
        if not progress:
            # no OOM killer: the last try at HIGH, a jiffy's sleep, then "restart"
            if get_page_from_freelist(S, I, cpu, ALLOC_WMARK_HIGH | ALLOC_CPUSET, 1):
                return 0
            W[SP_PC, w] = SP_RESTART
            return 1
        W[SP_PC, w] = SP_REBALANCE
        return 20  # congestion_wait(BLK_RW_ASYNC, HZ/50)


# ---------------------------------------------------------------------------------------------
# Writer tasks
# ---------------------------------------------------------------------------------------------
@_jit
def task_page(S, F, W, WF, RING, LRU, tid, nr):
    """``Simulation._task_page``: temporary pages (freed later) or page cache (LRU head)."""
    frac = F[CF_TEMP_FRACTION]
    temp = 0
    if frac:
        WF[TEMP_ACC, tid] += nr * frac
        temp = int(WF[TEMP_ACC, tid])
        WF[TEMP_ACC, tid] -= temp
    if temp:
        slot = (S[T] + S[C_TEMP_LIFETIME]) % S[C_TEMP_SLOTS]
        RING[S[C_RING_TEMP] + slot, tid] += temp  # writer tid runs on CPU tid
        S[TEMP_IN_USE] += temp
    cache = nr - temp
    if cache:
        W[DIRTIED, tid] = 1
        WF[DIRTY_ACC, tid] += cache * F[CF_DIRTY_FRACTION]
        dirty = int(WF[DIRTY_ACC, tid])
        if cache < dirty:
            dirty = cache
        WF[DIRTY_ACC, tid] -= dirty
        lru_add_head(S, LRU, 1, dirty)
        lru_add_head(S, LRU, 0, cache - dirty)


@_jit
def advance(st, tid):
    """``Simulation._advance``: run a writer's slow path until it sleeps or ends; True if it
    ended with a page."""
    S = st.S
    W = st.W
    if W[RUNNING, tid]:
        W[RUNNING, tid] = 0
        S[IN_ALLOCATOR] += 1
    ms = slowpath(st, tid, tid, W[SP_PC, tid])
    if ms == 0:
        W[SP_PC, tid] = SP_RESTART
        W[WAKE_AT, tid] = INF
        W[RUNNING, tid] = 1
        W[SPINNING, tid] = 0
        S[IN_ALLOCATOR] -= 1
        task_page(S, st.F, W, st.WF, st.RING, st.LRU, tid, 1)
        return True
    W[WAKE_AT, tid] = S[T] + ms
    return False


@_jit
def task_alloc(st, tid, nr):
    """``Simulation._task_alloc``: ``nr`` GFP_KERNEL allocations by a running writer."""
    got = 0
    while got < nr:
        g = get_page_from_freelist(st.S, st.I, tid, FLAGS_LOW, nr - got)
        if g:
            task_page(st.S, st.F, st.W, st.WF, st.RING, st.LRU, tid, g)
            got += g
        if got == nr:
            break
        st.W[SP_PC, tid] = SP_RESTART
        st.S[TK_TASK_FAILED] += 1
        if advance(st, tid):
            got += 1
            continue
        # a task asleep in the allocator does not queue up later demand
        break
    return got


# ---------------------------------------------------------------------------------------------
# kswapd and the flusher
# ---------------------------------------------------------------------------------------------
@_jit
def set_kswapd_state(S, EV, state):
    if state != S[KS_STATE]:
        if state == KSWAPD_RUNNING:
            event(S, EV, EV_KSWAPD_WAKE, S[C_KSWAPD_CPU], 0)
        elif state == KSWAPD_SLEEPING:
            event(S, EV, EV_KSWAPD_SLEEP, S[C_KSWAPD_CPU], 0)
    S[KS_STATE] = state


@_jit
def kswapd_check(S, I, mark):
    """A watermark check kswapd makes and pays for (``zone_watermark_ok_safe`` in 2.6.38)."""
    # PATCH(watermark_ok_safe): kswapd's sleep and balance checks read the accurate count.
    safe = S[C_WATERMARK_OK_SAFE] != 0
    charge(I, safe, S[C_KSWAPD_CPU], 1)
    return wmark_ok(S[FREE_READ_SAFE] if safe else S[FREE_READ], mark, 0)


@_jit
def sleeping_prematurely(S, I, remaining):
    if remaining:
        return True
    if S[ALL_UNRECLAIMABLE]:
        return False
    return not kswapd_check(S, I, S[C_WMARK_HIGH])


@_jit
def set_pgdat_percpu_threshold(S, F, I, D, threshold):
    """2.6.38's ``set_pgdat_percpu_threshold`` from kswapd, which pays for the rewrite."""
    if not S[DRIFT_MARK]:
        return
    for i in range(S[C_CPUS]):
        d = I[DIFF, i]
        d = -d if d < 0 else d
        I[DIFF_LIMIT, i] = d if d > threshold else threshold
        I[THRESHOLD, i] = threshold
    S[HAS_DIFF_LIMIT] = 1
    cpu = S[C_KSWAPD_CPU]  # CostMeter.threshold_rewrite
    S[M_THRESHOLD_REWRITES] += 1
    D[OTHER_NS, cpu] += D[SNAPSHOT_NS, cpu]
    F[F_NS_THRESHOLD] += D[SNAPSHOT_NS, cpu]


@_jit
def kswapd_step(st):
    """Run ``kswapd()`` / ``balance_pgdat()`` until kswapd sleeps: returns the milliseconds,
    or -1 for "until woken" (schedule())."""
    S = st.S
    I = st.I
    EV = st.EV
    pc = S[KS_PC]
    while True:
        remaining = 0
        if pc == KS_TOP:
            S[KS_ON_WAITQUEUE] = 1  # prepare_to_wait
            S[KS_MAX_ORDER] = 0  # order 0 only: "order < new_order" never holds
            if S[KS_NAP] and not sleeping_prematurely(S, I, 0):
                S[KS_WOKEN] = 0
                set_kswapd_state(S, EV, KSWAPD_NAPPING)
                S[KS_PC] = KS_AFTER_NAP
                return 100  # schedule_timeout(HZ/10)
        elif pc == KS_AFTER_NAP:
            remaining = 1 if S[KS_WOKEN] else 0
        if pc == KS_TOP or pc == KS_AFTER_NAP:
            S[KS_NAP] = 1
            if not sleeping_prematurely(S, I, remaining):
                S[KS_WOKEN] = 0
                set_kswapd_state(S, EV, KSWAPD_SLEEPING)
                # PATCH(pressure_threshold): the normal thresholds for the sleep.
                if S[C_PRESSURE_THRESHOLD]:
                    set_pgdat_percpu_threshold(S, st.F, I, st.D, S[NORMAL_THRESHOLD])
                S[KS_PC] = KS_AFTER_SLEEP
                return -1
            pc = KS_RUN
        elif pc == KS_AFTER_SLEEP:
            # PATCH(pressure_threshold): woken: lower the thresholds again.
            if S[C_PRESSURE_THRESHOLD]:
                set_pgdat_percpu_threshold(S, st.F, I, st.D, S[C_PRESSURE_VALUE])
            pc = KS_RUN
        if pc == KS_RUN:
            S[KS_ON_WAITQUEUE] = 0  # finish_wait
            set_kswapd_state(S, EV, KSWAPD_RUNNING)
            pc = KS_BALANCE
        # balance_pgdat, "loop_again:"
        if kswapd_check(S, I, S[C_WMARK_HIGH]):
            pc = KS_TOP  # balanced: back to the top of kswapd's loop
            continue
        budget = S[C_KSWAPD_SCAN]
        nr_reclaimed = 0
        total_scanned = 0
        while total_scanned < budget:
            reclaimed, scanned, _ = shrink_zone(
                S,
                st.F,
                I,
                EV,
                st.RING,
                st.LRU,
                S[C_KSWAPD_CPU],
                SWAP_CLUSTER_MAX,
                budget - total_scanned,
            )
            nr_reclaimed += reclaimed
            total_scanned += scanned
            if scanned == 0:
                break
        has_under_min = not kswapd_check(S, I, S[C_WMARK_MIN])
        S[KS_PC] = KS_BALANCE
        if total_scanned and nr_reclaimed < SWAP_CLUSTER_MAX and not has_under_min:
            return 100  # congestion_wait(BLK_RW_ASYNC, HZ/10)
        return 1


@_jit
def flusher_step(st):
    """Run ``bdi_writeback_thread`` until it sleeps; returns the milliseconds."""
    S = st.S
    cpu = S[C_FLUSHER_CPU]
    w = S[C_WRITERS]  # the flusher's column in W
    started = 0
    if S[FL_PC] == FL_SLOWPATH:
        ms = slowpath(st, w, cpu, st.W[SP_PC, w])
        if ms:
            return ms
        started = start_writeback_with(S, st.F, st.I, st.RING, cpu, 1)
    else:
        background, _ = dirty_limits(S)
        over = S[LRU_DIRTY] - background
        room = S[C_WRITEBACK_LIMIT] - S[WB_IN_FLIGHT]
        if over <= 0 or room <= 0:
            return 1  # under the background threshold, or the queue is congested
        want = over
        if FLUSH_PAGES_PER_TICK < want:
            want = FLUSH_PAGES_PER_TICK
        if S[LRU_DIRTY] < want:
            want = S[LRU_DIRTY]
        if room < want:
            want = room
        started = pageout(S, st.F, st.I, st.EV, st.RING, cpu, want, False)
        if not started:
            # No page for a request on the fast path or at MIN: the sleeping slow path.
            ms = slowpath(st, w, cpu, SP_RESTART)
            if ms:
                S[FL_PC] = FL_SLOWPATH
                return ms
            started = start_writeback_with(S, st.F, st.I, st.RING, cpu, 1)
    S[FL_PC] = FL_TOP
    if started:
        lru_isolate_dirty_oldest(S, st.LRU, started)
        S[TK_FLUSHED] += started
    return 1


# ---------------------------------------------------------------------------------------------
# The tick (Simulation.step)
# ---------------------------------------------------------------------------------------------
@_jit
def free_due(S, I, RING, row, lo, hi):
    """``Simulation._free_due``: free (hot) what ring row ``row`` holds, on each CPU; a CPU
    whose list reaches ``high`` goes through free_hot_cold_page (flushing batches), the others
    only grow their lists. Each CPU touches its own list and diff and the shared counts are
    sums, so one pass in CPU order ends where the model's two passes do. Only CPUs
    ``lo .. hi-1`` can have pages in this ring (the caller knows which). Returns the pages."""
    # Slices indexed from 0: numba then needs no check for negative indices, and the common
    # case (no list reaches high) is two passes the compiler can vectorise.
    due = RING[row, lo:hi]
    pcp = I[PCP, lo:hi]
    high = I[HIGH, lo:hi]
    total = 0
    flush = False
    for j in range(hi - lo):
        x = due[j]
        total += x
        flush |= (x > 0) & (pcp[j] + x >= high[j])
    if total:  # lists grow here without being noted one by one: the next drain looks at all
        S[DRAIN_LISTED] = 0
    if not flush:
        for j in range(hi - lo):
            pcp[j] += due[j]
            due[j] = 0
        return total
    for j in range(hi - lo):
        x = due[j]
        if x and pcp[j] + x >= high[j]:
            free_hot_cold_page_n(S, I, lo + j, x)
        else:
            pcp[j] += x
        due[j] = 0
    return total


@_jit
def insertion_sort(keys, vals, lo, hi):
    """Sort ``vals[lo:hi]`` by ``keys[lo:hi]`` in place, ties in their present order."""
    for i in range(lo + 1, hi):
        key = keys[i]
        val = vals[i]
        j = i
        while j > lo and keys[j - 1] > key:  # strictly greater: stable
            keys[j] = keys[j - 1]
            vals[j] = vals[j - 1]
            j -= 1
        keys[j] = key
        vals[j] = val


@_jit
def sort_by_key(keys, vals, tmp_keys, tmp_vals, counts, m):
    """Sort ``vals[:m]`` by ``keys[:m]`` (both in place), ties in their present order: the
    order ``np.argsort(keys, kind="mergesort")`` gives, without its allocations.

    The lock-order keys are spread evenly, so a bucket sort takes linear time: a stable
    counting sort by bucket, then an insertion sort that only moves keys within their
    bucket. The bucket is a non-decreasing function of the key, whatever its type, so the
    result is the stable sort. ``counts`` needs ``m // 2 + 2`` entries."""
    if m <= 32:
        insertion_sort(keys, vals, 0, m)
        return
    lo = keys[0]
    hi = keys[0]
    for i in range(m):
        if keys[i] < lo:
            lo = keys[i]
        if keys[i] > hi:
            hi = keys[i]
    if hi == lo:
        return  # all ties: already in order
    nb = m // 2
    scale = nb / (hi - lo)
    for b in range(nb + 2):
        counts[b] = 0
    for i in range(m):
        b = int((keys[i] - lo) * scale)
        if b >= nb:  # hi itself, or rounding at the top
            b = nb - 1
        counts[b + 1] += 1
    for b in range(nb):
        counts[b + 1] += counts[b]
    for i in range(m):
        b = int((keys[i] - lo) * scale)
        if b >= nb:
            b = nb - 1
        o = counts[b]
        counts[b] = o + 1
        tmp_keys[o] = keys[i]
        tmp_vals[o] = vals[i]
    for i in range(m):
        keys[i] = tmp_keys[i]
        vals[i] = tmp_vals[i]
    insertion_sort(keys, vals, 0, m)


@_jit
def radix_sort_cpus(seg, keys, tmp, counts, m):
    """Sort the CPUs ``seg[:m]`` by their 16-bit keys ``keys[cpu]``, ties in their present
    order: what :func:`sort_by_key` gives, by a least-significant-digit radix sort (two stable
    counting sorts, by the low byte and then the high byte), without a data-dependent branch:
    for a few hundred CPUs a tick it costs a quarter of a bucket and insertion sort.
    ``counts`` needs 256 entries, ``tmp`` ``m``."""
    for shift in (0, 8):
        src = seg if shift == 0 else tmp
        dst = tmp if shift == 0 else seg
        for d in range(256):
            counts[d] = 0
        for x in range(m):
            counts[(keys[src[x]] >> shift) & 255] += 1
        total = 0
        for d in range(256):
            c = counts[d]
            counts[d] = total
            total += c
        for x in range(m):
            cpu = src[x]
            d = (keys[cpu] >> shift) & 255
            dst[counts[d]] = cpu
            counts[d] += 1


@_jit
def refill_run(S, I, EV, a, b, low_ok):
    """``refill_run`` of ``Simulation._allocate``: the interrupt-only CPUs ``I[SEG, a:b]`` with
    empty pcp lists, one batch each, in lock order. Returns the interrupt allocations failed."""
    # The checks (the one that let the refill happen; if LOW failed, that one first and the
    # one wakeup_kswapd's caller pays) are counts that only the cost meter reads at the end of
    # the tick, so they are added in the same pass as the refills.
    kind = -1
    if not low_ok:
        kind = wakeup_kswapd(S, EV)
    on_checks = 1 + (0 if low_ok else 1) + (1 if kind == 0 else 0)
    failed = 0
    short_any = False
    for x in range(a, b):
        cpu = I[SEG, x]
        need = I[LEFT_I, cpu]
        I[CHECKS, cpu] += need * on_checks
        if kind == 1:
            I[SAFE_CHECKS, cpu] += need
        got = rmqueue_bulk(S, I, cpu, I[BATCH, cpu])
        take = need if need < got else got
        I[PCP, cpu] -= take
        I[GOT_IRQ, cpu] += take
        short = need - take
        I[SHORT, cpu] = short
        failed += short
        if short:
            short_any = True
    if low_ok and short_any:
        # Passed LOW but the buddy lists ran dry: wake kswapd, retry at MIN, in vain.
        kind = wakeup_kswapd(S, EV)
        for x in range(a, b):
            cpu = I[SEG, x]
            if kind >= 0:
                charge(I, kind == 1, cpu, I[SHORT, cpu])
            charge(I, False, cpu, I[SHORT, cpu])
    return failed


@_jit
def cpu_segment(st, a, b, low_ok, batch):
    """Consecutive CPU turns ``I[SEG, a:b]`` with no task or kswapd between them: runs of
    simple refills at once, the rest through the kernel path (``cpu_turn``). Which turns are
    simple is decided at the start (a turn can only empty other CPUs' lists, by a drain).
    Returns (interrupt allocations failed, task pages had)."""
    S = st.S
    I = st.I
    for x in range(a, b):
        cpu = I[SEG, x]
        I[SIMPLE, x] = I[LEFT_T, cpu] == 0 and I[LEFT_I, cpu] <= batch and I[PCP, cpu] == 0
    failed = 0
    had = 0
    prev = a
    for x in range(a, b):
        if I[SIMPLE, x]:
            continue
        if x > prev:
            failed += refill_run(S, I, st.EV, prev, x, low_ok)
        # cpu_turn: an interrupt (GFP_ATOMIC, never sleeps), then the CPU's writer
        cpu = I[SEG, x]
        li = I[LEFT_I, cpu]
        if li:
            got = alloc_pages_nodemask(S, I, st.EV, cpu, FLAGS_ATOMIC_IRQ, li)
            I[GOT_IRQ, cpu] += got
            failed += li - got
        lt = I[LEFT_T, cpu]
        if lt:
            had += task_alloc(st, cpu, lt)
        prev = x + 1
    if prev < b:
        failed += refill_run(S, I, st.EV, prev, b, low_ok)
    return failed, had


@_jit
def allocate(st, row):
    """``Simulation._allocate``: the tick's allocations, lock-free first, then in lock order."""
    S = st.S
    I = st.I
    D = st.D
    W = st.W
    WF = st.WF
    EV = st.EV
    t = S[T]
    n = S[C_CPUS]
    k = S[C_WRITERS]
    need_irq = st.IRQ[row]
    demand_row = st.TASK[row]
    demand = 0
    for i in range(k):
        demand += demand_row[i]
    S[DEMAND] = demand
    total = 0
    for i in range(n):
        total += need_irq[i]
    S[TK_ATOMIC_ATTEMPTED] = total
    # Writer i runs on CPU i unless it sits in the allocator or in balance_dirty_pages.
    # (I[NEED_TASK] of the CPUs without a writer stays 0.) Without a branch: which writers
    # run is anyone's guess.
    dirtied = W[DIRTIED]
    running_w = W[RUNNING]
    throttled_until = W[THROTTLED_UNTIL]
    need_w = I[NEED_TASK]
    for i in range(k):
        dirtied[i] = 0
        running = (running_w[i] != 0) & (throttled_until[i] <= t)
        need_w[i] = demand_row[i] * running
    if S[HAS_BUSY] and k:
        # A CPU working off its debt serves that much less of its writer's demand.
        for i in range(k):
            WF[LOST_ACC, i] += I[NEED_TASK, i] * (D[BUSY, i] / TICK_NS)
            lost = np.int64(np.floor(WF[LOST_ACC, i]))
            if I[NEED_TASK, i] < lost:
                lost = I[NEED_TASK, i]
            WF[LOST_ACC, i] -= lost
            I[NEED_TASK, i] -= lost

    # What needs no lock: one decision per tick for each context (every check reads the same
    # value), then each CPU takes what it can from its own list, interrupts first.
    low_ok = wmark_ok(S[FREE_READ], S[C_WMARK_LOW], FLAGS_LOW)
    irq_flags = FLAGS_LOW
    irq_slow = (not low_ok) and total > 0
    if irq_slow:
        irq_flags = FLAGS_ATOMIC_IRQ
    irq_ok = wmark_ok(S[FREE_READ], S[C_WMARK_MIN + (irq_flags & ALLOC_WMARK_MASK)], irq_flags)
    # LOW failed for the interrupts: wakeup_kswapd, as each of them calls it (nothing it reads
    # changes in the pass below).
    kind = wakeup_kswapd(S, EV) if irq_slow else -1
    keys = st.LOCK[row]
    # Interrupt pages are freed on their CPU atomic_lifetime_ms later: what a CPU takes
    # without the lock goes into the ring now, what it gets in lock order (I[GOT_IRQ]) after.
    ring = st.RING[(t + S[C_ATOMIC_LIFETIME]) % S[C_ATOMIC_SLOTS]]
    pcp = I[PCP]
    need_task = I[NEED_TASK]
    checks = I[CHECKS]
    seg = I[SEG]
    seg_keys = D[KEYS]
    atomic_ok = 0
    ok_t = 0
    task_attempted = 0
    failed = 0
    m = 0
    # Each interrupt pays its checks: the fast one; again after LOW failed; the one
    # wakeup_kswapd's caller pays (ordinary or safe).
    on_checks = 1 + (1 if irq_slow else 0) + (1 if kind == 0 else 0)
    on_safe = 1 if kind == 1 else 0
    irq_n = 1 if irq_ok else 0
    low_n = 1 if low_ok else 0
    # The CPUs with a writer: first what each takes from its own list, interrupts first, as
    # a pass without branches (vectorised); then, in CPU order, the writers' pages and the
    # queue for the lock. (task_page reads nothing the first pass writes.)
    take_t = I[TAKE_T]
    left_irq = I[LEFT_I]
    left_task = I[LEFT_T]
    for i in range(k):
        need_i = need_irq[i]
        need_t = need_task[i]
        p = pcp[i]
        ti = (need_i if need_i < p else p) * irq_n
        p -= ti
        tt = (need_t if need_t < p else p) * low_n
        pcp[i] = p - tt
        ring[i] += ti
        atomic_ok += ti
        ok_t += tt
        task_attempted += need_t
        fast = ti if irq_ok else need_i
        checks[i] += tt + fast * on_checks
        # Every interrupt's check fails the same way without irq_ok: they fail (nopage).
        failed += need_i * (1 - irq_n)
        left_irq[i] = (need_i - ti) * irq_n
        left_task[i] = need_t - tt
        take_t[i] = tt
    if on_safe:
        safe_checks = I[SAFE_CHECKS]
        for i in range(k):
            safe_checks[i] += need_irq[i] - left_irq[i] if irq_ok else need_irq[i]
    # Who needs the zone lock, in this tick's lock order: queued without a branch (which
    # writers are left wanting is anyone's guess); then each writer's pages.
    for i in range(k):
        seg[m] = i
        m += (left_irq[i] | left_task[i]) != 0
    got_irq = I[GOT_IRQ]
    for x in range(m):
        i = seg[x]
        got_irq[i] = 0
        seg_keys[x] = keys[i]
    for i in range(k):
        if take_t[i]:  # writer i runs on CPU i
            task_page(S, st.F, W, WF, st.RING, st.LRU, i, take_t[i])
    # The same for the CPUs with interrupts only, as passes without branches the compiler can
    # vectorise (slices indexed from 0 need no negative-index checks): each interrupt pays
    # its checks, takes what its list has or fails with the rest; then a pass queues the
    # CPUs left wanting.
    need_s = need_irq[k:n]
    checks_s = checks[k:n]
    if irq_ok:
        pcp_s = pcp[k:n]
        ring_s = ring[k:n]
        left_s = I[LEFT_I, k:n]
        for j in range(n - k):
            need_i = need_s[j]
            p = pcp_s[j]
            ti = need_i if need_i < p else p
            pcp_s[j] = p - ti
            ring_s[j] += ti
            atomic_ok += ti
            checks_s[j] += ti * on_checks
            left_s[j] = need_i - ti
        if on_safe:
            safe_s = I[SAFE_CHECKS, k:n]
            for j in range(n - k):
                safe_s[j] += need_s[j] - left_s[j]
        # (without a branch: which CPUs are left wanting is random)
        m0 = m
        for j in range(n - k):
            seg[m] = k + j
            m += left_s[j] != 0
        for x in range(m0, m):
            i = seg[x]
            I[GOT_IRQ, i] = 0
            I[LEFT_T, i] = 0
            seg_keys[x] = keys[i]
    else:
        # Every interrupt's check fails the same way: the allocations fail (nopage).
        for j in range(n - k):
            x = need_s[j]
            checks_s[j] += x * on_checks
            failed += x
        if on_safe:
            safe_s = I[SAFE_CHECKS, k:n]
            for j in range(n - k):
                safe_s[j] += need_s[j]
    S[TK_TASK_ATTEMPTED] = task_attempted

    # Whoever needs the zone lock or sleeps in the allocator, in this tick's lock order.
    if m > 64 and n >= 256:
        radix_sort_cpus(seg, keys, I[SHORT], I[SIMPLE], m)  # scratch rows
    elif m > 1:
        sort_by_key(seg_keys, seg, D[KEYS_TMP], I[SHORT], I[SIMPLE], m)
    # The others in (kind, id) order; a stable sort by key gives the model's (key, kind, id).
    no = 0
    if S[IN_ALLOCATOR]:
        for tid in range(k):
            if W[WAKE_AT, tid] == t:
                WF[OTHER_KEY, no] = keys[tid]
                W[OTHER_KIND, no] = 1
                W[OTHER_ID, no] = tid
                no += 1
    if S[KS_WAKE_AT] <= t:
        WF[OTHER_KEY, no] = keys[S[C_KSWAPD_CPU]]
        W[OTHER_KIND, no] = 2
        no += 1
    if S[FL_WAKE] <= t:
        WF[OTHER_KEY, no] = keys[S[C_FLUSHER_CPU]]
        W[OTHER_KIND, no] = 3
        no += 1
    for y in range(no):
        WF[OTHER_SORTED_KEY, y] = WF[OTHER_KEY, y]
        W[OTHER_ORDER, y] = y
    sort_by_key(
        WF[OTHER_SORTED_KEY],
        W[OTHER_ORDER],
        WF[OTHER_KEY_TMP],
        W[OTHER_ORDER_TMP],
        W[OTHER_COUNT],
        no,
    )

    batch = I[BATCH, 0]
    had = ok_t
    first = 0
    for y in range(no):
        j = W[OTHER_ORDER, y]
        key = WF[OTHER_KEY, j]
        stop = first
        while stop < m and keys[I[SEG, stop]] <= key:  # ties go to the CPUs' demand
            stop += 1
        if stop > first:
            f, h = cpu_segment(st, first, stop, low_ok, batch)
            failed += f
            had += h
            first = stop
        kind = W[OTHER_KIND, j]
        if kind == 1:
            tid = W[OTHER_ID, j]
            if W[WAKE_AT, tid] == t and advance(st, tid):
                had += 1
        elif kind == 2:
            ms = kswapd_step(st)
            S[KS_WAKE_AT] = INF if ms < 0 else t + ms
        else:
            S[FL_WAKE] = t + flusher_step(st)
    if first < m:
        f, h = cpu_segment(st, first, m, low_ok, batch)
        failed += f
        had += h

    # The interrupt pages the CPUs got in lock order, into the ring.
    for x in range(m):
        cpu = seg[x]
        got = I[GOT_IRQ, cpu]
        atomic_ok += got
        ring[cpu] += got
    S[TK_ATOMIC_OK] = atomic_ok
    S[TK_ATOMIC_FAILED] = failed
    S[ATOMIC_IN_USE] += atomic_ok
    S[TK_TASK_OK] = had
    if k:
        balance_dirty_pages(S, W)


@_jit
def balance_dirty_pages(S, W):
    """``Simulation._balance_dirty_pages`` for every writer, after the tick's allocations."""
    t = S[T]
    k = S[C_WRITERS]
    any_check = False
    for i in range(k):
        until = W[THROTTLED_UNTIL, i]
        if (W[DIRTIED, i] and until <= t) or until == t + 1:
            any_check = True
            break
    if not any_check:
        return
    _, dirty = dirty_limits(S)
    over = S[LRU_DIRTY] + S[WB_IN_FLIGHT] > dirty
    for i in range(k):
        until = W[THROTTLED_UNTIL, i]
        waking = until == t + 1
        if not ((W[DIRTIED, i] and until <= t) or waking):
            continue
        if over:
            prev = W[PAUSE, i] if waking else 0
            pause = 1 if prev <= 0 else min(MAX_PAUSE, 2 * prev)
            W[PAUSE, i] = pause
            W[THROTTLED_UNTIL, i] = t + 1 + pause
        else:
            W[PAUSE, i] = 0


@njit(cache=True, nogil=True, inline="always", _nrt=False)
def _watermark_price(c, sc, others, check_ns, line_ns, snapshot_ns, normal_n, safe_n):
    """One CPU's watermark-check price in ``CostMeter.end_tick``: ``c`` ordinary and ``sc``
    safe checks, each missing the counter's line once per write by ``others`` CPUs (at most
    once per check), plus a snapshot per check of a kind that reads one; the model's
    operations in its order."""
    a = c + sc
    misses = a if a < others else others
    v = a * check_ns + misses * line_ns
    v = v + (c * normal_n) * snapshot_ns
    return v + (sc * safe_n) * snapshot_ns


@_jit
def end_tick(S, F, I, D):
    """``CostMeter.end_tick``: price the tick's checks, snapshots and folds; add the debts.

    The per-CPU prices are the model's element by element; their sums go through
    :func:`np_sum`, so every float is the model's bit for bit. Few CPUs fold in a tick
    (``I[FOLDED]``, noted by :func:`fold_noted`): every other CPU's fold price is +0.0 and its
    checks miss once per fold, so those CPUs are priced alike and the folded ones put right.
    """
    n = S[C_CPUS]
    checks = I[CHECKS]
    safe_checks = I[SAFE_CHECKS]
    folds_seen = I[FOLDS_SEEN]
    folds_tick = I[FOLDS_TICK]
    folded = I[FOLDED]
    n_folded = S[N_FOLDED]
    n_folds = 0
    for x in range(n_folded):
        cpu = folded[x]
        f = folds_tick[cpu]
        folds_seen[cpu] += f  # sim._folds_seen: now zone.stat_folds again
        n_folds += f
    n_normal = 0
    n_safe = 0
    for i in range(n):
        n_normal += checks[i]
        n_safe += safe_checks[i]
    n_checks = n_normal + n_safe
    check_ns = F[CF_CHECK_NS]
    normal = S[NORMAL_SNAPSHOT]
    safe = S[SAFE_SNAPSHOT]
    other_ns = D[OTHER_NS]
    snapshot_ns = D[SNAPSHOT_NS]
    line_ns = D[LINE_NS]
    fold_line_ns = D[FOLD_LINE_NS]
    wm = D[WM]
    wm_by_cpu = D[WM_BY_CPU]
    fold_work = D[WORK]
    tick_cost = D[TICK_COST]
    debt = D[DEBT]
    dirty64 = I[DIRTY64]
    # Without branches: where the model prices no checks (n_checks == 0) or no folds, every
    # term below is +0.0, and x + 0.0 is x for the non-negative prices here, so the costs and
    # debts come out as the model's. (D[WM] is read only when its sum is taken, below.) Short
    # loops over few rows: the compiler vectorises them (one loop over all the rows it does
    # not), and each element still sees the model's operations in order.
    # (the snapshots: one per check of a kind that reads one; integers, in any order)
    snapshot_reads = (n_normal if normal else 0) + (n_safe if safe else 0)
    folds_priced = n_folds or normal or safe
    if not folds_priced:
        # Most ticks: no fold, so no miss (misses = min(a, 0)) and no fold price; no snapshot.
        # The terms left out are the +0.0 of the general case.
        for i in range(n):
            wm[i] = (checks[i] + safe_checks[i]) * check_ns
    else:
        normal_n = 1 if normal else 0
        safe_n = 1 if safe else 0
        # a check misses once per write by another CPU: n_folds on a CPU that did not fold
        for i in range(n):
            wm[i] = _watermark_price(
                checks[i],
                safe_checks[i],
                n_folds,
                check_ns,
                line_ns[i],
                snapshot_ns[i],
                normal_n,
                safe_n,
            )
        for x in range(n_folded):  # the CPUs that folded: fewer misses, and a fold price
            i = folded[x]
            wm[i] = _watermark_price(
                checks[i],
                safe_checks[i],
                n_folds - folds_tick[i],
                check_ns,
                line_ns[i],
                snapshot_ns[i],
                normal_n,
                safe_n,
            )
            fold_work[i] = folds_tick[i] * fold_line_ns[i]
            dirty64[i // 64] = 1
    for i in range(n):
        checks[i] = 0
    for i in range(n):
        safe_checks[i] = 0
    for i in range(n):
        wm_by_cpu[i] += wm[i]
    for i in range(n):
        tick_cost[i] = other_ns[i] + wm[i]  # + fold_work[i], +0.0 but on the folded CPUs:
    for x in range(n_folded):
        i = folded[x]
        tick_cost[i] = (other_ns[i] + wm[i]) + fold_work[i]
    for i in range(n):
        other_ns[i] = 0.0
    for i in range(n):
        debt[i] += tick_cost[i]  # + 0.0 when the tick cost nothing: the debt is unchanged
    S[M_SNAPSHOT_READS] += snapshot_reads
    wm_sum = 0.0
    if n_checks:
        S[M_WATERMARK_CHECKS] += n_checks
        wm_sum = np_sum(wm, S, I, D)
    if n_folds:
        S[M_FOLDS] += n_folds
        # np.add.reduce(fold prices): the blocks without a folded CPU add up to +0.0
        F[F_NS_FOLD] += _np_sum_walk(fold_work, S, I, D, LEAVES_ZERO)
    for x in range(n_folded):  # back to no folds (and no marks) for the next tick
        i = folded[x]
        folds_tick[i] = 0
        fold_work[i] = 0.0
        dirty64[i // 64] = 0
    S[N_FOLDED] = 0
    total = np_sum(tick_cost, S, I, D)
    F[F_TICK_WATERMARK_NS] = wm_sum
    F[F_TICK_NS] = total
    F[F_WATERMARK_NS] += wm_sum
    F[F_NS_WATERMARK] += wm_sum
    F[F_TOTAL_NS] += total
    if total:
        S[DEBT_ANY] = 1


# The recorded series, rows of REC (integers) and RECF (floats), in trace.SERIES order.
(
    R_COUNTER,
    R_SNAPSHOT,
    R_READ,
    R_BUDDY,
    R_PCP,
    R_PCP_STRANDED,
    R_KSWAPD_STATE,
    R_ATOMIC_ATTEMPTED,
    R_ATOMIC_OK,
    R_ATOMIC_FAILED,
    R_TASK_DEMAND,
    R_TASK_ATTEMPTED,
    R_TASK_OK,
    R_TASK_FAILED,
    R_MEMALLOC_ATTEMPTED,
    R_MEMALLOC_OK,
    R_TASKS_IN_ALLOCATOR,
    R_TASKS_SPINNING,
    R_TASKS_THROTTLED,
    R_DIRECT_RECLAIM,
    R_DRAIN_ALL_PAGES,
    R_RECLAIMED,
    R_SCANNED,
    R_WRITEBACK,
    R_LRU_DIRTY,
    R_LRU_CLEAN,
    R_FOLDS,
    R_FLUSHED,
    R_STAT_THRESHOLD,
    N_REC,
) = range(30)
RF_WATERMARK_NS = 0
RF_COST_NS = 1


@_jit
def record(st, col):
    """``Simulation._record``: this tick's column of every series."""
    S = st.S
    I = st.I
    W = st.W
    R = st.REC
    n = S[C_CPUS]
    k = S[C_WRITERS]
    R[R_COUNTER, col] = clamp0(S[VM_STAT])
    x = S[VM_STAT]
    diff = I[DIFF]
    for j in range(n):
        x += diff[j]
    with_writer = 0
    pcp_w = I[PCP, :k]
    for j in range(k):
        with_writer += pcp_w[j]
    stranded = 0
    pcp_s = I[PCP, k:n]
    for j in range(n - k):
        stranded += pcp_s[j]
    pcp_all = with_writer + stranded
    R[R_SNAPSHOT, col] = clamp0(x)
    R[R_READ, col] = S[FREE_READ]
    R[R_BUDDY, col] = S[BUDDY]
    R[R_PCP, col] = pcp_all
    R[R_PCP_STRANDED, col] = stranded
    R[R_KSWAPD_STATE, col] = S[KS_STATE]
    R[R_ATOMIC_ATTEMPTED, col] = S[TK_ATOMIC_ATTEMPTED]
    R[R_ATOMIC_OK, col] = S[TK_ATOMIC_OK]
    R[R_ATOMIC_FAILED, col] = S[TK_ATOMIC_FAILED]
    R[R_TASK_ATTEMPTED, col] = S[TK_TASK_ATTEMPTED]
    R[R_TASK_OK, col] = S[TK_TASK_OK]
    R[R_TASK_FAILED, col] = S[TK_TASK_FAILED]
    R[R_MEMALLOC_ATTEMPTED, col] = S[TK_MEMALLOC_ATTEMPTED]
    R[R_MEMALLOC_OK, col] = S[TK_MEMALLOC_OK]
    R[R_DIRECT_RECLAIM, col] = S[TK_DIRECT_RECLAIM]
    R[R_DRAIN_ALL_PAGES, col] = S[TK_DRAIN_ALL_PAGES]
    R[R_RECLAIMED, col] = S[TK_RECLAIMED]
    R[R_SCANNED, col] = S[TK_SCANNED]
    R[R_FOLDS, col] = S[TK_FOLDS]
    R[R_FLUSHED, col] = S[TK_FLUSHED]
    R[R_TASK_DEMAND, col] = S[DEMAND]
    R[R_TASKS_IN_ALLOCATOR, col] = S[IN_ALLOCATOR]
    spinning = 0
    if S[IN_ALLOCATOR]:
        spin = W[SPINNING]
        running = W[RUNNING]
        for j in range(k):
            spinning += (spin[j] != 0) & (running[j] == 0)
    R[R_TASKS_SPINNING, col] = spinning
    throttled = 0
    until = W[THROTTLED_UNTIL]
    t1 = S[T] + 1
    for j in range(k):
        throttled += until[j] > t1
    R[R_TASKS_THROTTLED, col] = throttled
    R[R_WRITEBACK, col] = S[WB_IN_FLIGHT]
    R[R_LRU_DIRTY, col] = S[LRU_DIRTY]
    R[R_LRU_CLEAN, col] = S[LRU_CLEAN]
    R[R_STAT_THRESHOLD, col] = I[THRESHOLD, 0]
    st.RECF[RF_WATERMARK_NS, col] = st.F[F_TICK_WATERMARK_NS]
    st.RECF[RF_COST_NS, col] = st.F[F_TICK_NS]


@_jit
def step(st, col):
    """One tick: reads, I/O completions, frees, vmstat folds, allocations, prices, record."""
    S = st.S
    I = st.I
    D = st.D
    t = S[T]
    n = S[C_CPUS]
    row = t - S[BLOCK_START]
    for j in range(N_TICK_COUNTS):
        S[TK + j] = 0

    # 0. What every lockless reader sees this tick, and whether the read was a snapshot.
    normal_snapshot = 0
    free = clamp0(S[VM_STAT])
    # PATCH(watermark_ok_safe): 2.6.38's ordinary checks read the plain counter.
    if not S[C_WATERMARK_OK_SAFE]:
        # PATCH(drift_mark_snapshot): zone_nr_free_pages below the mark while kswapd is awake.
        if S[C_DRIFT_MARK_SNAPSHOT] and free < S[DRIFT_MARK] and not S[KS_ON_WAITQUEUE]:
            free = snapshot(S, I)
            normal_snapshot = 1
    S[FREE_READ] = free
    safe_snapshot = 0
    free_safe = clamp0(S[VM_STAT])
    if S[DRIFT_MARK] and free_safe < S[DRIFT_MARK]:
        if normal_snapshot:  # the same sum, read again (nothing changed in between)
            S[ZONE_SNAPSHOT_READS] += 1
            free_safe = free
        else:
            free_safe = snapshot(S, I)
        safe_snapshot = 1
    S[FREE_READ_SAFE] = free_safe
    # CostMeter.begin_tick
    S[NORMAL_SNAPSHOT] = normal_snapshot
    S[SAFE_SNAPSHOT] = safe_snapshot
    S[HAS_BUSY] = 0
    if S[DEBT_ANY]:
        S[HAS_BUSY] = 1
        any_debt = False
        debt = D[DEBT]
        busy = D[BUSY]
        for i in range(n):
            d = debt[i]
            b = d if d < TICK_NS else TICK_NS
            busy[i] = b
            d -= b
            debt[i] = d
            any_debt |= d != 0
        S[DEBT_ANY] = 1 if any_debt else 0

    # 1. I/O completions: request pages freed where the interrupt runs, data pages clean.
    slot = t % S[C_IO_SLOTS]
    data = S[S[C_WB_DATA] + slot]
    if data:
        S[S[C_WB_DATA] + slot] = 0
        S[WB_IN_FLIGHT] -= data
        lru_add_tail(S, st.LRU, 0, data)
        # start_writeback puts request pages on the last io_irq_cpus CPUs only
        if S[REQ_IN_FLIGHT]:
            S[REQ_IN_FLIGHT] -= free_due(
                S, I, st.RING, S[C_RING_IO] + slot, n - S[C_IO_IRQ_CPUS], n
            )

    # 2. The workload's frees: interrupt pages and temporary task pages, each on its CPU.
    # A ring holds exactly the pages its count says are in use: an empty ring needs no pass.
    if S[ATOMIC_IN_USE]:
        S[ATOMIC_IN_USE] -= free_due(S, I, st.RING, t % S[C_ATOMIC_SLOTS], 0, n)
    if S[TEMP_IN_USE]:  # a writer's temporary pages are freed on its own CPU, tid < writers
        S[TEMP_IN_USE] -= free_due(
            S, I, st.RING, S[C_RING_TEMP] + t % S[C_TEMP_SLOTS], 0, S[C_WRITERS]
        )

    # 3. vmstat_update on the CPUs whose timer fires now (refresh_cpu_vm_stats).
    off = t % S[C_STAT_INTERVAL]
    for x in range(S[FOLD_START + off], S[FOLD_START + off + 1]):
        cpu = I[FOLD_ORDER, x]
        v = I[DIFF, cpu]
        if v:
            I[DIFF, cpu] = 0
            S[VM_STAT] += v
            fold_noted(S, I, cpu)
            S[TK_FOLDS] += 1

    # 4. Allocations. 5. Price what the tick's kernel paths did. 6. Record.
    allocate(st, row)
    end_tick(S, st.F, I, D)
    record(st, col)
    S[T] = t + 1


@_jit
def room_needed(S, TASK, row):
    """Events and LRU runs one tick can add at most (bounded by its demand), with margin."""
    k = S[C_WRITERS]
    demand = 0
    for i in range(k):
        demand += TASK[row, i]
    events = 2 * (demand + k) + 16
    runs = 16 * (demand + k + 4) + S[C_KSWAPD_SCAN] // SWAP_CLUSTER_MAX + 64
    return events, runs


@_jit
def run_ticks(st, stop):
    """Run ticks until ``S[T] == stop`` (inside the current workload block), recording tick
    ``S[T]`` in column ``S[T] - S[REC_N]`` of REC. Returns RC_ROOM early, at a tick boundary,
    when the event buffer or the LRU ring might not hold one more tick."""
    S = st.S
    while S[T] < stop:
        events, runs = room_needed(S, st.TASK, S[T] - S[BLOCK_START])
        if S[C_RECORD_EVENTS] and S[EV_N] + events > st.EV.shape[0]:
            return RC_ROOM
        if S[LRU_LEN] + runs > st.LRU.shape[1]:
            return RC_ROOM
        step(st, S[T] - S[REC_N])
    return RC_DONE
