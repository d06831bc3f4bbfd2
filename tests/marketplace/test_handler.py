"""Each request's thread for synchronous code comes from a pool, and goes back only when it is idle."""

import threading
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

from marketplace.handler import PooledThreadsASGIHandler, RequestThread, RequestThreads


@pytest.fixture
def threads() -> Iterator[RequestThreads]:
    pool = RequestThreads(keep=2)
    try:
        yield pool
    finally:
        pool.close()


def thread_of(executor: RequestThread) -> str:
    return str(executor.submit(lambda: threading.current_thread().name).result(timeout=5))


def test_an_idle_thread_is_taken_again(threads):
    first = threads.take()
    name = thread_of(first)
    threads.give_back(first)

    again = threads.take()

    assert again is first
    assert thread_of(again) == name
    assert name.startswith("request")


def test_a_thread_still_busy_is_not_given_to_the_next_request(threads):
    busy = threads.take()
    release = threading.Event()
    leftover = busy.submit(release.wait, 5)  # a client that vanished: its sync code runs on

    threads.give_back(busy)
    other = threads.take()

    assert other is not busy
    assert len(threads) == 0
    assert thread_of(other) != ""
    release.set()
    assert leftover.result(timeout=5) is True  # the leftover work finished; nothing cut it short


def test_no_more_idle_threads_are_kept_than_asked(threads):
    taken = [threads.take() for _ in range(4)]
    for executor in taken:
        thread_of(executor)
        threads.give_back(executor)

    assert len(threads) == 2


def get(application: PooledThreadsASGIHandler, path: str) -> int:
    """One request, and the handler's own end of it (response.close, request_finished), as a server runs both."""
    communicator = HttpCommunicator(application, "GET", path, headers=[(b"host", b"testserver")])

    async def whole() -> int:
        response = await communicator.get_response(timeout=10)
        await communicator.wait(timeout=10)
        return int(response["status"])

    return async_to_sync(whole)()


@pytest.mark.django_db(transaction=True)
def test_requests_one_after_another_share_one_thread(threads):
    application = PooledThreadsASGIHandler(threads)
    get(application, "/health/live")
    before = threading.active_count()

    statuses = [get(application, "/health/live") for _ in range(20)]

    assert statuses == [200] * 20
    assert len(threads) == 1
    # No thread more (Django alone would start two for each); one an earlier test left may end meanwhile.
    assert threading.active_count() <= before


@pytest.mark.django_db(transaction=True)
def test_the_thread_of_a_request_that_failed_is_not_reused(threads, monkeypatch):
    application = PooledThreadsASGIHandler(threads)
    assert get(application, "/health/live") == 200
    (used,) = threads._idle

    async def broken(*args: object) -> None:
        raise RuntimeError("the request's end failed")

    monkeypatch.setattr(application, "handle", broken)
    communicator = HttpCommunicator(application, "GET", "/health/live", headers=[(b"host", b"testserver")])
    with pytest.raises(RuntimeError):
        async_to_sync(communicator.get_response)(timeout=10)
    monkeypatch.undo()

    assert len(threads) == 0
    assert get(application, "/health/live") == 200
    assert threads._idle[0] is not used
