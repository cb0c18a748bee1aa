"""What accuracy costs: 2.6.36 against 2.6.38 on Shaohua Li's readers, socket by socket.

The published measurements (the V4 changelog of 88f5acf, Mel Gorman, Oct 2010) are kept here as
reference data, labelled as such; every other number comes from runs of the ``readers`` preset
(``allocsim/config.py``) with the cost model of ``allocsim/cost.py``.

    >>> from allocsim.accuracy import sockets_sweep
    >>> rows = sockets_sweep(sockets=(1,), seeds=(1,), duration_ms=200)
    >>> sorted(rows[0])[:3]
    ['cpus', 'kernel', 'pages_had']
"""

from __future__ import annotations

import numpy as np

from .errors import check_int

__all__ = [
    "PUBLISHED",
    "SOCKETS",
    "sockets_sweep",
    "summarise",
    "plot_sockets",
    "plot_threshold",
    "no_interrupt_runs",
]

# Share of CPU time in zone_nr_free_pages, zone_watermark_ok, __zone_watermark_ok,
# zone_watermark_ok_safe, zone_page_state_snapshot and zone_page_state, Shaohua Li's workload:
# (sockets, hardware threads) -> (2.6.36, with the threshold patch), in percent. Source: the V4
# changelog of "mm: page allocator: Adjust the per-cpu counter threshold when memory is low",
# quoted in https://lore.kernel.org/linux-mm/20101028150433.fe4f2d77.akpm@linux-foundation.org/
# and https://lore.kernel.org/linux-mm/20101029101210.GG4896@csn.ul.ie/ (reference data, not a
# model output).
PUBLISHED = {(1, 8): (0.66, 0.11), (14, 112): (11.6615, 0.2584)}

SOCKETS = (1, 2, 4, 8, 12, 14, 16)
KERNELS = ("2.6.36", "2.6.38")


def sockets_sweep(
    sockets=SOCKETS, kernels=KERNELS, seeds=(1, 2, 3), duration_ms=1000, progress=None
) -> list[dict]:
    """Run the ``readers`` preset for every socket count, kernel and seed; one row per run.

    Each row: ``sockets``, ``cpus``, ``kernel``, ``seed``, ``share`` (watermark CPU share of the
    simulated node's socket, in percent), ``overhead`` (all charged costs, same basis),
    ``pages_had`` (share of the readers' demand they got), ``snapshot_reads``,
    ``threshold_rewrites`` and ``drain_ipis``.
    """
    from .config import preset
    from .sim import Simulation

    duration_ms = check_int("duration_ms", duration_ms, 1, 3_600_000)
    todo = [(s, k, seed) for s in sockets for k in kernels for seed in seeds]
    rows = []
    for i, (s, kernel, seed) in enumerate(todo):
        if progress is not None:
            progress(i, len(todo), f"{kernel}, {s} socket(s), seed {seed}")
        cfg = preset(
            "readers",
            sockets=check_int("sockets", s, 1, 64),
            patches=kernel,
            seed=seed,
            duration_ms=duration_ms,
        )
        r = Simulation(cfg).run()
        c = r.cost
        d = r.to_dict()
        node_cpus = cfg.cpus // cfg.sockets
        node_ns = node_cpus * r.simulated_ms * 1e6
        rows.append(
            {
                "sockets": s,
                "cpus": cfg.cpus,
                "kernel": kernel,
                "seed": seed,
                "share": 100 * c["watermark_cpu_share_by_socket"][0],
                "overhead": 100 * float(r["cost_ns"].sum()) / node_ns,
                "pages_had": d["task_throughput"],
                "snapshot_reads": c["snapshot_reads"],
                "threshold_rewrites": c["threshold_rewrites"],
                "drain_ipis": c["drain_ipis"],
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict:
    """``(sockets, kernel) -> dict`` of the mean, min and max share and the mean pages had."""
    out = {}
    for key in sorted({(r["sockets"], r["kernel"]) for r in rows}):
        rs = [r for r in rows if (r["sockets"], r["kernel"]) == key]
        shares = np.array([r["share"] for r in rs])
        out[key] = {
            "cpus": rs[0]["cpus"],
            "share": float(shares.mean()),
            "share_min": float(shares.min()),
            "share_max": float(shares.max()),
            "overhead": float(np.mean([r["overhead"] for r in rs])),
            "pages_had": float(np.mean([r["pages_had"] for r in rs])),
            "seeds": len(rs),
        }
    return out


def plot_sockets(rows: list[dict], ax=None):
    """Watermark CPU share against sockets, one line per kernel, the published points marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    summary = summarise(rows)
    colours = {"2.6.36": "tab:red", "2.6.38": "tab:blue"}
    for kernel in sorted({k for _, k in summary}):
        xs = sorted(s for s, k in summary if k == kernel)
        mean = [summary[(s, kernel)]["share"] for s in xs]
        lo = [summary[(s, kernel)]["share_min"] for s in xs]
        hi = [summary[(s, kernel)]["share_max"] for s in xs]
        colour = colours.get(kernel)
        ax.plot(xs, mean, "o-", color=colour, label=f"{kernel} (model)")
        ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, linewidth=0)
    for i, kernel in enumerate(KERNELS):
        pts = [(s, v[i]) for (s, _threads), v in PUBLISHED.items()]
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            "*",
            markersize=12,
            color=colours[kernel],
            markeredgecolor="black",
            label=f"{kernel} (published)",
        )
    ax.set_yscale("log")
    ax.set_xlabel("sockets (8 CPUs each)")
    ax.set_ylabel("CPU time in watermark checks (%)")
    ax.set_title("Shaohua Li's readers: the cost of an accurate NR_FREE_PAGES", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_threshold(result, *, ax=None):
    """The per-CPU ``stat_threshold`` in force over a run, with kswapd's state underneath.

    2.6.38 lowers it when kswapd is woken from its full sleep and restores it just before the
    next full sleep; ``cpus × threshold`` (the worst drift) is drawn against ``low − min``.
    """
    import matplotlib.pyplot as plt

    from .vmscan import KswapdState

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
    t = result.t_ms
    d = result.derived
    cpus = result.config.cpus
    drift = cpus * result["stat_threshold"]
    ax.step(t, drift, where="post", color="tab:purple", label="cpus × stat_threshold (max drift)")
    ax.axhline(d["tolerate_drift"], color="grey", ls=":", label="low − min")
    awake = result["kswapd_state"] == KswapdState.RUNNING
    top = max(float(drift.max()), d["tolerate_drift"]) * 1.6
    ax.fill_between(
        t,
        0,
        top,
        where=awake,
        step="post",
        color="tab:orange",
        alpha=0.15,
        linewidth=0,
        label="kswapd in balance_pgdat",
    )
    ax.set_yscale("symlog", linthresh=max(1, d["tolerate_drift"] // 4))
    ax.set_ylim(0, top)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("pages")
    ax.set_title(
        f"{result.config.patches.label()}: stat_threshold {d['stat_threshold']} normal, "
        f"{d['pressure_threshold']} under pressure ({cpus} CPUs)",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper right")
    return ax


def no_interrupt_runs(
    seed: int = 1,
    kernels=("2.6.36", "2.6.38"),
    duration_ms: int = 4000,
    kswapd_asleep_at_start: bool = True,
):
    """The ``large`` case without interrupt load on each kernel, same seed: RunResults."""
    from .config import preset
    from .sim import Simulation

    return [
        Simulation(
            preset(
                "large",
                atomic_rate=0.0,
                seed=seed,
                patches=k,
                duration_ms=duration_ms,
                kswapd_asleep_at_start=kswapd_asleep_at_start,
            )
        ).run()
        for k in kernels
    ]
