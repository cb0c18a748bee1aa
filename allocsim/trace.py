"""Recording: named per-tick series in preallocated arrays, an event log named after kernel
tracepoints, and :class:`RunResult`, what a run hands to metrics, plots and widgets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .metrics import Episode, verdict

__all__ = ["SERIES", "Recorder", "Event", "EventLog", "RunResult", "Episode"]

# name -> (dtype, description). The order is the column order of to_pandas().
SERIES = {
    "counter": (np.int64, "zone_page_state(NR_FREE_PAGES): the plain, clamped counter"),
    "snapshot": (np.int64, "zone_page_state_snapshot: counter + every CPU's unfolded delta"),
    "read": (np.int64, "what the watermark checks read this tick (zone_nr_free_pages)"),
    "buddy": (np.int64, "pages really on the buddy free lists"),
    "pcp": (np.int64, "pages on all per-cpu lists (free, but not counted)"),
    "in_flight": (
        np.int64,
        "pages counted but not yet on the lists (patch 1's window); "
        "always 0 at tick level, see allocsim.window",
    ),
    "pcp_stranded": (np.int64, "pcp pages on CPUs that run no task (only interrupts use them)"),
    "kswapd_state": (np.int8, "0 sleeping, 1 napping (both on kswapd_wait), 2 in balance_pgdat"),
    "atomic_attempted": (np.int64, "GFP_ATOMIC pages asked for"),
    "atomic_ok": (np.int64, "GFP_ATOMIC pages had"),
    "atomic_failed": (np.int64, "GFP_ATOMIC allocations that failed"),
    "task_demand": (np.int64, "pages the tasks wanted this tick (also while they were stuck)"),
    "task_attempted": (np.int64, "task (GFP_KERNEL) allocations attempted"),
    "task_ok": (np.int64, "task allocations that returned a page"),
    "task_failed": (np.int64, "task attempts that went on into reclaim instead of a page"),
    "memalloc_attempted": (np.int64, "PF_MEMALLOC pages asked for (writeback requests)"),
    "memalloc_ok": (np.int64, "PF_MEMALLOC pages had"),
    "tasks_in_allocator": (np.int64, "tasks inside __alloc_pages_slowpath"),
    "tasks_spinning": (
        np.int64,
        "tasks in the allocator whose last reclaim pass freed no page and started no "
        "writeback (retrying in vain)",
    ),
    "tasks_throttled": (np.int64, "writers waiting in balance_dirty_pages (the dirty limit)"),
    "direct_reclaim": (np.int64, "entries into direct reclaim"),
    "drain_all_pages": (np.int64, "drain_all_pages calls (patch 3's IPIs)"),
    "reclaimed": (np.int64, "pages reclaimed (direct + kswapd)"),
    "scanned": (np.int64, "LRU pages scanned"),
    "writeback": (np.int64, "pages under writeback"),
    "lru_dirty": (np.int64, "dirty pages on the LRU"),
    "lru_clean": (np.int64, "clean pages on the LRU"),
    "folds": (np.int64, "vmstat_update folds this tick"),
    "flushed": (np.int64, "dirty pages the flusher sent to the device"),
    "stat_threshold": (
        np.int64,
        "the per-CPU stat_threshold in force (2.6.38 lowers it while kswapd is awake)",
    ),
    "watermark_ns": (np.float64, "CPU time in watermark checks and their reads (all CPUs, ns)"),
    "cost_ns": (
        np.float64,
        "CPU time the cost model charged this tick: checks, snapshots, folds, threshold "
        "rewrites, IPIs and drains (all CPUs, ns)",
    ),
}


class Recorder:
    """Preallocated per-tick arrays, grown by doubling when a run is resumed past its size."""

    def __init__(self, capacity: int):
        self.n = 0
        self.arrays = {
            name: np.zeros(max(1, capacity), dtype=dt) for name, (dt, _) in SERIES.items()
        }

    def ensure(self, capacity: int) -> None:
        cur = len(self.arrays["counter"])
        if capacity <= cur:
            return
        new = max(capacity, 2 * cur)
        for name, arr in self.arrays.items():
            grown = np.zeros(new, dtype=arr.dtype)
            grown[: self.n] = arr[: self.n]
            self.arrays[name] = grown

    def view(self) -> dict[str, np.ndarray]:
        return {name: arr[: self.n] for name, arr in self.arrays.items()}


@dataclass(frozen=True)
class Event:
    """One tracepoint hit: time (ms), kernel tracepoint name, CPU (-1 = none), a value."""

    t_ms: int
    name: str
    cpu: int
    value: int = 0


def events_from_rows(rows, names) -> list[Event]:
    """``[Event(t, names[code], cpu, value) for t, code, cpu, value in rows]``, four times as
    fast: the compiled engine turns tens of thousands of recorded tracepoint hits into events per
    run. A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; these
    events get the same fields written straight into their ``__dict__``, and compare, hash and
    print as any other :class:`Event`. ``rows`` may be a list of rows or an ``n x 4`` integer
    array (read by columns: a quarter faster than a list of rows)."""
    new = object.__new__
    out = []
    append = out.append
    if isinstance(rows, np.ndarray):
        rows = zip(*rows.T.tolist(), strict=True) if len(rows) else ()
    for t, code, cpu, value in rows:
        e = new(Event)
        d = e.__dict__
        d["t_ms"] = t
        d["name"] = names[code]
        d["cpu"] = cpu
        d["value"] = value
        append(e)
    return out


class EventLog(Sequence):
    """The compiled engine's event log: a list of :class:`Event` that is made when first read.

    A run at 1024 or 4096 CPUs records tens of thousands of tracepoint hits, and an
    :class:`Event` object costs about 0.7 µs to make: a tenth of such a run, for events that
    most runs (a sweep, a benchmark, a live plot) never look at. So the log keeps them as the
    core wrote them, rows of ``(t_ms, code, cpu, value)``, and makes the events, all at once,
    the first time anything reads them; ``len`` needs none of them.

    Read it as a list: it indexes, slices (to a list), iterates, and compares equal to a list
    of the same events, or to another log. ``append`` adds an event, as to a list.
    """

    def __init__(self, names, events=()):
        self._names = tuple(names)
        self._events = list(events)  # the events made so far
        self._rows = []  # then these blocks of rows, in order, not yet made into events
        self._n = len(self._events)

    def add_rows(self, rows) -> None:
        """Add the events of an ``n x 4`` integer array of rows ``(t_ms, code, cpu, value)``
        (copied: the caller may reuse its buffer); ``code`` indexes the log's names."""
        block = np.array(rows, dtype=np.int64, copy=True).reshape(-1, 4)
        if len(block):
            self._rows.append(block)
            self._n += len(block)

    def append(self, event: Event) -> None:
        self._list().append(event)
        self._n += 1

    def copy(self) -> EventLog:
        """A log of the same events that goes its own way from here (as ``list.copy``)."""
        new = EventLog(self._names, self._events)
        new._rows = list(self._rows)  # blocks are never written to: sharing them is safe
        new._n = self._n
        return new

    def _list(self) -> list[Event]:
        if self._rows:
            for block in self._rows:
                self._events.extend(events_from_rows(block, self._names))
            self._rows = []
        return self._events

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        return self._list()[index]

    def __iter__(self):
        return iter(self._list())

    def __eq__(self, other) -> bool:
        if isinstance(other, EventLog):
            other = other._list()
        if isinstance(other, list):
            return self._list() == other
        return NotImplemented

    __hash__ = None  # mutable, as a list

    def __repr__(self) -> str:
        return repr(self._list())


class RunResult:
    """The record of one run: its config, per-tick arrays, events and derived numbers.

    ``result["counter"]`` (or ``result.counter``) is a numpy array over ``result.t_ms``.
    """

    def __init__(
        self,
        config,
        t_ms: np.ndarray,
        series: dict,
        events: list,
        derived: dict,
        events_dropped: int = 0,
        finished: bool = True,
        cost: dict | None = None,
    ):
        self.config = config
        self.t_ms = t_ms
        self.series = series
        self.events = events
        self.events_dropped = events_dropped
        self.derived = derived
        self.finished = finished
        self.cost = cost  # the cost model's totals (allocsim/cost.py), or None
        self.verdict = verdict(self)
        self.episodes: list[Episode] = self.verdict["episodes"]

    # -- access ------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.series:
            return self.series[name]
        const = {
            "wmark_min": "wmark_min",
            "wmark_low": "wmark_low",
            "wmark_high": "wmark_high",
            "drift_mark": "percpu_drift_mark",
        }
        if name in const:
            return np.full(len(self.t_ms), self.derived[const[name]], dtype=np.int64)
        raise KeyError(f"no series {name!r}; available: {', '.join(self.names())}")

    def __getattr__(self, name: str):
        if name.startswith("_") or name in ("series", "derived"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def names(self) -> list[str]:
        """Every series name (recorded, plus the per-run constants as arrays)."""
        return list(self.series) + [
            "wmark_min",
            "wmark_low",
            "wmark_high",
            "drift_mark",
        ]

    def __len__(self) -> int:
        return len(self.t_ms)

    # -- headline numbers ---------------------------------------------------------------------
    @property
    def livelocked(self) -> bool:
        """The one-line summary: stalled bins adding up to ``metrics.LIVELOCK_MIN_MS`` or more.

        Stalls come in pieces (each vmstat fold wave lets a burst of allocations through), so
        the summary adds them up rather than asking for one unbroken second.
        """
        from .metrics import LIVELOCK_MIN_MS

        return self.verdict["stalled_ms"] >= LIVELOCK_MIN_MS

    @property
    def livelock_ms(self) -> int:
        """Milliseconds in stalled bins (the same as ``stalled_ms``)."""
        return int(self.verdict["stalled_ms"])

    @property
    def simulated_ms(self) -> int:
        return int(len(self.t_ms))

    def events_named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def to_dict(self) -> dict:
        """The headline numbers as plain JSON-able values (what ``--json`` prints)."""
        s = self.series
        gap = (s["counter"] - s["buddy"]) if len(self.t_ms) else np.zeros(1, dtype=np.int64)
        cfg = self.config
        demand = int(s["task_demand"].sum())
        v = {k: val for k, val in self.verdict.items() if k != "episodes"}
        return {
            "livelocked": self.livelocked,
            "livelock_ms": self.livelock_ms,
            **v,
            "episodes": [e.to_dict() for e in self.episodes],
            "counterfactual": cfg.counterfactual_reasons(),
            "simulated_ms": self.simulated_ms,
            "cpus": cfg.cpus,
            "zone_mib": cfg.zone_mib,
            "seed": cfg.seed,
            "patches": list(cfg.patches.enabled()),
            "kernel": cfg.patches.kernel(),
            "stat_threshold": self.derived["stat_threshold"],
            "stat_interval_ms": cfg.stat_interval_ms,
            "drift_mark": self.derived["percpu_drift_mark"],
            "watermarks": [
                self.derived["wmark_min"],
                self.derived["wmark_low"],
                self.derived["wmark_high"],
            ],
            "max_drift": self.derived["max_drift"],
            "max_counter_minus_buddy": int(gap.max()) if len(gap) else 0,
            "mean_counter_minus_buddy": float(gap.mean()) if len(gap) else 0.0,
            "min_buddy": int(s["buddy"].min()) if len(self.t_ms) else 0,
            "max_pcp": int(s["pcp"].max()) if len(self.t_ms) else 0,
            "drain_all_pages_calls": int(s["drain_all_pages"].sum()),
            "direct_reclaim_entries": int(s["direct_reclaim"].sum()),
            "kswapd_awake_ms": int((s["kswapd_state"] == 2).sum()),
            "task_demand": demand,
            "task_ok": int(s["task_ok"].sum()),
            "task_throughput": (int(s["task_ok"].sum()) / demand) if demand else None,
            "atomic_failed": int(s["atomic_failed"].sum()),
            "pages_reclaimed": int(s["reclaimed"].sum()),
            "pages_flushed": int(s["flushed"].sum()),
            "cost": self.cost,
        }

    def summary(self) -> str:
        """A readable multi-line summary (what the command line prints)."""
        d = self.to_dict()
        cfg = self.config
        lines = [
            f"allocsim run: {cfg.cpus} CPUs, {cfg.zone_mib} MiB zone, "
            f"patches {cfg.patches.label()}, seed {cfg.seed}, {d['simulated_ms']} ms simulated",
            "  watermarks min/low/high  {}/{}/{} pages".format(*d["watermarks"]),
            f"  stat_threshold           {d['stat_threshold']} per CPU "
            f"(max drift {d['max_drift']} pages vs low-min {self.derived['tolerate_drift']})",
            f"  percpu_drift_mark        {d['drift_mark']}"
            + ("  (not set)" if not d["drift_mark"] else ""),
            f"  counter - buddy          max {d['max_counter_minus_buddy']}, "
            f"mean {d['mean_counter_minus_buddy']:.0f} pages",
            f"  task pages had           {d['task_ok']} of {d['task_demand']} wanted"
            + (f" ({100 * d['task_throughput']:.1f}%)" if d["task_throughput"] is not None else ""),
            f"  GFP_ATOMIC failures      {d['atomic_failed']}",
            f"  direct reclaim entries   {d['direct_reclaim_entries']}",
            f"  drain_all_pages calls    {d['drain_all_pages_calls']}",
            f"  kswapd in balance_pgdat  {d['kswapd_awake_ms']} ms",
        ]
        lines.append(
            f"  stalled                  {d['stalled_ms']} ms (longest {d['longest_stall_ms']} ms);"
            f" counter lied {d['counter_lies_ms']} ms, buddy < min {d['buddy_below_min_ms']} ms"
        )
        lines.append(
            f"  writers                  {100 * d['spinning_share']:.0f}% spinning, "
            f"{100 * d['throttled_share']:.0f}% throttled by the dirty limit"
        )
        if d["counterfactual"]:
            lines.append("  COUNTERFACTUAL           " + "; ".join(d["counterfactual"]))
        c = self.cost
        if c is not None:
            lines.append(
                f"  watermark checks         {100 * c['watermark_cpu_share']:.2f}% of CPU time "
                f"({c['snapshot_reads']} snapshot reads); all charged costs "
                f"{100 * c['overhead_cpu_share']:.2f}%"
            )
            lines.append(
                f"  threshold rewrites       {c['threshold_rewrites']}, "
                f"drain IPIs {c['drain_ipis']}"
            )
        if self.livelocked:
            lines.append(
                f"  LIVELOCK                 {len(self.episodes)} stall(s), "
                f"{d['livelock_ms']} ms in total"
            )
            for e in self.episodes:
                o = e.onset
                lines.append(
                    f"    from {e.start_ms} ms for {e.length_ms} ms; "
                    f"at onset: counter {o['counter']}, "
                    f"snapshot {o['snapshot']}, buddy {o['buddy']}, pcp {o['pcp']}, "
                    f"kswapd {o['kswapd']}, min watermark {o['wmark_min']}"
                )
        else:
            lines.append("  livelock                 none (less than 1 s in stalled bins)")
        return "\n".join(lines)

    def __repr__(self):
        return (
            f"<RunResult {self.config.cpus} CPUs, patches {self.config.patches.label()}, "
            f"seed {self.config.seed}, {self.simulated_ms} ms, "
            f"livelock {self.livelock_ms} ms>"
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_pandas(self):
        """A ``pandas.DataFrame`` indexed by time in ms (needs pandas installed)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - exercised only without pandas
            raise ImportError("RunResult.to_pandas needs pandas: pip install pandas") from e
        df = pd.DataFrame(
            {name: self[name] for name in self.names()}, index=pd.Index(self.t_ms, name="t_ms")
        )
        return df
