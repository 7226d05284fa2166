"""W7's webhook receiver: ``python -m bench.receiver --port P --out FILE``.

A raw HTTP/1.1 server on 127.0.0.1 that answers every POST with 204 as soon as its body is
in, so the figures measure the sender and not the receiver. Connections are kept alive (the
dispatcher's client reuses them; a new TCP connection per delivery would be measured too).
For each POST it keeps the arrival time (``time.time()``, the same wall clock the server
stamps ``createdAt`` with), the ``Stockroom-Signature`` header and the raw body; nothing is
parsed on the hot path. ``GET /count`` answers how many POSTs arrived (the bench polls it).
On SIGTERM it writes one JSON line per POST to ``--out``, in arrival order, and exits.

It runs in its own process, pinned to the load core: in the bench's process it would share
a GIL with the load generator and the polling, and its arrival times would carry their stalls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from pathlib import Path

import orjson

NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
MAX_HEAD = 64 * 1024


class Records:
    def __init__(self) -> None:
        # (arrival, signature, body): tuples, so a POST costs one append and no parsing
        self.posts: list[tuple[float, bytes, bytes]] = []

    def dump(self, path: Path) -> None:
        with path.open("wb") as out:
            for at, signature, body in self.posts:
                out.write(orjson.dumps({"at": at, "signature": signature.decode("latin-1"),
                                        "body": body.decode("utf-8", "replace")}))
                out.write(b"\n")


def _headers(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """The request line and the headers (names lower-cased) of a request head."""
    lines = head.split(b"\r\n")
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return lines[0], fields


async def _serve(records: Records, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, fields = _headers(head)
            body = await reader.readexactly(int(fields.get(b"content-length", b"0")))
            if request_line.startswith(b"POST "):
                records.posts.append(
                    (time.time(), fields.get(b"stockroom-signature", b""), body))
                writer.write(NO_CONTENT)
            else:  # GET /count, the bench's progress poll
                answer = str(len(records.posts)).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
            # Cheap below the buffer's high-water mark: a 204 never waits here in practice.
            await writer.drain()
            if fields.get(b"connection", b"").lower() == b"close":
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def run(port: int, out: Path) -> None:
    records = Records()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await asyncio.start_server(
        lambda r, w: _serve(records, r, w), "127.0.0.1", port, limit=MAX_HEAD, backlog=512)
    await stop.wait()
    server.close()
    # Bounded: from Python 3.12 it also waits for the sender's kept-alive connections.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 2)
    # Written by a temporary name and renamed: the bench reads it only once it is whole.
    partial = out.with_name(out.name + ".partial")
    records.dump(partial)
    partial.replace(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it; plain asyncio only costs some speed
        asyncio.run(run(args.port, args.out))
    else:
        uvloop.run(run(args.port, args.out))


if __name__ == "__main__":
    main()
