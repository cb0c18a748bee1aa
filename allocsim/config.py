"""Simulation settings: frozen, keyword-only, validated; and the scenario presets.

Field metadata (``label``, ``range``, ``unit``, ``help``, ``group``) is the single source for the
widgets, the command-line options and the docs: nothing else declares these parameters again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from types import SimpleNamespace

import numpy as np

from .constants import NR_CPUS, PAGE_SHIFT
from .errors import check_float, check_int, check_pcp_high, check_watermarks_fit
from .page_alloc import min_free_kbytes as kernel_min_free_kbytes
from .page_alloc import setup_pageset, setup_per_zone_wmarks, zone_batchsize
from .patches import Patches
from .vmstat import (
    STAT_THRESHOLD_MAX,
    calculate_pressure_threshold,
    calculate_threshold,
    drift_mark,
    refresh_zone_stat_thresholds,
)

__all__ = ["SimConfig", "PRESETS", "preset", "scaled_zone_mib", "Derived"]

MAX_ZONE_MIB = 1 << 18  # 256 GiB


def _f(default, *, label, range, help, unit="", group="machine", optional=False, integer=True):
    """A dataclass field with the metadata that widgets, CLI and docs read."""
    return field(
        default=default,
        metadata=dict(
            label=label,
            range=range,
            help=help,
            unit=unit,
            group=group,
            optional=optional,
            integer=integer,
        ),
    )


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Everything that defines one simulated run. Same config (seed included) ⇒ same run.

    Build one with a preset (``SimConfig.preset("large", cpus=512)``) or directly. Every
    parameter is checked in ``__post_init__``; a bad value raises ``ValueError``/``TypeError``
    naming the parameter and its valid range.
    """

    # -- the machine ------------------------------------------------------------------------
    cpus: int = _f(
        256,
        label="CPUs",
        range=(1, NR_CPUS),
        help="online CPUs (num_online_cpus); every CPU takes interrupts",
    )
    zone_mib: int = _f(
        1024,
        label="zone size",
        unit="MiB",
        range=(64, MAX_ZONE_MIB),
        help="size of the one Normal zone (present_pages × 4 KiB)",
    )
    sockets: int = _f(
        1,
        label="sockets",
        range=(1, 64),
        help="processor sockets, CPUs spread evenly in blocks: a cache line from another "
        "socket costs more (the cost model, allocsim/cost.py)",
    )
    stat_threshold: int | None = _f(
        None,
        label="stat_threshold",
        range=(0, STAT_THRESHOLD_MAX),
        optional=True,
        help="per-CPU vmstat threshold; None = calculate_threshold",
    )
    stat_interval_ms: int = _f(
        1000,
        label="stat_interval",
        unit="ms",
        range=(10, 60_000),
        help="vm.stat_interval: how often each CPU's vmstat_update folds "
        "its deltas (staggered by 3 ms per CPU); whole seconds on 2.6.36, "
        "anything else needs counterfactual",
    )
    min_free_kbytes: int | None = _f(
        None,
        label="min_free_kbytes",
        unit="KiB",
        range=(128, 1 << 22),
        optional=True,
        help="vm.min_free_kbytes; None = int_sqrt(lowmem_kbytes*16)",
    )
    pcp_high: int | None = _f(
        None,
        label="pcp high",
        range=(0, 1 << 16),
        optional=True,
        help="per-cpu list high mark; None = 6 × batch",
    )
    pcp_batch: int | None = _f(
        None,
        label="pcp batch",
        range=(1, 1 << 14),
        optional=True,
        help="per-cpu list batch; None = zone_batchsize",
    )
    cost_scale: float = _f(
        1.0,
        label="cost of accuracy",
        range=(0.0, 100.0),
        integer=False,
        help="multiplies every constant of the cost model (watermark checks, snapshot reads, "
        "folds, threshold rewrites, IPIs): the CPU time they take is not spent serving "
        "the writers; 0 = all free",
    )
    patches: Patches = field(
        default_factory=Patches,
        metadata=dict(
            label="patches", group="kernel", help="which of the three 2.6.36 fixes are applied"
        ),
    )
    seed: int = _f(
        1,
        label="seed",
        range=(0, 2**32 - 1),
        group="run",
        help="one seed = one workload; patches do not change it",
    )
    duration_ms: int = _f(
        4000,
        label="duration",
        unit="ms",
        range=(1, 3_600_000),
        group="run",
        help="simulated time the run covers (its time budget)",
    )

    # -- the workload (independent of what the allocator does) -------------------------------
    # SIMPLIFICATION (burst timing): the workload starts at once on a quiet, folded machine, at
    # burst_start_ms after boot; 20 ms falls just after the writer CPUs' vmstat fold wave (CPU c
    # folds at t = -3c mod stat_interval), the worst case for drift. It stands for a batch job
    # starting on an idle server; results.md varies it (500 and 950 ms).
    burst_start_ms: int = _f(
        20,
        label="burst starts",
        unit="ms",
        range=(0, 3_600_000),
        group="workload",
        help="end of the quiet phase: writers and interrupts start here",
    )
    burst_ms: int | None = _f(
        None,
        label="burst length",
        unit="ms",
        range=(1, 3_600_000),
        optional=True,
        group="workload",
        help="how long the burst lasts; None = to the end of the run",
    )
    writer_cpus: int = _f(
        64,
        label="writer CPUs",
        range=(0, NR_CPUS),
        group="workload",
        help="CPUs running a writer task (CPUs 0 .. n-1, as taskset would pin them)",
    )
    writer_rate: float = _f(
        4.0,
        label="writer rate",
        unit="pages/ms",
        range=(0.0, 256.0),
        group="workload",
        integer=False,
        help="page-cache pages each writer asks for per ms (Poisson mean)",
    )
    dirty_fraction: float = _f(
        1.0,
        label="dirty fraction",
        range=(0.0, 1.0),
        group="workload",
        integer=False,
        help="share of written pages (and of the LRU at start) that are "
        "dirty: reclaiming one needs an allocation for writeback",
    )
    start_dirty_fraction: float | None = _f(
        None,
        label="dirty at start",
        range=(0.0, 1.0),
        optional=True,
        group="workload",
        integer=False,
        help="share of the LRU that is dirty at t=0 (the newest pages; the older "
        "ones are clean); None = dirty_fraction",
    )
    task_temp_fraction: float = _f(
        0.0,
        label="temporary pages",
        range=(0.0, 1.0),
        group="workload",
        integer=False,
        help="share of task allocations that are temporary (freed "
        "after task_page_lifetime_ms) instead of page cache",
    )
    task_page_lifetime_ms: int = _f(
        20,
        label="temporary page lifetime",
        unit="ms",
        range=(1, 10_000),
        group="workload",
        help="how long a temporary task page lives",
    )
    # SIMPLIFICATION (interrupt load): every CPU's interrupts allocate GFP_ATOMIC pages at one
    # Poisson rate and free each on the same CPU a fixed time later (network receive buffers);
    # they strand pages on CPUs that run no writer. results.md varies it (0 and 1 page/ms).
    atomic_rate: float = _f(
        0.3,
        label="interrupt rate",
        unit="pages/ms/CPU",
        range=(0.0, 64.0),
        group="workload",
        integer=False,
        help="GFP_ATOMIC pages each CPU's interrupts ask for per ms during "
        "the burst (Poisson mean)",
    )
    quiet_atomic_rate: float = _f(
        0.0,
        label="quiet interrupt rate",
        unit="pages/ms/CPU",
        range=(0.0, 64.0),
        group="workload",
        integer=False,
        help="GFP_ATOMIC rate before and after the burst",
    )
    atomic_lifetime_ms: int = _f(
        5,
        label="interrupt page lifetime",
        unit="ms",
        range=(1, 10_000),
        group="workload",
        help="an interrupt's page is freed on its CPU after this long",
    )

    # -- memory at the start and reclaim ------------------------------------------------------
    initial_free_pages: int | None = _f(
        None,
        label="free at start",
        unit="pages",
        range=(0, 1 << 40),
        optional=True,
        group="memory",
        help="pages on the buddy lists at t=0 (pcp lists empty, "
        "counters folded); None = high + 64 per CPU",
    )
    lru_fraction: float = _f(
        0.75,
        label="LRU share",
        range=(0.0, 1.0),
        group="memory",
        integer=False,
        help="share of the used memory on the LRU (the rest is kernel "
        "memory that reclaim cannot free)",
    )
    io_latency_ms: int = _f(
        20,
        label="I/O latency",
        unit="ms",
        range=(1, 10_000),
        group="memory",
        help="time from starting writeback to the page being clean",
    )
    io_irq_cpus: int | None = _f(
        None,
        label="I/O interrupt CPUs",
        range=(1, NR_CPUS),
        optional=True,
        group="memory",
        help="the device's completion interrupts run on the last n "
        "CPUs in turn and free the pages that carried the "
        "writeback there; None = min(8, cpus)",
    )
    # SIMPLIFICATION (writeback cost): sending a dirty page to the device allocates this many
    # pages and nothing else; 1 stands for a network filesystem (an skb per page, Mel Gorman's
    # NFS example), 0 for a block device whose bios and requests come from mempools.
    writeback_alloc_ratio: float = _f(
        1.0,
        label="writeback allocations",
        unit="pages/page",
        range=(0.0, 4.0),
        group="memory",
        integer=False,
        help="pages allocated to send one dirty page to the device: 1 for a network "
        "filesystem (socket buffers), 0 for a block device whose requests come from "
        "mempools",
    )
    # SIMPLIFICATION (dirty limit): global thresholds only, as 2.6.36's global_dirty_limits with
    # its defaults of vm.dirty_ratio 20 / vm.dirty_background_ratio 10 (no per-bdi or per-task
    # shares). Writers are throttled in balance_dirty_pages above the first; the flusher writes
    # back above the second (allocsim.page_writeback).
    dirty_ratio: int = _f(
        20,
        label="dirty_ratio",
        unit="%",
        range=(1, 100),
        group="memory",
        help="vm.dirty_ratio: above this share of dirtyable memory (free + LRU) dirty and "
        "writeback pages, writers wait in balance_dirty_pages",
    )
    dirty_background_ratio: int = _f(
        10,
        label="dirty_background_ratio",
        unit="%",
        range=(0, 100),
        group="memory",
        help="vm.dirty_background_ratio: above this share the flusher thread writes "
        "back the oldest dirty pages; 100 = no flusher",
    )
    writeback_limit: int = _f(
        4096,
        label="writeback queue",
        unit="pages",
        range=(1, 1 << 24),
        group="memory",
        help="pages in writeback before the device counts as congested "
        "and reclaim skips dirty pages",
    )
    kswapd_cpu: int | None = _f(
        None,
        label="kswapd CPU",
        range=(0, NR_CPUS - 1),
        optional=True,
        group="memory",
        help="the CPU kswapd runs on (its pcp list takes its reclaimed pages); None = the last CPU",
    )
    kswapd_asleep_at_start: bool = field(
        default=False,
        metadata=dict(
            label="kswapd asleep at start",
            group="memory",
            help="at t=0 kswapd has finished its boot-time 100 ms nap and sleeps in schedule() "
            "(a machine that has been up a while); False: it starts its loop at t=0, as at "
            "boot, and naps first",
        ),
    )
    kswapd_scan_per_ms: int = _f(
        512,
        label="kswapd scan rate",
        unit="pages/ms",
        range=(32, 1 << 20),
        group="memory",
        help="LRU pages kswapd can scan per ms",
    )
    counterfactual: bool = field(
        default=False,
        metadata=dict(
            label="counterfactual",
            group="run",
            help="allow settings no 2.6.36 kernel can have (a stat_interval that is not "
            "whole seconds); results say so",
        ),
    )
    record_events: bool = field(
        default=True,
        metadata=dict(label="event log", group="run", help="keep the tracepoint event log"),
    )

    def __post_init__(self):
        for f in fields(self):
            meta = f.metadata
            if "range" not in meta:
                continue
            value = getattr(self, f.name)
            if value is None and meta["optional"]:
                continue
            lo, hi = meta["range"]
            # Store the checked value: a numpy integer or float becomes a plain int or float,
            # so to_dict() and JSON work whatever the caller passed.
            check = check_int if meta["integer"] else check_float
            object.__setattr__(self, f.name, check(f.name, value, lo, hi))
        if not isinstance(self.patches, Patches):
            raise TypeError(f"patches must be an allocsim.Patches, got {self.patches!r}")
        for name in ("record_events", "counterfactual", "kswapd_asleep_at_start"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.stat_interval_ms % 1000 and not self.counterfactual:
            # vm.stat_interval is whole seconds (proc_dointvec_jiffies) and vmstat_update re-arms
            # with round_jiffies_relative: a 2.6.36 machine cannot fold more often than 1/s.
            raise ValueError(
                "stat_interval_ms must be whole seconds (1000, 2000, ...) as vm.stat_interval "
                f"is on 2.6.36, got {self.stat_interval_ms}; pass counterfactual=True "
                "(--counterfactual) to simulate a machine no 2.6.36 kernel can be"
            )
        if self.sockets > self.cpus:
            raise ValueError(f"sockets must be in [1, cpus={self.cpus}], got {self.sockets}")
        if self.writer_cpus > self.cpus:
            raise ValueError(
                f"writer_cpus must be in [0, cpus={self.cpus}], got {self.writer_cpus}"
            )
        if self.io_irq_cpus is not None and self.io_irq_cpus > self.cpus:
            raise ValueError(
                f"io_irq_cpus must be in [1, cpus={self.cpus}], got {self.io_irq_cpus}"
            )
        if self.kswapd_cpu is not None and self.kswapd_cpu >= self.cpus:
            raise ValueError(
                f"kswapd_cpu must be in [0, cpus-1={self.cpus - 1}], got {self.kswapd_cpu}"
            )
        d = self.derived()
        batch_from = "pcp_batch" if self.pcp_batch is not None else "the zone's pcp batch"
        check_pcp_high(self.pcp_high, d.pcp_batch, batch_from)
        if self.initial_free_pages is not None and self.initial_free_pages > d.present_pages:
            raise ValueError(
                f"initial_free_pages must be in [0, present_pages={d.present_pages}], "
                f"got {self.initial_free_pages}"
            )
        check_watermarks_fit(self.min_free_kbytes, self.zone_mib, d.wmark_high, d.present_pages)

    # -- derived kernel numbers ---------------------------------------------------------------
    def derived(self) -> Derived:
        """The numbers the kernel derives from this machine (thresholds, watermarks, pcp)."""
        present = self.zone_mib << (20 - PAGE_SHIFT)
        mfk = self.min_free_kbytes
        if mfk is None:
            mfk = kernel_min_free_kbytes(present << (PAGE_SHIFT - 10))
        wmin, wlow, whigh = setup_per_zone_wmarks(mfk, [present])[0]
        threshold = self.stat_threshold
        if threshold is None:
            threshold = calculate_threshold(present, self.cpus)
        high, batch = setup_pageset(zone_batchsize(present))
        if self.pcp_batch is not None:
            batch = self.pcp_batch
            if self.pcp_high is None:
                high = 6 * batch
        if self.pcp_high is not None:
            high = self.pcp_high
        mark = drift_mark(wmin, wlow, whigh, threshold, self.cpus)
        # What the kernel would set: ask refresh_zone_stat_thresholds itself (it holds the
        # patch decision), on a stand-in carrying just the fields it reads.
        stand_in = SimpleNamespace(
            num_online_cpus=self.cpus,
            present_pages=present,
            stat_threshold=np.zeros(self.cpus, dtype=np.int64),
            watermark=[wmin, wlow, whigh],
            percpu_drift_mark=0,
            patches=self.patches,
        )
        refresh_zone_stat_thresholds(stand_in, self.cpus, threshold)
        free0 = self.initial_free_pages
        if free0 is None:
            free0 = min(present, whigh + 64 * self.cpus)
        return Derived(
            present_pages=present,
            min_free_kbytes=mfk,
            wmark_min=wmin,
            wmark_low=wlow,
            wmark_high=whigh,
            stat_threshold=threshold,
            max_drift=self.cpus * threshold,
            tolerate_drift=wlow - wmin,
            pressure_threshold=calculate_pressure_threshold(wmin, wlow, self.cpus),
            drift_mark_if_patched=mark,
            percpu_drift_mark=stand_in.percpu_drift_mark,
            pcp_high=high,
            pcp_batch=batch,
            initial_free_pages=free0,
        )

    def counterfactual_reasons(self) -> list[str]:
        """What in this config no real 2.6.36 machine can have (empty for a kernel-true run)."""
        reasons = []
        if self.stat_interval_ms % 1000:
            reasons.append(
                f"stat_interval {self.stat_interval_ms} ms: vm.stat_interval is whole seconds"
            )
        if self.stat_threshold == 0:
            reasons.append("stat_threshold 0: exact counters, every update folds at once")
        return reasons

    def replace(self, **changes) -> SimConfig:
        """A copy with some fields changed (validated again)."""
        if "patches" in changes and isinstance(changes["patches"], str):
            changes["patches"] = Patches.parse(changes["patches"])
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown SimConfig parameter(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str, **overrides) -> SimConfig:
        """A named scenario (``small``, ``large``, ``steady``, ``readers``) with overrides."""
        return preset(name, **overrides)

    def to_dict(self) -> dict:
        """Plain values (patches as the list of enabled names), for JSON and printing."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v.enabled()) if isinstance(v, Patches) else v
        return out

    @classmethod
    def parameters(cls) -> list[dataclasses.Field]:
        """The fields with their metadata, in declaration order (widgets and CLI read these)."""
        return list(fields(cls))


@dataclass(frozen=True)
class Derived:
    """Kernel-derived numbers for a config: what ``/proc/zoneinfo`` would show."""

    present_pages: int
    min_free_kbytes: int
    wmark_min: int
    wmark_low: int
    wmark_high: int
    stat_threshold: int
    max_drift: int
    tolerate_drift: int
    # What 2.6.38's kswapd installs while it is awake (only in zones with a drift mark).
    pressure_threshold: int
    drift_mark_if_patched: int
    percpu_drift_mark: int
    pcp_high: int
    pcp_batch: int
    initial_free_pages: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def scaled_zone_mib(cpus: int) -> int:
    """Zone size that grows with the machine: 16 MiB per CPU, at least 1 GiB.

    A 2010 many-CPU machine had memory in proportion to its CPUs; a fixed small zone on a huge
    machine would have its buddy lists emptied by the first refills alone (cpus × batch pages).
    """
    cpus = check_int("cpus", cpus, 1, NR_CPUS)
    return max(1024, 16 * cpus)


def _large(**o):
    cpus = o.get("cpus", 256)
    base = dict(
        cpus=cpus,
        zone_mib=scaled_zone_mib(cpus),
        writer_cpus=max(1, cpus // 4),
        # SCENARIO: the writers together ask for 3 pages/ms per writer CPU, just under what the
        # device takes (writeback_limit / io_latency_ms = 204 pages/ms at 64 writers), so a
        # machine with exact counters keeps up: it delivers about nine tenths of what is asked.
        writer_rate=3.0,
        # SCENARIO: no dirty throttling (vm.dirty_ratio 100, a tunable write-heavy servers raise)
        # and a page cache that is all dirty at the start: reclaim meets dirty pages first, and
        # writing them back needs memory (writeback_alloc_ratio 1, a network filesystem). With
        # the 2.6.36 defaults (20 / 10) the flusher keeps the LRU tail clean and the model shows
        # a loss of throughput instead of a stall: docs/results.md, "Sensitivity".
        dirty_ratio=100,
        duration_ms=4000,
    )
    base.update(o)
    return base


def _steady(**o):
    cpus = o.get("cpus", 256)
    base = dict(
        cpus=cpus,
        zone_mib=scaled_zone_mib(cpus),
        writer_cpus=cpus,  # every CPU writes, whatever the machine's size
        writer_rate=0.5,
        dirty_fraction=0.5,
        task_temp_fraction=0.5,
        atomic_rate=0.3,
        quiet_atomic_rate=0.3,
        burst_start_ms=0,
        duration_ms=4000,
    )
    base.update(o)
    return base


# Shaohua Li's workload (Sep 2010, "zone state overhead"; the V4 changelog of 88f5acf): one
# process per CPU reading its own sparse file, 10 x RAM / CPUs each. Reading a hole allocates a
# zero-filled page-cache page and never touches a disk: clean page cache, no writeback, no
# device interrupts; reclaim frees clean pages. Eight threads per socket, as in the published
# one-socket case (8 threads) and 14-socket case (112 threads).
#
# The model has one zone, so the preset simulates one NUMA node: the zone is that node's, its
# readers are the CPUs of one socket (each allocates from its local node), and kswapd runs on
# that socket. The other sockets' CPUs are online: they count in num_online_cpus (the
# thresholds, the drift mark, the pressure threshold), every snapshot reads their lines and
# drain_all_pages interrupts them, but their own nodes are not simulated (every node does the
# same, so the node's share of CPU time is the machine's).
READERS_PER_SOCKET = 8
# A 2 GiB node: the largest for which one 8-CPU socket still gets a drift mark (8 x 48 = 384
# pages of possible drift > low - min = 362), as Mel Gorman's one-socket machine evidently did.
READER_NODE_MIB = 2048
# Pages each reader allocates per ms. CALIBRATED, the one fitted constant of the cost study:
# chosen so that 2.6.36 spends about 0.66 % of CPU time in the watermark functions on one
# socket (mean of seeds 1-3: 0.68 %), the published one-socket figure; every other figure in
# docs/results.md is predicted. At this rate one socket's readers take 96 pages a tick, well
# inside the 362-page gap between LOW and MIN that the 1 ms tick has to resolve.
READER_RATE = 12.0


def _readers(**o):
    sockets = o.get("sockets", 1)
    cpus = o.get("cpus", READERS_PER_SOCKET * sockets)
    per_socket = max(1, cpus // sockets)
    rate = o.get("writer_rate", READER_RATE)
    base = dict(
        cpus=cpus,
        sockets=sockets,
        zone_mib=READER_NODE_MIB,
        writer_cpus=per_socket,  # one reader per CPU of the simulated node's socket
        writer_rate=rate,
        dirty_fraction=0.0,  # page cache filled from holes: clean, nothing to write back
        atomic_rate=0.0,  # no disk, no device interrupts
        quiet_atomic_rate=0.0,
        burst_start_ms=0,
        kswapd_cpu=per_socket - 1,  # the node's kswapd runs on the node's CPUs
        # kswapd reclaims clean pages twice as fast as the node's readers allocate: it keeps up,
        # and is awake (in balance_pgdat) about half the time.
        kswapd_scan_per_ms=max(32, int(2 * per_socket * rate)),
        kswapd_asleep_at_start=True,  # a machine that has been up: kswapd sleeps at t=0
        duration_ms=1000,
    )
    base.update(o)
    return base


PRESETS = {
    # A workstation: 4 CPUs, 1 GiB. The drift (4 × 30 = 120 pages) fits between LOW and MIN.
    "small": lambda **o: {**dict(cpus=4, zone_mib=1024, writer_cpus=1, duration_ms=4000), **o},
    # The 2010 report's kind of machine: a quiet, folded machine; then writers on a quarter of
    # the CPUs start a dirty-heavy load while interrupts allocate on every CPU.
    "large": _large,
    # Sustained mixed load on many CPUs: every CPU writes, half the pages are clean or temporary.
    "steady": lambda **o: _steady(**o),
    # Shaohua Li's sparse-file readers: 8 readers per socket streaming clean page cache.
    "readers": _readers,
}


def preset(name: str, **overrides) -> SimConfig:
    """Build the named scenario, applying ``overrides`` (any SimConfig field)."""
    if not isinstance(name, str):
        raise TypeError(
            f"preset must be a preset name ({', '.join(PRESETS)}), got {name!r} "
            f"({type(name).__name__})"
        )
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")
    if isinstance(overrides.get("patches"), str):
        overrides["patches"] = Patches.parse(overrides["patches"])
    unknown = set(overrides) - {f.name for f in fields(SimConfig)}
    if unknown:
        raise TypeError(f"unknown SimConfig parameter(s): {', '.join(sorted(unknown))}")
    return SimConfig(**PRESETS[name](**overrides))
