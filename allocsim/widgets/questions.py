"""Learner checks: questions whose answers are revealed on demand (predict, then reveal)."""

from __future__ import annotations

import html

import numpy as np

from .environment import (
    _headless,
    _widgets,
)


class Question:
    """A question whose answer is revealed on demand (predict, then reveal).

    With widgets: a box for the learner's answer, a Check button and a Reveal button. Headless
    (handouts, tests): a collapsed ``<details>`` block. ``answer`` is computed by the notebook
    with the formulas it taught; ``check(text)`` compares a typed answer with it.
    """

    def __init__(self, question: str, answer, explain: str = "", tolerance: float = 0.0):
        self.question = question
        self.answer = answer
        self.explain = explain
        self.tolerance = tolerance
        self.feedback = None

    def check(self, text) -> bool:
        """Is ``text`` the answer (numbers within ``tolerance``, text case-insensitively)?"""
        if isinstance(self.answer, (int, float, np.integer, np.floating)) and not isinstance(
            self.answer, bool
        ):
            try:
                value = float(str(text).replace(",", "").replace("_", "").strip())
            except ValueError:
                return False
            return abs(value - float(self.answer)) <= self.tolerance
        return str(text).strip().lower() == str(self.answer).strip().lower()

    def _answer_html(self) -> str:
        a = self.answer
        shown = f"{a:,}" if isinstance(a, (int, np.integer)) and not isinstance(a, bool) else a
        return f"<b>{html.escape(str(shown))}</b>" + (f" — {self.explain}" if self.explain else "")

    def _ipython_display_(self):
        from IPython.display import HTML, display

        if _headless():
            display(
                HTML(
                    f"<p><b>Question.</b> {self.question}</p><details><summary>Answer"
                    f"</summary><p>{self._answer_html()}</p></details>"
                )
            )
            return
        w = _widgets()
        box = w.Text(placeholder="your answer", layout=w.Layout(width="14em"))
        check = w.Button(description="Check")
        reveal = w.Button(description="Reveal the answer")
        shown = w.HTML()

        def on_check(_b):
            ok = self.check(box.value)
            self.feedback = ok
            shown.value = "✅ right" if ok else "❌ not quite: try again, or reveal"

        def on_reveal(_b):
            shown.value = self._answer_html()

        check.on_click(on_check)
        reveal.on_click(on_reveal)
        display(
            w.VBox(
                [
                    w.HTML(f"<p><b>Question.</b> {self.question}</p>"),
                    w.HBox([box, check, reveal]),
                    shown,
                ]
            )
        )


def ask(question: str, answer, explain: str = "", tolerance: float = 0.0) -> Question:
    """A learner check: shows the question; the answer stays hidden until revealed."""
    return Question(question, answer, explain, tolerance)
