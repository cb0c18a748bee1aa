"""Mel Gorman's three patches (merged for 2.6.36) and 2.6.38's replacement, as switches.

Each switch is read only at the kernel decision point the real commit changed, next to the old
behaviour and marked ``# PATCH(<name>)``; ``grep -n "PATCH(" allocsim/`` lists them all.

Kernel versions are presets of the switches (:data:`KERNELS`): ``2.6.35`` has none (it equals
2.6.36-rc3 for every function modelled), ``2.6.36`` has the three 2010 patches, and ``2.6.38``
keeps patches 1 and 3 but replaces patch 2's read path (``zone_nr_free_pages``) with 88f5acf's
pressure thresholds and ``zone_watermark_ok_safe``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Patches", "PATCH_INFO", "KERNELS"]

# name -> (commit, kernel function changed, subject line of the commit)
PATCH_INFO = {
    "counter_after_free": (
        "72853e2",
        "free_pcppages_bulk, free_one_page (mm/page_alloc.c)",
        "mm: page allocator: update free page counters after pages are placed on the free list",
    ),
    "drift_mark_snapshot": (
        "aa45484",
        "zone_nr_free_pages (mm/mmzone.c), refresh_zone_stat_thresholds (mm/vmstat.c)",
        "mm: page allocator: calculate a better estimate of NR_FREE_PAGES when memory is low "
        "and kswapd is awake",
    ),
    "drain_after_reclaim": (
        "9ee493c",
        "__alloc_pages_direct_reclaim (mm/page_alloc.c)",
        "mm: page allocator: drain per-cpu lists after direct reclaim allocation fails",
    ),
    # 88f5acf88ae6 and its companion "mm: vmstat: Use a single setter function and callback for
    # adjusting percpu thresholds" (2.6.38 merge window). Split here into the two behaviours
    # the commit combines, so that each can be switched on its own.
    "pressure_threshold": (
        "88f5acf",
        "set_pgdat_percpu_threshold, calculate_pressure_threshold (mm/vmstat.c), "
        "kswapd (mm/vmscan.c)",
        "mm: page allocator: Adjust the per-cpu counter threshold when memory is low",
    ),
    "watermark_ok_safe": (
        "88f5acf",
        "zone_watermark_ok, zone_watermark_ok_safe (mm/page_alloc.c); wakeup_kswapd, "
        "sleeping_prematurely, balance_pgdat (mm/vmscan.c); zone_nr_free_pages removed",
        "mm: page allocator: Adjust the per-cpu counter threshold when memory is low",
    ),
}

# The three 2010 patches, in commit order: what ``Patches.names()`` and ``"all"`` mean.
_SERIES_2010 = ("counter_after_free", "drift_mark_snapshot", "drain_after_reclaim")


@dataclass(frozen=True, kw_only=True)
class Patches:
    """Which fixes are applied.

    Parameters
    ----------
    counter_after_free : bool
        72853e2: raise NR_FREE_PAGES after freed pages are on the buddy lists, not before.
    drift_mark_snapshot : bool
        aa45484: below ``percpu_drift_mark``, while kswapd is awake, watermark checks read
        ``zone_page_state_snapshot`` (counter plus every CPU's delta).
    drain_after_reclaim : bool
        9ee493c: when the allocation after direct reclaim fails, ``drain_all_pages`` and retry
        once.
    pressure_threshold : bool
        88f5acf (2.6.38): while kswapd is awake, every online CPU's ``stat_threshold`` of a zone
        with a drift mark is lowered to ``calculate_pressure_threshold`` (``(low - min) / cpus``),
        and restored to ``calculate_normal_threshold`` just before kswapd truly sleeps.
    watermark_ok_safe : bool
        88f5acf (2.6.38): ``wakeup_kswapd``, ``sleeping_prematurely`` and ``balance_pgdat`` use
        ``zone_watermark_ok_safe`` (the snapshot below the drift mark, whether kswapd is awake
        or not); every other check reads the plain counter (``zone_nr_free_pages`` is gone).
    """

    counter_after_free: bool = False
    drift_mark_snapshot: bool = False
    drain_after_reclaim: bool = False
    pressure_threshold: bool = False
    watermark_ok_safe: bool = False

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, bool):
                raise TypeError(f"Patches.{f.name} must be True or False, got {v!r}")

    @classmethod
    def none(cls) -> Patches:
        """2.6.36-rc3 (= 2.6.35.3 here): no patch applied."""
        return cls()

    @classmethod
    def all(cls) -> Patches:
        """2.6.36: all three 2010 patches applied."""
        return cls(**{n: True for n in _SERIES_2010})

    @classmethod
    def kernel_preset(cls, version: str) -> Patches:
        """The switches of a kernel version: ``"2.6.35"``, ``"2.6.36"`` or ``"2.6.38"``."""
        if version not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {version!r}")
        return cls(**{n: True for n in KERNELS[version]})

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The three 2010 patches, in commit order (the series the kit is about)."""
        return _SERIES_2010

    @classmethod
    def switches(cls) -> tuple[str, ...]:
        """Every switch: the three 2010 patches, then 2.6.38's two behaviours."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def parse(cls, text: str) -> Patches:
        """``"all"``, ``"none"``, a kernel version or a comma-separated list of switch names."""
        if not isinstance(text, str):
            raise TypeError(f"patches must be a string, got {text!r}")
        text = text.strip()
        if text == "all":
            return cls.all()
        if text in ("none", ""):
            return cls.none()
        if text in KERNELS:
            return cls.kernel_preset(text)
        chosen = [p.strip() for p in text.split(",") if p.strip()]
        unknown = [p for p in chosen if p not in cls.switches()]
        if unknown:
            raise ValueError(
                f"patches: unknown patch name(s) {', '.join(unknown)}; use 'all', 'none', "
                f"a kernel ({', '.join(KERNELS)}) or a comma list of {', '.join(cls.switches())}"
            )
        return cls(**{p: True for p in chosen})

    def enabled(self) -> tuple[str, ...]:
        """Names of the switches that are on."""
        return tuple(n for n in self.switches() if getattr(self, n))

    def kernel(self) -> str | None:
        """The kernel version these switches are (``"2.6.35"``, ...), or None for a mixture."""
        on = set(self.enabled())
        for version, names in KERNELS.items():
            if on == set(names):
                return version
        return None

    def label(self) -> str:
        """Short text for plots and tables: ``none``, ``all`` (2.6.36), ``2.6.38`` or the names
        joined by ``+``."""
        on = self.enabled()
        if not on:
            return "none"
        if on == _SERIES_2010:
            return "all"
        if self.kernel() is not None:
            return self.kernel()
        return "+".join(on)


# Kernel version -> the switches that are on. 2.6.38 keeps 72853e2 and 9ee493c; aa45484's
# percpu_drift_mark and zone_page_state_snapshot survive, but its read path does not.
KERNELS = {
    "2.6.35": (),
    "2.6.36": _SERIES_2010,
    "2.6.38": (
        "counter_after_free",
        "drain_after_reclaim",
        "pressure_threshold",
        "watermark_ok_safe",
    ),
}
