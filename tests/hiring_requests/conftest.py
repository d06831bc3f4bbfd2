from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from hiring_requests import services
from hiring_requests.models import HiringRequest
from payments.models import PayoutAccount
from tests.factories import ClientFactory, StaffFactory


def request_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": "Async payments service",
        "description": "Build and run an asyncio service that talks to Stripe.",
        "required_skills": ["python", "asyncio"],
        "nice_to_have_skills": [],
        "min_level": "mid",
        "budget_kind": "hourly",
        "budget_minor": 10_000,
        "currency": "usd",
        "hours_per_week": 20,
        "time_zone": "Europe/London",
        "min_overlap_hours": 4,
        "start_date": timezone.localdate() + timedelta(days=7),
    }
    return {**fields, **overrides}


def raised(client: User, **overrides: Any) -> HiringRequest:
    draft = services.request_create(client=client, fields=request_fields(**overrides))
    return services.request_raise(client=client, request_id=draft.pk)


def enable_payouts(engineer: User) -> None:
    PayoutAccount.objects.update_or_create(engineer=engineer, defaults={"payouts_enabled": True})


@pytest.fixture
def client_user(db) -> User:
    return ClientFactory.create()


@pytest.fixture
def staff(db) -> User:
    return StaffFactory.create()
