"""Keep each chapter's pair in step: NN-name.md (the source) and NN-name.ipynb (what Lab opens).

    python notebooks/_sync.py           # rewrite every .ipynb from its .md, without outputs
    python notebooks/_sync.py --check   # pre-commit check; exit 1 on a problem (see below)
    python notebooks/_sync.py --slides  # add missing slide marks to the .md files, then sync

The chapters are jupytext MyST Markdown files, paired with their notebooks by
notebooks/jupytext.toml: in JupyterLab (the kit installs jupytext) saving either file updates the
other. This script is for edits made outside Lab, and for developers about to commit: the
committed .ipynb files carry no outputs, execution counts or widget state, so that diffs stay
readable and a fresh clone opens clean. ``--check`` looks at what git is about to commit (the
index) and at the working tree's pairs; a learner's run-and-saved notebook in the working tree is
not a problem (only staged or committed outputs are). ``make nbcheck`` runs it; to run it before
every commit: ``printf '#!/bin/sh\\nexec make -s nbcheck\\n' > .git/hooks/pre-commit`` and
``chmod +x`` it.

Lecture mode: the chapters carry slide marks for jupyterlab-rise (cell metadata
``slideshow.slide_type``; the notebook's ``rise`` settings). ``--slides`` adds the marks a chapter
lacks, never changing one a lecturer set: the title cell and every "## " section start a slide,
a cell that shows a demo starts a sub-slide (it fills the screen), the setup cell is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# The notebook-level metadata a committed .ipynb keeps (the kernel to start, the language).
KEEP_METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {"name": "python"},
}


def chapters() -> list[Path]:
    """The chapter sources, in order: notebooks/NN-*.md."""
    return sorted(HERE.glob("[0-9][0-9]-*.md"))


# Cell metadata the text source carries and the notebook must too: handout and slide markers.
PAIRED_METADATA = ("tags", "slideshow")


def inputs(nb) -> list[tuple]:
    """What a pair must agree on: each cell's type, source, tags and slide type (not outputs,
    ids, execution counts or what JupyterLab adds when a learner runs the notebook)."""
    return [
        (c.cell_type, c.source, *(repr(c.metadata.get(k)) for k in PAIRED_METADATA))
        for c in nb.cells
    ]


def pairing_problems() -> list[str]:
    """Working-tree pairs that disagree: a chapter without its other half, or different cells."""
    import jupytext
    import nbformat

    problems = []
    mds = {p.stem for p in chapters()}
    nbs = {p.stem for p in HERE.glob("[0-9][0-9]-*.ipynb")}
    problems += [f"{s}.md has no {s}.ipynb" for s in sorted(mds - nbs)]
    problems += [f"{s}.ipynb has no {s}.md" for s in sorted(nbs - mds)]
    for stem in sorted(mds & nbs):
        text = jupytext.read(HERE / f"{stem}.md")
        nb = nbformat.read(HERE / f"{stem}.ipynb", as_version=4)
        if inputs(text) != inputs(nb):
            problems.append(f"{stem}.ipynb and {stem}.md have different cells")
    return problems


def output_problems(name: str, raw: str) -> list[str]:
    """What a committed notebook must not hold: outputs, execution counts, saved widget state."""
    nb = json.loads(raw)
    problems = [f"{name}: saved widget state"] if "widgets" in nb.get("metadata", {}) else []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{name}: cell {i} has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"{name}: cell {i} has an execution count")
    return problems


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def committed_notebooks(rev: str = "HEAD") -> dict[str, str] | None:
    """The notebooks as git holds them: ``rev`` a commit, or ``""`` for the index (staged).

    None outside a git checkout (an unpacked release, a copy), where there is nothing to check.
    """
    if _git("rev-parse", "--is-inside-work-tree") is None:
        return None
    names = _git("ls-files", "--", "notebooks/*.ipynb")
    if names is None:
        return None
    blobs = {}
    for name in names.split():
        text = _git("show", f"{rev}:{name}")
        if text is not None:  # not in rev (e.g. new and not yet committed)
            blobs[name] = text
    return blobs


def clean(nb):
    """The notebook without outputs, execution counts or widget state (in place)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    slides = {"rise": nb.metadata["rise"]} if "rise" in nb.metadata else {}
    nb.metadata = {**KEEP_METADATA, **slides}
    return nb


# jupyterlab-rise settings for every chapter: long slides scroll (a demo is taller than a
# slide), no transitions to wait for in front of a room.
RISE = {"scroll": True, "transition": "none", "start_slideshow_at": "selected"}
METADATA_FILTER = "rise,-jupytext.text_representation.jupytext_version"  # as jupytext.toml
DEMO_MARKS = (
    "Demo(",
    "demo.show()",
    "livelock_demo(",
    "Explorer(",
    "Stepper(",
    "LiveCheck(",
    "Panel(",
)


def slide_type(cell, index: int) -> str | None:
    """The slide mark a chapter's cell gets by default (None: it continues the slide)."""
    src = cell.source
    if index == 0:
        return "slide"
    if cell.cell_type == "markdown" and src.startswith("## "):
        return "slide"
    if cell.cell_type == "code" and "use_live_plots" in src:
        return "skip"
    if cell.cell_type == "code" and any(mark in src for mark in DEMO_MARKS):
        return "subslide"
    return None


def add_slides() -> list[Path]:
    """Give every chapter the slide marks it lacks (see the module docstring)."""
    import jupytext

    fmt = {"extension": ".md", "format_name": "myst", "notebook_metadata_filter": METADATA_FILTER}
    changed = []
    for md in chapters():
        nb = jupytext.read(md)
        before = md.read_text(encoding="utf-8")
        nb.metadata["rise"] = {**RISE, **nb.metadata.get("rise", {})}
        for i, cell in enumerate(nb.cells):
            kind = slide_type(cell, i)
            if kind and "slideshow" not in cell.metadata:
                cell.metadata["slideshow"] = {"slide_type": kind}
        after = jupytext.writes(nb, fmt=fmt)
        if after != before:
            md.write_text(after, encoding="utf-8")
            changed.append(md)
    return changed


def sync() -> list[Path]:
    """Write every chapter's .ipynb from its .md, keeping the ids of cells that did not change."""
    import jupytext
    import nbformat
    from jupytext.combine import combine_inputs_with_outputs

    written = []
    for md in chapters():
        path = md.with_suffix(".ipynb")
        nb = jupytext.read(md)
        if path.exists():
            nb = combine_inputs_with_outputs(nb, nbformat.read(path, as_version=4))
        text = nbformat.writes(clean(nb)) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
        # The pair's times equal: jupytext in JupyterLab refuses to open a notebook whose .ipynb
        # is over a second newer than its .md ("more recent than"), which a fresh write is.
        md_time = md.stat().st_mtime_ns
        if path.stat().st_mtime_ns > md_time:
            os.utime(path, ns=(md_time, md_time))
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--slides" in argv:
        for path in add_slides():
            print("slide marks added to", path.relative_to(ROOT))
    if "--check" not in argv:
        for path in sync():
            print("wrote", path.relative_to(ROOT))
        return 0
    problems = pairing_problems()
    staged = committed_notebooks("")
    for name, raw in (staged or {}).items():
        problems += output_problems(name, raw)
    for p in problems:
        print(p)
    if problems:
        print("fix: python notebooks/_sync.py (rewrites the .ipynb from the .md), then git add")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
