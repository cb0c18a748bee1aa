"""Controls built from :class:`~allocsim.config.SimConfig` field metadata.

A control's range, step and description come from the field's declaration (the metadata stays the
only declaration of the parameters); :data:`SLIDER_HINTS` only narrows a slider for presentation.
Optional fields get an :class:`OptionalInt`: a number or the kernel's formula.
"""

from __future__ import annotations

import numpy as np

from ..config import SimConfig
from ..patches import PATCH_INFO, Patches
from .environment import (
    _widgets,
)

# Presentation hints: narrower slider ranges than the fields accept (values stay validated by
# SimConfig; the metadata stays the only declaration of the parameters).
SLIDER_HINTS = {
    "writer_rate": (0.0, 16.0),
    "atomic_rate": (0.0, 4.0),
    "duration_ms": (100, 20_000),
}

# Optional fields whose "kernel formula" value the controls display, from SimConfig.derived().
_FORMULA_OF = {
    "stat_threshold": "stat_threshold",
    "min_free_kbytes": "min_free_kbytes",
    "pcp_high": "pcp_high",
    "pcp_batch": "pcp_batch",
    "initial_free_pages": "initial_free_pages",
}


def _log_grid(lo: int, hi: int, value: int) -> list[int]:
    """Slider stops between lo and hi: powers of two if ``value`` is one, else 1-2-5 steps."""
    vals = set()
    if value > 0 and value & (value - 1) == 0:
        k = 1
        while k <= hi:
            if k >= lo:
                vals.add(k)
            k *= 2
    else:
        base = 1
        while base <= hi:
            for m in (1, 2, 5):
                if lo <= m * base <= hi:
                    vals.add(m * base)
            base *= 10
    vals.update(v for v in (lo, hi, value) if lo <= v <= hi)
    return sorted(vals)


class OptionalInt:
    """A value that is either the kernel's formula (None) or a number the user fixes.

    Shown as a number control and a "kernel formula" checkbox. ``.value`` is None or an int;
    ``observe(handler, names="value")`` works as on any widget. While the checkbox is ticked the
    number control is disabled and shows the formula's value (set by :meth:`show_formula`).
    """

    def __init__(self, *, value, lo: int, hi: int, description: str, tooltip: str = ""):
        import traitlets

        w = _widgets()

        class _Value(traitlets.HasTraits):
            value = traitlets.Any(None, allow_none=True)

        self._trait = _Value(value=value)
        self.lo, self.hi = lo, hi
        style = {"description_width": "initial"}
        start = lo if value is None else value
        if hi - lo <= 1000:
            self.number = w.IntSlider(
                value=start,
                min=lo,
                max=hi,
                description=description,
                continuous_update=False,
                style=style,
                tooltip=tooltip,
            )
        else:
            self.number = w.BoundedIntText(
                value=start,
                min=lo,
                max=hi,
                description=description,
                style=style,
                tooltip=tooltip,
                layout=w.Layout(width="260px"),
            )
        self.auto = w.Checkbox(
            value=value is None,
            description="kernel formula",
            indent=False,
            tooltip=tooltip,
            layout=w.Layout(width="130px"),
        )
        self.number.disabled = value is None
        self.widget = w.HBox([self.number, self.auto])
        self._syncing = False
        self.auto.observe(self._from_children, names="value")
        self.number.observe(self._from_children, names="value")

    # the trait-like surface
    @property
    def value(self):
        return self._trait.value

    @value.setter
    def value(self, v):
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"value must be None or an integer, got {v!r}")
            if not self.lo <= v <= self.hi:
                raise ValueError(f"value must be in [{self.lo}, {self.hi}], got {v}")
        self._syncing = True
        try:
            self.auto.value = v is None
            self.number.disabled = v is None
            if v is not None:
                self.number.value = int(v)
        finally:
            self._syncing = False
        self._trait.value = None if v is None else int(v)

    def observe(self, handler, names="value"):
        self._trait.observe(handler, names=names)

    def unobserve(self, handler, names="value"):
        self._trait.unobserve(handler, names=names)

    def show_formula(self, v) -> None:
        """Display the formula's value in the disabled number box (no change event)."""
        if self._trait.value is None and v is not None:
            self._syncing = True
            try:
                self.number.value = int(min(max(v, self.lo), self.hi))
            finally:
                self._syncing = False

    def _from_children(self, _change):
        if self._syncing:
            return
        self.number.disabled = self.auto.value
        self._trait.value = None if self.auto.value else int(self.number.value)

    @property
    def description(self):
        return self.number.description

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _view(control):
    """The widget to put in a layout for a control (OptionalInt wraps two widgets)."""
    return control.widget if isinstance(control, OptionalInt) else control


def _control_for(f, value, hint):
    w = _widgets()
    m = f.metadata
    desc = m["label"] + (f" ({m['unit']})" if m.get("unit") else "")
    tip = m.get("help", "")
    style = {"description_width": "initial"}
    if "range" not in m:
        if isinstance(value, bool):
            return w.Checkbox(value=value, description=desc, tooltip=tip, indent=False)
        raise ValueError(f"{f.name}: no range in its metadata, cannot make a control")
    lo, hi = m["range"]
    if m.get("optional"):
        if not m.get("integer", True):
            raise ValueError(f"{f.name}: optional float parameters have no control yet")
        return OptionalInt(value=value, lo=lo, hi=hi, description=desc, tooltip=tip)
    if hint is not None:
        lo, hi = max(lo, hint[0]), min(hi, hint[1])
        lo, hi = min(lo, value), max(hi, value)
    if not m.get("integer", True):
        step = max((hi - lo) / 200, 0.01)
        return w.FloatSlider(
            value=value,
            min=lo,
            max=hi,
            step=step,
            description=desc,
            continuous_update=False,
            readout_format=".2f",
            style=style,
            tooltip=tip,
        )
    if hi - lo <= 1000:
        return w.IntSlider(
            value=value,
            min=lo,
            max=hi,
            description=desc,
            continuous_update=False,
            style=style,
            tooltip=tip,
        )
    if lo >= 1 and hi <= 10**6:
        return w.SelectionSlider(
            options=_log_grid(lo, hi, value),
            value=value,
            description=desc,
            continuous_update=False,
            style=style,
            tooltip=tip,
        )
    return w.BoundedIntText(
        value=value,
        min=lo,
        max=hi,
        description=desc,
        style=style,
        tooltip=tip,
        layout=w.Layout(width="260px"),
    )


def controls_for(field_names, config: SimConfig | None = None, *, hints=None) -> dict:
    """One control per SimConfig field, built from the field's metadata (label, unit, range,
    help, optional, integer) and set to ``config``'s value.

    Integers get a slider (a log-spaced selection slider for wide ranges, a number box for huge
    ones), floats a float slider, optional fields an :class:`OptionalInt` ("kernel formula" +
    value). ``"patches"`` expands to one checkbox per patch (see :func:`patch_controls`).
    ``hints`` narrows slider ranges for presentation (default :data:`SLIDER_HINTS`).
    """
    config = SimConfig() if config is None else config
    hints = SLIDER_HINTS if hints is None else hints
    meta = {f.name: f for f in SimConfig.parameters()}
    out = {}
    for name in field_names:
        if name == "patches":
            out.update(patch_controls(config.patches))
            continue
        if name not in meta:
            raise ValueError(f"unknown SimConfig parameter {name!r}")
        out[name] = _control_for(meta[name], getattr(config, name), hints.get(name))
    return out


def patch_controls(patches: Patches | None = None) -> dict:
    """One checkbox per patch, labelled with its commit (tooltip: the commit subject)."""
    w = _widgets()
    patches = Patches() if patches is None else patches
    out = {}
    for name in Patches.names():
        commit, _function, subject = PATCH_INFO[name]
        out[name] = w.Checkbox(
            value=getattr(patches, name),
            description=f"{commit} {name}",
            tooltip=subject,
            indent=False,
            layout=w.Layout(width="auto"),
        )
    return out
