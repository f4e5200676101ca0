"""Runs the Python peer receiver: FastAPI on uvicorn with uvloop and httptools, one process (one
event loop) by default, N worker processes sharing one socket with --workers N.

    DIDIT_WEBHOOK_SECRET=... python server.py [--host 127.0.0.1] [--port 8080] [--workers 1]
                                              [--accept-simple]

Prints `listening on HOST:PORT` on stdout once the socket accepts connections (the real port
when asked for port 0).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

HERE = Path(__file__).resolve().parent
# `app:app` is imported by name (each worker process imports it again).
sys.path.insert(0, str(HERE))


class AnnouncingServer(uvicorn.Server):
    """A uvicorn server that says where it listens once it serves."""

    def __init__(self, config: uvicorn.Config, address: str) -> None:
        super().__init__(config)
        self.address = address

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(f"listening on {self.address}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description="Didit webhook receiver (FastAPI on uvicorn)")
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--accept-simple", action="store_true", help="also accept X-Signature-Simple")
    args = p.parse_args()
    if not os.environ.get("DIDIT_WEBHOOK_SECRET"):
        sys.exit("DIDIT_WEBHOOK_SECRET is not set: export the destination secret Didit gave you")
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.accept_simple:
        os.environ["DIDIT_ACCEPT_SIMPLE"] = "1"

    config = uvicorn.Config(
        "app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=10,
    )
    # Bound here rather than by uvicorn, so port 0 can be announced with the port it got.
    sock = config.bind_socket()
    address = f"{args.host}:{sock.getsockname()[1]}"
    if args.workers == 1:
        AnnouncingServer(config, address).run(sockets=[sock])
    else:
        # Each worker has its own event loop and its own in-memory state: a duplicate is caught
        # only when it reaches the worker that saw the first delivery. The socket listens already;
        # connections wait in its backlog until the workers have started.
        print(f"listening on {address}", flush=True)
        Multiprocess(config, sockets=[sock]).run()


if __name__ == "__main__":
    main()
