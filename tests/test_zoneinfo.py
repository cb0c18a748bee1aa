"""``allocsim.zoneinfo``: parsing /proc/zoneinfo and the 2.6.36 drift-exposure report.

Captures in ``allocsim/data/zoneinfo/`` (shipped with the package: notebook 07 falls back on them):

* ``6.18.44-fc-v669.txt``: this development machine's real ``/proc/zoneinfo`` (``uname -r``
  gave 6.18.44-fc-v669): 1 node, 2 CPUs, DMA/DMA32/Normal plus empty Movable and Device.
* ``2.6.36-two-nodes.txt``: hand-made 2.6.36-format file (``scanned``, ``all_unreclaimable``,
  ``count:``/``high:``/``batch:``/``vm stats threshold:``, no managed/high_min/high_max/promo),
  2 nodes, 4 CPUs; its numbers follow the 2.6.36 formulas.
* ``2.6.36-64cpu-thread.txt``: hand-made 2.6.36-format file of the 64-CPU node from the linux-mm
  thread "zone state overhead" (2010): min/low/high 1441/1801/2161, threshold 98.
* ``modern-empty-zones.txt``: hand-made 6.x-format file, 2 nodes, 4 CPUs, six empty zones, and
  node 0 captured while kswapd was awake (its DMA zone shows the pressure threshold 1).

Expected numbers are literals worked out by hand from the file; the arithmetic is in comments.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allocsim
from allocsim.page_alloc import setup_per_zone_wmarks
from allocsim.vmstat import calculate_pressure_threshold, calculate_threshold, drift_mark
from allocsim.zoneinfo import (
    PROG,
    PagesetInfo,
    ZoneinfoError,
    build_report,
    format_report,
    main,
    parse_zoneinfo,
    read_zoneinfo,
    report_to_dict,
    sim_overrides,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[1] / "allocsim" / "data" / "zoneinfo"
REAL = DATA / "6.18.44-fc-v669.txt"
OLD = DATA / "2.6.36-two-nodes.txt"
THREAD = DATA / "2.6.36-64cpu-thread.txt"
MODERN = DATA / "modern-empty-zones.txt"
ALL_CAPTURES = [REAL, OLD, THREAD, MODERN]


def _report(path: Path):
    return build_report(read_zoneinfo(str(path)), source=str(path))


def _zone(report, node: int, name: str):
    return next(z for z in report.zones if z.node == node and z.zone == name)


def _zone_info(info, node: int, name: str):
    return next(z for z in info.zones if z.node == node and z.name == name)


def _mini(extra_header: str = "", pageset: str | None = None, trailer: str = "") -> str:
    """A small valid 2.6.36-style file with one Normal zone and one CPU, to bend in tests."""
    if pageset is None:
        pageset = (
            "    cpu: 0\n              count: 3\n              high:  186\n"
            "              batch: 31\n  vm stats threshold: 24\n"
        )
    return (
        "Node 0, zone   Normal\n"
        "  pages free     1000\n"
        "        min      100\n"
        "        low      125\n"
        "        high     150\n"
        "        spanned  262144\n"
        "        present  262144\n"
        f"{extra_header}"
        "    nr_free_pages 1000\n"
        "        protection: (0, 0, 0, 0)\n"
        "  pagesets\n"
        f"{pageset}"
        f"  all_unreclaimable: 0\n{trailer}"
    )


# ---------------------------------------------------------------------------------------------
# Parsing the captures
# ---------------------------------------------------------------------------------------------


def test_parse_zoneinfo_reads_real_capture():
    """The real 6.18 capture parses into five zones with the values printed in the file."""
    info = read_zoneinfo(str(REAL))
    assert [(z.node, z.name) for z in info.zones] == [
        (0, "DMA"),
        (0, "DMA32"),
        (0, "Normal"),
        (0, "Movable"),
        (0, "Device"),
    ]
    assert info.unrecognised == ()
    normal = info.zones[2]
    assert (normal.pages_free, normal.min, normal.low, normal.high, normal.promo) == (
        86688,
        5678,
        7097,
        8516,
        9935,
    )
    assert (normal.spanned, normal.present, normal.managed) == (5505024, 5505024, 393216)
    assert normal.protection == (0, 0, 0, 0, 0)
    assert normal.pagesets == (
        PagesetInfo(
            cpu=0,
            count=1220,
            high=3548,
            batch=63,
            high_min=3548,
            high_max=24576,
            vm_stats_threshold=20,
        ),
        PagesetInfo(
            cpu=1,
            count=3569,
            high=3794,
            batch=63,
            high_min=3548,
            high_max=24576,
            vm_stats_threshold=20,
        ),
    )
    assert normal.stats["nr_free_pages"] == 86688
    assert normal.stats["start_pfn"] == 1048576
    dma = info.zones[0]
    assert dma.node_stats["nr_file_pages"] > 0  # the node's block sits on its first zone
    assert dma.protection == (0, 3019, 4555, 4555, 4555)


def test_parse_zoneinfo_reads_old_two_node_file():
    """The 2.6.36-format file gives four zones on two nodes with no modern fields."""
    info = read_zoneinfo(str(OLD))
    assert [(z.node, z.name) for z in info.zones] == [
        (0, "DMA"),
        (0, "DMA32"),
        (0, "Normal"),
        (1, "Normal"),
    ]
    for zone in info.zones:
        assert zone.managed is None and zone.promo is None
        assert len(zone.pagesets) == 4
        assert all(p.high_min is None and p.high_max is None for p in zone.pagesets)
        assert zone.stats["scanned"] == 0 and zone.stats["inactive_ratio"] >= 1
    dma32 = info.zones[1]
    assert [p.count for p in dma32.pagesets] == [31, 150, 0, 185]
    assert {(p.high, p.batch, p.vm_stats_threshold) for p in dma32.pagesets} == {(186, 31, 36)}
    assert info.zones[0].protection == (0, 3495, 7591, 7591)


def test_parse_zoneinfo_keeps_empty_zones_without_pagesets():
    """Empty modern zones (present 0) parse with no pagesets and their protection line."""
    info = read_zoneinfo(str(MODERN))
    empty = [z for z in info.zones if not z.populated]
    assert [(z.node, z.name) for z in empty] == [
        (0, "Movable"),
        (0, "Device"),
        (1, "DMA"),
        (1, "DMA32"),
        (1, "Movable"),
        (1, "Device"),
    ]
    assert all(z.pagesets == () for z in empty)
    assert _zone_info(info, 1, "DMA").protection == (0, 0, 16128, 16128, 16128)


def test_parse_zoneinfo_reads_pre_2_6_24_hot_cold_lists():
    """Kernels before 2.6.24 print ``cpu: N pcp: J`` twice per CPU; both lists are kept."""
    pageset = ""
    for cpu in range(2):
        for pcp, (count, high, batch) in enumerate([(10, 186, 31), (2, 62, 15)]):
            pageset += (
                f"    cpu: {cpu} pcp: {pcp}\n              count: {count}\n"
                f"              high:  {high}\n              batch: {batch}\n"
            )
        pageset += "  vm stats threshold: 24\n"
    info = parse_zoneinfo(_mini(pageset=pageset))
    zone = info.zones[0]
    assert [(p.cpu, p.pcp) for p in zone.pagesets] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    report = build_report(info)
    assert report.zones[0].cpus == 2  # CPUs counted once, not once per list
    assert report.zones[0].pcp_pages == 24  # 10 + 2 + 10 + 2
    assert report.zones[0].threshold_file == 24


def test_parse_zoneinfo_tolerates_unknown_lines():
    """Unknown lines anywhere are skipped and listed; unknown counters become zone stats."""
    text = "some banner\n" + _mini(
        extra_header="        frobs    7\n  <<< a line no kernel prints >>>\n",
        pageset=(
            "    cpu: 0\n              count: 3\n              high:  186\n"
            "              free_factor: 2\n              batch: 31\n"
            "  vm stats threshold: 24\n"
        ),
        trailer="  future_field: 12\n",
    )
    info = parse_zoneinfo(text.replace("\n", "\r\n"))
    zone = info.zones[0]
    assert zone.stats["frobs"] == 7 and zone.stats["future_field"] == 12
    assert zone.pagesets[0].batch == 31
    assert [n for n, _ in info.unrecognised] == [1, 10, 17]
    assert "unrecognised line" in " ".join(build_report(info).notes)


@pytest.mark.parametrize(
    "text, lineno, fragment",
    [
        (_mini().replace("min      100", "min      abc"), 3, "expected an integer"),
        (_mini(extra_header="        min      7\n"), 8, "second 'min' line"),
        (_mini().replace("low      125", "low      99"), 4, "below min"),
        (_mini().replace("high     150", "high     120"), 5, "below low"),
        (_mini(extra_header="        present  -5\n"), 8, "outside"),
        (_mini(extra_header="              count: 3\n"), 8, "outside a 'cpu: N' block"),
        (_mini().replace("cpu: 0", "cpu: zero"), 11, "expected 'cpu: N'"),
        (_mini().replace("protection: (0, 0, 0, 0)", "protection: (0, 0"), 9, "protection"),
        (_mini().replace("threshold: 24", "threshold: 300"), 15, "outside [0, 125]"),
        (_mini().replace("              batch: 31\n", ""), 11, "no 'batch' line"),
        (_mini().replace("Node 0, zone   Normal", "Node x, zone Normal"), 1, "Node N, zone NAME"),
        (_mini().replace("        present  262144\n", ""), 1, "no 'present' line"),
        (_mini(pageset=""), 1, "no 'cpu: N' pageset"),
        (_mini() + _mini(), 17, "zone listed twice"),
        ("        min      100\n" + _mini(), 1, "before the first"),
        (
            _mini(
                pageset="    cpu: 0\n              count: 1\n              high:  1\n"
                "              batch: 1\n    cpu: 0\n"
            ),
            15,
            "listed twice",
        ),
        (_mini().replace("min      100", "min      " + "9" * 30), 3, "expected an integer"),
    ],
    ids=[
        "not-a-number",
        "duplicate-min",
        "low-below-min",
        "high-below-low",
        "negative-present",
        "count-outside-cpu",
        "bad-cpu",
        "bad-protection",
        "threshold-too-big",
        "missing-batch",
        "bad-node-line",
        "missing-present",
        "no-pagesets",
        "duplicate-zone",
        "field-before-zone",
        "duplicate-cpu",
        "huge-number",
    ],
)
def test_parse_zoneinfo_rejects_malformed_line(text, lineno, fragment):
    """A malformed line raises ZoneinfoError naming its line number and quoting the line."""
    with pytest.raises(ZoneinfoError) as excinfo:
        parse_zoneinfo(text)
    err = excinfo.value
    assert err.lineno == lineno
    assert fragment in str(err)
    assert str(err).startswith(f"line {lineno}: {err.line[:120]!r}")
    assert err.line == text.split("\n")[lineno - 1]
    assert isinstance(err, ValueError)


def test_parse_zoneinfo_error_survives_pickling():
    """A ZoneinfoError pickles and unpickles with its line number, line and message intact."""
    with pytest.raises(ZoneinfoError) as excinfo:
        parse_zoneinfo(_mini().replace("min      100", "min      abc"))
    copy = pickle.loads(pickle.dumps(excinfo.value))
    assert (copy.lineno, copy.line, str(copy)) == (3, "        min      abc", str(excinfo.value))


@pytest.mark.parametrize(
    "text, lineno", [("", 1), ("\n\n", 1), ("hello\nworld\n", 1), ("\n   \nnot zoneinfo", 3)]
)
def test_parse_zoneinfo_rejects_text_without_zones(text, lineno):
    """Text with no ``Node N, zone NAME`` line is rejected at its first non-blank line."""
    with pytest.raises(ZoneinfoError, match="no 'Node N, zone NAME' line") as excinfo:
        parse_zoneinfo(text)
    assert excinfo.value.lineno == lineno


def test_parse_zoneinfo_rejects_file_of_empty_zones():
    """A file whose zones all have present 0 has nothing to report and is rejected."""
    empty = (
        "Node 0, zone  Movable\n  pages free     0\n        min      0\n        low      0\n"
        "        high     0\n        spanned  0\n        present  0\n"
        "        protection: (0, 0, 0, 0)\n"
    )
    with pytest.raises(ZoneinfoError, match="no zone has present pages"):
        parse_zoneinfo(empty)


# ---------------------------------------------------------------------------------------------
# The exposure report, checked by hand
# ---------------------------------------------------------------------------------------------


def test_build_report_reproduces_thread_numbers():
    """The 64-CPU node of the 2010 linux-mm thread gives drift 6272, tolerance 360, mark 8433."""
    report = _report(THREAD)
    z = report.main_zone
    assert (z.node, z.zone, z.cpus) == (0, "Normal", 64)
    assert z.threshold_file == 98 and z.threshold_used == 98 and z.threshold_source == "file"
    # 2.6.36 formula: mem = 1835008 >> 15 = 56, fls(56) = 6, fls(64) = 7: 2 * 7 * (1 + 6) = 98
    assert z.threshold_formula == 98
    assert z.tolerate_drift == 360  # 1801 - 1441
    assert z.max_drift == 6272  # 64 * 98
    assert z.exposed is True  # 6272 > 360
    assert z.drift_mark == 8433  # 2161 + 6272
    assert z.pressure_threshold == 5  # min(125, max(1, 360 / 64 = 5))
    assert z.pcp_pages == 6150  # sum of the 64 'count:' lines of the Normal zone
    assert z.pcp_high_total == 11904  # 64 * 186


def test_build_report_matches_hand_check_of_old_file():
    """Every report number of the 2.6.36 two-node file matches arithmetic done by hand."""
    report = _report(OLD)
    assert report.main_zone.label == "Node 1, zone Normal"  # 2064384 present, the largest
    z = report.main_zone
    # 4 pagesets listed (cpu 0..3)
    assert z.cpus == 4
    # mem = 2064384 >> 15 = 63, fls(63) = 6, fls(4) = 3: 2 * 3 * (1 + 6) = 42 (file says 42)
    assert (z.threshold_file, z.threshold_formula, z.threshold_used) == (42, 42, 42)
    assert z.tolerate_drift == 515  # low - min = 2575 - 2060
    assert z.max_drift == 168  # 4 CPUs * 42
    assert z.exposed is False  # 168 <= 515
    assert z.drift_mark == 0  # not exposed: 2.6.36 leaves percpu_drift_mark unset
    assert z.pcp_pages == 338  # counts 120 + 33 + 0 + 185
    assert z.pressure_threshold == 125  # min(125, max(1, 515 / 4 = 128))
    dma = _zone(report, 0, "DMA")
    # mem = 3921 >> 15 = 0, fls(0) = 0: 2 * 3 * (1 + 0) = 6
    assert dma.threshold_formula == 6 and dma.threshold_used == 6
    assert dma.tolerate_drift == 0  # 3 - 3
    assert dma.max_drift == 24 and dma.exposed is True  # 4 * 6 = 24 > 0
    assert dma.drift_mark == 28  # high 4 + 24
    assert dma.pressure_threshold == 1  # max(1, 0 / 4)
    assert report.sim_overrides() == {
        "cpus": 4,
        "zone_mib": 8064,  # 2064384 pages * 4 KiB = 8257536 KiB = 8064 MiB
        "min_free_kbytes": 8240,  # min 2060 pages * 4 KiB
        "pcp_high": 186,  # first pageset: high 186, batch 31
        "pcp_batch": 31,
        "stat_threshold": 42,
    }


def test_build_report_matches_hand_check_of_real_capture():
    """The report on this machine's capture matches numbers worked out by hand from the file."""
    report = _report(REAL)
    z = report.main_zone
    assert z.label == "Node 0, zone Normal"  # present 5505024 > DMA32 782336 > DMA 3998
    assert z.cpus == 2
    # 2.6.36 from present: mem = 5505024 >> 15 = 168, fls(168) = 8, fls(2) = 2: 2*2*9 = 36
    assert z.threshold_formula == 36
    # same formula on managed: 393216 >> 15 = 12, fls(12) = 4: 2 * 2 * 5 = 20 = the file's value
    assert z.threshold_formula_managed == 20
    assert z.threshold_file == 20 and z.threshold_used == 20
    assert z.tolerate_drift == 1419  # 7097 - 5678
    assert z.max_drift == 40  # 2 * 20
    assert z.drift_mark == 0  # 40 <= 1419
    assert z.pcp_pages == 4789  # 1220 + 3569
    assert z.pressure_threshold == 125  # min(125, 1419 / 2 = 709)
    assert report.sim_overrides() == {
        "cpus": 2,
        "zone_mib": 21504,  # 5505024 / 256 pages per MiB
        "min_free_kbytes": 22712,  # 5678 * 4
        "pcp_high": 3548,
        "pcp_batch": 63,
        "stat_threshold": 20,
    }


def test_build_report_agrees_with_vmstat_formulas_on_every_capture():
    """Each populated zone's numbers equal the allocsim.vmstat formulas on the file's values."""
    for path in ALL_CAPTURES:
        for z in _report(path).zones:
            if not z.populated:
                continue
            assert z.threshold_formula == calculate_threshold(z.present, z.cpus)
            assert z.max_drift == z.cpus * z.threshold_used
            assert z.exposed == (z.max_drift > z.low - z.min)
            assert z.drift_mark == drift_mark(z.min, z.low, z.high, z.threshold_used, z.cpus)
            assert z.pressure_threshold == calculate_pressure_threshold(z.min, z.low, z.cpus)


def test_build_report_gives_none_for_empty_zones():
    """Empty zones report zero CPUs and None for every number that needs pages or CPUs."""
    report = _report(MODERN)
    assert report.main_zone.label == "Node 1, zone Normal"  # 4194304 present pages
    empty = _zone(report, 1, "DMA")
    assert empty.cpus == 0 and empty.pcp_pages == 0
    assert (
        empty.threshold_used,
        empty.max_drift,
        empty.drift_mark,
        empty.exposed,
        empty.pressure_threshold,
    ) == (None, None, None, None, None)
    with pytest.raises(ValueError, match="empty"):
        report.sim_overrides(empty)


def test_build_report_falls_back_to_formula_without_threshold_lines():
    """Without ``vm stats threshold`` lines the report uses and says it uses the 2.6.36 formula."""
    text = _mini().replace("  vm stats threshold: 24\n", "")
    report = build_report(parse_zoneinfo(text))
    z = report.main_zone
    # mem = 262144 >> 15 = 8, fls(8) = 4, fls(1) = 1: 2 * 1 * (1 + 4) = 10
    assert z.threshold_file is None and z.threshold_used == 10
    assert z.threshold_source == "2.6.36 formula"
    assert report.sim_overrides()["stat_threshold"] is None
    assert any("calculate_threshold" in n for n in report.notes)


def test_build_report_notes_modern_differences():
    """The modern capture's notes name managed pages, pcp auto-tuning, spacing and pressure."""
    report = _report(MODERN)
    text = " ".join(report.notes)
    for phrase in (
        "managed pages",
        "high_min and high_max",
        "watermark_scale_factor",
        "pressure threshold",
        "zone_watermark_ok_safe",
        "Empty zones",
    ):
        assert phrase in text
    dma = _zone(report, 0, "DMA")  # node 0 captured with kswapd awake
    assert dma.threshold_file == 1 and dma.threshold_formula_managed == 6
    assert any("kswapd was probably awake" in n for n in dma.notes)
    node1 = report.main_zone
    assert any("calculate_normal_threshold" in n for n in node1.notes)  # 48 from managed


def test_build_report_notes_nothing_modern_for_old_file():
    """A 2.6.36-format file that follows the 2.6.36 formulas gets no zone-level caveats."""
    report = _report(OLD)
    assert all(z.notes == () for z in report.zones)
    assert any("Older format" in n for n in report.notes)
    assert not any("high_min" in n for n in report.notes)


# ---------------------------------------------------------------------------------------------
# Simulation settings
# ---------------------------------------------------------------------------------------------


def test_sim_overrides_describes_thread_machine():
    """The 64-CPU capture yields the settings of a 64-CPU, 7 GiB zone with the file's min."""
    report = _report(THREAD)
    assert sim_overrides(report) == {
        "cpus": 64,
        "zone_mib": 7168,  # 1835008 pages / 256 pages per MiB
        "min_free_kbytes": 5764,  # 1441 pages * 4 KiB
        "pcp_high": 186,
        "pcp_batch": 31,
        "stat_threshold": 98,
    }


def test_sim_overrides_reproduces_min_watermark():
    """A one-zone setup_per_zone_wmarks with the suggested min_free_kbytes gives the file's min."""
    for path in ALL_CAPTURES:
        report = _report(path)
        for index, z in enumerate(report.zones):
            if not z.populated:
                continue
            s = sim_overrides(report, index)
            present = s["zone_mib"] * 256
            assert setup_per_zone_wmarks(s["min_free_kbytes"], [present])[0][0] == z.min


def test_sim_overrides_clamps_batch_and_size():
    """Batch 0 becomes 1, and a zone under 1 MiB still asks for at least 1 MiB."""
    text = (
        _mini(
            pageset="    cpu: 0\n              count: 0\n              high:  0\n"
            "              batch: 0\n"
        )
        .replace("present  262144", "present  100")
        .replace("spanned  262144", "spanned  100")
    )
    overrides = build_report(parse_zoneinfo(text)).sim_overrides()
    assert overrides["pcp_batch"] == 1 and overrides["pcp_high"] == 0
    assert overrides["zone_mib"] == 1  # 100 pages = 400 KiB, rounded down 0, raised to 1


# ---------------------------------------------------------------------------------------------
# Presentation
# ---------------------------------------------------------------------------------------------


def test_format_report_shows_numbers_and_settings():
    """The text report names the main zone, the drift numbers and the simulation settings."""
    text = format_report(_report(THREAD))
    assert "main zone: Node 0, zone Normal" in text
    assert "64 CPUs x 98 = 6272 pages" in text
    assert "low - min = 360: EXPOSED" in text
    assert "drift mark     8433" in text
    assert "2.6.38 pressure threshold  5 per CPU" in text
    assert "min_free_kbytes  5764" in text
    assert "report uses 98 (file)" in text


def test_format_report_lists_empty_zones_briefly():
    """Empty zones get a single line in the text report."""
    text = format_report(_report(MODERN))
    assert "Node 1, zone DMA32: empty (present 0), no pagesets" in text


def test_report_to_dict_round_trips_through_json():
    """The dict form is JSON-serialisable and carries zones, main zone, settings and notes."""
    for path in ALL_CAPTURES:
        report = _report(path)
        data = json.loads(json.dumps(report_to_dict(report)))
        assert data["main_zone"] == report.main_zone.label
        assert data["sim_overrides"] == report.sim_overrides()
        assert len(data["zones"]) == len(report.zones)
        assert data["notes"] == list(report.notes)
    data = report_to_dict(_report(THREAD))
    assert data["zones"][1]["drift_mark"] == 8433 and data["zones"][1]["label"] == (
        "Node 0, zone Normal"
    )


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def test_main_prints_report(capsys):
    """``main([PATH])`` prints the text report and returns 0."""
    assert main([str(OLD)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{OLD}: 4 zones (4 populated) on 2 node(s)")
    assert "main zone: Node 1, zone Normal" in out and err == ""


def test_main_prints_json(capsys):
    """``main([PATH, '--json'])`` prints the report as JSON."""
    assert main([str(THREAD), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sim_overrides"]["stat_threshold"] == 98


def test_main_reports_malformed_file_in_one_line(tmp_path, capsys):
    """A malformed file gives exit status 2 and one stderr line naming the line number."""
    bad = tmp_path / "zoneinfo"
    bad.write_text(_mini().replace("low      125", "low      1x5"))
    assert main([str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"{PROG}: {bad}: line 4: '        low      1x5': ")


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p / "missing",
        lambda p: p,  # a directory
    ],
)
def test_main_reports_unreadable_file(tmp_path, capsys, make):
    """A missing file or a directory gives exit status 2 and a one-line reason."""
    path = make(tmp_path)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: cannot read {path}: ") and err.count("\n") == 1


def test_main_reports_binary_file(tmp_path, capsys):
    """A file that is not UTF-8 gives exit status 2 and a one-line reason."""
    path = tmp_path / "blob"
    path.write_bytes(b"Node 0, zone DMA\n\xff\xfe\x00garbage\n")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "not UTF-8" in err and err.count("\n") == 1


def test_main_returns_argparse_status(capsys):
    """``--help`` returns 0 and an unknown option returns 2, without raising SystemExit."""
    assert main(["--help"]) == 0
    assert PROG in capsys.readouterr().out
    assert main(["--bogus"]) == 2
    assert "usage: python -m allocsim zoneinfo" in capsys.readouterr().err


@pytest.mark.skipif(not os.access("/proc/zoneinfo", os.R_OK), reason="no /proc/zoneinfo here")
def test_main_reads_proc_zoneinfo_by_default(capsys):
    """With no path, ``main`` reads this machine's /proc/zoneinfo."""
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("/proc/zoneinfo: ")


_SCRIPT = "import sys; from allocsim.zoneinfo import main; sys.exit(main(sys.argv[1:]))"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=120,
    )


def test_main_runs_as_subprocess():
    """In a fresh interpreter the CLI prints the report for a good file and exits 0."""
    result = _run(str(MODERN))
    assert result.returncode == 0, result.stderr
    assert "main zone: Node 1, zone Normal" in result.stdout


def test_main_fails_cleanly_as_subprocess(tmp_path):
    """In a fresh interpreter a malformed file exits 2 with one stderr line and no traceback."""
    bad = tmp_path / "zoneinfo"
    bad.write_text("Node 0, zone Normal\n  pages free  lots\n")
    result = _run(str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "line 2: '  pages free  lots'" in result.stderr


# ---------------------------------------------------------------------------------------------
# Property-based: garbage never raises anything but ZoneinfoError
# ---------------------------------------------------------------------------------------------

_REAL_LINES = REAL.read_text().split("\n")
_ALL_LINES = sorted({line for path in ALL_CAPTURES for line in path.read_text().split("\n")})


def _everything(text: str) -> None:
    """Run the whole pipeline; only ZoneinfoError may escape, and it must be well formed."""
    try:
        info = parse_zoneinfo(text)
    except ZoneinfoError as exc:
        assert str(exc).startswith(f"line {exc.lineno}: ")
        assert "\n" not in str(exc)
        assert 1 <= exc.lineno <= text.count("\n") + 1
        return
    report = build_report(info, source="fuzz")
    format_report(report)
    json.dumps(report_to_dict(report))
    report.sim_overrides()


_FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_numbers = st.one_of(st.integers(-10, 10), st.integers(-(2**70), 2**70)).map(str)
_line = st.one_of(
    st.text(max_size=60),
    st.sampled_from(_ALL_LINES),
    st.builds(
        lambda key, n: f"  {key} {n}",
        st.sampled_from(
            [
                "pages free",
                "min",
                "low",
                "high",
                "promo",
                "spanned",
                "present",
                "managed",
                "count:",
                "high:",
                "batch:",
                "cpu:",
                "vm stats threshold:",
                "protection:",
                "high_min:",
                "high_max:",
                "nr_free_pages",
            ]
        ),
        _numbers,
    ),
)


@_FUZZ
@given(st.text())
def test_parse_zoneinfo_survives_random_text(text):
    """Arbitrary text never raises anything but ZoneinfoError."""
    _everything(text)


@_FUZZ
@given(st.sampled_from(["", "Node 0, zone   Normal"]), st.lists(_line, max_size=80))
def test_parse_zoneinfo_survives_random_zoneinfo_like_lines(header, lines):
    """Random mixes of zoneinfo-looking lines never raise anything but ZoneinfoError."""
    _everything("\n".join([header, *lines]))


@st.composite
def _mutated_capture(draw):
    lines = list(_REAL_LINES)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(
            st.sampled_from(
                [
                    "delete",
                    "delete",
                    "swap",
                    "duplicate",
                    "number",
                    "number",
                    "insert",
                    "char",
                    "char",
                    "shuffle-window",
                    "shuffle-window",
                    "shuffle",
                ]
            )
        )
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            lines.append(draw(_line))
        elif op == "delete":
            del lines[i]
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif op == "number":
            head = lines[i].rstrip("0123456789-")
            lines[i] = head + draw(_numbers)
        elif op == "insert":
            lines.insert(i, draw(_line))
        elif op == "char" and lines[i]:
            k = draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:k] + draw(st.characters()) + lines[i][k + 1 :]
        elif op == "shuffle-window":
            j = min(len(lines), i + draw(st.integers(2, 12)))
            lines[i:j] = draw(st.permutations(lines[i:j]))
        elif op == "shuffle":
            lines = draw(st.permutations(lines))
    return "\n".join(lines)


@_FUZZ
@given(_mutated_capture())
def test_parse_zoneinfo_survives_mutated_capture(text):
    """Deleting, swapping, duplicating, shuffling or corrupting lines of the real capture
    never raises anything but ZoneinfoError."""
    _everything(text)


@st.composite
def _generated_zone(draw):
    """A random but well-formed populated zone in 2.6.36 or modern format, with its numbers."""
    modern = draw(st.booleans())
    present = draw(st.integers(1, 2**40))
    wmin = draw(st.integers(0, 2**20))
    low = wmin + draw(st.integers(0, 2**16))
    high = low + draw(st.integers(0, 2**16))
    cpus = draw(st.integers(1, 8))
    threshold = draw(st.one_of(st.none(), st.integers(0, 125)))
    counts = draw(st.lists(st.integers(0, 2**20), min_size=cpus, max_size=cpus))
    text = [
        f"Node {draw(st.integers(0, 63))}, zone {draw(st.sampled_from(['DMA', 'Normal']))}",
        f"  pages free     {draw(st.integers(0, 2**40))}",
        f"        min      {wmin}",
        f"        low      {low}",
        f"        high     {high}",
        f"        spanned  {present}",
        f"        present  {present}",
    ]
    if modern:
        text.append(f"        managed  {draw(st.integers(0, present))}")
    text += ["        protection: (0, 0, 0, 0)", "  pagesets"]
    for cpu, count in enumerate(counts):
        text += [
            f"    cpu: {cpu}",
            f"              count: {count}",
            "              high:  186",
            "              batch: 31",
        ]
        if modern:
            text += ["              high_min: 10", "              high_max: 400"]
        if threshold is not None:
            text.append(f"  vm stats threshold: {threshold}")
    # every kernel ends a populated zone with lines after its pagesets
    text.append("  node_unreclaimable:  0" if modern else "  all_unreclaimable: 0")
    text.append("  start_pfn:           4096")
    return "\n".join(text) + "\n", (present, wmin, low, high, cpus, threshold, sum(counts))


@settings(max_examples=200, deadline=None)
@given(_generated_zone())
def test_build_report_generated_zone_numbers(case):
    """On random well-formed zones the report equals the vmstat formulas on the file's values."""
    text, (present, wmin, low, high, cpus, threshold, pcp) = case
    z = build_report(parse_zoneinfo(text)).main_zone
    used = threshold if threshold is not None else calculate_threshold(present, cpus)
    assert (z.present, z.min, z.low, z.high, z.cpus, z.pcp_pages) == (
        present,
        wmin,
        low,
        high,
        cpus,
        pcp,
    )
    assert z.threshold_used == used
    assert z.max_drift == cpus * used
    assert z.drift_mark == drift_mark(wmin, low, high, used, cpus)
    assert z.pressure_threshold == calculate_pressure_threshold(wmin, low, cpus)


@pytest.mark.parametrize("capture", [REAL, OLD, THREAD, MODERN])
def test_config_like_builds_a_runnable_machine_from_each_capture(capture):
    """Every capture's main zone becomes a valid SimConfig (values clamped, each clamp noted)."""
    from allocsim.sim import Simulation
    from allocsim.teaching import config_like

    report = build_report(read_zoneinfo(str(capture)))
    overrides = report.sim_overrides()
    cfg, fitted, notes = config_like(overrides, duration_ms=50)
    assert cfg.cpus == overrides["cpus"]
    for key, value in fitted.items():
        if value != overrides.get(key, value):
            assert any(key in n for n in notes), (key, notes)
    Simulation(cfg).run()


def test_config_like_reproduces_the_thread_machine():
    """The 64-CPU capture from the 2010 thread gives its min watermark and threshold back."""
    from allocsim.teaching import config_like

    cfg, _, notes = config_like(build_report(read_zoneinfo(str(THREAD))).sim_overrides())
    d = cfg.derived()
    assert cfg.cpus == 64 and d.stat_threshold == 98 and d.wmark_min == 1441, notes


def test_bundled_captures_ship_with_the_package():
    """The captures notebook 07 falls back on are package data, found without the tests/."""
    from allocsim.teaching import BUNDLED_ZONEINFO, load_zoneinfo

    assert BUNDLED_ZONEINFO.is_relative_to(Path(allocsim.__file__).parent)
    parsed, source = load_zoneinfo(BUNDLED_ZONEINFO / "2.6.36-64cpu-thread.txt")
    assert "64cpu" in source
