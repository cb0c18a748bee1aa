"""Printable handouts: execute the notebooks with static figures and write HTML (and PDF).

    python -m allocsim.handouts [--out handouts/] [--paper a4|letter] [--no-pdf] [NOTEBOOK ...]

Each notebook is executed headless with nbclient (``ALLOCSIM_STATIC=1``, so every figure is an
inline PNG and no cell waits for a browser; the kernel talks over IPC, so it starts quietly),
converted to a self-contained HTML page titled with the notebook's title (figures embedded as
base64 PNG, code lines wrapped, cells tagged ``interactive-only`` left out) and, where Debian's
chromium is installed, printed to PDF on A4 (or US Letter) pages by that chromium through
Playwright (``playwright install`` is never needed). ``index.html`` lists the handouts;
``answer-key.html`` (and PDF) holds the learner checks' answers for facilitators.

Widgets (sliders, buttons) do not survive in static pages: the handouts show the figures and
readouts that the notebooks print, and answers in collapsed blocks.
"""

from __future__ import annotations

import copy
import html
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "NOTEBOOKS_DIR",
    "PAPER",
    "chromium_path",
    "execute",
    "title_of",
    "to_html",
    "to_pdf",
    "index_html",
    "build",
    "main",
]

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Paper sizes Chromium knows by name; A4 unless asked otherwise.
PAPER = {"a4": "A4", "letter": "Letter"}
INTERACTIVE_TAG = "interactive-only"  # cells that only make sense with live widgets

# Printed pages: code wraps instead of running off the right margin; figures fit the page.
PRINT_CSS = """
pre, .highlight pre, .jp-RenderedText pre, code {
  white-space: pre-wrap !important; overflow-wrap: anywhere; word-break: break-word;
}
.jp-InputArea-editor, .highlight, .jp-OutputArea-output { overflow: visible !important; }
img { max-width: 100%; height: auto; }
@media print {
  .jp-OutputArea-child, img, table { break-inside: avoid-page; }
}
"""


def chromium_path() -> str | None:
    """The chromium to print PDFs with (``$CHROMIUM`` or ``/usr/bin/chromium``), if present."""
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def execute(path, *, timeout: int = 120):
    """Run a notebook headless with static figures; return the executed notebook node.

    ``timeout`` is per cell (seconds). Raises ``nbclient.exceptions.CellExecutionError`` with
    the failing cell's traceback if a cell fails.
    """
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    old = os.environ.get("ALLOCSIM_STATIC")
    os.environ["ALLOCSIM_STATIC"] = "1"  # the kernel inherits it: static figures, no threads
    try:
        # IPC, not TCP: a kernel on TCP warns at every start that its traffic is unencrypted.
        # The sockets get an absolute path: the kernel runs in the notebook's folder.
        with tempfile.TemporaryDirectory(prefix="allocsim-kernel-") as sockets:
            km = KernelManager(
                kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel")
            )
            try:
                NotebookClient(
                    nb,
                    km=km,
                    timeout=timeout,
                    kernel_name="python3",
                    resources={"metadata": {"path": str(path.parent)}},
                ).execute()
            finally:  # nbclient leaves a kernel it was given running
                if km.has_kernel:
                    km.shutdown_kernel(now=False)
    finally:
        if old is None:
            os.environ.pop("ALLOCSIM_STATIC", None)
        else:
            os.environ["ALLOCSIM_STATIC"] = old
    return nb


def title_of(nb, default: str = "allocsim") -> str:
    """The notebook's title: the first Markdown heading of its first cells."""
    for cell in nb.cells[:3]:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return default


def _static_cells(nb):
    """The notebook without the cells that only make sense with live widgets."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if INTERACTIVE_TAG not in c.metadata.get("tags", [])]
    return nb


def _with_css(page: str, css: str) -> str:
    return page.replace("</head>", f"<style>{css}</style>\n</head>", 1)


def to_html(nb, *, title: str | None = None) -> str:
    """An executed notebook as one HTML page titled with its title, figures embedded (base64
    PNG), code wrapped, and without its interactive-only cells."""
    from nbconvert import HTMLExporter

    title = title or title_of(nb)
    body, _ = HTMLExporter().from_notebook_node(
        _static_cells(nb), resources={"metadata": {"name": title}}
    )
    return _with_css(body, PRINT_CSS)


def to_pdf(page, chromium: str | None = None, *, paper: str = "a4", title: str = "") -> bytes:
    """An HTML page (a string, or an executed notebook) printed to PDF by Debian's chromium,
    on ``paper`` ("a4" or "letter"), with the title and the page numbers in the margins."""
    from playwright.sync_api import sync_playwright

    if not isinstance(page, str):
        title = title or title_of(page)
        page = to_html(page, title=title)
    if paper not in PAPER:
        raise ValueError(f"paper must be one of {', '.join(PAPER)}, got {paper!r}")
    chromium = chromium or chromium_path()
    if chromium is None:
        raise FileNotFoundError("no chromium: set $CHROMIUM or install Debian's chromium package")
    small = "font-size:8px;width:100%;margin:0 12mm;color:#555;font-family:sans-serif"
    with tempfile.TemporaryDirectory() as tmp:
        html_file = Path(tmp) / "page.html"
        html_file.write_text(page, encoding="utf-8")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                tab = browser.new_page()
                tab.emulate_media(media="print")
                # the page asks CDNs for MathJax and require.js; offline those fail at once
                tab.goto(html_file.as_uri(), wait_until="load")
                return tab.pdf(
                    format=PAPER[paper],
                    print_background=True,
                    margin={"top": "16mm", "bottom": "16mm", "left": "12mm", "right": "12mm"},
                    display_header_footer=True,
                    header_template=f"<div style='{small}'>{html.escape(title)}</div>",
                    footer_template=(
                        f"<div style='{small};text-align:right'><span class='pageNumber'>"
                        "</span> / <span class='totalPages'></span></div>"
                    ),
                )
            finally:
                browser.close()


def index_html(entries, *, answer_key: str | None = None) -> str:
    """The handouts' index page: each notebook's title and time, with links to its HTML and
    PDF, and the answer key for facilitators."""
    rows = []
    for e in entries:
        links = " · ".join(
            f"<a href='{html.escape(name)}'>{kind}</a>" for kind, name in e["files"].items()
        )
        time_needed = f" — {html.escape(e['time'])}" if e.get("time") else ""
        rows.append(f"<li><p><b>{html.escape(e['title'])}</b> ({links}){time_needed}</p></li>")
    key = ""
    if answer_key:
        key = (
            "<h2>For facilitators</h2><p>The answers of the learner checks: "
            f"<a href='{html.escape(answer_key)}'>answer key</a>.</p>"
        )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>allocsim handouts: the 2010 per-cpu counter drift livelock</title>"
        "<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.4}"
        "</style></head><body><h1>allocsim handouts</h1>"
        "<p>The Linux 2.6.36 page allocator, its per-CPU counters and the livelock that Mel "
        "Gorman's three patches fixed: the notebooks of the allocsim teaching kit, executed "
        "with static figures. Work through them in order.</p>"
        f"<ol>{''.join(rows)}</ol>{key}</body></html>"
    )


def _time_needed(nb) -> str:
    text = nb.cells[0].source if nb.cells else ""
    for line in text.splitlines():
        if line.startswith("**Time needed:**"):
            return line.replace("**Time needed:**", "").strip().rstrip(".")
    return ""


def build(
    out="handouts",
    notebooks=None,
    *,
    pdf: bool | None = None,
    timeout: int = 120,
    log=print,
    paper: str = "a4",
    answer_key: bool | None = None,
) -> list[Path]:
    """Execute ``notebooks`` (default: every ``notebooks/[0-9]*.ipynb``) and write
    ``<out>/<name>.html`` (and ``.pdf`` when ``pdf`` is true, or by default when chromium is
    present), ``<out>/index.html`` and, by default when building every notebook, the answer
    key. Returns the files written."""
    if paper not in PAPER:
        raise ValueError(f"paper must be one of {', '.join(PAPER)}, got {paper!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    everything = notebooks is None
    if notebooks is None:
        notebooks = sorted(NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
    if answer_key is None:
        answer_key = everything
    chromium = chromium_path()
    if pdf is None:
        pdf = chromium is not None
    elif pdf and chromium is None:
        raise FileNotFoundError(
            "PDF asked for, but no chromium: set $CHROMIUM or install Debian's chromium package"
        )
    written, entries = [], []
    for path in map(Path, notebooks):
        t0 = time.perf_counter()
        nb = execute(path, timeout=timeout)
        title = title_of(nb, path.stem)
        page = to_html(nb, title=title)
        html_path = out / (path.stem + ".html")
        html_path.write_text(page, encoding="utf-8")
        written.append(html_path)
        files = {"HTML": html_path.name}
        note = ""
        if pdf:
            pdf_path = out / (path.stem + ".pdf")
            pdf_path.write_bytes(to_pdf(page, chromium, paper=paper, title=title))
            written.append(pdf_path)
            files["PDF"] = pdf_path.name
            note = " + PDF"
        entries.append({"title": title, "time": _time_needed(nb), "files": files})
        log(f"{path.name}: HTML{note} in {time.perf_counter() - t0:.1f} s")
    key_name = None
    if answer_key:
        from .widgets.questions import answer_key_html

        t0 = time.perf_counter()
        key_page = _with_css(answer_key_html(), PRINT_CSS)
        key_path = out / "answer-key.html"
        key_path.write_text(key_page, encoding="utf-8")
        written.append(key_path)
        key_name = key_path.name
        if pdf:
            key_pdf = out / "answer-key.pdf"
            key_pdf.write_bytes(to_pdf(key_page, chromium, paper=paper, title="answer key"))
            written.append(key_pdf)
        log(f"answer key in {time.perf_counter() - t0:.1f} s")
    index = out / "index.html"
    index.write_text(index_html(entries, answer_key=key_name), encoding="utf-8")
    written.append(index)
    if not pdf:
        log("no PDF: chromium not found (install Debian's chromium, or set $CHROMIUM)")
    return written


def main(argv=None) -> int:
    """``python -m allocsim.handouts``: see the module docstring."""
    from .__main__ import _OneLineParser

    p = _OneLineParser(
        prog="python -m allocsim.handouts",
        description="Execute the notebooks with static figures and write "
        "HTML (and PDF where chromium is present), an index and the answer key.",
    )
    p.add_argument("notebooks", nargs="*", help="notebooks to build (default: all)")
    p.add_argument("--out", default="handouts", help="output folder (default: handouts/)")
    p.add_argument("--no-pdf", action="store_true", help="HTML only")
    p.add_argument("--paper", choices=sorted(PAPER), default="a4", help="PDF page size")
    p.add_argument("--timeout", type=int, default=120, help="seconds per cell (default 120)")
    p.add_argument(
        "--answer-key", action="store_true", help="write the answer key for chosen notebooks too"
    )
    args = p.parse_args(argv)
    try:
        files = build(
            args.out,
            args.notebooks or None,
            pdf=False if args.no_pdf else None,
            timeout=args.timeout,
            paper=args.paper,
            answer_key=True if args.answer_key else None,
        )
    except Exception as exc:  # a failing cell: say which, without a wall of traceback
        print(f"handouts: {type(exc).__name__}: {str(exc)[-2000:]}", file=sys.stderr)
        return 1
    print(f"wrote {len(files)} files to {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
