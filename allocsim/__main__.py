"""Command line, OSTEP style: print every parameter first, then what happened.

    python -m allocsim run --preset large --patches none --seed 1
    python -m allocsim run --preset large --patches all --json
    python -m allocsim run --preset readers --sockets 14 --patches 2.6.38 --json
    python -m allocsim run --preset small --cpus 64 --stat-threshold 1 --seconds 2
    python -m allocsim compare --preset large --seed 1 [--json]
    python -m allocsim zoneinfo [PATH] [--json]
    python -m allocsim drift [--seconds S] [--hz N] [--churn MIB] [--json]
    python -m allocsim sweep --cpus 16,64,256 --patches none,all --seeds 1-5 [--out sweep.parquet]

Every ``SimConfig`` field is an option (``--zone-mib``, ``--stat-interval-ms``, ...), generated
from the field metadata; ``--seconds`` sets the duration. Bad options exit with status 2 and a
one-line reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import fields

from .budget import describe_seconds, estimate_seconds
from .config import PRESETS, SimConfig, preset
from .errors import check_float
from .patches import Patches

__all__ = ["main", "build_parser"]

LONG_RUN_S = 60.0  # runs estimated to take longer than this are announced on stderr


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line on stderr and exits 2."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def _optional(name, integer: bool):
    def parse(text: str):
        if text.lower() in ("none", "kernel", "formula", "default"):
            return None
        try:
            return int(text) if integer else float(text)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(
                f"{name} must be {kind} or 'kernel', got {text!r}"
            ) from None

    return parse


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """The options every simulating subcommand shares: a preset and every SimConfig field."""
    p.add_argument(
        "--preset",
        default="large",
        choices=sorted(PRESETS),
        help="scenario to start from (default: large)",
    )
    p.add_argument(
        "--seconds", type=float, default=None, help="simulated seconds (sets duration_ms)"
    )
    p.add_argument(
        "--counterfactual",
        action="store_true",
        help="allow settings no 2.6.36 kernel can have (a stat_interval that is not whole "
        "seconds); the output says so",
    )
    p.add_argument(
        "--kswapd-asleep-at-start",
        dest="kswapd_asleep_at_start",
        action="store_true",
        default=argparse.SUPPRESS,
        help="kswapd has finished its boot-time nap and sleeps at t=0 (a machine that has been "
        "up a while); 2.6.38 lowers its thresholds only on waking from that sleep",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--engine",
        choices=("compiled", "python"),
        default=None,
        help="who runs the ticks: the compiled core (numba, the default when installed) or the "
        "readable Python model; both give the same run",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the parameters first")
    for f in fields(SimConfig):
        meta = f.metadata
        if f.name in ("patches",) or "range" not in meta:
            continue
        lo, hi = meta["range"]
        unit = f" {meta['unit']}" if meta.get("unit") else ""
        # argparse formats help texts with %: a literal percent sign must be doubled.
        help_text = f"{meta['help']} [{lo}..{hi}{unit}]".replace("%", "%%")
        opt = "--" + f.name.replace("_", "-")
        if meta["optional"]:
            p.add_argument(
                opt,
                dest=f.name,
                type=_optional(f.name, meta["integer"]),
                default=argparse.SUPPRESS,
                help=help_text + " or 'kernel'",
            )
        elif meta["integer"]:
            p.add_argument(opt, dest=f.name, type=int, default=argparse.SUPPRESS, help=help_text)
        else:
            p.add_argument(opt, dest=f.name, type=float, default=argparse.SUPPRESS, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m allocsim",
        description="allocsim: the 2.6.36-rc3 page allocator and the 2010 per-cpu drift livelock",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_OneLineParser)
    run = sub.add_parser("run", help="simulate a scenario and print what happened")
    run.add_argument(
        "--patches",
        default="none",
        help="a kernel (2.6.35, 2.6.36, 2.6.38), 'all' (= 2.6.36), 'none' (= 2.6.35) or a "
        "comma list of " + ", ".join(Patches.switches()),
    )
    _add_config_options(run)
    cmp_ = sub.add_parser(
        "compare",
        help="run one seed unpatched, patched and with exact counters; print one table",
    )
    cmp_.add_argument(
        "--labels",
        default="none,all,exact",
        help="the variants, comma-separated: 'exact' (exact counters) or any --patches value "
        "(default: none,all,exact)",
    )
    cmp_.add_argument(
        "--kernels",
        default=None,
        help="kernel versions to compare instead of --labels, comma-separated: any of "
        "2.6.35, 2.6.36, 2.6.38 (one row each, and the exact machine as the yardstick)",
    )
    _add_config_options(cmp_)
    zi = sub.add_parser(
        "zoneinfo", help="read /proc/zoneinfo and report the drift exposure", add_help=False
    )
    zi.add_argument("rest", nargs=argparse.REMAINDER)
    drift = sub.add_parser(
        "drift",
        help="watch this kernel's free-page counter drift from its buddy lists, live",
        add_help=False,
    )
    drift.add_argument("rest", nargs=argparse.REMAINDER)
    sw = sub.add_parser("sweep", help="run a grid of scenarios (see sweep --help)", add_help=False)
    sw.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _config_from(args) -> SimConfig:
    overrides = {f.name: getattr(args, f.name) for f in fields(SimConfig) if hasattr(args, f.name)}
    overrides.pop("patches", None)
    overrides["patches"] = Patches.parse(getattr(args, "patches", "none"))
    if args.counterfactual:
        overrides["counterfactual"] = True
    if args.seconds is not None:
        overrides["duration_ms"] = _duration_ms(args.seconds)
    return preset(args.preset, **overrides)


def _duration_ms(seconds: float) -> int:
    """``--seconds`` as duration_ms, checked against duration_ms's range (inf and NaN too)."""
    lo, hi = next(f for f in fields(SimConfig) if f.name == "duration_ms").metadata["range"]
    ms = check_float("seconds", seconds, lo / 1000, hi / 1000) * 1000
    return min(hi, max(lo, int(round(ms))))


def _announce_cost(cfg: SimConfig, err, runs: int = 1, command: str = "run") -> None:
    """Warn on ``err`` when the run(s) should take over a minute (allocsim.budget's estimate)."""
    secs = runs * estimate_seconds(cfg.cpus, cfg.duration_ms)
    if secs > LONG_RUN_S:
        what = f"{runs} runs of " if runs > 1 else ""
        print(
            f"python -m allocsim {command}: warning: {what}{cfg.duration_ms:,} simulated ms on "
            f"{cfg.cpus} CPUs should take {describe_seconds(secs)} of wall time (benchmark "
            "estimate); Ctrl-C stops it",
            file=err,
        )


def _progress_printer(cfg: SimConfig, err):
    """A ``progress(sim)`` callback that rewrites one status line on ``err`` if it is a
    terminal, or None when it is not (a log file or a pipe gets no carriage returns)."""
    if not err.isatty():
        return None
    start = time.perf_counter()

    def progress(sim) -> None:
        done = sim.t / cfg.duration_ms
        elapsed = time.perf_counter() - start
        left = f", {describe_seconds(elapsed / done - elapsed)} left" if done > 0.02 else ""
        print(
            f"\r  simulated {sim.t:,} / {cfg.duration_ms:,} ms ({100 * done:.0f}%{left})   ",
            end="",
            file=err,
            flush=True,
        )

    return progress


def _print_parameters(cfg: SimConfig, out) -> None:
    d = cfg.derived()
    print(f"ARG preset-derived configuration (seed {cfg.seed})", file=out)
    for name, value in cfg.to_dict().items():
        print(f"ARG {name:22s} {value}", file=out)
    print(
        f"ARG {'(derived)':22s} present_pages {d.present_pages}, watermarks "
        f"{d.wmark_min}/{d.wmark_low}/{d.wmark_high}, stat_threshold {d.stat_threshold}, "
        f"max drift {d.max_drift}, pcp high/batch {d.pcp_high}/{d.pcp_batch}",
        file=out,
    )
    print("", file=out)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "zoneinfo":
        from .zoneinfo import main as zoneinfo_main

        return zoneinfo_main(argv[1:])
    if argv and argv[0] == "drift":
        from .live import main as drift_main

        return drift_main(argv[1:])
    if argv and argv[0] == "sweep":
        from .sweep import main as sweep_main

        return sweep_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("run", "compare"):
        parser.print_help()
        return 2
    try:
        cfg = _config_from(args)
        if args.command == "compare":
            from .compare import variant

            labels = [x.strip() for x in args.labels.split(",") if x.strip()]
            if args.kernels is not None:
                labels = _kernel_labels(args.kernels)
            if not labels:
                raise ValueError("labels must name at least one variant, e.g. none,all,exact")
            for label in labels:
                variant(cfg, label)
    except (ValueError, TypeError) as e:
        print(f"python -m allocsim {args.command}: error: {e}", file=sys.stderr)
        return 2
    if args.engine is not None:
        # Every Simulation this command builds (compare builds several) uses this engine.
        os.environ["ALLOCSIM_ENGINE"] = args.engine
    if args.command == "compare":
        return _compare(cfg, labels, args)
    from .sim import Simulation

    try:
        sim = Simulation(cfg, engine=args.engine)
    except RuntimeError as e:  # --engine compiled without numba
        print(f"python -m allocsim run: error: {e}", file=sys.stderr)
        return 2
    if not args.json and not args.quiet:
        _print_parameters(cfg, sys.stdout)
    _announce_cost(cfg, sys.stderr)
    if sim.engine == "compiled":
        from .engine import cache_ready

        if cache_ready() is False:
            print(
                "python -m allocsim run: compiling the simulation core once (about a minute; "
                "later runs load it from the cache)",
                file=sys.stderr,
            )
    progress = _progress_printer(cfg, sys.stderr)
    try:
        result = sim.run(progress=progress, progress_every=250)
    except KeyboardInterrupt:
        print(f"\npython -m allocsim run: interrupted at {sim.t:,} ms", file=sys.stderr)
        return 130
    finally:
        if progress is not None:
            print("\r" + " " * 72 + "\r", end="", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({**result.to_dict(), "engine": sim.engine}))
    else:
        print(result.summary())
    return 0


def _kernel_labels(text: str) -> list[str]:
    """``--kernels 2.6.35,2.6.36,2.6.38``: the versions, checked against the known ones."""
    from .patches import KERNELS

    labels = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in labels if x not in KERNELS]
    if unknown or not labels:
        raise ValueError(f"kernels must be a comma list of {', '.join(KERNELS)}, got {text!r}")
    return labels


def _compare(cfg: SimConfig, labels: list[str], args) -> int:
    from .compare import compare, table

    def progress(i, n, label):
        if sys.stderr.isatty():
            print(f"\r  run {i + 1} of {n}: {label:<20}", end="", file=sys.stderr, flush=True)

    _announce_cost(cfg, sys.stderr, runs=len(labels), command="compare")
    rows = compare(cfg, labels, progress=progress)
    if sys.stderr.isatty():
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    if args.json:
        print(json.dumps({"runs": rows}))
        return 0
    if not args.quiet:
        _print_parameters(cfg, sys.stdout)
    print(table(rows))
    reasons = cfg.counterfactual_reasons()
    if reasons:
        print("COUNTERFACTUAL: " + "; ".join(reasons))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python -m allocsim ... | head`: the reader left, nothing is wrong
        sys.stdout = open(os.devnull, "w")  # silence the flush at exit
        sys.exit(0)
