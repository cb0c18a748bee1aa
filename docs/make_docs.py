"""Regenerate the figures and tables in docs/results.md from the model.

    python docs/make_docs.py            # all experiments (a few minutes on 2 cores)

Every number in docs/results.md comes from this script; nothing is typed in by hand.
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from allocsim.config import preset, scaled_zone_mib  # noqa: E402
from allocsim.metrics import PATCH_SUBSETS, sweep  # noqa: E402
from allocsim.sim import Simulation  # noqa: E402

HERE = Path(__file__).resolve().parent
FIG = HERE / "figures"
SEEDS = (1, 2, 3, 4, 5)


def say(i, n, cfg):
    print(
        f"  [{i + 1}/{n}] {cfg.cpus} CPUs, patches {cfg.patches.label()}, seed {cfg.seed}, "
        f"interval {cfg.stat_interval_ms} ms",
        file=sys.stderr,
    )


def ablation():
    rows = sweep(
        [preset("large", seed=s, patches=p) for p in PATCH_SUBSETS for s in SEEDS], progress=say
    )
    by = collections.defaultdict(list)
    for r in rows:
        by[r["patches"]].append(r)
    lines = [
        "| patches | livelocked (seeds 1-5) | livelock ms per seed | kswapd awake at onset "
        "| ticks with the snapshot in use | drain_all_pages calls | task pages had |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, rs in by.items():
        awake = ", ".join(
            "-"
            if r["kswapd_awake_at_onset"] is None
            else ("yes" if r["kswapd_awake_at_onset"] else "no")
            for r in rs
        )
        lines.append(
            f"| {p} | {sum(r['livelocked'] for r in rs)}/5 | "
            f"{', '.join(str(r['livelock_ms']) for r in rs)} | {awake} | "
            f"{', '.join(str(r['snapshot_ticks']) for r in rs)} | "
            f"{', '.join(str(r['drain_all_pages_calls']) for r in rs)} | "
            f"{100 * sum(r['task_throughput'] for r in rs) / len(rs):.1f}% |"
        )
    return "\n".join(lines)


def stat_interval_figure():
    intervals = (250, 500, 1000, 1500, 2000, 3000)
    seeds = (1, 2, 3)
    rows = sweep(
        [
            preset(
                "large",
                seed=s,
                patches="none",
                stat_interval_ms=i,
                duration_ms=max(4000, 2 * i + 1000),
            )
            for i in intervals
            for s in seeds
        ],
        progress=say,
    )
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for s in seeds:
        ys = [r["first_episode_ms"] for r in rows if r["seed"] == s]
        ax.plot(intervals, ys, "o-", label=f"seed {s}")
    ax.plot(intervals, intervals, ":", color="grey", label="one interval")
    ax.set_xlabel("vm.stat_interval (ms)")
    ax.set_ylabel("first livelock episode (ms)")
    ax.set_title("large, 256 CPUs, patches off: the stall lasts about one interval", fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(FIG / "stat_interval.png", dpi=110)
    plt.close(fig)
    lines = [
        "| stat_interval_ms | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|" + "---|" * len(seeds),
    ]
    for i in intervals:
        vals = [str(r["first_episode_ms"]) for r in rows if r["stat_interval_ms"] == i]
        lines.append(f"| {i} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def cpu_sweep_figure():
    cpus = (4, 16, 64, 128, 256, 512, 1024)
    rows = sweep(
        [preset("large", cpus=c, seed=1, patches=p) for c in cpus for p in ("none", "all")],
        progress=say,
    )
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    for p, style in (("none", "o-"), ("all", "s--")):
        rs = [r for r in rows if r["patches"] == p]
        ax1.plot(cpus, [r["livelock_ms"] for r in rs], style, label=f"patches {p}")
        ax2.plot(cpus, [r["max_counter_minus_buddy"] for r in rs], style, label=f"patches {p}")
    ax2.plot(
        cpus,
        [r["max_drift"] for r in rows if r["patches"] == "none"],
        ":",
        color="grey",
        label="max drift (cpus × threshold)",
    )
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("CPUs (zone = max(1 GiB, 16 MiB per CPU))")
        ax.legend(fontsize=8)
    ax1.set_ylabel("livelock (ms in 4 s)")
    ax2.set_ylabel("max counter − buddy (pages)")
    ax2.set_yscale("log")
    fig.suptitle("Sweep over machine size, seed 1", fontsize=10)
    fig.savefig(FIG / "cpu_sweep.png", dpi=110)
    plt.close(fig)
    lines = [
        "| CPUs | zone MiB | patches | livelock ms | max counter − buddy | max drift | "
        "task pages had | drain_all_pages |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cpus']} | {scaled_zone_mib(r['cpus'])} | {r['patches']} | "
            f"{r['livelock_ms']} | {r['max_counter_minus_buddy']} | {r['max_drift']} | "
            f"{100 * r['task_throughput']:.1f}% | {r['drain_all_pages_calls']} |"
        )
    global CPU_LIVELOCKED
    CPU_LIVELOCKED = {
        p: ", ".join(str(r["cpus"]) for r in rows if r["patches"] == p and r["livelocked"])
        or "none"
        for p in ("none", "all")
    }
    return "\n".join(lines)


CPU_LIVELOCKED = {}


def steady_and_small():
    lines = [
        "| preset | patches | livelocked | mean counter − buddy | max counter − buddy | "
        "drift mark | task pages had |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("small", "steady"):
        for p in ("none", "all"):
            r = Simulation(preset(name, seed=1, patches=p)).run()
            d = r.to_dict()
            lines.append(
                f"| {name} | {p} | {d['livelocked']} | {d['mean_counter_minus_buddy']:.0f} | "
                f"{d['max_counter_minus_buddy']} | {d['drift_mark']} | "
                f"{100 * d['task_throughput']:.1f}% |"
            )
    return "\n".join(lines)


def livelock_figure():
    try:
        from allocsim.plotting import figure_livelock_off_on
    except ImportError:
        return
    figure_livelock_off_on(seed=1, path=FIG / "livelock.png")


def main():
    FIG.mkdir(parents=True, exist_ok=True)
    start = time.time()
    sections = {
        "ABLATION": ablation(),
        "STAT_INTERVAL": stat_interval_figure(),
        "CPU_SWEEP": cpu_sweep_figure(),
        "STEADY_SMALL": steady_and_small(),
    }
    sections["CPU_LIVELOCKED"] = CPU_LIVELOCKED["none"] + " CPUs"
    sections["CPU_LIVELOCKED_PATCHED"] = CPU_LIVELOCKED["all"]
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
