"""Regenerate the figures and tables in docs/results.md from the model.

    python docs/make_docs.py            # every experiment (a few minutes on 2 cores)
    python docs/make_docs.py phase      # only notebook 09's precomputed phase grid
    python docs/make_docs.py --only after-the-fix   # just the 2.6.38 / cost-of-accuracy part

Every number in docs/results.md comes from this script; nothing is typed in by hand. Each
comparison runs the same seed three times — unpatched (2.6.36-rc3), all three patches (2.6.36)
and exact counters (the counterfactual machine the patches approximate) — and every verdict is
published with its sensitivity to the scenario's assumptions and to the stall definition.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from allocsim.compare import variant  # noqa: E402
from allocsim.config import preset, scaled_zone_mib  # noqa: E402
from allocsim.metrics import stalled_ms  # noqa: E402
from allocsim.patches import Patches  # noqa: E402
from allocsim.sim import Simulation  # noqa: E402
from allocsim.sweep import PRECOMPUTED, phase_grid  # noqa: E402
from allocsim.sweep import sweep as run_sweep  # noqa: E402

HERE = Path(__file__).resolve().parent
FIG = HERE / "figures"
SEEDS = (1, 2, 3, 4, 5)
VARIANTS = ("none", "all", "exact")
BINS = (50, 100, 200, 500, 1000)
THRESHOLDS = (0.005, 0.01, 0.02, 0.05)

# The scenario knobs of the verdict issue, each varied alone around the `large` preset.
KNOBS = [
    ("writeback_alloc_ratio", [{"writeback_alloc_ratio": v} for v in (0.0, 0.5, 1.0)]),
    (
        "dirty limit",
        [
            {"dirty_ratio": 20},
            {"dirty_ratio": 20, "start_dirty_fraction": 0.2},
            {"dirty_ratio": 40},
            {"dirty_ratio": 100},
        ],
    ),
    ("interrupt load", [{"atomic_rate": v} for v in (0.0, 0.3, 1.0)]),
    ("burst timing", [{"burst_start_ms": v} for v in (20, 500, 950)]),
    ("writer load", [{"writer_rate": v} for v in (2.0, 3.0, 4.0)]),
    ("stat_interval", [{"stat_interval_ms": v} for v in (1000, 2000, 3000)]),
]


def _measure(args):
    """One run, reduced to the numbers the tables need (runs in a worker process)."""
    overrides, label, seed = args
    cfg = preset("large", seed=seed, **dict(overrides))
    if label != "_":  # "_": the patches given in the overrides
        cfg = variant(cfg, label)
    r = Simulation(cfg).run()
    d = r.to_dict()
    return {
        "delivered": d["delivered_pages"],
        "stalled": d["stalled_ms"],
        "lies": d["counter_lies_ms"],
        "below_min": d["buddy_below_min_ms"],
        "drains": d["drain_all_pages_calls"],
        "by_bin": {b: stalled_ms(r, b) for b in BINS},
        "by_threshold": {t: stalled_ms(r, 100, t) for t in THRESHOLDS},
        "kswapd_at_onsets": [e.onset["kswapd"] for e in r.episodes],
    }


class Runs:
    """Every (overrides, variant, seed) run the page needs, computed once, in parallel."""

    def __init__(self):
        self.cache = {}

    def need(self, overrides: dict, labels=VARIANTS, seeds=SEEDS):
        key = tuple(sorted(overrides.items()))
        return [(key, label, seed) for label in labels for seed in seeds]

    def compute(self, jobs):
        todo = [j for j in dict.fromkeys(jobs) if j not in self.cache]
        workers = min(os.cpu_count() or 1, 4)
        start = time.time()
        with ProcessPoolExecutor(workers) as pool:
            for i, (job, out) in enumerate(zip(todo, pool.map(_measure, todo), strict=True)):
                self.cache[job] = out
                if (i + 1) % 20 == 0 or i + 1 == len(todo):
                    print(
                        f"  {i + 1}/{len(todo)} runs, {time.time() - start:.0f} s",
                        file=sys.stderr,
                    )

    def get(self, overrides: dict, label: str, seed: int) -> dict:
        return self.cache[(tuple(sorted(overrides.items())), label, seed)]

    def progress(self, overrides: dict, label: str) -> list[float]:
        """Delivered pages relative to the exact machine, one number per seed."""
        return [
            self.get(overrides, label, s)["delivered"]
            / max(1, self.get(overrides, "exact", s)["delivered"])
            for s in SEEDS
        ]

    def stalled(self, overrides: dict, label: str, key="stalled") -> list[int]:
        return [self.get(overrides, label, s)[key] for s in SEEDS]


RUNS = Runs()


def _span(values, pct=False) -> str:
    if pct:
        mean, lo, hi = (100 * f(values) for f in (statistics.mean, min, max))
        return f"{mean:.0f}% ({lo:.0f}–{hi:.0f})"
    return f"{statistics.mean(values):.0f} ({min(values)}–{max(values)})"


def _label(overrides: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in overrides.items()) or "large as shipped"


# ---------------------------------------------------------------------------------------------


def verdict_table() -> str:
    lines = [
        "| seed | variant | pages had | vs exact | stalled ms | counter lied ms | "
        "buddy < min ms | drain_all_pages |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in SEEDS:
        exact = RUNS.get({}, "exact", s)["delivered"]
        for label in VARIANTS:
            m = RUNS.get({}, label, s)
            lines.append(
                f"| {s} | {label} | {m['delivered']} | {100 * m['delivered'] / exact:.0f}% | "
                f"{m['stalled']} | {m['lies']} | {m['below_min']} | {m['drains']} |"
            )
    return "\n".join(lines)


def sensitivity_table() -> tuple[str, list[dict]]:
    lines = [
        "| knob | setting | progress vs exact: none | all | stalled ms: none | all | exact |",
        "|---|---|---|---|---|---|---|",
    ]
    facts = []
    for knob, settings in KNOBS:
        for o in settings:
            pn, pa = RUNS.progress(o, "none"), RUNS.progress(o, "all")
            sn, sa, se = (RUNS.stalled(o, v) for v in VARIANTS)
            lines.append(
                f"| {knob} | {_label(o)} | {_span(pn, True)} | {_span(pa, True)} | "
                f"{_span(sn)} | {_span(sa)} | {_span(se)} |"
            )
            facts.append({"knob": knob, "o": o, "pn": pn, "pa": pa, "sn": sn, "sa": sa, "se": se})
    return "\n".join(lines), facts


def definition_table() -> tuple[str, list[dict]]:
    lines = [
        "| stall definition | stalled ms: none | all | exact |",
        "|---|---|---|---|",
    ]
    facts = []
    for b in BINS:
        vals = [[RUNS.get({}, v, s)["by_bin"][b] for s in SEEDS] for v in VARIANTS]
        lines.append(f"| {b} ms bins, < 1 % | " + " | ".join(_span(x) for x in vals) + " |")
        facts.append({"what": f"{b} ms bins", "sn": vals[0], "sa": vals[1], "se": vals[2]})
    for t in THRESHOLDS:
        vals = [[RUNS.get({}, v, s)["by_threshold"][t] for s in SEEDS] for v in VARIANTS]
        lines.append(
            f"| 100 ms bins, < {100 * t:g} % | " + " | ".join(_span(x) for x in vals) + " |"
        )
        facts.append({"what": f"< {100 * t:g} %", "sn": vals[0], "sa": vals[1], "se": vals[2]})
    return "\n".join(lines), facts


def conclusions(sens: list[dict], defs: list[dict]) -> str:
    """Statements checked against every row and seed; each says how widely it holds."""
    out = []

    def claim(text, rows, test):
        held = [r for r in rows if test(r)]
        where = "every row" if len(held) == len(rows) else f"{len(held)} of {len(rows)} rows"
        out.append(f"* {text} — holds in **{where}**.")
        return len(held) == len(rows)

    claim(
        "Exact counters never stall (0 ms in every seed)",
        sens + defs,
        lambda r: max(r["se"]) == 0,
    )
    claim(
        "With all three patches the stall is at most half the unpatched one, seed by seed",
        sens + defs,
        lambda r: all(a <= n / 2 for a, n in zip(r["sa"], r["sn"], strict=True)),
    )
    claim(
        "The patched machine delivers at least as much as the unpatched one in every seed",
        sens,
        lambda r: all(a >= n for a, n in zip(r["pa"], r["pn"], strict=True)),
    )
    claim(
        "The unpatched machine stalls for a second or more in every seed",
        sens,
        lambda r: min(r["sn"]) >= 1000,
    )
    claim(
        "The unpatched machine stalls for a second or more in every seed (stall definitions)",
        defs,
        lambda r: min(r["sn"]) >= 1000,
    )
    stalls = [r for r in sens if min(r["sn"]) >= 1000]
    calm = [r for r in sens if max(r["sn"]) == 0]
    out.append(
        "* The unpatched machine stalls in every seed under: "
        + "; ".join(_label(r["o"]) for r in stalls)
        + "."
    )
    out.append(
        "* It never stalls under: " + ("; ".join(_label(r["o"]) for r in calm) or "(none)") + "."
    )
    worst_patched = max(sens, key=lambda r: statistics.mean(r["pa"]))
    best_patched = min(sens, key=lambda r: statistics.mean(r["pa"]))
    out.append(
        f"* With all three patches the machine delivers between "
        f"{100 * statistics.mean(best_patched['pa']):.0f}% ({_label(best_patched['o'])}) and "
        f"{100 * statistics.mean(worst_patched['pa']):.0f}% ({_label(worst_patched['o'])}) of "
        "what exact counters deliver (mean over seeds)."
    )
    return "\n".join(out)


def ablation_table() -> str:
    subsets = [
        "none",
        "counter_after_free",
        "drift_mark_snapshot",
        "drain_after_reclaim",
        "drift_mark_snapshot,drain_after_reclaim",
        "all",
    ]
    lines = [
        "| patches | progress vs exact | stalled ms | kswapd at stall onsets | drain_all_pages |",
        "|---|---|---|---|---|",
    ]
    for p in subsets:
        o = {"patches": p}
        prog = [
            RUNS.get(o, "_", s)["delivered"] / RUNS.get({}, "exact", s)["delivered"] for s in SEEDS
        ]
        stalled = [RUNS.get(o, "_", s)["stalled"] for s in SEEDS]
        onsets = sorted({k for s in SEEDS for k in RUNS.get(o, "_", s)["kswapd_at_onsets"]})
        drains = [RUNS.get(o, "_", s)["drains"] for s in SEEDS]
        lines.append(
            f"| {Patches.parse(p).label()} | {_span(prog, True)} | {_span(stalled)} | "
            f"{', '.join(onsets) or '-'} | {_span(drains)} |"
        )
    return "\n".join(lines)


def cpu_sweep() -> str:
    cpus = (16, 64, 128, 256, 512, 1024)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    rows = []
    for label, style in (("none", "o-"), ("all", "s--")):
        ys1, ys2 = [], []
        for c in cpus:
            o = {"cpus": c}
            p = statistics.mean(RUNS.progress(o, label))
            st = statistics.mean(RUNS.stalled(o, label))
            ys1.append(100 * p)
            ys2.append(st)
            rows.append((c, label, p, st))
        ax1.plot(cpus, ys1, style, label=f"patches {label}")
        ax2.plot(cpus, ys2, style, label=f"patches {label}")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("CPUs (zone = max(1 GiB, 16 MiB per CPU))")
        ax.legend(fontsize=8, loc="best")
    ax1.set_ylabel("pages had, % of exact counters")
    ax2.set_ylabel("stalled ms in 4 s")
    fig.suptitle("Machine size, large preset, mean of seeds 1-5", fontsize=10)
    fig.savefig(FIG / "cpu_sweep.png", dpi=110)
    plt.close(fig)
    lines = [
        "| CPUs | zone MiB | max drift / (low − min) | patches | progress vs exact | stalled ms |",
        "|---|---|---|---|---|---|",
    ]
    for c, label, p, st in rows:
        d = preset("large", cpus=c).derived()
        lines.append(
            f"| {c} | {scaled_zone_mib(c)} | {d.max_drift / d.tolerate_drift:.0f}× | {label} | "
            f"{100 * p:.0f}% | {st:.0f} |"
        )
    return "\n".join(lines)


def interval_figure() -> None:
    fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
    intervals = [1000, 2000, 3000]
    for label, style in (("none", "o-"), ("all", "s--"), ("exact", "^:")):
        ax.plot(
            [i / 1000 for i in intervals],
            [statistics.mean(RUNS.stalled({"stat_interval_ms": i}, label)) for i in intervals],
            style,
            label=label,
        )
    ax.set_xlabel("vm.stat_interval (s, whole seconds as on 2.6.36)")
    ax.set_ylabel("stalled ms in 4 s")
    ax.set_title("large, 256 CPUs: the stall does not wait for the interval", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.savefig(FIG / "stat_interval.png", dpi=110)
    plt.close(fig)


def steady_and_small() -> str:
    lines = [
        "| preset | variant | pages had | vs exact | stalled ms | mean counter − buddy | "
        "drift mark |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("small", "steady"):
        base = preset(name, seed=1)
        exact = Simulation(variant(base, "exact")).run().to_dict()["delivered_pages"]
        for label in VARIANTS:
            d = Simulation(variant(base, label)).run().to_dict()
            lines.append(
                f"| {name} | {label} | {d['delivered_pages']} | "
                f"{100 * d['delivered_pages'] / max(1, exact):.0f}% | {d['stalled_ms']} | "
                f"{d['mean_counter_minus_buddy']:.0f} | {d['drift_mark']} |"
            )
    return "\n".join(lines)


def livelock_figure():
    try:
        from allocsim.plotting import figure_livelock_off_on
    except ImportError:
        return
    figure_livelock_off_on(seed=1, path=FIG / "livelock.png")


def _ablation_jobs():
    jobs = []
    for p in (
        "counter_after_free",
        "drift_mark_snapshot",
        "drain_after_reclaim",
        "drift_mark_snapshot,drain_after_reclaim",
        "none",
        "all",
    ):
        # the patches ride in the overrides; "_" keeps the preset's (overridden) patches
        jobs += RUNS.need({"patches": p}, labels=("_",))
    return jobs


def phase_data():
    """Notebook 09's phase grid, shipped as package data so the lecture does not wait."""
    df = run_sweep(
        phase_grid(), baseline="exact", log=lambda msg: print(msg, file=sys.stderr)
    ).drop(columns=["run_key"])
    PRECOMPUTED.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(PRECOMPUTED, index=False)
    print(f"wrote {PRECOMPUTED.relative_to(HERE.parent)} ({len(df)} runs)", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# After the fix: 2.6.38 and what accuracy costs (issue 11). Self-contained: main() only merges
# the sections this returns.
# ---------------------------------------------------------------------------------------------

KERNEL_SEEDS = (1, 2, 3)


def _pct(x: float) -> str:
    return f"{x:.2f}%" if x >= 0.1 else f"{x:.3f}%"


def sockets_section() -> dict:
    """Watermark CPU share of 2.6.36 and 2.6.38 on Shaohua Li's readers, sockets 1-16."""
    from allocsim.accuracy import PUBLISHED, SOCKETS, plot_sockets, sockets_sweep, summarise
    from allocsim.config import READER_RATE

    def progress(i, n, what):
        print(f"  [{i + 1}/{n}] readers: {what}", file=sys.stderr)

    rows = sockets_sweep(SOCKETS, seeds=KERNEL_SEEDS, progress=progress)
    summary = summarise(rows)
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    plot_sockets(rows, ax=ax)
    fig.savefig(FIG / "sockets.png", dpi=110)
    plt.close(fig)
    published = {s: v for (s, _threads), v in PUBLISHED.items()}
    lines = [
        "| sockets | CPUs | 2.6.36 watermark share | 2.6.38 watermark share | 2.6.36 / 2.6.38 "
        "| pages had 2.6.36 / 2.6.38 | all charged costs 2.6.36 / 2.6.38 | published |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in SOCKETS:
        old, new = summary[(s, "2.6.36")], summary[(s, "2.6.38")]
        pub = published.get(s)
        pub_text = f"{pub[0]}% / {pub[1]}%" if pub else ""
        lines.append(
            f"| {s} | {old['cpus']} | {_pct(old['share'])} ({_pct(old['share_min'])}-"
            f"{_pct(old['share_max'])}) | {_pct(new['share'])} ({_pct(new['share_min'])}-"
            f"{_pct(new['share_max'])}) | {old['share'] / new['share']:.0f} | "
            f"{100 * old['pages_had']:.0f}% / {100 * new['pages_had']:.0f}% | "
            f"{_pct(old['overhead'])} / {_pct(new['overhead'])} | {pub_text} |"
        )
    from allocsim.config import preset as _preset

    d1 = _preset("readers", sockets=1).derived()
    d14 = _preset("readers", sockets=14).derived()
    pub1, pub14 = published[1], published[14]
    one_old, one_new = summary[(1, "2.6.36")]["share"], summary[(1, "2.6.38")]["share"]
    big_old, big_new = summary[(14, "2.6.36")]["share"], summary[(14, "2.6.38")]["share"]
    return {
        "SOCKETS_TABLE": "\n".join(lines),
        "READER_RATE": f"{READER_RATE:g}",
        "SOCKETS_SEEDS": ", ".join(str(s) for s in KERNEL_SEEDS),
        "ONE_SOCKET_2636": _pct(one_old),
        "ONE_SOCKET_2638": _pct(one_new),
        "FOURTEEN_2636": _pct(big_old),
        "FOURTEEN_2638": _pct(big_new),
        "FOURTEEN_RATIO": f"{big_old / big_new:.0f}",
        "GROWTH_2636": f"{big_old / one_old:.1f}",
        "GROWTH_2638": f"{big_new / one_new:.1f}",
        "NORMAL_1": str(d1.stat_threshold),
        "NORMAL_14": str(d14.stat_threshold),
        "PRESSURE_14": str(d14.pressure_threshold),
        "PUBLISHED_RATIO_14": f"{pub14[0] / pub14[1]:.0f}",
        "PUBLISHED_GROWTH_2636": f"{pub14[0] / pub1[0]:.1f}",
        "PUBLISHED_GROWTH_2638": f"{pub14[1] / pub1[1]:.1f}",
        "ONE_SOCKET_2638_VS_PUBLISHED": f"{100 * one_new / pub1[1]:.0f}%",
        "PAGES_HAD_14": (
            f"{100 * summary[(14, '2.6.36')]['pages_had']:.0f}% against "
            f"{100 * summary[(14, '2.6.38')]['pages_had']:.0f}%"
        ),
    }


def no_interrupt_section() -> dict:
    """The large case without interrupts, seeds 1-5, on each kernel and the exact machine."""
    import collections

    from allocsim.compare import compare

    kernels = ("2.6.35", "2.6.36", "2.6.38")
    lines = [
        "| kswapd at t=0 | kernel | stalled ms per seed | longest stall ms | pages had vs exact "
        "| counter lied ms | drain_all_pages | watermark share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    facts = {}
    for asleep in (False, True):
        by = collections.defaultdict(list)
        for seed in SEEDS:
            print(f"  no interrupts: seed {seed}, kswapd asleep {asleep}", file=sys.stderr)
            cfg = preset("large", atomic_rate=0.0, seed=seed, kswapd_asleep_at_start=asleep)
            for r in compare(cfg, list(kernels)):
                by[r["label"]].append(r)
        for label in (*kernels, "exact"):
            rs = by[label]
            lines.append(
                f"| {'asleep' if asleep else 'starting (boot nap)'} | {label} | "
                f"{', '.join(str(r['stalled_ms']) for r in rs)} | "
                f"{max(r['longest_stall_ms'] for r in rs)} | "
                f"{', '.join(_vs_exact(r) for r in rs)} | "
                f"{', '.join(str(r['counter_lies_ms']) for r in rs)} | "
                f"{', '.join(str(r['drain_all_pages_calls']) for r in rs)} | "
                f"{_pct(100 * sum(r['cost']['watermark_cpu_share'] for r in rs) / len(rs))} |"
            )
            tag = f"{label.replace('.', '')}_{'ASLEEP' if asleep else 'NAP'}"
            facts[f"NOIRQ_STALL_{tag}"] = _seed_range([r["stalled_ms"] for r in rs], " ms")
            facts[f"NOIRQ_PVE_{tag}"] = _seed_range(
                [round(100 * r["progress_vs_exact"]) for r in rs if r["progress_vs_exact"]], "%"
            )
            facts[f"NOIRQ_LIES_{tag}"] = _seed_range([r["counter_lies_ms"] for r in rs], " ms")
    return {"NO_INTERRUPT_TABLE": "\n".join(lines), **facts}


def _seed_range(values, unit: str) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}{unit}" if lo == hi else f"{lo}-{hi}{unit}"


def _vs_exact(row: dict) -> str:
    return "-" if row["progress_vs_exact"] is None else f"{100 * row['progress_vs_exact']:.0f}%"


def after_the_fix_sections() -> dict:
    out = sockets_section()
    out.update(no_interrupt_section())
    return out


AFTER_THE_FIX = "## After the fix: 2.6.38 and what accuracy costs"


def after_the_fix_only() -> None:
    """Regenerate only the after-the-fix part of docs/results.md (``--only after-the-fix``).

    Renders the template from its after-the-fix heading on and puts it in place of that part of
    the existing results.md (or appends it), leaving the other sections as they were generated.
    """
    FIG.mkdir(parents=True, exist_ok=True)
    template = (HERE / "results.template.md").read_text()
    part = template[template.index(AFTER_THE_FIX) :]
    for key, table in after_the_fix_sections().items():
        part = part.replace("{{" + key + "}}", table)
    results = HERE / "results.md"
    old = results.read_text() if results.exists() else ""
    if AFTER_THE_FIX in old:
        old = old[: old.index(AFTER_THE_FIX)]
    results.write_text(old.rstrip("\n") + "\n\n" + part)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--only", "after-the-fix"]:
        after_the_fix_only()
        return
    FIG.mkdir(parents=True, exist_ok=True)
    start = time.time()
    phase_data()
    if argv == ["phase"]:
        return
    jobs = RUNS.need({})
    for _, settings in KNOBS:
        for o in settings:
            jobs += RUNS.need(o)
    for c in (16, 64, 128, 256, 512, 1024):
        jobs += RUNS.need({"cpus": c})
    jobs += _ablation_jobs()
    RUNS.compute(jobs)
    sens, sens_facts = sensitivity_table()
    defs, def_facts = definition_table()
    sections = {
        "VERDICT": verdict_table(),
        "SENSITIVITY": sens,
        "DEFINITION": defs,
        "CONCLUSIONS": conclusions(sens_facts, def_facts),
        "ABLATION": ablation_table(),
        "CPU_SWEEP": cpu_sweep(),
        "STEADY_SMALL": steady_and_small(),
    }
    sections.update(after_the_fix_sections())
    interval_figure()
    livelock_figure()
    template = (HERE / "results.template.md").read_text()
    for key, table in sections.items():
        template = template.replace("{{" + key + "}}", table)
    (HERE / "results.md").write_text(template)
    print(
        f"wrote docs/results.md and docs/figures/ in {time.time() - start:.0f} s", file=sys.stderr
    )


if __name__ == "__main__":
    main()
