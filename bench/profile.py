"""Profile `stockroom serve` under one workload: py-spy samples while wrk drives the load.

    .venv/bin/python -m bench.profile W1 [--seconds 15]

Prints where the server's time goes: inclusive share per module group and per function, and
the top functions by self time. Needs py-spy (``pip install py-spy``) and ptrace rights.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench import load
from bench.database import FULL, prepare
from bench.runner import _body, _login, w2_bodies, w3_bodies
from bench.servers import stockroom
from tests.queries import W1

# Where a frame's file lives decides its group; the first match wins.
GROUPS = (
    ("stockroom", ("/work/", "/api/", "/schema/", "/db/")),
    ("strawberry", ("strawberry/",)),
    ("graphql-core", ("graphql/",)),
    ("sqlalchemy", ("sqlalchemy/",)),
    ("asyncpg", ("asyncpg/",)),
    ("aiodataloader", ("aiodataloader",)),
    ("starlette/fastapi", ("starlette/", "fastapi/")),
    ("uvicorn", ("uvicorn/",)),
    ("jose/crypto", ("jose/", "cryptography/")),
    ("orjson/json", ("orjson", "json/")),
    ("asyncio", ("asyncio/",)),
)


def _group(frame: str) -> str:
    for name, needles in GROUPS:
        if any(needle in frame for needle in needles):
            if name == "stockroom" and "site-packages" in frame:
                continue
            return name
    return "other"


def summarise(collapsed: str, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if not any("asyncio/runners.py" in frame for frame in frames):
            continue  # only the event loop's thread: the rest are idle pool workers
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
        groups[_group(frames[-1])] += count
    if total == 0:
        return "no samples"

    def share(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    lines = [f"{total} samples of the event loop thread", "", "self time by library:"]
    lines += [f"  {share(n)}  {name}" for name, n in groups.most_common()]
    lines += ["", "inclusive (top):"]
    lines += [f"  {share(n)}  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", "self (top):"]
    lines += [f"  {share(n)}  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=("W1", "W2", "W3"))
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--top", type=int, default=25, help="functions listed per section")
    parser.add_argument("--save", type=Path, help="keep py-spy's collapsed stacks here")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")

    dataset = prepare(FULL)
    tmp = Path(tempfile.mkdtemp(prefix="stockroom-profile-"))
    server = stockroom(dataset.url, tmp)
    try:
        token = _login(server)
        bodies = {
            "W1": lambda: [_body(W1, {"first": 100})],
            "W2": lambda: w2_bodies(dataset),
            "W3": lambda: w3_bodies(dataset),
        }[args.workload]()
        headers = {"Authorization": f"Bearer {token}"}
        url = server.url + "/graphql"
        load.run(url, bodies, seconds=3, connections=args.connections, headers=headers)
        results: list[load.Result] = []
        driver = threading.Thread(
            target=lambda: results.append(
                load.run(
                    url,
                    bodies,
                    seconds=args.seconds + 2,
                    connections=args.connections,
                    headers=headers,
                )
            )
        )
        driver.start()
        raw = tmp / "profile.txt"
        record = [
            spy,
            "record",
            "--pid",
            str(server.process.pid),
            "--duration",
            str(args.seconds),
            "--format",
            "raw",
            "-o",
            str(raw),
        ]
        subprocess.run(record, check=True, capture_output=True)
        driver.join()
        print(f"{args.workload}: {results[0].rps:.0f} req/s while sampled (py-spy slows it)")
        collapsed = raw.read_text()
        if args.save is not None:
            args.save.write_text(collapsed)
        print(summarise(collapsed, args.top))
    finally:
        server.stop()
        dataset.server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
