"""The livelock notebook in a real browser: JupyterLab + Debian's chromium, driven by Playwright.

Executing notebooks headless cannot see what learners see: "Error displaying widget", sliders
that move while nothing redraws, figures shown twice, a live plot whose last frame never
arrives. This test starts JupyterLab on a copy of notebooks/, opens the livelock notebook in
headless chromium, runs all cells (menu Run > Run All Cells), and then, with real keyboard and
mouse events, moves the CPU slider and toggles the three patch checkboxes. In each state it
checks that

* the summary readout shows the machine the controls describe (CPU count, zone size,
  stat_threshold, max drift against the watermark gap), says the run finished, and gives the
  patches and the livelock verdict of that run;
* those numbers and the verdict agree with the model recomputed in this process from the
  config the kernel's demo holds (same config and seed, so the same run), and the kernel-side
  control holds the value the browser sent;
* the ipympl figure redrew (its screenshot changed clearly) and shows the run's final frame: a
  redraw forced from the kernel afterwards changes nothing;
* nothing on the page says "Error displaying widget", no cell shows a traceback or an error,
  and no cell shows more than one figure.

Screenshots of the states (whole page, and the demo alone) go to test-output/browser/; their
paths are printed. On failure the page is saved as test-output/browser/failure.png.

The server is stopped by its pid (SIGTERM, then SIGKILL after a timeout). The test then checks
that nothing it started is left: not the server, its kernel, Playwright's driver, chromium, nor
chromium's crash handlers (which leave the process tree, so they are found by their paths).

Never `playwright install`: the browser is Debian's chromium (`make test` installs it with
apt-get when missing). The test skips, loudly, only when that chromium cannot be found.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

from allocsim import handouts

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_GLOB = "*livelock*.ipynb"
OUT = ROOT / "test-output" / "browser"

# the flags that keep Debian's chromium quiet on a closed network (shared with make handouts)
CHROMIUM_ARGS = ["--headless", *handouts.CHROMIUM_ARGS, "--disable-quic"]
VIEWPORT = {"width": 1400, "height": 1800}  # tall enough to show the whole demo at once
SERVER_START_S = 60
STOP_S = 15  # for the server to exit after SIGTERM, and for leftovers to go
STEP_S = 30  # for one thing to happen in the browser (normally 0.1 to 5 s)
STALE_PIXELS = 50  # a figure "changed" when more pixels than this differ clearly; a redraw of
# the same state moves 0 to ~20 (anti-aliasing), a new frame thousands

pytestmark = pytest.mark.browser


# ---------------------------------------------------------------------------------------------
# chromium, or a loud skip
# ---------------------------------------------------------------------------------------------


def _chromium() -> str | None:
    """Debian's chromium: $CHROMIUM (as `make test` passes it), /usr/bin/chromium, or on PATH."""
    for cand in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


@pytest.fixture
def chromium(capsys) -> str:
    path = _chromium()
    if path is None:
        reason = (
            "chromium not found ($CHROMIUM, /usr/bin/chromium, PATH); `make test` installs "
            "it with apt-get when run as root. The browser test of the livelock notebook "
            "did NOT run"
        )
        bar = "#" * 78
        with capsys.disabled():  # past pytest's capture, straight to the terminal's stderr
            print(
                f"\n{bar}\nWARNING: tests/test_browser.py SKIPPED: {reason}\n{bar}",
                file=sys.stderr,
                flush=True,
            )
        pytest.skip(reason)
    return path


# ---------------------------------------------------------------------------------------------
# processes, from /proc
# ---------------------------------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, state, command line) for every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        table[int(entry.name)] = (int(ppid), state, cmd)
    return table


def _ours(root_pids=(), mentioning: str | None = None) -> dict[int, str]:
    """Live (non-zombie) processes below any of root_pids, or whose command line mentions the
    given path (processes that left the tree, like chromium's crash handlers): pid -> cmdline."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _state, _cmd) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(root_pids)
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    if mentioning:
        found |= {pid for pid, (_p, _s, cmd) in table.items() if mentioning in cmd}
    found.discard(os.getpid())
    return {p: table[p][2][:200] for p in found if p in table and table[p][1] != "Z"}


def _wait_gone(pids, timeout: float) -> list[int]:
    """Wait until none of pids runs (zombies count as gone); return those still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if _running(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# JupyterLab on a copy of notebooks/
# ---------------------------------------------------------------------------------------------


def _livelock_notebook() -> Path:
    found = sorted(NOTEBOOKS.glob(NOTEBOOK_GLOB))
    assert found, f"no notebook matching notebooks/{NOTEBOOK_GLOB}: the browser test needs it"
    return found[0]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1:<free port> with a token, all its state under tmp_path, serving
    a copy of notebooks/ (Lab's autosave never touches the sources). Stopped by pid."""
    source = _livelock_notebook()
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    home = tmp_path / "home"
    settings = home / "lab-settings"
    notify = settings / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True)
    # no "get notified about Jupyter news?" toast, no update check
    (notify / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # The kernel inherits this environment. Under pytest (PYTEST_CURRENT_TEST) or with
    # ALLOCSIM_STATIC, allocsim picks static figures on purpose; here we test what a learner
    # gets: live ipympl plots.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_CURRENT_TEST", "ALLOCSIM_STATIC", "MPLBACKEND")
    }
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "ws"),
        IPYTHONDIR=str(home / "ipython"),
        MPLCONFIGDIR=str(home / "mpl"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "xdg-config"),
    )
    port, token = _free_port(), os.urandom(12).hex()
    log_path = tmp_path / "lab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        # window.jupyterapp: the kernel status, and read-only queries of the demo's state
        "--LabApp.expose_app_in_browser=True",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    seen: dict[int, str] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except (OSError, urllib.error.URLError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "JupyterLab did not start:\n" + log_path.read_text()[-4000:]
                    ) from None
                time.sleep(0.2)
        yield {
            "url": f"{base}/lab/tree/{source.name}?token={token}",
            "pid": proc.pid,
            "log": log_path,
            "source": source,
            "tmp": tmp_path,
        }
    finally:
        # the kernel(s) and anything else the server started, before they lose their parent
        seen = _ours([proc.pid], mentioning=str(tmp_path))
        if proc.poll() is None:
            proc.terminate()  # the server shuts its kernels down and exits (1-2 s)
            try:
                proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_S)
        left = _wait_gone(seen, STOP_S)
        for pid in left:  # only processes this fixture started, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not left, "still running after the server stopped (killed now): " + "; ".join(
        f"{p} {seen[p]}" for p in left
    )
    stray = _ours(mentioning=str(tmp_path))
    assert not stray, f"processes of this test still running: {stray}"


# ---------------------------------------------------------------------------------------------
# reading the page and the kernel
# ---------------------------------------------------------------------------------------------


def _num(text: str) -> int:
    return int(text.strip().replace(",", ""))


# The RunDemo readout (allocsim.widgets: _derived_rows, _status_html, RunDemo._readout_html).
READOUT_RE = {
    "present_pages": r"=\s*([\d,]+) pages;",
    "cpus": r"([\d,]+) CPUs;",
    "threshold": r"stat_threshold\s+(\d+) pages per CPU",
    "drift": r"([\d,]+)\s*×\s*([\d,]+)\s*=\s*([\d,]+) pages vs ([\d,]+)",
    "state": r"simulated\s*—\s*(ready|running|paused|finished)",
    "patches": r"patches (\S+), seed",
    "verdict": r"(LIVELOCK: \d+ episode\(s\), \d+ ms|no livelock)",
}


def parse_readout(text: str) -> dict:
    out = {"text": text}
    for key, pat in READOUT_RE.items():
        m = re.search(pat, text)
        if m is None:
            out[key] = None
        elif key == "drift":
            out[key] = tuple(_num(g) for g in m.groups())
        elif key in ("present_pages", "cpus", "threshold"):
            out[key] = _num(m.group(1))
        else:
            out[key] = m.group(1)
    return out


def changed_pixels(png_a: bytes, png_b: bytes) -> int:
    """How many pixels differ clearly (a channel by more than 48 of 255) between two PNGs."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png_a)).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(png_b)).convert("RGB"), dtype=np.int16)
    if a.shape != b.shape:
        return max(a.size, b.size) // 3
    return int((np.abs(a - b).max(axis=2) > 48).sum())


# Runs in the notebook's kernel through JupyterLab's kernel connection (not as a cell, so it
# adds no output): what the simulation demos in the notebook hold now. Read-only.
KERNEL_QUERY = r"""
import json as _json
import allocsim.widgets as _aw
print(_json.dumps([
    {"name": _k, "class": type(_v).__name__, "live": bool(_v.live),
     "cpus": _v.controls["cpus"].value, "patches": _v.patches().label(),
     "finished": _v.finished, "running": _v.running,
     "config": _v.configs()[-1].to_dict(),
     "livelocked": [bool(_r.livelocked) for _r in _v.results],
     "error": repr(_v.last_error) if _v.last_error else None}
    for _k, _v in list(globals().items())
    if isinstance(_v, (_aw.RunDemo, _aw.CompareDemo)) and not _k.startswith("_")]))
"""

BUSY_QUERY = "import allocsim.widgets as _aw\nprint(_aw.busy())"

KERNEL_EXEC_JS = """
async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, silent: false, store_history: false});
  let out = "";
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === "stream") out += msg.content.text;
    if (t === "error") out += "KERNEL ERROR " + msg.content.ename + ": " + msg.content.evalue;
  };
  await future.done;
  return out;
}
"""

KERNEL_IDLE_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const s = w && w.sessionContext && w.sessionContext.session;
  return !!(s && s.kernel && s.kernel.status === "idle");
}"""

ALL_CELLS_RAN_JS = """() => {
  const ps = [...document.querySelectorAll(".jp-CodeCell .jp-InputPrompt")];
  return ps.length > 0 && ps.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def recompute(config: dict):
    """The same run in this process: (Derived, RunResult). Same config and seed, same run."""
    from allocsim.config import SimConfig
    from allocsim.patches import Patches
    from allocsim.sim import Simulation

    cfg = dict(config)
    cfg["patches"] = Patches(**{n: n in cfg["patches"] for n in Patches.names()})
    cfg = SimConfig(**cfg)
    sim = Simulation(cfg)
    sim.run()
    return cfg.derived(), sim.result()


class Notebook:
    """The livelock notebook's page, its demo's widgets, and the kernel behind them."""

    def __init__(self, page):
        self.page = page
        self.shots: list[Path] = []
        self.redraw_noise: list[int] = []
        self.clipped: list[str] = []

    # -- the page --------------------------------------------------------------------------------
    def open_and_run_all(self, url: str) -> None:
        page = self.page
        page.goto(url)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=SERVER_START_S * 1000)
        page.wait_for_function(KERNEL_IDLE_JS, timeout=SERVER_START_S * 1000)
        page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li.lm-Menu-item:has-text('Run All Cells')")
        page.wait_for_function(ALL_CELLS_RAN_JS, timeout=2 * STEP_S * 1000)
        page.wait_for_function(KERNEL_IDLE_JS)

    def find_demo(self) -> None:
        page = self.page
        cpus_label = page.locator(".widget-label").filter(has_text=re.compile(r"^\s*CPUs\s*$"))
        # the output holding the demo: the CPU slider and a live figure
        self.demo = (
            page.locator(".jp-OutputArea-output")
            .filter(has=page.locator(".jupyter-matplotlib"))
            .filter(has=cpus_label)
        )
        self.demo.first.wait_for()
        assert self.demo.count() == 1, f"{self.demo.count()} outputs with a CPU slider and a figure"
        # the machine's controls and the detailed readout are folded under the figure: open them
        for header in self.demo.locator(".jupyter-widget-Collapse-header").all():
            header.click()
        self.fig = self.demo.locator(".jupyter-matplotlib")
        assert self.fig.count() == 1, f"the demo shows {self.fig.count()} figures"
        # Lab renders off-screen cells lazily: bring the demo into view, as a learner would
        self.demo.scroll_into_view_if_needed()
        self.fig.locator("canvas").first.wait_for(state="visible")
        slider = self.demo.locator(".widget-slider").filter(has=cpus_label)
        self.handle = slider.locator(".noUi-handle")
        self.slider_value = slider.locator(".widget-readout")
        self.readout_el = self.demo.locator(".widget-html").filter(has_text="stat_threshold")
        assert self.readout_el.count() == 1, "no single readout with the derived numbers"

    def patch_box(self, name: str):
        from allocsim.patches import PATCH_INFO

        commit = PATCH_INFO[name][0]
        box = (
            self.demo.locator(".widget-checkbox")
            .filter(has_text=f"{commit} {name}")
            .locator("input[type=checkbox]")
        )
        assert box.count() == 1, f"no checkbox for patch {commit} {name}"
        return box

    def no_errors(self, where: str) -> None:
        page = self.page
        assert page.get_by_text("Error displaying widget").count() == 0, (
            f"{where}: 'Error displaying widget' on the page"
        )
        for sel in (
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
            ".jp-RenderedText",
        ):
            for text in page.locator(sel).all_inner_texts():
                assert "Traceback" not in text and "Error" not in text, (
                    f"{where}: error output on the page:\n{text[:3000]}"
                )
        for i, cell in enumerate(page.locator(".jp-CodeCell").all()):
            n = cell.locator(".jupyter-matplotlib").count()
            assert n <= 1, f"{where}: code cell {i + 1} shows {n} figures (a figure twice?)"

    def clipped_figures(self) -> list[str]:
        """Figures wider than their output area: their right-hand part is cut off."""
        found = self.page.evaluate("""() => [...document.querySelectorAll(".jupyter-matplotlib")]
          .map((fig, i) => {
            const out = fig.closest(".jp-OutputArea-output"), c = fig.querySelector("canvas");
            if (!out || !c) return null;
            const cb = c.getBoundingClientRect(), ob = out.getBoundingClientRect();
            const cut = Math.round(cb.right - ob.right);
            return cb.width > 0 && cut > 1
              ? `figure ${i + 1}: ${Math.round(cb.width)} px wide, ${cut} px cut off`
                + ` (output area ${Math.round(ob.width)} px, window ${innerWidth} px)`
              : null;
          }).filter(x => x)""")
        return found

    def screenshot(self, name: str) -> None:
        path = OUT / f"{len(self.shots) // 2 + 1:02d}-{name}.png"
        self.demo.scroll_into_view_if_needed()
        self.page.screenshot(path=str(path))
        part = path.with_name(f"{path.stem}-demo.png")
        self.demo.screenshot(path=str(part))
        self.shots += [path, part]

    # -- the readout and the figure --------------------------------------------------------------
    def readout(self) -> dict:
        return parse_readout(self.readout_el.inner_text())

    def wait_finished(self, cpus: int, patches: str) -> dict:
        """The readout once it says the run of this machine with these patches finished."""
        deadline = time.monotonic() + STEP_S
        while True:
            r = self.readout()
            if (
                r["cpus"] == cpus
                and r["patches"] == patches
                and r["state"] == "finished"
                and r["verdict"]
            ):
                return r
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the readout never said the run with {cpus} CPUs and "
                    f"patches {patches} finished:\n{r['text']}"
                )
            self.page.wait_for_timeout(100)

    def settled_figure(self, differ_from: bytes | None = None) -> bytes:
        """A screenshot of the figure once three taken 0.2 s apart are identical (and, if
        given, clearly differ from ``differ_from``). The readout says "finished" once the last
        frame has been sent; it still has to cross the websocket and be decoded, which on a
        loaded machine can take longer than one 0.2 s gap."""
        same = 0
        last = None
        deadline = time.monotonic() + STEP_S
        while time.monotonic() < deadline:
            png = self.fig.screenshot()
            same = same + 1 if png == last else 0
            if same >= 2 and (
                differ_from is None or changed_pixels(png, differ_from) > STALE_PIXELS
            ):
                return png
            last = png
            self.page.wait_for_timeout(200)
        raise AssertionError(
            "the ipympl figure did not settle" + (" on a new picture" if differ_from else "")
        )

    def assert_figure_final(self, shown: bytes, where: str) -> None:
        """The figure on screen is the demo's last state: a redraw forced from the kernel now
        must not change it, as it would if the run's last frame had not reached the browser."""
        self.kernel(f"{self.kernel_demo()['name']}.fig.canvas.draw_idle()")
        self.page.wait_for_timeout(300)
        self.settled_figure()
        now = self.fig.screenshot()
        n = changed_pixels(shown, now)
        self.redraw_noise.append(n)
        if n > STALE_PIXELS:
            bad = OUT / f"stale-{len(self.shots) // 2 + 1:02d}.png"
            bad.write_bytes(shown)
            bad.with_name(f"{bad.stem}-redrawn.png").write_bytes(now)
            raise AssertionError(
                f"{where}: the ipympl figure showed a stale frame: {n} pixels changed when the "
                f"kernel redrew it afterwards (the run's last frame never reached the browser); "
                f"see {bad} and {bad.stem}-redrawn.png"
            )

    # -- the kernel ------------------------------------------------------------------------------
    def kernel(self, code: str) -> str:
        out = self.page.evaluate(KERNEL_EXEC_JS, code)
        assert "KERNEL ERROR" not in out, out
        return out

    def wait_quiet(self, timeout: float = 240) -> None:
        """Wait until the notebook's background jobs (aw.later) have finished computing."""
        deadline = time.monotonic() + timeout
        while self.kernel(BUSY_QUERY).strip().splitlines()[-1] == "True":
            assert time.monotonic() < deadline, "the notebook's background jobs never finished"
            self.page.wait_for_timeout(500)

    def kernel_demo(self) -> dict:
        demos = json.loads(self.kernel(KERNEL_QUERY).strip().splitlines()[-1])
        assert len(demos) == 1, f"expected one simulation demo in the notebook: {demos}"
        return demos[0]

    def check_state(self, r: dict, where: str) -> dict:
        """Readout, kernel and model agree on this state; returns the kernel's view."""
        k = self.kernel_demo()
        assert k["live"], f"{where}: the demo is not on a live ipympl canvas"
        assert k["error"] is None, f"{where}: the demo reported {k['error']}"
        assert k["finished"] and not k["running"], f"{where}: kernel says {k}"
        derived, result = recompute(k["config"])
        text = r["text"]
        assert r["cpus"] == k["cpus"] == k["config"]["cpus"], (where, text, k)
        assert r["patches"] == k["patches"], (where, text, k)
        assert r["present_pages"] == derived.present_pages, (where, text)
        assert r["threshold"] == derived.stat_threshold, (where, text)
        assert r["drift"] == (
            k["cpus"],
            derived.stat_threshold,
            derived.max_drift,
            derived.tolerate_drift,
        ), (where, text)
        assert k["livelocked"] == [bool(result.livelocked)], (where, k, result.summary())
        want = (
            f"LIVELOCK: {len(result.episodes)} episode(s), {result.livelock_ms} ms"
            if result.livelocked
            else "no livelock"
        )
        assert r["verdict"] == want, f"{where}: readout says {r['verdict']!r}, model {want!r}"
        return k


# ---------------------------------------------------------------------------------------------
# the test
# ---------------------------------------------------------------------------------------------


def _drive(nb: Notebook, url: str, marks: dict, t0: float) -> tuple[list, list]:
    """Open, run all, move the CPU slider, toggle the patches; return (readouts, figures)."""
    from allocsim.patches import Patches

    page = nb.page
    nb.open_and_run_all(url)
    marks["ran all cells"] = time.monotonic() - t0
    nb.find_demo()

    # -- 0. the first run, started by the demo cell --------------------------------------------
    k0 = nb.kernel_demo()
    r0 = nb.wait_finished(k0["cpus"], k0["patches"])
    nb.wait_quiet()  # the comparisons computed in the background after the demo's run
    fig0 = nb.settled_figure()
    nb.assert_figure_final(fig0, "after Run All")
    nb.check_state(r0, "after Run All")
    nb.no_errors("after Run All")
    nb.screenshot("before")
    nb.clipped = nb.clipped_figures()
    marks["first run checked"] = time.monotonic() - t0

    # -- 1. the CPU slider, with the keyboard --------------------------------------------------
    cpus0 = _num(nb.slider_value.inner_text())
    assert cpus0 == r0["cpus"], "the slider and the readout disagree on the CPU count"
    key = "ArrowLeft" if cpus0 > 4 else "ArrowRight"
    nb.handle.focus()
    for _ in range(2):
        page.keyboard.press(key)
    page.wait_for_function(
        "([el, v]) => el.innerText.trim().replace(/,/g, '') !== v",
        arg=[nb.slider_value.element_handle(), str(cpus0)],
    )
    cpus1 = _num(nb.slider_value.inner_text())
    assert (cpus1 < cpus0) if key == "ArrowLeft" else (cpus1 > cpus0), (cpus0, cpus1)
    r1 = nb.wait_finished(cpus1, r0["patches"])
    fig1 = nb.settled_figure(differ_from=fig0)
    nb.assert_figure_final(fig1, "after the CPU slider moved")
    k1 = nb.check_state(r1, f"after the CPU slider moved {cpus0} -> {cpus1}")
    assert k1["cpus"] == cpus1, "the kernel's control did not get the slider's value"
    assert (r1["threshold"], r1["drift"]) != (r0["threshold"], r0["drift"]), (
        "the readout's threshold and drift did not follow the CPU count"
    )
    nb.no_errors("after the CPU slider moved")
    nb.screenshot("after-cpus")
    marks["slider checked"] = time.monotonic() - t0

    # -- 2. the three patches, with mouse clicks -----------------------------------------------
    boxes = {name: nb.patch_box(name) for name in Patches.names()}
    was = {n: b.is_checked() for n, b in boxes.items()}
    for box in boxes.values():
        box.click()
    now = {n: b.is_checked() for n, b in boxes.items()}
    assert now == {n: not v for n, v in was.items()}, (was, now)
    label = Patches(**now).label()
    r2 = nb.wait_finished(cpus1, label)
    fig2 = nb.settled_figure(differ_from=fig1)
    nb.assert_figure_final(fig2, "after toggling the patches")
    k2 = nb.check_state(r2, f"after toggling the patches to {label}")
    assert k2["patches"] == label, "the kernel's checkboxes did not get the clicks"
    assert r2["text"] != r1["text"]
    nb.no_errors("after toggling the patches")
    nb.screenshot("after-patches")
    marks["patches checked"] = time.monotonic() - t0

    assert page.locator(".Toastify__toast").count() == 0, "a notification toast is showing"
    return [r0, r1, r2], [fig0, fig1, fig2]


def test_livelock_notebook_in_jupyterlab(chromium, lab, capsys):
    from playwright.sync_api import sync_playwright

    t0 = time.monotonic()
    marks: dict[str, float] = {}
    OUT.mkdir(parents=True, exist_ok=True)
    for pattern in ("0?-*.png", "stale-*.png", "failure.png"):
        for old in OUT.glob(pattern):
            old.unlink()
    # chromium's profile data and crash handlers go here, not to ~/.config/chromium
    browser_home = lab["tmp"] / "browser-home"
    browser_home.mkdir()
    browser_env = {
        **os.environ,
        "HOME": str(browser_home),
        "XDG_CONFIG_HOME": str(browser_home / "config"),
        "XDG_CACHE_HOME": str(browser_home / "cache"),
    }
    before = set(_ours([os.getpid()]))  # the server and its kernel, already running
    console_errors: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, env=browser_env)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(STEP_S * 1000)
            page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
            page.on("pageerror", lambda e: console_errors.append(f"pageerror: {e}"))
            nb = Notebook(page)
            try:
                readouts, figs = _drive(nb, lab["url"], marks, t0)
            except BaseException:
                failed = OUT / "failure.png"
                try:
                    page.screenshot(path=str(failed))
                    print(
                        f"browser test failed; the page then: {failed}; "
                        f"JupyterLab's log: {lab['log']}",
                        file=sys.stderr,
                    )
                except Exception:  # the page may be gone
                    pass
                raise
        finally:
            browser.close()

    server = [lab["pid"], *_ours([lab["pid"]])]
    browser_procs = {
        p: c
        for p, c in _ours([os.getpid()], mentioning=str(browser_home)).items()
        if p not in before and p not in server
    }
    left = _wait_gone(browser_procs, STOP_S)
    assert not left, "Playwright or chromium still running: " + "; ".join(
        f"{p} {browser_procs[p]}" for p in left
    )

    for c in nb.clipped:  # a cosmetic defect: warned about, not failed
        warnings.warn(f"livelock notebook in JupyterLab: {c}", stacklevel=1)

    with capsys.disabled():
        print(f"\nbrowser test: {os.path.relpath(lab['source'], ROOT)} in JupyterLab + chromium")
        print(
            "  states: "
            + " -> ".join(
                f"{r['cpus']} CPUs, patches {r['patches']}: {r['verdict']}" for r in readouts
            )
        )
        print("  figure sha1: " + " -> ".join(hashlib.sha1(f).hexdigest()[:12] for f in figs))
        print(
            f"  pixels a forced redraw changed (stale frame if > {STALE_PIXELS}): {nb.redraw_noise}"
        )
        print(
            "  seconds since the server was up: "
            + ", ".join(f"{k} {v:.1f}" for k, v in marks.items())
        )
        for c in nb.clipped:
            print(f"  WARNING: {c}")
        if console_errors:
            print(f"  browser console errors ({len(console_errors)}): {console_errors[:5]}")
        for s in nb.shots:
            print(f"  screenshot: {s}")


LIVE_CELLS = (
    # The Python engine: a run of some seconds, long enough to see it move and to press Pause
    # while it goes on (the compiled engine finishes the same run in a fraction of a second).
    "import os\nos.environ['ALLOCSIM_ENGINE'] = 'python'\n"
    "import allocsim\nfrom allocsim import widgets as aw\nmode = aw.use_live_plots()",
    # 12 simulated seconds: a few seconds of wall time on the Python engine.
    "demo = aw.RunDemo('large', duration_ms=12_000)\ndemo.show()",
)


@pytest.mark.browser
def test_live_demo_animates_and_its_buttons_work_in_jupyterlab(chromium, lab):
    """In JupyterLab the ipympl figure changes while the run goes on; ticking the patches
    re-runs without the livelock; Pause and Reset work."""
    import nbformat
    from playwright.sync_api import sync_playwright

    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in LIVE_CELLS]
    nbformat.write(nb, lab["tmp"] / "notebooks" / "live.ipynb")
    url = lab["url"].replace(lab["source"].name, "live.ipynb")
    browser_home = lab["tmp"] / "browser-home-live"  # chromium's profile and crash handlers
    browser_env = {**os.environ, "HOME": str(browser_home)}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, env=browser_env)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(url)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        fig = page.locator(".jupyter-matplotlib").first
        fig.wait_for(timeout=60_000)
        frames = set()
        for _ in range(12):
            frames.add(hashlib.sha1(fig.screenshot()).hexdigest())
            page.wait_for_timeout(150)
        assert len(frames) >= 3, "the live figure did not move during the run"
        page.get_by_text("LIVELOCK").first.wait_for(timeout=30_000)
        for name in ("counter_after_free", "drift_mark_snapshot", "drain_after_reclaim"):
            page.locator(f".widget-checkbox:has-text('{name}') input").click()
        page.get_by_text("no livelock").first.wait_for(timeout=30_000)
        page.locator(".widget-button:has-text('Run')").first.click()  # a finished run restarts
        page.wait_for_timeout(300)
        page.locator(".widget-button:has-text('Pause')").first.click()
        page.get_by_text("— paused").first.wait_for(timeout=10_000)
        page.locator(".widget-button:has-text('Reset')").first.click()
        page.get_by_text("ready: press Run").first.wait_for(timeout=10_000)
        browser.close()


# ---------------------------------------------------------------------------------------------
# a lecture hall and a saved file: 1280 × 720, Run All, a ticked patch, save, reopen
# ---------------------------------------------------------------------------------------------

PROJECTOR = {"width": 1280, "height": 720}
FIRST_FRAME_S = 1.0  # a ticked patch shows the new run's first frame within this

# One look at the demo: where its parts are (client px), the figure's size and a checksum of
# its pixels, and the verdict line. The notebook's scrolling area bounds what is on screen.
DEMO_STATE_JS = """() => {
  const d = document.querySelector(".allocsim-demo");
  if (!d) return null;
  const rect = e => { if (!e) return null; const b = e.getBoundingClientRect();
    return {left: b.left, top: b.top, right: b.right, bottom: b.bottom,
            width: b.width, height: b.height}; };
  const c = d.querySelector(".jupyter-matplotlib canvas");
  let sum = 0;
  if (c && c.width && c.height) {
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < px.length; i += 1) sum = (sum * 31 + px[i]) >>> 0;
  }
  const v = d.querySelector(".allocsim-verdict");
  const area = d.closest(".jp-WindowedPanel-outer") || d.closest(".jp-Notebook");
  return {screen: rect(area), canvas: rect(c), verdict: rect(v), text: v ? v.innerText : "",
          boxes: [...d.querySelectorAll(".widget-checkbox")].slice(0, 3).map(rect),
          buttons: [...d.querySelectorAll(".widget-button")].filter(b => /Run|Pause|Reset/
                   .test(b.innerText)).map(rect), sum};
}"""

# Resolves with the seconds until the demo's figure shows other pixels than `before`.
FIRST_CHANGE_JS = """async ([before, t0, limit]) => {
  const c = document.querySelector(".allocsim-demo .jupyter-matplotlib canvas");
  const sum = () => { const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let s = 0; for (let i = 0; i < px.length; i += 1) s = (s * 31 + px[i]) >>> 0; return s; };
  while (performance.now() - t0 < limit * 1000) {
    if (sum() !== before) return (performance.now() - t0) / 1000;
    await new Promise(r => requestAnimationFrame(r));
  }
  return null;
}"""


def _on_screen(box: dict, screen: dict) -> bool:
    return (
        box is not None
        and box["width"] > 0
        and box["height"] > 0
        and box["top"] >= screen["top"] - 1
        and box["bottom"] <= screen["bottom"] + 1
        and box["left"] >= screen["left"] - 1
        and box["right"] <= screen["right"] + 1
    )


def _shut_down_kernels(url: str) -> int:
    """Stop every kernel of the server (through its REST API), as closing the session would."""
    base, token = url.split("/lab/")[0], url.split("token=")[1]
    with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as r:
        kernels = json.loads(r.read())
    for k in kernels:
        req = urllib.request.Request(f"{base}/api/kernels/{k['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()
    return len(kernels)


def test_livelock_demo_on_a_projector_and_saved_with_its_pictures(chromium, lab, capsys):
    """At 1280 × 720, Run All shows the live figure (non-zero size, pixels changing) while the
    run goes on, with the patch switches and the verdict on the same screen; a ticked patch
    shows the new run's first frame within a second; saved and reopened without its kernel,
    the notebook shows a picture where each live figure was."""
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    home = lab["tmp"] / "browser-home-projector"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    saved = lab["tmp"] / "notebooks" / lab["source"].name
    report = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, env=env)
        try:
            page = browser.new_page(viewport=PROJECTOR)
            page.set_default_timeout(STEP_S * 1000)
            nb = Notebook(page)
            page.goto(lab["url"])
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=SERVER_START_S * 1000)
            page.wait_for_function(KERNEL_IDLE_JS, timeout=SERVER_START_S * 1000)
            t0 = time.monotonic()
            page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
            page.click("li.lm-Menu-item:has-text('Run All Cells')")
            page.wait_for_selector(".allocsim-demo .jupyter-matplotlib canvas", timeout=120_000)
            report["demo shown after Run All (s)"] = round(time.monotonic() - t0, 1)
            page.evaluate("document.querySelector('.allocsim-demo').scrollIntoView()")

            # -- 1. while the first run goes on -------------------------------------------------
            # The compiled engine runs the 4 s in a fraction of a second: look often, and count
            # the finished picture too (it must differ from what was shown while running).
            running = []
            finished = None
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                s = page.evaluate(DEMO_STATE_JS)
                if s and "finished" in s["text"]:
                    finished = s
                    break
                if s and "running" in s["text"]:
                    running.append(s)
                page.wait_for_timeout(20)
            # The verdict says "finished" once the last frame is sent: it may not be shown yet.
            for _ in range(100):
                if finished is None or finished["sum"] != 0:
                    break
                page.wait_for_timeout(100)
                finished = page.evaluate(DEMO_STATE_JS)
            page.screenshot(path=str(OUT / "projector-1-run-all.png"))
            assert running, "the verdict never said the run was going on"
            sizes = {(round(s["canvas"]["width"]), round(s["canvas"]["height"])) for s in running}
            assert all(w > 0 and h > 0 for w, h in sizes), f"figure size while running: {sizes}"
            pictures = {s["sum"] for s in running + ([finished] if finished else [])}
            assert len(pictures) >= 2, "the figure's pixels did not change as the run went on"
            last = running[-1]
            for what in ("canvas", "verdict"):
                assert _on_screen(last[what], last["screen"]), (what, last[what], last["screen"])
            for i, box in enumerate(last["boxes"] + last["buttons"]):
                assert _on_screen(box, last["screen"]), (f"switch/button {i}", box)
            report["figure while running (px)"] = sorted(sizes)
            report["distinct pictures while running"] = len(pictures)
            report["screen (notebook area, px)"] = (
                round(last["screen"]["width"]),
                round(last["screen"]["height"]),
            )
            report["demo top..figure bottom (px)"] = (
                round(last["boxes"][0]["top"] - last["screen"]["top"]),
                round(last["canvas"]["bottom"] - last["screen"]["top"]),
            )

            # -- 2. a ticked patch: the new run's first frame -------------------------------------
            # Two ticks (patch 3, then patch 1 as well); the better one must be within
            # FIRST_FRAME_S: the machine is shared, and one tick can land on someone else's load.
            page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000)
            nb.wait_quiet()  # the background comparisons: the machine is quiet again
            latencies = []
            for name in ("drain_after_reclaim", "counter_after_free"):
                page.wait_for_timeout(1500)  # the still copy of the last frame is written
                before = page.evaluate(DEMO_STATE_JS)
                box = page.locator(".allocsim-demo .widget-checkbox").filter(has_text=name)
                clicked = page.evaluate("performance.now()")
                box.locator("input").click()
                took = page.evaluate(FIRST_CHANGE_JS, [before["sum"], clicked, 10])
                assert took is not None, f"the figure did not change within 10 s of ticking {name}"
                latencies.append(round(took, 3))
                page.wait_for_function(
                    "() => /finished/.test(document.querySelector('.allocsim-verdict').innerText)",
                    timeout=120_000,
                )
            page.screenshot(path=str(OUT / "projector-2-patches.png"))
            k = nb.kernel_demo()
            assert k["patches"] == "counter_after_free+drain_after_reclaim", k
            report["tick -> first frame of the new run (s)"] = latencies
            assert min(latencies) <= FIRST_FRAME_S, f"first frames {latencies} s after the ticks"

            # -- 3. save; reopen without the kernel -----------------------------------------------
            page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_timeout(2000)
        finally:
            browser.close()

    raw = json.loads(saved.read_text())
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    live = [
        i
        for i, c in enumerate(code)
        if any(
            "application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in c["outputs"]
        )
        and any("allocsim-still" in str(o.get("data", {})) for o in c["outputs"])
    ]
    pictures = [
        i
        for i, c in enumerate(code)
        if any("image/png" in o.get("data", {}) for o in c.get("outputs", []))
    ]
    assert live, "no live figure left a still picture in the saved notebook"
    report["kernels stopped before reopening"] = _shut_down_kernels(lab["url"])

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, env=env)
        try:
            page = browser.new_context(viewport=PROJECTOR).new_page()
            page.goto(lab["url"])
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=SERVER_START_S * 1000)
            cells = page.locator(".jp-CodeCell")
            missing = []
            for i in pictures:
                cell = cells.nth(i)
                cell.scroll_into_view_if_needed()
                img = cell.locator(".jp-OutputArea-output img").first
                try:
                    img.wait_for(state="visible", timeout=20_000)
                    assert img.evaluate("e => e.naturalWidth") > 100
                except Exception:
                    missing.append(i)
                if i == live[0] and not missing:
                    img.scroll_into_view_if_needed()
                    page.screenshot(path=str(OUT / "projector-3-reopened.png"))
            assert not missing, f"code cells {missing} (of {pictures}) show no picture"
            report["pictures after reopening"] = f"{len(pictures)} (live figures: {len(live)})"
        finally:
            browser.close()

    with capsys.disabled():
        print("\nprojector test (1280 × 720): " + "; ".join(f"{k} {v}" for k, v in report.items()))
