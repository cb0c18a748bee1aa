"""The code stays in one style: ruff's lint and format checks pass on the whole tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff():
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return str(exe)
    found = shutil.which("ruff")
    if not found:
        pytest.skip("ruff is not installed (pip install -e '.[test]' brings it)")
    return found


def test_ruff_check_passes():
    """ruff check (configured in pyproject.toml) finds nothing."""
    p = subprocess.run([_ruff(), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:]


def test_ruff_format_is_clean():
    """ruff format --check would change no file."""
    p = subprocess.run(
        [_ruff(), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stdout[-3000:]
