"""Write the teaching notebooks from the cell lists below (nbformat), without outputs.

    python notebooks/_build.py          # (re)write notebooks/*.ipynb
    python notebooks/_build.py --check  # exit 1 if a notebook differs from what this writes

Keeping the source here keeps cells short and reviewable in a diff; the tests check that the
committed notebooks are exactly what this script writes, and that they carry no outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = """\
import allocsim
from allocsim import widgets as aw

print("allocsim", allocsim.__version__)
mode = aw.use_live_plots()"""


def header(title, goals, minutes, sources):
    """The opening cell: title, learning goals, time, kernel sources."""
    g = "\n".join(f"- {x}" for x in goals)
    rows = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in sources)
    return f"""# {title}

**Learning goals.** After this notebook you can:
{g}

**Time needed:** about {minutes} minutes.

**Kernel sources for this chapter** (2.6.36-rc3 unless noted; read them next to the model):

| kernel file | functions | allocsim mirror |
|---|---|---|
{rows}
"""


# ---------------------------------------------------------------------------------------------
NB00 = [
    (
        "md",
        header(
            "00 · Start here",
            [
                "say what allocsim simulates and what it leaves out",
                "use the widgets: sliders, number boxes, the *kernel formula* boxes, Run / Pause / Reset",
                "check that widgets and live plots work here, and know what to do if they do not",
                "read the kit's standard figure: counter, snapshot and buddy lists against MIN/LOW/HIGH",
            ],
            10,
            [
                ("mm/page_alloc.c", "the page allocator", "`allocsim.page_alloc`"),
                ("mm/vmstat.c, include/linux/vmstat.h", "per-CPU counters", "`allocsim.vmstat`"),
                ("mm/vmscan.c", "kswapd, direct reclaim", "`allocsim.vmscan`"),
                (
                    "include/linux/mmzone.h",
                    "`struct zone`, `free_area`, `per_cpu_pageset`",
                    "`allocsim.mmzone`",
                ),
            ],
        ),
    ),
    (
        "md",
        """\
## What this kit is

In 2010 machines with hundreds of CPUs could **livelock** in the page allocator: the zone's
free-page counter `NR_FREE_PAGES` said there was memory above the *min* watermark while the
buddy free lists were empty, so every allocation failed, reclaim needed memory to make progress,
and the tasks looped. Mel Gorman's three patches, merged for 2.6.36, fixed it.

allocsim is a model of the 2.6.36-rc3 page allocator that is faithful where it matters (the
kernel's formulas, names and decision points) and simple elsewhere (one zone, order-0 pages,
an LRU of page counts). Everything you see comes out of that mechanism: no rule knows which
patch is on. The notebooks go from the buddy lists (01) to the livelock (05) and the patches (06).

**How to work through it.** Run the cells from the top (Shift-Enter). When a question asks you to
*predict*, write your answer down before you reveal it. Sliders re-run the simulation when you
let go; number boxes when you press Enter; a **kernel formula** box means "let the kernel compute
this value" (untick it to fix a value yourself). Run / Pause / Reset work while a run is going.""",
    ),
    ("code", SETUP),
    (
        "md",
        "## Is everything working?\n\nThe table checks what the notebooks need and says what "
        "to do if widgets or live plots do not show.",
    ),
    ("code", "aw.show_environment()"),
    (
        "md",
        "Move the slider. If the curve follows at once, live plots work. If the figure is a "
        "still picture, the demos still work: they redraw a picture after each run.",
    ),
    ("code", "aw.LiveCheck()"),
    (
        "md",
        """\
## A first run

A run is defined by a `SimConfig`: the machine (CPUs, zone size, kernel tunables), the workload
and a seed. `derived()` shows the numbers the kernel computes from it: the per-CPU counter
threshold, the watermarks, the per-cpu list sizes.""",
    ),
    (
        "code",
        """\
from allocsim.config import preset
from allocsim.sim import Simulation

cfg = preset("small", duration_ms=1000)
cfg.derived()""",
    ),
    ("code", "result = Simulation(cfg).run()\nprint(result.summary())"),
    (
        "md",
        """\
## How to read the kit's figures

The same colours everywhere: **WMARK_MIN red, LOW orange, HIGH green** (dashed); the **counter**
blue, the **snapshot** (counter plus every CPU's unfolded delta) purple, the **buddy lists** (what
is really free) black, pages on **per-cpu lists** brown. The blue band is the **drift envelope**:
how far below the counter the truth may be. An olive strip at the bottom marks kswapd at work,
grey ticks at the top direct reclaim, red shading a livelock. The title says what produced it.""",
    ),
    ("code", 'from allocsim.plotting import plot_run\n\nplot_run(result, zoom="watermarks");'),
    (
        "md",
        """\
## The chapters

| notebook | what you will see |
|---|---|
| 01 buddy lists | `free_area` by order; split and merge; `/proc/buddyinfo` |
| 02 per-cpu lists | `high`/`batch`; free pages the counter does not count |
| 03 vmstat counters | per-CPU deltas; the threshold formula; the drift envelope |
| 04 watermarks, kswapd, reclaim | who may allocate how deep; why reclaim needs memory |
| 05 the livelock | 256 CPUs without the patches, live; diagnose it |
| 06 the patches | each fix on and off, same seed; its cost |
| 07 your machine | your `/proc/zoneinfo`, your drift exposure |

## Learner checks""",
    ),
    (
        "code",
        """\
aw.ask("The run above covered how many milliseconds of simulated time?",
       result.simulated_ms, "one tick of the model is one millisecond")""",
    ),
    (
        "md",
        """\
**Question.** You run the same config twice. Will the two runs differ?

<details><summary>Answer</summary>

No. A seed *is* a problem: same config and seed, same run, on every machine. The patches do not
change the workload either, so patched and unpatched runs see the same requests.
</details>""",
    ),
]

# ---------------------------------------------------------------------------------------------
NB01 = [
    (
        "md",
        header(
            "01 · Buddy lists",
            [
                "explain `free_area[order].nr_free` and what `/proc/buddyinfo` prints",
                "predict how an allocation splits a block and how a free merges buddies",
                "compute the free pages from a buddyinfo line",
            ],
            15,
            [
                (
                    "include/linux/mmzone.h",
                    "`struct free_area`, `zone->free_area[MAX_ORDER]`",
                    "`allocsim.mmzone.Zone.free_area`",
                ),
                ("mm/page_alloc.c", "`__rmqueue_smallest`, `expand`", "`Zone.rmqueue`"),
                ("mm/page_alloc.c", "`__free_one_page`", "`Zone.free_one_block`"),
                (
                    "mm/vmstat.c",
                    "`frag_show_print` (/proc/buddyinfo)",
                    "`allocsim.teaching.buddyinfo`",
                ),
            ],
        ),
    ),
    ("code", SETUP),
    (
        "md",
        """\
## A zone of 1024 pages

The buddy allocator keeps free memory as blocks of 2^order pages, order 0 to 10 (4 KiB to 4 MiB),
one list per order. A fresh 4 MiB zone is a single order-10 block.""",
    ),
    (
        "code",
        """\
from allocsim.mmzone import Zone
from allocsim.plotting import plot_buddy_lists
from allocsim.teaching import buddyinfo

zone = Zone(1024, 1)          # 1024 pages, 1 CPU, all free
print(buddyinfo(zone))
plot_buddy_lists(zone);""",
    ),
    (
        "md",
        """\
## Split

Ask for one page (order 0). **Predict** first: which orders will hold a free block afterwards?
`__rmqueue_smallest` takes the smallest block that is big enough (order 10 here) and `expand`
puts the unused halves back, one per lower order.""",
    ),
    (
        "code",
        """\
pfn = zone.rmqueue(0)
print("got page", pfn)
print(buddyinfo(zone))
plot_buddy_lists(zone);""",
    ),
    (
        "md",
        """\
## Merge

Freeing the page looks for its *buddy* (the block whose number differs in bit `order`); if the
buddy is free and of the same order, the two merge and the search goes on one order up.""",
    ),
    ("code", "zone.free_one_block(pfn, 0)\nprint(buddyinfo(zone))"),
    (
        "md",
        """\
## Fragmentation

Take eight single pages and give back every other one: the freed pages cannot merge, because
their buddies are still in use.""",
    ),
    (
        "code",
        """\
pages = [zone.rmqueue(0) for _ in range(8)]
for p in pages[::2]:
    zone.free_one_block(p, 0)
print(buddyinfo(zone))
for p in pages[1::2]:
    zone.free_one_block(p, 0)
print(buddyinfo(zone))""",
    ),
    ("md", "## Try it\n\nPick an order, allocate, free. Watch the bars split and merge."),
    ("code", "aw.BuddyDemo()"),
    (
        "md",
        """\
## Your machine

`/proc/buddyinfo` prints `nr_free` for every order of every zone.""",
    ),
    (
        "code",
        """\
from pathlib import Path

info = Path("/proc/buddyinfo")
print(info.read_text() if info.exists() else "no /proc/buddyinfo on this system")""",
    ),
    (
        "md",
        """\
## Why this matters for the livelock

The pages on the buddy lists are the **truth**: `sum(nr_free << order)`. The allocator does not
add them up on every allocation (too slow); it keeps a counter, `NR_FREE_PAGES`, that is meant to
equal that sum. Notebooks 02 and 03 show how the counter and the truth come apart.""",
    ),
    (
        "code",
        """\
from allocsim.vmstat import zone_page_state

print("buddy lists:", zone.buddy_pages(), " counter:", zone_page_state(zone))""",
    ),
    ("md", "## Learner checks"),
    (
        "code",
        """\
aw.ask("A zone holds one free order-10 block. You allocate one order-0 page. "
       "How many free blocks are there afterwards, all orders together?",
       10, "one block on each of orders 0 to 9: 1 + 2 + 4 + ... + 512 = 1023 pages")""",
    ),
    (
        "code",
        """\
line = [4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0]
aw.ask("/proc/buddyinfo shows 4 3 2 1 0 0 0 0 0 0 0. How many pages are free?",
       sum(n << order for order, n in enumerate(line)), "sum of nr_free × 2^order")""",
    ),
    (
        "md",
        """\
**Question.** Page 6 (order 0) is freed. Which page is its buddy, and which block would the pair
form?

<details><summary>Answer</summary>

Its buddy is page 6 XOR 1 = 7. If 7 is free and of order 0, they merge into the order-1 block
starting at page 6 (= 6 & ~1), whose own buddy is the order-1 block at page 4.
</details>""",
    ),
]

# ---------------------------------------------------------------------------------------------
NB02 = [
    (
        "md",
        header(
            "02 · Per-cpu lists",
            [
                "compute `batch` and `high` of a zone's per-cpu lists",
                "explain why pages on per-cpu lists are free but not counted in `NR_FREE_PAGES`",
                "estimate how many free pages can hide on other CPUs' lists",
            ],
            15,
            [
                (
                    "mm/page_alloc.c",
                    "`zone_batchsize`, `setup_pageset`",
                    "`allocsim.page_alloc.zone_batchsize`, `setup_pageset`",
                ),
                ("mm/page_alloc.c", "`buffered_rmqueue`, `rmqueue_bulk`", "same names"),
                ("mm/page_alloc.c", "`free_hot_cold_page`, `free_pcppages_bulk`", "same names"),
                ("mm/page_alloc.c", "`drain_pages`, `drain_all_pages`", "same names"),
            ],
        ),
    ),
    ("code", SETUP),
    (
        "md",
        """\
## Sizes

Taking the zone lock for every page would be slow, so each CPU keeps a small list of free order-0
pages (`struct per_cpu_pages`). It refills `batch` pages at a time and gives `batch` back when it
holds `high`. `zone_batchsize` makes `batch` about a thousandth of the zone, capped, then rounds it
to 2^n − 1; `setup_pageset` sets `high = 6 × batch`.""",
    ),
    (
        "code",
        """\
from allocsim.page_alloc import setup_pageset, zone_batchsize
from allocsim.teaching import Table

rows = []
for mib in (16, 64, 256, 512, 1024, 16384):
    high, batch = setup_pageset(zone_batchsize(mib * 256))   # 256 pages per MiB
    rows.append({"zone MiB": mib, "zone_batchsize": zone_batchsize(mib * 256),
                 "pcp batch": batch, "pcp high": high})
Table(rows)""",
    ),
    (
        "md",
        """\
## Pages leave the count when they reach a pcp list

A 1 GiB zone, 4 CPUs, 4096 pages free. Each CPU takes five pages: its empty list is refilled with a
batch of 31 from the buddy lists (`rmqueue_bulk`), which subtracts 31 from `NR_FREE_PAGES`.
**Predict:** what does the counter say afterwards?""",
    ),
    (
        "code",
        """\
from allocsim.mmzone import Zone
from allocsim.page_alloc import buffered_rmqueue
from allocsim.plotting import plot_pcp_lists

zone = Zone(262144, 4, free_pages=4096)
taken = {cpu: [buffered_rmqueue(zone, cpu) for _ in range(5)] for cpu in range(4)}
plot_pcp_lists(zone);""",
    ),
    (
        "md",
        """\
The counter and the buddy lists agree (4096 − 4 × 31 = 3972); the 4 × 26 pages still on the pcp
lists are free, but nobody counts them as free. Now free the pages again: they go to the
CPU's own list, not to the buddy lists, until the list reaches `high`.""",
    ),
    (
        "code",
        """\
from allocsim.page_alloc import free_hot_cold_page

for cpu, pfns in taken.items():
    for pfn in pfns:
        free_hot_cold_page(zone, cpu, pfn=pfn)
plot_pcp_lists(zone);""",
    ),
    (
        "md",
        "CPU 0 now takes and frees 200 pages: when its list reaches `high` (186), "
        "`free_pcppages_bulk` hands a batch of 31 back to the buddy lists.",
    ),
    (
        "code",
        """\
pfns = [buffered_rmqueue(zone, 0) for _ in range(200)]
for pfn in pfns:
    free_hot_cold_page(zone, 0, pfn=pfn)
plot_pcp_lists(zone);""",
    ),
    (
        "md",
        """\
## Stranded pages on a big machine

On a 256-CPU machine every CPU may hold up to `high` pages. CPUs that only take interrupts use
few pages and rarely reach `high`, so their lists keep free pages that a busy CPU cannot reach.
In the `large` scenario (notebook 05) the brown line shows them.""",
    ),
    (
        "code",
        """\
from allocsim.config import preset
from allocsim.plotting import plot_run
from allocsim.sim import Simulation

big = Simulation(preset("large", duration_ms=1500)).run()
print("most pages on pcp lists:", big["pcp"].max(),
      " on CPUs that run no task:", big["pcp_stranded"].max())
plot_run(big, zoom="watermarks");""",
    ),
    ("md", "## Learner checks"),
    (
        "code",
        """\
high = setup_pageset(zone_batchsize(4096 * 256))[0]
aw.ask("A 256-CPU machine with a 4 GiB zone: how many free pages can sit on pcp lists at most "
       "(every CPU at high)?", 256 * high, f"256 × high = 256 × {high}")""",
    ),
    (
        "code",
        """\
aw.ask("What is batch for a 64 MiB zone (16384 pages)?", zone_batchsize(16384),
       "16384/1024 = 16; /4 = 4; rounddown_pow_of_two(4 + 2) − 1 = 3")""",
    ),
    (
        "md",
        """\
**Question.** Why does the kernel not count pcp pages as free?

<details><summary>Answer</summary>

Moving a batch between the buddy lists and a pcp list happens under the zone lock, so that is the
cheap place to adjust the counter (`rmqueue_bulk` subtracts, `free_pcppages_bulk` adds). Counting
every single pcp allocation and free would cost a counter update on the hottest path. The price:
free pages the counter does not see, and that other CPUs cannot use.
</details>""",
    ),
]

# ---------------------------------------------------------------------------------------------
NB03 = [
    (
        "md",
        header(
            "03 · vmstat counters and drift",
            [
                "follow `__mod_zone_page_state`: per-CPU deltas, `stat_threshold`, folding",
                "compute `calculate_threshold` for a machine and see how it grows with CPUs and memory",
                "compare the drift envelope `CPUs × threshold` with the gap `low − min`",
                "compute `percpu_drift_mark`",
            ],
            20,
            [
                (
                    "mm/vmstat.c",
                    "`__mod_zone_page_state`, `calculate_threshold`",
                    "`allocsim.vmstat` (same names)",
                ),
                (
                    "mm/vmstat.c",
                    "`refresh_zone_stat_thresholds`, `refresh_cpu_vm_stats`, `vmstat_update`",
                    "`allocsim.vmstat`",
                ),
                (
                    "include/linux/vmstat.h",
                    "`zone_page_state`, `zone_page_state_snapshot`",
                    "`allocsim.vmstat`",
                ),
                (
                    "mm/mmzone.c (2.6.36)",
                    "`zone_nr_free_pages`",
                    "`allocsim.vmstat.zone_nr_free_pages`",
                ),
            ],
        ),
    ),
    ("code", SETUP),
    (
        "md",
        """\
## Deltas and folding

`NR_FREE_PAGES` lives in two places: the zone-wide `vm_stat` and a small signed delta per CPU
(`vm_stat_diff`). `__mod_zone_page_state` adds to the CPU's delta and folds it into `vm_stat` only
when it would leave ±`stat_threshold`. Every `stat_interval` (1 s) each CPU's `vmstat_update`
folds whatever is left. **Predict** the values below before running the cell.""",
    ),
    (
        "code",
        """\
from allocsim.mmzone import Zone
from allocsim.vmstat import __mod_zone_page_state, zone_page_state, zone_page_state_snapshot

zone = Zone(262144, 4, free_pages=4096)          # 1 GiB, 4 CPUs
print("threshold per CPU:", zone.stat_threshold[0])
for _ in range(4):
    __mod_zone_page_state(zone, 0, -10)          # CPU 0 takes 10 pages
    print(f"vm_stat {zone.vm_stat}, diffs {zone.vm_stat_diff.tolist()}, "
          f"read {zone_page_state(zone)}, snapshot {zone_page_state_snapshot(zone)}")""",
    ),
    (
        "md",
        """\
## The threshold formula

`threshold = min(125, 2 × fls(cpus) × (1 + fls(zone MiB / 128)))`, where `fls` is the 1-based
index of the highest set bit. It grows with the logarithm of CPUs and of memory; the delta is a
signed byte, hence the cap.""",
    ),
    (
        "code",
        """\
from allocsim.plotting import plot_threshold_vs_cpus, plot_threshold_vs_zone
from allocsim.vmstat import calculate_threshold, fls

print("fls(64) =", fls(64), " fls(16384 MiB / 128) =", fls(16384 // 128))
plot_threshold_vs_cpus(mark=(64, 16384))
plot_threshold_vs_zone();""",
    ),
    (
        "md",
        """\
## Drift against the watermark gap

Each CPU may hold up to `threshold` unfolded pages, so the counter can be wrong by up to
`cpus × threshold` pages: the **drift envelope**. The watermarks grow only with the square root of
memory. If the drift is larger than `low − min`, the counter can pass a LOW check while the truth
is below MIN. That is where 2.6.36 sets `percpu_drift_mark = high + cpus × threshold`.""",
    ),
    (
        "code",
        """\
from allocsim.plotting import plot_drift_vs_gap

plot_drift_vs_gap(mark=256);""",
    ),
    (
        "md",
        "Move the controls: the left panel marks the machine on its threshold curve, the right "
        "one compares its worst drift with the gap.",
    ),
    ("code", "aw.ThresholdExplorer()"),
    (
        "md",
        """\
## Watch it in a run

The demo below starts on 4 CPUs. Move the **CPUs** slider to 1024: the blue drift envelope
widens until it covers everything below the counter, and the counter (blue) floats far above the
buddy lists (black).""",
    ),
    ("code", 'demo = aw.RunDemo("large", cpus=4, duration_ms=1500)\ndemo.show()'),
    ("md", "The same comparison as two still pictures (this cell needs no widgets):"),
    (
        "code",
        """\
from allocsim.plotting import plot_compare
from allocsim.sim import Simulation
from allocsim.teaching import fitted_preset

runs = [Simulation(fitted_preset("large", cpus=n, duration_ms=1500)).run() for n in (4, 1024)]
for r in runs:
    gap = r["counter"] - r["buddy"]
    print(f"{r.config.cpus:5d} CPUs: max drift {r.derived['max_drift']:,} pages, "
          f"largest counter − buddy gap {gap.max():,}")
plot_compare(runs, tasks=False);""",
    ),
    ("md", "## Learner checks"),
    (
        "code",
        """\
from allocsim.vmstat import drift_mark

aw.ask("A 64-CPU node has min/low/high 1441/1801/2161 and threshold 98. "
       "What percpu_drift_mark does 2.6.36 set?", drift_mark(1441, 1801, 2161, 98, 64),
       "max drift 64 × 98 = 6272 > low − min = 360, so the mark is high + 6272")""",
    ),
    (
        "code",
        """\
aw.ask("What is stat_threshold for 64 CPUs and a 16 GiB zone?",
       calculate_threshold(16384 * 256, 64),
       "2 × fls(64) × (1 + fls(128)) = 2 × 7 × 9 = 126, capped at 125")""",
    ),
    (
        "code",
        """\
aw.ask("How many MiB can the counter over-report on 1024 CPUs at threshold 125?",
       1024 * 125 * 4 // 1024, "1024 × 125 pages × 4 KiB")""",
    ),
    (
        "code",
        """\
from allocsim.vmstat import calculate_pressure_threshold

aw.ask("2.6.38 lowers the threshold while kswapd is awake to (low − min) / cpus. "
       "What is it for the 64-CPU node above?", calculate_pressure_threshold(1441, 1801, 64))""",
    ),
]

# ---------------------------------------------------------------------------------------------
NB04 = [
    (
        "md",
        header(
            "04 · Watermarks, kswapd, direct reclaim and GFP contexts",
            [
                "compute min/low/high from `min_free_kbytes`",
                "say how deep each allocation context may go below the watermarks",
                "describe when kswapd wakes and sleeps, and what direct reclaim does",
                "explain why reclaiming dirty pages needs memory",
            ],
            20,
            [
                (
                    "mm/page_alloc.c",
                    "`init_per_zone_wmark_min`, `setup_per_zone_wmarks`",
                    "`allocsim.page_alloc.min_free_kbytes`, `setup_per_zone_wmarks`",
                ),
                (
                    "mm/page_alloc.c",
                    "`zone_watermark_ok`, `gfp_to_alloc_flags`",
                    "`allocsim.page_alloc` (same names)",
                ),
                (
                    "mm/page_alloc.c",
                    "`__alloc_pages_slowpath`, `__alloc_pages_direct_reclaim`",
                    "`allocsim.page_alloc`",
                ),
                (
                    "mm/vmscan.c",
                    "`wakeup_kswapd`, `kswapd`, `balance_pgdat`, `try_to_free_pages`",
                    "`allocsim.vmscan`",
                ),
            ],
        ),
    ),
    ("code", SETUP),
    (
        "md",
        """\
## The watermarks

`min_free_kbytes = int_sqrt(lowmem_kbytes × 16)` (clamped to 128 … 65536), and each zone gets
`min = its share of min_free_kbytes / 4` pages, `low = min + min/4`, `high = min + min/2`.""",
    ),
    (
        "code",
        """\
from allocsim.page_alloc import min_free_kbytes, setup_per_zone_wmarks
from allocsim.teaching import Table

rows = []
for gib in (1, 4, 16, 64):
    pages = gib << 18
    mfk = min_free_kbytes(pages * 4)
    wmin, wlow, whigh = setup_per_zone_wmarks(mfk, [pages])[0]
    rows.append({"zone GiB": gib, "min_free_kbytes": mfk, "min": wmin, "low": wlow, "high": whigh})
Table(rows)""",
    ),
    (
        "md",
        """\
## Who may go how deep

Every allocation first tries at LOW. The slow path wakes kswapd and tries again at MIN, with
reductions: `__GFP_HIGH` (ALLOC_HIGH) halves the mark, an atomic request (ALLOC_HARDER) takes off
another quarter. Reclaim itself runs with `PF_MEMALLOC` and ignores the watermarks: the reserve
below MIN exists so that reclaim can allocate while it frees memory. The table is computed with
the model's `gfp_to_alloc_flags` and `zone_watermark_ok`.""",
    ),
    (
        "code",
        """\
from allocsim.config import preset
from allocsim.plotting import plot_gfp_levels
from allocsim.teaching import gfp_contexts

cfg = preset("large")
table = gfp_contexts(cfg)
d = cfg.derived()
plot_gfp_levels(table, wmarks=(d.wmark_min, d.wmark_low, d.wmark_high))
table""",
    ),
    (
        "md",
        """\
## kswapd and direct reclaim in a run

kswapd sleeps on `kswapd_wait`. An allocation that fails a LOW check wakes it; it reclaims in
`balance_pgdat` until every zone passes HIGH, naps 100 ms, and sleeps if the zone is still
balanced. A task that fails at MIN reclaims itself (direct reclaim), then retries; order-0
requests retry for ever. Reclaiming a *dirty* page needs a page for the writeback request first,
allocated with `PF_MEMALLOC`: **reclaim needs memory**. On a 4-CPU machine (drift 120 pages,
smaller than `low − min`) this all works as designed:""",
    ),
    (
        "code",
        """\
from allocsim.plotting import plot_run
from allocsim.sim import Simulation

small = Simulation(preset("small", duration_ms=2000)).run()
wakes = small.events_named("mm_vmscan_kswapd_wake")
print(f"kswapd woke {len(wakes)} times; direct reclaim entries: {small['direct_reclaim'].sum()}")
plot_run(small, zoom="watermarks");""",
    ),
    (
        "md",
        "The same controls as every demo: try a higher **writer rate** or fewer pages at "
        "start and watch kswapd (olive strip) and direct reclaim (grey ticks).",
    ),
    ("code", 'aw.RunDemo("small", duration_ms=2000, zoom="watermarks")'),
    ("md", "## Learner checks"),
    (
        "code",
        """\
wm = setup_per_zone_wmarks(5765, [4 << 20])[0]
aw.ask("A node's only zone has min_free_kbytes 5765. What are min/low/high (in pages)? "
       "Answer as min/low/high.", "/".join(map(str, wm)),
       "min = 5765 >> 2 = 1441; low = min + min/4; high = min + min/2")""",
    ),
    (
        "code",
        """\
atomic = [r for r in table if r["gfp"] == "GFP_ATOMIC"][0]
aw.ask(f"With WMARK_MIN = {d.wmark_min}, at or below how many free pages (as read) does a "
       "GFP_ATOMIC slow-path attempt fail?", atomic["fails_at_or_below"],
       "min − min/2 for ALLOC_HIGH, then − a quarter for ALLOC_HARDER: about 3/8 of min")""",
    ),
    (
        "md",
        """\
**Question.** Why must the pages below MIN be kept for `PF_MEMALLOC` allocations?

<details><summary>Answer</summary>

Reclaim frees memory, but freeing a dirty page first needs a page (to start its writeback, e.g.
on a network filesystem). If ordinary allocations eat the reserve below MIN, reclaim cannot make
progress, and nothing can be freed until an allocation succeeds: the recipe for a livelock.
</details>""",
    ),
]

# ---------------------------------------------------------------------------------------------
NB05 = [
    (
        "md",
        header(
            "05 · The livelock",
            [
                "watch a 256-CPU machine without the patches stall while its counter says memory is free",
                "diagnose it from the plots: counter vs buddy lists, stranded pcp pages, kswapd, tasks",
                "see the livelock go away with the three 2.6.36 patches, same seed",
            ],
            25,
            [
                (
                    "mm/page_alloc.c",
                    "`get_page_from_freelist`, `__alloc_pages_slowpath`, `rmqueue_bulk`",
                    "`allocsim.page_alloc`",
                ),
                ("mm/vmstat.c", "`__mod_zone_page_state`, `vmstat_update`", "`allocsim.vmstat`"),
                (
                    "mm/vmscan.c",
                    "`wakeup_kswapd`, `balance_pgdat`, `try_to_free_pages`",
                    "`allocsim.vmscan`",
                ),
                ("commits 72853e2, aa45484, 9ee493c", "the three fixes", "`allocsim.Patches`"),
            ],
        ),
    ),
    ("code", SETUP),
    (
        "md",
        """\
## The machine

The `large` scenario: 256 CPUs, a 4 GiB zone, a quiet machine with its counters folded. Then
writer tasks on 64 CPUs start filling the page cache with dirty pages (reclaiming one needs a page
for writeback) while interrupts allocate `GFP_ATOMIC` pages on every CPU. No patch is applied
(2.6.36-rc3). Watch the counter (blue) and the buddy lists (black).""",
    ),
    ("code", 'demo = aw.RunDemo("large")\ndemo.show()'),
    (
        "md",
        """\
**What to look for.** The buddy lists hit zero within milliseconds while the counter still reads
thousands of pages: the CPUs' negative deltas have not been folded. Every check reads the
counter, so allocations go on passing the LOW and MIN checks and eat the reserve below MIN. The
writers then enter direct reclaim, but their dirty pages need a page each for writeback, and
there is none: the tasks get almost nothing (lower panel, green) and sit in the allocator (red).
The counter drifts down only as each CPU's `vmstat_update` folds its delta, once per second.

**Now tick the three patch boxes** (or run the next cell): the run restarts with the same seed.""",
    ),
    (
        "code",
        """\
result = demo.wait()
print(result.summary())""",
    ),
    ("md", "## Diagnose it from the record"),
    (
        "code",
        """\
from allocsim.teaching import diagnose

print(diagnose(result))""",
    ),
    (
        "code",
        """\
from allocsim.plotting import plot_run

start = result.episodes[0].start_ms if result.episodes else 0
plot_run(result, zoom="watermarks", xlim=(max(0, start - 100), start + 1200));""",
    ),
    (
        "md",
        """\
Zoomed on the watermarks: the counter sits above MIN (red dashed) while the buddy lists are at
zero. The free pages exist, on the per-cpu lists (brown) of CPUs that only take interrupts, where
a writer cannot reach them. kswapd's wake-up test reads the same drifted counter, so it is asleep
or napping at the onset.

## Patches off and on, same seed

Tick the three patch boxes in the demo above: it re-runs the same machine with the same seed, and
the livelock is gone. The same two runs as still pictures (for the handouts, or to compare at
leisure; notebook 06 has a live side-by-side demo and takes the patches one by one):""",
    ),
    (
        "code",
        """\
from allocsim.plotting import plot_compare
from allocsim.teaching import run_pair

off, on = run_pair(result.config)
for r in (off, on):
    verdict = f"LIVELOCK {r.livelock_ms} ms" if r.livelocked else "no livelock"
    print(f"patches {r.config.patches.label():5s}: {verdict}, tasks got "
          f"{100 * r.to_dict()['task_throughput']:.1f}% of what they asked for")
plot_compare([off, on]);""",
    ),
    (
        "md",
        """\
## Christoph Lameter's objection

On the list, Christoph Lameter pointed out that the drift lasts at most one vmstat interval; Mel
answered that a loaded machine can wreck the watermarks within it, and once the buddy lists are
empty an accurate counter does not undo the damage. Try it: change **stat_interval** in the first
demo, or run this sweep (patches off).""",
    ),
    (
        "code",
        """\
from allocsim.config import preset
from allocsim.sim import Simulation
from allocsim.teaching import Table

Table([{"stat_interval ms": ms,
        "livelock ms": Simulation(preset("large", stat_interval_ms=ms)).run().livelock_ms}
       for ms in (250, 1000, 2000)])""",
    ),
    ("md", "## Learner checks"),
    (
        "code",
        """\
d = result.derived
onset = result.episodes[0].onset if result.episodes else {"counter": d["wmark_high"]}
aw.ask(f"At the onset the counter read {onset['counter']} pages and WMARK_MIN is "
       f"{d['wmark_min']}. Does a GFP_KERNEL task's slow-path check at MIN pass (yes/no)?",
       "yes" if onset["counter"] > d["wmark_min"] else "no",
       "zone_watermark_ok fails only if free <= min; "
       "the check reads the counter, not the lists")""",
    ),
    (
        "code",
        """\
aw.ask("How far can the counter over-report on this machine (pages)?", d["max_drift"],
       f"{result.config.cpus} CPUs × threshold {d['stat_threshold']}")""",
    ),
    (
        "md",
        """\
**Question.** Why does nothing get freed while the tasks sit in direct reclaim?

<details><summary>Answer</summary>

The LRU is full of dirty pages; writing one back needs a page (allocated with PF_MEMALLOC), and
the buddy lists are empty. The free pages that exist sit on other CPUs' per-cpu lists. Reclaim
still reports progress (the zone looks reclaimable), so the tasks retry for ever instead of
failing: a livelock, until the counter folds down and kswapd wakes.
</details>""",
    ),
]

# ---------------------------------------------------------------------------------------------
NB06 = [
    (
        "md",
        header(
            "06 · The patches, one by one",
            [
                "say for each of the three commits what it changes in the kernel, and why",
                "step through patch 1's window page by page",
                "explain from the record why patch 2 alone may not help while kswapd sleeps",
                "weigh patch 3's benefit against its cost in `drain_all_pages` calls",
            ],
            30,
            [
                (
                    "mm/page_alloc.c",
                    "`free_pcppages_bulk`, `free_one_page` (72853e2)",
                    "`allocsim.page_alloc.free_pcppages_bulk`, `allocsim.window`",
                ),
                (
                    "mm/mmzone.c, mm/vmstat.c",
                    "`zone_nr_free_pages`, `refresh_zone_stat_thresholds` (aa45484)",
                    "`allocsim.vmstat`",
                ),
                (
                    "mm/page_alloc.c",
                    "`__alloc_pages_direct_reclaim` (9ee493c)",
                    "`allocsim.page_alloc`",
                ),
                (
                    "mm/vmscan.c (2.6.38)",
                    "`zone_watermark_ok_safe` in `wakeup_kswapd` (88f5acf88ae6)",
                    "not modelled; see the note on patch 2",
                ),
            ],
        ),
    ),
    ("code", SETUP),
    ("md", "## Every subset of the patches, same seed\n\nEight runs of the `large` scenario."),
    (
        "code",
        """\
from allocsim.config import preset
from allocsim.teaching import ablation

cfg = preset("large")
table, results = ablation(cfg)
table""",
    ),
    ("md", "## Patch 1: update the counter after the pages are on the lists"),
    ("code", 'from allocsim.teaching import patch_card\n\npatch_card("counter_after_free")'),
    (
        "md",
        """\
`free_pcppages_bulk` returns a batch to the buddy lists under the zone lock, but watermark checks
read the counter without it. Unpatched, the counter is raised by the whole batch *before* the
first page is linked. Below, one bulk free is stepped page by page by the model's own
`free_pcppages_bulk`, with a reader on another CPU checking a GFP_ATOMIC watermark after each
page.""",
    ),
    (
        "code",
        """\
from allocsim.patches import Patches
from allocsim.plotting import plot_window_compare
from allocsim.window import free_pcppages_bulk_window

steps_off = free_pcppages_bulk_window(Patches.none())
steps_on = free_pcppages_bulk_window(Patches(counter_after_free=True))
plot_window_compare(steps_off, steps_on);""",
    ),
    ("code", "aw.WindowStepper()"),
    (
        "md",
        """\
The window lasts as long as one loop over 31 pages: microseconds. The tick-level simulation
serialises buddy-list work under the zone lock within a 1 ms tick, so it cannot show the window,
and the runs with and without patch 1 are identical:""",
    ),
    (
        "code",
        """\
import numpy as np

same = all(np.array_equal(results["none"][k], results["counter_after_free"][k])
           for k in ("counter", "buddy", "task_ok"))
print("patch 1 alone changes the tick-level run:", not same)""",
    ),
    ("md", "## Patch 2: read the snapshot below the drift mark while kswapd is awake"),
    ("code", 'patch_card("drift_mark_snapshot")'),
    (
        "code",
        """\
from allocsim.plotting import plot_compare

plot_compare([results["none"], results["drift_mark_snapshot"]], zoom="watermarks");""",
    ),
    (
        "md",
        """\
The snapshot is taken only while kswapd is off its wait queue (in `balance_pgdat`). What was
kswapd doing while the buddy lists held fewer pages than MIN?""",
    ),
    (
        "code",
        """\
from allocsim.teaching import Table, kswapd_when_truth_below_min, snapshot_ticks

Table([{"patches": label, **kswapd_when_truth_below_min(results[label]),
        "snapshot ticks": snapshot_ticks(results[label])}
       for label in ("none", "drift_mark_snapshot", "all")])""",
    ),
    (
        "md",
        """\
If kswapd sleeps or naps through most of that time, patch 2 cannot help: its accurate read is
switched off exactly then, and `wakeup_kswapd`'s own LOW check reads the drifting counter, so
kswapd is not woken either. This is the gap 2.6.38 closed (commit 88f5acf88ae6): the
wake/sleep decisions use `zone_watermark_ok_safe` (the snapshot below the drift mark, with no
kswapd condition), and thresholds are lowered while kswapd runs.

## Patch 3: drain the per-cpu lists when the allocation after reclaim fails""",
    ),
    ("code", 'patch_card("drain_after_reclaim")'),
    (
        "code",
        """\
plot_compare([results["none"], results["drain_after_reclaim"]], zoom="watermarks");""",
    ),
    ("md", "The cost: every `drain_all_pages` sends an IPI to every CPU."),
    (
        "code",
        """\
p3 = results["drain_after_reclaim"]
drains = p3.events_named("mm_page_pcpu_drain")
seconds = p3.simulated_ms / 1000
print(f"drain_all_pages calls: {int(p3['drain_all_pages'].sum())} in {seconds:.0f} s "
      f"= {int(p3['drain_all_pages'].sum()) / seconds:.0f} per second, "
      f"each an IPI to {p3.config.cpus} CPUs")
print("pages returned to the buddy lists by the drains:", sum(e.value for e in drains))""",
    ),
    (
        "md",
        "## All three, side by side\n\nUntick patches on the right to build your own "
        "subset; the left side always runs without any.",
    ),
    ("code", 'aw.CompareDemo("large")'),
    ("md", "## Learner checks"),
    (
        "code",
        """\
aw.ask("How many of the eight patch subsets in the table livelocked?",
       sum(1 for row in table if row["livelock ms"] > 0))""",
    ),
    (
        "code",
        """\
aw.ask("Which single patch removes the livelock in this scenario on its own? "
       "(counter_after_free, drift_mark_snapshot or drain_after_reclaim)",
       " ".join(n for n in Patches.names() if not results[n].livelocked) or "none")""",
    ),
    (
        "md",
        """\
**Question.** Patch 1 makes no difference in these runs. Was it useless?

<details><summary>Answer</summary>

No: it closes a real race, just a microsecond-scale one that a 1 ms tick cannot show. The stepper
shows it: while a batch is being linked, a reader can pass a GFP_ATOMIC check on pages that are
not on the lists yet. With many CPUs freeing and many atomic allocations, those passes add up.
</details>""",
    ),
]

# ---------------------------------------------------------------------------------------------
NB07 = [
    (
        "md",
        header(
            "07 · Your machine",
            [
                "read your machine's `/proc/zoneinfo` and compute its drift exposure "
                "with the 2.6.36 rules",
                "say where a modern kernel differs from 2.6.36",
                "simulate a machine like yours",
            ],
            15,
            [
                ("mm/vmstat.c", "`zoneinfo_show_print` (/proc/zoneinfo)", "`allocsim.zoneinfo`"),
                (
                    "mm/vmstat.c",
                    "`calculate_threshold`, `refresh_zone_stat_thresholds`",
                    "`allocsim.vmstat`",
                ),
                (
                    "mm/vmstat.c (2.6.38+)",
                    "`calculate_pressure_threshold`",
                    "`allocsim.vmstat.calculate_pressure_threshold`",
                ),
            ],
        ),
    ),
    ("code", SETUP),
    (
        "md",
        """\
## Read the zones

`load_zoneinfo()` reads `/proc/zoneinfo`; where there is none (macOS, Windows, some containers) it
falls back to a capture bundled with the kit, a 64-CPU 2.6.36 machine from the 2010 thread, and
says so.""",
    ),
    (
        "code",
        """\
from allocsim import zoneinfo
from allocsim.teaching import load_zoneinfo

parsed, source = load_zoneinfo()
report = zoneinfo.build_report(parsed, source)
print(zoneinfo.format_report(report))""",
    ),
    (
        "code",
        """\
from allocsim.plotting import plot_zone_exposure

plot_zone_exposure(report);""",
    ),
    ("md", "For comparison, the 64-CPU machine from the 2010 thread:"),
    (
        "code",
        """\
from allocsim.teaching import BUNDLED_ZONEINFO

old, old_source = load_zoneinfo(BUNDLED_ZONEINFO / "2.6.36-64cpu-thread.txt")
old_report = zoneinfo.build_report(old, "2010 capture")
plot_zone_exposure(old_report, title="the 64-CPU node of the 2010 thread");""",
    ),
    (
        "md",
        """\
## Simulate a machine like yours

`sim_overrides()` turns the main zone into simulation settings (CPUs, zone size, min watermark,
pcp sizes, threshold); `config_like` fits them into the ranges the model accepts. The workload is
the `large` scenario's.""",
    ),
    (
        "code",
        """\
from allocsim.teaching import config_like

cfg, overrides, notes = config_like(report.sim_overrides())
print(overrides, *notes, sep="\\n")
cfg.derived()""",
    ),
    ("code", 'aw.RunDemo("large", duration_ms=2000, **overrides)'),
    ("md", "## Learner checks"),
    (
        "code",
        """\
main = report.main_zone
aw.ask(f"Your main zone ({main.label}) has {main.cpus} CPUs and threshold {main.threshold_used}. "
       "What is its worst-case drift in pages?", main.max_drift)""",
    ),
    (
        "code",
        """\
aw.ask(f"Its watermarks are min {main.min}, low {main.low}, high {main.high}. Would 2.6.36 set a "
       "drift mark (yes/no)?", "yes" if main.exposed else "no",
       f"drift {main.max_drift} against low − min = {main.tolerate_drift}")""",
    ),
    (
        "md",
        """\
**Question.** A modern kernel prints a small `vm stats threshold` for a busy node. Why might it
differ from the formula?

<details><summary>Answer</summary>

Since 2.6.38, kswapd lowers the thresholds of zones with a drift mark to the pressure threshold
`(low − min) / cpus` while it is awake, and modern kernels compute the normal threshold from
managed rather than present pages. A capture taken under memory pressure shows the lowered value.
</details>""",
    ),
]

NOTEBOOKS = {
    "00-start-here.ipynb": NB00,
    "01-buddy-lists.ipynb": NB01,
    "02-per-cpu-lists.ipynb": NB02,
    "03-vmstat-counters.ipynb": NB03,
    "04-watermarks-kswapd-reclaim.ipynb": NB04,
    "05-livelock.ipynb": NB05,
    "06-the-patches.ipynb": NB06,
    "07-your-machine.ipynb": NB07,
}


def build(name: str, cells) -> nbformat.NotebookNode:
    """A notebook with deterministic cell ids and no outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        },
        "language_info": {"name": "python"},
    }
    stem = name.split("-")[0]
    for i, (kind, source) in enumerate(cells):
        cell = (
            nbformat.v4.new_markdown_cell(source)
            if kind == "md"
            else nbformat.v4.new_code_cell(source)
        )
        cell.id = f"c{stem}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = []
    for name, cells in NOTEBOOKS.items():
        text = nbformat.writes(build(name, cells)) + "\n"
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python notebooks/_build.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
