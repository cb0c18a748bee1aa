"""The notebooks: each .ipynb has the cells of its MyST source (notebooks/NN-name.md), the
committed copies carry no outputs, and every one executes headless (static figures, a per-cell
timeout) in under two minutes in total; the handouts build.

A learner's run-and-saved notebook passes these tests: outputs are only checked in the copies
git holds, and the pairs are compared on their cells' sources alone.
"""

import ast
import importlib.util
import os
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9]*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell: a livelock is reported by the model, never waited on


def _sync_module():
    spec = importlib.util.spec_from_file_location("nb_sync", NB_DIR / "_sync.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_notebooks_exist_in_order_with_a_livelock_chapter():
    """The sequence is numbered 00 … 07 and one notebook's name contains 'livelock'."""
    names = [p.name for p in NOTEBOOKS]
    assert [n[:2] for n in names] == [f"{i:02d}" for i in range(len(names))]
    assert len(names) >= 7
    assert any("livelock" in n for n in names)


def test_notebooks_are_committed_without_outputs():
    """The notebooks git holds at HEAD have no outputs, execution counts or widget state."""
    blobs = _sync_module().committed_notebooks("HEAD")
    if blobs is None:
        pytest.skip("not a git checkout: there are no committed copies to check")
    assert blobs, "git holds no notebooks/*.ipynb"
    problems = [p for name, raw in blobs.items() for p in _sync_module().output_problems(name, raw)]
    assert not problems, "\n".join(problems) + "\n(python notebooks/_sync.py, then commit)"


def test_output_check_finds_outputs_counts_and_widget_state():
    """The pre-commit check reports a run-and-saved notebook and passes a clean one."""
    sync = _sync_module()
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    assert sync.output_problems("x", nbformat.writes(sync.clean(nb))) == []
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text="allocsim 0.1.0\n")]
    code.execution_count = 1
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    found = sync.output_problems("x", nbformat.writes(nb))
    assert len(found) == 3, found


def test_every_notebook_has_the_cells_of_its_text_source():
    """Each NN-name.ipynb has exactly the cells (types and sources) of its NN-name.md."""
    assert [p.stem for p in _sync_module().chapters()] == [p.stem for p in NOTEBOOKS]
    assert _sync_module().pairing_problems() == []


def test_a_run_and_saved_notebook_still_matches_its_source(tmp_path):
    """Outputs and execution counts in a learner's saved copy do not break the pairing check."""
    import jupytext

    sync = _sync_module()
    nb = nbformat.read(NOTEBOOKS[1], as_version=4)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.outputs = [nbformat.v4.new_output("stream", text="ran\n")]
        cell.execution_count = i + 1
    saved = nbformat.reads(nbformat.writes(nb), as_version=4)
    text = jupytext.read(NOTEBOOKS[1].with_suffix(".md"))
    assert sync.inputs(saved) == sync.inputs(text)


def test_notebooks_open_with_goals_and_end_with_learner_checks():
    """Each opens with goals, time and kernel sources, and ends with questions to reveal."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0].source
        for heading in ("Learning goals", "Time needed", "Kernel sources for this chapter"):
            assert heading in first, f"{path.name}: no '{heading}'"
        assert "allocsim" in first
        tail = "\n".join(c.source for c in nb.cells[-5:])
        assert "Learner checks" in "\n".join(c.source for c in nb.cells)
        assert "aw.ask(" in tail or "<details>" in tail, f"{path.name}: no learner check at the end"


def test_notebooks_keep_cells_short_and_import_the_package():
    """Cells stay short (logic lives in the package) and code comes from `import allocsim`."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert any(re.search(r"^import allocsim$", s, re.M) for s in code), path.name
        for src in code:
            assert len(src.splitlines()) <= 15, f"{path.name}: long cell:\n{src}"
            assert "sys.path" not in src


def test_notebooks_carry_slide_marks_for_lecture_mode():
    """Each chapter is a slideshow: rise settings, its title and every section start a slide,
    each demo has a slide of its own, the setup cell is skipped."""
    demos = _sync_module().DEMO_MARKS
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.get("rise", {}).get("scroll") is True, path.name
        kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
        assert kinds[0] == "slide", f"{path.name}: (python notebooks/_sync.py --slides)"
        for cell, kind in zip(nb.cells, kinds, strict=True):
            if cell.cell_type == "markdown" and cell.source.startswith("## "):
                assert kind == "slide", f"{path.name}: {cell.source[:40]!r} starts no slide"
            if "use_live_plots" in cell.source:
                assert kind == "skip", path.name
            if cell.cell_type == "code" and any(m in cell.source for m in demos):
                assert kind in ("slide", "subslide"), f"{path.name}: demo {cell.source[:30]!r}"


def _ask_calls(path):
    """Every ``aw.ask(...)`` call in a notebook's code cells, as ast.Call nodes."""
    nb = nbformat.read(path, as_version=4)
    calls = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "ask"
            ):
                calls.append(node)
    return calls


def test_learner_checks_name_a_check_of_the_package_and_pass_no_answer():
    """Each aw.ask names a check in allocsim.widgets.questions and passes only notebook values."""
    from allocsim.widgets.questions import CHECKS

    used = set()
    for path in NOTEBOOKS:
        for call in _ask_calls(path):
            assert len(call.args) == 1 and isinstance(call.args[0], ast.Constant), (
                f"{path.name}: aw.ask takes the key of a check, not a question and its answer"
            )
            key = call.args[0].value
            assert key in CHECKS and key.startswith(path.name[:2]), f"{path.name}: {key!r}"
            for kw in call.keywords:
                assert isinstance(kw.value, ast.Name), f"{path.name}: {key} {kw.arg}= a literal"
                assert kw.arg in (*CHECKS[key].needs, "demo"), f"{path.name}: {key} {kw.arg}="
            used.add(key)
    assert used == set(CHECKS), f"checks no notebook asks: {set(CHECKS) - used}"


def test_no_learner_check_answer_appears_in_a_notebook_source():
    """The fixed answers (and their explanations) of the checks are not in the notebooks' text.

    Checks whose answer depends on the learner's run, machine or sweep are left out: no literal
    can hold those (the test above makes sure aw.ask is given no answer at all)."""
    from allocsim.widgets.questions import CHECKS, answer_key

    cheap = [k for k, c in CHECKS.items() if not c.depends]
    for row in answer_key(cheap):
        sources = [p.read_text() for p in NB_DIR.glob(f"{row['notebook']}-*")]
        assert sources
        answer = row["answer"]
        forms = {answer, answer.split()[0], answer.split()[0].replace(",", "")}
        forms |= {answer.replace(" / ", "/"), answer.replace(" / ", "/").replace(",", "")}
        for text in sources:
            for form in forms:
                if len(form) >= 3 and form not in ("yes", "no"):  # "10" is everywhere
                    # as a number of its own: 500 is not in 1500
                    found = re.search(rf"(?<![\d,._]){re.escape(form)}(?![\d_]|[,.]\d)", text)
                    assert not found, f"{row['key']}: answer {form!r} in the notebook"
            assert row["why"] not in text, f"{row['key']}: the explanation is in the notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_headless_without_errors(path, monkeypatch):
    """The notebook runs top to bottom in a fresh kernel with static figures, no cell failing."""
    from nbclient import NotebookClient

    monkeypatch.setenv("ALLOCSIM_STATIC", "1")  # the kernel inherits it
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NB_DIR)}},
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Traceback" not in streams
    assert "live plots on" not in streams  # use_live_plots chose the headless backend
    assert "static figures" not in streams  # and said nothing a handout reader cannot act on
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert pngs, f"{path.name}: no figure rendered"


def test_handouts_contain_figures_an_index_and_a4_pdf_where_chromium_exists(tmp_path):
    """make handouts' builder writes titled HTML with embedded PNG figures and wrapped code, an
    index page, and an A4 PDF with chromium (US Letter on request)."""
    from allocsim import handouts

    nb = NB_DIR / "01-buddy-lists.ipynb"
    files = handouts.build(tmp_path, [nb], log=lambda *_: None)
    page = (tmp_path / "01-buddy-lists.html").read_text()
    assert re.search(r'<img[^>]+src="data:image/png;base64,', page)
    assert "Learning goals" in page
    assert "<title>01 · Buddy lists" in page and "white-space: pre-wrap" in page
    index = (tmp_path / "index.html").read_text()
    assert "<title>allocsim handouts" in index and "01-buddy-lists.html" in index
    if handouts.chromium_path():
        pdf = tmp_path / "01-buddy-lists.pdf"
        assert pdf in files and pdf.read_bytes()[:5] == b"%PDF-"
        assert pdf.stat().st_size > 20_000  # figures make it more than a page of text
        assert "01-buddy-lists.pdf" in index
        box = re.search(rb"/MediaBox\s*\[0 0 ([\d.]+) ([\d.]+)\]", pdf.read_bytes())
        assert abs(float(box[1]) - 595) < 2 and abs(float(box[2]) - 842) < 2  # A4 in points
        letter = handouts.to_pdf("<html><body>x</body></html>", paper="letter")
        box = re.search(rb"/MediaBox\s*\[0 0 ([\d.]+) ([\d.]+)\]", letter)
        assert abs(float(box[1]) - 612) < 2 and abs(float(box[2]) - 792) < 2
    else:
        assert all(f.suffix == ".html" for f in files)
    assert os.environ.get("ALLOCSIM_STATIC") is None  # build() restores the environment


def test_handouts_leave_out_interactive_only_cells():
    """Cells tagged interactive-only (tick this box, move that slider) are not in handouts."""
    from allocsim import handouts

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A title"),
        nbformat.v4.new_markdown_cell(
            "Tick the boxes above.", metadata={"tags": ["interactive-only"]}
        ),
        nbformat.v4.new_markdown_cell("Read this."),
    ]
    page = handouts.to_html(nb)
    assert "Read this." in page and "Tick the boxes" not in page and "<title>A title" in page
    tagged = [
        c
        for p in NOTEBOOKS
        for c in nbformat.read(p, as_version=4).cells
        if "interactive-only" in c.metadata.get("tags", [])
    ]
    assert any("tick the three patch boxes" in c.source.lower() for c in tagged)


def test_sync_leaves_no_notebook_newer_than_its_text_source(tmp_path, monkeypatch):
    """After _sync.py writes a notebook, the .ipynb is not newer than its .md (jupytext in
    JupyterLab refuses to open a notebook more than a second newer than its paired text)."""
    import os
    import shutil

    sync = _sync_module()
    md = sync.chapters()[0]
    shutil.copy2(md, tmp_path / md.name)
    shutil.copy2(md.with_suffix(".ipynb"), tmp_path / md.with_suffix(".ipynb").name)
    old = (tmp_path / md.name).stat().st_mtime_ns - 60 * 10**9
    os.utime(tmp_path / md.name, ns=(old, old))  # the text source a minute older
    monkeypatch.setattr(sync, "HERE", tmp_path)
    sync.sync()
    ipynb = tmp_path / md.with_suffix(".ipynb").name
    assert ipynb.stat().st_mtime_ns <= (tmp_path / md.name).stat().st_mtime_ns
