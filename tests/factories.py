from factory.declarations import LazyFunction, RelatedFactory, Sequence, SubFactory
from factory.django import DjangoModelFactory, Password
from factory.faker import Faker

from accounts.models import ClientProfile, EngineerProfile, Role, User

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
    years_experience = 6
