"""Read ``/proc/zoneinfo`` and ask: how exposed is *this* machine to the 2010 drift livelock?

``/proc/zoneinfo`` is written by ``mm/vmstat.c: zoneinfo_show_print``, one block per zone::

    Node 0, zone   Normal
      per-node stats                    (modern kernels, first populated zone of a node only)
          nr_inactive_anon 1274
      pages free     128229
            boost    0                  (modern)
            min      2943
            low      3678
            high     4413
            promo    5148               (modern, memory tiering)
            scanned  0                  (2.6.x)
            spanned  5505024
            present  5505024
            managed  163840             (3.x and later)
            protection: (0, 0, 0, 0, 0)
          nr_free_pages 128229          (zone counters; 2.6.x prints them above protection)
      pagesets
        cpu: 0
                  count:    504
                  high:     2590
                  batch:    31
                  high_min: 1839        (pcp high auto-tuning, recent kernels)
                  high_max: 10240
      vm stats threshold: 16            (CONFIG_SMP only)
      node_unreclaimable:  0            (2.6.x: all_unreclaimable, start_pfn, inactive_ratio)
      start_pfn:           1048576

Old kernels printed two lists per CPU (``cpu: 0 pcp: 0`` hot, ``pcp: 1`` cold) and, up to
2.6.20, skipped a CPU whose lists were all empty: a zone may list fewer CPUs than the machine
has, or none. For those files the CPU count is inferred (largest CPU number listed + 1) and the
report says so. 2.6.x kernels skip empty zones, modern ones (4.12+) print them with their
header and ``protection`` only. ``tests/data/zoneinfo/`` holds real files from 2.6.13 to 5.x.

Three layers:

* :func:`read_zoneinfo` reads at most :data:`MAX_BYTES` (8 MiB) of a regular file (anything
  under /proc too), giving up after :data:`READ_TIMEOUT_S`; :func:`parse_zoneinfo` turns the
  text into frozen dataclasses (:class:`ZoneinfoFile`, :class:`ZoneInfo`,
  :class:`PagesetInfo`). Unknown lines are kept aside, not fatal; anything that looks like a
  known line but is not well formed raises :class:`ZoneinfoError` naming the line number and
  the line. So does a populated zone that stops before the lines that follow its pagesets (a
  cut file). Cuts at a zone or node boundary are found from the file's cross-references (each
  zone's ``protection``, the NUMA counters) and reported as ``warnings``.
* :func:`build_report` applies the 2.6.36 formulas of :mod:`allocsim.vmstat` to every zone
  (stat threshold, worst-case drift against ``low - min``, the drift mark, the 2.6.38 pressure
  threshold) and writes down, in ``notes``, where the running kernel differs from 2.6.36.
* :func:`format_report`, :func:`report_to_dict` and :func:`main`
  (``python -m allocsim zoneinfo [PATH] [--json]``) present it, with simulation settings for a
  machine like this one fitted to what a simulation accepts (:func:`fit_sim_settings`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import stat
import sys
import threading
from dataclasses import dataclass, field

from .constants import NR_CPUS, PAGE_SHIFT
from .page_alloc import setup_pageset, zone_batchsize
from .vmstat import (
    STAT_THRESHOLD_MAX,
    calculate_pressure_threshold,
    calculate_threshold,
    drift_mark,
)

__all__ = [
    "ZoneinfoError",
    "PagesetInfo",
    "ZoneInfo",
    "ZoneinfoFile",
    "ZoneReport",
    "ZoneinfoReport",
    "parse_zoneinfo",
    "read_zoneinfo",
    "build_report",
    "sim_overrides",
    "format_report",
    "report_to_dict",
    "main",
    "fit_sim_settings",
    "ZoneinfoReadError",
    "DEFAULT_PATH",
    "PROG",
    "MAX_BYTES",
    "READ_TIMEOUT_S",
]

DEFAULT_PATH = "/proc/zoneinfo"
PROG = "python -m allocsim zoneinfo"

# A real /proc/zoneinfo is well under 1 MiB even with 4096 CPUs (about 110 bytes per CPU per
# zone); reading stops past this, so /dev/zero or a stray 100 MB file fails at once.
MAX_BYTES = 8 << 20
READ_TIMEOUT_S = 10.0  # a read that blocks longer (a FIFO under /proc, a hung NFS mount) fails

_MAX_PAGES = 1 << 40  # the same ceiling allocsim.vmstat and allocsim.page_alloc accept
_INT_MAX = (1 << 31) - 1  # pcp fields and CPU ids are C ints ("%i")
_LINE_SHOWN = 120  # longest piece of an offending line quoted in an error message

# Keys, as zoneinfo_show_print spells them.
_HEADER_KEYS = ("min", "low", "high", "promo", "spanned", "present", "managed")  # "key   value"
_PAGESET_KEYS = ("count", "high", "batch", "high_min", "high_max")  # "key: value", in a cpu block
_TRAILER_KEYS = (  # "key: value" after the pagesets; they end the last cpu block
    "all_unreclaimable",
    "prev_priority",
    "temp_priority",
    "start_pfn",
    "inactive_ratio",
    "anon_scan_ratio",
    "node_unreclaimable",
    "reserved_highatomic",
    "free_highatomic",
    "node_inactive_ratio",
)
# Per-CPU lines of old kernels, inside a cpu block: the pcp "low" mark (before 2.6.16) and the
# per-CPU NUMA counters (2.6.13 - 2.6.17). Known, so not "unrecognised"; the NUMA ones are
# summed into the zone's stats (they show whether other nodes exist).
_PERCPU_OLD_KEYS = (
    "low",
    "numa_hit",
    "numa_miss",
    "numa_foreign",
    "interleave_hit",
    "local_node",
    "other_node",
)
# Counters that are non-zero only if there is another node: allocations this node took for
# another (numa_miss), meant for it but placed elsewhere (numa_foreign), or made from a CPU of
# another node (numa_other, per-CPU other_node).
_CROSS_NODE_KEYS = ("numa_miss", "numa_foreign", "numa_other", "other_node")

_NODE_RE = re.compile(r"Node\s+([0-9]{1,9}),\s*zone\s+(\S+)")
_INT_RE = re.compile(r"-?[0-9]{1,20}")
_KEY_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(:?)\s*(.*)")
_CPU_RE = re.compile(r"([0-9]{1,10})(?:\s+pcp:\s*([0-9]{1,10}))?")
_PROTECTION_RE = re.compile(r"\(\s*(-?[0-9]{1,20}(?:\s*,\s*-?[0-9]{1,20})*)\s*\)")
_SCANNED_OLD_RE = re.compile(r"scanned\s+([0-9]{1,20})\s+\(a:\s*[0-9]{1,20}\s+i:\s*[0-9]{1,20}\)")


class ZoneinfoError(ValueError):
    """A ``/proc/zoneinfo`` text that cannot be read as one.

    The message starts with ``line N: '<the line>':`` so the user can find the culprit.

    Attributes
    ----------
    lineno : int
        1-based line number.
    line : str
        The offending line, as read (without its newline).
    reason : str
        What is wrong with it.
    """

    def __init__(self, lineno: int, line: str, reason: str):
        self.lineno = lineno
        self.line = line
        self.reason = reason
        shown = line if len(line) <= _LINE_SHOWN else line[:_LINE_SHOWN] + "..."
        super().__init__(f"line {lineno}: {shown!r}: {reason}")

    def __reduce__(self):
        return type(self), (self.lineno, self.line, self.reason)


class ZoneinfoReadError(OSError):
    """A path that cannot be read as a zoneinfo file: too large, not a regular file, or a read
    that did not finish in time. The message is one line."""


# ---------------------------------------------------------------------------------------------
# Parsed data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PagesetInfo:
    """One CPU's per-cpu pageset of a zone, as ``zoneinfo_show_print`` prints it.

    Attributes
    ----------
    cpu : int
        CPU number (``cpu: N``). Only online CPUs are listed (``for_each_online_cpu``).
    count, high, batch : int
        ``pcp.count`` (pages on this CPU's lists now), ``pcp.high`` and ``pcp.batch``.
    high_min, high_max : int or None
        Bounds of the run-time tuned ``high`` (recent kernels); None when the file has none.
    vm_stats_threshold : int or None
        The CPU's ``stat_threshold``; None on non-SMP kernels, whose file has no such line.
    pcp : int or None
        List index for kernels before 2.6.24 (``cpu: 0 pcp: 1``: 0 hot, 1 cold); else None.
    line : int
        Line number of the ``cpu:`` line.
    """

    cpu: int
    count: int
    high: int
    batch: int
    high_min: int | None = None
    high_max: int | None = None
    vm_stats_threshold: int | None = None
    pcp: int | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ZoneInfo:
    """One zone of ``/proc/zoneinfo`` (``mm/vmstat.c: zoneinfo_show_print``).

    Attributes
    ----------
    node : int
        NUMA node id.
    name : str
        Zone name (``DMA``, ``DMA32``, ``Normal``, ``HighMem``, ``Movable``, ``Device``).
    pages_free : int
        ``pages free``: the plain NR_FREE_PAGES read (``zone_page_state``).
    min, low, high : int
        The watermarks (modern kernels include any ``watermark_boost`` in all three).
    promo : int or None
        WMARK_PROMO (modern kernels with memory tiering); None when absent.
    spanned, present : int
        ``spanned_pages`` (pfn range, holes included) and ``present_pages`` (without holes).
    managed : int or None
        ``managed_pages`` (present minus reserved pages); None on old kernels.
    protection : tuple of int
        ``lowmem_reserve[]``, one entry per zone type of the node.
    pagesets : tuple of PagesetInfo
        One per online CPU (two per CPU before 2.6.24); empty for an empty zone.
    stats : dict
        Every other ``name value`` / ``name: value`` line of the zone (``nr_free_pages``,
        ``boost``, ``scanned``, ``start_pfn``, ...).
    node_stats : dict
        The node's ``per-node stats`` block, on the first populated zone of a node (modern).
    line : int
        Line number of the ``Node N, zone NAME`` line.
    """

    node: int
    name: str
    pages_free: int
    min: int
    low: int
    high: int
    promo: int | None
    spanned: int
    present: int
    managed: int | None
    protection: tuple[int, ...]
    pagesets: tuple[PagesetInfo, ...]
    stats: dict = field(default_factory=dict, hash=False)
    node_stats: dict = field(default_factory=dict, hash=False)
    line: int = field(default=0, compare=False)

    @property
    def populated(self) -> bool:
        """True if the zone has pages (``populated_zone``: ``present_pages != 0``)."""
        return self.present > 0

    @property
    def label(self) -> str:
        """``"Node 0, zone Normal"``."""
        return f"Node {self.node}, zone {self.name}"


@dataclass(frozen=True)
class ZoneinfoFile:
    """A parsed ``/proc/zoneinfo``: the zones in file order, and the lines that were skipped.

    Attributes
    ----------
    zones : tuple of ZoneInfo
    unrecognised : tuple of (int, str)
        ``(line number, line)`` of every line the parser did not understand and ignored.
    warnings : tuple of str
        Signs that the file is incomplete (cut short, zones or nodes missing) that could not
        be proven; a file that is certainly incomplete raises ZoneinfoError instead.
    """

    zones: tuple[ZoneInfo, ...]
    unrecognised: tuple[tuple[int, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def hot_cold(self) -> bool:
        """True for the format of kernels with hot and cold lists (``cpu: N pcp: J``)."""
        return any(p.pcp is not None for z in self.zones for p in z.pagesets)


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


class _ZoneBuilder:
    """Collects the lines of one zone block; ``finish`` validates and freezes it."""

    def __init__(self, node: int, name: str, lineno: int, line: str):
        self.node, self.name, self.lineno, self.line = node, name, lineno, line
        self.fields: dict[str, int] = {}
        self.field_lines: dict[str, tuple[int, str]] = {}
        self.protection: tuple[int, ...] = ()
        self.seen_protection = False
        self.seen_pagesets = False
        self.in_node_stats = False
        self.stats: dict[str, int] = {}
        self.node_stats: dict[str, int] = {}
        self.pagesets: list[PagesetInfo] = []
        self.current: dict | None = None  # the cpu block being read
        self.cpus_seen: set[tuple[int, int | None]] = set()
        self.current_line: tuple[int, str] = (0, "")
        self.seen_trailer = False  # a line after the pagesets ("start_pfn:", ...)
        self.last_line: tuple[int, str] = (lineno, line)  # where the zone's text ends

    @property
    def label(self) -> str:
        return f"Node {self.node}, zone {self.name}"

    def close_pageset(self) -> None:
        if self.current is None:
            return
        missing = [k for k in ("count", "high", "batch") if k not in self.current]
        if missing:
            lineno, line = self.current_line
            raise ZoneinfoError(lineno, line, f"pageset has no {missing[0]!r} line")
        self.pagesets.append(PagesetInfo(**self.current, line=self.current_line[0]))
        self.current = None

    def finish(self) -> ZoneInfo:
        self.close_pageset()
        for key in ("pages free", "min", "low", "high", "spanned", "present"):
            if key not in self.fields:
                raise ZoneinfoError(self.lineno, self.line, f"zone has no {key!r} line")
        f = self.fields
        if f["low"] < f["min"]:
            lineno, line = self.field_lines["low"]
            raise ZoneinfoError(lineno, line, f"low watermark {f['low']} is below min {f['min']}")
        if f["high"] < f["low"]:
            lineno, line = self.field_lines["high"]
            raise ZoneinfoError(lineno, line, f"high watermark {f['high']} is below low {f['low']}")
        if f["present"] > 0 and not self.seen_trailer:
            # Every kernel ends a populated zone with lines after its pagesets (start_pfn:,
            # all_unreclaimable: or node_unreclaimable:), so without them the pageset list may
            # have been cut short, and with it the CPU count and the thresholds.
            lineno, line = self.last_line
            raise ZoneinfoError(
                lineno,
                line,
                f"{self.label} ends here, before the 'start_pfn:' lines that follow its "
                "pagesets: the file looks cut short",
            )
        ncpus = len({p.cpu for p in self.pagesets})
        if ncpus > NR_CPUS:
            raise ZoneinfoError(
                self.lineno, self.line, f"{ncpus} CPUs: allocsim models at most NR_CPUS = {NR_CPUS}"
            )
        return ZoneInfo(
            node=self.node,
            name=self.name,
            pages_free=f["pages free"],
            min=f["min"],
            low=f["low"],
            high=f["high"],
            promo=f.get("promo"),
            spanned=f["spanned"],
            present=f["present"],
            managed=f.get("managed"),
            protection=self.protection,
            pagesets=tuple(self.pagesets),
            stats=dict(self.stats),
            node_stats=dict(self.node_stats),
            line=self.lineno,
        )


def _parse_int(text: str, lineno: int, line: str, what: str, lo: int, hi: int) -> int:
    """``text`` as a decimal integer in ``[lo, hi]``, else a ZoneinfoError for this line."""
    text = text.strip()
    if not _INT_RE.fullmatch(text):
        raise ZoneinfoError(lineno, line, f"{what}: expected an integer, got {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise ZoneinfoError(lineno, line, f"{what}: {value} is outside [{lo}, {hi}]")
    return value


def parse_zoneinfo(text: str) -> ZoneinfoFile:
    """Parse the text of ``/proc/zoneinfo`` (``mm/vmstat.c: zoneinfo_show_print``).

    Handles 2.6.x files (``scanned``, ``all_unreclaimable``; before 2.6.24 ``cpu: N pcp: J``)
    and modern ones (``per-node stats``, ``boost``, ``promo``, ``managed``, ``high_min`` /
    ``high_max``, empty zones without pagesets), any number of nodes, zones and CPUs. Blank
    lines, ``\\r\\n`` endings and lines it does not recognise are tolerated; the latter are
    listed in :attr:`ZoneinfoFile.unrecognised`. Unrecognised ``name: value`` lines inside a
    ``cpu:`` block are skipped; elsewhere ``name value`` lines become zone stats.

    Parameters
    ----------
    text : str
        The whole file.

    Returns
    -------
    ZoneinfoFile

    Raises
    ------
    ZoneinfoError
        If a known line is malformed (a value that is not an integer or is out of range, a
        pageset field outside a ``cpu:`` block, a field given twice), a zone lacks a required
        line (``pages free``, ``min``, ``low``, ``high``, ``spanned``, ``present``; ``count``,
        ``high``, ``batch`` of a pageset), its watermarks are not ordered ``min <= low <= high``,
        a populated zone lists no pageset, a zone appears twice, or no zone has present pages.
        The message names the line number and the line.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if text.startswith("\ufeff"):  # a UTF-8 byte order mark, as some editors save files
        text = text[1:]
    lines = text.split("\n")
    zones: list[ZoneInfo] = []
    seen: dict[tuple[int, str], int] = {}
    unrecognised: list[tuple[int, str]] = []
    zone: _ZoneBuilder | None = None

    for lineno, raw in enumerate(lines, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        s = line.strip()
        if not s:
            continue

        # "Node N, zone NAME" starts a zone block.
        if s.startswith("Node ") or s.startswith("Node\t"):
            m = _NODE_RE.fullmatch(s)
            if not m:
                raise ZoneinfoError(lineno, line, "expected 'Node N, zone NAME'")
            if zone is not None:
                zones.append(zone.finish())
            node, name = int(m.group(1)), m.group(2)
            if (node, name) in seen:
                raise ZoneinfoError(
                    lineno, line, f"zone listed twice (first at line {seen[node, name]})"
                )
            seen[node, name] = lineno
            zone = _ZoneBuilder(node, name, lineno, line)
            continue

        kind, key, value = _classify(s)
        if zone is None:
            if kind == "unknown":
                unrecognised.append((lineno, line))
                continue
            raise ZoneinfoError(lineno, line, "before the first 'Node N, zone NAME' line")
        _apply(zone, kind, key, value, lineno, line, unrecognised)
        zone.last_line = (lineno, line)

    if zone is not None:
        zones.append(zone.finish())
    if not zones:
        lineno, line = _first_nonblank(lines)
        raise ZoneinfoError(lineno, line, "no 'Node N, zone NAME' line: not a zoneinfo file")

    def zone_line(z: ZoneInfo) -> str:
        return lines[z.line - 1].rstrip("\r")

    if not any(z.populated for z in zones):
        raise ZoneinfoError(zones[0].line, zone_line(zones[0]), "no zone has present pages")
    hot_cold = any(p.pcp is not None for z in zones for p in z.pagesets)
    for z in zones:
        # Kernels with hot/cold lists (2.6.20 and before) skip a CPU whose lists are all empty,
        # so a populated zone may list none; later kernels list every online CPU.
        if z.populated and not z.pagesets and not hot_cold:
            raise ZoneinfoError(
                z.line, zone_line(z), "zone has present pages but no 'cpu: N' pageset"
            )
    if hot_cold:
        top = max((p for z in zones for p in z.pagesets), key=lambda p: p.cpu)
        if top.cpu + 1 > NR_CPUS:
            raise ZoneinfoError(
                top.line,
                lines[top.line - 1].rstrip("\r"),
                f"CPU {top.cpu} means at least {top.cpu + 1} CPUs: allocsim models at most "
                f"NR_CPUS = {NR_CPUS}",
            )
    warnings = _completeness_warnings(zones, text)
    return ZoneinfoFile(
        zones=tuple(zones), unrecognised=tuple(unrecognised), warnings=tuple(warnings)
    )


def _protection_steps(protection: tuple[int, ...]) -> int:
    """How many zones above this one ``protection`` shows to have pages.

    ``protection[j]`` is ``lowmem_reserve[j]``: the pages of the zones above this one, up to
    zone ``j``, divided by a ratio (``setup_per_zone_lowmem_reserve``). It can only grow from
    ``j - 1`` to ``j`` if zone ``j`` has pages, so each step up is one populated zone above.
    """
    return sum(1 for a, b in zip(protection, protection[1:], strict=False) if b > a)


def _completeness_warnings(zones: list[ZoneInfo], text: str) -> list[str]:
    """Signs that zones or nodes are missing from an otherwise well-formed file.

    A cut inside a populated zone is an error (the zone has no lines after its pagesets); what
    is left are cuts at a zone or node boundary, which only the file's own cross-references
    reveal: each zone's protection counts the populated zones above it in its node, kernels
    that print empty zones (4.12 and later) print every zone of a node, and the NUMA counters
    of a lone node show allocations across nodes.
    """
    warnings = []
    if text.rstrip(" \t\r") and not text.rstrip(" \t\r").endswith("\n"):
        warnings.append(
            "the file does not end with a newline, as /proc/zoneinfo does: its last line may "
            "be cut short"
        )
    by_node: dict[int, list[ZoneInfo]] = {}
    for z in zones:
        by_node.setdefault(z.node, []).append(z)
    prints_empty = any(not z.populated for z in zones)
    for node, node_zones in by_node.items():
        types = max((len(z.protection) for z in node_zones), default=0)
        if prints_empty and types and len(node_zones) < types:
            warnings.append(
                f"node {node} lists {len(node_zones)} zone(s) but its protection has {types} "
                "entries, and this kernel prints empty zones too: zones are missing (file cut "
                "short?)"
            )
            continue
        for i, z in enumerate(node_zones):
            above = sum(1 for later in node_zones[i + 1 :] if later.populated or prints_empty)
            needed = _protection_steps(z.protection)
            if above < needed:
                warnings.append(
                    f"{z.label}: its protection {z.protection} shows {needed} populated zone(s) "
                    f"above it, but the file lists {above} after it in node {node}: zones are "
                    "missing (file cut short?)"
                )
                break
        last = node_zones[-1]
        if not last.populated and not last.protection and last is zones[-1]:
            warnings.append(
                f"{last.label} (the last zone) has no 'protection:' line: the file may be cut short"
            )
    nodes = sorted(by_node)
    if len(nodes) > 1 and 0 not in nodes:
        warnings.append(
            f"nodes {', '.join(map(str, nodes))} are listed but not node 0: unless node 0 has "
            "no memory, the file is incomplete"
        )
    elif len(nodes) == 1:
        cross = sum(
            z.stats.get(k, 0) + z.node_stats.get(k, 0) for z in zones for k in _CROSS_NODE_KEYS
        )
        if cross > 0:
            warnings.append(
                f"only node {nodes[0]} is listed, but its NUMA counters (numa_miss, numa_foreign, "
                "numa_other) show allocations across nodes: other nodes may be missing (file cut "
                "short?)"
            )
    return warnings


def _first_nonblank(lines: list[str]) -> tuple[int, str]:
    for lineno, raw in enumerate(lines, start=1):
        if raw.strip():
            return lineno, raw.rstrip("\r")
    return 1, lines[0].rstrip("\r") if lines else ""


def _classify(s: str) -> tuple[str, str, str]:
    """Sort a stripped line into ``(kind, key, value text)``."""
    if s == "per-node stats":
        return "node_stats", "", ""
    if s == "pagesets":
        return "pagesets", "", ""
    m = _SCANNED_OLD_RE.fullmatch(s)  # 2.6.x before 2.6.28: "scanned  0 (a: 19 i: 24)"
    if m:
        return "stat", "scanned", m.group(1)
    for prefix, kind in (("pages free", "pages_free"), ("vm stats threshold:", "threshold")):
        if s.startswith(prefix):
            return kind, prefix, s[len(prefix) :]
    m = _KEY_RE.fullmatch(s)
    if not m:
        return "unknown", "", ""
    key, colon, value = m.group(1), m.group(2), m.group(3)
    if colon:
        if key == "cpu":
            return "cpu", key, value
        if key == "protection":
            return "protection", key, value
        if key in _PAGESET_KEYS:
            return "pageset", key, value
        if key in _TRAILER_KEYS:
            return "trailer", key, value
        if key in _PERCPU_OLD_KEYS:
            return "percpu_old", key, value
    elif key in _HEADER_KEYS:
        return "header", key, value
    if value and _INT_RE.fullmatch(value):
        return ("stat_colon" if colon else "stat"), key, value
    return "unknown", "", ""


def _apply(
    zone: _ZoneBuilder, kind: str, key: str, value: str, lineno: int, line: str, unrecognised: list
) -> None:
    """Fold one classified line into the zone being built."""
    if kind == "node_stats":
        if zone.in_node_stats or zone.node_stats or "pages free" in zone.fields:
            raise ZoneinfoError(lineno, line, "'per-node stats' in the wrong place")
        zone.in_node_stats = True
    elif kind in ("pages_free", "header"):
        name = "pages free" if kind == "pages_free" else key
        _set_once(zone, name, _parse_int(value, lineno, line, name, 0, _MAX_PAGES), lineno, line)
        zone.in_node_stats = False
    elif kind == "protection":
        if zone.seen_protection:
            raise ZoneinfoError(lineno, line, "second 'protection:' line in this zone")
        m = _PROTECTION_RE.fullmatch(value.strip())
        if not m:
            raise ZoneinfoError(lineno, line, "expected 'protection: (N, N, ...)'")
        values = [v.strip() for v in m.group(1).split(",")]
        zone.protection = tuple(
            _parse_int(v, lineno, line, "protection", 0, _MAX_PAGES) for v in values
        )
        zone.seen_protection = True
    elif kind == "pagesets":
        if zone.seen_pagesets:
            raise ZoneinfoError(lineno, line, "second 'pagesets' line in this zone")
        zone.seen_pagesets = True
        zone.in_node_stats = False
    elif kind == "cpu":
        if not zone.seen_pagesets:
            raise ZoneinfoError(lineno, line, "'cpu:' line before the 'pagesets' line")
        m = _CPU_RE.fullmatch(value.strip())
        if not m:
            raise ZoneinfoError(lineno, line, "expected 'cpu: N' (or 'cpu: N pcp: J')")
        cpu = _parse_int(m.group(1), lineno, line, "cpu", 0, _INT_MAX)
        pcp = None if m.group(2) is None else _parse_int(m.group(2), lineno, line, "pcp", 0, 1)
        zone.close_pageset()
        if (cpu, pcp) in zone.cpus_seen:
            raise ZoneinfoError(lineno, line, f"cpu {cpu} listed twice in this zone")
        zone.cpus_seen.add((cpu, pcp))
        zone.current = {"cpu": cpu, "pcp": pcp}
        zone.current_line = (lineno, line)
    elif kind in ("pageset", "threshold"):
        name = "vm_stats_threshold" if kind == "threshold" else key
        if zone.current is None:
            raise ZoneinfoError(lineno, line, f"{key.rstrip(':')!r} outside a 'cpu: N' block")
        if name in zone.current:
            raise ZoneinfoError(lineno, line, f"second {key.rstrip(':')!r} line for this CPU")
        hi = STAT_THRESHOLD_MAX if kind == "threshold" else _INT_MAX
        zone.current[name] = _parse_int(value, lineno, line, key.rstrip(":"), 0, hi)
    elif kind == "trailer":
        zone.close_pageset()
        zone.seen_trailer = True
        zone.stats[key] = _parse_int(value, lineno, line, key, -_INT_MAX, 1 << 63)
    elif kind == "percpu_old":
        if zone.current is None or not _INT_RE.fullmatch(value.strip()):
            unrecognised.append((lineno, line))
        elif key != "low":
            # summed over CPUs; the kernel prints them as unsigned longs, wrap-arounds included
            number = _parse_int(value, lineno, line, key, 0, (1 << 64) - 1)
            zone.stats[key] = zone.stats.get(key, 0) + number
    elif kind == "stat_colon" and zone.current is not None:
        unrecognised.append((lineno, line))  # a per-CPU field this parser does not know
    elif kind in ("stat", "stat_colon"):
        target = zone.node_stats if zone.in_node_stats else zone.stats
        target[key] = int(value)
    else:
        unrecognised.append((lineno, line))


def _set_once(zone: _ZoneBuilder, name: str, value: int, lineno: int, line: str) -> None:
    if name in zone.fields:
        first = zone.field_lines[name][0]
        raise ZoneinfoError(
            lineno, line, f"second {name!r} line in this zone (first at line {first})"
        )
    zone.fields[name] = value
    zone.field_lines[name] = (lineno, line)


def _read_bounded(path: str, max_bytes: int, timeout: float) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``path``, read in a thread that may take ``timeout`` s.

    Only regular files are read, except under /proc (whose files are what this is for; a
    /proc/self/fd link may lead to a pipe, which the timeout covers). A FIFO elsewhere would
    block the open, /dev/zero would never end, a directory cannot be read.
    """
    info = os.stat(path)  # FileNotFoundError, PermissionError, ... are OSErrors already
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "is a directory", path)
    under_proc = os.path.abspath(path).startswith("/proc/")
    if not stat.S_ISREG(info.st_mode) and not under_proc:
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "not a regular file"
        )
        raise ZoneinfoReadError(f"{kind}, not a regular file: save the zoneinfo to a file first")
    if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
        raise ZoneinfoReadError(_too_big(info.st_size, max_bytes))
    box: dict = {}

    def read() -> None:
        try:
            with open(path, "rb") as f:
                box["data"] = f.read(max_bytes + 1)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    reader = threading.Thread(target=read, name="read_zoneinfo", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():  # the thread stays blocked; as a daemon it does not hold up exit
        raise ZoneinfoReadError(f"no data after {timeout:g} s: gave up reading")
    if "error" in box:
        raise box["error"]
    data = box["data"]
    if len(data) > max_bytes:
        raise ZoneinfoReadError(_too_big(None, max_bytes))
    return data


def _too_big(size: int | None, max_bytes: int) -> str:
    limit = f"{max_bytes >> 20} MiB" if max_bytes % (1 << 20) == 0 else f"{max_bytes:,} bytes"
    what = f"{size:,} bytes, more than" if size is not None else "more than"
    return (
        f"{what} {limit}: not a zoneinfo file (a real /proc/zoneinfo is under 1 MiB even with "
        "4096 CPUs)"
    )


def read_zoneinfo(
    path: str = DEFAULT_PATH, *, max_bytes: int = MAX_BYTES, timeout: float = READ_TIMEOUT_S
) -> ZoneinfoFile:
    """Read and parse a zoneinfo file (``/proc/zoneinfo`` by default).

    The read is bounded: at most ``max_bytes`` (8 MiB), regular files only (or anything under
    /proc), and no longer than ``timeout`` seconds.

    Raises
    ------
    OSError
        If the file cannot be read; :class:`ZoneinfoReadError` (an OSError) if it is too large,
        not a regular file or does not deliver its data in time.
    ZoneinfoError
        If it is not valid UTF-8 or not a zoneinfo file (see :func:`parse_zoneinfo`).
    """
    data = _read_bounded(os.fspath(path), max_bytes, timeout)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        shown = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")
        raise ZoneinfoError(lineno, shown, "not UTF-8 text") from None
    return parse_zoneinfo(text)


# ---------------------------------------------------------------------------------------------
# Exposure report
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneReport:
    """The 2.6.36 drift arithmetic applied to one zone of a zoneinfo file.

    Attributes
    ----------
    node, zone : int, str
        Which zone.
    present, managed, spanned, pages_free, min, low, high, promo
        Copied from the file (``managed``/``promo`` None when absent).
    cpus : int
        Online CPUs (0 for an empty zone): the distinct CPUs among the pagesets listed; for
        the hot/cold format of old kernels, which skip CPUs with empty lists, the largest CPU
        number listed in any zone plus one (``cpus_inferred``).
    cpus_listed : int
        Distinct CPUs among this zone's pagesets.
    cpus_inferred : bool
        True when ``cpus`` was inferred from the whole file rather than counted in the zone.
    threshold_file : int or None
        The file's ``vm stats threshold`` (the largest, if CPUs disagree); None if absent.
    threshold_formula : int or None
        ``calculate_threshold(present, cpus)``: what 2.6.36 would set (mm/vmstat.c).
    threshold_formula_managed : int or None
        The same formula on managed pages, as modern ``calculate_normal_threshold`` does.
    threshold_used, threshold_source
        The threshold the drift numbers below use: the file's when it has one
        (``"file"``), else ``threshold_formula`` (``"2.6.36 formula"``).
    tolerate_drift : int
        ``low - min``: how far the counter may over-report before a LOW check can pass when
        the zone is really below MIN.
    max_drift : int or None
        ``cpus * threshold_used``: worst-case over-report of NR_FREE_PAGES.
    exposed : bool or None
        ``max_drift > tolerate_drift``: the case the drift-mark patch (aa45484) guards.
    drift_mark : int or None
        ``percpu_drift_mark`` as 2.6.36 ``refresh_zone_stat_thresholds`` would set it
        (``high + max_drift`` when exposed, else 0 = unset).
    pcp_pages : int
        Pages on all CPUs' pcp lists at capture time (sum of ``count``); NR_FREE_PAGES
        does not count them.
    pcp_high_total : int
        Sum of ``high`` over the pagesets: roughly how many pages the pcp lists may hold.
    pressure_threshold : int or None
        ``calculate_pressure_threshold(min, low, cpus)`` (2.6.38, 88f5acf88ae6).
    first_pcp_high, first_pcp_batch : int or None
        ``high`` and ``batch`` of the first pageset in the file.
    notes : tuple of str
        Zone-specific remarks on how this kernel differs from 2.6.36.
    """

    node: int
    zone: str
    present: int
    managed: int | None
    spanned: int
    pages_free: int
    min: int
    low: int
    high: int
    promo: int | None
    cpus: int
    cpus_listed: int
    cpus_inferred: bool
    threshold_file: int | None
    threshold_formula: int | None
    threshold_formula_managed: int | None
    threshold_used: int | None
    threshold_source: str
    tolerate_drift: int
    max_drift: int | None
    exposed: bool | None
    drift_mark: int | None
    pcp_pages: int
    pcp_high_total: int
    pressure_threshold: int | None
    first_pcp_high: int | None
    first_pcp_batch: int | None
    notes: tuple[str, ...] = ()

    @property
    def populated(self) -> bool:
        """True if the zone has present pages."""
        return self.present > 0

    @property
    def label(self) -> str:
        """``"Node 0, zone Normal"``."""
        return f"Node {self.node}, zone {self.zone}"


@dataclass(frozen=True)
class ZoneinfoReport:
    """Exposure report for a whole zoneinfo file.

    Attributes
    ----------
    source : str
        Where the text came from (a path, or ``""``).
    zones : tuple of ZoneReport
        In file order.
    main : int
        Index in ``zones`` of the "main" zone: the one with the most present pages (the
        first such zone on a tie). :meth:`sim_overrides` describes it by default.
    notes : tuple of str
        File-wide remarks on how this kernel differs from 2.6.36.
    warnings : tuple of str
        Signs that the file is incomplete (:attr:`ZoneinfoFile.warnings`): the figures may not
        describe the whole machine.
    """

    source: str
    zones: tuple[ZoneReport, ...]
    main: int
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def main_zone(self) -> ZoneReport:
        """The zone with the most present pages."""
        return self.zones[self.main]

    def sim_overrides(self, zone: ZoneReport | int | None = None) -> dict:
        """Simulation settings for "a machine like mine"; see :func:`sim_overrides`."""
        return sim_overrides(self, zone)

    def sim_settings(self, zone: ZoneReport | int | None = None) -> tuple[dict, list[str]]:
        """:meth:`sim_overrides` fitted to what a simulation accepts, with the changes noted
        (:func:`fit_sim_settings`): what the command line prints, and what runs."""
        return fit_sim_settings(sim_overrides(self, zone))


_SOURCE_FILE = "file"
_SOURCE_FORMULA = "2.6.36 formula"


def build_report(zoneinfo: ZoneinfoFile, source: str = "") -> ZoneinfoReport:
    """Apply the 2.6.36 drift arithmetic to every zone of a parsed zoneinfo file.

    For each populated zone: online CPUs (pagesets listed), the stat threshold (the file's
    ``vm stats threshold`` when present, and separately ``calculate_threshold`` on present
    pages as 2.6.36 computes it, mm/vmstat.c), the worst-case drift ``cpus * threshold``
    against ``low - min``, the ``percpu_drift_mark`` 2.6.36 would set (``drift_mark``), the
    pages on pcp lists now, and the 2.6.38 ``calculate_pressure_threshold``. Empty zones
    (present 0) get None for everything that needs CPUs or pages.

    Parameters
    ----------
    zoneinfo : ZoneinfoFile
        From :func:`parse_zoneinfo` or :func:`read_zoneinfo`.
    source : str, optional
        Shown in the report header (a path).

    Returns
    -------
    ZoneinfoReport
    """
    inferred = machine_cpus(zoneinfo) if zoneinfo.hot_cold else None
    zones = tuple(_zone_report(z, inferred) for z in zoneinfo.zones)
    main = max(range(len(zones)), key=lambda i: (zones[i].present, -i))
    return ZoneinfoReport(
        source=source,
        zones=zones,
        main=main,
        notes=tuple(_file_notes(zoneinfo, zones)),
        warnings=tuple(zoneinfo.warnings),
    )


def machine_cpus(zoneinfo: ZoneinfoFile) -> int:
    """The machine's CPU count as the file shows it: the largest CPU number in any zone + 1.

    For the hot/cold format this is an inference: those kernels skip a CPU whose lists are all
    empty (so one zone may list fewer CPUs than another, or none), and it assumes CPUs
    ``0 .. n-1`` are online. For later formats every zone lists every online CPU.
    """
    return max((p.cpu for z in zoneinfo.zones for p in z.pagesets), default=-1) + 1


def _zone_report(z: ZoneInfo, inferred_cpus: int | None = None) -> ZoneReport:
    listed = len({p.cpu for p in z.pagesets})
    cpus = inferred_cpus if (inferred_cpus and z.populated) else listed
    thresholds = [p.vm_stats_threshold for p in z.pagesets if p.vm_stats_threshold is not None]
    threshold_file = max(thresholds) if thresholds else None
    threshold_formula = threshold_formula_managed = None
    threshold_used = max_drift = exposed = mark = pressure = None
    source = "none (empty zone)"
    notes: list[str] = []
    if z.populated:
        # populated zones list pagesets (parse_zoneinfo checks) or, in the hot/cold format,
        # get the CPU count inferred from the whole file: 1 <= cpus <= NR_CPUS
        threshold_formula = calculate_threshold(z.present, cpus)
        if z.managed:
            threshold_formula_managed = calculate_threshold(z.managed, cpus)
        if threshold_file is not None:
            threshold_used, source = threshold_file, _SOURCE_FILE
        else:
            threshold_used, source = threshold_formula, _SOURCE_FORMULA
        max_drift = cpus * threshold_used
        exposed = max_drift > z.low - z.min
        mark = drift_mark(z.min, z.low, z.high, threshold_used, cpus)
        pressure = calculate_pressure_threshold(z.min, z.low, cpus)
        notes = _zone_notes(
            z,
            cpus,
            thresholds,
            threshold_file,
            threshold_formula,
            threshold_formula_managed,
            pressure,
        )
    first = z.pagesets[0] if z.pagesets else None
    return ZoneReport(
        node=z.node,
        zone=z.name,
        present=z.present,
        managed=z.managed,
        spanned=z.spanned,
        pages_free=z.pages_free,
        min=z.min,
        low=z.low,
        high=z.high,
        promo=z.promo,
        cpus=cpus,
        cpus_listed=listed,
        cpus_inferred=bool(inferred_cpus) and z.populated,
        threshold_file=threshold_file,
        threshold_formula=threshold_formula,
        threshold_formula_managed=threshold_formula_managed,
        threshold_used=threshold_used,
        threshold_source=source,
        tolerate_drift=z.low - z.min,
        max_drift=max_drift,
        exposed=exposed,
        drift_mark=mark,
        pcp_pages=sum(p.count for p in z.pagesets),
        pcp_high_total=sum(p.high for p in z.pagesets),
        pressure_threshold=pressure,
        first_pcp_high=first.high if first else None,
        first_pcp_batch=first.batch if first else None,
        notes=tuple(notes),
    )


def _zone_notes(
    z: ZoneInfo,
    cpus: int,
    thresholds: list[int],
    threshold_file: int | None,
    formula: int,
    formula_managed: int | None,
    pressure: int,
) -> list[str]:
    """Where this zone's numbers differ from what 2.6.36 would have set up."""
    notes = []
    if z.managed is not None and z.managed != z.present:
        pct = 100 * z.managed / z.present
        notes.append(
            f"managed {z.managed} pages is {pct:.0f}% of present {z.present}: this kernel sizes "
            "thresholds, watermarks and pcp lists from managed pages, 2.6.36 from present; "
            "the simulated zone (zone_mib) uses present."
        )
    if threshold_file is not None:
        if len(set(thresholds)) > 1:
            notes.append(
                f"CPUs disagree on vm stats threshold "
                f"({min(thresholds)}..{max(thresholds)}); the report uses the largest."
            )
        normal = formula_managed if formula_managed is not None else formula
        if threshold_file == pressure and threshold_file != normal:
            notes.append(
                f"vm stats threshold {threshold_file} equals the pressure threshold, not the "
                f"normal {normal}: kswapd was probably awake (since 2.6.38 it switches zones "
                "with a drift mark to calculate_pressure_threshold while it runs)."
            )
        elif formula_managed is not None and threshold_file == formula_managed != formula:
            notes.append(
                f"vm stats threshold {threshold_file} = calculate_threshold(managed {z.managed}, "
                f"{cpus} CPUs), as modern calculate_normal_threshold computes it; 2.6.36 "
                f"(present pages) would give {formula}."
            )
        elif threshold_file != formula:
            notes.append(
                f"vm stats threshold {threshold_file} differs from the 2.6.36 formula "
                f"({formula}) and from the pressure threshold ({pressure})."
            )
    if z.min > 0:
        low_gap, high_gap = z.min >> 2, z.min >> 1  # 2.6.36: low = min + tmp/4, high = min + tmp/2
        if (z.low - z.min, z.high - z.min) != (low_gap, high_gap):
            notes.append(
                f"watermark spacing low-min {z.low - z.min}, high-min {z.high - z.min}; 2.6.36 "
                f"would give {low_gap} and {high_gap} from this min (modern kernels space low "
                "and high by max(min/4, managed * watermark_scale_factor / 10000)); the "
                f"simulated zone reproduces min {z.min} but gets low {z.min + low_gap}, "
                f"high {z.min + high_gap}."
            )
    if not z.pagesets:
        notes.append(
            f"lists no pageset: every CPU's lists were empty, and this kernel skips such CPUs; "
            f"the report assumes the file's {cpus} CPUs and the 2.6.36 threshold formula."
        )
        return notes
    listed = len({p.cpu for p in z.pagesets})
    if listed < cpus:
        notes.append(
            f"lists {listed} of the file's {cpus} CPUs (this kernel skips a CPU whose lists "
            "are all empty); the drift numbers use all of them."
        )
    first = z.pagesets[0]
    high_2636, batch_2636 = setup_pageset(zone_batchsize(z.present))
    if any(p.high_min is not None or p.high_max is not None for p in z.pagesets):
        notes.append(
            f"pcp high is auto-tuned between high_min {first.high_min} and high_max "
            f"{first.high_max} (now {first.high}, batch {first.batch} on the first CPU); 2.6.36 "
            f"would fix high/batch at {high_2636}/{batch_2636} for this zone "
            "(setup_pageset(zone_batchsize(present)): high = 6 * batch)."
        )
    elif (first.high, first.batch) != (high_2636, batch_2636):
        notes.append(
            f"pcp high/batch {first.high}/{first.batch} differ from 2.6.36's "
            f"setup_pageset(zone_batchsize(present)) = {high_2636}/{batch_2636} "
            "(vm.percpu_pagelist_fraction, or another kernel version)."
        )
    boost = z.stats.get("boost", 0)
    if boost:
        notes.append(f"watermarks include a watermark_boost of {boost} pages (temporary, modern).")
    return notes


def _file_notes(zoneinfo: ZoneinfoFile, zones: tuple[ZoneReport, ...]) -> list[str]:
    """File-wide remarks: format era and the modern mechanisms 2.6.36 lacks."""
    infos = zoneinfo.zones
    if zoneinfo.hot_cold:
        n = machine_cpus(zoneinfo)
        notes = [
            f"Online CPUs inferred: {n} (the largest CPU number listed in any zone, plus one). "
            "This is the hot/cold format ('cpu: N pcp: J') of old kernels, which skip a CPU "
            "whose lists are all empty, so a zone's pagesets need not show every CPU; the "
            f"count assumes CPUs 0..{n - 1} are online."
        ]
    else:
        notes = [
            "Online CPUs are the pagesets listed per zone (zoneinfo_show_print walks "
            "for_each_online_cpu)."
        ]
    notes.append(
        "Pages are the machine's pages; MiB figures and the simulation assume 4 KiB pages "
        "(a kernel with 64 KiB pages, as on some ppc64 and arm64 machines, has 16 times the "
        "memory shown)."
    )
    if any(z.managed is not None for z in infos):
        notes.append(
            "Modern format (has 'managed'): this kernel uses managed pages (the pages the buddy "
            "allocator actually manages: present minus reserved) where 2.6.36 used present "
            "pages; 'threshold (2.6.36 formula)' is calculate_threshold on present pages, as "
            "2.6.36 would compute it."
        )
    else:
        notes.append(
            "Older format (no 'managed'): this kernel sized everything from present "
            "pages, as 2.6.36 did."
        )
    if any(p.high_min is not None for z in infos for p in z.pagesets):
        notes.append(
            "pcp 'high' is auto-tuned at run time between high_min and high_max, and batch may "
            "reach 63 (2.6.36: high = 6 * batch, batch at most 31); pcp_high in the simulation "
            "settings is the first CPU's value at capture time."
        )
    if any(z.managed is not None or z.promo is not None for z in infos):
        notes.append(
            "Modern watermarks: low and high are spaced by max(min/4, managed * "
            "watermark_scale_factor / 10000) (2.6.36: min/4 and min/2), and include "
            "watermark_boost; 'promo' (memory tiering) has no 2.6.36 counterpart and is ignored."
        )
    if any(p.vm_stats_threshold is not None for z in infos for p in z.pagesets):
        notes.append(
            "The threshold used is the file's per-CPU 'vm stats threshold'. Since 2.6.38 kswapd "
            "lowers it to the pressure threshold in zones with a drift mark while it is awake, so "
            "a capture taken under memory pressure may show that value instead of the normal one."
        )
    else:
        notes.append(
            "No 'vm stats threshold' lines (non-SMP kernel?): the drift numbers use "
            "2.6.36's calculate_threshold on present pages."
        )
    if any(z.managed is not None for z in infos):
        notes.append(
            "Since 2.6.38 ordinary watermark checks read the plain counter again; the drift mark "
            "only switches zone_watermark_ok_safe (kswapd wake/sleep decisions) to the snapshot. "
            "The drift mark shown is the 2.6.36 rule, which modern kernels still use to set it."
        )
    if any(p.pcp is not None for z in infos for p in z.pagesets):
        notes.append("Pre-2.6.24 format: two pcp lists (hot, cold) per CPU; CPUs are counted once.")
    if zoneinfo.unrecognised:
        lineno, line = zoneinfo.unrecognised[0]
        notes.append(
            f"{len(zoneinfo.unrecognised)} unrecognised line(s) ignored "
            f"(first: line {lineno}: {line.strip()[:60]!r})."
        )
    empty = [z.label for z in zones if not z.populated]
    if empty:
        notes.append("Empty zones (present 0, no pagesets): " + ", ".join(empty) + ".")
    return notes


def sim_overrides(report: ZoneinfoReport, zone: ZoneReport | int | None = None) -> dict:
    """Simulation settings that make an allocsim zone look like a zone of this machine.

    Parameters
    ----------
    report : ZoneinfoReport
    zone : ZoneReport or int, optional
        The zone (or its index in ``report.zones``); default the main zone (most present
        pages).

    Returns
    -------
    dict
        ``cpus``: online CPUs of the zone; ``zone_mib``: present pages in MiB, rounded down,
        at least 1; ``min_free_kbytes``: the min watermark in KiB (``min * 4``), so that a
        one-zone ``setup_per_zone_wmarks`` reproduces the file's min; ``pcp_high``,
        ``pcp_batch``: the first pageset's ``high`` and ``batch`` (batch at least 1);
        ``stat_threshold``: the file's ``vm stats threshold``, or None for "use the kernel
        formula".

    Raises
    ------
    ValueError
        If the zone is empty (present 0): there is nothing to simulate.
    """
    if zone is None:
        z = report.main_zone
    elif isinstance(zone, int) and not isinstance(zone, bool):
        z = report.zones[zone]
    else:
        z = zone
    if not z.populated:
        raise ValueError(f"{z.label} is empty (present 0): nothing to simulate")
    listed = z.first_pcp_high is not None  # a hot/cold-era zone may list no pageset
    return {
        "cpus": z.cpus,
        "zone_mib": max(1, z.present >> (20 - PAGE_SHIFT)),
        "min_free_kbytes": z.min << (PAGE_SHIFT - 10),
        "pcp_high": z.first_pcp_high if listed else None,
        "pcp_batch": max(1, z.first_pcp_batch) if listed else None,
        "stat_threshold": z.threshold_file,
    }


def fit_sim_settings(overrides: dict, name: str = "large") -> tuple[dict, list[str]]:
    """Settings that ``SimConfig.preset(name, **settings)`` accepts, as close to ``overrides``
    as its limits allow, and a note for each change.

    Each value is clamped into its SimConfig field's range (a 35 MiB zone becomes the smallest
    simulated zone, 64 MiB; ``min_free_kbytes 0`` becomes 128), then the cross-field limits are
    met: a ``pcp_high`` below ``pcp_batch`` (other than 0, which the kernel's DMA zone uses)
    becomes the batch, and a ``min_free_kbytes`` whose watermarks would not fit the zone
    becomes the largest that fits. None means "the kernel's formula" and is kept.

    Raises
    ------
    ValueError
        If the result is still not a valid configuration (a field SimConfig does not know, say).
    """
    from .config import SimConfig, preset
    from .errors import max_min_free_kbytes

    meta = {f.name: f.metadata for f in SimConfig.parameters()}
    fitted, notes = {}, []
    for key, value in overrides.items():
        if value is None or key not in meta or "range" not in meta[key]:
            fitted[key] = value
            continue
        lo, hi = meta[key]["range"]
        v = min(max(value, lo), hi)
        if v != value:
            unit = f" {meta[key]['unit']}" if meta[key].get("unit") else ""
            notes.append(f"{key} {value}{unit} is outside [{lo}, {hi}]: using {v}")
        fitted[key] = v
    high, batch = fitted.get("pcp_high"), fitted.get("pcp_batch")
    if high is not None and batch is not None and 0 < high < batch:
        notes.append(f"pcp_high {high} < pcp_batch {batch}: using high = batch")
        fitted["pcp_high"] = batch
    mfk, mib = fitted.get("min_free_kbytes"), fitted.get("zone_mib")
    if mfk is not None and mib is not None:
        largest = max_min_free_kbytes(mib << (20 - PAGE_SHIFT))
        if mfk > largest:
            notes.append(
                f"min_free_kbytes {mfk} puts the watermarks above a {mib} MiB zone: using "
                f"{largest}, the largest that fits"
            )
            fitted["min_free_kbytes"] = largest
    preset(name, **fitted)  # raises, one line, if anything is still out of bounds
    return fitted, notes


# ---------------------------------------------------------------------------------------------
# Presentation
# ---------------------------------------------------------------------------------------------


def _mib(pages: int) -> str:
    return f"{(pages << PAGE_SHIFT) / (1 << 20):,.1f} MiB"


def format_report(report: ZoneinfoReport) -> str:
    """The exposure report as text for a terminal or a notebook cell.

    One block per zone (empty zones get one line), then the simulation settings for the main
    zone, then the notes on how this kernel differs from 2.6.36.

    Parameters
    ----------
    report : ZoneinfoReport
        From :func:`build_report`.

    Returns
    -------
    str
        Several lines, no trailing newline.
    """
    out = []
    populated = [z for z in report.zones if z.populated]
    nodes = sorted({z.node for z in report.zones})
    src = report.source or "zoneinfo"
    out.append(
        f"{src}: {len(report.zones)} zones ({len(populated)} populated) on {len(nodes)} node(s)"
    )
    out.append(f"main zone: {report.main_zone.label} (most present pages)")
    for warning in report.warnings:
        out.append(f"WARNING: {warning}")
    for i, z in enumerate(report.zones):
        out.append("")
        if not z.populated:
            out.append(f"{z.label}: empty (present 0), no pagesets")
            continue
        tag = "  [main]" if i == report.main else ""
        out.append(f"{z.label}{tag}")
        managed = f", managed {z.managed}" if z.managed is not None else ""
        out.append(
            f"  pages          present {z.present} ({_mib(z.present)}){managed}, "
            f"free {z.pages_free}"
        )
        promo = f", promo {z.promo}" if z.promo is not None else ""
        out.append(f"  watermarks     min {z.min}, low {z.low}, high {z.high}{promo}")
        if z.cpus_inferred:
            out.append(
                f"  online CPUs    {z.cpus} (inferred from the whole file; this zone lists "
                f"{z.cpus_listed})"
            )
        else:
            out.append(f"  online CPUs    {z.cpus} (pagesets listed)")
        file_t = "none" if z.threshold_file is None else str(z.threshold_file)
        managed_t = (
            ""
            if z.threshold_formula_managed is None
            else f", same formula on managed pages {z.threshold_formula_managed}"
        )
        out.append(
            f"  threshold      file {file_t}; 2.6.36 calculate_threshold(present) "
            f"{z.threshold_formula}{managed_t}"
        )
        out.append(f"                 report uses {z.threshold_used} ({z.threshold_source})")
        verdict = "EXPOSED: drift can exceed low - min" if z.exposed else "within low - min"
        out.append(
            f"  max drift      {z.cpus} CPUs x {z.threshold_used} = {z.max_drift} pages "
            f"({_mib(z.max_drift)}) vs low - min = {z.tolerate_drift}: {verdict}"
        )
        if z.drift_mark:
            out.append(
                f"  drift mark     {z.drift_mark} (= high {z.high} + max drift "
                f"{z.max_drift}); 2.6.36 takes the snapshot below it while kswapd is awake"
            )
        else:
            out.append("  drift mark     0 (2.6.36 would leave it unset: max drift <= low - min)")
        out.append(
            f"  pcp lists now  {z.pcp_pages} pages (sum of count; the sum of high is "
            f"{z.pcp_high_total})"
        )
        out.append(
            f"  2.6.38 pressure threshold  {z.pressure_threshold} per CPU "
            f"(max drift under pressure {z.cpus * z.pressure_threshold})"
        )
        for note in z.notes:
            out.append(f"  note: {note}")
    out.append("")
    out.append(f"simulation settings for a machine like this ({report.main_zone.label}):")
    settings, changes = report.sim_settings()
    for key, value in settings.items():
        shown = "None (kernel formula)" if value is None else value
        out.append(f"  {key:<16} {shown}")
    for change in changes:
        out.append(f"  (fitted: {change})")
    options = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items() if v is not None)
    out.append(f"  run it: python -m allocsim run {options}")
    out.append("")
    out.append("notes:")
    for note in report.notes:
        out.append(f"  - {note}")
    return "\n".join(out)


def report_to_dict(report: ZoneinfoReport) -> dict:
    """The report as plain data that ``json.dumps`` accepts.

    Parameters
    ----------
    report : ZoneinfoReport
        From :func:`build_report`.

    Returns
    -------
    dict
        ``source``, ``main_zone`` (its label), ``main_index``, ``zones`` (every
        :class:`ZoneReport` field plus ``label``), ``sim_overrides`` and ``notes``.
    """
    zones = []
    for z in report.zones:
        d = dataclasses.asdict(z)
        d["notes"] = list(z.notes)
        d["label"] = z.label
        zones.append(d)
    settings, changes = report.sim_settings()
    return {
        "source": report.source,
        "main_zone": report.main_zone.label,
        "main_index": report.main,
        "zones": zones,
        "sim_overrides": report.sim_overrides(),
        "sim_settings": settings,
        "sim_settings_notes": changes,
        "warnings": list(report.warnings),
        "notes": list(report.notes),
    }


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Report how exposed this machine's zones would be to the 2.6.36 per-cpu "
        "counter drift, and print simulation settings for a machine like it.",
    )
    p.add_argument(
        "path", nargs="?", default=DEFAULT_PATH, help=f"a zoneinfo file (default {DEFAULT_PATH})"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m allocsim zoneinfo [PATH] [--json]``: print the exposure report.

    Returns 0 on success, 2 if the file is unreadable or malformed (a one-line reason goes to
    stderr, no traceback) or the arguments are wrong (argparse's usage message).
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): return, do not exit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        report = build_report(read_zoneinfo(args.path), source=args.path)
    except ZoneinfoError as exc:
        print(f"{PROG}: {args.path}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"{PROG}: cannot read {args.path}: {reason}", file=sys.stderr)
        return 2
    for warning in report.warnings:
        print(f"{PROG}: {args.path}: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(report_to_dict(report), indent=2))
    else:
        print(format_report(report))
    return 0
