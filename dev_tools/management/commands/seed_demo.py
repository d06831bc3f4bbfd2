"""Create the demo accounts `make run` prints: a client, two engineers and a staff member."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.demo import DEMO_ENGINEER_PROFILES, DEMO_USERS, DEMO_VETTING_SCORES
from accounts.models import Role, User
from vetting import services as vetting
from vetting.models import Score, VettedRecord


class Command(BaseCommand):
    help = "Create the demo accounts (idempotent) and print their logins. Development only."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            password = services.demo_password()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        with transaction.atomic():
            for email, role, name, is_staff in DEMO_USERS:
                if User.objects.filter(email=email).exists():
                    continue
                if is_staff:
                    User.objects.create_superuser(email, password, full_name=name)
                    continue
                user = services.user_register(email=email, password=password, role=Role(role), full_name=name)
                if email in DEMO_ENGINEER_PROFILES:
                    services.engineer_profile_update(
                        user=user, profile_id=user.engineer_profile.pk, changes=dict(DEMO_ENGINEER_PROFILES[email])
                    )
            staff = User.objects.get(email="staff@vetted.test")
            lead = User.objects.get(email="lead@vetted.test")
            for email, value in DEMO_VETTING_SCORES.items():
                self._vet(User.objects.get(email=email), staff, lead, value)
        self.stdout.write(f"Demo logins (password for all: {password}):")
        for email, role, _name, is_staff in DEMO_USERS:
            self.stdout.write(f"  {email:<22} {'staff' if is_staff else role}")

    def _vet(self, engineer: User, staff: User, lead: User, value: int) -> None:
        if VettedRecord.objects.filter(engineer=engineer).exists():
            return
        application = vetting.application_submit(
            engineer=engineer, statement="Demo engineer: async Python in production for years.", links=[]
        )
        vetting.application_start_screening(application_id=application.pk, actor=staff)
        vetting.application_start_interview(application_id=application.pk, actor=staff)
        criteria = Score.objects.filter(application=application, superseded_at=None).values_list(
            "criterion_id", flat=True
        )
        vetting.interview_score(
            application_id=application.pk, actor=staff, scores=[(c, value, "demo") for c in criteria]
        )
        vetting.application_approve(application_id=application.pk, actor=lead, note="Demo vetting")
