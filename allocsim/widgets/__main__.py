"""``python -m allocsim.widgets check`` | ``answer-key``: the workshop tools.

``check`` (``make check``) tests in seconds that a machine can run the notebooks: packages,
JupyterLab extensions, a short simulation, the livelock demo driven from Python, a figure.
``answer-key`` prints the answers of the notebooks' learner checks for facilitators.
"""

from __future__ import annotations

import os


def main(argv=None) -> int:
    from ..__main__ import _OneLineParser

    p = _OneLineParser(
        prog="python -m allocsim.widgets", description="Workshop tools of the allocsim kit."
    )
    p.add_argument("command", choices=("check", "answer-key"), help="what to do")
    args = p.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")  # no window and no widget backend here
    if args.command == "check":
        from .environment import health_check

        return 0 if health_check() else 1
    from .questions import print_answer_key

    print_answer_key()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
