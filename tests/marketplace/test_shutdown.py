"""Work a request left running is finished before the process stops, within the grace (marketplace.shutdown)."""

import asyncio
import time

import pytest

from marketplace import shutdown


@pytest.fixture(autouse=True)
def _fresh_shutdown(monkeypatch):
    monkeypatch.setattr(shutdown, "_stopping", shutdown._Stopping())


async def test_held_work_is_finished_before_the_process_stops():
    done = []

    async def step() -> None:
        await asyncio.sleep(0.2)
        done.append(True)

    shutdown.hold(asyncio.create_task(step()))
    assert await shutdown.finish_held_work() == 0
    assert done == [True]
    assert await shutdown.finish_held_work() == 0  # nothing left to wait for


async def test_work_that_outlasts_the_grace_is_left_to_the_sweep(monkeypatch, caplog):
    monkeypatch.setattr(shutdown._stopping, "grace_ends_at", time.monotonic() + 0.2)
    task = asyncio.create_task(asyncio.sleep(30))
    shutdown.hold(task)
    started = time.monotonic()
    assert await shutdown.finish_held_work() == 1
    assert time.monotonic() - started < 2
    assert "server.work_abandoned" in caplog.text
    task.cancel()


async def test_the_drain_logs_as_nobodys_request_whatever_was_running_when_the_signal_came(monkeypatch):
    import signal

    import uvicorn

    from marketplace import tracing

    seen: list[tuple[str, str | None]] = []
    monkeypatch.setattr(
        shutdown.logger, "info", lambda event, *args, **kwargs: seen.append((event, tracing.request_id.get()))
    )
    monkeypatch.setattr(shutdown, "begin_draining", lambda: None)  # readiness of the test process stays as it is
    server = shutdown.DrainingServer(uvicorn.Config("marketplace.asgi:application"), drain_seconds=0)
    server._loop = asyncio.get_running_loop()

    token = tracing.request_id.set("a-strangers-request")  # the signal lands while a request's code runs
    try:
        server.handle_exit(signal.SIGTERM, None)
    finally:
        tracing.request_id.reset(token)
    await asyncio.wrap_future(server._drain)  # type: ignore[arg-type]

    assert [event for event, _ in seen] == ["server.draining", "server.sockets_closed"]
    assert {rid for _, rid in seen} == {None}
    assert server.should_exit
