"""Input checking shared by every public entry point.

Bad input must fail early with a message that names the parameter and its valid
range, never with a traceback from deep inside the model.
"""

from __future__ import annotations

import numbers

import numpy as np


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer within ``[lo, hi]``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (``bool`` and floats are rejected too).
    ValueError
        If ``value`` is outside ``[lo, hi]``; the message names the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be in {_range_text(lo, hi)}, got {value}")
    return value


def check_float(name: str, value, lo: float | None = None, hi: float | None = None) -> float:
    """Return ``value`` as ``float`` if it is a real number within ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if value != value:  # NaN
        raise ValueError(f"{name} must be a number in {_range_text(lo, hi)}, got NaN")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be in {_range_text(lo, hi)}, got {value}")
    return value


def check_cpu(zone, cpu) -> None:
    """Raise unless ``cpu`` is an online CPU of ``zone`` (an integer in ``[0, cpus-1]``)."""
    kind = type(cpu)
    if (kind is int or kind is np.int64) and 0 <= cpu < zone.num_online_cpus:
        return  # the common case, checked cheaply: this runs on every refill and flush
    if isinstance(cpu, bool) or not isinstance(cpu, numbers.Integral):
        raise TypeError(f"cpu must be an integer, got {cpu!r} ({type(cpu).__name__})")
    if not 0 <= cpu < zone.num_online_cpus:
        raise ValueError(f"cpu must be in [0, {zone.num_online_cpus - 1}], got {cpu}")


def _range_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"[{lo}, {hi}]"
    if lo is not None:
        return f"[{lo}, ∞)"
    if hi is not None:
        return f"(-∞, {hi}]"
    return "(-∞, ∞)"


# ---------------------------------------------------------------------------------------------
# Cross-field limits of a simulation's settings (SimConfig.__post_init__ calls these, so a bad
# combination fails there, naming the fields the user set, not deep inside Simulation()).
# ---------------------------------------------------------------------------------------------


def check_pcp_high(pcp_high, pcp_batch: int, batch_from: str = "pcp_batch") -> None:
    """Raise unless ``pcp_high`` is None, 0 or at least the batch in effect.

    ``pcp_high = 0`` is what the kernel gives a tiny zone (the DMA zone's ``high: 0, batch: 1``):
    every freed page goes straight back to the buddy lists. Otherwise a list whose high mark is
    below its batch would refill past its own high mark, which ``setup_pageset`` never sets up
    (``high = 6 * batch``). ``batch_from`` says where the batch came from, for the message.
    """
    if pcp_high is None or pcp_high == 0 or pcp_high >= pcp_batch:
        return
    raise ValueError(f"pcp_high must be 0 or >= {batch_from} ({pcp_batch}), got {pcp_high}")


def max_min_free_kbytes(present_pages: int) -> int:
    """The largest ``min_free_kbytes`` whose one-zone watermarks fit in ``present_pages``.

    ``setup_per_zone_wmarks`` with one zone: ``min = min_free_kbytes >> 2`` pages and
    ``high = min + min / 2``; the high watermark must not exceed the zone.
    """
    pages_min = (2 * present_pages) // 3 + 1
    while pages_min + (pages_min >> 1) > present_pages:
        pages_min -= 1
    return (pages_min << 2) + 3  # the two bits ">> 2" drops


def check_watermarks_fit(min_free_kbytes, zone_mib: int, wmark_high: int, present: int) -> None:
    """Raise if ``min_free_kbytes`` puts the high watermark above the zone's pages.

    Only an explicit ``min_free_kbytes`` can do that (the kernel default, ``int_sqrt(lowmem_kbytes
    * 16)`` clamped to 65536, always fits a zone of 64 MiB or more), so the message names it and
    ``zone_mib``, with the largest value that fits.
    """
    if wmark_high <= present:
        return
    raise ValueError(
        f"min_free_kbytes must be at most {max_min_free_kbytes(present)} for zone_mib "
        f"{zone_mib} (its high watermark would be {wmark_high} pages, more than the zone's "
        f"{present}), got {min_free_kbytes}"
    )


def check_run_arguments(progress, progress_every, wall_budget_s) -> None:
    """The optional arguments of ``Simulation.run``: a callable, a tick count >= 1, seconds > 0."""
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable (progress(sim)) or None, got {progress!r}")
    check_int("progress_every", progress_every, 1)
    if wall_budget_s is not None:
        value = check_float("wall_budget_s", wall_budget_s, 0.0)
        if not value > 0:
            raise ValueError(f"wall_budget_s must be > 0 seconds or None, got {wall_budget_s!r}")


class BadPageError(ValueError):
    """A page freed in a state the kernel's ``bad_page()`` reports (mm/page_alloc.c).

    The kernel prints "BUG: Bad page state" with the pfn and taints itself; the model raises
    this instead, before changing anything. ``pfn`` is the page.
    """

    def __init__(self, pfn: int, reason: str):
        self.pfn = pfn
        self.reason = reason
        super().__init__(f"bad_page: pfn {pfn}: {reason}")

    def __reduce__(self):
        return type(self), (self.pfn, self.reason)


def bad_page(pfn: int, reason: str):
    """Raise :class:`BadPageError` for ``pfn`` (the kernel's ``bad_page()``)."""
    raise BadPageError(pfn, reason)
