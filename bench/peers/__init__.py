"""The peers Stockroom is measured against, each runnable as ``python -m bench.peers.X``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp


def serve(doc: str | None, option: str, create_app: Callable[[str], ASGIApp]) -> None:
    """``--OPTION VALUE --port PORT``: build the app from VALUE and serve it on loopback."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument(f"--{option}", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(getattr(args, option)),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
    )
