"""`make lab` starts JupyterLab on 127.0.0.1, token on, rooted in notebooks/, and stops cleanly.

This is an acceptance test of the README's first command, so it runs in the default suite. It
needs `make` and an installed .venv (which `make test` builds first); it takes a few seconds.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
START_TIMEOUT = 90  # seconds; the server is normally up in 2-4 s
STOP_TIMEOUT = 20

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _live_members(pgid: int) -> list[int]:
    """Pids of the processes in group pgid that are not zombies (zombies run nothing)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: fall back to "can the group still be signalled?"
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # fields after "(comm)": state ppid pgrp ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _stop_group(proc: subprocess.Popen) -> list[int]:
    """SIGTERM the whole process group, SIGKILL it if it lingers; return pids that survived TERM."""
    pgid = proc.pid  # start_new_session=True makes make the leader of its own group
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT
    while _live_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    lingering = _live_members(pgid)
    if lingering:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return lingering


def test_make_lab_serves_notebooks_with_a_token(tmp_path):
    """`make lab` serves notebooks/ behind a token; SIGTERM to its process group ends it all."""
    port, token = _free_port(), secrets.token_hex(16)
    home = tmp_path / "jupyter-home"
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        IPYTHONDIR=str(home / "ipython"),
        MPLCONFIGDIR=str(home / "matplotlib"),
    )
    env.pop("MAKEFLAGS", None)  # a parent `make test -j` must not leak into this make
    env.pop("MFLAGS", None)
    lab_args = " ".join(
        [
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--ServerApp.open_browser=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
    )
    log_path = tmp_path / "lab.log"
    base = f"http://127.0.0.1:{port}"

    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(ROOT), "lab", f"LAB_ARGS={lab_args}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own session => own process group, killed as a whole below
        )
    lingering: list[int] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                status, _ = _get(f"{base}/api/status?token={token}")
            except OSError:
                status = None
            if status == 200:
                break
            if proc.poll() is not None:
                pytest.fail(f"make lab exited with {proc.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no answer on {base} after {START_TIMEOUT} s:\n{log_path.read_text()}")
            time.sleep(0.25)

        # Token on: without it the API refuses.
        status, _ = _get(f"{base}/api/contents")
        assert status == 403

        # The contents root is notebooks/: same visible entries...
        status, body = _get(f"{base}/api/contents?token={token}&content=1")
        assert status == 200
        root = json.loads(body)
        assert root["path"] == "" and root["type"] == "directory"
        served = {item["name"] for item in root["content"]}
        on_disk = {
            p.name
            for p in NOTEBOOKS.iterdir()
            if not p.name.startswith(".") and p.name != "__pycache__"
        }
        assert served == on_disk

        # ...and the server's own record of its root dir says so.
        records = list((home / "runtime").glob("jpserver-*.json"))
        assert len(records) == 1, records
        record = json.loads(records[0].read_text())
        assert Path(record["root_dir"]).resolve() == NOTEBOOKS.resolve()
        assert record["port"] == port
        assert record["token"] == token

        # Terminals are off by default: the token must not be a shell (a root shell as root).
        status, _ = _get(f"{base}/api/terminals?token={token}")
        assert status == 404

        # It is JupyterLab, not a bare Jupyter server.
        status, body = _get(f"{base}/lab?token={token}")
        assert status == 200
        assert b"jupyter-config-data" in body
    finally:
        lingering = _stop_group(proc)

    assert not lingering, f"processes survived SIGTERM to the group: {lingering}"
    assert not _live_members(proc.pid), "processes of `make lab` are still running"
    with pytest.raises(OSError):
        _get(f"{base}/api/status?token={token}")


def _make_lab(lab_args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS")}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "lab", f"LAB_ARGS={lab_args}"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "lab_args",
    [
        "--ip=0.0.0.0 --IdentityProvider.token=",
        "--ServerApp.ip=192.168.1.5 --ServerApp.token=''",
        "--ip '' --NotebookApp.token=",
    ],
)
def test_make_lab_refuses_network_without_token(lab_args):
    """LAB_ARGS binding a non-loopback address with an empty token stop `make lab` (exit 2)
    before any server starts."""
    proc = _make_lab(lab_args)
    assert proc.returncode == 2
    assert "make lab: refusing to serve on" in proc.stderr and "empty token" in proc.stderr
    assert "jupyterlab" not in proc.stdout


def test_make_lab_turns_terminals_off_unless_asked():
    """The lab command line disables terminals, and leaves them to LAB_ARGS when it names them
    (Jupyter rejects an option given twice)."""
    dry = ["make", "--no-print-directory", "-n", "-C", str(ROOT), "lab"]
    default = subprocess.run(dry, capture_output=True, text=True, timeout=60).stdout
    assert "--ServerApp.terminals_enabled=False" in default
    on = subprocess.run(
        [*dry, "LAB_ARGS=--ServerApp.terminals_enabled=True"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "terminals_enabled=False" not in on and "--ServerApp.terminals_enabled=True" in on
