"""Small helpers the notebooks call: tables from the kernel formulas, run pairs and ablations,
diagnoses read off a run, and the bridge from ``/proc/zoneinfo`` to a simulation.

Everything here is computed from the model (``allocsim.page_alloc``, ``allocsim.vmstat``,
``allocsim.sim``); nothing knows which outcome a patch "should" have.
"""

from __future__ import annotations

import html
import itertools
from dataclasses import MISSING
from dataclasses import fields as dc_fields
from pathlib import Path

import numpy as np

from .config import PRESETS, SimConfig, preset
from .constants import (
    ALLOC_CPUSET,
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_NO_WATERMARKS,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MASK,
    GFP_ATOMIC,
    GFP_KERNEL,
    GFP_NOIO,
    PAGE_SHIFT,
)
from .patches import PATCH_INFO, Patches

__all__ = [
    "Table",
    "fitted_preset",
    "gfp_contexts",
    "run_pair",
    "run_triple",
    "verdict_table",
    "ablation",
    "snapshot_ticks",
    "kswapd_when_truth_below_min",
    "diagnose",
    "buddyinfo",
    "patch_card",
    "PATCH_NOTES",
    "load_zoneinfo",
    "config_like",
    "BUNDLED_ZONEINFO",
]

# ---------------------------------------------------------------------------------------------
# A table that shows itself as HTML in a notebook and as text elsewhere
# ---------------------------------------------------------------------------------------------


class Table(list):
    """A list of row dicts that renders as an HTML table in Jupyter and as text in print()."""

    def __init__(self, rows=(), columns=None, caption: str = ""):
        super().__init__(rows)
        self.columns = list(columns) if columns else (list(self[0]) if self else [])
        self.caption = caption

    @staticmethod
    def _fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, (int, np.integer)):
            return f"{v:,}"
        return "–" if v is None else str(v)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(self._fmt(r.get(c)))}</td>" for c in self.columns)
            + "</tr>"
            for r in self
        )
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        cells = [[str(c) for c in self.columns]] + [
            [self._fmt(r.get(c)) for c in self.columns] for r in self
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        if self.caption:
            lines.insert(0, self.caption)
        return "\n".join(lines)

    def column(self, name: str) -> list:
        """The values of one column, in row order."""
        return [r.get(name) for r in self]


# ---------------------------------------------------------------------------------------------
# Configs that fit the machine
# ---------------------------------------------------------------------------------------------

# Workload fields that must stay within the machine: (field, largest value for `cpus` CPUs).
_FIT_TO_CPUS = (
    ("writer_cpus", lambda n: n),
    ("io_irq_cpus", lambda n: n),
    ("kswapd_cpu", lambda n: n - 1),
)


def fitted_preset(name: str, **overrides) -> SimConfig:
    """``preset(name, **overrides)``, with the workload's CPU numbers fitted to the machine.

    The presets give some workload fields fixed CPU numbers (the ``small`` preset's 8 I/O
    interrupt CPUs, ``steady``'s 256 writer CPUs). When ``cpus`` is made smaller than those, the
    fields that were not set explicitly are lowered to fit, instead of failing validation.
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")
    base = {f.name: f.default for f in dc_fields(SimConfig) if f.default is not MISSING}
    base.update(PRESETS[name](**overrides))
    cpus = base["cpus"]
    fixes = {}
    for field, largest in _FIT_TO_CPUS:
        if field not in overrides and base.get(field) is not None and base[field] > largest(cpus):
            fixes[field] = max(0 if field == "kswapd_cpu" else 1, largest(cpus))
    return preset(name, **overrides, **fixes)


# ---------------------------------------------------------------------------------------------
# Watermarks and GFP contexts
# ---------------------------------------------------------------------------------------------


def _flag_names(flags: int) -> str:
    names = [("ALLOC_WMARK_MIN", "ALLOC_WMARK_LOW", "ALLOC_WMARK_HIGH")[flags & ALLOC_WMARK_MASK]]
    if flags & ALLOC_NO_WATERMARKS:
        names = ["ALLOC_NO_WATERMARKS"]
    for bit, name in (
        (ALLOC_HARDER, "ALLOC_HARDER"),
        (ALLOC_HIGH, "ALLOC_HIGH"),
        (ALLOC_CPUSET, "ALLOC_CPUSET"),
    ):
        if flags & bit:
            names.append(name)
    return " | ".join(names)


def _fails_at_or_below(mark: int, flags: int) -> int:
    """Largest free count (as read) at which ``zone_watermark_ok(order 0)`` fails."""
    from . import page_alloc

    ok = getattr(page_alloc, "__zone_watermark_ok")
    if flags & ALLOC_NO_WATERMARKS:
        return 0
    lo, hi = 0, max(1, 4 * mark + 4)  # ok(lo) is False for any mark >= 0, ok(hi) is True
    if ok(lo, 0, mark, 0, flags):
        return -1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid, 0, mark, 0, flags):
            hi = mid
        else:
            lo = mid
    return lo


def gfp_contexts(config: SimConfig | None = None) -> Table:
    """Who may go how deep: for each allocation context, the watermark and flags its attempt
    uses and the free count (as read) at or below which that attempt fails.

    Computed with the model's own ``gfp_to_alloc_flags`` and ``__zone_watermark_ok``
    (mm/page_alloc.c, 2.6.36) on the watermarks of ``config`` (default: the ``large`` preset).
    """
    from .page_alloc import gfp_to_alloc_flags

    cfg = config if config is not None else preset("large")
    d = cfg.derived()
    wm = (d.wmark_min, d.wmark_low, d.wmark_high)
    contexts = [
        (
            "every allocation, fast path",
            "any",
            ALLOC_WMARK_LOW | ALLOC_CPUSET,
            "get_page_from_freelist",
            "–",
        ),
        (
            "task, slow path",
            "GFP_KERNEL",
            gfp_to_alloc_flags(GFP_KERNEL),
            "__alloc_pages_slowpath",
            "yes: direct reclaim, then retry for ever (order 0)",
        ),
        (
            "interrupt, slow path",
            "GFP_ATOMIC",
            gfp_to_alloc_flags(GFP_ATOMIC, in_interrupt=True),
            "__alloc_pages_slowpath",
            "no: fails",
        ),
        (
            "reclaim itself (PF_MEMALLOC)",
            "GFP_NOIO + PF_MEMALLOC",
            gfp_to_alloc_flags(GFP_NOIO, pf_memalloc=True),
            "__alloc_pages_slowpath",
            "no: fails (must not recurse into reclaim)",
        ),
    ]
    rows = []
    for who, gfp, flags, where, sleeps in contexts:
        idx = flags & ALLOC_WMARK_MASK
        mark = 0 if flags & ALLOC_NO_WATERMARKS else wm[idx]
        wname = ("WMARK_MIN", "WMARK_LOW", "WMARK_HIGH")[idx]
        rows.append(
            {
                "who": who,
                "gfp": gfp,
                "alloc_flags": _flag_names(flags),
                "watermark": "none" if flags & ALLOC_NO_WATERMARKS else f"{wname} = {mark}",
                "fails_at_or_below": _fails_at_or_below(mark, flags),
                "may sleep and reclaim": sleeps,
                "kernel function": where,
            }
        )
    return Table(
        rows,
        caption=f"GFP contexts on a {cfg.zone_mib} MiB zone (min/low/high {wm[0]}/{wm[1]}/{wm[2]})",
    )


# ---------------------------------------------------------------------------------------------
# Runs, pairs and ablations
# ---------------------------------------------------------------------------------------------


def run_pair(config: SimConfig, patches: Patches | None = None):
    """The same config (same seed) with no patch and with ``patches`` (default all three)."""
    from .sim import Simulation

    patches = Patches.all() if patches is None else patches
    off = Simulation(config.replace(patches=Patches.none())).run()
    on = Simulation(config.replace(patches=patches)).run()
    return off, on


def run_triple(config: SimConfig):
    """The same seed unpatched, with all three patches, and with exact counters.

    Returns ``(none, all, exact)`` RunResults; the exact machine
    (:func:`allocsim.metrics.exact_config`) is the yardstick for what the patches bought.
    """
    from .compare import compare_results

    return tuple(r for _, r in compare_results(config, ("none", "all", "exact")))


def verdict_table(results) -> Table:
    """One row per run: pages had, share of the exact run's, stalled ms, counter lies."""
    results = list(results)
    exact = next((r for r in results if r.config.stat_threshold == 0), None)
    rows = []
    for r in results:
        v = r.verdict
        label = "exact counters" if r.config.stat_threshold == 0 else r.config.patches.label()
        row = {"machine": label, "pages had": v["delivered_pages"]}
        if exact is not None:
            row["of exact"] = (
                f"{100 * v['delivered_pages'] / max(1, exact.verdict['delivered_pages']):.0f}%"
            )
        row.update(
            {
                "stalled ms": v["stalled_ms"],
                "counter lied ms": v["counter_lies_ms"],
                "drain_all_pages": int(r.series["drain_all_pages"].sum()),
            }
        )
        rows.append(row)
    return Table(rows)


def snapshot_ticks(result) -> int:
    """Ticks in which the watermark checks read the snapshot instead of the counter.

    Patch 2 (aa45484) takes it when, at the start of the tick, the counter is below
    ``percpu_drift_mark`` and kswapd is in ``balance_pgdat`` (off ``kswapd_wait``).
    """
    s = result.series
    mark = result.derived["percpu_drift_mark"]  # 0 (never set) unless patch 2 is on
    if not mark or len(s["counter"]) < 2:
        return 0
    below = s["counter"][:-1] < mark
    awake = s["kswapd_state"][:-1] == 2
    return int((below & awake).sum())


def kswapd_when_truth_below_min(result) -> dict:
    """While the buddy lists held fewer pages than WMARK_MIN: how many ms kswapd spent asleep,
    napping and in ``balance_pgdat``. Patch 2 only helps in the last of these."""
    s = result.series
    low = s["buddy"] < result.derived["wmark_min"]
    state = s["kswapd_state"][low]
    return {
        "ms_truth_below_min": int(low.sum()),
        "sleeping": int((state == 0).sum()),
        "napping": int((state == 1).sum()),
        "balancing": int((state == 2).sum()),
    }


def _row(result, label=None) -> dict:
    d = result.to_dict()
    k = kswapd_when_truth_below_min(result)
    return {
        "patches": label or result.config.patches.label(),
        "livelocked": d["livelocked"],
        "stalled ms": d["stalled_ms"],
        "pages had": d["delivered_pages"],
        "GFP_ATOMIC failed": d["atomic_failed"],
        "drain_all_pages": d["drain_all_pages_calls"],
        "direct reclaim": d["direct_reclaim_entries"],
        "kswapd awake ms": d["kswapd_awake_ms"],
        "snapshot ticks": snapshot_ticks(result),
        "kswapd asleep while truth < min (ms)": k["sleeping"] + k["napping"],
    }


def ablation(config: SimConfig, subsets=None):
    """Run ``config`` under every subset of the three patches (same seed).

    Returns ``(table, results)``: a :class:`Table` with one row per subset (livelock ms, task
    throughput, GFP_ATOMIC failures, ``drain_all_pages`` calls, direct reclaim entries, kswapd
    time, snapshot ticks) and a dict ``label -> RunResult``.
    """
    from .sim import Simulation

    if subsets is None:
        names = Patches.names()
        subsets = [
            Patches(**dict(zip(names, bits, strict=True)))
            for bits in itertools.product((False, True), repeat=len(names))
        ]
        subsets.sort(key=lambda p: (len(p.enabled()), [not getattr(p, n) for n in names]))
    results = {}
    rows = []
    for p in subsets:
        res = Simulation(config.replace(patches=p)).run()
        results[p.label()] = res
        rows.append(_row(res))
    return Table(
        rows,
        caption=f"ablation: {config.cpus} CPUs, {config.zone_mib} MiB, "
        f"seed {config.seed}, {config.duration_ms} ms",
    ), results


def diagnose(result) -> str:
    """A few sentences read off a run: what the counter said, what was really free, where the
    free pages were, what kswapd did, and what the tasks got."""
    d = result.derived
    out = []
    if result.episodes:
        e = result.episodes[0]
        o = e.onset
        v = result.verdict
        out.append(
            f"{len(result.episodes)} stall(s), {v['stalled_ms']} ms in stalled bins in all; "
            f"the first from {e.start_ms} ms for {e.length_ms} ms."
        )
        out.append(
            f"At its onset the counter said {o['counter']} pages free "
            f"(WMARK_MIN is {d['wmark_min']}), but the buddy lists held {o['buddy']} "
            f"and the snapshot (counter + every CPU's delta) was {o['snapshot']}."
        )
        out.append(
            f"{o['pcp']} free pages sat on per-cpu lists, {o['pcp_stranded']} of them on "
            f"CPUs that run no task (only their interrupts can use them)."
        )
        out.append(f"kswapd was {o['kswapd']}.")
        s = result.series
        sl = slice(e.start_ms, e.start_ms + e.length_ms)
        demand = int(s["task_demand"][sl].sum())
        ok = int(s["task_ok"][sl].sum())
        out.append(
            f"During that stall the tasks got {ok} of the {demand} pages they asked "
            f"for; {int(s['direct_reclaim'][sl].sum())} direct-reclaim entries, "
            f"{int(s['memalloc_ok'][sl].sum())} of {int(s['memalloc_attempted'][sl].sum())} "
            f"writeback allocations succeeded."
        )
    else:
        r = result.to_dict()
        out.append(
            f"No stall in {r['simulated_ms']} ms: the tasks got "
            f"{100 * (r['task_throughput'] or 0):.1f}% of the pages they asked for."
        )
        out.append(
            f"Largest counter − buddy gap {r['max_counter_minus_buddy']} pages; "
            f"{r['drain_all_pages_calls']} drain_all_pages calls; kswapd in "
            f"balance_pgdat for {r['kswapd_awake_ms']} ms."
        )
    return " ".join(out)


# ---------------------------------------------------------------------------------------------
# Kernel-facing text
# ---------------------------------------------------------------------------------------------


def buddyinfo(zone, node: int = 0) -> str:
    """The zone's line of ``/proc/buddyinfo`` (mm/vmstat.c ``frag_show_print``)."""
    counts = "".join(f"{n:6d} " for n in zone.nr_free_by_order())
    return f"Node {node}, zone {zone.name:>8s} {counts}"


# Short paraphrases of each commit's changelog (the subject lines in PATCH_INFO are quoted
# verbatim), with the Message-ID of the posting they paraphrase.
PATCH_NOTES = {
    "counter_after_free": (
        "Watermark checks read NR_FREE_PAGES without the zone lock. Because the free paths "
        "raised the counter before the pages were on the free lists, a check could pass on "
        "pages that were not there yet; with many GFP_ATOMIC callers the min watermark can be "
        "breached and, in extreme cases, the machine livelocks. Update the counter afterwards.",
        "1282550442-15193-2-git-send-email-mel@csn.ul.ie",
    ),
    "drift_mark_snapshot": (
        "On many-CPU machines the global counter can differ a lot from the real number of free "
        "pages. Below percpu_drift_mark, and only while kswapd is awake (memory is low), the "
        "watermark checks add every CPU's unfolded delta: more cache lines touched, but cheaper "
        "than IPIs to fold the counters.",
        "1282550442-15193-3-git-send-email-mel@csn.ul.ie",
    ),
    "drain_after_reclaim": (
        "After direct reclaim a task may still fail to allocate because the pages it freed, and "
        "many others, sit on per-cpu lists it cannot use. If reclaim made progress but the "
        "allocation fails, drain every CPU's per-cpu lists and try once more.",
        "1282550442-15193-4-git-send-email-mel@csn.ul.ie",
    ),
    # 88f5acf (2.6.38), one commit split into its two behaviours; paraphrasing the V4 posting.
    "pressure_threshold": (
        "Reading every CPU's delta in each watermark check cost 5-10 % of CPU time on large "
        "machines (cache lines bouncing between sockets). Instead, while kswapd is awake, lower "
        "the per-cpu thresholds of zones where drift is dangerous so that the worst-case drift "
        "stays between the low and min watermarks, and restore them when kswapd sleeps.",
        "1288278816-32667-1-git-send-email-mel@csn.ul.ie",
    ),
    "watermark_ok_safe": (
        "To make sure kswapd is woken, and does not go to sleep too early, a safe version of "
        "zone_watermark_ok takes the accurate reading below the drift mark when called from "
        "wakeup_kswapd and from kswapd's decision to sleep: still an expensive function, but "
        "called far less often. zone_nr_free_pages goes away.",
        "1288278816-32667-1-git-send-email-mel@csn.ul.ie",
    ),
}


class _Card:
    def __init__(self, name):
        commit, function, subject = PATCH_INFO[name]
        self.name, self.commit, self.function, self.subject = name, commit, function, subject
        self.note, self.message_id = PATCH_NOTES[name]

    def _repr_html_(self) -> str:
        e = html.escape
        return (
            f"<div style='border-left:4px solid #1f77b4;padding-left:8px'>"
            f"<b>{e(self.name)}</b> — commit <code>{e(self.commit)}</code>, changes "
            f"<code>{e(self.function)}</code><br>"
            f"<i>“{e(self.subject)}”</i> (commit subject)<br>"
            f"{e(self.note)} <small>(changelog, paraphrased; posted as "
            f"&lt;{e(self.message_id)}&gt;)</small></div>"
        )

    def __str__(self) -> str:
        return (
            f"{self.name}: commit {self.commit}, changes {self.function}\n"
            f'  "{self.subject}"\n  {self.note}\n  (posted as <{self.message_id}>)'
        )

    __repr__ = __str__


def patch_card(name: str) -> _Card:
    """What one patch changes: commit, kernel function, subject line and a short paraphrase."""
    if name not in PATCH_INFO:
        raise ValueError(f"patch must be one of {', '.join(PATCH_INFO)}, got {name!r}")
    return _Card(name)


# ---------------------------------------------------------------------------------------------
# Your machine: /proc/zoneinfo -> a simulation
# ---------------------------------------------------------------------------------------------

BUNDLED_ZONEINFO = Path(__file__).resolve().parent / "data" / "zoneinfo"


def load_zoneinfo(path=None):
    """Read a zoneinfo file: ``path``, else ``/proc/zoneinfo``, else a bundled 2010 capture.

    Returns ``(ZoneinfoFile, source)``; ``source`` says which file was read (and why, when it
    fell back). Never raises for a missing ``/proc/zoneinfo`` (macOS, Windows, containers).
    """
    from . import zoneinfo as zi

    tried = []
    candidates = [Path(path)] if path is not None else [Path(zi.DEFAULT_PATH)]
    candidates += sorted(BUNDLED_ZONEINFO.glob("2.6.36-64cpu*.txt")) + sorted(
        BUNDLED_ZONEINFO.glob("*.txt")
    )
    for cand in candidates:
        try:
            parsed = zi.read_zoneinfo(str(cand))
        except (OSError, zi.ZoneinfoError) as exc:
            tried.append(f"{cand}: {exc}")
            continue
        source = str(cand)
        if tried:
            source += " (fell back: " + "; ".join(tried) + ")"
        return parsed, source
    raise FileNotFoundError("no zoneinfo file could be read: " + "; ".join(tried))


def config_like(overrides: dict, name: str = "large", **extra):
    """A config for "a machine like this" from ``zoneinfo.sim_overrides``: every value is
    clamped into the range its SimConfig field accepts, and each clamp is noted.

    Returns ``(config, overrides, notes)``: the SimConfig (``name`` preset), the fitted
    overrides (pass them to ``RunDemo(name, **overrides)``) and what was changed. The fitting
    is :func:`allocsim.zoneinfo.fit_sim_settings`, the same the command line prints.
    """
    from .zoneinfo import fit_sim_settings

    fitted, notes = fit_sim_settings({**overrides, **extra}, name)
    return fitted_preset(name, **fitted), fitted, notes


def mib(pages: int) -> float:
    """Pages of 4 KiB in MiB."""
    return pages * (1 << PAGE_SHIFT) / (1 << 20)
