"""Which engine runs a :class:`allocsim.Simulation`: the compiled core or the Python model.

Both engines compute the same machine, tick by tick, and give the same series, events and JSON
bit for bit (``tests/test_engine.py``). The Python engine is the reference, the one to read:
``sim.py``, ``page_alloc.py``, ``vmscan.py``... The compiled engine (``engine/core.py``, numba)
runs the same steps on arrays, 18 to 80 times faster, so that a lecturer can move a slider to
1024 CPUs and see the run at once.

* ``Simulation(config, engine="python")`` or ``engine="compiled"``; the default (``None``) is
  ``"compiled"`` when numba can be imported, else ``"python"`` with a one-line notice on stderr
  (once per process). The environment variable ``ALLOCSIM_ENGINE`` sets the default.
* numba is imported on the first compiled run, never by ``import allocsim``; its compiled
  functions are cached on disk (``__pycache__`` next to ``core.py``, or ``NUMBA_CACHE_DIR``), so
  only the very first run after an install pays for the compiler. :func:`warm` does that first
  run on purpose (``make lab`` and ``make check`` call it).
"""

from __future__ import annotations

import os
import sys

__all__ = [
    "ENGINES",
    "available",
    "default_engine",
    "resolve",
    "warm",
    "unavailable_reason",
    "cache_ready",
    "expected_engine",
]

ENGINES = ("compiled", "python")
_ENV = "ALLOCSIM_ENGINE"
_state: dict = {}


def unavailable_reason() -> str | None:
    """Why the compiled engine cannot run here (None if it can). Imports numba once."""
    if "reason" not in _state:
        try:
            import numba  # noqa: F401
        except Exception as exc:  # ImportError, or a numba that fails to load on this machine
            _state["reason"] = f"numba cannot be imported ({type(exc).__name__}: {exc})"
        else:
            _state["reason"] = None
    return _state["reason"]


def available() -> bool:
    """True if the compiled engine can run (numba imports)."""
    return unavailable_reason() is None


def _check_name(engine, where: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"{where} must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


def default_engine() -> str:
    """The engine ``engine=None`` means: ``ALLOCSIM_ENGINE`` if set, else "compiled"."""
    env = os.environ.get(_ENV, "").strip()
    if env:
        return _check_name(env, f"environment variable {_ENV}")
    return "compiled"


def expected_engine() -> str:
    """The engine a new Simulation would use, found without importing numba (slow to load):
    what estimates and reports need. Like :func:`resolve`, without the notice; a numba that is
    installed but fails to load is only found by :func:`resolve`."""
    import importlib.util

    name = default_engine()
    if name == "compiled" and importlib.util.find_spec("numba") is None:
        return "python"
    return name


def resolve(engine: str | None) -> str:
    """The engine a Simulation will use: falls back to "python" (with a one-line notice) when
    the compiled engine was not asked for by name and numba is missing; asked for by name and
    missing, it is an error that says why."""
    explicit = engine is not None
    name = default_engine() if engine is None else _check_name(engine, "engine")
    if name == "python":
        return name
    reason = unavailable_reason()
    if reason is None:
        return name
    if explicit:
        raise RuntimeError(
            f"engine='compiled' needs numba: {reason}; pip install numba, or use engine='python'"
        )
    if not _state.get("noticed"):
        _state["noticed"] = True
        print(f"allocsim: {reason}; running the Python engine (slower).", file=sys.stderr)
    return "python"


def cache_ready() -> bool | None:
    """Is the compiled core in numba's on-disk cache for this source? True: the first run loads
    it (under a second); False: it will compile (about a minute); None: cannot tell.

    Reads numba's cache index for the core's entry point (an internal of numba, hence None
    when it is not where it was); the index is empty when the source changed since.
    """
    if unavailable_reason() is not None:
        return None
    try:
        from . import core

        return bool(core.run_ticks._cache._cache_file._load_index())
    except Exception:
        return None


def warm() -> float:
    """Compile the compiled engine (or load it from the on-disk cache) with a tiny run.

    Returns the seconds it took. Raises RuntimeError if numba is missing.
    """
    import time

    from ..config import SimConfig
    from ..sim import Simulation

    t0 = time.perf_counter()
    Simulation(SimConfig.preset("small", duration_ms=3), engine="compiled").run()
    return time.perf_counter() - t0
