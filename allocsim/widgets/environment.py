"""Where the notebook runs: live (ipympl) or static figures, and what to do if widgets fail.

:func:`use_live_plots` picks matplotlib's backend for a notebook, choosing the static one by itself
when running headless (the notebook tests, the handouts, pytest), so nothing waits on a front end
that is not there. :func:`show_environment` checks the packages and JupyterLab extensions the
notebooks need and says how to fix what is missing.
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import os
import sys

# Set (to anything non-empty) to force static figures: the handouts and the notebook tests do.
STATIC_ENV = "ALLOCSIM_STATIC"


def _widgets():
    import ipywidgets

    return ipywidgets


_MODE = {"mode": None, "reason": ""}


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None
    return get_ipython()


def _headless() -> bool:
    """True under the notebook tests, the handouts, or pytest (kernels inherit its env)."""
    return bool(os.environ.get(STATIC_ENV)) or "PYTEST_CURRENT_TEST" in os.environ


def _current_backend() -> str:
    import matplotlib

    try:
        name = matplotlib.get_backend(auto_select=False)  # matplotlib >= 3.9: never resolves
    except TypeError:  # pragma: no cover - older matplotlib
        name = matplotlib.rcParams.get("backend")
    return str(name or "")


def is_live_backend() -> bool:
    """Is matplotlib's backend ipympl's (``%matplotlib widget``)?"""
    name = _current_backend().lower()
    return "ipympl" in name or name in ("widget", "ipympl")


def use_live_plots(live: bool | None = None) -> str:
    """Choose the figure backend for this notebook and say which one it is.

    ``live=None`` (the default) asks for ipympl's live canvas, unless the kernel runs headless
    (the tests, the handouts: ``ALLOCSIM_STATIC`` set, or under pytest) or ipympl is missing;
    then inline PNG figures. ``live=False`` forces static figures. Outside IPython nothing is
    changed. Returns ``"live"``, ``"static"`` or ``"script"``.
    """
    ip = _ipython()
    if ip is None:
        _MODE.update(mode="script", reason="not running inside IPython")
        return "script"
    have_ipympl = importlib.util.find_spec("ipympl") is not None
    if live is False:
        reason = "static figures requested"
    elif _headless():
        reason = "running headless for tests or handouts"
    elif not have_ipympl:
        reason = "ipympl is not installed (pip install ipympl)"
    else:
        reason = ""
    mode = "static"
    if not reason:
        try:
            ip.run_line_magic("matplotlib", "widget")
            mode = "live"
        except Exception as exc:  # the widget backend could not start
            reason = f"%matplotlib widget failed: {exc}"
    if mode == "static":
        ip.run_line_magic("matplotlib", "inline")
    _MODE.update(mode=mode, reason=reason)
    if mode == "live":
        _tidy_live_figures()
        print("allocsim: live plots on (ipympl). If figures stay blank, see notebook 00.")
    elif not _headless():  # a handout or a test has no use for the message
        print(f"allocsim: static figures, {reason}; demos redraw a picture after each run.")
    return mode


# The widths JupyterLab gives an output area: about 840 px with the file browser open on a
# 1280 px screen. Live figures wider than this are cut on the right.
LIVE_MAX_WIDTH_IN = 8.2


def tidy_live_figure(fig) -> None:
    """A matplotlib figure hook (``figure.hooks``) for live notebooks: no toolbar over the axes,
    no "Figure N" header, and no wider than the output area."""
    canvas = fig.canvas
    for attr in ("header_visible", "footer_visible", "toolbar_visible"):
        if hasattr(canvas, attr):
            setattr(canvas, attr, False)
    w, h = fig.get_size_inches()
    if w > LIVE_MAX_WIDTH_IN:
        fig.set_size_inches(LIVE_MAX_WIDTH_IN, h * LIVE_MAX_WIDTH_IN / w)


def _tidy_live_figures() -> None:
    import matplotlib

    hook = "allocsim.widgets.environment:tidy_live_figure"
    hooks = list(matplotlib.rcParams.get("figure.hooks", []))
    if hook not in hooks:
        matplotlib.rcParams["figure.hooks"] = [*hooks, hook]


def plot_mode() -> str:
    """A sentence for readouts: live or static, and why."""
    if is_live_backend():
        return "Live plot (ipympl): the figure follows the run as simulated time advances."
    reason = _MODE["reason"] or f"matplotlib backend is {_current_backend() or 'not chosen'}"
    return (
        f"Static figure ({html.escape(reason)}): the picture is redrawn after each run. "
        "For live plots run <code>allocsim.widgets.use_live_plots()</code> in JupyterLab "
        "with ipympl (see notebook 00)."
    )


def _labextension(name: str) -> bool:
    return any(
        os.path.isdir(os.path.join(p, "share", "jupyter", "labextensions", name))
        for p in {sys.prefix, sys.base_prefix}
    )


def environment_report() -> list[dict]:
    """Checks of what the notebooks need, each ``{"check", "ok", "detail"}``."""
    rows = []

    def add(check, ok, detail):
        rows.append({"check": check, "ok": ok, "detail": detail})

    import matplotlib

    import allocsim

    add("Python", sys.version_info >= (3, 10), sys.version.split()[0])
    add("allocsim", True, f"{allocsim.__version__} from {os.path.dirname(allocsim.__file__)}")
    backend = _current_backend() or "(not chosen yet)"
    add("matplotlib", True, f"{matplotlib.__version__}, backend {backend}")
    for mod, ext in (
        ("ipywidgets", "@jupyter-widgets/jupyterlab-manager"),
        ("ipympl", "jupyter-matplotlib"),
    ):
        # Never import ipympl here: importing it switches matplotlib to its backend.
        if importlib.util.find_spec(mod) is None:
            add(mod, False, "not installed in this kernel's environment")
        else:
            add(mod, True, f"{importlib.metadata.version(mod)} installed")
        found = _labextension(ext)
        add(
            f"JupyterLab extension {ext}",
            found,
            "installed in this environment"
            if found
            else "not found next to this kernel (fine if your Jupyter runs elsewhere)",
        )
    add("simulation engine", True, _engine_detail())
    ip = _ipython()
    kernel = type(ip).__name__ if ip is not None else "none (plain Python)"
    add("running in a Jupyter kernel", kernel == "ZMQInteractiveShell", kernel)
    why = _MODE["reason"] or f"backend is {backend}"
    add("live plots", is_live_backend(), "on (ipympl)" if is_live_backend() else f"off: {why}")
    return rows


def _engine_detail() -> str:
    """Which engine runs the simulations here, without importing numba (it is slow to load)."""
    from ..engine import default_engine

    try:
        name = default_engine()
    except ValueError as exc:
        return str(exc)
    if name == "python":
        return "Python (ALLOCSIM_ENGINE=python): the reference, 5 to 40 times slower"
    if importlib.util.find_spec("numba") is None:
        return "Python: numba is not installed (same results, 5 to 40 times slower)"
    return (
        f"compiled (numba {importlib.metadata.version('numba')}); the first run after an "
        "install compiles it once (about a minute; make lab does it beforehand)"
    )


ADVICE = [
    (
        "The sliders show as text such as <code>IntSlider(value=4, ...)</code> or "
        "“Loading widget...”",
        "Your front end has no widget manager. Start the kit with <code>make lab</code> "
        "(JupyterLab "
        "with everything installed). In VS Code install the Jupyter extension; in Colab run "
        "<code>from google.colab import output; output.enable_custom_widget_manager()</code>. "
        "Then restart the kernel and run all cells.",
    ),
    (
        "The figures are still pictures that change only after a run ends",
        "ipympl is not active: the demos fall back to static pictures (they still work). Run "
        "<code>allocsim.widgets.use_live_plots()</code> again, or <code>%matplotlib widget</code>, "
        "then re-run the demo cell. If that fails, <code>pip install ipympl</code> "
        "into the kernel's "
        "environment and restart JupyterLab (not only the kernel).",
    ),
    (
        "A figure area stays blank or says “Error displaying widget: model not found”",
        "The kernel was restarted under an old page: reload the browser tab, then Run All.",
    ),
    (
        "Running headless (the tests, <code>make handouts</code>)",
        "Static figures are chosen on purpose there, so nothing waits for a browser.",
    ),
]


def show_environment() -> None:
    """Display the environment checks and what to do if widgets or live plots do not render."""
    from IPython.display import HTML, display

    rows = "".join(
        f"<tr><td>{'✅' if r['ok'] else '⚠️'}</td><td>{html.escape(r['check'])}</td>"
        f"<td>{html.escape(str(r['detail']))}</td></tr>"
        for r in environment_report()
    )
    advice = "".join(f"<li><b>{a}</b>: {b}</li>" for a, b in ADVICE)
    display(
        HTML(f"<table>{rows}</table><p><b>If something does not render</b></p><ul>{advice}</ul>")
    )


# ---------------------------------------------------------------------------------------------
# The workshop health check: `make check`
# ---------------------------------------------------------------------------------------------

# What a room's machines need for the notebooks: module -> JupyterLab extension it brings
KIT = {
    "numpy": None,
    "matplotlib": None,
    "ipywidgets": "@jupyter-widgets/jupyterlab-manager",
    "ipympl": "jupyter-matplotlib",
    "jupyterlab": None,
    "jupytext": "jupyterlab-jupytext",
    "jupyterlab_rise": "jupyterlab-rise",
    "numba": None,  # the compiled engine (without it the Python engine runs, 5-40x slower)
}


def health_check(log=print) -> bool:
    """Check a machine for a workshop in seconds: the packages and JupyterLab extensions the
    notebooks need, one short simulation, one demo driven from Python and one figure rendered.
    Prints one line per check (``ok`` or ``FAIL`` and what to do); returns True if all pass.
    """
    import time

    results = []

    def check(what, fn):
        t0 = time.perf_counter()
        try:
            detail = fn()
            ok = True
        except Exception as exc:  # each check reports, the next one still runs
            detail, ok = f"{type(exc).__name__}: {exc}", False
        took = time.perf_counter() - t0
        results.append(ok)
        log(f"{'ok  ' if ok else 'FAIL'} {what}: {detail} ({took:.1f} s)")

    def module(name):
        def fn():
            spec = importlib.util.find_spec(name)
            if spec is None:
                raise ModuleNotFoundError(f"not installed: run `make lab` or pip install {name}")
            dist = {"jupyterlab_rise": "jupyterlab-rise"}.get(name, name)
            return f"{importlib.metadata.version(dist)}"

        return fn

    def extension(name):
        def fn():
            if not _labextension(name):
                raise FileNotFoundError(
                    f"JupyterLab extension {name} not found in {sys.prefix}: reinstall the kit"
                )
            return "installed"

        return fn

    check("Python", lambda: f"{sys.version.split()[0]} (3.10 or newer needed)")
    for name, ext in KIT.items():
        check(f"package {name}", module(name))
        if ext:
            check(f"JupyterLab extension {ext}", extension(ext))

    def short_run():
        from ..config import preset
        from ..sim import Simulation

        r = Simulation(preset("large", duration_ms=300)).run()
        return f"the large machine, 300 ms simulated: {r.simulated_ms} ms, {r.config.cpus} CPUs"

    def demo():
        from .demos import livelock_demo

        d = livelock_demo(live=False, duration_ms=300)
        d.run_sync()
        d.scene("256 CPUs, all three patches")
        return f"livelock demo ran twice (patches {d.result.config.patches.label()})"

    def figure():
        import io

        from matplotlib.figure import Figure

        from ..config import preset
        from ..plotting import plot_run
        from ..sim import Simulation

        ax = Figure(figsize=(8, 4), layout="constrained").subplots()
        plot_run(Simulation(preset("small", duration_ms=300)).run(), ax=ax)
        buf = io.BytesIO()
        ax.figure.savefig(buf, format="png")
        if len(buf.getvalue()) < 5000:
            raise RuntimeError("the PNG is suspiciously small")
        return f"a run's figure as PNG, {len(buf.getvalue()) // 1024} KiB"

    def engine():
        from ..engine import warm

        seconds = warm()  # compiles on a fresh install; loads the on-disk cache after that
        return f"compiled core ready in {seconds:.1f} s"

    check("the compiled engine", engine)
    check("one short simulation", short_run)
    check("the livelock demo, driven from Python", demo)
    check("a figure rendered", figure)
    good = all(results)
    log(
        "all checks passed: the notebooks will run here (`make lab`)"
        if good
        else "some checks FAILED: see above; docs/FACILITATORS.md says what to do"
    )
    return good
