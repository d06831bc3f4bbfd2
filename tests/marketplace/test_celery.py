import uuid

import pytest
from django.db import transaction

from accounts import tasks
from accounts.models import User
from marketplace.celery import app as celery_app
from marketplace.tracing import request_id
from tests.conftest import rolled_back
from tests.factories import ClientFactory
from tests.processes import celery_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def enqueue_welcome_then_roll_back(user_id: int) -> None:
    with rolled_back():
        tasks.user_send_welcome.delay_on_commit(user_id)


@pytest.fixture
def worker(tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    try:
        with celery_worker(queue=queue, log_dir=tmp_path) as process:
            yield process
    finally:
        celery_app.conf.task_default_queue = previous


def welcome_sent(user: User) -> bool:
    user.refresh_from_db(fields=["welcome_sent_at"])
    return user.welcome_sent_at is not None


def test_worker_runs_a_committed_task_and_never_sees_a_rolled_back_one(worker):
    rolled_back_user, committed_user = ClientFactory.create(), ClientFactory.create()

    enqueue_welcome_then_roll_back(rolled_back_user.pk)
    with transaction.atomic():
        tasks.user_send_welcome.delay_on_commit(committed_user.pk)

    wait_until(lambda: welcome_sent(committed_user), timeout=30, what="the committed task to run")
    # One worker, one queue, prefetch 1: had the first task been sent, it would have run first.
    assert not welcome_sent(rolled_back_user)


def test_the_request_id_travels_with_the_task_into_the_worker_logs(worker, tmp_path):
    user = ClientFactory.create()
    token = request_id.set("trace-abc-123")
    try:
        with transaction.atomic():
            tasks.user_send_welcome.delay_on_commit(user.pk)
    finally:
        request_id.reset(token)

    log = tmp_path / next(p.name for p in tmp_path.glob("worker-*.log"))
    wait_until(lambda: "user.welcome_sent" in log.read_text(), timeout=30, what="the task's log line")
    line = next(row for row in log.read_text().splitlines() if "user.welcome_sent" in row)
    assert f"user_id={user.pk}" in line
    assert line.endswith("request_id=trace-abc-123")
