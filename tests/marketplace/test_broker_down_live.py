"""The broker down when a task is sent after commit: the caller is answered, and each task's sweep re-drives its work.

The web process is started with `CELERY_BROKER_URL` on a port nothing listens on (to
the client, a Redis that is down: connection refused). Registering, raising a request
and receiving a Stripe webhook all commit and answer as usual, quickly; their tasks are
lost. Then a worker on the real broker runs the sweeps that `recovered_by` names, and
the welcome mail goes out, the request is matched and the event is processed.
"""

import json
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from accounts import services as accounts_services
from accounts import tasks as accounts_tasks
from accounts.models import User
from hiring_requests import tasks as hiring_tasks
from hiring_requests.models import Invitation
from payments import tasks as payments_tasks
from payments.models import StripeEvent
from stripe_double.app import sign
from tests.factories import ClientFactory, vetted_engineer
from tests.hiring_requests.conftest import request_fields
from tests.processes import asgi_server, celery_worker, free_port, needs_redis, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    needs_redis("the sweeps run on a real worker once the broker is back"),
]

SECRET = "whsec_broker_down"


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_work_committed_while_the_broker_is_down_is_answered_and_then_swept(rubric, tmp_path):
    engineer = vetted_engineer()
    client_user = ClientFactory.create()
    _, token = accounts_services.api_token_create(user=client_user, name="http")
    headers = {"Authorization": f"Bearer {token}"}
    queue = f"down-{uuid.uuid4().hex[:8]}"
    down = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0", "STRIPE_WEBHOOK_SECRET": SECRET}
    event = {
        "id": "evt_broker_down",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1"}},
    }
    body = json.dumps(event)

    with asgi_server(log_dir=tmp_path, env={**down, "CELERY_QUEUE": queue}) as base:
        registered, register_took = _timed(
            lambda: httpx.post(
                f"{base}/api/auth/register",
                json={"email": "while.down@example.test", "password": "a long pass phrase", "role": "engineer"},
                timeout=30,
            )
        )
        draft = httpx.post(f"{base}/api/requests", json=request_fields(start_date="2099-01-01"), headers=headers)
        raised, raise_took = _timed(
            lambda: httpx.post(f"{base}/api/requests/{draft.json()['id']}/raise", headers=headers, timeout=30)
        )
        webhook, webhook_took = _timed(
            lambda: httpx.post(
                f"{base}/api/payments/stripe/webhook",
                content=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": sign(body, SECRET)},
                timeout=30,
            )
        )
        scraped = httpx.get(f"{base}/metrics").text

    # Answered as usual, within the publish policy's bound (a couple of seconds), not a 500 after the commit.
    assert (registered.status_code, raised.status_code, webhook.status_code) == (201, 200, 200)
    assert max(register_took, raise_took, webhook_took) < 10
    for task in ("accounts.tasks.user_send_welcome", "hiring_requests.tasks.match_request"):
        assert f'vetted_celery_publish_failures_total{{task="{task}"}} 1.0' in scraped
    assert 'vetted_celery_publish_failures_total{task="payments.tasks.process_stripe_event"} 1.0' in scraped
    user = User.objects.get(email="while.down@example.test")
    request_id = draft.json()["id"]
    assert user.welcome_sent_at is None
    assert not Invitation.objects.filter(request_id=request_id).exists()
    assert StripeEvent.objects.get(stripe_id="evt_broker_down").processed_at is None

    # The sweeps look only at work old enough that its own task has had its chance; make it so.
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - accounts_services.WELCOME_SWEEP_AFTER * 2)
    StripeEvent.objects.filter(stripe_id="evt_broker_down").update(received_at=timezone.now() - timedelta(minutes=2))

    with celery_worker(queue=queue, log_dir=tmp_path, env={"STRIPE_WEBHOOK_SECRET": SECRET}):
        # Each is a beat entry (every minute or five); sent at once here instead of waited for.
        for task in (accounts_tasks.welcome_mails_sweep, hiring_tasks.sweep, payments_tasks.sweep):
            task.apply_async(queue=queue)
        wait_until(
            lambda: (
                User.objects.filter(pk=user.pk, welcome_sent_at__isnull=False).exists()
                and Invitation.objects.filter(request_id=request_id, engineer=engineer).exists()
                and StripeEvent.objects.filter(stripe_id="evt_broker_down", processed_at__isnull=False).exists()
            ),
            timeout=60,
            what="the sweeps to re-drive the lost tasks",
        )
