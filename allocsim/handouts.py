"""Printable handouts: execute the notebooks with static figures and write HTML (and PDF).

    python -m allocsim.handouts [--out handouts/] [--no-pdf] [NOTEBOOK ...]

Each notebook is executed headless with nbclient (``ALLOCSIM_STATIC=1``, so every figure is an
inline PNG and no cell waits for a browser), converted to a self-contained HTML page (figures
embedded as base64 PNG) and, where Debian's chromium is installed, printed to PDF with
nbconvert's webpdf exporter. nbconvert cannot be told which browser to use, so Playwright's
``launch`` is patched for the duration of the export to start ``/usr/bin/chromium`` (or
``$CHROMIUM``); ``playwright install`` is never needed.

Widgets (sliders, buttons) do not survive in static pages: the handouts show the figures and
readouts that the notebooks print, and answers in collapsed blocks.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time
from pathlib import Path

__all__ = ["NOTEBOOKS_DIR", "chromium_path", "execute", "to_html", "to_pdf", "build", "main"]

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    old = os.environ.get("ALLOCSIM_STATIC")
    os.environ["ALLOCSIM_STATIC"] = "1"  # the kernel inherits it: static figures, no threads
    try:
        NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
    finally:
        if old is None:
            os.environ.pop("ALLOCSIM_STATIC", None)
        else:
            os.environ["ALLOCSIM_STATIC"] = old
    return nb


def to_html(nb) -> str:
    """An executed notebook as one HTML page with its figures embedded (base64 PNG)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


@contextlib.contextmanager
def _system_chromium(path: str):
    """Make Playwright launch ``path`` (nbconvert's webpdf has no browser-path option)."""
    from playwright.async_api import BrowserType

    original = BrowserType.launch

    @functools.wraps(original)
    async def launch(self, *args, **kwargs):
        kwargs.setdefault("executable_path", path)
        kwargs["args"] = list(kwargs.get("args") or []) + CHROMIUM_ARGS
        return await original(self, *args, **kwargs)

    BrowserType.launch = launch
    try:
        yield
    finally:
        BrowserType.launch = original


def to_pdf(nb, chromium: str | None = None) -> bytes:
    """An executed notebook printed to PDF by Debian's chromium (nbconvert webpdf)."""
    from nbconvert import WebPDFExporter

    chromium = chromium or chromium_path()
    if chromium is None:
        raise FileNotFoundError("no chromium: set $CHROMIUM or install Debian's chromium package")
    with _system_chromium(chromium):
        pdf, _ = WebPDFExporter().from_notebook_node(nb)
    return pdf


def build(
    out="handouts", notebooks=None, *, pdf: bool | None = None, timeout: int = 120, log=print
) -> list[Path]:
    """Execute ``notebooks`` (default: every ``notebooks/[0-9]*.ipynb``) and write
    ``<out>/<name>.html`` (and ``.pdf`` when ``pdf`` is true, or by default when chromium is
    present). Returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if notebooks is None:
        notebooks = sorted(NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
    chromium = chromium_path()
    if pdf is None:
        pdf = chromium is not None
    elif pdf and chromium is None:
        raise FileNotFoundError(
            "PDF asked for, but no chromium: set $CHROMIUM or install Debian's chromium package"
        )
    written = []
    for path in map(Path, notebooks):
        t0 = time.perf_counter()
        nb = execute(path, timeout=timeout)
        html_path = out / (path.stem + ".html")
        html_path.write_text(to_html(nb), encoding="utf-8")
        written.append(html_path)
        note = ""
        if pdf:
            pdf_path = out / (path.stem + ".pdf")
            pdf_path.write_bytes(to_pdf(nb, chromium))
            written.append(pdf_path)
            note = " + PDF"
        log(f"{path.name}: HTML{note} in {time.perf_counter() - t0:.1f} s")
    if not pdf:
        log("no PDF: chromium not found (install Debian's chromium, or set $CHROMIUM)")
    return written


def main(argv=None) -> int:
    """``python -m allocsim.handouts``: see the module docstring."""
    p = argparse.ArgumentParser(
        prog="python -m allocsim.handouts",
        description="Execute the notebooks with static figures and write "
        "HTML (and PDF where chromium is present).",
    )
    p.add_argument("notebooks", nargs="*", help="notebooks to build (default: all)")
    p.add_argument("--out", default="handouts", help="output folder (default: handouts/)")
    p.add_argument("--no-pdf", action="store_true", help="HTML only")
    p.add_argument("--timeout", type=int, default=120, help="seconds per cell (default 120)")
    args = p.parse_args(argv)
    try:
        files = build(
            args.out,
            args.notebooks or None,
            pdf=False if args.no_pdf else None,
            timeout=args.timeout,
        )
    except Exception as exc:  # a failing cell: say which, without a wall of traceback
        print(f"handouts: {type(exc).__name__}: {str(exc)[-2000:]}", file=sys.stderr)
        return 1
    print(f"wrote {len(files)} files to {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
