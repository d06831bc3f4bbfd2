import pytest

from accounts.models import User
from tests.factories import EngineerFactory, StaffFactory
from vetting import services
from vetting.models import Application, ApplicationStatus, Score

STATEMENT = "I have run asyncio services in production for six years."


@pytest.fixture
def staff(db) -> User:
    return StaffFactory.create()


@pytest.fixture
def approver(db) -> User:
    """A second staff member: whoever interviewed does not approve (four eyes)."""
    return StaffFactory.create()


@pytest.fixture
def engineer(db) -> User:
    return EngineerFactory.create()


def submit(engineer: User) -> Application:
    return services.application_submit(engineer=engineer, statement=STATEMENT, links=["https://example.test/me"])


def advance_to_interview(application: Application, staff: User) -> Application:
    services.application_start_screening(application_id=application.pk, actor=staff)
    return services.application_start_interview(application_id=application.pk, actor=staff)


def to_interview(engineer: User, staff: User) -> Application:
    return advance_to_interview(submit(engineer), staff)


def score_all(application: Application, staff: User, value: int = 3) -> None:
    criterion_ids = Score.objects.filter(application=application, superseded_at=None).values_list(
        "criterion_id", flat=True
    )
    services.interview_score(
        application_id=application.pk, actor=staff, scores=[(cid, value, "private note") for cid in criterion_ids]
    )


def in_status(
    engineer: User, staff: User, status: str, *, scored: bool = False, approver: User | None = None
) -> Application:
    """An application brought to `status` through the services: `staff` interviews, `approver` approves."""
    application = submit(engineer)
    if status == ApplicationStatus.SUBMITTED:
        return application
    if status == ApplicationStatus.WITHDRAWN:
        return services.application_withdraw(application_id=application.pk, engineer=engineer)
    services.application_start_screening(application_id=application.pk, actor=staff)
    if status == ApplicationStatus.SCREENING:
        return Application.objects.get(pk=application.pk)
    if status == ApplicationStatus.REJECTED:
        return services.application_reject(application_id=application.pk, actor=staff, reason="not yet")
    services.application_start_interview(application_id=application.pk, actor=staff)
    if scored or status == ApplicationStatus.APPROVED:
        score_all(application, staff)
    if status == ApplicationStatus.APPROVED:
        services.application_approve(application_id=application.pk, actor=approver or StaffFactory.create())
    return Application.objects.get(pk=application.pk)
