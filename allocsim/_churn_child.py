"""The churn process of :class:`allocsim.live.Churn`: allocate, touch, free, repeat.

Run as a script (``python -I _churn_child.py NBYTES PARENT_PID [CPU ...]``), never imported by
the kit: it needs only the standard library, so the child costs a bare interpreter (about
10 MiB) and starts in a few tens of milliseconds. It

* maps ``NBYTES`` of anonymous memory in chunks, writes one byte to every page (each write
  faults in a fresh page: an order-0 allocation through the per-cpu lists), unmaps it all
  (the pages go back through the per-cpu lists to the buddy lists), and starts again;
* asks for small pages (``MADV_NOHUGEPAGE``), so every page is one trip through the pcp lists
  and the per-CPU NR_FREE_PAGES deltas, the path the 2010 drift came from;
* marks itself as the first process the OOM killer should pick (``oom_score_adj`` 1000, which
  any process may do to itself);
* stops when its stdin reaches end of file (the parent closed the pipe, or died, which closes
  it too) or when its parent process changes (the parent died and it was re-parented), checked
  after every chunk, i.e. every few milliseconds.

It writes one line to stdout once set up: ``ready <VmRSS in KiB>``, its resident size before the
first allocation, so the parent can tell the churned memory from the interpreter's own.
"""

from __future__ import annotations

import mmap
import os
import select
import sys

CHUNK = 4 << 20  # bytes mapped and touched between two checks of the parent


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _told_to_stop(parent: int) -> bool:
    """True if stdin is at end of file (or readable at all) or the parent is gone."""
    if os.getppid() != parent:
        return True
    ready, _, _ = select.select([0], [], [], 0)
    return bool(ready)  # the parent never writes: readable means end of file


def main(argv: list[str]) -> int:
    nbytes, parent = int(argv[0]), int(argv[1])
    cpus = [int(c) for c in argv[2:]]
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass  # not fatal: the size bound is the real protection
    page = mmap.PAGESIZE
    sizes = [CHUNK] * (nbytes // CHUNK)
    if nbytes % CHUNK >= page:
        sizes.append(nbytes % CHUNK - nbytes % page)
    ones = {size: b"\x01" * (size // page) for size in set(sizes)}
    print(f"ready {_rss_kib()}", flush=True)
    while True:
        maps = []
        try:
            for size in sizes:
                m = mmap.mmap(-1, size)
                if hasattr(mmap, "MADV_NOHUGEPAGE"):
                    m.madvise(mmap.MADV_NOHUGEPAGE)
                m[::page] = ones[size]  # one byte per page: every page is faulted in
                maps.append(m)
                if _told_to_stop(parent):
                    return 0
        finally:
            for m in maps:
                m.close()  # munmap: the pages are freed
        if _told_to_stop(parent):
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
