"""The live drift sampler, the churn process and `python -m allocsim drift`.

A fake /proc (a bundled zoneinfo capture plus a buddyinfo written to differ from it by chosen
gaps) checks the arithmetic exactly; the real /proc, where this runs on Linux, checks that the
kernel's gap stays within the envelope plus the stated race allowance most of the time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from allocsim import live
from allocsim.vmstat import calculate_threshold
from allocsim.zoneinfo import parse_zoneinfo

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "allocsim" / "data" / "zoneinfo"
REAL_PROC = Path("/proc/buddyinfo").exists() and Path("/proc/zoneinfo").exists()
needs_proc = pytest.mark.skipif(not REAL_PROC, reason="no /proc/buddyinfo here (not Linux?)")
needs_meminfo = pytest.mark.skipif(
    not Path("/proc/meminfo").exists(), reason="no /proc/meminfo here (not Linux?)"
)


def _blocks(pages: int, orders: int = 11) -> tuple[int, ...]:
    """Free-block counts per order that add up to ``pages`` (binary digits, the rest at top)."""
    top = orders - 1
    return tuple((pages >> o) & 1 for o in range(top)) + (pages >> top,)


def fake_proc(tmp_path: Path, capture: str, gaps=None, *, text=None, stat_interval=1) -> Path:
    """A /proc directory: ``capture``'s zoneinfo, and a buddyinfo whose pages differ from each
    populated zone's ``pages free`` by ``gaps[zone label]`` (default 0)."""
    gaps = gaps or {}
    root = tmp_path / "proc"
    (root / "sys" / "vm").mkdir(parents=True, exist_ok=True)
    (root / "sys" / "kernel").mkdir(parents=True, exist_ok=True)
    zi = text if text is not None else (CAPTURES / capture).read_text()
    (root / "zoneinfo").write_text(zi)
    zones = {
        (z.node, z.name): _blocks(z.pages_free - gaps.get(z.label, 0))
        for z in parse_zoneinfo(zi).zones
        if z.populated
    }
    (root / "buddyinfo").write_text(live.format_buddyinfo(zones))
    (root / "sys" / "vm" / "stat_interval").write_text(f"{stat_interval}\n")
    (root / "sys" / "kernel" / "osrelease").write_text("2.6.36-fake\n")
    (root / "meminfo").write_text("MemTotal: 4096000 kB\nMemAvailable: 1024000 kB\n")
    return root


def _gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` has exited (a zombie waiting for an absent reaper counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------
# buddyinfo
# ---------------------------------------------------------------------------------------------


def test_parse_buddyinfo_reads_frag_show_print_lines():
    """A real 6.x line gives its counts per order, and format_buddyinfo writes it back."""
    text = (
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1"
        "      1      3 \n"
        "Node 0, zone   Normal     30      2      2      2      0      1      2      2      2"
        "      1     29 \n"
    )
    zones = live.parse_buddyinfo(text)
    assert zones[0, "DMA"] == (0,) * 8 + (1, 1, 3)
    assert sum(c << o for o, c in enumerate(zones[0, "DMA"])) == 3840
    assert live.parse_buddyinfo(live.format_buddyinfo(zones)) == zones
    assert live.format_buddyinfo(zones) == text


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("Node 0, zone DMA 1 2 x\n", "line 1"),
        ("Node 0, zone DMA 1\nNode 0, zone DMA 2\n", "zone listed twice"),
        ("\n\n", "not a buddyinfo file"),
        ("Node 0, zone DMA\n", "expected 'Node N, zone NAME'"),
    ],
)
def test_parse_buddyinfo_rejects_malformed_text(text, fragment):
    """Malformed buddyinfo raises BuddyinfoError naming the line and what is wrong."""
    with pytest.raises(live.BuddyinfoError, match=re.escape(fragment)):
        live.parse_buddyinfo(text)


# ---------------------------------------------------------------------------------------------
# The sampler on a fake /proc
# ---------------------------------------------------------------------------------------------


def test_sampler_fake_proc_reports_counter_buddy_gap_and_bounds(tmp_path):
    """On the 6.18 capture: gap = counter - buddy, envelope = Σ CPU thresholds, low - min."""
    gaps = {"Node 0, zone Normal": 37, "Node 0, zone DMA32": -5}
    root = fake_proc(tmp_path, "6.18.44-fc-v669.txt", gaps, stat_interval=3)
    sampler = live.DriftSampler(root)
    s = sampler.sample()
    by = {z.label: z for z in s.zones}
    assert list(by) == ["Node 0, zone DMA", "Node 0, zone DMA32", "Node 0, zone Normal"]
    normal = by["Node 0, zone Normal"]
    assert (normal.counter, normal.buddy, normal.gap) == (86688, 86688 - 37, 37)
    assert (normal.cpus, normal.threshold, normal.envelope) == (2, 20, 40)
    assert normal.threshold_source == "file"
    parsed = {z.label: z for z in parse_zoneinfo((root / "zoneinfo").read_text()).zones}
    assert normal.low_min == parsed[normal.label].low - parsed[normal.label].min
    assert by["Node 0, zone DMA32"].gap == -5 and by["Node 0, zone DMA"].gap == 0
    assert by["Node 0, zone DMA"].envelope == 2 * 4
    assert sampler.stat_interval == 3 and sampler.kernel == "2.6.36-fake"
    assert [x.split(":")[0] for x in sampler.skipped] == [
        "Node 0, zone Movable",
        "Node 0, zone Device",
    ]
    assert s.span_us > 0


def test_sampler_fake_proc_two_nodes_many_cpus(tmp_path):
    """Every populated zone of every node is sampled; 64 CPUs x 98 on the 2010 capture."""
    root = fake_proc(tmp_path, "2.6.36-two-nodes.txt", {"Node 1, zone Normal": 123})
    zones = {z.label: z for z in live.DriftSampler(root).sample().zones}
    assert len(zones) == 4 and zones["Node 1, zone Normal"].gap == 123
    root2 = fake_proc(tmp_path / "b", "2.6.36-64cpu-thread.txt")
    normal = {z.zone: z for z in live.DriftSampler(root2).sample().zones}["Normal"]
    assert (normal.cpus, normal.threshold, normal.envelope) == (64, 98, 64 * 98)


def test_sampler_old_kernel_without_threshold_lines_uses_the_2636_formula(tmp_path):
    """Without 'vm stats threshold' lines the envelope is cpus x calculate_threshold(present)."""
    text = (CAPTURES / "2.6.36-64cpu-thread.txt").read_text()
    text = "\n".join(x for x in text.splitlines() if "vm stats threshold" not in x) + "\n"
    root = fake_proc(tmp_path, "", text=text)
    normal = {z.zone: z for z in live.DriftSampler(root).sample().zones}["Normal"]
    assert normal.threshold_source == "2.6.36 formula"
    present = {z.name: z for z in parse_zoneinfo(text).zones}["Normal"].present
    assert normal.envelope == 64 * calculate_threshold(present, 64)


def test_sampler_zone_mismatch_is_a_one_line_error(tmp_path):
    """A populated zone missing from buddyinfo, or an extra one, is a LiveError naming it."""
    root = fake_proc(tmp_path, "6.18.44-fc-v669.txt")
    lines = (root / "buddyinfo").read_text().splitlines()
    (root / "buddyinfo").write_text("\n".join(x for x in lines if "Normal" not in x) + "\n")
    with pytest.raises(live.LiveError, match="Node 0, zone Normal has present pages"):
        live.DriftSampler(root)
    (root / "buddyinfo").write_text("\n".join([*lines, "Node 3, zone HighMem 1 2"]) + "\n")
    with pytest.raises(live.LiveError, match="Node 3, zone HighMem"):
        live.DriftSampler(root)


def test_open_source_replays_and_says_why_without_proc(tmp_path):
    """No /proc at all, or one without buddyinfo: the shipped trace, with the reason."""
    src = live.open_source(tmp_path / "no-such-proc")
    assert src.mode == "replay" and "no Linux /proc" in src.reason
    root = fake_proc(tmp_path, "6.18.44-fc-v669.txt")
    (root / "buddyinfo").unlink()
    src = live.open_source(root)
    assert src.mode == "replay" and "buddyinfo does not exist" in src.reason
    assert src.sample().zones
    assert live.open_source(fake_proc(tmp_path / "ok", "6.18.44-fc-v669.txt")).mode == "live"


# ---------------------------------------------------------------------------------------------
# Summaries, traces, replay
# ---------------------------------------------------------------------------------------------


def _zone(gap: int, envelope: int = 40, low_min: int = 400, batch: int = 10) -> live.ZoneSample:
    return live.ZoneSample(
        0, "Normal", 1000 + gap, 1000, 2, envelope, 20, "file", low_min, batch, 0
    )


def test_summarize_finds_the_largest_gap_and_its_shares():
    """The largest gap keeps its sign; shares of the envelope and low - min; counts outside."""
    samples = [live.Sample(i / 4, 50.0, (_zone(g),)) for i, g in enumerate([0, 12, -50, 70])]
    (z,) = live.summarize(samples)
    assert (z.largest_gap, z.at, z.nonzero) == (70, 0.75, 3)
    assert z.share_of_envelope == pytest.approx(70 / 40)
    assert z.share_of_low_min == pytest.approx(70 / 400)
    assert (z.outside_envelope, z.outside_allowance, z.race_allowance) == (2, 1, 20)
    assert z.longest_excursion == 1
    samples += [live.Sample(1 + i, 50.0, (_zone(-90 if i else 0),)) for i in range(4)]
    assert live.summarize(samples)[0].longest_excursion == 3


def test_trace_saves_and_loads_the_same_samples(tmp_path):
    """save_trace then load_trace gives back every sample and the metadata."""
    samples = [live.Sample(i / 4, 40.0 + i, (_zone(i), _zone(-i))) for i in range(5)]
    live.save_trace(tmp_path / "t.json", samples, kernel="x", churn_mib=8)
    meta, back = live.load_trace(tmp_path / "t.json")
    assert back == samples and meta["kernel"] == "x" and meta["churn_mib"] == 8
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(live.LiveError, match="not an allocsim drift trace"):
        live.load_trace(tmp_path / "bad.json")


def test_shipped_trace_was_recorded_with_churn_and_shows_drift():
    """The bundled trace: Linux, churn on, every zone in every sample, a nonzero gap somewhere."""
    meta, samples = live.load_trace()
    assert meta["churn_mib"] > 0 and meta["kernel"] and meta["hz"] > 0
    assert len(samples) >= 100
    assert all(len(s.zones) == len(samples[0].zones) for s in samples)
    assert any(z.gap != 0 for s in samples for z in s.zones)
    assert samples[-1].t > samples[0].t


def test_replay_source_plays_the_trace_at_its_recorded_pace():
    """ReplaySource.at(elapsed) returns the nearest recorded sample, looping; at the
    recording's rate every recorded sample comes back once, in order."""
    src = live.ReplaySource(reason="test")
    first, later = src.samples[0], src.samples[10]
    t = later.t - first.t + 0.01
    assert src.at(t).zones == later.zones and src.at(t).t == t
    assert src.at(src.duration + t).zones == later.zones
    hz = src.meta["hz"]
    replayed = live.collect(src, len(src.samples) / hz, hz, paced=False)
    assert [s.zones for s in replayed] == [s.zones for s in src.samples]
    assert "replay" in src.description


def test_drift_recorder_samples_in_the_background(tmp_path):
    """DriftRecorder keeps samples while running and stops its thread on close."""
    rec = live.DriftRecorder(live.DriftSampler(fake_proc(tmp_path, "6.18.44-fc-v669.txt")), 50)
    rec.start()
    time.sleep(0.4)
    rec.close()
    n = len(rec.samples())
    assert n >= 5 and not rec.running and rec.error == ""
    time.sleep(0.1)
    assert len(rec.samples()) == n


# ---------------------------------------------------------------------------------------------
# The real /proc
# ---------------------------------------------------------------------------------------------


@needs_proc
def test_real_proc_gap_stays_within_envelope_plus_race_allowance_mostly():
    """On this kernel, with 64 MiB of churn, >= 90 % of zone samples have |gap| <= envelope +
    one pcp batch per CPU (the stated race allowance); the files are read within 5 ms."""
    sampler = live.DriftSampler()
    mib = min(64, live.churn_limit_mib())
    if mib < 1:
        pytest.skip("5 % of MemAvailable is under 1 MiB: no churn is safe here")
    with live.Churn(mib):
        samples = live.collect(sampler, seconds=2.0, hz=20)
    pairs = [z for s in samples for z in s.zones]
    inside = sum(abs(z.gap) <= z.envelope + z.race_allowance for z in pairs)
    assert inside >= 0.9 * len(pairs), live.format_summary(samples, sampler)
    assert sorted(s.span_us for s in samples)[len(samples) // 2] < 5000


# ---------------------------------------------------------------------------------------------
# Churn
# ---------------------------------------------------------------------------------------------


def test_churn_refuses_more_than_its_share_of_memavailable(tmp_path):
    """Above the share of MemAvailable, a share above 25 %, or 0 MiB: one-line errors."""
    root = fake_proc(tmp_path, "6.18.44-fc-v669.txt")  # MemAvailable 1000 MiB
    assert live.churn_limit_mib(root=root) == 50
    with pytest.raises(ValueError, match=r"mib must be in \[1, 50\], got 51"):
        live.Churn(51, root=root)
    with pytest.raises(ValueError, match=r"max_share must be in \[0.0, 0.25\], got 0.3"):
        live.Churn(10, max_share=0.3, root=root)
    with pytest.raises(ValueError, match=r"mib must be in \[1, 250\], got 0"):
        live.Churn(0, max_share=0.25, root=root)
    with pytest.raises(live.LiveError, match="MemAvailable"):
        live.Churn(1, root=tmp_path)


@needs_meminfo
def test_churn_never_exceeds_its_bound_and_really_touches_pages():
    """The child's peak resident size above its idle size stays within the MiB asked (plus
    1 MiB of interpreter slack) and reaches at least half of it."""
    with live.Churn(32) as churn:
        peak = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            peak = max(peak, churn.peak_rss_kib() or 0)
            time.sleep(0.05)
        pid = churn.pid
    assert _gone(pid)
    grown = peak - churn.baseline_kib
    assert 16 << 10 <= grown <= (32 << 10) + 1024, (peak, churn.baseline_kib)


@needs_meminfo
def test_churn_stops_on_stop_and_on_leaving_the_with_block():
    """stop() and the end of a with block both leave no process behind."""
    churn = live.Churn(4).start()
    pid = churn.pid
    assert churn.running
    churn.stop()
    assert _gone(pid) and not churn.running and churn.pid is None
    with live.Churn(4) as churn:
        pid = churn.pid
    assert _gone(pid)


@needs_meminfo
@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_churn_pins_the_child_to_the_cpus_asked():
    """cpus=[n] pins the child (sched_setaffinity); a CPU not allowed here is refused."""
    cpu = min(os.sched_getaffinity(0))
    with live.Churn(4, cpus=[cpu]) as churn:
        assert os.sched_getaffinity(churn.pid) == {cpu}
    with pytest.raises(ValueError, match="cpus must be a non-empty subset"):
        live.Churn(4, cpus=[10**6])


@needs_meminfo
def test_churn_exits_when_its_parent_is_killed():
    """SIGKILL the parent: the child notices (pipe end of file, new parent id) and exits."""
    code = (
        "import sys, time\n"
        "from allocsim.live import Churn\n"
        "c = Churn(8).start()\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert not _gone(child, timeout=0.3)  # it is running while the parent lives
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        assert _gone(child), f"churn child {child} outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _drift(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "allocsim", "drift", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@needs_proc
def test_cli_drift_acceptance_json_with_churn():
    """`drift --seconds 3 --churn 256 --json`: exit 0, every zone in every sample, a nonzero
    gap somewhere, and the churn process gone afterwards."""
    if live.churn_limit_mib() < 256:
        pytest.skip("256 MiB is more than 5 % of MemAvailable here (needs about 5 GiB available)")
    r = _drift("--seconds", "3", "--churn", "256", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    populated = [
        z.label for z in parse_zoneinfo(Path("/proc/zoneinfo").read_text()).zones if z.populated
    ]
    assert d["source"]["mode"] == "live" and len(d["samples"]) >= 50
    for s in d["samples"]:
        assert [f"Node {z['node']}, zone {z['zone']}" for z in s["zones"]] == populated
    assert any(z["gap"] != 0 for s in d["samples"] for z in s["zones"])
    assert d["churn"]["mib"] == 256 and _gone(d["churn"]["pid"], timeout=1.0)
    assert {z["zone"] for z in d["summary"]} == {p.split("zone ")[1] for p in populated}


def test_cli_drift_fake_proc_prints_lines_then_summary(tmp_path):
    """A line per second, then the largest gap per zone with its shares, and what it means."""
    root = fake_proc(tmp_path, "6.18.44-fc-v669.txt", {"Node 0, zone Normal": 30})
    r = _drift("--root", str(root), "--seconds", "2", "--hz", "5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sum(line.startswith("t=") for line in lines) == 2
    assert "Normal gap +30 (env ±40)" in lines[0]
    assert re.search(r"zone Normal\s+\+30\s+=\s+75 % of the envelope ±40", r.stdout)
    assert "pcp" in r.stdout and "2.6.3x" in r.stdout


def test_cli_drift_replays_with_a_reason_when_proc_is_missing(tmp_path):
    """Without /proc: stderr says why, and the JSON comes from the shipped trace."""
    r = _drift("--root", str(tmp_path / "none"), "--seconds", "0.5", "--json", "--churn", "8")
    assert r.returncode == 0, r.stderr
    assert "no Linux /proc" in r.stderr and "no churn while replaying" in r.stderr
    d = json.loads(r.stdout)
    assert d["source"]["mode"] == "replay" and d["samples"] and d["churn"] is None


def test_cli_drift_record_writes_a_trace_that_replays(tmp_path):
    """--record saves the samples; --replay TRACE plays them back."""
    root = fake_proc(tmp_path, "6.18.44-fc-v669.txt", {"Node 0, zone Normal": 7})
    trace = tmp_path / "t.json"
    assert _drift("--root", str(root), "--seconds", "0.5", "--record", str(trace)).returncode == 0
    r = _drift("--replay", str(trace), "--seconds", "0.5", "--json")
    assert r.returncode == 0, r.stderr
    gaps = {z["zone"]: z["largest_gap"] for z in json.loads(r.stdout)["summary"]}
    assert gaps["Normal"] == 7


def test_cli_drift_help_exits_zero():
    """`drift --help` prints the options and exits 0."""
    r = _drift("--help")
    assert r.returncode == 0 and "--churn" in r.stdout and "--hz" in r.stdout


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--hz", "0"], "hz must be in [0.5, 100]"),
        (["--seconds", "-1"], "seconds must be in [0.1, 3600]"),
        (["--churn", "lots"], "churn must be whole MiB"),
        (["--churn", "-4"], "churn must be whole MiB"),
        (["--replay", "/nonexistent/trace.json"], "trace.json"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_cli_drift_bad_input_is_one_line_exit_2(args, fragment):
    """Bad options: exit 2 and one line on stderr naming the problem."""
    r = _drift(*args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr, r.stderr


def test_cli_drift_churn_above_the_bound_is_one_line_exit_2(tmp_path):
    """--churn above 5 % of MemAvailable is refused before anything starts."""
    root = fake_proc(tmp_path, "6.18.44-fc-v669.txt")
    r = _drift("--root", str(root), "--churn", "51", "--seconds", "0.2")
    assert r.returncode == 2 and "mib must be in [1, 50], got 51" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# Notebook 07's panel
# ---------------------------------------------------------------------------------------------


def test_drift_panel_static_replays_the_shipped_trace_and_says_why():
    """With static figures the panel shows the recorded trace, one axes per zone, and why."""
    from allocsim.widgets import DriftPanel

    panel = DriftPanel(live=False)
    assert panel.source.mode == "replay" and "static" in panel.source.reason
    _, samples = live.load_trace()
    plotted = panel.plotted()
    assert list(plotted) == [z.label for z in samples[0].zones] == panel.zones
    normal = plotted["Node 0, zone Normal"]
    assert list(normal["gap"]) == [s.zones[2].gap for s in samples]
    assert len(panel.fig.axes) == len(plotted)
    assert "why replay" in panel.readout.value and "largest gap" in panel.readout.value


def test_drift_panel_static_start_takes_a_short_live_reading(tmp_path):
    """Static figures and a readable /proc: Start samples it for static_seconds and redraws."""
    from allocsim.widgets import DriftPanel

    root = fake_proc(tmp_path, "2.6.36-two-nodes.txt", {"Node 1, zone Normal": 99})
    panel = DriftPanel(live=False, root=str(root), static_seconds=0.3, hz=20)
    panel.controls["start"].click()
    assert panel.last_error is None and panel.source.mode == "live"
    plotted = panel.plotted()
    assert len(plotted) == 4 and len(plotted["Node 1, zone Normal"]["t"]) == 6
    assert set(plotted["Node 1, zone Normal"]["gap"]) == {99}
    assert len(panel.fig.axes) == 4


def test_drift_panel_live_start_stop_samples_in_the_background(tmp_path):
    """Live canvas: Start samples and redraws in the background, Stop ends both."""
    from allocsim.widgets import DriftPanel

    root = fake_proc(tmp_path, "6.18.44-fc-v669.txt", {"Node 0, zone Normal": -12})
    panel = DriftPanel(live=True, root=str(root), hz=50)
    assert panel.source.mode == "live" and panel.controls["churn"].max == 48  # 5 % of 1000 MiB
    panel.controls["start"].click()
    time.sleep(0.6)
    assert panel.recorder.running and panel.controls["stop"].disabled is False
    panel.controls["stop"].click()
    assert not panel.recorder.running and panel.last_error is None
    gaps = panel.plotted()["Node 0, zone Normal"]["gap"]
    assert len(gaps) >= 10 and set(gaps) == {-12}


@needs_proc
def test_drift_panel_churn_slider_starts_and_stops_the_churn_process():
    """The churn slider starts a child while running; 0 and Stop leave no process behind."""
    from allocsim.widgets import DriftPanel

    panel = DriftPanel(live=True, hz=10)
    panel.controls["churn"].value = 16
    panel.controls["start"].click()
    first = panel.recorder.churn.pid
    assert panel.recorder.churn.running
    panel.controls["churn"].value = 0
    assert panel.recorder.churn is None and _gone(first)
    panel.controls["churn"].value = 32
    second = panel.recorder.churn.pid
    panel.controls["stop"].click()
    assert panel.recorder.churn is None and _gone(second) and panel.last_error is None
