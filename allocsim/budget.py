"""What a run will cost before it starts: wall-clock time and the memory of its per-tick record.

A run records every series of :data:`allocsim.trace.SERIES` for every simulated millisecond, and
each tick costs time in proportion to the CPUs. Both are known up front, so a long run can be
announced (the command line warns above a minute) and one that cannot fit is refused with one
line, instead of a MemoryError after minutes or an attempt to allocate terabytes.

The time figures are the benchmark's (``benchmarks/bench.py``, section ``rtf``; the table in
``benchmarks/README.md``), measured on the 2-core development machine. They are an estimate: the
``steady`` preset (every CPU writing) costs about twice the ``large`` figure per CPU-tick, and a
busy machine is slower.
"""

from __future__ import annotations

import numpy as np

from .errors import check_int
from .trace import SERIES

__all__ = [
    "TICK_US",
    "CPU_TICK_NS",
    "COMPILED_TICK_US",
    "COMPILED_CPU_TICK_NS",
    "SERIES_BYTES_PER_TICK",
    "MAX_SERIES_BYTES",
    "max_recorded_ms",
    "estimate_seconds",
    "check_series_memory",
    "describe_seconds",
    "available_memory_bytes",
]

# benchmarks/README.md, "Figures", Python engine: the small preset (4 CPUs) costs 122 µs per
# simulated ms, which is almost all per-tick overhead; 1024 CPUs cost 682 ns per CPU-tick (4096
# CPUs: 481). The estimate is TICK_US + cpus * CPU_TICK_NS per simulated ms, the larger
# many-CPU figure. (The latest run, at 1506b25, gave 131-142 µs and 691 ns: the shared machine
# moves such figures by 10-30 %.)
TICK_US = 122.0
CPU_TICK_NS = 682.0
# The same for the compiled engine (allocsim.engine), the default when numba is installed: 1.5 µs
# per simulated ms on the small preset; 21-33 ns per CPU-tick at 1024 and 4096 CPUs (18-24 in the
# latest run, 34 in the machine's slowest spell: 33 keeps the estimate on the safe side).
COMPILED_TICK_US = 1.5
COMPILED_CPU_TICK_NS = 33.0

# One tick of every recorded series, in bytes (the int64 series are 8 bytes, kswapd_state 1).
SERIES_BYTES_PER_TICK = sum(np.dtype(dt).itemsize for dt, _ in SERIES.values())

# The record of one run may take at most this much memory (a result copies it once more). An
# hour (3,600,000 ms, the longest duration_ms) needs about 0.7 GiB.
MAX_SERIES_BYTES = 1 << 30


def max_recorded_ms() -> int:
    """The longest run, in simulated ms, whose per-tick record fits in MAX_SERIES_BYTES."""
    return MAX_SERIES_BYTES // SERIES_BYTES_PER_TICK


def estimate_seconds(cpus: int, ticks: int, engine: str | None = None) -> float:
    """Wall-clock seconds that ``ticks`` simulated ms on ``cpus`` CPUs should take.

    ``ticks * (TICK_US + cpus * CPU_TICK_NS / 1000)`` µs: the benchmark's per-tick and
    per-CPU-tick figures for ``engine`` ("python" or "compiled"; default: the engine a new
    Simulation would use, without importing numba to find out).
    """
    cpus = check_int("cpus", cpus, 1)
    ticks = check_int("ticks", ticks, 0)
    if engine is None:
        engine = _likely_engine()
    if engine == "compiled":
        return ticks * (COMPILED_TICK_US + cpus * COMPILED_CPU_TICK_NS / 1000.0) / 1e6
    return ticks * (TICK_US + cpus * CPU_TICK_NS / 1000.0) / 1e6


def _likely_engine() -> str:
    """The default engine, guessed without importing numba (an estimate need not load it)."""
    from .engine import expected_engine

    try:
        return expected_engine()
    except ValueError:  # a bad ALLOCSIM_ENGINE: the run itself will say so
        return "python"


def _bytes_text(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PiB"  # pragma: no cover - the loop returns


def check_series_memory(name: str, ticks: int) -> None:
    """Raise ValueError (one line, naming ``name``) if ``ticks`` ms of record would not fit.

    The limit is :data:`MAX_SERIES_BYTES` of per-tick series; the message gives the longest run
    that fits.
    """
    need = ticks * SERIES_BYTES_PER_TICK
    if need > MAX_SERIES_BYTES:
        raise ValueError(
            f"{name} must be at most {max_recorded_ms():,} ms: {ticks:,} ms of per-tick series "
            f"would need {_bytes_text(need)} (limit {_bytes_text(MAX_SERIES_BYTES)})"
        )
    # The record and the result's copy of it must also fit in the memory this machine has
    # free; only worth asking for long runs.
    if need >= _ASK_MEMORY_ABOVE:
        free = available_memory_bytes()
        if free is not None and 2 * need > free:
            raise ValueError(
                f"{name}={ticks:,} ms needs {_bytes_text(2 * need)} for its per-tick record and "
                f"result, but this machine has {_bytes_text(free)} available: run a shorter time"
            )


_ASK_MEMORY_ABOVE = 64 << 20


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo in bytes, or None where there is no such file."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f.read(1 << 16).splitlines():
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def describe_seconds(seconds: float) -> str:
    """``"about 45 s"``, ``"about 6 min"``, ``"about 30 h"``."""
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"
