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
