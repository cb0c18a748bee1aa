"""Issue 15: real /proc/zoneinfo files from 2.6.13 to 6.18, cut files, and bounded reads.

The corpus is ``tests/data/zoneinfo/`` (sources and kernel versions in its README) plus the
captures bundled in ``allocsim/data/zoneinfo/``. Expected CPU counts are what each source says
about its machine, not what the parser happens to print.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocsim.config import SimConfig
from allocsim.sim import Simulation
from allocsim.teaching import config_like
from allocsim.zoneinfo import (
    MAX_BYTES,
    PROG,
    ZoneinfoError,
    ZoneinfoReadError,
    build_report,
    fit_sim_settings,
    format_report,
    main,
    parse_zoneinfo,
    read_zoneinfo,
    report_to_dict,
)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "zoneinfo"
BUNDLED = ROOT / "allocsim" / "data" / "zoneinfo"
ALL = sorted(CORPUS.glob("*.txt")) + sorted(BUNDLED.glob("*.txt"))

# file -> (kernel, online CPUs of the machine, inferred?, main zone, populated zones)
EXPECTED = {
    "2.6.13-4node-x86_64.txt": ("2.6.13", 4, True, "Node 3, zone Normal", 5),
    "2.6.15-rc2-2node-kswapd.txt": ("2.6.15-rc2", 2, True, "Node 1, zone Normal", 3),
    "2.6.20-rc5-ppc64-2node.txt": ("2.6.20-rc5", 2, True, "Node 0, zone DMA", 2),
    "2.6.21-amd64-up.txt": ("2.6.21", 1, True, "Node 0, zone DMA32", 2),
    "2.6.21-i386-highmem.txt": ("2.6.21", 4, True, "Node 0, zone HighMem", 3),
    "3.6.3-fc17-12cpu.txt": ("3.6.3", 12, False, "Node 0, zone Normal", 3),
    "4.11-rc5-ppc64-hotplug.txt": ("4.11-rc5", 1, False, "Node 0, zone DMA", 2),
    "4.14.65-arm-highmem.txt": ("4.14.65", 4, False, "Node 0, zone HighMem", 2),
    "5.x-24cpu-charm-helpers.txt": ("5.x", 24, False, "Node 0, zone Normal", 3),
    "6.18.44-fc-v669.txt": ("6.18.44", 2, False, "Node 0, zone Normal", 3),
}


def _report(path: Path):
    return build_report(read_zoneinfo(str(path)), source=str(path))


# ---------------------------------------------------------------------------------------------
# The corpus parses, with the right CPU count or an explicit "inferred" note
# ---------------------------------------------------------------------------------------------


def test_corpus_covers_every_era():
    """The corpus has a file for each of 2.6.1x, 2.6.2x, 3.x, 4.x, 5.x and 6.x, each documented."""
    readme = (CORPUS / "README.md").read_text()
    for path in CORPUS.glob("*.txt"):
        assert f"`{path.name}`" in readme, path.name
    eras = {EXPECTED[name][0].split(".")[0] + "." + EXPECTED[name][0].split(".")[1][:1]
            for name in EXPECTED}  # fmt: skip
    assert {"2.6", "3.6", "4.1", "5.x", "6.1"} <= eras
    assert {"2.6.13", "2.6.21"} <= {v[0] for v in EXPECTED.values()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gives_the_machine_cpu_count(name):
    """Each real capture parses without warnings or unknown lines, with the source's CPU count,
    marked inferred exactly for the hot/cold format, and its main zone."""
    path = CORPUS / name if (CORPUS / name).exists() else BUNDLED / name
    _, cpus, inferred, main_zone, populated = EXPECTED[name]
    info = read_zoneinfo(str(path))
    assert info.warnings == () and info.unrecognised == ()
    report = build_report(info, source=str(path))
    assert report.main_zone.label == main_zone
    zones = [z for z in report.zones if z.populated]
    assert len(zones) == populated
    assert {(z.cpus, z.cpus_inferred) for z in zones} == {(cpus, inferred)}
    text = format_report(report)
    assert ("inferred" in text) == inferred
    if inferred:
        assert any(n.startswith(f"Online CPUs inferred: {cpus} ") for n in report.notes)
    else:
        assert not any("inferred" in n for n in report.notes)


def test_corpus_zone_listing_no_cpu_gets_the_machine_count():
    """2.6.20's Node 1 DMA lists no pageset; it gets the file's 2 CPUs and the formula."""
    report = _report(CORPUS / "2.6.20-rc5-ppc64-2node.txt")
    z = next(z for z in report.zones if z.label == "Node 1, zone DMA")
    assert (z.cpus_listed, z.cpus, z.threshold_source) == (0, 2, "2.6.36 formula")
    assert any("lists no pageset" in n for n in z.notes)
    assert report.sim_overrides(z)["pcp_high"] is None


def test_corpus_zone_listing_some_cpus_counts_all_of_them():
    """2.6.13's Node 2 lists CPUs 1-3 and Node 0 DMA CPU 0 only: both use the machine's 4."""
    report = _report(CORPUS / "2.6.13-4node-x86_64.txt")
    listed = {z.label: (z.cpus_listed, z.cpus) for z in report.zones}
    assert listed["Node 2, zone Normal"] == (3, 4)
    assert listed["Node 0, zone DMA"] == (1, 4)
    dma = next(z for z in report.zones if z.label == "Node 0, zone DMA")
    assert dma.max_drift == 4 * dma.threshold_used


def test_corpus_old_per_cpu_lines_are_known():
    """2.6.13's per-CPU 'low:' and NUMA lines are read, not listed as unrecognised."""
    info = read_zoneinfo(str(CORPUS / "2.6.13-4node-x86_64.txt"))
    node3 = info.zones[0]
    assert node3.stats["numa_miss"] == 3313 + 1668 + 12806 + 1
    assert node3.stats["scanned"] == 0  # "scanned  0 (a: 16 i: 0)"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_corpus_settings_run(path):
    """The settings printed for a machine like each capture build a SimConfig that runs."""
    settings_, _ = _report(path).sim_settings()
    cfg = SimConfig.preset("large", **settings_, duration_ms=20)
    assert Simulation(cfg).run().simulated_ms == 20


# ---------------------------------------------------------------------------------------------
# Cut files: refused, warned about, or the whole file's figures
# ---------------------------------------------------------------------------------------------


def _figures(report) -> dict:
    """Everything a report says about the machine, without its notes and warnings."""
    d = report_to_dict(report)
    for key in ("source", "notes", "warnings"):
        d.pop(key)
    for z in d["zones"]:
        z.pop("notes")
    return d


_WHOLE = {path: _figures(_report(path)) for path in ALL}
_TEXT = {path: path.read_text() for path in ALL}


def _check_cut(path: Path, cut: int) -> str:
    """Parse the first ``cut`` characters of a capture; return how the cut was handled.

    A cut file must be refused (ZoneinfoError), warned about, or give the whole file's
    figures. The one exception: a cut exactly between two nodes when nothing in the nodes
    left refers to the others (no cross-node NUMA counter, node 0 present). That prefix is a
    complete zoneinfo of a machine with fewer nodes; every zone it lists must still carry the
    whole file's figures.
    """
    try:
        info = parse_zoneinfo(_TEXT[path][:cut])
    except ZoneinfoError as exc:
        assert "\n" not in str(exc)
        return "refused"
    report = build_report(info)
    if report.warnings:
        return "warned"
    got, whole = _figures(report), _WHOLE[path]
    if got == whole:
        return "same"
    # Empty zones carry no figures: a cut before trailing empty zones changes nothing.
    listed = {z["label"]: z for z in got["zones"]}
    full = {z["label"]: z for z in whole["zones"]}
    for label, zone in listed.items():
        assert zone == full[label], (path.name, cut, label)
    missing = [z for label, z in full.items() if label not in listed and z["present"]]
    if not missing:
        for key in ("main_zone", "sim_overrides", "sim_settings"):
            assert got[key] == whole[key], (path.name, cut, key)
        return "same"
    nodes_left = {z["node"] for z in got["zones"]}
    assert all(z["node"] not in nodes_left for z in missing), (path.name, cut, missing)
    return "node boundary"


def test_cut_at_every_line_is_refused_warned_or_exact():
    """Every capture cut after each of its lines is refused, warned about, or reports the
    whole file's figures (or, cut between nodes, exact figures for the nodes it keeps)."""
    seen = set()
    for path in ALL:
        text = _TEXT[path]
        for cut in [i + 1 for i, c in enumerate(text) if c == "\n"][:-1]:
            seen.add(_check_cut(path, cut))
    assert {"refused", "warned"} <= seen


def test_cut_reproduction_from_the_issue_is_refused():
    """The 64-CPU capture cut at byte 8,669 (issue 15: 'online CPUs 1 ... within low - min')
    is refused, naming the line where the zone ends."""
    with pytest.raises(ZoneinfoError, match=r"ends here, before the 'start_pfn:' lines"):
        parse_zoneinfo(_TEXT[BUNDLED / "2.6.36-64cpu-thread.txt"][:8669])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(ALL), st.data())
def test_cut_anywhere_is_refused_warned_or_exact(path, data):
    """A capture cut at any byte is refused, warned about, or gives the whole file's figures."""
    cut = data.draw(st.integers(0, len(_TEXT[path]) - 1))
    _check_cut(path, cut)


def test_cut_before_a_missing_zone_is_warned():
    """Cut before its Normal zone, a 3.6 file warns: DMA32's protection shows a zone above."""
    text = _TEXT[CORPUS / "3.6.3-fc17-12cpu.txt"]
    info = parse_zoneinfo(text[: text.index("Node 0, zone   Normal")])
    assert any("protection" in w and "zones are missing" in w for w in info.warnings)


def test_cut_leaving_a_node_that_refers_to_others_is_warned():
    """Cut after node 0, the 2.6.20 file warns: node 0's numa_foreign shows another node."""
    text = _TEXT[CORPUS / "2.6.20-rc5-ppc64-2node.txt"]
    info = parse_zoneinfo(text[: text.index("Node 1, zone")])
    assert any("NUMA counters" in w for w in info.warnings)


def test_cut_without_node_zero_is_warned():
    """The 2.6.13 file lists nodes 3, 2, 1, 0: cut after node 3, node 0 is missing."""
    text = _TEXT[CORPUS / "2.6.13-4node-x86_64.txt"]
    info = parse_zoneinfo(text[: text.index("Node 1, zone")])
    assert any("not node 0" in w for w in info.warnings)


def test_file_without_final_newline_is_warned():
    """A file whose last line has no newline may be cut mid-line: warned, on stderr too."""
    text = _TEXT[CORPUS / "3.6.3-fc17-12cpu.txt"].rstrip("\n")
    assert any("newline" in w for w in parse_zoneinfo(text).warnings)


def test_main_prints_warnings_on_stderr(tmp_path, capsys):
    """The command line shows each warning on stderr (and in the report) and still exits 0."""
    text = _TEXT[CORPUS / "3.6.3-fc17-12cpu.txt"]
    cut = tmp_path / "cut"
    cut.write_text(text[: text.index("Node 0, zone   Normal")])
    assert main([str(cut)]) == 0
    out, err = capsys.readouterr()
    assert err.startswith(f"{PROG}: {cut}: warning: ") and "WARNING:" in out


# ---------------------------------------------------------------------------------------------
# Byte order mark, bounded reads
# ---------------------------------------------------------------------------------------------


def test_utf8_bom_is_ignored(tmp_path):
    """A file starting with a UTF-8 byte order mark reads like the file without it."""
    path = tmp_path / "bom"
    plain = CORPUS / "4.14.65-arm-highmem.txt"
    path.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert _figures(_report(path)) == _WHOLE[plain]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_refused_at_once(capsys):
    """/dev/zero is a device, refused before reading: one line, exit 2, no MemoryError."""
    start = time.perf_counter()
    assert main(["/dev/zero"]) == 2
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err
    assert err == f"{PROG}: cannot read /dev/zero: a device, not a regular file: save the " + (
        "zoneinfo to a file first\n"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(tmp_path):
    """A FIFO outside /proc is refused before it is opened (opening it would block)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ZoneinfoReadError, match="a FIFO, not a regular file"):
        read_zoneinfo(str(fifo))


def test_huge_file_is_refused_without_reading(tmp_path):
    """A 100 MB file is refused from its size alone, naming the 8 MiB limit."""
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(100_000_000)  # sparse: nothing is written
    with pytest.raises(ZoneinfoReadError, match=r"100,000,000 bytes, more than 8 MiB"):
        read_zoneinfo(str(big))


def test_read_stops_at_the_limit(tmp_path):
    """A file just over the limit is refused; one at the limit is read (and parsed)."""
    path = tmp_path / "over"
    path.write_bytes(b"x" * (MAX_BYTES + 1))
    with pytest.raises(ZoneinfoReadError, match="more than 8 MiB"):
        read_zoneinfo(str(path))
    exact = CORPUS / "3.6.3-fc17-12cpu.txt"
    size = exact.stat().st_size
    assert read_zoneinfo(str(exact), max_bytes=size).zones
    with pytest.raises(ZoneinfoReadError, match=f"{size:,} bytes"):
        read_zoneinfo(str(exact), max_bytes=size - 1)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd")
def test_blocking_read_under_proc_times_out():
    """A pipe with no data, read through /proc/self/fd, fails after the timeout in one line."""
    read_fd, write_fd = os.pipe()
    try:
        start = time.perf_counter()
        with pytest.raises(ZoneinfoReadError, match=r"no data after 0\.5 s"):
            read_zoneinfo(f"/proc/self/fd/{read_fd}", timeout=0.5)
        assert time.perf_counter() - start < 5
    finally:
        os.close(write_fd)  # the blocked reader sees end of file and its thread ends
        time.sleep(0.1)
        os.close(read_fd)
    assert not any(t.name == "read_zoneinfo" and t.is_alive() for t in threading.enumerate())


# ---------------------------------------------------------------------------------------------
# Settings that run
# ---------------------------------------------------------------------------------------------


def test_fit_sim_settings_clamps_what_run_rejects():
    """zone_mib 35, min_free_kbytes 0, pcp_high below batch are fitted and noted; pcp_high 0
    is kept (the DMA zone's value, which run accepts)."""
    fitted, notes = fit_sim_settings(
        {"cpus": 2, "zone_mib": 35, "min_free_kbytes": 0, "pcp_high": 0, "pcp_batch": 1}
    )
    assert fitted == {
        "cpus": 2,
        "zone_mib": 64,
        "min_free_kbytes": 128,
        "pcp_high": 0,
        "pcp_batch": 1,
    }
    assert any("zone_mib 35 MiB is outside [64," in n for n in notes)
    assert any("min_free_kbytes 0 KiB is outside [128," in n for n in notes)
    fitted, notes = fit_sim_settings({"pcp_high": 20, "pcp_batch": 31})
    assert fitted["pcp_high"] == 31 and "pcp_high 20 < pcp_batch 31" in notes[0]
    fitted, notes = fit_sim_settings({"zone_mib": 64, "min_free_kbytes": 65536})
    assert fitted["min_free_kbytes"] == 43695 and "largest that fits" in notes[0]


def test_config_like_agrees_with_the_command_line():
    """teaching.config_like fits exactly as the zoneinfo report does."""
    overrides = {"cpus": 2, "zone_mib": 35, "min_free_kbytes": 0, "pcp_high": 0, "pcp_batch": 1}
    cfg, fitted, notes = config_like(overrides)
    assert (fitted, notes) == fit_sim_settings(overrides)
    assert cfg.zone_mib == 64 and cfg.pcp_high == 0


def test_small_dma_only_machine_prints_settings_that_run(tmp_path, capsys):
    """A machine whose only zone is a 35 MiB DMA zone (high 0, min 0): the printed 'run it'
    command runs."""
    text = (
        "Node 0, zone      DMA\n  pages free     8000\n        min      0\n        low      0\n"
        "        high     0\n        spanned  8960\n        present  8960\n"
        "        protection: (0, 0)\n  pagesets\n    cpu: 0\n              count: 0\n"
        "              high:  0\n              batch: 1\n  vm stats threshold: 4\n"
        "  all_unreclaimable: 0\n  start_pfn:         0\n"
    )
    path = tmp_path / "zoneinfo"
    path.write_text(text)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "(fitted: zone_mib 35 MiB is outside" in out
    command = next(line for line in out.splitlines() if "run it:" in line)
    args = command.split("python -m allocsim ", 1)[1].split()
    from allocsim.__main__ import main as cli_main

    assert cli_main([*args, "--seconds", "0.02", "--quiet"]) == 0
    assert "allocsim run:" in capsys.readouterr().out


def test_report_json_has_settings_warnings_and_inferred_flags():
    """The JSON report carries the fitted settings, their notes, warnings and cpus_inferred."""
    data = report_to_dict(_report(CORPUS / "2.6.15-rc2-2node-kswapd.txt"))
    assert data["sim_settings"]["cpus"] == 2 and data["sim_settings_notes"] == []
    assert data["warnings"] == []
    assert all(z["cpus_inferred"] for z in data["zones"])
