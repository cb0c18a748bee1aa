"""Patch 1's window, made visible: one ``free_pcppages_bulk`` stepped page by page.

The zone lock serialises the buddy lists, but ``zone_watermark_ok`` reads the counter without
it. Unpatched (2.6.35.3) the bulk free adds its whole ``count`` to NR_FREE_PAGES *before* it
links the first page, so a reader on another CPU can, for the duration of the loop, see pages
counted that are not on the lists yet — and pass a check it should fail. With 72853e2 the
counter moves only after the last page is linked: the reader never sees more than is there.

The tick-level simulation cannot show this (the whole loop fits in a microsecond); this module
runs the real page-level code with a hook after each page and records what the reader saw.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import ALLOC_HARDER, ALLOC_HIGH, WMARK_MIN
from .mmzone import Zone
from .page_alloc import free_pcppages_bulk, rmqueue_bulk, zone_watermark_ok
from .patches import Patches
from .vmstat import zone_page_state

__all__ = ["WindowStep", "free_pcppages_bulk_window"]


@dataclass(frozen=True)
class WindowStep:
    """What a lockless reader on another CPU saw after ``linked`` pages were put back."""

    linked: int  # pages of the batch on the buddy lists so far
    counter: int  # zone_page_state(NR_FREE_PAGES), as the reader reads it
    buddy: int  # pages really on the buddy lists
    in_flight: int  # counted but not yet on the lists: counter + diffs - buddy, if positive
    watermark_ok: bool  # the reader's GFP_ATOMIC check at the min watermark
    truth_ok: bool  # the same check on the true count of pages on the lists


def free_pcppages_bulk_window(
    patches: Patches | None = None,
    *,
    present_pages: int = 262_144,
    num_online_cpus: int = 4,
    free_pages: int = 400,
    batch: int = 31,
    stat_threshold: int = 8,
) -> list[WindowStep]:
    """Step one ``free_pcppages_bulk`` of ``batch`` pages and watch it from another CPU.

    A zone starts with ``free_pages`` pages on the buddy lists (near its min watermark); CPU 0
    refills its pcp list with ``batch`` pages (so the lists go below the watermark), then frees
    them back. After every page linked, CPU 1 reads the counter and runs a GFP_ATOMIC
    ``zone_watermark_ok`` (ALLOC_HIGH | ALLOC_HARDER at WMARK_MIN). Returns one
    :class:`WindowStep` per page plus the state before the loop (``linked == 0`` is recorded
    inside the lock, before the first page is linked) and after the lock is dropped (the last
    step, ``linked == batch`` again).

    With the default small ``stat_threshold`` the batch folds straight into ``vm_stat``, as it
    does on a real machine whenever ``batch > stat_threshold``.
    """
    if patches is None:
        patches = Patches()
    zone = Zone(
        present_pages,
        num_online_cpus,
        free_pages=free_pages,
        stat_threshold=stat_threshold,
        pcp_batch=batch,
        patches=patches,
    )
    rmqueue_bulk(zone, 0, batch)
    mark = zone.watermark[WMARK_MIN]
    flags = ALLOC_HIGH | ALLOC_HARDER
    steps: list[WindowStep] = []

    def reader(linked: int) -> None:
        counter = zone_page_state(zone)
        buddy = zone.buddy_pages()
        exact = zone.vm_stat + int(zone.vm_stat_diff.sum())
        steps.append(
            WindowStep(
                linked=linked,
                counter=counter,
                buddy=buddy,
                in_flight=max(0, exact - buddy),
                watermark_ok=zone_watermark_ok(zone, 0, mark, 0, flags, free_pages=counter),
                truth_ok=zone_watermark_ok(zone, 0, mark, 0, flags, free_pages=buddy),
            )
        )

    _first_look(zone, reader)
    free_pcppages_bulk(zone, 0, batch, on_page=reader)
    reader(batch)  # after the zone lock is dropped: both orders agree again
    return steps


def _first_look(zone, reader) -> None:
    """Let the reader look once more just before the first page is linked.

    Unpatched, ``free_pcppages_bulk`` has raised the counter by then; patched, not yet. The
    zone's storage primitive is wrapped for this one call, so the kernel code runs unchanged.
    """
    give = zone._buddy_give

    def give_with_first_look(cpu, count, on_page):
        reader(0)
        zone._buddy_give = give  # one look only
        give(cpu, count, on_page)

    zone._buddy_give = give_with_first_look
