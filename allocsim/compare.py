"""The same seed on several machines: the kernel as it was, as patched, and with exact counters.

What a patch "buys" is only a number when it is measured against the machine it tries to
approximate: one whose NR_FREE_PAGES is exact (:func:`allocsim.metrics.exact_config`). This
module runs labelled variants of one config — same seed, same workload — and reports each run's
measures with ``progress_vs_exact``, the pages its tasks got relative to the exact machine's.

    >>> from allocsim import SimConfig
    >>> from allocsim.compare import compare
    >>> rows = compare(SimConfig.preset("small", duration_ms=200))
    >>> [r["label"] for r in rows]
    ['none', 'all', 'exact']
"""

from __future__ import annotations

from .config import SimConfig
from .metrics import exact_config
from .patches import Patches

__all__ = ["LABELS", "variant", "compare_results", "compare", "table"]

LABELS = ("none", "all", "exact")


def variant(config: SimConfig, label: str) -> SimConfig:
    """The config of one labelled variant: ``exact``, or any text ``Patches.parse`` takes."""
    if not isinstance(label, str):
        raise TypeError(f"label must be a string, got {label!r}")
    if label == "exact":
        return exact_config(config)
    return config.replace(patches=Patches.parse(label))


def compare_results(config: SimConfig, labels=LABELS, *, progress=None) -> list[tuple[str, object]]:
    """Run every labelled variant of ``config``; return ``[(label, RunResult), ...]``.

    The exact machine is always run (it is the yardstick), even if ``labels`` leaves it out.
    ``progress(i, n, label)`` is called before each run.
    """
    from .sim import Simulation

    if not isinstance(config, SimConfig):
        raise TypeError(f"config must be an allocsim.SimConfig, got {config!r}")
    labels = list(labels)
    if not labels:
        raise ValueError("labels must name at least one variant, e.g. none,all,exact")
    todo = labels + ([] if "exact" in labels else ["exact"])
    configs = [(label, variant(config, label)) for label in todo]  # fail early on a bad label
    out = []
    for i, (label, cfg) in enumerate(configs):
        if progress is not None:
            progress(i, len(configs), label)
        out.append((label, Simulation(cfg).run()))
    return out


def compare(config: SimConfig, labels=LABELS, *, progress=None) -> list[dict]:
    """One dict per variant: ``label``, every key of ``run --json``, and ``progress_vs_exact``."""
    results = compare_results(config, labels, progress=progress)
    exact = dict(results)["exact"].to_dict()["delivered_pages"]
    rows = []
    for label, result in results:
        d = {"label": label, **result.to_dict()}
        d["progress_vs_exact"] = d["delivered_pages"] / exact if exact else None
        rows.append(d)
    return rows


def table(rows: list[dict]) -> str:
    """The comparison as a plain-text table (what ``python -m allocsim compare`` prints)."""
    head = (
        f"{'variant':<28} {'pages had':>10} {'vs exact':>9} {'stalled':>9} "
        f"{'lied':>8} {'buddy<min':>9} {'drains':>7} {'wmark cpu':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        pve = "-" if r["progress_vs_exact"] is None else f"{100 * r['progress_vs_exact']:.0f}%"
        lines.append(
            f"{r['label']:<28} {r['delivered_pages']:>10} {pve:>9} "
            f"{r['stalled_ms']:>7}ms {r['counter_lies_ms']:>6}ms {r['buddy_below_min_ms']:>7}ms "
            f"{r['drain_all_pages_calls']:>7} {_wmark_share(r):>9}"
        )
    lines.append(
        "stalled: 100 ms bins in which the writers got < 1% of what they asked for while most "
        "were stuck; lied: the checked count was >= min while the buddy lists held < min; "
        "wmark cpu: share of CPU time in watermark checks and their reads (allocsim/cost.py)"
    )
    return "\n".join(lines)


def _wmark_share(row: dict) -> str:
    cost = row.get("cost")
    if not cost:
        return "-"
    return f"{100 * cost['watermark_cpu_share']:.2f}%"
