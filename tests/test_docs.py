"""The docs name only things that exist, and the patch switches sit at marked points."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = (ROOT / "docs" / "MODEL.md").read_text()
ROWS = re.findall(r"^\| `([a-z_]+)\.([A-Za-z_.]+)` \|", MODEL, flags=re.M)


def test_model_doc_table_is_not_empty():
    """The mirrored-names table lists the kernel functions the model mirrors."""
    assert len(ROWS) >= 30


@pytest.mark.parametrize("module,name", ROWS)
def test_model_doc_names_exist(module, name):
    """Every allocsim name in the docs' mirrored-names table exists in the package."""
    obj = importlib.import_module(f"allocsim.{module}")
    for part in name.split("."):
        obj = getattr(obj, part)
    assert obj is not None


def test_patch_switches_read_only_at_marked_points():
    """Each read of a patch switch in allocsim/ sits within three lines of a PATCH(name) marker."""
    from allocsim.patches import Patches

    for path in (ROOT / "allocsim").glob("*.py"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            for name in Patches.switches():
                if f"patches.{name}" in line:
                    context = "\n".join(lines[max(0, i - 3) : i + 1])
                    assert f"PATCH({name})" in context, f"{path.name}:{i + 1} reads {name} unmarked"


def test_every_patch_has_a_marker():
    """grep PATCH( finds a decision point for each switch (2010 patches and 2.6.38)."""
    from allocsim.patches import Patches

    out = subprocess.run(
        ["grep", "-rn", "PATCH(", str(ROOT / "allocsim")], capture_output=True, text=True
    ).stdout
    for name in Patches.switches():
        assert f"PATCH({name})" in out
