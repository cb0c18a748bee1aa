"""The install routes (pyproject.toml, environment.yml, Makefile, .ci/run, README) agree."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest itself depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# Conda-only entries of environment.yml that have no counterpart in [project] dependencies.
CONDA_ONLY = {"python", "pip"}
# conda-forge name -> PyPI name, for packages that are spelled differently (none today).
CONDA_TO_PYPI: dict[str, str] = {}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _runtime_requirements() -> dict[str, Requirement]:
    reqs = (Requirement(spec) for spec in _pyproject()["project"]["dependencies"])
    return {canonicalize_name(r.name): r for r in reqs}


def _conda_specs() -> dict[str, str]:
    """Map each conda dependency of environment.yml (not the pip: sub-list) to its version spec."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    specs = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # the `- pip: [-e .]` block installs the kit itself
            continue
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", str(dep))
        assert m, f"unparsable conda spec in environment.yml: {dep!r}"
        name = CONDA_TO_PYPI.get(m.group(1), m.group(1))
        specs[canonicalize_name(name)] = m.group(2).replace(" ", "")
    return specs


def test_environment_yml_names_the_runtime_dependencies():
    """environment.yml lists exactly the packages of pyproject's runtime dependencies."""
    conda = set(_conda_specs()) - CONDA_ONLY
    assert conda == set(_runtime_requirements())


def test_environment_yml_lower_bounds_match_pyproject():
    """Every version bound in environment.yml equals the one pyproject.toml states."""
    conda = _conda_specs()
    runtime = _runtime_requirements()
    for name, spec in conda.items():
        if name == "python":
            assert spec == _pyproject()["project"]["requires-python"]
        elif name in runtime and spec:
            assert spec == str(runtime[name].specifier), name


def test_environment_yml_installs_the_kit_with_pip():
    """environment.yml ends by installing the kit itself with `pip install -e .`."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert env["name"] == "allocsim"
    assert env["channels"] == ["conda-forge"]
    pip_blocks = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_blocks == [["-e ."]]


@pytest.mark.parametrize("command", ["make lab", "make test"])
def test_readme_names_the_start_commands(command):
    """The README tells a newcomer to run `make lab` and `make test`."""
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_run_calls_make_test():
    """.ci/run runs the suite through `make test`, the same command developers use."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    code = [line.split("#", 1)[0].strip() for line in lines]
    assert any(re.match(r"^(exec\s+)?make\s+(.*\s)?test(\s|$)", line) for line in code)


def test_ci_run_stops_on_the_first_failure():
    """.ci/run is a bash script with `set -euo pipefail`, so a failing `make test` fails CI."""
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash")
    assert re.search(r"^set -euo pipefail$", text, re.MULTILINE)


def test_makefile_has_the_documented_targets():
    """The Makefile defines every target that the README and .ci/run mention."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.MULTILINE))
    assert {"venv", "lab", "chromium", "test", "handouts", "bench", "clean"} <= targets
    assert {"check", "wheelhouse", "notebooks", "nbcheck"} <= targets


def test_make_lab_says_how_to_get_python3_venv(tmp_path):
    """Without Python's venv module, make stops with one clear instruction (python3-venv)."""
    fake = tmp_path / "python-without-venv"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    done = subprocess.run(
        ["make", "-C", str(ROOT), "venv", f"PY={fake}", f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "apt-get install python3-venv" in done.stdout
    assert not (tmp_path / "venv").exists()


def test_makefile_installs_from_the_wheelhouse_when_it_has_wheels():
    """make lab's install uses wheelhouse/ (no index) once make wheelhouse has filled it."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"--no-index --find-links \$\(WHEELHOUSE\)", text)
    assert re.search(r"pip install .*\$\(PIP_OFFLINE\)", text)
    assert re.search(r"pip download .*--dest \$\(WHEELHOUSE\)", text, re.S)


def test_workshop_health_check_passes_here():
    """python -m allocsim.widgets check (make check) passes on the development machine."""
    done = subprocess.run(
        [sys.executable, "-m", "allocsim.widgets", "check"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout and "the livelock demo" in done.stdout


def test_facilitators_notes_name_the_scenes_and_the_answer_key():
    """docs/FACILITATORS.md lists the demo's scenes as they are and says where the key is."""
    from allocsim.widgets import SCENES

    text = " ".join((ROOT / "docs" / "FACILITATORS.md").read_text(encoding="utf-8").split())
    for scene in SCENES:
        assert f'"{scene}"' in text, scene
    for phrase in ("make check", "make wheelhouse", "answer-key", "python3-venv", "Alt+R"):
        assert phrase in text, phrase
