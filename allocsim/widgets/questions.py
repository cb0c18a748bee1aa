"""Learner checks: questions whose answers are revealed on demand (predict, then reveal).

The questions of the notebooks live here, in :data:`CHECKS`, with the way to compute each answer
from the kernel formulas the chapter taught (or from the learner's own run or machine), so no
answer sits in the notebook a learner reads: a notebook says ``aw.ask("03-threshold-64")``. The
facilitators' answer key (:func:`answer_key`, the answer-key handout) comes from the same list.

Typed answers are checked tolerantly: numbers with thousands separators and units
("1,000 ms", "1 000", "1 s"), lists with any separators ("1441 / 1801 / 2161"), yes/no in a few
spellings, and patches by name, commit id or number ("9ee493c", "patch 3"). Enter submits.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..patches import PATCH_INFO, Patches
from .environment import (
    _headless,
    _widgets,
)

# -------------------------------------------------------------------------------------------------
# Reading a typed answer
# -------------------------------------------------------------------------------------------------

# unit -> {spelling: factor to the unit}; "" (no unit typed) is always accepted
UNITS = {
    "pages": {"page": 1, "pages": 1, "pg": 1, "pgs": 1, "p": 1},
    "ms": {"ms": 1, "msec": 1, "millisecond": 1, "milliseconds": 1, "s": 1000, "sec": 1000},
    "MiB": {"mib": 1, "mb": 1, "m": 1, "gib": 1024, "gb": 1024, "kib": 1 / 1024, "kb": 1 / 1024},
    "blocks": {"block": 1, "blocks": 1},
    "pages per CPU": {"page": 1, "pages": 1, "pages per cpu": 1, "pages/cpu": 1, "p": 1},
    "cache lines": {"line": 1, "lines": 1, "cache line": 1, "cache lines": 1},
    "CPUs": {"cpu": 1, "cpus": 1},
    "times": {"x": 1, "×": 1, "times": 1, "fold": 1},
}

# a number: 1,441 or 1_441 (thousands groups), or plain digits with an optional decimal part
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:[,_]\d{3})+(?!\d)|\d+)(?:\.\d+)?")
_SPACED = re.compile(r"(?<=\d)[ \u00a0\u202f'](?=\d{3}(?!\d))")  # 1 000, 1'000

YES = {"yes", "y", "true", "ja", "oui", "si", "sí"}
NO = {"no", "n", "false", "nein", "non"}


def _to_float(token: str) -> float:
    return float(token.replace(",", "").replace("_", ""))


def read_number(text: str, unit: str = "") -> tuple[float | None, str]:
    """The number in ``text`` in ``unit``, and a note when it cannot be read.

    Separators and a trailing unit are allowed: "1,000 ms", "1 000", "1000ms", "1 s" (read
    as 1000 when ``unit`` is "ms"). A different unit gives ``(None, note)``.
    """
    s = _SPACED.sub("", str(text).strip())
    found = list(_NUMBER.finditer(s))
    if len(found) != 1:
        return None, "type one number" if not found else "type just one number"
    m = found[0]
    rest = (s[: m.start()] + " " + s[m.end() :]).strip().lower().rstrip(".").strip()
    value = _to_float(m.group())
    if not rest or rest in ("≈", "~", "about", "="):
        return value, ""
    rest = rest.lstrip("≈~= ").strip()
    factors = UNITS.get(unit, {})
    if rest in factors:
        return value * factors[rest], ""
    if unit:
        return None, f"the answer is in {unit}"
    return None, "type a number"


def read_numbers(text: str) -> list[float]:
    """Every number in ``text``, whatever separates them ("1441 / 1801 / 2161")."""
    s = str(text)
    return [_to_float(m.group()) for m in _NUMBER.finditer(s)]


def read_yes_no(text: str) -> bool | None:
    word = str(text).strip().lower().rstrip(".!")
    return True if word in YES else False if word in NO else None


def _patch_aliases() -> dict[str, str]:
    """Every way to name a patch: its switch name, commit id, number, 'patch N'."""
    out = {}
    for i, name in enumerate(Patches.names(), start=1):
        commit = PATCH_INFO[name][0].lower()
        for alias in (name, name.replace("_", " "), name.replace("_", "-"), commit):
            out[alias] = name
        for alias in (str(i), f"patch {i}", f"patch{i}", f"p{i}", f"#{i}", f"patch #{i}"):
            out[alias] = name
    return out


def read_patches(text: str) -> frozenset[str] | None:
    """The set of patches ``text`` names ("patch 3", "9ee493c", "drain_after_reclaim",
    "patches 1 and 3", "none"); None if a part cannot be read."""
    s = str(text).strip().lower()
    if s in ("none", "no patch", "no patches", "nothing", "neither", "-", "0"):
        return frozenset()
    aliases = _patch_aliases()
    s = re.sub(r"\bpatches\b", "", s)
    parts = [p.strip() for p in re.split(r"[,;/+&]|\band\b", s) if p.strip()]
    chosen = set()
    for part in parts:
        if part in aliases:
            chosen.add(aliases[part])
            continue
        words = part.split()
        if words and all(w in aliases for w in words):  # "1 3"
            chosen.update(aliases[w] for w in words)
            continue
        hexid = part.removeprefix("commit").strip()
        if re.fullmatch(r"[0-9a-f]{7,40}", hexid):  # a longer or full commit id
            match = [n for n in Patches.names() if hexid.startswith(PATCH_INFO[n][0].lower())]
            if match:
                chosen.add(match[0])
                continue
        return None
    return frozenset(chosen)


# -------------------------------------------------------------------------------------------------
# The questions of the notebooks
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One learner check: how to ask it, how to compute its answer, how to explain it.

    ``text``, ``answer`` and ``explain`` are functions of a context dict: the values the
    notebook passes (``aw.ask(key, result=result)``), each named in ``needs``. ``kind`` says
    how a typed answer is read: "number", "numbers", "yesno" or "patches". ``example`` builds a
    context for the facilitators' key (the notebook's own default run or machine).
    """

    key: str
    text: Callable[[dict], str]
    answer: Callable[[dict], object]
    explain: Callable[[dict], str]
    kind: str = "number"
    unit: str = ""
    tolerance: float = 0.0
    needs: tuple[str, ...] = ()
    example: Callable[[], dict] | None = None
    depends: str = ""  # for the key: what the answer depends on, if not fixed

    @property
    def notebook(self) -> str:
        return self.key[:2]


def _const(value):
    return lambda _ctx: value


def _small_run() -> dict:
    from ..config import preset
    from ..sim import Simulation

    return {"result": Simulation(preset("small")).run()}


def _large_run() -> dict:
    from ..sim import Simulation
    from ..teaching import fitted_preset

    cfg = fitted_preset("large")
    return {"result": Simulation(cfg).run(), "config": cfg}


def _large_config() -> dict:
    from ..config import preset

    return {"config": preset("large")}


def _ablation() -> dict:
    from ..config import preset
    from ..teaching import ablation

    table, results = ablation(preset("large"))
    return {"table": table, "results": results}


def _bundled_report() -> dict:
    from .. import zoneinfo
    from ..teaching import BUNDLED_ZONEINFO, load_zoneinfo

    parsed, _source = load_zoneinfo(BUNDLED_ZONEINFO / "2.6.36-64cpu-thread.txt")
    return {"report": zoneinfo.build_report(parsed, "2010 capture")}


def _pcp_high_4g(_ctx) -> int:
    from ..page_alloc import setup_pageset, zone_batchsize

    return 256 * setup_pageset(zone_batchsize(4096 * 256))[0]


def _batch_64m(_ctx) -> int:
    from ..page_alloc import zone_batchsize

    return zone_batchsize(16384)


def _drift_mark_64(_ctx) -> int:
    from ..vmstat import drift_mark

    return drift_mark(1441, 1801, 2161, 98, 64)


def _threshold_64_2g(_ctx) -> int:
    from ..vmstat import calculate_threshold

    return calculate_threshold(2048 * 256, 64)


def _pressure_64(_ctx) -> int:
    from ..vmstat import calculate_pressure_threshold

    return calculate_pressure_threshold(1441, 1801, 64)


def _wmarks_5765(_ctx) -> list[int]:
    from ..page_alloc import setup_per_zone_wmarks

    return list(setup_per_zone_wmarks(5765, [4 << 20])[0])


def _atomic_row(ctx) -> dict:
    from ..teaching import gfp_contexts

    return next(r for r in gfp_contexts(ctx["config"]) if r["gfp"] == "GFP_ATOMIC")


def _onset(ctx) -> dict:
    r = ctx["result"]
    if r.episodes:
        return r.episodes[0].onset
    return {"counter": r.derived["wmark_high"]}


def _alone(ctx) -> frozenset[str]:
    results = ctx["results"]
    return frozenset(n for n in Patches.names() if not results[n].livelocked)


def _sockets_summary() -> dict:
    from ..accuracy import sockets_sweep, summarise

    return {"summary": summarise(sockets_sweep(sockets=(1, 4, 14), seeds=(1,), duration_ms=500))}


def _boundary_16() -> dict:
    from .. import sweep

    return {"boundary": sweep.kernel_boundary([16], [4096], patches="all")}


def _precomputed_map() -> dict:
    from .. import sweep

    return {"full": sweep.load_precomputed()}


def _stall_onsets(full) -> dict:
    """Per zone size, the fewest CPUs at which some seed stalls without patches (None: never)."""
    from .. import sweep

    return sweep.onset(
        full, sweep.stall_measure(full), where={"patches": "none"}, above=0, how="max"
    )


def _memory_moves_stall(ctx) -> str:
    full = ctx["full"]
    first = _stall_onsets(full)
    at = {z: n or 2 * full.cpus.max() for z, n in first.items()}  # never: beyond the grid
    small, big = min(at), max(at)
    return "more" if at[big] > at[small] else "fewer" if at[big] < at[small] else "same"


def _memory_moves_why(ctx) -> str:
    first = _stall_onsets(ctx["full"])
    small, big = min(first), max(first)
    return (
        f"some seed stalls from {first[small]} CPUs at {small} MiB, from {first[big]} at {big} "
        "MiB (None: never)"
    )


def _lines_part(ctx) -> bool:
    from .. import sweep

    full = ctx["full"]
    bf = sweep.kernel_boundary(
        sorted(full.cpus.unique()), sorted(full.zone_mib.unique()), patches="all"
    )
    return bool(((bf["percpu_drift_mark"] > 0) != (bf["max_drift"] > bf["tolerate_drift"])).any())


CHECKS: dict[str, Check] = {
    c.key: c
    for c in (
        Check(
            "00-simulated-ms",
            _const("The run above covered how many milliseconds of simulated time?"),
            lambda ctx: ctx["result"].simulated_ms,
            _const("one tick of the model is one millisecond; the config's duration_ms"),
            unit="ms",
            needs=("result",),
            example=_small_run,
        ),
        Check(
            "01-blocks-after-split",
            _const(
                "A zone holds one free order-10 block. You allocate one order-0 page. How many "
                "free blocks are there afterwards, all orders together?"
            ),
            _const(10),
            _const("one block on each of orders 0 to 9: 1 + 2 + 4 + … + 512 = 1023 pages"),
            unit="blocks",
        ),
        Check(
            "01-buddyinfo-pages",
            _const("/proc/buddyinfo shows 4 3 2 1 0 0 0 0 0 0 0. How many pages are free?"),
            _const(sum(n << order for order, n in enumerate([4, 3, 2, 1]))),
            _const("the sum of nr_free × 2^order: 4×1 + 3×2 + 2×4 + 1×8"),
            unit="pages",
        ),
        Check(
            "02-pcp-pages-256",
            _const(
                "A 256-CPU machine with a 4 GiB zone: how many free pages can sit on pcp lists "
                "at most (every CPU at high)?"
            ),
            _pcp_high_4g,
            _const("256 × high, where high = 6 × batch and batch comes from zone_batchsize"),
            unit="pages",
        ),
        Check(
            "02-batch-64m",
            _const("What is batch for a 64 MiB zone (16384 pages)?"),
            _batch_64m,
            _const("16384 / 1024 = 16; ÷ 4 = 4; rounddown_pow_of_two(4 + 2) − 1 = 3"),
            unit="pages",
        ),
        Check(
            "03-drift-mark-64",
            _const(
                "A 64-CPU node has min/low/high 1441/1801/2161 and threshold 98. What "
                "percpu_drift_mark does 2.6.36 set?"
            ),
            _drift_mark_64,
            _const("max drift 64 × 98 = 6272 > low − min = 360, so the mark is high + 6272"),
            unit="pages",
        ),
        Check(
            "03-threshold-64",
            _const("What is stat_threshold for 64 CPUs and a 2 GiB zone?"),
            _threshold_64_2g,
            _const("2 × fls(64) × (1 + fls(2048 / 128)) = 2 × 7 × (1 + 5), under the cap of 125"),
            unit="pages per CPU",
        ),
        Check(
            "03-over-report-1024",
            _const("How many MiB can the counter over-report on 1024 CPUs at threshold 125?"),
            _const(1024 * 125 * 4 // 1024),
            _const("1024 CPUs × 125 pages × 4 KiB"),
            unit="MiB",
        ),
        Check(
            "03-pressure-threshold",
            _const(
                "2.6.38 lowers the threshold while kswapd is awake to (low − min) / cpus. What "
                "is it for the 64-CPU node above?"
            ),
            _pressure_64,
            _const("(1801 − 1441) / 64 = 5.6, rounded down (and at least 1)"),
            unit="pages per CPU",
        ),
        Check(
            "04-wmarks-5765",
            _const(
                "A node's only zone has min_free_kbytes 5765. What are min/low/high (in "
                "pages)? Answer as min/low/high."
            ),
            _wmarks_5765,
            _const("min = 5765 >> 2; low = min + min/4; high = min + min/2"),
            kind="numbers",
            unit="pages",
        ),
        Check(
            "04-atomic-fails-at",
            lambda ctx: (
                f"With WMARK_MIN = {ctx['config'].derived().wmark_min}, at or below how many "
                "free pages (as read) does a GFP_ATOMIC slow-path attempt fail?"
            ),
            lambda ctx: _atomic_row(ctx)["fails_at_or_below"],
            _const(
                "min − min/2 for ALLOC_HIGH, then − a quarter for ALLOC_HARDER: about 3/8 of min"
            ),
            unit="pages",
            needs=("config",),
            example=_large_config,
        ),
        Check(
            "05-min-check-at-onset",
            lambda ctx: (
                f"At the onset the counter read {_onset(ctx)['counter']:,} pages and WMARK_MIN "
                f"is {ctx['result'].derived['wmark_min']:,}. Does a GFP_KERNEL task's "
                "slow-path check at MIN pass (yes/no)?"
            ),
            lambda ctx: _onset(ctx)["counter"] > ctx["result"].derived["wmark_min"],
            _const(
                "zone_watermark_ok fails only if free ≤ min; the check reads the counter, "
                "not the lists"
            ),
            kind="yesno",
            needs=("result",),
            example=_large_run,
            depends="the demo's first run (the key: the large machine, no patches, seed 1)",
        ),
        Check(
            "05-max-drift",
            _const("How far can the counter over-report on this machine (pages)?"),
            lambda ctx: ctx["config"].derived().max_drift,
            lambda ctx: (
                f"{ctx['config'].cpus} CPUs × threshold {ctx['config'].derived().stat_threshold}"
            ),
            unit="pages",
            needs=("config",),
            example=_large_run,
            depends="the demo's machine (the key: the large machine)",
        ),
        Check(
            "06-subsets-livelocked",
            _const(
                "How many of the eight patch subsets in the table livelocked (a second or more "
                "stalled)?"
            ),
            lambda ctx: sum(1 for row in ctx["table"] if row["livelocked"]),
            _const("count the rows marked livelocked"),
            unit="",
            needs=("table",),
            example=_ablation,
            depends="the ablation table of the large machine",
        ),
        Check(
            "06-patch-alone",
            _const(
                "Which single patch removes the livelock in this scenario on its own? (name, "
                "commit id or number; 'none' if no single one does)"
            ),
            _alone,
            _const("look for the rows with exactly one patch and livelock ms = 0"),
            kind="patches",
            needs=("results",),
            example=_ablation,
            depends="the ablation of the large machine",
        ),
        Check(
            "07-main-zone-drift",
            lambda ctx: (
                f"Your main zone ({ctx['report'].main_zone.label}) has "
                f"{ctx['report'].main_zone.cpus} CPUs and threshold "
                f"{ctx['report'].main_zone.threshold_used}. What is its worst-case drift in "
                "pages?"
            ),
            lambda ctx: ctx["report"].main_zone.max_drift,
            _const("CPUs × threshold"),
            unit="pages",
            needs=("report",),
            example=_bundled_report,
            depends="the learner's machine (the key: the 64-CPU node of the 2010 thread)",
        ),
        Check(
            "07-drift-mark-set",
            lambda ctx: (
                f"Its watermarks are min {ctx['report'].main_zone.min}, low "
                f"{ctx['report'].main_zone.low}, high {ctx['report'].main_zone.high}. Would "
                "2.6.36 set a drift mark (yes/no)?"
            ),
            lambda ctx: bool(ctx["report"].main_zone.exposed),
            lambda ctx: (
                f"drift {ctx['report'].main_zone.max_drift} against low − min = "
                f"{ctx['report'].main_zone.tolerate_drift}: a mark is set when the drift is larger"
            ),
            kind="yesno",
            needs=("report",),
            example=_bundled_report,
            depends="the learner's machine (the key: the 64-CPU node of the 2010 thread)",
        ),
        Check(
            "08-pressure-threshold-node3",
            _const(
                "Shaohua Li's node 3 (64 CPUs, min/low/high 1441/1801/2161): which "
                "stat_threshold does 2.6.38 install while kswapd is awake?"
            ),
            _pressure_64,
            _const("(1801 - 1441) / 64 = 360 / 64 = 5.6, rounded down (and 64 × it ≤ 360)"),
            unit="pages per CPU",
        ),
        Check(
            "08-snapshot-lines-14-sockets",
            _const(
                "On 14 sockets (112 CPUs online), how many other CPUs' cache lines does one "
                "snapshot read?"
            ),
            _const(14 * 8 - 1),
            _const("one per other online CPU: 7 on the same socket, 104 on other sockets"),
            unit="cache lines",
        ),
        Check(
            "08-check-cost-ratio",
            _const(
                "In this sweep, how many times more CPU time does 2.6.36 spend in watermark "
                "checks than 2.6.38 on 14 sockets? (predict first, then reveal)"
            ),
            lambda ctx: round(
                ctx["summary"][(14, "2.6.36")]["share"] / ctx["summary"][(14, "2.6.38")]["share"]
            ),
            _const("the changelog measured 11.66 % against 0.26 %: about 45 times"),
            unit="times",
            tolerance=0.5,
            needs=("summary",),
            example=_sockets_summary,
            depends="the notebook's short sockets sweep",
        ),
        Check(
            "09-drift-mark-16",
            _const("16 CPUs, 4 GiB zone, 2.6.36: is percpu_drift_mark set (yes/no)?"),
            lambda ctx: bool(ctx["boundary"]["percpu_drift_mark"][0, 0]),
            lambda ctx: (
                f"drift {ctx['boundary']['max_drift'][0, 0]} pages against low − min = "
                f"{ctx['boundary']['tolerate_drift'][0, 0]} pages"
            ),
            kind="yesno",
            needs=("boundary",),
            example=_boundary_16,
        ),
        Check(
            "09-memory-moves-stall",
            _const(
                "Does more memory move the unpatched stall to more CPUs or to fewer? "
                "(more/fewer/same)"
            ),
            _memory_moves_stall,
            _memory_moves_why,
            kind="text",
            needs=("full",),
            example=_precomputed_map,
            depends="the lecture's precomputed map",
        ),
        Check(
            "09-stall-from-cpus-4096",
            _const(
                "On the lecture's map, with no patch and a 4096 MiB zone, from how many CPUs "
                "does some seed stall?"
            ),
            lambda ctx: _stall_onsets(ctx["full"])[4096],
            _const("the stall row of the printout, at 4096 MiB"),
            unit="CPUs",
            needs=("full",),
            example=_precomputed_map,
            depends="the lecture's precomputed map",
        ),
        Check(
            "09-lines-part",
            _const(
                "On 2.6.36, do the two lines (drift > low − min; drift mark set) ever part? "
                "(yes/no)"
            ),
            _lines_part,
            _const(
                "refresh_zone_stat_thresholds sets the mark exactly when the drift exceeds "
                "low − min"
            ),
            kind="yesno",
            needs=("full",),
            example=_precomputed_map,
            depends="the lecture's precomputed map",
        ),
    )
}


# -------------------------------------------------------------------------------------------------
# Asking
# -------------------------------------------------------------------------------------------------

_RIGHT = "<span style='color:#1a7f37;font-weight:bold'>✓ Right.</span>"
_WRONG = "<span style='color:#b3261e;font-weight:bold'>✗ Not quite.</span>"


def _infer_kind(answer) -> str:
    if isinstance(answer, (bool, np.bool_)):
        return "yesno"
    if isinstance(answer, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(answer, (list, tuple)) and all(
        isinstance(a, (int, float, np.integer, np.floating)) for a in answer
    ):
        return "numbers"
    if isinstance(answer, (set, frozenset)):
        return "patches"
    if str(answer).strip().lower() in YES | NO:
        return "yesno"
    return "text"


def _shown(answer, kind: str, unit: str = "") -> str:
    """An answer as a learner would write it."""
    if kind == "yesno":
        truth = answer if isinstance(answer, (bool, np.bool_)) else read_yes_no(answer)
        return "yes" if truth else "no"
    if kind == "patches":
        names = [n for n in Patches.names() if n in answer]
        if not names:
            return "none"
        return ", ".join(
            f"patch {Patches.names().index(n) + 1} ({PATCH_INFO[n][0]} {n})" for n in names
        )
    if kind == "numbers":
        return " / ".join(f"{int(a):,}" if float(a).is_integer() else f"{a:g}" for a in answer)
    if kind == "number":
        text = f"{int(answer):,}" if float(answer).is_integer() else f"{float(answer):,g}"
        return f"{text} {unit}".strip()
    return str(answer)


class Question:
    """A question whose answer is revealed on demand (predict, then reveal).

    With widgets: a box for the learner's answer (Enter or the Check button checks it), and a
    Reveal button. Headless (handouts, tests): the question and a collapsed answer.

    Make one with :func:`ask`: ``ask("03-threshold-64")`` for a check of the notebooks
    (:data:`CHECKS`), or ``ask("your question", answer, "why")`` for one of your own.
    """

    def __init__(
        self,
        question: str,
        answer=None,
        explain: str = "",
        tolerance: float = 0.0,
        *,
        kind: str | None = None,
        unit: str = "",
    ):
        self.question = question
        self.answer = answer
        self.explain = explain
        self.tolerance = tolerance
        self.kind = kind or _infer_kind(answer)
        self.unit = unit
        self.feedback = None  # the last check: True, False or None
        self.note = ""  # why the last typed answer could not be read, if it could not
        self._text = None
        self._shown_answer = None

    # -- checking --------------------------------------------------------------------------------
    def check(self, text) -> bool:
        """Is ``text`` the answer? Numbers within ``tolerance`` (units and separators
        allowed), lists in any layout, yes/no in a few spellings, patches by any name."""
        self.note = ""
        kind = self.kind
        if kind == "number":
            value, self.note = read_number(text, self.unit)
            return value is not None and abs(value - float(self.answer)) <= self.tolerance
        if kind == "numbers":
            got = read_numbers(text)
            want = [float(a) for a in self.answer]
            if len(got) != len(want):
                self.note = f"type {len(want)} numbers"
                return False
            return all(abs(g - w) <= self.tolerance for g, w in zip(got, want, strict=True))
        if kind == "yesno":
            got = read_yes_no(text)
            if got is None:
                self.note = "answer yes or no"
                return False
            truth = (
                bool(self.answer)
                if isinstance(self.answer, (bool, np.bool_))
                else read_yes_no(self.answer)
            )
            return got == truth
        if kind == "patches":
            got = read_patches(text)
            if got is None:
                self.note = "name patches by name, commit id or number (e.g. 'patch 3')"
                return False
            return got == frozenset(self.answer)
        return " ".join(str(text).lower().split()) == " ".join(str(self.answer).lower().split())

    def answer_text(self) -> str:
        return _shown(self.answer, self.kind, self.unit)

    def _answer_html(self) -> str:
        shown = f"<b>{html.escape(self.answer_text())}</b>"
        return shown + (f" — {html.escape(self.explain)}" if self.explain else "")

    def _feedback_html(self, ok: bool) -> str:
        if ok:
            return _RIGHT
        hint = f" ({html.escape(self.note)})" if self.note else ""
        return f"{_WRONG}{hint} Try again, or reveal the answer."

    # -- display ---------------------------------------------------------------------------------
    def _question_html(self) -> str:
        return f"<p><b>Question.</b> {html.escape(self.question)}</p>"

    def widget(self):
        """The interactive form: the question, a box (Enter checks), Check and Reveal."""
        w = _widgets()
        self._text = w.HTML(self._question_html())
        # continuous_update=False: the value arrives (and is checked) when Enter is pressed
        box = w.Text(
            placeholder="your answer, then Enter",
            continuous_update=False,
            layout=w.Layout(width="16em"),
        )
        check = w.Button(description="Check")
        reveal = w.Button(description="Reveal the answer")
        self._shown_answer = w.HTML()

        def on_check(_=None):
            if not box.value.strip():
                return
            ok = self.check(box.value)
            self.feedback = ok
            self._shown_answer.value = self._feedback_html(ok)

        def on_reveal(_b):
            self._shown_answer.value = self._answer_html()

        box.observe(lambda _ch: on_check(), names="value")
        check.on_click(on_check)
        reveal.on_click(on_reveal)
        self.controls = {"answer": box, "check": check, "reveal": reveal}
        return w.VBox([self._text, w.HBox([box, check, reveal]), self._shown_answer])

    def _ipython_display_(self):
        from IPython.display import HTML, display

        if _headless():
            display(
                HTML(
                    f"{self._question_html()}<details><summary>Answer</summary>"
                    f"<p>{self._answer_html()}</p></details>"
                )
            )
            return
        display(self.widget())


class BankQuestion(Question):
    """A question of :data:`CHECKS`, with its context. A context value that is a demo still
    running is read when its run has finished: the question appears then."""

    def __init__(self, check: Check, context: dict):
        missing = [n for n in check.needs if n not in context and "demo" not in context]
        if missing:
            raise ValueError(
                f"ask({check.key!r}) needs {', '.join(f'{n}=…' for n in missing)} "
                "(the notebook's value of that name)"
            )
        unknown = set(context) - set(check.needs) - {"demo"}
        if unknown:
            raise ValueError(
                f"ask({check.key!r}) takes {', '.join(check.needs) or 'no values'}; "
                f"got {', '.join(sorted(unknown))}"
            )
        self.spec = check
        self.context = dict(context)
        super().__init__("", None, "", check.tolerance, kind=check.kind, unit=check.unit)
        self.ready = False
        self._resolve()

    def _demo_context(self, demo) -> dict | None:
        ctx = {}
        for name in self.spec.needs:
            if name == "result":
                if not demo.results or not demo.finished:
                    return None
                ctx["result"] = demo.results[0]
            elif name == "config":
                ctx["config"] = demo.sims[0].config if demo.sims else demo.config()
        return ctx

    def _resolve(self) -> bool:
        ctx = dict(self.context)
        demo = ctx.pop("demo", None)
        if demo is not None:
            from_demo = self._demo_context(demo)
            if from_demo is None:
                return False
            ctx = {**from_demo, **ctx}
        s = self.spec
        self.question = s.text(ctx)
        self.answer = s.answer(ctx)
        self.explain = s.explain(ctx)
        self.ready = True
        return True

    def refresh(self, demo) -> None:
        """Called by the demo when a run finishes: fill the question in (once)."""
        if self.ready or not self._resolve():
            return
        if self in getattr(demo, "_followers", []):
            demo._followers.remove(self)
        if self._text is not None:
            self._text.value = self._question_html()

    def _question_html(self) -> str:
        if not self.ready:
            return "<p><i>The question appears when the demo's run has finished.</i></p>"
        return super()._question_html()

    def check(self, text) -> bool:
        if not self.ready:
            self.note = "wait for the demo's run to finish"
            return False
        return super().check(text)

    def _answer_html(self) -> str:
        if not self.ready:
            return "<i>The demo's run has not finished yet.</i>"
        return super()._answer_html()

    def _ipython_display_(self):
        demo = self.context.get("demo")
        if not self.ready and demo is not None:
            demo._followers.append(self)
        super()._ipython_display_()


def ask(question: str, answer=None, explain: str = "", tolerance: float = 0.0, **context):
    """A learner check: shows the question; the answer stays hidden until revealed.

    ``ask("03-threshold-64")`` asks a check of the notebooks (:data:`CHECKS`), its answer
    computed in the package; values it needs from the notebook are passed by name
    (``ask("00-simulated-ms", result=result)``; a demo may stand in for a run or a config:
    ``ask("05-max-drift", demo=demo)``). ``ask("your question", answer, "why")`` asks one of
    your own.
    """
    if answer is None and question in CHECKS:
        return BankQuestion(CHECKS[question], context)
    if answer is None:
        known = ", ".join(sorted(CHECKS))
        raise ValueError(f"no learner check named {question!r}; known: {known}")
    if context:
        raise ValueError("values by name (result=…) are for the checks of the notebooks only")
    return Question(question, answer, explain, tolerance)


# -------------------------------------------------------------------------------------------------
# The facilitators' answer key
# -------------------------------------------------------------------------------------------------


def print_answer_key(log=print) -> None:
    """The answer key as text (``python -m allocsim.widgets answer-key``)."""
    for r in answer_key():
        log(f"[{r['notebook']}] {r['question']}\n     answer: {r['answer']}  ({r['why']})")
        if r["depends on"]:
            log(f"     depends on {r['depends on']}")


def answer_key(keys=None) -> list[dict]:
    """Every check (or those in ``keys``): notebook, question, answer, why, what it depends on.

    Checks that depend on a run or a machine are answered for the notebook's own default
    (the ``large`` machine, the 2010 capture); this runs those simulations (about 10 s).
    """
    rows = []
    cache: dict = {}
    for key, spec in CHECKS.items():
        if keys is not None and key not in keys:
            continue
        ctx = {}
        if spec.example is not None:
            if spec.example not in cache:
                cache[spec.example] = spec.example()
            ctx = {n: cache[spec.example][n] for n in spec.needs}
        q = BankQuestion(spec, ctx)
        rows.append(
            {
                "notebook": spec.notebook,
                "key": key,
                "question": q.question,
                "answer": q.answer_text(),
                "why": q.explain,
                "depends on": spec.depends,
            }
        )
    return rows


def answer_key_html(rows=None, *, title: str = "allocsim: answer key for facilitators") -> str:
    """The answer key as a standalone HTML page (the answer-key handout)."""
    rows = answer_key() if rows is None else rows
    body = []
    for nb in sorted({r["notebook"] for r in rows}):
        body.append(f"<h2>Notebook {nb}</h2><ol>")
        for r in (r for r in rows if r["notebook"] == nb):
            dep = (
                f"<br><small>Depends on {html.escape(r['depends on'])}.</small>"
                if r["depends on"]
                else ""
            )
            body.append(
                f"<li><p>{html.escape(r['question'])}</p><p><b>{html.escape(r['answer'])}</b>"
                f" — {html.escape(r['why'])}{dep}</p></li>"
            )
        body.append("</ol>")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.4}"
        "li{margin-bottom:.8em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>The learner checks of the notebooks (the "
        "<code>aw.ask(…)</code> cells), with their answers. The questions marked "
        "<b>Question.</b> in the notebooks' text carry their answers in a collapsed block."
        f"</p>{''.join(body)}</body></html>"
    )
