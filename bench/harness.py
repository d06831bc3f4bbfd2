"""What every benchmark here needs: free ports, child processes stopped by group, a cheap HTTP client.

Not a product module: the benchmarks import it (`from bench.harness import ...`) and nothing else does.
"""

import asyncio
import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httptools

from tests.processes import running as process  # a child in its own process group, stopped by id

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["Http", "answers", "free_port", "percentile", "process", "rss_kib", "uvicorn", "wait_until"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """The value at quantile `q` (0-1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_until(check: Callable[[], object], what: str, timeout: float = 60) -> None:
    """Poll `check` every 0.2 s until it is true; SystemExit naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not happen within {timeout:.0f} s")


def answers(port: int) -> bool:
    """Whether a server on `port` answers `GET /health/live` with a 200."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return sock.recv(64).startswith(b"HTTP/1.1 200")


@contextmanager
def uvicorn(
    app: str, port: int, env: dict[str, str], log: Path, *, workers: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """A uvicorn server on `port`, yielded once it answers; stopped by its process group."""
    args = ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        args += ["--workers", str(workers)]
    with process(args, env=env, log=log) as child:
        wait_until(lambda: answers(port), f"the server on port {port} answering")
        yield child


class Http:
    """One keep-alive HTTP/1.1 connection; responses parsed by httptools (uvicorn's own parser).

    Cheap on purpose: the server, not the client, should be what a benchmark measures.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.body = bytearray()
        self.complete = False

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True

    async def request(
        self, method: str, path: str, token: str | None = None, payload: dict[str, Any] | None = None
    ) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if token is not None:
            head += f"Authorization: Bearer {token}\r\n"
        body = b"" if payload is None else json.dumps(payload).encode()
        if payload is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        self.body, self.complete = bytearray(), False
        parser = httptools.HttpResponseParser(self)
        while not self.complete:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            parser.feed_data(data)
        if not parser.should_keep_alive():
            self.writer.close()
            self.reader, self.writer = None, None
        return parser.get_status_code(), bytes(self.body)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
