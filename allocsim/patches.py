"""Mel Gorman's three patches (merged for 2.6.36) as independent switches.

Each switch is read only at the kernel decision point the real commit changed, next to the old
behaviour and marked ``# PATCH(<name>)``; ``grep -n "PATCH(" allocsim/`` lists them all.
All off is 2.6.36-rc3 (= 2.6.35.3 for every function modelled); all on is 2.6.36.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Patches", "PATCH_INFO"]

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
}


@dataclass(frozen=True, kw_only=True)
class Patches:
    """Which of the three 2.6.36 fixes are applied.

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
    """

    counter_after_free: bool = False
    drift_mark_snapshot: bool = False
    drain_after_reclaim: bool = False

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, bool):
                raise TypeError(f"Patches.{f.name} must be True or False, got {v!r}")

    @classmethod
    def none(cls) -> Patches:
        """2.6.36-rc3: no patch applied."""
        return cls()

    @classmethod
    def all(cls) -> Patches:
        """2.6.36: all three patches applied."""
        return cls(counter_after_free=True, drift_mark_snapshot=True, drain_after_reclaim=True)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The switch names, in commit order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def parse(cls, text: str) -> Patches:
        """``"all"``, ``"none"`` or a comma-separated list of switch names."""
        if not isinstance(text, str):
            raise TypeError(f"patches must be a string, got {text!r}")
        text = text.strip()
        if text == "all":
            return cls.all()
        if text in ("none", ""):
            return cls.none()
        chosen = [p.strip() for p in text.split(",") if p.strip()]
        unknown = [p for p in chosen if p not in cls.names()]
        if unknown:
            raise ValueError(
                f"patches: unknown patch name(s) {', '.join(unknown)}; "
                f"use 'all', 'none' or a comma list of {', '.join(cls.names())}"
            )
        return cls(**{p: True for p in chosen})

    def enabled(self) -> tuple[str, ...]:
        """Names of the switches that are on."""
        return tuple(n for n in self.names() if getattr(self, n))

    def label(self) -> str:
        """Short text for plots and tables: ``none``, ``all`` or the names joined by ``+``."""
        on = self.enabled()
        if not on:
            return "none"
        if len(on) == len(self.names()):
            return "all"
        return "+".join(on)
