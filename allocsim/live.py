"""Your machine, live: the running kernel's free-page counter against its own buddy lists.

Two files of the running kernel count a zone's free pages in two different ways:

* ``/proc/zoneinfo`` prints ``pages free``, the zone's global ``NR_FREE_PAGES`` counter
  (``mm/vmstat.c: zoneinfo_show_print`` calls ``zone_page_state``: the per-CPU deltas that
  ``__mod_zone_page_state`` has not folded in yet are left out);
* ``/proc/buddyinfo`` prints how many free blocks of each order sit on the zone's buddy lists
  (``mm/vmstat.c: frag_show_print``, under the zone lock); Σ count × 2^order is the free pages.

:class:`DriftSampler` reads both, one bounded read per file per sample, and reports per zone the
counter, the buddy pages, their **gap** (counter − buddy), the **envelope** ± Σ per-CPU
``vm stats threshold`` (online CPUs × stat_threshold; on kernels whose zoneinfo has no such line,
2.6.36's ``calculate_threshold`` on present pages), and ``low − min``; plus ``vm.stat_interval``.

What the gap contains
---------------------
{gap_explained}

The rest of the module
----------------------
* :class:`Churn`: a child process that allocates and frees memory in a loop, so the gap moves.
  Bounded to a share of ``MemAvailable`` (default 5 %, never above 25 %), optionally pinned to
  CPUs, stopped by :meth:`Churn.stop`, by leaving its ``with`` block, at interpreter exit, and by
  itself when its parent dies. No root needed.
* :class:`ReplaySource`: a trace recorded on Linux with churn on, shipped in
  ``allocsim/data/live/``, replayed where ``/proc`` cannot be read (macOS, Windows, containers
  that hide ``/proc/buddyinfo``); :func:`open_source` picks live or replay and says why.
* :class:`DriftRecorder`: samples in a background thread (for the notebook panel).
* :func:`main`: ``python -m allocsim drift [--seconds S] [--hz N] [--churn MIB] [--json]``.
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import dataclasses
import json
import math
import os
import platform
import re
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from .vmstat import calculate_threshold
from .zoneinfo import ZoneinfoError, parse_zoneinfo

GAP_EXPLAINED = """\
gap = counter - buddy. Pages on the per-cpu (pcp) lists are in neither number: the counter drops
when pages leave the buddy lists for a CPU's pcp list and rises only when they go back. So on a
modern kernel the gap is minus the sum of the CPUs' NR_FREE_PAGES deltas not yet folded into the
counter (each CPU's at most its vm stats threshold in size: hence the envelope), plus a race
term: the two files are read one after the other, tens to hundreds of microseconds apart, while
pages keep moving. The race term is usually a few pages, but modern kernels auto-tune pcp high
and can move hundreds or thousands of pages between a pcp list and the buddy lists at once; when
such a move falls between the two reads, one sample jumps far outside the envelope and the next
is back inside. (Free pages in isolated pageblocks, during memory hot-unplug or a CMA allocation,
are on the lists but not counted: they would show as a lasting negative gap.) A positive gap
means the counter over-reports: a watermark check that reads it counts pages that are gone,
which is how the 2010 livelock began. Each CPU folds its deltas every vm.stat_interval seconds
(vmstat_update; modern kernels also fold when a CPU goes idle), so the gap keeps returning to 0.
On 2.6.3x the gap has the same parts, but coarser: rmqueue_bulk and free_pcppages_bulk move the
counter by a whole pcp batch (up to 31 pages) at a time, the threshold is
calculate_threshold(present pages, CPUs) (up to 125 per CPU: 64 CPUs x 98 = 6,272 pages on the
2010 machine, against a low - min of a few hundred), and 2.6.35 raised the counter before it
linked freed pages, so a reader could count pages not on the lists yet (72853e2 reordered it)."""

__doc__ = __doc__.format(gap_explained=GAP_EXPLAINED)

__all__ = [
    "GAP_EXPLAINED",
    "DEFAULT_ROOT",
    "DEFAULT_TRACE",
    "LiveError",
    "BuddyinfoError",
    "ZoneSample",
    "Sample",
    "ZoneSummary",
    "parse_buddyinfo",
    "format_buddyinfo",
    "DriftSampler",
    "ReplaySource",
    "open_source",
    "collect",
    "summarize",
    "format_summary",
    "format_line",
    "samples_to_trace",
    "save_trace",
    "load_trace",
    "churn_limit_mib",
    "Churn",
    "DriftRecorder",
    "main",
    "PROG",
]

DEFAULT_ROOT = "/proc"
DEFAULT_TRACE = Path(__file__).resolve().parent / "data" / "live" / "drift-6.18-2cpu-churn.json"
PROG = "python -m allocsim drift"
TRACE_FORMAT = "allocsim-drift-trace/1"

# One read per file per sample, bounded: a zoneinfo of 8 nodes x 5 zones x 1024 CPUs is ~8 MiB.
_MAX_BYTES = {"zoneinfo": 16 << 20, "buddyinfo": 1 << 20, "meminfo": 1 << 20}
_READ_CHUNK = 256 << 10  # seq_file fills as many whole records as fit in one read()

HZ_RANGE = (0.5, 100.0)  # samples per second: more than 100 only measures Python
SECONDS_RANGE = (0.1, 3600.0)
CHURN_SHARE_DEFAULT = 0.05  # of MemAvailable
CHURN_SHARE_MAX = 0.25


class LiveError(ValueError):
    """The live files cannot be read or do not agree (a one-line reason)."""


class BuddyinfoError(ZoneinfoError):
    """A ``/proc/buddyinfo`` line that cannot be read; the message names the line."""


# ---------------------------------------------------------------------------------------------
# Reading the files
# ---------------------------------------------------------------------------------------------


def _read_bounded(path: str | os.PathLike, limit: int) -> str:
    """The whole file, in one open and as few ``read()`` calls as the kernel allows.

    Raises LiveError if it is larger than ``limit`` bytes or not text, OSError if unreadable.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks, total = [], 0
        while True:
            data = os.read(fd, min(_READ_CHUNK, limit + 1 - total))
            if not data:
                break
            chunks.append(data)
            total += len(data)
            if total > limit:
                raise LiveError(f"{path}: larger than {limit} bytes, not read")
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise LiveError(f"{path}: not UTF-8 text") from None


_BUDDY_RE = re.compile(r"Node\s+([0-9]{1,9}),\s*zone\s+(\S+)((?:\s+[0-9]{1,20})+)\s*")


def parse_buddyinfo(text: str) -> dict[tuple[int, str], tuple[int, ...]]:
    """Parse ``/proc/buddyinfo`` (``mm/vmstat.c: frag_show_print``).

    Each line is ``Node N, zone NAME`` followed by the number of free blocks of order 0, 1, ...
    (11 orders on x86 with 4 KiB pages, for 2.6.36 and 6.x alike; other configurations differ).
    Only populated zones are listed.

    Returns
    -------
    dict
        ``(node, zone name) -> (count of order 0, count of order 1, ...)``, in file order.

    Raises
    ------
    BuddyinfoError
        If a non-blank line is not of that form, has more than 64 orders, or a zone appears
        twice; or the text has no zone at all.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    zones: dict[tuple[int, str], tuple[int, ...]] = {}
    last = (1, "")
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        last = (lineno, line)
        m = _BUDDY_RE.fullmatch(line.strip())
        if not m:
            raise BuddyinfoError(lineno, line, "expected 'Node N, zone NAME' and block counts")
        key = (int(m.group(1)), m.group(2))
        counts = tuple(int(v) for v in m.group(3).split())
        if len(counts) > 64:
            raise BuddyinfoError(lineno, line, f"{len(counts)} orders: at most 64 expected")
        if key in zones:
            raise BuddyinfoError(lineno, line, "zone listed twice")
        zones[key] = counts
    if not zones:
        raise BuddyinfoError(last[0], last[1], "no 'Node N, zone NAME' line: not a buddyinfo file")
    return zones


def format_buddyinfo(zones: dict[tuple[int, str], tuple[int, ...]]) -> str:
    """The text ``frag_show_print`` would write for these free-block counts.

    ``zones`` maps ``(node, zone name)`` to the counts of order 0, 1, ...; the inverse of
    :func:`parse_buddyinfo` (used to build fake ``/proc`` directories for tests and lessons).
    """
    lines = []
    for (node, name), counts in zones.items():
        lines.append(f"Node {node}, zone {name:>8s} " + "".join(f"{c:6d} " for c in counts))
    return "\n".join(lines) + "\n"


def _buddy_pages(counts: tuple[int, ...]) -> int:
    return sum(c << order for order, c in enumerate(counts))


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneSample:
    """One zone at one moment: the counter, the buddy lists, and the bounds to judge the gap.

    Attributes
    ----------
    node, zone : int, str
        Which zone.
    counter : int
        ``pages free`` from ``/proc/zoneinfo``: the global NR_FREE_PAGES, per-CPU deltas not
        folded in.
    buddy : int
        Σ count × 2^order over ``/proc/buddyinfo``'s line for this zone.
    cpus : int
        Online CPUs (the pagesets zoneinfo lists).
    envelope : int
        Σ over online CPUs of the CPU's stat threshold: the largest size the deltas not yet
        folded in can reach together (online CPUs × stat_threshold when the CPUs agree).
    threshold : int
        The largest per-CPU stat threshold of the zone.
    threshold_source : str
        ``"file"`` (the ``vm stats threshold`` lines) or ``"2.6.36 formula"``
        (``calculate_threshold(present, cpus)``, for kernels that do not print it).
    low_min : int
        ``low - min``: how far the counter may over-report before a LOW check passes in a
        zone that is really below MIN.
    batch : int
        The largest pcp ``batch`` of the zone: pages one CPU moves between its pcp list and the
        buddy lists in one refill or one drain.
    pcp_pages : int
        Pages on the pcp lists when zoneinfo was printed (Σ ``count``): in neither number.
    """

    node: int
    zone: str
    counter: int
    buddy: int
    cpus: int
    envelope: int
    threshold: int
    threshold_source: str
    low_min: int
    batch: int
    pcp_pages: int

    @property
    def gap(self) -> int:
        """counter − buddy: positive when the counter over-reports."""
        return self.counter - self.buddy

    @property
    def race_allowance(self) -> int:
        """One pcp batch per online CPU: what the CPUs can move while the two files are read.

        Not a kernel bound: a stated allowance for the race term. The two reads are tens to
        hundreds of microseconds apart, time for about one refill or drain per CPU.
        """
        return self.cpus * self.batch

    @property
    def label(self) -> str:
        """``"Node 0, zone Normal"``."""
        return f"Node {self.node}, zone {self.zone}"

    def to_dict(self) -> dict:
        """Every field plus ``gap``, as plain data."""
        d = dataclasses.asdict(self)
        d["gap"] = self.gap
        return d


@dataclass(frozen=True)
class Sample:
    """One reading of both files.

    Attributes
    ----------
    t : float
        Seconds since the source started (when zoneinfo had been read).
    span_us : float
        Microseconds from the start of the zoneinfo read to the end of the buddyinfo read: the
        window in which the race term arises.
    zones : tuple of ZoneSample
        Every zone that has buddy lists, in zoneinfo order.
    """

    t: float
    span_us: float
    zones: tuple[ZoneSample, ...]

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return {
            "t": round(self.t, 4),
            "span_us": round(self.span_us, 1),
            "zones": [z.to_dict() for z in self.zones],
        }


def _zone_samples(
    zoneinfo_text: str, buddyinfo_text: str, where: str
) -> tuple[tuple[ZoneSample, ...], tuple[str, ...]]:
    """Join the two texts zone by zone; the second item lists the zones left out and why."""
    parsed = parse_zoneinfo(zoneinfo_text)
    buddy = parse_buddyinfo(buddyinfo_text)
    out, skipped = [], []
    for z in parsed.zones:
        key = (z.node, z.name)
        if key not in buddy:
            if z.populated:
                raise LiveError(
                    f"{where}: {z.label} has present pages but no line in buddyinfo "
                    "(the two files disagree on the zones)"
                )
            skipped.append(f"{z.label}: empty (present 0), no buddy lists")
            continue
        per_cpu: dict[int, int] = {}
        for p in z.pagesets:  # before 2.6.24 a CPU has two pagesets: count it once
            if p.vm_stats_threshold is not None:
                per_cpu[p.cpu] = max(per_cpu.get(p.cpu, 0), p.vm_stats_threshold)
        cpus = len({p.cpu for p in z.pagesets})
        if per_cpu:
            envelope, threshold, source = sum(per_cpu.values()), max(per_cpu.values()), "file"
        else:
            # Kernels that print no "vm stats threshold": what 2.6.36 computes for this zone.
            threshold = calculate_threshold(z.present, cpus)
            envelope, source = cpus * threshold, "2.6.36 formula"
        out.append(
            ZoneSample(
                node=z.node,
                zone=z.name,
                counter=z.pages_free,
                buddy=_buddy_pages(buddy[key]),
                cpus=cpus,
                envelope=envelope,
                threshold=threshold,
                threshold_source=source,
                low_min=z.low - z.min,
                batch=max(1, max(p.batch for p in z.pagesets)),
                pcp_pages=sum(p.count for p in z.pagesets),
            )
        )
    extra = set(buddy) - {(z.node, z.name) for z in parsed.zones}
    if extra:
        node, name = sorted(extra)[0]
        raise LiveError(f"{where}: buddyinfo lists Node {node}, zone {name}, zoneinfo does not")
    return tuple(out), tuple(skipped)


class DriftSampler:
    """Reads ``zoneinfo`` and ``buddyinfo`` under ``root`` together, one sample per call.

    Mirrors nothing in the kernel: it reads what ``zoneinfo_show_print`` and ``frag_show_print``
    (mm/vmstat.c) print. zoneinfo is read first, then buddyinfo straight after; each with one
    open and a bounded read (:func:`_read_bounded`), so the race window is two file reads, tens
    to hundreds of microseconds on a small machine (``Sample.span_us`` records it).

    Parameters
    ----------
    root : str or path
        The ``/proc`` directory (default ``/proc``); tests pass a fake one holding ``zoneinfo``,
        ``buddyinfo`` and optionally ``sys/vm/stat_interval``, ``sys/kernel/osrelease``,
        ``meminfo``.

    Raises
    ------
    OSError
        If either file cannot be read.
    LiveError, ZoneinfoError
        If they are malformed or do not describe the same zones.
    """

    mode = "live"
    reason = ""

    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT):
        self.root = Path(root)
        self.zoneinfo_path = self.root / "zoneinfo"
        self.buddyinfo_path = self.root / "buddyinfo"
        # vm.stat_interval is in seconds (proc_dointvec_jiffies); read once, it rarely changes.
        self.stat_interval = _read_int(self.root / "sys" / "vm" / "stat_interval")
        try:
            self.kernel = (self.root / "sys" / "kernel" / "osrelease").read_text().strip()
        except OSError:
            self.kernel = None
        self._t0 = time.monotonic()
        first = self.sample()  # fails here, not in the middle of a run
        self.skipped = self._skipped
        self.zones = tuple(z.label for z in first.zones)
        self._t0 = time.monotonic()

    @property
    def description(self) -> str:
        """Where the numbers come from."""
        kernel = f" (Linux {self.kernel})" if self.kernel else ""
        return f"live: {self.zoneinfo_path} and {self.buddyinfo_path}{kernel}"

    def sample(self) -> Sample:
        """Read both files once and return the sample."""
        start = time.monotonic()
        zi = _read_bounded(self.zoneinfo_path, _MAX_BYTES["zoneinfo"])
        middle = time.monotonic()
        bi = _read_bounded(self.buddyinfo_path, _MAX_BYTES["buddyinfo"])
        end = time.monotonic()
        zones, self._skipped = _zone_samples(zi, bi, str(self.root))
        return Sample(t=middle - self._t0, span_us=(end - start) * 1e6, zones=zones)

    def restart(self) -> None:
        """Start the clock again (``Sample.t`` counts from here)."""
        self._t0 = time.monotonic()


# ---------------------------------------------------------------------------------------------
# Traces: record and replay
# ---------------------------------------------------------------------------------------------


_ZONE_SERIES = ("counter", "buddy", "envelope", "threshold", "low_min", "batch", "pcp_pages")
_ZONE_FIXED = ("node", "zone", "cpus", "threshold_source")


def samples_to_trace(samples: list[Sample], **meta) -> dict:
    """Samples as a compact JSON-ready trace: one array per zone and quantity.

    ``meta`` (kernel, hz, churn_mib, stat_interval, command, ...) is stored as given.
    """
    if not samples:
        raise ValueError("samples: need at least one sample to make a trace")
    first = samples[0].zones
    labels = [z.label for z in first]
    for s in samples:
        if [z.label for z in s.zones] != labels:
            raise ValueError("samples: the zones changed during the recording")
    zones = []
    for i, z in enumerate(first):
        entry = {k: getattr(z, k) for k in _ZONE_FIXED}
        for k in _ZONE_SERIES:
            entry[k] = [getattr(s.zones[i], k) for s in samples]
        zones.append(entry)
    return {
        "format": TRACE_FORMAT,
        **meta,
        "t": [round(s.t, 4) for s in samples],
        "span_us": [round(s.span_us, 1) for s in samples],
        "zones": zones,
    }


def save_trace(path: str | os.PathLike, samples: list[Sample], **meta) -> None:
    """Write :func:`samples_to_trace` as JSON (one line per array, readable in a diff)."""
    trace = samples_to_trace(samples, **meta)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    body = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in trace.items())
    Path(path).write_text("{\n" + body + "\n}\n")


def load_trace(path: str | os.PathLike = DEFAULT_TRACE) -> tuple[dict, list[Sample]]:
    """Read a trace written by :func:`save_trace`: ``(meta, samples)``.

    Raises
    ------
    OSError
        If the file cannot be read.
    LiveError
        If it is not such a trace (a one-line reason).
    """
    try:
        trace = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise LiveError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(trace, dict) or trace.get("format") != TRACE_FORMAT:
        raise LiveError(f"{path}: not an allocsim drift trace (format {TRACE_FORMAT})")
    try:
        t, span = trace["t"], trace["span_us"]
        n = len(t)
        zones = trace["zones"]
        for z in zones:
            if any(len(z[k]) != n for k in _ZONE_SERIES):
                raise LiveError(f"{path}: zone {z['zone']}: series of different lengths")
        samples = [
            Sample(
                t=float(t[i]),
                span_us=float(span[i]),
                zones=tuple(
                    ZoneSample(
                        **{k: z[k] for k in _ZONE_FIXED}, **{k: int(z[k][i]) for k in _ZONE_SERIES}
                    )
                    for z in zones
                ),
            )
            for i in range(n)
        ]
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, LiveError):
            raise
        raise LiveError(f"{path}: malformed trace ({type(exc).__name__}: {exc})") from None
    if not samples:
        raise LiveError(f"{path}: the trace has no samples")
    meta = {k: v for k, v in trace.items() if k not in ("t", "span_us", "zones")}
    return meta, samples


class ReplaySource:
    """Plays a recorded trace as if it were live: :meth:`sample` returns the recorded sample at
    the time elapsed since the source started (looping at the end), with ``t`` set to that time.

    Parameters
    ----------
    path : str or path, optional
        A trace from :func:`save_trace`; default the one shipped with the kit.
    reason : str
        Why the trace is replayed instead of the live files (shown to the learner).
    """

    mode = "replay"

    def __init__(self, path: str | os.PathLike | None = None, reason: str = ""):
        self.path = Path(path) if path is not None else DEFAULT_TRACE
        self.meta, self.samples = load_trace(self.path)
        self.reason = reason
        self.stat_interval = self.meta.get("stat_interval")
        self.kernel = self.meta.get("kernel")
        self.skipped = tuple(self.meta.get("skipped", ()))
        self.zones = tuple(z.label for z in self.samples[0].zones)
        times = [s.t for s in self.samples]
        self._times = [x - times[0] for x in times]
        step = (self._times[-1] / (len(times) - 1)) if len(times) > 1 else 0.05
        self.duration = self._times[-1] + step
        self._t0 = time.monotonic()

    @property
    def description(self) -> str:
        """Which trace, recorded where."""
        churn = self.meta.get("churn_mib")
        how = f", churn {churn} MiB" if churn else ""
        return (
            f"replay: {self.path.name} (recorded on Linux {self.kernel}, "
            f"{self.meta.get('cpus_online', '?')} CPUs{how})"
        )

    def at(self, elapsed: float) -> Sample:
        """The recorded sample nearest to ``elapsed`` seconds (the trace loops), with
        ``t = elapsed``. Sampled at the recording's rate, every recorded sample comes once:
        recorded times lag their grid by a few milliseconds, never by half a period."""
        offset = elapsed % self.duration
        i = bisect.bisect_left(self._times, offset)
        if i == len(self._times) or (
            i > 0 and offset - self._times[i - 1] <= self._times[i] - offset
        ):
            i -= 1
        return dataclasses.replace(self.samples[i], t=elapsed)

    def sample(self) -> Sample:
        """The recorded sample for now."""
        return self.at(time.monotonic() - self._t0)

    def restart(self) -> None:
        """Play from the beginning again."""
        self._t0 = time.monotonic()


def open_source(root: str | os.PathLike = DEFAULT_ROOT, trace=None, replay: bool = False):
    """The live sampler on ``root`` if its files can be read, else the recorded trace.

    Returns a :class:`DriftSampler` or a :class:`ReplaySource` whose ``reason`` says why the
    live files were not used (missing ``/proc`` on macOS and Windows, a container without
    ``/proc/buddyinfo``, a file that would not parse). ``replay=True`` asks for the trace.
    """
    if replay:
        return ReplaySource(trace, reason="replay requested")
    root = Path(root)
    try:
        return DriftSampler(root)
    except FileNotFoundError as exc:
        missing = exc.filename or str(root)
        if not root.is_dir():
            why = f"{root} does not exist: this system has no Linux /proc (macOS, Windows?)"
        else:
            why = (
                f"{missing} does not exist: this system does not show the kernel's buddy lists "
                "or zone counters (a container that hides them, or not Linux)"
            )
    except PermissionError as exc:
        why = f"{exc.filename}: permission denied (a sandbox that hides it?)"
    except OSError as exc:
        why = f"{exc.filename or root}: {exc.strerror or exc}"
    except (LiveError, ZoneinfoError) as exc:
        why = f"the live files could not be read as zoneinfo/buddyinfo: {exc}"
    return ReplaySource(trace, reason=why + "; replaying a trace recorded on Linux instead")


# ---------------------------------------------------------------------------------------------
# Collecting and summarising
# ---------------------------------------------------------------------------------------------


def _check_rate(seconds: float, hz: float) -> tuple[float, float]:
    from .errors import check_float

    seconds = check_float("seconds", seconds, *SECONDS_RANGE)
    hz = check_float("hz", hz, *HZ_RANGE)
    return seconds, hz


def collect(source, seconds: float = 10.0, hz: float = 20.0, on_sample=None, stop=None, paced=True):
    """Sample ``source`` at ``hz`` for ``seconds``; returns the list of samples.

    Samples are taken on a fixed grid of ``1/hz`` (a late sample does not shift the next one);
    ``on_sample(sample)`` is called after each; ``stop`` (a ``threading.Event``) ends early.
    ``paced=False`` with a replay source takes the recorded sample at each grid time at once,
    without waiting (every recorded sample, when ``hz`` is the recording's); live sources are
    always sampled in real time.
    """
    seconds, hz = _check_rate(seconds, hz)
    source.restart()
    start = time.monotonic()
    samples = []
    n = max(1, math.floor(seconds * hz + 1e-9))
    if not paced and source.mode == "replay":
        for i in range(n):
            samples.append(source.at(i / hz))
            if on_sample is not None:
                on_sample(samples[-1])
        return samples
    for i in range(n):
        wait = start + i / hz - time.monotonic()
        if stop is not None and stop.wait(max(0.0, wait)):
            break
        if stop is None and wait > 0:
            time.sleep(wait)
        s = source.sample()
        samples.append(s)
        if on_sample is not None:
            on_sample(s)
    return samples


@dataclass(frozen=True)
class ZoneSummary:
    """One zone over a run of samples.

    Attributes
    ----------
    node, zone : int, str
    samples : int
    largest_gap : int
        The gap of largest size seen (signed: positive = the counter over-reported).
    at : float
        When it was seen (``Sample.t``).
    nonzero : int
        Samples whose gap was not zero.
    envelope, low_min, race_allowance : int
        Of the sample with the largest gap.
    share_of_envelope, share_of_low_min : float
        ``|largest_gap| / envelope`` and ``|largest_gap| / (low - min)`` (inf when the
        denominator is 0).
    outside_envelope, outside_allowance : int
        Samples whose gap exceeded the envelope, and the envelope plus the race allowance.
    longest_excursion : int
        The longest run of consecutive samples beyond the envelope plus the race allowance: 1
        means single-sample jumps (the race: a bulk pcp move between the two reads); a drift
        that real would last until the next fold, over several samples at 20 Hz.
    """

    node: int
    zone: str
    samples: int
    largest_gap: int
    at: float
    nonzero: int
    envelope: int
    low_min: int
    race_allowance: int
    share_of_envelope: float
    share_of_low_min: float
    outside_envelope: int
    outside_allowance: int
    longest_excursion: int

    @property
    def label(self) -> str:
        """``"Node 0, zone Normal"``."""
        return f"Node {self.node}, zone {self.zone}"

    def to_dict(self) -> dict:
        """Plain data for JSON (an infinite share becomes None)."""
        d = dataclasses.asdict(self)
        for k in ("share_of_envelope", "share_of_low_min"):
            d[k] = None if math.isinf(d[k]) else round(d[k], 4)
        return d


def _share(x: int, of: int) -> float:
    return abs(x) / of if of else (0.0 if x == 0 else math.inf)


def summarize(samples: list[Sample]) -> list[ZoneSummary]:
    """Per zone: the largest gap, its share of the envelope and of ``low - min``, how often the
    gap was nonzero and how often it left the envelope (and the envelope + race allowance)."""
    if not samples:
        return []
    out = []
    for i, first in enumerate(samples[0].zones):
        series = [(s.t, s.zones[i]) for s in samples if i < len(s.zones)]
        t_max, z_max = max(series, key=lambda tz: abs(tz[1].gap))
        run = longest = 0
        for _, z in series:
            run = run + 1 if abs(z.gap) > z.envelope + z.race_allowance else 0
            longest = max(longest, run)
        out.append(
            ZoneSummary(
                node=first.node,
                zone=first.zone,
                samples=len(series),
                largest_gap=z_max.gap,
                at=t_max,
                nonzero=sum(1 for _, z in series if z.gap != 0),
                envelope=z_max.envelope,
                low_min=z_max.low_min,
                race_allowance=z_max.race_allowance,
                share_of_envelope=_share(z_max.gap, z_max.envelope),
                share_of_low_min=_share(z_max.gap, z_max.low_min),
                outside_envelope=sum(1 for _, z in series if abs(z.gap) > z.envelope),
                outside_allowance=sum(
                    1 for _, z in series if abs(z.gap) > z.envelope + z.race_allowance
                ),
                longest_excursion=longest,
            )
        )
    return out


def _pct(x: float) -> str:
    return "inf" if math.isinf(x) else f"{100 * x:.0f} %"


def format_line(samples: list[Sample]) -> str:
    """One line for a second of samples: per zone the largest gap in it and the envelope."""
    last = samples[-1]
    parts = [f"t={last.t:5.1f}s"]
    for i, z in enumerate(last.zones):
        gaps = [s.zones[i].gap for s in samples if i < len(s.zones)]
        g = max(gaps, key=abs)
        parts.append(f"{z.zone} gap {g:+d} (env ±{z.envelope})")
    return "  ".join(parts)


def format_summary(samples: list[Sample], source, stat_interval=None) -> str:
    """The summary printed after a run: largest gap per zone and what the gap is."""
    out = []
    span = sorted(s.span_us for s in samples)
    median_us = span[len(span) // 2] if span else float("nan")
    out.append(
        f"{len(samples)} samples from {source.description}; both files read within "
        f"{median_us:.0f} µs (median); vm.stat_interval {stat_interval if stat_interval else '?'} s"
    )
    if getattr(source, "reason", ""):
        out.append(f"why replay: {source.reason}")
    out.append("largest gap per zone (counter − buddy, pages; + = counter over-reports):")
    for z in summarize(samples):
        out.append(
            f"  {z.label:<22} {z.largest_gap:+7d}  = {_pct(z.share_of_envelope):>6} of the "
            f"envelope ±{z.envelope}, {_pct(z.share_of_low_min):>6} of low − min {z.low_min}; "
            f"nonzero in {z.nonzero}/{z.samples}, beyond the envelope in {z.outside_envelope}, "
            f"beyond envelope + race allowance ({z.race_allowance}) in {z.outside_allowance}"
        )
    jumps = [z for z in summarize(samples) if z.outside_allowance]
    for z in jumps:
        kind = (
            "each lasting one sample, as the race does (a bulk pcp move between the two reads)"
            if z.longest_excursion == 1
            else f"up to {z.longest_excursion} samples in a row"
        )
        out.append(
            f"  {z.label}: {z.outside_allowance} sample(s) beyond envelope + allowance, {kind}"
        )
    for skipped in getattr(source, "skipped", ()):
        out.append(f"  (left out: {skipped})")
    out.append("")
    out.append(GAP_EXPLAINED)
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Churn: a child process that makes the kernel allocate and free pages
# ---------------------------------------------------------------------------------------------


def _mem_available_bytes(root: str | os.PathLike = DEFAULT_ROOT) -> int:
    """``MemAvailable`` from ``root/meminfo`` in bytes. Raises LiveError if absent."""
    path = Path(root) / "meminfo"
    try:
        text = _read_bounded(path, _MAX_BYTES["meminfo"])
    except OSError as exc:
        raise LiveError(
            f"churn needs MemAvailable from {path}: {exc.strerror or exc} (Linux only)"
        ) from None
    m = re.search(r"^MemAvailable:\s+([0-9]+)\s*kB", text, re.M)
    if not m:
        raise LiveError(f"churn needs MemAvailable: {path} has no 'MemAvailable: N kB' line")
    return int(m.group(1)) << 10


def churn_limit_mib(share: float = CHURN_SHARE_DEFAULT, root: str | os.PathLike = DEFAULT_ROOT):
    """The largest churn allowed now: ``share`` of MemAvailable, in whole MiB.

    Raises ValueError if ``share`` is not in (0, 0.25], LiveError if MemAvailable is unknown.
    """
    from .errors import check_float

    share = check_float("max_share", share, 0.0, CHURN_SHARE_MAX)
    if share == 0:
        raise ValueError(f"max_share must be in (0, {CHURN_SHARE_MAX}], got 0.0")
    return int(share * _mem_available_bytes(root)) >> 20


_CHILDREN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all_children() -> None:  # interpreter exit: no churn survives its notebook kernel
    for churn in list(_CHILDREN):
        churn.stop()


class Churn:
    """A child process that allocates ``mib`` MiB, touches every page, frees it, and repeats.

    Each touch faults in one page: an order-0 allocation from the CPU's pcp list, refilled from
    the buddy lists in batches (``rmqueue_bulk``); each unmap frees the pages back through the
    pcp list (``free_pcppages_bulk`` once it is over ``high``). Both move the CPU's
    NR_FREE_PAGES delta, so the gap between ``/proc/zoneinfo`` and ``/proc/buddyinfo`` moves.

    Safety: ``mib`` must not exceed ``max_share`` (default 5 %, at most 25 %) of MemAvailable
    at start; the child maps no more than that at any time, asks the OOM killer to pick it first
    (``oom_score_adj`` 1000), and exits within milliseconds of :meth:`stop`, of the ``with``
    block's end, of this interpreter's exit, or of its parent's death (it watches a pipe from
    the parent and its parent id). No root needed.

    Parameters
    ----------
    mib : int
        MiB to allocate and free per cycle, >= 1.
    cpus : iterable of int, optional
        Pin the child to these CPUs (``os.sched_setaffinity``); they must be CPUs this process
        may run on.
    max_share : float
        The bound as a share of MemAvailable, in (0, 0.25]; default 0.05.
    root : str or path
        Where ``meminfo`` is read (default ``/proc``).

    Raises
    ------
    TypeError, ValueError
        For a bad ``mib``, ``cpus`` or ``max_share``, or a ``mib`` above the bound; the message
        names the parameter and its range.
    LiveError
        If MemAvailable cannot be read (not Linux).
    """

    def __init__(
        self,
        mib: int,
        *,
        cpus=None,
        max_share: float = CHURN_SHARE_DEFAULT,
        root: str | os.PathLike = DEFAULT_ROOT,
    ):
        from .errors import check_int

        limit = churn_limit_mib(max_share, root)
        if limit < 1:
            raise ValueError(
                f"mib: {max_share:.0%} of MemAvailable is under 1 MiB; no churn is safe here"
            )
        self.mib = check_int("mib", mib, 1, limit)
        self.limit_mib = limit
        self.max_share = max_share
        self.cpus = None
        if cpus is not None:
            if not hasattr(os, "sched_setaffinity"):
                raise ValueError("cpus: pinning needs os.sched_setaffinity (Linux)")
            allowed = os.sched_getaffinity(0)
            cpus = sorted({check_int("cpus", c, 0) for c in cpus})
            if not cpus or not set(cpus) <= allowed:
                raise ValueError(
                    f"cpus must be a non-empty subset of the CPUs allowed here "
                    f"{sorted(allowed)}, got {cpus}"
                )
            self.cpus = tuple(cpus)
        self.nbytes = self.mib << 20
        self.baseline_kib: int | None = None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> Churn:
        """Start the child and wait until it is set up (its first line). Returns self."""
        with self._lock:
            if self.running:
                return self
            args = [str(self.nbytes), str(os.getpid())]
            args += [str(c) for c in self.cpus or ()]
            script = Path(__file__).resolve().parent / "_churn_child.py"
            self._proc = subprocess.Popen(
                [sys.executable, "-I", str(script), *args],
                stdin=subprocess.PIPE,  # never written: its end of file tells the child to stop
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
            _CHILDREN.add(self)
        line = _readline_with_timeout(self._proc.stdout, timeout)
        if not line.startswith(b"ready "):
            self.stop()
            raise LiveError(f"churn process did not start (said {line[:80]!r})")
        self.baseline_kib = int(line.split()[1])
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the child: close its pipe, wait, then terminate or kill it if it lingers."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(1.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def peak_rss_kib(self) -> int | None:
        """The child's peak resident size so far (``VmHWM``), None when it is not running."""
        pid = self.pid
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def __enter__(self) -> Churn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()


def _readline_with_timeout(stream, timeout: float) -> bytes:
    """One line from a child's pipe, or b"" if none comes within ``timeout`` seconds."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            return b""
    return stream.readline()


# ---------------------------------------------------------------------------------------------
# Background sampling (the notebook panel drives this)
# ---------------------------------------------------------------------------------------------


class DriftRecorder:
    """Samples a source in a background thread and keeps the samples; optional churn.

    Parameters
    ----------
    source : DriftSampler or ReplaySource
        From :func:`open_source`.
    hz : float
        Samples per second, in [0.5, 100].
    keep_seconds : float
        Samples older than this are dropped (a window for plotting).

    ``start()`` / ``stop()`` run and halt the sampling thread; ``set_churn(mib)`` starts, resizes
    (a new child) or, with 0, stops the churn process (live sources only); ``close()`` stops
    both. ``samples()`` is a copy of the samples kept.
    """

    def __init__(self, source, hz: float = 20.0, keep_seconds: float = 60.0):
        from .errors import check_float

        _, self.hz = _check_rate(1.0, hz)
        self.keep_seconds = check_float("keep_seconds", keep_seconds, 1.0, 3600.0)
        self.source = source
        self.churn: Churn | None = None
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str = ""

    @property
    def running(self) -> bool:
        """True while the sampling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start sampling (from t = 0, samples kept so far are dropped)."""
        if self.running:
            return
        with self._lock:
            self._samples = []
        self._stop.clear()
        self.error = ""
        self._thread = threading.Thread(target=self._run, name="allocsim-drift", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            collect(self.source, SECONDS_RANGE[1], self.hz, self._keep, self._stop)
        except Exception as exc:  # shown by the panel; the thread must not die silently
            self.error = f"{type(exc).__name__}: {exc}"

    def _keep(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)
            cut = sample.t - self.keep_seconds
            while self._samples and self._samples[0].t < cut:
                self._samples.pop(0)

    def stop(self) -> None:
        """Stop sampling (the churn, if any, keeps running until ``set_churn(0)``/``close``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._thread = None

    def set_churn(self, mib: int, **kwargs) -> None:
        """Churn ``mib`` MiB (0 stops it). Replay sources have nothing to churn: ignored."""
        if self.churn is not None:
            if mib and self.churn.mib == mib and self.churn.running:
                return
            self.churn.stop()
            self.churn = None
        if mib and self.source.mode == "live":
            self.churn = Churn(mib, **kwargs).start()

    def samples(self) -> list[Sample]:
        """The samples kept, oldest first."""
        with self._lock:
            return list(self._samples)

    def close(self) -> None:
        """Stop sampling and churn."""
        self.stop()
        self.set_churn(0)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line on stderr and exits 2."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(name: str, lo: float, hi: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{name} must be in [{lo:g}, {hi:g}], got {text}")
        return value

    return parse


def _churn_mib(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"churn must be whole MiB >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"churn must be whole MiB >= 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Sample /proc/zoneinfo and /proc/buddyinfo together and show, per zone, the "
        "gap between the free-page counter and the buddy lists (the per-cpu drift), against "
        "its envelope (online CPUs x stat threshold) and low - min. Without a readable /proc, "
        "replays a trace recorded on Linux.",
    )
    p.add_argument(
        "--seconds",
        type=_positive("seconds", *SECONDS_RANGE),
        default=10.0,
        help="how long to sample (default 10)",
    )
    p.add_argument(
        "--hz",
        type=_positive("hz", *HZ_RANGE),
        default=20.0,
        help="samples per second (default 20)",
    )
    p.add_argument(
        "--churn",
        type=_churn_mib,
        default=0,
        metavar="MIB",
        help="allocate and free this many MiB in a loop while sampling (a child process, at "
        "most 5%% of MemAvailable; default 0: none)",
    )
    p.add_argument(
        "--cpu",
        type=int,
        action="append",
        default=None,
        metavar="N",
        help="pin the churn process to CPU N (repeat for several)",
    )
    p.add_argument("--json", action="store_true", help="print the samples and summary as JSON")
    p.add_argument("--root", default=DEFAULT_ROOT, help="the /proc directory (default /proc)")
    p.add_argument(
        "--replay",
        nargs="?",
        const="",
        default=None,
        metavar="TRACE",
        help="replay a recorded trace (default: the one shipped with the kit) instead of /proc",
    )
    p.add_argument("--record", metavar="PATH", help="also save the samples as a trace file")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m allocsim drift``: sample, print a line per second (or JSON), then a summary.

    Returns 0 on success, 2 for bad arguments or unreadable files (one line on stderr).
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): return, do not exit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        if args.replay is not None:
            source = ReplaySource(args.replay or None, reason="--replay given")
        else:
            source = open_source(args.root)
    except OSError as exc:
        print(f"{PROG}: error: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except LiveError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if source.mode == "replay" and args.replay is None:
        print(f"{PROG}: {source.reason}", file=sys.stderr)
    churn = None
    if args.churn and source.mode == "live":
        try:
            churn = Churn(args.churn, cpus=args.cpu, root=args.root)
        except (TypeError, ValueError) as exc:  # LiveError is a ValueError
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
    elif args.churn:
        print(
            f"{PROG}: no churn while replaying (the trace was recorded with its own)",
            file=sys.stderr,
        )
    stat_interval = source.stat_interval
    buffer: list[Sample] = []
    next_line = [1.0]

    def live_line(sample: Sample) -> None:
        buffer.append(sample)
        if sample.t >= next_line[0]:
            print(format_line(buffer), flush=True)
            buffer.clear()
            next_line[0] += 1.0

    try:
        if churn is not None:
            churn.start()
        samples = collect(
            source,
            args.seconds,
            args.hz,
            on_sample=None if args.json else live_line,
            paced=source.mode == "live",  # a replay is printed at once, every sample in order
        )
    except KeyboardInterrupt:
        return 130
    except (OSError, LiveError, ZoneinfoError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        churn_info = None
        if churn is not None:
            churn_info = {
                "mib": churn.mib,
                "limit_mib": churn.limit_mib,
                "pid": churn.pid,
                "cpus": list(churn.cpus) if churn.cpus else None,
                "baseline_rss_kib": churn.baseline_kib,
                "peak_rss_kib": churn.peak_rss_kib(),
            }
            churn.stop()
    meta = {
        "kernel": source.kernel,
        "cpus_online": max((z.cpus for z in samples[0].zones), default=None),
        "hz": args.hz,
        "seconds": args.seconds,
        "churn_mib": args.churn if churn is not None else 0,
        "stat_interval": stat_interval,
        "skipped": list(source.skipped),
    }
    if args.record:
        try:
            save_trace(
                args.record,
                samples,
                **meta,
                recorded=time.strftime("%Y-%m-%d"),
                machine=platform.machine(),
                command=f"{PROG} " + " ".join(argv if argv is not None else sys.argv[1:]),
            )
        except OSError as exc:
            print(f"{PROG}: error: cannot write {args.record}: {exc.strerror}", file=sys.stderr)
            return 2
    if args.json:
        doc = {
            "source": {
                "mode": source.mode,
                "description": source.description,
                "reason": source.reason,
            },
            **meta,
            "churn": churn_info,
            "samples": [s.to_dict() for s in samples],
            "summary": [z.to_dict() for z in summarize(samples)],
            "gap_explained": GAP_EXPLAINED,
        }
        print(json.dumps(doc))
    else:
        if buffer:
            print(format_line(buffer))
        print()
        print(format_summary(samples, source, stat_interval))
    return 0
