"""``python -m bench`` (``make bench``): Stockroom against its peers, one table of ratios."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _ensure_wrk() -> None:
    """wrk comes from Debian's package; install it when missing and we may."""
    if shutil.which("wrk"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if shutil.which("apt-get") is None or (sudo and shutil.which("sudo") is None):
        sys.exit("wrk is missing: install Debian's `wrk` package")
    print("installing wrk ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("W4 needs at least one subscriber per size")
    return sizes


def _raise_file_limit() -> None:
    # W4 holds up to 10,000 sockets in the server (it inherits this limit) and as many in the
    # load generator's processes (they raise their own to the hard limit too).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="seconds and small data: a smoke test of the harness"
    )
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--seconds", type=float, help="per round")
    parser.add_argument(
        "--subscribers",
        type=_sizes,
        metavar="N[,N...]",
        help="W4 sizes, each on a fresh worker (default 1000,10000; --quick: 20)",
    )
    parser.add_argument(
        "--w4-client",
        choices=("raw", "websockets"),
        help="W4's load generator: bench/wsload.py (default) or the previous websockets client",
    )
    parser.add_argument(
        "--w4-processes",
        type=int,
        metavar="P",
        help="load generator processes for W4's raw client (default: one per 5,000 sockets)",
    )
    parser.add_argument(
        "--no-postgraphile",
        dest="postgraphile",
        action="store_false",
        default=None,
        help="skip the PostGraphile peer (and its npm install)",
    )
    parser.add_argument("--postgraphile", dest="postgraphile", action="store_true")
    parser.add_argument(
        "--only",
        action="append",
        metavar="WORKLOAD",
        help="run only workloads starting with this (W1, W2, W3, W4, or a full name such as "
        "'W1 items(first: 10)'); repeatable. Only the servers they need are started",
    )
    parser.add_argument("--out", type=Path, help="markdown report (default bench/results/)")
    args = parser.parse_args(argv)

    from bench.runner import Options, run

    overrides = {
        name: value
        for name in ("rounds", "seconds", "subscribers", "postgraphile", "w4_client",
                     "w4_processes")
        if (value := getattr(args, name)) is not None
    }
    if args.only:
        overrides["only"] = tuple(args.only)
    # A subset is not the benchmark: it must not replace the full run's report.
    name = "quick.md" if args.quick else ("subset.md" if args.only else "latest.md")
    overrides["out"] = args.out or RESULTS / name
    options = Options.quick_defaults(**overrides) if args.quick else Options(**overrides)
    _ensure_wrk()
    _raise_file_limit()
    print(run(options))
    print(f"written to {options.out}")


if __name__ == "__main__":
    main()
