from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone
from factory.declarations import (
    LazyAttribute,
    LazyAttributeSequence,
    LazyFunction,
    RelatedFactory,
    SelfAttribute,
    Sequence,
    SubFactory,
)
from factory.django import DjangoModelFactory, Password
from factory.faker import Faker

from accounts.models import ClientProfile, EngineerProfile, Role, User
from conversations.models import Conversation
from hiring_requests.matching import WEIGHTS
from hiring_requests.models import Engagement, HiringRequest, Invitation
from marketplace.idempotency import fingerprint as request_fingerprint
from marketplace.models import EmailDelivery, EmailPreference, IdempotencyRecord, Notification, NotificationStream
from marketplace.timezones import utc_offset_minutes
from payments.models import (
    Customer,
    LedgerAccount,
    LedgerAccountKind,
    Milestone,
    PayoutAccount,
    StripeEvent,
    TimeEntry,
    Timesheet,
    TimesheetStatus,
)
from payments.services.hourly import amount_for
from reviews.models import Reputation
from reviews.services import rating_bp as bayesian_rating_bp
from vetting.models import Application, ApplicationStatus, Rubric, VettedRecord

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
    VettedRecordFactory.create(
        engineer=engineer,
        level=level,
        score_bp=score_bp,
        vetted_at=timezone.now() - timedelta(days=vetted_days_ago),
        application__statement="vetted for tests",
        application__skills=sorted(vetted_skills if vetted_skills is not None else declared),
    )
    return engineer


class ApplicationFactory(DjangoModelFactory[Application]):
    """An application just submitted under the earliest rubric (the shipped one), waiting in the queue."""

    class Meta:
        model = Application

    engineer = SubFactory(EngineerFactory)
    rubric = LazyFunction(lambda: Rubric.objects.earliest("version"))
    status = ApplicationStatus.SUBMITTED
    headline = "Backend engineer"
    skills = LazyFunction(lambda: ["asyncio", "django", "python"])
    statement = "I build and run asyncio services."


class VettedRecordFactory(DjangoModelFactory[VettedRecord]):
    """A current senior record granted ten days ago, for a year, by the approval of the engineer's application."""

    class Meta:
        model = VettedRecord

    engineer = SubFactory(EngineerFactory)
    level = "senior"
    score_bp = 8_000
    category_scores = LazyFunction(list)
    vetted_at = LazyFunction(lambda: timezone.now() - timedelta(days=10))
    expires_at = LazyAttribute(lambda record: record.vetted_at + timedelta(days=365))
    application = SubFactory(
        ApplicationFactory,
        engineer=SelfAttribute("..engineer"),
        status=ApplicationStatus.APPROVED,
        decided_at=SelfAttribute("..vetted_at"),
        level=SelfAttribute("..level"),
        score_bp=SelfAttribute("..score_bp"),
    )


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


class HourlyEngagementFactory(EngagementFactory):
    """An hourly engagement at 40.00 an hour, as hired: no billing yet (`payments.services.billing_open` opens it)."""

    rate_kind = "hourly"
    rate_minor = 4_000


class PayoutAccountFactory(DjangoModelFactory[PayoutAccount]):
    """An engineer's payout account with payouts enabled; its id is no Stripe's (pass the double's for live tests)."""

    class Meta:
        model = PayoutAccount

    engineer = SubFactory(EngineerFactory)
    stripe_account_id = Sequence(lambda n: f"acct_test{n}")
    payouts_enabled = True


class CustomerFactory(DjangoModelFactory[Customer]):
    """A client as a Stripe Customer, as saving a first card leaves them; its id is no Stripe's."""

    class Meta:
        model = Customer

    client = SubFactory(ClientFactory)
    stripe_customer_id = Sequence(lambda n: f"cus_test{n}")


class TimesheetFactory(DjangoModelFactory[Timesheet]):
    """An open week of an hourly engagement at its rate, nothing logged; in a later status it costs its `minutes`."""

    class Meta:
        model = Timesheet

    engagement = SubFactory(HourlyEngagementFactory)
    week_start = Sequence(lambda n: date(2026, 1, 5) + timedelta(weeks=n))  # Mondays, one after another
    status = TimesheetStatus.OPEN
    rate_minor = SelfAttribute("engagement.rate_minor")
    currency = SelfAttribute("engagement.currency")
    minutes = 0
    # The service computes it once, when the week closes (`amount_for`): an open week owes nothing yet.
    amount_minor = LazyAttribute(
        lambda week: 0 if week.status == TimesheetStatus.OPEN else amount_for(week.minutes, week.rate_minor)
    )


class TimeEntryFactory(DjangoModelFactory[TimeEntry]):
    """An hour logged from 09:00 UTC on its week's Tuesday; the timesheet's `minutes` are left as they are."""

    class Meta:
        model = TimeEntry

    timesheet = SubFactory(TimesheetFactory)
    started_at = LazyAttribute(
        lambda entry: datetime.combine(entry.timesheet.week_start, time(9), tzinfo=UTC) + timedelta(days=1)
    )
    minutes = 60
    note = "the worker pool"


class LedgerAccountFactory(DjangoModelFactory[LedgerAccount]):
    """An empty escrow account in usd, coded as the ledger codes its accounts (`<kind>:<owner>:<currency>`)."""

    class Meta:
        model = LedgerAccount

    kind = LedgerAccountKind.ESCROW
    currency = "usd"
    code = LazyAttributeSequence(lambda account, n: f"{account.kind}:test-{n}:{account.currency}")
    balance = 0


class StripeEventFactory(DjangoModelFactory[StripeEvent]):
    """A webhook stored as received and not yet processed, its payload in the shape of Stripe's events."""

    class Meta:
        model = StripeEvent

    stripe_id = Sequence(lambda n: f"evt_test{n}")
    type = "customer.created"
    payload = LazyAttribute(
        lambda event: {"id": event.stripe_id, "object": "event", "type": event.type, "data": {"object": {}}}
    )


class IdempotencyRecordFactory(DjangoModelFactory[IdempotencyRecord]):
    """An Idempotency-Key just taken by a request still running: no response kept yet."""

    class Meta:
        model = IdempotencyRecord

    user = SubFactory(ClientFactory)
    key = Sequence(lambda n: f"key-{n}")
    fingerprint = LazyFunction(lambda: request_fingerprint(["POST", "/api/requests", {}]))


class NotificationFactory(DjangoModelFactory[Notification]):
    """A notification written and not yet numbered: its on-commit publish has not run."""

    class Meta:
        model = Notification

    user = SubFactory(UserFactory)
    event = "test.event"
    payload = LazyFunction(dict)


class NotificationStreamFactory(DjangoModelFactory[NotificationStream]):
    """A user's notification stream before anything was numbered; pass `last_seq` for one that has."""

    class Meta:
        model = NotificationStream

    user = SubFactory(UserFactory)
    last_seq = 0


class EmailPreferenceFactory(DjangoModelFactory[EmailPreference]):
    """A user's choice to get no email of one kind (no row at all means every email, at once)."""

    class Meta:
        model = EmailPreference

    user = SubFactory(UserFactory)
    kind = "shortlist.changed"
    delivery = EmailDelivery.NEVER


class ConversationFactory(DjangoModelFactory[Conversation]):
    """A conversation with no messages yet, between a client and an engineer on the client's raised request."""

    class Meta:
        model = Conversation

    client = SubFactory(ClientFactory)
    request = SubFactory(HiringRequestFactory, client=SelfAttribute("..client"))
    engineer = SubFactory(EngineerFactory)


class ReputationFactory(DjangoModelFactory[Reputation]):
    """A user's reputation after one published five-star review, as `reviews.services` keeps it."""

    class Meta:
        model = Reputation

    user = SubFactory(UserFactory)
    review_count = 1
    rating_bp = LazyAttribute(
        lambda reputation: bayesian_rating_bp(stars_total=5 * reputation.review_count, count=reputation.review_count)
    )
    paid_engagements = 0
