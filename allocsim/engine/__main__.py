"""``python -m allocsim.engine``: compile the compiled core now (or load it from the on-disk
cache) and say how long it took; ``make lab`` and ``make check`` run it so that the first demo
of a lecture does not wait for the compiler.

Without numba it says so and exits 0: the kit then runs on the Python engine.
"""

from __future__ import annotations

import sys

from . import cache_ready, unavailable_reason, warm


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if argv:
        print(
            f"python -m allocsim.engine: error: no arguments expected, got {argv[0]!r}",
            file=sys.stderr,
        )
        return 2
    reason = unavailable_reason()
    if reason is not None:
        print(f"allocsim engine: {reason}; the kit runs on the Python engine (slower).")
        return 0
    import numba

    if cache_ready():
        print("allocsim engine: loading the compiled core from its cache...", flush=True)
    else:
        print(
            "allocsim engine: compiling the simulation core (once after an install or an "
            "update; about a minute)...",
            flush=True,
        )
    seconds = warm()
    print(f"allocsim engine: compiled core ready in {seconds:.1f} s (numba {numba.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
