"""Where one endpoint's time goes: pyinstrument over requests made in-process through the server's ASGI app.

Run after bench/bench_api.py has made its database (it reuses it, and its token):
  .venv/bin/python bench/profile_api.py /api/me            # or any GET path bench_api loads
  .venv/bin/python bench/profile_api.py /api/hello hello   # the baseline, bench/hello_settings.py
The requests are sequential, with the middleware, the ASGI wrappers and the thread hops of a real
request; only the socket is missing. Prints microseconds per request, then pyinstrument's tree.
BENCH_PROFILE_REQUESTS (500) sets how many are profiled, after 100 to warm up.
"""

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_API_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vetted_bench_api"
)
os.environ["REDIS_URL"] = os.environ.get("BENCH_API_REDIS_URL", "redis://127.0.0.1:6379/4")
os.environ.update({"DEBUG": "false", "ASYNCIO_DEBUG": "false", "LOG_LEVEL": "WARNING"})
PATH = sys.argv[1] if len(sys.argv) > 1 else "/api/me"
os.environ["DJANGO_SETTINGS_MODULE"] = (
    "bench.hello_settings" if len(sys.argv) > 2 and sys.argv[2] == "hello" else "marketplace.settings"
)
REQUESTS = int(os.environ.get("BENCH_PROFILE_REQUESTS", "500"))


def bench_token() -> str:
    """A fresh token for bench_api's client (only the digest is stored, so the bench's own cannot be read back)."""
    import django

    django.setup()
    from accounts.models import User
    from accounts.services import api_token_create

    return api_token_create(user=User.objects.get(email="bench-api-client@vetted.test"), name="profile")[1]


async def call(application: Any, token: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    messages: list[dict[str, Any]] = []
    asked = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not asked.is_set():
            asked.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await application(scope, receive, send)
    return int(messages[0]["status"])


async def main(token: str) -> None:
    from pyinstrument import Profiler

    from marketplace.asgi import application

    for _ in range(100):
        status = await call(application, token)
    if status != 200:
        raise SystemExit(f"GET {PATH} answered {status}")
    started = time.perf_counter()
    for _ in range(REQUESTS):
        await call(application, token)
    print(f"GET {PATH}: {(time.perf_counter() - started) / REQUESTS * 1e6:.0f} us a request, unprofiled")
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    for _ in range(REQUESTS):
        await call(application, token)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=os.environ.get("BENCH_PROFILE_ALL") == "1"))


if __name__ == "__main__":
    asyncio.run(main(bench_token() if len(sys.argv) <= 2 else ""))
