from datetime import date, timedelta

from django.utils import timezone
from factory.declarations import LazyAttribute, LazyFunction, RelatedFactory, SelfAttribute, Sequence, SubFactory
from factory.django import DjangoModelFactory, Password
from factory.faker import Faker

from accounts.models import ClientProfile, EngineerProfile, Role, User
from hiring_requests.matching import WEIGHTS
from hiring_requests.models import Engagement, HiringRequest, Invitation
from marketplace.timezones import utc_offset_minutes
from payments.models import Milestone

PASSWORD = "correct-horse-battery"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = Sequence(lambda n: f"user{n}@example.test")
    full_name = Faker("name")
    role = Role.CLIENT
    password = Password(PASSWORD)


class ClientFactory(UserFactory):
    role = Role.CLIENT
    client_profile = RelatedFactory("tests.factories.ClientProfileFactory", factory_related_name="user")


class EngineerFactory(UserFactory):
    role = Role.ENGINEER
    engineer_profile = RelatedFactory("tests.factories.EngineerProfileFactory", factory_related_name="user")


class StaffFactory(UserFactory):
    role = ""  # type: ignore[assignment]  # staff carry no client/engineer role
    is_staff = True


class ClientProfileFactory(DjangoModelFactory[ClientProfile]):
    class Meta:
        model = ClientProfile

    user = SubFactory(UserFactory, role=Role.CLIENT)
    company = "Acme Ltd"
    time_zone = "Europe/London"


class EngineerProfileFactory(DjangoModelFactory[EngineerProfile]):
    class Meta:
        model = EngineerProfile

    user = SubFactory(UserFactory, role=Role.ENGINEER)
    headline = "Backend engineer"
    skills = LazyFunction(lambda: ["asyncio", "django", "python"])
    hourly_rate_minor = 8_000
    currency = "usd"
    weekly_hours_available = 20
    time_zone = "Europe/Berlin"
    utc_offset_minutes = LazyAttribute(lambda profile: utc_offset_minutes(profile.time_zone))
    years_experience = 6


def vetted_engineer(
    *,
    level: str = "senior",
    score_bp: int = 8_000,
    skills: list[str] | None = None,
    hourly_rate_minor: int = 8_000,
    currency: str = "usd",
    weekly_hours_available: int = 40,
    time_zone: str = "Europe/Berlin",
    vetted_days_ago: int = 10,
    vetted_skills: list[str] | None = None,
    **user_fields: object,
) -> User:
    """An engineer with a current vetted record, as approval leaves them. Needs a rubric in the database.

    `vetted_skills` are the skills the vetting assessed (the application's); by default, all the profile's.
    """
    from datetime import timedelta

    from django.utils import timezone

    from vetting.models import Application, ApplicationStatus, Rubric, VettedRecord

    engineer = UserFactory.create(role=Role.ENGINEER, **user_fields)
    declared = sorted(skills if skills is not None else ["asyncio", "django", "python"])
    EngineerProfileFactory.create(
        user=engineer,
        skills=declared,
        hourly_rate_minor=hourly_rate_minor,
        currency=currency,
        weekly_hours_available=weekly_hours_available,
        time_zone=time_zone,
    )
    vetted_at = timezone.now() - timedelta(days=vetted_days_ago)
    application = Application.objects.create(
        engineer=engineer,
        rubric=Rubric.objects.earliest("version"),
        status=ApplicationStatus.APPROVED,
        statement="vetted for tests",
        skills=sorted(vetted_skills if vetted_skills is not None else declared),
        decided_at=vetted_at,
        level=level,
        score_bp=score_bp,
    )
    VettedRecord.objects.create(
        engineer=engineer,
        application=application,
        level=level,
        score_bp=score_bp,
        category_scores=[],
        vetted_at=vetted_at,
        expires_at=vetted_at + timedelta(days=365),
    )
    return engineer


class HiringRequestFactory(DjangoModelFactory[HiringRequest]):
    """A raised request, written straight to the table (no matching runs); `request_fields` in its shape."""

    class Meta:
        model = HiringRequest

    client = SubFactory(ClientFactory)
    title = "Async payments service"
    description = "Build and run an asyncio service that talks to Stripe."
    required_skills = LazyFunction(lambda: ["asyncio", "python"])
    nice_to_have_skills = LazyFunction(list)
    min_level = "mid"
    budget_kind = "hourly"
    budget_minor = 10_000
    currency = "usd"
    hours_per_week = 20
    time_zone = "Europe/London"
    min_overlap_hours = 4
    start_date = LazyFunction(lambda: timezone.localdate() + timedelta(days=7))
    status = "open"  # raised: the clock runs, matching has not started


class InvitationFactory(DjangoModelFactory[Invitation]):
    """A pending invitation in wave 1; pass `status=InvitationStatus.ACCEPTED, responded_at=...` for a shortlist."""

    class Meta:
        model = Invitation

    request = SubFactory(HiringRequestFactory)
    engineer = SubFactory(EngineerFactory)
    wave = 1
    rank = Sequence(lambda n: n + 1)
    score_bp = 5_000
    breakdown = LazyFunction(lambda: {"weights": WEIGHTS, "load": {"score_bp": 10_000}})
    expires_at = LazyFunction(lambda: timezone.now() + timedelta(hours=8))
    offered_rate_minor = 8_000
    offered_hours_per_week = 20


class EngagementFactory(DjangoModelFactory[Engagement]):
    """A fixed-price engagement on a hired request of its own client."""

    class Meta:
        model = Engagement

    client = SubFactory(ClientFactory)
    request = SubFactory(HiringRequestFactory, client=SelfAttribute("..client"), status="hired")
    engineer = SubFactory(EngineerFactory)
    rate_kind = "fixed"
    rate_minor = 100_000
    currency = "usd"
    hours_per_week = 20


class MilestoneFactory(DjangoModelFactory[Milestone]):
    """A draft milestone, written straight to the table (no Stripe)."""

    class Meta:
        model = Milestone

    engagement = SubFactory(EngagementFactory)
    title = Sequence(lambda n: f"Part {n}")
    amount_minor = 1_000
    currency = LazyAttribute(lambda milestone: milestone.engagement.currency)
    due_date = date(2099, 1, 1)
