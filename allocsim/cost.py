"""The cost of accuracy: what watermark reads, counter folds, threshold rewrites and drains
cost in simulated CPU time, and who pays (issue 11).

Every constant of the cost model is in :data:`COSTS`, with its source or its reason. They are
round figures for a 2010 multi-socket x86 server (Nehalem generation), not fitted; the one
number fitted to a published measurement is the reader rate of the ``readers`` preset
(``allocsim/config.py``), and docs/results.md says how.

What is charged, and to whom:

* **a watermark check** (``zone_watermark_ok``, ``zone_watermark_ok_safe``) costs ``check_ns``
  on the CPU that makes it, plus a cache-line read of the counter (``zone->vm_stat``) when
  another CPU has written it since this CPU last read it;
* **a snapshot** (``zone_page_state_snapshot``, taken by ``zone_nr_free_pages`` in 2.6.36 and by
  ``zone_watermark_ok_safe`` in 2.6.38) reads one cache line per other online CPU: each CPU's
  ``vm_stat_diff`` sits in its pageset, next to ``pcp.count``, which that CPU writes on every
  allocation and free, so the line is modified elsewhere (Shaohua Li's diagnosis: every CPU
  reading every other CPU's lines while they are being written);
* **a fold** of a CPU's diff into the zone (``__mod_zone_page_state`` past the threshold, or
  ``refresh_cpu_vm_stats``) writes two shared lines, ``zone->vm_stat`` and the global
  ``vm_stat`` (``zone_page_state_add``), each last written by some other CPU;
* **a threshold rewrite** (``set_pgdat_percpu_threshold``) writes one line per online CPU,
  paid by kswapd's CPU;
* **drain_all_pages** sends an IPI to every other online CPU (``on_each_cpu(drain_local_pages,
  NULL, 1)``: 2.6.36 interrupts them all, pages or not), each CPU pays the interrupt and the
  freeing of its own pcp pages, and the sender waits for the slowest one.

A line "elsewhere" costs ``line_same_socket_ns`` when the other CPU is on the same socket and
``line_cross_socket_ns`` when it is not. CPUs are spread over ``SimConfig.sockets`` sockets
evenly, in blocks (CPU ``c`` is on socket ``c * sockets // cpus``). When a line was last written
by "some other CPU", its cost is the average over the other CPUs.

The time a CPU pays is its *debt*. A tick is 1 ms of each CPU's time; at the start of a tick a
CPU first works off its debt (up to the whole tick), and its writer task gets only the rest of
the tick: it is served ``demand × (1 − busy / 1 ms)`` pages, rounded down in favour of the
debt. The workload's demand is drawn exactly as without costs (same seed ⇒ same requests).

SIMPLIFICATION: the debt throttles only the writer tasks' demand. Interrupts preempt whatever
runs and are not delayed; kswapd's scanning rate is not reduced. Reads in a snapshot are not
overlapped (an out-of-order core may keep several misses in flight, so this is an upper bound
for one snapshot), every other CPU's line counts as modified, and a check of the counter misses
at most once per write by another CPU in the same tick.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["CostModel", "COSTS", "CostMeter", "TICK_NS", "ALL_CPUS"]

TICK_NS = 1_000_000  # one tick is one millisecond of every CPU's time
ALL_CPUS = -1  # ``cpu`` value meaning "n is an array of counts, one per CPU"


@dataclass(frozen=True)
class CostModel:
    """The constants of the cost model, in nanoseconds. See the module docstring."""

    # zone_watermark_ok with the counter line in cache: a call, a few loads and compares
    # (~30 instructions, ~10 ns at 2-3 GHz). Reason, not measured.
    check_ns: float = 10.0
    # A line held modified by another core of the same socket: served through the shared L3
    # after a snoop of the owning core, a few tens of ns on Nehalem (Molka et al., "Memory
    # performance and cache coherency effects on an Intel Nehalem multiprocessor system",
    # PACT 2009).
    line_same_socket_ns: float = 40.0
    # A line held modified on another socket: one QPI hop and the remote snoop, of the order of
    # a remote DRAM access, about 100-130 ns on Nehalem-EP (same source). Machines with more
    # sockets have more hops; one value for every remote socket (SIMPLIFICATION).
    line_cross_socket_ns: float = 120.0
    # Sending one IPI: an APIC ICR write and the wait for delivery, per target (smp_call_function
    # sends them one by one in physical/cluster mode). Reason: a fraction of the round trip.
    ipi_send_ns: float = 500.0
    # Taking one IPI: interrupt entry, the call-function dispatch and exit on the target. An
    # IPI round trip is 1-3 us on x86 (APIC message exchange 2-3 us: J. Lundell, "A note on
    # APIC bus latency", LKML 2001; "about 2 us per target core" is the usual rule of thumb).
    ipi_receive_ns: float = 1500.0
    # Freeing one pcp page back to the buddy lists (free_pcppages_bulk -> __free_one_page):
    # the buddy's struct page is usually a cache miss, about one DRAM access.
    drain_page_ns: float = 100.0
    # Lines a fold writes: zone->vm_stat[item] and the global vm_stat[item].
    fold_lines: int = 2

    def as_dict(self) -> dict:
        return asdict(self)


COSTS = CostModel()


class CostMeter:
    """Counts what the kernel paths do each tick, prices it and keeps every CPU's debt.

    Parameters
    ----------
    cpus, sockets : int
        The machine: CPUs spread evenly over sockets, in blocks.
    scale : float
        Multiplies every constant (0 = everything free: the model as it was before costs).
    model : CostModel
        The constants (default :data:`COSTS`).
    """

    def __init__(self, cpus: int, sockets: int, scale: float = 1.0, model: CostModel = COSTS):
        self.cpus = cpus
        self.sockets = sockets
        self.scale = float(scale)
        self.model = model
        m = model
        k = self.scale
        self.socket = (np.arange(cpus) * sockets) // cpus
        per_socket = np.bincount(self.socket, minlength=sockets)
        same = per_socket[self.socket] - 1  # other CPUs on my socket
        cross = cpus - 1 - same
        # One snapshot on CPU c: one line from every other online CPU.
        self.snapshot_ns = k * (same * m.line_same_socket_ns + cross * m.line_cross_socket_ns)
        # A line last written by "some other CPU": the average over them (0 on one CPU).
        self.line_ns = self.snapshot_ns / max(1, cpus - 1)
        self.check_ns = k * m.check_ns
        self.debt = np.zeros(cpus, dtype=np.float64)
        self._debt_any = False
        # this tick
        self.checks = np.zeros(cpus, dtype=np.int64)
        self.safe_checks = np.zeros(cpus, dtype=np.int64)
        self.other_ns = np.zeros(cpus, dtype=np.float64)
        self.normal_snapshot = False
        self.safe_snapshot = False
        self.tick_watermark_ns = 0.0
        self.tick_ns = 0.0
        # run totals
        self.snapshot_reads = 0
        self.watermark_checks = 0
        self.drain_ipis = 0
        self.threshold_rewrites = 0
        self.folds = 0
        self.watermark_ns = 0.0
        self.watermark_ns_by_cpu = np.zeros(cpus, dtype=np.float64)
        self.total_ns = 0.0
        self.ns_by_kind = dict.fromkeys(("watermark", "fold", "threshold", "drain"), 0.0)

    # -- the tick ---------------------------------------------------------------------------
    def begin_tick(self, normal_snapshot: bool, safe_snapshot: bool):
        """Start a tick: whether this tick's reads are snapshots; return the time each CPU
        spends working off its debt (None if no CPU owes anything)."""
        self.normal_snapshot = normal_snapshot
        self.safe_snapshot = safe_snapshot
        if not self._debt_any:
            return None
        busy = np.minimum(self.debt, TICK_NS)
        self.debt -= busy
        self._debt_any = bool(np.count_nonzero(self.debt))
        return busy

    def check(self, cpu, n, safe: bool = False) -> None:
        """``n`` watermark checks on ``cpu``; with ``cpu=ALL_CPUS``, ``n[c]`` on each CPU c; with
        ``cpu`` an array of distinct CPUs, ``n[i]`` on ``cpu[i]`` (a run of a few CPUs is charged
        without building a count for every CPU of the machine)."""
        arr = self.safe_checks if safe else self.checks
        if type(cpu) is np.ndarray:
            arr[cpu] += n
        elif cpu == ALL_CPUS:
            arr += n
        elif n:
            arr[cpu] += n

    def threshold_rewrite(self, cpu: int) -> None:
        """``set_pgdat_percpu_threshold`` on ``cpu``: one line written per other online CPU."""
        self.threshold_rewrites += 1
        ns = self.snapshot_ns[cpu]
        self.other_ns[cpu] += ns
        self.ns_by_kind["threshold"] += ns

    def drain_all_pages(self, cpu: int, pages: np.ndarray) -> None:
        """``drain_all_pages`` from ``cpu``; ``pages[c]`` is what CPU c had on its pcp list."""
        m = self.model
        k = self.scale
        n = self.cpus
        self.drain_ipis += n - 1
        work = k * (m.ipi_receive_ns + pages * m.drain_page_ns)
        others = work.copy()
        others[cpu] = 0.0
        sender = k * ((n - 1) * m.ipi_send_ns + pages[cpu] * m.drain_page_ns) + others.max()
        work[cpu] = sender
        self.other_ns += work
        self.ns_by_kind["drain"] += float(np.add.reduce(work))

    def end_tick(self, folds: np.ndarray) -> None:
        """Price the tick: ``folds[c]`` is how often CPU c wrote the counter line this tick."""
        checks = self.checks
        safe = self.safe_checks
        all_checks = checks + safe
        n_checks = int(np.add.reduce(all_checks))
        wm = None
        if n_checks:
            self.watermark_checks += n_checks
            # A check reads zone->vm_stat; it misses once per write by another CPU, at most.
            writes_by_others = int(np.add.reduce(folds)) - folds
            misses = np.minimum(all_checks, writes_by_others)
            wm = all_checks * self.check_ns + misses * self.line_ns
            if self.normal_snapshot:
                wm = wm + checks * self.snapshot_ns
                self.snapshot_reads += int(np.add.reduce(checks))
            if self.safe_snapshot:
                wm = wm + safe * self.snapshot_ns
                self.snapshot_reads += int(np.add.reduce(safe))
            checks[:] = 0
            safe[:] = 0
        n_folds = int(np.add.reduce(folds))
        fold_ns = None
        if n_folds:
            self.folds += n_folds
            fold_ns = folds * (self.model.fold_lines * self.line_ns)
        tick = self.other_ns
        wm_sum = 0.0
        if wm is not None:
            tick = tick + wm
            wm_sum = float(np.add.reduce(wm))
            self.watermark_ns_by_cpu += wm
        if fold_ns is not None:
            tick = tick + fold_ns
            self.ns_by_kind["fold"] += float(np.add.reduce(fold_ns))
        total = float(np.add.reduce(tick))
        self.tick_watermark_ns = wm_sum
        self.tick_ns = total
        self.watermark_ns += wm_sum
        self.ns_by_kind["watermark"] += wm_sum
        self.total_ns += total
        if total:
            self.debt += tick
            self._debt_any = True
        if np.count_nonzero(self.other_ns):
            self.other_ns[:] = 0.0

    # -- results ------------------------------------------------------------------------------
    def summary(self, simulated_ms: int) -> dict:
        """The ``cost`` entry of ``RunResult.to_dict``."""
        cpu_ns = self.cpus * simulated_ms * TICK_NS
        per_socket = np.bincount(self.socket, minlength=self.sockets)
        by_socket = np.bincount(
            self.socket, weights=self.watermark_ns_by_cpu, minlength=self.sockets
        )
        socket_ns = per_socket * simulated_ms * TICK_NS
        return {
            "snapshot_reads": self.snapshot_reads,
            "drain_ipis": self.drain_ipis,
            "threshold_rewrites": self.threshold_rewrites,
            "watermark_cpu_share": self.watermark_ns / cpu_ns if cpu_ns else 0.0,
            # The same, of each socket's CPU time (the readers preset simulates socket 0's node).
            "watermark_cpu_share_by_socket": [
                float(w / t) if t else 0.0 for w, t in zip(by_socket, socket_ns, strict=True)
            ],
            "watermark_checks": self.watermark_checks,
            "folds": self.folds,
            "overhead_cpu_share": self.total_ns / cpu_ns if cpu_ns else 0.0,
            "ns": {k: float(v) for k, v in self.ns_by_kind.items()},
            "sockets": self.sockets,
            "scale": self.scale,
        }
